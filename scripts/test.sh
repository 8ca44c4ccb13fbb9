#!/usr/bin/env bash
# Every test: installs what is missing, builds, runs the unit, golden, end-to-end, format and lint tests
# (ctest), then the concurrency tests again under ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/build.sh
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 600 "$@")

# The concurrency stress tests, rebuilt with -fsanitize=thread (labels: tsan).
BUILD_DIR=build-tsan BUILD_TYPE=RelWithDebInfo scripts/build.sh -DPSPGW_SANITIZE=thread \
  -DPSPGW_SKIP="bench;fuzz;tools/psp-pcap"
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --output-on-failure -L tsan --timeout 600)
