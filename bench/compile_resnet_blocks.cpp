// Compile-time growth probe (docs/compile-time.md): a stem and BLOCKS ResNet basic blocks (conv,
// batch norm, relu, conv, batch norm, identity residual add; examples/nets/resnet18.hpp), compiled
// with the gradients of the first two convolutions and the dense layer. Build with -DBLOCKS=N:
//   g++ -std=c++20 -O2 -Iinclude -DBLOCKS=4 -c bench/compile_resnet_blocks.cpp
#include <fmt/format.h>

#include "../examples/nets/resnet18.hpp"

#ifndef BLOCKS
#define BLOCKS 3
#endif

namespace net = typegrad::nets::resnet18;

template <int B, typegrad::Expression X>
constexpr auto blocks(X h) {
  if constexpr (B == 0) return h;
  else return blocks<B - 1>(net::basic_block<2 * B, false>(h));
}

int main() {
  constexpr auto features = blocks<BLOCKS>(relu(net::conv_bn<1>(net::x)));
  constexpr auto loss =
      softmax_cross_entropy(dense(global_avg_pool(features), net::dense_w, net::dense_b), net::labels);
  auto program = typegrad::compile<float>(loss, typegrad::wrt(net::conv_w<1>, net::conv_w<2>, net::dense_w));
  fmt::print("{} basic blocks: {} nodes\n", BLOCKS, program.node_count());
}
