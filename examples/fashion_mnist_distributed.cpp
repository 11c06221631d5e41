// fashion_mnist_cnn's CNN trained data-parallel on MPI (typegrad::distributed; docs/distributed.md).
//
//   mpirun -np 2 fashion_mnist_distributed --threads 1     2 ranks of 1 thread (as root: --allow-run-as-root)
//   mpirun --hostfile hosts --map-by ppr:1:node --bind-to none fashion_mnist_distributed   a rank per machine
//   fashion_mnist_distributed                              alone: one rank, fashion_mnist_cnn's loop
//   fashion_mnist_distributed --evaluate                   evaluate the checkpoint on every rank's shard
//
// Every rank trains on its shard of each global batch (--batch samples per rank, so P ranks step
// like one process with batches of P * --batch), the gradients are averaged by all-reduces that
// start during the backward pass, rank 0 prints and saves a checkpoint after every epoch. The
// per-epoch line adds where the step's time went: the share spent waiting for all-reduces (after
// the backward pass) and how much of the all-reduces' time overlapped the backward pass.
// bench/distributed_vs_single.sh compares 2 ranks x 1 thread with 1 process x 1 and 2 threads.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <typegrad/distributed.hpp>
#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

#include "common/training_cli.hpp"
#include "nets/fashion_cnn.hpp"

using namespace typegrad;

using namespace typegrad::nets::fashion_cnn;  // the main example's CNN

namespace {
constexpr std::string_view name = "fashion_mnist_distributed";

// The first n samples of a data set (--train-samples: short runs for checks and benchmarks).
data::labelled_images first_samples(data::labelled_images ds, std::size_t n) {
  if (n == 0 || n >= ds.size()) return ds;
  ds.images.values.resize(n * ds.sample_size());
  ds.images.dims[0] = n;
  ds.labels.resize(n);
  return ds;
}
}  // namespace

int main(int argc, char** argv) {
  distributed::world world(argc, argv);
  examples::training_options o{.checkpoint = "fashion_mnist_distributed.safetensors"};
  double bucket_mb = 1;
  bool no_overlap = false;
  std::size_t train_samples = 0;
  const int code = examples::run_main(name, [&] {
    if (!examples::parse(
            argc, argv, o,
            {.name = name,
             .title = "fashion_mnist_distributed: fashion_mnist_cnn's CNN, data-parallel on MPI ranks",
             .lr_help = "Adam learning rate (cosine-decayed over the run)",
             .epilogue = "--batch is per rank: P ranks step like one process with batches of P * --batch.\n"
                         "Run with mpirun -np P (see docs/distributed.md); alone it is one rank.\n",
             .extra = [&](auto& add) {
               add("bucket-mb", examples::po::value(&bucket_mb)->default_value(bucket_mb),
                   "all-reduce bucket size in MB (the CNN's gradients are 1.7 MB in all: with PyTorch's "
                   "25 they are one bucket, sent after the whole backward pass)")  //
                   ("no-overlap", examples::po::bool_switch(&no_overlap), "start the all-reduces after the backward pass")  //
                   ("train-samples", examples::po::value(&train_samples)->default_value(0),
                    "train on the first N samples only (0: all)");
             }}))
      return;
    examples::thread_limit threads(o.threads);
    const data::normalization norm{.mean = data::fashion_mnist_mean, .stddev = data::fashion_mnist_stddev};
    const auto test = data::load_fashion_mnist(o.data_dir, data::split::test, norm);

    // The gradients listed from the output backwards: the program then finishes them in that
    // order, and the buckets of the last layers go out while the convolutions' gradients are
    // still being computed (docs/distributed.md, "Overlap").
    auto step_program =
        compile<float>(loss, wrt(dense2_b, dense2_w, dense1_b, dense1_w, conv2_b, conv2_w, conv1_b, conv1_w));
    auto eval_program = compile<float>(loss, logits);

    using namespace train;
    auto params = typegrad::nets::fashion_cnn::make_parameters<float>();
    params.bind(step_program);
    params.bind(eval_program);
    // Each rank evaluates its shard of the test set; the results are combined over the ranks.
    data::batcher<float, 4> test_batches(test, 250, {.shuffle = false, .shard = distributed::shard_of(world)});
    const auto evaluate_test = [&] {
      return distributed::evaluate(world, eval_program, test_batches, x, labels, loss, logits);
    };
    const auto print = [&]<class... A>(fmt::format_string<A...> format, A&&... args) {  // rank 0 only
      if (world.root()) fmt::print(format, std::forward<A>(args)...);
    };

    if (o.evaluate_only) {
      distributed::load_checkpoint(world, o.checkpoint, params, {.allow_extra = true});
      const auto r = evaluate_test();
      print("{}: test loss {:.4f}  test accuracy {:.4f} ({} images, {} rank(s))\n", o.checkpoint, r.loss, r.accuracy,
            r.samples, world.size());
      return;
    }

    const auto train_set = first_samples(data::load_fashion_mnist(o.data_dir, data::split::train, norm), train_samples);
    params.initialize(o.seed);
    distributed::broadcast_parameters(world, params);  // (the same seed everywhere: a no-op, but cheap)
    distributed::gradient_reducer reducer(
        world, step_program, params,
        {.bucket_bytes = std::size_t(bucket_mb * (1 << 20)), .overlap = !no_overlap});
    data::batcher<float, 4> batches(train_set, o.batch, {.seed = o.seed, .shard = distributed::shard_of(world)});
    adam opt(params, {.lr = o.lr});
    const cosine_schedule schedule{.lr = o.lr, .total = o.epochs * batches.batches()};
    print("{} rank(s) x {} thread(s), batch {} per rank ({} per step), {}\n", world.size(), step_program.threads(),
          o.batch, batches.global_batch_size(),
          world.size() == 1 ? std::string("one rank: no all-reduce")
                            : fmt::format("{} all-reduce bucket(s), {}", reducer.buckets(),
                                          reducer.overlapping() ? "overlapped with the backward pass" : "not overlapped"));

    progress bar(distributed::progress_mode_for(world, o.quiet ? progress_mode::quiet : progress_mode::automatic),
                 o.epochs, batches.batches());
    std::uint64_t step = 0;
    for (std::size_t epoch = 0; epoch < o.epochs; ++epoch) {
      const auto start = std::chrono::steady_clock::now();
      bar.start_epoch(epoch);
      reducer.reset_timing();
      for (const auto& b : batches.epoch(epoch)) {
        step_program.bind(x, b.images).bind(labels, b.labels);
        reducer.run(b.size(), b.global_size);  // forward + backward; all-reduces start as gradients finish
        reducer.wait();                         // averaged gradients
        opt.set_lr(schedule(step++));
        opt.step(params, reducer);
        bar.update(reducer.loss(), b.global_size);
      }
      const double train_seconds = examples::seconds_since(start);
      const auto r = evaluate_test();
      bar.clear();
      const auto& t = reducer.timing();
      print("epoch {}/{}  train loss {:.4f}  test loss {:.4f}  test accuracy {:.4f}  {:.1f} s (+{:.1f} s eval)"
            "  all-reduce wait {:.1f}% of training, overlap {:.0f}%\n",
            epoch + 1, o.epochs, bar.mean_loss(), r.loss, r.accuracy, train_seconds,
            examples::seconds_since(start) - train_seconds, 100 * t.wait_seconds / train_seconds, 100 * t.overlap());
      std::fflush(stdout);
      // After every epoch, so that a job that dies (MPI then ends every rank) leaves the last
      // epoch's checkpoint; rank 0 writes it atomically.
      distributed::save_checkpoint(world, o.checkpoint, params, opt,
                                   {{"model", std::string(name)}, {"epochs", std::to_string(epoch + 1)},
                                    {"ranks", std::to_string(world.size())}});
    }
    if (world.size() > 1) {
      std::string started;
      for (const auto& l : reducer.last_launches()) started += fmt::format("{}{}", started.empty() ? "" : ", ", l.gradients_ready);
      print("the last step's buckets started when {} of 8 gradients were final\n", started);
    }
    if (world.root()) examples::print_saved(o, name);
  });
  // A failure on some ranks only would leave the others waiting in a collective: end the job.
  if (code != 0 && world.size() > 1) world.abort(code);
  return code;
}
