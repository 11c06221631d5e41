#pragma once
// Internal to src/kernels: the widest vector of T the build targets, as a GCC vector extension,
// for kernels compiled once for that target (not per instruction set like gemm_kernels.hpp):
// 64 bytes with AVX-512, 32 with AVX, else 16 (SSE2, the portable build). Arithmetic and
// comparisons work lane by lane as on T, so one template body serves a vector block and its
// scalar tail. (Vectors wider than the target are lowered element by element for comparisons:
// a 64-byte vector made the portable build's 2x2 max-pool backward 13x slower.)
#include <cstddef>
#include <cstring>

// Such vectors are passed by value only between inlined functions of one file: GCC's note that
// they would change the ABI of a call where the wider instruction set is not enabled does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace typegrad::kernels {

#if defined(__AVX512F__)
inline constexpr std::size_t simd_bytes = 64;
#elif defined(__AVX__)
inline constexpr std::size_t simd_bytes = 32;
#else
inline constexpr std::size_t simd_bytes = 16;
#endif

template <class T> struct simd_types;
template <> struct simd_types<float> {
  typedef float vector __attribute__((vector_size(simd_bytes)));
  typedef int mask __attribute__((vector_size(simd_bytes)));  // what comparing two vectors gives
};
template <> struct simd_types<double> {
  typedef double vector __attribute__((vector_size(simd_bytes)));
  typedef long mask __attribute__((vector_size(simd_bytes)));  // (long: what GCC gives on LP64)
};
template <class T> using simd = typename simd_types<T>::vector;
template <class T> using simd_mask = typename simd_types<T>::mask;
template <class T> inline constexpr std::size_t simd_lanes = simd_bytes / sizeof(T);

template <class T>
inline simd<T> load_simd(const T* p) {
  simd<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
inline void store_simd(T* p, simd<T> v) {
  std::memcpy(p, &v, sizeof v);
}

// c ? a : b lane by lane, for a comparison's result c (each lane all ones or all zeros), as bit
// operations (SSE2 has no blend); the scalar overload serves the tails.
inline simd<float> lane_select(simd_mask<float> c, simd<float> a, simd<float> b) {
  return (simd<float>)(((simd_mask<float>)a & c) | ((simd_mask<float>)b & ~c));
}
inline simd<double> lane_select(simd_mask<double> c, simd<double> a, simd<double> b) {
  return (simd<double>)(((simd_mask<double>)a & c) | ((simd_mask<double>)b & ~c));
}
template <class T>
inline T lane_select(bool c, T a, T b) {
  return c ? a : b;
}

}  // namespace typegrad::kernels
