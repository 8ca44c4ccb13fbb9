#!/usr/bin/env bash
# Tests the end-to-end harness without the daemon (root, network namespaces; 77 = skipped):
#  1. topology: scripts/lib/topology.sh builds the namespaces, a TAP created in a host and moved into its VM
#     (the gateway's flow) carries the VIP and the route to the peer VIP, the wire passes both families,
#     the hosts themselves have no route to the VIPs, the configs are DOCA-schema JSON; teardown is
#     idempotent and leaves no namespace behind.
#  2. harness: gateway_e2e.sh against tests/e2e/fake_gateway.py (a plaintext L2 relay with the daemon's
#     command line) for every outer/inner family: ping and the TCP transfer must pass through it, and the
#     wire check must FAIL (plaintext on the wire) — the e2e test can fail, and fails for the right reason.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
[[ ${1:-} == --bin-dir ]] && export TOPO_BIN_DIR=$2
# shellcheck source-path=SCRIPTDIR/../.. source=scripts/lib/topology.sh
source "$REPO/scripts/lib/topology.sh"

why=$(topo_preflight)
if [[ -n $why ]]; then
  echo "SKIP: $why"
  exit 77
fi
for tool in python3 tcpdump tshark ss ping timeout; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

FAILED=0
check() { # check NAME CMD...
  local name=$1
  shift
  if "$@"; then echo "PASS [selftest/$name]"; else echo "FAIL [selftest/$name]"; FAILED=1; fi
}
ours_left() { ip netns list | awk '{print $1}' | grep -c "^${TOPO_PREFIX}" ; }

# ----- 1. the topology with a plain TAP standing in for the gateway's -----
topology_case() {
  topo_init --outer "$1" --inner "$2" || return 1
  trap topo_teardown EXIT
  check "$1-$2/create" topo_create
  topo_write_configs
  local n
  for n in 1 2; do
    # A persistent TAP made in hostN, as the gateway makes its own there.
    ip -n "$(topo_ns "host$n")" tuntap add dev "${TOPO_TAP[$n]}" mode tap
    check "$1-$2/attach-vm$n" topo_attach_vm "$n"
    check "$1-$2/tap-left-host$n" bash -c "! ip -n $(topo_ns "host$n") link show ${TOPO_TAP[$n]} >/dev/null 2>&1"
  done
  check "$1-$2/vm1-route-to-vip2" bash -c \
    "ip -n $(topo_ns vm1) route get ${TOPO_VIP[2]} | grep -q 'dev ${TOPO_TAP[1]}'"
  check "$1-$2/vm2-route-to-vip1" bash -c \
    "ip -n $(topo_ns vm2) route get ${TOPO_VIP[1]} | grep -q 'dev ${TOPO_TAP[2]}'"
  check "$1-$2/host1-no-route-to-vip2" bash -c "! ip -n $(topo_ns host1) route get ${TOPO_VIP[2]} >/dev/null 2>&1"
  check "$1-$2/wire" topo_wait_wire
  check "$1-$2/wire-mtu" bash -c "ip -n $(topo_ns host1) link show ${TOPO_WIRE[1]} | grep -q 'mtu $TOPO_WIRE_MTU'"
  check "$1-$2/configs" python3 - "${TOPO_CFG[1]}" "${TOPO_PIP[1]}" "${TOPO_VIP[1]}" "${TOPO_VIP[2]}" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
assert set(c) == {"config", "peers"}, c
assert c["config"]["local-pip"] == sys.argv[2] and c["config"]["local-grpc-address"].endswith(":3000"), c
s = c["peers"][0]["sessions"][0]
assert s == {"local-vip": sys.argv[3], "remote-vips": [sys.argv[4]]}, s
EOF
  topo_teardown
  topo_teardown # idempotent
  trap - EXIT
  check "$1-$2/no-namespace-left" test "$(ours_left)" -eq 0
}
topology_case ipv6 ipv4
topology_case ipv4 ipv6

# ----- 2. the e2e harness against a plaintext relay: a must pass, b must fail -----
chmod +x "$HERE/fake_gateway.py" 2>/dev/null || true
for c in o6i6 o4i4 o4i6; do
  out=$(PSPGW_GATEWAY="$HERE/fake_gateway.py" E2E_DEADLINE_S=120 E2E_KEEP_ON_FAIL=0 E2E_TRANSFER_BYTES=1048576 timeout 150 \
    bash "$HERE/gateway_e2e.sh" --case "$c" --scenarios a,b 2>&1)
  rc=$?
  check "harness-$c/ping-passes" grep -q "PASS \[$c/a/ping\]" <<<"$out"
  check "harness-$c/transfer-passes" grep -q "PASS \[$c/a/tcp-transfer\]" <<<"$out"
  check "harness-$c/plaintext-wire-fails" grep -q "FAIL \[$c/b/wire-only-psp\]" <<<"$out"
  check "harness-$c/marker-seen" grep -q "plaintext marker" <<<"$out"
  check "harness-$c/not-psp-headers" grep -q "without a PSP header" <<<"$out"
  check "harness-$c/exit-1" test "$rc" -eq 1
  ((FAILED)) && printf '%s\n' "$out" | tail -n 60
done
# Leftovers: a pspgw-<pid>- namespace whose run is gone (a live one may be a concurrent run's).
leftovers() {
  local ns
  for ns in $(ip netns list | awk '{print $1}'); do
    [[ $ns =~ ^pspgw-([0-9]+)- ]] && ! kill -0 "${BASH_REMATCH[1]}" 2>/dev/null && echo "$ns"
  done
}
# ----- 3. scenarios c and d against a toy PSP gateway, through the real pspctl -----
# fake_psp_gateway.py seals and checks like a gateway: the harness passes it; broken on purpose
# (FAKE_GW_BROKEN), it must fail exactly the check that guards against that bug.
PSPCTL=${PSPGW_PSPCTL:-${TOPO_BIN_DIR:-$REPO/build/bin}/pspctl}
if [[ -x $PSPCTL ]] && python3 -c 'import cryptography' 2>/dev/null; then
  chmod +x "$HERE/fake_psp_gateway.py" 2>/dev/null || true
  for broken in none icv acl; do
    out=$(FAKE_GW_BROKEN=$broken PSPGW_GATEWAY="$HERE/fake_psp_gateway.py" PSPGW_PSPCTL="$PSPCTL" \
      E2E_DEADLINE_S=120 E2E_KEEP_ON_FAIL=0 E2E_TRANSFER_BYTES=1048576 timeout 150 bash "$HERE/gateway_e2e.sh" --case basic 2>&1)
    rc=$?
    case $broken in
      none) check "toy-psp/all-pass" grep -q "ALL PASSED \[basic\]" <<<"$out"
        check "toy-psp/exit-0" test "$rc" -eq 0 ;;
      icv) check "toy-psp-broken-icv/tamper-check-fails" grep -q "FAIL \[basic/c/tampered-counted\]" <<<"$out" ;;
      acl) check "toy-psp-broken-acl/acl-check-fails" grep -q "FAIL \[basic/d/unknown-vip-acl-miss\]" <<<"$out" ;;
    esac
    ((FAILED)) && printf '%s\n' "$out" | tail -n 60
  done
else
  echo "SKIP [selftest/toy-psp]: needs pspctl ($PSPCTL) and python3-cryptography"
fi

check "no-namespace-left" test -z "$(leftovers)"

((FAILED == 0)) && echo "ALL PASSED [selftest]"
exit "$FAILED"
