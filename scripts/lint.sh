#!/usr/bin/env bash
# clang-tidy over the project's sources with the checks in .clang-tidy. Usage: scripts/lint.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
mapfile -t files < <(git ls-files -co --exclude-standard -- 'src/*.cpp' 'tools/*.cpp' | grep -v '_test.cpp$' || true)
[ ${#files[@]} -eq 0 ] && exit 0
# Headers are checked through the sources that include them.
printf '%s\n' "${files[@]}" | xargs -P "$(nproc)" -n 4 clang-tidy -p "$BUILD_DIR" --quiet --warnings-as-errors='*' \
  2> >(grep -v -E '^[0-9]+ warnings? generated|Suppressed|Use -header-filter|Use -system-headers' >&2)
echo "lint: ${#files[@]} files clean"
