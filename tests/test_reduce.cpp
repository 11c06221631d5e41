#define BOOST_TEST_MODULE reduce
#include <boost/test/unit_test.hpp>

#include <typegrad/kernels/broadcast.hpp>
#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/typegrad.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <tbb/task_arena.h>

#include "support.hpp"

using namespace typegrad;

namespace {
constexpr var<"x", 2> x;
constexpr var<"z", 3> z;
constexpr var<"r", 1> r;
constexpr var<"r2", 2> r2;
constexpr var<"v", 2> v;

// Random inputs are distinct values in +-[0.5, 1.5] (no ties, so max is differentiable everywhere).
using test_support::random_away_from_zero;
using test_support::values;
}  // namespace

BOOST_AUTO_TEST_CASE(max_prints) {
  BOOST_TEST(to_string(max(x)) == "max[all](x)");
  BOOST_TEST(to_string(max(z, axes<0, 2>)) == "max[axes=(0, 2)](z)");
}

BOOST_AUTO_TEST_CASE(max_forward_hand_values) {
  auto all = max(x);
  auto rows = max(x, axes<1>);
  auto cols = max(x, axes<0>);
  auto prog = compile<double>(all, rows, cols);
  tensor<double, 2> xv({2, 3}, {1, 5, 3, -4, -2, -7});
  prog.bind(x, xv).run();
  BOOST_TEST(prog.scalar(all) == 5.0);
  BOOST_TEST(prog.value(rows).shape == (shape{2}));
  BOOST_TEST(values(prog.value(rows)) == (std::vector<double>{5, -2}), boost::test_tools::per_element());
  BOOST_TEST(values(prog.value(cols)) == (std::vector<double>{1, 5, 3}), boost::test_tools::per_element());

  // Rank 3 over two axes: z (2, 2, 3), max over axes 0 and 2 -> (2).
  auto m02 = max(z, axes<0, 2>);
  auto prog3 = compile<float>(m02);
  tensor<float, 3> zv({2, 2, 3}, {1, 2, 3, -1, -2, -3, 0, 9, 1, -5, -0.5f, -6});
  prog3.bind(z, zv).run();
  BOOST_TEST(values(prog3.value(m02)) == (std::vector<float>{9, -0.5f}), boost::test_tools::per_element());
}

// The adjoint is split equally between tied maxima (like torch.amax); checked against hand values,
// since finite differences are meaningless at a tie.
BOOST_AUTO_TEST_CASE(max_gradient_splits_between_ties) {
  auto f = sum(max(x, axes<1>) * r);
  auto prog = compile<double>(f, wrt(x, r));
  tensor<double, 2> xv({2, 3}, {1, 5, 5, 4, 2, 4});
  tensor<double, 1> rv({2}, {2, 3});
  prog.bind(x, xv).bind(r, rv).run();
  BOOST_TEST(prog.scalar(f) == 2 * 5 + 3 * 4);
  BOOST_TEST(values(prog.gradient(x)) == (std::vector<double>{0, 1, 1, 1.5, 0, 1.5}),
             boost::test_tools::per_element());
  BOOST_TEST(values(prog.gradient(r)) == (std::vector<double>{5, 4}), boost::test_tools::per_element());

  // All axes, a three-way tie.
  auto g = max(x) * lit<6>;
  auto prog_all = compile<float>(g, wrt(x));
  tensor<float, 2> tied({2, 3}, {3, 1, 3, 0, 3, -1});
  prog_all.bind(x, tied).run();
  BOOST_TEST(prog_all.scalar(g) == 18.0f);
  BOOST_TEST(values(prog_all.gradient(x)) == (std::vector<float>{2, 0, 2, 0, 2, 0}), boost::test_tools::per_element());

  // Rank 3 over axes 0 and 2: a single maximum for index 0 of the middle axis, a tie for index 1.
  auto h = sum(max(z, axes<0, 2>) * r);
  auto prog3 = compile<double>(h, wrt(z));
  tensor<double, 3> zv({2, 2, 3}, {1, 2, 3, -1, -2, -3, 0, 9, 1, -5, -0.5, -0.5});
  prog3.bind(z, zv).bind(r, rv).run();
  // Column 1 of the middle axis: -0.5 appears twice (z[1][1][1], z[1][1][2]): split 3 -> 1.5 each.
  BOOST_TEST(values(prog3.gradient(z)) == (std::vector<double>{0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 1.5, 1.5}),
             boost::test_tools::per_element());
}

template <class T>
void check_max_gradients() {
  auto xv = random_away_from_zero<2>({3, 5}, 11);
  auto zv = random_away_from_zero<3>({2, 3, 4}, 12);
  auto r1 = random_away_from_zero<1>({3}, 13);
  auto r3 = random_away_from_zero<1>({3}, 14);
  auto rows = check_gradients<T>(sum(max(x, axes<1>) * r), wrt(x), given(x, xv), given(r, r1));
  BOOST_TEST(testing::gradients_ok(rows));
  auto all = check_gradients<T>(max(x) * max(x), wrt(x), given(x, xv));
  BOOST_TEST(testing::gradients_ok(all));
  auto two_axes = check_gradients<T>(sum(max(z, axes<0, 2>) * r), wrt(z), given(z, zv), given(r, r3));
  BOOST_TEST(testing::gradients_ok(two_axes));
  auto rv2 = random_away_from_zero<2>({3, 4}, 15);
  auto first_axis = check_gradients<T>(sum(max(z, axes<0>) * r2), wrt(z), given(z, zv), given(r2, rv2));
  BOOST_TEST(testing::gradients_ok(first_axis));
}
BOOST_AUTO_TEST_CASE(max_gradient_float) { check_max_gradients<float>(); }
BOOST_AUTO_TEST_CASE(max_gradient_double) { check_max_gradients<double>(); }

// Second derivative through max's adjoint: f = sum(max(x, axes<1>)^2 * r); the checker applied to
// <grad f, v> checks the Hessian-vector product.
BOOST_AUTO_TEST_CASE(max_second_derivative) {
  auto m = max(x, axes<1>);
  auto f = sum(m * m * r);
  auto hv = sum(grad(f, x) * v);
  auto xv = random_away_from_zero<2>({3, 4}, 21);
  auto report = check_gradients<double>(hv, wrt(x), given(x, xv), given(r, random_away_from_zero<1>({3}, 22)),
                                        given(v, random_away_from_zero<2>({3, 4}, 23)));
  BOOST_TEST(testing::gradients_ok(report));
  auto report_f = check_gradients<float>(hv, wrt(x), given(x, xv), given(r, random_away_from_zero<1>({3}, 22)),
                                         given(v, random_away_from_zero<2>({3, 4}, 23)));
  BOOST_TEST(testing::gradients_ok(report_f));
}

// sum and mean over axes (the worked examples) with broadcasting back.
BOOST_AUTO_TEST_CASE(sum_mean_gradients) {
  auto zv = random_away_from_zero<3>({2, 3, 4}, 31);
  auto f = sum(mean(z, axes<1>) * sum(z, axes<1>)) + mean(z) * sum(z);
  BOOST_TEST(testing::gradients_ok(check_gradients<float>(f, wrt(z), given(z, zv))));
  BOOST_TEST(testing::gradients_ok(check_gradients<double>(f, wrt(z), given(z, zv))));
}

BOOST_AUTO_TEST_CASE(max_over_empty_axis_is_a_shape_error) {
  auto prog = compile<float>(max(x, axes<1>));
  tensor<float, 2> empty({2, 0});
  prog.bind(x, empty);
  try {
    prog.run();
    BOOST_FAIL("expected shape_error");
  } catch (const shape_error& e) {
    std::string msg = e.what();
    BOOST_TEST_MESSAGE(msg);
    BOOST_TEST(msg.find("max") != std::string::npos);
    BOOST_TEST(msg.find("extent 0") != std::string::npos);
  }
}

// A reduction to one row from many (a conv bias's gradient, (N, H, W, K) -> (K)) is cut into parts
// fixed by the sizes: against a double reference, with sizes at and around the cuts, and bitwise
// equal at 1 and 2 threads.
namespace {
template <class T>
void check_sum_to_one_row(const shape& in_shape, std::size_t k) {
  const auto in = test_support::random_uniform<4>({in_shape[0], in_shape[1], in_shape[2], in_shape[3]}, 11);
  std::vector<T> x(in.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = T(in[i]);
  const shape out_shape{k};
  std::vector<double> want(k, 0.0), want_max(k, -1e300);
  for (std::size_t i = 0; i < x.size(); ++i) {
    want[i % k] += double(x[i]);
    want_max[i % k] = std::max(want_max[i % k], double(x[i]));
  }
  std::vector<T> sums[2], maxima[2];
  for (int t = 0; t < 2; ++t) {
    sums[t].assign(k, T(7));
    maxima[t].assign(k, T(7));
    tbb::task_arena(t + 1).execute([&] {
      kernels::sum_to<T>(view<T>{sums[t].data(), out_shape}, view<const T>{x.data(), in_shape});
      kernels::max_to<T>(view<T>{maxima[t].data(), out_shape}, view<const T>{x.data(), in_shape});
    });
  }
  const double rows = double(x.size() / k);
  for (std::size_t j = 0; j < k; ++j) {
    BOOST_TEST(std::abs(double(sums[0][j]) - want[j]) <= 2 * rows * std::numeric_limits<T>::epsilon(),
               "sum_to " << in_shape << " channel " << j);
    BOOST_TEST(double(maxima[0][j]) == want_max[j], "max_to " << in_shape << " channel " << j);
  }
  BOOST_TEST(std::memcmp(sums[0].data(), sums[1].data(), k * sizeof(T)) == 0, "sum_to 1 vs 2 threads " << in_shape);
  BOOST_TEST(maxima[0] == maxima[1]);
}
}  // namespace

BOOST_AUTO_TEST_CASE(sum_to_one_row_in_parts_matches_reference) {
  for (const shape& s : {shape{64, 28, 28, 32}, shape{4, 32, 32, 32}, shape{5, 31, 29, 33}, shape{3, 17, 19, 64},
                         shape{1, 1, 2048, 32}, shape{2, 5, 7, 3}}) {  // 16, 2, 2, 1, 1 and 1 parts
    check_sum_to_one_row<float>(s, s[3]);
    check_sum_to_one_row<double>(s, s[3]);
  }
}

// sum_to and max_to keep each output's terms in the order of the reduced indices (row-major),
// whatever vector blocks they run in: bitwise equal to a plain loop in T, for row widths around
// the blocks of 4, 2 and 1 vectors and their tails, reduced dims that merge into one run and dims
// that do not, one output row and many, at 2 threads.
namespace {
template <class T>
void check_reduction_order(const shape& in_shape, const shape& out_shape) {
  std::vector<T> x(in_shape.numel());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = T(std::sin(double(i) * 0.7)) * T(1 + i % 5);
  std::vector<T> want_sum(out_shape.numel(), T(0)), want_max(out_shape.numel(), -std::numeric_limits<T>::infinity());
  const std::size_t r = in_shape.rank();
  for (std::size_t i = 0; i < x.size(); ++i) {  // row-major over the input: each output's terms in order
    std::size_t rest = i, o = 0, scale = 1;
    for (std::size_t d = r; d-- > 0;) {
      const std::size_t at = rest % in_shape[d];
      rest /= in_shape[d];
      if (out_shape[d] != 1) o += at * scale;
      scale *= out_shape[d];
    }
    want_sum[o] += x[i];
    want_max[o] = x[i] > want_max[o] ? x[i] : want_max[o];
  }
  std::vector<T> sums(want_sum.size()), maxima(want_sum.size());
  tbb::task_arena(2).execute([&] {
    kernels::sum_to<T>(view<T>{sums.data(), out_shape}, view<const T>{x.data(), in_shape});
    kernels::max_to<T>(view<T>{maxima.data(), out_shape}, view<const T>{x.data(), in_shape});
  });
  BOOST_TEST(std::memcmp(sums.data(), want_sum.data(), sums.size() * sizeof(T)) == 0,
             "sum_to " << in_shape << " -> " << out_shape);
  BOOST_TEST(std::memcmp(maxima.data(), want_max.data(), maxima.size() * sizeof(T)) == 0,
             "max_to " << in_shape << " -> " << out_shape);
}
}  // namespace

BOOST_AUTO_TEST_CASE(sum_to_and_max_to_keep_the_order_of_terms) {
  for (std::size_t k : {2, 3, 8, 15, 16, 17, 32, 33, 48, 64, 70, 100}) {
    const std::vector<std::pair<shape, shape>> cases{
        {shape{7, 5, k}, shape{1, 1, k}},        // one row; N, H merge into one run
        {shape{6, 4, k}, shape{6, 1, k}},        // a row per output row
        {shape{4, 3, 5, k}, shape{4, 1, 5, k}},  // reduced dim strided by 5 rows
        {shape{3, 4, 5, k}, shape{1, 4, 1, k}},  // reduced dims that do not merge
    };
    for (const auto& [in, out] : cases) {
      check_reduction_order<float>(in, out);
      check_reduction_order<double>(in, out);
    }
  }
}
