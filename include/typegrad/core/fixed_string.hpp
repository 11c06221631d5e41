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

// A name with a two-digit number, for leaves made by templates (one per layer):
// var<numbered<3>("conv"), 4> is var<"conv03", 4>.
template <std::size_t I, std::size_t N>
constexpr fixed_string<N + 2> numbered(const char (&prefix)[N]) {
  static_assert(I < 100, "numbered<i>(prefix): i must be below 100 (two digits)");
  char s[N + 2]{};
  std::copy_n(prefix, N - 1, s);
  s[N - 1] = char('0' + I / 10);
  s[N] = char('0' + I % 10);
  return fixed_string<N + 2>(s);
}

}  // namespace typegrad
