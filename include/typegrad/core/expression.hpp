#pragma once
// Expressions: the graph is the type. Leaves (var, constant) and op nodes are empty structs, so
// two subexpressions of the same type are the same computation (fan-out and CSE follow).
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>

#include "typegrad/core/fixed_string.hpp"
#include "typegrad/core/op_concepts.hpp"
#include "typegrad/core/shape.hpp"

namespace typegrad {

struct expression_base {};

// Anything that can appear in a graph: a var, a constant or an op node.
//
// Type traits on expressions are concepts or compiler builtins (__is_same, __is_base_of), never
// variable templates such as std::is_same_v: each variable template instantiated for a node is a
// symbol whose mangled name spells out the node's whole subgraph, and GCC mangles all of them;
// with one per node and trait that grew quadratically with depth (docs/compile-time.md).
template <class E>
concept Expression = __is_base_of(expression_base, E) && __is_empty(E);

// The Hana tag of typegrad's sequences of valued expressions (a parameter set's leaves, a
// program's outputs): with core/hana.hpp included they are Hana Foldables (hana::for_each,
// hana::fold_left, ...), each element a `valued`. Declared here so that those classes need no
// Hana header.
struct hana_sequence_tag;
// An expression with its value: the element of those sequences. expression is the expression
// itself (print it with to_string, read a leaf's name from its type), value its tensor or view.
template <Expression E, class Value>
struct valued {
  [[no_unique_address]] E expression;
  Value value;
};

// A named input of rank Rank (rank 0 = a runtime scalar). Bound to a tensor when a program runs.
template <fixed_string Name, std::size_t Rank>
struct var : expression_base {
  static constexpr std::size_t rank = Rank;
  static constexpr std::string_view name = Name.view();
  static_assert(Rank <= max_rank, "var<name, rank>: rank must not exceed typegrad::max_rank (8)");
  static_assert(Name.view().size() > 0, "var<name, rank>: the name must not be empty");
};

// A compile-time scalar literal; write lit<0.5f> or lit<2>.
template <double Value>
struct constant : expression_base {
  static constexpr std::size_t rank = 0;
  static constexpr double value = Value;
};
template <auto Value>
  requires std::is_arithmetic_v<decltype(Value)>
inline constexpr constant<static_cast<double>(Value)> lit{};

// An op applied to argument expressions. Op is a stateless struct holding the op's rules
// (see docs/adding-an-op.md); compile-time attributes are Op's template parameters.
//
// Ops write node<Op, Args...>{} with their arguments' own types; the type they get is
// basic_node<Op, operand_t<Args>...>, whose arguments are leaves or short handles
// (node_ref<id, rank>) to other nodes. A type that nested its arguments' types in full would be a
// tree: a ResNet block reads its input ~17 times (batch norm reads it 4 times), so the tree of a
// ResNet-18's type has ~17^8 leaves although the graph has a few hundred nodes, and g++ prints
// (error messages) and walks some types as trees. With handles every node type has a constant
// size. See docs/compile-time.md, "Handles".
template <class E> struct shape_source;
template <class E> struct resolve;
template <class E> struct descriptor;

namespace detail {
// A node's rank lives in a small shared base: a static member of the node class itself would be a
// symbol named after its arguments (see the symbol rule in graph.hpp).
template <std::size_t Rank>
struct ranked {
  static constexpr std::size_t rank = Rank;
};
}  // namespace detail

template <class Op, Expression... Args>
struct basic_node : expression_base, detail::ranked<detail::checked_rank<Op, Args::rank...>()> {
  using op = Op;
  // Computed as soon as the node type is formed. Expressions are built bottom-up, so every
  // argument's traits already exist and the type-level traversals recurse one level at a time
  // instead of through the whole graph (which would hit the compiler's template depth limit).
  using memoized_shape_source = typename shape_source<basic_node>::type;
  using memoized_descriptors =
      std::integral_constant<std::size_t, (descriptor<typename resolve<Args>::type>::value.arity + ... + 0)>;
};

// A node named by a structural hash of its type (whose arguments are handles already, so the hash
// is taken over a short string). Two equal subexpressions get the same id, hence the same type.
template <std::uint64_t Id, std::size_t Rank>
struct node_ref : expression_base, detail::ranked<Rank> {};

namespace detail {
// FNV-1a of the compiler's spelling of T: for ops and leaves, whose spelling is short.
template <class T>
consteval std::uint64_t spelling_hash() {
  std::uint64_t h = 14695981039346656037ull;
  for (char c : std::string_view(__PRETTY_FUNCTION__)) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}
// The splitmix64 finalizer: every input bit affects every output bit.
consteval std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
// A node's id combines its op's and its arguments' ids (a handful of operations per node, where
// hashing the node's whole spelling cost hundreds, each a new integer constant the compiler keeps).
template <class E> struct structure {
  static consteval std::uint64_t id() { return spelling_hash<E>(); }
};
template <std::uint64_t Id, std::size_t R> struct structure<node_ref<Id, R>> {
  static consteval std::uint64_t id() { return Id; }
};
template <class Op, class... Args> struct structure<basic_node<Op, Args...>> {
  static consteval std::uint64_t id() {
    std::uint64_t h = mix(spelling_hash<Op>());
    ((h = mix(h ^ (structure<Args>::id() + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2)))), ...);
    return h;
  }
};
// E's structural id (consteval: never emitted nor mangled).
template <class E>
consteval std::uint64_t structural_id() {
  return structure<E>::id();
}

// The id -> node registry. Registering node E under Id defines node_of_key(node_key<Id>) to
// return E (a friend defined by the registry entry, found by argument-dependent lookup):
// compile-time registration, so a handle needs no argument naming its node. Two different nodes
// with one id (a hash collision) would define the function twice: a compile error, never a silent
// mix-up. All friends of one name in one namespace form one overload set, which g++ scans when it
// adds another (pushdecl compares the new declaration with each) and when argument-dependent
// lookup skips the hidden ones: O(N^2) for N nodes. So the registry is split over 64 namespaces.
template <unsigned Shard> struct registry_shard;
#define TYPEGRAD_REGISTRY_SHARD(n)                                                      \
  namespace registry_##n {                                                              \
  template <std::uint64_t Id>                                                           \
  struct key {                                                                          \
    friend constexpr auto node_of_key(key);                                             \
  };                                                                                    \
  template <std::uint64_t Id, class E>                                                  \
  struct entry {                                                                        \
    friend constexpr auto node_of_key(key<Id>) { return E{}; }                          \
  };                                                                                    \
  }                                                                                     \
  template <>                                                                           \
  struct registry_shard<n> {                                                            \
    template <std::uint64_t Id> using key = registry_##n::key<Id>;                      \
    template <std::uint64_t Id, class E> using entry = registry_##n::entry<Id, E>;      \
  };
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-template-friend"
TYPEGRAD_REGISTRY_SHARD(0) TYPEGRAD_REGISTRY_SHARD(1) TYPEGRAD_REGISTRY_SHARD(2) TYPEGRAD_REGISTRY_SHARD(3)
TYPEGRAD_REGISTRY_SHARD(4) TYPEGRAD_REGISTRY_SHARD(5) TYPEGRAD_REGISTRY_SHARD(6) TYPEGRAD_REGISTRY_SHARD(7)
TYPEGRAD_REGISTRY_SHARD(8) TYPEGRAD_REGISTRY_SHARD(9) TYPEGRAD_REGISTRY_SHARD(10) TYPEGRAD_REGISTRY_SHARD(11)
TYPEGRAD_REGISTRY_SHARD(12) TYPEGRAD_REGISTRY_SHARD(13) TYPEGRAD_REGISTRY_SHARD(14) TYPEGRAD_REGISTRY_SHARD(15)
TYPEGRAD_REGISTRY_SHARD(16) TYPEGRAD_REGISTRY_SHARD(17) TYPEGRAD_REGISTRY_SHARD(18) TYPEGRAD_REGISTRY_SHARD(19)
TYPEGRAD_REGISTRY_SHARD(20) TYPEGRAD_REGISTRY_SHARD(21) TYPEGRAD_REGISTRY_SHARD(22) TYPEGRAD_REGISTRY_SHARD(23)
TYPEGRAD_REGISTRY_SHARD(24) TYPEGRAD_REGISTRY_SHARD(25) TYPEGRAD_REGISTRY_SHARD(26) TYPEGRAD_REGISTRY_SHARD(27)
TYPEGRAD_REGISTRY_SHARD(28) TYPEGRAD_REGISTRY_SHARD(29) TYPEGRAD_REGISTRY_SHARD(30) TYPEGRAD_REGISTRY_SHARD(31)
TYPEGRAD_REGISTRY_SHARD(32) TYPEGRAD_REGISTRY_SHARD(33) TYPEGRAD_REGISTRY_SHARD(34) TYPEGRAD_REGISTRY_SHARD(35)
TYPEGRAD_REGISTRY_SHARD(36) TYPEGRAD_REGISTRY_SHARD(37) TYPEGRAD_REGISTRY_SHARD(38) TYPEGRAD_REGISTRY_SHARD(39)
TYPEGRAD_REGISTRY_SHARD(40) TYPEGRAD_REGISTRY_SHARD(41) TYPEGRAD_REGISTRY_SHARD(42) TYPEGRAD_REGISTRY_SHARD(43)
TYPEGRAD_REGISTRY_SHARD(44) TYPEGRAD_REGISTRY_SHARD(45) TYPEGRAD_REGISTRY_SHARD(46) TYPEGRAD_REGISTRY_SHARD(47)
TYPEGRAD_REGISTRY_SHARD(48) TYPEGRAD_REGISTRY_SHARD(49) TYPEGRAD_REGISTRY_SHARD(50) TYPEGRAD_REGISTRY_SHARD(51)
TYPEGRAD_REGISTRY_SHARD(52) TYPEGRAD_REGISTRY_SHARD(53) TYPEGRAD_REGISTRY_SHARD(54) TYPEGRAD_REGISTRY_SHARD(55)
TYPEGRAD_REGISTRY_SHARD(56) TYPEGRAD_REGISTRY_SHARD(57) TYPEGRAD_REGISTRY_SHARD(58) TYPEGRAD_REGISTRY_SHARD(59)
TYPEGRAD_REGISTRY_SHARD(60) TYPEGRAD_REGISTRY_SHARD(61) TYPEGRAD_REGISTRY_SHARD(62) TYPEGRAD_REGISTRY_SHARD(63)
#pragma GCC diagnostic pop
#undef TYPEGRAD_REGISTRY_SHARD
template <std::uint64_t Id>
using node_key = typename registry_shard<Id % 64>::template key<Id>;
// E's structural id, with E registered under it (handles and graph traversals name nodes by id).
template <class E>
consteval std::uint64_t registered_id() {
  constexpr std::uint64_t id = structural_id<E>();
  static_assert(sizeof(typename registry_shard<id % 64>::template entry<id, E>) > 0);
  return id;
}
}  // namespace detail

// What a node holds for an argument: leaves as they are, nodes by handle.
template <class E> struct operand {
  using type = E;
};
template <class Op, class... Args>
struct operand<basic_node<Op, Args...>> {
  using type = node_ref<detail::registered_id<basic_node<Op, Args...>>(), basic_node<Op, Args...>::rank>;
};
template <class E> using operand_t = typename operand<E>::type;

// The node registered under a structural id.
template <std::uint64_t Id>
using node_by_id = decltype(node_of_key(detail::node_key<Id>{}));
// The expression a handle stands for (anything else stands for itself).
template <class E> struct resolve {
  using type = E;
};
template <std::uint64_t Id, std::size_t R>
struct resolve<node_ref<Id, R>> {
  using type = node_by_id<Id>;
};
template <class E> using resolve_t = typename resolve<E>::type;

// ---- descriptors -----------------------------------------------------------------------------
// Every expression has a constant descriptor: its structural id and its arguments' descriptors.
// A graph is then a value the compiler can walk in one constant evaluation (core/graph.hpp)
// instead of a type-level list per node. A node's arguments' descriptors are evaluated when the
// node type is formed (basic_node::memoized_descriptors), so evaluating one never recurses.
struct node_info {
  std::uint64_t id;
  std::size_t arity;
  const node_info* const* args;  // arity pointers
};
template <class E>
struct descriptor {
  static constexpr node_info value{detail::registered_id<E>(), 0, nullptr};
};
template <class Op, class... Args>
struct descriptor<basic_node<Op, Args...>> {
  // One extra entry: an op without arguments still has a well-formed array.
  static constexpr const node_info* args[sizeof...(Args) + 1] = {&descriptor<resolve_t<Args>>::value..., nullptr};
  static constexpr node_info value{detail::registered_id<basic_node<Op, Args...>>(), sizeof...(Args), args};
};

// node<Op, A, B>: the node type of Op applied to expressions A and B (handles or not).
template <class Op, Expression... Args>
using node = basic_node<Op, operand_t<Args>...>;

// The structural zero of reverse mode: "no adjoint reaches here". Never part of a user graph.
struct no_adjoint {};

template <class E> struct is_var : std::false_type {};
template <fixed_string N, std::size_t R> struct is_var<var<N, R>> : std::true_type {};
template <class E> concept is_var_v = is_var<E>::value;

template <class E> struct is_constant : std::false_type {};
template <double V> struct is_constant<constant<V>> : std::true_type {};
template <class E> concept is_constant_v = is_constant<E>::value;

template <class E, double V>
concept is_constant_value_v = __is_same(E, constant<V>);

// Leaf = var or constant; the concept user-facing "wrt(...)" arguments must satisfy.
template <class E>
concept Variable = Expression<E> && is_var_v<E>;

// ---- shape sources -------------------------------------------------------------------------
// shape_source_t<E> is an expression known (at compile time) to have the same runtime extents as
// E. Elementwise ops inherit their argument's; this lets the gradient builder drop broadcasts
// that would be no-ops, keeping symbolic gradients small and readable.
template <class E>
struct shape_source {
  using type = E;
};
template <class E>
using shape_source_t = typename shape_source<E>::type;
// An op declares `template <class... Args> using shape_source = ...;` to name such an expression,
// or void when the shape is only known at run time.
template <class Op, class... Args>
  requires requires { typename Op::template shape_source<Args...>; }
struct shape_source<basic_node<Op, Args...>> {
  using declared = typename Op::template shape_source<Args...>;
  using type = std::conditional_t<__is_same(declared, void), basic_node<Op, Args...>, declared>;
};
template <std::uint64_t Id, std::size_t R>
struct shape_source<node_ref<Id, R>> : shape_source<resolve_t<node_ref<Id, R>>> {};
template <class A, class B>
concept same_shape_v = (A::rank == 0 && B::rank == 0) || __is_same(shape_source_t<A>, shape_source_t<B>);

}  // namespace typegrad
