#define BOOST_TEST_MODULE denormals
// The flush-to-zero policy (include/typegrad/runtime/denormals.hpp): subnormal results and inputs
// are zero inside kernels by default, IEEE gradual underflow when switched off; the caller's own
// floating-point mode is left as it was; training gives the same results either way.
#include <boost/test/unit_test.hpp>

#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include <xmmintrin.h>

#include "support.hpp"

using namespace typegrad;
namespace tt = boost::test_tools;

namespace {
constexpr var<"x", 1> x;
constexpr var<"in", 2> in;
constexpr var<"labels", 1> labels;
constexpr var<"w1", 2> w1;
constexpr var<"b1", 1> b1;
constexpr var<"w2", 2> w2;

// Restores the policy whatever a test does.
struct policy_guard {
  ~policy_guard() { set_flush_denormals(true); }
};

// x * x for x = 1e-20 (a subnormal result, 1e-40) and x * 2 for x = 1e-40 (a subnormal input),
// on a vector long enough to take the parallel path as well.
std::vector<float> products(float value, int threads) {
  auto square = x * x;
  auto doubled = x * lit<2>;
  auto p = compile<float>(square, doubled);
  tensor<float, 1> xv({1 << 17});
  for (auto& e : xv) e = value;
  p.set_threads(threads).bind(x, xv).run();
  return {p.value(square).data[0], p.value(square).data[xv.size() - 1], p.value(doubled).data[0],
          p.value(doubled).data[xv.size() - 1]};
}
}  // namespace

BOOST_AUTO_TEST_CASE(flush_is_the_default) { BOOST_TEST(flush_denormals()); }

BOOST_AUTO_TEST_CASE(subnormal_results_and_inputs_are_zero_by_default) {
  for (int threads : {1, 2}) {
    auto square = products(1e-20f, threads);
    BOOST_TEST(square[0] == 0.0f);  // 1e-40 flushed
    BOOST_TEST(square[1] == 0.0f);
    auto doubled = products(1e-40f, threads);
    BOOST_TEST(doubled[2] == 0.0f);  // the subnormal input reads as 0
    BOOST_TEST(doubled[3] == 0.0f);
  }
}

BOOST_AUTO_TEST_CASE(gradual_underflow_when_switched_off) {
  policy_guard restore;
  set_flush_denormals(false);
  for (int threads : {1, 2}) {
    auto square = products(1e-20f, threads);
    BOOST_TEST(square[0] == 1e-20f * 1e-20f);
    BOOST_TEST(std::fpclassify(square[0]) == FP_SUBNORMAL);
    BOOST_TEST(square[1] == square[0]);
    auto doubled = products(1e-40f, threads);
    volatile float subnormal = 1e-40f;  // computed here, with this thread's gradual underflow
    BOOST_TEST(doubled[2] == subnormal * 2);
    BOOST_TEST(doubled[3] == subnormal * 2);
  }
}

BOOST_AUTO_TEST_CASE(the_callers_mode_is_restored) {
  const unsigned before = _mm_getcsr();
  products(1e-20f, 1);
  products(1e-20f, 2);
  BOOST_TEST(_mm_getcsr() == before);
  volatile float tiny = 1e-20f;
  BOOST_TEST(tiny * tiny != 0.0f);  // this thread still has gradual underflow
}

// A small MLP trained with Adam, once with flushing and once without: the losses agree to float
// precision over the run (the flushed values are far below anything the training computes with).
BOOST_AUTO_TEST_CASE(training_is_as_accurate_with_flushing) {
  policy_guard restore;
  auto loss = softmax_cross_entropy(matmul(relu(dense(in, w1, b1)), w2), labels);
  auto train = [&](bool flush) {
    set_flush_denormals(flush);
    auto params = train::make_parameters<float>(train::param(w1, {20, 32}, train::init::he_normal),
                                                train::param(b1, {32}), train::param(w2, {32, 5}, train::init::he_normal));
    params.initialize(7);
    auto p = compile<float>(loss, wrt(w1, b1, w2));
    params.bind(p);
    auto xs = test_support::cast<float>(test_support::random_uniform<2>({64, 20}, 3));
    tensor<float, 1> ys({64});
    for (std::size_t i = 0; i < 64; ++i) ys[i] = float((i * 7) % 5);
    p.bind(in, xs).bind(labels, ys);
    train::adam opt(params, {.lr = 1e-2});
    std::vector<float> losses;
    for (int step = 0; step < 200; ++step) {
      p.run();
      losses.push_back(p.scalar(loss));
      opt.step(params, p);
    }
    return losses;
  };
  const auto flushed = train(true), gradual = train(false);
  BOOST_TEST(flushed.back() < 0.5f * flushed.front());  // it trains
  BOOST_TEST(flushed == gradual, tt::tolerance(1e-4f) << tt::per_element());
}
