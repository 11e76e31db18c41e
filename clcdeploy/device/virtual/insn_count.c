/* A QEMU TCG plugin (plugin API version 1, QEMU 7.2) for aarch64 guests: counts the guest instructions a
 * program executes and its memory accesses (as QEMU performs them, each counted once whatever its width), and
 * writes them as JSON to the file given as `out=PATH` when the program exits, with a snapshot of the counters
 * at every *mark*: a write(2) to file descriptor -3100 (it fails with EBADF and has no other effect), which
 * clcdeploy's runners make around their timed passes when CLCDEPLOY_PASS_MARKS=1.
 *
 * Calls can be marked too: a write(2) to file descriptor -3101 whose byte count is a code address (it fails as
 * well) adds that address to a watch list, and every later execution of an instruction there snapshots the
 * counters as a *call event*, tagged with the address's index in the list. clcdeploy's pte_runner registers
 * the pthreadpool entry points through which XNNPACK runs each of its operators (CLCDEPLOY_CALL_MARKS), so
 * the counts between successive calls are per operator. Register addresses before their code first runs:
 * only blocks translated after it get the callback.
 *
 * With `caches=1` every access also goes through a model of a Cortex-A53-like data cache hierarchy (32 KB
 * 4-way L1, 512 KB 16-way L2 or `l2_kb=N` KB, 64-byte lines, LRU, write-back, write-allocate, no prefetcher),
 * which counts L1 misses, L2 misses and dirty lines written back from L2: (L2 misses + write-backs) x 64 bytes
 * is the DRAM traffic. That costs a callback per access (a few times slower than counting alone).
 *
 * Counters are bumped by inline TCG ops (or the callback), not atomically, so counts are exact only while one
 * guest thread runs at a time (benchmark at one thread).
 *
 * The few declarations below are QEMU's plugin ABI (include/qemu/qemu-plugin.h), restated because Debian
 * ships no development header for it. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef uint32_t qemu_plugin_meminfo_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr,
                                          void *userdata);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                                              uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                                              uint64_t a6, uint64_t a7, uint64_t a8);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
void qemu_plugin_register_vcpu_mem_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_mem_rw rw,
                                          enum qemu_plugin_op op, void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_mem_cb_t cb,
                                      enum qemu_plugin_cb_flags flags, enum qemu_plugin_mem_rw rw, void *userdata);
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);

EXPORT int qemu_plugin_version = 1;

#define AARCH64_NR_WRITE 64
#define MARK_FD (-3100)
#define WATCH_FD (-3101)
#define MAX_WATCHED 128
#define LINE_SHIFT 6 /* 64-byte lines */

/* The counters, in the order of the JSON's "counters" and of every mark. */
enum { INSTRUCTIONS, MEMORY_ACCESSES, L1_MISSES, L2_MISSES, L2_WRITEBACKS, N_COUNTERS };
static const char *const counter_names[N_COUNTERS] = {"instructions", "memory_accesses", "l1_misses", "l2_misses",
                                                      "l2_writebacks"};
static uint64_t counters[N_COUNTERS];
static bool simulate_caches;
static int l2_kb = 512;

/* Watched call addresses, and the marks and calls in the order they happened (kind MARK_KIND = mark, else the
 * index of the watched address). */
#define MARK_KIND (-1)
static uint64_t watched[MAX_WATCHED];
static int n_watched;
struct event {
    int kind;
    uint64_t values[N_COUNTERS];
};
static struct event *events;
static size_t n_events, events_capacity;
static bool events_overflowed;
static char out_path[4096];

/* A set-associative LRU cache of line tags; `dirty` marks lines written since they were filled. */
#define MAX_WAYS 16
struct cache {
    int sets, ways;
    uint64_t (*tag)[MAX_WAYS];
    uint64_t (*used)[MAX_WAYS]; /* last access time; 0 = empty */
    bool (*dirty)[MAX_WAYS];
    uint64_t clock;
};
static struct cache l1, l2;

static bool cache_init(struct cache *c, int bytes, int ways) {
    c->ways = ways;
    c->sets = (bytes >> LINE_SHIFT) / ways;
    c->tag = calloc((size_t)c->sets, sizeof *c->tag);
    c->used = calloc((size_t)c->sets, sizeof *c->used);
    c->dirty = calloc((size_t)c->sets, sizeof *c->dirty);
    return c->tag && c->used && c->dirty;
}

/* Looks `line` up; on a miss fills it, evicting the least recently used way. Returns whether it hit; when the
 * evicted line was dirty, sets *written_back to it (else to UINT64_MAX). */
static bool cache_access(struct cache *c, uint64_t line, bool store, uint64_t *written_back) {
    int set = (int)(line % (uint64_t)c->sets), victim = 0;
    uint64_t *tag = c->tag[set], *used = c->used[set];
    c->clock++;
    *written_back = UINT64_MAX;
    for (int w = 0; w < c->ways; w++) {
        if (used[w] != 0 && tag[w] == line) {
            used[w] = c->clock;
            c->dirty[set][w] |= store;
            return true;
        }
        if (used[w] < used[victim])
            victim = w;
    }
    if (used[victim] != 0 && c->dirty[set][victim])
        *written_back = tag[victim];
    tag[victim] = line;
    used[victim] = c->clock;
    c->dirty[set][victim] = store;
    return false;
}

/* A line that L2 evicts dirty goes to DRAM. */
static void l2_access(uint64_t line, bool store) {
    uint64_t written_back;
    cache_access(&l2, line, store, &written_back);
    counters[L2_WRITEBACKS] += written_back != UINT64_MAX;
}

/* One data access: L1, then on an L1 miss L2 (a demand access, counted as an L2 miss if it misses); a dirty line
 * L1 evicts is written into L2. */
static void on_memory(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr, void *userdata) {
    uint64_t line = vaddr >> LINE_SHIFT, written_back, l2_written_back;
    if (cache_access(&l1, line, qemu_plugin_mem_is_store(info), &written_back))
        return;
    counters[L1_MISSES]++;
    if (!cache_access(&l2, line, false, &l2_written_back))
        counters[L2_MISSES]++;
    counters[L2_WRITEBACKS] += l2_written_back != UINT64_MAX;
    if (written_back != UINT64_MAX)
        l2_access(written_back, true);
}

static void record_event(int kind) {
    if (n_events == events_capacity) {
        size_t capacity = events_capacity ? 2 * events_capacity : 4096;
        struct event *grown = realloc(events, capacity * sizeof *events);
        if (grown == NULL) {
            events_overflowed = true;
            return;
        }
        events = grown;
        events_capacity = capacity;
    }
    events[n_events].kind = kind;
    memcpy(events[n_events++].values, counters, sizeof counters);
}

static void on_watched_call(unsigned int vcpu_index, void *userdata) { record_event((int)(intptr_t)userdata); }

static int watched_index(uint64_t vaddr) {
    for (int k = 0; k < n_watched; k++)
        if (watched[k] == vaddr)
            return k;
    return -1;
}

/* Called once per translated block: every later execution of the block adds its length. */
static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &counters[INSTRUCTIONS], n);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        qemu_plugin_register_vcpu_mem_inline(insn, QEMU_PLUGIN_MEM_RW, QEMU_PLUGIN_INLINE_ADD_U64,
                                             &counters[MEMORY_ACCESSES], 1);
        if (simulate_caches)
            qemu_plugin_register_vcpu_mem_cb(insn, on_memory, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, NULL);
        int k = n_watched ? watched_index(qemu_plugin_insn_vaddr(insn)) : -1;
        if (k >= 0)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_watched_call, QEMU_PLUGIN_CB_NO_REGS, (void *)(intptr_t)k);
    }
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8) {
    if (num != AARCH64_NR_WRITE)
        return;
    if ((int64_t)a1 == WATCH_FD && n_watched < MAX_WATCHED)
        watched[n_watched++] = a3; /* 0 keeps the index of an entry point the program did not find */
    if ((int64_t)a1 == MARK_FD)
        record_event(MARK_KIND);
}

static void write_counters(FILE *f, const uint64_t *values) {
    fprintf(f, "[");
    for (int k = 0; k < N_COUNTERS; k++)
        fprintf(f, "%s%llu", k ? ", " : "", (unsigned long long)values[k]);
    fprintf(f, "]");
}

/* {"counters": [names], "caches": bool, "total": [values], "events_complete": bool (false if memory ran out),
 * "events": [[kind, [values]], ...]} */
static void on_exit_write(qemu_plugin_id_t id, void *userdata) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.partial", out_path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return;
    fprintf(f, "{\"counters\": [");
    for (int k = 0; k < N_COUNTERS; k++)
        fprintf(f, "%s\"%s\"", k ? ", " : "", counter_names[k]);
    fprintf(f, "], \"caches\": %s, \"total\": ", simulate_caches ? "true" : "false");
    write_counters(f, counters);
    fprintf(f, ", \"events_complete\": %s, \"events\": [", events_overflowed ? "false" : "true");
    for (size_t i = 0; i < n_events; i++) {
        fprintf(f, "%s[%d, ", i ? ", " : "", events[i].kind);
        write_counters(f, events[i].values);
        fprintf(f, "]");
    }
    fprintf(f, "]}\n");
    if (fclose(f) == 0)
        rename(tmp, out_path); /* atomic: a reader sees the whole result or none */
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "out=", 4) == 0)
            snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
        else if (strcmp(argv[i], "caches=1") == 0)
            simulate_caches = true;
        else if (strncmp(argv[i], "l2_kb=", 6) == 0)
            l2_kb = atoi(argv[i] + 6);
    if (out_path[0] == '\0') {
        fprintf(stderr, "insn_count: give the result file as out=PATH\n");
        return 1;
    }
    if (l2_kb < 64) {
        fprintf(stderr, "insn_count: l2_kb must be at least 64\n");
        return 1;
    }
    if (simulate_caches && !(cache_init(&l1, 32 << 10, 4) && cache_init(&l2, l2_kb << 10, 16))) {
        fprintf(stderr, "insn_count: out of memory for the cache model\n");
        return 1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, on_exit_write, NULL);
    return 0;
}
