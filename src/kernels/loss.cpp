// Per-position softmax cross-entropy against integer labels, and one_hot. Labels are validated
// first, serially and in order, so a bad label is reported the same way on every run (the first
// offending index), and never used to index memory.
//
// softmax_cross_entropy is an ordered list of implementations, like softmax.cpp's: "rows" (a
// task's rows, each by the vectorized logsumexp of softmax_row.hpp), then "reference" (the
// definition in long double, softmax_reference.cpp), which it is tested against
// (tests/test_softmax_implementations.cpp). Both apply to every shape.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "../parallel/parallel_chunks.hpp"
#include "implementation_list.hpp"
#include "softmax_reference.hpp"
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

namespace {

template <class T>
std::size_t classes_of(view<const T> logits) {
  return logits.shape[logits.shape.rank() - 1];
}

template <class T>
void cross_entropy_rows(view<T> out, view<const T> logits, view<const T> labels) {
  const std::size_t classes = classes_of(logits);
  parallel_chunks(labels.size(), classes, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) {
      const T* row = logits.data + i * classes;
      out.data[i] = softmax_detail::row_logsumexp(row, classes) - row[static_cast<std::size_t>(labels.data[i])];
    }
  });
}

// ---- the implementation list (the labels are checked before any runs) --------------------------

template <class T>
using cross_entropy_run = void (*)(view<T>, view<const T>, view<const T>);
template <class T>
using cross_entropy_implementation = implementation<bool (*)(const shape&), cross_entropy_run<T>>;

bool always(const shape&) { return true; }

template <class T>
constexpr cross_entropy_implementation<T> cross_entropy_list[] = {
    {"rows", always, cross_entropy_rows<T>},
    {"reference", always, reference_softmax_cross_entropy<T>},
};

}  // namespace

template <class T>
void softmax_cross_entropy(view<T> out, view<const T> logits, view<const T> labels) {
  check_class_labels("softmax_cross_entropy", labels, classes_of(logits));
  first_applying(cross_entropy_list<T>, logits.shape).run(out, logits, labels);
}

std::vector<std::string_view> softmax_cross_entropy_implementations() {
  return implementation_names(cross_entropy_list<float>);
}

bool softmax_cross_entropy_applies(std::string_view name, const shape& logits) {
  return named(cross_entropy_list<float>, "softmax_cross_entropy", name).applies(logits);
}

std::string_view softmax_cross_entropy_chosen(const shape& logits) {
  return first_applying(cross_entropy_list<float>, logits).name;
}

template <class T>
void softmax_cross_entropy_with(std::string_view name, view<T> out, view<const T> logits, view<const T> labels) {
  auto describe = [&] { return fmt::format("logits {}", logits.shape); };
  const auto& named_one = applying(cross_entropy_list<T>, "softmax_cross_entropy", name, describe, logits.shape);
  check_class_labels("softmax_cross_entropy", labels, classes_of(logits));
  named_one.run(out, logits, labels);
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
  template void softmax_cross_entropy_with<T>(std::string_view, view<T>, view<const T>, view<const T>); \
  template void one_hot<T>(view<T>, view<const T>);                               \
  template void check_class_labels<T>(const char*, view<const T>, std::size_t);
TYPEGRAD_INSTANTIATE(float)
TYPEGRAD_INSTANTIATE(double)
#undef TYPEGRAD_INSTANTIATE

}  // namespace typegrad::kernels
