// A graph pass written by the user: the ResNet basic block of examples/nets/resnet_block.hpp with
// every relu replaced by gelu (an ablation), by rewrite() (include/typegrad/core/hana.hpp). The
// counts below are compile-time constants taken with Hana's algorithms over the graph's nodes, and
// the block's shapes and multiply-adds per output pixel come from the ops' shape rules evaluated
// at compile time (core/static_shapes.hpp); the rewritten loss is an ordinary expression, so its
// gradients and program come for free. Both programs run on the same random batch and print their
// losses and gradient norms.
#include <tuple>

#include <typegrad/core/hana.hpp>
#include <typegrad/core/static_shapes.hpp>

#include "nets/resnet_block.hpp"
#include "nets/show.hpp"

using namespace typegrad;
namespace net = typegrad::nets::resnet_block;

namespace {
constexpr auto relu_to_gelu = [](auto e) {
  if constexpr (is_op<unary_op<relu_fn>>(e)) return gelu(hana::at_c<0>(arguments(e)));
  else return e;
};
constexpr auto ablation_loss = rewrite(net::loss, relu_to_gelu);

// What the pass changed, at compile time.
constexpr std::size_t relus = hana::count_if(nodes(net::loss), op_named<"relu">);
constexpr std::size_t gelus = hana::count_if(nodes(ablation_loss), op_named<"gelu">);
constexpr std::size_t convs = hana::count_if(nodes(ablation_loss), op_named<"conv">);
static_assert(relus == 2 && gelus == 2 && hana::count_if(nodes(ablation_loss), op_named<"relu">) == hana::size_c<0>);
static_assert(hana::size(nodes(net::loss)) == hana::size(nodes(ablation_loss)));  // node for node

// The cost at compile time, for one 28x28 image with 16 channels (net::sizes): the block's output
// shape, its multiply-adds per output pixel (conv1 with stride 2, conv2, the 1x1 projection: 3x3x16,
// 3x3x32 and 16 per output channel), unchanged by the ablation, and those of a training step.
constexpr leaf_shapes one_image = {
    {"x", {1, 28, 28, 16}},  {"conv1_w", {32, 3, 3, 16}}, {"bn1_gamma", {32}},  {"bn1_beta", {32}},
    {"conv2_w", {32, 3, 3, 32}}, {"bn2_gamma", {32}},     {"bn2_beta", {32}},   {"proj_w", {32, 1, 1, 16}},
    {"proj_gamma", {32}},    {"proj_beta", {32}},         {"dense_w", {32, 10}}, {"dense_b", {10}},
    {"labels", {1}}};
constexpr shape block_shape = static_shape(one_image, net::block);
static_assert(block_shape == shape{1, 14, 14, 32});
constexpr std::size_t block_pixels = block_shape[1] * block_shape[2];
constexpr std::size_t macs_per_pixel = multiply_adds(one_image, net::block) / block_pixels;
static_assert(macs_per_pixel == 32 * (3 * 3 * 16 + 3 * 3 * 32 + 16));
static_assert(multiply_adds(one_image, rewrite(net::block, relu_to_gelu)) == multiply_adds(one_image, net::block));
// Forward and every weight's gradient, each shared node once (x's own gradient is not computed).
constexpr std::size_t step_macs = std::apply(
    [](auto... gradients) { return multiply_adds(one_image, net::loss, gradients...); },
    grad(net::loss, net::conv1_w, net::conv2_w, net::proj_w, net::dense_w));
}  // namespace

int main() {
  fmt::print("rewrite(loss, relu -> gelu): {} relus replaced by {} gelus; {} convs, {} nodes, {} variables kept\n\n",
             relus, gelus, convs, std::size_t(hana::size(nodes(ablation_loss))),
             std::size_t(hana::size(variables(ablation_loss))));
  fmt::print("per 28x28x16 image, at compile time: block output {}, {} multiply-adds per output pixel; a training "
             "step (forward + weight gradients) {} multiply-adds, {:.2f}x the forward's {}\n\n",
             block_shape, macs_per_pixel, step_macs, double(step_macs) / double(multiply_adds(one_image, net::loss)),
             multiply_adds(one_image, net::loss));
  const net::sizes s;
  auto params = net::make_parameters<float>(s);
  params.initialize(1);
  tensor<float, 4> images({8, 28, 28, s.in_channels});
  tensor<float, 1> labels({8});
  nets::fill_random_batch(images, labels, s.classes);

  auto original = compile<float>(net::loss, net::weights);
  auto ablation = compile<float>(ablation_loss, net::weights);
  params.bind(original);
  params.bind(ablation);
  original.bind(net::x, images).bind(net::labels, labels).run();
  ablation.bind(net::x, images).bind(net::labels, labels).run();
  nets::show("ResNet basic block", "(structure: examples/resnet_block)", original, params);
  fmt::print("\n");
  nets::show("the same block with gelu (rewrite)", "(every relu of the above a gelu)", ablation, params);
}
