// gradient_reducer: buckets, the all-reduces started from the program's output-ready hook, the
// progress thread and the failure protocol (include/typegrad/distributed/reducer.hpp).
#include "typegrad/distributed/reducer.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "../parallel/parallel_chunks.hpp"
#include "mpi_state.hpp"

namespace typegrad::distributed {

namespace {
using clock = std::chrono::steady_clock;
double seconds(clock::duration d) { return std::chrono::duration<double>(d).count(); }
constexpr std::size_t none = std::size_t(-1);
}  // namespace

template <Scalar T>
struct gradient_reducer<T>::state {
  setup info;
  reducer_options options;
  world::state* ws = nullptr;
  MPI_Comm comm = MPI_COMM_NULL;  // the reducer's own: its collectives never interleave with others
  bool single = false;            // one rank: gradients are the program's own, nothing is sent
  bool overlap = false;

  // Layout: parameter i's gradient is elements [offset[i], offset[i] + size) of the flat buffers;
  // bucket b is [begin, end) of them, holding `members` gradients, sent as `pieces` requests
  // (MPI counts are ints) starting at requests[first_request].
  struct bucket {
    std::size_t begin = 0, end = 0, members = 0, first_request = 0, pieces = 0;
  };
  std::vector<bucket> buckets;
  std::vector<std::size_t> offset, bucket_of;  // per parameter
  std::vector<std::size_t> parameter_of;       // per program output: its parameter, or none
  typegrad::detail::aligned_array<T> sent, summed;

  // The step. pending[b]: gradients of bucket b not yet final; written from TBB threads.
  std::unique_ptr<std::atomic<std::size_t>[]> pending;
  std::atomic<std::size_t> gradients_ready{0};
  std::atomic<bool> active{false};  // inside run(): the hook acts only then
  T scale = 1;
  double weight = 1;
  bool step_pending = false;  // run() done, wait() not yet
  bool step_valid = false;    // the last wait() succeeded: gradient() may be read
  double loss = 0;
  double status_sent[2] = {0, 0}, status_summed[2] = {0, 0};  // weighted loss, failed ranks

  // Under ws->lock: which buckets are complete, how many have been started (always a prefix, in
  // bucket order), the requests, and the progress thread's state.
  std::vector<char> complete;
  std::size_t started = 0;
  std::atomic<std::size_t> started_mirror{0};  // `started`, for started_buckets() from any thread
  std::size_t started_requests = 0;
  std::vector<MPI_Request> requests;  // the pieces of all buckets, then the status
  std::vector<bucket_launch> launches;
  std::optional<clock::time_point> first_start;
  bool polling = false, stop = false;
  std::condition_variable wake;
  std::thread progress;

  clock::time_point run_started, run_ended;
  reducer_timing timing;

  // Starts bucket b's all-reduce (under ws->lock, in bucket order).
  void start(std::size_t b) {
    auto& k = buckets[b];
    for (std::size_t p = 0; p < k.pieces; ++p) {
      const std::size_t at = k.begin + p * detail::max_count;
      const int n = int(std::min(detail::max_count, k.end - at));
      MPI_Iallreduce(sent.get() + at, summed.get() + at, n, detail::mpi_type<T>(), MPI_SUM, comm,
                     &requests[k.first_request + p]);
    }
    started_requests = k.first_request + k.pieces;
    launches[b] = {gradients_ready.load(), active.load()};
    if (b == 0 && active.load()) first_start = clock::now();
    polling = true;
    wake.notify_one();
  }
  // Starts every complete bucket whose predecessors have started (under ws->lock).
  void start_complete() {
    while (started < buckets.size() && complete[started]) start(started++);
    started_mirror.store(started, std::memory_order_release);
  }
  // Starts the remaining buckets whatever their contents, then the status (under ws->lock).
  void start_rest_and_status() {
    while (started < buckets.size()) start(started++);
    started_mirror.store(started, std::memory_order_release);
    MPI_Iallreduce(status_sent, status_summed, 2, MPI_DOUBLE, MPI_SUM, comm, &requests.back());
    started_requests = requests.size();
  }
  void finish_all() {  // (under ws->lock)
    MPI_Waitall(int(started_requests), requests.data(), MPI_STATUSES_IGNORE);
    polling = false;
    step_pending = false;
  }

  // The progress thread: MPI moves non-blocking collectives on only inside MPI calls.
  void progress_loop() {
    std::unique_lock lock(ws->lock);
    while (true) {
      wake.wait(lock, [&] { return stop || polling; });
      if (stop) return;
      int done = 0;
      MPI_Testall(int(started_requests), requests.data(), &done, MPI_STATUSES_IGNORE);
      if (done) polling = false;  // until the next start
      else wake.wait_for(lock, options.progress_interval);
    }
  }
};

template <Scalar T>
void gradient_reducer<T>::init(setup info, reducer_options options) {
  s_.reset(new state);
  auto& s = *s_;
  s.options = options;
  s.ws = &info.w->internal();
  s.single = info.w->size() == 1;
  s.overlap = options.overlap && info.w->overlap_supported() && !s.single;
  const std::size_t n = info.parameters.size();
  check_consistent(*info.w, info.parameters, program_fingerprint(info.executor->nodes()), info.executor->nodes().size(),
                   "gradient_reducer");

  // Buckets in production order (the gradients' positions in the program; ties by parameter order).
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return info.production[a] < info.production[b]; });
  const std::size_t cap = std::max<std::size_t>(1, options.bucket_bytes / sizeof(T));
  s.offset.assign(n, 0);
  s.bucket_of.assign(n, 0);
  std::size_t total = 0;
  for (auto i : order) {
    const std::size_t size = info.parameters[i].dims.numel();
    if (s.buckets.empty() || (s.buckets.back().members > 0 && s.buckets.back().end - s.buckets.back().begin + size > cap))
      s.buckets.push_back({total, total, 0, 0, 0});
    s.offset[i] = total;
    s.bucket_of[i] = s.buckets.size() - 1;
    total += size;
    s.buckets.back().end = total;
    ++s.buckets.back().members;
  }
  std::size_t requests = 0;
  for (auto& b : s.buckets) {
    b.first_request = requests;
    b.pieces = std::max<std::size_t>(1, (b.end - b.begin + detail::max_count - 1) / detail::max_count);
    requests += b.pieces;
  }
  s.parameter_of.assign(info.outputs, none);
  for (std::size_t i = 0; i < n; ++i) s.parameter_of[info.gradient_output[i]] = i;
  s.pending = std::make_unique<std::atomic<std::size_t>[]>(s.buckets.size());
  s.complete.assign(s.buckets.size(), 0);
  s.launches.assign(s.buckets.size(), {});
  s.info = std::move(info);

  if (s.single) {
    s.info.set_hook(s.info.program, {});
    return;
  }
  s.sent = typegrad::detail::allocate_aligned<T>(total);
  s.summed = typegrad::detail::allocate_aligned<T>(total);
  std::fill_n(s.sent.get(), total, T(0));
  std::fill_n(s.summed.get(), total, T(0));
  s.requests.assign(requests + 1, MPI_REQUEST_NULL);
  {
    std::lock_guard guard(s.ws->lock);
    MPI_Comm_dup(s.ws->comm, &s.comm);
  }
  s.info.set_hook(s.info.program, [this](std::size_t output) { ready(output); });
  if (s.overlap) s.progress = std::thread([&s] { s.progress_loop(); });
}

template <Scalar T>
void gradient_reducer<T>::state_deleter::operator()(state* s) const {
  delete s;
}

template <Scalar T>
gradient_reducer<T>::~gradient_reducer() {
  if (!s_) return;  // (init threw)
  auto& s = *s_;
  s.info.set_hook(s.info.program, {});
  if (s.single) return;
  const bool unwinding = std::uncaught_exceptions() > 0;
  {
    std::lock_guard guard(s.ws->lock);
    // A step left without wait(): complete it (the other ranks match it) unless an exception is
    // on its way out, which ends the job (world's destructor) and must not wait for anyone.
    if (s.step_pending && !unwinding) {
      if (s.started_requests < s.requests.size()) s.start_rest_and_status();
      s.finish_all();
    }
    s.stop = true;
    s.wake.notify_one();
  }
  if (s.progress.joinable()) s.progress.join();
  if (!unwinding) {
    std::lock_guard guard(s.ws->lock);
    MPI_Comm_free(&s.comm);
  }
}

// The output-ready hook, on the thread that finished the output: pack the gradient, and start
// its bucket (and any complete ones after it) once the bucket is whole.
template <Scalar T>
void gradient_reducer<T>::ready(std::size_t output) {
  auto& s = *s_;
  if (!s.active.load(std::memory_order_acquire)) return;
  const std::size_t i = output < s.parameter_of.size() ? s.parameter_of[output] : none;
  if (i == none) return;
  const auto g = s.info.executor->output(output);
  const auto& expected = s.info.parameters[i].dims;
  if (!(g.shape == expected))
    throw shape_error(fmt::format("gradient_reducer: the gradient of '{}' has shape {}, the parameter {}",
                                  s.info.parameters[i].name, g.shape, expected));
  T* __restrict dst = s.sent.get() + s.offset[i];
  const T* __restrict src = g.data;
  const T scale = s.scale;
  parallel_chunks(g.size(), 1, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t k = lo; k < hi; ++k) dst[k] = src[k] * scale;
  });
  s.gradients_ready.fetch_add(1, std::memory_order_acq_rel);
  const std::size_t b = s.bucket_of[i];
  if (s.pending[b].fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  std::lock_guard guard(s.ws->lock);
  s.complete[b] = 1;
  if (s.overlap) s.start_complete();
}

template <Scalar T>
void gradient_reducer<T>::run() {
  const auto p = std::size_t(s_->info.w->size());
  run(1, p);
}

template <Scalar T>
void gradient_reducer<T>::run(std::size_t samples, std::size_t global_samples) {
  auto& s = *s_;
  if (s.step_pending) {
    wait();
    throw distributed_error("gradient_reducer::run: the previous step was not completed with wait(); it is "
                            "completed now and its gradients dropped");
  }
  if (global_samples == 0 || samples > global_samples || (s.single && samples != global_samples))
    throw std::invalid_argument(fmt::format("gradient_reducer::run: {} samples of {} on rank {} of {}", samples,
                                            global_samples, s.info.w->rank(), s.info.w->size()));
  s.weight = double(samples) / double(global_samples);
  s.scale = T(s.weight);
  s.step_valid = false;
  s.run_started = clock::now();
  if (s.single) {
    s.info.run_program(s.info.program);  // (when it throws there is nothing to undo)
    s.run_ended = clock::now();
    s.step_pending = true;
    return;
  }
  s.step_pending = true;
  for (std::size_t b = 0; b < s.buckets.size(); ++b) s.pending[b].store(s.buckets[b].members);
  s.gradients_ready.store(0);
  {
    std::lock_guard guard(s.ws->lock);
    std::fill(s.complete.begin(), s.complete.end(), 0);
    std::fill(s.launches.begin(), s.launches.end(), bucket_launch{});
    s.started = s.started_requests = 0;
    s.started_mirror.store(0);
    s.first_start.reset();
  }
  s.status_sent[0] = s.status_sent[1] = 0;
  s.active.store(true, std::memory_order_release);
  try {
    s.info.run_program(s.info.program);
  } catch (...) {
    // This rank's step failed: take part in the step's collectives all the same, with the
    // failure flag set, so the other ranks learn of it in wait() instead of waiting forever.
    s.active.store(false, std::memory_order_release);
    s.run_ended = clock::now();
    std::lock_guard guard(s.ws->lock);
    s.status_sent[1] = 1;
    s.start_rest_and_status();
    s.finish_all();
    throw;
  }
  s.active.store(false, std::memory_order_release);
  s.run_ended = clock::now();
  s.status_sent[0] = double(s.info.executor->output(0).data[0]) * s.weight;
  if (s.overlap) {
    std::lock_guard guard(s.ws->lock);
    s.start_rest_and_status();  // (every bucket has started: each gradient fired once)
  }
}

template <Scalar T>
void gradient_reducer<T>::wait() {
  auto& s = *s_;
  if (!s.step_pending) throw distributed_error("gradient_reducer::wait: no step in flight; call run() first");
  const auto waiting = clock::now();
  if (s.single) {
    s.step_pending = false;
    s.loss = double(s.info.executor->output(0).data[0]);
  } else {
    {
      std::lock_guard guard(s.ws->lock);
      if (!s.overlap) s.start_rest_and_status();
      s.finish_all();
    }
    if (s.status_summed[1] > 0)
      throw distributed_error(fmt::format("gradient_reducer: {} rank(s) failed in this step (their run() threw); "
                                          "the step's gradients are discarded on every rank",
                                          std::size_t(s.status_summed[1])));
    s.loss = s.status_summed[0];
  }
  const auto now = clock::now();
  s.step_valid = true;
  ++s.timing.steps;
  s.timing.run_seconds += seconds(s.run_ended - s.run_started);
  s.timing.wait_seconds += seconds(now - waiting);
  if (s.first_start) s.timing.overlapped_seconds += seconds(s.run_ended - *s.first_start);
}

template <Scalar T>
view<const T> gradient_reducer<T>::gradient(std::size_t parameter) const {
  const auto& s = *s_;
  if (parameter >= s.info.parameters.size())
    throw std::out_of_range(fmt::format("gradient_reducer::gradient: parameter {} of {}", parameter,
                                        s.info.parameters.size()));
  if (!s.step_valid)
    throw distributed_error(fmt::format("gradient_reducer::gradient('{}'): no averaged gradient: the last step "
                                        "has not completed wait() successfully",
                                        s.info.parameters[parameter].name));
  if (s.single) return s.info.executor->output(s.info.gradient_output[parameter]);
  return {s.summed.get() + s.offset[parameter], s.info.parameters[parameter].dims};
}

template <Scalar T>
std::size_t gradient_reducer<T>::index_of(std::string_view name) const {
  const auto& p = s_->info.parameters;
  for (std::size_t i = 0; i < p.size(); ++i)
    if (p[i].name == name) return i;
  throw binding_error(fmt::format("gradient_reducer::gradient: '{}' is not one of its parameters", name));
}

template <Scalar T>
double gradient_reducer<T>::loss() const {
  if (!s_->step_valid) throw distributed_error("gradient_reducer::loss: the last step has not completed wait() successfully");
  return s_->loss;
}
template <Scalar T> std::size_t gradient_reducer<T>::buckets() const { return s_->buckets.size(); }
template <Scalar T> std::size_t gradient_reducer<T>::bucket_of(std::size_t parameter) const { return s_->bucket_of.at(parameter); }
template <Scalar T> std::span<const bucket_launch> gradient_reducer<T>::last_launches() const { return s_->launches; }
template <Scalar T> const reducer_timing& gradient_reducer<T>::timing() const { return s_->timing; }
template <Scalar T> std::size_t gradient_reducer<T>::started_buckets() const {
  return s_->started_mirror.load(std::memory_order_acquire);
}
template <Scalar T> void gradient_reducer<T>::reset_timing() { s_->timing = {}; }
template <Scalar T> bool gradient_reducer<T>::overlapping() const { return s_->overlap; }

template class gradient_reducer<float>;
template class gradient_reducer<double>;

}  // namespace typegrad::distributed
