#!/usr/bin/env bash
# typegrad's pooling (bench/bench_pool.cpp) against PyTorch's (bench/pool_pytorch.py) in the same
# run: both raw outputs, then per case typegrad with 2 threads vs PyTorch's best memory format
# (2 threads), the speedup PyTorch ms / typegrad ms (> 1: typegrad is faster), and typegrad's GB/s
# as a fraction of a plain copy's measured in the same run (bench_pool's case "copy", 2 threads).
# Prints the CPU, its measured FMA peak and the load average before and after (bench/machine.sh).
#   BUILD_DIR  build directory holding bench/bench_pool (default: build/ in the repository)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
ours="$(mktemp)" theirs="$(mktemp)"
trap 'rm -f "$ours" "$theirs"' EXIT

FMA_PEAK_BIN="$build/bench/fma_peak" "$root/bench/machine.sh"
"$build/bench/bench_pool" | tee "$ours"
/usr/bin/python3 "$root/bench/pool_pytorch.py" | tee "$theirs"
"$root/bench/machine.sh" load

echo
awk '
  FNR == NR { if ($1 == "case" && $4 == 2) { if ($2 == "copy") copy = $8; else { ms[$2] = $6; gb[$2] = $8; order[++n] = $2 } } next }
  $1 == "case" && (!($2 in best) || $6 < best[$2]) { best[$2] = $6; bgb[$2] = $8; layout[$2] = $4 }
  END {
    printf "%-26s | %9s %7s %7s | %9s %7s %-13s | %s\n", "case", "ours ms", "GB/s", "/copy", "torch ms", "GB/s", "(layout)", "speedup"
    for (i = 1; i <= n; ++i) {
      c = order[i]
      printf "%-26s | %9.3f %7.2f %7.2f | %9.3f %7.2f %-13s | %.2fx\n", c, ms[c], gb[c], gb[c] / copy, best[c], bgb[c], layout[c], best[c] / ms[c]
    }
    printf "(copy, 2 threads: %.2f GB/s; /copy = ours GB/s over it)\n", copy
  }' "$ours" "$theirs"
