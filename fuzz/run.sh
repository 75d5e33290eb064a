#!/usr/bin/env bash
# Builds resumelb's libFuzzer fuzzers (clang, ASan + UBSan) and runs each one on a copy of
# its seed corpus (fuzz/corpus/<name>/ is never written to).
#
#   fuzz/run.sh [--smoke]        5 seconds per fuzzer: the CI smoke test (the default); it
#                                replays every seed, then mutates with a fixed -seed=1 so a
#                                CI result can be reproduced (new ground is for long runs)
#   fuzz/run.sh --minutes N      N minutes per fuzzer, one after the other; the grown corpus
#                                is kept in $BUILD/fuzz-work/<name>/corpus between runs
#                                (smoke runs use a fresh smoke-corpus/ copy instead)
#   options: --no-deps (skip deploy/install-deps.sh --fuzz), --only NAME (one fuzzer)
#   environment: BUILD_DIR (default build-fuzz), NICE (default 19), FUZZ_ARGS (extra
#   libFuzzer flags)
#
# Exits non-zero if any fuzzer crashes, leaks, times out or runs out of memory; the input
# is saved as $BUILD/fuzz-work/<name>/artifacts/crash-* (reproduce: $BUILD/fuzz/<name> FILE).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD_DIR:-$ROOT/build-fuzz}"
NICE="${NICE:-19}"
FUZZERS=(fuzz_http_request fuzz_frame_codec fuzz_config)
seconds=5
mode=smoke
deps=1
only=""

while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) mode=smoke; seconds=5 ;;
    --minutes) mode=long; seconds=$(( ${2:?--minutes needs a number} * 60 )); shift ;;
    --no-deps) deps=0 ;;
    --only) only="${2:?--only needs a fuzzer name}"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "fuzz/run.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done

if [ "$deps" = 1 ]; then
  bash "$ROOT/deploy/install-deps.sh" --fuzz
fi

CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -G Ninja -DRESUMELB_FUZZ=ON \
  -DRESUMELB_BUILD_TESTS=OFF -DPython3_EXECUTABLE=/usr/bin/python3 >/dev/null
nice -n "$NICE" cmake --build "$BUILD" --target "${FUZZERS[@]}"

# Per-fuzzer libFuzzer flags: inputs up to 8 KiB for the HTTP and config fuzzers so that
# values over the protocol's 4096-byte limits (request class, résumé class) are reachable.
max_len() {
  case "$1" in
    fuzz_http_request|fuzz_config) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

failed=()
for name in "${FUZZERS[@]}"; do
  if [ -n "$only" ] && [ "$only" != "$name" ]; then continue; fi
  work="$BUILD/fuzz-work/$name"
  mkdir -p "$work/artifacts"
  # Smoke runs start from a fresh copy of the seeds; long runs keep growing their corpus.
  corpus="$work/corpus"
  if [ "$mode" = smoke ]; then
    corpus="$work/smoke-corpus"
    rm -rf "$corpus"
  fi
  mkdir -p "$corpus"
  cp -n "$ROOT/fuzz/corpus/$name/"* "$corpus/" 2>/dev/null || true
  seed=()
  if [ "$mode" = smoke ]; then seed=(-seed=1); fi
  dict=()
  if [ -f "$ROOT/fuzz/$name.dict" ]; then dict=("-dict=$ROOT/fuzz/$name.dict"); fi
  echo "=== $name: $seconds s"
  set +e
  # shellcheck disable=SC2086
  nice -n "$NICE" "$BUILD/fuzz/$name" "$corpus" "${dict[@]}" "${seed[@]}" \
    -max_total_time="$seconds" -max_len="$(max_len "$name")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" ${FUZZ_ARGS:-} \
    >"$work/log" 2>&1
  rc=$?
  set -e
  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::number_of_executed_units|^Done ' "$work/log" || true
  if [ $rc -ne 0 ]; then
    echo "!!! $name failed (exit $rc); log: $work/log" >&2
    grep -E 'ERROR: |FUZZ_CHECK|runtime error|SUMMARY|Test unit written' "$work/log" >&2 || true
    failed+=("$name")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz/run.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz/run.sh: all fuzzers passed ($mode)"
