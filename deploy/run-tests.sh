#!/usr/bin/env bash
# The test command: installs the Debian packages, builds, and runs every test with ctest.
#   deploy/run-tests.sh              build/ (RelWithDebInfo)
#   deploy/run-tests.sh --sanitize   build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer)
# Extra arguments after the mode go to ctest (e.g. -R e2e.test_lb).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=normal
if [ "${1:-}" = "--sanitize" ]; then mode=sanitize; shift; fi

bash deploy/install-deps.sh

build=build
cmake_args=(-G Ninja -DPython3_EXECUTABLE=/usr/bin/python3)
if [ "$mode" = sanitize ]; then
  build=build-asan
  cmake_args+=(-DRESUMELB_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:strict_string_checks=1"
  export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizer/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  # Sanitized runs are slower: give the end-to-end tests' deadlines room.
  export RLB_E2E_TIMEOUT=60
fi

cmake -S . -B "$build" "${cmake_args[@]}"
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure "$@"
