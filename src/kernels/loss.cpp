// Per-position softmax cross-entropy against integer labels, and one_hot. Labels are validated
// first, serially and in order, so a bad label is reported the same way on every run (the first
// offending index), and never used to index memory.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>

#include <fmt/format.h>

#include "../parallel/parallel_chunks.hpp"
#include "softmax_row.hpp"
#include "typegrad/core/errors.hpp"
#include "typegrad/kernels/softmax.hpp"

namespace typegrad::kernels {
namespace {

// The multi-index of flat position i in s, e.g. "3" (rank 1) or "(1, 2)".
std::string index_text(std::size_t i, const shape& s) {
  if (s.rank() == 1) return fmt::format("{}", i);
  std::size_t idx[max_rank] = {};
  for (std::size_t d = s.rank(); d-- > 0;) {
    idx[d] = i % s[d];
    i /= s[d];
  }
  std::string t = "(";
  for (std::size_t d = 0; d < s.rank(); ++d) t += fmt::format("{}{}", d ? ", " : "", idx[d]);
  return t + ")";
}

}  // namespace

template <class T>
void check_class_labels(const char* op, view<const T> labels, std::size_t classes) {
  const std::size_t n = labels.size();
  for (std::size_t i = 0; i < n; ++i) {
    const T v = labels.data[i];
    // Written so that NaN fails too.
    if (!(v >= T(0) && v < T(classes) && v == std::floor(v)))
      throw value_error(fmt::format("{}: labels[{}] = {} is not a class index: labels must be integers in [0, {})", op,
                                    index_text(i, labels.shape), v, classes));
  }
}

template <class T>
void softmax_cross_entropy(view<T> out, view<const T> logits, view<const T> labels) {
  const std::size_t classes = logits.shape[logits.shape.rank() - 1];
  const std::size_t rows = labels.size();
  check_class_labels("softmax_cross_entropy", labels, classes);
  parallel_chunks(rows, classes, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) {
      const T* row = logits.data + i * classes;
      out.data[i] = softmax_detail::row_logsumexp(row, classes) - row[static_cast<std::size_t>(labels.data[i])];
    }
  });
}

template <class T>
void one_hot(view<T> out, view<const T> labels) {
  const std::size_t classes = out.shape[out.shape.rank() - 1];
  const std::size_t rows = labels.size();
  check_class_labels("one_hot", labels, classes);
  parallel_chunks(rows, classes, [&](std::size_t lo, std::size_t hi) {
    std::fill(out.data + lo * classes, out.data + hi * classes, T(0));
    for (std::size_t i = lo; i < hi; ++i) out.data[i * classes + static_cast<std::size_t>(labels.data[i])] = T(1);
  });
}

#define TYPEGRAD_INSTANTIATE(T)                                                        \
  template void softmax_cross_entropy<T>(view<T>, view<const T>, view<const T>); \
  template void one_hot<T>(view<T>, view<const T>);                               \
  template void check_class_labels<T>(const char*, view<const T>, std::size_t);
TYPEGRAD_INSTANTIATE(float)
TYPEGRAD_INSTANTIATE(double)
#undef TYPEGRAD_INSTANTIATE

}  // namespace typegrad::kernels
