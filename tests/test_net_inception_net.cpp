// The Inception-style network of fashion_mnist_inception (examples/nets/inception_net.hpp): the
// whole forward + gradient program, checked by finite differences on tiny sizes, in double (every
// element) and float (random directions); and its results at 1 and 2 threads, bit for bit.
#define BOOST_TEST_MODULE net_inception_net
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>

#include <typegrad/tools/gradcheck_boost.hpp>

#include "../examples/nets/inception_net.hpp"
#include "net_check.hpp"
#include "support.hpp"

using namespace typegrad;
namespace net = typegrad::nets::inception_net;

namespace {
const auto tiny = net::sizes{.in_channels = 1,
                             .stem = 3,
                             .block1 = {2, 2, 2, 1, 2, 1},
                             .block2 = {2, 2, 3, 1, 2, 2},
                             .classes = 3};
// Biases start at 0, which can put a relu's input exactly on its kink (a window of zeros after a
// relu); check at a generic point instead.
template <class Params>
void randomize_biases(Params& p) {
  unsigned seed = 20;
  for (auto& e : p.entries()) {
    if (e.value.shape.rank() != 1) continue;
    const auto r = test_support::random_uniform<1>({e.value.size()}, seed++, -0.2, 0.2);
    std::copy(r.begin(), r.end(), e.value.data);
  }
}
auto make_params() {
  auto p = net::make_parameters<double>(tiny);
  p.initialize(3);
  randomize_biases(p);
  return p;
}
// 8x8 images: the stem's pooling gives 4x4 for block 1, the downsampling 2x2 for block 2.
tensor<double, 4> images() { return test_support::random_uniform<4>({2, 8, 8, 1}, 11, 0, 1); }
tensor<double, 1> labels() { return tensor<double, 1>({2}, {0, 2}); }
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

// At the example's sizes the kernels split their loops and the flow graph overlaps the branches;
// neither may change a bit of the loss or of any gradient.
BOOST_AUTO_TEST_CASE(results_do_not_depend_on_the_thread_count) {
  auto params = net::make_parameters<float>(net::sizes{});
  params.initialize(1);
  randomize_biases(params);
  tensor<float, 4> x({16, 28, 28, 1});
  const auto xd = test_support::random_uniform<4>({16, 28, 28, 1}, 12, -1, 1);
  std::copy(xd.begin(), xd.end(), x.begin());
  tensor<float, 1> labels({16});
  for (std::size_t i = 0; i < 16; ++i) labels(i) = float(i % 10);
  auto one = compile<float>(net::loss, net::weights);
  auto two = compile<float>(net::loss, net::weights);
  one.set_threads(1);
  two.set_threads(2);
  BOOST_TEST(one.threads() == 1);
  BOOST_TEST(two.threads() == 2);
  for (auto* p : {&one, &two}) {
    params.bind(*p);
    p->bind(net::x, x).bind(net::labels, labels).run();
  }
  BOOST_TEST(std::isfinite(one.scalar(net::loss)));
  BOOST_TEST(one.scalar(net::loss) == two.scalar(net::loss));
  // The loss and every gradient (the program's outputs).
  std::size_t equal = 0;
  [&]<class... Outs>(graph::type_list<Outs...>) {
    auto same = [&](auto e) {
      const auto a = one.value(e), b = two.value(e);
      return a.shape == b.shape && std::equal(a.data, a.data + a.size(), b.data);
    };
    equal = (std::size_t(same(Outs{})) + ...);
  }(typename decltype(one)::outputs{});
  BOOST_TEST(equal == decltype(one)::output_count);
}
