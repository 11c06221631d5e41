// A rank mistake deep inside a ResNet-18-sized network: a 3-d kernel given to a 2-d convolution.
// The error must name the op and stay short (tests/compile_fail/error_length.sh counts the lines).
#include "../../examples/nets/resnet18.hpp"

int main() {
  namespace net = typegrad::nets::resnet18;
  constexpr typegrad::var<"head_w", 3> head_w;  // should be rank 4: (out, kh, kw, in)
  auto head = typegrad::conv(net::features(), head_w);
  return static_cast<int>(decltype(head)::rank);
}
