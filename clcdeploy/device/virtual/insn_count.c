/* A QEMU TCG plugin (plugin API version 1, QEMU 7.2) for aarch64 guests: counts the guest instructions a
 * program executes and its memory accesses (loads and stores, each counted once whatever its width), and
 * writes both as JSON to the file given as `out=PATH` when the program exits, with a snapshot of both counters
 * at every *mark*: a write(2) to file descriptor -3100 (it fails with EBADF and has no other effect), which
 * clcdeploy's runners make around their timed passes when CLCDEPLOY_PASS_MARKS=1.
 *
 * Counters are bumped by inline TCG ops, so counting costs little; they are not atomic, so counts are exact
 * only while one guest thread runs at a time (benchmark at one thread).
 *
 * The few declarations below are QEMU's plugin ABI (include/qemu/qemu-plugin.h), restated because Debian
 * ships no development header for it. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                                              uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                                              uint64_t a6, uint64_t a7, uint64_t a8);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
void qemu_plugin_register_vcpu_mem_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_mem_rw rw,
                                          enum qemu_plugin_op op, void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);

EXPORT int qemu_plugin_version = 1;

#define AARCH64_NR_WRITE 64
#define MARK_FD (-3100)
#define MAX_MARKS 256

static uint64_t instructions, memory_accesses;
static uint64_t marks[MAX_MARKS][2];
static int n_marks;
static char out_path[4096];

/* Called once per translated block: every later execution of the block adds its length. */
static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &instructions, n);
    for (size_t i = 0; i < n; i++)
        qemu_plugin_register_vcpu_mem_inline(qemu_plugin_tb_get_insn(tb, i), QEMU_PLUGIN_MEM_RW,
                                             QEMU_PLUGIN_INLINE_ADD_U64, &memory_accesses, 1);
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8) {
    if (num != AARCH64_NR_WRITE || (int64_t)a1 != MARK_FD || n_marks == MAX_MARKS)
        return;
    marks[n_marks][0] = instructions;
    marks[n_marks][1] = memory_accesses;
    n_marks++;
}

static void on_exit_write(qemu_plugin_id_t id, void *userdata) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.partial", out_path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return;
    fprintf(f, "{\"instructions\": %llu, \"memory_accesses\": %llu, \"marks\": [",
            (unsigned long long)instructions, (unsigned long long)memory_accesses);
    for (int i = 0; i < n_marks; i++)
        fprintf(f, "%s[%llu, %llu]", i ? ", " : "", (unsigned long long)marks[i][0], (unsigned long long)marks[i][1]);
    fprintf(f, "]}\n");
    if (fclose(f) == 0)
        rename(tmp, out_path); /* atomic: a reader sees the whole result or none */
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "out=", 4) == 0)
            snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
    if (out_path[0] == '\0') {
        fprintf(stderr, "insn_count: give the result file as out=PATH\n");
        return 1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, on_exit_write, NULL);
    return 0;
}
