#define BOOST_TEST_MODULE pool_implementations
// Every implementation of every pooling kernel (kernels/pool.hpp's lists), run by name on every
// shape of a fixed set where it applies, against the library's reference implementation: the max
// kernels bitwise where each output is one value of the input or one g (max_pool, max_pool_gather),
// and bitwise the general implementation's result (max_pool_backward, with and without relu's
// mask); the averages within a few eps (avg_pool's 2x2 bitwise its 2d). 1 and 2 threads bitwise; that each implementation applies
// to some shape of the set (so none goes untested); and which one the default dispatch picks for
// known shapes. Kernels are called directly: no programs, no graphs. ctest runs this file again
// with TYPEGRAD_ISA=avx2 and portable (the 2x2 kernels are compiled per instruction set).
#include <boost/test/unit_test.hpp>

#include <typegrad/core/errors.hpp>
#include <typegrad/kernels/pool.hpp>
#include <typegrad/ops/pool.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <tbb/task_arena.h>

#include "support.hpp"

using namespace typegrad;
using kernels::pool_kernel;
using kernels::pool_window;
using test_support::max_error;
using test_support::same_bits;

namespace {

constexpr pool_kernel pool_kernels[] = {pool_kernel::max_pool, pool_kernel::avg_pool, pool_kernel::max_pool_gather,
                                        pool_kernel::max_pool_backward, pool_kernel::avg_pool_transpose};

// A window and stride per ordered dim.
pool_window pool_window_of(std::vector<std::size_t> size, std::vector<std::size_t> stride) {
  pool_window w;
  w.dims = size.size();
  std::copy(size.begin(), size.end(), w.size.begin());
  std::copy(stride.begin(), stride.end(), w.stride.begin());
  return w;
}

struct shape_case {
  shape x;
  pool_window w;
};

// The shape classes the implementations claim (see the file comment of src/kernels/pool.cpp):
// 1-d, 2-d and 3-d; 2x2 windows of stride 2 over even extents; odd extents (clipped windows);
// windows that tile the input, that overlap (s < v) and that leave gaps (s > v); windows larger
// than the input; channels 1, 3, 15, 16, 17, 33 (not multiples of the vector width); batch 1; and
// a few large enough to be cut into several tasks.
std::vector<shape_case> shape_cases() {
  return {
      // 1-d
      {{2, 9, 3}, pool_window_of({2}, {2})},
      {{1, 7, 17}, pool_window_of({3}, {2})},
      {{3, 11, 16}, pool_window_of({3}, {1})},
      {{2, 10, 15}, pool_window_of({2}, {3})},
      {{1, 3, 33}, pool_window_of({5}, {5})},
      // 2-d, 2x2 windows of stride 2 over even extents
      {{2, 6, 8, 16}, pool_window_of({2, 2}, {2, 2})},
      {{1, 4, 4, 1}, pool_window_of({2, 2}, {2, 2})},
      {{3, 8, 6, 33}, pool_window_of({2, 2}, {2, 2})},
      {{2, 4, 10, 15}, pool_window_of({2, 2}, {2, 2})},
      {{1, 2, 2, 17}, pool_window_of({2, 2}, {2, 2})},
      // 2-d, clipped, tiling, overlapping, gapped and oversized windows
      {{2, 5, 7, 3}, pool_window_of({2, 2}, {2, 2})},
      {{2, 6, 7, 16}, pool_window_of({2, 2}, {2, 2})},
      {{1, 7, 8, 17}, pool_window_of({3, 3}, {3, 3})},
      {{2, 7, 6, 16}, pool_window_of({3, 3}, {2, 2})},
      {{2, 6, 9, 3}, pool_window_of({3, 2}, {1, 2})},
      {{1, 8, 7, 15}, pool_window_of({2, 2}, {3, 3})},
      {{2, 3, 2, 15}, pool_window_of({4, 4}, {4, 4})},
      {{2, 3, 4, 33}, pool_window_of({1, 1}, {1, 1})},
      // 3-d
      {{2, 4, 6, 4, 3}, pool_window_of({2, 2, 2}, {2, 2, 2})},
      {{1, 5, 4, 6, 16}, pool_window_of({3, 2, 2}, {2, 1, 2})},
      {{1, 3, 3, 3, 17}, pool_window_of({3, 3, 3}, {3, 3, 3})},
      // several tasks
      {{4, 32, 30, 16}, pool_window_of({2, 2}, {2, 2})},
      {{3, 33, 31, 16}, pool_window_of({3, 3}, {2, 3})},
      {{2, 64, 24}, pool_window_of({3}, {2})},
      {{2, 12, 10, 8, 16}, pool_window_of({2, 2, 2}, {2, 2, 2})},
  };
}

std::string to_string(const shape_case& c) {
  return fmt::format("x {}, window ({}), stride ({})", c.x,
                     fmt::join(c.w.size.begin(), c.w.size.begin() + c.w.dims, ", "),
                     fmt::join(c.w.stride.begin(), c.w.stride.begin() + c.w.dims, ", "));
}

// Values in [-1, 1], a third of them rounded to halves: ties in max windows (the first maximum in
// window order wins), +0 and -0 among them.
template <class T>
std::vector<T> random_values(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double e = u(rng);
    v[i] = T(i % 3 == 0 ? std::round(2 * e) / 2 : e);
  }
  return v;
}

bool pooled_output(pool_kernel k) {
  return k == pool_kernel::max_pool || k == pool_kernel::avg_pool || k == pool_kernel::max_pool_gather;
}

// One case's tensors: x, the values h that max_pool_gather picks, and an adjoint g of the pooled
// output.
template <class T>
struct problem {
  shape xs, ps;
  pool_window w;
  std::vector<T> x, h, g;

  problem(const shape_case& c, unsigned seed)
      : xs(c.x),
        ps(detail::pooled_shape(c.x, c.w)),
        w(c.w),
        x(random_values<T>(xs.numel(), seed)),
        h(random_values<T>(xs.numel(), seed + 1)),
        g(random_values<T>(ps.numel(), seed + 2)) {}

  // Kernel k by implementation `name` (empty: the kernel without a name, which runs the first
  // that applies) on `threads` threads, into an output that holds garbage (to be overwritten).
  std::vector<T> run(pool_kernel k, std::string_view name, int threads, bool positive_only = false) const {
    const shape& os = pooled_output(k) ? ps : xs;
    std::vector<T> out(os.numel(), T(7));
    const view<T> o{out.data(), os};
    const view<const T> xv{x.data(), xs}, hv{h.data(), xs}, gv{g.data(), ps};
    tbb::task_arena(threads).execute([&] {
      switch (k) {
        case pool_kernel::max_pool:
          if (name.empty()) kernels::max_pool<T>(o, xv, w);
          else kernels::max_pool_with<T>(name, o, xv, w);
          break;
        case pool_kernel::avg_pool:
          if (name.empty()) kernels::avg_pool<T>(o, xv, w);
          else kernels::avg_pool_with<T>(name, o, xv, w);
          break;
        case pool_kernel::max_pool_gather:
          if (name.empty()) kernels::max_pool_gather<T>(o, hv, xv, w);
          else kernels::max_pool_gather_with<T>(name, o, hv, xv, w);
          break;
        case pool_kernel::max_pool_backward:
          if (name.empty()) kernels::max_pool_backward<T>(o, gv, xv, w, positive_only);
          else kernels::max_pool_backward_with<T>(name, o, gv, xv, w, positive_only);
          break;
        case pool_kernel::avg_pool_transpose:
          if (name.empty()) kernels::avg_pool_transpose<T>(o, gv, w);
          else kernels::avg_pool_transpose_with<T>(name, o, gv, w);
          break;
      }
    });
    return out;
  }

  // For the sums (averages, and max_pool_backward's overlapping windows): 4 eps per term summed
  // (plus one), a sum having at most a window's volume of terms of magnitude at most 1.
  double tolerance() const {
    std::size_t volume = 1;
    for (std::size_t d = 0; d < w.dims; ++d) volume *= w.size[d];
    return 4 * std::numeric_limits<T>::epsilon() * double(volume + 1);
  }
};

template <class T>
void check_every_implementation() {
  const auto cases = shape_cases();
  std::map<std::pair<pool_kernel, std::string_view>, int> applied;  // cases per implementation
  unsigned seed = 1;
  for (const auto& c : cases) {
    const problem<T> pr(c, seed += 3);
    const std::string what = to_string(c);
    for (const pool_kernel k : pool_kernels) {
      const std::string_view chosen = kernels::pool_chosen<T>(k, c.x, c.w);
      const bool exact = k == pool_kernel::max_pool || k == pool_kernel::max_pool_gather;
      for (const bool positive_only : {false, true}) {
        if (positive_only && k != pool_kernel::max_pool_backward) continue;
        const auto want = pr.run(k, "reference", 1, positive_only);
        const auto general = pr.run(k, "general", 1, positive_only);
        for (const std::string_view name : kernels::pool_implementations(k)) {
          if (!kernels::pool_applies<T>(k, name, c.x, c.w)) continue;
          if (!positive_only) ++applied[{k, name}];
          if (name == "reference") continue;
          const std::string label = fmt::format("{} {}{}: {}", kernels::pool_kernel_name(k), name,
                                                positive_only ? " positive_only" : "", what);
          const auto one = pr.run(k, name, 1, positive_only);
          if (exact) BOOST_TEST(same_bits(one, want), label);
          else BOOST_TEST(max_error(one, want) <= pr.tolerance(), label);
          if (k == pool_kernel::max_pool_backward)
            BOOST_TEST(same_bits(one, general), label << ": differs from general");
          if (k == pool_kernel::avg_pool && name == "2x2")  // 2d's sums, held in registers
            BOOST_TEST(same_bits(one, pr.run(k, "2d", 1)), label << ": differs from 2d");
          BOOST_TEST(same_bits(one, pr.run(k, name, 2, positive_only)), label << ": 1 and 2 threads differ");
          if (name == chosen)
            BOOST_TEST(same_bits(one, pr.run(k, {}, 2, positive_only)),
                       label << ": the kernel without a name differs from its choice");
        }
      }
    }
  }
  for (const pool_kernel k : pool_kernels)
    for (const std::string_view name : kernels::pool_implementations(k)) {
      const int n = applied[{k, name}];
      BOOST_TEST_MESSAGE(kernels::pool_kernel_name(k) << " " << name << ": " << n << " shapes");
      BOOST_TEST(n > 0, kernels::pool_kernel_name(k) << " " << name << " applies to no shape of the set");
      if (name == "reference") BOOST_TEST(n == int(cases.size()), "the reference applies to every shape");
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(lists_end_with_the_reference) {
  for (const pool_kernel k : pool_kernels) {
    const auto names = kernels::pool_implementations(k);
    BOOST_TEST_REQUIRE(names.size() >= 2u);
    BOOST_TEST(names.back() == "reference");
    for (std::size_t i = 0; i < names.size(); ++i)
      BOOST_TEST(std::count(names.begin(), names.end(), names[i]) == 1, names[i] << " appears twice");
  }
  using names = std::vector<std::string_view>;
  BOOST_TEST((kernels::pool_implementations(pool_kernel::max_pool) == names{"2x2", "2d", "general", "reference"}));
  BOOST_TEST((kernels::pool_implementations(pool_kernel::avg_pool) == names{"2x2", "2d", "general", "reference"}));
  BOOST_TEST((kernels::pool_implementations(pool_kernel::max_pool_gather) == names{"general", "reference"}));
  BOOST_TEST((kernels::pool_implementations(pool_kernel::max_pool_backward) ==
              names{"2x2", "tiled_2d", "argmax_map_2d", "general", "reference"}));
  BOOST_TEST((kernels::pool_implementations(pool_kernel::avg_pool_transpose) ==
              names{"tiled_2d", "general", "reference"}));
}

BOOST_AUTO_TEST_CASE(every_implementation_matches_the_reference_float) { check_every_implementation<float>(); }
BOOST_AUTO_TEST_CASE(every_implementation_matches_the_reference_double) { check_every_implementation<double>(); }

// The default dispatch (the first that applies) on the example CNN's and bench_pool's shapes and a
// few more. (check_every_implementation checks that the kernels without a name run what
// pool_chosen names.)
BOOST_AUTO_TEST_CASE(default_dispatch_picks_the_measured_choice) {
  struct expected {
    shape_case c;
    std::string_view max_pool, avg_pool, max_pool_gather, max_pool_backward, avg_pool_transpose;
  };
  const expected cases[] = {
      // the Fashion-MNIST CNN's two 2x2 pools, and bench_pool's
      {{{64, 28, 28, 32}, pool_window_of({2, 2}, {2, 2})}, "2x2", "2x2", "general", "2x2", "tiled_2d"},
      {{{64, 14, 14, 64}, pool_window_of({2, 2}, {2, 2})}, "2x2", "2x2", "general", "2x2", "tiled_2d"},
      {{{32, 56, 56, 64}, pool_window_of({2, 2}, {2, 2})}, "2x2", "2x2", "general", "2x2", "tiled_2d"},
      // 2x2 over odd extents (clipped windows); 3x3 stride 2 (overlapping)
      {{{8, 7, 7, 64}, pool_window_of({2, 2}, {2, 2})}, "2d", "2d", "general", "tiled_2d", "tiled_2d"},
      {{{8, 14, 14, 64}, pool_window_of({3, 3}, {2, 2})}, "2d", "2d", "general", "argmax_map_2d", "general"},
      // the Inception network's pooling branch: 3x3 stride 1, overlapping
      {{{64, 14, 14, 32}, pool_window_of({3, 3}, {1, 1})}, "2d", "2d", "general", "argmax_map_2d", "general"},
      // 1-d and 3-d (the sequence and volume examples pool by 2)
      {{{32, 128, 32}, pool_window_of({2}, {2})}, "general", "general", "general", "general", "general"},
      {{{8, 16, 16, 16, 16}, pool_window_of({2, 2, 2}, {2, 2, 2})},
       "general", "general", "general", "general", "general"},
  };
  for (const auto& e : cases) {
    const std::string what = to_string(e.c);
    auto chosen = [&](pool_kernel k) { return kernels::pool_chosen<float>(k, e.c.x, e.c.w); };
    BOOST_TEST(chosen(pool_kernel::max_pool) == e.max_pool, what);
    BOOST_TEST(chosen(pool_kernel::avg_pool) == e.avg_pool, what);
    BOOST_TEST(chosen(pool_kernel::max_pool_gather) == e.max_pool_gather, what);
    BOOST_TEST(chosen(pool_kernel::max_pool_backward) == e.max_pool_backward, what);
    BOOST_TEST(chosen(pool_kernel::avg_pool_transpose) == e.avg_pool_transpose, what);
    BOOST_TEST(kernels::pool_chosen<double>(pool_kernel::max_pool, e.c.x, e.c.w) == e.max_pool, what);
  }
}

BOOST_AUTO_TEST_CASE(errors_name_the_kernel_implementation_and_shapes) {
  const shape xs{2, 5, 7, 3}, gs{2, 3, 4, 3};
  const pool_window w = pool_window_of({2, 2}, {2, 2});
  std::vector<float> x(xs.numel()), g(gs.numel()), dx(xs.numel());
  auto message = [&](std::string_view name) {
    return test_support::error_message(
        [&] { kernels::max_pool_backward_with<float>(name, {dx.data(), xs}, {g.data(), gs}, {x.data(), xs}, w); });
  };
  const std::string not_applying = message("2x2");
  BOOST_TEST(not_applying ==
                 "max_pool_backward: implementation \"2x2\" does not apply to x (2, 5, 7, 3), window (2, 2), "
                 "stride (2, 2)",
             not_applying);
  const std::string unknown = message("2d");
  BOOST_TEST(unknown == "max_pool_backward: no implementation \"2d\" (there are: 2x2, tiled_2d, argmax_map_2d, general, reference)",
             unknown);
  BOOST_CHECK_THROW((void)kernels::pool_applies<double>(pool_kernel::max_pool_gather, "2d", xs, w), error);
  BOOST_TEST(!kernels::pool_applies<float>(pool_kernel::max_pool, "2x2", xs, w));  // odd extents
  BOOST_TEST(kernels::pool_applies<float>(pool_kernel::max_pool, "2x2", shape{2, 6, 8, 3}, w));
}
