#pragma once
// Gradient all-reduce for data-parallel training, overlapped with the backward pass.
//
//   distributed::world world(argc, argv);
//   auto step = compile<float>(loss, wrt(dense2_b, dense2_w, ..., conv1_w));  // order: see below
//   params.initialize(seed);
//   distributed::broadcast_parameters(world, params);   // every rank starts from rank 0's values
//   params.bind(step);
//   distributed::gradient_reducer reducer(world, step, params);  // collective: checks the ranks agree
//   data::batcher<float, 4> batches(train, 64, {.seed = 1, .shard = distributed::shard_of(world)});
//   for (const auto& b : batches.epoch(e)) {
//     step.bind(x, b.images).bind(labels, b.labels);
//     reducer.run(b.size(), b.global_size);  // step.run(); all-reduces start as gradients finish
//     reducer.wait();                         // the gradients, averaged over all ranks' samples
//     opt.step(params, reducer);              // reads reducer.gradient(w): the same on every rank
//   }
//
// Averaging: rank r's gradients are scaled by samples / global_samples before they are summed,
// so P ranks with batches of B samples give exactly the gradient (and reducer.loss()) of one
// process with the batch of P * B samples, also for an uneven last batch. This assumes the loss
// (the program's first output) is a mean over the batch, as softmax_cross_entropy is; run()
// without arguments weighs every rank 1 / P.
//
// Buckets and overlap: the gradients are packed, in the order the program produces them, into
// buckets of about options.bucket_bytes (25 MB, PyTorch DDP's default; a larger gradient is a
// bucket alone). The program's output-ready hook (program.on_output_ready) tells the reducer,
// while run() proceeds, that a gradient is final; the thread that computed it copies it (scaled)
// into its bucket, and the one that completes a bucket starts its MPI_Iallreduce at once,
// buckets always in the same order on every rank (MPI requires it). A progress thread calls MPI
// every options.progress_interval while all-reduces are in flight, since MPI libraries move
// non-blocking collectives on only inside MPI calls; wait() completes them. The program's own
// buffers are never written: other nodes may still read a finished gradient.
//
// Order: the program lists its nodes in the order of wrt(...) (each gradient's nodes after the
// ones it needs), and runs them in that order on one thread. Listing the parameters from the
// output backwards (wrt(dense2_b, dense2_w, ..., conv1_w)) makes the last layer's gradient final
// first and the first layer's last, as in a backward pass, so the early buckets go out while the
// rest of the backward pass runs. The buckets follow the same (compile-time) order.
//
// Failure: when run() throws on one rank (a bad label, ...), that rank still starts its
// remaining all-reduces, with a flag that the step failed, waits for them and rethrows its
// exception; every other rank's wait() then throws distributed_error, and the step's gradients
// are refused (gradient() throws) on every rank: no rank hangs and none updates alone.
//
// Allocation: the buckets (two copies of all gradients: sent and summed) are allocated by the
// constructor; a step allocates nothing. With one rank nothing is copied or sent: gradient(w)
// is the program's own.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "typegrad/runtime/program.hpp"
#include "typegrad/distributed/consistency.hpp"
#include "typegrad/distributed/world.hpp"
#include "typegrad/train/parameters.hpp"

namespace typegrad::distributed {

struct reducer_options {
  std::size_t bucket_bytes = std::size_t(25) << 20;  // PyTorch DDP's bucket_cap_mb = 25
  // Start each bucket's all-reduce during run(); false: all of them in wait(), after the
  // backward pass (also the fallback when MPI gives less than MPI_THREAD_SERIALIZED).
  bool overlap = true;
  // How often the progress thread calls MPI while all-reduces are in flight.
  std::chrono::microseconds progress_interval{100};
};

// Where a step's time went, summed over steps (reset_timing() restarts).
struct reducer_timing {
  std::uint64_t steps = 0;
  double run_seconds = 0;         // in run(): forward and backward passes
  double wait_seconds = 0;        // in wait(): the all-reduce time the backward pass did not hide
  double overlapped_seconds = 0;  // from each step's first all-reduce start to the end of its run()
  // Of the time all-reduces were in flight, the share that ran alongside the backward pass.
  double overlap() const {
    const double in_flight = overlapped_seconds + wait_seconds;
    return in_flight > 0 ? overlapped_seconds / in_flight : 0.0;
  }
};

// When a bucket's all-reduce started, in the last step.
struct bucket_launch {
  std::size_t gradients_ready = 0;  // how many of the gradients were final at that moment
  bool during_run = false;          // before run() returned, i.e. overlapping the backward pass
};

namespace detail {
template <class Program>
struct program_variables;
template <Scalar T, class Outs, class... Vars>
struct program_variables<program<T, Outs, graph::type_list<Vars...>>> {
  using type = graph::type_list<Vars...>;
};
}  // namespace detail

template <Scalar T>
class gradient_reducer {
 public:
  // Hooks into program (which must outlive the reducer and not move) and checks, collectively,
  // that every rank has the same parameters and program (distributed_error otherwise). Every
  // parameter must be among the program's wrt(...) variables.
  template <class Program, Variable... Vs>
  gradient_reducer(const world& w, Program& program, const train::parameter_set<T, Vs...>& params,
                   reducer_options options = {});
  ~gradient_reducer();
  gradient_reducer(const gradient_reducer&) = delete;
  gradient_reducer& operator=(const gradient_reducer&) = delete;

  // Runs the program (bind its inputs first); this rank's batch has `samples` of the step's
  // `global_samples`. A previous step must have been completed with wait().
  void run(std::size_t samples, std::size_t global_samples);
  void run();  // every rank weighs 1 / size
  // Completes the step's all-reduces. Throws distributed_error when another rank's run() failed.
  void wait();

  // The averaged gradient of a parameter (after wait(); valid until the next run()).
  template <Variable V>
  view<const T> gradient(V) const {
    return gradient(index_of(V::name));
  }
  view<const T> gradient(std::size_t parameter) const;  // in the parameter set's order
  // The program's first output (the loss), averaged like the gradients, after wait().
  double loss() const;

  std::size_t buckets() const;
  std::size_t bucket_of(std::size_t parameter) const;
  std::span<const bucket_launch> last_launches() const;  // per bucket (read after run())
  // How many of the current step's buckets have started their all-reduce; safe to read from
  // any thread while run() proceeds.
  std::size_t started_buckets() const;
  const reducer_timing& timing() const;
  void reset_timing();
  bool overlapping() const;  // options.overlap, and MPI allows it, and more than one rank

 private:
  struct setup {
    const world* w = nullptr;
    const runtime::executor<T>* executor = nullptr;
    void* program = nullptr;
    void (*run_program)(void*) = nullptr;
    void (*set_hook)(void*, std::function<void(std::size_t)>) = nullptr;
    std::size_t outputs = 0;
    std::vector<tensor_layout> parameters;
    std::vector<std::size_t> gradient_output;  // per parameter: its gradient's output index
    std::vector<std::size_t> production;       // per parameter: that output's node position
  };
  void init(setup s, reducer_options options);
  void ready(std::size_t output);
  std::size_t index_of(std::string_view name) const;

  struct state;
  struct state_deleter {  // (out of line: the template constructor may destroy s_ when init throws)
    void operator()(state* s) const;
  };
  std::unique_ptr<state, state_deleter> s_;
};

template <Scalar T>
template <class Program, Variable... Vs>
gradient_reducer<T>::gradient_reducer(const world& w, Program& program, const train::parameter_set<T, Vs...>& params,
                                      reducer_options options) {
  using vars = typename detail::program_variables<Program>::type;
  static_assert(((graph::index_of_v<vars, Vs> < Program::gradient_count) && ...),
                "gradient_reducer(world, program, params): every parameter must be among the program's wrt(...) variables");
  constexpr std::size_t first_gradient = Program::output_count - Program::gradient_count;
  setup s;
  s.w = &w;
  s.executor = &program.executor();
  s.program = &program;
  s.run_program = [](void* p) { static_cast<Program*>(p)->run(); };
  s.set_hook = [](void* p, std::function<void(std::size_t)> fn) { static_cast<Program*>(p)->on_output_ready(std::move(fn)); };
  s.outputs = Program::output_count;
  const auto layout = layout_of(params);
  s.parameters.assign(layout.begin(), layout.end());
  s.gradient_output = {(first_gradient + graph::index_of_v<vars, Vs>)...};
  for (auto o : s.gradient_output) s.production.push_back(Program::graph_type::value.roots[o]);
  init(std::move(s), options);
}

extern template class gradient_reducer<float>;
extern template class gradient_reducer<double>;

template <Scalar T, class Program, Variable... Vs>
gradient_reducer(const world&, Program&, const train::parameter_set<T, Vs...>&, reducer_options = {})
    -> gradient_reducer<T>;

}  // namespace typegrad::distributed
