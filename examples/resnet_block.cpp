// A ResNet basic block with a strided projection (examples/nets/resnet_block.hpp) on a random
// batch: prints its structure and the norms of its parameter gradients.
#include "nets/resnet_block.hpp"
#include "nets/show.hpp"

using namespace typegrad;
namespace net = typegrad::nets::resnet_block;

int main() {
  const net::sizes s;
  auto params = net::make_parameters<float>(s);
  params.initialize(1);
  tensor<float, 4> images({8, 28, 28, s.in_channels});
  tensor<float, 1> labels({8});
  nets::fill_random_batch(images, labels, s.classes);
  auto program = compile<float>(net::loss, net::weights);
  params.bind(program);
  program.bind(net::x, images).bind(net::labels, labels).run();
  nets::show("ResNet basic block (strided projection)", to_string(net::logits), program, params);
}
