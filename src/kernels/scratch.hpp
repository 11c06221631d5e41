#pragma once
// Internal to src/: scratch memory for kernels, reused across calls (no allocation per run in
// steady state).
//
// A kernel takes a buffer from the pool for as long as it needs it and gives it back when the
// lease ends. A thread_local buffer would not do: while a task waits in a parallel loop, TBB may
// run another kernel's task on the same thread, which would then use the same buffer. Buffers
// only grow, and a take prefers the smallest free buffer that is large enough, so once the
// largest concurrent demand has been seen, takes never allocate again.
#include <algorithm>
#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace typegrad::kernels {

class scratch_pool {
  struct block {
    std::byte* data = nullptr;
    std::size_t bytes = 0;
    ~block() { release(); }
    void release() {
      if (data) ::operator delete[](data, std::align_val_t{alignment});
      data = nullptr;
      bytes = 0;
    }
  };

 public:
  static constexpr std::size_t alignment = 64;

  // A buffer of at least `count` elements of T, 64-byte aligned, returned to the pool on
  // destruction. Its contents are unspecified.
  template <class T>
  class lease {
   public:
    lease(scratch_pool& pool, std::unique_ptr<block> b) : pool_(&pool), block_(std::move(b)) {}
    lease() = default;  // an empty lease (nothing was asked for): data() is null
    lease(lease&& other) noexcept = default;
    lease& operator=(lease&&) = delete;
    ~lease() {
      if (block_) pool_->give_back(std::move(block_));
    }
    T* data() const { return block_ ? reinterpret_cast<T*>(block_->data) : nullptr; }

   private:
    scratch_pool* pool_ = nullptr;
    std::unique_ptr<block> block_;
  };

  template <class T>
  lease<T> take(std::size_t count) {
    const std::size_t bytes = std::max<std::size_t>(count, 1) * sizeof(T);
    std::unique_ptr<block> b;
    {
      std::lock_guard lock(mutex_);
      // The smallest free block that fits; else the largest (it is grown below).
      std::size_t best = free_.size();
      for (std::size_t i = 0; i < free_.size(); ++i) {
        const bool fits = free_[i]->bytes >= bytes;
        if (best == free_.size()) {
          best = i;
          continue;
        }
        const bool best_fits = free_[best]->bytes >= bytes;
        if ((fits && (!best_fits || free_[i]->bytes < free_[best]->bytes)) ||
            (!fits && !best_fits && free_[i]->bytes > free_[best]->bytes))
          best = i;
      }
      if (best < free_.size()) {
        b = std::move(free_[best]);
        free_.erase(free_.begin() + std::ptrdiff_t(best));
      }
    }
    if (!b) b = std::make_unique<block>();
    if (b->bytes < bytes) {
      b->release();
      b->data = static_cast<std::byte*>(::operator new[](bytes, std::align_val_t{alignment}));
      b->bytes = bytes;
    }
    return lease<T>(*this, std::move(b));
  }

 private:
  void give_back(std::unique_ptr<block> b) {
    std::lock_guard lock(mutex_);
    free_.push_back(std::move(b));
  }

  std::mutex mutex_;
  std::vector<std::unique_ptr<block>> free_;
};

// The process-wide pool the kernels share.
inline scratch_pool& scratch() {
  static scratch_pool pool;
  return pool;
}

}  // namespace typegrad::kernels
