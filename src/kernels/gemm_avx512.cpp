// The GEMM kernels for AVX-512 (compiled with -mavx512f -mavx512vl -mavx512bw -mavx512dq -mfma
// -mavx2, see CMakeLists.txt): 32 registers of 64 bytes.
namespace typegrad::kernels::avx512 {
constexpr int vector_bytes = 64;
}
#define TYPEGRAD_GEMM_ISA avx512
#include "gemm_kernels.hpp"

namespace typegrad::kernels::avx512 {
const isa_kernels table{make_gemm<float, 12, 2, 12, 6, 8, 6>(384, 144, 2048),
                        make_gemm<double, 12, 2, 12, 6, 8, 6>(256, 96, 1024)};
}
