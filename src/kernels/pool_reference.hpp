#pragma once
// Internal to src/kernels: the reference pooling kernels (pool_reference.cpp), the last entry of
// each of pool.cpp's implementation lists. Same arguments as the kernels of kernels/pool.hpp.
#include "typegrad/core/shape.hpp"
#include "typegrad/kernels/pool.hpp"

namespace typegrad::kernels {

template <class T>
void reference_max_pool(view<T> out, view<const T> x, const pool_window& w);
template <class T>
void reference_avg_pool(view<T> out, view<const T> x, const pool_window& w);
template <class T>
void reference_max_pool_gather(view<T> out, view<const T> h, view<const T> x, const pool_window& w);
template <class T>
void reference_max_pool_backward(view<T> dx, view<const T> g, view<const T> x, const pool_window& w,
                                 bool positive_only);
template <class T>
void reference_avg_pool_transpose(view<T> dx, view<const T> g, const pool_window& w);

}  // namespace typegrad::kernels
