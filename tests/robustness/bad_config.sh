#!/usr/bin/env bash
# psp-gateway refuses to start on a config it cannot use, before opening anything (no root needed): a
# missing file, a directory, an empty file, invalid JSON and an unknown key each exit 2 with one error
# line that names the file (docs/robustness.md, "config missing/invalid/unreadable").
#   bad_config.sh PSP_GATEWAY
set -uo pipefail
GW=$1
DIR=$(mktemp -d "${TMPDIR:-/tmp}/pspgw-badcfg.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
: >"$DIR/empty.json"
printf '{"config": ' >"$DIR/truncated.json"
printf '{"config": {"local-grpc-address": "127.0.0.1:3000"}, "bogus-key": 1}\n' >"$DIR/unknown.json"
mkdir "$DIR/dir.json"
failed=0
check() { # check FILE EXPECTED-TEXT
  local out rc
  out=$(timeout 10 "$GW" -c "$1" -d pspbad0 --grpc-insecure --admin-socket "$DIR/a.sock" 2>&1)
  rc=$?
  if ((rc != 2)) || ! grep -qF -- "$1" <<<"$out" || ! grep -qF -- "$2" <<<"$out"; then
    echo "FAIL $1: exit $rc (want 2), output: $out"
    failed=1
  else
    echo "PASS $1: $(head -1 <<<"$out")"
  fi
}
check "$DIR/missing.json" "File does not exist"
check "$DIR/dir.json" "is actually a directory"
check "$DIR/empty.json" "error"
check "$DIR/truncated.json" "error"
check "$DIR/unknown.json" "bogus-key: unknown key"
# Unreadable (mode 000) for a user that is not root: root reads any file, so drop to nobody where we can.
if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
  cp "$DIR/unknown.json" "$DIR/secret.json"
  chmod 000 "$DIR/secret.json"
  chmod 755 "$DIR"
  out=$(timeout 10 setpriv --reuid=65534 --regid=65534 --clear-groups "$GW" -c "$DIR/secret.json" -d pspbad0 \
    --grpc-insecure --admin-socket "$DIR/a.sock" 2>&1)
  rc=$?
  if ((rc != 2)) || ! grep -qF -- "$DIR/secret.json: cannot open" <<<"$out"; then
    echo "FAIL unreadable: exit $rc (want 2), output: $out"
    failed=1
  else
    echo "PASS unreadable (as nobody): $(tail -1 <<<"$out")"
  fi
fi
[[ -e $DIR/a.sock ]] && { echo "FAIL: an admin socket was created"; failed=1; }
exit $failed
