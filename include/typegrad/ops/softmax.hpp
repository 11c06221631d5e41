#pragma once
// softmax and log_softmax along one compile-time axis.
//
//   softmax(x)                 over the last axis (the classes, in the (batch, ..., channels) layout)
//   softmax(x, axes<1>)        over axis 1; exactly one axis, spelled as for sum/mean/max
//   log_softmax(x), log_softmax(x, axes<1>)
//
// The kernels subtract the max along the axis before exp, so large logits do not overflow.
// Adjoints, written with the node y itself (s = sum over the axis, expand = back over it):
//   softmax:      dx = y * (g - expand(s(g * y)))
//   log_softmax:  dx = g - softmax(x) * expand(s(g))
// Both are expressions of softmax, sum, expand and arithmetic, so they differentiate again
// (Hessian-vector products through softmax and softmax_cross_entropy work).
#include <cstddef>
#include <string>

#include "typegrad/kernels/softmax.hpp"
#include "typegrad/ops/arithmetic.hpp"
#include "typegrad/ops/op_base.hpp"
#include "typegrad/ops/reduce.hpp"

namespace typegrad {

template <std::size_t Axis, bool Log>
struct softmax_op : shape_preserving {
  static constexpr std::string_view name = Log ? "log_softmax" : "softmax";
  static std::string attributes() { return fmt::format("axis={}", Axis); }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::softmax<T>(out, in[0], Axis, Log);
  }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G g, [[maybe_unused]] Y y, X) {
    using along = axes_t<Axis>;
    if constexpr (Log) {
      auto total = node<detail::expand_op<along, false>, decltype(sum(g, along{})), X>{};
      return g - node<softmax_op<Axis, false>, X>{} * total;
    } else {
      auto dot = node<detail::expand_op<along, false>, decltype(sum(g * y, along{})), X>{};
      return y * (g - dot);
    }
  }
};

namespace detail {
template <bool Log, std::size_t Axis, Expression X>
constexpr auto make_softmax(X) {
  static_assert(X::rank > 0, "softmax(x) / log_softmax(x): x must have rank >= 1");
  static_assert(Axis < X::rank, "softmax(x, axes<a>) / log_softmax(x, axes<a>): a must be below x.rank");
  return node<softmax_op<Axis, Log>, X>{};
}
}  // namespace detail

// softmax(x): along the last axis. softmax(x, axes<a>): along axis a.
template <Expression X>
constexpr auto softmax(X x) {
  return detail::make_softmax<false, (X::rank > 0 ? X::rank - 1 : 0)>(x);
}
template <Expression X, std::size_t... A>
constexpr auto softmax(X x, axes_t<A...>) {
  static_assert(sizeof...(A) == 1, "softmax(x, axes<a>): give exactly one axis");
  return detail::make_softmax<false, (A + ... + 0)>(x);
}

// log_softmax(x) = x - log(sum(exp(x))) along the last axis; log_softmax(x, axes<a>): along a.
template <Expression X>
constexpr auto log_softmax(X x) {
  return detail::make_softmax<true, (X::rank > 0 ? X::rank - 1 : 0)>(x);
}
template <Expression X, std::size_t... A>
constexpr auto log_softmax(X x, axes_t<A...>) {
  static_assert(sizeof...(A) == 1, "log_softmax(x, axes<a>): give exactly one axis");
  return detail::make_softmax<true, (A + ... + 0)>(x);
}

}  // namespace typegrad
