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

template <class List, class X> struct contains;
template <class... Ts, class X>
struct contains<type_list<Ts...>, X> : std::is_base_of<tag<X>, inherit_all<Ts...>> {};

// Appends to Big the elements of Small that it lacks, in Small's order (which keeps a valid
// topological order). One fold expression over graph::operator+: no recursion over the list.
template <class Big, class Small> struct merge;
template <class Big, class... Ss>
struct merge<Big, type_list<Ss...>> {
  using type = decltype((Big{} + ... +
                         std::conditional_t<contains<Big, Ss>::value, type_list<>, type_list<Ss>>{}));
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
  using type = std::conditional_t<contains<type_list<Ts...>, X>::value, type_list<Ts...>, type_list<Ts..., X>>;
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
inline constexpr bool contains_v = detail::contains<List, X>::value;

// Position of X in List (List::size when absent).
template <class List, class X> struct index_of;
template <class... Ts, class X>
struct index_of<type_list<Ts...>, X> {
  static constexpr std::size_t value = [] {
    constexpr std::array<bool, sizeof...(Ts) + 1> hits{std::is_same_v<Ts, X>..., true};
    std::size_t i = 0;
    while (!hits[i]) ++i;
    return i;
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
