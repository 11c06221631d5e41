// Compile-time budget probe: a ResNet-18-sized program (20 convs with batch norm and residual
// adds) with the gradients of every parameter, compiled into one program. Measured by
// bench/compile_budget.sh (docs/compile-time.md); running it prints the program's node count.
#include <fmt/format.h>

#include "../examples/nets/resnet18.hpp"

int main() {
  namespace net = typegrad::nets::resnet18;
  auto program = typegrad::compile<float>(net::loss, net::weights);
  fmt::print("ResNet-18-sized program: {} nodes\n", program.node_count());
}
