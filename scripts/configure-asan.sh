#!/usr/bin/env bash
# Configures the ASan+UBSan tree (default build-asan/): clang, so the same objects serve the sanitized tests
# and the libFuzzer targets (-fsanitize=fuzzer-no-link adds only coverage counters, which plain test
# binaries ignore); -O1 with line tables only, which halves the cold build of -O2 -g and still gives
# sanitizer reports file:line stacks; UBSan reports are fatal (top CMakeLists.txt); benchmarks left out.
# No -Werror: warnings are the main (g++) build's and clang-tidy's to enforce; clang warns of things g++
# does not (e.g. a deliberate non-short-circuit '|' of two bools), which must not stop the sanitizer run.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-asan}
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DPSPGW_SANITIZE=address,undefined,fuzzer-no-link -DPSPGW_WERROR=OFF -DPSPGW_SKIP=bench "${launcher[@]}" >/dev/null
