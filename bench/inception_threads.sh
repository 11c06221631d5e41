#!/usr/bin/env bash
# Times the Inception network's training step at 1 and 2 threads (bench/inception_threads.cpp):
# medians, the speed-up, the graph's width, and from the profiled kernel times the work, the critical
# path and what overlapping independent nodes could add,
# with the machine and its load before and after (the figures mean little when load > cores).
#   bench/inception_threads.sh [options of inception_threads, e.g. --runs 21 --steps 10]
#   BUILD_DIR   build directory holding bench/inception_threads (default: build/)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="${BUILD_DIR:-$root/build}/bench/inception_threads"
[ -x "$bench" ] || { echo "build it first: cmake --build build --target inception_threads" >&2; exit 1; }
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench" --threads 2 "$@"
echo "# load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
