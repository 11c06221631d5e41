#!/usr/bin/env bash
# Compile time and peak compiler memory of a DEPTH-layer dense+tanh chain with its full gradient.
# Usage: bench/compile_scaling.sh [depth...]   (default: 16 32 64), from the repository root.
# PROBE_FLAGS adds compiler flags (PROBE_FLAGS=--param=ggc-min-heapsize=4194304: typegrad::large_graphs).
set -euo pipefail
cd "$(dirname "$0")/.."
depths=("${@:-16 32 64}")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# User CPU seconds are the figure to compare on a shared machine; wall seconds grow with the load.
printf '%-6s %-10s %-10s %-12s\n' depth user_s wall_s peak_MiB
for d in ${depths[@]}; do
  /usr/bin/time -f '%U %e %M' -o "$out/t" g++ -std=c++20 -O2 -Iinclude ${PROBE_FLAGS:-} -DDEPTH="$d" -c bench/compile_scaling.cpp -o "$out/o.o"
  read -r user secs kib < "$out/t"
  printf '%-6s %-10s %-10s %-12s\n' "$d" "$user" "$secs" "$((kib / 1024))"
done
