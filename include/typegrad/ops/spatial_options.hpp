#pragma once
// Compile-time options of the spatial ops (conv, conv_transpose, pooling), passed as tag values in
// any order after the tensor arguments:
//
//   conv(x, w)                                   same padding, stride 1, dilation 1, 1 group
//   conv(x, w, stride<2>, padding_valid)         one value for every ordered dim
//   conv(x, w, stride<2, 1>, dilation<1, 2>)     one value per ordered dim
//   conv(x, w, explicit_padding<1, 2, 0, 0>)     (low, high) per ordered dim
//   conv(x, w, groups<32>)                       grouped / depthwise
//   max_pool(x, window<2>, stride<2>)
//
// The semantics are ../shared/DESIGN.md's normative ones (the seed lecture's conventions).
#include <array>
#include <cstddef>
#include <string>
#include <type_traits>

#include <fmt/format.h>

#include "typegrad/core/shape.hpp"

namespace typegrad {

namespace detail {
template <std::size_t... V>
struct per_dim_values {
  static constexpr std::size_t count = sizeof...(V);
  static constexpr std::array<std::size_t, sizeof...(V)> values{V...};
  static_assert(sizeof...(V) >= 1, "spatial option: give one value, or one value per ordered dim");
  static_assert(((V >= 1) && ...), "stride/dilation/window: every value must be >= 1");

  // The values for D ordered dims: one value applies to every dim. The caller checks the count
  // (see fits_dims) so that its static_assert names the call.
  static constexpr bool fits_dims(std::size_t dims) { return count == 1 || count == dims; }
  template <std::size_t D>
  static constexpr std::array<std::size_t, D> expand() {
    std::array<std::size_t, D> out{};
    for (std::size_t i = 0; i < D; ++i) out[i] = values[count == 1 ? 0 : i];
    return out;
  }
  // "2" or "(2, 1)".
  static std::string to_string() {
    if constexpr (count == 1) {
      return fmt::format("{}", values[0]);
    } else {
      std::string s = "(";
      for (std::size_t i = 0; i < count; ++i) s += fmt::format("{}{}", i ? ", " : "", values[i]);
      return s + ")";
    }
  }
};
}  // namespace detail

template <std::size_t... S>
struct stride_t : detail::per_dim_values<S...> {};
template <std::size_t... D>
struct dilation_t : detail::per_dim_values<D...> {};
template <std::size_t... W>
struct window_t : detail::per_dim_values<W...> {};

// stride<2> or stride<2, 1>: the step between output positions, per ordered dim.
template <std::size_t... S>
inline constexpr stride_t<S...> stride{};
// dilation<2>: the step between kernel taps (convolution only).
template <std::size_t... D>
inline constexpr dilation_t<D...> dilation{};
// window<2> or window<3, 2>: the pooling window, per ordered dim.
template <std::size_t... W>
inline constexpr window_t<W...> window{};

// groups<G>: input and output channels split into G groups, each convolved separately; the kernel
// is then (out channels, window..., in channels / G). groups<C> with C input channels is depthwise.
template <std::size_t G>
struct groups_t {
  static_assert(G >= 1, "groups<g>: g must be >= 1");
  static constexpr std::size_t value = G;
};
template <std::size_t G>
inline constexpr groups_t<G> groups{};

// Padding modes (DESIGN.md, "Normative semantics"); k = kernel extent, s = stride, d = dilation,
// n = input extent:
//   same        index-centred taps at o*s + d*(j - floor((k-1)/2)); output ceil(n/s) (the default)
//   valid       taps at o*s + d*j, no padding; output floor((n - d*(k-1) - 1)/s) + 1
//   uncentered  taps at o*s + d*j, zero padding at the end; output ceil(n/s)
//   explicit    (low, high) zeros per dim, then valid
enum class padding_mode { same, valid, uncentered, explicit_pads };

template <padding_mode M>
struct padding_t {
  static constexpr padding_mode mode = M;
  static std::string to_string() {
    return M == padding_mode::same ? "same" : M == padding_mode::valid ? "valid" : "uncentered";
  }
};
inline constexpr padding_t<padding_mode::same> padding_same{};
inline constexpr padding_t<padding_mode::valid> padding_valid{};
inline constexpr padding_t<padding_mode::uncentered> padding_uncentered{};

// explicit_padding<lo0, hi0, lo1, hi1, ...>: (low, high) zeros per ordered dim, as in other
// frameworks' padding=(...) arguments; one pair applies to every dim.
template <std::size_t... LowHigh>
struct explicit_padding_t {
  static constexpr padding_mode mode = padding_mode::explicit_pads;
  static_assert(sizeof...(LowHigh) >= 2 && sizeof...(LowHigh) % 2 == 0,
                "explicit_padding<lo, hi, ...>: give a (low, high) pair per ordered dim (or one pair for all)");
  static constexpr std::size_t pairs = sizeof...(LowHigh) / 2;
  static constexpr std::array<std::size_t, sizeof...(LowHigh)> values{LowHigh...};
  static constexpr bool fits_dims(std::size_t dims) { return pairs == 1 || pairs == dims; }
  template <std::size_t D>
  static constexpr std::array<std::size_t, D> low() {
    std::array<std::size_t, D> out{};
    for (std::size_t i = 0; i < D; ++i) out[i] = values[2 * (pairs == 1 ? 0 : i)];
    return out;
  }
  template <std::size_t D>
  static constexpr std::array<std::size_t, D> high() {
    std::array<std::size_t, D> out{};
    for (std::size_t i = 0; i < D; ++i) out[i] = values[2 * (pairs == 1 ? 0 : i) + 1];
    return out;
  }
  static std::string to_string() {
    std::string s = "pad=(";
    for (std::size_t i = 0; i < pairs; ++i)
      s += fmt::format("{}{}:{}", i ? ", " : "", values[2 * i], values[2 * i + 1]);
    return s + ")";
  }
};
template <std::size_t... LowHigh>
inline constexpr explicit_padding_t<LowHigh...> explicit_padding{};

// Option lookup over a call's tag arguments: find_option_t<is_stride, Default, Opts...> is the one
// option of that kind, or Default. count_options_v tells whether a kind was given twice.
template <template <class> class Is, class... Opts>
inline constexpr std::size_t count_options_v = (std::size_t{0} + ... + (Is<Opts>::value ? 1 : 0));

namespace detail {
template <template <class> class Is, class Default, class... Opts>
struct find_option {
  using type = Default;
};
template <template <class> class Is, class Default, class First, class... Rest>
struct find_option<Is, Default, First, Rest...> {
  using type = std::conditional_t<Is<First>::value, First, typename find_option<Is, Default, Rest...>::type>;
};
}  // namespace detail
template <template <class> class Is, class Default, class... Opts>
using find_option_t = typename detail::find_option<Is, Default, Opts...>::type;

template <class T>
struct is_stride : std::false_type {};
template <std::size_t... S>
struct is_stride<stride_t<S...>> : std::true_type {};
template <class T>
struct is_dilation : std::false_type {};
template <std::size_t... D>
struct is_dilation<dilation_t<D...>> : std::true_type {};
template <class T>
struct is_window : std::false_type {};
template <std::size_t... W>
struct is_window<window_t<W...>> : std::true_type {};
template <class T>
struct is_groups : std::false_type {};
template <std::size_t G>
struct is_groups<groups_t<G>> : std::true_type {};
template <class T>
struct is_padding : std::false_type {};
template <padding_mode M>
struct is_padding<padding_t<M>> : std::true_type {};
template <std::size_t... P>
struct is_padding<explicit_padding_t<P...>> : std::true_type {};

}  // namespace typegrad
