// The GEMM kernels for any CPU (no extra flags: SSE2 on x86-64): 16 registers of 16 bytes.
namespace typegrad::kernels::portable {
constexpr int vector_bytes = 16;
}
#define TYPEGRAD_GEMM_ISA portable
#include "gemm_kernels.hpp"
#include "pass_kernels.hpp"

namespace typegrad::kernels::portable {
const isa_kernels table{make_gemm<float, 6, 2, 12, 6>(256, 144, 2048), make_gemm<double, 6, 2, 12, 6>(256, 96, 1024),
                        make_passes<float>(), make_passes<double>()};
}
