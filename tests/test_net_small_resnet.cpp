// The small ResNet of examples/fashion_mnist_resnet.cpp (examples/nets/small_resnet.hpp): stem,
// identity and downsampling blocks, batch norm in training mode. Its whole forward + gradient
// program is checked by finite differences on tiny sizes, in double (every element) and float
// (random directions); the evaluation mode (running statistics) and their update are checked
// against the training mode's batch moments.
#define BOOST_TEST_MODULE net_small_resnet
#include <algorithm>

#include <boost/test/unit_test.hpp>

#include <typegrad/tools/gradcheck_boost.hpp>

#include "../examples/nets/small_resnet.hpp"
#include "net_check.hpp"
#include "support.hpp"

using namespace typegrad;
namespace net = typegrad::nets::small_resnet;

namespace {
constexpr std::size_t side = 6, batch = 2;  // 6x6 -> 3x3 -> 2x2
const auto sizes = net::sizes{.in_channels = 1, .widths = {2, 3, 4}, .classes = 3};
constexpr auto training = net::network<net::bn_mode::batch>();
constexpr auto evaluation = net::network<net::bn_mode::running>();

auto make_params() {
  auto p = net::make_parameters<double>(sizes);
  p.initialize(3);
  testing::randomize_batch_norm(p, 100);
  return p;
}
tensor<double, 4> images() { return test_support::random_uniform<4>({batch, side, side, 1}, 11, 0, 1); }
tensor<double, 1> labels() { return tensor<double, 1>({batch}, {0, 2}); }
}  // namespace

BOOST_AUTO_TEST_CASE(gradients_double_every_element) {
  const auto params = make_params();
  const auto report = testing::check_network<double>(training.loss, net::weights, params, {},
                                                     given(net::x, images()), given(net::labels, labels()));
  BOOST_TEST(testing::gradients_ok(report));
}

BOOST_AUTO_TEST_CASE(gradients_float_random_directions) {
  const auto params = make_params();
  const auto report = testing::check_network<float>(training.loss, net::weights, params,
                                                    {.mode = check_mode::random_directions, .directions = 4},
                                                    given(net::x, images()), given(net::labels, labels()));
  BOOST_TEST(testing::gradients_ok(report));
}

// With the running statistics equal to a batch's own moments, evaluation mode gives the training
// mode's logits on that batch; update_running_statistics with momentum 1 sets them to the moments
// (the variance made unbiased, which the test undoes).
BOOST_AUTO_TEST_CASE(evaluation_mode_uses_the_running_statistics) {
  const auto params = make_params();
  const auto x = images();
  auto step = std::apply([](auto... m) { return compile<double>(training.logits, m...); },
                         std::tuple_cat(net::batch_means, net::batch_vars));
  params.bind(step);
  step.bind(net::x, x).run();

  auto stats = net::make_running_statistics<double>(sizes);
  stats.initialize(1);
  BOOST_TEST(stats[net::running_var<5>](1) == 1.0);
  net::update_running_statistics(step, stats, batch, side, 0.5);  // halfway from (0, 1)
  const auto v5 = step.value(std::get<4>(net::batch_vars));
  const double count5 = batch * 3 * 3;  // conv05 is 3x3 after the first downsampling
  BOOST_TEST(stats[net::running_mean<5>](1) == 0.5 * step.value(std::get<4>(net::batch_means)).data[1],
             boost::test_tools::tolerance(1e-12));
  BOOST_TEST(stats[net::running_var<5>](1) == 0.5 + 0.5 * v5.data[1] * count5 / (count5 - 1),
             boost::test_tools::tolerance(1e-12));

  net::update_running_statistics(step, stats, batch, side, 1.0);
  // Back to the biased variance, which batch norm's training mode divides by.
  const auto unbias = [&](auto var_leaf, std::size_t downscale) {
    const std::size_t extent = (side + downscale - 1) / downscale;
    const double count = double(batch * extent * extent);
    for (auto& v : stats[var_leaf]) v *= (count - 1) / count;
  };
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (unbias(net::running_var<I + 1>, net::downscale_of[I]), ...);
  }(std::make_index_sequence<net::convs>{});

  auto eval = compile<double>(evaluation.logits);
  params.bind(eval);
  stats.bind(eval);
  eval.bind(net::x, x).run();
  const auto expected = step.value(training.logits), actual = eval.value(evaluation.logits);
  BOOST_REQUIRE_EQUAL(actual.size(), batch * sizes.classes);
  for (std::size_t i = 0; i < actual.size(); ++i)
    BOOST_TEST(actual.data[i] == expected.data[i], boost::test_tools::tolerance(1e-9));
}
