// A graph pass written by the user: the ResNet basic block of examples/nets/resnet_block.hpp with
// every relu replaced by gelu (an ablation), by rewrite() (include/typegrad/core/hana.hpp). The
// counts below are compile-time constants taken with Hana's algorithms over the graph's nodes; the
// rewritten loss is an ordinary expression, so its gradients and program come for free. Both
// programs run on the same random batch and print their losses and gradient norms.
#include <typegrad/core/hana.hpp>

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
}  // namespace

int main() {
  fmt::print("rewrite(loss, relu -> gelu): {} relus replaced by {} gelus; {} convs, {} nodes, {} variables kept\n\n",
             relus, gelus, convs, std::size_t(hana::size(nodes(ablation_loss))),
             std::size_t(hana::size(variables(ablation_loss))));
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
