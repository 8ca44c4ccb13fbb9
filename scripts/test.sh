#!/usr/bin/env bash
# Every test: installs what is missing, builds, runs the unit, golden, end-to-end, format and lint tests
# (ctest), then the unit, golden and in-memory gateway tests again under AddressSanitizer + UBSan, each
# libFuzzer target for a few seconds, and every test binary that runs threads under ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each stage's wall time on stderr ("test.sh: stage NAME: N s"), so a slow CI run says where its time went.
stage_start=$SECONDS
stage() {
  echo "test.sh: stage $1: $((SECONDS - stage_start)) s (total $SECONDS s)" >&2
  stage_start=$SECONDS
}

scripts/deps.sh
stage deps
scripts/build.sh
stage build
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 600 "$@")
stage ctest

# AddressSanitizer + UndefinedBehaviorSanitizer (clang; a UBSan report is fatal): every test but the style
# checks, the root end-to-end cases and the soak, i.e. the unit tests, the golden tests of the sanitized
# psp-pcap and the gateways over in-memory ports. The tree also holds the libFuzzer targets
# (scripts/configure-asan.sh). Not Modes/ThousandTunnels: 1,000 on-demand tunnels at ASan's speed overflow
# the hold queue before their exchanges finish (it runs in the main tree).
scripts/configure-asan.sh build-asan
cmake --build build-asan -j "$(nproc)"
stage asan-build
(cd build-asan && ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1" \
  UBSAN_OPTIONS="print_stacktrace=1" ctest --output-on-failure -j "$(nproc)" --timeout 600 -LE '^(style|e2e|soak)$' \
  -E 'ThousandTunnels')
stage asan-tests

# Each libFuzzer target for a few seconds from its seed corpus (replayed in every build by fuzz_replay_test).
scripts/fuzz.sh all "${FUZZ_SECONDS:-8}"
stage fuzz

# ThreadSanitizer over every test binary that starts threads: the flow engine's stress test, the gateway's
# parts and whole in-memory gateways (workers, slow path, gRPC), the admin and metrics servers, pspctl
# against an admin server, the tunnel manager's and gRPC/TLS tests, the key ring and KDF, memory and TAP ports,
# fleet mode against etcd, key rotations under traffic (gateway_rotation_test rotates 100 tunnels here, 1,000
# in the other trees: see there).
TSAN_TARGETS=(flow_stress_test gateway_parts_test admin_test metrics_test control_test control_grpc_test crypto_test
  psp_test ports_test tap_port_test pspctl_cli_test gateway_memory_test gateway_restart_test gateway_transport_test
  gateway_sfc_test gateway_reload_test gateway_robustness_test gateway_rotation_test fleet_etcd_test)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# -O1 -g1: a cheaper cold build than -O2 -g with the same reports. No -Werror: g++ -O1 warns of a
# mismatched new/delete in kdf_test's counting operator new that -O2 (the main build, -Werror) does not see.
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPSPGW_SANITIZE=thread -DPSPGW_WERROR=OFF \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DPSPGW_SKIP="bench;fuzz" "${launcher[@]}" >/dev/null
cmake --build build-tsan -j "$(nproc)" --target "${TSAN_TARGETS[@]}"
stage tsan-build
# Every test of the binaries built (the others' placeholders are named *_NOT_BUILT; golden tests need psp-pcap).
# gRPC and abseil are not TSan-instrumented in Debian: tests/tsan.supp says what that costs. The tests of
# the installed/started binaries (install_layout, gateway_bad_config) are the main tree's and the ASan tree's.
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/../tests/tsan.supp" \
  ctest --output-on-failure -j "$(nproc)" --timeout 600 -LE '^(style|e2e|soak|golden)$' \
  -E '_NOT_BUILT$|^install_layout$|^gateway_bad_config$')
stage tsan-tests
