// GB/s (bytes read + written, median of repeated runs) of the layout kernels on CNN-sized float
// tensors, against a plain memcpy of the same bytes and, for permute, a naive strided loop.
//   bench_layout [threads]     (default: all cores)
#include <typegrad/kernels/layout.hpp>

#include <tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace typegrad;

namespace {

template <class F>
double median_seconds(F&& f, int reps = 15) {
  f();  // warm up (first touch)
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void report(const std::string& what, std::size_t bytes, double s) {
  std::printf("%-52s %8.3f ms %7.2f GB/s\n", what.c_str(), s * 1e3, double(bytes) / s * 1e-9);
}

// The naive permute: one strided read per output element, in output order.
void naive_permute(float* out, const float* in, const shape& s, const kernels::axis_values& perm) {
  const std::size_t r = s.rank();
  auto st = s.strides();
  shape os = s;
  for (std::size_t k = 0; k < r; ++k) os[k] = s[perm[k]];
  kernels::axis_values idx{};
  const std::size_t n = s.numel();
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t src = 0;
    for (std::size_t k = 0; k < r; ++k) src += idx[k] * st[perm[k]];
    out[i] = in[src];
    for (std::size_t k = r; k-- > 0;) {
      if (++idx[k] < os[k]) break;
      idx[k] = 0;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 0;
  std::unique_ptr<tbb::global_control> limit;
  if (threads > 0) limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, threads);
  std::printf("layout kernels, float, %s threads\n", threads > 0 ? std::to_string(threads).c_str() : "all");

  const shape img{32, 56, 56, 64};  // N, H, W, C
  const std::size_t n = img.numel(), bytes = 2 * n * sizeof(float);
  std::vector<float> a(n, 1.0f), b(n, 0.0f);
  report("memcpy (32, 56, 56, 64)", bytes, median_seconds([&] { std::memcpy(b.data(), a.data(), n * sizeof(float)); }));

  const kernels::axis_values to_nchw{0, 3, 1, 2};
  const shape nchw{32, 64, 56, 56};
  report("permute NHWC -> NCHW (32, 56, 56, 64)", bytes,
         median_seconds([&] { kernels::permute<float>(view<float>{b.data(), nchw}, view<const float>{a.data(), img}, to_nchw); }));
  report("  naive strided loop, 1 thread", bytes, median_seconds([&] { naive_permute(b.data(), a.data(), img, to_nchw); }, 5));
  const shape sq{2048, 2048};
  report("transpose (2048, 2048)", 2 * sq.numel() * sizeof(float), median_seconds([&] {
           kernels::permute<float>(view<float>{b.data(), sq}, view<const float>{a.data(), sq}, {1, 0});
         }));

  // DenseNet: 128 + 32 channels joined along the last axis.
  const shape c1{32, 28, 28, 128}, c2{32, 28, 28, 32}, cj{32, 28, 28, 160};
  std::vector<float> x1(c1.numel(), 1.0f), x2(c2.numel(), 2.0f), y(cj.numel());
  const view<const float> parts[2] = {{x1.data(), c1}, {x2.data(), c2}};
  report("concat channels (32, 28, 28, 128 + 32)", 2 * cj.numel() * sizeof(float),
         median_seconds([&] { kernels::concat<float>(view<float>{y.data(), cj}, parts, 3); }));
  report("  its adjoint part 1: slice (32, 28, 28, 32)", 2 * c2.numel() * sizeof(float), median_seconds([&] {
           kernels::axis_values begin{0, 0, 0, 128};
           kernels::slice<float>(view<float>{x2.data(), c2}, view<const float>{y.data(), cj}, begin, kernels::unit_steps);
         }));

  // Same padding of a 3x3 convolution's input: 1 on each side of H and W.
  const shape padded{32, 58, 58, 64};
  std::vector<float> p(padded.numel());
  const kernels::axis_values low{0, 1, 1, 0};
  report("pad (32, 56, 56, 64) by 1 in H and W", (n + padded.numel()) * sizeof(float), median_seconds([&] {
           kernels::unslice<float>(view<float>{p.data(), padded}, view<const float>{a.data(), img}, low, kernels::unit_steps);
         }));
  report("  its adjoint: crop", (n + padded.numel()) * sizeof(float), median_seconds([&] {
           kernels::slice<float>(view<float>{b.data(), img}, view<const float>{p.data(), padded}, low, kernels::unit_steps);
         }));
  const shape half{32, 28, 28, 64};
  report("slice stride 2 in H and W (32, 56, 56, 64)", 2 * half.numel() * sizeof(float), median_seconds([&] {
           kernels::slice<float>(view<float>{b.data(), half}, view<const float>{a.data(), img}, {},
                                 {1, 2, 2, 1, 1, 1, 1, 1});
         }));
}
