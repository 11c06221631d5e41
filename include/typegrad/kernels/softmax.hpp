#pragma once
// Kernels of the softmax family, compiled in src/kernels/softmax.cpp and src/kernels/loss.cpp
// (float and double). All are numerically stable (the max is subtracted before exp), parallel
// over the positions that are not reduced, and deterministic (a row never spans two tasks).
#include <cstddef>

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

}  // namespace typegrad::kernels
