// The C++ side of the checkpoint_numpy test (see numpy_checkpoint.sh):
//   checkpoint_tool write <file>   saves known parameters and Adam state
//   checkpoint_tool read <file>    loads a file (written by NumPy) and checks the known values
// The values: w (2, 3) float, w[i] = 0.5 i - 1; b (3) float, b[i] = 0.25 i; after one Adam step
// with gradient 1 everywhere (so every adam.m.* is 0.1 and every adam.v.* is 0.001).
#include <cstdio>
#include <string>

#include <typegrad/train/checkpoint.hpp>

using namespace typegrad;
using namespace typegrad::train;

namespace {
constexpr var<"w", 2> w;
constexpr var<"b", 1> b;

auto known_parameters() {
  auto p = make_parameters<float>(param(w, {2, 3}), param(b, {3}));
  for (std::size_t i = 0; i < 6; ++i) p[w][i] = 0.5f * float(i) - 1.0f;
  for (std::size_t i = 0; i < 3; ++i) p[b][i] = 0.25f * float(i);
  return p;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: checkpoint_tool write|read <file>\n");
    return 2;
  }
  const std::string mode = argv[1];
  if (mode == "write") {
    auto params = known_parameters();
    adam opt(params, {.lr = 0.01});
    tensor<float, 2> gw({2, 3});
    tensor<float, 1> gb({3});
    gw.fill(1);
    gb.fill(1);
    const std::array<view<const float>, 2> grads{std::as_const(gw).as_view(), std::as_const(gb).as_view()};
    opt.step(params.entries(), grads);
    // The parameters before the step (known to the reader) with the state after it.
    save_checkpoint(argv[2], known_parameters(), opt, {{"note", "written by typegrad"}});
    return 0;
  }
  if (mode == "read") {
    auto params = make_parameters<float>(param(w, {2, 3}), param(b, {3}));
    const auto metadata = load_checkpoint(argv[2], params);
    int errors = 0;
    for (std::size_t i = 0; i < 6; ++i) errors += params[w][i] != 2.0f * float(i) + 0.5f;
    for (std::size_t i = 0; i < 3; ++i) errors += params[b][i] != -float(i);
    errors += metadata.count("written_by") == 0 || metadata.at("written_by") != "numpy";
    if (errors) std::fprintf(stderr, "checkpoint_tool: %d values differ from what NumPy wrote\n", errors);
    return errors ? 1 : 0;
  }
  std::fprintf(stderr, "checkpoint_tool: unknown mode %s\n", argv[1]);
  return 2;
}
