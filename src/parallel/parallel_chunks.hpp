#pragma once
// Internal to src/: the one parallel-loop helper, for the kernels and everything else in src/. A
// bottom-layer utility, not a kernel (docs/architecture.md, "Layers"); in namespace typegrad, so
// every part of the library calls it unqualified.
#include <algorithm>
#include <cstddef>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "floating_point_mode.hpp"

namespace typegrad {

// Below this much work (items x cost per item, in elements) a kernel runs serially: a TBB task
// costs more than the work.
inline constexpr std::size_t serial_cutoff = 1 << 15;

// Calls body(lo, hi) over [0, n) in chunks of about serial_cutoff / cost_per_item items.
// simple_partitioner with a fixed grain: the chunking, and so any per-chunk arithmetic order,
// does not depend on the number of threads, which keeps results identical to a 1-thread run.
// Every chunk runs in typegrad's floating-point mode (floating_point_mode.hpp), on whichever
// thread takes it, so the result does not depend on which threads run the chunks either.
template <class F>
void parallel_chunks(std::size_t n, std::size_t cost_per_item, F&& body) {
  cost_per_item = std::max<std::size_t>(1, cost_per_item);
  if (n * cost_per_item < serial_cutoff || n < 2) {
    floating_point_scope mode;
    body(std::size_t{0}, n);
    return;
  }
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, std::max<std::size_t>(1, serial_cutoff / cost_per_item)),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      floating_point_scope mode;
                      body(r.begin(), r.end());
                    },
                    tbb::simple_partitioner{});
}

}  // namespace typegrad
