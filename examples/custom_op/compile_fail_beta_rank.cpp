// Must not compile: a (positions, channels) beta for learnable_swish (test_custom_op_beta_rank).
#include "learnable_swish.hpp"

int main() {
  constexpr typegrad::var<"x", 3> x;
  constexpr typegrad::var<"beta", 2> beta;
  (void)research::learnable_swish(x, beta);
}
