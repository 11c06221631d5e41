// Shape inference, liveness-based buffer planning and TBB execution of a lowered program.
#include "typegrad/runtime/executor.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <new>
#include <optional>

#include <fmt/format.h>
#include <tbb/flow_graph.h>
#include <tbb/task_arena.h>

#include "../parallel/floating_point_mode.hpp"
#include "../parallel/parallel_chunks.hpp"
#include "typegrad/kernels/broadcast.hpp"
#include "typegrad/tensor.hpp"

namespace typegrad::runtime {

namespace {
constexpr std::size_t alignment_elems = 64;  // 64-byte alignment for both float and double

std::size_t round_up(std::size_t n) { return (n + alignment_elems - 1) / alignment_elems * alignment_elems; }

// A dense bitset per node: bit j of ancestors[i] set when node i (transitively) reads node j.
struct reachability {
  std::size_t words = 0;
  std::vector<std::uint64_t> bits;
  bool test(std::size_t i, std::size_t j) const { return bits[i * words + j / 64] >> (j % 64) & 1; }
};
}  // namespace

template <class T>
struct executor<T>::state {
  std::vector<node_spec> nodes;
  std::vector<kernel_fn<T>> kernels;
  std::vector<check_fn<T>> checks;        // per node, may be nullptr
  std::vector<std::size_t> outputs;
  // What each node reads when it runs: its inputs, except that a node which computes a fused
  // argument on the fly (node_spec::fused_argument) reads that argument's own argument instead.
  // Scheduling, liveness and buffer planning follow args; printing and shape rules follow inputs.
  std::vector<std::vector<std::size_t>> args;
  // args less those read for their shape only (node_spec::shape_only_arguments): the edges that
  // order the run, keep values live and keep buffers from being reused.
  std::vector<std::vector<std::size_t>> deps;
  std::vector<bool> live;                 // needed by an output, through deps
  std::vector<std::vector<std::size_t>> consumers;  // live readers, through deps
  std::vector<bool> is_output;
  reachability ancestors;

  std::vector<std::size_t> leaves;        // the leaf nodes
  std::vector<std::size_t> checked;       // op nodes with a value precondition on an argument
  std::vector<std::size_t> kernel_order;  // op nodes that run a kernel (not views), this plan
  bool pointers_stale = true;             // a bind or a plan since the last refresh_pointers
  std::vector<view<const T>> bound;       // per node (leaves only)
  std::vector<bool> is_bound;
  std::vector<T> constants;               // per node (constants only)
  std::vector<shape> shapes;              // per node, current plan
  std::vector<shape> planned_leaf_shapes; // per node (leaves only)
  bool planned = false;
  std::size_t plans = 0;

  // Per node, the node whose storage it shares when this plan makes it a view (an op whose output
  // is its first argument's elements unchanged: a same-shape sum_to, a reshape), else no_view.
  // A view runs no kernel and takes no block; its root's block lives until the view's readers finish.
  static constexpr std::size_t no_view = std::size_t(-1);
  std::vector<std::size_t> view_root;
  std::vector<std::vector<std::size_t>> readers;  // per op node: consumers, and its views' consumers
  std::vector<bool> pinned;                       // per node: an output, or viewed by an output
  std::vector<std::size_t> offsets;       // per op node, into the arena
  detail::aligned_array<T> arena;
  std::size_t arena_capacity = 0, arena_used = 0, unplanned = 0;
  std::vector<T*> data;                   // per node
  std::vector<std::vector<view<const T>>> input_views;  // per op node, refreshed with the pointers

  // Elementwise regions (see "Elementwise regions" below): per region, its nodes and how their
  // operands are found; per plan, whether its blocks apply and how each input covers a block.
  std::vector<block_fn<T>> blocks;  // per node, its op's block function or nullptr
  struct region {
    std::size_t root = 0;
    std::vector<std::size_t> members;  // topological order, root last
    std::vector<std::size_t> inputs;   // the nodes outside it whose values it reads (= args[root])
    std::vector<std::vector<std::size_t>> reads;  // per member: the nodes its kernel reads, in order
    // Per member and argument slot: the member it reads (< members.size()), or members.size() +
    // an index into inputs, or shape_only (an argument read for its shape: no value).
    std::vector<std::vector<std::size_t>> operands;
    // Per member: whether its value is also stored in its own node's storage, for readers outside
    // the region (all of them after the node that runs it).
    std::vector<bool> stored;
    // This plan: blocks apply (every member of the root's shape, every input full, a column or a
    // scalar of it), and how; else the members run whole, their values in `whole`.
    bool blocked = false;
    std::size_t rows = 0, cols = 0;
    std::vector<kernels::operand_kind> kinds;  // per input
    std::vector<std::size_t> broadcast;        // per input
    std::vector<T> whole;
    std::vector<view<const T>> in;  // a member's arguments, when run whole (reused: no allocation)
    // A sum over the rows of the last member's value that ends the region (its only reader): the
    // node that runs the region then, and writes only the sum. This plan: whether it sums rows
    // as kernels::add_rows does (else it runs its own kernel on the last member's whole value),
    // in how many parts, and the parts' rows after the first.
    std::size_t sink = no_sink;
    bool sink_sums_rows = false;
    bool sink_is_view = false;  // the sum leaves the value as it is (equal shapes): written in place
    std::size_t parts = 1;
    std::vector<T> partial_rows;
  };
  static constexpr std::size_t no_sink = std::size_t(-1);
  static constexpr std::size_t shape_only = std::size_t(-1);
  static constexpr std::size_t no_region = std::size_t(-1);
  std::vector<region> regions;
  std::vector<std::size_t> region_of;  // per node: the region it roots, or no_region
  // Per node: the node whose region stores its value (a region member read outside it), or
  // not_stored; such a node runs no kernel, and its readers depend on that node.
  static constexpr std::size_t not_stored = std::size_t(-1);
  std::vector<std::size_t> stored_by;
  // The kernel calls of kernel_order, in that order, ready to make: a run reads them front to back.
  struct region;
  struct kernel_call {
    kernel_fn<T> kernel;
    view<T> out;
    inputs<T> in;
    region* elementwise = nullptr;  // a region's root: the region runs instead of the kernel
  };
  std::vector<kernel_call> calls;
  std::vector<std::size_t> call_of;  // per op node, its index in calls

  bool check_finite = false;              // set_check_finite: debug mode, see run_one_at_a_time
  bool profiling = false;                 // set_profiling: kernel times per node, see run_one_at_a_time
  std::vector<double> node_seconds;       // profiling: per node, the sum of its kernel's times
  std::size_t profiled_runs = 0;

  // set_output_ready: the hook, and for this plan the outputs that are final once node i's kernel
  // has run (ready_after[i]: the output itself, or the root of the view it is, or the node whose
  // region stores that) or before any kernel runs (ready_first: leaves, constants and views of
  // them). Outputs never share a block with a later node (pinned), so nothing overwrites them
  // after that kernel.
  output_ready_fn output_ready;
  std::vector<std::vector<std::size_t>> ready_after;  // per node: output indices
  std::vector<std::size_t> ready_first;

  int threads = 0;
  std::unique_ptr<tbb::task_arena> task_arena;
  std::unique_ptr<tbb::flow::graph> graph;
  std::unique_ptr<tbb::flow::broadcast_node<tbb::flow::continue_msg>> start;
  std::vector<std::vector<std::size_t>> segments;  // chains of op nodes, one flow-graph task each
  std::vector<std::size_t> segment_of;             // per node
  std::vector<std::unique_ptr<tbb::flow::continue_node<tbb::flow::continue_msg>>> flow_nodes;  // per segment
  bool concurrent_nodes = false;                   // this plan runs the flow graph (else serially)
  // Set when a run threw while the flow graph ran: its nodes may hold partial predecessor counts
  // (a node that saw only some of its inputs finish would later fire early, before the rest,
  // and read stale buffers), so the graph is rebuilt before it runs again.
  bool flow_graph_stale = false;
  std::vector<shape> check_shapes;        // reused by check_values

  // The node's expression as text, printed from the lowered graph (so compile() instantiates no
  // printers) by the rules the expression types print by (core/notation.hpp); cut after `limit`
  // characters, which also bounds the walk on large DAGs.
  int precedence(std::size_t i) const {
    const auto& n = nodes[i];
    if (n.kind == node_kind::op) return n.form.precedence();
    if (n.kind == node_kind::constant) return notation::literal_precedence(n.constant_value);
    return notation::atom;
  }
  void print_node(std::string& out, std::size_t i, std::size_t limit) const {
    if (out.size() > limit) return;
    const auto& n = nodes[i];
    if (n.kind != node_kind::op) {
      out += n.label;
      return;
    }
    notation::write_op(
        out, n.form, n.label, n.inputs.size(), [&](std::size_t k) { return precedence(n.inputs[k]); },
        [&](std::size_t k) { print_node(out, n.inputs[k], limit); });
  }
  std::string describe(std::size_t i, std::size_t limit = 160) const {
    std::string text;
    print_node(text, i, limit);
    return notation::cut(std::move(text), limit);
  }
  std::string describe_arg(std::size_t j) const {
    if (nodes[j].kind == node_kind::leaf) return fmt::format("leaf '{}'", nodes[j].label);
    return describe(j, 72);
  }

  void infer_shapes() {
    std::vector<shape> in;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const auto& n = nodes[i];
      if (n.kind == node_kind::leaf) {
        shapes[i] = bound[i].shape;
        continue;
      }
      if (n.kind == node_kind::constant) {
        shapes[i] = shape{};
        continue;
      }
      in.clear();
      for (auto j : n.inputs) in.push_back(shapes[j]);
      try {
        shapes[i] = n.infer_shape(in);
      } catch (const shape_rule_violation& e) {
        std::string args;
        for (std::size_t k = 0; k < n.inputs.size(); ++k)
          args += fmt::format("\n  argument {}: {} has shape {}", k, describe_arg(n.inputs[k]), shapes[n.inputs[k]]);
        throw shape_error(fmt::format("{}: {}\n  in node %{}: {}{}", n.label, e.what(), i, describe(i), args));
      }
      if (shapes[i].rank() != n.rank)
        throw shape_error(fmt::format("{}: shape rule produced rank {} for a node of rank {} (a bug in the op)",
                                      n.label, shapes[i].rank(), n.rank));
    }
  }

  // Greedy best-fit reuse: a node may take the block of an earlier node once every consumer of
  // that node is an ancestor of it. That ordering is enforced by the graph's own edges, so reuse
  // is race-free under any parallel schedule and needs no extra synchronisation.
  void find_views() {
    std::vector<shape> in;
    view_root.assign(nodes.size(), no_view);
    pinned = is_output;
    readers = consumers;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const auto& n = nodes[i];
      if (n.kind != node_kind::op || !n.is_view || !live[i] || region_of[i] != no_region) continue;
      in.clear();
      for (auto j : n.inputs) in.push_back(shapes[j]);
      if (!n.is_view(shapes[i], in)) continue;
      const std::size_t source = args[i][0];
      const std::size_t root = view_root[source] == no_view ? source : view_root[source];
      view_root[i] = root;
      pinned[root] = pinned[root] || is_output[i];
      readers[root].insert(readers[root].end(), consumers[i].begin(), consumers[i].end());
    }
  }

  void plan_buffers() {
    struct block {
      std::size_t offset, capacity, owner;
    };
    std::vector<block> blocks;
    std::size_t total = 0;
    unplanned = 0;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].kind != node_kind::op || !live[i]) continue;
      const std::size_t need = round_up(shapes[i].numel());
      unplanned += need;
      if (view_root[i] != no_view) continue;
      std::optional<std::size_t> best;
      // A value a region stores is written when the region runs, by the node that runs it: the
      // block must be free of readers before that node (which may itself read the old owner).
      const std::size_t writer = stored_by[i] == not_stored ? i : stored_by[i];
      for (std::size_t b = 0; b < blocks.size(); ++b) {
        const auto owner = blocks[b].owner;
        if (blocks[b].capacity < need || pinned[owner]) continue;
        bool dead = std::all_of(readers[owner].begin(), readers[owner].end(),
                                [&](std::size_t c) { return c != writer && ancestors.test(writer, c); });
        if (dead && (!best || blocks[b].capacity < blocks[*best].capacity)) best = b;
      }
      if (!best) {
        blocks.push_back({total, need, i});
        total += need;
        best = blocks.size() - 1;
      }
      blocks[*best].owner = i;
      offsets[i] = blocks[*best].offset;
    }
    unplanned *= sizeof(T);
    if (total > arena_capacity) {
      arena = detail::allocate_aligned<T>(total);
      std::fill_n(arena.get(), total, T(0));  // touch the pages now, not during the first run
      arena_capacity = total;
    }
    arena_used = total;
  }

  void refresh_pointers() {
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      switch (nodes[i].kind) {
        case node_kind::leaf: data[i] = const_cast<T*>(bound[i].data); break;
        case node_kind::constant: data[i] = &constants[i]; break;
        case node_kind::op:
          data[i] = !live[i] ? nullptr : view_root[i] == no_view ? arena.get() + offsets[i] : data[view_root[i]];
          break;
      }
    }
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      auto& iv = input_views[i];
      for (std::size_t k = 0; k < args[i].size(); ++k) {
        auto j = args[i][k];
        iv[k] = view<const T>{data[j], shapes[j]};
      }
    }
    calls.clear();
    for (auto i : kernel_order) {
      call_of[i] = calls.size();
      calls.push_back({kernels[i], view<T>{data[i], shapes[i]}, inputs<T>(input_views[i]),
                       region_of[i] == no_region ? nullptr : &regions[region_of[i]]});
    }
  }

  // Value preconditions (class labels in range, ...) of arguments that are bound data, checked
  // serially before any node runs, so a bad value never interrupts the parallel run.
  void check_values() {
    for (auto i : checked) {
      const auto& n = nodes[i];
      if (!live[i] || nodes[args[i][n.checked_argument]].kind == node_kind::op) continue;  // the kernel checks
      check_shapes.clear();
      for (auto j : args[i]) check_shapes.push_back(shapes[j]);
      checks[i](input_views[i][n.checked_argument], check_shapes);
    }
  }

  // Every node in topological order, one at a time: the debug mode of set_check_finite(true)
  // (leaves first, then each output scanned after its kernel; the first non-finite value stops the
  // run with a value_error naming the node, its printed expression and whether it is forward or
  // adjoint) and set_profiling(true) (each kernel's wall time added to its node).
  void run_one_at_a_time() {
    auto first_bad = [](const T* p, std::size_t n) {
      for (std::size_t k = 0; k < n; ++k)
        if (!std::isfinite(p[k])) return k;
      return n;
    };
    auto bad_text = [](T v) { return std::isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf"; };
    for (auto i : check_finite ? leaves : std::vector<std::size_t>{}) {
      const std::size_t n = shapes[i].numel(), k = first_bad(data[i], n);
      if (k < n)
        throw value_error(fmt::format("run (check_finite): leaf '{}' {} holds {} at flat index {}", nodes[i].label,
                                      shapes[i], bad_text(data[i][k]), k));
    }
    const auto check_node = [&](std::size_t i) {
      const std::size_t n = shapes[i].numel(), k = first_bad(data[i], n);
      if (k < n)
        throw value_error(fmt::format(
            "run (check_finite): the first non-finite value is {} at flat index {} of node %{} {}, {} node: {}\n"
            "  (every argument of this node is finite; program.listing() numbers the nodes)",
            bad_text(data[i][k]), k, i, shapes[i], nodes[i].adjoint ? "an adjoint" : "a forward", describe(i, 400)));
    };
    floating_point_scope mode;
    if (output_ready) notify_first();
    if (profiling) node_seconds.resize(nodes.size());
    for (const auto i : kernel_order) {
      if (profiling) {
        const auto start = std::chrono::steady_clock::now();
        run_node(i);
        node_seconds[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      } else {
        run_node(i);
      }
      if (check_finite) {
        // The values i's region stores come before i in order: they are checked first.
        if (region_of[i] != no_region) {
          const region& r = regions[region_of[i]];
          for (std::size_t q = 0; q < r.members.size(); ++q)
            if (r.stored[q]) check_node(r.members[q]);
        }
        check_node(i);
      }
      if (output_ready) notify_after(i);
    }
    if (profiling) ++profiled_runs;
  }

  void plan_ready() {
    for (auto& r : ready_after) r.clear();
    ready_first.clear();
    for (std::size_t o = 0; o < outputs.size(); ++o) {
      const std::size_t n = outputs[o], viewed = view_root[n] == no_view ? n : view_root[n];
      const std::size_t root = stored_by[viewed] == not_stored ? viewed : stored_by[viewed];  // its writer
      (nodes[root].kind == node_kind::op ? ready_after[root] : ready_first).push_back(o);
    }
  }
  void notify_first() const {
    for (auto o : ready_first) output_ready(o);
  }
  void notify_after(std::size_t i) const {
    for (auto o : ready_after[i]) output_ready(o);
  }

  // Node i as listing() prints it: %i = op(%a, %b) : shape  [notes]
  std::string listing_line(std::size_t i) const;

  void call(const kernel_call& c) {
    if (c.elementwise) run_region(*c.elementwise);
    else c.kernel(c.out, c.in);
  }
  void run_node(std::size_t i) {
    if (view_root[i] != no_view || stored_by[i] != not_stored) return;
    call(calls[call_of[i]]);
  }

  // ---- Elementwise regions ---------------------------------------------------------------------
  // A node whose op has a block function (kernels/block.hpp: the elementwise ops) takes in the
  // elementwise nodes it reads, of its rank, that nothing else reads (and no output is), and
  // theirs in turn: a region, run by its root as one pass over the root's output, block by
  // block, the values between its members kept in per-thread blocks of a few KiB. A batch norm's
  // arithmetic or a chain of activation gradients then reads its inputs and writes its result
  // once instead of once per op. Formed once from the graph; each plan checks that every member
  // has the root's shape and every input is full, a column (a per-channel vector) or a scalar of
  // it, and otherwise runs the members whole, one after the other, into buffers of its own.
  // Bitwise the results of running the nodes one by one: each op's block function computes its
  // kernel's arithmetic, element by element.
  static constexpr std::size_t max_region_members = 48;
  static constexpr std::size_t block_elements = 2048;  // per member: 8 KiB of floats

  bool may_join_region(std::size_t i) const {
    const auto& n = nodes[i];
    return n.kind == node_kind::op && blocks[i] && live[i] && n.rank >= 1 && !n.is_view && args[i].size() <= 4;
  }

  void form_regions(bool enabled) {
    const std::size_t n = nodes.size();
    region_of.assign(n, no_region);
    stored_by.assign(n, not_stored);
    if (!enabled) return;
    std::vector<std::vector<std::size_t>> readers_of(n);
    for (std::size_t i = 0; i < n; ++i)
      if (live[i])
        for (auto j : deps[i])
          if (std::find(readers_of[j].begin(), readers_of[j].end(), i) == readers_of[j].end())
            readers_of[j].push_back(i);
    std::vector<bool> taken(n, false), in_region(n, false);
    for (std::size_t root = n; root-- > 0;) {
      if (taken[root] || !may_join_region(root)) continue;
      // Candidates in decreasing position: a node's readers come after it, so when it is looked
      // at, every reader that could join already has.
      // A node also read outside joins when every such reader comes after the root: the region
      // then stores its value as well (a batch norm's centred input, computed on the fly for the
      // variance's sum, kept for the normalisation).
      std::vector<std::size_t> members{root}, candidates(deps[root]), stored;
      in_region[root] = true;
      while (!candidates.empty() && members.size() < max_region_members) {
        const auto top = std::max_element(candidates.begin(), candidates.end());
        const std::size_t j = *top;
        candidates.erase(top);
        if (in_region[j] || taken[j] || is_output[j] || !may_join_region(j) || nodes[j].rank != nodes[root].rank)
          continue;
        bool read_outside = false, read_later = true;
        for (auto r : readers_of[j])
          if (!in_region[r]) {
            read_outside = true;
            read_later = read_later && r > root;
          }
        if (read_outside && !read_later) continue;
        in_region[j] = true;
        members.push_back(j);
        if (read_outside) stored.push_back(j);
        candidates.insert(candidates.end(), deps[j].begin(), deps[j].end());
      }
      for (auto m : members) in_region[m] = false;
      // A sum over rows that alone reads the root ends the region: the root is not stored either.
      std::size_t sink = no_sink;
      if (readers_of[root].size() == 1 && !is_output[root]) {
        const std::size_t q = readers_of[root][0];
        if (nodes[q].sums_rows && nodes[q].fused_argument == node_spec::no_argument && !taken[q] &&
            nodes[q].inputs[0] == root)
          sink = q;
        // (the values the region stores must then be read after the sum alone)
        for (auto j : stored)
          for (auto r : readers_of[j])
            if (r < q && std::find(members.begin(), members.end(), r) == members.end()) sink = no_sink;
      }
      if (members.size() < 2 && sink == no_sink) continue;
      std::sort(members.begin(), members.end());
      region r;
      r.root = root;
      r.members = members;
      r.sink = sink;
      for (auto m : members) {
        taken[m] = true;
        r.stored.push_back(std::find(stored.begin(), stored.end(), m) != stored.end());
        // A fused node's kernel (and block function) reads its args; any other node's, its inputs
        // (args less the arguments a kernel does not read, but with those read for their shape).
        const bool fused = nodes[m].fused_argument != node_spec::no_argument;
        const auto& reads = r.reads.emplace_back(fused ? args[m] : nodes[m].inputs);
        auto& ops = r.operands.emplace_back();
        for (std::size_t k = 0; k < reads.size(); ++k) {
          const std::size_t j = reads[k];
          if (!fused && nodes[m].shape_only_arguments >> k & 1u) {
            ops.push_back(shape_only);
            continue;
          }
          const auto member = std::find(members.begin(), members.end(), j);
          if (member != members.end()) {
            ops.push_back(std::size_t(member - members.begin()));
            continue;
          }
          auto input = std::find(r.inputs.begin(), r.inputs.end(), j);
          if (input == r.inputs.end()) input = r.inputs.insert(r.inputs.end(), j);
          ops.push_back(members.size() + std::size_t(input - r.inputs.begin()));
        }
      }
      r.in.reserve(4);  // (may_join_region: at most 4 arguments)
      const std::size_t runner = sink == no_sink ? root : sink;
      if (sink != no_sink) taken[sink] = true;
      args[runner] = r.inputs;
      deps[runner] = r.inputs;
      // A stored value is written by the runner: its readers wait for the runner (all come after
      // it), and it keeps no inputs of its own.
      for (auto j : stored) {
        stored_by[j] = runner;
        deps[j].clear();
        for (std::size_t x = j + 1; x < n; ++x)
          if (std::find(deps[x].begin(), deps[x].end(), j) != deps[x].end() &&
              std::find(deps[x].begin(), deps[x].end(), runner) == deps[x].end())
            deps[x].push_back(runner);
      }
      region_of[runner] = regions.size();
      regions.push_back(std::move(r));
    }
  }

  void plan_regions() {
    using kernels::operand_kind;
    std::vector<shape> in;
    for (auto& r : regions) {
      const shape& s = shapes[r.root];
      const std::size_t count = s.numel();
      r.cols = s.rank() > 0 ? s[s.rank() - 1] : 1;
      r.rows = r.cols > 0 ? count / r.cols : 0;
      r.blocked = count > 0;
      for (std::size_t q = 0; q < r.members.size(); ++q) {
        const std::size_t m = r.members[q];
        if (!(shapes[m] == s)) r.blocked = false;
        if (!nodes[m].block_applies) continue;
        in.clear();
        for (auto j : r.reads[q]) in.push_back(shapes[j]);
        if (!nodes[m].block_applies(shapes[m], in)) r.blocked = false;
      }
      r.kinds.assign(r.inputs.size(), operand_kind::full);
      r.broadcast.assign(r.inputs.size(), 1);
      for (std::size_t k = 0; k < r.inputs.size(); ++k) {
        const shape& x = shapes[r.inputs[k]];
        bool column = x.rank() <= s.rank() && x.numel() == r.cols;
        for (std::size_t d = 0; column && d < x.rank(); ++d) column = x[d] == (d + 1 == x.rank() ? r.cols : 1);
        if (x == s) r.kinds[k] = operand_kind::full;
        else if (x.numel() == 1) r.kinds[k] = operand_kind::scalar;
        else if (column) r.kinds[k] = operand_kind::column;
        else r.blocked = false;
        r.broadcast[k] = x.numel() > 0 ? count / x.numel() : 1;
      }
      r.sink_sums_rows = r.sink_is_view = false;
      if (r.sink != no_sink && r.blocked) {
        in.clear();
        for (auto j : nodes[r.sink].inputs) in.push_back(shapes[j]);
        r.sink_sums_rows = nodes[r.sink].sums_rows(shapes[r.sink], in);
        r.sink_is_view = nodes[r.sink].is_view && nodes[r.sink].is_view(shapes[r.sink], in);
      }
      // Stored whole: every member (no blocks), or the last one for a sum that is not over rows.
      const bool sink_kernel = r.sink != no_sink && !r.sink_sums_rows && !r.sink_is_view;
      const std::size_t stored = !r.blocked ? (r.sink == no_sink ? r.members.size() - 1 : r.members.size())
                                 : sink_kernel ? 1
                                               : 0;
      r.whole.assign(stored * count, T(0));
      r.parts = std::max<std::size_t>(1, kernels::reduction_parts(count));
      r.partial_rows.assign(r.sink_sums_rows ? (r.parts - 1) * r.cols : 0, T(0));
    }
  }

  void run_region(region& r) {
    if ((r.rows == 0 || r.cols == 0) && r.sink == no_sink) return;  // (a sum of nothing is still written)
    const std::size_t last = r.members.size() - 1;
    if (!r.blocked) {  // each member whole, in order, with its own kernel
      const std::size_t count = shapes[r.root].numel();
      auto& in = r.in;
      for (std::size_t q = 0; q <= last; ++q) {
        const std::size_t m = r.members[q];
        in.clear();
        for (std::size_t k = 0; k < r.operands[q].size(); ++k) {
          const std::size_t o = r.operands[q][k], j = r.reads[q][k];
          const T* p = o == shape_only ? nullptr
                       : o < r.members.size() && !r.stored[o] ? r.whole.data() + o * count
                                                              : data[j];
          in.push_back(view<const T>{p, shapes[j]});
        }
        T* out = (q == last && r.sink == no_sink) || r.stored[q] ? data[m] : r.whole.data() + q * count;
        kernels[m](view<T>{out, shapes[m]}, inputs<T>(in));
      }
      if (r.sink != no_sink) run_sink_kernel(r, r.whole.data() + last * count);
      return;
    }
    if (r.sink_sums_rows) return run_region_into_sum(r);
    const auto nothing = [](const T*, std::size_t, std::size_t) {};
    if (r.rows * r.cols <= block_elements) for_each_block(r, 0, r.rows, nothing);  // one block: no task
    else parallel_chunks(r.rows, r.cols * r.members.size(), [&](std::size_t lo, std::size_t hi) {
      for_each_block(r, lo, hi, nothing);
    });
    if (r.sink != no_sink && !r.sink_is_view) run_sink_kernel(r, r.whole.data());  // (a sum not over rows)
  }

  // The sum ending region r, by its own kernel, on the last member's whole value `root`.
  void run_sink_kernel(region& r, const T* root) {
    auto& in = r.in;
    in.clear();
    for (auto j : nodes[r.sink].inputs) in.push_back(view<const T>{j == r.root ? root : data[j], shapes[j]});
    kernels[r.sink](view<T>{data[r.sink], shapes[r.sink]}, inputs<T>(in));
  }

  // Runs r's members over rows [lo, hi) block by block on this thread, each member's block in
  // the thread's scratch, the last one's in the root's storage (or, when a sum ends the region,
  // in the thread's scratch if the sum is over rows, else in r.whole), then done(the last
  // member's block, its first row, its rows).
  template <class Done>
  void for_each_block(region& r, std::size_t lo, std::size_t hi, Done done) {
    const std::size_t last = r.members.size() - 1, stored = r.sink_sums_rows ? last + 1 : last;
    const std::size_t tile_rows = std::max<std::size_t>(1, block_elements / r.cols), tile = tile_rows * r.cols;
    thread_local std::vector<T> scratch;
    if (scratch.size() < stored * tile) scratch.resize(stored * tile);
    std::array<kernels::block_operand<T>, 4> operands{};
    for (std::size_t r0 = lo; r0 < hi; r0 += tile_rows) {
      const std::size_t rows = std::min(tile_rows, hi - r0);
      T* out = nullptr;
      for (std::size_t q = 0; q <= last; ++q) {
        for (std::size_t k = 0; k < r.operands[q].size(); ++k) {
          const std::size_t o = r.operands[q][k];
          if (o == shape_only) {
            operands[k] = {};
          } else if (o < r.members.size()) {
            const T* p = r.stored[o] ? data[r.members[o]] + r0 * r.cols : scratch.data() + o * tile;
            operands[k] = {p, kernels::operand_kind::full, 1};
          } else {
            const std::size_t x = o - r.members.size();
            const T* p = data[r.inputs[x]];
            operands[k] = {r.kinds[x] == kernels::operand_kind::full ? p + r0 * r.cols : p, r.kinds[x], r.broadcast[x]};
          }
        }
        out = r.stored[q]                   ? data[r.members[q]] + r0 * r.cols
              : q < last || r.sink_sums_rows ? scratch.data() + q * tile
              : r.sink == no_sink           ? data[r.root] + r0 * r.cols
              : r.sink_is_view              ? data[r.sink] + r0 * r.cols
                                            : r.whole.data() + r0 * r.cols;
        blocks[r.members[q]](out, operands.data(), rows, r.cols);
      }
      done(out, r0, rows);
    }
  }

  // A region ending in a sum over rows: the rows in kernels::reduction_parts' parts (in
  // parallel), each part's blocks added in order to its row (kernels::add_rows), the parts' rows
  // then added in order (and scaled for a mean): the sum's own kernel's arithmetic, without the
  // summed values ever stored.
  void run_region_into_sum(region& r) {
    T* out = data[r.sink];
    const std::size_t cols = r.cols;
    auto row_of = [&](std::size_t part) { return part == 0 ? out : r.partial_rows.data() + (part - 1) * cols; };
    parallel_chunks(r.parts, r.rows / r.parts * cols * r.members.size(), [&](std::size_t lo, std::size_t hi) {
      for (std::size_t part = lo; part < hi; ++part) {
        T* o = row_of(part);
        std::fill_n(o, cols, T(0));
        const std::size_t first = r.rows * part / r.parts, end = r.rows * (part + 1) / r.parts;
        for_each_block(r, first, end, [&](const T* block, std::size_t, std::size_t rows) {
          kernels::add_rows(o, block, rows, cols);
        });
      }
    });
    for (std::size_t part = 1; part < r.parts; ++part) {
      const T* src = row_of(part);
      for (std::size_t j = 0; j < cols; ++j) out[j] = out[j] + src[j];
    }
    if (nodes[r.sink].mean_of_rows) {
      const std::size_t count = shapes[r.root].numel() / cols;  // the op's own: in.size() / out.size()
      const T scale = T(1) / T(count ? count : 1);
      for (std::size_t j = 0; j < cols; ++j) out[j] = out[j] * scale;
    }
  }

  // Chains of op nodes (a node whose only op argument is a node it alone reads) run as one
  // segment: one flow-graph task instead of one per node, since a chain has nothing to overlap.
  // Segments depend only on the graph's structure; segment_of[i] is op node i's segment.
  void find_segments() {
    segments.clear();
    segment_of.assign(nodes.size(), 0);
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].kind != node_kind::op || !live[i]) continue;
      std::optional<std::size_t> only_pred;
      std::size_t op_preds = 0;
      for (auto j : deps[i])
        if (nodes[j].kind == node_kind::op && (!only_pred || *only_pred != j)) {
          only_pred = j;
          ++op_preds;
        }
      if (op_preds == 1 && consumers[*only_pred].size() == 1) {
        segment_of[i] = segment_of[*only_pred];
        segments[segment_of[i]].push_back(i);
      } else {
        segment_of[i] = segments.size();
        segments.push_back({i});
      }
    }
  }

  void build_flow_graph() {
    using namespace tbb::flow;
    // A rebuild (after a failed run, or new threads) destroys the old nodes before their graph:
    // a node's destructor still reaches its graph.
    flow_nodes.clear();
    start.reset();
    graph = std::make_unique<tbb::flow::graph>();
    start = std::make_unique<broadcast_node<continue_msg>>(*graph);
    flow_nodes.resize(segments.size());
    std::vector<std::size_t> preds;
    for (std::size_t seg = 0; seg < segments.size(); ++seg) {
      flow_nodes[seg] = std::make_unique<continue_node<continue_msg>>(*graph, [this, seg](const continue_msg&) {
        floating_point_scope mode;
        for (auto i : segments[seg]) {
          run_node(i);
          if (output_ready) notify_after(i);
        }
      });
      preds.clear();
      for (auto i : segments[seg])
        for (auto j : deps[i])
          if (nodes[j].kind == node_kind::op && segment_of[j] != seg &&
              std::find(preds.begin(), preds.end(), segment_of[j]) == preds.end())
            preds.push_back(segment_of[j]);
      if (preds.empty()) make_edge(*start, *flow_nodes[seg]);
      for (auto p : preds) make_edge(*flow_nodes[p], *flow_nodes[seg]);
    }
  }

  // Whether running nodes concurrently can pay: only when two nodes that are independent of each
  // other (neither reads the other, transitively) are both heavy, touching enough data for their
  // kernels to split it into parallel chunks (serial_cutoff elements: a chunk must pay for a task,
  // about a microsecond), and one of them is narrow, too small to give every thread two chunks.
  // Nodes that fill the threads on their own run faster one after the other in topological
  // order, each kernel parallel inside, than overlapped: measured at 2 threads (AMD EPYC Zen 5),
  // the small ResNet's step took 29.4 ms overlapped and 26.2 ms in order, the CNN's and the
  // Inception network's epochs the same either way. Otherwise, too, the nodes run in order; a
  // chain of small ops then costs no task switches at all.
  bool worth_concurrent_nodes() const {
    const std::size_t wide = 2 * std::size_t(task_arena->max_concurrency()) * serial_cutoff;
    std::vector<std::size_t> heavy;
    std::vector<bool> narrow;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].kind != node_kind::op || !live[i] || view_root[i] != no_view || stored_by[i] != not_stored)
        continue;
      std::size_t touched = shapes[i].numel();
      for (auto j : deps[i]) touched += shapes[j].numel();
      if (touched < serial_cutoff) continue;
      heavy.push_back(i);
      narrow.push_back(touched < wide);
    }
    for (std::size_t a = 0; a < heavy.size(); ++a)
      for (std::size_t b = a + 1; b < heavy.size(); ++b)
        if ((narrow[a] || narrow[b]) && !ancestors.test(heavy[b], heavy[a]))  // heavy[a] precedes heavy[b]
          return true;
    return false;
  }

  void make_arena() {
    flow_nodes.clear();
    start.reset();
    graph.reset();
    task_arena = threads > 0 ? std::make_unique<tbb::task_arena>(threads) : std::make_unique<tbb::task_arena>();
    task_arena->initialize();
    if (task_arena->max_concurrency() > 1) task_arena->execute([&] { build_flow_graph(); });
    flow_graph_stale = false;
  }
};

namespace {
std::atomic<bool> regions_by_default{true};
}

void set_elementwise_regions(bool on) { regions_by_default = on; }

template <class T>
executor<T>::executor(std::vector<node_spec> nodes, std::vector<kernel_fn<T>> kernels, std::vector<std::size_t> outputs,
                      std::vector<check_fn<T>> checks, std::vector<block_fn<T>> blocks)
    : s_(std::make_unique<state>()) {
  auto& s = *s_;
  const std::size_t n = nodes.size();
  s.nodes = std::move(nodes);
  s.kernels = std::move(kernels);
  s.checks = std::move(checks);
  s.checks.resize(n, nullptr);
  for (std::size_t i = 0; i < n; ++i) {
    if (s.nodes[i].kind == node_kind::leaf) s.leaves.push_back(i);
    if (s.checks[i] && s.nodes[i].checked_argument != node_spec::no_argument) s.checked.push_back(i);
  }
  s.outputs = std::move(outputs);
  s.args.resize(n);
  s.deps.resize(n);
  struct deeper_fusion {
    std::size_t node, at, inner;  // node's args [at, at + inner's input count) stand for inner
  };
  std::vector<deeper_fusion> deeper_fusions;
  for (std::size_t i = 0; i < n; ++i) {
    auto& a = s.args[i];
    a = s.nodes[i].inputs;
    auto& d = s.deps[i];
    for (std::size_t k = 0; k < a.size(); ++k)
      if (!(s.nodes[i].shape_only_arguments >> k & 1u)) d.push_back(a[k]);
    std::size_t k = s.nodes[i].fused_argument;
    if (k == node_spec::no_argument) continue;  // (fused ops read every argument's data)
    for (std::size_t u = a.size(); u-- > 0;)
      if (s.nodes[i].unused_arguments >> u & 1u) {
        a.erase(a.begin() + std::ptrdiff_t(u));
        if (u < k) --k;
      }
    if (s.nodes[i].fused_source < i) {  // (a later node cannot stand in: the order is topological)
      a[k] = s.nodes[i].fused_source;
    } else {
      const auto& spliced = s.nodes[a[k]].inputs;
      a.erase(a.begin() + std::ptrdiff_t(k));
      a.insert(a.begin() + std::ptrdiff_t(k), spliced.begin(), spliced.end());
      if (const std::size_t inner = s.nodes[i].fused_inner_argument; inner != node_spec::no_argument) {
        const std::size_t at = k + inner, j = a[at];
        const auto& deeper = s.nodes[j].inputs;
        a.erase(a.begin() + std::ptrdiff_t(at));
        a.insert(a.begin() + std::ptrdiff_t(at), deeper.begin(), deeper.end());
        deeper_fusions.push_back({i, at, j});
      }
    }
    d = a;
  }
  s.is_output.assign(n, false);
  for (auto o : s.outputs) s.is_output[o] = true;
  const auto mark_live = [&] {
    s.live = s.is_output;
    for (std::size_t i = n; i-- > 0;)
      if (s.live[i])
        for (auto j : s.deps[i]) s.live[j] = true;
  };
  mark_live();
  // A deeper fusion whose inner node is computed anyway reads that node's value instead of
  // recomputing it (a conv computed twice would cost far more than the pass it saves).
  bool reverted = false;
  for (const auto& f : deeper_fusions) {
    if (!s.live[f.inner]) continue;
    auto& a = s.args[f.node];
    a.erase(a.begin() + std::ptrdiff_t(f.at), a.begin() + std::ptrdiff_t(f.at + s.nodes[f.inner].inputs.size()));
    a.insert(a.begin() + std::ptrdiff_t(f.at), f.inner);
    s.deps[f.node] = a;
    reverted = true;
  }
  if (reverted) mark_live();
  s.blocks = std::move(blocks);
  s.blocks.resize(n, nullptr);
  s.form_regions(regions_by_default);
  if (!s.regions.empty()) mark_live();
  s.consumers.resize(n);
  s.ancestors.words = (n + 63) / 64;
  s.ancestors.bits.assign(n * s.ancestors.words, 0);
  for (std::size_t i = 0; i < n; ++i) {
    if (!s.live[i]) continue;
    for (auto j : s.deps[i]) {
      if (std::find(s.consumers[j].begin(), s.consumers[j].end(), i) == s.consumers[j].end())
        s.consumers[j].push_back(i);
      for (std::size_t w = 0; w < s.ancestors.words; ++w)
        s.ancestors.bits[i * s.ancestors.words + w] |= s.ancestors.bits[j * s.ancestors.words + w];
      s.ancestors.bits[i * s.ancestors.words + j / 64] |= std::uint64_t{1} << (j % 64);
    }
  }
  s.bound.resize(n);
  s.is_bound.assign(n, false);
  s.constants.assign(n, T(0));
  for (std::size_t i = 0; i < n; ++i)
    if (s.nodes[i].kind == node_kind::constant) s.constants[i] = static_cast<T>(s.nodes[i].constant_value);
  s.shapes.resize(n);
  s.planned_leaf_shapes.resize(n);
  s.offsets.assign(n, 0);
  s.data.assign(n, nullptr);
  s.input_views.resize(n);
  s.call_of.assign(n, 0);
  s.ready_after.resize(n);
  for (std::size_t i = 0; i < n; ++i) s.input_views[i].resize(s.args[i].size());
  s.find_segments();
  s.make_arena();
}

template <class T> executor<T>::~executor() = default;
template <class T> executor<T>::executor(executor&&) noexcept = default;
template <class T> executor<T>& executor<T>::operator=(executor&&) noexcept = default;

template <class T>
void executor<T>::bind(std::size_t leaf, view<const T> data) {
  auto& s = *s_;
  s.bound[leaf] = data;
  s.is_bound[leaf] = true;
  s.pointers_stale = true;
}

template <class T>
void executor<T>::run() {
  auto& s = *s_;
  bool replan = !s.planned;
  for (auto i : s.leaves) {
    if (!s.is_bound[i]) {
      std::string users;
      for (auto c : s.consumers[i]) users += fmt::format("{}{}", users.empty() ? "" : ", ", s.nodes[c].label);
      throw binding_error(fmt::format("run: leaf '{}' (rank {}) is not bound; it is read by {}. Bind it with "
                                      "program.bind({}, tensor) before run()",
                                      s.nodes[i].label, s.nodes[i].rank, users.empty() ? "the outputs" : users,
                                      s.nodes[i].label));
    }
    if (!(s.bound[i].shape == s.planned_leaf_shapes[i])) replan = true;
  }
  if (replan) {
    s.planned = false;
    s.infer_shapes();
    s.plan_regions();
    s.find_views();
    s.plan_buffers();
    s.concurrent_nodes = s.worth_concurrent_nodes();
    s.kernel_order.clear();
    for (std::size_t i = 0; i < s.nodes.size(); ++i)
      if (s.nodes[i].kind == node_kind::op && s.live[i] && s.view_root[i] == state::no_view &&
          s.stored_by[i] == state::not_stored)
        s.kernel_order.push_back(i);
    for (auto i : s.leaves) s.planned_leaf_shapes[i] = s.bound[i].shape;
    s.plan_ready();
    s.pointers_stale = true;
    s.planned = true;
    ++s.plans;
  }
  if (s.pointers_stale) {
    s.refresh_pointers();
    s.pointers_stale = false;
  }
  s.check_values();
  if (s.check_finite || s.profiling) {
    s.task_arena->execute([&] { s.run_one_at_a_time(); });
  } else if (s.task_arena->max_concurrency() == 1 || !s.concurrent_nodes) {
    s.task_arena->execute([&] {
      floating_point_scope mode;
      if (!s.output_ready) {
        for (const auto& c : s.calls) s.call(c);
        return;
      }
      s.notify_first();
      for (std::size_t k = 0; k < s.calls.size(); ++k) {
        s.call(s.calls[k]);
        s.notify_after(s.kernel_order[k]);
      }
    });
  } else {
    if (s.flow_graph_stale) {
      s.task_arena->execute([&] { s.build_flow_graph(); });
      s.flow_graph_stale = false;
    }
    try {
      s.task_arena->execute([&] {
        if (s.output_ready) {
          floating_point_scope mode;
          s.notify_first();
        }
        s.start->try_put(tbb::flow::continue_msg{});
        s.graph->wait_for_all();
      });
    } catch (...) {
      s.flow_graph_stale = true;
      throw;
    }
  }
}

template <class T>
view<const T> executor<T>::output(std::size_t i) const {
  const auto& s = *s_;
  auto n = s.outputs.at(i);
  if (!s.planned) throw binding_error("program: outputs are available only after run()");
  return {s.data[n], s.shapes[n]};
}

template <class T>
void executor<T>::set_threads(int threads) {
  s_->threads = threads;
  s_->make_arena();
  if (s_->planned) s_->concurrent_nodes = s_->worth_concurrent_nodes();  // it depends on the threads
}
template <class T> void executor<T>::set_check_finite(bool on) { s_->check_finite = on; }
template <class T> void executor<T>::set_output_ready(output_ready_fn fn) { s_->output_ready = std::move(fn); }
template <class T> bool executor<T>::check_finite() const { return s_->check_finite; }
template <class T> void executor<T>::set_profiling(bool on) { s_->profiling = on; }
template <class T> bool executor<T>::profiling() const { return s_->profiling; }
template <class T>
void executor<T>::reset_profile() {
  s_->node_seconds.clear();
  s_->profiled_runs = 0;
}
template <class T> int executor<T>::threads() const { return s_->task_arena->max_concurrency(); }
template <class T> std::size_t executor<T>::node_count() const { return s_->nodes.size(); }
template <class T>
std::size_t executor<T>::op_count() const {
  return std::count_if(s_->nodes.begin(), s_->nodes.end(), [](auto& n) { return n.kind == node_kind::op; });
}
template <class T> std::size_t executor<T>::plan_count() const { return s_->plans; }
template <class T> std::size_t executor<T>::arena_bytes() const { return s_->arena_used * sizeof(T); }
template <class T> std::size_t executor<T>::unplanned_bytes() const { return s_->unplanned; }
template <class T> const std::vector<node_spec>& executor<T>::nodes() const { return s_->nodes; }
template <class T> shape executor<T>::node_shape(std::size_t i) const { return s_->shapes.at(i); }

template <class T>
std::string executor<T>::listing() const {
  std::string out;
  for (std::size_t i = 0; i < s_->nodes.size(); ++i) out += s_->listing_line(i) + '\n';
  return out;
}

template <class T>
std::vector<double> executor<T>::profile_ms() const {
  const auto& s = *s_;
  const double runs = double(std::max<std::size_t>(s.profiled_runs, 1));
  std::vector<double> ms(s.nodes.size(), 0.0);
  for (std::size_t i = 0; i < s.node_seconds.size(); ++i) ms[i] = s.node_seconds[i] * 1e3 / runs;
  return ms;
}

template <class T>
std::string executor<T>::profile() const {
  const auto& s = *s_;
  std::vector<std::size_t> ran;
  double total = 0;
  for (std::size_t i = 0; i < s.node_seconds.size(); ++i)
    if (s.node_seconds[i] > 0) {
      ran.push_back(i);
      total += s.node_seconds[i];
    }
  std::stable_sort(ran.begin(), ran.end(), [&](auto a, auto b) { return s.node_seconds[a] > s.node_seconds[b]; });
  const double runs = double(std::max<std::size_t>(s.profiled_runs, 1));
  std::string out = fmt::format("# profile of {} runs: {:.3f} ms per run in {} kernels, one node at a time\n",
                                s.profiled_runs, total * 1e3 / runs, ran.size());
  out += fmt::format("# {:>9} {:>6}  node\n", "ms/run", "share");
  for (auto i : ran)
    out += fmt::format("  {:>9.4f} {:>5.1f}%  {}\n", s.node_seconds[i] * 1e3 / runs, 100 * s.node_seconds[i] / total,
                       s.listing_line(i));
  return out;
}

template <class T>
std::string executor<T>::state::listing_line(std::size_t i) const {
  const auto& s = *this;
  std::string out;
  const auto& n = s.nodes[i];
  std::string args;
  for (auto j : n.inputs) args += fmt::format("{}%{}", args.empty() ? "" : ", ", j);
  std::string rhs = n.kind == node_kind::op ? fmt::format("{}({})", n.label, args)
                    : n.kind == node_kind::leaf ? fmt::format("leaf {}", n.label)
                                               : fmt::format("literal {}", n.label);
  out += fmt::format("%{} = {}", i, rhs);
  if (s.planned) out += fmt::format(" : {}", s.shapes[i]);
  if (n.fused_argument != node_spec::no_argument && n.fused_source != node_spec::no_argument)
    out += fmt::format("  [computes %{} on the fly from %{}]", n.inputs[n.fused_argument], n.fused_source);
  else if (n.fused_argument != node_spec::no_argument && n.fused_inner_argument != node_spec::no_argument &&
           !s.live[s.nodes[n.inputs[n.fused_argument]].inputs[n.fused_inner_argument]])
    out += fmt::format("  [computes %{} and %{} on the fly]",
                       s.nodes[n.inputs[n.fused_argument]].inputs[n.fused_inner_argument], n.inputs[n.fused_argument]);
  else if (n.fused_argument != node_spec::no_argument)
    out += fmt::format("  [computes %{} on the fly]", n.inputs[n.fused_argument]);
  if (s.region_of[i] != state::no_region) {
    const auto& r = s.regions[s.region_of[i]];
    std::string members;
    const std::size_t shown = r.sink == state::no_sink ? r.members.size() - 1 : r.members.size();
    for (std::size_t q = 0; q < shown; ++q) members += fmt::format("{}%{}", q ? ", " : "", r.members[q]);
    std::string stored;
    for (std::size_t q = 0; q < r.members.size(); ++q)
      if (r.stored[q]) stored += fmt::format("{}%{}", stored.empty() ? "" : ", ", r.members[q]);
    out += fmt::format("  [elementwise region: computes {} on the fly{}{}]", members,
                       stored.empty() ? "" : fmt::format(", stores {}", stored),
                       s.planned && !r.blocked ? ", whole this plan" : "");
  }
  if (s.stored_by[i] != state::not_stored) out += fmt::format("  [stored by %{}'s region]", s.stored_by[i]);
  if (n.kind == node_kind::op && !s.live[i]) out += "  [not computed]";
  else if (s.planned && n.kind == node_kind::op && s.view_root[i] != state::no_view)
    out += fmt::format("  [view of %{}]", s.view_root[i]);
  if (n.adjoint) out += "  [adjoint]";
  auto it = std::find(s.outputs.begin(), s.outputs.end(), i);
  if (it != s.outputs.end()) out += fmt::format("  -> output {}", it - s.outputs.begin());
  return out;
}

template <class T>
std::string executor<T>::dot() const {
  const auto& s = *s_;
  auto escape = [](std::string text) {
    std::string r;
    for (char c : text) {
      if (c == '"' || c == '\\') r += '\\';
      r += c;
    }
    return r;
  };
  std::string out = "digraph program {\n  rankdir=TB;\n  node [fontname=\"Helvetica\"];\n";
  for (std::size_t i = 0; i < s.nodes.size(); ++i) {
    const auto& n = s.nodes[i];
    std::string label = escape(n.label);
    if (s.planned) label += fmt::format("\\n{}", s.shapes[i]);
    std::string attrs;
    if (n.kind == node_kind::leaf) attrs = "shape=ellipse, style=filled, fillcolor=\"#fff2cc\"";
    else if (n.kind == node_kind::constant) attrs = "shape=plaintext";
    else if (n.adjoint) attrs = "shape=box, style=\"filled,dashed\", fillcolor=\"#dae8fc\"";
    else attrs = "shape=box, style=filled, fillcolor=\"#f5f5f5\"";
    if (s.is_output[i]) attrs += ", penwidth=3";
    out += fmt::format("  n{} [label=\"{}\", {}];\n", i, label, attrs);
  }
  for (std::size_t i = 0; i < s.nodes.size(); ++i)
    for (std::size_t k = 0; k < s.nodes[i].inputs.size(); ++k)
      out += fmt::format("  n{} -> n{}{};\n", s.nodes[i].inputs[k], i,
                         s.nodes[i].inputs.size() > 1 ? fmt::format(" [label=\"{}\"]", k) : "");
  for (std::size_t o = 0; o < s.outputs.size(); ++o)
    out += fmt::format("  out{0} [shape=plaintext, label=\"output {0}\"];\n  n{1} -> out{0};\n", o, s.outputs[o]);
  return out + "}\n";
}

template class executor<float>;
template class executor<double>;

}  // namespace typegrad::runtime
