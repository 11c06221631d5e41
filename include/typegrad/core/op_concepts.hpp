#pragma once
// The op contract as concepts: what basic_node<Op, Args...> requires of Op, checked where a node
// is formed (Op) and where a gradient needs an op's rules (DifferentiableOp); a mistake is one
// sentence naming the missing piece. docs/adding-an-op.md explains each piece, and
// tests/test_op_contract.cpp holds the minimal op that satisfies them (the archetype):
//
//   struct twice_op {                                      // y = 2 x
//     static constexpr std::string_view name = "twice";
//     static constexpr std::size_t rank(std::size_t x) { return x; }
//     static shape infer_shape(std::span<const shape> in) { return in[0]; }
//     template <class T>
//     static void forward(view<T> out, std::span<const view<const T>> in) { ... }
//     template <std::size_t I, class G, class Y, class X>
//     static auto vjp(G g, Y, X) { return g * lit<2>; }
//   };
//
// Optional members (printing as an operator, views, value checks, fusion) are listed in
// ops/op_base.hpp.
#include <concepts>
#include <cstddef>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>

#include "typegrad/core/shape.hpp"

namespace typegrad {

// `static constexpr std::string_view name`: how the op prints.
template <class O>
concept NamedOp = requires {
  { O::name } -> std::convertible_to<std::string_view>;
};

// `static constexpr std::size_t rank(std::size_t...)`: the output's rank from one rank per
// argument, at compile time.
template <class O, std::size_t... ArgRanks>
concept RankedOp = requires { typename std::integral_constant<std::size_t, O::rank(ArgRanks...)>; };

// `static shape infer_shape(std::span<const shape>)`: the output's extents from the arguments'.
template <class O>
concept ShapedOp = requires(std::span<const shape> in) {
  { O::infer_shape(in) } -> std::same_as<shape>;
};

// `template <class T> static void forward(view<T>, std::span<const view<const T>>)` for float and
// double: the kernel call.
template <class O>
concept ComputableOp = requires(view<float> f, std::span<const view<const float>> fin, view<double> d,
                                std::span<const view<const double>> din) {
  O::template forward<float>(f, fin);
  O::template forward<double>(d, din);
};

// An op that can form a node over arguments of these ranks.
template <class O, std::size_t... ArgRanks>
concept Op = NamedOp<O> && RankedOp<O, ArgRanks...> && ShapedOp<O> && ComputableOp<O>;

namespace detail {
template <class O, class G, class Y, class... Args, std::size_t... I>
consteval bool has_vjps(std::index_sequence<I...>) {
  return (requires { O::template vjp<I>(G{}, Y{}, Args{}...); } && ...);
}
}  // namespace detail

// `template <std::size_t I, class G, class Y, class... Args> static auto vjp(G g, Y y, Args...)`
// for every argument I: the adjoint of argument I as an expression of other ops, given the
// output's adjoint g and the output y (no_adjoint{} where an argument gets none).
template <class O, class G, class Y, class... Args>
concept DifferentiableOp = detail::has_vjps<O, G, Y, Args...>(std::index_sequence_for<Args...>{});

// A row of the generic elementwise op (ops/unary.hpp): name and apply<T> for float and double.
template <class Fn>
concept UnaryFunction = requires(float f, double d) {
  { Fn::name } -> std::convertible_to<std::string_view>;
  { Fn::template apply<float>(f) } -> std::same_as<float>;
  { Fn::template apply<double>(d) } -> std::same_as<double>;
};

namespace detail {
// The rank of node<O, args of ranks ArgRanks...>, after the contract's checks: each failure is
// one sentence (and the rank is then 0, so that no error follows from it).
template <class O, std::size_t... ArgRanks>
consteval std::size_t checked_rank() {
  static_assert(NamedOp<O>, "typegrad op contract: the op struct needs `static constexpr std::string_view name`, "
                            "how it prints (docs/adding-an-op.md)");
  static_assert(RankedOp<O, ArgRanks...>,
                "typegrad op contract: the op struct needs `static constexpr std::size_t rank(std::size_t...)` taking "
                "one rank per argument it is applied to (docs/adding-an-op.md)");
  static_assert(ShapedOp<O>, "typegrad op contract: the op struct needs `static shape infer_shape(std::span<const "
                             "shape>)`, its output's extents (docs/adding-an-op.md)");
  static_assert(ComputableOp<O>, "typegrad op contract: the op struct needs `template <class T> static void "
                                 "forward(view<T> out, std::span<const view<const T>> in)` for float and double "
                                 "(docs/adding-an-op.md)");
  if constexpr (RankedOp<O, ArgRanks...>) return O::rank(ArgRanks...);
  else return 0;
}
}  // namespace detail

}  // namespace typegrad
