// The progress display (see include/typegrad/train/progress.hpp).
#include "typegrad/train/progress.hpp"

#include <cmath>

#include <fmt/format.h>
#include <unistd.h>

namespace typegrad::train {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto total = static_cast<long long>(std::llround(seconds));
  const long long h = total / 3600, m = total / 60 % 60, s = total % 60;
  return h ? fmt::format("{}:{:02}:{:02}", h, m, s) : fmt::format("{}:{:02}", m, s);
}

std::string format_progress(const progress_state& s, std::size_t bar_width) {
  std::string line = fmt::format("epoch {}/{}", s.epoch, s.epochs);
  if (bar_width > 0) {
    const double done = s.steps ? double(s.step) / double(s.steps) : 0.0;
    const std::size_t filled = std::min(bar_width, static_cast<std::size_t>(done * double(bar_width)));
    std::string bar(bar_width, ' ');
    for (std::size_t i = 0; i < filled; ++i) bar[i] = '=';
    if (filled < bar_width && s.step > 0) bar[filled] = '>';
    line += fmt::format(" [{}]", bar);
  }
  const std::size_t digits = fmt::formatted_size("{}", s.steps);
  line += fmt::format(" {:>{}}/{} loss {:.4f}  {:.0f} samples/s", s.step, digits, s.steps, s.loss,
                      s.samples_per_second);
  const double eta = s.step ? s.elapsed_seconds / double(s.step) * double(s.steps - std::min(s.step, s.steps)) : -1.0;
  line += fmt::format("  ETA {}", format_duration(eta));
  return line;
}

progress::progress(progress_mode mode, std::size_t epochs, std::size_t steps_per_epoch, std::FILE* out)
    : mode_(mode), epochs_(epochs), steps_(steps_per_epoch), out_(out) {
  if (mode_ == progress_mode::automatic) mode_ = ::isatty(::fileno(out_)) ? progress_mode::bar : progress_mode::lines;
  start_ = last_draw_ = clock::now();
}

void progress::start_epoch(std::size_t epoch) {
  epoch_ = epoch;
  step_ = samples_ = 0;
  loss_sum_ = 0;
  start_ = last_draw_ = clock::now();
  draw(true);
}

void progress::update(double loss, std::size_t samples) {
  ++step_;
  samples_ += samples;
  loss_sum_ += loss * double(samples);
  draw(step_ == steps_);
}

double progress::epoch_seconds() const { return std::chrono::duration<double>(clock::now() - start_).count(); }

progress_state progress::state() const {
  const double t = epoch_seconds();
  return {epoch_ + 1, epochs_, step_, steps_, mean_loss(), t > 0 ? double(samples_) / t : 0.0, t};
}

void progress::draw(bool force) {
  if (mode_ == progress_mode::quiet) return;
  const auto now = clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (mode_ == progress_mode::bar) {
    if (!force && since < 0.1) return;
    const std::string line = format_progress(state());
    // Pad over a longer previous line instead of relying on terminal escape codes.
    fmt::print(out_, "\r{:<{}}", line, std::max(line.size(), drawn_width_));
    drawn_width_ = line.size();
  } else {
    if (since < 10.0 || step_ == 0) return;
    fmt::print(out_, "{}\n", format_progress(state(), 0));
  }
  std::fflush(out_);
  last_draw_ = now;
}

void progress::end_epoch(std::string_view summary) {
  if (mode_ == progress_mode::quiet) return;
  const auto s = state();
  std::string line = fmt::format("epoch {}/{}  loss {:.4f}", s.epoch, s.epochs, s.loss);
  if (!summary.empty()) line += fmt::format("  {}", summary);
  line += fmt::format("  ({:.1f} s, {:.0f} samples/s)", s.elapsed_seconds, s.samples_per_second);
  if (mode_ == progress_mode::bar) fmt::print(out_, "\r{:<{}}\n", line, std::max(line.size(), drawn_width_));
  else fmt::print(out_, "{}\n", line);
  drawn_width_ = 0;
  std::fflush(out_);
}

void progress::clear() {
  if (mode_ != progress_mode::bar || drawn_width_ == 0) return;
  fmt::print(out_, "\r{:<{}}\r", "", drawn_width_);
  drawn_width_ = 0;
  std::fflush(out_);
}

}  // namespace typegrad::train
