// Fused IGC kernel for channel receptive field 2 (clcNet paper Sec. 4.2, "monolithic implementation").
//
// Computes, in one pass, a 3x3 grouped convolution with groups of two input channels and two outputs per
// group (padding 1, stride 1 or 2, bias) followed by the IGC interlace. In the conv's own channel order,
// output channel c = 2i + f reads its own input channel c and its pair partner c ^ 1:
//   conv[c] = b[c] + sum_k wp[k][0][c] * x[c](k) + wp[k][1][c] * x[c ^ 1](k)
// with k = kh*3 + kw the tap and the packed weight wp of shape (9, 2, C):
//   wp[k][0][c] = w_pytorch[c, c % 2, kh, kw],  wp[k][1][c] = w_pytorch[c, 1 - c % 2, kh, kw].
// The interlace then stores conv channel 2i + f at output channel f * C/2 + i. The bias is in conv order.
// The runtime-independent core works on raw float pointers so that every runtime binding shares it.
#pragma once

#include <cstdint>

namespace clcdeploy {

struct Igc2Shape {
  int64_t n, channels, h, w, stride, out_h, out_w;
};

// Row range [row_begin, row_end) of the flattened (n, out_h) output rows, NHWC (channels last) tensors.
void igc2_nhwc_rows(const float* x, const float* wp, const float* bias, float* out, const Igc2Shape& s,
                    int64_t row_begin, int64_t row_end);

// Channel-pair range [pair_begin, pair_end) of the flattened (n, channels / 2) input channel pairs, NCHW
// tensors: pair i computes output planes i and channels / 2 + i.
void igc2_nchw_pairs(const float* x, const float* wp, const float* bias, float* out, const Igc2Shape& s,
                     int64_t pair_begin, int64_t pair_end);

}  // namespace clcdeploy
