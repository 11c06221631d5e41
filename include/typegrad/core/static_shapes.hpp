#pragma once
// A network's shapes and multiply-adds at compile time, from leaf shapes given as constants: the
// ops' own shape rules (the same infer_shape a program runs when it binds tensors) evaluated in a
// constant expression, node by node in topological order.
//
//   constexpr leaf_shapes image = {{"x", {1, 28, 28, 1}}, {"w1", {32, 3, 3, 1}}, {"b1", {32}}};
//   constexpr shape out = static_shape(image, net);             // static_assert on it
//   constexpr std::size_t macs = multiply_adds(image, net);     // e.g. per image: batch 1
//   constexpr std::size_t training = multiply_adds(image, net, grad(loss, w1));  // several roots
//
// Shapes that do not fit are compile errors: a shape rule's violation stops the constant
// evaluation at its throw (the compiler shows the rule's message text there), and a leaf without
// a given shape, or with one of another rank, stops it in a function named for the mistake.
// Multiply-adds are counted for the ops that define them (conv and its two gradients, matmul:
// the products); elementwise ops, reductions and pooling count none.
#include <array>
#include <cstddef>
#include <initializer_list>
#include <string_view>

#include <fmt/format.h>

#include "typegrad/core/errors.hpp"
#include "typegrad/core/expression.hpp"
#include "typegrad/core/graph.hpp"
#include "typegrad/core/shape.hpp"

namespace typegrad {

// A leaf's name (var<name, rank>) and the extents it is given.
struct leaf_shape {
  std::string_view name;
  shape extents;
};

// The shapes of a graph's leaves: {{"x", {1, 28, 28, 1}}, {"w", {32, 3, 3, 1}}, ...}. (A class of
// fixed capacity rather than an initializer_list, whose backing array g++ 12 cannot build in a
// namespace-scope constant.)
class leaf_shapes {
 public:
  static constexpr std::size_t capacity = 256;
  constexpr leaf_shapes(std::initializer_list<leaf_shape> shapes) {
    if (shapes.size() > capacity) more_leaf_shapes_than_capacity();
    for (const leaf_shape& s : shapes) items_[count_++] = s;
  }
  constexpr const leaf_shape* begin() const { return items_.data(); }
  constexpr const leaf_shape* end() const { return items_.data() + count_; }

 private:
  // Not constexpr: in a constant evaluation, a compile error naming the mistake.
  static void more_leaf_shapes_than_capacity() {
    throw shape_error(fmt::format("leaf_shapes: more than {} leaf shapes", capacity));
  }
  std::array<leaf_shape, capacity> items_{};
  std::size_t count_ = 0;
};

namespace detail {
// Not constexpr on purpose: reached in a constant evaluation, each is a compile error that names
// the mistake (the leaf or op in the instantiation above it); at run time, a shape_error.
[[noreturn]] inline void no_shape_given_for_leaf(std::string_view leaf) {
  throw shape_error(fmt::format("static shapes: no shape given for leaf '{}'", leaf));
}
[[noreturn]] inline void leaf_shape_of_another_rank_than_the_leaf(std::string_view leaf, const shape& s,
                                                                    std::size_t rank) {
  throw shape_error(fmt::format("static shapes: leaf '{}' has rank {} but is given the shape {}", leaf, rank, s));
}
[[noreturn]] inline void shape_rule_gave_another_rank_than_the_op(std::string_view op, const shape& s,
                                                                    std::size_t rank) {
  throw shape_error(fmt::format("static shapes: {}'s shape rule gave {} for a node of rank {} (a bug in the op)", op,
                                s, rank));
}

template <class G, class N>
struct static_node;
template <class G, fixed_string Name, std::size_t Rank>
struct static_node<G, var<Name, Rank>> {
  static constexpr shape infer(const shape*, std::size_t, const leaf_shapes& leaves) {
    for (const leaf_shape& l : leaves)
      if (l.name == Name.view()) {
        if (l.extents.rank() != Rank) leaf_shape_of_another_rank_than_the_leaf(Name.view(), l.extents, Rank);
        return l.extents;
      }
    no_shape_given_for_leaf(Name.view());
  }
  static constexpr std::size_t multiply_adds(const shape*, std::size_t) { return 0; }
  static constexpr unsigned shape_only_arguments = 0;
};
template <class G, double V>
struct static_node<G, constant<V>> {
  static constexpr shape infer(const shape*, std::size_t, const leaf_shapes&) { return {}; }
  static constexpr std::size_t multiply_adds(const shape*, std::size_t) { return 0; }
  static constexpr unsigned shape_only_arguments = 0;
};
template <class G, class Op, class... Args>
struct static_node<G, basic_node<Op, Args...>> {
  static constexpr unsigned shape_only_arguments = [] {
    if constexpr (requires { Op::shape_only_arguments; }) return unsigned(Op::shape_only_arguments);
    else return 0u;
  }();
  // The arguments' shapes, in slot order (node p's edges).
  static constexpr std::array<shape, sizeof...(Args)> inputs(const shape* s, std::size_t p) {
    std::array<shape, sizeof...(Args)> in{};
    for (std::size_t k = 0; k < in.size(); ++k) in[k] = s[G::value.edges[G::value.first_edge[p] + k].arg];
    return in;
  }
  static constexpr shape infer(const shape* s, std::size_t p, const leaf_shapes&) {
    const auto in = inputs(s, p);
    const shape out = Op::infer_shape(in);
    constexpr std::size_t rank = basic_node<Op, Args...>::rank;
    if (out.rank() != rank) shape_rule_gave_another_rank_than_the_op(Op::name, out, rank);
    return out;
  }
  static constexpr std::size_t multiply_adds(const shape* s, std::size_t p) {
    if constexpr (requires { Op::multiply_adds(input_shapes{}, shape{}); }) {
      const auto in = inputs(s, p);
      return Op::multiply_adds(in, s[p]);
    } else {
      return 0;
    }
  }
};

template <class G, std::size_t... I>
constexpr std::array<shape, G::size> infer_in_order(const leaf_shapes& leaves, std::index_sequence<I...>) {
  std::array<shape, G::size> s{};
  ((s[I] = static_node<G, graph::node_at<G, I>>::infer(s.data(), I, leaves)), ...);
  return s;
}
// The nodes a program computes for the roots: not those read only for their shape (the forward
// conv that a gradient's sum_to reads as `like`, ...), unless another reader needs their value.
template <class G, std::size_t... I>
constexpr std::array<bool, G::size> computed_nodes(std::index_sequence<I...>) {
  constexpr std::array<unsigned, G::size> shape_only{static_node<G, graph::node_at<G, I>>::shape_only_arguments...};
  std::array<bool, G::size> computed{};
  for (std::size_t r : G::value.roots) computed[r] = true;
  for (std::size_t p = G::size; p-- > 0;)
    if (computed[p])
      for (std::size_t e = G::value.first_edge[p]; e < G::value.first_edge[p + 1]; ++e) {
        const graph::edge& edge = G::value.edges[e];
        if (!(shape_only[p] >> edge.slot & 1u)) computed[edge.arg] = true;
      }
  return computed;
}
template <class G, std::size_t... I>
constexpr std::size_t multiply_adds_in_order(const std::array<shape, G::size>& s, std::index_sequence<I...> order) {
  const std::array<bool, G::size> computed = computed_nodes<G>(order);
  return (std::size_t{0} + ... + (computed[I] ? static_node<G, graph::node_at<G, I>>::multiply_adds(s.data(), I) : 0));
}
}  // namespace detail

// The shape of every node of the roots' graph, in the order of nodes(roots...) (topological),
// for the leaves' shapes given.
template <Expression... Roots>
constexpr std::array<shape, graph::graph_t<Roots...>::size> static_shapes(const leaf_shapes& leaves, Roots...) {
  using G = graph::graph_t<Roots...>;
  return detail::infer_in_order<G>(leaves, std::make_index_sequence<G::size>{});
}

// The shape of e for the leaves' shapes given.
template <Expression E>
constexpr shape static_shape(const leaf_shapes& leaves, E e) {
  return static_shapes(leaves, e)[graph::graph_t<E>::value.roots[0]];
}

// The multiply-adds of computing the roots once for the leaves' shapes: each shared node once, and
// no node that is read only for its shape (as a program runs them).
template <Expression... Roots>
constexpr std::size_t multiply_adds(const leaf_shapes& leaves, Roots... roots) {
  using G = graph::graph_t<Roots...>;
  return detail::multiply_adds_in_order<G>(static_shapes(leaves, roots...), std::make_index_sequence<G::size>{});
}

}  // namespace typegrad
