// The machine's measured FMA peak, single precision, the figure every GFLOP/s in bench/ is a
// fraction of: independent chains of fused multiply-adds on the widest vectors the CPU runs
// (AVX-512, else AVX2+FMA, else SSE2 multiply + add), on 1 thread and on every core, best of
// several runs. bench/machine.sh prints it with the CPU's name and the load average.
//
//   fma_peak            "fma_peak isa=avx512 threads=1 gflops=... threads=2 gflops=..."
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include <immintrin.h>

namespace {

constexpr long iterations = 20'000'000;
constexpr int chains = 12;  // more chains than FMA latency x ports: the units never wait

// Each returns the flops done; `sink` keeps the compiler from dropping the chains.
__attribute__((target("avx512f"))) double run_avx512(float* sink) {
  __m512 acc[chains];
  for (int c = 0; c < chains; ++c) acc[c] = _mm512_set1_ps(float(c));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long i = 0; i < iterations; ++i)
    for (int c = 0; c < chains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  float out[16];
  __m512 s = acc[0];
  for (int c = 1; c < chains; ++c) s = _mm512_add_ps(s, acc[c]);
  _mm512_storeu_ps(out, s);
  *sink = out[0];
  return 2.0 * 16 * chains * double(iterations);
}

__attribute__((target("avx2,fma"))) double run_avx2(float* sink) {
  __m256 acc[chains];
  for (int c = 0; c < chains; ++c) acc[c] = _mm256_set1_ps(float(c));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long i = 0; i < iterations; ++i)
    for (int c = 0; c < chains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  float out[8];
  __m256 s = acc[0];
  for (int c = 1; c < chains; ++c) s = _mm256_add_ps(s, acc[c]);
  _mm256_storeu_ps(out, s);
  *sink = out[0];
  return 2.0 * 8 * chains * double(iterations);
}

double run_sse2(float* sink) {
  __m128 acc[chains];
  for (int c = 0; c < chains; ++c) acc[c] = _mm_set1_ps(float(c));
  const __m128 a = _mm_set1_ps(0.999999f), b = _mm_set1_ps(1e-7f);
  for (long i = 0; i < iterations; ++i)
    for (int c = 0; c < chains; ++c) acc[c] = _mm_add_ps(_mm_mul_ps(acc[c], a), b);
  __m128 s = acc[0];
  for (int c = 1; c < chains; ++c) s = _mm_add_ps(s, acc[c]);
  *sink = _mm_cvtss_f32(s);
  return 2.0 * 4 * chains * double(iterations);
}

using kernel = double (*)(float*);

// GFLOP/s summed over `threads` threads running the kernel at once; best of `repeats`.
double measure(kernel k, unsigned threads, int repeats) {
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    std::vector<float> sinks(threads * 16);
    std::vector<double> flops(threads);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) pool.emplace_back([&, t] { flops[t] = k(&sinks[t * 16]); });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double total = 0;
    for (double f : flops) total += f;
    best = std::max(best, total / s * 1e-9);
  }
  return best;
}

}  // namespace

int main() {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const kernel k = avx512 ? run_avx512 : avx2 ? run_avx2 : run_sse2;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::printf("fma_peak isa=%s threads=1 gflops=%.1f threads=%u gflops=%.1f\n",
              avx512 ? "avx512" : avx2 ? "avx2" : "sse2", measure(k, 1, 5), cores, measure(k, cores, 5));
}
