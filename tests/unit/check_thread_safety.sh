#!/usr/bin/env bash
# Checks zkworker's lock annotations with clang's thread-safety analysis:
#   check_thread_safety.sh CLANGXX SOURCE_DIR VIOLATION_CC ANNOTATED.cc...
# Every annotated source must compile clean under -Wthread-safety -Werror, and
# VIOLATION_CC (which touches a guarded member without its lock) must be rejected, so the
# check cannot pass by the annotations expanding to nothing. Exit 77 (skipped) without clang.
set -u
clangxx=$1 source_dir=$2 violation=$3
shift 3
if [ -z "$clangxx" ] || [ "$clangxx" = "RLB_CLANGXX-NOTFOUND" ] || ! command -v "$clangxx" >/dev/null; then
  echo "SKIPPED: clang++ not found; the thread-safety annotations are not checked"
  exit 77
fi
flags=(-std=c++20 -fsyntax-only -Wthread-safety -Wthread-safety-beta -Werror -I"$source_dir")
status=0
for src in "$@"; do
  if "$clangxx" "${flags[@]}" "$src"; then
    echo "ok: $src"
  else
    echo "FAILED: $src violates its lock annotations (see above)"
    status=1
  fi
done
out=$("$clangxx" "${flags[@]}" "$violation" 2>&1)
if [ $? -eq 0 ]; then
  echo "FAILED: $violation compiled: the annotations are not being checked"
  status=1
elif ! grep -q "Wthread-safety" <<<"$out"; then
  echo "FAILED: $violation was rejected for another reason:"
  echo "$out"
  status=1
else
  echo "ok: $violation is rejected by -Wthread-safety"
fi
exit $status
