#pragma once
// Finite-difference check of a whole network (examples/nets/*.hpp): every parameter of a
// double-precision parameter set is given at its initialised value, plus the inputs.
#include <tuple>

#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/train.hpp>

namespace typegrad::testing {

template <Scalar T, class F, class Weights, Variable... Vs, class... Inputs>
gradient_report check_network(F f, Weights weights, const train::parameter_set<double, Vs...>& params,
                              check_options options, Inputs... inputs) {
  return check_gradients<T>(f, weights, inputs..., given(Vs{}, params[Vs{}])..., options);
}

}  // namespace typegrad::testing
