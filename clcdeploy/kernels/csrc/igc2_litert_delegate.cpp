// LiteRT (TensorFlow Lite) binding of the fused IGC kernel: an external delegate that claims the custom op
// `custom_call.CLCDEPLOY_IGC2` (NHWC X (N, H, W, C) float, packed W (9, 2, C), B (C,); custom options
// "stride=<1|2>") and runs the shared core's NHWC path on it. Load it with
// `ai_edge_litert.interpreter.load_delegate(path, {"num_threads": "N"})` (or TfLiteExternalDelegate in C++);
// the interpreter's default XNNPACK delegate still takes every other op.
//
// Why a delegate and not a registered custom op: ai-edge-litert's registerer hook needs
// tflite::MutableOpResolver::AddCustom, which its libraries do not export. A delegate needs only the C
// structs of tensorflow/lite/c/common.h (Debian's libtensorflow-lite-dev 2.14 headers); it links nothing
// from LiteRT. It sets kTfLiteDelegateFlagsAllowDynamicTensors, as the Flex delegate does: without it the
// interpreter prepares the whole graph, and fails on the still unresolved custom op, before asking us.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "igc2.h"
#include "row_pool.h"
#include "tensorflow/lite/builtin_ops.h"
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/delegates/external/external_delegate_interface.h"

namespace clcdeploy {
namespace {

constexpr const char* kCustomCode = "custom_call.CLCDEPLOY_IGC2";  // the converter's name for a custom_call

struct Options {
  int num_threads = 1;
  std::unique_ptr<RowPool> pool;  // num_threads - 1 helpers, started with the delegate
};

struct Igc2Node {
  int x, w, b, y;
  int stride;
};

// One delegated partition: its IGC2 nodes in execution order. A tensor produced and consumed inside the
// partition (two chained IGC2 nodes) is not a partition output, so the runtime does not allocate it: such
// tensors live in buffers of our own.
struct Partition {
  std::vector<Igc2Node> nodes;
  std::vector<int> internal;  // tensor indices
  std::vector<std::vector<float>> buffers;
  RowPool* pool = nullptr;  // the delegate's

  int internal_slot(int tensor) const {
    for (size_t i = 0; i < internal.size(); ++i) {
      if (internal[i] == tensor) return int(i);
    }
    return -1;
  }
};

int parse_stride(const void* data, size_t size) {
  const std::string text(static_cast<const char*>(data), size);
  const size_t at = text.find("stride=");
  return at == std::string::npos ? -1 : std::atoi(text.c_str() + at + 7);
}

bool is_igc2(TfLiteContext* context, const TfLiteNode* node, const TfLiteRegistration* registration) {
  if (registration->builtin_code != kTfLiteBuiltinCustom || registration->custom_name == nullptr ||
      std::strcmp(registration->custom_name, kCustomCode) != 0 || node->inputs->size != 3 ||
      node->outputs->size != 1) {
    return false;
  }
  for (int i = 0; i < 3; ++i) {
    if (context->tensors[node->inputs->data[i]].type != kTfLiteFloat32) return false;
  }
  return context->tensors[node->outputs->data[0]].type == kTfLiteFloat32;
}

Igc2Shape shape_of(const TfLiteTensor& x, int stride) {
  const int* d = x.dims->data;  // NHWC
  return {d[0], d[3], d[1], d[2], stride, (d[1] - 1) / stride + 1, (d[2] - 1) / stride + 1};
}

void* partition_init(TfLiteContext* context, const char* buffer, size_t) {
  const auto* params = reinterpret_cast<const TfLiteDelegateParams*>(buffer);
  auto* partition = new Partition;
  partition->pool = static_cast<const Options*>(params->delegate->data_)->pool.get();
  for (int i = 0; i < params->nodes_to_replace->size; ++i) {
    TfLiteNode* node;
    TfLiteRegistration* registration;
    context->GetNodeAndRegistration(context, params->nodes_to_replace->data[i], &node, &registration);
    partition->nodes.push_back({node->inputs->data[0], node->inputs->data[1], node->inputs->data[2],
                                node->outputs->data[0],
                                parse_stride(node->custom_initial_data, node->custom_initial_data_size)});
  }
  for (const Igc2Node& n : partition->nodes) {
    bool output = false;
    for (int j = 0; j < params->output_tensors->size; ++j) output |= params->output_tensors->data[j] == n.y;
    if (!output) partition->internal.push_back(n.y);
  }
  partition->buffers.resize(partition->internal.size());
  return partition;
}

void partition_free(TfLiteContext*, void* buffer) { delete static_cast<Partition*>(buffer); }

TfLiteStatus partition_prepare(TfLiteContext* context, TfLiteNode* node) {
  auto* partition = static_cast<Partition*>(node->user_data);
  for (const Igc2Node& n : partition->nodes) {
    const TfLiteTensor& x = context->tensors[n.x];  // static model shapes: dims are known for every tensor
    if (n.stride != 1 && n.stride != 2) {
      context->ReportError(context, "CLCDEPLOY_IGC2: stride must be 1 or 2, not %d", n.stride);
      return kTfLiteError;
    }
    if (x.dims->size != 4 || x.dims->data[3] % 2) {
      context->ReportError(context, "CLCDEPLOY_IGC2: X must be NHWC with an even channel count");
      return kTfLiteError;
    }
    const Igc2Shape s = shape_of(x, n.stride);
    // Shapes, not sizes: an unpacked (C, 2, 3, 3) weight has as many bytes and would compute nonsense.
    const TfLiteIntArray* w = context->tensors[n.w].dims;
    const TfLiteIntArray* b = context->tensors[n.b].dims;
    if (w->size != 3 || w->data[0] != 9 || w->data[1] != 2 || w->data[2] != s.channels || b->size != 1 ||
        b->data[0] != s.channels || context->tensors[n.w].type != kTfLiteFloat32 ||
        context->tensors[n.b].type != kTfLiteFloat32) {
      context->ReportError(context, "CLCDEPLOY_IGC2: W must be (9, 2, C) and B (C,)");
      return kTfLiteError;
    }
    const int slot = partition->internal_slot(n.y);
    if (slot >= 0) {
      partition->buffers[slot].resize(size_t(s.n * s.out_h * s.out_w * s.channels));
      continue;
    }
    TfLiteIntArray* out = TfLiteIntArrayCreate(4);
    out->data[0] = int(s.n), out->data[1] = int(s.out_h), out->data[2] = int(s.out_w), out->data[3] = int(s.channels);
    if (context->ResizeTensor(context, &context->tensors[n.y], out) != kTfLiteOk) return kTfLiteError;
  }
  return kTfLiteOk;
}

struct RowsCall {
  const float *x, *w, *b;
  float* y;
  Igc2Shape shape;
};

void run_call_rows(const void* context, int64_t row_begin, int64_t row_end) {
  const auto* call = static_cast<const RowsCall*>(context);
  igc2_nhwc_rows(call->x, call->w, call->b, call->y, call->shape, row_begin, row_end);
}

TfLiteStatus partition_invoke(TfLiteContext* context, TfLiteNode* node) {
  auto* partition = static_cast<Partition*>(node->user_data);
  for (const Igc2Node& n : partition->nodes) {
    const Igc2Shape s = shape_of(context->tensors[n.x], n.stride);
    const int xs = partition->internal_slot(n.x), ys = partition->internal_slot(n.y);
    const float* x = xs >= 0 ? partition->buffers[xs].data() : context->tensors[n.x].data.f;
    float* y = ys >= 0 ? partition->buffers[ys].data() : context->tensors[n.y].data.f;
    const RowsCall call{x, context->tensors[n.w].data.f, context->tensors[n.b].data.f, y, s};
    partition->pool->run(s.n * s.out_h, run_call_rows, &call);
  }
  return kTfLiteOk;
}

TfLiteStatus delegate_prepare(TfLiteContext* context, TfLiteDelegate* delegate) {
  TfLiteIntArray* plan;
  if (context->GetExecutionPlan(context, &plan) != kTfLiteOk) return kTfLiteError;
  std::vector<int> claimed;
  for (int i = 0; i < plan->size; ++i) {
    TfLiteNode* node;
    TfLiteRegistration* registration;
    if (context->GetNodeAndRegistration(context, plan->data[i], &node, &registration) != kTfLiteOk) {
      return kTfLiteError;
    }
    if (is_igc2(context, node, registration)) claimed.push_back(plan->data[i]);
  }
  if (claimed.empty()) return kTfLiteOk;
  TfLiteRegistration kernel{};
  kernel.init = partition_init;
  kernel.free = partition_free;
  kernel.prepare = partition_prepare;
  kernel.invoke = partition_invoke;
  kernel.custom_name = "ClcdeployIgc2";
  kernel.version = 1;
  TfLiteIntArray* nodes = TfLiteIntArrayCreate(int(claimed.size()));
  for (size_t i = 0; i < claimed.size(); ++i) nodes->data[i] = claimed[i];
  const TfLiteStatus status = context->ReplaceNodeSubsetsWithDelegateKernels(context, kernel, nodes, delegate);
  TfLiteIntArrayFree(nodes);
  return status;
}

}  // namespace
}  // namespace clcdeploy

// TfLiteIntArrayCreate/Free live in LiteRT's common.cc, which this library does not link (the wheel does not
// export them): local definitions with the same layout (int size; int data[]) and malloc/free, as there; hidden,
// so they never stand in for another library's.
extern "C" {
__attribute__((visibility("hidden"))) TfLiteIntArray* TfLiteIntArrayCreate(int size) {
  auto* array = static_cast<TfLiteIntArray*>(std::malloc(sizeof(int) * (size + 1)));
  array->size = size;
  return array;
}

__attribute__((visibility("hidden"))) void TfLiteIntArrayFree(TfLiteIntArray* array) { std::free(array); }

// Options (load_delegate's dict): num_threads (default 1). Unknown keys and bad values are reported.
TFL_EXTERNAL_DELEGATE_EXPORT TfLiteDelegate* tflite_plugin_create_delegate(const char* const* keys,
                                                                           const char* const* values,
                                                                           size_t count,
                                                                           void (*report_error)(const char*)) {
  auto* options = new clcdeploy::Options;
  for (size_t i = 0; i < count; ++i) {
    const int threads = std::strcmp(keys[i], "num_threads") == 0 ? std::atoi(values[i]) : -1;
    if (threads < 1) {
      if (report_error) {
        report_error("clcdeploy IGC2 delegate: the only option is num_threads (an integer >= 1)");
      }
      delete options;
      return nullptr;
    }
    options->num_threads = threads;
  }
  options->pool = std::make_unique<clcdeploy::RowPool>(options->num_threads - 1);
  auto* delegate = new TfLiteDelegate{};
  delegate->data_ = options;
  delegate->Prepare = clcdeploy::delegate_prepare;
  delegate->flags = kTfLiteDelegateFlagsAllowDynamicTensors;
  return delegate;
}

TFL_EXTERNAL_DELEGATE_EXPORT void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate) {
  if (delegate == nullptr) return;  // ai-edge-litert also destroys a delegate whose creation failed
  delete static_cast<clcdeploy::Options*>(delegate->data_);
  delete delegate;
}
}
