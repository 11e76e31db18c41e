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

#include <executorch/extension/data_loader/file_data_loader.h>
#include <executorch/runtime/core/evalue.h>
#include <executorch/runtime/core/exec_aten/exec_aten.h>
#include <executorch/runtime/executor/method.h>
#include <executorch/runtime/executor/program.h>
#include <executorch/runtime/platform/runtime.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

// threadpool.h is not shipped in the wheel's include/; these two symbols are exported by
// libexecutorch_threadpool.so (a member call needs only the mangled name, not the class layout).
namespace executorch::extension::threadpool {
class ThreadPool {
 public:
  bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool

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
  std::string model_path;
  std::string method_name = "forward";
  std::string output_path;
  int num_executions = 1;
  int warmup = 0;
  int cpu_threads = -1;
};

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

int fail(const char* what, int code = 1) {
  std::fprintf(stderr, "pte_runner: error: %s\n", what);
  return code;
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    auto eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      std::fprintf(stderr, "pte_runner: error: %s needs a value\n", arg.c_str());
      return false;
    }
    if (arg == "--model_path") o.model_path = value;
    else if (arg == "--method_name") o.method_name = value;
    else if (arg == "--output_path") o.output_path = value;
    else if (arg == "--num_executions") o.num_executions = std::atoi(value.c_str());
    else if (arg == "--warmup") o.warmup = std::atoi(value.c_str());
    else if (arg == "--cpu_threads") o.cpu_threads = std::atoi(value.c_str());
    else {
      std::fprintf(stderr, "pte_runner: error: unknown flag %s\n", arg.c_str());
      return false;
    }
  }
  if (o.model_path.empty()) {
    std::fprintf(stderr, "pte_runner: error: --model_path is required\n");
    return false;
  }
  return o.num_executions >= 1 && o.warmup >= 0;
}

// Deterministic, finite inputs: float tensors get a small ramp in [-1, 1), integer tensors zeros.
void fill_input(void* data, size_t nbytes, ScalarType t) {
  std::memset(data, 0, nbytes);
  if (t != ScalarType::Float) return;
  float* f = static_cast<float*>(data);
  size_t n = nbytes / sizeof(float);
  for (size_t i = 0; i < n; ++i) f[i] = static_cast<float>(i % 97) / 48.5f - 1.0f;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (!parse(argc, argv, opt)) return 2;
  executorch::runtime::runtime_init();
  if (opt.cpu_threads > 0) {
    executorch::extension::threadpool::get_threadpool()->_unsafe_reset_threadpool(
        static_cast<uint32_t>(opt.cpu_threads));
  }

  double t0 = now_ms();
  Result<FileDataLoader> loader = FileDataLoader::from(opt.model_path.c_str());
  if (!loader.ok()) return fail(("cannot open " + opt.model_path).c_str());
  Result<Program> program = Program::load(&loader.get());
  if (!program.ok()) return fail("not a valid .pte program");
  Result<MethodMeta> meta = program->method_meta(opt.method_name.c_str());
  if (!meta.ok()) return fail(("no method " + opt.method_name).c_str());

  // Planned memory: one buffer per id, sized from the program, cache-line aligned (as ExecuTorch's own
  // runners allocate it; the XNNPACK delegate and the kernels run slower on misaligned tensors).
  std::vector<std::unique_ptr<uint8_t, decltype(&std::free)>> planned;
  std::vector<Span<uint8_t>> spans;
  for (size_t id = 0; id < meta->num_memory_planned_buffers(); ++id) {
    size_t size = static_cast<size_t>(meta->memory_planned_buffer_size(id).get());
    size_t padded = (size + 63) / 64 * 64;
    planned.emplace_back(static_cast<uint8_t*>(std::aligned_alloc(64, padded ? padded : 64)), &std::free);
    if (!planned.back()) return fail("out of memory for the planned buffers");
    spans.emplace_back(planned.back().get(), size);
  }
  HierarchicalAllocator planned_allocator({spans.data(), spans.size()});
  static uint8_t method_pool[4 * 1024 * 1024];
  static uint8_t temp_pool[4 * 1024 * 1024];
  MemoryAllocator method_allocator(sizeof(method_pool), method_pool);
  MemoryAllocator temp_allocator(sizeof(temp_pool), temp_pool);
  MemoryManager memory_manager(&method_allocator, &planned_allocator, &temp_allocator);
  Result<Method> method = program->load_method(opt.method_name.c_str(), &memory_manager);
  if (!method.ok()) {
    std::fprintf(stderr, "pte_runner: error: loading method failed (0x%x)\n", static_cast<int>(method.error()));
    return 1;
  }

  // Inputs: tensors allocated here, filled deterministically.
  std::vector<std::unique_ptr<uint8_t[]>> input_data;
  std::vector<std::unique_ptr<TensorImpl>> input_impls;
  std::vector<std::vector<TensorImpl::SizesType>> input_sizes;
  std::vector<std::vector<TensorImpl::DimOrderType>> input_dim_orders;
  std::vector<size_t> input_indices;
  for (size_t i = 0; i < method->inputs_size(); ++i) {
    auto tag = meta->input_tag(i);
    if (!tag.ok() || tag.get() != executorch::runtime::Tag::Tensor) continue;
    auto tmeta = meta->input_tensor_meta(i);
    if (!tmeta.ok()) return fail("cannot read input tensor metadata");
    auto sizes = tmeta->sizes();
    auto dim_order = tmeta->dim_order();
    input_sizes.emplace_back(sizes.begin(), sizes.end());
    input_dim_orders.emplace_back(dim_order.begin(), dim_order.end());
    size_t nbytes = tmeta->nbytes();
    input_data.emplace_back(new uint8_t[nbytes]);
    fill_input(input_data.back().get(), nbytes, tmeta->scalar_type());
    input_impls.emplace_back(new TensorImpl(tmeta->scalar_type(), static_cast<ssize_t>(input_sizes.back().size()),
                                            input_sizes.back().data(), input_data.back().get(),
                                            input_dim_orders.back().data()));
    input_indices.push_back(i);
  }
  // set_input copies into the input's planned buffer, which later activations of a multi-partition program
  // may reuse: set the inputs again before every execution (outside the timed region).
  auto set_inputs = [&]() {
    for (size_t k = 0; k < input_indices.size(); ++k) {
      Error err = method->set_input(EValue(executorch::aten::Tensor(input_impls[k].get())), input_indices[k]);
      if (err != Error::Ok) return false;
    }
    return true;
  };
  if (!set_inputs()) return fail("set_input failed");
  std::printf("Model loaded in %f ms.\n", now_ms() - t0);
  std::fflush(stdout);

  for (int i = 0; i < opt.warmup; ++i) {
    if (!set_inputs()) return fail("set_input failed");
    if (method->execute() != Error::Ok) return fail("warm-up execution failed");
  }
  double total = 0.0;
  for (int i = 0; i < opt.num_executions; ++i) {
    if (!set_inputs()) return fail("set_input failed");
    double start = now_ms();
    Error err = method->execute();
    double elapsed = now_ms() - start;
    if (err != Error::Ok) {
      std::fprintf(stderr, "pte_runner: error: execution %d failed (0x%x)\n", i + 1, static_cast<int>(err));
      return 1;
    }
    total += elapsed;
    std::printf("Iteration %d of %d: %f ms\n", i + 1, opt.num_executions, elapsed);
  }
  std::printf("Model executed successfully %d time(s) in %f ms.\n", opt.num_executions, total);

  std::vector<EValue> outputs(method->outputs_size());
  if (method->get_outputs(outputs.data(), outputs.size()) != Error::Ok) return fail("get_outputs failed");
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].isTensor()) continue;
    auto t = outputs[i].toTensor();
    if (t.scalar_type() != ScalarType::Float) {
      std::printf("Output %zu: numel=%zd dtype=%d\n", i, static_cast<ssize_t>(t.numel()), static_cast<int>(t.scalar_type()));
      continue;
    }
    const float* f = t.const_data_ptr<float>();
    double max_abs = 0.0;
    bool finite = true;
    for (ssize_t k = 0; k < t.numel(); ++k) {
      if (!std::isfinite(f[k])) finite = false;
      else if (std::fabs(f[k]) > max_abs) max_abs = std::fabs(f[k]);
    }
    std::printf("Output %zu: numel=%zd max_abs=%g finite=%d first=[", i, static_cast<ssize_t>(t.numel()), max_abs, finite ? 1 : 0);
    for (ssize_t k = 0; k < t.numel() && k < 5; ++k) std::printf(k ? ", %g" : "%g", f[k]);
    std::printf("]\n");
    if (i == 0 && !opt.output_path.empty()) {
      std::string tmp = opt.output_path + ".tmp";
      FILE* fp = std::fopen(tmp.c_str(), "wb");
      if (!fp) return fail(("cannot write " + opt.output_path).c_str());
      size_t n = std::fwrite(f, sizeof(float), static_cast<size_t>(t.numel()), fp);
      std::fclose(fp);
      if (n != static_cast<size_t>(t.numel()) || std::rename(tmp.c_str(), opt.output_path.c_str()) != 0) {
        return fail(("cannot write " + opt.output_path).c_str());
      }
    }
  }
  return 0;
}
