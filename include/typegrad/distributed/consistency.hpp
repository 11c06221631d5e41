#pragma once
// Start-up for data-parallel training: every rank must train the same model from the same values.
//
//   distributed::check_consistent(world, params, program);  // same names, shapes and program everywhere
//   distributed::broadcast_parameters(world, params);       // rank 0's values on every rank
//
// check_consistent hashes the parameters' names and shapes (in order) and, when given, the
// program's lowered graph (every node's kind, label, rank and arguments), and compares the hashes
// across ranks in one small all-reduce. When they differ, the ranks exchange their layouts and
// every rank throws the same distributed_error, naming the ranks and the first parameter that
// differs ("rank 1: parameter 'dense1_w' has shape (3136, 64), rank 0's (3136, 128)"): a mistake
// becomes an error on every rank instead of collectives that never match (a hang) or mismatched
// buffers (garbage). Both functions are collective: every rank must call them, in the same order.
// gradient_reducer's constructor runs the same check.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "typegrad/distributed/world.hpp"
#include "typegrad/runtime/executor.hpp"
#include "typegrad/train/parameters.hpp"

namespace typegrad::distributed {

// A tensor as the check sees it.
struct tensor_layout {
  std::string_view name;
  shape dims;
};

// A 64-bit FNV-1a hash of a lowered program's nodes: equal programs hash equal on every rank.
std::uint64_t program_fingerprint(std::span<const runtime::node_spec> nodes);

// Returns when every rank gave the same layouts (and program fingerprint and node count); else
// throws distributed_error on every rank. `what` starts the message (the caller's name).
void check_consistent(const world& w, std::span<const tensor_layout> tensors, std::uint64_t program = 0,
                      std::size_t program_nodes = 0, std::string_view what = "distributed::check_consistent");

template <Scalar T, Variable... Vs>
std::array<tensor_layout, sizeof...(Vs)> layout_of(const train::parameter_set<T, Vs...>& params) {
  std::array<tensor_layout, sizeof...(Vs)> out;
  const auto entries = params.entries();
  for (std::size_t i = 0; i < entries.size(); ++i) out[i] = {entries[i].name, entries[i].value.shape};
  return out;
}

template <Scalar T, Variable... Vs>
void check_consistent(const world& w, const train::parameter_set<T, Vs...>& params) {
  check_consistent(w, layout_of(params));
}
template <Scalar T, Variable... Vs, class Program>
void check_consistent(const world& w, const train::parameter_set<T, Vs...>& params, const Program& program) {
  const auto& nodes = program.executor().nodes();
  check_consistent(w, layout_of(params), program_fingerprint(nodes), nodes.size());
}

// Copies root's parameter values to every rank (after checking that the sets agree), so that
// every rank starts from the same values whatever its seed.
template <Scalar T, Variable... Vs>
void broadcast_parameters(const world& w, train::parameter_set<T, Vs...>& params, int root = 0) {
  check_consistent(w, layout_of(params), 0, 0, "distributed::broadcast_parameters");
  for (const auto& e : params.entries()) w.broadcast(e.value, root);
}

}  // namespace typegrad::distributed
