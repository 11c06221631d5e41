#pragma once
// Graph algorithms at compile time: the distinct nodes of a graph in topological (post-)order,
// its edges, and the readers of each node.
//
// A graph is walked as a value. Every expression has a constant descriptor (core/expression.hpp:
// its structural id and pointers to its arguments' descriptors), so one constant evaluation, a
// depth-first traversal from the roots with a hash map of visited ids, gives the nodes' ids in
// post-order, the edges as positions and the readers grouped by node, in O(nodes + edges). The
// node type at a position comes back from its id in O(1) through the handle registry. Nothing is
// built per node that grows with the graph (no node list per node, no lookup by overload
// resolution over a list), so compile cost grows linearly with the graph (docs/compile-time.md).
//
// Symbol rule: a class template whose arguments are node lists must not hold static data members
// or lambdas, nor should anything be instantiated once per node with the whole graph in its name:
// each is a symbol whose mangled name spells out its arguments, and GCC mangles every one of them
// at the end of the translation unit even if it is never emitted. graph_of is named after its
// roots only (handles, a few dozen characters each) and is instantiated once per graph.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "typegrad/core/expression.hpp"

namespace typegrad::graph {

namespace detail {
template <std::size_t N>
struct list_size {
  static constexpr std::size_t size = N;
};
}  // namespace detail

// A list of types (small lists: outputs, variables, leaves; a graph's nodes in order).
template <class... Ts>
struct type_list : detail::list_size<sizeof...(Ts)> {};

// Concatenation, for fold expressions (only used in unevaluated contexts).
template <class... Ts, class... Us>
type_list<Ts..., Us...> operator+(type_list<Ts...>, type_list<Us...>);

namespace detail {
// Pack indexing by overload resolution against indexed bases (O(pack) per lookup: for short
// packs such as compile()'s arguments; a graph's nodes are indexed through node_at).
template <std::size_t I, class T> struct indexed {};
template <class Seq, class... Ts> struct indexer;
template <std::size_t... I, class... Ts>
struct indexer<std::index_sequence<I...>, Ts...> : indexed<I, Ts>... {};
template <std::size_t I, class T>
T select(indexed<I, T>);  // declaration only: used in decltype

template <class X, class... Ts>
concept one_of = (__is_same(Ts, X) || ...);
template <class List, class X> struct holds;
template <class... Bs, class X>
struct holds<type_list<Bs...>, X> : std::bool_constant<one_of<X, Bs...>> {};

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

// Membership in a list (one concept check, cached by g++).
template <class List, class X>
concept contains_v = detail::holds<List, X>::value;

// Position of X in List (List::size when absent).
template <class List, class X>
inline constexpr std::size_t index_of_v = detail::index_of<List, X>::value();

// Edge k says node `consumer` reads node `arg` in argument slot `slot` (positions in the graph).
struct edge {
  std::size_t consumer, slot, arg;
};

namespace detail {
inline constexpr std::size_t absent = static_cast<std::size_t>(-1);

// Positions of the nodes visited so far, by structural id: open addressing, used within one
// constant evaluation (a traversal).
class position_map {
 public:
  constexpr position_map() : ids_(64), positions_(64, absent) {}
  constexpr std::size_t find(std::uint64_t id) const {
    for (std::size_t i = slot_of(id);; i = (i + 1) & mask()) {
      if (positions_[i] == absent) return absent;
      if (ids_[i] == id) return positions_[i];
    }
  }
  constexpr void insert(std::uint64_t id, std::size_t position) {
    if (2 * (count_ + 1) > ids_.size()) grow();
    place(id, position);
    ++count_;
  }

 private:
  constexpr std::size_t mask() const { return ids_.size() - 1; }
  constexpr std::size_t slot_of(std::uint64_t id) const { return static_cast<std::size_t>(id ^ (id >> 31)) & mask(); }
  constexpr void place(std::uint64_t id, std::size_t position) {
    std::size_t i = slot_of(id);
    while (positions_[i] != absent) i = (i + 1) & mask();
    ids_[i] = id;
    positions_[i] = position;
  }
  constexpr void grow() {
    std::vector<std::uint64_t> ids(ids_.size() * 2);
    std::vector<std::size_t> positions(positions_.size() * 2, absent);
    ids.swap(ids_);
    positions.swap(positions_);
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (positions[i] != absent) place(ids[i], positions[i]);
  }
  std::vector<std::uint64_t> ids_;
  std::vector<std::size_t> positions_;
  std::size_t count_ = 0;
};

// Calls visit(node, position, positions) once for every node reachable from `roots`, after all of
// its arguments (post-order, arguments left to right, roots in order), numbering positions in
// visiting order. Iterative, so graph depth is not bounded by the constexpr call depth.
template <class Visit>
constexpr position_map post_order(std::span<const node_info* const> roots, Visit&& visit) {
  struct frame {
    const node_info* node;
    std::size_t next_arg;
  };
  position_map positions;
  std::vector<frame> stack;
  std::size_t next = 0;
  for (const node_info* root : roots) {
    if (positions.find(root->id) != absent) continue;
    stack.push_back({root, 0});
    while (!stack.empty()) {
      frame& top = stack.back();
      if (top.next_arg < top.node->arity) {
        // A DAG: an argument not yet numbered is not on the stack either (that would be a cycle).
        const node_info* arg = top.node->args[top.next_arg++];
        if (positions.find(arg->id) == absent) stack.push_back({arg, 0});
      } else {
        const node_info* node = top.node;
        stack.pop_back();
        positions.insert(node->id, next);
        visit(*node, next++, positions);
      }
    }
  }
  return positions;
}

struct extent {
  std::size_t nodes = 0, edges = 0;
};
consteval extent extent_of(std::span<const node_info* const> roots) {
  extent e;
  post_order(roots, [&](const node_info& n, std::size_t, const position_map&) {
    ++e.nodes;
    e.edges += n.arity;
  });
  return e;
}

// A graph as constant data.
template <std::size_t N, std::size_t E, std::size_t R>
struct graph_value {
  std::array<std::uint64_t, N> ids{};           // the nodes in post-order, by structural id
  std::array<edge, E> edges{};                  // by consumer (in topological order), then slot
  std::array<std::size_t, N + 1> first_edge{};  // node c reads through edges [first_edge[c], first_edge[c + 1])
  std::array<std::size_t, R> roots{};           // each root's position
};
template <std::size_t N, std::size_t E, std::size_t R>
consteval graph_value<N, E, R> traverse(const std::array<const node_info*, R>& roots) {
  graph_value<N, E, R> g;
  std::size_t k = 0;
  const position_map positions = post_order(roots, [&](const node_info& n, std::size_t p, const position_map& at) {
    g.ids[p] = n.id;
    g.first_edge[p] = k;
    for (std::size_t s = 0; s < n.arity; ++s) g.edges[k++] = {p, s, at.find(n.args[s]->id)};
  });
  g.first_edge[N] = k;
  for (std::size_t r = 0; r < R; ++r) g.roots[r] = positions.find(roots[r]->id);
  return g;
}

consteval bool reaches(const node_info& from, std::uint64_t id) {
  bool found = false;
  const node_info* roots[] = {&from};
  post_order(roots, [&](const node_info& n, std::size_t, const position_map&) { found = found || n.id == id; });
  return found;
}

struct id_position {
  std::uint64_t id;
  std::size_t position;
};
template <std::size_t N>
consteval std::array<id_position, N> sorted_by_id(const std::array<std::uint64_t, N>& ids) {
  std::array<id_position, N> pairs{};
  for (std::size_t i = 0; i < N; ++i) pairs[i] = {ids[i], i};
  std::sort(pairs.begin(), pairs.end(), [](const id_position& a, const id_position& b) { return a.id < b.id; });
  return pairs;
}

// The positions of the true entries of a mask, and how many there are.
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
}  // namespace detail

// The node at position I of graph G (O(1): through the handle registry). At namespace scope: a
// member template of G would be keyed by all of G's arguments, which for a program are its
// outputs, so naming it once per node would cost O(nodes x outputs).
template <class G, std::size_t I>
using node_at = node_by_id<G::value.ids[I]>;
// Does node i of G read any argument (an op node, not a leaf)?
template <class G>
constexpr bool is_op(std::size_t i) {
  return G::value.first_edge[i + 1] > G::value.first_edge[i];
}

namespace detail {
template <class G, class Seq> struct nodes_at;
template <class G, std::size_t... I>
struct nodes_at<G, std::index_sequence<I...>> {
  using type = type_list<node_at<G, I>...>;
};
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

// The nodes that depend on any of the nodes at positions `from` (those included), by one pass
// over the edges, which are in topological order of their consumers. (A position == N, a node
// absent from the graph, marks nothing.)
template <std::size_t N, std::size_t E, std::size_t V>
consteval std::array<bool, N> depending_on(const std::array<edge, E>& edges, const std::array<std::size_t, V>& from) {
  std::array<bool, N> marked{};
  for (auto v : from)
    if (v < N) marked[v] = true;
  for (const auto& e : edges)
    if (marked[e.arg]) marked[e.consumer] = true;
  return marked;
}

// The graph of Roots (nodes, not handles; see graph_t): its distinct nodes, leaves included, in a
// topological order (every node after its arguments), as constant data (node types: node_at,
// nodes_t).
template <class... Roots>
struct graph_of {
  static constexpr std::array<const node_info*, sizeof...(Roots)> root_descriptors{&descriptor<Roots>::value...};
  static constexpr detail::extent extent = detail::extent_of(root_descriptors);
  static constexpr std::size_t size = extent.nodes;
  static constexpr detail::graph_value<extent.nodes, extent.edges, sizeof...(Roots)> value =
      detail::traverse<extent.nodes, extent.edges>(root_descriptors);
  static constexpr reader_index<size, extent.edges> readers = index_readers<size>(value.edges);

  // Position of the node with structural id `id` (size when absent): a binary search in the
  // (id, position) pairs sorted by id, computed once per graph when first needed. (A linear scan
  // per lookup made the gradients of a deep network cost O(variables x nodes).)
  static constexpr std::array<detail::id_position, size> by_id = detail::sorted_by_id(value.ids);
  static consteval std::size_t position_of(std::uint64_t id) {
    std::size_t lo = 0, hi = size;
    while (lo < hi) {
      const std::size_t mid = (lo + hi) / 2;
      if (by_id[mid].id < id) lo = mid + 1;
      else hi = mid;
    }
    return lo < size && by_id[lo].id == id ? by_id[lo].position : size;
  }
  // (cv-qualifiers ignored: decltype of a constexpr leaf object is a const type.)
  template <class X>
  static constexpr std::size_t position = position_of(typegrad::detail::structural_id<resolve_t<std::remove_cv_t<X>>>());
};
// The list of G's node types, in order (formed where asked for: the adjoint builder needs none).
template <class G>
using nodes_t = typename detail::nodes_at<G, std::make_index_sequence<G::size>>::type;
// The nodes of G that depend on any of the leaves Xs (those included), as a mask in `value`.
template <class G, class... Xs>
struct nodes_depending_on {
  static constexpr std::array<bool, G::size> value =
      depending_on<G::size>(G::value.edges, std::array<std::size_t, sizeof...(Xs)>{G::template position<Xs>...});
};
// The nodes of G whose entries in Mask::value (a constexpr std::array<bool, G::size>) are true, in
// order. (The mask is passed in a class: g++ 12 confuses instantiations whose template arguments
// are class-type values such as std::array.)
template <class G, class Mask>
struct nodes_where {
  static constexpr detail::kept_positions<G::size> kept = detail::positions_of_true(Mask::value);
  template <class Seq> struct pick;
  template <std::size_t... J> struct pick<std::index_sequence<J...>> {
    using type = type_list<node_at<G, kept.at[J]>...>;
  };
  using type = typename pick<std::make_index_sequence<kept.count>>::type;
};
template <class G, class Mask>
using nodes_where_t = typename nodes_where<G, Mask>::type;
// The graph of expressions or handles.
template <class... Roots>
using graph_t = graph_of<resolve_t<Roots>...>;

// The distinct nodes of E, or of several roots, in topological order.
template <class E>
using nodes_of_t = nodes_t<graph_t<E>>;
template <class... Roots>
using nodes_of_all_t = nodes_t<graph_t<Roots...>>;

// Does E (transitively) depend on X? (One traversal of E's graph per query: for a few queries; a
// whole graph's dependences come from nodes_depending_on.)
template <class E, class X>
concept depends_on_v =
    detail::reaches(descriptor<resolve_t<E>>::value, typegrad::detail::structural_id<resolve_t<std::remove_cv_t<X>>>());

// Number of distinct nodes (leaves included): what common-subexpression elimination leaves.
template <Expression... Roots>
constexpr std::size_t node_count(Roots...) {
  return graph_t<Roots...>::size;
}

}  // namespace typegrad::graph
