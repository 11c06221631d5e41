#pragma once
// slice and pad: compile-time boxes, one (begin, end) or (low, high) pair per axis.
//
//   slice<b0, e0, b1, e1, ...>(x)               x[b0:e0, b1:e1, ...], as in Python: a negative
//   slice<b0, e0, ...>(x, stride<2>)            begin or end counts from the extent, to_end is
//   slice<1, to_end, 0, -1>(x)                  the end of the axis (Python's x[1:, :-1]); an
//                                               optional step (stride<s> or one per axis)
//   pad<lo0, hi0, lo1, hi1, ...>(x)             lo zeros before and hi after, per axis
//
// Unlike Python, a slice never clips: once negative values are resolved against the runtime
// extent n, 0 <= begin <= end <= n must hold, else the shape rule fails (an empty range is fine).
//
// Adjoints (a closed family, so higher derivatives need nothing else):
//   pad<lo, hi>(x)         -> slice<lo, -hi or to_end>(g)                     (crops the padding)
//   slice(x), a crop       -> pad(g): when every step is 1, begin >= 0 and end < 0 or to_end,
//                             the padding that undoes the crop is compile-time
//   slice(x), otherwise    -> unslice(g, x): zeros shaped like x, g placed at the sliced positions
//   unslice(h, x)          -> slice(h)
#include <array>
#include <cstddef>
#include <limits>
#include <string>

#include "typegrad/kernels/layout.hpp"
#include "typegrad/ops/op_base.hpp"
#include "typegrad/ops/spatial_options.hpp"

namespace typegrad {

// The end of a slice that runs to the end of its axis: slice<1, to_end>(x) is Python's x[1:].
inline constexpr std::ptrdiff_t to_end = std::numeric_limits<std::ptrdiff_t>::max();

// (begin, end) per axis of a slice.
template <std::ptrdiff_t... BeginEnd>
struct slice_bounds_t {
  static constexpr std::size_t axes = sizeof...(BeginEnd) / 2;
  static constexpr std::array<std::ptrdiff_t, sizeof...(BeginEnd)> values{BeginEnd...};
  static constexpr std::ptrdiff_t begin(std::size_t d) { return values[2 * d]; }
  static constexpr std::ptrdiff_t end(std::size_t d) { return values[2 * d + 1]; }
};

// (low, high) zeros per axis of a pad, printed as (1, 2), (0, 0).
template <std::size_t... LowHigh>
struct pad_amounts_t {
  static constexpr std::size_t axes = sizeof...(LowHigh) / 2;
  static constexpr std::array<std::size_t, sizeof...(LowHigh)> values{LowHigh...};
  static std::string to_string() {
    std::string s;
    for (std::size_t d = 0; d < axes; ++d) s += fmt::format("{}({}, {})", d ? ", " : "", values[2 * d], values[2 * d + 1]);
    return s;
  }
};

template <class Bounds, class Steps>
struct slice_op;
template <class Bounds, class Steps>
struct unslice_op;
template <class Pads>
struct pad_op;

namespace detail {
// A slice's rules that do not depend on the op: the printed form, the runtime resolution and
// whether it is a crop (the inverse of a compile-time pad).
template <class Bounds, class Steps>
struct slice_rule {
  static constexpr std::size_t axes = Bounds::axes;
  static constexpr auto steps = Steps::template expand<axes>();

  // Python's notation, the begin always shown: 1:, 0:-1, 0::2.
  static std::string to_string() {
    std::string s;
    for (std::size_t d = 0; d < axes; ++d) {
      s += fmt::format("{}{}:", d ? ", " : "", Bounds::begin(d));
      if (Bounds::end(d) != to_end) s += fmt::format("{}", Bounds::end(d));
      if (steps[d] != 1) s += fmt::format(":{}", steps[d]);
    }
    return s;
  }

  // The slice of x: first index per axis (begin) and the output shape. Throws when it does not fit.
  static constexpr shape resolve(const shape& x, kernels::axis_values& begin) {
    shape out = x;
    for (std::size_t d = 0; d < axes; ++d) {
      const auto n = std::ptrdiff_t(x[d]);
      const std::ptrdiff_t b = Bounds::begin(d) < 0 ? Bounds::begin(d) + n : Bounds::begin(d);
      const std::ptrdiff_t e =
          Bounds::end(d) == to_end ? n : Bounds::end(d) < 0 ? Bounds::end(d) + n : Bounds::end(d);
      if (b < 0 || e > n || b > e)
        throw shape_rule_violation(fmt::format("the range {}:{} of axis {} does not fit its extent {} (shape {})",
                                               Bounds::begin(d), Bounds::end(d) == to_end ? "" : fmt::format("{}", Bounds::end(d)),
                                               d, n, x));
      begin[d] = std::size_t(b);
      out[d] = (std::size_t(e - b) + steps[d] - 1) / steps[d];
    }
    return out;
  }

  static constexpr bool is_crop = [] {
    for (std::size_t d = 0; d < axes; ++d)
      if (steps[d] != 1 || Bounds::begin(d) < 0 || !(Bounds::end(d) < 0 || Bounds::end(d) == to_end)) return false;
    return true;
  }();
  // The pad that undoes a crop.
  template <class Seq>
  struct uncrop;
  template <std::size_t... D>
  struct uncrop<std::index_sequence<D...>> {
    using type = pad_amounts_t<(D % 2 == 0 ? std::size_t(Bounds::begin(D / 2))
                                           : Bounds::end(D / 2) == to_end ? 0 : std::size_t(-Bounds::end(D / 2)))...>;
  };
  using uncrop_t = typename uncrop<std::make_index_sequence<2 * axes>>::type;
};

// The slice that undoes a pad.
template <class Pads, class Seq>
struct crop;
template <std::size_t... P, std::size_t... D>
struct crop<pad_amounts_t<P...>, std::index_sequence<D...>> {
  using pads = pad_amounts_t<P...>;
  using type = slice_bounds_t<(D % 2 == 0 ? std::ptrdiff_t(pads::values[D])
                                          : pads::values[D] == 0 ? to_end : -std::ptrdiff_t(pads::values[D]))...>;
};
template <class Pads>
using crop_t = typename crop<Pads, std::make_index_sequence<2 * Pads::axes>>::type;

// A crop of a pad by the same amounts (or a pad of such a crop) has the original's extents: the
// adjoints of pad and crop then need no sum_to to fit their argument.
template <class Pads, class Source>
struct padded_source {
  using type = void;
};
template <class Pads, class B, class S, class Y>
struct padded_source<Pads, basic_node<slice_op<B, S>, Y>> {
  using rule = slice_rule<B, S>;
  using type = std::conditional_t<rule::is_crop && std::is_same_v<typename rule::uncrop_t, Pads>, shape_source_t<Y>, void>;
};
template <class B, class S, class Source>
struct cropped_source {
  using type = void;
};
template <class B, class S, class Pads, class Y>
struct cropped_source<B, S, basic_node<pad_op<Pads>, Y>> {
  using rule = slice_rule<B, S>;
  using type = std::conditional_t<rule::is_crop && std::is_same_v<typename rule::uncrop_t, Pads>, shape_source_t<Y>, void>;
};
}  // namespace detail

template <class Bounds, class Steps>
struct slice_op {
  using rule = detail::slice_rule<Bounds, Steps>;
  static constexpr std::string_view name = "slice";
  static std::string attributes() { return rule::to_string(); }
  static constexpr std::size_t rank(std::size_t r) { return r; }
  template <class X>
  using shape_source = typename detail::cropped_source<Bounds, Steps, shape_source_t<X>>::type;
  static constexpr shape infer_shape(input_shapes in) {
    kernels::axis_values begin{};
    return rule::resolve(in[0], begin);
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::axis_values begin{}, step{};
    rule::resolve(in[0].shape, begin);
    for (std::size_t d = 0; d < rule::axes; ++d) step[d] = rule::steps[d];
    kernels::slice<T>(out, in[0], begin, step);
  }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G, Y, X) {
    if constexpr (rule::is_crop) return node<pad_op<typename rule::uncrop_t>, G>{};
    else return node<unslice_op<Bounds, Steps>, G, X>{};
  }
};

// unslice(h, x): zeros shaped like x, with h at the positions slice(x) reads (slice's adjoint).
template <class Bounds, class Steps>
struct unslice_op {
  using rule = detail::slice_rule<Bounds, Steps>;
  static constexpr std::string_view name = "unslice";
  static std::string attributes() { return rule::to_string(); }
  static constexpr std::size_t rank(std::size_t, std::size_t x) { return x; }
  template <class H, class X>
  using shape_source = shape_source_t<X>;
  static constexpr shape infer_shape(input_shapes in) {
    kernels::axis_values begin{};
    const shape sliced = rule::resolve(in[1], begin);
    if (!(sliced == in[0]))
      throw shape_rule_violation(fmt::format("the adjoint has shape {} but the slice of {} has {}", in[0], in[1], sliced));
    return in[1];
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::axis_values begin{}, step{};
    rule::resolve(in[1].shape, begin);
    for (std::size_t d = 0; d < rule::axes; ++d) step[d] = rule::steps[d];
    kernels::unslice<T>(out, in[0], begin, step);
  }
  template <std::size_t I, class G, class Y, class H, class X>
  static auto vjp(G, Y, H, X) {
    if constexpr (I == 0) return node<slice_op<Bounds, Steps>, G>{};
    else return no_adjoint{};  // only x's shape is read
  }
};

template <std::size_t... P>
struct pad_op<pad_amounts_t<P...>> {
  using pads = pad_amounts_t<P...>;
  static constexpr std::string_view name = "pad";
  static std::string attributes() { return pads::to_string(); }
  static constexpr std::size_t rank(std::size_t r) { return r; }
  template <class X>
  using shape_source = typename detail::padded_source<pads, shape_source_t<X>>::type;
  static constexpr shape infer_shape(input_shapes in) {
    shape out = in[0];
    for (std::size_t d = 0; d < pads::axes; ++d) out[d] += pads::values[2 * d] + pads::values[2 * d + 1];
    return out;
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::axis_values low{};
    for (std::size_t d = 0; d < pads::axes; ++d) low[d] = pads::values[2 * d];
    kernels::unslice<T>(out, in[0], low, kernels::unit_steps);
  }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G, Y, X) { return node<slice_op<detail::crop_t<pads>, stride_t<1>>, G>{}; }
};

namespace detail {
template <std::ptrdiff_t... BE>
constexpr bool slice_begins_valid() {
  const std::array<std::ptrdiff_t, sizeof...(BE)> v{BE...};
  for (std::size_t d = 0; d + 1 < v.size(); d += 2)
    if (v[d] == to_end) return false;
  return true;
}
// begin <= end wherever both count from the same side (else it depends on the extent).
template <std::ptrdiff_t... BE>
constexpr bool slice_ranges_ordered() {
  const std::array<std::ptrdiff_t, sizeof...(BE)> v{BE...};
  for (std::size_t d = 0; d + 1 < v.size(); d += 2) {
    const std::ptrdiff_t b = v[d], e = v[d + 1];
    if (e != to_end && (b < 0) == (e < 0) && b > e) return false;
  }
  return true;
}
template <class Bounds, class Steps, Expression X>
constexpr auto make_slice(X x) {
  static_assert(Steps::fits_dims(X::rank), "slice<begin, end, ...>(x, stride<s...>): give one step, or one per axis of x");
  if constexpr (Steps::fits_dims(X::rank)) {
    using rule = slice_rule<Bounds, Steps>;
    constexpr bool whole = [] {
      for (std::size_t d = 0; d < rule::axes; ++d)
        if (Bounds::begin(d) != 0 || Bounds::end(d) != to_end || rule::steps[d] != 1) return false;
      return true;
    }();
    if constexpr (whole) return x;
    else return node<slice_op<Bounds, Steps>, X>{};
  }
}
}  // namespace detail

// slice<b0, e0, b1, e1, ...>(x): see the top of this file.
template <std::ptrdiff_t... BeginEnd, Expression X>
constexpr auto slice(X x) {
  static_assert(sizeof...(BeginEnd) == 2 * X::rank, "slice<begin, end, ...>(x): give one (begin, end) pair per axis of x");
  static_assert(detail::slice_begins_valid<BeginEnd...>(), "slice<begin, end, ...>(x): a begin cannot be to_end");
  static_assert(detail::slice_ranges_ordered<BeginEnd...>(), "slice<begin, end, ...>(x): a begin must not be after its end");
  if constexpr (sizeof...(BeginEnd) == 2 * X::rank) return detail::make_slice<slice_bounds_t<BeginEnd...>, stride_t<1>>(x);
}
template <std::ptrdiff_t... BeginEnd, Expression X, std::size_t... S>
constexpr auto slice(X x, stride_t<S...>) {
  static_assert(sizeof...(BeginEnd) == 2 * X::rank, "slice<begin, end, ...>(x): give one (begin, end) pair per axis of x");
  static_assert(detail::slice_begins_valid<BeginEnd...>(), "slice<begin, end, ...>(x): a begin cannot be to_end");
  static_assert(detail::slice_ranges_ordered<BeginEnd...>(), "slice<begin, end, ...>(x): a begin must not be after its end");
  if constexpr (sizeof...(BeginEnd) == 2 * X::rank) return detail::make_slice<slice_bounds_t<BeginEnd...>, stride_t<S...>>(x);
}

// pad<lo0, hi0, lo1, hi1, ...>(x): lo zeros before and hi zeros after each axis.
template <std::size_t... LowHigh, Expression X>
constexpr auto pad(X x) {
  static_assert(sizeof...(LowHigh) == 2 * X::rank, "pad<lo, hi, ...>(x): give one (low, high) pair per axis of x");
  if constexpr (((LowHigh == 0) && ...)) return x;
  else return node<pad_op<pad_amounts_t<LowHigh...>>, X>{};
}

}  // namespace typegrad
