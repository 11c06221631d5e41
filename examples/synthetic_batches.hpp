#pragma once
// Mini-batches of an in-memory labelled data set, for the examples that make their own synthetic
// data (sequence_cnn_1d, volume_cnn_3d). data::batcher serves IDX image files; this serves samples
// already held as one tensor (n, dims...) with labels (n) of class indices, in the same way:
// each epoch's order is data::epoch_order's permutation for (seed, epoch), the batch tensors are
// allocated once, a smaller last batch is kept, and batches have the members train::evaluate
// reads (images, labels, size()). per_class_accuracy tells which classes a model confuses.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <vector>

#include <typegrad/train.hpp>

namespace typegrad::examples {

template <typegrad::Scalar T, std::size_t R>
struct labelled_tensors {
  typegrad::tensor<T, R> samples;  // (n, dims...)
  typegrad::tensor<T, 1> labels;   // (n) class indices
  std::size_t size() const { return labels.size(); }
  std::size_t sample_size() const { return size() ? samples.size() / size() : 0; }
};

template <typegrad::Scalar T, std::size_t R>
class tensor_batcher {
 public:
  struct batch {
    const typegrad::tensor<T, R>& images;  // the name train::evaluate expects
    const typegrad::tensor<T, 1>& labels;
    std::size_t size() const { return labels.size(); }
  };

  // set must outlive the batcher.
  tensor_batcher(const labelled_tensors<T, R>& set, std::size_t batch_size, bool shuffle, std::uint64_t seed)
      : set_(&set), batch_size_(batch_size), shuffle_(shuffle), seed_(seed), order_(set.size()) {
    if (batch_size == 0 || set.size() == 0) throw std::invalid_argument("tensor_batcher: empty batch or data set");
    full_.emplace(make(std::min(batch_size, set.size())));
    if (const std::size_t rest = set.size() % batch_size; rest && set.size() > batch_size) partial_.emplace(make(rest));
  }

  std::size_t batches() const { return (set_->size() + batch_size_ - 1) / batch_size_; }

  class iterator {
   public:
    iterator(tensor_batcher* b, std::size_t i) : b_(b), i_(i) {}
    batch operator*() const { return b_->fill(i_); }
    iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator==(const iterator& o) const { return i_ == o.i_; }

   private:
    tensor_batcher* b_;
    std::size_t i_;
  };
  struct epoch_range {
    tensor_batcher* b;
    iterator begin() const { return {b, 0}; }
    iterator end() const { return {b, b->batches()}; }
  };
  // The batches of epoch e, in the order drawn for (seed, e) (the set's order without shuffling).
  epoch_range epoch(std::uint64_t e) {
    typegrad::data::epoch_order(order_, shuffle_, seed_, e);
    return {this};
  }

 private:
  struct slot {
    typegrad::tensor<T, R> images;
    typegrad::tensor<T, 1> labels;
  };
  slot make(std::size_t count) const {
    auto extents = set_->samples.extents();
    extents[0] = count;
    return {typegrad::tensor<T, R>(extents), typegrad::tensor<T, 1>({count})};
  }
  batch fill(std::size_t i) {
    const std::size_t first = i * batch_size_, count = std::min(batch_size_, set_->size() - first);
    slot& s = count == full_->labels.size() ? *full_ : *partial_;
    const std::size_t m = set_->sample_size();
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t j = order_[first + k];
      std::copy_n(set_->samples.data() + j * m, m, s.images.data() + k * m);
      s.labels[k] = set_->labels[j];
    }
    return {s.images, s.labels};
  }

  const labelled_tensors<T, R>* set_;
  std::size_t batch_size_;
  bool shuffle_;
  std::uint64_t seed_;
  std::vector<std::size_t> order_;
  std::optional<slot> full_, partial_;
};

// The test accuracy of each class (argmax of the logits, the first maximum on ties), for a forward
// program computing logits (batch, classes) with its parameters bound, over every batch.
template <class Program, class Batcher, typegrad::Variable X, typegrad::Variable Labels, typegrad::Expression Logits>
std::vector<double> per_class_accuracy(Program& program, Batcher& batches, X x, Labels labels, Logits logits,
                                       std::size_t classes) {
  std::vector<std::size_t> hits(classes), seen(classes);
  for (const auto& b : batches.epoch(0)) {
    program.bind(x, b.images).bind(labels, b.labels).run();
    const auto z = program.value(logits);
    for (std::size_t i = 0; i < b.size(); ++i) {
      const auto* row = z.data + i * classes;
      const auto label = std::size_t(b.labels[i]);
      seen[label] += 1;
      hits[label] += std::size_t(std::max_element(row, row + classes) - row) == label;
    }
  }
  std::vector<double> accuracy(classes);
  for (std::size_t k = 0; k < classes; ++k) accuracy[k] = seen[k] ? double(hits[k]) / double(seen[k]) : 0.0;
  return accuracy;
}

}  // namespace typegrad::examples
