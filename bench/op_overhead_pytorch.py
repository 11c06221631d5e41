# PyTorch's eager autograd on bench/op_overhead.cpp's chain: 100 layers h = relu(h * a_i + b_i) on
# 64 floats, forward + backward of sum(h) with respect to x and every a_i, b_i. Prints ns per
# elementwise op (total / 300), median of 9 repeats, at each thread count given (default 1 2).
import statistics
import sys
import time

import torch

layers, width = 100, 64
x = torch.linspace(0, 0.63, width, requires_grad=True)
a = [torch.ones(width, requires_grad=True) for _ in range(layers)]
b = [torch.full((width,), 0.001, requires_grad=True) for _ in range(layers)]


def step():
    h = x
    for ai, bi in zip(a, b):
        h = torch.relu(h * ai + bi)
    h.sum().backward()


for threads in [int(t) for t in sys.argv[1:]] or [1, 2]:
    torch.set_num_threads(threads)
    runs, times = 100, []
    for _ in range(9):
        step()
        t0 = time.perf_counter()
        for _ in range(runs):
            step()
        times.append((time.perf_counter() - t0) / runs / (layers * 3) * 1e9)
    print(f"threads={threads} ns_per_op={statistics.median(times):.1f} min={min(times):.1f} max={max(times):.1f}")
