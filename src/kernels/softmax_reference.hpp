#pragma once
// Internal to src/kernels: the reference softmax family (softmax_reference.cpp), the last entry of
// the implementation lists of softmax (softmax.cpp) and softmax_cross_entropy (loss.cpp). Same
// arguments as the kernels of kernels/softmax.hpp; softmax_cross_entropy's labels are checked
// before any implementation runs.
#include <cstddef>

#include "typegrad/core/shape.hpp"

namespace typegrad::kernels {

template <class T>
void reference_softmax(view<T> out, view<const T> in, std::size_t axis, bool log);
template <class T>
void reference_softmax_cross_entropy(view<T> out, view<const T> logits, view<const T> labels);

}  // namespace typegrad::kernels
