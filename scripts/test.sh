#!/usr/bin/env bash
# Every test: installs what is missing, builds, runs the unit, golden, end-to-end, format and lint tests
# (ctest), then the unit, golden and in-memory gateway tests again under AddressSanitizer + UBSan, each
# libFuzzer target for a few seconds, and every test binary that runs threads under ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/build.sh
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 600 "$@")

# Gtest binaries' labels (not style, e2e, golden or fuzz): what the sanitizer trees run from the tests they built.
GTEST_LABELS='^(unit|tsan|grpc|root|pspctl|psp-pcap|fuzz)$'

# AddressSanitizer + UndefinedBehaviorSanitizer (clang; a UBSan report is fatal): every test but the style
# checks and the root end-to-end cases, i.e. the unit tests, the golden tests of the sanitized psp-pcap and
# the gateways over in-memory ports. The tree also holds the libFuzzer targets (scripts/configure-asan.sh).
scripts/configure-asan.sh build-asan
cmake --build build-asan -j "$(nproc)"
(cd build-asan && ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1" \
  UBSAN_OPTIONS="print_stacktrace=1" ctest --output-on-failure -j "$(nproc)" --timeout 600 -LE '^(style|e2e)$')

# Each libFuzzer target for a few seconds from its seed corpus (replayed in every build by fuzz_replay_test).
scripts/fuzz.sh all "${FUZZ_SECONDS:-8}"

# ThreadSanitizer over every test binary that starts threads: the flow engine's stress test, the gateway's
# parts and whole in-memory gateways (workers, slow path, gRPC), the admin and metrics servers, pspctl
# against an admin server, the tunnel manager's and gRPC/TLS tests, the key ring and KDF, memory and TAP ports.
TSAN_TARGETS=(flow_stress_test gateway_parts_test admin_test metrics_test control_test control_grpc_test crypto_test
  psp_test ports_test tap_port_test pspctl_cli_test gateway_memory_test gateway_restart_test gateway_transport_test
  gateway_rotation_test gateway_sfc_test gateway_reload_test)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPSPGW_SANITIZE=thread \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DPSPGW_SKIP="bench;fuzz" "${launcher[@]}" >/dev/null
cmake --build build-tsan -j "$(nproc)" --target "${TSAN_TARGETS[@]}"
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --output-on-failure -j "$(nproc)" --timeout 600 -L "$GTEST_LABELS")
