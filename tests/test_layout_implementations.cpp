#define BOOST_TEST_MODULE layout_implementations
// Every implementation of every layout kernel (kernels/layout.hpp's lists), run by name on every
// call of a fixed set where it applies, against the library's reference implementation, bitwise
// (the kernels only move data); 1 and 2 threads bitwise; that each implementation applies to some
// call of the set (so none goes untested); which one the default dispatch picks; and the errors.
// Kernels are called directly: no programs, no graphs.
#include <boost/test/unit_test.hpp>

#include <typegrad/core/errors.hpp>
#include <typegrad/kernels/layout.hpp>

#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <tbb/task_arena.h>

#include "support.hpp"

using namespace typegrad;
using kernels::axis_values;
using kernels::layout_kernel;
using test_support::error_message;
using test_support::same_bits;

namespace {

constexpr layout_kernel layout_kernels[] = {layout_kernel::slice, layout_kernel::unslice, layout_kernel::concat,
                                            layout_kernel::permute};

// Distinct non-zero values: a misplaced element, or a zero where a value belongs, cannot go
// unnoticed.
template <class T>
std::vector<T> iota_values(std::size_t n) {
  std::vector<T> v(n);
  std::iota(v.begin(), v.end(), T(1));
  return v;
}

std::string values_text(const axis_values& v, std::size_t rank) {
  return fmt::format("({})", fmt::join(v.begin(), v.begin() + rank, ", "));
}

// One call of a layout kernel on fixed inputs. run(name) runs it by implementation `name` (empty:
// the kernel without a name, which runs the first that applies) into an output that holds garbage
// (to be overwritten), and returns the output.
template <class T>
struct layout_call {
  layout_kernel kernel;
  std::string what;
  std::function<bool(std::string_view)> applies;
  std::function<std::string_view()> chosen;
  std::function<std::vector<T>(std::string_view)> run;
};

// slice, unslice and concat: every implementation applies, the first is the default.
bool every_one_applies(std::string_view) { return true; }
std::function<std::string_view()> first_of(layout_kernel k) {
  return [k] { return kernels::layout_implementations(k).front(); };
}

// slice of x (shape xs) to `out`, and unslice of that slice back into xs.
template <class T>
void add_slice_and_unslice(std::vector<layout_call<T>>& calls, const shape& xs, const axis_values& begin,
                           const axis_values& step, const shape& out) {
  const std::string box = fmt::format("begin {}, step {}", values_text(begin, xs.rank()), values_text(step, xs.rank()));
  const auto x = iota_values<T>(xs.numel()), part = iota_values<T>(out.numel());
  calls.push_back({layout_kernel::slice, fmt::format("x {} to {}, {}", xs, out, box), every_one_applies,
                   first_of(layout_kernel::slice), [=](std::string_view name) {
                     std::vector<T> y(out.numel(), T(-7));
                     const view<T> o{y.data(), out};
                     const view<const T> xv{x.data(), xs};
                     if (name.empty()) kernels::slice<T>(o, xv, begin, step);
                     else kernels::slice_with<T>(name, o, xv, begin, step);
                     return y;
                   }});
  calls.push_back({layout_kernel::unslice, fmt::format("x {} into {}, {}", out, xs, box), every_one_applies,
                   first_of(layout_kernel::unslice), [=](std::string_view name) {
                     std::vector<T> y(xs.numel(), T(-7));
                     const view<T> o{y.data(), xs};
                     const view<const T> pv{part.data(), out};
                     if (name.empty()) kernels::unslice<T>(o, pv, begin, step);
                     else kernels::unslice_with<T>(name, o, pv, begin, step);
                     return y;
                   }});
}

template <class T>
void add_concat(std::vector<layout_call<T>>& calls, const std::vector<shape>& shapes, std::size_t axis) {
  std::vector<std::vector<T>> parts;
  shape out = shapes[0];
  out[axis] = 0;
  T next = 1;  // values distinct across the parts too
  for (const auto& s : shapes) {
    parts.emplace_back(s.numel());
    for (auto& v : parts.back()) v = next++;
    out[axis] += s[axis];
  }
  calls.push_back({layout_kernel::concat, fmt::format("{} along {}", fmt::join(shapes, ", "), axis), every_one_applies,
                   first_of(layout_kernel::concat), [=](std::string_view name) {
                     std::vector<view<const T>> views;
                     for (std::size_t k = 0; k < shapes.size(); ++k) views.push_back({parts[k].data(), shapes[k]});
                     std::vector<T> y(out.numel(), T(-7));
                     const view<T> o{y.data(), out};
                     if (name.empty()) kernels::concat<T>(o, views, axis);
                     else kernels::concat_with<T>(name, o, views, axis);
                     return y;
                   }});
}

template <class T>
void add_permute(std::vector<layout_call<T>>& calls, const shape& xs, const axis_values& perm) {
  shape out = xs;
  for (std::size_t k = 0; k < xs.rank(); ++k) out[k] = xs[perm[k]];
  const auto x = iota_values<T>(xs.numel());
  calls.push_back({layout_kernel::permute, fmt::format("x {}, perm {}", xs, values_text(perm, xs.rank())),
                   [=](std::string_view name) { return kernels::permute_applies(name, xs, perm); },
                   [=] { return kernels::permute_chosen(xs, perm); },
                   [=](std::string_view name) {
                     std::vector<T> y(out.numel(), T(-7));
                     const view<T> o{y.data(), out};
                     const view<const T> xv{x.data(), xs};
                     if (name.empty()) kernels::permute<T>(o, xv, perm);
                     else kernels::permute_with<T>(name, o, xv, perm);
                     return y;
                   }});
}

// The classes the implementations claim (src/kernels/layout.cpp): rank 1; whole axes (merged into
// one run), strided and extent-1 axes, a single element, empty boxes, parts and outputs; long runs
// and rows split for the parallel paths (a crop of the batch, long rows, 1-d); DenseNet's channel
// concat and concat along the batch; permutes that keep the memory order (identity, moving only
// extent-1 axes, all extents 1), keep the contiguous axis last, or move it (NHWC <-> NCHW with tile
// remainders, full tiles with power-of-two strides, few channels, a batched matrix transpose).
template <class T>
std::vector<layout_call<T>> layout_calls() {
  std::vector<layout_call<T>> calls;
  auto slices = [&](const shape& xs, const axis_values& begin, const axis_values& step, const shape& out) {
    add_slice_and_unslice<T>(calls, xs, begin, step, out);
  };
  slices({9}, {1}, {2}, {4});
  slices({3, 4, 5}, {0, 0, 0}, {1, 1, 1}, {3, 4, 5});
  slices({3, 4, 5}, {1, 0, 2}, {1, 1, 1}, {2, 4, 3});
  slices({3, 1, 7}, {0, 0, 1}, {2, 1, 3}, {2, 1, 2});
  slices({1, 1, 1}, {0, 0, 0}, {1, 1, 1}, {1, 1, 1});
  slices({4, 5}, {2, 0}, {1, 1}, {0, 5});
  slices({8, 64, 64, 12}, {0, 0, 0, 4}, {1, 1, 1, 1}, {8, 64, 64, 6});
  slices({8, 64, 64, 12}, {0, 1, 3, 0}, {1, 2, 3, 1}, {8, 32, 21, 12});
  slices({10, 50, 200}, {2, 0, 0}, {1, 1, 1}, {7, 50, 200});
  slices({3, 3, 90001}, {1, 0, 5}, {1, 2, 1}, {2, 2, 80000});
  slices({200000}, {17}, {1}, {150001});

  add_concat<T>(calls, {{7}, {9}}, 0);
  add_concat<T>(calls, {{2, 3}, {2, 0}, {2, 4}}, 1);
  add_concat<T>(calls, {{1, 5}, {3, 5}}, 0);
  add_concat<T>(calls, {{0, 4}, {0, 3}}, 1);
  add_concat<T>(calls, {{8, 28, 28, 32}, {8, 28, 28, 12}, {8, 28, 28, 1}}, 3);
  add_concat<T>(calls, {{3, 200, 100}, {2, 200, 100}}, 0);
  add_concat<T>(calls, {{2, 30, 2000}, {2, 5, 2000}}, 1);

  for (const auto& [xs, perm] : std::vector<std::pair<shape, axis_values>>{
           {{3, 4, 5}, {0, 1, 2}},         {{1, 5, 1, 7}, {2, 0, 1, 3}},    {{1, 1, 1}, {2, 1, 0}},
           {{6, 1}, {1, 0}},               {{300, 400}, {0, 1}},            {{4, 5, 6}, {1, 0, 2}},
           {{2, 3, 1, 4}, {1, 0, 3, 2}},   {{16, 40, 30, 8}, {2, 0, 1, 3}}, {{5, 7}, {1, 0}},
           {{4, 33, 65, 17}, {0, 3, 1, 2}}, {{4, 17, 33, 65}, {0, 2, 3, 1}}, {{3, 129, 70}, {0, 2, 1}},
           {{1, 1000, 1, 37}, {3, 2, 1, 0}}, {{2, 40, 40, 64}, {0, 3, 1, 2}}, {{128, 256}, {1, 0}},
           {{1, 150, 230, 3}, {0, 3, 1, 2}}, {{0, 5, 3}, {2, 0, 1}},        {{4, 0}, {1, 0}}})
    add_permute<T>(calls, xs, perm);
  return calls;
}

template <class T>
std::vector<T> on_threads(int threads, const std::function<std::vector<T>(std::string_view)>& run,
                          std::string_view name) {
  return tbb::task_arena(threads).execute([&] { return run(name); });
}

template <class T>
void check_every_implementation() {
  const auto calls = layout_calls<T>();
  std::map<std::pair<layout_kernel, std::string_view>, int> applied;  // calls per implementation
  std::map<layout_kernel, int> count;                                  // calls per kernel
  for (const auto& c : calls) {
    ++count[c.kernel];
    const auto want = on_threads<T>(1, c.run, "reference");
    for (const std::string_view name : kernels::layout_implementations(c.kernel)) {
      if (!c.applies(name)) continue;
      ++applied[{c.kernel, name}];
      if (name == "reference") continue;
      const std::string label = fmt::format("{} {}: {}", kernels::layout_kernel_name(c.kernel), name, c.what);
      const auto one = on_threads<T>(1, c.run, name);
      BOOST_TEST(same_bits(one, want), label);
      BOOST_TEST(same_bits(one, on_threads<T>(2, c.run, name)), label << ": 1 and 2 threads differ");
      if (name == c.chosen())
        BOOST_TEST(same_bits(one, on_threads<T>(2, c.run, {})),
                   label << ": the kernel without a name differs from its choice");
    }
  }
  for (const layout_kernel k : layout_kernels)
    for (const std::string_view name : kernels::layout_implementations(k)) {
      const int n = applied[{k, name}];
      BOOST_TEST_MESSAGE(kernels::layout_kernel_name(k) << " " << name << ": " << n << " calls");
      BOOST_TEST(n > 0, kernels::layout_kernel_name(k) << " " << name << " applies to no call of the set");
      if (name == "reference") BOOST_TEST(n == count[k], "the reference applies to every call");
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(lists_end_with_the_reference) {
  using names = std::vector<std::string_view>;
  for (const layout_kernel k : {layout_kernel::slice, layout_kernel::unslice, layout_kernel::concat})
    BOOST_TEST((kernels::layout_implementations(k) == names{"runs", "reference"}), kernels::layout_kernel_name(k));
  BOOST_TEST((kernels::layout_implementations(layout_kernel::permute) ==
              names{"in_order", "runs", "tiled_transpose", "reference"}));
}

BOOST_AUTO_TEST_CASE(every_implementation_matches_the_reference_float) { check_every_implementation<float>(); }
BOOST_AUTO_TEST_CASE(every_implementation_matches_the_reference_double) { check_every_implementation<double>(); }

// permute's default dispatch on the layouts programs permute: NHWC <-> NCHW (the contiguous axis
// moves), spatial axes swapped under the channels (it stays last), and moves of extent-1 axes
// only (the memory order stays). (check_every_implementation checks that the kernel without a
// name runs what permute_chosen names.)
BOOST_AUTO_TEST_CASE(permute_default_dispatch_follows_the_layout) {
  BOOST_TEST(kernels::permute_chosen({64, 28, 28, 32}, {0, 3, 1, 2}) == "tiled_transpose");
  BOOST_TEST(kernels::permute_chosen({64, 32, 28, 28}, {0, 2, 3, 1}) == "tiled_transpose");
  BOOST_TEST(kernels::permute_chosen({64, 28, 28, 32}, {0, 2, 1, 3}) == "runs");
  BOOST_TEST(kernels::permute_chosen({64, 1, 10}, {1, 0, 2}) == "in_order");
  BOOST_TEST(kernels::permute_chosen({64, 10}, {0, 1}) == "in_order");
}

BOOST_AUTO_TEST_CASE(errors_name_the_kernel_implementation_and_shapes) {
  const shape xs{2, 3, 4};
  std::vector<float> x(xs.numel()), out(xs.numel());
  const std::string not_applying = error_message([&] {
    kernels::permute_with<float>("tiled_transpose", {out.data(), xs}, {x.data(), xs}, {0, 1, 2});
  });
  BOOST_TEST(not_applying ==
                 "permute: implementation \"tiled_transpose\" does not apply to x (2, 3, 4), perm (0, 1, 2)",
             not_applying);
  const std::string unknown = error_message([&] {
    kernels::slice_with<float>("tiled_transpose", {out.data(), xs}, {x.data(), xs}, {}, kernels::unit_steps);
  });
  BOOST_TEST(unknown == "slice: no implementation \"tiled_transpose\" (there are: runs, reference)", unknown);
  BOOST_CHECK_THROW((void)kernels::permute_applies("tiles", xs, {0, 1, 2}), error);
  BOOST_TEST(!kernels::permute_applies("in_order", xs, {0, 2, 1}));
  BOOST_TEST(kernels::permute_applies("runs", xs, {1, 0, 2}));
}
