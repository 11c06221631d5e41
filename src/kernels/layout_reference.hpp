#pragma once
// Internal to src/kernels: the reference layout kernels (layout_reference.cpp), the last entry of
// each of layout.cpp's implementation lists. Same arguments as the kernels of kernels/layout.hpp.
#include <cstddef>
#include <span>

#include "typegrad/core/shape.hpp"
#include "typegrad/kernels/layout.hpp"

namespace typegrad::kernels {

template <class T>
void reference_slice(view<T> out, view<const T> in, const axis_values& begin, const axis_values& step);
template <class T>
void reference_unslice(view<T> out, view<const T> in, const axis_values& begin, const axis_values& step);
template <class T>
void reference_concat(view<T> out, std::span<const view<const T>> in, std::size_t axis);
template <class T>
void reference_permute(view<T> out, view<const T> in, const axis_values& perm);

}  // namespace typegrad::kernels
