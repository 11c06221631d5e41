#define BOOST_TEST_MODULE gemm
#include <boost/test/unit_test.hpp>

// typegrad's GEMM and narrow kernel on every instruction set this CPU runs, against the library's
// naive reference product (matmul's "reference"); the choice of instruction set (TYPEGRAD_ISA,
// set_gemm_isa); and bitwise equal results across thread counts, tilings and concurrent calls.
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <typegrad/core/errors.hpp>
#include <typegrad/kernels/gemm.hpp>
#include <typegrad/tensor.hpp>

#include "../src/kernels/narrow.hpp"

using namespace typegrad;
using kernels::instruction_set;

namespace {

constexpr std::array<instruction_set, 3> all_isas{instruction_set::avx512, instruction_set::avx2,
                                                  instruction_set::portable};

// Runs f(isa) on each instruction set the CPU runs, then restores the choice.
template <class F>
void for_each_isa(F&& f) {
  const instruction_set before = kernels::gemm_isa();
  for (auto isa : all_isas) {
    if (!kernels::gemm_isa_supported(isa)) continue;
    kernels::set_gemm_isa(isa);
    BOOST_TEST_CONTEXT("instruction set " << kernels::isa_name(isa)) { f(isa); }
  }
  kernels::set_gemm_isa(before);
}

template <class T>
constexpr T quiet_nan = std::numeric_limits<T>::quiet_NaN();

// rows x cols values in [-1, 1) with row stride ld (64-byte aligned, like tensors); the padding
// between rows is NaN, so a kernel that reads or writes it shows up.
template <class T>
tensor<T, 1> random_matrix(std::size_t rows, std::size_t cols, std::size_t ld, std::mt19937& rng) {
  tensor<T, 1> t({std::max<std::size_t>(rows * ld, 1)});
  std::uniform_real_distribution<double> u(-1, 1);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < ld; ++j) t[r * ld + j] = j < cols ? T(u(rng)) : quiet_nan<T>;
  return t;
}

// The rows x cols matrix stored at p with row stride ld, without its padding; |values| if
// `absolute`.
template <class T>
std::vector<T> tight(const T* p, std::size_t rows, std::size_t cols, std::size_t ld, bool absolute) {
  std::vector<T> t(rows * cols);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < cols; ++j) t[r * cols + j] = absolute ? std::abs(p[r * ld + j]) : p[r * ld + j];
  return t;
}

// The product of kernels::gemm_dims d, C = op(A) op(B), by the library's reference implementation
// (long double sums, rounded to T); and with each element the sum of |op(A)(i, k) op(B)(k, j)| over
// k, that is the product of |A| and |B|: the scale of the rounding error of any summation order.
template <class T>
struct reference_product {
  std::vector<T> value, magnitude;  // m x n, row-major, tight
};
template <class T>
reference_product<T> reference_gemm(const kernels::gemm_dims& d, const T* a, const T* b) {
  const shape as = d.trans_a ? shape{d.k, d.m} : shape{d.m, d.k}, bs = d.trans_b ? shape{d.n, d.k} : shape{d.k, d.n};
  reference_product<T> r{std::vector<T>(d.m * d.n), std::vector<T>(d.m * d.n)};
  for (const bool absolute : {false, true}) {
    const auto at = tight(a, as[0], as[1], d.lda, absolute), bt = tight(b, bs[0], bs[1], d.ldb, absolute);
    kernels::matmul_with<T>("reference", {(absolute ? r.magnitude : r.value).data(), shape{d.m, d.n}},
                            {at.data(), as}, {bt.data(), bs}, {d.trans_a, d.trans_b});
  }
  return r;
}

// Checks c (m x n, row stride ldc) against the reference plus beta c0, elementwise within
// (k + 2) epsilon times the sum of |terms| (the error bound of any summation order, doubled), and
// that the padding of c is still NaN. Returns the number of elements outside the bound.
template <class T>
std::size_t count_wrong(const kernels::gemm_dims& d, const reference_product<T>& want, const T* c0, T beta,
                        const T* c) {
  const long double eps = std::numeric_limits<T>::epsilon();
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < d.m; ++i)
    for (std::size_t j = 0; j < d.ldc; ++j) {
      const T got = c[i * d.ldc + j];
      if (j >= d.n) {
        wrong += !std::isnan(got);
        continue;
      }
      const long double old = beta == T(0) ? 0 : (long double)beta * c0[i * d.ldc + j];
      const long double expected = want.value[i * d.n + j] + old;
      const long double bound = (d.k + 2) * eps * (want.magnitude[i * d.n + j] + std::fabs(old));
      wrong += !(std::fabs((long double)got - expected) <= bound);
    }
  return wrong;
}

struct extents {
  std::size_t m, n, k, pad;  // pad: extra elements per row of every stored matrix
};

// Every extent from 1 to 257 in each position, around the other two at odd sizes; then sizes
// that cross the cache blocks (k over kc: several passes; m over mc; n over nc), and untransposed
// products with few rows and tight, aligned rows of B, which read B in place.
std::vector<extents> reference_cases() {
  std::vector<extents> cases;
  std::size_t i = 0;
  for (std::size_t s : {1, 2, 3, 7, 13, 17, 31, 33, 63, 65, 100, 129, 257}) {
    cases.push_back({s, 33, 17, i++ % 2 * 3});
    cases.push_back({17, s, 33, i++ % 2 * 3});
    cases.push_back({33, 17, s, i++ % 2 * 3});
  }
  for (extents e : {extents{1, 1, 1, 0}, {1, 257, 1, 5}, {257, 1, 65, 0}, {65, 63, 1, 1}, {100, 129, 257, 7},
                    {129, 100, 385, 0}, {31, 65, 800, 3}, {257, 257, 13, 0}, {5, 2100, 9, 2}, {600, 5, 7, 1},
                    {64, 128, 300, 0}, {100, 64, 520, 0}, {128, 256, 40, 0}})
    cases.push_back(e);
  return cases;
}

// gemm_serial with beta 0 (C starts as NaN: it must not be read) and 1 on every instruction set,
// all four transpose forms, against the reference; and kernels::gemm (tiled, parallel) bitwise
// equal to gemm_serial with beta 0, since tiling must not change any element's arithmetic.
template <class T>
void check_products_against_reference() {
  std::mt19937 rng(7);
  for (const extents& e : reference_cases())
    for (int form = 0; form < 4; ++form) {
      const bool ta = form & 1, tb = form & 2;
      const kernels::gemm_dims d{ta, tb, e.m, e.n, e.k, (ta ? e.m : e.k) + e.pad, (tb ? e.k : e.n) + e.pad, e.n + e.pad};
      const auto a = random_matrix<T>(ta ? e.k : e.m, ta ? e.m : e.k, d.lda, rng);
      const auto b = random_matrix<T>(tb ? e.n : e.k, tb ? e.k : e.n, d.ldb, rng);
      const auto c0 = random_matrix<T>(e.m, e.n, d.ldc, rng);
      const auto want = reference_gemm<T>(d, a.data(), b.data());
      for_each_isa([&](instruction_set) {
        BOOST_TEST_CONTEXT("op(A) op(B) = " << (ta ? "A^T" : "A") << (tb ? " B^T" : " B") << ", m " << e.m << ", n "
                                            << e.n << ", k " << e.k << ", padding " << e.pad) {
          auto c = c0;
          kernels::gemm_serial<T>(d, a.data(), b.data(), T(1), c.data());
          BOOST_TEST(count_wrong<T>(d, want, c0.data(), T(1), c.data()) == 0u, "beta 1");
          auto fresh = random_matrix<T>(e.m, 0, d.ldc, rng);  // all NaN
          kernels::gemm_serial<T>(d, a.data(), b.data(), T(0), fresh.data());
          BOOST_TEST(count_wrong<T>(d, want, c0.data(), T(0), fresh.data()) == 0u, "beta 0");
          auto tiled = random_matrix<T>(e.m, 0, d.ldc, rng);
          kernels::gemm<T>(d, a.data(), b.data(), tiled.data());
          BOOST_TEST(std::memcmp(tiled.data(), fresh.data(), tiled.size() * sizeof(T)) == 0,
                     "kernels::gemm differs bitwise from gemm_serial");
        }
      });
    }
}

}  // namespace

// First, before any test changes the choice: the instruction set products start on. ctest runs
// this case again with TYPEGRAD_ISA=portable and with an unknown name (tests/CMakeLists.txt).
BOOST_AUTO_TEST_CASE(first_choice_follows_cpu_and_environment) {
  const char* env = std::getenv("TYPEGRAD_ISA");
  const std::string_view name = env ? env : "";
  if (name.empty()) {
    const auto best = *std::find_if(all_isas.begin(), all_isas.end(), kernels::gemm_isa_supported);
    BOOST_TEST(kernels::isa_name(kernels::gemm_isa()) == kernels::isa_name(best));
    return;
  }
  for (auto isa : all_isas)
    if (name == kernels::isa_name(isa)) {
      BOOST_TEST(kernels::isa_name(kernels::gemm_isa()) == name);
      return;
    }
  BOOST_CHECK_EXCEPTION(kernels::gemm_isa(), typegrad::error, [&](const typegrad::error& e) {
    BOOST_TEST_MESSAGE(e.what());
    return std::string(e.what()).find("TYPEGRAD_ISA=" + std::string(name)) != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(set_gemm_isa_switches_kernels) {
  BOOST_TEST(kernels::gemm_isa_supported(instruction_set::portable));
  const instruction_set before = kernels::gemm_isa();
  for (auto isa : all_isas) {
    if (!kernels::gemm_isa_supported(isa)) {
      BOOST_CHECK_THROW(kernels::set_gemm_isa(isa), typegrad::error);
      continue;
    }
    kernels::set_gemm_isa(isa);
    BOOST_TEST(kernels::isa_name(kernels::gemm_isa()) == kernels::isa_name(isa));
    BOOST_TEST(kernels::gemm_description().find(kernels::isa_name(isa)) != std::string::npos,
               kernels::gemm_description());
  }
  kernels::set_gemm_isa(before);
}

BOOST_AUTO_TEST_CASE(products_match_reference_float) { check_products_against_reference<float>(); }
BOOST_AUTO_TEST_CASE(products_match_reference_double) { check_products_against_reference<double>(); }

BOOST_AUTO_TEST_CASE(empty_sum_scales_c_by_beta) {
  for_each_isa([](instruction_set) {
    std::vector<float> c{1, 2, 3, 4, 5, 6};
    const float none = 0;
    kernels::gemm_serial<float>({false, true, 2, 3, 0, 1, 1, 3}, &none, &none, 1.0f, c.data());
    BOOST_TEST(c == (std::vector<float>{1, 2, 3, 4, 5, 6}), boost::test_tools::per_element());
    kernels::gemm_serial<float>({true, false, 2, 3, 0, 2, 3, 3}, &none, &none, 0.5f, c.data());
    BOOST_TEST(c == (std::vector<float>{0.5, 1, 1.5, 2, 2.5, 3}), boost::test_tools::per_element());
    std::fill(c.begin(), c.end(), quiet_nan<float>);
    kernels::gemm<float>({false, false, 2, 3, 0, 1, 3, 3}, &none, &none, c.data());
    BOOST_TEST(c == (std::vector<float>(6, 0.0f)), boost::test_tools::per_element());
  });
}

namespace {

// The narrow kernel for every width it takes (1 to 8 blocks of 64 bytes), both layouts of A and
// with and without accumulation, with padded rows (NaN) around A, B and C.
template <class T>
void check_narrow_against_reference() {
  constexpr std::size_t block = 64 / sizeof(T);
  std::mt19937 rng(11);
  for (std::size_t n = block; n <= 8 * block; n += block) {
    BOOST_TEST(kernels::narrow_fits<T>(n));
    for (bool ta : {false, true})
      for (auto [m, k] : {std::array<std::size_t, 2>{37, 45}, {1, 300}, {13, 1}, {50, 0}}) {
        const kernels::gemm_dims d{ta, false, m, n, k, (ta ? m : k) + 5, n + block, n + 3};
        const auto a = random_matrix<T>(ta ? k : m, ta ? m : k, d.lda, rng);
        const auto b = random_matrix<T>(k, n, d.ldb, rng);
        const auto c0 = random_matrix<T>(m, n, d.ldc, rng);
        const auto want = reference_gemm<T>(d, a.data(), b.data());
        for_each_isa([&](instruction_set) {
          BOOST_TEST_CONTEXT((ta ? "A^T B" : "A B") << ", m " << m << ", n " << n << ", k " << k) {
            auto c = c0;
            kernels::narrow_product<T>(ta, m, n, k, a.data(), d.lda, b.data(), d.ldb, c.data(), d.ldc, true);
            BOOST_TEST(count_wrong<T>(d, want, c0.data(), T(1), c.data()) == 0u, "accumulating");
            auto fresh = random_matrix<T>(m, 0, d.ldc, rng);
            kernels::narrow_product<T>(ta, m, n, k, a.data(), d.lda, b.data(), d.ldb, fresh.data(), d.ldc, false);
            BOOST_TEST(count_wrong<T>(d, want, c0.data(), T(0), fresh.data()) == 0u, "overwriting");
            // The epilogue, relu(C + bias) as C leaves the registers: bitwise that pass over C.
            std::vector<T> bias(n);
            for (auto& v : bias) v = std::uniform_real_distribution<T>(-1, 1)(rng);
            auto fused = c0;
            kernels::narrow_product<T>(ta, m, n, k, a.data(), d.lda, b.data(), d.ldb, fused.data(), d.ldc, false,
                                       bias.data(), true);
            std::size_t differ = 0;
            for (std::size_t i = 0; i < m; ++i)
              for (std::size_t j = 0; j < n; ++j) {
                const T s = fresh[i * d.ldc + j] + bias[j], r = s < T(0) ? T(0) : s;
                differ += std::memcmp(&r, &fused[i * d.ldc + j], sizeof(T)) != 0;
              }
            BOOST_TEST(differ == 0u, "bias + relu epilogue");
          }
        });
      }
  }
  BOOST_TEST(!kernels::narrow_fits<T>(block / 2));
  BOOST_TEST(!kernels::narrow_fits<T>(9 * block));
}

// One product with its inputs (tight rows), and its result computed alone on one thread.
template <class T>
struct job {
  kernels::gemm_dims d;
  tensor<T, 1> a, b;
  std::vector<T> alone;
};

template <class T>
std::vector<job<T>> make_jobs(std::size_t count, std::size_t lo, std::size_t hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::size_t> extent(lo, hi);
  std::vector<job<T>> jobs;
  for (std::size_t i = 0; i < count; ++i) {
    const bool ta = i & 1, tb = i & 2;
    const std::size_t m = extent(rng), n = extent(rng), k = extent(rng);
    const kernels::gemm_dims d{ta, tb, m, n, k, ta ? m : k, tb ? k : n, n};
    auto a = random_matrix<T>(ta ? k : m, ta ? m : k, d.lda, rng);
    auto b = random_matrix<T>(tb ? n : k, tb ? k : n, d.ldb, rng);
    jobs.push_back({d, std::move(a), std::move(b), std::vector<T>(m * n)});
  }
  tbb::task_arena one(1);
  one.execute([&] {
    for (auto& j : jobs) kernels::gemm<T>(j.d, j.a.data(), j.b.data(), j.alone.data());
  });
  return jobs;
}

// kernels::gemm with 2 threads (products large enough to be cut into tiles, each form of
// transpose, shapes of a dense layer) reproduces the 1-thread result bitwise, run after run.
template <class T>
void check_thread_counts() {
  tbb::global_control allow(tbb::global_control::max_allowed_parallelism, 2);
  tbb::task_arena two(2);
  const std::vector<std::array<std::size_t, 3>> shapes{{300, 260, 200}, {517, 129, 64}, {64, 3136, 128}, {129, 700, 385}};
  for_each_isa([&](instruction_set) {
    std::mt19937 rng(3);
    for (std::size_t s = 0; s < shapes.size(); ++s) {
      const auto [m, n, k] = shapes[s];
      const bool ta = s & 1, tb = s & 2;
      const kernels::gemm_dims d{ta, tb, m, n, k, ta ? m : k, tb ? k : n, n};
      const auto a = random_matrix<T>(ta ? k : m, ta ? m : k, d.lda, rng);
      const auto b = random_matrix<T>(tb ? n : k, tb ? k : n, d.ldb, rng);
      std::vector<T> one_thread(m * n), two_threads(m * n);
      tbb::task_arena one(1);
      one.execute([&] { kernels::gemm<T>(d, a.data(), b.data(), one_thread.data()); });
      for (int run = 0; run < 3; ++run) {
        std::fill(two_threads.begin(), two_threads.end(), T(0));
        two.execute([&] { kernels::gemm<T>(d, a.data(), b.data(), two_threads.data()); });
        BOOST_TEST(std::memcmp(one_thread.data(), two_threads.data(), m * n * sizeof(T)) == 0,
                   "m " << m << ", n " << n << ", k " << k << ", run " << run);
      }
    }
  });
}

// Many products at once on TBB tasks (they share the scratch pool for their packing buffers)
// give bitwise the results of the same products computed one at a time.
template <class T>
void check_concurrent_calls() {
  tbb::global_control allow(tbb::global_control::max_allowed_parallelism, 2);
  tbb::task_arena two(2);
  for_each_isa([&](instruction_set) {
    auto jobs = make_jobs<T>(24, 4, 40, 29);
    for (auto& j : make_jobs<T>(8, 60, 200, 31)) jobs.push_back(std::move(j));
    const std::size_t calls = 40 * jobs.size();
    std::atomic<std::size_t> wrong{0};
    two.execute([&] {
      tbb::parallel_for(
          tbb::blocked_range<std::size_t>(0, calls, 1),
          [&](const tbb::blocked_range<std::size_t>& r) {
            for (std::size_t i = r.begin(); i != r.end(); ++i) {
              const auto& j = jobs[i * 7 % jobs.size()];
              std::vector<T> c(j.alone.size());
              kernels::gemm<T>(j.d, j.a.data(), j.b.data(), c.data());
              wrong += std::memcmp(c.data(), j.alone.data(), c.size() * sizeof(T)) != 0;
            }
          },
          tbb::simple_partitioner{});
    });
    BOOST_TEST(wrong.load() == 0u, wrong.load() << " of " << calls << " concurrent products differ from the product alone");
  });
}

}  // namespace

BOOST_AUTO_TEST_CASE(narrow_products_match_reference_float) { check_narrow_against_reference<float>(); }
BOOST_AUTO_TEST_CASE(narrow_products_match_reference_double) { check_narrow_against_reference<double>(); }

BOOST_AUTO_TEST_CASE(one_and_two_threads_agree_bitwise_float) { check_thread_counts<float>(); }
BOOST_AUTO_TEST_CASE(one_and_two_threads_agree_bitwise_double) { check_thread_counts<double>(); }

BOOST_AUTO_TEST_CASE(concurrent_products_agree_bitwise_float) { check_concurrent_calls<float>(); }
BOOST_AUTO_TEST_CASE(concurrent_products_agree_bitwise_double) { check_concurrent_calls<double>(); }
