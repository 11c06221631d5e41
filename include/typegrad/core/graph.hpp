#pragma once
// Type-level graph algorithms: the unique nodes of a graph in topological (post-)order.
//
// Compile time is the budget of a compile-time graph library, so these work on flat packs:
// membership is one is_base_of test against a pack-inheriting set (no pairwise comparisons),
// and each node's list is memoized, so a node shared by many consumers (fan-out, CSE) is
// visited once. Boost.Hana wraps the results for iteration (hana::tuple_t) at the interface.
//
// Symbol rule: a class template whose arguments are whole graphs or node lists must not hold
// static data members or lambdas. Each of those is a symbol whose mangled name spells out the
// arguments, and GCC mangles every one of them at the end of the translation unit even if it is
// never emitted: for a 64-layer network that was most of the compile time. Constants go in
// small shared bases (list_size<N>), computed values in consteval functions, which are never
// emitted nor mangled.
#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>

#include <boost/hana/tuple.hpp>
#include <boost/hana/type.hpp>

#include "typegrad/core/expression.hpp"

namespace typegrad::graph {

namespace detail {
template <std::size_t N>
struct list_size {
  static constexpr std::size_t size = N;
};
}  // namespace detail

template <class... Ts>
struct type_list : detail::list_size<sizeof...(Ts)> {};

// Concatenation, for fold expressions (only used in unevaluated contexts).
template <class... Ts, class... Us>
type_list<Ts..., Us...> operator+(type_list<Ts...>, type_list<Us...>);

namespace detail {
template <class T> struct tag {};
template <class... Ts> struct inherit_all : tag<Ts>... {};

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
// The positions of the true entries of `keep`, and how many there are.
template <std::size_t N>
struct kept_positions {
  std::array<std::size_t, N> at{};
  std::size_t count = 0;
};
template <std::size_t N>
consteval kept_positions<N> positions_of_true(std::array<bool, N> keep) {
  kept_positions<N> k;
  for (std::size_t i = 0; i < N; ++i)
    if (keep[i]) k.at[k.count++] = i;
  return k;
}
template <class... Bs, class... Ss>
struct merge<type_list<Bs...>, type_list<Ss...>> {
  // A consteval member (computed once, cached by the compiler) rather than a class template
  // over the flags, whose argument lists would be kept for every merge. Big's set is named once:
  // spelled inside the expansion over Ss, inherit_all<Bs...> would be rebuilt (an argument vector
  // of |Big|, then a hash lookup) for every element of Small.
  using big_set = inherit_all<Bs...>;
  static consteval kept_positions<sizeof...(Ss)> kept() {
    return positions_of_true<sizeof...(Ss)>({!__is_base_of(tag<Ss>, big_set)...});
  }
  using all = indexer<std::index_sequence_for<Ss...>, Ss...>;
  template <std::size_t... J>
  static auto make(std::index_sequence<J...>) -> type_list<Bs..., decltype(select<kept().at[J]>(all{}))...>;
  using type = decltype(make(std::make_index_sequence<kept().count>{}));
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

}  // namespace detail

// Post-order list of the distinct nodes of E: every node after all of its arguments.
template <class E> struct nodes_of {
  using type = type_list<E>;
};

namespace detail {
// A node's list is its longest argument's list with the other arguments' lists merged in, then the
// node itself (never among its own descendants). Such lists are closed (they hold every argument
// of their nodes), so when the list already holds another argument A it holds all of A's list:
// one scan of the list, no new list and no membership set. This is the usual case (a layer
// reading the running activation, an adjoint reading forward values); only other arguments go
// through merge. (A set per list cost a class with one base per node, for every node: most of
// the compiler's memory on deep networks.)
template <class X, class... Ts>
concept one_of = (__is_same(Ts, X) || ...);
template <class List, class X> struct push_back;
template <class... Ts, class X>
struct push_back<type_list<Ts...>, X> {
  using type = type_list<Ts..., X>;
};

template <class E> struct node_arguments {
  using type = type_list<>;
};
template <class Op, class... Args> struct node_arguments<basic_node<Op, Args...>> {
  using type = type_list<resolve_t<Args>...>;
};
// Membership in a list: one concept check, cached by g++ (a fold expression spelled inside a class
// over the list's pack cost seconds on long lists; a set class with one base per element, made per
// list, cost memory on every node).
template <class List, class X> struct holds;
template <class... Bs, class X>
struct holds<type_list<Bs...>, X> : std::bool_constant<one_of<X, Bs...>> {};
template <class List, class Args> struct holds_all;
template <class List, class... As>
struct holds_all<List, type_list<As...>> : std::bool_constant<(holds<List, As>::value && ...)> {};
// The three outcomes, as namespace-scope templates of the list as one type: member templates of
// a class over the list's pack re-expanded the pack for every one of them (about 1.5 KB per list
// element per node, which made the lists of a 400-node chain cost 1 GB of compiler memory).
template <bool Held, bool OnlyA, class List, class A> struct merge_outcome {
  using type = typename merge<List, typename nodes_of<A>::type>::type;
};
template <bool OnlyA, class List, class A> struct merge_outcome<true, OnlyA, List, A> {
  using type = List;
};
template <class List, class A> struct merge_outcome<false, true, List, A> {
  using type = typename push_back<List, A>::type;
};
template <class List, class A, bool CheckArguments>
struct merge_argument {
  // A itself is held: nothing to add. All of A's arguments are held (always so for a leaf): A
  // is the only new node. Otherwise merge A's list.
  template <bool Check, class = void> struct only_a : std::bool_constant<(nodes_of<A>::type::size == 1)> {};
  template <class V> struct only_a<true, V> : std::bool_constant<(nodes_of<A>::type::size == 1 ||
                                                                  holds_all<List, typename node_arguments<A>::type>::value)> {};
  using type = typename merge_outcome<holds<List, A>::value, only_a<CheckArguments>::value, List, A>::type;
};
// CheckArguments: also test whether all of an argument's own arguments are held (worth it for
// program outputs, such as gradients reading the shared adjoint chain; not for every node).
template <bool CheckArguments, class List, class... As> struct merge_arguments {
  using type = List;
};
template <bool CheckArguments, class List, class A, class... As>
struct merge_arguments<CheckArguments, List, A, As...> {
  using type =
      typename merge_arguments<CheckArguments, typename merge_argument<List, A, CheckArguments>::type, As...>::type;
};
template <std::size_t N>
consteval std::size_t longest(std::array<std::size_t, N> sizes) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < N; ++i)
    if (sizes[i] > sizes[best]) best = i;
  return best;
}
}  // namespace detail

// Lists hold nodes, never handles: a handle's list is its node's.
template <std::uint64_t Id, std::size_t R>
struct nodes_of<node_ref<Id, R>> : nodes_of<resolve_t<node_ref<Id, R>>> {};

template <class Op, class... Args>
struct nodes_of<basic_node<Op, Args...>> {
  using longest = decltype(detail::select<detail::longest<sizeof...(Args)>({nodes_of<Args>::type::size...})>(
      detail::indexer<std::index_sequence_for<Args...>, resolve_t<Args>...>{}));
  using type = typename detail::push_back<
      typename detail::merge_arguments<false, typename nodes_of<longest>::type, resolve_t<Args>...>::type,
      basic_node<Op, Args...>>::type;
};
// The common arities without the general machinery (most nodes are unary or binary).
template <class Op, class A>
struct nodes_of<basic_node<Op, A>> {
  using type = typename detail::push_back<typename nodes_of<A>::type, basic_node<Op, A>>::type;
};
template <class Op, class A, class B>
struct nodes_of<basic_node<Op, A, B>> {
  // An alias, not a static member: see the symbol rule above.
  using a_longer = std::bool_constant<(nodes_of<A>::type::size >= nodes_of<B>::type::size)>;
  using type = typename detail::push_back<
      typename detail::merge_argument<typename nodes_of<std::conditional_t<a_longer::value, A, B>>::type,
                                      resolve_t<std::conditional_t<a_longer::value, B, A>>, false>::type,
      basic_node<Op, A, B>>::type;
};
template <class E> using nodes_of_t = typename nodes_of<E>::type;

// The distinct nodes of several roots (program outputs), in a valid topological order: the
// longest root's list with the others merged in as a node merges its arguments.
namespace detail {
template <class... Roots> struct nodes_of_roots {
  using longest = decltype(select<detail::longest<sizeof...(Roots)>({nodes_of<Roots>::type::size...})>(
      indexer<std::index_sequence_for<Roots...>, Roots...>{}));
  using type = typename merge_arguments<true, typename nodes_of<longest>::type, Roots...>::type;
};
template <> struct nodes_of_roots<> {
  using type = type_list<>;
};
}  // namespace detail
template <class... Roots>
using nodes_of_all_t = typename detail::nodes_of_roots<resolve_t<Roots>...>::type;

template <class List, class X>
concept contains_v = detail::holds<List, X>::value;

namespace detail {
template <std::size_t N>
consteval std::size_t first_true(std::array<bool, N> hits) {
  std::size_t i = 0;
  while (i < N && !hits[i]) ++i;
  return i;
}
template <class List, class X> struct index_of;
template <class... Ts, class X>
struct index_of<type_list<Ts...>, X> {
  static consteval std::size_t value() { return first_true<sizeof...(Ts)>({__is_same(Ts, X)...}); }
};
}  // namespace detail

// Position of X in List (List::size when absent).
template <class List, class X>
inline constexpr std::size_t index_of_v = detail::index_of<List, X>::value();


namespace detail {
// X's position in a list by overload resolution: the list's slot map has one overload
// position(tag<T>*) per element T and a fallback for absent types. Resolving a call checks each
// candidate by a cheap pointer conversion inside the compiler. (Deducing the position from a
// base slot<X, I> instead crashes g++ 12, "internal compiler error: in unify", when X and an
// element are literals such as constant<2.0> that differ only in a double template argument.)
template <class T, std::size_t I>
struct slot {
  static std::integral_constant<std::size_t, I> position(tag<T>*);  // declarations only: used in decltype
};
template <class Seq, class... Ts> struct slot_map;
template <std::size_t... I, class... Ts>
struct slot_map<std::index_sequence<I...>, Ts...> : slot<Ts, I>... {
  using slot<Ts, I>::position...;
  static std::integral_constant<std::size_t, sizeof...(Ts)> position(const void*);
};
}  // namespace detail

// The graph's edges as constexpr data: edge k says node `consumer` reads node `arg` in argument
// slot `slot` (positions in the list). Consumers of a node are then found by a constexpr loop
// instead of by instantiating a template per (node, node) pair.
struct edge {
  std::size_t consumer, slot, arg;
};
namespace detail {
template <class E> struct arity : std::integral_constant<std::size_t, 0> {};
template <class Op, class... Args>
struct arity<basic_node<Op, Args...>> : std::integral_constant<std::size_t, sizeof...(Args)> {};

// The positions of a node's arguments in a list, as a list of values (a type with a short name).
template <std::size_t... P> struct positions {};
template <class E> struct args_of {
  template <class Edges> using positions_in = positions<>;
};
template <class Op, class... Args> struct args_of<basic_node<Op, Args...>> {
  template <class Edges> using positions_in = positions<Edges::template position<resolve_t<Args>>::value...>;
};
template <std::size_t N, std::size_t... P>
constexpr void add_edges(std::array<edge, N>& e, std::size_t& k, [[maybe_unused]] std::size_t consumer,
                         positions<P...>) {
  [[maybe_unused]] std::size_t slot = 0;  // unused for leaves (no positions)
  ((e[k++] = {consumer, slot++, P}), ...);
}
}  // namespace detail

// The edges grouped by argument: the readers of node x are by_arg[begin[x]] .. by_arg[begin[x+1]-1],
// in the order of the edge list (x == N, a node absent from the graph, has none).
template <std::size_t N, std::size_t E>
struct reader_index {
  std::array<std::size_t, N + 2> begin{};
  std::array<edge, E> by_arg{};
};
template <std::size_t N, std::size_t E>
consteval reader_index<N, E> index_readers(const std::array<edge, E>& edges) {
  reader_index<N, E> r;
  for (const auto& e : edges) ++r.begin[e.arg + 1];
  for (std::size_t i = 0; i <= N; ++i) r.begin[i + 1] += r.begin[i];
  std::array<std::size_t, N + 2> next = r.begin;
  for (const auto& e : edges) r.by_arg[next[e.arg]++] = e;
  return r;
}

template <class List> struct edges_of;
template <class... Ns>
struct edges_of<type_list<Ns...>> {
  static constexpr std::size_t node_count = sizeof...(Ns);
  using all = detail::indexer<std::index_sequence_for<Ns...>, Ns...>;
  // Position of X (node_count when absent), by overload resolution on the list's slot map. (A
  // boolean array {__is_same(Ns, X)...} per lookup made the edge table of an N-node program cost
  // N^2 array elements: most of the compile time of a 32-layer network.) An alias, not a function
  // or constant: those would be symbols named after the whole list.
  using slots = detail::slot_map<std::index_sequence_for<Ns...>, Ns...>;
  template <class X>
  using position = decltype(slots::position(static_cast<detail::tag<X>*>(nullptr)));
  template <std::size_t I>
  using at = decltype(detail::select<I>(all{}));

  static constexpr std::size_t count = (detail::arity<Ns>::value + ... + 0);
  // One constant per graph (see the symbol rule above); consumers in list order, so the edges
  // are in topological order of their consumers.
  static constexpr std::array<edge, count> edges = [] {
    std::array<edge, count> e{};
    std::size_t k = 0, consumer = 0;
    ((detail::add_edges(e, k, consumer, typename detail::args_of<Ns>::template positions_in<edges_of>{}), ++consumer),
     ...);
    return e;
  }();
  // The edges grouped by the node they read, for the adjoint builder.
  static constexpr reader_index<sizeof...(Ns), count> readers = index_readers<sizeof...(Ns)>(edges);
};

// The graph's nodes as a Hana sequence of types, for hana::for_each and friends.
template <class List> struct as_hana;
template <class... Ts>
struct as_hana<type_list<Ts...>> {
  static constexpr auto value = boost::hana::tuple_t<Ts...>;
};

// Does E (transitively) depend on leaf X?
template <class E, class X>
concept depends_on_v = contains_v<nodes_of_t<E>, X>;

// Number of distinct nodes (leaves included): what common-subexpression elimination leaves.
template <Expression... Roots>
constexpr std::size_t node_count(Roots...) {
  return nodes_of_all_t<Roots...>::size;
}

}  // namespace typegrad::graph
