#define BOOST_TEST_MODULE gradcheck
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <string>

#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/core/grad.hpp>
#include <typegrad/ops/unary.hpp>
#include <typegrad/runtime/program.hpp>

#include "support.hpp"

using namespace typegrad;

namespace {
constexpr var<"x", 2> x;
constexpr var<"w", 2> w;
constexpr var<"b", 1> b;
constexpr var<"v", 2> v;
constexpr var<"s", 0> s;

using test_support::random_away_from_zero;
const tensor<double, 1> bv({3}, {0.5, -0.25, 1.0});

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

// ---- test-local ops: a correct one, a deliberately wrong one, and one with a kink -------------
template <bool Correct>
struct my_square_op : elementwise_tag, shape_preserving {
  static constexpr std::string_view name = Correct ? "sq" : "bad_square";
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::binary<T>(kernels::binary_kind::mul, out, in[0], in[0]);
  }
  template <std::size_t I, class G, class Y, class A>
  static auto vjp(G g, Y, A a) {
    if constexpr (Correct) return lit<2> * g * a;
    else return g * a;  // wrong on purpose: d(a^2)/da is 2a
  }
};
template <Expression A>
constexpr auto sq(A) { return node<my_square_op<true>, A>{}; }
template <Expression A>
constexpr auto bad_square(A) { return node<my_square_op<false>, A>{}; }

// Piecewise ops with kinks at 0: abs (derivative sign(x)) and relu (derivative step(x) = [x > 0]).
// Their derivatives, sign and step, are piecewise constant (no adjoint).
enum class piece { sign, step, abs, relu, wrong_abs };
template <piece P>
struct piecewise_op : elementwise_tag, shape_preserving {
  static constexpr std::string_view name = P == piece::sign   ? "sign"
                                           : P == piece::step ? "step"
                                           : P == piece::abs  ? "abs"
                                           : P == piece::relu ? "relu"
                                                              : "wrong_abs";
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    for (std::size_t i = 0; i < out.size(); ++i) {
      const T x = in[0].data[i];
      if constexpr (P == piece::sign) out.data[i] = T((x > 0) - (x < 0));
      else if constexpr (P == piece::step) out.data[i] = T(x > 0);
      else if constexpr (P == piece::relu) out.data[i] = x > 0 ? x : T(0);
      else out.data[i] = std::abs(x);
    }
  }
  template <std::size_t I, class G, class Y, class A>
  static auto vjp(G g, Y, A) {
    if constexpr (P == piece::sign || P == piece::step) return no_adjoint{};
    else if constexpr (P == piece::abs) return g * node<piecewise_op<piece::sign>, A>{};
    else if constexpr (P == piece::relu) return g * node<piecewise_op<piece::step>, A>{};
    else return g * (node<piecewise_op<piece::sign>, A>{} + lit<2>);  // wrong everywhere, not a subgradient at 0
  }
};
template <Expression A>
constexpr auto abs_(A) { return node<piecewise_op<piece::abs>, A>{}; }
template <Expression A>
constexpr auto relu_(A) { return node<piecewise_op<piece::relu>, A>{}; }
template <Expression A>
constexpr auto wrong_abs(A) { return node<piecewise_op<piece::wrong_abs>, A>{}; }
// x * k with k treated as data (no adjoint, like the labels of a loss).
struct times_data_op : elementwise_tag {
  static constexpr std::string_view name = "times_data";
  static constexpr std::size_t rank(std::size_t a, std::size_t k) { return a > k ? a : k; }
  static shape infer_shape(input_shapes in) { return broadcast_shapes(in[0], in[1]); }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::binary<T>(kernels::binary_kind::mul, out, in[0], in[1]);
  }
  template <std::size_t I, class G, class Y, class A, class K>
  static auto vjp(G g, Y, A a, K k) {
    if constexpr (I == 0) return sum_to(g * k, a);
    else return no_adjoint{};
  }
};
template <Expression A, Expression K>
constexpr auto times_data(A, K) { return node<times_data_op, A, K>{}; }
}  // namespace

BOOST_AUTO_TEST_CASE(correct_gradients_pass_in_double) {
  auto f = sum((x + b) * w / (w * w + lit<1>)) - mean(x * x);
  auto report = check_gradients(f, wrt(x, w, b), given(x, random_away_from_zero<2>({2, 3}, 1)),
                                given(w, random_away_from_zero<2>({2, 3}, 2)), given(b, bv));
  BOOST_TEST(testing::gradients_ok(report));
  BOOST_TEST(report.precision == "double");
  BOOST_TEST(report.variables.size() == 3u);
  BOOST_TEST(report["x"].checked == 6u);
  BOOST_TEST(report["b"].checked == 3u);
  BOOST_TEST(report["b"].shape == (shape{3}));
  BOOST_TEST(report["w"].max_rel_error < 1e-6);
  BOOST_TEST(report.warnings.empty());
  BOOST_TEST(!report.first_failing_node);
}

BOOST_AUTO_TEST_CASE(correct_gradients_pass_in_float) {
  // Broadcasting both ways, a scalar leaf, and a leaf (s) that is given but not checked.
  auto f = sum((x + b) * w * s - sq(w - b) / (x * x + lit<1>)) + mean(x, axes<0>) * lit<0.5>;
  auto g = sum(f);
  auto report = check_gradients<float>(g, wrt(x, w, b), given(x, random_away_from_zero<2>({4, 3}, 3)),
                                       given(w, random_away_from_zero<2>({4, 3}, 4)), given(b, bv),
                                       given(s, tensor<double, 0>(1.5)));
  BOOST_TEST(testing::gradients_ok(report));
  BOOST_TEST(report.precision == "float");
  BOOST_TEST(report.rtol == 1e-3);
  BOOST_TEST(report["w"].max_rel_error > 0.0);  // float is not exact
}

BOOST_AUTO_TEST_CASE(wrong_gradient_is_detected_and_located) {
  const auto xv = random_away_from_zero<2>({2, 3}, 5), wv = random_away_from_zero<2>({2, 3}, 6);
  auto f = sum(bad_square(x + b) * w) + sum(x * w);
  for (bool use_float : {false, true}) {
    auto report = use_float ? check_gradients<float>(f, wrt(x, w, b), given(x, xv), given(w, wv), given(b, bv),
                                                     locate_failing_node)
                            : check_gradients<double>(f, wrt(x, w, b), given(x, xv), given(w, wv), given(b, bv),
                                                      locate_failing_node);
    BOOST_TEST_MESSAGE(fmt::format("{}", report));
    BOOST_TEST(!report.ok());
    BOOST_TEST(!report["x"].passed);
    BOOST_TEST(!report["b"].passed);
    BOOST_TEST(report["w"].passed);  // w's gradient does not go through bad_square's vjp
    BOOST_TEST(report["x"].failed == 6u);
    BOOST_TEST(report["x"].max_rel_error > 0.1);
    BOOST_TEST(report["x"].worst_index_text.front() == '(');
    BOOST_REQUIRE(report.first_failing_node.has_value());
    BOOST_TEST(*report.first_failing_node == "bad_square(x + b)");
    BOOST_TEST(!testing::gradients_ok(report));
    BOOST_TEST(contains(testing::gradients_ok(report).message().str(), "bad_square"));
  }
  // The same function with the correct op: nothing to locate, and the report says so.
  auto good = sum(sq(x + b) * w) + sum(x * w);
  auto report = check_gradients(good, wrt(x, w, b), given(x, xv), given(w, wv), given(b, bv), locate_failing_node);
  BOOST_TEST(testing::gradients_ok(report));
  BOOST_TEST(!report.first_failing_node);
}

BOOST_AUTO_TEST_CASE(locating_differentiates_only_what_depends_on_the_checked_variables) {
  // times_data(x, w) has no adjoint for w; w does not depend on x, so isolating that node must not
  // differentiate w (it would "disagree"); the culprit is the later bad_square node.
  auto f = sum(bad_square(times_data(x, w)) * b);
  auto report =
      check_gradients<float>(f, wrt(x), given(x, random_away_from_zero<2>({2, 3}, 25)),
                             given(w, random_away_from_zero<2>({2, 3}, 26)), given(b, bv), locate_failing_node);
  BOOST_TEST(!report.ok());
  BOOST_TEST(report.first_failing_node.value_or("") == "bad_square(times_data(x, w))");
}

BOOST_AUTO_TEST_CASE(locating_without_the_tag_leaves_the_node_empty) {
  auto f = sum(bad_square(x) * w);
  auto report = check_gradients(f, wrt(x), given(x, random_away_from_zero<2>({2, 2}, 7)),
                                given(w, random_away_from_zero<2>({2, 2}, 8)));
  BOOST_TEST(!report.ok());
  BOOST_TEST(!report.first_failing_node);
}

BOOST_AUTO_TEST_CASE(kinks_are_counted_and_warned_not_failed) {
  auto xv = random_away_from_zero<2>({2, 3}, 9);
  xv(0, 1) = 0;  // relu and abs have a kink at 0
  const auto wv = random_away_from_zero<2>({2, 3}, 10);
  for (bool use_float : {false, true}) {
    // relu at 0: central difference w/2, analytic 0: a failure without kink detection.
    auto f = sum(relu_(x) * w) + sum(x * w);
    auto report = use_float ? check_gradients<float>(f, wrt(x, w), given(x, xv), given(w, wv))
                            : check_gradients<double>(f, wrt(x, w), given(x, xv), given(w, wv));
    BOOST_TEST_MESSAGE(fmt::format("{}", report));
    BOOST_TEST(testing::gradients_ok(report));
    BOOST_TEST(report["x"].kinks == 1u);
    BOOST_TEST(report["x"].failed == 0u);
    BOOST_TEST(report["w"].kinks == 0u);
    BOOST_REQUIRE(report.warnings.size() == 1u);
    BOOST_TEST(contains(report.warnings[0], "x at (0, 1)"));
    BOOST_TEST(contains(fmt::format("{}", report), "warning: kink"));
  }
  // abs at 0 passes by symmetry (central difference 0 = analytic 0), but is reported all the same.
  auto g = sum(abs_(x) * w);
  auto report = check_gradients(g, wrt(x), given(x, xv), given(w, wv));
  BOOST_TEST(testing::gradients_ok(report));
  BOOST_TEST(report["x"].kinks == 1u);
  // A wrong gradient is not excused at a kink unless it is a subgradient there.
  auto wrong = check_gradients(sum(wrong_abs(x) * w), wrt(x), given(x, xv), given(w, wv));
  BOOST_TEST(!wrong.ok());
  BOOST_TEST(wrong["x"].kinks == 0u);
  BOOST_TEST(wrong["x"].failed == 6u);
  // A kink just beside the point (closer than the step): the retry with a smaller step passes.
  auto near = xv;
  near(0, 1) = 2e-6;
  auto report_near = check_gradients(sum(relu_(x) * w), wrt(x), given(x, near), given(w, wv));
  BOOST_TEST(testing::gradients_ok(report_near));
  BOOST_TEST(report_near["x"].kinks + report_near["x"].failed == 0u);
}

BOOST_AUTO_TEST_CASE(smooth_functions_with_strong_curvature_are_not_kinks) {
  // x^2 / (x^2 + 1e-4) near 0 bends sharply: a slope gap that halves with the step is not a kink.
  constexpr var<"c", 1> c;
  tensor<double, 1> cv({4}, {0.003, -0.004, 0.01, 0.05});
  auto f = sum(sq(c) / (sq(c) + lit<1e-4>));
  auto report = check_gradients(f, wrt(c), given(c, cv));
  BOOST_TEST_MESSAGE(fmt::format("{}", report));
  BOOST_TEST(testing::gradients_ok(report));
  BOOST_TEST(report["c"].kinks == 0u);
}

BOOST_AUTO_TEST_CASE(random_directions_mode) {
  constexpr var<"big", 2> big;
  const auto bigv = random_away_from_zero<2>({60, 50}, 11), wv = random_away_from_zero<2>({60, 50}, 12);
  const check_options dirs{.mode = check_mode::random_directions, .directions = 8};
  auto f = mean(sq(big) * w) + sum(big * w) * lit<1e-3>;
  auto report = check_gradients<float>(f, wrt(big, w), given(big, bigv), given(w, wv), dirs);
  BOOST_TEST_MESSAGE(fmt::format("{}", report));
  BOOST_TEST(testing::gradients_ok(report));
  BOOST_TEST((report.mode == check_mode::random_directions));
  BOOST_TEST(report["big"].checked == 8u);
  BOOST_TEST(contains(report["big"].worst_index_text, "direction"));

  // A wrong factor of 2 in a gradient whose elements are all tiny (a mean over 3000 elements).
  auto wrong = mean(bad_square(big) * w) + sum(big * w) * lit<1e-3>;
  auto bad = check_gradients<float>(wrong, wrt(big, w), given(big, bigv), given(w, wv), dirs, locate_failing_node);
  BOOST_TEST_MESSAGE(fmt::format("{}", bad));
  BOOST_TEST(!bad.ok());
  BOOST_TEST(!bad["big"].passed);
  BOOST_TEST(bad["w"].passed);
  BOOST_TEST(bad.first_failing_node.value_or("") == "bad_square(big)");

  // The seed picks the directions: same seed, same numbers.
  auto again = check_gradients<float>(f, wrt(big, w), given(big, bigv), given(w, wv), dirs);
  BOOST_TEST(again["big"].max_abs_error == report["big"].max_abs_error);
}

BOOST_AUTO_TEST_CASE(every_element_detects_tiny_wrong_gradients) {
  // Every element of d mean(x^2 * w)/dx is ~1e-3: atol is relative to the gradient's scale.
  constexpr var<"m", 2> m;
  auto wrong = mean(bad_square(m) * w);
  auto report = check_gradients<float>(wrong, wrt(m), given(m, random_away_from_zero<2>({20, 30}, 13)),
                                       given(w, random_away_from_zero<2>({20, 30}, 14)));
  BOOST_TEST(!report.ok());
  BOOST_TEST(report["m"].failed == 600u);
}

BOOST_AUTO_TEST_CASE(second_derivatives_through_hvp) {
  // d/dx <grad f, v> against finite differences of <grad f, v>: checks the gradient of a gradient.
  auto f = sum(sq(x) * w / (x * x + lit<2>));
  auto h = sum(grad(f, x) * v);
  auto xv = random_away_from_zero<2>({2, 3}, 15), wv = random_away_from_zero<2>({2, 3}, 16),
       vv = random_away_from_zero<2>({2, 3}, 17);
  BOOST_TEST(testing::gradients_ok(check_gradients(h, wrt(x, w), given(x, xv), given(w, wv), given(v, vv))));
  BOOST_TEST(testing::gradients_ok(
      check_gradients<float>(sum(hvp(f, x, v) * v), wrt(x, w), given(x, xv), given(w, wv), given(v, vv))));
}

BOOST_AUTO_TEST_CASE(report_prints_as_a_table) {
  auto report =
      check_gradients(sum(bad_square(x) * w) + sum(b), wrt(x, w, b), given(x, random_away_from_zero<2>({2, 3}, 18)),
                      given(w, random_away_from_zero<2>({2, 3}, 19)), given(b, bv));
  const std::string text = fmt::format("{}", report);
  BOOST_TEST_MESSAGE(text);
  BOOST_TEST(contains(text, "FAILED"));
  BOOST_TEST(contains(text, "bad_square(x) * w"));
  BOOST_TEST(contains(text, "variable"));
  BOOST_TEST(contains(text, "\n  x "));
  BOOST_TEST(contains(text, "\n  w "));
  BOOST_TEST(contains(text, "\n  b "));
  BOOST_TEST(contains(text, "(2, 3)"));
  BOOST_TEST(contains(text, "double"));
  BOOST_TEST(!report["x"].passed);
  BOOST_TEST(report["b"].passed);
  BOOST_CHECK_THROW(report["nope"], std::out_of_range);
}

BOOST_AUTO_TEST_CASE(non_finite_values_fail_with_a_warning) {
  auto wv = random_away_from_zero<2>({2, 3}, 20);
  wv(1, 1) = 0;  // x / w is infinite there
  auto report = check_gradients(sum(x / w), wrt(x), given(x, random_away_from_zero<2>({2, 3}, 21)), given(w, wv));
  BOOST_TEST(!report.ok());
  BOOST_TEST(!report.warnings.empty());
  BOOST_TEST(contains(report.warnings[0], "not finite"));
}

BOOST_AUTO_TEST_CASE(options_step_and_tolerances) {
  // A huge step makes central differences of a cubic-like function inaccurate; a loose tolerance accepts it.
  auto f = sum(sq(x) * x);
  auto xv = random_away_from_zero<2>({2, 3}, 22);
  auto coarse = check_gradients(f, wrt(x), given(x, xv), check_options{.step = 0.1});
  BOOST_TEST(!coarse.ok());  // truncation error h^2 = 1e-2
  auto loose = check_gradients(f, wrt(x), given(x, xv), check_options{.step = 0.1, .rtol = 0.05, .atol = 0.05});
  BOOST_TEST(testing::gradients_ok(loose));
  BOOST_TEST(loose.rtol == 0.05);
}

BOOST_AUTO_TEST_CASE(library_relu_and_abs_kinks) {
  // The library's own relu and abs (ops/unary.hpp), at exact zeros.
  auto xv = random_away_from_zero<2>({3, 3}, 23);
  xv(1, 1) = 0;
  xv(2, 0) = 0;
  const auto wv = random_away_from_zero<2>({3, 3}, 24);
  auto f = sum(relu(x) * w) + sum(abs(x) * w) * lit<0.5>;
  auto report = check_gradients<float>(f, wrt(x, w), given(x, xv), given(w, wv));
  BOOST_TEST_MESSAGE(fmt::format("{}", report));
  BOOST_TEST(testing::gradients_ok(report));
  BOOST_TEST(report["x"].kinks == 2u);
  BOOST_TEST(report["w"].kinks == 0u);
}
