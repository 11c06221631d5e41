#!/usr/bin/python3
"""PyTorch's 2x2/2 max and average pooling on N=32, C=64, 56x56 float with 2 threads: forward and
forward + backward, in NCHW and in channels_last memory format. Same cases, timing rule (median of
11 runs after a warm-up) and byte counts as bench/bench_pool.cpp.

Output: one line per case and layout, "case <name> layout <nchw|channels_last> ms <ms> GBps <GB/s>".
"""
import statistics
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
N, C, E = 32, 64, 56
RUNS = 11


def median_seconds(f):
    f()  # warm-up
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def report(name, layout, seconds, nbytes):
    print(f"case {name} layout {layout} ms {seconds * 1e3:.3f} GBps {nbytes / seconds * 1e-9:.2f}", flush=True)


def main():
    print(f"# PyTorch {torch.__version__}, {torch.get_num_threads()} threads, N={N} C={C} {E}x{E} float, "
          f"2x2 window stride 2; median of {RUNS} runs")
    gen = torch.Generator().manual_seed(1)
    x0 = torch.rand(N, C, E, E, generator=gen) * 2 - 1
    g0 = torch.rand(N, C, E // 2, E // 2, generator=gen) * 2 - 1
    in_bytes, out_bytes = x0.numel() * 4, g0.numel() * 4
    for layout, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
        x = x0.contiguous(memory_format=fmt).requires_grad_(True)
        g = g0.contiguous(memory_format=fmt)
        for name, pool in (("max_pool", F.max_pool2d), ("avg_pool", F.avg_pool2d)):
            def forward():
                with torch.no_grad():
                    pool(x, 2, 2)

            def forward_backward():
                y = pool(x, 2, 2)
                torch.autograd.grad(y, x, g)

            report(f"{name}_forward", layout, median_seconds(forward), in_bytes + out_bytes)
            report(f"{name}_forward_backward", layout, median_seconds(forward_backward),
                   (in_bytes + out_bytes) + (out_bytes + 2 * in_bytes))


if __name__ == "__main__":
    main()
