#pragma once
// concat<axis>(a, b, ...): two or more tensors of equal rank joined along an axis (negative counts
// from the end: concat<-1> joins channels, as Inception and DenseNet blocks do). The extents must
// agree except along the axis; that is checked when the program runs.
//
// The family is closed under differentiation, with runtime offsets (the extents are runtime):
//   concat(a0, ..., an)                     adjoint of ai: concat_part<i>(g, a0, ..., an)
//   concat_part<i>(g, a0, ..., an)  = g's block of ai             adjoint: concat_place<i>(h, a0, ..., an)
//   concat_place<i>(h, a0, ..., an) = zeros shaped like the concat with h in ai's block
//                                                                  adjoint: concat_part<i>(g, a0, ..., an)
// The a's are read for their shapes only (no adjoint flows to them through part and place).
#include <cstddef>
#include <string>
#include <tuple>

#include "typegrad/kernels/layout.hpp"
#include "typegrad/ops/op_base.hpp"

namespace typegrad {

namespace detail {
// The shape of the arguments joined along axis; throws when they do not fit.
constexpr shape concat_shape(input_shapes args, std::size_t axis) {
  shape out = args[0];
  for (std::size_t k = 1; k < args.size(); ++k) {
    for (std::size_t d = 0; d < out.rank(); ++d)
      if (d != axis && args[k][d] != args[0][d])
        throw shape_rule_violation(fmt::format(
            "argument {} has shape {} but argument 0 has {}: the extents must agree except along axis {}", k, args[k],
            args[0], axis));
    out[axis] += args[k][axis];
  }
  return out;
}

// Where argument I's block starts in the concat, for part and place (whose inputs are the adjoint
// then the concat's arguments).
template <std::size_t Axis, std::size_t I, class T>
kernels::axis_values concat_block_begin(inputs<T> in) {
  kernels::axis_values begin{};
  for (std::size_t k = 0; k < I; ++k) begin[Axis] += in[1 + k].shape[Axis];
  return begin;
}

template <std::size_t Axis, std::size_t I>
std::string concat_block_attributes() {
  return fmt::format("axis={}, part={}", Axis, I);
}
}  // namespace detail

template <std::size_t Axis, std::size_t I>
struct concat_part_op;
template <std::size_t Axis, std::size_t I>
struct concat_place_op;

template <std::size_t Axis>
struct concat_op {
  static constexpr std::string_view name = "concat";
  static std::string attributes() { return fmt::format("axis={}", Axis); }
  template <class... Rest>
  static constexpr std::size_t rank(std::size_t first, Rest...) { return first; }
  static constexpr shape infer_shape(input_shapes in) { return detail::concat_shape(in, Axis); }
  template <class T>
  static void forward(view<T> out, inputs<T> in) { kernels::concat<T>(out, in, Axis); }
  template <std::size_t I, class G, class Y, class... Args>
  static auto vjp(G, Y, Args...) { return node<concat_part_op<Axis, I>, G, Args...>{}; }
};

// concat_part<i>(g, a0, ..., an): the block of g (shaped like the concat) that came from ai.
template <std::size_t Axis, std::size_t I>
struct concat_part_op {
  static constexpr std::string_view name = "concat_part";
  static std::string attributes() { return detail::concat_block_attributes<Axis, I>(); }
  template <class... Rest>
  static constexpr std::size_t rank(std::size_t g, Rest...) { return g; }
  template <class G, class... Args>
  using shape_source = shape_source_t<std::tuple_element_t<I, std::tuple<Args...>>>;
  static constexpr shape infer_shape(input_shapes in) {
    const shape joined = detail::concat_shape(in.subspan(1), Axis);
    if (!(in[0] == joined))
      throw shape_rule_violation(fmt::format("the adjoint has shape {} but the concatenation has {}", in[0], joined));
    return in[1 + I];
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::slice<T>(out, in[0], detail::concat_block_begin<Axis, I, T>(in), kernels::unit_steps);
  }
  template <std::size_t K, class H, class Y, class G, class... Args>
  static auto vjp(H, Y, G, Args...) {
    if constexpr (K == 0) return node<concat_place_op<Axis, I>, H, Args...>{};
    else return no_adjoint{};
  }
};

// concat_place<i>(h, a0, ..., an): zeros shaped like concat(a0, ..., an), h in ai's block.
template <std::size_t Axis, std::size_t I>
struct concat_place_op {
  static constexpr std::string_view name = "concat_place";
  static std::string attributes() { return detail::concat_block_attributes<Axis, I>(); }
  template <class... Rest>
  static constexpr std::size_t rank(std::size_t h, Rest...) { return h; }
  template <class H, class... Args>
  using shape_source = shape_source_t<node<concat_op<Axis>, Args...>>;
  static constexpr shape infer_shape(input_shapes in) {
    const shape joined = detail::concat_shape(in.subspan(1), Axis);
    if (!(in[0] == in[1 + I]))
      throw shape_rule_violation(
          fmt::format("the adjoint has shape {} but argument {} of the concatenation has {}", in[0], I, in[1 + I]));
    return joined;
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::unslice<T>(out, in[0], detail::concat_block_begin<Axis, I, T>(in), kernels::unit_steps);
  }
  template <std::size_t K, class G, class Y, class H, class... Args>
  static auto vjp(G, Y, H, Args...) {
    if constexpr (K == 0) return node<concat_part_op<Axis, I>, G, Args...>{};
    else return no_adjoint{};
  }
};

// concat<axis>(a, b, ...): see the top of this file.
template <std::ptrdiff_t Axis, Expression A, Expression... Rest>
constexpr auto concat(A, Rest...) {
  static_assert(sizeof...(Rest) >= 1, "concat<axis>(a, b, ...): give at least two arguments");
  static_assert(((Rest::rank == A::rank) && ...), "concat<axis>(a, b, ...): every argument must have the rank of a");
  static_assert(A::rank >= 1, "concat<axis>(a, b, ...): the arguments must have rank >= 1");
  constexpr auto rank = std::ptrdiff_t(A::rank);
  static_assert(Axis >= -rank && Axis < rank,
                "concat<axis>(a, b, ...): axis must be in [-a.rank, a.rank) (a negative axis counts from the end)");
  constexpr std::size_t axis = Axis < 0 ? std::size_t(Axis + rank) : std::size_t(Axis);
  return node<concat_op<(axis < A::rank ? axis : 0)>, A, Rest...>{};
}

}  // namespace typegrad
