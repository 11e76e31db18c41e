// Micro-benchmark of the fused IGC kernel (clcdeploy/kernels/csrc/igc2_core.cpp), one thread.
//
// Arguments: triples C H S (channels, square input size, stride), one per IGC layer. For every layer it times
// the NHWC path on cache-line aligned tensors and, alternating pass by pass, either the NHWC path on tensors
// OFFSET bytes past a cache line (ExecuTorch's Module API and its Python runtime give 16) or, with
// IGC2_BENCH_COMPARE=nchw, the NCHW path on aligned tensors; it prints the best of ROUNDS:
//   C H S aligned_nhwc_ms other_ms
// Environment: IGC2_BENCH_ROUNDS (default 60), IGC2_BENCH_OFFSET (default 16), IGC2_BENCH_COMPARE (offset|nchw).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "igc2.h"

namespace {

constexpr size_t kAlign = 64;

struct Floats {
  std::unique_ptr<float, decltype(&std::free)> memory{nullptr, &std::free};
  // n floats plus one cache line, so that the tensor still fits when placed up to kAlign bytes further on.
  explicit Floats(size_t n)
      : memory(static_cast<float*>(std::aligned_alloc(kAlign, (n * sizeof(float) + 2 * kAlign - 1) / kAlign * kAlign)),
               &std::free) {}
  float* at_offset(size_t bytes) { return memory.get() + bytes / sizeof(float); }
};

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = std::getenv("IGC2_BENCH_ROUNDS") ? std::atoi(std::getenv("IGC2_BENCH_ROUNDS")) : 60;
  const size_t offset = std::getenv("IGC2_BENCH_OFFSET") ? std::atoi(std::getenv("IGC2_BENCH_OFFSET")) : 16;
  const char* compare = std::getenv("IGC2_BENCH_COMPARE");
  const bool nchw = compare != nullptr && std::string(compare) == "nchw";
  if (argc < 4 || (argc - 1) % 3 != 0 || rounds < 1 || offset % sizeof(float) != 0 || offset >= kAlign) {
    std::fprintf(stderr, "usage: igc2_kernel_bench C H S [C H S ...] (offset: a multiple of 4 below 64)\n");
    return 2;
  }
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int a = 1; a + 2 < argc; a += 3) {
    const int64_t c = std::atoll(argv[a]), h = std::atoll(argv[a + 1]), stride = std::atoll(argv[a + 2]);
    const int64_t out_hw = (h - 1) / stride + 1;
    clcdeploy::Igc2Shape shape{1, c, h, h, stride, out_hw, out_hw};
    Floats x(c * h * h), out(c * out_hw * out_hw), weight(18 * c), bias(c);
    for (size_t i = 0; i < c * h * h + kAlign / sizeof(float); ++i) x.memory.get()[i] = uniform(rng);
    for (int64_t i = 0; i < 18 * c; ++i) weight.memory.get()[i] = uniform(rng);
    for (int64_t i = 0; i < c; ++i) bias.memory.get()[i] = uniform(rng);
    double best[2] = {1e30, 1e30};
    for (int r = 0; r < rounds; ++r) {
      for (int misaligned = 0; misaligned < 2; ++misaligned) {
        const size_t bytes = misaligned && !nchw ? offset : 0;
        auto start = std::chrono::steady_clock::now();
        if (misaligned && nchw) {
          clcdeploy::igc2_nchw_pairs(x.at_offset(0), weight.memory.get(), bias.memory.get(), out.at_offset(0),
                                     shape, 0, c / 2);
        } else {
          clcdeploy::igc2_nhwc_rows(x.at_offset(bytes), weight.memory.get(), bias.memory.get(),
                                    out.at_offset(bytes), shape, 0, out_hw);
        }
        best[misaligned] = std::min(best[misaligned], elapsed_ms(start));
      }
    }
    std::printf("%lld %lld %lld %.5f %.5f\n", static_cast<long long>(c), static_cast<long long>(h),
                static_cast<long long>(stride), best[0], best[1]);
  }
  return 0;
}
