#define BOOST_TEST_MODULE distributed
// typegrad::distributed, run by ctest under mpirun with 2 and 3 ranks and once alone (a world of
// one rank; the cases that need several ranks are skipped then). Every rank runs every case;
// the collectives inside must match, so a case never stops early on one rank only.
//
// - P ranks with batches of B give, step after step, the parameters of one process with batches
//   of P * B (double: to 1e-12 relative; float: 1e-5), over two epochs with an uneven last
//   batch, with one bucket or one per gradient, overlapped or not, at 1 and 2 threads; and the
//   ranks' parameters stay bitwise equal.
// - Overlap: the backward pass itself waits (an op in it) until the first bucket's all-reduce
//   has started, so overlap cannot vanish unnoticed; without overlap that op times out.
// - Sharding over real ranks, the start-up check (different shapes, names, programs), a step
//   that fails on one rank, checkpoints and metrics.
#include <boost/test/unit_test.hpp>

#include <typegrad/distributed.hpp>
#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace typegrad;
namespace tt = boost::test_tools;
namespace ut = boost::unit_test;

namespace {
std::unique_ptr<distributed::world> the_world;
struct mpi_fixture {
  mpi_fixture() { the_world = std::make_unique<distributed::world>(); }
  ~mpi_fixture() { the_world.reset(); }
};
distributed::world& world() { return *the_world; }
// For cases that need several ranks (a precondition: skipped, not passed, when alone).
tt::assertion_result several_ranks(ut::test_unit_id) {
  tt::assertion_result r(the_world && the_world->size() > 1);
  r.message() << "needs mpirun with 2 or more ranks";
  return r;
}
tt::assertion_result one_rank(ut::test_unit_id) {
  tt::assertion_result r(the_world && the_world->size() == 1);
  r.message() << "the single-rank path: run without mpirun";
  return r;
}

constexpr var<"x", 2> x;
constexpr var<"labels", 1> labels;
constexpr var<"w1", 2> w1;
constexpr var<"b1", 1> b1;
constexpr var<"w2", 2> w2;
constexpr var<"b2", 1> b2;
constexpr var<"v1", 2> v1;  // another name, for the check of names

constexpr auto logits = dense(tanh(dense(x, w1, b1)), w2, b2);
constexpr auto loss = softmax_cross_entropy(logits, labels);
constexpr auto relu_loss = softmax_cross_entropy(dense(relu(dense(x, w1, b1)), w2, b2), labels);

template <Scalar T>
auto make_params(std::size_t hidden = 16) {
  return train::make_parameters<T>(train::param(w1, {12, hidden}, train::init::he_normal), train::param(b1, {hidden}),
                                   train::param(w2, {hidden, 4}, train::init::glorot_uniform), train::param(b2, {4}));
}

// n images of 3x4 random pixels with 4 random classes; the same on every rank.
data::labelled_images synthetic_set(std::size_t n) {
  data::labelled_images ds;
  std::mt19937 rng(42);
  ds.images.dims = {n, 3, 4};
  for (std::size_t i = 0; i < n * 12; ++i) ds.images.values.push_back(std::uint8_t(rng() % 256));
  for (std::size_t i = 0; i < n; ++i) ds.labels.push_back(std::uint8_t(rng() % 4));
  ds.classes = 4;
  return ds;
}

// max |a - b| / max |b| over each parameter.
template <class Params>
double relative_difference(const Params& a, const Params& b) {
  double worst = 0;
  const auto ea = a.entries(), eb = b.entries();
  for (std::size_t i = 0; i < ea.size(); ++i) {
    double diff = 0, scale = 0;
    for (std::size_t k = 0; k < ea[i].value.size(); ++k) {
      diff = std::max(diff, std::abs(double(ea[i].value.data[k]) - double(eb[i].value.data[k])));
      scale = std::max(scale, std::abs(double(eb[i].value.data[k])));
    }
    worst = std::max(worst, diff / std::max(scale, 1e-300));
  }
  return worst;
}

// Whether every rank holds bitwise the same parameters.
template <class Params>
bool in_sync(const Params& p) {
  std::string bytes;
  for (const auto& e : p.entries())
    bytes.append(reinterpret_cast<const char*>(e.value.data), e.value.size() * sizeof(*e.value.data));
  const auto all = world().all_gather(bytes);
  for (const auto& other : all)
    if (other != all[0]) return false;
  return true;
}

template <Scalar T>
void check_same_as_one_process(double tolerance, std::size_t bucket_bytes, bool overlap, int threads) {
  auto& w = world();
  const auto ds = synthetic_set(100);
  const std::size_t ranks = std::size_t(w.size()), batch = 8;

  // The reference: one process with batches of ranks * batch, computed on every rank.
  auto ref_params = make_params<T>();
  ref_params.initialize(100);
  auto ref = compile<T>(loss, wrt(w1, b1, w2, b2));
  ref.set_threads(threads);
  ref_params.bind(ref);
  train::adam ref_opt(ref_params, {.lr = 0.02});
  data::batcher<T, 2> ref_batches(ds, ranks * batch, {.seed = 5});

  // Data-parallel: rank 0's initial values (each rank draws its own, then takes rank 0's),
  // batches of `batch` from this rank's shard.
  auto params = make_params<T>();
  params.initialize(100 + std::uint64_t(w.rank()));
  distributed::broadcast_parameters(w, params);
  auto step = compile<T>(loss, wrt(b2, w2, b1, w1));  // last layer first: its gradient is final first
  step.set_threads(threads);
  params.bind(step);
  distributed::gradient_reducer reducer(w, step, params, {.bucket_bytes = bucket_bytes, .overlap = overlap});
  train::adam opt(params, {.lr = 0.02});
  data::batcher<T, 2> batches(ds, batch, {.seed = 5, .shard = distributed::shard_of(w)});
  BOOST_REQUIRE(batches.batches() == ref_batches.batches());

  double worst_loss = 0;
  for (std::uint64_t epoch = 0; epoch < 2; ++epoch) {
    ref_batches.set_epoch(epoch);
    batches.set_epoch(epoch);
    for (std::size_t i = 0; i < batches.batches(); ++i) {
      const auto rb = ref_batches.fill(i);
      ref.bind(x, rb.images).bind(labels, rb.labels).run();
      ref_opt.step(ref_params, ref);

      const auto b = batches.fill(i);
      step.bind(x, b.images).bind(labels, b.labels);
      reducer.run(b.size(), b.global_size);
      reducer.wait();
      opt.step(params, reducer);
      const double ref_loss = ref.scalar(loss);
      worst_loss = std::max(worst_loss, std::abs(reducer.loss() - ref_loss) / std::abs(ref_loss));
    }
  }
  const double worst_parameter = relative_difference(params, ref_params);
  BOOST_TEST_MESSAGE("rank " << w.rank() << ": relative differences: loss " << worst_loss << ", parameters "
                             << worst_parameter);
  BOOST_TEST(worst_loss <= tolerance);
  BOOST_TEST(worst_parameter <= tolerance);
  BOOST_TEST(in_sync(params));
  BOOST_TEST(reducer.timing().steps == 2 * batches.batches());
  BOOST_TEST(reducer.overlapping() == (overlap && w.size() > 1));
}
}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(mpi_fixture);

BOOST_AUTO_TEST_CASE(ranks_together_step_like_one_process_with_the_global_batch) {
  for (int threads : {1, 2})
    for (bool overlap : {true, false})
      for (std::size_t bucket_bytes : {std::size_t(25) << 20, std::size_t(64)}) {  // one bucket, or one per gradient
        BOOST_TEST_CONTEXT("threads " << threads << ", overlap " << overlap << ", bucket bytes " << bucket_bytes) {
          check_same_as_one_process<double>(1e-12, bucket_bytes, overlap, threads);
        }
      }
  // float: the ranks' partial means are rounded before they are summed.
  check_same_as_one_process<float>(1e-5, 64, true, 1);
}

BOOST_AUTO_TEST_CASE(buckets_follow_the_production_order) {
  auto& w = world();
  auto params = make_params<double>();
  auto step = compile<double>(loss, wrt(b2, w2, b1, w1));
  params.bind(step);
  // 16 * 4 doubles for w2 and 4 for b2 fit 600 bytes; then b1 (16) and w1 (12 * 16) alone.
  distributed::gradient_reducer reducer(w, step, params, {.bucket_bytes = 600});  // (alone too)
  BOOST_TEST(reducer.buckets() == 3u);
  BOOST_TEST(reducer.bucket_of(3) == 0u);  // b2
  BOOST_TEST(reducer.bucket_of(2) == 0u);  // w2
  BOOST_TEST(reducer.bucket_of(1) == 1u);  // b1
  BOOST_TEST(reducer.bucket_of(0) == 2u);  // w1
}

namespace {
// Overlap probe: `pass` is an identity whose vjp is `gate`, an identity that waits (up to
// gate_timeout) until the reducer's first bucket has started its all-reduce. The gate stands in
// the backward pass between the gradient of w2 (bucket 0) and that of w1 (bucket 1).
std::atomic<const distributed::gradient_reducer<double>*> probe{nullptr};
std::atomic<bool> gate_opened{false};
std::chrono::milliseconds gate_timeout{10000};
struct gate_op : elementwise_tag, shape_preserving {
  static constexpr std::string_view name = "gate";
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    const auto until = std::chrono::steady_clock::now() + gate_timeout;
    while (probe.load()->started_buckets() == 0 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    gate_opened = probe.load()->started_buckets() > 0;
    std::memcpy(out.data, in[0].data, out.size() * sizeof(T));
  }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G g, Y, X) {
    return g;
  }
};
struct pass_op : elementwise_tag, shape_preserving {
  static constexpr std::string_view name = "pass";
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    std::memcpy(out.data, in[0].data, out.size() * sizeof(T));
  }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G g, Y, X) {
    return node<gate_op, G>{};
  }
};
template <Expression X>
constexpr auto pass(X) {
  return node<pass_op, X>{};
}
constexpr auto gated_loss = mean(square(matmul(pass(tanh(matmul(x, w1))), w2)));
}  // namespace

BOOST_AUTO_TEST_CASE(the_first_all_reduce_starts_during_the_backward_pass, *ut::precondition(several_ranks)) {
  auto& w = world();
  for (int threads : {1, 2})
    for (bool overlap : {true, false}) {
      BOOST_TEST_CONTEXT("threads " << threads << ", overlap " << overlap) {
        // Big enough that at 2 threads independent nodes run concurrently (the flow graph):
        // w2's gradient beside the adjoint of pass(...), which the gate then reads.
        auto params = train::make_parameters<double>(train::param(w1, {128, 256}, train::init::he_normal),
                                                     train::param(w2, {256, 64}, train::init::he_normal));
        params.initialize(3);
        auto step = compile<double>(gated_loss, wrt(w2, w1));
        step.set_threads(threads);
        params.bind(step);
        tensor<double, 2> xv({256, 128});
        for (std::size_t k = 0; k < xv.size(); ++k) xv[k] = std::sin(double(k));
        step.bind(x, xv);
        distributed::gradient_reducer reducer(w, step, params, {.bucket_bytes = 8, .overlap = overlap});
        BOOST_TEST(reducer.buckets() == 2u);
        probe = &reducer;
        gate_timeout = std::chrono::milliseconds(overlap ? 10000 : 300);
        gate_opened = false;
        reducer.run();
        const bool opened = gate_opened;
        reducer.wait();
        const distributed::bucket_launch first = reducer.last_launches()[0];
        if (overlap) {
          // w2's bucket went out while the backward pass had w1's gradient still to compute.
          BOOST_TEST(opened);
          BOOST_TEST(first.during_run);
          BOOST_TEST(first.gradients_ready == 1u);
          BOOST_TEST(reducer.timing().overlapped_seconds > 0);
        } else {
          // Without overlap the gate had to time out: the probe tells the two apart.
          BOOST_TEST(!opened);
          BOOST_TEST(!first.during_run);
          BOOST_TEST(first.gradients_ready == 2u);
        }
      }
    }
  probe = nullptr;
}

BOOST_AUTO_TEST_CASE(sharded_epochs_visit_every_sample_once_over_the_ranks) {
  auto& w = world();
  const std::size_t n = 103;
  const auto ds = synthetic_set(n);
  for (std::size_t batch : {1u, 4u, 7u}) {
    data::batcher<float, 2> batches(ds, batch, {.seed = 9, .shard = distributed::shard_of(w)});
    const std::size_t global = batch * std::size_t(w.size()), rest = n % global;
    const std::size_t visited = rest > 0 && rest < std::size_t(w.size()) ? n - rest : n;
    for (const auto& b : batches.epoch(1)) {
      std::vector<double> sizes{double(b.size()), double(b.global_size)};
      w.all_sum(sizes);
      BOOST_TEST(sizes[0] == double(b.global_size));  // the ranks' parts make up the global batch
      BOOST_TEST(sizes[1] == double(b.global_size) * w.size());
    }
    std::vector<double> seen(n, 0.0);
    for (const auto& b : batches.epoch(1))
      for (auto i : b.samples) seen[i] += 1;
    w.all_sum(seen);
    std::size_t once = 0, more = 0;
    for (double c : seen) {
      once += c == 1;
      more += c > 1;
    }
    BOOST_TEST(once == visited);
    BOOST_TEST(more == 0u);
  }
}

namespace {
// Whether `fn` throws distributed_error whose message has every one of `words`.
template <class F>
bool fails_naming(F&& fn, std::initializer_list<std::string> words) {
  try {
    fn();
  } catch (const distributed_error& e) {
    const std::string m = e.what();
    for (const auto& word : words)
      if (m.find(word) == std::string::npos) {
        BOOST_TEST_MESSAGE("message without '" << word << "': " << m);
        return false;
      }
    return true;
  }
  return false;
}
}  // namespace

BOOST_AUTO_TEST_CASE(ranks_with_different_models_fail_alike_at_start_up, *ut::precondition(several_ranks)) {
  auto& w = world();
  // A different shape on rank 1 (hidden 15 instead of 16).
  auto params = make_params<double>(w.rank() == 1 ? 15 : 16);
  BOOST_TEST(fails_naming([&] { distributed::check_consistent(w, params); },
                          {"rank 1", "'w1' has shape (12, 15), rank 0's (12, 16)"}));
  BOOST_TEST(fails_naming([&] { distributed::broadcast_parameters(w, params); }, {"broadcast_parameters", "'w1'"}));
  {
    auto step = compile<double>(loss, wrt(w1, b1, w2, b2));
    params.bind(step);
    BOOST_TEST(fails_naming([&] { distributed::gradient_reducer reducer(w, step, params); },
                            {"gradient_reducer", "rank 1", "'w1'"}));
  }
  // A different name on rank 1.
  auto renamed = train::make_parameters<double>(train::param(v1, {12, 16}), train::param(b1, {16}));
  auto named = train::make_parameters<double>(train::param(w1, {12, 16}), train::param(b1, {16}));
  BOOST_TEST(fails_naming([&] { w.rank() == 1 ? distributed::check_consistent(w, renamed) : distributed::check_consistent(w, named); },
                          {"rank 1: tensor 0 is 'v1' (12, 16), rank 0's is 'w1' (12, 16)"}));
  // The same parameters, a different program on the last rank.
  auto same = make_params<double>();
  auto tanh_step = compile<double>(loss, wrt(w1, b1, w2, b2));
  auto relu_step = compile<double>(relu_loss, wrt(w1, b1, w2, b2));
  same.bind(tanh_step);
  same.bind(relu_step);
  const bool last = w.rank() == w.size() - 1;
  BOOST_TEST(fails_naming(
      [&] {
        if (last) distributed::gradient_reducer reducer(w, relu_step, same);
        else distributed::gradient_reducer reducer(w, tanh_step, same);
      },
      {fmt::format("rank {}: the program differs from rank 0's", w.size() - 1)}));
  // And all ranks agreeing passes.
  BOOST_CHECK_NO_THROW(distributed::check_consistent(w, same, tanh_step));
}

namespace {
std::atomic<bool> fail_backward{false};
struct failing_op : elementwise_tag, shape_preserving {
  static constexpr std::string_view name = "failing";
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    std::memcpy(out.data, in[0].data, out.size() * sizeof(T));
  }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G g, Y, X);
};
struct failing_vjp_op : elementwise_tag, shape_preserving {
  static constexpr std::string_view name = "failing_vjp";
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    if (fail_backward) throw value_error("failing_vjp: asked to fail");
    std::memcpy(out.data, in[0].data, out.size() * sizeof(T));
  }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G g, Y, X) {
    return g;
  }
};
template <std::size_t I, class G, class Y, class X>
auto failing_op::vjp(G, Y, X) {
  return node<failing_vjp_op, G>{};
}
template <Expression X>
constexpr auto failing(X) {
  return node<failing_op, X>{};
}
constexpr auto failing_loss = softmax_cross_entropy(dense(failing(tanh(dense(x, w1, b1))), w2, b2), labels);
}  // namespace

BOOST_AUTO_TEST_CASE(a_step_that_fails_on_one_rank_fails_on_every_rank, *ut::precondition(several_ranks)) {
  auto& w = world();
  const auto ds = synthetic_set(64);
  for (bool overlap : {true, false}) {
    BOOST_TEST_CONTEXT("overlap " << overlap) {
      auto params = make_params<double>();
      params.initialize(1);
      auto step = compile<double>(failing_loss, wrt(b2, w2, b1, w1));
      step.set_threads(1);
      params.bind(step);
      distributed::gradient_reducer reducer(w, step, params, {.bucket_bytes = 64, .overlap = overlap});
      train::sgd opt(params, {.lr = 0.1});
      data::batcher<double, 2> batches(ds, 8, {.seed = 2, .shard = distributed::shard_of(w)});
      tensor<double, 1> bad_labels({8});
      bad_labels[3] = 7;  // 4 classes
      const auto b = batches.fill(0);
      // Rank 1 fails before any kernel (a bad label), then in the backward pass after the
      // first buckets have gone out (fail_backward); every other rank's wait() throws.
      for (int way = 0; way < 2; ++way) {
        const bool failing_rank = w.rank() == 1;
        step.bind(x, b.images).bind(labels, failing_rank && way == 0 ? bad_labels : b.labels);
        fail_backward = failing_rank && way == 1;
        bool own_error = false, told = false;
        try {
          reducer.run(b.size(), b.global_size);
          reducer.wait();
        } catch (const value_error&) {
          own_error = true;
        } catch (const distributed_error& e) {
          told = std::string(e.what()).find("1 rank(s) failed") != std::string::npos;
        }
        fail_backward = false;
        BOOST_TEST((failing_rank ? own_error : told));
        BOOST_CHECK_THROW(reducer.gradient(w1), distributed_error);  // refused on every rank
      }
      // The next step works everywhere, and the ranks stay equal.
      step.bind(labels, b.labels);
      reducer.run(b.size(), b.global_size);
      reducer.wait();
      opt.step(params, reducer);
      BOOST_TEST(in_sync(params));
    }
  }
}

BOOST_AUTO_TEST_CASE(checkpoints_are_written_by_rank_0_and_load_on_every_rank) {
  auto& w = world();
  // Rank 0's temporary directory, for every rank (one machine: one file system).
  std::string dir;
  if (w.root()) {
    dir = (std::filesystem::temp_directory_path() / ("typegrad_distributed_" + std::to_string(::getpid()))).string();
    std::filesystem::create_directories(dir);
  }
  w.broadcast(dir);
  const auto path = std::filesystem::path(dir) / "net.safetensors";

  auto params = make_params<double>();
  params.initialize(100 + std::uint64_t(w.rank()));  // different on each rank: rank 0's are saved
  train::adam opt(params, {.lr = 0.003});
  opt.set_steps(17);
  for (auto& e : opt.state())
    for (std::size_t k = 0; k < e.value.size(); ++k) e.value.data[k] = double(k) + w.rank();
  distributed::save_checkpoint(w, path, params, opt, {{"model", "mlp"}});
  auto expected = make_params<double>();
  expected.initialize(100);  // rank 0's

  auto loaded = make_params<double>();
  train::adam loaded_opt(loaded, {.lr = 1});
  const auto metadata = distributed::load_checkpoint(w, path, loaded, loaded_opt);
  BOOST_TEST(relative_difference(loaded, expected) == 0.0);
  BOOST_TEST(loaded_opt.steps() == 17u);
  BOOST_TEST(loaded_opt.lr() == 0.003);
  BOOST_TEST(loaded_opt.state()[0].value.data[1] == 1.0);  // rank 0's state
  BOOST_TEST(metadata.at("model") == "mlp");

  // A damaged file: data_error on every rank, and the parameters keep their values.
  if (w.root()) std::filesystem::resize_file(path, 100);
  w.barrier();
  BOOST_CHECK_THROW(distributed::load_checkpoint(w, path, loaded), data_error);
  BOOST_TEST(relative_difference(loaded, expected) == 0.0);
  // A file that cannot be written: io_error on every rank.
  BOOST_CHECK_THROW(distributed::save_checkpoint(w, std::filesystem::path(dir) / "no/such/dir/x.safetensors", params),
                    io_error);
  w.barrier();
  if (w.root()) std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(metrics_combine_every_ranks_samples) {
  auto& w = world();
  const double r = w.rank();
  // Rank r: r + 1 samples, mean loss r, accuracy 1 / (r + 1) (one right).
  const auto all = distributed::all_reduce(w, train::evaluation{.loss = r, .accuracy = 1 / (r + 1), .samples = std::size_t(r) + 1});
  double loss_sum = 0, samples = 0;
  for (int k = 0; k < w.size(); ++k) {
    loss_sum += double(k) * (k + 1);
    samples += k + 1;
  }
  BOOST_TEST(all.samples == std::size_t(samples));
  BOOST_TEST(all.loss == loss_sum / samples, tt::tolerance(1e-12));
  BOOST_TEST(all.accuracy == w.size() / samples, tt::tolerance(1e-12));
  BOOST_TEST((distributed::progress_mode_for(w, train::progress_mode::lines) ==
              (w.root() ? train::progress_mode::lines : train::progress_mode::quiet)));
}

BOOST_AUTO_TEST_CASE(alone_the_reducer_passes_the_programs_gradients_through, *ut::precondition(one_rank)) {
  auto& w = world();
  auto params = make_params<double>();
  params.initialize(1);
  auto step = compile<double>(loss, wrt(w1, b1, w2, b2));
  params.bind(step);
  const auto ds = synthetic_set(16);
  data::batcher<double, 2> batches(ds, 16, {.shuffle = false});
  const auto b = batches.fill(0);
  step.bind(x, b.images).bind(labels, b.labels);
  distributed::gradient_reducer reducer(w, step, params);
  BOOST_TEST(!reducer.overlapping());
  reducer.run();
  reducer.wait();
  BOOST_TEST(reducer.gradient(w2).data == step.gradient(w2).data);
  BOOST_TEST(reducer.loss() == double(step.scalar(loss)));
  BOOST_CHECK_THROW(reducer.run(3, 16), std::invalid_argument);  // alone, a batch is the global batch
}
