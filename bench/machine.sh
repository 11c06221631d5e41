#!/usr/bin/env bash
# Prints what a benchmark's figures depend on, for the scripts in bench/ to call before and after
# timing:  bench/machine.sh        cpu name, family/model, cores, measured FMA peak, load average
#          bench/machine.sh load   the load average only ("load after")
# FMA_PEAK_BIN names the fma_peak binary (default: build/bench/fma_peak); without it the peak line
# says so instead of guessing a figure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${1:-}" = "load" ]; then
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi
name=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)
family=$(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs)
model=$(grep -m1 '^model[[:space:]]' /proc/cpuinfo | cut -d: -f2 | xargs)
echo "cpu: $name (family $family, model $model), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
peak="${FMA_PEAK_BIN:-$root/build/bench/fma_peak}"
if [ -x "$peak" ]; then
  "$peak"
else
  echo "fma_peak: not built ($peak); build the bench target fma_peak for the measured FMA peak"
fi
