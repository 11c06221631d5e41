#define BOOST_TEST_MODULE loss
#include <boost/test/unit_test.hpp>

#include <typegrad/kernels/softmax.hpp>
#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/typegrad.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "support.hpp"

using namespace typegrad;
namespace tt = boost::test_tools;

namespace {
constexpr var<"logits", 2> logits;
constexpr var<"labels", 1> labels;
constexpr var<"seq", 3> seq;          // (N, T, C) logits
constexpr var<"seq_labels", 2> seq_labels;
constexpr var<"v", 2> v;
constexpr var<"pred", 2> pred;
constexpr var<"target", 2> target;

using test_support::random_uniform;
using test_support::values;

template <std::size_t R>
tensor<double, R> random_labels(std::array<std::size_t, R> extents, std::size_t classes, unsigned seed) {
  tensor<double, R> t(extents);
  std::mt19937 rng(seed);
  for (auto& e : t) e = double(rng() % classes);
  return t;
}
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

BOOST_AUTO_TEST_CASE(cross_entropy_prints_as_mean_of_rows) {
  BOOST_TEST(to_string(softmax_cross_entropy(logits, labels)) == "mean[all](softmax_cross_entropy(logits, labels))");
  BOOST_TEST(to_string(one_hot(labels, logits)) == "one_hot(labels, logits)");
}

BOOST_AUTO_TEST_CASE(cross_entropy_forward_and_gradient_hand_values) {
  auto loss = softmax_cross_entropy(logits, labels);
  auto rows = softmax_cross_entropy_unreduced(logits, labels);
  auto prog = compile<double>(loss, rows, wrt(logits));
  tensor<double, 2> lv({2, 3}, {1, 2, 3, 1, 1, 1});
  tensor<double, 1> yv({2}, {2, 0});
  prog.bind(logits, lv).bind(labels, yv).run();
  // Row 0: log(e + e^2 + e^3) - 3; row 1: log 3.
  BOOST_TEST(values(prog.value(rows)) == (std::vector<double>{0.40760596444438013, 1.0986122886681098}),
             tt::tolerance(1e-14) << tt::per_element());
  BOOST_TEST(prog.scalar(loss) == 0.753109126556245, tt::tolerance(1e-14));
  // (softmax(logits) - one_hot(labels)) / N.
  const std::vector<double> expected{0.09003057317038046 / 2, 0.24472847105479764 / 2, (0.6652409557748218 - 1) / 2,
                                     (1.0 / 3 - 1) / 2,       1.0 / 6,                  1.0 / 6};
  BOOST_TEST(values(prog.gradient(logits)) == expected, tt::tolerance(1e-14) << tt::per_element());

  // Stable for large logits (a naive exp would overflow), in float.
  auto progf = compile<float>(rows);
  tensor<float, 2> big({2, 3}, {1000, 0, -1000, 1000, 0, -1000});
  tensor<float, 1> yb({2}, {1, 0});
  progf.bind(logits, big).bind(labels, yb).run();
  BOOST_TEST(values(progf.value(rows)) == (std::vector<float>{1000, 0}), tt::per_element());
}

BOOST_AUTO_TEST_CASE(one_hot_hand_values) {
  auto oh = one_hot(labels, logits);
  auto prog = compile<float>(oh);
  tensor<float, 2> like({3, 4});
  tensor<float, 1> yv({3}, {3, 0, 1});
  prog.bind(logits, like).bind(labels, yv).run();
  BOOST_TEST(values(prog.value(oh)) == (std::vector<float>{0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0}), tt::per_element());
}

// Logits (N, T, C), labels (N, T): the mean is over all N * T positions.
BOOST_AUTO_TEST_CASE(cross_entropy_rank3_matches_reference) {
  auto loss = softmax_cross_entropy(seq, seq_labels);
  auto prog = compile<double>(loss);
  auto lv = random_uniform<3>({3, 4, 5}, 1, -5.0, 5.0);
  auto yv = random_labels<2>({3, 4}, 5, 2);
  prog.bind(seq, lv).bind(seq_labels, yv).run();
  std::vector<double> ref(yv.size());
  kernels::softmax_cross_entropy_with<double>("reference", {ref.data(), yv.shape_of()}, std::as_const(lv).as_view(),
                                              std::as_const(yv).as_view());
  double mean = 0;
  for (double e : ref) mean += e / double(ref.size());
  BOOST_TEST(prog.scalar(loss) == mean, tt::tolerance(1e-13));
}

template <class T>
void check_cross_entropy_gradients() {
  auto lv = random_uniform<2>({4, 5}, 3, -2.0, 2.0);
  auto yv = random_labels<1>({4}, 5, 4);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(softmax_cross_entropy(logits, labels), wrt(logits), given(logits, lv), given(labels, yv))));
  auto sv = random_uniform<3>({2, 3, 4}, 5, -2.0, 2.0);
  auto syv = random_labels<2>({2, 3}, 4, 6);
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(softmax_cross_entropy(seq, seq_labels), wrt(seq), given(seq, sv),
                                                      given(seq_labels, syv))));
}
BOOST_AUTO_TEST_CASE(cross_entropy_gradient_float) { check_cross_entropy_gradients<float>(); }
BOOST_AUTO_TEST_CASE(cross_entropy_gradient_double) { check_cross_entropy_gradients<double>(); }

// Hessian-vector products through the loss: the checker applied to <grad loss, v> checks H v, and
// H v is also compared with its closed form (1/N) p * (v - <p, v>) per row, p = softmax(row).
template <class T>
void check_cross_entropy_hvp() {
  auto loss = softmax_cross_entropy(logits, labels);
  auto lv = random_uniform<2>({3, 4}, 7, -2.0, 2.0);
  auto yv = random_labels<1>({3}, 4, 8);
  auto vv = random_uniform<2>({3, 4}, 9, -2.0, 2.0);
  auto inner = sum(grad(loss, logits) * v);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(inner, wrt(logits), given(logits, lv), given(labels, yv), given(v, vv))));

  auto hv = hvp(loss, logits, v);
  auto prog = compile<T>(hv);
  tensor<T, 2> lt({3, 4}), vt({3, 4});
  tensor<T, 1> yt({3});
  for (std::size_t i = 0; i < 12; ++i) lt[i] = T(lv[i]), vt[i] = T(vv[i]);
  for (std::size_t i = 0; i < 3; ++i) yt[i] = T(yv[i]);
  prog.bind(logits, lt).bind(labels, yt).bind(v, vt).run();
  auto got = values(prog.value(hv));
  for (std::size_t n = 0; n < 3; ++n) {
    double p[4], s = 0, pv = 0;
    for (std::size_t c = 0; c < 4; ++c) s += p[c] = std::exp(double(lt[n * 4 + c]));
    for (std::size_t c = 0; c < 4; ++c) pv += (p[c] /= s) * double(vt[n * 4 + c]);
    for (std::size_t c = 0; c < 4; ++c)
      BOOST_TEST(double(got[n * 4 + c]) == p[c] * (double(vt[n * 4 + c]) - pv) / 3,
                 tt::tolerance(std::is_same_v<T, float> ? 1e-5 : 1e-12));
  }
}
BOOST_AUTO_TEST_CASE(cross_entropy_hvp_float) { check_cross_entropy_hvp<float>(); }
BOOST_AUTO_TEST_CASE(cross_entropy_hvp_double) { check_cross_entropy_hvp<double>(); }

BOOST_AUTO_TEST_CASE(invalid_labels_throw_value_error) {
  auto loss = softmax_cross_entropy(logits, labels);
  tensor<float, 2> lv({2, 3}, {1, 2, 3, 1, 1, 1});
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (auto [bad, text] : {std::pair{3.0f, "3"}, std::pair{-1.0f, "-1"}, std::pair{1.5f, "1.5"}, std::pair{nan, "nan"}}) {
    tensor<float, 1> yv({2}, {0, bad});
    auto forward = compile<float>(loss);
    forward.bind(logits, lv).bind(labels, yv);
    try {
      forward.run();
      BOOST_FAIL("expected value_error for label " << text);
    } catch (const value_error& e) {
      const std::string msg = e.what();
      BOOST_TEST_MESSAGE(msg);
      BOOST_TEST(contains(msg, "softmax_cross_entropy"), msg);
      BOOST_TEST(contains(msg, fmt::format("labels[1] = {}", text)), msg);
      BOOST_TEST(contains(msg, "[0, 3)"), msg);
    }
    // With gradients the one_hot of the adjoint may meet the label first: it names itself.
    auto training = compile<float>(loss, wrt(logits));
    training.bind(logits, lv).bind(labels, yv);
    try {
      training.run();
      BOOST_FAIL("expected value_error for label " << text);
    } catch (const value_error& e) {
      const std::string msg = e.what();
      BOOST_TEST((contains(msg, "softmax_cross_entropy") || contains(msg, "one_hot")), msg);
      BOOST_TEST(contains(msg, fmt::format("labels[1] = {}", text)), msg);
    }
    // The program is usable again once the labels are fixed.
    yv[1] = 2;
    training.run();
    // Row 0 (1, 2, 3) with label 0: log(e + e^2 + e^3) - 1; row 1 (1, 1, 1): log 3.
    BOOST_TEST(training.scalar(loss) == float((2.4076059644443806 + 1.0986122886681098) / 2), tt::tolerance(1e-6f));
  }

  // one_hot alone, and a multi-dimensional label index.
  auto oh = one_hot(labels, logits);
  auto prog = compile<double>(oh);
  tensor<double, 2> like({2, 3});
  tensor<double, 1> yv({2}, {7, 0});
  prog.bind(logits, like).bind(labels, yv);
  BOOST_CHECK_EXCEPTION(prog.run(), value_error, [](const value_error& e) {
    return contains(e.what(), "one_hot") && contains(e.what(), "labels[0] = 7");
  });
  auto seq_loss = compile<double>(softmax_cross_entropy(seq, seq_labels));
  tensor<double, 3> sv({2, 2, 3});
  tensor<double, 2> syv({2, 2}, {0, 1, 2, -2});
  seq_loss.bind(seq, sv).bind(seq_labels, syv);
  BOOST_CHECK_EXCEPTION(seq_loss.run(), value_error,
                        [](const value_error& e) { return contains(e.what(), "labels[(1, 1)] = -2"); });
}

BOOST_AUTO_TEST_CASE(label_shape_mismatch_is_a_shape_error) {
  auto prog = compile<float>(softmax_cross_entropy(logits, labels), wrt(logits));
  tensor<float, 2> lv({4, 3});
  tensor<float, 1> yv({5});
  prog.bind(logits, lv).bind(labels, yv);
  try {
    prog.run();
    BOOST_FAIL("expected shape_error");
  } catch (const shape_error& e) {
    const std::string msg = e.what();
    BOOST_TEST_MESSAGE(msg);
    BOOST_TEST(contains(msg, "softmax_cross_entropy"), msg);
    BOOST_TEST(contains(msg, "labels must have shape (4)"), msg);
    BOOST_TEST(contains(msg, "(5)"), msg);
    BOOST_TEST(contains(msg, "leaf 'labels'"), msg);
  }
  tensor<float, 2> no_classes({4, 0});
  tensor<float, 1> y4({4});
  prog.bind(logits, no_classes).bind(labels, y4);
  BOOST_CHECK_EXCEPTION(prog.run(), shape_error, [](const shape_error& e) {
    return contains(e.what(), "softmax_cross_entropy") && contains(e.what(), "no classes");
  });
}

BOOST_AUTO_TEST_CASE(mse_hand_values_and_gradients) {
  auto loss = mse(pred, target);
  auto prog = compile<double>(loss, wrt(pred, target));
  tensor<double, 2> pv({2, 2}, {1, 2, 3, 4});
  tensor<double, 2> tv({1, 2}, {1, 1});  // broadcasts over the rows
  prog.bind(pred, pv).bind(target, tv).run();
  BOOST_TEST(prog.scalar(loss) == (0 + 1 + 4 + 9) / 4.0);
  // d/dpred = 2 (pred - target) / 4; d/dtarget sums over the broadcast rows with the opposite sign.
  BOOST_TEST(values(prog.gradient(pred)) == (std::vector<double>{0, 0.5, 1, 1.5}), tt::per_element());
  BOOST_TEST(values(prog.gradient(target)) == (std::vector<double>{-1, -2}), tt::per_element());

  auto p = random_uniform<2>({3, 4}, 10, -2.0, 2.0);
  auto t = random_uniform<2>({3, 4}, 11, -2.0, 2.0);
  auto t_row = random_uniform<2>({1, 4}, 12, -2.0, 2.0);
  BOOST_TEST(testing::gradients_ok(check_gradients<float>(loss, wrt(pred, target), given(pred, p), given(target, t))));
  BOOST_TEST(testing::gradients_ok(check_gradients<double>(loss, wrt(pred, target), given(pred, p), given(target, t))));
  BOOST_TEST(testing::gradients_ok(
      check_gradients<float>(loss, wrt(pred, target), given(pred, p), given(target, t_row))));
  BOOST_TEST(testing::gradients_ok(
      check_gradients<double>(loss, wrt(pred, target), given(pred, p), given(target, t_row))));
}

// A batch of 0 samples: the losses are means over no elements, a clear shape_error naming mean
// (not loss 0 with zero gradients).
BOOST_AUTO_TEST_CASE(empty_batch_is_a_shape_error) {
  auto loss = softmax_cross_entropy(logits, labels);
  auto prog = compile<double>(loss, wrt(logits));
  tensor<double, 2> lv({0, 3});
  tensor<double, 1> yv(std::array<std::size_t, 1>{0});
  prog.bind(logits, lv).bind(labels, yv);
  try {
    prog.run();
    BOOST_ERROR("no exception");
  } catch (const shape_error& e) {
    const std::string what = e.what();
    BOOST_TEST(contains(what, "mean over no elements"), what);
    BOOST_TEST(contains(what, "empty batch"), what);
  }
  auto squared = mse(pred, target);
  auto p2 = compile<double>(squared);
  tensor<double, 2> pv({0, 4}), tv({0, 4});
  p2.bind(pred, pv).bind(target, tv);
  BOOST_CHECK_THROW(p2.run(), shape_error);
}
