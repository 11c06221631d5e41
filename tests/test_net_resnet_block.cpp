// A ResNet basic block (residual add, strided projection, batch norm) (examples/nets/resnet_block.hpp): the whole forward + gradient program, checked by
// finite differences on small sizes, in double (every element) and float (random directions).
#define BOOST_TEST_MODULE net_resnet_block
#include <boost/test/unit_test.hpp>

#include <typegrad/tools/gradcheck_boost.hpp>

#include "../examples/nets/resnet_block.hpp"
#include "net_check.hpp"
#include "support.hpp"

using namespace typegrad;
namespace net = typegrad::nets::resnet_block;

namespace {
const auto sizes = net::sizes{.in_channels = 2, .channels = 3, .classes = 3};
auto make_params() {
  auto p = net::make_parameters<double>(sizes);
  p.initialize(3);
  return p;
}
tensor<double, 4> images() { return test_support::random_uniform<4>({3, 6, 6, 2}, 11, 0, 1); }
tensor<double, 1> labels() { return tensor<double, 1>({3}, {0, 1, 2}); }
}  // namespace

BOOST_AUTO_TEST_CASE(gradients_double_every_element) {
  const auto params = make_params();
  const auto report = testing::check_network<double>(net::loss, net::weights, params, {}, given(net::x, images()),
                                                     given(net::labels, labels()));
  BOOST_TEST(testing::gradients_ok(report));
}

BOOST_AUTO_TEST_CASE(gradients_float_random_directions) {
  const auto params = make_params();
  const auto report = testing::check_network<float>(net::loss, net::weights, params,
                                                    {.mode = check_mode::random_directions, .directions = 4},
                                                    given(net::x, images()), given(net::labels, labels()));
  BOOST_TEST(testing::gradients_ok(report));
}
