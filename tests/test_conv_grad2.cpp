#define BOOST_TEST_MODULE conv_grad2
#include <boost/test/unit_test.hpp>

#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/typegrad.hpp>

#include "support.hpp"

// Second derivatives: the family is closed (each op's vjps are ops of the family), so the
// gradient of a gradient is checked against finite differences of the first gradient. Each case
// differentiates a function that is quadratic in the variables, so that the gradients' own vjps
// (conv_transpose's and conv_weight_grad's, with respect to every argument) are exercised.
using namespace typegrad;
using test_support::random_uniform;

namespace {
constexpr var<"x", 4> x;
constexpr var<"w", 4> w;
constexpr var<"r", 4> r;
constexpr var<"v", 4> v;
constexpr var<"vw", 4> vw;
}  // namespace

// f = sum(conv(x, w)^2 r): d/dx is conv_transpose(2 z r, w, x), d/dw is conv_weight_grad(x, 2 z r, w).
BOOST_AUTO_TEST_CASE(gradient_of_conv_gradients) {
  auto z = conv(x, w, stride<2>, padding_valid);
  auto f = sum(z * z * r);
  auto xv = random_uniform<4>({2, 7, 6, 2}, 1), wv = random_uniform<4>({3, 3, 2, 2}, 2);
  auto rv = random_uniform<4>({2, 3, 3, 3}, 3);
  auto vv = random_uniform<4>({2, 7, 6, 2}, 4), vwv = random_uniform<4>({3, 3, 2, 2}, 5);
  auto through_dx = sum(grad(f, x) * v);   // reads conv_transpose(., w, x): vjps of conv_transpose
  auto through_dw = sum(grad(f, w) * vw);  // reads conv_weight_grad(x, ., w): vjps of conv_weight_grad
  BOOST_TEST(testing::gradients_ok(check_gradients<double>(through_dx, wrt(x, w), given(x, xv), given(w, wv),
                                                           given(r, rv), given(v, vv))));
  BOOST_TEST(testing::gradients_ok(check_gradients<double>(through_dw, wrt(x, w), given(x, xv), given(w, wv),
                                                           given(r, rv), given(vw, vwv))));
  BOOST_TEST(testing::gradients_ok(check_gradients<float>(through_dw, wrt(x, w), given(x, xv), given(w, wv),
                                                          given(r, rv), given(vw, vwv))));
}

// A Hessian-vector product through a depthwise conv_transpose used on its own.
BOOST_AUTO_TEST_CASE(hvp_of_conv_transpose) {
  constexpr var<"g", 4> g;
  auto y = conv_transpose(g, w, groups<2>);
  auto f = sum(y * y * r);
  auto gv = random_uniform<4>({1, 4, 3, 4}, 1), wv = random_uniform<4>({4, 3, 3, 1}, 2);
  auto rv = random_uniform<4>({1, 4, 3, 2}, 3), vv = random_uniform<4>({1, 4, 3, 4}, 4);
  auto h = sum(hvp(f, g, v) * v);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<double>(h, wrt(g, w), given(g, gv), given(w, wv), given(r, rv), given(v, vv))));
}
