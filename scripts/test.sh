#!/usr/bin/env bash
# Builds everything (library, tests, examples, benchmarks) and runs the whole test suite.
# The README's test command and CI (.ci/run) both run exactly this.
#   BUILD_DIR  build directory (default: build/ in the repository)
#   JOBS       parallel compile jobs (default: nproc)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
jobs="${JOBS:-$(nproc)}"

bash "$root/scripts/deps.sh"
cmake -S "$root" -B "$build" -DTYPEGRAD_NATIVE=ON \
  -DTYPEGRAD_BUILD_TESTS=ON -DTYPEGRAD_BUILD_EXAMPLES=ON -DTYPEGRAD_BUILD_BENCH=ON
cmake --build "$build" -j"$jobs"
ctest --test-dir "$build" --output-on-failure
