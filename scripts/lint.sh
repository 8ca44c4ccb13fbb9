#!/usr/bin/env bash
# clang-tidy over the project's sources with the checks in .clang-tidy. Usage: scripts/lint.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
mapfile -t files < <(git ls-files -co --exclude-standard -- 'src/*.cpp' 'tools/*.cpp' | grep -v '_test.cpp$' || true)
[ ${#files[@]} -eq 0 ] && exit 0
# Headers are checked through the sources that include them. Niced: under ctest the lint runs beside the
# end-to-end cases, whose gateways, iperf3 and (niced) flooders must not wait behind the analyzer.
# The static analyzer (clang-analyzer-*) runs in its shallow mode: about half of its deep mode's cost,
# which on two cores and 100 sources is minutes of the test command. LINT_DEEP=1 scripts/lint.sh build
# runs it deep (do before a release, and after changing a parser).
analyzer=(--extra-arg=-Xclang --extra-arg=-analyzer-config --extra-arg=-Xclang --extra-arg=mode=shallow)
[ "${LINT_DEEP:-0}" = 1 ] && analyzer=()
printf '%s\n' "${files[@]}" | xargs -P "$(nproc)" -n 4 nice -n 10 clang-tidy -p "$BUILD_DIR" "${analyzer[@]}" --quiet --warnings-as-errors='*' \
  2> >(grep -v -E '^[0-9]+ warnings? generated|Suppressed|Use -header-filter|Use -system-headers' >&2)
echo "lint: ${#files[@]} files clean"
