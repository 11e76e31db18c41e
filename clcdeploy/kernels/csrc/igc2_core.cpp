// Portable fused IGC (CRF 2) kernel. The NHWC path uses GCC/Clang vector extensions (16 float lanes with
// AVX-512, else 8), which compile to AVX-512 / AVX2 on x86 and to NEON register pairs on ARM, with no
// intrinsics per target.
//
// Why it is fast: channels stay in their natural NHWC order, so the pair partner x[c ^ 1] is an in-register
// lane swap of the same load (no strided gathers); each weight vector feeds kPixels output pixels; the
// interlace is paid once per output pixel (a deinterleave of the accumulators at the store), not per tap;
// the two products per tap are separate multiply-adds (no temporary sum that would cost an extra add).
#include <cstring>
#include <utility>

#include "igc2.h"

namespace clcdeploy {
namespace {

#if defined(__AVX512F__)
constexpr int kLanes = 16;  // one zmm register
#else
constexpr int kLanes = 8;  // one ymm register (AVX2), two NEON q registers
#endif
typedef float Vec __attribute__((vector_size(4 * kLanes)));
constexpr int kBlock = 2 * kLanes;  // natural channels per block: two vectors, i.e. kLanes pairs
constexpr int kPixels = 4;          // output pixels per block: each weight load feeds kPixels pixels

inline Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store(float* p, Vec v) { std::memcpy(p, &v, sizeof v); }

// Lane permutations (GCC >= 12 and Clang): swap each pair (v[i ^ 1]); the even and the odd lanes of the
// concatenation (a, b).
template <int... I>
inline Vec swap_pairs(Vec v, std::integer_sequence<int, I...>) {
  return __builtin_shufflevector(v, v, (I ^ 1)...);
}
template <int... I>
inline Vec evens(Vec a, Vec b, std::integer_sequence<int, I...>) {
  return __builtin_shufflevector(a, b, (2 * I)...);
}
template <int... I>
inline Vec odds(Vec a, Vec b, std::integer_sequence<int, I...>) {
  return __builtin_shufflevector(a, b, (2 * I + 1)...);
}
constexpr auto kLanesSeq = std::make_integer_sequence<int, kLanes>();
inline Vec swap_pairs(Vec v) { return swap_pairs(v, kLanesSeq); }
inline Vec evens(Vec a, Vec b) { return evens(a, b, kLanesSeq); }
inline Vec odds(Vec a, Vec b) { return odds(a, b, kLanesSeq); }

// The three input rows that one output row reads; nullptr = padding row.
struct RowWindow {
  const float* x[3];
};

// Output pixels [ow, ow + P) of row oh, natural channels [c, c + kBlock), stride S. `Interior` blocks need no
// bounds checks on the input columns. Addresses advance by fixed steps (tap: C floats, pixel: S * C floats)
// so the unrolled loop is loads, lane swaps and multiply-adds only.
template <int P, int S, bool Interior>
inline void pixel_block(const RowWindow& rows, const float* wp, const float* bias, float* out, const Igc2Shape& s,
                        int64_t n, int64_t oh, int64_t ow, int64_t c) {
  const int64_t C = s.channels;
  Vec acc[P][2];
  const Vec b0 = load(bias + c), b1 = load(bias + c + kLanes);
  for (int p = 0; p < P; ++p) acc[p][0] = b0, acc[p][1] = b1;
#pragma GCC unroll 3
  for (int kh = 0; kh < 3; ++kh) {
    if (rows.x[kh] == nullptr) continue;
    const float* row = rows.x[kh] + c;
    const int64_t first = ow * S - 1;  // input column of tap kw = 0 of pixel ow (-1 at the left border)
#pragma GCC unroll 3
    for (int kw = 0; kw < 3; ++kw) {
      const float* w = wp + (kh * 3 + kw) * 2 * C + c;
      const Vec wa0 = load(w), wa1 = load(w + kLanes), wb0 = load(w + C), wb1 = load(w + C + kLanes);
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) {
        if (!Interior) {
          const int64_t iw = (ow + p) * S - 1 + kw;
          if (iw < 0 || iw >= s.w) continue;
        }
        const float* xp = row + (first + p * S + kw) * C;
        const Vec x0 = load(xp), x1 = load(xp + kLanes);
        acc[p][0] += wa0 * x0;
        acc[p][1] += wa1 * x1;
        acc[p][0] += wb0 * swap_pairs(x0);
        acc[p][1] += wb1 * swap_pairs(x1);
      }
    }
  }
  for (int p = 0; p < P; ++p) {
    float* o = out + ((n * s.out_h + oh) * s.out_w + ow + p) * C + c / 2;
    store(o, evens(acc[p][0], acc[p][1]));
    store(o + C / 2, odds(acc[p][0], acc[p][1]));
  }
}

// Scalar path for the channels after the last full block (counts that are not multiples of kBlock).
inline void pixel_tail(const float* x, const float* wp, const float* bias, float* out, const Igc2Shape& s,
                       int64_t n, int64_t oh, int64_t ow, int64_t c_begin) {
  const int64_t C = s.channels;
  float* o = out + ((n * s.out_h + oh) * s.out_w + ow) * C;
  for (int64_t c = c_begin; c < C; ++c) {
    float acc = bias[c];
    for (int kh = 0; kh < 3; ++kh) {
      const int64_t ih = oh * s.stride - 1 + kh;
      if (ih < 0 || ih >= s.h) continue;
      for (int kw = 0; kw < 3; ++kw) {
        const int64_t iw = ow * s.stride - 1 + kw;
        if (iw < 0 || iw >= s.w) continue;
        const float* xp = x + ((n * s.h + ih) * s.w + iw) * C;
        const float* w = wp + (kh * 3 + kw) * 2 * C;
        acc += w[c] * xp[c] + w[C + c] * xp[c ^ 1];
      }
    }
    o[(c % 2) * (C / 2) + c / 2] = acc;
  }
}

template <int S>
void nhwc_rows(const float* x, const float* wp, const float* bias, float* out, const Igc2Shape& s,
               int64_t row_begin, int64_t row_end) {
  const int64_t full = s.channels - s.channels % kBlock;
  const int64_t row_floats = s.w * s.channels;
  // Columns whose 3 taps are all inside the input: ow*S - 1 >= 0 and ow*S + 1 <= w - 1.
  const int64_t first_inside = 1, last_inside = (s.w - 2) / S;
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t n = row / s.out_h, oh = row % s.out_h;
    RowWindow rows{};
    for (int kh = 0; kh < 3; ++kh) {
      const int64_t ih = oh * S - 1 + kh;
      if (ih >= 0 && ih < s.h) rows.x[kh] = x + (n * s.h + ih) * row_floats;
    }
    auto edge = [&](int64_t col) {
      for (int64_t c = 0; c < full; c += kBlock) pixel_block<1, S, false>(rows, wp, bias, out, s, n, oh, col, c);
    };
    int64_t ow = 0;
    for (; ow < s.out_w && ow < first_inside; ++ow) edge(ow);
    for (; ow + kPixels - 1 <= last_inside && ow + kPixels <= s.out_w; ow += kPixels) {
      for (int64_t c = 0; c < full; c += kBlock) pixel_block<kPixels, S, true>(rows, wp, bias, out, s, n, oh, ow, c);
    }
    for (; ow < s.out_w; ++ow) edge(ow);
    if (full < s.channels) {
      for (int64_t col = 0; col < s.out_w; ++col) pixel_tail(x, wp, bias, out, s, n, oh, col, full);
    }
  }
}

}  // namespace

void igc2_nhwc_rows(const float* x, const float* wp, const float* bias, float* out, const Igc2Shape& s,
                    int64_t row_begin, int64_t row_end) {
  if (s.stride == 1) {
    nhwc_rows<1>(x, wp, bias, out, s, row_begin, row_end);
  } else {
    nhwc_rows<2>(x, wp, bias, out, s, row_begin, row_end);
  }
}

void igc2_nchw_planes(const float* x, const float* wp, const float* bias, float* out, const Igc2Shape& s,
                      int64_t plane_begin, int64_t plane_end) {
  const int64_t C = s.channels, G = C / 2;
  const int64_t plane_in = s.h * s.w, plane_out = s.out_h * s.out_w;
  for (int64_t plane = plane_begin; plane < plane_end; ++plane) {
    const int64_t n = plane / C, out_c = plane % C;
    const int64_t c = 2 * (out_c % G) + out_c / G;  // the conv channel stored at interlaced position out_c
    float* __restrict op = out + plane * plane_out;
    for (int64_t p = 0; p < plane_out; ++p) op[p] = bias[c];
    for (int partner = 0; partner < 2; ++partner) {  // 0: x[c], 1: x[c ^ 1]
      const float* __restrict xp = x + (n * C + (c ^ partner)) * plane_in;
      for (int kh = 0; kh < 3; ++kh) {
        for (int kw = 0; kw < 3; ++kw) {
          const float wv = wp[((kh * 3 + kw) * 2 + partner) * C + c];
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
