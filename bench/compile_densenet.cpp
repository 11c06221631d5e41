// Compile-time budget probe: a DenseNet block of 12 layers (12 concats) with the gradients of every
// parameter, compiled into one program. Measured by bench/compile_budget.sh (docs/compile-time.md).
#include <fmt/format.h>

#include "../examples/nets/densenet_block.hpp"

int main() {
  namespace net = typegrad::nets::densenet_block;
  auto program = typegrad::compile<float>(net::loss<12>(), net::weights<12>());
  fmt::print("DenseNet block of 12 layers: {} nodes\n", program.node_count());
}
