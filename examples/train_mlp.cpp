// A multi-layer perceptron on Fashion-MNIST, written with typegrad's training tools: the template
// for the other training examples.
//
//   train_mlp                        train (2 epochs), print loss/accuracy/seconds per epoch, save
//   train_mlp --evaluate             load the checkpoint and evaluate it on the test set
//   train_mlp --help                 all options
//
// The model: 784 -> dense 256 -> relu -> dense 10, softmax cross-entropy, Adam. The images come
// as (batch, 784) rows (flattened), standardised with Fashion-MNIST's mean and stddev.
#include <chrono>
#include <cstdio>
#include <exception>
#include <iostream>
#include <optional>
#include <string>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <tbb/global_control.h>

#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

using namespace typegrad;
namespace po = boost::program_options;

namespace {
constexpr var<"x", 2> x;            // (batch, 784)
constexpr var<"labels", 1> labels;  // (batch) class indices
constexpr var<"w1", 2> w1;
constexpr var<"b1", 1> b1;
constexpr var<"w2", 2> w2;
constexpr var<"b2", 1> b2;

struct options {
  std::size_t epochs = 2, batch = 64, hidden = 256, threads = 0;
  double lr = 1e-3;
  std::uint64_t seed = 1;
  std::string data_dir = data::default_fashion_mnist_dir, checkpoint = "train_mlp.safetensors";
  bool quiet = false, evaluate_only = false;
};

// Returns false when the program should stop (after --help).
bool parse(int argc, char** argv, options& o) {
  po::options_description desc("train_mlp: an MLP on Fashion-MNIST with typegrad\nOptions");
  desc.add_options()                                                                                    //
      ("help,h", "show this help")                                                                      //
      ("epochs", po::value(&o.epochs)->default_value(o.epochs), "training epochs")                       //
      ("batch", po::value(&o.batch)->default_value(o.batch), "mini-batch size")                          //
      ("lr", po::value(&o.lr)->default_value(o.lr), "Adam learning rate (cosine-decayed over the run)")   //
      ("hidden", po::value(&o.hidden)->default_value(o.hidden), "hidden units")                          //
      ("threads", po::value(&o.threads)->default_value(o.threads), "worker threads (0: all cores)")      //
      ("seed", po::value(&o.seed)->default_value(o.seed), "seed of initialisation and shuffling")        //
      ("data-dir", po::value(&o.data_dir)->default_value(o.data_dir),
       "directory with the four Fashion-MNIST (or MNIST) IDX files, .gz or raw")  //
      ("checkpoint", po::value(&o.checkpoint)->default_value(o.checkpoint),
       "safetensors file written after training (read by --evaluate)")                  //
      ("evaluate", po::bool_switch(&o.evaluate_only), "only evaluate --checkpoint on the test set")  //
      ("quiet", po::bool_switch(&o.quiet), "no progress display (results still go to stdout)");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  if (vm.count("help")) {
    std::cout << desc << "\nRun longer with e.g. --epochs 10; results are repeatable for a fixed seed and --threads.\n";
    return false;
  }
  po::notify(vm);
  if (o.batch == 0 || o.epochs == 0 || o.hidden == 0) throw po::error("--batch, --epochs and --hidden must be positive");
  return true;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

int main(int argc, char** argv) try {
  options o;
  if (!parse(argc, argv, o)) return 0;
  // One limit for everything parallel: the programs, the optimizer and the batch filling.
  std::optional<tbb::global_control> threads;
  if (o.threads) threads.emplace(tbb::global_control::max_allowed_parallelism, o.threads);

  const data::normalization norm{.mean = data::fashion_mnist_mean, .stddev = data::fashion_mnist_stddev};
  const auto test = data::load_fashion_mnist(o.data_dir, data::split::test, norm);

  // The model, its gradients and a forward-only program for evaluation.
  auto logits = dense(relu(dense(x, w1, b1)), w2, b2);
  auto loss = softmax_cross_entropy(logits, labels);
  auto step_program = compile<float>(loss, wrt(w1, b1, w2, b2));
  auto eval_program = compile<float>(loss, logits);

  auto params = train::make_parameters<float>(train::param(w1, {784, o.hidden}, train::init::he_normal),
                                              train::param(b1, {o.hidden}),
                                              train::param(w2, {o.hidden, 10}, train::init::glorot_uniform),
                                              train::param(b2, {10}));
  params.bind(step_program);
  params.bind(eval_program);
  data::batcher<float, 2> test_batches(test, 1000, {.shuffle = false});

  if (o.evaluate_only) {
    train::load_checkpoint(o.checkpoint, params, {.allow_extra = true});  // the optimizer state is not needed
    const auto r = train::evaluate(eval_program, test_batches, x, labels, loss, logits);
    fmt::print("{}: test loss {:.4f}  test accuracy {:.4f} ({} images)\n", o.checkpoint, r.loss, r.accuracy, r.samples);
    return 0;
  }

  const auto train_set = data::load_fashion_mnist(o.data_dir, data::split::train, norm);
  params.initialize(o.seed);
  data::batcher<float, 2> batches(train_set, o.batch, {.seed = o.seed});
  train::adam opt(params, {.lr = o.lr});
  const train::cosine_schedule schedule{.lr = o.lr, .total = o.epochs * batches.batches()};
  train::progress bar(o.quiet ? train::progress_mode::quiet : train::progress_mode::automatic, o.epochs,
                      batches.batches());

  std::uint64_t step = 0;
  for (std::size_t epoch = 0; epoch < o.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    bar.start_epoch(epoch);
    for (const auto& b : batches.epoch(epoch)) {
      step_program.bind(x, b.images).bind(labels, b.labels).run();
      opt.set_lr(schedule(step++));
      opt.step(params, step_program);
      bar.update(step_program.scalar(loss), b.size());
    }
    const double train_seconds = seconds_since(start);
    const auto r = train::evaluate(eval_program, test_batches, x, labels, loss, logits);
    bar.clear();
    fmt::print("epoch {}/{}  train loss {:.4f}  test loss {:.4f}  test accuracy {:.4f}  {:.1f} s (+{:.1f} s eval)\n",
               epoch + 1, o.epochs, bar.mean_loss(), r.loss, r.accuracy, train_seconds,
               seconds_since(start) - train_seconds);
    std::fflush(stdout);
  }
  train::save_checkpoint(o.checkpoint, params, opt, {{"model", "train_mlp"}, {"epochs", std::to_string(o.epochs)}});
  fmt::print("saved {}; evaluate it with: train_mlp --evaluate --checkpoint {}\n", o.checkpoint, o.checkpoint);
  return 0;
} catch (const po::error& e) {
  fmt::print(stderr, "train_mlp: {} (see --help)\n", e.what());
  return 2;
} catch (const std::exception& e) {
  fmt::print(stderr, "train_mlp: {}\n", e.what());
  return 1;
}
