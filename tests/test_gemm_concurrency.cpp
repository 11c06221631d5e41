#define BOOST_TEST_MODULE gemm_concurrency
#include <boost/test/unit_test.hpp>

// GEMMs run concurrently from TBB tasks (the tiles of one kernels::gemm, and independent matmul
// nodes of a flow graph) must give bitwise the results of the same products run one at a time.
// A BLAS that is not re-entrant (e.g. a serial OpenBLAS built without USE_LOCKING, whose
// internal buffer allocator then races) corrupts a few products under concurrency; these tests
// run enough concurrent calls of varied shapes to catch that on 2 cores within a few seconds.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <random>
#include <type_traits>
#include <vector>

#include <cblas.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <typegrad/runtime/gemm.hpp>

#include "reference/matmul.hpp"

using namespace typegrad;

namespace {

// Measured with the racy serial OpenBLAS 0.3.21 on 2 cores: the allocator is corrupted only when
// two calls enter it at the same moment, but once two threads share a buffer they keep sharing it
// while their calls overlap, so a run of tiny products from two free-running tasks corrupts either
// thousands of results or none. Calls started in lockstep collide on every run (40-700 corrupted
// results in 40,000 calls, in 0.1 s); threads that miss the rendezvous (a loaded machine) carry on.
constexpr int lanes = 2;
constexpr auto patience = std::chrono::microseconds(50);
constexpr std::size_t calls_per_meeting = 4;

// A reusable two-party meeting point that gives up after `patience` (withdrawing its arrival),
// so it never deadlocks even if TBB runs both lanes on one thread. The state packs the meeting's
// generation (high half) with the number arrived (low half), so a withdrawal cannot cancel an
// arrival at a later meeting.
class rendezvous {
 public:
  void meet() {
    const std::uint64_t before = state_.fetch_add(1);
    const std::uint64_t generation = before >> 32;
    if ((before & 0xffffffffu) + 1 == lanes) {
      state_ = (generation + 1) << 32;
      return;
    }
    const auto deadline = std::chrono::steady_clock::now() + patience;
    while (state_.load() >> 32 == generation) {
      if (std::chrono::steady_clock::now() < deadline) continue;
      std::uint64_t alone = generation << 32 | 1;
      if (state_.compare_exchange_strong(alone, generation << 32)) return;  // nobody came
    }
  }

 private:
  std::atomic<std::uint64_t> state_{0};
};

// One product C = op(A) op(B) (row-major, tight leading dimensions) with its inputs.
template <class T>
struct job {
  kernels::gemm_dims d;
  std::vector<T> a, b, expected;  // expected: the product computed alone
};

template <class T>
std::vector<T> random_values(std::size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<T> u(-1, 1);
  std::vector<T> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// `count` products with extents drawn from [lo, hi], cycling through the transpose combinations.
template <class T>
std::vector<job<T>> make_jobs(std::size_t count, std::size_t lo, std::size_t hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::size_t> extent(lo, hi);
  std::vector<job<T>> jobs(count);
  for (std::size_t i = 0; i < count; ++i) {
    auto& j = jobs[i];
    j.d.trans_a = i & 1;
    j.d.trans_b = i & 2;
    j.d.m = extent(rng);
    j.d.n = extent(rng);
    j.d.k = extent(rng);
    j.d.lda = j.d.trans_a ? j.d.m : j.d.k;
    j.d.ldb = j.d.trans_b ? j.d.k : j.d.n;
    j.d.ldc = j.d.n;
    j.a = random_values<T>(j.d.m * j.d.k, rng);
    j.b = random_values<T>(j.d.k * j.d.n, rng);
  }
  return jobs;
}

template <class T>
void raw_gemm(const kernels::gemm_dims& d, const T* a, const T* b, T* c) {
  const auto ta = d.trans_a ? CblasTrans : CblasNoTrans, tb = d.trans_b ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, int(d.m), int(d.n), int(d.k), 1.0f, a, int(d.lda), b, int(d.ldb), 0.0f, c,
                int(d.ldc));
  else
    cblas_dgemm(CblasRowMajor, ta, tb, int(d.m), int(d.n), int(d.k), 1.0, a, int(d.lda), b, int(d.ldb), 0.0, c,
                int(d.ldc));
}

// Two TBB tasks compute `rounds` x calls_per_meeting products each, meeting before every
// calls_per_meeting calls, each product with
// `call(d, a, b, c)` into the task's own buffer; returns how many differ in any bit from the
// product computed alone.
template <class T, class Call>
std::size_t concurrent_mismatches(const std::vector<job<T>>& jobs, std::size_t rounds, Call call) {
  tbb::global_control allow(tbb::global_control::max_allowed_parallelism, lanes);
  tbb::task_arena arena(lanes);
  rendezvous meeting;
  std::atomic<std::size_t> wrong{0};
  std::size_t largest = 0;
  for (const auto& j : jobs) largest = std::max(largest, j.expected.size());
  arena.execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, lanes, 1),
        [&](const tbb::blocked_range<std::size_t>& r) {
          for (std::size_t lane = r.begin(); lane != r.end(); ++lane) {
            std::vector<T> c(largest);
            for (std::size_t i = 0; i < rounds * calls_per_meeting; ++i) {
              // Both lanes call the same transpose form (which picks the BLAS's code path; only
              // some forms of tiny products allocate), with different extents.
              const auto& j = jobs[(i + lane * 12) % jobs.size()];
              if (i % calls_per_meeting == 0) meeting.meet();
              call(j.d, j.a.data(), j.b.data(), c.data());
              if (std::memcmp(c.data(), j.expected.data(), j.expected.size() * sizeof(T)) != 0) ++wrong;
            }
          }
        },
        tbb::simple_partitioner{});
  });
  return wrong;
}

// Each job's product computed alone, on one thread.
template <class T, class Call>
void compute_expected(std::vector<job<T>>& jobs, Call call) {
  tbb::task_arena one(1);
  one.execute([&] {
    for (auto& j : jobs) {
      j.expected.assign(j.d.m * j.d.n, T(0));
      call(j.d, j.a.data(), j.b.data(), j.expected.data());
    }
  });
}

// The products computed alone agree with the naive reference (so the bitwise comparisons
// compare against right answers).
template <class T>
void check_against_reference(const std::vector<job<T>>& jobs) {
  for (std::size_t i = 0; i < jobs.size(); i += 7) {
    const auto& j = jobs[i];
    const shape as{j.d.trans_a ? j.d.k : j.d.m, j.d.trans_a ? j.d.m : j.d.k};
    const shape bs{j.d.trans_b ? j.d.n : j.d.k, j.d.trans_b ? j.d.k : j.d.n};
    const auto want = reference::matmul<T>(view<const T>{j.a.data(), as}, view<const T>{j.b.data(), bs},
                                           {j.d.trans_a, j.d.trans_b, false}, shape{j.d.m, j.d.n});
    double worst = 0;
    for (std::size_t e = 0; e < want.size(); ++e)
      worst = std::max(worst, std::abs(double(want[e]) - double(j.expected[e])));
    BOOST_TEST(worst <= (std::is_same_v<T, float> ? 1e-4 : 1e-12), "job " << i << ": max error " << worst);
  }
}

// Tiny products: the most calls, so the most entries into the BLAS's allocator, per second.
template <class T>
std::vector<job<T>> stress_jobs(unsigned seed) {
  return make_jobs<T>(48, 4, 32, seed);
}

template <class T>
void stress_raw_blas(std::size_t rounds) {
  auto jobs = stress_jobs<T>(17);
  compute_expected(jobs, raw_gemm<T>);
  check_against_reference(jobs);
  const std::size_t wrong = concurrent_mismatches(jobs, rounds, raw_gemm<T>);
  BOOST_TEST(wrong == 0u, wrong << " of " << rounds * lanes * calls_per_meeting << " concurrent BLAS calls differ from the same call alone ("
                                << kernels::blas_description() << ")");
}

template <class T>
void stress_kernel_gemm(std::size_t rounds) {
  auto jobs = stress_jobs<T>(29);
  compute_expected(jobs, kernels::gemm<T>);
  check_against_reference(jobs);
  const std::size_t wrong = concurrent_mismatches(jobs, rounds, kernels::gemm<T>);
  BOOST_TEST(wrong == 0u, wrong << " of " << rounds * lanes * calls_per_meeting << " concurrent kernels::gemm calls differ");
}

// One kernels::matmul over a batch of small independent products (a batched matmul node): its
// items are serial BLAS calls spread over the threads. Run repeatedly with several threads, it
// must reproduce the one-thread result bitwise.
template <class T>
void stress_batched_matmul(std::size_t repeats) {
  const std::size_t batch = 512, m = 12, k = 20, n = 16;
  std::mt19937 rng(41);
  const auto a = random_values<T>(batch * m * k, rng), b = random_values<T>(batch * k * n, rng);
  const view<const T> av{a.data(), shape{batch, m, k}}, bv{b.data(), shape{batch, k, n}};
  const shape out_shape{batch, m, n};
  std::vector<T> expected(out_shape.numel()), got(out_shape.numel());
  tbb::task_arena one(1);
  one.execute([&] { kernels::matmul<T>(view<T>{expected.data(), out_shape}, av, bv, {}); });
  const auto want = reference::matmul<T>(av, bv, {}, out_shape);
  double worst = 0;
  for (std::size_t e = 0; e < want.size(); ++e) worst = std::max(worst, std::abs(double(want[e]) - double(expected[e])));
  BOOST_TEST(worst <= (std::is_same_v<T, float> ? 1e-5 : 1e-13), "max error " << worst);

  const int threads = std::max(2, tbb::this_task_arena::max_concurrency());
  tbb::global_control allow(tbb::global_control::max_allowed_parallelism, std::size_t(threads));
  tbb::task_arena arena(threads);
  std::size_t wrong = 0;
  for (std::size_t r = 0; r < repeats; ++r) {
    std::fill(got.begin(), got.end(), T(0));
    arena.execute([&] { kernels::matmul<T>(view<T>{got.data(), out_shape}, av, bv, {}); });
    wrong += std::memcmp(got.data(), expected.data(), got.size() * sizeof(T)) != 0;
  }
  BOOST_TEST(wrong == 0u, wrong << " of " << repeats << " batched matmuls on " << threads
                                << " threads differ from the one-thread result");
}

}  // namespace

// Raw concurrent BLAS calls are only expected to be right on a re-entrant BLAS; with the serial
// OpenBLAS loaded, typegrad serialises its own calls and the kernel tests below still apply.
boost::test_tools::assertion_result reentrant_blas(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result r(kernels::blas_is_reentrant());
  r.message() << "not re-entrant: " << kernels::blas_description();
  return r;
}
BOOST_AUTO_TEST_CASE(blas_is_reentrant_float, *boost::unit_test::precondition(reentrant_blas)) {
  stress_raw_blas<float>(5000);
}
BOOST_AUTO_TEST_CASE(blas_is_reentrant_double, *boost::unit_test::precondition(reentrant_blas)) {
  stress_raw_blas<double>(5000);
}
BOOST_AUTO_TEST_CASE(kernel_gemm_concurrent_float) { stress_kernel_gemm<float>(5000); }
BOOST_AUTO_TEST_CASE(kernel_gemm_concurrent_double) { stress_kernel_gemm<double>(5000); }
BOOST_AUTO_TEST_CASE(batched_matmul_concurrent_float) { stress_batched_matmul<float>(400); }
BOOST_AUTO_TEST_CASE(batched_matmul_concurrent_double) { stress_batched_matmul<double>(400); }
