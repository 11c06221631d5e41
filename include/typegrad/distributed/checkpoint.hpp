#pragma once
// Checkpoints in data-parallel training: rank 0 writes, every rank reads.
//
//   distributed::save_checkpoint(world, "net.safetensors", params, opt, metadata);
//   distributed::load_checkpoint(world, "net.safetensors", params, opt);
//
// Saving: rank 0 alone writes the file, with train::save_checkpoint's atomic save (temporary
// file, fsync, rename): a job killed at any moment leaves the previous checkpoint or the new one.
// Loading: rank 0 reads and validates the file (train::load_checkpoint), then every rank gets
// its values, the optimizer's state, step count and learning rate, and the metadata, so a
// checkpoint written by a run of P ranks (or by a single process) loads into any number of ranks,
// with the file on rank 0's machine only. Both are collective. When rank 0's save or load fails,
// every rank throws: io_error or data_error as rank 0 did (with rank 0's message), rank 0 its
// own exception; nothing is left half-done (the parameters keep their values on every rank).
#include <filesystem>
#include <functional>

#include "typegrad/distributed/consistency.hpp"
#include "typegrad/distributed/world.hpp"
#include "typegrad/train/checkpoint.hpp"

namespace typegrad::distributed {

namespace detail {
// Runs fn on root; then every rank returns, or throws what fn threw (see above). Collective.
void on_root(const world& w, const std::function<void()>& fn, int root = 0);
void broadcast_metadata(const world& w, train::checkpoint_metadata& metadata, int root = 0);
template <Scalar T>
void broadcast_optimizer(const world& w, train::optimizer<T>& opt, int root = 0) {
  for (const auto& e : opt.state()) w.broadcast(e.value, root);
  double lr = opt.lr();
  std::uint64_t steps = opt.steps();
  w.broadcast_bytes(&lr, sizeof lr, root);
  w.broadcast_bytes(&steps, sizeof steps, root);
  opt.set_lr(lr);
  opt.set_steps(steps);
}
}  // namespace detail

template <Scalar T, Variable... Vs>
void save_checkpoint(const world& w, const std::filesystem::path& path, const train::parameter_set<T, Vs...>& params,
                     train::checkpoint_metadata metadata = {}) {
  detail::on_root(w, [&] { train::save_checkpoint(path, params, std::move(metadata)); });
}
template <Scalar T, Variable... Vs>
void save_checkpoint(const world& w, const std::filesystem::path& path, const train::parameter_set<T, Vs...>& params,
                     const train::optimizer<T>& opt, train::checkpoint_metadata metadata = {}) {
  detail::on_root(w, [&] { train::save_checkpoint(path, params, opt, std::move(metadata)); });
}

template <Scalar T, Variable... Vs>
train::checkpoint_metadata load_checkpoint(const world& w, const std::filesystem::path& path,
                                           train::parameter_set<T, Vs...>& params, train::load_options options = {}) {
  check_consistent(w, layout_of(params), 0, 0, "distributed::load_checkpoint");
  train::checkpoint_metadata metadata;
  detail::on_root(w, [&] { metadata = train::load_checkpoint(path, params, options); });
  for (const auto& e : params.entries()) w.broadcast(e.value);
  detail::broadcast_metadata(w, metadata);
  return metadata;
}
template <Scalar T, Variable... Vs>
train::checkpoint_metadata load_checkpoint(const world& w, const std::filesystem::path& path,
                                           train::parameter_set<T, Vs...>& params, train::optimizer<T>& opt,
                                           train::load_options options = {}) {
  check_consistent(w, layout_of(params), 0, 0, "distributed::load_checkpoint");
  train::checkpoint_metadata metadata;
  detail::on_root(w, [&] { metadata = train::load_checkpoint(path, params, opt, options); });
  for (const auto& e : params.entries()) w.broadcast(e.value);
  detail::broadcast_optimizer(w, opt);
  detail::broadcast_metadata(w, metadata);
  return metadata;
}

}  // namespace typegrad::distributed
