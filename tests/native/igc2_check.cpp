// Checks clcdeploy's fused IGC kernel (NHWC and NCHW paths) against a direct evaluation of the IGC
// definition, for shapes that reach every code path, with finite inputs and with inf/NaN at row ends (where
// the stride-1 NCHW path masks taps that wrap into the next row). Built per target by
// tests/test_kernels_targets.py (x86 baseline / AVX2 / native, and aarch64 under qemu); prints the largest
// difference and exits 1 if it exceeds 1e-4 or an output is non-finite where the definition's is not (or the
// other way round).
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "igc2.h"

using clcdeploy::Igc2Shape;

namespace {

// out[f*G + i] = b[2i+f] + sum_{j,kh,kw} w[2i+f][j][kh][kw] * x[2i+j](oh*s-1+kh, ow*s-1+kw), NCHW.
std::vector<float> reference(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
                             const Igc2Shape& s) {
  const int64_t C = s.channels, G = C / 2;
  std::vector<float> out(s.n * C * s.out_h * s.out_w);
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < s.out_h; ++oh)
        for (int64_t ow = 0; ow < s.out_w; ++ow) {
          double acc = b[c];
          for (int j = 0; j < 2; ++j)
            for (int kh = 0; kh < 3; ++kh)
              for (int kw = 0; kw < 3; ++kw) {
                const int64_t ih = oh * s.stride - 1 + kh, iw = ow * s.stride - 1 + kw;
                if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
                acc += w[((c * 2 + j) * 3 + kh) * 3 + kw] * x[((n * C + (c / 2) * 2 + j) * s.h + ih) * s.w + iw];
              }
          out[((n * C + (c % 2) * G + c / 2) * s.out_h + oh) * s.out_w + ow] = static_cast<float>(acc);
        }
  return out;
}

// PyTorch weight (C, 2, 3, 3) -> packed (9, 2, C), as clcdeploy.kernels.ops.pack_weight.
std::vector<float> pack(const std::vector<float>& w, int64_t C) {
  std::vector<float> packed(18 * C);
  for (int64_t c = 0; c < C; ++c)
    for (int k = 0; k < 9; ++k) {
      packed[(k * 2 + 0) * C + c] = w[(c * 2 + c % 2) * 9 + k];
      packed[(k * 2 + 1) * C + c] = w[(c * 2 + 1 - c % 2) * 9 + k];
    }
  return packed;
}

std::vector<float> to_nhwc(const std::vector<float>& t, int64_t n, int64_t c, int64_t h, int64_t w) {
  std::vector<float> out(t.size());
  for (int64_t a = 0; a < n; ++a)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h * w; ++y) out[(a * h * w + y) * c + ch] = t[(a * c + ch) * h * w + y];
  return out;
}

// The largest difference, infinite if one side is NaN or infinite where the other is not the same.
double difference(float got, float expected) {
  if (std::isnan(expected) || std::isnan(got)) return std::isnan(expected) && std::isnan(got) ? 0.0 : INFINITY;
  if (std::isinf(expected) || std::isinf(got)) return got == expected ? 0.0 : INFINITY;
  return std::fabs(got - expected);
}

// Both paths on `x`; the largest difference from the definition.
double check(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
             const Igc2Shape& s) {
  const std::vector<float> expected = reference(x, w, b, s), packed = pack(w, s.channels);
  std::vector<float> nchw(expected.size()), nhwc(expected.size());
  clcdeploy::igc2_nchw_pairs(x.data(), packed.data(), b.data(), nchw.data(), s, 0, s.n * s.channels / 2);
  const std::vector<float> x_nhwc = to_nhwc(x, s.n, s.channels, s.h, s.w);
  clcdeploy::igc2_nhwc_rows(x_nhwc.data(), packed.data(), b.data(), nhwc.data(), s, 0, s.n * s.out_h);
  const std::vector<float> expected_nhwc = to_nhwc(expected, s.n, s.channels, s.out_h, s.out_w);
  double diff = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    diff = std::fmax(diff, difference(nchw[i], expected[i]));
    diff = std::fmax(diff, difference(nhwc[i], expected_nhwc[i]));
  }
  return diff;
}

}  // namespace

int main() {
  const int64_t cases[][5] = {  // n, channels, h, w, stride
      {1, 96, 9, 10, 1}, {1, 96, 9, 10, 2}, {2, 34, 7, 5, 1}, {1, 64, 1, 1, 1}, {1, 64, 2, 3, 2},
      {1, 32, 12, 13, 1}, {1, 48, 6, 7, 2}, {1, 16, 5, 17, 1}, {1, 2, 3, 3, 1},
      {1, 4, 3, 41, 2}, {1, 6, 4, 40, 2}, {1, 4, 2, 2, 1}, {1, 4, 3, 37, 1}};  // wide rows: vectorised NCHW loop
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  double worst = 0.0;
  for (const auto& c : cases) {
    Igc2Shape s{c[0], c[1], c[2], c[3], c[4], (c[2] - 1) / c[4] + 1, (c[3] - 1) / c[4] + 1};
    std::vector<float> x(s.n * s.channels * s.h * s.w), w(18 * s.channels), b(s.channels);
    for (auto* v : {&x, &w, &b})
      for (auto& e : *v) e = uniform(rng);
    const double diff = check(x, w, b, s);
    std::printf("n=%lld C=%lld %lldx%lld stride %lld: max diff %.3g\n", (long long)s.n, (long long)s.channels,
                (long long)s.h, (long long)s.w, (long long)s.stride, diff);
    worst = std::fmax(worst, diff);
  }
  const int64_t special[][5] = {{1, 4, 5, 5, 1}, {1, 34, 6, 9, 1}, {1, 4, 5, 5, 2}, {1, 34, 6, 9, 2}};
  for (const auto& c : special) {  // inf, -inf and NaN at the ends of rows
    Igc2Shape s{c[0], c[1], c[2], c[3], c[4], (c[2] - 1) / c[4] + 1, (c[3] - 1) / c[4] + 1};
    std::vector<float> x(s.n * s.channels * s.h * s.w), w(18 * s.channels), b(s.channels);
    for (auto* v : {&x, &w, &b})
      for (auto& e : *v) e = uniform(rng);
    const int64_t plane = s.h * s.w;
    x[1 * plane + 2 * s.w + s.w - 1] = INFINITY;
    x[2 * plane + 1 * s.w] = -INFINITY;
    x[3 * plane + 3 * s.w + s.w - 1] = NAN;
    const double diff = check(x, w, b, s);
    std::printf("inf/NaN at row ends, C=%lld %lldx%lld stride %lld: max diff %.3g\n", (long long)s.channels,
                (long long)s.h, (long long)s.w, (long long)s.stride, diff);
    worst = std::fmax(worst, diff);
  }
  std::printf("worst %.3g\n", worst);
  return worst <= 1e-4 ? 0 : 1;
}
