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

// P's contribution to the adjoint of X (no_adjoint when X is not an argument of P).
template <class Root, class X, class P>
struct contribution {
  using type = no_adjoint;
};
template <class Root, class X, class Op, class... Args>
  requires(std::is_same_v<Args, X> || ...)
struct contribution<Root, X, node<Op, Args...>> {
  using P = node<Op, Args...>;
  static auto compute() {
    using G = adjoint_t<Root, P>;
    if constexpr (std::is_same_v<G, no_adjoint>) {
      return no_adjoint{};
    } else {
      // Non-elementwise ops receive an adjoint of exactly their output's shape.
      auto g = [] {
        if constexpr (accepts_broadcast_adjoint_v<Op>) return G{};
        else return sum_to(G{}, P{});
      }();
      return [&]<std::size_t... I>(std::index_sequence<I...>) {
        return (no_adjoint{} + ... + [&] {
          if constexpr (std::is_same_v<std::tuple_element_t<I, std::tuple<Args...>>, X>)
            return Op::template vjp<I>(g, P{}, Args{}...);
          else
            return no_adjoint{};
        }());
      }(std::index_sequence_for<Args...>{});
    }
  }
  using type = decltype(compute());
};

template <class Root, class X, class Nodes> struct sum_contributions;
template <class Root, class X, class... Ps>
struct sum_contributions<Root, X, graph::type_list<Ps...>> {
  using type = decltype((no_adjoint{} + ... + typename contribution<Root, X, Ps>::type{}));
};

template <class Root, class X>
struct adjoint {
  using type = std::conditional_t<std::is_same_v<Root, X>, constant<1.0>,
                                  typename sum_contributions<Root, X, graph::nodes_of_t<Root>>::type>;
};

// Instantiating the adjoints from the root downwards keeps the compiler's instantiation depth
// bounded by a constant instead of by the depth of the graph: when a node's adjoint is needed,
// its consumers' adjoints already exist.
template <class Root, class List> struct warm_adjoints;
template <class Root, class... Ps>
struct warm_adjoints<Root, graph::type_list<Ps...>> {
  template <class P>
  static constexpr int one() {
    (void)sizeof(adjoint_t<Root, P>*);
    return 0;
  }
  static constexpr int value = [] {
    int sum = 0;
    // Reverse topological order: the comma fold runs right to left over the reversed indices.
    constexpr std::size_t n = sizeof...(Ps);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((sum += one<std::tuple_element_t<n - 1 - I, std::tuple<Ps...>>>()), ...);
    }(std::make_index_sequence<n>{});
    return sum;
  }();
};

template <class Root, class... Xs>
struct needed_nodes {
  // Nodes of the graph on a path from some requested variable to the root.
  template <class P>
  static constexpr bool needed = (graph::depends_on_v<P, Xs> || ...);
  template <class List> struct filter;
  template <class... Ps>
  struct filter<graph::type_list<Ps...>> {
    using type = decltype((graph::type_list<>{} + ... +
                           std::conditional_t<needed<Ps>, graph::type_list<Ps>, graph::type_list<>>{}));
  };
  using type = typename filter<graph::nodes_of_t<Root>>::type;
};

template <class F, class X>
constexpr auto gradient_of() {
  using A = adjoint_t<F, X>;
  if constexpr (std::is_same_v<A, no_adjoint>) return sum_to(lit<0>, X{});  // f does not depend on x
  else return sum_to(A{}, X{});
}

}  // namespace detail

// d f / d x for each x, as expressions (a single expression for a single variable, else a tuple).
template <Expression F, Expression... Xs>
constexpr auto grad(F, Xs...) {
  static_assert(F::rank == 0, "grad(f, x...): f must be a scalar (rank 0); reduce it first, e.g. grad(sum(f), x)");
  static_assert(sizeof...(Xs) > 0, "grad(f, x...): name at least one variable to differentiate with respect to");
  static_assert((is_var_v<Xs> && ...), "grad(f, x...): every x must be a leaf declared as var<\"name\", rank>");
  constexpr int warmed = detail::warm_adjoints<F, typename detail::needed_nodes<F, Xs...>::type>::value;
  (void)warmed;
  if constexpr (sizeof...(Xs) == 1) return detail::gradient_of<F, Xs...>();
  else return std::tuple{detail::gradient_of<F, Xs>()...};
}

// Hessian-vector product: d/dx <grad f(x), v>, for a variable x and an expression v of x's shape.
template <Expression F, Variable X, Expression V>
constexpr auto hvp(F f, X x, V v) {
  static_assert(V::rank == X::rank, "hvp(f, x, v): v must have the rank of x");
  return grad(sum(grad(f, x) * v), x);
}

}  // namespace typegrad
