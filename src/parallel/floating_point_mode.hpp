#pragma once
// Internal to src/: the RAII scope that puts the calling thread in typegrad's floating-point mode
// (flush-to-zero and denormals-are-zero unless set_flush_denormals(false); see
// include/typegrad/runtime/denormals.hpp) and restores the thread's own mode when it ends.
#include <atomic>

#if defined(__x86_64__) || defined(__SSE2__)
#include <xmmintrin.h>
#define TYPEGRAD_HAVE_MXCSR 1
#endif

namespace typegrad {

extern std::atomic<bool> flush_denormals_policy;

class floating_point_scope {
 public:
#ifdef TYPEGRAD_HAVE_MXCSR
  // FTZ is bit 15 of MXCSR, DAZ bit 6.
  static constexpr unsigned flush_bits = 0x8040;
  floating_point_scope() noexcept {
    if (!flush_denormals_policy.load(std::memory_order_relaxed)) return;
    saved_ = _mm_getcsr();
    if ((saved_ & flush_bits) != flush_bits) {
      _mm_setcsr(saved_ | flush_bits);
      restore_ = true;
    }
  }
  ~floating_point_scope() {
    if (restore_) _mm_setcsr(saved_);
  }
#endif
  floating_point_scope(const floating_point_scope&) = delete;
  floating_point_scope& operator=(const floating_point_scope&) = delete;

 private:
#ifdef TYPEGRAD_HAVE_MXCSR
  unsigned saved_ = 0;
  bool restore_ = false;
#endif
};

}  // namespace typegrad
