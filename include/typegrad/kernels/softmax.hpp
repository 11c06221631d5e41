#pragma once
// Kernels of the softmax family, compiled in src/kernels/softmax.cpp and src/kernels/loss.cpp
// (float and double). All are numerically stable (the max is subtracted before exp), parallel
// over the positions that are not reduced, and deterministic (a row never spans two tasks).
//
// softmax and softmax_cross_entropy each run the first of their implementations that applies to
// the shapes; the end of this file names them, for tests.
#include <cstddef>
#include <string_view>
#include <vector>

#include "typegrad/core/shape.hpp"

namespace typegrad::kernels {

// out = softmax(in) along axis (log_softmax when log is true); out and in have the same shape.
// The inner loops are vectorized when axis is the last, contiguous one, and across the trailing
// positions otherwise.
template <class T>
void softmax(view<T> out, view<const T> in, std::size_t axis, bool log);

// Cross-entropy of every position of logits (..., C) against integer class labels (...) stored
// as T: out[i] = logsumexp(logits[i, :]) - logits[i, labels[i]]; out has the labels' shape.
// Throws value_error naming `softmax_cross_entropy`, the index and the value when a label is not
// an integer in [0, C).
template <class T>
void softmax_cross_entropy(view<T> out, view<const T> logits, view<const T> labels);

// out (..., C) = one-hot encoding of integer class labels (...) stored as T, C = out's last
// extent. Throws value_error naming `one_hot` for a label that is not an integer in [0, C).
template <class T>
void one_hot(view<T> out, view<const T> labels);

// Throws value_error naming op, the first offending index and its value unless every label is an
// integer in [0, classes). The two kernels above call it; programs also call it before running
// when the labels are bound data, so the error comes before any node has run.
template <class T>
void check_class_labels(const char* op, view<const T> labels, std::size_t classes);

// ---- implementations by name: for tests -------------------------------------------------------
// softmax and softmax_cross_entropy each have an ordered list of named implementations, each with
// an applicability test on the input's shape (and softmax's axis); the kernel runs the first that
// applies. Any of them can also be run by name where it applies. The last, "reference", is the
// definition position by position with std::exp and std::log in long double, slow and serial: it
// applies to everything, and the others are tested against it. Programs never need these
// functions.

// The names of softmax's implementations, in the order they are tried (the same for float and
// double): rows, tiles, reference.
std::vector<std::string_view> softmax_implementations();

// Whether softmax's implementation `name` applies to an input of shape x along axis. Throws
// typegrad::error if softmax has no implementation of that name.
bool softmax_applies(std::string_view name, const shape& x, std::size_t axis);

// The implementation softmax runs for x and axis: the first in its list that applies.
std::string_view softmax_chosen(const shape& x, std::size_t axis);

// softmax with implementation `name` instead of the first that applies. Throws typegrad::error,
// naming softmax, the implementation, x's shape and the axis, if it does not apply (or there is
// none of that name).
template <class T>
void softmax_with(std::string_view name, view<T> out, view<const T> in, std::size_t axis, bool log);

// The same for softmax_cross_entropy, on the logits' shape: rows, reference.
std::vector<std::string_view> softmax_cross_entropy_implementations();
bool softmax_cross_entropy_applies(std::string_view name, const shape& logits);
std::string_view softmax_cross_entropy_chosen(const shape& logits);
template <class T>
void softmax_cross_entropy_with(std::string_view name, view<T> out, view<const T> logits, view<const T> labels);

}  // namespace typegrad::kernels
