// Fused IGC kernel for channel receptive field 2 (clcNet paper Sec. 4.2, "monolithic implementation").
//
// Computes, in one pass, a 3x3 grouped convolution with groups of two input channels and two outputs per
// group (padding 1, stride 1 or 2, bias) followed by the IGC interlace:
//   out[f*G + i] = b[f*G + i] + sum_k wp[k][f][0][i] * x[2i](k) + wp[k][f][1][i] * x[2i+1](k)
// with G = channels / 2, k = kh*3 + kw the tap, and the packed weight wp of shape (9, 2, 2, G):
//   wp[k][f][j][i] = w_pytorch[2i + f, j, kh, kw].
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

// Plane range [plane_begin, plane_end) of the flattened (n, channels) output planes, NCHW tensors.
void igc2_nchw_planes(const float* x, const float* wp, const float* bias, float* out, const Igc2Shape& s,
                      int64_t plane_begin, int64_t plane_end);

}  // namespace clcdeploy
