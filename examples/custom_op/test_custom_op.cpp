// Tests of the user-defined op learnable_swish (learnable_swish.hpp), written as a user would:
// only that header and typegrad's installed public headers, linked against typegrad::typegrad.
#define BOOST_TEST_MODULE learnable_swish
#include <boost/test/unit_test.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <string>

#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/typegrad.hpp>

#include "learnable_swish.hpp"

using namespace typegrad;
using research::learnable_swish;
namespace tt = boost::test_tools;

namespace {
constexpr var<"x", 3> x;          // (batch, positions, channels)
constexpr var<"beta", 1> beta;    // (channels)
constexpr var<"r", 3> r;          // random projection of the output
constexpr var<"v", 3> v;          // direction of a Hessian-vector product in x
constexpr var<"vb", 1> vb;        // direction of a Hessian-vector product in beta

template <std::size_t R>
tensor<double, R> random(const std::array<std::size_t, R>& extents, unsigned seed, double lo = -2, double hi = 2) {
  tensor<double, R> t(extents);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  for (auto& e : t) e = u(rng);
  return t;
}

template <class T, std::size_t R>
tensor<T, R> as(const tensor<double, R>& t) {
  tensor<T, R> out(t.extents());
  for (std::size_t i = 0; i < t.size(); ++i) out[i] = T(t[i]);
  return out;
}

// The naive reference: the formula with <cmath>, element by element.
template <class T>
tensor<T, 3> reference(const tensor<T, 3>& xv, const tensor<T, 1>& bv) {
  tensor<T, 3> y(xv.extents());
  const std::size_t c = bv.size();
  for (std::size_t i = 0; i < xv.size(); ++i) {
    const T a = xv[i], b = bv[i % c];
    y[i] = a / (T(1) + std::exp(-b * a));
  }
  return y;
}
}  // namespace

BOOST_AUTO_TEST_CASE(forward_by_hand) {
  // beta = 0 halves x; beta = ln 3 gives sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4 and
  // sigmoid(3 ln 3) = 27/28.
  auto program = compile<double>(learnable_swish(x, beta));
  const double ln3 = std::log(3.0);
  tensor<double, 3> xv({1, 2, 3}, {2, 1, -1, -4, 0, 3});
  tensor<double, 1> bv({3}, {0, ln3, ln3});
  program.bind(x, xv).bind(beta, bv).run();
  const auto y = program.value(learnable_swish(x, beta));
  const double expected[] = {1, 0.75, -0.25, -2, 0, 81.0 / 28};
  BOOST_TEST(y.shape == (shape{1, 2, 3}));
  for (std::size_t i = 0; i < 6; ++i) BOOST_TEST(y.data[i] == expected[i], tt::tolerance(1e-14));
}

template <class T>
void check_against_reference(double tolerance) {
  // 2048 rows of 33 channels: large enough for the loop to run in parallel chunks.
  const auto xv = as<T>(random<3>({8, 256, 33}, 1, -6, 6));
  const auto bv = as<T>(random<1>({33}, 2, -3, 3));
  auto program = compile<T>(learnable_swish(x, beta));
  program.bind(x, xv).bind(beta, bv).set_threads(1).run();
  const tensor<T, 3> serial(program.value(learnable_swish(x, beta)));
  program.set_threads(2).run();
  const auto parallel = program.value(learnable_swish(x, beta));
  BOOST_TEST(std::memcmp(serial.data(), parallel.data, serial.size() * sizeof(T)) == 0);  // bitwise
  const auto expected = reference(xv, bv);
  for (std::size_t i = 0; i < xv.size(); ++i)
    BOOST_TEST(double(serial[i]) == double(expected[i]), tt::tolerance(tolerance));
}
BOOST_AUTO_TEST_CASE(forward_matches_reference_float) { check_against_reference<float>(1e-5); }
BOOST_AUTO_TEST_CASE(forward_matches_reference_double) { check_against_reference<double>(1e-13); }

BOOST_AUTO_TEST_CASE(gradients_float_and_double) {
  auto f = sum(learnable_swish(x, beta) * r);
  const auto xv = random<3>({2, 3, 4}, 3), rv = random<3>({2, 3, 4}, 5);
  const auto bv = random<1>({4}, 4);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<float>(f, wrt(x, beta), given(x, xv), given(beta, bv), given(r, rv))));
  BOOST_TEST(testing::gradients_ok(
      check_gradients<double>(f, wrt(x, beta), given(x, xv), given(beta, bv), given(r, rv))));
}

BOOST_AUTO_TEST_CASE(second_derivatives) {
  // The vjp is written with differentiable ops (sigmoid, products, sum_to and the node itself),
  // so the gradient of a gradient is again an expression: check both Hessian-vector products.
  auto f = sum(learnable_swish(x, beta) * r);
  const auto [dx, dbeta] = grad(f, x, beta);
  auto h = sum(dx * v) + sum(dbeta * vb);
  const auto xv = random<3>({2, 3, 4}, 6), rv = random<3>({2, 3, 4}, 8), vv = random<3>({2, 3, 4}, 9);
  const auto bv = random<1>({4}, 7), vbv = random<1>({4}, 10);
  BOOST_TEST(testing::gradients_ok(check_gradients<double>(h, wrt(x, beta), given(x, xv), given(beta, bv),
                                                           given(r, rv), given(v, vv), given(vb, vbv))));
  BOOST_TEST(testing::gradients_ok(check_gradients<float>(h, wrt(x, beta), given(x, xv), given(beta, bv),
                                                          given(r, rv), given(v, vv), given(vb, vbv))));
}

BOOST_AUTO_TEST_CASE(gradient_inside_a_model) {
  // As an activation between dense layers: the op's vjp composes with the library's.
  constexpr var<"in", 2> in;
  constexpr var<"w", 2> w;
  constexpr var<"b", 1> b;
  constexpr var<"rr", 2> rr;
  auto f = sum(learnable_swish(dense(in, w, b), beta) * rr);
  BOOST_TEST(testing::gradients_ok(check_gradients<double>(
      f, wrt(w, b, beta), given(in, random<2>({5, 3}, 11)), given(w, random<2>({3, 4}, 12)),
      given(b, random<1>({4}, 13)), given(beta, random<1>({4}, 14)), given(rr, random<2>({5, 4}, 15)))));
}

BOOST_AUTO_TEST_CASE(prints_itself_and_its_gradient) {
  BOOST_TEST(to_string(learnable_swish(x, beta)) == "learnable_swish(x, beta)");
  // The gradient reuses the forward node (y) rather than recomputing x * sigmoid(beta * x).
  const std::string dbeta = to_string(grad(sum(learnable_swish(x, beta)), beta));
  BOOST_TEST(dbeta.find("learnable_swish(x, beta)") != std::string::npos, dbeta);
  BOOST_TEST(dbeta.find("sigmoid(beta * x)") != std::string::npos, dbeta);
}

BOOST_AUTO_TEST_CASE(mis_shaped_beta_is_a_shape_error_naming_the_op) {
  auto program = compile<float>(learnable_swish(x, beta));
  tensor<float, 3> xv({2, 3, 4});
  tensor<float, 1> bv({3});  // one value short of x's 4 channels
  program.bind(x, xv).bind(beta, bv);
  try {
    program.run();
    BOOST_FAIL("expected a shape_error");
  } catch (const shape_error& e) {
    const std::string message = e.what();
    BOOST_TEST(message.find("learnable_swish") != std::string::npos, message);
    BOOST_TEST(message.find("one value per channel") != std::string::npos, message);
  }
}
