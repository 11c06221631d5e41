#pragma once
// What the training examples share: their options (Boost.Program_options), the
// thread limit, the epoch loop with its progress display and per-epoch line, the lines printed
// for --evaluate and after saving, and main's error handling. Each example keeps its model, its
// programs, its optimizer and what one step does.
//
//   examples::training_options o{.checkpoint = "net.safetensors"};
//   return examples::run_main("net", [&] {
//     if (!examples::parse(argc, argv, o, {.name = "net", ...})) return;
//     examples::thread_limit threads(o.threads);
//     ...
//     examples::train_epochs(o, batches, [&](const auto& b) { ...; return loss; },
//                            [&] { return train::evaluate(...); });
//   });
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <tbb/global_control.h>

#include <typegrad/train.hpp>

namespace typegrad::examples {
namespace po = boost::program_options;

struct training_options {
  std::size_t epochs = 5, batch = 64, threads = 0;
  double lr = 1e-3;
  std::uint64_t seed = 1;
  std::string data_dir = data::default_fashion_mnist_dir, checkpoint = {};
  bool quiet = false, evaluate_only = false;
};

struct program_info {
  std::string_view name;      // the executable's name, in messages
  std::string_view title;     // first line of --help
  std::string_view lr_help;   // what --lr is the learning rate of
  std::string_view epilogue;  // after the options in --help: the default run's duration, how to run longer
  std::string_view seed_help = "seed of initialisation and shuffling";
  // --data-dir, --checkpoint and --evaluate; off for examples that make their data and save nothing.
  bool dataset_options = true;
  // Options of the example's own, added after the common ones.
  std::function<void(po::options_description_easy_init&)> extra = {};
};

// Returns false when the program should stop (after --help). Throws po::error on a bad option.
inline bool parse(int argc, char** argv, training_options& o, const program_info& info) {
  po::options_description desc(fmt::format("{}\nOptions", info.title));
  auto add = desc.add_options();
  add("help,h", "show this help")                                                             //
      ("epochs", po::value(&o.epochs)->default_value(o.epochs), "training epochs")             //
      ("batch", po::value(&o.batch)->default_value(o.batch), "mini-batch size")                //
      ("lr", po::value(&o.lr)->default_value(o.lr, fmt::format("{}", o.lr)), std::string(info.lr_help).c_str())  //
      ("threads", po::value(&o.threads)->default_value(o.threads), "worker threads (0: all cores)")  //
      ("seed", po::value(&o.seed)->default_value(o.seed), std::string(info.seed_help).c_str());
  if (info.dataset_options)
    add("data-dir", po::value(&o.data_dir)->default_value(o.data_dir),
        "directory with the four Fashion-MNIST (or MNIST) IDX files, .gz or raw")  //
        ("checkpoint", po::value(&o.checkpoint)->default_value(o.checkpoint),
         "safetensors file written after training (read by --evaluate)")                  //
        ("evaluate", po::bool_switch(&o.evaluate_only), "only evaluate --checkpoint on the test set");
  add("quiet", po::bool_switch(&o.quiet), "no progress display (results still go to stdout)");
  if (info.extra) info.extra(add);
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  if (vm.count("help")) {
    std::cout << desc << '\n' << info.epilogue;
    return false;
  }
  po::notify(vm);
  if (o.batch == 0 || o.epochs == 0) throw po::error("--batch and --epochs must be positive");
  return true;
}

// One limit for everything parallel (the programs, the optimizer, the batch filling); 0: no limit.
class thread_limit {
 public:
  explicit thread_limit(std::size_t threads) {
    if (threads) control_.emplace(tbb::global_control::max_allowed_parallelism, threads);
  }

 private:
  std::optional<tbb::global_control> control_;
};

inline double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// o.epochs epochs over `batches`: step(batch) trains on one batch and returns its loss, or
// step(batch, meter) does so and also adds the batch's predictions to a train::accuracy_meter,
// and the epoch's line then shows the training accuracy too. After each epoch, evaluate() returns
// a train::evaluation on the test set, printed with the epoch's mean training loss and its
// seconds (training, then evaluation).
template <class Batcher, class Step, class Evaluate>
void train_epochs(const training_options& o, Batcher& batches, Step&& step, Evaluate&& evaluate) {
  using namespace train;
  using batch = decltype(*std::begin(batches.epoch(0)));
  constexpr bool with_accuracy = std::is_invocable_v<Step&, batch, accuracy_meter&>;
  progress bar(o.quiet ? progress_mode::quiet : progress_mode::automatic, o.epochs, batches.batches());
  for (std::size_t epoch = 0; epoch < o.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    bar.start_epoch(epoch);
    accuracy_meter train_accuracy;
    for (const auto& b : batches.epoch(epoch)) {
      if constexpr (with_accuracy) bar.update(step(b, train_accuracy), b.size());
      else bar.update(step(b), b.size());
    }
    const double train_seconds = seconds_since(start);
    const evaluation r = evaluate();
    bar.clear();
    const std::string accuracy = with_accuracy ? fmt::format("  train accuracy {:.4f}", train_accuracy.value()) : "";
    fmt::print("epoch {}/{}  train loss {:.4f}{}  test loss {:.4f}  test accuracy {:.4f}  {:.1f} s (+{:.1f} s eval)\n",
               epoch + 1, o.epochs, bar.mean_loss(), accuracy, r.loss, r.accuracy, train_seconds,
               seconds_since(start) - train_seconds);
    std::fflush(stdout);
  }
}

inline void print_evaluation(const training_options& o, const train::evaluation& r) {
  fmt::print("{}: test loss {:.4f}  test accuracy {:.4f} ({} images)\n", o.checkpoint, r.loss, r.accuracy, r.samples);
}
inline void print_saved(const training_options& o, std::string_view name) {
  fmt::print("saved {}; evaluate it with: {} --evaluate --checkpoint {}\n", o.checkpoint, name, o.checkpoint);
}

// Runs body() and turns exceptions into messages and exit codes: 2 for a bad option, 1 otherwise.
template <class Body>
int run_main(std::string_view name, Body&& body) {
  try {
    body();
    return 0;
  } catch (const po::error& e) {
    fmt::print(stderr, "{}: {} (see --help)\n", name, e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}: {}\n", name, e.what());
    return 1;
  }
}

}  // namespace typegrad::examples
