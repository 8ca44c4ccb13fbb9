#!/usr/bin/env bash
# The demo (README's first command): installs what is missing, builds, then runs the real thing.
#
#   vm1 [psp1 10.0.0.1] ~~ host1 [psp-gateway] [wire1 fd00:100::1] ==== [wire2 fd00:100::2] host2 [psp-gateway] ~~ [psp2 10.0.0.2] vm2
#
# Part 1 (root, network namespaces and TAP devices): four namespaces (scripts/lib/topology.sh), one gateway
# per host, a ping vm1 -> vm2 whose first packet misses EGR_ACL and triggers the gRPC key exchange, a ping
# back, then gateway 1's tunnel table, counters and live pipeline (Mermaid); then a service chain in front of
# vm2 (issue 8): a VNF (a Linux bridge in namespace vnf1 joining host2's VNF ports fw1i / fw1o) put in the
# path with `pspctl sfc`, pings crossing it, its hop counters. Everything it created is removed on exit,
# however it exits.
# Part 2 (anyone): psp-pcap encrypts and decrypts generated captures offline, as google/psp's tools do.
#
# Unattended; under a minute after the build. Exit status: 0 ok, 1 a step failed (the live part prints why
# and the gateways' logs). Without root, network namespaces or /dev/net/tun it says so and runs part 2 only.
# Environment: BUILD_DIR (default build; scripts/build.sh honours it too), BUILD_TYPE (passed on).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

scripts/deps.sh
scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR="$REPO/$BUILD_DIR"
BIN_DIR="$BUILD_DIR/bin"

section() { printf '\n==== %s ====\n' "$*"; }
step() { printf '\n-- %s\n' "$*"; }
indent() { sed 's/^/   /'; }

# shellcheck source=scripts/lib/topology.sh
source "$REPO/scripts/lib/topology.sh"

PCAP_WORK=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n ${TOPO_PREFIX:-} ]]; then
    topo_teardown || true
    # Our own leftovers would make the "nothing left behind" promise false: say so loudly.
    if ip netns list 2>/dev/null | grep -q "^$TOPO_PREFIX"; then
      echo "demo: namespaces ${TOPO_PREFIX}* could not be removed" >&2
      rc=1
    fi
  fi
  [[ -n $PCAP_WORK ]] && rm -rf "$PCAP_WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "demo: interrupted" >&2; exit 130' INT TERM

# live_fail MESSAGE: why the live part stopped, with what the gateways said; the EXIT trap cleans up.
live_fail() {
  echo "demo: FAILED: $*" >&2
  topo_dump_logs 40
  exit 1
}

# replies OUTPUT: the "N received" count of ping's summary (0 when missing).
replies() { sed -n 's/.* \([0-9]\+\) received.*/\1/p' <<<"$1" | grep . || echo 0; }

# ping_across FROM TO COUNT MIN: ping shown as it runs; fails below MIN replies.
ping_across() {
  local from=$1 to=$2 count=$3 min=$4 out got
  out=$(timeout 30 ip netns exec "$(topo_ns "vm$from")" ping -c "$count" -i 0.2 -W 2 "${TOPO_VIP[$to]}" 2>&1) || true
  indent <<<"$out"
  got=$(replies "$out")
  ((got >= min)) || live_fail "ping vm$from -> vm$to: $got of $count replies (need $min)"
}

live_demo() {
  local gw="$BIN_DIR/psp-gateway" ctl="$BIN_DIR/pspctl"
  [[ -x $gw && -x $ctl ]] || live_fail "no $gw or $ctl after the build"
  export TOPO_BIN_DIR="$BIN_DIR"
  topo_init --outer ipv6 --inner ipv4 || live_fail "topo_init"

  section "Part 1: two gateways in network namespaces"
  step "namespaces ${TOPO_PREFIX}{host1,host2,vm1,vm2}; the wire: ${TOPO_PIP[1]} <-> ${TOPO_PIP[2]} (veth, MTU $TOPO_WIRE_MTU)"
  TOPO_ROLES+=(vnf1)
  topo_create || live_fail "building the namespaces"
  topo_write_configs
  add_vnf_ports
  step "host1's config (DOCA's schema; host2's is its mirror image)"
  indent <"${TOPO_CFG[1]}"

  step "starting both gateways: psp-gateway -c hostN.json -d pspN --grpc-tls-cert/-key/-ca (gRPC on :3000 over mutual TLS, PSP on UDP/1000)"
  echo "   a throwaway CA and one certificate per host (SAN = its gRPC address), made with openssl by scripts/make-certs.sh in $TOPO_DIR/tls"
  topo_start_gateway 1 2>/dev/null
  topo_start_gateway 2 2>/dev/null
  topo_wait_ready 1 || live_fail "gateway 1 did not come up"
  topo_wait_ready 2 || live_fail "gateway 2 did not come up"
  topo_attach_vm 1 || live_fail "attaching vm1"
  topo_attach_vm 2 || live_fail "attaching vm2"
  local h
  for h in 1 2; do
    topo_poll 5 grep -q "started:" "${TOPO_LOG[$h]}" || true
    grep -m1 "started:" "${TOPO_LOG[$h]}" | indent || true
  done
  echo "   each gateway's TAP now lives in its VM's namespace: vm1 has psp1 ${TOPO_VIP_CIDR[1]}, vm2 psp2 ${TOPO_VIP_CIDR[2]}"

  step "no tunnel yet (gateway 1):"
  topo_pspctl 1 tunnels 2>&1 | indent

  capture_start
  section "ping vm1 -> vm2: the first packet misses EGR_ACL, is held, and the gateways exchange keys over gRPC"
  ping_across 1 2 5 4
  section "ping vm2 -> vm1: the exchange opened both directions"
  ping_across 2 1 3 3
  capture_show

  section "gateway 1: pspctl tunnels"
  topo_pspctl 1 tunnels 2>&1 | indent || live_fail "pspctl tunnels"
  section "gateway 1: pspctl counters"
  topo_pspctl 1 counters 2>&1 | indent || live_fail "pspctl counters"
  section "gateway 1: pspctl pipeline --format mermaid (paste into any Mermaid renderer)"
  topo_pspctl 1 pipeline --format mermaid 2>&1 || live_fail "pspctl pipeline"
  chain_demo

  local n
  for n in 1 2; do topo_gateway_alive "$n" || live_fail "gateway $n exited during the demo"; done
  step "stopping the gateways, removing the namespaces"
  local pids=("${TOPO_PIDS[@]}") sock1=${TOPO_SOCK[1]} sock2=${TOPO_SOCK[2]}
  topo_teardown
  if ip netns list 2>/dev/null | grep -q "^$TOPO_PREFIX"; then live_fail "namespaces ${TOPO_PREFIX}* remain"; fi
  for n in "${pids[@]}"; do kill -0 "$n" 2>/dev/null && live_fail "process $n still runs"; done
  [[ -e $sock1 || -e $sock2 ]] && live_fail "an admin socket remains"
  TOPO_PREFIX=""
  echo "   done: no namespace, process or socket left"
}

# host2's config also declares two VNF ports (x-sw.host-ports[].role "vnf"): TAPs with no VIPs for chain_demo.
add_vnf_ports() {
  python3 - "${TOPO_CFG[2]}" "${TOPO_VIP[2]}" <<'EOF2'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["x-sw"] = {"host-ports": [{"name": "psp2", "local-vips": [sys.argv[2]]},
                              {"name": "fw1i", "role": "vnf"}, {"name": "fw1o", "role": "vnf"}]}
json.dump(cfg, open(sys.argv[1], "w"), indent=2)
EOF2
}

# A one-hop service chain in front of vm2, made at run time with pspctl sfc; the VNF is a Linux bridge.
chain_demo() {
  section "service chain in front of vm2: a bump-in-the-wire VNF (a Linux bridge in ${TOPO_PREFIX}vnf1)"
  local ns
  ns=$(topo_ns vnf1)
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 >/dev/null
  ip -n "$(topo_ns host2)" link set fw1i netns "$ns" && ip -n "$(topo_ns host2)" link set fw1o netns "$ns" ||
    live_fail "moving the VNF ports"
  ip -n "$ns" link add br0 type bridge && ip -n "$ns" link set fw1i master br0 &&
    ip -n "$ns" link set fw1o master br0 || live_fail "the VNF's bridge"
  local l
  for l in fw1i fw1o; do ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$l.disable_ipv6=1" >/dev/null; done
  for l in fw1i fw1o br0; do ip -n "$ns" link set "$l" up; done
  local verb
  for verb in "pair-add fw1i fw1o fw1" "chain-add pc1" "group-add pc1 pg1 --fail-mode close" "group-pair-add pg1 fw1" \
    "classifier-add pc1 psp2 entry-lport bi-directional c1 icmp4"; do
    echo "   pspctl sfc $verb"
    # shellcheck disable=SC2086  # the verb's words
    topo_pspctl 2 sfc $verb >/dev/null || live_fail "pspctl sfc $verb"
  done
  step "ping vm1 -> vm2: decrypted, through fw1 (in at fw1i, out at fw1o), delivered; the replies back through it"
  ping_across 1 2 3 3
  step "gateway 2: pspctl sfc show (hop and instance counters)"
  topo_pspctl 2 sfc show 2>&1 | indent || live_fail "pspctl sfc show"
}

# A capture on host1's end of the wire while the pings run: what an observer between the hosts sees.
CAP_PID=""
capture_start() {
  command -v tcpdump >/dev/null || return 0
  CAP_FILE="$TOPO_DIR/wire.pcap"
  ip netns exec "$(topo_ns host1)" tcpdump -i "${TOPO_WIRE[1]}" -n -U --immediate-mode -s 0 -Z root -w "$CAP_FILE" \
    >"$TOPO_DIR/tcpdump.log" 2>&1 </dev/null &
  CAP_PID=$!
  TOPO_PIDS+=("$CAP_PID")
  topo_poll 10 grep -qs "listening on" "$TOPO_DIR/tcpdump.log" || CAP_PID=""
}
capture_show() {
  [[ -n $CAP_PID ]] || return 0
  kill -INT "$CAP_PID" 2>/dev/null || true
  wait "$CAP_PID" 2>/dev/null || true
  local psp grpc other
  psp=$(tcpdump -r "$CAP_FILE" -n 'udp dst port 1000' 2>/dev/null | wc -l)
  grpc=$(tcpdump -r "$CAP_FILE" -n 'tcp port 3000' 2>/dev/null | wc -l)
  other=$(tcpdump -r "$CAP_FILE" -n 'not (udp dst port 1000 or tcp port 3000)' 2>/dev/null | wc -l)
  section "on the wire between the hosts (tcpdump on host1's ${TOPO_WIRE[1]})"
  echo "   $grpc TCP/3000 segments (the gRPC key exchange), $psp PSP packets (UDP/1000), $other other (ICMPv6 ND)"
  tcpdump -r "$CAP_FILE" -n -t 'udp dst port 1000' 2>/dev/null | head -n 4 | indent
  echo "   ... the ICMP echo travels only inside PSP (inner packet encrypted, 16-byte ICV)"
}

# ---------------------------------------------------------------------------------------------------
# Part 2: psp-pcap, offline.
pcap_demo() {
  local psp_pcap="$BIN_DIR/psp-pcap" work
  work=$(mktemp -d -t psp-demo.XXXXXX)
  PCAP_WORK=$work
  section "Part 2: psp-pcap offline: create -> encrypt (tunnel, AES-GCM-256, VC, SPI 9A345678) -> decrypt -> cmp"
  # The master keys of the PSP spec's key-derivation examples; SPI 9A345678 selects master key 1.
  local keys="34 44 8a 06 42 92 60 1b 11 a0 97 8f 56 a2 d3 4c f3 fc 35 ed e1 a6 bc 04 f8 db 3e 52 43 a2 b0 ca
56 39 52 56 5d 3a 78 ae 77 3e c1 b7 79 f2 f2 d9 9f 4a 7f 53 a6 fb b9 b0 7d 5b 71 f3 93 64 d7 39"
  printf '%s\n9A345678\ntunnel\naes-gcm-256\n1\n6\n11\nvc\n' "$keys" >"$work/encrypt.cfg"
  printf '%s\n' "$keys" >"$work/decrypt.cfg"

  local ip clear enc dec
  for ip in 6 4; do
    clear="$work/clear_v$ip.pcap" enc="$work/psp_v$ip.pcap" dec="$work/decrypted_v$ip.pcap"
    step "IPv$ip, 100 frames"
    "$psp_pcap" create -o "$clear" -n 100 -i "$ip" | indent
    "$psp_pcap" encrypt -c "$work/encrypt.cfg" -i "$clear" -o "$enc" | indent
    "$psp_pcap" decrypt -c "$work/decrypt.cfg" -i "$enc" -o "$dec" | indent
    # The 24-byte file headers differ only in snaplen (1434 vs 9014), as with the reference tools.
    cmp -i 24 "$clear" "$dec" || { echo "demo: FAILED: IPv$ip decrypted frames differ from the cleartext" >&2; exit 1; }
    echo "   cmp: the decrypted frames are byte-identical to the cleartext"
  done
  if command -v tshark >/dev/null; then
    step "tshark, first frame of each (IPv4; tshark 4.0 has no PSP dissector: the PSP payload shows as data)"
    for f in clear_v4 psp_v4 decrypted_v4; do
      printf '   %-12s ' "$f"
      tshark -r "$work/$f.pcap" -c 1 2>/dev/null | sed 's/^ *//'
    done
  fi

  step "tampering: encrypt -e sets a reserved (authenticated) header bit; decrypt must refuse every frame"
  "$psp_pcap" encrypt -c "$work/encrypt.cfg" -i "$work/clear_v4.pcap" -o "$work/bad.pcap" -e | indent
  local rc=0
  "$psp_pcap" decrypt -c "$work/decrypt.cfg" -i "$work/bad.pcap" -o "$work/none.pcap" >"$work/decrypt.txt" 2>/dev/null ||
    rc=$?
  indent <"$work/decrypt.txt"
  ((rc == 2)) || { echo "demo: FAILED: expected exit status 2 from decrypt, got $rc" >&2; exit 1; }
  echo "   all 100 tampered frames rejected (exit status 2)"
}

# Fleet mode (issue 11): one etcd, three gateways whose JSON lists no peers; they find each other in the
# store, and a VM's migration between hosts is followed within 2 s. The e2e case, with what it sees shown.
fleet_demo() {
  section "Part 1b: fleet mode: one etcd, three gateways, no peer lists (tests/e2e/fleet_e2e.sh)"
  command -v etcd >/dev/null || { echo "   skipped: no etcd (scripts/deps.sh installs etcd-server)"; return 0; }
  FLEET_E2E_SHOW=1 bash "$REPO/tests/e2e/fleet_e2e.sh" --case migrate --bin-dir "$BIN_DIR" 2>&1 |
    grep -v '^\[topo\]' || live_fail "fleet mode"
}

why=$(topo_preflight)
if [[ -z $why ]]; then
  live_demo
  fleet_demo
else
  section "Part 1 skipped: $why"
  echo "   (run as root on a machine with network namespaces and /dev/net/tun for the live gateways)"
fi
pcap_demo

section "summary"
if [[ -z $why ]]; then
  echo "   live: vm1 <-> vm2 through two psp-gateways, tunnel created on the first packet"
  echo "   service chain: pings to vm2 steered through a VNF with pspctl sfc, hop counters shown"
  echo "   fleet mode: three gateways with no peer lists found each other in etcd; a VM migration followed"
else
  echo "   live: skipped ($why)"
fi
echo "   psp-pcap: IPv6 and IPv4 round trips byte-identical; tampered frames rejected"
echo "   throughput against wireguard-go and the bare veth: bench/e2e.sh (root)"
