// A LeNet-style network (examples/nets/lenet.hpp) on a random batch: prints its structure and the
// norms of its parameter gradients. See train examples for learning on real data.
#include "nets/lenet.hpp"
#include "nets/show.hpp"

using namespace typegrad;
namespace net = typegrad::nets::lenet;

int main() {
  const net::sizes s;
  auto params = net::make_parameters<float>(s);
  params.initialize(1);
  tensor<float, 4> images({8, s.side, s.side, 1});
  tensor<float, 1> labels({8});
  nets::fill_random_batch(images, labels, s.classes);
  auto program = compile<float>(net::loss, net::weights);
  params.bind(program);
  program.bind(net::x, images).bind(net::labels, labels).run();
  nets::show("LeNet-style network", to_string(net::logits), program, params);
}
