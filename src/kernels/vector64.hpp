#pragma once
// Internal to src/kernels: a 64-byte vector of T as a GCC vector extension, for kernels that are
// compiled once for the build's target (not per instruction set like gemm_kernels.hpp): GCC maps
// it to one AVX-512 register, two AVX2 or four SSE ones. Arithmetic, comparisons and ?: work lane
// by lane as on T, so one template body can serve a vector block and its scalar tail.
#include <cstring>

// Such vectors passed by value between inlined functions of one file change no ABI; GCC's note
// that they would where AVX-512 is not enabled does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace typegrad::kernels {

template <class T> struct vector64;
template <> struct vector64<float> { typedef float type __attribute__((vector_size(64))); };
template <> struct vector64<double> { typedef double type __attribute__((vector_size(64))); };
template <class T> using vec64 = typename vector64<T>::type;
template <class T> inline constexpr std::size_t vec64_lanes = 64 / sizeof(T);

template <class T>
inline vec64<T> load64(const T* p) {
  vec64<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
inline void store64(T* p, vec64<T> v) {
  std::memcpy(p, &v, sizeof v);
}

}  // namespace typegrad::kernels
