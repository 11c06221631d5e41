#!/usr/bin/env bash
# The main example's CNN on one machine: 2 MPI ranks x 1 thread (all-reduces overlapped with the
# backward pass, then not) against 1 process x 2 threads and 1 process x 1 thread, all stepping
# with the same global batch (so the same updates, losses and accuracies). Prints seconds per
# training epoch, the share of it spent waiting for all-reduces after the backward pass, and the
# share of the all-reduces' time that overlapped the backward pass (docs/distributed.md).
#   bench/distributed_vs_single.sh [epochs (default 3)] [options of fashion_mnist_distributed...]
#   bench/distributed_vs_single.sh 1 --train-samples 2560      a quick check that it runs
#   BUILD_DIR   build directory holding examples/fashion_mnist_distributed (default: build/)
#   BATCH       samples per rank and step (default 64; the single process gets 2 * BATCH)
# The figures mean little on a loaded machine: the load average is printed before and after.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
example="${BUILD_DIR:-$root/build}/examples/fashion_mnist_distributed"
[ -x "$example" ] || { echo "build it first: cmake --build build --target fashion_mnist_distributed" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "mpirun not found (Debian: openmpi-bin)" >&2; exit 1; }
epochs="${1:-3}"
shift $(($# > 0 ? 1 : 0))
batch="${BATCH:-64}"
mpirun_flags=(-np 2 --bind-to core)  # one core per rank
((EUID == 0)) && mpirun_flags+=(--allow-run-as-root)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
common=(--epochs "$epochs" --quiet --checkpoint "$work/net.safetensors" "$@")

# Runs one configuration and prints its row: mean seconds per epoch, wait %, overlap %, accuracy.
row() {
  local label="$1"
  shift
  "$@" >"$work/out" 2>&1 || { cat "$work/out" >&2; exit 1; }
  awk -v label="$label" '
    /^epoch / {
      for (i = 1; i <= NF; ++i) {
        if ($(i + 1) == "s" && $(i + 2) ~ /^\(\+/) { sum += $i; ++n }
        if ($i == "accuracy") acc = $(i + 1)
        if ($i == "wait") wait += $(i + 1)
        if ($i == "overlap") overlap += $(i + 1)
      }
    }
    END {
      if (n == 0) { print "no epoch lines from " label > "/dev/stderr"; exit 1 }
      printf "| %s | %.1f | %.1f%% | %.0f%% | %s |\n", label, sum / n, wait / n, overlap / n, acc
    }' "$work/out"
}

echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
echo "# $epochs epoch(s), $((2 * batch)) samples per step; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| configuration | s per epoch | all-reduce wait | overlap | test accuracy |"
echo "| --- | ---: | ---: | ---: | ---: |"
row "2 ranks x 1 thread" mpirun "${mpirun_flags[@]}" "$example" --threads 1 --batch "$batch" "${common[@]}"
row "2 ranks x 1 thread, no overlap" mpirun "${mpirun_flags[@]}" "$example" --threads 1 --batch "$batch" --no-overlap "${common[@]}"
row "1 process x 2 threads" "$example" --threads 2 --batch $((2 * batch)) "${common[@]}"
row "1 process x 1 thread" "$example" --threads 1 --batch $((2 * batch)) "${common[@]}"
echo "# load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
