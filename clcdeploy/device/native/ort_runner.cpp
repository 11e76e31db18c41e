// Minimal ONNX Runtime runner for benchmarks on arm64 devices without Python (Android phones): times one .onnx on
// ONNX Runtime's CPU provider and prints the lines of ExecuTorch's executor_runner, as clcdeploy's pte_runner does:
//   Model loaded in %f ms.
//   Iteration %d of %d: %f ms
//   Model executed successfully %d time(s) in %f ms.
//   Output 0: numel=N max_abs=X finite=1 first=[...]
//
// Built against the C/C++ API headers clcdeploy's ONNX Runtime custom op uses and the onnxruntime wheel's aarch64
// library (ort.py), and pushed with them (bundle.py). The C API is versioned, so headers older than the library
// work. Inputs: every float input gets the ramp pte_runner uses (i % 97 / 48.5 - 1), dynamic dimensions 1.
//
// Flags: --model_path P --num_executions N --warmup N --cpu_threads N --custom_op_library P (--help). A bad
// command line gets one error line and exit code 2; a model ONNX Runtime refuses, one line and exit code 1.

#include <onnxruntime_cxx_api.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string model_path;
  std::string custom_op_library;
  long num_executions = 1;
  long warmup = 0;
  long cpu_threads = -1;  // ONNX Runtime's own choice
};

constexpr char kUsage[] =
    "usage: ort_runner --model_path P [flags]\n"
    "\n"
    "Times an ONNX model on ONNX Runtime's CPU provider and prints executor_runner's lines. Float inputs get a fixed\n"
    "ramp in [-1, 1); dynamic dimensions are 1. Flags take their value as `--flag V` or `--flag=V`.\n"
    "\n"
    "  --model_path P         the .onnx to run (required)\n"
    "  --num_executions N     timed passes, N >= 1 (default 1)\n"
    "  --warmup N             untimed passes before the timed ones, N >= 0 (default 0)\n"
    "  --cpu_threads N        intra-op threads, 1 to 256, or -1 for the runtime's default (default -1)\n"
    "  --custom_op_library P  register the custom-op library P first (default none)\n"
    "  -h, --help             print this text and exit\n";

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

int usage_error(const std::string& what) {
  std::fprintf(stderr, "ort_runner: error: %s (see --help)\n", what.c_str());
  return 2;
}

// A whole decimal number in [lo, hi]; false if `text` is anything else.
bool whole_number(const std::string& text, long lo, long hi, long& out) {
  if (text.empty() || !(std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '-')) return false;
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text.c_str(), &end, 10);
  if (*end != '\0' || errno == ERANGE || v < lo || v > hi) return false;
  out = v;
  return true;
}

// Returns 0 to run, 2 on a bad command line (one error line printed), -1 after printing the usage.
int parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return -1;
    }
    auto eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return usage_error(arg + " needs a value");
    }
    if (arg == "--model_path") {
      o.model_path = value;
    } else if (arg == "--custom_op_library") {
      o.custom_op_library = value;
    } else if (arg == "--num_executions") {
      if (!whole_number(value, 1, 1L << 30, o.num_executions)) return usage_error("--num_executions must be >= 1");
    } else if (arg == "--warmup") {
      if (!whole_number(value, 0, 1L << 30, o.warmup)) return usage_error("--warmup must be >= 0");
    } else if (arg == "--cpu_threads") {
      if (!whole_number(value, -1, 256, o.cpu_threads) || o.cpu_threads == 0) {
        return usage_error("--cpu_threads must be 1 to 256, or -1 for the runtime's default");
      }
    } else {
      return usage_error("unknown flag " + arg);
    }
  }
  return o.model_path.empty() ? usage_error("--model_path is required") : 0;
}

// One input: its name, shape (dynamic dimensions 1) and data.
struct Input {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
};

int run(const Options& opt) {
  // A benchmark sends nothing anywhere: ONNX Runtime's Linux builds have Microsoft's 1DS telemetry, which the
  // variable keeps from starting (it would write a device id and an event store under $XDG_CACHE_HOME or /tmp).
  setenv("ORT_DISABLE_TELEMETRY", "1", 1);
  Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "ort_runner");
  env.DisableTelemetryEvents();
  Ort::SessionOptions options;
  if (opt.cpu_threads > 0) options.SetIntraOpNumThreads(static_cast<int>(opt.cpu_threads));
  if (!opt.custom_op_library.empty()) options.RegisterCustomOpsLibrary(opt.custom_op_library.c_str());
  double t0 = now_ms();
  Ort::Session session(env, opt.model_path.c_str(), options);
  std::printf("Model loaded in %f ms.\n", now_ms() - t0);
  std::fflush(stdout);

  Ort::AllocatorWithDefaultOptions allocator;
  std::vector<Input> inputs(session.GetInputCount());
  std::vector<Ort::Value> values;
  Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  for (size_t i = 0; i < inputs.size(); ++i) {
    Ort::TypeInfo type = session.GetInputTypeInfo(i);  // owns what `info` reads
    auto info = type.GetTensorTypeAndShapeInfo();
    if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
      std::fprintf(stderr, "ort_runner: error: input %zu is not float32\n", i);
      return 1;
    }
    inputs[i].name = session.GetInputNameAllocated(i, allocator).get();
    inputs[i].shape = info.GetShape();
    size_t n = 1;
    for (int64_t& d : inputs[i].shape) n *= static_cast<size_t>(d = d > 0 ? d : 1);
    inputs[i].data.resize(n);
    for (size_t k = 0; k < n; ++k) inputs[i].data[k] = static_cast<float>(k % 97) / 48.5f - 1.0f;
    values.push_back(Ort::Value::CreateTensor<float>(memory, inputs[i].data.data(), n, inputs[i].shape.data(),
                                                     inputs[i].shape.size()));
  }
  std::vector<const char*> input_names, output_names;
  for (const Input& input : inputs) input_names.push_back(input.name.c_str());
  std::vector<std::string> outputs(session.GetOutputCount());
  for (size_t i = 0; i < outputs.size(); ++i) {
    outputs[i] = session.GetOutputNameAllocated(i, allocator).get();
    output_names.push_back(outputs[i].c_str());
  }
  auto pass = [&] {
    return session.Run(Ort::RunOptions{nullptr}, input_names.data(), values.data(), values.size(),
                       output_names.data(), output_names.size());
  };
  for (long i = 0; i < opt.warmup; ++i) pass();
  double total = 0.0;
  std::vector<Ort::Value> result;
  for (long i = 0; i < opt.num_executions; ++i) {
    double start = now_ms();
    result = pass();
    double elapsed = now_ms() - start;
    total += elapsed;
    std::printf("Iteration %ld of %ld: %f ms\n", i + 1, opt.num_executions, elapsed);
  }
  std::printf("Model executed successfully %ld time(s) in %f ms.\n", opt.num_executions, total);
  for (size_t i = 0; i < result.size(); ++i) {
    auto info = result[i].GetTensorTypeAndShapeInfo();
    if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) continue;
    const float* f = result[i].GetTensorData<float>();
    size_t n = info.GetElementCount();
    double max_abs = 0.0;
    bool finite = true;
    for (size_t k = 0; k < n; ++k) {
      if (!std::isfinite(f[k])) finite = false;
      else max_abs = std::fmax(max_abs, std::fabs(f[k]));
    }
    std::printf("Output %zu: numel=%zu max_abs=%g finite=%d first=[", i, n, max_abs, finite ? 1 : 0);
    for (size_t k = 0; k < n && k < 5; ++k) std::printf(k ? ", %g" : "%g", f[k]);
    std::printf("]\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (int code = parse(argc, argv, opt); code != 0) return code < 0 ? 0 : code;
  try {
    return run(opt);
  } catch (const Ort::Exception& e) {
    std::fprintf(stderr, "ort_runner: error: %s\n", e.what());
    return 1;
  }
}
