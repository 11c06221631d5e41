// Must not compile: a 3-d kernel applied to the 4-d output of a 12-concat DenseNet block
// (examples/nets). The error must stay short (docs/compile-time.md, "Handles").
#include "../../examples/nets/densenet_block.hpp"
using namespace typegrad;
int main() {
  constexpr var<"w_bad", 3> w;
  (void)conv(nets::densenet_block::features<12>(), w);
}
