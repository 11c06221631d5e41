#pragma once
// Internal to src/kernels: the vector of one instruction set, for the kernels compiled once per
// instruction set (gemm_kernels.hpp, pass_kernels.hpp). The translation unit that includes them
// (gemm_avx512.cpp, gemm_avx2.cpp, gemm_portable.cpp) defines their namespace, TYPEGRAD_GEMM_ISA,
// and `vector_bytes` in it.
//
// Everything here and in those headers is in that namespace and uses no inline function of
// another header (only compiler builtins): an inline function compiled with AVX-512 flags must
// not become the copy the linker keeps for code that runs on a CPU without AVX-512.
#ifndef TYPEGRAD_GEMM_ISA
#error "define TYPEGRAD_GEMM_ISA (this instruction set's namespace) before including the per-ISA kernels"
#endif
#include <cstddef>

namespace typegrad::kernels::TYPEGRAD_GEMM_ISA {

using std::size_t;

// A GCC vector of T, vector_bytes wide: arithmetic and comparisons work lane by lane as on T, so
// one template body serves a vector and, instantiated on T, its scalar tail.
template <class T>
struct vec_of {
  typedef T type __attribute__((vector_size(vector_bytes)));
};
template <class T>
using vec = typename vec_of<T>::type;
template <class T>
inline constexpr size_t lanes = vector_bytes / sizeof(T);

template <class T>
inline vec<T> load(const T* p) {
  vec<T> v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
inline void store(T* p, vec<T> v) {
  __builtin_memcpy(p, &v, sizeof v);
}

}  // namespace typegrad::kernels::TYPEGRAD_GEMM_ISA
