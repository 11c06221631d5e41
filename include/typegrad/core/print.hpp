#pragma once
// to_string(e) and fmt::format("{}", e): an expression as text, x * w + b or
// sum[axes=(1)](relu(x)). A DAG printed as a tree repeats every shared subexpression at each use,
// which grows exponentially with fan-out (a batch-norm ResNet block reads its input ~17 times). So
// an expression whose tree would exceed tree_print_limit leaves prints in let form instead: each
// op node read more than once is printed once, as a numbered line, and referred to by its number:
//   %1 = x * x
//   %2 = %1 * %1
//   %2 * %2
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "typegrad/core/expression.hpp"
#include "typegrad/core/graph.hpp"
#include "typegrad/core/notation.hpp"

namespace typegrad {

// ---- printing ------------------------------------------------------------------------------
// Every node prints itself: conv[same, stride=2](relu(x), w), x * y + 1, sum[axes=(0)](x). How an
// op and its operands are written (precedence, parentheses, literals) is core/notation.hpp's,
// shared with the executor, which prints its lowered nodes.
namespace detail {
template <class Op>
concept Infix = requires {
  { Op::infix } -> std::convertible_to<std::string_view>;
  { Op::precedence } -> std::convertible_to<int>;
};
template <class Op>
concept Prefix = requires {
  { Op::prefix } -> std::convertible_to<std::string_view>;
};
template <class Op>
concept HasAttributes = requires { { Op::attributes() } -> std::convertible_to<std::string>; };
}  // namespace detail

// The op's own label, e.g. "sum[axes=(1)]" or "add": how it prints in call form and in listings.
template <class Op>
std::string op_label() {
  if constexpr (detail::HasAttributes<Op>) return fmt::format("{}[{}]", Op::name, Op::attributes());
  else return std::string(Op::name);
}

namespace detail {
// How Op is written (infix, prefix or call form), for core/notation.hpp's write_op.
template <class Op>
constexpr notation::op_form op_form_of() {
  if constexpr (Infix<Op>) return {.infix = Op::infix, .prefix = {}, .infix_precedence = Op::precedence};
  else if constexpr (Prefix<Op>) return {.infix = {}, .prefix = Op::prefix, .infix_precedence = notation::atom};
  else return {};
}

template <class E> struct printer;

// Printers take the names of shared subexpressions printed in let form (below), or no_names:
// name_of<X>() is the name (>= 1) to print instead of X, or 0.
struct no_names {
  template <class X>
  static constexpr int name_of() { return 0; }
};

template <fixed_string N, std::size_t R>
struct printer<var<N, R>> {
  static constexpr int precedence = notation::atom;
  template <class Names>
  static void print(std::string& out, const Names&) { out += N.view(); }
};
template <double V>
struct printer<constant<V>> {
  static constexpr int precedence = notation::literal_precedence(V);
  template <class Names>
  static void print(std::string& out, const Names&) { out += notation::literal(V); }
};

// An argument: its name if it has one (an atom), else itself.
template <class E, class Names>
int operand_precedence(const Names& names) {
  return names.template name_of<resolve_t<E>>() > 0 ? notation::atom : printer<E>::precedence;
}
template <class E, class Names>
void print_operand(std::string& out, const Names& names) {
  if (const int name = names.template name_of<resolve_t<E>>(); name > 0) fmt::format_to(std::back_inserter(out), "%{}", name);
  else printer<E>::print(out, names);
}

template <std::uint64_t Id, std::size_t R>
struct printer<node_ref<Id, R>> : printer<resolve_t<node_ref<Id, R>>> {};

template <class Op, class... Args>
struct printer<basic_node<Op, Args...>> {
  static constexpr notation::op_form form = op_form_of<Op>();
  static constexpr int precedence = form.precedence();
  template <class Names>
  static void print(std::string& out, const Names& names) {
    static constexpr std::array<int (*)(const Names&), sizeof...(Args)> precedences{&operand_precedence<Args, Names>...};
    static constexpr std::array<void (*)(std::string&, const Names&), sizeof...(Args)> operands{
        &print_operand<Args, Names>...};
    notation::write_op(
        out, form, op_label<Op>(), sizeof...(Args), [&](std::size_t k) { return precedences[k](names); },
        [&](std::size_t k) { operands[k](out, names); });
  }
};

inline constexpr std::size_t tree_print_limit = 4096;

// The number of leaves of E printed as a tree, saturated just above tree_print_limit. Memoized per
// node (one instantiation each), so it costs O(nodes), not O(tree).
template <class E>
struct tree_size : std::integral_constant<std::size_t, 1> {};
template <std::uint64_t Id, std::size_t R>
struct tree_size<node_ref<Id, R>> : tree_size<resolve_t<node_ref<Id, R>>> {};
template <class Op, class... Args>
struct tree_size<basic_node<Op, Args...>>
    : std::integral_constant<std::size_t, std::min(tree_print_limit + 1, (std::size_t{0} + ... + tree_size<Args>::value))> {};

// Names of the shared nodes of one expression, looked up by the node's structural id (a plain
// class: the printers instantiated with it are not named after the whole graph).
class let_names {
 public:
  void add(std::uint64_t id, int name) { ids_.emplace_back(id, name); }
  void seal() { std::sort(ids_.begin(), ids_.end()); }
  template <class X>
  int name_of() const {
    constexpr std::uint64_t id = structural_id<X>();
    auto it = std::lower_bound(ids_.begin(), ids_.end(), std::pair<std::uint64_t, int>(id, 0));
    return it != ids_.end() && it->first == id ? it->second : 0;
  }

 private:
  std::vector<std::pair<std::uint64_t, int>> ids_;
};

// One line of the let form. (A function of N alone: a lambda inside print_let_form would be a
// symbol named after the whole node list, once per node.)
template <class N>
void print_let_line(std::string& out, const let_names& names, int name) {
  fmt::format_to(std::back_inserter(out), "%{} = ", name);
  printer<N>::print(out, names);
  out.push_back('\n');
}

template <class G, class Seq> struct let_lines;
template <class G, std::size_t... I>
struct let_lines<G, std::index_sequence<I...>> {
  static void print(std::string& out, const let_names& names, const std::array<int, sizeof...(I)>& name) {
    ((name[I] > 0 ? print_let_line<graph::node_at<G, I>>(out, names, name[I]) : void()), ...);
  }
};

// Root's graph in let form.
template <class Root>
std::string print_let_form() {
  using G = graph::graph_of<Root>;
  constexpr std::size_t n = G::size;
  // An op node read by two or more edges is named; the root (last) is the final line.
  std::array<int, n> name{};
  let_names names;
  int next = 0;
  for (std::size_t i = 0; i + 1 < n; ++i) {
    if (graph::is_op<G>(i) && G::readers.begin[i + 1] - G::readers.begin[i] >= 2) {
      name[i] = ++next;
      names.add(G::value.ids[i], name[i]);
    }
  }
  names.seal();
  std::string out;
  let_lines<G, std::make_index_sequence<n>>::print(out, names, name);
  printer<Root>::print(out, names);
  return out;
}
}  // namespace detail

template <Expression E>
std::string to_string(E) {
  if constexpr (detail::tree_size<E>::value <= detail::tree_print_limit) {
    std::string out;
    detail::printer<E>::print(out, detail::no_names{});
    return out;
  } else {
    return detail::print_let_form<resolve_t<E>>();
  }
}

}  // namespace typegrad

template <typegrad::Expression E>
struct fmt::formatter<E> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(E e, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(typegrad::to_string(e), ctx);
  }
};
