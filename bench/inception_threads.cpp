// How much a second thread speeds up the training step of the Inception-style network
// (examples/nets/inception_net.hpp, as fashion_mnist_inception trains it), and where the gain
// comes from: (a) inter-node concurrency (the flow graph running independent nodes, such as the
// branches of a block, at the same time) and (b) the parallel loops inside kernels.
//
//   inception_threads [--threads N] [--runs R] [--steps S] [--batch B] [--data-dir DIR]
//
// 1. The step as the example runs it (program.run() + Adam), with 1 thread and with N threads,
//    interleaved so that both see the same machine load: the median over R runs of the mean time
//    of S steps, after a warm-up.
// 2. The graph: op nodes, and how many of them can run at the same time (the width of the flow
//    graph: the largest set of nodes none of which depends on another).
// 3. The split. The executor has no switch that disables one source of parallelism, so the
//    program's own node list and kernels (the lowering that compile() made) are replayed here
//    with a scheduler of the bench's own, in four ways: serial; (b) only (topological order, N
//    threads in the kernels' loops); (a) only (the flow graph on N threads, each kernel inside a
//    one-thread arena so that its loops run inline); both (the flow graph, as the executor).
//    The replay gives each node its own buffer (no reuse), and its results are checked to be
//    bitwise those of the program. Per-node serial times give the work and the critical path
//    (the longest chain of dependent nodes, weighted by time): work / critical path bounds what
//    (a) alone could gain with unlimited threads, and a list schedule of those times on N
//    threads what it could gain here (a figure that a loaded machine distorts less than the
//    wall-clock speed-ups, which need idle cores).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <tbb/flow_graph.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include "nets/inception_net.hpp"

using namespace typegrad;
namespace net = typegrad::nets::inception_net;
using runtime::node_kind;
using runtime::node_spec;

namespace {
using steady = std::chrono::steady_clock;

double ms_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Mean milliseconds per call of `steps` calls of f.
template <class F>
double ms_per_step(int steps, F&& f) {
  const auto t0 = steady::now();
  for (int s = 0; s < steps; ++s) f();
  return ms_between(t0, steady::now()) / steps;
}

// The op nodes of a node list and their op-node predecessors (leaves and constants are ready
// before a run starts).
struct op_dag {
  std::vector<std::size_t> ops;                // node indices, topological
  std::vector<std::vector<std::size_t>> preds; // per node index: op inputs, distinct
  explicit op_dag(const std::vector<node_spec>& nodes) : preds(nodes.size()) {
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].kind != node_kind::op) continue;
      ops.push_back(i);
      for (auto j : nodes[i].inputs)
        if (nodes[j].kind == node_kind::op && std::find(preds[i].begin(), preds[i].end(), j) == preds[i].end())
          preds[i].push_back(j);
    }
  }
};

// The largest antichain of the op DAG (Dilworth: op count minus a maximum matching of the
// bipartite graph "u before v" over the transitive closure).
std::size_t max_concurrent_nodes(const op_dag& g) {
  const std::size_t n = g.ops.size();
  std::vector<std::size_t> pos(g.preds.size(), n);
  for (std::size_t k = 0; k < n; ++k) pos[g.ops[k]] = k;
  std::vector<std::vector<bool>> before(n, std::vector<bool>(n, false));  // before[u][v]: u is an ancestor of v
  for (std::size_t v = 0; v < n; ++v)
    for (auto p : g.preds[g.ops[v]]) {
      const auto u = pos[p];
      before[u][v] = true;
      for (std::size_t w = 0; w < n; ++w)
        if (before[w][u]) before[w][v] = true;
    }
  std::vector<std::size_t> match(n, n);  // right side v -> left side u
  std::vector<bool> seen;
  auto augment = [&](auto&& self, std::size_t u) -> bool {
    for (std::size_t v = 0; v < n; ++v) {
      if (!before[u][v] || seen[v]) continue;
      seen[v] = true;
      if (match[v] == n || self(self, match[v])) {
        match[v] = u;
        return true;
      }
    }
    return false;
  };
  std::size_t matched = 0;
  for (std::size_t u = 0; u < n; ++u) {
    seen.assign(n, false);
    if (augment(augment, u)) ++matched;
  }
  return n - matched;
}

// The program's node list run by the bench's own scheduler (see the header comment).
class replay {
 public:
  replay(const runtime::executor<float>& exec, std::span<const runtime::kernel_fn<float>> kernels,
         const std::vector<std::pair<std::string, const float*>>& leaves, int threads)
      : nodes_(exec.nodes()), kernels_(kernels.begin(), kernels.end()), dag_(nodes_), arena_(threads) {
    const std::size_t n = nodes_.size();
    shapes_.resize(n);
    data_.resize(n);
    constants_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      shapes_[i] = exec.node_shape(i);
      switch (nodes_[i].kind) {
        case node_kind::leaf: {
          auto it = std::find_if(leaves.begin(), leaves.end(), [&](const auto& l) { return l.first == nodes_[i].label; });
          if (it == leaves.end()) throw std::runtime_error("replay: no data for leaf " + nodes_[i].label);
          data_[i] = const_cast<float*>(it->second);
          break;
        }
        case node_kind::constant:
          constants_[i] = float(nodes_[i].constant_value);
          data_[i] = &constants_[i];
          break;
        case node_kind::op:
          buffers_.emplace_back(shapes_[i].numel(), 0.0f);
          data_[i] = buffers_.back().data();
          break;
      }
    }
    inputs_.resize(n);
    for (std::size_t i = 0; i < n; ++i)
      for (auto j : nodes_[i].inputs) inputs_[i].push_back(view<const float>{data_[j], shapes_[j]});
    for (int t = 0; t < threads; ++t) solo_.push_back(std::make_unique<tbb::task_arena>(1, 1));
    arena_.execute([&] { build_graph(); });
  }

  const op_dag& dag() const { return dag_; }
  view<const float> value(std::size_t i) const { return {data_[i], shapes_[i]}; }

  // Every op in topological order on the calling thread; kernels' loops use `threads`.
  void run_topological(bool parallel_kernels) {
    if (parallel_kernels) arena_.execute([&] { for (auto i : dag_.ops) run_node(i); });
    else solo_[0]->execute([&] { for (auto i : dag_.ops) run_node(i); });
  }
  // The flow graph on `threads`; with serial_kernels each kernel runs in a one-thread arena.
  void run_flow(bool serial_kernels) {
    serial_kernels_ = serial_kernels;
    arena_.execute([&] {
      start_->try_put(tbb::flow::continue_msg{});
      graph_->wait_for_all();
    });
  }
  // Milliseconds per op node, one thread, topological order: the median of `runs` runs.
  std::vector<double> node_times(int runs) {
    std::vector<std::vector<double>> t(nodes_.size());
    solo_[0]->execute([&] {
      for (int r = 0; r < runs; ++r)
        for (auto i : dag_.ops) {
          const auto t0 = steady::now();
          run_node(i);
          t[i].push_back(ms_between(t0, steady::now()));
        }
    });
    std::vector<double> m(nodes_.size(), 0.0);
    for (auto i : dag_.ops) m[i] = median(t[i]);
    return m;
  }

 private:
  void run_node(std::size_t i) {
    kernels_[i](view<float>{data_[i], shapes_[i]}, inputs<float>(inputs_[i]));
  }
  void build_graph() {
    using namespace tbb::flow;
    graph_ = std::make_unique<tbb::flow::graph>();
    start_ = std::make_unique<broadcast_node<continue_msg>>(*graph_);
    flow_.resize(nodes_.size());
    for (auto i : dag_.ops) {
      flow_[i] = std::make_unique<continue_node<continue_msg>>(*graph_, [this, i](const continue_msg&) {
        if (!serial_kernels_) return run_node(i);
        solo_[std::size_t(tbb::this_task_arena::current_thread_index())]->execute([&] { run_node(i); });
      });
      if (dag_.preds[i].empty()) make_edge(*start_, *flow_[i]);
      for (auto j : dag_.preds[i]) make_edge(*flow_[j], *flow_[i]);
    }
  }

  std::vector<node_spec> nodes_;
  std::vector<runtime::kernel_fn<float>> kernels_;
  op_dag dag_;
  std::vector<shape> shapes_;
  std::vector<float*> data_;
  std::vector<float> constants_;
  std::vector<std::vector<float>> buffers_;
  std::vector<std::vector<view<const float>>> inputs_;
  tbb::task_arena arena_;
  std::vector<std::unique_ptr<tbb::task_arena>> solo_;  // one per thread of arena_
  std::unique_ptr<tbb::flow::graph> graph_;
  std::unique_ptr<tbb::flow::broadcast_node<tbb::flow::continue_msg>> start_;
  std::vector<std::unique_ptr<tbb::flow::continue_node<tbb::flow::continue_msg>>> flow_;
  bool serial_kernels_ = false;
};

// The longest path through the op DAG, each node weighted by its time: its length and its nodes.
struct critical_path {
  double ms = 0;
  std::vector<bool> on;  // per node index
};
critical_path longest_path(const op_dag& g, const std::vector<double>& t) {
  std::vector<double> finish(t.size(), 0.0);
  std::vector<std::size_t> via(t.size(), t.size());
  critical_path c{0, std::vector<bool>(t.size(), false)};
  std::size_t last = t.size();
  for (auto i : g.ops) {
    double ready = 0;
    for (auto p : g.preds[i])
      if (finish[p] > ready) {
        ready = finish[p];
        via[i] = p;
      }
    finish[i] = ready + t[i];
    if (finish[i] > c.ms) {
      c.ms = finish[i];
      last = i;
    }
  }
  for (auto i = last; i < t.size(); i = via[i]) c.on[i] = true;
  return c;
}

// The step time if the op DAG ran on `threads` threads with no other cost and every node took
// its serial time (no kernel loops): list scheduling, a free thread takes the ready node with
// the longest remaining path (the bound the flow graph could reach with perfect scheduling).
double list_schedule_ms(const op_dag& g, const std::vector<double>& t, int threads) {
  const std::size_t n = t.size();
  std::vector<std::vector<std::size_t>> succ(n);
  std::vector<std::size_t> waiting(n, 0);
  for (auto i : g.ops)
    for (auto p : g.preds[i]) {
      succ[p].push_back(i);
      ++waiting[i];
    }
  std::vector<double> tail(n, 0.0);  // longest path from the node's start to the end
  for (auto it = g.ops.rbegin(); it != g.ops.rend(); ++it) {
    double after = 0;
    for (auto s : succ[*it]) after = std::max(after, tail[s]);
    tail[*it] = t[*it] + after;
  }
  std::vector<std::size_t> ready;
  for (auto i : g.ops)
    if (waiting[i] == 0) ready.push_back(i);
  std::vector<std::pair<double, std::size_t>> running;  // (finish time, node)
  double now = 0;
  while (!ready.empty() || !running.empty()) {
    while (int(running.size()) < threads && !ready.empty()) {
      auto best = std::max_element(ready.begin(), ready.end(), [&](auto a, auto b) { return tail[a] < tail[b]; });
      running.emplace_back(now + t[*best], *best);
      ready.erase(best);
    }
    auto first = std::min_element(running.begin(), running.end());
    now = first->first;
    const auto done = first->second;
    running.erase(first);
    for (auto s : succ[done])
      if (--waiting[s] == 0) ready.push_back(s);
  }
  return now;
}

bool same_bits(view<const float> a, view<const float> b) {
  return a.shape == b.shape && std::equal(a.data, a.data + a.size(), b.data);
}
}  // namespace

int main(int argc, char** argv) try {
  int threads = 2, runs = 11, steps = 10;
  std::size_t batch = 64;
  std::string data_dir = data::default_fashion_mnist_dir;
  for (int i = 1; i < argc; i += 2) {
    const std::string opt = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(opt + " needs a value");
    const std::string value = argv[i + 1];
    if (opt == "--threads") threads = std::stoi(value);
    else if (opt == "--runs") runs = std::stoi(value);
    else if (opt == "--steps") steps = std::stoi(value);
    else if (opt == "--batch") batch = std::stoul(value);
    else if (opt == "--data-dir") data_dir = value;
    else throw std::invalid_argument("unknown option " + opt);
  }
  if (threads < 2 || runs < 1 || steps < 1 || batch == 0)
    throw std::invalid_argument("--threads must be >= 2, --runs, --steps and --batch positive");

  // One real batch of the training set, as the example feeds it.
  const data::normalization norm{.mean = data::fashion_mnist_mean, .stddev = data::fashion_mnist_stddev};
  const auto train_set = data::load_fashion_mnist(data_dir, data::split::train, norm);
  data::batcher<float, 4> batches(train_set, batch, {.seed = 1});
  tensor<float, 4> images({batch, 28, 28, 1});
  tensor<float, 1> labels({batch});
  for (const auto& b : batches.epoch(0)) {
    std::copy(b.images.begin(), b.images.end(), images.begin());
    std::copy(b.labels.begin(), b.labels.end(), labels.begin());
    break;
  }

  // Two programs of the same step, one per thread count; both train the same parameters.
  auto params = net::make_parameters<float>(net::sizes{});
  params.initialize(1);
  auto one = compile<float>(net::loss, net::weights);
  auto many = compile<float>(net::loss, net::weights);
  one.set_threads(1);
  many.set_threads(threads);
  for (auto* p : {&one, &many}) {
    params.bind(*p);
    p->bind(net::x, images).bind(net::labels, labels);
  }
  train::adam opt(params, {.lr = 1e-7});  // a tiny rate: the timed steps barely move the parameters
  auto step = [&](auto& program, int t) {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, std::size_t(t));  // for the optimizer
    return ms_per_step(steps, [&] {
      program.run();
      opt.step(params, program);
    });
  };
  step(one, 1);  // warm-up: planning, first touch of the buffers
  step(many, threads);
  std::vector<double> t1, tn;
  for (int r = 0; r < runs; ++r) {
    t1.push_back(step(one, 1));
    tn.push_back(step(many, threads));
  }
  const double step1 = median(t1), stepn = median(tn);

  // The replay of the same program, reading the same leaves.
  using nodes = typename decltype(one)::nodes;
  std::vector<std::pair<std::string, const float*>> leaves{{"x", images.data()}, {"labels", labels.data()}};
  for (const auto& e : params.entries()) leaves.emplace_back(std::string(e.name), e.value.data);
  one.run();
  replay rp(one.executor(), typegrad::detail::lowering_table<float, nodes>::kernels, leaves, threads);
  const auto& dag = rp.dag();

  // Check: the replay (each schedule) reproduces the program's loss and gradients bit for bit.
  auto check = [&](const char* what) {
    using outs = typename decltype(one)::outputs;
    bool ok = true;
    [&]<class... Outs>(graph::type_list<Outs...>) {
      ((ok = ok && same_bits(one.value(Outs{}), rp.value(graph::index_of_v<nodes, Outs>))), ...);
    }(outs{});
    if (!ok) throw std::runtime_error(fmt::format("replay ({}) differs from the program's outputs", what));
  };
  enum mode { serial, intra, inter, both };
  constexpr const char* mode_names[] = {"serial (1 thread)", "(b) kernel loops only", "(a) concurrent nodes only",
                                        "(a) + (b), as the executor"};
  auto run_mode = [&](mode m) {
    switch (m) {
      case serial: rp.run_topological(false); break;
      case intra: rp.run_topological(true); break;
      case inter: rp.run_flow(true); break;
      case both: rp.run_flow(false); break;
    }
  };
  for (mode m : {serial, intra, inter, both}) {
    run_mode(m);
    check(mode_names[m]);
  }
  std::vector<std::vector<double>> tm(4);
  for (int r = 0; r < runs; ++r)
    for (mode m : {serial, intra, inter, both}) tm[m].push_back(ms_per_step(steps, [&] { run_mode(m); }));
  const auto times = rp.node_times(runs);
  double work = 0;
  for (auto i : dag.ops) work += times[i];
  const auto critical = longest_path(dag, times);
  std::size_t adjoint = 0;
  for (auto i : dag.ops) adjoint += one.executor().nodes()[i].adjoint;

  fmt::print("# inception_net training step, batch {}, {} runs of {} steps (median of per-run means), {}\n", batch,
             runs, steps, kernels::gemm_description());
  fmt::print("step_ms_1={:.2f} step_ms_{}={:.2f} speedup={:.3f}\n", step1, threads, stepn, step1 / stepn);
  fmt::print("graph: {} op nodes ({} forward, {} adjoint); at most {} can run at the same time\n", dag.ops.size(),
             dag.ops.size() - adjoint, adjoint, max_concurrent_nodes(dag));
  fmt::print("serial per-node times: work {:.2f} ms, critical path {:.2f} ms, work / critical path {:.2f}\n", work,
             critical.ms, work / critical.ms);
  const double scheduled = list_schedule_ms(dag, times, threads);
  fmt::print("(a) alone on {} idle threads, from these times: at best {:.2f} ms, speed-up {:.2f} (list schedule)\n",
             threads, scheduled, work / scheduled);
  std::vector<std::size_t> slowest = dag.ops;
  std::sort(slowest.begin(), slowest.end(), [&](auto a, auto b) { return times[a] > times[b]; });
  slowest.resize(std::min<std::size_t>(slowest.size(), 8));
  fmt::print("slowest nodes (serial; * = on the critical path):\n");
  for (auto i : slowest)
    fmt::print("  {:>7.2f} ms {:>5.1f}% {} %{} {} : {}{}\n", times[i], 100 * times[i] / work, critical.on[i] ? '*' : ' ',
               i, one.executor().nodes()[i].label, one.executor().node_shape(i),
               one.executor().nodes()[i].adjoint ? " [adjoint]" : "");
  fmt::print("replay of the program (the loss and gradients bitwise equal to the program's in every mode), {} threads:\n",
             threads);
  const double base = median(tm[serial]);
  for (mode m : {serial, intra, inter, both})
    fmt::print("  {:<30} {:>8.2f} ms  speed-up {:.3f}\n", mode_names[m], median(tm[m]), base / median(tm[m]));
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "inception_threads: {}\n", e.what());
  return 1;
}
