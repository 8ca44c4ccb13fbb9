#!/usr/bin/env bash
# Every test: installs what is missing, builds, runs the unit, golden, end-to-end, format and lint tests
# (ctest), then the concurrency tests again under ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/build.sh
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 600 "$@")

# The concurrency tests again, built with -fsanitize=thread: the binaries labelled "tsan" (the flow engine's
# control-plane/worker stress test, the gateway's worker<->control rings and the admin server's threads).
TSAN_TARGETS=(flow_stress_test gateway_parts_test admin_test)
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPSPGW_SANITIZE=thread \
  -DPSPGW_SKIP="bench;fuzz" >/dev/null
cmake --build build-tsan -j "$(nproc)" --target "${TSAN_TARGETS[@]}"
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --output-on-failure -L tsan --timeout 600)
