// Must not compile: a 3-d kernel applied to the 4-d features of a whole ResNet-18 (examples/nets).
// The error must stay short: node types hold their arguments by handle, so the "[with X = ...]"
// line names one node, not the network's type tree (docs/compile-time.md, "Handles").
#include "../../examples/nets/resnet18.hpp"
using namespace typegrad;
int main() {
  constexpr var<"w_bad", 3> w;
  (void)conv(nets::resnet18::features(), w);
}
