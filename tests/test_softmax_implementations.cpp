#define BOOST_TEST_MODULE softmax_implementations
// Every implementation of softmax (and log_softmax) and of softmax_cross_entropy
// (kernels/softmax.hpp's lists), run by name on every shape of a fixed set where it applies,
// against the library's reference implementation within 16 eps (relative, or relative to 1 + |y|
// for log_softmax and the cross-entropy); 1 and 2 threads bitwise; that each implementation
// applies to some shape of the set (so none goes untested); which one the default dispatch picks;
// and the errors. Kernels are called directly: no programs, no graphs.
#include <boost/test/unit_test.hpp>

#include <typegrad/core/errors.hpp>
#include <typegrad/kernels/softmax.hpp>

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
using test_support::error_message;
using test_support::max_relative_error;
using test_support::same_bits;

namespace {

// Inputs within +-3: the rounding of x - max (relative eps * |x - max|) stays below the tolerance
// of 16 eps.
template <class T>
std::vector<T> random_inputs(std::size_t n, unsigned seed) {
  return test_support::random_values<T>(n, seed, -3, 3);
}

template <class T>
constexpr double tolerance = 16 * std::numeric_limits<T>::epsilon();

// Runs f on `threads` threads.
template <class F>
void on_threads(int threads, F&& f) {
  tbb::task_arena(threads).execute(f);
}

// ---- softmax ----------------------------------------------------------------------------------

struct softmax_case {
  shape x;
  std::size_t axis;
};

// The classes the implementations claim (src/kernels/softmax.cpp): the last axis (rows) and an
// axis followed by extent-1 axes only (contiguous too); earlier axes with 1 to 257 trailing
// positions (tiles of 64 with remainders); row lengths that leave lane remainders (1, 5, 17, 37,
// 130, 257); rank 1; empty extents; and shapes large enough for several tasks.
std::vector<softmax_case> softmax_cases() {
  return {
      {{1}, 0},          {{37}, 0},          {{3, 70}, 0},        {{3, 70}, 1},       {{2, 5, 37}, 0},
      {{2, 5, 37}, 1},   {{2, 5, 37}, 2},    {{5, 7, 1}, 1},      {{5, 1, 1}, 0},     {{4, 300, 17}, 1},
      {{4, 300, 17}, 2}, {{3, 70, 130}, 0},  {{3, 70, 130}, 2},   {{2, 1, 257}, 1},   {{64, 40, 257}, 1},
      {{16, 300, 70}, 1}, {{16, 300, 70}, 2}, {{0, 5}, 1},        {{3, 0}, 1},        {{3, 0, 4}, 0},
  };
}

std::string to_string(const softmax_case& c) { return fmt::format("x {}, axis {}", c.x, c.axis); }

template <class T>
struct softmax_problem {
  softmax_case c;
  std::vector<T> x;

  // softmax by implementation `name` (empty: the kernel without a name, which runs the first that
  // applies) on `threads` threads, into an output that holds garbage (to be overwritten).
  std::vector<T> run(std::string_view name, bool log, int threads) const {
    std::vector<T> out(x.size(), T(7));
    const view<T> o{out.data(), c.x};
    const view<const T> xv{x.data(), c.x};
    on_threads(threads, [&] {
      if (name.empty()) kernels::softmax<T>(o, xv, c.axis, log);
      else kernels::softmax_with<T>(name, o, xv, c.axis, log);
    });
    return out;
  }
};

template <class T>
void check_every_softmax_implementation() {
  const auto cases = softmax_cases();
  std::map<std::string_view, int> applied;  // cases per implementation
  unsigned seed = 1;
  for (const auto& c : cases) {
    const softmax_problem<T> pr{c, random_inputs<T>(c.x.numel(), ++seed)};
    const std::string_view chosen = kernels::softmax_chosen(c.x, c.axis);
    for (const std::string_view name : kernels::softmax_implementations()) {
      if (!kernels::softmax_applies(name, c.x, c.axis)) continue;
      ++applied[name];
      if (name == "reference") continue;
      for (const bool log : {false, true}) {
        const std::string label = fmt::format("softmax {}{}: {}", name, log ? " log" : "", to_string(c));
        const auto one = pr.run(name, log, 1);
        BOOST_TEST(max_relative_error(one, pr.run("reference", log, 1), log ? 1.0 : 1e-300) <= tolerance<T>, label);
        BOOST_TEST(same_bits(one, pr.run(name, log, 2)), label << ": 1 and 2 threads differ");
        if (name == chosen)
          BOOST_TEST(same_bits(one, pr.run({}, log, 2)),
                     label << ": the kernel without a name differs from its choice");
      }
    }
  }
  for (const std::string_view name : kernels::softmax_implementations()) {
    BOOST_TEST_MESSAGE("softmax " << name << ": " << applied[name] << " shapes");
    BOOST_TEST(applied[name] > 0, "softmax " << name << " applies to no shape of the set");
  }
  BOOST_TEST(applied["reference"] == int(cases.size()), "the reference applies to every shape");
}

// ---- softmax_cross_entropy --------------------------------------------------------------------

// Logits (..., C): C = 1 (every row's loss 0), lane remainders, rank 3 (a sequence), no rows, and
// enough rows for several tasks.
std::vector<shape> cross_entropy_cases() {
  return {{1, 1}, {4, 5}, {3, 37}, {2, 300}, {3, 4, 17}, {0, 5}, {2000, 10}, {16, 64, 33}};
}

template <class T>
struct cross_entropy_problem {
  shape logits_shape, labels_shape;
  std::vector<T> logits, labels;

  cross_entropy_problem(const shape& s, unsigned seed)
      : logits_shape(s), labels_shape(s.dims().first(s.rank() - 1)), logits(random_inputs<T>(s.numel(), seed)) {
    std::mt19937 rng(seed + 1);
    for (std::size_t i = 0; i < labels_shape.numel(); ++i) labels.push_back(T(rng() % s[s.rank() - 1]));
  }

  // As softmax_problem::run.
  std::vector<T> run(std::string_view name, int threads) const {
    std::vector<T> out(labels.size(), T(7));
    const view<T> o{out.data(), labels_shape};
    const view<const T> lv{logits.data(), logits_shape}, yv{labels.data(), labels_shape};
    on_threads(threads, [&] {
      if (name.empty()) kernels::softmax_cross_entropy<T>(o, lv, yv);
      else kernels::softmax_cross_entropy_with<T>(name, o, lv, yv);
    });
    return out;
  }
};

template <class T>
void check_every_cross_entropy_implementation() {
  const auto cases = cross_entropy_cases();
  std::map<std::string_view, int> applied;
  unsigned seed = 100;
  for (const shape& s : cases) {
    const cross_entropy_problem<T> pr(s, seed += 2);
    const std::string_view chosen = kernels::softmax_cross_entropy_chosen(s);
    const auto want = pr.run("reference", 1);
    for (const std::string_view name : kernels::softmax_cross_entropy_implementations()) {
      if (!kernels::softmax_cross_entropy_applies(name, s)) continue;
      ++applied[name];
      if (name == "reference") continue;
      const std::string label = fmt::format("softmax_cross_entropy {}: logits {}", name, s);
      const auto one = pr.run(name, 1);
      BOOST_TEST(max_relative_error(one, want, 1.0) <= tolerance<T>, label);
      BOOST_TEST(same_bits(one, pr.run(name, 2)), label << ": 1 and 2 threads differ");
      if (name == chosen)
        BOOST_TEST(same_bits(one, pr.run({}, 2)), label << ": the kernel without a name differs from its choice");
    }
  }
  for (const std::string_view name : kernels::softmax_cross_entropy_implementations()) {
    BOOST_TEST_MESSAGE("softmax_cross_entropy " << name << ": " << applied[name] << " shapes");
    BOOST_TEST(applied[name] == int(cases.size()), "softmax_cross_entropy " << name << " applies to every shape");
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(lists_end_with_the_reference) {
  using names = std::vector<std::string_view>;
  BOOST_TEST((kernels::softmax_implementations() == names{"rows", "tiles", "reference"}));
  BOOST_TEST((kernels::softmax_cross_entropy_implementations() == names{"rows", "reference"}));
}

BOOST_AUTO_TEST_CASE(every_softmax_implementation_matches_the_reference_float) {
  check_every_softmax_implementation<float>();
}
BOOST_AUTO_TEST_CASE(every_softmax_implementation_matches_the_reference_double) {
  check_every_softmax_implementation<double>();
}
BOOST_AUTO_TEST_CASE(every_cross_entropy_implementation_matches_the_reference_float) {
  check_every_cross_entropy_implementation<float>();
}
BOOST_AUTO_TEST_CASE(every_cross_entropy_implementation_matches_the_reference_double) {
  check_every_cross_entropy_implementation<double>();
}

// The default dispatch: rows whenever the axis is contiguous (the classifiers' softmax over
// classes, a sequence model's over the last axis, an axis followed by extent-1 axes), tiles
// otherwise (an image's channels-first softmax over a middle axis).
BOOST_AUTO_TEST_CASE(default_dispatch_picks_rows_for_a_contiguous_axis) {
  BOOST_TEST(kernels::softmax_chosen({64, 10}, 1) == "rows");
  BOOST_TEST(kernels::softmax_chosen({8, 128, 512}, 2) == "rows");
  BOOST_TEST(kernels::softmax_chosen({8, 10, 1, 1}, 1) == "rows");
  BOOST_TEST(kernels::softmax_chosen({64, 10}, 0) == "tiles");
  BOOST_TEST(kernels::softmax_chosen({8, 10, 28, 28}, 1) == "tiles");
  BOOST_TEST(kernels::softmax_cross_entropy_chosen({64, 10}) == "rows");
}

BOOST_AUTO_TEST_CASE(errors_name_the_kernel_implementation_and_shapes) {
  const shape xs{2, 3, 4}, ls{2, 3};
  std::vector<float> x(xs.numel()), out(xs.numel()), labels{0, 1, 2, 3, 0, 7};
  auto softmax_by = [&](std::string_view name) {
    return error_message([&] { kernels::softmax_with<float>(name, {out.data(), xs}, {x.data(), xs}, 1, false); });
  };
  const std::string not_applying = softmax_by("rows");
  BOOST_TEST(not_applying == "softmax: implementation \"rows\" does not apply to x (2, 3, 4), axis 1", not_applying);
  const std::string unknown = softmax_by("columns");
  BOOST_TEST(unknown == "softmax: no implementation \"columns\" (there are: rows, tiles, reference)", unknown);
  BOOST_CHECK_THROW((void)kernels::softmax_applies("columns", xs, 1), error);
  BOOST_TEST(!kernels::softmax_applies("rows", xs, 1));
  BOOST_TEST(kernels::softmax_applies("rows", xs, 2));

  auto cross_entropy_by = [&](std::string_view name) {
    return error_message([&] {
      kernels::softmax_cross_entropy_with<float>(name, {out.data(), ls}, {x.data(), xs}, {labels.data(), ls});
    });
  };
  const std::string unknown_loss = cross_entropy_by("tiles");
  BOOST_TEST(unknown_loss == "softmax_cross_entropy: no implementation \"tiles\" (there are: rows, reference)",
             unknown_loss);
  BOOST_CHECK_THROW((void)kernels::softmax_cross_entropy_applies("tiles", xs), error);
  // A label outside [0, C) is refused before any implementation runs, the reference too.
  for (const std::string_view name : kernels::softmax_cross_entropy_implementations()) {
    const std::string bad_label = cross_entropy_by(name);
    BOOST_TEST(bad_label.starts_with("softmax_cross_entropy: labels[(1, 2)] = 7 is not a class index"), bad_label);
  }
}
