#!/usr/bin/env bash
# Runs the libFuzzer targets (clang) for a bounded time: scripts/fuzz.sh [TARGET|all] [SECONDS]
#   TARGET   a fuzz/fuzz_<TARGET>.cpp name (psp_decap, flow_match, ...), or "all" (the default): each in turn
#   SECONDS  how long each target runs (default 10)
# Builds into the ASan+UBSan tree scripts/test.sh uses (BUILD_DIR, default build-asan: clang,
# -fsanitize=address,undefined,fuzzer-no-link), starting every target from a copy of its seed corpus
# (fuzz/corpus/<TARGET>/) in $BUILD_DIR/fuzz-work/<TARGET>/; a crash is written there as crash-* and fails the run.
# Prints one line per target: "fuzz TARGET: N runs in S s (E exec/s), corpus C".
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${1:-all}
SECONDS_EACH=${2:-10}
BUILD_DIR=${BUILD_DIR:-build-asan}

# The same configuration scripts/test.sh gives the tree (see there why -O1 and line tables only).
scripts/configure-asan.sh "$BUILD_DIR"

mapfile -t ALL < <(ls fuzz/fuzz_*.cpp | sed -n 's|^fuzz/fuzz_\(.*\)\.cpp$|\1|p' | grep -vx 'replay_test\|make_corpus')
if [ "$TARGET" = all ]; then
  TARGETS=("${ALL[@]}")
else
  printf '%s\n' "${ALL[@]}" | grep -qx "$TARGET" || { echo "fuzz.sh: no target '$TARGET' (${ALL[*]})" >&2; exit 2; }
  TARGETS=("$TARGET")
fi

cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${TARGETS[@]/#/fuzz_}"

status=0
for t in "${TARGETS[@]}"; do
  work="$BUILD_DIR/fuzz-work/$t"
  mkdir -p "$work/corpus"
  cp -n fuzz/corpus/"$t"/* "$work/corpus/" 2>/dev/null || true
  log="$work/last.log"
  # -fno-sanitize-recover=undefined is compiled in, so a UBSan report is a crash like any other.
  if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
    "$BUILD_DIR/bin/fuzz_$t" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -artifact_prefix="$work/" \
    -timeout=10 -rss_limit_mb=2048 "$work/corpus" >"$log" 2>&1; then
    echo "fuzz $t: FAILED (log $log, artifacts $work/crash-* / timeout-* / oom-*)" >&2
    tail -40 "$log" >&2
    status=1
    continue
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
  secs=${secs:-$SECONDS_EACH}
  echo "fuzz $t: ${runs:-?} runs in ${secs} s ($(( ${runs:-0} / (secs > 0 ? secs : 1) )) exec/s)," \
    "corpus $(find "$work/corpus" -type f | wc -l)"
done
exit $status
