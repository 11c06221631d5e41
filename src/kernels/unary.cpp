// The parallel driver of the elementwise unary map (include/typegrad/kernels/unary.hpp):
// the map's loop is instantiated per function in the header; this runs it chunk by chunk.
#include "../parallel/parallel_chunks.hpp"
#include "typegrad/kernels/unary.hpp"

namespace typegrad::kernels {

void for_each_chunk(std::size_t n, std::size_t cost_per_item, chunk_fn body, void* context) {
  if (n == 0) return;
  parallel_chunks(n, cost_per_item, [&](std::size_t lo, std::size_t hi) { body(context, lo, hi); });
}

}  // namespace typegrad::kernels
