// Portable fused IGC (CRF 2) kernel. The NHWC path uses GCC/Clang vector extensions (16 float lanes with
// AVX-512, 4 on ARM64, else 8), which compile to AVX-512 / AVX2 on x86 and to NEON q registers on ARM, with
// no intrinsics per target.
//
// Why it is fast: channels stay in their natural NHWC order, so the pair partner x[c ^ 1] is an in-register
// lane swap of the same load (no strided gathers); each weight vector feeds kPixels output pixels; the
// interlace is paid once per output pixel (a deinterleave of the accumulators at the store), not per tap;
// the two products per tap are separate multiply-adds (no temporary sum that would cost an extra add).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "igc2.h"

namespace clcdeploy {
namespace {

#if defined(__AVX512F__)
constexpr int kLanes = 16;  // one zmm register
#elif defined(__aarch64__)
// One q register. With 8 lanes (two q registers per vector) a kPixels block needs 16 accumulator, 8 weight
// and 8 input/swap q registers, all of NEON's 32: GCC spilled, and clcNet-A executed 1.16x the instructions
// and 2.0x the loads/stores of this choice (ARM64 instruction counts, BENCHMARKS.md section 3).
constexpr int kLanes = 4;
#else
constexpr int kLanes = 8;  // one ymm register (AVX2)
#endif
typedef float Vec __attribute__((vector_size(4 * kLanes)));
typedef int32_t Bits __attribute__((vector_size(4 * kLanes)));  // a Vec's bits, for masking by AND
constexpr int kBlock = 2 * kLanes;  // natural channels per block: two vectors, i.e. kLanes pairs
constexpr int kPixels = 4;          // output pixels per block: each weight load feeds kPixels pixels

inline Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store(float* p, Vec v) { std::memcpy(p, &v, sizeof v); }

// `v` where `mask` is all ones, +0 where it is 0: a select, not a product, so an inf or NaN in a masked-off lane
// does not leak through (0 * inf is NaN).
inline Vec keep(Vec v, const int32_t* mask) {
  Bits m;
  std::memcpy(&m, mask, sizeof m);
  return (Vec)((Bits)v & m);
}

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

// NCHW path. Both conv channels of an input channel pair (2i, 2i + 1) are computed together (channel f reads
// plane f as its own and plane 1 - f as its partner), in one pass that loads each of the 18 input values of
// an output once and feeds both channels' multiply-adds. The pair's planes are first copied into zero-padded
// buffers in which every tap is an unchecked unit-stride load, and each plane runs as whole vectors:
// - stride 1: each plane flattened, with w + 1 zeros before and after (the rows above and below); tap
//   (kh, kw) of output q is element q + kh * w + kw. The column wrap-around of the kw = 0 and kw = 2 taps at
//   the row ends is cancelled by column masks (selecting, so a non-finite value across the wrap stays out),
//   so the output plane is one run, written in place, and 7x7 planes fill vectors as well as 112x112 ones.
// - stride 2: the four phases of the padded plane (padded rows even/odd x columns even/odd), each
//   (out_h + 1) x (out_w + 1), so tap (kh, kw) of output (oh, ow) is element (oh + kh / 2, ow + kw / 2) of
//   phase (kh % 2, kw % 2); rows of at least one vector run straight into the output, narrower planes as
//   one flattened run whose padding columns are dropped.
struct PairPlanes {
  std::vector<float> data;                   // the two input planes, padded (stride 1) or as phases (stride 2)
  std::vector<int32_t> mask_left, mask_right;  // stride 1: 0 where tap kw = 0 / kw = 2 falls off the row, else ~0
  int64_t h = -1, w = -1, stride = -1;       // the shape the buffers are laid out for (their padding is zero)
  int64_t row = 0;   // stride 2: row length of a phase
  int64_t size = 0;  // floats per padded plane (stride 1) or per phase (stride 2), with slack
};

// Copies a short row: whole vectors, then 4-float moves, then single floats.
inline void copy_row(float* __restrict dst, const float* __restrict src, int64_t n) {
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes) store(dst + k, load(src + k));
  for (; k + 4 <= n; k += 4) std::memcpy(dst + k, src + k, 4 * sizeof(float));
  switch (n - k) {  // not a loop: GCC would turn it into a memcpy call
    case 3: dst[k + 2] = src[k + 2]; [[fallthrough]];
    case 2: dst[k + 1] = src[k + 1]; [[fallthrough]];
    case 1: dst[k] = src[k];
  }
}

void lay_out(const Igc2Shape& s, PairPlanes& pp) {
  if (pp.h == s.h && pp.w == s.w && pp.stride == s.stride) return;
  // Zeroed once per shape: every pair overwrites exactly the input positions, so the padding stays zero.
  if (s.stride == 1) {
    const int64_t n = s.h * s.w;
    pp.size = n + 2 * (s.w + 1) + kLanes;
    pp.data.assign(size_t(2 * pp.size), 0.0f);
    pp.mask_left.assign(size_t(n + kLanes), ~0);
    pp.mask_right.assign(size_t(n + kLanes), ~0);
    for (int64_t q = 0; q < n; ++q) {
      if (q % s.w == 0) pp.mask_left[q] = 0;
      if (q % s.w == s.w - 1) pp.mask_right[q] = 0;
    }
  } else {
    pp.row = s.out_w + 1;
    pp.size = (s.out_h + 1) * pp.row + 2 + kLanes;
    pp.data.assign(size_t(2 * 4 * pp.size), 0.0f);
  }
  pp.h = s.h, pp.w = s.w, pp.stride = s.stride;
}

void fill_pair(const float* x0, const float* x1, const Igc2Shape& s, PairPlanes& pp) {
  lay_out(s, pp);
  const float* src[2] = {x0, x1};
  for (int p = 0; p < 2; ++p) {
    if (s.stride == 1) {
      std::memcpy(pp.data.data() + p * pp.size + s.w + 1, src[p], sizeof(float) * s.h * s.w);
      continue;
    }
    float* phases = pp.data.data() + p * 4 * pp.size;
    for (int64_t ih = 0; ih < s.h; ++ih) {
      // Input (ih, iw) is padded (r, iw + 1) with r = ih + 1: phase (r % 2, (iw + 1) % 2), row r / 2.
      const float* __restrict in = src[p] + ih * s.w;
      const int64_t r = ih + 1;
      float* __restrict even_cols = phases + (r % 2 * 2) * pp.size + r / 2 * pp.row;  // padded column 2k
      float* __restrict odd_cols = even_cols + pp.size;                               // padded column 2k + 1
      for (int64_t k = 0; 2 * k < s.w; ++k) odd_cols[k] = in[2 * k];
      for (int64_t k = 1; 2 * k - 1 < s.w; ++k) even_cols[k] = in[2 * k - 1];
    }
  }
}

// Output element q of a run reads taps[t][q] for the 18 taps t = p * 9 + kh * 3 + kw (input plane p);
// `Masked`: the kw = 0 and kw = 2 sums count only where mask_left[q] / mask_right[q] are set. Whole vectors only:
// a run (count >= kLanes) ends with a block overlapping the previous one, which recomputes a few outputs
// with the same values, instead of a scalar tail.
template <bool Masked>
inline void pair_run(const float* const (&taps)[18], const float (&w)[2][18], const float (&bias)[2],
                     float* __restrict o0, float* __restrict o1, int64_t count, const int32_t* mask_left,
                     const int32_t* mask_right) {
  auto block = [&](int64_t q) {
    Vec sum[2][3] = {};  // [channel][kw]
#pragma GCC unroll 18
    for (int t = 0; t < 18; ++t) {
      const Vec v = load(taps[t] + q);
      const int kw = Masked ? t % 3 : 1;
      sum[0][kw] += w[0][t] * v;
      sum[1][kw] += w[1][t] * v;
    }
    for (int f = 0; f < 2; ++f) {
      Vec total = sum[f][1] + bias[f];
      if (Masked) total += keep(sum[f][0], mask_left + q) + keep(sum[f][2], mask_right + q);
      store((f ? o1 : o0) + q, total);
    }
  };
  int64_t q = 0;
  for (; q + kLanes <= count; q += kLanes) block(q);
  if (q < count) block(count - kLanes);
}

// Both conv channels of the pair in `pp`; wp/bias as in igc2.h, c0 = the pair's first conv channel.
void nchw_pair(const PairPlanes& pp, const float* wp, const float* bias, int64_t c0, float* out0, float* out1,
               const Igc2Shape& s, std::vector<float>& scratch) {
  const int64_t C = s.channels;
  float w[2][18];  // w[f][p * 9 + k]: channel f's weight on plane p's tap k (its own plane is p == f)
  for (int f = 0; f < 2; ++f) {
    for (int p = 0; p < 2; ++p) {
      for (int k = 0; k < 9; ++k) w[f][p * 9 + k] = wp[(k * 2 + (p == f ? 0 : 1)) * C + c0 + f];
    }
  }
  const float b[2] = {bias[c0], bias[c0 + 1]};
  const float* taps[18];
  for (int t = 0; t < 18; ++t) {
    const int p = t / 9, kh = t % 9 / 3, kw = t % 3;
    taps[t] = s.stride == 1 ? pp.data.data() + p * pp.size + kh * s.w + kw
                            : pp.data.data() + (p * 4 + kh % 2 * 2 + kw % 2) * pp.size + kh / 2 * pp.row + kw / 2;
  }
  const int64_t n = s.out_h * s.out_w;
  if (s.stride == 1 && n >= kLanes) {
    pair_run<true>(taps, w, b, out0, out1, n, pp.mask_left.data(), pp.mask_right.data());
  } else if (s.stride == 1) {  // a plane smaller than one vector: computed into scratch (the buffers have slack)
    scratch.resize(2 * kLanes);
    pair_run<true>(taps, w, b, scratch.data(), scratch.data() + kLanes, kLanes, pp.mask_left.data(),
                   pp.mask_right.data());
    copy_row(out0, scratch.data(), n);
    copy_row(out1, scratch.data() + kLanes, n);
  } else if (s.out_w >= kLanes) {
    for (int64_t oh = 0; oh < s.out_h; ++oh) {
      const float* row_taps[18];
      for (int t = 0; t < 18; ++t) row_taps[t] = taps[t] + oh * pp.row;
      pair_run<false>(row_taps, w, b, out0 + oh * s.out_w, out1 + oh * s.out_w, s.out_w, nullptr, nullptr);
    }
  } else {  // narrow stride 2: one flattened run over the phases' rows, the padding columns dropped
    const int64_t flat = (s.out_h * pp.row + kLanes - 1) / kLanes * kLanes;
    scratch.resize(size_t(2 * flat));
    pair_run<false>(taps, w, b, scratch.data(), scratch.data() + flat, flat, nullptr, nullptr);
    for (int64_t oh = 0; oh < s.out_h; ++oh) {
      copy_row(out0 + oh * s.out_w, scratch.data() + oh * pp.row, s.out_w);
      copy_row(out1 + oh * s.out_w, scratch.data() + flat + oh * pp.row, s.out_w);
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

void igc2_nchw_pairs(const float* x, const float* wp, const float* bias, float* out, const Igc2Shape& s,
                     int64_t pair_begin, int64_t pair_end) {
  const int64_t C = s.channels, G = C / 2;
  const int64_t plane_in = s.h * s.w, plane_out = s.out_h * s.out_w;
  thread_local PairPlanes pp;
  thread_local std::vector<float> scratch;
  for (int64_t index = pair_begin; index < pair_end; ++index) {
    const int64_t n = index / G, i = index % G;
    const float* x0 = x + (n * C + 2 * i) * plane_in;
    fill_pair(x0, x0 + plane_in, s, pp);
    // Conv channels 2i and 2i + 1 are stored at interlaced positions i and G + i.
    nchw_pair(pp, wp, bias, 2 * i, out + (n * C + i) * plane_out, out + (n * C + G + i) * plane_out, s, scratch);
  }
}

}  // namespace clcdeploy
