#!/usr/bin/env bash
# Per-op overhead, typegrad (bench/op_overhead) beside PyTorch's eager autograd on the same chain,
# at 1 and 2 threads, with the CPU and the load average before and after (timings are only valid
# on a quiet machine).
#   BUILD_DIR   build directory holding bench/op_overhead (default: build/)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="${BUILD_DIR:-$root/build}/bench/op_overhead"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "typegrad:"; "$bench" 1 2
echo "pytorch:";  /usr/bin/python3 "$root/bench/op_overhead_pytorch.py" 1 2
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
