// GFLOP/s of float matrix products: typegrad's GEMM kernel (kernels::gemm) on every instruction set
// this CPU runs, with 1 and 2 threads; then matmul through compiled programs (forward; forward +
// both gradients) on the default instruction set. Each figure is the median and the best of 7
// samples, after a warm-up; a sample repeats the product for at least 20 ms.
//
//   bench_matmul                     all shapes
//   bench_matmul quick               skips the 1024^3 product
//   bench_matmul --impl NAME [quick] matmul alone by its implementation NAME (kernels/gemm.hpp) on
//                                    the same shapes, 1 and 2 threads, on the default instruction
//                                    set: to compare implementations (the reference takes seconds
//                                    per 1024^3 product)
//
// The shapes: square products, and the dense layers of examples/fashion_mnist_cnn.cpp at batch 64
// (3136 -> 128 and 128 -> 10), forward and both backward forms (a transposed A for the weight
// gradient, a transposed B for the input gradient).
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <random>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <tbb/task_arena.h>

#include <typegrad/kernels/gemm.hpp>
#include <typegrad/typegrad.hpp>

using namespace typegrad;

namespace {

constexpr int samples = 7;

struct timing {
  double median, best;  // seconds per call
};

template <class F>
timing time_calls(F&& f) {
  using clock = std::chrono::steady_clock;
  f();  // warm-up: first touch of buffers, packing buffers, program planning
  auto t0 = clock::now();
  f();
  const double once = std::chrono::duration<double>(clock::now() - t0).count();
  const int reps = std::max(1, int(0.02 / std::max(once, 1e-9)));
  std::array<double, samples> t{};
  for (auto& s : t) {
    t0 = clock::now();
    for (int r = 0; r < reps; ++r) f();
    s = std::chrono::duration<double>(clock::now() - t0).count() / reps;
  }
  std::sort(t.begin(), t.end());
  return {t[samples / 2], t[0]};
}

// A rows x cols matrix of values in [-1, 1), 64-byte aligned like every tensor.
tensor<float, 2> random_matrix(std::size_t rows, std::size_t cols, unsigned seed) {
  tensor<float, 2> t({rows, cols});
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& x : t) x = u(rng);
  return t;
}

struct product_shape {
  bool trans_a, trans_b;
  std::size_t m, n, k;
  const char* what;
};

std::string label(const product_shape& s) {
  // op(A) (m x k) times op(B) (k x n), written with the stored matrices
  const auto a = s.trans_a ? fmt::format("({} x {})^T", s.k, s.m) : fmt::format("({} x {})", s.m, s.k);
  const auto b = s.trans_b ? fmt::format("({} x {})^T", s.n, s.k) : fmt::format("({} x {})", s.k, s.n);
  return fmt::format("{} {}", a, b);
}

void bench_kernel(const product_shape& s) {
  const kernels::gemm_dims d{s.trans_a, s.trans_b, s.m, s.n, s.k, s.trans_a ? s.m : s.k, s.trans_b ? s.k : s.n, s.n};
  const auto a = s.trans_a ? random_matrix(s.k, s.m, 1) : random_matrix(s.m, s.k, 1);
  const auto b = s.trans_b ? random_matrix(s.n, s.k, 2) : random_matrix(s.k, s.n, 2);
  tensor<float, 2> c({s.m, s.n});
  const double gflop = 2e-9 * double(s.m) * double(s.n) * double(s.k);
  std::string row = fmt::format("{:<28} {:<18}", label(s), s.what);
  for (auto isa : {kernels::instruction_set::avx512, kernels::instruction_set::avx2, kernels::instruction_set::portable}) {
    if (!kernels::gemm_isa_supported(isa)) {
      row += fmt::format(" | {:>23}", "-");
      continue;
    }
    kernels::set_gemm_isa(isa);
    for (int threads : {1, 2}) {
      tbb::task_arena arena(threads);
      const timing t = time_calls([&] { arena.execute([&] { kernels::gemm<float>(d, a.data(), b.data(), c.data()); }); });
      row += fmt::format("{} {:>5.0f} {:>5.0f}", threads == 1 ? " |" : " ", gflop / t.median, gflop / t.best);
    }
  }
  fmt::print("{}\n", row);
  std::fflush(stdout);
}

// --impl: matmul by implementation `impl` on s's product, as bench_kernel times kernels::gemm.
void bench_implementation(std::string_view impl, const product_shape& s) {
  const auto a = s.trans_a ? random_matrix(s.k, s.m, 1) : random_matrix(s.m, s.k, 1);
  const auto b = s.trans_b ? random_matrix(s.n, s.k, 2) : random_matrix(s.k, s.n, 2);
  tensor<float, 2> c({s.m, s.n});
  const kernels::matmul_form form{s.trans_a, s.trans_b, false};
  const double gflop = 2e-9 * double(s.m) * double(s.n) * double(s.k);
  std::string row = fmt::format("{:<28} {:<18}", label(s), s.what);
  for (int threads : {1, 2}) {
    tbb::task_arena arena(threads);
    auto run = [&] { kernels::matmul_with<float>(impl, c.as_view(), a.as_view(), b.as_view(), form); };
    const timing t = time_calls([&] { arena.execute(run); });
    row += fmt::format(" | {:>5.0f} {:>5.0f}", gflop / t.median, gflop / t.best);
  }
  fmt::print("{}\n", row);
  std::fflush(stdout);
}

constexpr var<"a", 2> a;
constexpr var<"b", 2> b;
constexpr var<"r", 2> r;

void bench_program(std::size_t m, std::size_t k, std::size_t n) {
  const double gflop = 2e-9 * double(m) * double(n) * double(k);
  const auto av = random_matrix(m, k, 1), bv = random_matrix(k, n, 2), rv = random_matrix(m, n, 3);
  auto fwd = compile<float>(matmul(a, b));
  fwd.bind(a, av).bind(b, bv);
  auto both = compile<float>(sum(matmul(a, b) * r), wrt(a, b));  // matmul, then matmul[_,T] and matmul[T,_]
  both.bind(a, av).bind(b, bv).bind(r, rv);
  std::string row = fmt::format("{:<28}", fmt::format("({} x {}) ({} x {})", m, k, k, n));
  for (int threads : {1, 2}) {
    fwd.set_threads(threads);
    const timing f = time_calls([&] { fwd.run(); });
    row += fmt::format(" | {:>5.0f} {:>5.0f}", gflop / f.median, gflop / f.best);
  }
  for (int threads : {1, 2}) {
    both.set_threads(threads);
    const timing g = time_calls([&] { both.run(); });
    row += fmt::format(" | {:>5.0f} {:>5.0f}", 3 * gflop / g.median, 3 * gflop / g.best);
  }
  fmt::print("{}\n", row);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  const bool by_implementation = !args.empty() && args[0] == "--impl";
  const std::size_t options = by_implementation ? 2 : 0;
  const bool quick = args.size() == options + 1 && args[options] == "quick";
  const auto names = kernels::matmul_implementations();
  if ((by_implementation && (args.size() < 2 || std::find(names.begin(), names.end(), args[1]) == names.end())) ||
      args.size() > options + quick) {
    fmt::print(stderr, "usage: bench_matmul [--impl NAME] [quick], NAME one of: {}\n", fmt::join(names, ", "));
    return 2;
  }
  const std::vector<product_shape> shapes{
      {false, false, 512, 512, 512, "square"},
      {false, false, 1024, 1024, 1024, "square"},
      {false, false, 64, 128, 3136, "dense 3136->128"},
      {true, false, 3136, 128, 64, "  its weight grad"},
      {false, true, 64, 3136, 128, "  its input grad"},
      {false, false, 64, 10, 128, "dense 128->10"},
      {true, false, 128, 10, 64, "  its weight grad"},
      {false, true, 64, 128, 10, "  its input grad"},
  };
  auto measured = [&](const product_shape& s) { return !quick || s.m * s.n * s.k < (std::size_t{1} << 30); };
  const auto default_isa = kernels::gemm_isa();
  fmt::print("{}\n", kernels::gemm_description());
  if (by_implementation) {
    fmt::print("kernels::matmul_with<float>(\"{}\", ...), GFLOP/s: median and best of {} samples\n", args[1], samples);
    fmt::print("{:<28} {:<18} | {:^11} | {:^11}\n", "op(A) op(B)", "", "1 thread", "2 threads");
    for (const auto& s : shapes)
      if (measured(s)) bench_implementation(args[1], s);
    return 0;
  }
  fmt::print("kernels::gemm<float>, GFLOP/s: median and best of {} samples, per instruction set and thread count\n",
             samples);
  fmt::print("{:<28} {:<18} | {:^23} | {:^23} | {:^23}\n", "op(A) op(B)", "", "avx512", "avx2", "portable");
  fmt::print("{:<28} {:<18} | {:^11} {:^11} | {:^11} {:^11} | {:^11} {:^11}\n", "", "", "1 thread", "2 threads",
             "1 thread", "2 threads", "1 thread", "2 threads");
  for (const auto& s : shapes)
    if (measured(s)) bench_kernel(s);

  kernels::set_gemm_isa(default_isa);
  fmt::print("\nmatmul through programs ({} kernels), GFLOP/s, median and best; forward + gradients counts 3 "
             "products\n",
             kernels::isa_name(default_isa));
  fmt::print("{:<28} | {:^11} | {:^11} | {:^11} | {:^11}\n", "(M x K) (K x N)", "fwd 1 thr", "fwd 2 thr", "grad 1 thr",
             "grad 2 thr");
  bench_program(512, 512, 512);
  bench_program(64, 3136, 128);
  bench_program(64, 128, 10);
}
