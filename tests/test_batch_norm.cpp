// Batch normalisation, composed from primitives: printing, forward values (by hand and against a
// naive per-channel loop), batch_moments and batch_norm_inference, gradients wrt x, gamma and
// beta by finite differences (float and double), and a second-order check.
#define BOOST_TEST_MODULE batch_norm
#include <boost/test/unit_test.hpp>

#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/typegrad.hpp>

#include <cmath>
#include <vector>

#include "support.hpp"

using namespace typegrad;
namespace tt = boost::test_tools;

namespace {
constexpr var<"f", 2> f;  // (N, C) features
constexpr var<"x", 4> x;  // (N, H, W, C)
constexpr var<"r", 4> r;
constexpr var<"v", 4> v;
constexpr var<"gamma", 1> scale;  // (gamma: a libm function)
constexpr var<"beta", 1> shift;
constexpr var<"mu", 1> mu;
constexpr var<"var", 1> var_;

using test_support::random_uniform;
using test_support::values;

// Per-channel batch norm of (N, ..., C) data, from the definition, in double.
std::vector<double> naive_batch_norm(const std::vector<double>& xs, std::size_t C, const std::vector<double>& g,
                                     const std::vector<double>& b, double eps, std::vector<double>* means = nullptr,
                                     std::vector<double>* vars = nullptr) {
  const std::size_t count = xs.size() / C;
  std::vector<double> m(C, 0), s(C, 0), out(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) m[i % C] += xs[i] / double(count);
  for (std::size_t i = 0; i < xs.size(); ++i) s[i % C] += (xs[i] - m[i % C]) * (xs[i] - m[i % C]) / double(count);
  for (std::size_t i = 0; i < xs.size(); ++i)
    out[i] = (xs[i] - m[i % C]) / std::sqrt(s[i % C] + eps) * g[i % C] + b[i % C];
  if (means) *means = m;
  if (vars) *vars = s;
  return out;
}
}  // namespace

BOOST_AUTO_TEST_CASE(prints_as_its_formula) {
  BOOST_TEST(to_string(batch_norm(f, scale, shift)) ==
             "(f - mean[axes=(0)](f)) / sqrt(mean[axes=(0)](square(f - mean[axes=(0)](f))) + 1e-05) * gamma + beta");
  BOOST_TEST(to_string(batch_norm_inference(x, mu, var_, scale, shift, lit<1e-3>)) ==
             "(x - mu) / sqrt(var + 0.001) * gamma + beta");
  const auto [m, s] = batch_moments(x);
  BOOST_TEST(to_string(m) == "mean[axes=(0, 1, 2)](x)");
  BOOST_TEST(to_string(s) == "mean[axes=(0, 1, 2)](square(x - mean[axes=(0, 1, 2)](x)))");
  // Training mode is evaluation mode with the batch's own moments: the same expression.
  static_assert(std::is_same_v<decltype(batch_norm(x, scale, shift)),
                               decltype(batch_norm_inference(x, m, s, scale, shift))>);
}

// Two features over a batch of 4: channel 0 = (1, 2, 3, 4): mean 2.5, variance 1.25;
// channel 1 = (2, 2, 2, 6): mean 3, variance 3. With eps = 0 the normalised values are exact
// multiples of 1/sqrt(1.25) and 1/sqrt(3).
BOOST_AUTO_TEST_CASE(forward_by_hand) {
  tensor<double, 2> fv({4, 2}, {1, 2, 2, 2, 3, 2, 4, 6});
  tensor<double, 1> gv({2}, {2, 1}), bv({2}, {0.5, -1});
  auto y = batch_norm(f, scale, shift, lit<0>);
  const auto [m, s] = batch_moments(f);
  auto prog = compile<double>(y, m, s);
  prog.bind(f, fv).bind(scale, gv).bind(shift, bv).run();
  BOOST_TEST(values(prog.value(m)) == (std::vector<double>{2.5, 3}), tt::per_element());
  BOOST_TEST(values(prog.value(s)) == (std::vector<double>{1.25, 3}), tt::per_element());
  const double a = 1 / std::sqrt(1.25), c = 1 / std::sqrt(3.0);
  const std::vector<double> expected{-1.5 * a * 2 + 0.5, -c - 1, -0.5 * a * 2 + 0.5, -c - 1,
                                     0.5 * a * 2 + 0.5,  -c - 1, 1.5 * a * 2 + 0.5,  3 * c - 1};
  BOOST_TEST(values(prog.value(y)) == expected, tt::tolerance(1e-14) << tt::per_element());
}

// (N, H, W, C) against the naive loop, with eps = 1e-3, in float; and the statistics a training
// loop would keep, computed in the same program as the gradients.
BOOST_AUTO_TEST_CASE(forward_matches_naive_with_moments) {
  const auto xv = random_uniform<4>({3, 4, 5, 6}, 1, -2, 3);
  const auto gv = random_uniform<1>({6}, 2, 0.5, 1.5), bv = random_uniform<1>({6}, 3);
  std::vector<double> means, vars;
  const auto expected = naive_batch_norm(std::vector<double>(xv.begin(), xv.end()), 6, {gv.begin(), gv.end()},
                                         {bv.begin(), bv.end()}, 1e-3, &means, &vars);

  auto y = batch_norm(x, scale, shift, lit<1e-3>);
  const auto [m, s] = batch_moments(x);
  auto loss = mean(square(y));
  auto prog = compile<float>(loss, y, m, s, wrt(scale, shift));
  auto xf = test_support::cast<float>(xv);
  auto gf = test_support::cast<float>(gv);
  auto bf = test_support::cast<float>(bv);
  prog.bind(x, xf).bind(scale, gf).bind(shift, bf).run();
  const auto yv = values(prog.value(y));
  for (std::size_t i = 0; i < yv.size(); ++i) BOOST_TEST(std::abs(yv[i] - expected[i]) <= 1e-5);  // values O(1)
  const auto mv = values(prog.value(m)), sv = values(prog.value(s));
  for (std::size_t c = 0; c < 6; ++c) {
    BOOST_TEST(mv[c] == means[c], tt::tolerance(1e-5));
    BOOST_TEST(sv[c] == vars[c], tt::tolerance(1e-5));
  }
  // The normalised values have mean 0 and variance var / (var + eps) per channel.
  tensor<double, 1> ones({6}), zeros({6});
  ones.fill(1);
  auto normalised = compile<double>(batch_norm(x, scale, shift, lit<1e-3>));
  normalised.bind(x, xv).bind(scale, ones).bind(shift, zeros).run();
  std::vector<double> nm(6, 0), nv(6, 0);
  const auto z = values(normalised.value(batch_norm(x, scale, shift, lit<1e-3>)));
  for (std::size_t i = 0; i < z.size(); ++i) nm[i % 6] += z[i] / 60;
  for (std::size_t i = 0; i < z.size(); ++i) nv[i % 6] += z[i] * z[i] / 60;
  for (std::size_t c = 0; c < 6; ++c) {
    BOOST_TEST(std::abs(nm[c]) < 1e-14);
    BOOST_TEST(nv[c] == vars[c] / (vars[c] + 1e-3), tt::tolerance(1e-12));
  }
}

// Evaluation mode uses the given statistics, not the batch's.
BOOST_AUTO_TEST_CASE(inference_uses_given_statistics) {
  const auto xv = random_uniform<4>({2, 3, 2, 4}, 4);
  tensor<double, 1> mv({4}, {0.5, -0.25, 0, 1}), sv({4}, {2, 0.5, 1, 4}), gv({4}, {1, 2, 3, 4}), bv({4}, {0, 1, 0, -1});
  auto y = batch_norm_inference(x, mu, var_, scale, shift);
  auto prog = compile<double>(y);
  prog.bind(x, xv).bind(mu, mv).bind(var_, sv).bind(scale, gv).bind(shift, bv).run();
  const auto yv = values(prog.value(y));
  for (std::size_t i = 0; i < yv.size(); ++i) {
    const std::size_t c = i % 4;
    BOOST_TEST(yv[i] == (xv[i] - mv[c]) / std::sqrt(sv[c] + 1e-5) * gv[c] + bv[c], tt::tolerance(1e-14));
  }
}

template <class T>
void check_batch_norm_gradients() {
  const auto xv = random_uniform<4>({3, 2, 2, 3}, 5, -2, 2);
  const auto rv = random_uniform<4>({3, 2, 2, 3}, 6);
  const auto gv = random_uniform<1>({3}, 7, 0.5, 1.5), bv = random_uniform<1>({3}, 8);
  auto fx = sum(batch_norm(x, scale, shift) * r);
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(fx, wrt(x, scale, shift), given(x, xv), given(scale, gv),
                                                      given(shift, bv), given(r, rv))));
  // Features (N, C) and a larger eps; a loss that is not linear in the output.
  const auto fv = random_uniform<2>({5, 3}, 9, -2, 2);
  auto ff = mean(square(batch_norm(f, scale, shift, lit<0.1>) - lit<0.5>));
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(ff, wrt(f, scale, shift), given(f, fv), given(scale, gv), given(shift, bv))));
}
BOOST_AUTO_TEST_CASE(gradients_float) { check_batch_norm_gradients<float>(); }
BOOST_AUTO_TEST_CASE(gradients_double) { check_batch_norm_gradients<double>(); }

// Hessian-vector product wrt x (the gradient of <grad_x f, v>), and the mixed second derivative
// wrt gamma.
BOOST_AUTO_TEST_CASE(second_order) {
  const auto xv = random_uniform<4>({3, 2, 2, 2}, 10, -2, 2);
  const auto rv = random_uniform<4>({3, 2, 2, 2}, 11);
  const auto vv = random_uniform<4>({3, 2, 2, 2}, 12);
  const auto gv = random_uniform<1>({2}, 13, 0.5, 1.5), bv = random_uniform<1>({2}, 14);
  auto fx = sum(batch_norm(x, scale, shift) * r);
  auto hv = sum(grad(fx, x) * v);
  BOOST_TEST(testing::gradients_ok(check_gradients<double>(hv, wrt(x, scale), given(x, xv), given(scale, gv),
                                                           given(shift, bv), given(r, rv), given(v, vv))));
}
