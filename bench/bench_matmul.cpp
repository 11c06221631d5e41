// GFLOP/s of single-precision matrix products: raw cblas_sgemm (one serial call), typegrad's
// tiled GEMM kernel, and matmul through a compiled program (forward; forward + both gradients),
// each with 1 and 2 threads. Median of 7 timed runs after a warm-up run.
//
//   bench_matmul            all shapes
//   bench_matmul quick      skips the 2048^3 product
//
// OpenBLAS picks its kernels from the CPU; OPENBLAS_CORETYPE=Haswell forces the AVX2 ones.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <random>
#include <string_view>
#include <vector>

#include <cblas.h>
#include <fmt/format.h>
#include <tbb/task_arena.h>

#include <typegrad/runtime/gemm.hpp>
#include <typegrad/typegrad.hpp>

using namespace typegrad;

namespace {

constexpr int timed_runs = 7;

template <class F>
double median_seconds(F&& f) {
  f();  // warm-up: first-touch of buffers, program planning
  std::array<double, timed_runs> t{};
  for (auto& s : t) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  std::sort(t.begin(), t.end());
  return t[timed_runs / 2];
}

tensor<float, 2> random_matrix(std::size_t rows, std::size_t cols, unsigned seed) {
  tensor<float, 2> t({rows, cols});
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& v : t) v = u(rng);
  return t;
}

constexpr var<"a", 2> a;
constexpr var<"b", 2> b;
constexpr var<"r", 2> r;

void bench_shape(std::size_t m, std::size_t k, std::size_t n) {
  const double flops = 2.0 * double(m) * double(n) * double(k);
  auto gf = [&](double products, double seconds) { return products * flops / seconds * 1e-9; };
  auto av = random_matrix(m, k, 1), bv = random_matrix(k, n, 2), rv = random_matrix(m, n, 3);
  std::vector<float> c(m * n);

  const double raw = median_seconds([&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(n), int(k), 1.0f, av.data(), int(k), bv.data(),
                int(n), 0.0f, c.data(), int(n));
  });

  std::array<double, 2> kernel{}, forward{}, backward{};
  auto fwd = compile<float>(matmul(a, b));
  fwd.bind(a, av).bind(b, bv);
  auto f = sum(matmul(a, b) * r);
  auto both = compile<float>(f, wrt(a, b));  // matmul, then matmul[_,T] and matmul[T,_]
  both.bind(a, av).bind(b, bv).bind(r, rv);
  for (int threads : {1, 2}) {
    tbb::task_arena arena(threads);
    kernels::gemm_dims d{false, false, m, n, k, k, n, n};
    kernel[threads - 1] =
        median_seconds([&] { arena.execute([&] { kernels::gemm<float>(d, av.data(), bv.data(), c.data()); }); });
    fwd.set_threads(threads);
    forward[threads - 1] = median_seconds([&] { fwd.run(); });
    both.set_threads(threads);
    backward[threads - 1] = median_seconds([&] { both.run(); });
  }
  fmt::print("({:>4} x {:>4}) x ({:>4} x {:>4}) | {:>7.1f} | {:>6.1f} {:>6.1f} | {:>6.1f} {:>6.1f} | {:>6.1f} {:>6.1f}\n", m,
             k, k, n, gf(1, raw), gf(1, kernel[0]), gf(1, kernel[1]), gf(1, forward[0]), gf(1, forward[1]),
             gf(3, backward[0]), gf(3, backward[1]));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string_view(argv[1]) == "quick";
  fmt::print("BLAS: {}\n", kernels::blas_description());
  fmt::print("sgemm GFLOP/s, median of {} runs; forward+gradients counts 3 products\n", timed_runs);
  fmt::print("{:<29} | {:>7} | {:>13} | {:>13} | {:>13}\n", "", "cblas", "gemm kernel", "program fwd", "fwd+gradients");
  fmt::print("{:<29} | {:>7} | {:>6} {:>6} | {:>6} {:>6} | {:>6} {:>6}\n", "shape", "1 call", "1 thr", "2 thr", "1 thr",
             "2 thr", "1 thr", "2 thr");
  bench_shape(64, 784, 128);
  bench_shape(512, 512, 512);
  bench_shape(1000, 300, 256);
  if (!quick) bench_shape(2048, 2048, 2048);
}
