// The GEMM kernels for AVX-512 (compiled with -mavx512f -mavx512vl -mavx512bw -mavx512dq -mfma
// -mavx2, see CMakeLists.txt): 32 registers of 64 bytes.
namespace typegrad::kernels::avx512 {
constexpr int vector_bytes = 64;
}
#define TYPEGRAD_GEMM_ISA avx512
#include "gemm_kernels.hpp"
#include "pass_kernels.hpp"

namespace typegrad::kernels::avx512 {
// Narrow and gathered products of 2 vectors (32 floats) take 12 rows, like the GEMM's tile: conv
// (a)'s weight gradient (9 rows of taps x 32 channels) then runs as one tile instead of 6 + 3 rows
// (50 -> 59 GFLOP/s on one core of a Xeon model 167).
const isa_kernels table{make_gemm<float, 12, 2, 12, 12, 8, 6>(384, 144, 2048),
                        make_gemm<double, 12, 2, 12, 6, 8, 6>(256, 96, 1024), make_passes<float>(),
                        make_passes<double>()};
}
