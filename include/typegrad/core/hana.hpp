#pragma once
// The graph as Hana values: a network's nodes, leaves and variables as hana::tuples of
// hana::types, predicates on nodes for Hana's algorithms, and rewrite(), a user-written graph pass.
//
//   auto net = relu(conv(x, w) + b);
//   hana::size(nodes(net))                                // every distinct node, in topological order
//   hana::for_each(variables(net), [](auto v) { ... });  // hana::type<var<"w", 4>>, ...
//   hana::for_each(params, [](auto p) { ... });           // p.expression (the var), p.value
//   hana::for_each(program.output_values(), [](auto o) { ... });  // each output and its view
//   constexpr auto convs = hana::count_if(nodes(net), op_named<"conv">);        // compile time
//   auto ablation = rewrite(net, [](auto e) {             // every relu becomes a gelu
//     if constexpr (is_op<unary_op<relu_fn>>(e)) return gelu(hana::at_c<0>(arguments(e)));
//     else return e;
//   });
//
// A rewrite returns an ordinary expression: print it, differentiate it, compile it. The rule sees
// each node once, bottom-up, with its arguments already rewritten, and returns its replacement
// (the node itself to keep it); it must be stateless (a lambda without captures). The graph
// algorithms themselves stay constexpr values (core/graph.hpp, docs/compile-time.md): Hana is the
// surface users program against, not the engine.
#include <cstddef>
#include <type_traits>

// (What the examples below use comes with this header: at, count_if, equal, filter, for_each, size.)
#include <boost/hana/at.hpp>
#include <boost/hana/bool.hpp>
#include <boost/hana/core/tag_of.hpp>
#include <boost/hana/count_if.hpp>
#include <boost/hana/equal.hpp>
#include <boost/hana/filter.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/integral_constant.hpp>
#include <boost/hana/size.hpp>
#include <boost/hana/tuple.hpp>
#include <boost/hana/type.hpp>
#include <boost/hana/unpack.hpp>

#include "typegrad/core/expression.hpp"
#include "typegrad/core/graph.hpp"

namespace typegrad {
namespace hana = boost::hana;

namespace detail {
template <class List> struct hana_types;
template <class... Ts>
struct hana_types<graph::type_list<Ts...>> {
  static constexpr auto value = hana::tuple_t<Ts...>;
};
template <class E> struct node_traits {
  static constexpr bool is_node = false;
  using op = void;
};
template <class Op, class... Args>
struct node_traits<basic_node<Op, Args...>> {
  static constexpr bool is_node = true;
  using op = Op;
};
template <class T> struct unwrap_type {
  using type = T;  // an expression value
};
template <class T>
  requires std::is_same_v<hana::tag_of_t<T>, hana::type_tag>
struct unwrap_type<T> {
  using type = typename T::type;  // hana::type_c<E>
};
template <class T> using expression_of = resolve_t<typename unwrap_type<std::remove_cvref_t<T>>::type>;
}  // namespace detail

// Every distinct node of the roots' graph (leaves included), in topological order, as a
// hana::tuple of hana::types.
template <Expression... Roots>
constexpr auto nodes(Roots...) {
  return detail::hana_types<graph::nodes_of_all_t<Roots...>>::value;
}

// The leaves: variables and literals.
template <Expression... Roots>
constexpr auto leaves(Roots... roots) {
  return hana::filter(nodes(roots...), [](auto t) {
    return hana::bool_c<!detail::node_traits<typename decltype(t)::type>::is_node>;
  });
}

// The variables (var<name, rank>): what a program binds, and what wrt(...) may name.
template <Expression... Roots>
constexpr auto variables(Roots... roots) {
  return hana::filter(nodes(roots...), [](auto t) { return hana::bool_c<is_var_v<typename decltype(t)::type>>; });
}

// Is e (an expression, or a hana::type of one) a node of op Op?
template <class Op, class E>
constexpr bool is_op(E) {
  return std::is_same_v<typename detail::node_traits<detail::expression_of<E>>::op, Op>;
}

// A predicate for Hana's algorithms: does a node (hana::type) print as Name, whatever the op's
// compile-time attributes ("conv" for convs of any stride, "relu", ...)?
template <fixed_string Name>
inline constexpr auto op_named = [](auto t) {
  using E = detail::expression_of<decltype(t)>;
  if constexpr (detail::node_traits<E>::is_node)
    return hana::bool_c<detail::node_traits<E>::op::name == Name.view()>;
  else return hana::false_c;
};

namespace detail {
template <class E> struct argument_values {
  static constexpr auto value = hana::make_tuple();
};
template <class Op, class... Args>
struct argument_values<basic_node<Op, Args...>> {
  static constexpr auto value = hana::make_tuple(resolve_t<Args>{}...);
};
}  // namespace detail

// A node's arguments as a hana::tuple of expressions (empty for a leaf).
template <class E>
constexpr auto arguments(E) {
  return detail::argument_values<detail::expression_of<E>>::value;
}

namespace detail {
// E with every node below it rewritten by Rule and then E itself handed to Rule. Keyed by node,
// so each is rewritten once however often it is read.
template <class E, class Rule>
struct rewritten {
  using type = resolve_t<std::remove_cvref_t<decltype(std::declval<const Rule&>()(E{}))>>;
  static_assert(Expression<type>, "rewrite(e, rule): the rule must return an expression for every node it is given");
};
template <class Op, class... Args, class Rule>
struct rewritten<basic_node<Op, Args...>, Rule> {
  using rebuilt = resolve_t<node<Op, typename rewritten<resolve_t<Args>, Rule>::type...>>;
  using type = resolve_t<std::remove_cvref_t<decltype(std::declval<const Rule&>()(rebuilt{}))>>;
  static_assert(Expression<type>, "rewrite(e, rule): the rule must return an expression for every node it is given");
};
// Rewriting in topological order keeps the compiler's instantiation depth constant instead of
// proportional to the graph's depth (as the adjoints do, core/grad.hpp).
template <class Rule, class List> struct rewrite_in_order;
template <class Rule, class... Ns>
struct rewrite_in_order<Rule, graph::type_list<Ns...>> : std::bool_constant<((sizeof(typename rewritten<Ns, Rule>::type) > 0) && ...)> {};
}  // namespace detail

// e with every node replaced by rule(node), bottom-up (see the top of this file).
template <Expression E, class Rule>
constexpr auto rewrite(E, Rule) {
  static_assert(std::is_empty_v<Rule> && std::is_default_constructible_v<Rule>,
                "rewrite(e, rule): the rule must be stateless (a lambda without captures)");
  static_assert(detail::rewrite_in_order<Rule, graph::nodes_of_t<E>>::value);
  return typename detail::rewritten<resolve_t<E>, Rule>::type{};
}

}  // namespace typegrad

// Parameter sets (train::parameter_set) and a program's output_values() as Hana Foldables: Hana
// unpacks them through their unpack(f), which calls f with one `valued` per element.
template <>
struct boost::hana::unpack_impl<typegrad::hana_sequence_tag> {
  template <class Xs, class F>
  static constexpr decltype(auto) apply(Xs&& xs, F&& f) {
    return static_cast<Xs&&>(xs).unpack(static_cast<F&&>(f));
  }
};
