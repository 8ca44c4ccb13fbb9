#!/usr/bin/env bash
# Installs the build into a DESTDIR with --prefix /usr/local and checks the layout, then verifies the
# installed systemd unit with `systemd-analyze verify`.
#   dist/install_test.sh BUILD_DIR
# systemd-analyze verify checks that ExecStart's binary exists, and it would look at /usr/local/bin on this
# machine: the test verifies a copy of the installed unit whose paths are rewritten into the DESTDIR (the
# installed unit itself is checked to name /usr/local/bin and /etc).
set -euo pipefail
build=${1:?usage: install_test.sh BUILD_DIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

DESTDIR="$tmp/root" cmake --install "$build" --prefix /usr/local >"$tmp/install.log" || { cat "$tmp/install.log"; fail "install"; }
root="$tmp/root"
for f in usr/local/bin/psp-gateway usr/local/bin/pspctl usr/local/bin/psp-pcap; do
  [ -x "$root/$f" ] || fail "missing executable /$f"
done
[ -f "$root/etc/psp-gateway/example.json" ] || fail "missing /etc/psp-gateway/example.json (config must be in /etc, not under the prefix)"
unit="$root/usr/local/lib/systemd/system/psp-gateway@.service"
[ -f "$unit" ] || fail "missing unit /usr/local/lib/systemd/system/psp-gateway@.service"
grep -q '^ExecStart=/usr/local/bin/psp-gateway -c /etc/psp-gateway/%i.json ' "$unit" || fail "ExecStart does not name /usr/local/bin and /etc: $(grep ExecStart "$unit")"
grep -q '^Type=notify$' "$unit" || fail "not Type=notify"
grep -q '^CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE$' "$unit" || fail "capabilities not limited"
grep -q '@' <(grep -v '^#' "$unit" | grep -v 'psp-gateway@' | grep '@[A-Z_]*@') && fail "unsubstituted @VAR@ in the unit"
"$root/usr/local/bin/psp-gateway" --help | grep -q '^EXAMPLES' || fail "--help has no EXAMPLES section"
# The example config is one the installed binary accepts.
"$root/usr/local/bin/psp-gateway" -c "$root/etc/psp-gateway/example.json" --dump-pipeline json >/dev/null || fail "example.json is refused"

command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not installed"; exit 77; }
mkdir -p "$tmp/units"
sed -e "s|/usr/local/bin/|$root/usr/local/bin/|g" -e "s|/etc/psp-gateway/|$root/etc/psp-gateway/|g" "$unit" \
  >"$tmp/units/psp-gateway@.service"
# An instance: verify resolves %i; SYSTEMD_UNIT_PATH lets it find the template next to it.
ln -s "psp-gateway@.service" "$tmp/units/psp-gateway@example.service"
out=$(cd "$tmp/units" && SYSTEMD_UNIT_PATH="$tmp/units:" systemd-analyze verify --man=no \
        "$tmp/units/psp-gateway@example.service" 2>&1) || { echo "$out"; fail "systemd-analyze verify"; }
# verify also reports problems of other units on the machine; only ours count.
if grep -i 'psp-gateway' <<<"$out"; then fail "systemd-analyze verify reported problems with the unit"; fi
echo "PASS: installed layout and unit (systemd-analyze verify clean)"
