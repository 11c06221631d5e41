#pragma once
// A string usable as a template argument: leaf names live in the type (var<"x", 4>).
#include <algorithm>
#include <cstddef>
#include <string_view>

namespace typegrad {

template <std::size_t N>
struct fixed_string {
  char chars[N]{};
  constexpr fixed_string(const char (&s)[N]) { std::copy_n(s, N, chars); }
  constexpr std::string_view view() const { return {chars, N - 1}; }
  constexpr operator std::string_view() const { return view(); }
  template <std::size_t M>
  constexpr bool operator==(const fixed_string<M>& other) const { return view() == other.view(); }
};

// A name with a number of at least two digits, for leaves made by templates (one per layer):
// var<numbered<3>("conv"), 4> is var<"conv03", 4>, numbered<120>("w") is "w120".
template <std::size_t I, std::size_t N>
constexpr auto numbered(const char (&prefix)[N]) {
  static_assert(I < 1000, "numbered<i>(prefix): i must be below 1000");
  constexpr std::size_t digits = I < 100 ? 2 : 3;
  char s[N + digits]{};
  std::copy_n(prefix, N - 1, s);
  for (std::size_t d = 0, v = I; d < digits; ++d, v /= 10) s[N - 2 + digits - d] = char('0' + v % 10);
  return fixed_string<N + digits>(s);
}

}  // namespace typegrad
