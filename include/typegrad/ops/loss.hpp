#pragma once
// Losses.
//
//   mse(pred, target)                       mean((pred - target)^2); target broadcasts against pred
//                                           (same rank required). Composite: no gradient code.
//   softmax_cross_entropy(logits, labels)   mean over the batch (and any further positions) of
//                                           -log softmax(logits)[label]
//   softmax_cross_entropy_unreduced(...)    the same per position, shape of labels
//   one_hot(labels, like)                   1 at each label's class, shape of like
//
// Logits are (N, C) with labels (N), or more generally (N, ..., C) with labels (N, ...): the
// classes are the last axis (the channels of the (batch, ..., channels) layout) and every other
// position is one example of the mean. Labels are INTEGER class indices stored as the program's
// scalar type; a label that is not an integer in [0, C) makes run() throw typegrad::value_error
// naming the op, the index and the value. Labels get no adjoint.
//
// The forward kernel is a stable log-sum-exp. The adjoint with respect to the logits is
//   expand(g) * (softmax(logits) - one_hot(labels, logits))
// where g, per position, comes from mean's own adjoint (which divides by the runtime batch size),
// so second derivatives go through softmax and Hessian-vector products work.
#include <cstddef>
#include <string>

#include "typegrad/kernels/softmax.hpp"
#include "typegrad/ops/arithmetic.hpp"
#include "typegrad/ops/op_base.hpp"
#include "typegrad/ops/reduce.hpp"
#include "typegrad/ops/softmax.hpp"

namespace typegrad {

namespace detail {
// labels' required shape: like's shape without its last (class) axis.
constexpr void check_label_shape(const shape& labels, const shape& like, std::string_view like_name) {
  shape expected;
  for (std::size_t d = 0; d + 1 < like.rank(); ++d) expected.push_back(like[d]);
  if (!(labels == expected))
    throw shape_rule_violation(fmt::format("labels must have shape {} ({} without the class axis), not {}",
                                           expected, like_name, labels));
}
}  // namespace detail

// ---- one_hot(labels, like) --------------------------------------------------------------------
struct one_hot_op {
  static constexpr std::string_view name = "one_hot";
  static constexpr std::size_t rank(std::size_t, std::size_t like) { return like; }
  template <class Labels, class Like>
  using shape_source = shape_source_t<Like>;
  static constexpr unsigned shape_only_arguments = 0b10;  // like
  static constexpr shape infer_shape(input_shapes in) {
    detail::check_label_shape(in[0], in[1], "like's shape");
    return in[1];
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::one_hot<T>(out, in[0]);
  }
  // Value precondition on argument 0, checked before the run when it is bound data.
  static constexpr std::size_t checked_argument = 0;
  template <class T>
  static void check_argument(view<const T> labels, input_shapes in) {
    kernels::check_class_labels<T>("one_hot", labels, in[1][in[1].rank() - 1]);
  }
  template <std::size_t I, class G, class Y, class Labels, class Like>
  static no_adjoint vjp(G, Y, Labels, Like) {
    return {};  // piecewise constant in labels; only like's shape is read
  }
};

// one_hot(labels, like): a tensor of like's shape (..., C), 1 at [..., labels[...]] and 0 elsewhere.
template <Expression Labels, Expression Like>
constexpr auto one_hot(Labels, Like) {
  static_assert(Like::rank >= 1, "one_hot(labels, like): like must have rank >= 1 (its last axis holds the classes)");
  static_assert(Labels::rank + 1 == Like::rank, "one_hot(labels, like): labels must have rank like.rank - 1");
  return node<one_hot_op, Labels, Like>{};
}

// ---- softmax cross-entropy --------------------------------------------------------------------
struct softmax_cross_entropy_op {
  static constexpr std::string_view name = "softmax_cross_entropy";
  static constexpr std::size_t rank(std::size_t logits, std::size_t) { return logits - 1; }
  template <class Logits, class Labels>
  using shape_source = shape_source_t<Labels>;
  static constexpr shape infer_shape(input_shapes in) {
    detail::check_label_shape(in[1], in[0], "the logits' shape");
    if (in[0][in[0].rank() - 1] == 0)
      throw shape_rule_violation(fmt::format("logits {} have no classes (the last axis is empty)", in[0]));
    return in[1];
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::softmax_cross_entropy<T>(out, in[0], in[1]);
  }
  // Value precondition on argument 1 (the labels), checked before the run when it is bound data.
  static constexpr std::size_t checked_argument = 1;
  template <class T>
  static void check_argument(view<const T> labels, input_shapes in) {
    kernels::check_class_labels<T>("softmax_cross_entropy", labels, in[0][in[0].rank() - 1]);
  }
  template <std::size_t I, class G, class Y, class Logits, class Labels>
  static auto vjp(G, Y, Logits logits, Labels labels) {
    if constexpr (I == 0) {
      auto g = node<detail::expand_op<axes_t<Logits::rank - 1>, false>, G, Logits>{};
      return g * (softmax(logits) - one_hot(labels, logits));
    } else {
      return no_adjoint{};
    }
  }
};

// Per position: -log softmax(logits)[..., labels[...]], of the labels' shape.
template <Expression Logits, Expression Labels>
constexpr auto softmax_cross_entropy_unreduced(Logits, Labels) {
  static_assert(Logits::rank >= 2,
                "softmax_cross_entropy(logits, labels): logits must have rank >= 2 (batch, ..., classes)");
  static_assert(Labels::rank + 1 == Logits::rank,
                "softmax_cross_entropy(logits, labels): labels must have rank logits.rank - 1 (one class index per row)");
  return node<softmax_cross_entropy_op, Logits, Labels>{};
}

// The mean over all positions of the unreduced loss (for (N, C) logits: over the batch).
template <Expression Logits, Expression Labels>
constexpr auto softmax_cross_entropy(Logits logits, Labels labels) {
  return mean(softmax_cross_entropy_unreduced(logits, labels));
}

// ---- mean squared error -------------------------------------------------------------------------
template <Expression Pred, Expression Target>
constexpr auto mse(Pred pred, Target target) {
  static_assert(Pred::rank == Target::rank, "mse(pred, target): target must have the rank of pred");
  auto d = pred - target;
  return mean(d * d);
}

}  // namespace typegrad
