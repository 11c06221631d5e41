#pragma once
// Internal to src/kernels: the reference convolution (conv_reference.cpp), the last entry of each
// of conv.cpp's implementation lists. Same arguments as the kernels of conv_kernels.hpp.
#include "typegrad/core/shape.hpp"
#include "typegrad/kernels/conv.hpp"

namespace typegrad::kernels {

template <class T>
void reference_conv_forward(view<T> out, view<const T> x, view<const T> w, const conv_geometry& g,
                            const conv_epilogue<T>& e);
template <class T>
void reference_conv_input_grad(view<T> dx, view<const T> g, view<const T> w, const conv_geometry& geom);
template <class T>
void reference_conv_weight_grad(view<T> dw, view<const T> x, view<const T> g, const conv_geometry& geom);

}  // namespace typegrad::kernels
