// The flush-to-zero policy of include/typegrad/runtime/denormals.hpp.
#include "typegrad/runtime/denormals.hpp"

#include <atomic>

#include "floating_point_mode.hpp"

namespace typegrad {

std::atomic<bool> flush_denormals_policy{true};

void set_flush_denormals(bool on) noexcept { flush_denormals_policy.store(on, std::memory_order_relaxed); }
bool flush_denormals() noexcept { return flush_denormals_policy.load(std::memory_order_relaxed); }

}  // namespace typegrad
