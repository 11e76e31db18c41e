// ONNX Runtime binding of the fused IGC kernel: the custom op `clcdeploy.IGC2` for the CPU execution provider,
// loaded with `SessionOptions.register_custom_ops_library`. Inputs: X (N, C, H, W) float, W packed (9, 2, C),
// B (C,); attribute `stride` (1 or 2); output (N, C, ceil(H/stride), ceil(W/stride)). ORT's CPU provider is
// NCHW, so this binding runs the NCHW path of the shared core.
//
// Built against the ONNX Runtime C/C++ API headers only (no link to libonnxruntime): the runtime hands us its
// API table in RegisterCustomOps. The C API is append-only, so headers of an older release (ORT_API_VERSION)
// work with any newer runtime.
#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#undef ORT_API_MANUAL_INIT

#include <mutex>
#include <string>
#include <vector>

#include "igc2.h"

namespace clcdeploy {
namespace {

constexpr const char* kDomain = "clcdeploy";

struct Igc2Work {
  const float *x, *w, *b;
  float* out;
  Igc2Shape shape;
};

class Igc2Kernel {
 public:
  explicit Igc2Kernel(const OrtKernelInfo* info) {
    stride_ = Ort::ConstKernelInfo(info).GetAttribute<int64_t>("stride");
    if (stride_ != 1 && stride_ != 2) throw Ort::Exception("IGC2: stride must be 1 or 2", ORT_INVALID_ARGUMENT);
  }

  void Compute(OrtKernelContext* raw_context) {
    Ort::KernelContext context(raw_context);
    auto x = context.GetInput(0), w = context.GetInput(1), b = context.GetInput(2);
    const std::vector<int64_t> dims = x.GetTensorTypeAndShapeInfo().GetShape();
    if (dims.size() != 4 || dims[1] % 2) {
      throw Ort::Exception("IGC2: X must be (N, C, H, W) with even C", ORT_INVALID_ARGUMENT);
    }
    Igc2Shape s{dims[0], dims[1], dims[2], dims[3], stride_, (dims[2] - 1) / stride_ + 1, (dims[3] - 1) / stride_ + 1};
    // Shapes, not element counts: an unpacked (C, 2, 3, 3) weight has as many elements and would compute nonsense.
    if (w.GetTensorTypeAndShapeInfo().GetShape() != std::vector<int64_t>{9, 2, s.channels} ||
        b.GetTensorTypeAndShapeInfo().GetShape() != std::vector<int64_t>{s.channels}) {
      throw Ort::Exception("IGC2: W must be (9, 2, C) and B (C,)", ORT_INVALID_ARGUMENT);
    }
    auto out = context.GetOutput(0, {s.n, s.channels, s.out_h, s.out_w});
    Igc2Work work{x.GetTensorData<float>(), w.GetTensorData<float>(), b.GetTensorData<float>(),
                  out.GetTensorMutableData<float>(), s};
    // One task per input channel pair, on the session's intra-op thread pool (inline at one thread).
    context.ParallelFor(
        [](void* data, size_t pair) {
          const auto* job = static_cast<const Igc2Work*>(data);
          igc2_nchw_pairs(job->x, job->w, job->b, job->out, job->shape, int64_t(pair), int64_t(pair) + 1);
        },
        size_t(s.n * s.channels / 2), 0, &work);
  }

 private:
  int64_t stride_;
};

struct Igc2Op : Ort::CustomOpBase<Igc2Op, Igc2Kernel> {
  void* CreateKernel(const OrtApi&, const OrtKernelInfo* info) const { return new Igc2Kernel(info); }
  const char* GetName() const { return "IGC2"; }
  const char* GetExecutionProviderType() const { return "CPUExecutionProvider"; }
  size_t GetInputTypeCount() const { return 3; }
  ONNXTensorElementDataType GetInputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

// Sessions keep pointers to the op and its domain: both live as long as the library.
Ort::CustomOpDomain* shared_domain() {
  static Igc2Op op;
  static Ort::CustomOpDomain* domain = [] {
    auto* d = new Ort::CustomOpDomain(kDomain);
    d->Add(&op);
    return d;
  }();
  return domain;
}

}  // namespace
}  // namespace clcdeploy

extern "C" __attribute__((visibility("default"))) OrtStatus* ORT_API_CALL
RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
  const OrtApi* api = api_base->GetApi(ORT_API_VERSION);
  if (api == nullptr) {  // a runtime older than our headers; version 1 of the API always exists
    return api_base->GetApi(1)->CreateStatus(ORT_FAIL, "clcdeploy IGC2: this ONNX Runtime is older than the "
                                             "C API headers the kernel library was built with");
  }
  Ort::InitApi(api);
  try {
    Ort::UnownedSessionOptions(options).Add(*clcdeploy::shared_domain());
  } catch (const Ort::Exception& e) {
    return api->CreateStatus(e.GetOrtErrorCode(), e.what());
  }
  return nullptr;
}
