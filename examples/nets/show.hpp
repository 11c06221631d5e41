#pragma once
// What every network example does: print the network's symbolic structure, run forward and
// gradients once on random inputs, and print each parameter gradient's norm.
#include <cmath>
#include <cstddef>
#include <random>
#include <string_view>

#include <fmt/format.h>

#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

namespace typegrad::nets {

// Random images in [0, 1) and labels below `classes`, from a fixed seed.
template <std::size_t R>
void fill_random_batch(tensor<float, R>& images, tensor<float, 1>& labels, std::size_t classes) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> pixel(0.f, 1.f);
  for (auto& v : images) v = pixel(rng);
  for (auto& l : labels) l = static_cast<float>(rng() % classes);
}

template <class Program, class Params>
void show(std::string_view title, std::string_view structure, Program& program, Params& params) {
  fmt::print("== {} ==\n{}\n\n", title, structure);
  fmt::print("program: {} nodes (forward and adjoint, after CSE), {:.1f} MiB of reused buffers\n",
             program.node_count(), program.arena_bytes() / 1048576.0);
  fmt::print("loss {:.5f}\n", program.template output<0>().data[0]);
  const auto grads = Params::gradients(program);
  const auto entries = params.entries();
  for (std::size_t i = 0; i < grads.size(); ++i) {
    double sq = 0;
    for (std::size_t k = 0; k < grads[i].size(); ++k) sq += double(grads[i].data[k]) * grads[i].data[k];
    fmt::print("  |d loss / d {:<12}| = {:.6f}   shape {}\n", entries[i].name, std::sqrt(sq), grads[i].shape);
  }
}

}  // namespace typegrad::nets
