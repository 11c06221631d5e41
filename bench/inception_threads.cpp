// How much a second thread speeds up the training step of the Inception-style network
// (examples/nets/inception_net.hpp, as fashion_mnist_inception trains it), and where the gain
// could come from: the parallel loops inside kernels, and running independent nodes (such as the
// branches of a block) at the same time.
//
//   inception_threads [--threads N] [--runs R] [--steps S] [--batch B] [--data-dir DIR]
//
// 1. The step as the example runs it (program.run() + Adam), with 1 thread and with N threads,
//    interleaved so that both see the same machine load: the median over R runs of the mean time
//    of S steps, after a warm-up.
// 2. The graph: op nodes, and how many of them can run at the same time (the width of the flow
//    graph: the largest set of nodes none of which depends on another).
// 3. What concurrent nodes could add. The program's profiler times each kernel alone on one thread
//    (program.profile_ms(): the kernels the program runs, its fusions and elementwise regions
//    included; nodes computed inside another's kernel take 0). Those times give the work and the
//    critical path (the longest chain of dependent nodes, weighted by time): work / critical path
//    bounds what running independent nodes at once could gain with unlimited threads, and a list
//    schedule of those times on N threads what it could gain here (a figure that a loaded machine
//    distorts less than the wall-clock speed-ups, which need idle cores). Whether the executor
//    overlaps nodes at all is its own decision per plan (docs/architecture.md, "Which nodes run
//    concurrently"); an earlier version of this bench replayed the node list under schedulers of
//    its own, which the plan-time fusions made impossible.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <tbb/global_control.h>

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

  // Each node's kernel alone, as the program runs it (its fusions and elementwise regions
  // included), on one thread: the mean over `runs` profiled runs.
  const op_dag dag(one.executor().nodes());
  one.set_profiling(true).reset_profile();
  for (int r = 0; r < runs; ++r) one.run();
  const auto times = one.profile_ms();
  one.set_profiling(false);
  double work = 0;
  std::size_t kernels_run = 0;
  for (auto i : dag.ops) {
    work += times[i];
    kernels_run += times[i] > 0;
  }
  const auto critical = longest_path(dag, times);
  std::size_t adjoint = 0;
  for (auto i : dag.ops) adjoint += one.executor().nodes()[i].adjoint;

  fmt::print("# inception_net training step, batch {}, {} runs of {} steps (median of per-run means), {}\n", batch,
             runs, steps, kernels::gemm_description());
  fmt::print("step_ms_1={:.2f} step_ms_{}={:.2f} speedup={:.3f}\n", step1, threads, stepn, step1 / stepn);
  fmt::print("graph: {} op nodes ({} forward, {} adjoint); at most {} can run at the same time; {} kernels run\n",
             dag.ops.size(), dag.ops.size() - adjoint, adjoint, max_concurrent_nodes(dag), kernels_run);
  fmt::print("per-node kernel times, 1 thread (program.profile_ms()): work {:.2f} ms, critical path {:.2f} ms, work / "
             "critical path {:.2f}\n",
             work, critical.ms, work / critical.ms);
  const double scheduled = list_schedule_ms(dag, times, threads);
  fmt::print("independent nodes at once on {} idle threads, kernels serial, from these times: at best {:.2f} ms, "
             "speed-up {:.2f} (list schedule)\n",
             threads, scheduled, work / scheduled);
  std::vector<std::size_t> slowest = dag.ops;
  std::sort(slowest.begin(), slowest.end(), [&](auto a, auto b) { return times[a] > times[b]; });
  slowest.resize(std::min<std::size_t>(slowest.size(), 8));
  fmt::print("slowest nodes (serial; * = on the critical path):\n");
  for (auto i : slowest)
    fmt::print("  {:>7.2f} ms {:>5.1f}% {} %{} {} : {}{}\n", times[i], 100 * times[i] / work, critical.on[i] ? '*' : ' ',
               i, one.executor().nodes()[i].label, one.executor().node_shape(i),
               one.executor().nodes()[i].adjoint ? " [adjoint]" : "");
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "inception_threads: {}\n", e.what());
  return 1;
}
