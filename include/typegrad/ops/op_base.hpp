#pragma once
// What every op header includes. An op is a stateless struct holding, in one place:
//   name / infix / attributes()    how it prints
//   rank(arg ranks...)             compile-time rank rule (constexpr)
//   infer_shape(span<shape>)       shape rule; throws shape_rule_violation with the reason
//                                  (constexpr: it then also runs at compile time, static_shapes)
//   forward<T>(out, span<inputs>)  the kernel call
//   vjp<I>(g, y, args...)          the adjoint for argument I, as an expression of other ops
//                                  (g: the output's adjoint, y: the node itself)
// and optionally
//   is_view(out, shapes)           true when, for these shapes, the output is argument 0's elements
//                                  unchanged (reshape; sum_to between equal shapes): the program
//                                  then shares argument 0's storage and runs no kernel
//   shape_only_arguments           a bit mask: the arguments whose shape alone the op reads (a
//                                  `like`); their values need not be computed for it
//   multiply_adds(shapes, out)     constexpr: the op's multiply-adds, for products (conv, matmul)
//   block<T>(out, operands, rows, cols)
//                                  an elementwise op's arithmetic on a block (kernels/block.hpp):
//                                  the op may then join elementwise regions (runtime/executor.hpp);
//                                  block_applies(out, shapes) when its operands do not always
//                                  broadcast right-aligned (expand)
//   sums_rows(out, shapes)         for a sum (sum_to, sum, mean): whether these shapes sum every
//                                  row into one row, as kernels::add_rows does (mean_of_rows: then
//                                  scaled by 1 / rows); such a sum may end a region
// and a value precondition on one argument (class labels in range, ...):
//   checked_argument               the argument's index
//   check_argument<T>(arg, shapes) throws value_error; programs call it before the parallel run
//                                  when that argument is bound data, so a bad value is reported
//                                  before any node has run (the kernel must check it too)
// plus a user-facing function that builds node<op, args...> (and simplifies where it can).
// The required members are concepts (core/op_concepts.hpp), checked where a node is formed and
// where grad() needs the vjp. See docs/adding-an-op.md.
#include <cstddef>
#include <span>
#include <string>

#include <fmt/format.h>

#include "typegrad/core/errors.hpp"
#include "typegrad/core/expression.hpp"
#include "typegrad/core/shape.hpp"
#include "typegrad/kernels/broadcast.hpp"

namespace typegrad {

// Execution-plan fusion: fusion_rule<Op, ArgNodes...>, specialised next to the ops it joins,
// names an argument (an op node) that Op's fused kernel computes on the fly from that argument's
// own arguments, which take its place among the kernel's inputs:
//   static constexpr std::size_t argument;           // which argument; no_fusion: none
//   template <class T> static void forward(view<T> out, inputs<T> in);
//                                                    // in: Op's arguments with the fused one
//                                                    // replaced by its own arguments
//   static constexpr unsigned unused_arguments;      // optional bit mask: Op's arguments the
//                                                    // fused kernel does not read (dropped)
//   using read_instead = N;                          // optional: a node type whose value the
//                                                    // kernel reads in the fused argument's place
//                                                    // when the graph has it (else as above)
//   static constexpr std::size_t inner_argument;     // optional: which argument of the fused
//                                                    // argument (an op node) is computed on the
//                                                    // fly too, from its own arguments; unless
//                                                    // the program computes it anyway: forward
//                                                    // then gets that node's value (its input
//                                                    // count tells which form it has)
// The graph, its printed form and its derivatives are unchanged; the program runs one pass
// instead of two and does not compute the argument's node when nothing else reads it. The fused
// kernel must give bitwise the unfused result.
// Looking rules up resolves every argument's node type, which costs compile time on big graphs
// (a ResNet-18 compiled 26% slower): only ops with has_fusion_rules_v<Op> (set beside their rules)
// are looked up.
inline constexpr std::size_t no_fusion = std::size_t(-1);
template <class Op, class... ArgNodes>
struct fusion_rule {
  static constexpr std::size_t argument = no_fusion;
};
template <class Op>
inline constexpr bool has_fusion_rules_v = false;

// Ops whose adjoint input may be any tensor broadcastable to the op's output (elementwise ops).
// Every other op receives an adjoint of exactly its output's shape.
struct elementwise_tag {};
template <class Op>
inline constexpr bool accepts_broadcast_adjoint_v = std::is_base_of_v<elementwise_tag, Op>;

// Ops whose one argument's shape is the output's (elementwise functions, softmax, ...): the rank
// rule, the shape rule, and the shape source for the gradient builder, written once.
struct shape_preserving {
  static constexpr std::size_t rank(std::size_t r) { return r; }
  template <class X>
  using shape_source = shape_source_t<X>;
  static constexpr shape infer_shape(input_shapes in) { return in[0]; }
};

// A compile-time list of axes, printed as (0, 2).
template <std::size_t... Axes>
struct axes_t {
  static constexpr std::size_t count = sizeof...(Axes);
  static constexpr std::array<std::size_t, sizeof...(Axes)> values{Axes...};
  static std::string to_string() {
    std::string s = "(";
    bool first = true;
    ((s += fmt::format("{}{}", first ? "" : ", ", Axes), first = false), ...);
    return s + ")";
  }
};
template <std::size_t... Axes>
inline constexpr axes_t<Axes...> axes{};

}  // namespace typegrad
