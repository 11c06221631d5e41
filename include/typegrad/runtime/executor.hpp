#pragma once
// The type-erased half of a program, compiled once in src/runtime/executor.cpp: it knows nodes
// only as indices, shape rules and kernel pointers. The typed half (program.hpp) lowers a graph
// type into this form; keeping scheduling and buffer planning out of the templates keeps
// user compile times down.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "typegrad/core/notation.hpp"
#include "typegrad/core/shape.hpp"
#include "typegrad/kernels/block.hpp"

namespace typegrad::runtime {

enum class node_kind { leaf, constant, op };

struct node_spec {
  node_kind kind = node_kind::op;
  std::string label;                    // leaf name, literal, or op label such as "sum[axes=(1)]"
  std::vector<std::size_t> inputs;      // indices of argument nodes (earlier in the list)
  double constant_value = 0;            // for constants
  std::size_t rank = 0;                 // compile-time rank
  bool adjoint = false;                 // part of a gradient (not of the forward outputs)
  notation::op_form form;               // how the op prints: a + b, -a, else label(args)
  shape (*infer_shape)(input_shapes) = nullptr;
  // For ops whose output can be their first argument's elements unchanged (a reshape, a sum_to
  // between equal shapes): whether it is, for these shapes. Such a node becomes a view of its
  // argument's storage: no kernel runs and no buffer is planned for it.
  bool (*is_view)(const shape& out, input_shapes in) = nullptr;
  static constexpr std::size_t no_argument = std::size_t(-1);
  std::size_t checked_argument = no_argument;  // the argument the op's check_fn validates
  // The argument (an op node) that this node's kernel computes on the fly from that node's own
  // arguments, which replace it among the kernel's inputs (fusion_rule, ops/op_base.hpp); or, with
  // fused_source, the node the kernel reads in its place. The argument's node is then not
  // computed unless something else reads it.
  std::size_t fused_argument = no_argument;
  std::size_t fused_source = no_argument;
  // Optionally one level deeper: this argument of the fused argument is spliced in by its own
  // arguments too (relu(conv(x, w) + b) reads x, w, b) unless the program computes it anyway
  // (another node or an output reads it); the kernel tells the two apart by its input count.
  std::size_t fused_inner_argument = no_argument;
  unsigned unused_arguments = 0;  // bit k: the fused kernel does not read argument k
  // Bit k set: argument k is read for its shape only (sum_to's `like`, ...): its value need not be
  // computed for this node, and its buffer may be reused before this node runs.
  unsigned shape_only_arguments = 0;
  // For an op with a block function (it may join elementwise regions): whether, for these shapes,
  // its operands broadcast as NumPy's right-aligned rule says (nullptr: they always do).
  bool (*block_applies)(const shape& out, input_shapes in) = nullptr;
  // For a sum over rows (sum_to, sum, mean): whether, for these shapes, it adds every row of its
  // first argument into one row of its last extent, as kernels::add_rows does (it may then end an
  // elementwise region); mean_of_rows: the sum is then scaled by 1 / rows, as the op does.
  bool (*sums_rows)(const shape& out, input_shapes in) = nullptr;
  bool mean_of_rows = false;
};

template <class T>
using kernel_fn = void (*)(view<T>, inputs<T>);
// An op's value precondition on its checked argument (given with all arguments' shapes).
template <class T>
using check_fn = void (*)(view<const T>, input_shapes);
// An elementwise op's block function (kernels/block.hpp): out (rows x cols) from its operands.
template <class T>
using block_fn = void (*)(T* out, const kernels::block_operand<T>* in, std::size_t rows, std::size_t cols);

template <class T>
class executor {
 public:
  // checks: per node, the op's value precondition or nullptr (an empty vector: none at all);
  // blocks: per node, its op's block function or nullptr (an empty vector: no regions).
  executor(std::vector<node_spec> nodes, std::vector<kernel_fn<T>> kernels, std::vector<std::size_t> outputs,
           std::vector<check_fn<T>> checks = {}, std::vector<block_fn<T>> blocks = {});
  ~executor();
  executor(executor&&) noexcept;
  executor& operator=(executor&&) noexcept;

  // Binds a leaf (by node index) to caller-owned data; the data is read, never copied.
  void bind(std::size_t leaf, view<const T> data);
  // Runs forward and adjoint nodes; re-plans shapes and buffers only when a leaf's shape changed.
  // Strong guarantee: when run() throws (a bad binding, a shape or value error, a kernel or a
  // user op that throws, bad_alloc), the executor is left as it was, and the next run() gives
  // bitwise the results of a freshly constructed executor. Only the outputs' contents are lost.
  void run();
  view<const T> output(std::size_t i) const;

  // Debug mode (like PyTorch's anomaly detection or JAX's debug_nans): runs the nodes one by one
  // and throws value_error naming the first leaf or node whose values contain NaN or inf, with
  // its printed expression and whether it is a forward or an adjoint node. Off (the default), it
  // costs nothing; on, each run also reads every node's output once.
  void set_check_finite(bool on);
  bool check_finite() const;

  // Profiling (as PyTorch's profiler does per op, here per node of the compiled program): runs
  // the nodes one at a time in topological order, each kernel still parallel inside, and adds
  // each kernel's wall time to its node. profile() lists the nodes that ran, slowest first, with
  // milliseconds per run and share of the kernels' total; profile_ms() is the same per node index
  // (0 for nodes no kernel ran for: leaves, views, values computed inside another node's kernel);
  // reset_profile() starts the count again.
  // Off (the default), it costs nothing; on, independent nodes no longer overlap.
  void set_profiling(bool on);
  bool profiling() const;
  std::string profile() const;
  std::vector<double> profile_ms() const;
  void reset_profile();

  // Output-ready hook (e.g. to start sending a gradient while the rest of the backward pass
  // runs: typegrad::distributed): fn(i) is called once per output i in every run(), as soon as
  // output i's values are final: right after the kernel that writes its storage has finished (a
  // view's root's kernel, for an output that is a view), on the thread that ran that kernel; for
  // an output no kernel writes (a leaf, a constant or a view of one), on the calling thread
  // before any kernel runs. Calls may be concurrent when independent nodes run in parallel, and
  // run in the kernels' floating-point mode. Later nodes may still read the output: fn must not
  // write it. A throwing fn fails the run like a throwing kernel (run()'s guarantee holds).
  // An empty fn (the default) removes the hook; results never depend on it. Not during run().
  using output_ready_fn = std::function<void(std::size_t output)>;
  void set_output_ready(output_ready_fn fn);

  // 0 = TBB's default (all cores). Results do not depend on this number.
  void set_threads(int threads);
  int threads() const;

  std::size_t node_count() const;
  std::size_t op_count() const;
  std::size_t plan_count() const;      // how many times shapes/buffers were planned
  std::size_t arena_bytes() const;     // the reused intermediate storage
  std::size_t unplanned_bytes() const; // what it would take without buffer reuse
  const std::vector<node_spec>& nodes() const;
  shape node_shape(std::size_t i) const;  // after a run
  std::string listing() const;         // one line per node: %i = op(%a, %b) : shape
  std::string dot() const;             // Graphviz; adjoint nodes drawn differently

 private:
  struct state;
  std::unique_ptr<state> s_;
};

// Elementwise regions (src/runtime/executor.cpp): on by default; off, executors constructed
// afterwards run every node by itself (for tests that compare the two bitwise).
void set_elementwise_regions(bool on);

extern template class executor<float>;
extern template class executor<double>;

}  // namespace typegrad::runtime
