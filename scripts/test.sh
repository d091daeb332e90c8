#!/usr/bin/env bash
# Builds and runs the test suite: the normal build, then ASan+UBSan, then ThreadSanitizer for
# the engine's suites (labels unit, sqlite, crash, fault). SAGA_SKIP_ASAN=1 / SAGA_SKIP_TSAN=1 skip
# those. Extra arguments go to ctest, e.g. `scripts/test.sh -L crash`. The disk-fault sweeps fail
# every I/O call of a run in the normal build and every 4th under the sanitizers
# (SAGA_FAULT_STRIDE overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
dir_of() { if [ "$1" = default ]; then echo build; else echo "build-$1"; fi; }
run() {
  local preset=$1; shift
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  ctest --test-dir "$(dir_of "$preset")" --output-on-failure -j "$jobs" --timeout 600 "$@"
}
run default "$@"
if [ "${SAGA_SKIP_ASAN:-0}" != 1 ]; then
  SAGA_FAULT_STRIDE=${SAGA_FAULT_STRIDE:-4} ASAN_OPTIONS=detect_leaks=1 \
    UBSAN_OPTIONS=print_stacktrace=1 run asan "$@"
fi
if [ "${SAGA_SKIP_TSAN:-0}" != 1 ]; then
  if [ $# -eq 0 ]; then set -- -L 'unit|sqlite|crash|fault'; fi
  SAGA_FAULT_STRIDE=${SAGA_FAULT_STRIDE:-4} SAGA_CRASH_WINDOW=${SAGA_CRASH_WINDOW:-250} \
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" run tsan "$@"
fi
