#pragma once
// Type-level graph algorithms: the unique nodes of a graph in topological (post-)order.
//
// Compile time is the budget of a compile-time graph library, so these work on flat packs:
// membership is one is_base_of test against a pack-inheriting set (no pairwise comparisons),
// and each node's list is memoized, so a node shared by many consumers (fan-out, CSE) is
// visited once. Boost.Hana wraps the results for iteration (hana::tuple_t) at the interface.
#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>

#include <boost/hana/tuple.hpp>
#include <boost/hana/type.hpp>

#include "typegrad/core/expression.hpp"

namespace typegrad::graph {

template <class... Ts>
struct type_list {
  static constexpr std::size_t size = sizeof...(Ts);
};

// Concatenation, for fold expressions (only used in unevaluated contexts).
template <class... Ts, class... Us>
type_list<Ts..., Us...> operator+(type_list<Ts...>, type_list<Us...>);

namespace detail {
template <class T> struct tag {};
template <class... Ts> struct inherit_all : tag<Ts>... {};

// A list's membership set, made once per list. Membership tests use the __is_base_of builtin
// on it directly: a template per (list, element) pair would deduce and store a copy of the
// whole pack each time, which is what makes large graphs cost gigabytes to compile.
template <class List> struct set_of;
template <class... Ts>
struct set_of<type_list<Ts...>> {
  using type = inherit_all<Ts...>;
};

// Pack indexing in O(1) per lookup: overload resolution against indexed bases.
template <std::size_t I, class T> struct indexed {};
template <class Seq, class... Ts> struct indexer;
template <std::size_t... I, class... Ts>
struct indexer<std::index_sequence<I...>, Ts...> : indexed<I, Ts>... {};
template <std::size_t I, class T>
T select(indexed<I, T>);  // declaration only: used in decltype

// Appends to Big the elements of Small that it lacks, in Small's order (which keeps a valid
// topological order). The kept positions are computed as a constexpr array and selected in one
// pack expansion, so a merge costs O(|Big| + |Small|) rather than one new list per element.
template <class Big, class Small> struct merge;
template <class... Bs, class... Ss>
struct merge<type_list<Bs...>, type_list<Ss...>> {
  using big_set = inherit_all<Bs...>;
  static constexpr std::array<bool, sizeof...(Ss)> keep{!__is_base_of(tag<Ss>, big_set)...};
  static constexpr std::size_t count = [] {
    std::size_t c = 0;
    for (bool k : keep) c += k;
    return c;
  }();
  static constexpr std::array<std::size_t, count> positions = [] {
    std::array<std::size_t, count> p{};
    std::size_t c = 0;
    for (std::size_t i = 0; i < keep.size(); ++i)
      if (keep[i]) p[c++] = i;
    return p;
  }();
  using all = indexer<std::index_sequence_for<Ss...>, Ss...>;
  template <std::size_t... J>
  static auto make(std::index_sequence<J...>) -> type_list<Bs..., decltype(select<positions[J]>(all{}))...>;
  using type = decltype(make(std::make_index_sequence<count>{}));
};

template <class... Lists> struct merge_all {
  using type = type_list<>;
};
template <class L> struct merge_all<L> {
  using type = L;
};
template <class L1, class L2, class... Ls>
struct merge_all<L1, L2, Ls...> {
  // Keep the longer list as the base so the short one is folded in element by element.
  using base = std::conditional_t<(L1::size >= L2::size), L1, L2>;
  using other = std::conditional_t<(L1::size >= L2::size), L2, L1>;
  using type = typename merge_all<typename merge<base, other>::type, Ls...>::type;
};

template <class List, class X> struct push_back_unique;
template <class... Ts, class X>
struct push_back_unique<type_list<Ts...>, X> {
  using type = std::conditional_t<__is_base_of(tag<X>, inherit_all<Ts...>), type_list<Ts...>, type_list<Ts..., X>>;
};
}  // namespace detail

// Post-order list of the distinct nodes of E: every node after all of its arguments.
template <class E> struct nodes_of {
  using type = type_list<E>;
};
template <class Op, class... Args>
struct nodes_of<node<Op, Args...>> {
  using type = typename detail::push_back_unique<typename detail::merge_all<typename nodes_of<Args>::type...>::type,
                                                 node<Op, Args...>>::type;
};
template <class E> using nodes_of_t = typename nodes_of<E>::type;

// The distinct nodes of several roots (program outputs), in a valid topological order.
template <class... Roots>
using nodes_of_all_t = typename detail::merge_all<nodes_of_t<Roots>...>::type;

template <class List, class X>
inline constexpr bool contains_v = __is_base_of(detail::tag<X>, typename detail::set_of<List>::type);

// Position of X in List (List::size when absent).
template <class List, class X> struct index_of;
template <class... Ts, class X>
struct index_of<type_list<Ts...>, X> {
  static constexpr std::size_t value = [] {
    constexpr std::array<bool, sizeof...(Ts) + 1> hits{__is_same(Ts, X)..., true};
    std::size_t i = 0;
    while (!hits[i]) ++i;
    return i;
  }();
};

// The graph's edges as constexpr data: edge k says node `consumer` reads node `arg` in argument
// slot `slot` (positions in the list). Consumers of a node are then found by a constexpr loop
// instead of by instantiating a template per (node, node) pair.
struct edge {
  std::size_t consumer, slot, arg;
};
template <class List> struct edges_of;
template <class... Ns>
struct edges_of<type_list<Ns...>> {
  using all = detail::indexer<std::index_sequence_for<Ns...>, Ns...>;
  // Position of X (size when absent), expanded over the class's own pack: no per-X deduction of
  // the whole list. (Not a deduction against the indexer's bases: that crashes g++ 12,
  // "internal compiler error: in unify", e.g. for hvp(sum(x * w / (x * x + lit<2>)), x, v).)
  template <class X>
  static constexpr std::size_t position_of = [] {
    constexpr std::array<bool, sizeof...(Ns) + 1> hits{__is_same(Ns, X)..., true};
    std::size_t i = 0;
    while (!hits[i]) ++i;
    return i;
  }();
  template <std::size_t I>
  using at = decltype(detail::select<I>(all{}));

  template <class N> struct args {
    static constexpr std::array<std::size_t, 0> positions{};
  };
  template <class Op, class... Args> struct args<node<Op, Args...>> {
    static constexpr std::array<std::size_t, sizeof...(Args)> positions{position_of<Args>...};
  };
  static constexpr std::size_t count = (args<Ns>::positions.size() + ... + 0);
  static constexpr std::array<edge, count> edges = [] {
    std::array<edge, count> e{};
    std::size_t k = 0, consumer = 0;
    auto add = [&](const auto& positions) {
      for (std::size_t slot = 0; slot < positions.size(); ++slot) e[k++] = {consumer, slot, positions[slot]};
      ++consumer;
    };
    (add(args<Ns>::positions), ...);
    return e;
  }();
};
template <class List, class X>
inline constexpr std::size_t index_of_v = index_of<List, X>::value;

// The graph's nodes as a Hana sequence of types, for hana::for_each and friends.
template <class List> struct as_hana;
template <class... Ts>
struct as_hana<type_list<Ts...>> {
  static constexpr auto value = boost::hana::tuple_t<Ts...>;
};

// Does E (transitively) depend on leaf X?
template <class E, class X>
inline constexpr bool depends_on_v = contains_v<nodes_of_t<E>, X>;

// Number of distinct nodes (leaves included): what common-subexpression elimination leaves.
template <Expression... Roots>
constexpr std::size_t node_count(Roots...) {
  return nodes_of_all_t<Roots...>::size;
}

}  // namespace typegrad::graph
