// Minimal ExecuTorch .pte runner for benchmarks on devices without Python/torch.
//
// Built against the executorch wheel's include/ and lib/ (libexecutorch, the XNNPACK backend, the optimized
// kernels and the threadpool; the last three register themselves in static initialisers, so link them with
// --no-as-needed). Prints the lines of ExecuTorch's examples/portable/executor_runner:
//   Model loaded in %f ms.
//   Iteration %d of %d: %f ms
//   Model executed successfully %d time(s) in %f ms.
// plus `Output 0: numel=N max_abs=X finite=1 first=[...]` and, with --output_path, the raw float32 output.
//
// Flags: --model_path P --num_executions N --warmup N --cpu_threads N --method_name NAME --output_path P
//        --planned_offset B --block N --order_seed S --workspace_sharing M --etdump_path P (--help: kUsage
//        below). Numbers are whole decimal integers, range-checked; a bad command line gets one error line and
//        exit code 2.
// --model_path may be given several times: the models are then timed side by side in this one process, in
// turn N passes at a time (--block, default 1) after each one's warm-up, and each model's lines follow a
// `== Model k of n: P` line. With --order_seed S (not 0) every turn takes the models in a new order drawn from
// a generator seeded with S, printed as `Turn t order: k ...` (1-based model numbers), so that no model always
// runs right after the same other one; the default 0 keeps the order of the --model_path flags.
// --planned_offset B places the planned memory B bytes past a 64-byte boundary (default 0). ExecuTorch's
// Module API (and so its Python runtime) allocates planned buffers as std::vector<uint8_t>, 16 bytes past
// one; B = 16 reproduces that.
// --workspace_sharing M sets the XNNPACK backend's workspace sharing mode (0 disabled, 1 per model, 2 global;
// default 1). ExecuTorch builds with a shared workspace (the wheel's, Android's) default to global: every
// loaded model's delegate calls share one workspace, and a program of many delegate calls (a .pte with custom
// ops between XNNPACK partitions) timed side by side with other models ran 4-9% slower than with per-model
// sharing, which is what it gets when it is the only model loaded, as in an app.
// --etdump_path P traces every pass (warm-up and timed) with ExecuTorch's ETDump event tracer, which records each
// operator the XNNPACK delegate runs and each delegate call, and writes the ETDump to P (read it with
// executorch.devtools.Inspector). Tracing costs time of its own: time and profile in separate runs.
// With CLCDEPLOY_PASS_MARKS=1 in the environment the timed passes are bracketed by two marks for clcdeploy's
// ARM64 instruction counter (mark_passes); with CLCDEPLOY_CALL_MARKS=name,... it also marks every call of the
// named functions (register_call_marks), e.g. the pthreadpool entry points XNNPACK runs each operator through.

#include <executorch/devtools/etdump/etdump_flatcc.h>
#include <executorch/extension/data_loader/file_data_loader.h>
#include <executorch/runtime/core/evalue.h>
#include <executorch/runtime/core/exec_aten/exec_aten.h>
#include <executorch/runtime/executor/method.h>
#include <executorch/runtime/executor/program.h>
#include <executorch/runtime/platform/runtime.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <dlfcn.h>
#include <unistd.h>

// threadpool.h is not shipped in the wheel's include/; these two symbols are exported by
// libexecutorch_threadpool.so (a member call needs only the mangled name, not the class layout).
namespace executorch::extension::threadpool {
class ThreadPool {
 public:
  bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool

// From clcdeploy's ExecuTorch kernel binding (igc2_executorch.cpp), compiled into this runner.
extern "C" int clcdeploy_set_xnnpack_workspace_sharing(int mode);

using executorch::extension::FileDataLoader;
using executorch::runtime::Error;
using executorch::runtime::EValue;
using executorch::runtime::HierarchicalAllocator;
using executorch::runtime::MemoryAllocator;
using executorch::runtime::MemoryManager;
using executorch::runtime::Method;
using executorch::runtime::MethodMeta;
using executorch::runtime::Program;
using executorch::runtime::Result;
using executorch::runtime::Span;
using executorch::aten::ScalarType;
using executorch::aten::TensorImpl;

namespace {

struct Options {
  std::vector<std::string> model_paths;
  std::string method_name = "forward";
  std::string output_path;
  std::string etdump_path;
  int num_executions = 1;
  int warmup = 0;
  int cpu_threads = -1;
  int planned_offset = 0;
  int block = 1;
  unsigned order_seed = 0;  // 0: the models' order as given, every turn
  int workspace_sharing = 1;  // XNNPACK workspace sharing: per model
};

constexpr size_t kPoolBytes = 4 * 1024 * 1024;  // method and temp allocator pools, per model
constexpr size_t kAlign = 64;                   // cache line

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

// With CLCDEPLOY_PASS_MARKS=1: a write to file descriptor -3100, which fails and does nothing else, for
// clcdeploy's instruction counter (clcdeploy/device/virtual/insn_count.c) to snapshot its counts at.
void mark_passes() {
  static const bool enabled = [] {
    const char* v = std::getenv("CLCDEPLOY_PASS_MARKS");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  if (!enabled) return;
  ssize_t ignored = ::write(-3100, "", 0);  // always fails (EBADF): the system call itself is the mark
  (void)ignored;
}

// With CLCDEPLOY_CALL_MARKS=name,name,...: each named function's address (0 if not found) is registered with
// the instruction counter by a write to file descriptor -3101 whose byte count is the address (it fails too),
// in the order given, so that the counter snapshots its counts at every call of them (insn_count.c).
void register_call_marks() {
  const char* names = std::getenv("CLCDEPLOY_CALL_MARKS");
  if (names == nullptr) return;
  std::string list(names);
  for (size_t start = 0; start <= list.size();) {
    size_t end = std::min(list.find(',', start), list.size());
    std::string name = list.substr(start, end - start);
    start = end + 1;
    if (name.empty()) continue;
    void* address = dlsym(RTLD_DEFAULT, name.c_str());
    ssize_t ignored = ::write(-3101, "", reinterpret_cast<size_t>(address));
    (void)ignored;
  }
}

int fail(const std::string& what, int code = 1) {
  std::fprintf(stderr, "pte_runner: error: %s\n", what.c_str());
  return code;
}

// pthreadpool creates every thread up front and crashes (SIGSEGV) when the system refuses one, as 100000 did;
// and more threads than cores only time the scheduler. 256 is over ten times a phone's core count, which
// leaves room for oversubscription experiments, and a fixed limit (not one derived from the CPU count) gives
// the same answer on every host and under qemu, whose CPU count is the host's.
constexpr long kMaxCpuThreads = 256;
static_assert(kMaxCpuThreads == 256, "update kUsage and the --cpu_threads messages");

constexpr char kUsage[] =
    "usage: pte_runner --model_path P [--model_path P2 ...] [flags]\n"
    "\n"
    "Times an ExecuTorch .pte program's method and prints executor_runner's lines. The inputs' shapes and dtypes\n"
    "come from the program itself (there is no flag for them): float inputs get a fixed ramp in [-1, 1), integer\n"
    "inputs zeros. Flags take their value as `--flag V` or `--flag=V`.\n"
    "\n"
    "  --model_path P         the .pte to run (required); repeat it to time several models side by side\n"
    "  --method_name NAME     the program's method to run (default forward)\n"
    "  --num_executions N     timed passes, N >= 1 (default 1)\n"
    "  --warmup N             untimed passes before the timed ones, N >= 0 (default 0)\n"
    "  --cpu_threads N        threads of the runtime's pool, 1 to 256, or -1 for its own default (default -1)\n"
    "  --block N              with several models: passes per model per turn, N >= 1 (default 1)\n"
    "  --order_seed S         with several models: shuffle their order every turn, seeded with S; 0 keeps the\n"
    "                         order of the --model_path flags (default 0)\n"
    "  --output_path P        write output 0 as raw float32 to P, with one --model_path only (default none)\n"
    "  --etdump_path P        trace every pass and write ExecuTorch's ETDump (per-operator times) to P, with one\n"
    "                         --model_path only (default none; tracing slows the passes it times)\n"
    "  --planned_offset B     place planned memory B bytes past a 64-byte boundary, 0 <= B < 64 (default 0)\n"
    "  --workspace_sharing M  XNNPACK workspace sharing: 0 disabled, 1 per model, 2 global (default 1)\n"
    "  -h, --help             print this text and exit\n";

// Reads `value` as a whole decimal integer in [lo, hi] into `out`; prints one error line and returns false
// otherwise ("3x", "abc", "" and " 3" are not integers; atoi had read them as 3, 0, 0 and 3).
bool parse_int(const std::string& flag, const std::string& value, long long lo, long long hi, long long& out,
               const char* range) {
  const char* text = value.c_str();
  char* end = nullptr;
  errno = 0;
  long long v = value.empty() || std::isspace(static_cast<unsigned char>(value[0])) ? 0 : std::strtoll(text, &end, 10);
  if (end == nullptr || end == text || *end != '\0') {
    std::fprintf(stderr, "pte_runner: error: %s '%s' is not an integer: give %s\n", flag.c_str(), value.c_str(), range);
    return false;
  }
  if (errno == ERANGE || v < lo || v > hi) {
    std::fprintf(stderr, "pte_runner: error: %s %s is out of range: give %s\n", flag.c_str(), value.c_str(), range);
    return false;
  }
  out = v;
  return true;
}

template <typename T>
bool parse_into(const std::string& flag, const std::string& value, long long lo, long long hi, T& out,
                const char* range) {
  long long v = 0;
  if (!parse_int(flag, value, lo, hi, v, range)) return false;
  out = static_cast<T>(v);
  return true;
}

// Returns 0 to run, 2 on a bad command line (one error line printed), -1 after printing the usage (--help).
int parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "-h") == 0 || std::strcmp(argv[i], "--help") == 0) {
      std::fputs(kUsage, stdout);
      return -1;
    }
  }
  constexpr long long kIntMax = std::numeric_limits<int>::max();
  // Every flag once: its name and what its value sets (false after printing one error line).
  using Setter = std::function<bool(const std::string& flag, const std::string& value)>;
  const std::pair<std::string, Setter> kFlags[] = {
      {"--model_path", [&](auto&, auto& v) { o.model_paths.push_back(v); return true; }},
      {"--method_name", [&](auto&, auto& v) { o.method_name = v; return true; }},
      {"--output_path", [&](auto&, auto& v) { o.output_path = v; return true; }},
      {"--etdump_path", [&](auto&, auto& v) { o.etdump_path = v; return true; }},
      {"--num_executions",
       [&](auto& f, auto& v) { return parse_into(f, v, 1, kIntMax, o.num_executions, "a whole number >= 1"); }},
      {"--warmup", [&](auto& f, auto& v) { return parse_into(f, v, 0, kIntMax, o.warmup, "a whole number >= 0"); }},
      {"--block", [&](auto& f, auto& v) { return parse_into(f, v, 1, kIntMax, o.block, "a whole number >= 1"); }},
      {"--planned_offset",
       [&](auto& f, auto& v) {
         return parse_into(f, v, 0, static_cast<long long>(kAlign) - 1, o.planned_offset, "a byte count in [0, 64)");
       }},
      {"--workspace_sharing",
       [&](auto& f, auto& v) {
         return parse_into(f, v, 0, 2, o.workspace_sharing, "0 (disabled), 1 (per model) or 2 (global)");
       }},
      {"--order_seed",
       [&](auto& f, auto& v) {
         return parse_into(f, v, 0, std::numeric_limits<unsigned>::max(), o.order_seed,
                           "a whole number from 0 (the flags' order) to 4294967295");
       }},
      {"--cpu_threads",
       [&](auto& f, auto& v) {
         constexpr char kRange[] = "1 to 256 threads (the limit), or -1 for the runtime's default";
         long long threads = 0;
         if (!parse_int(f, v, -1, kMaxCpuThreads, threads, kRange)) return false;
         if (threads == 0) {
           std::fprintf(stderr, "pte_runner: error: --cpu_threads 0 is out of range: give %s\n", kRange);
           return false;
         }
         o.cpu_threads = static_cast<int>(threads);
         return true;
       }},
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    if (arg.empty() || arg[0] != '-') {
      std::fprintf(stderr, "pte_runner: error: unexpected argument '%s': give the model as --model_path %s "
                           "(see --help)\n", arg.c_str(), arg.c_str());
      return 2;
    }
    auto eq = arg.find('=');
    bool has_value = eq != std::string::npos;
    if (has_value) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    auto flag = std::find_if(std::begin(kFlags), std::end(kFlags), [&](const auto& f) { return f.first == arg; });
    if (flag == std::end(kFlags)) {
      std::fprintf(stderr, "pte_runner: error: unknown flag %s (see --help for the flags; the input shapes come "
                           "from the .pte)\n", arg.c_str());
      return 2;
    }
    if (!has_value) {
      if (i + 1 == argc) {
        std::fprintf(stderr, "pte_runner: error: %s needs a value (see --help)\n", arg.c_str());
        return 2;
      }
      value = argv[++i];
    }
    if (!flag->second(arg, value)) return 2;
  }
  if (o.model_paths.empty()) {
    std::fprintf(stderr, "pte_runner: error: --model_path is required (see --help)\n");
    return 2;
  }
  for (const auto& [flag, path] : {std::pair<const char*, std::string&>{"--output_path", o.output_path},
                                    {"--etdump_path", o.etdump_path}}) {
    if (!path.empty() && o.model_paths.size() > 1) {
      std::fprintf(stderr, "pte_runner: error: %s takes one --model_path\n", flag);
      return 2;
    }
  }
  return 0;
}

// Deterministic, finite inputs: float tensors get a small ramp in [-1, 1), integer tensors zeros.
void fill_input(void* data, size_t nbytes, ScalarType t) {
  std::memset(data, 0, nbytes);
  if (t != ScalarType::Float) return;
  float* f = static_cast<float*>(data);
  size_t n = nbytes / sizeof(float);
  for (size_t i = 0; i < n; ++i) f[i] = static_cast<float>(i % 97) / 48.5f - 1.0f;
}

using Buffer = std::unique_ptr<uint8_t, decltype(&std::free)>;

Buffer aligned_buffer(size_t size) {
  size_t rounded = (size + kAlign - 1) / kAlign * kAlign;
  return Buffer(static_cast<uint8_t*>(std::aligned_alloc(kAlign, rounded ? rounded : kAlign)), &std::free);
}

// One loaded method with everything it points into: its program, memory and input tensors.
struct Model {
  std::string path;
  std::optional<FileDataLoader> loader;
  std::optional<Program> program;
  std::vector<Buffer> planned;
  std::vector<Span<uint8_t>> spans;
  std::unique_ptr<HierarchicalAllocator> planned_allocator;
  std::vector<uint8_t> method_pool = std::vector<uint8_t>(kPoolBytes), temp_pool = std::vector<uint8_t>(kPoolBytes);
  std::unique_ptr<MemoryAllocator> method_allocator, temp_allocator;
  std::unique_ptr<MemoryManager> memory_manager;
  std::unique_ptr<executorch::etdump::ETDumpGen> tracer;  // with --etdump_path
  std::optional<Method> method;
  std::vector<std::unique_ptr<uint8_t[]>> input_data;
  std::vector<std::unique_ptr<TensorImpl>> input_impls;
  std::vector<std::vector<TensorImpl::SizesType>> input_sizes;
  std::vector<std::vector<TensorImpl::DimOrderType>> input_dim_orders;
  std::vector<size_t> input_indices;
  double load_ms = 0.0;
  std::vector<double> times_ms;

  // set_input copies into the input's planned buffer, which later activations of a multi-partition program
  // may reuse: set the inputs again before every execution (outside the timed region).
  bool set_inputs() {
    for (size_t k = 0; k < input_indices.size(); ++k) {
      if (method->set_input(EValue(executorch::aten::Tensor(input_impls[k].get())), input_indices[k]) != Error::Ok) {
        return false;
      }
    }
    return true;
  }
};

// Loads `m.path`; returns an error message, empty on success.
std::string load(Model& m, const Options& opt) {
  double t0 = now_ms();
  Result<FileDataLoader> loader = FileDataLoader::from(m.path.c_str());
  if (!loader.ok()) return "cannot open " + m.path;
  m.loader.emplace(std::move(loader.get()));
  Result<Program> program = Program::load(&*m.loader);
  if (!program.ok()) return m.path + " is not a valid .pte program";
  m.program.emplace(std::move(program.get()));
  Result<MethodMeta> meta = m.program->method_meta(opt.method_name.c_str());
  if (!meta.ok()) return "no method " + opt.method_name + " in " + m.path;

  // Planned memory: one buffer per id, sized from the program, cache-line aligned (as ExecuTorch's own
  // runners allocate it; the XNNPACK delegate and the kernels run slower on misaligned tensors).
  for (size_t id = 0; id < meta->num_memory_planned_buffers(); ++id) {
    size_t size = static_cast<size_t>(meta->memory_planned_buffer_size(id).get());
    m.planned.push_back(aligned_buffer(size + static_cast<size_t>(opt.planned_offset)));
    if (!m.planned.back()) return "out of memory for the planned buffers";
    m.spans.emplace_back(m.planned.back().get() + opt.planned_offset, size);
  }
  m.planned_allocator = std::make_unique<HierarchicalAllocator>(Span<Span<uint8_t>>(m.spans.data(), m.spans.size()));
  m.method_allocator = std::make_unique<MemoryAllocator>(m.method_pool.size(), m.method_pool.data());
  m.temp_allocator = std::make_unique<MemoryAllocator>(m.temp_pool.size(), m.temp_pool.data());
  m.memory_manager = std::make_unique<MemoryManager>(m.method_allocator.get(), m.planned_allocator.get(),
                                                     m.temp_allocator.get());
  if (!opt.etdump_path.empty()) m.tracer = std::make_unique<executorch::etdump::ETDumpGen>();
  Result<Method> method = m.program->load_method(opt.method_name.c_str(), m.memory_manager.get(), m.tracer.get());
  if (!method.ok()) {
    char code[16];
    std::snprintf(code, sizeof code, "0x%x", static_cast<int>(method.error()));
    return "loading method failed (" + std::string(code) + ")";
  }
  m.method.emplace(std::move(method.get()));

  // Inputs: tensors allocated here, filled deterministically.
  for (size_t i = 0; i < m.method->inputs_size(); ++i) {
    auto tag = meta->input_tag(i);
    if (!tag.ok() || tag.get() != executorch::runtime::Tag::Tensor) continue;
    auto tmeta = meta->input_tensor_meta(i);
    if (!tmeta.ok()) return "cannot read input tensor metadata";
    auto sizes = tmeta->sizes();
    auto dim_order = tmeta->dim_order();
    m.input_sizes.emplace_back(sizes.begin(), sizes.end());
    m.input_dim_orders.emplace_back(dim_order.begin(), dim_order.end());
    size_t nbytes = tmeta->nbytes();
    m.input_data.emplace_back(new uint8_t[nbytes]);
    fill_input(m.input_data.back().get(), nbytes, tmeta->scalar_type());
    m.input_impls.emplace_back(new TensorImpl(tmeta->scalar_type(), static_cast<ssize_t>(m.input_sizes.back().size()),
                                              m.input_sizes.back().data(), m.input_data.back().get(),
                                              m.input_dim_orders.back().data()));
    m.input_indices.push_back(i);
  }
  if (!m.set_inputs()) return "set_input failed";
  m.load_ms = now_ms() - t0;
  return "";
}

// Writes `size` bytes to `path` through `path`.tmp and a rename, so that `path` is whole or absent.
bool write_atomically(const std::string& path, const void* data, size_t size) {
  std::string tmp = path + ".tmp";
  FILE* fp = std::fopen(tmp.c_str(), "wb");
  size_t written = fp ? std::fwrite(data, 1, size, fp) : 0;
  bool closed = fp && std::fclose(fp) == 0;
  if (written != size || !closed || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

// Writes the traced passes' ETDump to `path`; returns an error message, empty on success.
std::string write_etdump(Model& m, const std::string& path) {
  executorch::etdump::ETDumpResult dump = m.tracer->get_etdump_data();
  if (dump.buf == nullptr || dump.size == 0) return "the event tracer recorded nothing for " + path;
  bool written = write_atomically(path, dump.buf, dump.size);
  std::free(dump.buf);
  return written ? "" : "cannot write " + path;
}

// Prints the model's output summary and writes output 0 to `output_path` (atomically) if given.
int report_outputs(Model& m, const std::string& output_path) {
  std::vector<EValue> outputs(m.method->outputs_size());
  if (m.method->get_outputs(outputs.data(), outputs.size()) != Error::Ok) return fail("get_outputs failed");
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].isTensor()) continue;
    auto t = outputs[i].toTensor();
    if (t.scalar_type() != ScalarType::Float) {
      std::printf("Output %zu: numel=%zd dtype=%d\n", i, static_cast<ssize_t>(t.numel()),
                  static_cast<int>(t.scalar_type()));
      continue;
    }
    const float* f = t.const_data_ptr<float>();
    double max_abs = 0.0;
    bool finite = true;
    for (ssize_t k = 0; k < t.numel(); ++k) {
      if (!std::isfinite(f[k])) finite = false;
      else if (std::fabs(f[k]) > max_abs) max_abs = std::fabs(f[k]);
    }
    std::printf("Output %zu: numel=%zd max_abs=%g finite=%d first=[", i, static_cast<ssize_t>(t.numel()), max_abs,
                finite ? 1 : 0);
    for (ssize_t k = 0; k < t.numel() && k < 5; ++k) std::printf(k ? ", %g" : "%g", f[k]);
    std::printf("]\n");
    if (i == 0 && !output_path.empty() &&
        !write_atomically(output_path, f, sizeof(float) * static_cast<size_t>(t.numel()))) {
      return fail("cannot write " + output_path);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (int code = parse(argc, argv, opt); code != 0) return code < 0 ? 0 : code;
  if (!opt.etdump_path.empty()) {  // before the passes, not after them
    std::string tmp = opt.etdump_path + ".tmp";
    FILE* probe = std::fopen(tmp.c_str(), "wb");
    if (probe == nullptr) return fail("cannot write " + opt.etdump_path + ": give a path in a writable folder", 2);
    std::fclose(probe);
    std::remove(tmp.c_str());
  }
  executorch::runtime::runtime_init();
  register_call_marks();
  if (!clcdeploy_set_xnnpack_workspace_sharing(opt.workspace_sharing)) {
    return fail("the XNNPACK backend did not take workspace sharing mode " + std::to_string(opt.workspace_sharing));
  }
  if (opt.cpu_threads > 0) {
    executorch::extension::threadpool::get_threadpool()->_unsafe_reset_threadpool(
        static_cast<uint32_t>(opt.cpu_threads));
  }

  // Models are held by pointer: a Method points into its Model's allocators, so Models must not move.
  std::vector<std::unique_ptr<Model>> models;
  for (const std::string& path : opt.model_paths) {
    models.push_back(std::make_unique<Model>());
    models.back()->path = path;
    std::string error = load(*models.back(), opt);
    if (!error.empty()) return fail(error);
    if (opt.model_paths.size() == 1) {  // executor_runner's output, each line as soon as it is true
      std::printf("Model loaded in %f ms.\n", models.back()->load_ms);
      std::fflush(stdout);
    }
  }

  const bool single = models.size() == 1;
  // Every model in turn, `block` passes at a time, so that all models see the same machine load (block 1:
  // each pass starts with the caches the other models left; larger blocks: the model's own, as when an app
  // runs one model repeatedly).
  for (int i = 0; i < opt.warmup; ++i) {
    for (auto& m : models) {
      if (!m->set_inputs()) return fail("set_input failed");
      if (m->method->execute() != Error::Ok) return fail("warm-up execution of " + m->path + " failed");
    }
  }
  std::vector<size_t> order(models.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 shuffler(opt.order_seed);
  try {  // up front, so that no allocation happens among the timed passes
    for (auto& m : models) m->times_ms.reserve(opt.num_executions);
  } catch (const std::bad_alloc&) {
    return fail("no memory to record " + std::to_string(opt.num_executions) +
                " timings per model: give a smaller --num_executions", 2);
  }
  mark_passes();  // nothing between the marks but the passes: the instruction counter divides by their number
  for (int done = 0; done < opt.num_executions; done += opt.block) {
    if (opt.order_seed != 0 && !single) {
      std::shuffle(order.begin(), order.end(), shuffler);
      std::printf("Turn %d order:", done / opt.block + 1);
      for (size_t k : order) std::printf(" %zu", k + 1);
      std::printf("\n");
    }
    for (size_t k : order) {
      Model& m = *models[k];
      for (int i = done; i < std::min(done + opt.block, opt.num_executions); ++i) {
        if (!m.set_inputs()) return fail("set_input failed");
        double start = now_ms();
        Error err = m.method->execute();
        double elapsed = now_ms() - start;
        if (err != Error::Ok) {
          char code[16];
          std::snprintf(code, sizeof code, "0x%x", static_cast<int>(err));
          return fail("execution " + std::to_string(i + 1) + " of " + m.path + " failed (" + code + ")");
        }
        m.times_ms.push_back(elapsed);
        if (single) std::printf("Iteration %d of %d: %f ms\n", i + 1, opt.num_executions, elapsed);
      }
    }
  }

  mark_passes();

  for (size_t k = 0; k < models.size(); ++k) {
    Model& m = *models[k];
    if (!single) {
      std::printf("== Model %zu of %zu: %s\n", k + 1, models.size(), m.path.c_str());
      std::printf("Model loaded in %f ms.\n", m.load_ms);
      for (size_t i = 0; i < m.times_ms.size(); ++i) {
        std::printf("Iteration %zu of %d: %f ms\n", i + 1, opt.num_executions, m.times_ms[i]);
      }
    }
    double total = 0.0;
    for (double t : m.times_ms) total += t;
    std::printf("Model executed successfully %d time(s) in %f ms.\n", opt.num_executions, total);
    int code = report_outputs(m, opt.output_path);
    if (code != 0) return code;
    if (m.tracer) {
      std::string error = write_etdump(m, opt.etdump_path);
      if (!error.empty()) return fail(error);
    }
  }
  return 0;
}
