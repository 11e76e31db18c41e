// ExecuTorch binding of the fused IGC kernel: registers `clcdeploy::igc2.out` with EXECUTORCH_LIBRARY.
// Accepts contiguous (NCHW) or channels-last (NHWC) float tensors; `out` must have the input's dim order.
// Also exports clcdeploy_set_xnnpack_workspace_sharing for the runners of fused programs.
#include <executorch/extension/kernel_util/make_boxed_from_unboxed_functor.h>
#include <executorch/runtime/backend/interface.h>
#include <executorch/runtime/backend/options.h>
#include <executorch/runtime/core/exec_aten/util/dim_order_util.h>
#include <executorch/runtime/core/exec_aten/util/tensor_util.h>
#include <executorch/runtime/kernel/kernel_includes.h>
#include <executorch/runtime/kernel/thread_parallel_interface.h>

#include "igc2.h"

namespace clcdeploy {
namespace {

using executorch::aten::ScalarType;
using executorch::aten::Tensor;
using executorch::runtime::Error;
using executorch::runtime::KernelRuntimeContext;

Tensor& igc2_out(KernelRuntimeContext& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias,
                 int64_t stride, Tensor& out) {
  ET_KERNEL_CHECK_MSG(ctx, x.dim() == 4 && out.dim() == 4, InvalidArgument, out, "igc2: 4-d tensors only");
  ET_KERNEL_CHECK_MSG(ctx,
                      x.scalar_type() == ScalarType::Float && weight.scalar_type() == ScalarType::Float &&
                          bias.scalar_type() == ScalarType::Float && out.scalar_type() == ScalarType::Float,
                      InvalidArgument, out, "igc2: float32 only");
  ET_KERNEL_CHECK_MSG(ctx, stride == 1 || stride == 2, InvalidArgument, out, "igc2: stride must be 1 or 2");
  Igc2Shape s{x.size(0), x.size(1), x.size(2), x.size(3), stride, 0, 0};
  s.out_h = (s.h - 1) / stride + 1;
  s.out_w = (s.w - 1) / stride + 1;
  // Shapes, not element counts: an unpacked (C, 2, 3, 3) weight has as many elements and would compute nonsense.
  ET_KERNEL_CHECK_MSG(ctx,
                      s.channels % 2 == 0 && weight.dim() == 3 && weight.size(0) == 9 && weight.size(1) == 2 &&
                          weight.size(2) == s.channels && bias.dim() == 1 && bias.size(0) == s.channels,
                      InvalidArgument, out, "igc2: weight must be (9, 2, C) and bias (C,)");
  ET_KERNEL_CHECK_MSG(ctx,
                      out.size(0) == s.n && out.size(1) == s.channels && out.size(2) == s.out_h &&
                          out.size(3) == s.out_w,
                      InvalidArgument, out, "igc2: output shape mismatch");
  // A 1x1 spatial tensor has the same memory layout in both dim orders, whichever one it is tagged with.
  const uint8_t* xo = x.dim_order().data();
  const uint8_t* oo = out.dim_order().data();
  const bool x_single = s.h * s.w == 1, out_single = s.out_h * s.out_w == 1;
  const bool x_cl = x_single || executorch::runtime::is_channels_last_dim_order(xo, 4);
  const bool x_cf = x_single || executorch::runtime::is_contiguous_dim_order(xo, 4);
  const bool out_cl = out_single || executorch::runtime::is_channels_last_dim_order(oo, 4);
  const bool out_cf = out_single || executorch::runtime::is_contiguous_dim_order(oo, 4);
  const bool nhwc = x_cl && out_cl;
  ET_KERNEL_CHECK_MSG(ctx, nhwc || (x_cf && out_cf), InvalidArgument, out,
                      "igc2: input and output must both be contiguous or both channels last");
  const float* xp = x.const_data_ptr<float>();
  const float* wp = weight.const_data_ptr<float>();
  const float* bp = bias.const_data_ptr<float>();
  float* op = out.mutable_data_ptr<float>();
  if (nhwc) {
    executorch::extension::parallel_for(0, s.n * s.out_h, 1, [&](int64_t begin, int64_t end) {
      igc2_nhwc_rows(xp, wp, bp, op, s, begin, end);
    });
  } else {
    executorch::extension::parallel_for(0, s.n * s.channels / 2, 1, [&](int64_t begin, int64_t end) {
      igc2_nchw_pairs(xp, wp, bp, op, s, begin, end);
    });
  }
  return out;
}

}  // namespace
}  // namespace clcdeploy

EXECUTORCH_LIBRARY(clcdeploy, "igc2.out", clcdeploy::igc2_out);

// Sets the XNNPACK backend's workspace sharing mode (0 disabled, 1 per model, 2 global) for programs loaded
// afterwards and reads it back (the backend ignores keys it does not know, so only the read-back shows that the
// option arrived); returns 1 on success. A fused program runs as many XNNPACK partitions, and builds whose
// default is global sharing (the executorch wheel's, Android's) cost it 4-9% when other models are loaded in
// the same process (BENCHMARKS.md section 3, fourteenth session); with one workspace per model they do not.
extern "C" int clcdeploy_set_xnnpack_workspace_sharing(int mode) {
  executorch::runtime::BackendOptions<1> wanted;
  wanted.set_option("workspace_sharing_mode", mode);
  if (executorch::runtime::set_option("XnnpackBackend", wanted.view()) != executorch::runtime::Error::Ok) return 0;
  executorch::runtime::BackendOptions<1> current;
  current.set_option("workspace_sharing_mode", -1);
  if (executorch::runtime::get_option("XnnpackBackend", current.view()) != executorch::runtime::Error::Ok) return 0;
  const int* value = std::get_if<int>(&current.view()[0].value);
  return value != nullptr && *value == mode ? 1 : 0;
}
