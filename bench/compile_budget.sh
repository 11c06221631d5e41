#!/usr/bin/env bash
# Compile time and peak compiler memory of the CNN budget probes (docs/compile-time.md):
# bench/compile_resnet18.cpp and bench/compile_densenet.cpp, g++ -O2, one translation unit each.
# Usage: bench/compile_budget.sh              the two probes
#        bench/compile_budget.sh blocks 1 2 3  bench/compile_resnet_blocks.cpp with 1, 2, 3 blocks
# (from anywhere; needs the headers only). cpu_seconds (user time) is the figure to compare when
# other jobs share the machine. PROBE_FLAGS adds compiler flags, e.g.
# PROBE_FLAGS=--param=ggc-min-heapsize=4194304 (what typegrad::large_graphs sets).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
measure() {  # label, then the extra compiler arguments
  local label=$1
  shift
  /usr/bin/time -f '%e %U %M' -o "$out/t" g++ -std=c++20 -O2 -Iinclude ${PROBE_FLAGS:-} -c "$@" -o "$out/o.o"
  read -r secs cpu kib < "$out/t"
  printf '%-26s %-10s %-12s %-10s\n' "$label" "$secs" "$cpu" "$((kib / 1024))"
}
printf '%-26s %-10s %-12s %-10s\n' program seconds cpu_seconds peak_MiB
if [[ ${1:-} == blocks ]]; then
  shift
  for b in "$@"; do measure "compile_resnet_blocks $b" -DBLOCKS="$b" bench/compile_resnet_blocks.cpp; done
else
  for probe in compile_resnet18 compile_densenet; do measure "$probe" "bench/$probe.cpp"; done
fi
