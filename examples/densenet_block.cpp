// A DenseNet block of 4 layers (examples/nets/densenet_block.hpp) on a random batch: prints its
// structure and the norms of its parameter gradients.
#include "nets/densenet_block.hpp"
#include "nets/show.hpp"

using namespace typegrad;
namespace net = typegrad::nets::densenet_block;

int main() {
  constexpr std::size_t layers = 4;
  const net::sizes s;
  auto params = net::make_parameters<float, layers>(s);
  params.initialize(1);
  tensor<float, 4> images({8, 16, 16, s.in_channels});
  tensor<float, 1> labels({8});
  nets::fill_random_batch(images, labels, s.classes);
  auto program = compile<float>(net::loss<layers>(), net::weights<layers>());
  params.bind(program);
  program.bind(net::x, images).bind(net::labels, labels).run();
  nets::show("DenseNet block (4 layers)", to_string(net::logits<layers>()), program, params);
}
