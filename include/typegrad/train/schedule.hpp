#pragma once
// Learning-rate schedules: pure functions of the step (or epoch) count t = 0, 1, 2, ...
//
//   train::cosine_schedule schedule{.lr = 1e-3, .total = epochs * steps_per_epoch, .warmup = 100};
//   opt.set_lr(schedule(step));         // before each opt.step(...)
//
//   constant_schedule  lr
//   step_schedule      lr * gamma^floor(t / every)          ("gamma every k epochs/steps")
//   cosine_schedule    linear warm-up for t < warmup:  lr * (t + 1) / warmup
//                      then  min_lr + (lr - min_lr) * (1 + cos(pi * (t - warmup) / (total - warmup))) / 2,
//                      and min_lr from t >= total
// Whether t counts steps or epochs is the caller's choice: call with the count the schedule's
// every/total/warmup were given in.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

namespace typegrad::train {

struct constant_schedule {
  double lr = 1e-3;
  double operator()(std::uint64_t) const { return lr; }
};

struct step_schedule {
  double lr = 1e-3;
  double gamma = 0.1;
  std::uint64_t every = 1;
  double operator()(std::uint64_t t) const { return lr * std::pow(gamma, double(t / std::max<std::uint64_t>(every, 1))); }
};

struct cosine_schedule {
  double lr = 1e-3;
  std::uint64_t total = 1;  // the step at which min_lr is reached
  std::uint64_t warmup = 0;
  double min_lr = 0;
  double operator()(std::uint64_t t) const {
    if (t < warmup) return lr * double(t + 1) / double(warmup);
    if (t >= total) return min_lr;
    const double progress = double(t - warmup) / double(total - warmup);
    return min_lr + (lr - min_lr) * 0.5 * (1 + std::cos(std::numbers::pi * progress));
  }
};

}  // namespace typegrad::train
