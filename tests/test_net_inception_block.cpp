// An Inception block (parallel branches joined by concat) (examples/nets/inception_block.hpp): the whole forward + gradient program, checked by
// finite differences on small sizes, in double (every element) and float (random directions).
#define BOOST_TEST_MODULE net_inception_block
#include <boost/test/unit_test.hpp>

#include <typegrad/tools/gradcheck_boost.hpp>

#include "../examples/nets/inception_block.hpp"
#include "net_check.hpp"
#include "support.hpp"

using namespace typegrad;
namespace net = typegrad::nets::inception_block;

namespace {
const auto sizes = net::sizes{.in_channels = 3, .branch = 2, .reduce = 2, .classes = 3};
auto make_params() {
  auto p = net::make_parameters<double>(sizes);
  p.initialize(3);
  return p;
}
tensor<double, 4> images() { return test_support::random_uniform<4>({2, 6, 6, 3}, 11, 0, 1); }
tensor<double, 1> labels() { return tensor<double, 1>({2}, {0, 1}); }
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
