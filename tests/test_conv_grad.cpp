#define BOOST_TEST_MODULE conv_grad
#include <boost/test/unit_test.hpp>

#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/typegrad.hpp>

#include <array>

#include "support.hpp"

// First derivatives of conv (input, kernel and bias) and of conv_transpose on its own, against
// finite differences in float and double, on a representative set of configurations.
using namespace typegrad;
using test_support::random_uniform;

namespace {
constexpr var<"b", 1> b;

template <std::size_t R>
std::array<std::size_t, R> extents_of(const shape& s) {
  std::array<std::size_t, R> e{};
  for (std::size_t i = 0; i < R; ++i) e[i] = s[i];
  return e;
}

// f = sum((conv(x, w, opts...) + b) * r) checked for x, w and b.
template <std::size_t R, class... Opts>
void check_conv(const std::array<std::size_t, R>& xs, const std::array<std::size_t, R>& ws, Opts... opts) {
  constexpr var<"x", R> x;
  constexpr var<"w", R> w;
  constexpr var<"r", R> r;
  constexpr auto p = detail::conv_options<R - 2, Opts...>::params();
  const shape zs = detail::conv_output_shape(detail::conv_geometry_of(p, shape(xs), shape(ws)));
  auto f = sum((conv(x, w, opts...) + b) * r);
  auto xv = random_uniform<R>(xs, 1), wv = random_uniform<R>(ws, 2), rv = random_uniform<R>(extents_of<R>(zs), 3);
  auto bv = random_uniform<1>({ws[0]}, 4);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<double>(f, wrt(x, w, b), given(x, xv), given(w, wv), given(b, bv), given(r, rv))));
  BOOST_TEST(testing::gradients_ok(
      check_gradients<float>(f, wrt(x, w, b), given(x, xv), given(w, wv), given(b, bv), given(r, rv))));
}
}  // namespace

BOOST_AUTO_TEST_CASE(conv_1d_same_bias) { check_conv<3>({2, 7, 3}, {4, 3, 3}); }
BOOST_AUTO_TEST_CASE(conv_1d_valid_even_dilated) { check_conv<3>({2, 11, 2}, {3, 4, 2}, padding_valid, dilation<2>); }
BOOST_AUTO_TEST_CASE(conv_2d_strided_grouped) { check_conv<4>({2, 7, 6, 4}, {6, 3, 3, 2}, stride<2>, groups<2>); }
BOOST_AUTO_TEST_CASE(conv_2d_explicit_uncentered_depthwise) {
  check_conv<4>({1, 6, 5, 3}, {3, 2, 3, 3}, explicit_padding<1, 2, 0, 1>, stride<1, 2>);
  check_conv<4>({2, 5, 6, 3}, {6, 3, 2, 1}, padding_uncentered, groups<3>);
}
BOOST_AUTO_TEST_CASE(conv_3d) { check_conv<5>({1, 4, 5, 3, 2}, {2, 3, 2, 3, 2}, stride<2, 1, 1>); }

// conv_transpose as a layer of its own (a decoder's upsampling): natural output extents.
BOOST_AUTO_TEST_CASE(conv_transpose_alone) {
  constexpr var<"g", 4> g;
  constexpr var<"w", 4> w;
  constexpr var<"r", 4> r;
  auto y = conv_transpose(g, w, stride<2>);
  {
    auto prog = compile<double>(y);
    tensor<double, 4> gv({2, 3, 4, 5}), wv({5, 3, 3, 2});
    prog.bind(g, gv).bind(w, wv).run();
    BOOST_TEST(prog.value(y).shape == (shape{2, 6, 8, 2}));  // same: m * s
  }
  auto f = sum(y * r);
  auto gv = random_uniform<4>({2, 3, 4, 5}, 1), wv = random_uniform<4>({5, 3, 3, 2}, 2);
  auto rv = random_uniform<4>({2, 6, 8, 2}, 3);
  BOOST_TEST(testing::gradients_ok(check_gradients<double>(f, wrt(g, w), given(g, gv), given(w, wv), given(r, rv))));
  BOOST_TEST(testing::gradients_ok(check_gradients<float>(f, wrt(g, w), given(g, gv), given(w, wv), given(r, rv))));

  // valid: (m - 1) * s + d * (k - 1) + 1 = 2 * 2 + 2 * 2 + 1 = 9; explicit (1, 0): 8
  auto yv = conv_transpose(g, w, padding_valid, stride<2>, dilation<2>);
  auto ye = conv_transpose(g, w, explicit_padding<1, 0>, stride<2>, dilation<2>);
  auto prog = compile<double>(yv, ye);
  tensor<double, 4> g0({1, 3, 3, 5}), w0({5, 3, 3, 2});
  prog.bind(g, g0).bind(w, w0).run();
  BOOST_TEST(prog.value(yv).shape == (shape{1, 9, 9, 2}));
  BOOST_TEST(prog.value(ye).shape == (shape{1, 8, 8, 2}));
}
