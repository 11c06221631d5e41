#pragma once
// The training loop's other parts in data-parallel training: this rank's shard of the data, the
// progress display on rank 0 only, and metrics over all ranks.
//
//   data::batcher<float, 4> batches(train, 64, {.seed = 1, .shard = distributed::shard_of(world)});
//   train::progress bar(distributed::progress_mode_for(world, train::progress_mode::automatic), ...);
//   auto r = distributed::evaluate(world, eval, test_batches, x, labels, loss, logits);  // all ranks' samples
//
// Evaluation: give each rank a shard of the test set too (an unshuffled, sharded batcher); the
// result is the same as one process evaluating the whole set (to rounding).
#include <cstddef>
#include <cstdint>

#include "typegrad/data/batches.hpp"
#include "typegrad/distributed/world.hpp"
#include "typegrad/train/metrics.hpp"
#include "typegrad/train/progress.hpp"

namespace typegrad::distributed {

// This rank's shard of every batch (data::batch_options::shard).
inline data::shard_spec shard_of(const world& w) { return {std::size_t(w.rank()), std::size_t(w.size())}; }

// `mode` on rank 0, quiet on the others: one progress display for the job.
inline train::progress_mode progress_mode_for(const world& w, train::progress_mode mode) {
  return w.root() ? mode : train::progress_mode::quiet;
}

// Combines every rank's evaluation: loss and accuracy weighted by each rank's samples. Collective.
inline train::evaluation all_reduce(const world& w, const train::evaluation& local) {
  const double n = double(local.samples);
  double v[3] = {local.loss * n, local.accuracy * n, n};
  w.all_sum(v);
  if (v[2] == 0) return {};
  return {v[0] / v[2], v[1] / v[2], std::size_t(v[2])};
}
// The accuracy of every rank's predictions together. Collective.
inline double all_reduce(const world& w, const train::accuracy_meter& local) {
  double v[2] = {double(local.correct()), double(local.total())};
  w.all_sum(v);
  return v[1] > 0 ? v[0] / v[1] : 0.0;
}

// train::evaluate over this rank's (sharded) batches, combined over all ranks. Collective.
template <class Program, class Batcher, Variable X, Variable Labels, Expression Loss, Expression Logits>
train::evaluation evaluate(const world& w, Program& program, Batcher& batches, X x, Labels labels, Loss loss,
                           Logits logits, std::uint64_t epoch = 0) {
  return all_reduce(w, train::evaluate(program, batches, x, labels, loss, logits, epoch));
}

}  // namespace typegrad::distributed
