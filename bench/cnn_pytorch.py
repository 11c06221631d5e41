#!/usr/bin/python3
"""The cases of bench_cnn in PyTorch (CPU, float, 2 threads): forward, and forward + backward
(out.backward(r): the gradients with respect to x and w), median of timed runs after a warm-up.

Each case is timed in every memory format PyTorch offers for its rank (contiguous NC..., and
channels_last / channels_last_3d for 2-d / 3-d) and the faster one is reported; the line names it.
Output lines match bench_cnn's: case=<name> fwd_ms=... fwd_gflops=... fwdbwd_ms=... fwdbwd_gflops=...

    /usr/bin/python3 bench/cnn_pytorch.py [--cpu] [case ...]

--cpu: one thread, timed by the process's CPU time (as bench_cnn --cpu): a per-core figure that
other load on the machine hardly changes.
"""
import statistics
import sys
import time

import torch
import torch.nn.functional as F

CPU_TIME = len(sys.argv) > 1 and sys.argv[1] == "--cpu"
torch.set_num_threads(1 if CPU_TIME else 2)
TIMED_RUNS = 7
clock = time.process_time if CPU_TIME else time.perf_counter

# name, description, dims, N, C, extent, K, window, stride (same padding)
CASES = [
    ("a", "2-d N=64 C=1 28x28 K=32 3x3", 2, 64, 1, 28, 32, 3, 1),
    ("b", "2-d N=32 C=64 56x56 K=64 3x3", 2, 32, 64, 56, 64, 3, 1),
    ("c", "2-d N=32 C=128 28x28 K=128 3x3 stride 2", 2, 32, 128, 28, 128, 3, 2),
    ("d", "1-d N=32 C=64 L=1024 K=64 k=7", 1, 32, 64, 1024, 64, 7, 1),
    ("e", "3-d N=4 C=16 32^3 K=16 3x3x3", 3, 4, 16, 32, 16, 3, 1),
    ("f", "2-d N=64 C=32 14x14 K=64 3x3", 2, 64, 32, 14, 64, 3, 1),
    ("g", "2-d N=64 C=16 28x28 K=16 3x3", 2, 64, 16, 28, 16, 3, 1),
    ("h", "2-d N=64 C=16 28x28 K=32 3x3 stride 2", 2, 64, 16, 28, 32, 3, 2),
    ("i", "2-d N=64 C=16 28x28 K=32 1x1 stride 2", 2, 64, 16, 28, 32, 1, 2),
    ("j", "2-d N=64 C=32 14x14 K=64 3x3 stride 2", 2, 64, 32, 14, 64, 3, 2),
]
CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
FORMATS = {1: [("contiguous", torch.contiguous_format)],
           2: [("contiguous", torch.contiguous_format), ("channels_last", torch.channels_last)],
           3: [("contiguous", torch.contiguous_format), ("channels_last_3d", torch.channels_last_3d)]}


def median_ms(f):
    f()
    f()
    times = []
    for _ in range(TIMED_RUNS):
        t0 = clock()
        f()
        times.append((clock() - t0) * 1e3)
    return statistics.median(times)


def run_case(dims, n, c, extent, k, window, stride, fmt):
    conv = CONV[dims]
    pad = (window - 1) // 2
    out_extent = (extent + stride - 1) // stride
    x = torch.rand((n, c) + (extent,) * dims).mul_(2).sub_(1).to(memory_format=fmt)
    w = torch.rand((k, c) + (window,) * dims).mul_(2).sub_(1).to(memory_format=fmt)
    r = torch.rand((n, k) + (out_extent,) * dims).mul_(2).sub_(1).to(memory_format=fmt)

    def forward():
        with torch.no_grad():
            conv(x, w, stride=stride, padding=pad)

    xg = x.clone().requires_grad_(True)
    wg = w.clone().requires_grad_(True)

    def forward_backward():
        xg.grad = None
        wg.grad = None
        out = conv(xg, wg, stride=stride, padding=pad)
        out.backward(r)

    flops = 2.0 * n * out_extent ** dims * k * window ** dims * c
    return median_ms(forward), median_ms(forward_backward), flops


def main():
    only = [a for a in sys.argv[1:] if a != "--cpu"]
    timing = "CPU time" if CPU_TIME else "wall clock"
    print(f"# PyTorch {torch.__version__}, {torch.get_num_threads()} threads, {timing}, float")
    for name, desc, dims, n, c, extent, k, window, stride in CASES:
        if only and name not in only:
            continue
        best = None
        for fmt_name, fmt in FORMATS[dims]:
            fwd, both, flops = run_case(dims, n, c, extent, k, window, stride, fmt)
            print(f"# {name} {desc}: {fmt_name}: fwd {fwd:.2f} ms ({flops / fwd * 1e-6:.1f} GFLOP/s), "
                  f"fwd+bwd {both:.2f} ms ({3 * flops / both * 1e-6:.1f} GFLOP/s)")
            if best is None or fwd + both < best[1] + best[2]:
                best = (fmt_name, fwd, both, flops)
        fmt_name, fwd, both, flops = best
        print(f"case={name} fwd_ms={fwd:.3f} fwd_gflops={flops / fwd * 1e-6:.1f} "
              f"fwdbwd_ms={both:.3f} fwdbwd_gflops={3 * flops / both * 1e-6:.1f} format={fmt_name}", flush=True)


if __name__ == "__main__":
    main()
