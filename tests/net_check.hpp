#pragma once
// Finite-difference check of a whole network (examples/nets/*.hpp): every parameter of a
// double-precision parameter set is given at its initialised value, plus the inputs.
#include <algorithm>
#include <tuple>

#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/train.hpp>

#include "support.hpp"

namespace typegrad::testing {

// Batch norm's gammas in [0.5, 1.5) and betas in [-0.5, 0.5), drawn from seed on: at their
// initial values (1 and 0) a relu after batch norm can sit exactly on its kink.
template <Variable... Vs>
void randomize_batch_norm(train::parameter_set<double, Vs...>& params, unsigned seed) {
  for (auto& e : params.entries()) {
    const bool gamma = e.name.starts_with("gamma");
    if (!gamma && !e.name.starts_with("beta")) continue;
    const double lo = gamma ? 0.5 : -0.5;
    const auto r = test_support::random_uniform<1>({e.value.size()}, seed++, lo, lo + 1);
    std::copy(r.begin(), r.end(), e.value.data);
  }
}

template <Scalar T, class F, class Weights, Variable... Vs, class... Inputs>
gradient_report check_network(F f, Weights weights, const train::parameter_set<double, Vs...>& params,
                              check_options options, Inputs... inputs) {
  return check_gradients<T>(f, weights, inputs..., given(Vs{}, params[Vs{}])..., options);
}

}  // namespace typegrad::testing
