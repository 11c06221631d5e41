#pragma once
// Naive reference softmax family for tests: the definitions with std::exp / std::log in long
// double, one position at a time. Independent of the vectorized kernels (their polynomial exp,
// lane reductions and tiling).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include <typegrad/core/shape.hpp>

namespace typegrad::reference {

// softmax (or log_softmax) of x along axis.
template <class T>
std::vector<T> softmax(view<const T> x, std::size_t axis, bool log) {
  const auto& s = x.shape;
  std::size_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < axis; ++d) outer *= s[d];
  for (std::size_t d = axis + 1; d < s.rank(); ++d) inner *= s[d];
  const std::size_t n = s[axis];
  std::vector<T> out(x.size());
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t i = 0; i < inner; ++i) {
      auto at = [&](std::size_t k) { return o * n * inner + k * inner + i; };
      long double m = x.data[at(0)];
      for (std::size_t k = 1; k < n; ++k) m = std::max<long double>(m, x.data[at(k)]);
      long double sum = 0;
      for (std::size_t k = 0; k < n; ++k) sum += std::exp(static_cast<long double>(x.data[at(k)]) - m);
      for (std::size_t k = 0; k < n; ++k) {
        const long double v = static_cast<long double>(x.data[at(k)]) - m;
        out[at(k)] = static_cast<T>(log ? v - std::log(sum) : std::exp(v) / sum);
      }
    }
  return out;
}

// Per-row cross-entropy of logits (rows, C) against integer labels (rows).
template <class T>
std::vector<T> cross_entropy(view<const T> logits, view<const T> labels) {
  const std::size_t c = logits.shape[logits.shape.rank() - 1], rows = labels.size();
  std::vector<T> out(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = logits.data + r * c;
    long double m = row[0];
    for (std::size_t k = 1; k < c; ++k) m = std::max<long double>(m, row[k]);
    long double sum = 0;
    for (std::size_t k = 0; k < c; ++k) sum += std::exp(static_cast<long double>(row[k]) - m);
    out[r] = static_cast<T>(m + std::log(sum) - row[static_cast<std::size_t>(labels.data[r])]);
  }
  return out;
}

}  // namespace typegrad::reference
