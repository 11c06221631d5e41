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

// The adjoint of the node at position Position of graph G (a graph::graph_of<Root>). Keyed by
// position, so a consumer's adjoint and node type are reached in O(1) from the edge tables.
template <class G, std::size_t Position> struct adjoint;
template <class G, std::size_t Position> using adjoint_t = typename adjoint<G, Position>::type;

// Op's vjp<I>(g, y, args...), after the contract's check (core/op_concepts.hpp): a missing rule is
// one sentence, and the adjoint is then no_adjoint so that no error follows from it.
template <class Op, std::size_t I, class G, class Y, class... Args>
struct vjp_result {
  static constexpr bool ok = requires { Op::template vjp<I>(G{}, Y{}, Args{}...); };
  static_assert(ok, "typegrad op contract: grad() needs the op struct's `template <std::size_t I, class G, class Y, "
                    "class... Args> static auto vjp(G g, Y y, Args... args)` for this argument I: its adjoint as an "
                    "expression (no_adjoint{} if it gets none; docs/adding-an-op.md)");
  template <bool Ok, class = void> struct rule { using type = no_adjoint; };
  template <class D> struct rule<true, D> { using type = decltype(Op::template vjp<I>(G{}, Y{}, Args{}...)); };
  using type = typename rule<ok>::type;
};

// Consumer C's contribution, through argument slot I, to the adjoint of its I-th argument.
// Types only (partial specializations instead of helper functions or lambdas): the compiler never
// has to lower a function whose symbol spells out the graph.
template <class G, std::size_t C, std::size_t I, class P = graph::node_at<G, C>>
struct contribution;
template <class G, std::size_t C, std::size_t I, class Op, class... Args>
struct contribution<G, C, I, basic_node<Op, Args...>> {
  using P = basic_node<Op, Args...>;
  using Adjoint = adjoint_t<G, C>;
  // A smaller, broadcastable adjoint may pass when the argument has the op's own shape: the
  // elementwise vjp is then fitted to that shape by expansion. For a broadcast argument,
  // sum_to(g, arg) would not count the broadcast copies (d sum(s + x)/ds for a scalar s), and
  // non-elementwise ops always need it, so those get the adjoint expanded to the op's shape.
  // (No static data members here: see the symbol rule in graph.hpp.)
  template <bool Zero, bool AsIs, class Gin> struct apply {
    using type = typename vjp_result<Op, I, Gin, P, Args...>::type;
  };
  template <class Gin> struct apply<false, false, Gin> {
    using type = typename vjp_result<Op, I, decltype(sum_to(Gin{}, P{})), P, Args...>::type;
  };
  template <bool AsIs, class Gin> struct apply<true, AsIs, Gin> {
    using type = no_adjoint;
  };
  using type = typename apply<__is_same(Adjoint, no_adjoint),
                              accepts_broadcast_adjoint_v<Op> &&
                                  same_shape_v<std::tuple_element_t<I, std::tuple<Args...>>, P>,
                              Adjoint>::type;
};

// The sum of the contributions of the edges that read the node (the root's adjoint is 1; a node
// nothing reads, or a position outside the graph, gets no_adjoint).
template <class G, std::size_t Position>
struct adjoint {
  template <std::size_t First, class Seq> struct sum_readers;
  template <std::size_t First, std::size_t... K>
  struct sum_readers<First, std::index_sequence<K...>> {
    using type = decltype((no_adjoint{} + ... +
                           typename contribution<G, G::readers.by_arg[First + K].consumer,
                                                 G::readers.by_arg[First + K].slot>::type{}));
  };
  // (Position == G::size: absent, no readers.)
  using type = std::conditional_t<Position == G::value.roots[0], constant<1.0>,
                                  typename sum_readers<G::readers.begin[Position],
                                                       std::make_index_sequence<G::readers.begin[Position + 1] -
                                                                                G::readers.begin[Position]>>::type>;
};

// Instantiating the adjoints from the root downwards keeps the compiler's instantiation depth
// bounded by a constant instead of by the depth of the graph: when a node's adjoint is needed,
// its consumers' adjoints already exist. Only nodes on a path from a requested variable to the
// root are visited (found by a constexpr pass over the edges). Pure class templates keyed by the
// graph and positions only, never by the variables: a template named per node after all of them
// would cost O(nodes x variables).
template <class G, bool Needed, std::size_t P>
struct warm_one : std::true_type {};
template <class G, std::size_t P>
struct warm_one<G, true, P> : std::bool_constant<(sizeof(adjoint_t<G, P>*) > 0)> {};
template <class G, class Needed, class Seq> struct warm_all;
template <class G, class Needed, std::size_t... I>
struct warm_all<G, Needed, std::index_sequence<I...>>
    : std::bool_constant<(warm_one<G, Needed::value[G::size - 1 - I], G::size - 1 - I>::value && ...)> {};
template <class Root, class... Xs>
struct warm_adjoints {
  using G = graph::graph_of<Root>;
  static constexpr bool value =
      warm_all<G, graph::nodes_depending_on<G, Xs...>, std::make_index_sequence<G::size>>::value;
};

template <class F, class X>
constexpr auto gradient_of() {
  using G = graph::graph_of<F>;
  using A = adjoint_t<G, G::template position<X>>;
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

// The variables to differentiate with respect to: compile(loss, wrt(w, b)), vjp(y, g, wrt(x)).
template <Variable... Vs>
struct wrt_t {};
template <Variable... Vs>
constexpr wrt_t<Vs...> wrt(Vs...) {
  return {};
}

// Vector-Jacobian product: the adjoints of x... when y's adjoint is the cotangent g (an expression
// of y's shape), i.e. grad(vdot(y, g), x...) = (dy/dx)^T g, for any rank of y. One expression for
// one variable, else a tuple, as grad() returns. No sum(y * g) is formed: the adjoint of y is g.
template <Expression Y, Expression G, Variable... Xs>
constexpr auto vjp(Y y, G g, wrt_t<Xs...>) {
  static_assert(G::rank == Y::rank, "vjp(y, g, wrt(x...)): the cotangent g must have y's rank (and shape)");
  return grad(vdot(y, g), Xs{}...);
}

// Hessian-vector product: d/dx <grad f(x), v>, for a variable x and an expression v of x's shape.
template <Expression F, Variable X, Expression V>
constexpr auto hvp(F f, X x, V v) {
  static_assert(V::rank == X::rank, "hvp(f, x, v): v must have the rank of x");
  return grad(sum(grad(f, x) * v), x);
}

}  // namespace typegrad
