// The GEMM kernels for AVX2 with FMA (compiled with -mavx2 -mfma, see CMakeLists.txt): 16
// registers of 32 bytes.
namespace typegrad::kernels::avx2 {
constexpr int vector_bytes = 32;
}
#define TYPEGRAD_GEMM_ISA avx2
#include "gemm_kernels.hpp"
#include "pass_kernels.hpp"

namespace typegrad::kernels::avx2 {
const isa_kernels table{make_gemm<float, 6, 2, 12, 6>(256, 144, 2048), make_gemm<double, 6, 2, 12, 6>(256, 96, 1024),
                        make_passes<float>(), make_passes<double>()};
}
