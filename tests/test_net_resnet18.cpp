// The ResNet-18 of examples/nets/resnet18.hpp (20 convolutions with batch norm, residual adds, three
// strided projection shortcuts, every parameter's gradient: about 1000 program nodes), compiled,
// run and checked by finite differences in random directions on tiny sizes, in double. The
// compile-time budget of this network is measured in docs/compile-time.md; this test shows the
// compiled program is also right.
#define BOOST_TEST_MODULE net_resnet18
#include <array>

#include <boost/test/unit_test.hpp>

#include <typegrad/tools/gradcheck_boost.hpp>

#include "../examples/nets/resnet18.hpp"
#include "net_check.hpp"
#include "support.hpp"

using namespace typegrad;
namespace net = typegrad::nets::resnet18;

namespace {
constexpr std::size_t side = 8, batch = 3, in_channels = 2, classes = 3;  // 8x8 -> 4 -> 2 -> 1
constexpr std::array<std::size_t, 4> widths{2, 3, 3, 4};
// Conv I (1-based) of resnet18.hpp: its stage, and whether it is a 1x1 projection shortcut.
constexpr std::size_t stage_of(std::size_t i) { return i <= 5 ? 0 : i <= 10 ? 1 : i <= 15 ? 2 : 3; }
constexpr bool is_projection(std::size_t i) { return i == 8 || i == 13 || i == 18; }
// The input channels of conv I: the previous stage's width for a stage's first conv and its
// projection, else the stage's own width (conv 1 reads the image).
constexpr std::size_t in_of(std::size_t i) {
  if (i == 1) return in_channels;
  if (i == 6 || i == 8 || i == 11 || i == 13 || i == 16 || i == 18) return widths[stage_of(i) - 1];
  return widths[stage_of(i)];
}

auto make_params() {
  using namespace train;
  auto p = [&]<std::size_t... I>(std::index_sequence<I...>) {
    return train::make_parameters<double>(
        param(net::conv_w<I + 1>,
              {widths[stage_of(I + 1)], is_projection(I + 1) ? 1u : 3u, is_projection(I + 1) ? 1u : 3u, in_of(I + 1)},
              init::he_normal)...,
        param(net::gamma<I + 1>, {widths[stage_of(I + 1)]})..., param(net::beta<I + 1>, {widths[stage_of(I + 1)]})...,
        param(net::dense_w, {widths[3], classes}, init::glorot_uniform), param(net::dense_b, {classes}));
  }(std::make_index_sequence<20>{});
  p.initialize(5);
  testing::randomize_batch_norm(p, 200);
  return p;
}
}  // namespace

BOOST_AUTO_TEST_CASE(gradients_double_random_directions) {
  const auto params = make_params();
  const auto images = test_support::random_uniform<4>({batch, side, side, in_channels}, 17, 0, 1);
  const tensor<double, 1> labels({batch}, {0, 2, 1});
  const auto report = testing::check_network<double>(net::loss, net::weights, params,
                                                     {.mode = check_mode::random_directions, .directions = 3},
                                                     given(net::x, images), given(net::labels, labels));
  BOOST_TEST(testing::gradients_ok(report));
  BOOST_TEST(report.variables.size() == 62u);  // 20 kernels, 20 gammas, 20 betas, dense w and b
  // The report names f: the loss prints in let form (shared nodes once), not as its ~17^8-leaf tree.
  BOOST_TEST(report.function.starts_with("%1 = conv(x, conv01)\n"));
}
