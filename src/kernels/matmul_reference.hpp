#pragma once
// Internal to src/kernels: the reference matrix product (matmul_reference.cpp), the last entry of
// gemm.cpp's matmul list. Same arguments as kernels/gemm.hpp's matmul.
#include "typegrad/core/shape.hpp"
#include "typegrad/kernels/gemm.hpp"

namespace typegrad::kernels {

template <class T>
void reference_matmul(view<T> out, view<const T> a, view<const T> b, matmul_form form);

}  // namespace typegrad::kernels
