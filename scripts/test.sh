#!/usr/bin/env bash
# Builds everything (library, tests, examples, benchmarks) and runs the whole test suite, then
# builds the tests of the executor, kernels, data and checkpoints with AddressSanitizer +
# UndefinedBehaviorSanitizer and runs them (docs/reliability.md).
# The README's test command and CI (.ci/run) both run exactly this.
#   BUILD_DIR     build directory (default: build/ in the repository)
#   SANITIZE_DIR  build directory of the sanitizer stage (default: build-sanitize/; SANITIZE=0 skips it)
#   JOBS          parallel compile jobs (default: nproc)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
sanitize_build="${SANITIZE_DIR:-$root/build-sanitize}"
jobs="${JOBS:-$(nproc)}"

bash "$root/scripts/deps.sh"
cmake -S "$root" -B "$build" -DTYPEGRAD_NATIVE=ON \
  -DTYPEGRAD_BUILD_TESTS=ON -DTYPEGRAD_BUILD_EXAMPLES=ON -DTYPEGRAD_BUILD_BENCH=ON
cmake --build "$build" -j"$jobs"
ctest --test-dir "$build" --output-on-failure

if [ "${SANITIZE:-1}" != 0 ]; then
  cmake -S "$root" -B "$sanitize_build" -DTYPEGRAD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Release \
    -DTYPEGRAD_BUILD_TESTS=ON -DTYPEGRAD_BUILD_EXAMPLES=OFF -DTYPEGRAD_BUILD_BENCH=OFF
  cmake --build "$sanitize_build" -j"$jobs" --target sanitized_tests  # the list: tests/CMakeLists.txt
  # Suppressions, each proven to be inside oneTBB and explained in its file: LeakSanitizer's for
  # allocations of the uninstrumented libtbb.so that live until exit, UBSan's for one vptr check in
  # TBB's flow-graph header. Any other report fails the run.
  export LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="suppressions=$root/scripts/ubsan.supp:print_stacktrace=1:halt_on_error=1"
  ctest --test-dir "$sanitize_build" --output-on-failure -L sanitized
fi
