#pragma once
// Metrics: accuracy from logits and labels, running means, and evaluation over a data set.
//
//   train::accuracy_meter acc;           // counts argmax(logits) == label
//   train::mean_meter loss_mean;         // a sample-weighted mean
//   acc.add(program.value(logits), b.labels.as_view());
//   loss_mean.add(program.scalar(loss), b.size());
//
// evaluate(program, batches, x, labels, loss, logits) runs a forward program over every batch of
// a batcher (in the file's order for an unshuffled batcher) and returns the mean loss and the
// accuracy. The program must compute loss and logits (e.g. compile<float>(loss, logits)) and have
// its parameters bound (params.bind(program)); x and labels are bound here, batch by batch:
//
//   auto eval = compile<float>(loss, logits);                      // no gradients
//   params.bind(eval);
//   data::batcher<float, 2> test_batches(test, 1000, {.shuffle = false});
//   auto result = train::evaluate(eval, test_batches, x, labels, loss, logits);
//   fmt::print("test loss {:.4f} accuracy {:.4f}\n", result.loss, result.accuracy);
#include <cstddef>
#include <cstdint>

#include "typegrad/core/expression.hpp"
#include "typegrad/tensor.hpp"

namespace typegrad::train {

// The number of positions whose largest logit (the first one on ties) is at the label's index.
// logits (N..., C), labels (N...): shape_error if they do not fit, value_error for a label that
// is not an integer in [0, C).
template <Scalar T>
std::size_t correct_predictions(view<const T> logits, view<const T> labels);

class accuracy_meter {
 public:
  template <Scalar T>
  void add(view<const T> logits, view<const T> labels) {
    correct_ += correct_predictions<T>(logits, labels);
    total_ += labels.size();
  }
  double value() const { return total_ ? double(correct_) / double(total_) : 0.0; }
  std::size_t correct() const { return correct_; }
  std::size_t total() const { return total_; }
  void reset() { correct_ = total_ = 0; }

 private:
  std::size_t correct_ = 0, total_ = 0;
};

// A weighted mean: add(mean of a batch, its size) gives the mean over all samples.
class mean_meter {
 public:
  void add(double value, double weight = 1) {
    sum_ += value * weight;
    weight_ += weight;
  }
  double value() const { return weight_ > 0 ? sum_ / weight_ : 0.0; }
  double weight() const { return weight_; }
  void reset() { sum_ = weight_ = 0; }

 private:
  double sum_ = 0, weight_ = 0;
};

struct evaluation {
  double loss = 0;
  double accuracy = 0;
  std::size_t samples = 0;
};

template <class Program, class Batcher, Variable X, Variable Labels, Expression Loss, Expression Logits>
evaluation evaluate(Program& program, Batcher& batches, X x, Labels labels, Loss loss, Logits logits,
                    std::uint64_t epoch = 0) {
  accuracy_meter acc;
  mean_meter mean;
  for (const auto& b : batches.epoch(epoch)) {
    program.bind(x, b.images).bind(labels, b.labels).run();
    acc.add(program.value(logits), b.labels.as_view());
    mean.add(double(program.scalar(loss)), double(b.size()));
  }
  return {mean.value(), acc.value(), acc.total()};
}

extern template std::size_t correct_predictions<float>(view<const float>, view<const float>);
extern template std::size_t correct_predictions<double>(view<const double>, view<const double>);

}  // namespace typegrad::train
