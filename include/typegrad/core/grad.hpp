#pragma once
// Symbolic reverse mode. grad(f, x...) returns ordinary expressions: the adjoint of each x.
//
// The adjoint of a node X is pulled from its consumers: sum over every node P of the graph and
// every argument slot i with P's i-th argument == X of P's vjp<i>(adjoint(P), P, args...).
// Only consumers that lie between X and f are ever visited, so branches that cannot reach a
// requested variable get no adjoint work (pruning), and identical adjoint expressions are the
// same type (CSE across the gradients of several variables).
// The adjoint of f itself is the literal 1, which the arithmetic simplifications absorb.
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "typegrad/core/graph.hpp"
#include "typegrad/ops/arithmetic.hpp"
#include "typegrad/ops/reduce.hpp"

namespace typegrad {
namespace detail {

template <class Root, class X> struct adjoint;
template <class Root, class X> using adjoint_t = typename adjoint<Root, X>::type;

// Consumer P's contribution, through argument slot I, to the adjoint of its I-th argument.
// Types only (partial specializations instead of helper functions or lambdas): the compiler never
// has to lower a function whose symbol spells out the graph.
template <class Root, class P, std::size_t I>
struct contribution;
template <class Root, class Op, class... Args, std::size_t I>
struct contribution<Root, basic_node<Op, Args...>, I> {
  using P = basic_node<Op, Args...>;
  using G = adjoint_t<Root, P>;
  // A smaller, broadcastable adjoint may pass when the argument has the op's own shape: the
  // elementwise vjp is then fitted to that shape by expansion. For a broadcast argument,
  // sum_to(g, arg) would not count the broadcast copies (d sum(s + x)/ds for a scalar s), and
  // non-elementwise ops always need it, so those get the adjoint expanded to the op's shape.
  // (No static data members here: see the symbol rule in graph.hpp.)
  template <bool Zero, bool AsIs, class Gin> struct apply {
    using type = decltype(Op::template vjp<I>(Gin{}, P{}, Args{}...));
  };
  template <class Gin> struct apply<false, false, Gin> {
    using type = decltype(Op::template vjp<I>(sum_to(Gin{}, P{}), P{}, Args{}...));
  };
  template <bool AsIs, class Gin> struct apply<true, AsIs, Gin> {
    using type = no_adjoint;
  };
  using type = typename apply<__is_same(G, no_adjoint),
                              accepts_broadcast_adjoint_v<Op> &&
                                  same_shape_v<std::tuple_element_t<I, std::tuple<Args...>>, P>,
                              G>::type;
};

template <class Root>
struct graph_of {
  using nodes = graph::nodes_of_t<Root>;
  using edges = graph::edges_of<nodes>;
};

// The adjoint of X: the sum of the contributions of the edges that read X.
template <class Root, class X>
struct adjoint {
  using G = graph_of<Root>;
  using E = typename G::edges;
  template <std::size_t First, class Seq> struct sum_readers;
  template <std::size_t First, std::size_t... K>
  struct sum_readers<First, std::index_sequence<K...>> {
    using type = decltype((no_adjoint{} + ... +
                           typename contribution<Root, typename E::template at<E::readers.by_arg[First + K].consumer>,
                                                 E::readers.by_arg[First + K].slot>::type{}));
  };
  template <std::size_t Position>
  using sum_of_readers = typename sum_readers<E::readers.begin[Position],
                                              std::make_index_sequence<E::readers.begin[Position + 1] -
                                                                       E::readers.begin[Position]>>::type;
  using type = std::conditional_t<__is_same(Root, X), constant<1.0>, sum_of_readers<E::template position<X>::value>>;
};

// Instantiating the adjoints from the root downwards keeps the compiler's instantiation depth
// bounded by a constant instead of by the depth of the graph: when a node's adjoint is needed,
// its consumers' adjoints already exist. Only nodes on a path from a requested variable to the
// root are visited (found by a constexpr pass over the edges).
template <std::size_t N, std::size_t E, std::size_t V>
consteval std::array<bool, N> on_paths_from(const std::array<graph::edge, E>& edges,
                                            const std::array<std::size_t, V>& from) {
  std::array<bool, N> need{};
  for (auto v : from)
    if (v < N) need[v] = true;  // v == N: f does not depend on that x
  for (const auto& e : edges)  // edges are in topological order of their consumers
    if (need[e.arg]) need[e.consumer] = true;
  return need;
}
template <class Root, class... Xs>
struct warm_adjoints {
  using G = graph_of<Root>;
  static constexpr std::size_t n = G::nodes::size;
  static constexpr std::array<bool, n> needed =
      on_paths_from<n>(G::edges::edges, std::array<std::size_t, sizeof...(Xs)>{G::edges::template position<Xs>::value...});
  // Pure class templates (no constexpr functions or lambdas): nothing here is ever a function the
  // compiler has to lower, whose symbol would spell out the whole graph.
  template <bool Needed, class P>
  struct warm_one : std::true_type {};
  template <class P>
  struct warm_one<true, P> : std::bool_constant<(sizeof(adjoint_t<Root, P>*) > 0)> {};
  template <class Seq> struct warm_all;
  template <std::size_t... I>
  struct warm_all<std::index_sequence<I...>>
      : std::bool_constant<(warm_one<needed[n - 1 - I], typename G::edges::template at<n - 1 - I>>::value && ...)> {};
  static constexpr bool value = warm_all<std::make_index_sequence<n>>::value;
};

template <class F, class X>
constexpr auto gradient_of() {
  using A = adjoint_t<F, X>;
  if constexpr (__is_same(A, no_adjoint)) return sum_to(lit<0>, X{});  // f does not depend on x
  else return resolve_t<decltype(sum_to(A{}, X{}))>{};
}

}  // namespace detail

// d f / d x for each x, as expressions (a single expression for a single variable, else a tuple).
template <Expression F, Expression... Xs>
constexpr auto grad(F, Xs...) {
  static_assert(F::rank == 0, "grad(f, x...): f must be a scalar (rank 0); reduce it first, e.g. grad(sum(f), x)");
  static_assert(sizeof...(Xs) > 0, "grad(f, x...): name at least one variable to differentiate with respect to");
  static_assert((is_var_v<Xs> && ...), "grad(f, x...): every x must be a leaf declared as var<\"name\", rank>");
  static_assert(detail::warm_adjoints<F, Xs...>::value);
  if constexpr (sizeof...(Xs) == 1) return detail::gradient_of<F, Xs...>();
  // Value-initialised from the types, not constructed from values: std::tuple's constructors take
  // graph types as non-deduced parameters, which g++ walks as trees (docs/compile-time.md).
  else return std::tuple<decltype(detail::gradient_of<F, Xs>())...>{};
}

// Hessian-vector product: d/dx <grad f(x), v>, for a variable x and an expression v of x's shape.
template <Expression F, Variable X, Expression V>
constexpr auto hvp(F f, X x, V v) {
  static_assert(V::rank == X::rank, "hvp(f, x, v): v must have the rank of x");
  return grad(sum(grad(f, x) * v), x);
}

}  // namespace typegrad
