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

}  // namespace typegrad
