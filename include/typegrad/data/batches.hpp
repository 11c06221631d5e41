#pragma once
// Mini-batches of a labelled image data set, filled into tensors allocated once.
//
//   data::batcher<float, 4> batches(train, 64, {.seed = 1});      // images (64, 28, 28, 1)
//   for (std::size_t epoch = 0; epoch < epochs; ++epoch)
//     for (const auto& b : batches.epoch(epoch)) {                 // shuffled for this epoch
//       program.bind(x, b.images).bind(labels, b.labels).run();
//       ...
//     }
//
// R = 2 gives images as (batch, rows * columns) (for dense layers), R = 4 as (batch, rows, columns,
// 1), channel-last as the conv ops expect. Labels are (batch) class indices in the scalar type T,
// what softmax_cross_entropy takes.
//
// Order: with shuffle on, epoch e visits the samples in a permutation drawn from
// make_generator({seed, e}) by Fisher-Yates (i from n-1 down to 1 swaps i with below(i + 1)), so a
// seed fixes every epoch's order. Without shuffle the order is the file's.
//
// Shards (data-parallel training, typegrad::distributed): with .shard = {.index = r, .count = P},
// each batch of the epoch is a global batch of P * batch_size samples (consecutive in the epoch's
// order, which is the same on every shard), and shard r fills only its slice, samples
// [r * batch_size, (r + 1) * batch_size) of it. A shorter last global batch of m samples is split
// as evenly as possible (shard r takes [r * m / P, (r + 1) * m / P), the sizes differ by at most
// one; batch::global_size is m), so the P shards together visit exactly the samples of one
// process with batch P * batch_size, each once. Only when 0 < m < P (some shard would get no
// sample) is that last batch dropped, as last_batch::drop does. count = 1 is the plain batcher.
//
// Memory: the batch tensors are allocated at construction (and a second, smaller pair for a
// partial last batch); filling a batch allocates nothing. A batch's tensors are overwritten by the
// next fill: bind them again each step (binding is cheap; the program re-plans only when the
// shape changes, i.e. around a partial last batch).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <optional>
#include <span>
#include <vector>

#include <fmt/format.h>

#include "typegrad/data/idx.hpp"
#include "typegrad/tensor.hpp"

namespace typegrad::data {

// What to do with the samples left over when the batch size does not divide the data set.
enum class last_batch {
  keep,  // one smaller last batch
  drop,  // skip them (every batch has the same shape, so the program never re-plans)
};

// This process's part of every batch: shard `index` of `count` (see above).
struct shard_spec {
  std::size_t index = 0;
  std::size_t count = 1;
};

struct batch_options {
  bool shuffle = true;
  std::uint64_t seed = 0;
  data::last_batch last = last_batch::keep;
  shard_spec shard = {};
};

// Fills order (the identity when shuffle is false, else the permutation for (seed, epoch)).
void epoch_order(std::vector<std::size_t>& order, bool shuffle, std::uint64_t seed, std::uint64_t epoch);

template <Scalar T, std::size_t R>
class batcher {
  static_assert(R == 2 || R == 4, "batcher<T, R>: R must be 2 (batch, pixels) or 4 (batch, rows, columns, 1)");

 public:
  // One filled batch: references into the batcher's tensors, valid until the next fill.
  struct batch {
    const tensor<T, R>& images;
    const tensor<T, 1>& labels;
    std::size_t index;  // position in the epoch
    std::size_t global_size = 0;             // samples of this batch over all shards
    std::span<const std::size_t> samples{};  // the data set's indices of this batch's samples
    std::size_t size() const { return labels.size(); }
  };

  // ds must outlive the batcher.
  batcher(const labelled_images& ds, std::size_t batch_size, batch_options options = {})
      : ds_(&ds), batch_size_(batch_size), options_(options) {
    if (batch_size == 0) throw std::invalid_argument("batcher: the batch size must be positive");
    const auto [r, shards] = options.shard;
    if (shards == 0 || r >= shards)
      throw std::invalid_argument(fmt::format("batcher: shard {} of {} does not exist", r, shards));
    const std::size_t n = ds.size(), global = batch_size * shards;
    full_batches_ = n / global;
    rest_ = n % global;
    if (options.last == last_batch::drop || rest_ < shards) rest_ = 0;
    batches_ = full_batches_ + (rest_ ? 1 : 0);
    const std::size_t last = (r + 1) * rest_ / shards - r * rest_ / shards;  // this shard's part of rest_
    full_ = make(full_batches_ ? batch_size : last);
    if (full_batches_ && rest_ && last != batch_size) partial_ = make(last);
    order_.resize(n);
    epoch_order(order_, options_.shuffle, options_.seed, 0);
  }

  // Samples per batch of this shard, and of a whole batch over all shards (the same without shards).
  std::size_t batch_size() const { return batch_size_; }
  std::size_t global_batch_size() const { return batch_size_ * options_.shard.count; }
  // Batches per epoch, and the samples they cover (over all shards).
  std::size_t batches() const { return batches_; }
  std::size_t samples() const { return full_batches_ * global_batch_size() + rest_; }

  // Sets the sample order for an epoch (the order vector is reused).
  void set_epoch(std::uint64_t epoch) { epoch_order(order_, options_.shuffle, options_.seed, epoch); }
  const std::vector<std::size_t>& order() const { return order_; }

  // Fills batch i (0 <= i < batches()) of the current order.
  batch fill(std::size_t i) {
    if (i >= batches_) throw std::out_of_range("batcher::fill: batch index beyond batches()");
    const auto [r, shards] = options_.shard;
    const bool full = i < full_batches_;
    const std::size_t global = full ? global_batch_size() : rest_;
    const std::size_t first = i * global_batch_size() + (full ? r * batch_size_ : r * rest_ / shards);
    const std::size_t count = full ? batch_size_ : (r + 1) * rest_ / shards - r * rest_ / shards;
    auto& slot = count == full_.labels.size() ? full_ : *partial_;
    detail::normalise_rows<T>(slot.images.data(), *ds_, order_, first, count);
    for (std::size_t k = 0; k < count; ++k) slot.labels[k] = T(ds_->labels[order_[first + k]]);
    return {slot.images, slot.labels, i, global, std::span<const std::size_t>(order_).subspan(first, count)};
  }

  // The batches of one epoch as a range (sets the epoch's order first).
  class iterator {
   public:
    using value_type = batch;
    using difference_type = std::ptrdiff_t;
    iterator(batcher* b, std::size_t i) : b_(b), i_(i) {}
    batch operator*() const { return b_->fill(i_); }
    iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator==(const iterator& o) const { return i_ == o.i_; }

   private:
    batcher* b_;
    std::size_t i_;
  };
  struct epoch_range {
    batcher* b;
    iterator begin() const { return {b, 0}; }
    iterator end() const { return {b, b->batches()}; }
  };
  epoch_range epoch(std::uint64_t e) {
    set_epoch(e);
    return {this};
  }

 private:
  struct slot {
    tensor<T, R> images;
    tensor<T, 1> labels;
  };
  slot make(std::size_t count) const {
    std::array<std::size_t, R> extents{};
    extents[0] = count;
    if constexpr (R == 2) {
      extents[1] = ds_->sample_size();
    } else {
      const auto s = ds_->sample_shape();
      std::copy(s.begin(), s.end(), extents.begin() + 1);
    }
    return {tensor<T, R>(extents), tensor<T, 1>({count})};
  }

  const labelled_images* ds_;
  std::size_t batch_size_;
  batch_options options_;
  std::size_t batches_ = 0;
  std::size_t full_batches_ = 0;  // batches of global_batch_size() samples
  std::size_t rest_ = 0;          // samples of the shorter last batch (0: none)
  slot full_;
  std::optional<slot> partial_;
  std::vector<std::size_t> order_;
};

}  // namespace typegrad::data
