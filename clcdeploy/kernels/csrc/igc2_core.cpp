// Portable fused IGC (CRF 2) kernel; written so that GCC/Clang vectorise the fixed-size channel loops
// (AVX2/FMA on x86 with -march, NEON on aarch64 at -O3).
#include "igc2.h"

namespace clcdeploy {
namespace {

constexpr int kBlock = 16;  // channel pairs per block: 32 inputs, 2 x 16 accumulators per pixel
constexpr int kPixels = 2;  // output pixels per block: each weight load feeds kPixels pixels

// Output pixels [ow, ow + P) of row oh, channel pairs [b, b + B).
template <int B, int P>
inline void pixel_block(const float* x, const float* wp, const float* bias, float* out, const Igc2Shape& s,
                        int64_t n, int64_t oh, int64_t ow, int64_t b) {
  const int64_t G = s.channels / 2;
  float acc0[P][B], acc1[P][B];
  for (int p = 0; p < P; ++p) {
    for (int i = 0; i < B; ++i) {
      acc0[p][i] = bias[b + i];
      acc1[p][i] = bias[G + b + i];
    }
  }
  for (int kh = 0; kh < 3; ++kh) {
    const int64_t ih = oh * s.stride - 1 + kh;
    if (ih < 0 || ih >= s.h) continue;
    const float* row = x + (n * s.h + ih) * s.w * s.channels + 2 * b;
    for (int kw = 0; kw < 3; ++kw) {
      const float* __restrict w = wp + (kh * 3 + kw) * 4 * G + b;
      float e[P][B], o[P][B];
      for (int p = 0; p < P; ++p) {
        const int64_t iw = (ow + p) * s.stride - 1 + kw;
        const bool inside = iw >= 0 && iw < s.w;
        const float* __restrict xp = row + (inside ? iw : 0) * s.channels;
        const float scale = inside ? 1.0f : 0.0f;
        for (int i = 0; i < B; ++i) {
          e[p][i] = scale * xp[2 * i];
          o[p][i] = scale * xp[2 * i + 1];
        }
      }
      for (int i = 0; i < B; ++i) {
        const float w00 = w[i], w01 = w[G + i], w10 = w[2 * G + i], w11 = w[3 * G + i];
        for (int p = 0; p < P; ++p) {
          acc0[p][i] += w00 * e[p][i] + w01 * o[p][i];
          acc1[p][i] += w10 * e[p][i] + w11 * o[p][i];
        }
      }
    }
  }
  for (int p = 0; p < P; ++p) {
    float* __restrict op = out + ((n * s.out_h + oh) * s.out_w + ow + p) * s.channels;
    for (int i = 0; i < B; ++i) {
      op[b + i] = acc0[p][i];
      op[G + b + i] = acc1[p][i];
    }
  }
}

template <int B>
inline void row_block(const float* x, const float* wp, const float* bias, float* out, const Igc2Shape& s,
                      int64_t n, int64_t oh, int64_t b) {
  int64_t ow = 0;
  for (; ow + kPixels <= s.out_w; ow += kPixels) pixel_block<B, kPixels>(x, wp, bias, out, s, n, oh, ow, b);
  for (; ow < s.out_w; ++ow) pixel_block<B, 1>(x, wp, bias, out, s, n, oh, ow, b);
}

}  // namespace

void igc2_nhwc_rows(const float* x, const float* wp, const float* bias, float* out, const Igc2Shape& s,
                    int64_t row_begin, int64_t row_end) {
  const int64_t G = s.channels / 2;
  const int64_t full = G - G % kBlock;
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t n = row / s.out_h, oh = row % s.out_h;
    for (int64_t b = 0; b < full; b += kBlock) row_block<kBlock>(x, wp, bias, out, s, n, oh, b);
    for (int64_t b = full; b < G; ++b) row_block<1>(x, wp, bias, out, s, n, oh, b);
  }
}

void igc2_nchw_planes(const float* x, const float* wp, const float* bias, float* out, const Igc2Shape& s,
                      int64_t plane_begin, int64_t plane_end) {
  const int64_t G = s.channels / 2;
  const int64_t plane_in = s.h * s.w, plane_out = s.out_h * s.out_w;
  for (int64_t plane = plane_begin; plane < plane_end; ++plane) {
    const int64_t n = plane / s.channels, c = plane % s.channels;
    const int64_t f = c / G, i = c % G;
    float* __restrict op = out + plane * plane_out;
    for (int64_t p = 0; p < plane_out; ++p) op[p] = bias[c];
    for (int j = 0; j < 2; ++j) {
      const float* __restrict xp = x + (n * s.channels + 2 * i + j) * plane_in;
      for (int kh = 0; kh < 3; ++kh) {
        for (int kw = 0; kw < 3; ++kw) {
          const float wv = wp[(((kh * 3 + kw) * 2 + f) * 2 + j) * G + i];
          for (int64_t oh = 0; oh < s.out_h; ++oh) {
            const int64_t ih = oh * s.stride - 1 + kh;
            if (ih < 0 || ih >= s.h) continue;
            const float* __restrict xrow = xp + ih * s.w;
            float* __restrict orow = op + oh * s.out_w;
            for (int64_t ow = 0; ow < s.out_w; ++ow) {
              const int64_t iw = ow * s.stride - 1 + kw;
              if (iw >= 0 && iw < s.w) orow[ow] += wv * xrow[iw];
            }
          }
        }
      }
    }
  }
}

}  // namespace clcdeploy
