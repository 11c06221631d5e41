#pragma once
// A progress display for training loops.
//
//   train::progress bar(train::progress_mode::automatic, epochs, batches.batches());
//   for (epoch ...) {
//     bar.start_epoch(epoch);
//     for (const auto& b : batches.epoch(epoch)) { ...; bar.update(program.scalar(loss), b.size()); }
//     bar.end_epoch(fmt::format("test accuracy {:.4f}", acc));   // prints the epoch's summary line
//   }
//
//   epoch 2/5 [=========>               ] 412/938 loss 0.4312  1850 samples/s  ETA 0:17
//
// Modes: bar redraws that line in place (carriage return, at most 10 times a second); lines prints
// it as a plain line every 10 seconds (logs, pipes); quiet prints nothing, not even the summaries;
// automatic is bar when the stream is a terminal and lines otherwise. It writes to stderr unless
// told otherwise, so a program's results on stdout stay clean. The loss shown is the running mean
// over the epoch so far; throughput and ETA come from the epoch's elapsed time.
// format_progress() is the pure function that makes the line, for tests and custom displays.
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

namespace typegrad::train {

struct progress_state {
  std::size_t epoch = 0, epochs = 0;  // epoch counts from 1 for display
  std::size_t step = 0, steps = 0;    // steps done in this epoch, out of steps
  double loss = 0;                    // running mean over the epoch
  double samples_per_second = 0;
  double elapsed_seconds = 0;
};

// "m:ss", or "h:mm:ss" from an hour on; "--:--" for a negative or non-finite duration.
std::string format_duration(double seconds);
// The progress line; bar_width 0 leaves the bar out. The ETA is the remaining steps at the
// epoch's average pace so far ("--:--" before the first step).
std::string format_progress(const progress_state& s, std::size_t bar_width = 25);

enum class progress_mode { automatic, bar, lines, quiet };

class progress {
 public:
  progress(progress_mode mode, std::size_t epochs, std::size_t steps_per_epoch, std::FILE* out = stderr);

  void start_epoch(std::size_t epoch);  // epoch counts from 0
  // After each step: the step's loss (a batch mean) and its number of samples.
  void update(double loss, std::size_t samples);
  // Ends the epoch: clears the bar and prints "epoch e/E  loss ...  <summary>  (s seconds)".
  void end_epoch(std::string_view summary = {});
  // Erases the bar (bar mode only), for a caller that prints its own summary elsewhere.
  void clear();

  progress_state state() const;
  double epoch_seconds() const;
  double mean_loss() const { return samples_ ? loss_sum_ / double(samples_) : 0.0; }
  progress_mode mode() const { return mode_; }

 private:
  void draw(bool force);
  using clock = std::chrono::steady_clock;
  progress_mode mode_;
  std::size_t epochs_, steps_;
  std::FILE* out_;
  std::size_t epoch_ = 0, step_ = 0, samples_ = 0;
  double loss_sum_ = 0;
  clock::time_point start_, last_draw_;
  std::size_t drawn_width_ = 0;
};

}  // namespace typegrad::train
