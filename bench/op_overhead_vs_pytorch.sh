#!/usr/bin/env bash
# Per-op overhead, typegrad (bench/op_overhead) beside PyTorch's eager autograd on the same chain,
# at 1 and 2 threads, with the CPU and the load average before and after (timings are only valid
# on a quiet machine).
#   BUILD_DIR   build directory holding bench/op_overhead (default: build/)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="${BUILD_DIR:-$root/build}/bench/op_overhead"
FMA_PEAK_BIN="$(dirname "$bench")/fma_peak" "$root/bench/machine.sh"
echo "typegrad:"; "$bench" 1 2
echo "pytorch:";  /usr/bin/python3 "$root/bench/op_overhead_pytorch.py" 1 2
"$root/bench/machine.sh" load
