#!/usr/bin/env bash
# Compile time and peak compiler memory of the CNN budget probes (docs/compile-time.md):
# bench/compile_resnet18.cpp and bench/compile_densenet.cpp, g++ -O2, one translation unit each.
# Usage: bench/compile_budget.sh   (from anywhere; needs the headers only)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '%-22s %-10s %-10s\n' program seconds peak_MiB
for probe in compile_resnet18 compile_densenet; do
  /usr/bin/time -f '%e %M' -o "$out/t" g++ -std=c++20 -O2 -Iinclude -c "bench/$probe.cpp" -o "$out/o.o"
  read -r secs kib < "$out/t"
  printf '%-22s %-10s %-10s\n' "$probe" "$secs" "$((kib / 1024))"
done
