#!/usr/bin/env bash
# End-to-end test of psp-gateway: two gateways in two host namespaces, a workload namespace behind each
# (scripts/lib/topology.sh), traffic between the workloads through PSP on a veth "wire".
#
#   gateway_e2e.sh [--case NAME] [--bin-dir DIR] [--scenarios a,b,c,d]
#
# Cases (one ctest test each, tests/e2e/CMakeLists.txt; also transport, transport-cookie, sampling (scenarios
# a and s: samples logged and written to --sample-pcap on both sides) and workers2 (--workers 2)):
#   basic        outer IPv6, inner IPv4, scenarios a b c d     o4i4  outer IPv4, inner IPv4, a b
#   cookie       as basic, both gateways with --cookie          o4i6  outer IPv4, inner IPv6, a b
#                                                              o6i6  outer IPv6, inner IPv6, a b
#   transport         --mode transport, IPv6 (each VM uses its host's wire address: VIP == PIP), a b
#   transport-cookie  --mode transport --cookie, IPv4, a b
#   insecure     as basic (a b) with --grpc-insecure: plaintext gRPC, peers identified by source address.
#                Every other case runs the key exchange over mutual TLS (topo_start_gateway makes a
#                throwaway CA and certificates with openssl).
#   restart      outer IPv6, inner IPv4, scenarios a r          restart-static  the same with -z
#   pmtu         outer IPv6, inner IPv4, scenarios p b          pmtu6  outer IPv4, inner IPv6, p b
# Every case runs on a standard 1500-byte wire (topology.sh): nothing relies on a raised underlay MTU.
#   reload       outer IPv6, inner IPv4, scenarios a h t (live reload, then a clean stop)
#   flood        outer IPv4, inner IPv4, scenarios f x (garbage flood under TCP, then a TAP deleted)
# Scenarios:
#   a  ping vm1 -> vm2 (the first packet triggers the key exchange and is held: >= 4 of 5 replies),
#      ping vm2 -> vm1 (the tunnel the exchange opened the other way), a 4 MiB TCP transfer vm1 -> vm2
#      whose sha256 both ends compare (byte-exact).
#   b  a capture on host1's wire during (a): every frame is PSP (UDP to port 1000) or the gRPC key
#      exchange (TCP/3000) between the two outer addresses, or ARP / ICMPv6 ND; tshark counts > 0 UDP/1000
#      packets; the marker string the transfer repeats every KiB is nowhere in the raw capture; every PSP
#      packet's Next Header is of the case's mode (tunnel 4/41, transport an L4 protocol) and, with
#      --cookie, it carries the VC in the clear.
#   c  5 real PSP packets (datagrams vm1 -> vm2:7001, delivered) captured on the wire, replayed from host1
#      with one ICV-covered byte flipped each: host2's auth-failure counter rises by exactly 5 and vm2's
#      listener receives none of them.
#   d  a correctly sealed packet (the SA key is found in the -k logs and checked against a captured packet)
#      whose inner source is a VIP no config knows: host2's ACL-miss counter rises by exactly 1, its
#      auth-failure counter does not move, vm2 receives nothing. A control packet sealed the same way from
#      the real VIP must be delivered, or the check is inconclusive and fails.
#   p  path MTU through the tunnel on the 1500-byte wire: each TAP came up with the wire's MTU less the PSP
#      overhead (T) and --tap-queue-len's default queue (4096 frames); the VMs then raise their MTU to 1500
#      (workloads that do not know the tunnel). ping -M do
#      of exactly T bytes is answered; one of 1500 bytes gets "frag needed"/"packet too big" with mtu T from
#      the gateway (counted: slow_path.too_big_icmp_sent); IPv4 only: ping -M dont of 2000 bytes is
#      answered (fragmented before encapsulation); a 4 MiB TCP transfer vm1 -> vm2 (MSS 1460 on both
#      ends) completes byte-exact through PMTU discovery. With b: no outer fragment on the wire.
#   h  while vm1 pings vm2 every 10 ms (ping -i 0.01), gateway 1 is reloaded six times: SIGHUP after a
#      peer was added to its config, `pspctl reload` after that peer's VIPs changed, `pspctl reload` after it
#      was removed again, `pspctl reload` after a host port with a new VIP was added (its TAP appears, is
#      moved into vm3, and vm3 pings vm2 through it), `pspctl reload` after that port was removed (its
#      tunnel closed on both gateways: gateway 2 is told with CloseTunnels; its TAP gone), and `pspctl reload` of an invalid config, which must exit 1 with the
#      config error while the running config stays. Not one ping of the unaffected vm1 <-> vm2 tunnel may
#      be lost.
#   t  SIGTERM to gateway 1: it exits 0, and no TAP device, admin socket or gRPC listener is left.
#   f  flood (docs/robustness.md): a third namespace on a link into host2 sends random and
#      replayed-then-corrupted PSP (some of it IPv4-fragmented, some jumbo) at host2's UDP/1000 as fast as
#      one Python sender goes (nice 19) while iperf3 TCP runs vm1 -> vm2. The flooded TCP rate must be
#      >= 75% of the undisturbed one (3 x 2 s each, alternating, the flooder paused by SIGSTOP between);
#      every datagram the flooder sent is counted by gateway 2 or the kernel under its reason (PSP drop
#      reasons, port drops, the kernel's UDP receive errors and reassembly failures); gateway 2 delivered no
#      more frames to vm2 than it authenticated; and a capture in vm2 during a second flood, while vm1 only
#      pings, holds nothing but those pings (and ARP).
#   x  the TAP of gateway 1 is deleted under it (ip link del in vm1): the gateway logs it once, keeps
#      running and answering pspctl, does not spin on the dead descriptor (< 20% of a CPU over 2 s), and
#      counts what it could not deliver as port drops.
#   r  gateway 2 restarts (a new process: fresh master keys, empty tables, a new TAP moved into vm2 again);
#      vm1 pings vm2 every 0.1 s: the first reply comes within 2 s of the restart and every later one
#      arrives (1 loss allowed); then vm2 -> vm1 answers as well.
#
# Exit: 0 pass, 1 a check failed (the line "FAIL [case/check]: ..." says which; both gateways' logs and
# counters follow), 77 skipped (not root, no netns or /dev/net/tun, binaries or tools missing).
#
# ----- ASSUMPTIONS ABOUT THE DAEMON (lead: adjust here, nothing below depends on them otherwise) -----
# * CLI: psp-gateway -c FILE -d TAP --admin-socket PATH --outer-ip-type T --inner-ip-type T [-k] [--cookie]
#   (topo_start_gateway). --admin-socket: two gateways on one machine need two sockets.
# * Ready = TAP exists in the host namespace, the admin socket exists, something listens on TCP :3000.
# * -k/--debug-keys logs each SA key as a hex string (plain, or bytes separated by ':', ' ' or '-');
#   the test finds the right one by trying to open a captured packet with it (scenario d only).
# * `pspctl -s SOCK --json counters` prints one JSON object; the counters are read at the first of these
#   paths that exists ("list[key=value]" selects a list element):
AUTH_FAIL_PATHS=("pipes[name=SYND_STATS].syndromes.auth_failed" "pipes[name=SYND_STATS].syndromes.icv_fail"
  "psp.auth_failures")
ACL_MISS_PATHS=("pipes[name=SYND_STATS].syndromes.acl_miss" "pipes[name=SYND_STATS].syndromes.ingress_acl_miss"
  "pipes[name=INGR_ACL].misses")
# * `pspctl -s SOCK --json tunnels` -> {"tunnels": [{"local_vip", "remote_vip", ...}]} (render.cpp's keys).
# * `pspctl -s SOCK pipeline --format mermaid` names the pipes of spec §5:
PIPELINE_NAMES=(EGR_ACL PSP_ENCRYPT PSP_DECRYPT INGR_ACL SYND_STATS)
# * --cookie: packets carry the 8-byte VC DOCA sends (config x-sw.virt-cookie default):
DOCA_VC=0x778899aabbccddee
# -------------------------------------------------------------------------------------------------------
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TOOL="$HERE/e2e_tool.py"
CASE=basic
SCENARIOS=""
DEADLINE_S=${E2E_DEADLINE_S:-240} # under ctest's TIMEOUT 300: we clean up before ctest would kill us
MARKER="PSPGW-E2E-PLAINTEXT-MARKER-$$"
LISTEN_PORT=7001

while (($#)); do
  case "$1" in
    --case) CASE=$2; shift 2 ;;
    --bin-dir) export TOPO_BIN_DIR=$2; shift 2 ;;
    --scenarios) SCENARIOS=$2; shift 2 ;;
    -h | --help) sed -n '2,/^# -----/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--case basic|cookie|o4i4|o4i6|o6i6|transport|transport-cookie|insecure|pmtu|pmtu6] [--bin-dir DIR] [--scenarios a,b,c,d,p]" >&2; exit 2 ;;
  esac
done

OUTER=ipv6 INNER=ipv4 MODE=tunnel GW_FLAGS=() VC=""
case "$CASE" in
  basic) DEFAULT_SCENARIOS=a,b,c,d GW_FLAGS=(-k) ;;
  cookie) DEFAULT_SCENARIOS=a,b,c,d GW_FLAGS=(-k --cookie) VC=$DOCA_VC ;;
  o4i4) DEFAULT_SCENARIOS=a,b OUTER=ipv4 INNER=ipv4 ;;
  o4i6) DEFAULT_SCENARIOS=a,b OUTER=ipv4 INNER=ipv6 ;;
  o6i6) DEFAULT_SCENARIOS=a,b OUTER=ipv6 INNER=ipv6 ;;
  # Scenarios c and d craft tunnel-mode packets (an inner IP header behind PSP): tunnel cases only.
  transport) DEFAULT_SCENARIOS=a,b OUTER=ipv6 INNER=ipv6 MODE=transport ;;
  transport-cookie) DEFAULT_SCENARIOS=a,b OUTER=ipv4 INNER=ipv4 MODE=transport GW_FLAGS=(--cookie) VC=$DOCA_VC ;;
  # Sampling: 1 in 2 packets gets the S bit on transmit; both sides log and capture their samples.
  # --maintain-order: accepted, with the start-up line saying why order is always kept (samples are copies).
  sampling) DEFAULT_SCENARIOS=a,s GW_FLAGS=(--sample-rate 1 --maintain-order) ;;
  # Two workers per gateway: multi-queue TAP and SO_REUSEPORT sockets, flows spread by hash.
  workers2) DEFAULT_SCENARIOS=a,b GW_FLAGS=(--workers 2) ;;
  # Plaintext gRPC, as toward a DOCA hardware peer (the default is mutual TLS).
  insecure) DEFAULT_SCENARIOS=a,b GW_FLAGS=(-k --grpc-insecure) ;;
  # Peer restart recovery, on-demand and static.
  restart) DEFAULT_SCENARIOS=a,r ;;
  restart-static) DEFAULT_SCENARIOS=a,r GW_FLAGS=(-z) ;;
  # Path MTU discovery through the tunnel (issue 9): both inner families.
  pmtu) DEFAULT_SCENARIOS=p,b ;;
  pmtu6) DEFAULT_SCENARIOS=p,b OUTER=ipv4 INNER=ipv6 ;;
  # Live reload under a ping stream, then SIGTERM's clean stop.
  reload) DEFAULT_SCENARIOS=a,h,t ;;
  # Bad input at rate under good traffic, then a fault under the gateway (docs/robustness.md).
  flood) DEFAULT_SCENARIOS=f,x OUTER=ipv4 INNER=ipv4 ;;
  *) echo "unknown case '$CASE'" >&2; exit 2 ;;
esac
SCENARIOS=${SCENARIOS:-$DEFAULT_SCENARIOS}
want() { [[ ",$SCENARIOS," == *",$1,"* ]]; }

# shellcheck source-path=SCRIPTDIR/../.. source=scripts/lib/topology.sh
source "$REPO/scripts/lib/topology.sh"
# reload: vm3 sits behind the host port a reload adds.
[[ $CASE == reload ]] && TOPO_ROLES+=(vm3)

skip() {
  echo "SKIP [$CASE]: $*"
  exit 77
}

# ----- preflight: skip (77) where this machine cannot run it -----
why=$(topo_preflight)
[[ -z $why ]] || skip "$why"
topo_init --outer "$OUTER" --inner "$INNER" --mode "$MODE" || exit 2
rmdir "$TOPO_DIR" 2>/dev/null # topo_init made it; recreated below once we know we run
[[ -x $TOPO_GATEWAY ]] || skip "no gateway binary at $TOPO_GATEWAY (build it, or --bin-dir / PSPGW_GATEWAY)"
if want c || want d || want h || [[ $CASE == basic ]]; then
  [[ -x $TOPO_PSPCTL ]] || skip "no pspctl at $TOPO_PSPCTL"
fi
for tool in python3 tcpdump tshark ss ping timeout; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/deps.sh)"
done
if want c || want d; then
  python3 -c 'import cryptography' 2>/dev/null || skip "python3-cryptography missing (scenarios c, d)"
fi
mkdir -p "$TOPO_DIR"

# ----- reporting -----
CURRENT=setup
report_state() {
  local n
  for n in 1 2; do
    if [[ -S ${TOPO_SOCK[$n]} && -x $TOPO_PSPCTL ]]; then
      printf '\n----- gateway %s: pspctl counters / tunnels -----\n' "$n" >&2
      topo_pspctl "$n" counters >&2 2>&1 || true
      topo_pspctl "$n" tunnels >&2 2>&1 || true
    fi
    topo_gateway_alive "$n" || echo "gateway $n is not running" >&2
  done
  topo_dump_logs 200
}

fail() {
  echo "FAIL [$CASE/$CURRENT]: $*" >&2
  trap - TERM
  report_state
  if [[ ${E2E_KEEP_ON_FAIL:-1} == 1 ]]; then
    TOPO_KEEP_DIR=1 # read by topo_teardown
    echo "captures and logs kept in $TOPO_DIR" >&2
  fi
  exit 1
}
pass() { echo "PASS [$CASE/$CURRENT]: $*"; }

WATCHDOG=""
cleanup() {
  local rc=$?
  [[ -n $WATCHDOG ]] && kill "$WATCHDOG" 2>/dev/null
  topo_teardown
  exit "$rc"
}
trap cleanup EXIT
trap 'fail "the test ran past its own deadline of ${DEADLINE_S}s"' TERM
trap 'fail "interrupted"' INT
# A self-imposed deadline (short sleeps, so killing the watchdog leaves nothing behind).
(for ((i = 0; i < DEADLINE_S * 10; i++)); do sleep 0.1; done; kill -TERM $$) </dev/null >/dev/null 2>&1 &
WATCHDOG=$!

# nsrun SECONDS ROLE CMD...: CMD in a namespace, bounded.
nsrun() {
  local secs=$1 role=$2
  shift 2
  timeout "$secs" ip netns exec "$(topo_ns "$role")" "$@"
}
# nsbg ROLE LOG CMD...: CMD in a namespace in the background (stopped by topo_teardown); pid in BG_PID.
nsbg() {
  local role=$1 log=$2
  shift 2
  ip netns exec "$(topo_ns "$role")" "$@" >"$log" 2>&1 </dev/null &
  BG_PID=$!
  TOPO_PIDS+=("$BG_PID")
}

PING_FLAGS=()
[[ $INNER == ipv6 ]] && PING_FLAGS=(-6)

# ----- captures on host1's end of the wire -----
# capture_start NAME [FILTER...]: tcpdump in host1 on its wire end, packet-buffered; waits until it listens.
capture_start() {
  local name=$1
  shift
  CAP_FILE="$TOPO_DIR/$name.pcap"
  nsbg host1 "$TOPO_DIR/$name.tcpdump.log" tcpdump -i "${TOPO_WIRE[1]}" -n -U --immediate-mode -s 0 -Z root -w "$CAP_FILE" "$@"
  CAP_PID=$BG_PID
  topo_poll 10 grep -qs "listening on" "$TOPO_DIR/$name.tcpdump.log" ||
    fail "tcpdump on ${TOPO_WIRE[1]} did not start: $(cat "$TOPO_DIR/$name.tcpdump.log")"
}
capture_stop() {
  kill -INT "$CAP_PID" 2>/dev/null
  topo_poll 5 bash -c "! kill -0 $CAP_PID 2>/dev/null" || kill -KILL "$CAP_PID" 2>/dev/null
  wait "$CAP_PID" 2>/dev/null
  [[ -s $CAP_FILE ]] || fail "tcpdump wrote no capture file $CAP_FILE"
}

# ----- counters -----
# counter N PATHS...: prints a counter of gateway N; on failure prints why and returns 1 (callers fail).
counter() {
  local n=$1
  shift
  local f="$TOPO_DIR/counters.$n.json" v
  if ! topo_pspctl "$n" --json counters >"$f" 2>"$f.err"; then
    echo "pspctl --json counters (gateway $n): $(cat "$f.err")"
    return 1
  fi
  v=$(python3 "$TOOL" json-get "$f" "$@" 2>&1) || { echo "gateway $n counters: $v"; return 1; }
  [[ $v =~ ^[0-9]+$ ]] || { echo "gateway $n counter at $1 is not a count: $v"; return 1; }
  echo "$v"
}
# expect_counter N WANT PATHS...: polls until the counter reaches WANT (5 s), then requires exactly WANT.
expect_counter() {
  local n=$1 want=$2
  shift 2
  local got deadline=$((SECONDS + 5))
  while :; do
    got=$(counter "$n" "$@") || fail "$got"
    ((got >= want || SECONDS >= deadline)) && break
    sleep 0.1
  done
  sleep 0.3 # a late duplicate would show here
  got=$(counter "$n" "$@") || fail "$got"
  ((got == want)) || fail "gateway $n counter ${1}: expected $want, got $got"
}

# ----- vm2's UDP listener (scenarios c, d) -----
listener_start() {
  LISTEN_LOG="$TOPO_DIR/vm2-udp.txt"
  : >"$LISTEN_LOG"
  nsbg vm2 "$TOPO_DIR/vm2-udp.log" python3 "$TOOL" udp-listen --bind "${TOPO_VIP[2]}" --port "$LISTEN_PORT" \
    --out "$LISTEN_LOG" --ready "$TOPO_DIR/vm2-udp.ready" --duration 200
  topo_poll 10 test -f "$TOPO_DIR/vm2-udp.ready" || fail "vm2's UDP listener did not start: $(cat "$TOPO_DIR/vm2-udp.log")"
}
received() { grep -c -- "$1" "$LISTEN_LOG"; }

# ----- scenarios -----
scenario_a() {
  CURRENT=a/ping
  local out replies
  out=$(nsrun 30 vm1 ping "${PING_FLAGS[@]}" -c 5 -i 0.2 -W 2 "${TOPO_VIP[2]}" 2>&1)
  replies=$(sed -n 's/.* \([0-9]\+\) received.*/\1/p' <<<"$out")
  ((${replies:-0} >= 4)) || fail "vm1 -> vm2 ping: ${replies:-0} of 5 replies (need 4; the first may be held for the key exchange)
$out"
  # The first ping's round trip includes the key exchange (the packet is held meanwhile).
  pass "vm1 -> ${TOPO_VIP[2]}: $replies/5 replies, first $(sed -n 's/.*icmp_seq=1 .*time=\([0-9.]*\) ms.*/\1/p' <<<"$out") ms"

  CURRENT=a/ping-back
  out=$(nsrun 20 vm2 ping "${PING_FLAGS[@]}" -c 3 -i 0.2 -W 2 "${TOPO_VIP[1]}" 2>&1)
  replies=$(sed -n 's/.* \([0-9]\+\) received.*/\1/p' <<<"$out")
  ((${replies:-0} >= 2)) || fail "vm2 -> vm1 ping: ${replies:-0} of 3 replies (need 2)
$out"
  pass "vm2 -> ${TOPO_VIP[1]}: $replies/3 replies"

  CURRENT=a/tcp-transfer
  local res="$TOPO_DIR/transfer.result"
  nsbg vm2 "$TOPO_DIR/transfer-server.log" python3 "$TOOL" transfer-server --bind "${TOPO_VIP[2]}" --port 5201 \
    --out "$res" --ready "$TOPO_DIR/transfer.ready" --timeout 60
  topo_poll 10 test -f "$TOPO_DIR/transfer.ready" || fail "transfer server did not start: $(cat "$TOPO_DIR/transfer-server.log")"
  out=$(nsrun 90 vm1 python3 "$TOOL" transfer-client --host "${TOPO_VIP[2]}" --port 5201 --size "${E2E_TRANSFER_BYTES:-$((4 << 20))}" \
    --marker "$MARKER" --timeout 60 2>&1) || fail "TCP transfer vm1 -> vm2: $out"
  pass "$out"
}

scenario_b() {
  CURRENT=b/wire-only-psp
  local out n vc_args=()
  [[ -n $VC ]] && vc_args=(--vc "$VC")
  out=$(timeout 60 python3 "$TOOL" wire-check "$CAP_FILE" --pip1 "${TOPO_PIP[1]}" --pip2 "${TOPO_PIP[2]}" \
    --marker "$MARKER" --mode "$MODE" "${vc_args[@]}" 2>&1) || fail "$out"
  pass "$out; marker absent; every PSP packet of $MODE mode${VC:+, cookie $VC in the clear}"
  CURRENT=b/tshark-udp1000
  n=$(timeout 60 tshark -n -r "$CAP_FILE" -Y "udp.dstport == 1000" -T fields -e frame.number 2>/dev/null | wc -l)
  ((n > 0)) || fail "tshark counts no UDP/1000 packet in $CAP_FILE"
  pass "tshark: $n UDP/1000 packets"
  # The transfer's TSO super-packets were cut and sealed by the workers (tunnel mode) without losing a
  # segment: the workers' own drop counters stay at zero on both sides.
  CURRENT=b/worker-drops
  [[ $(basename "$TOPO_GATEWAY") == psp-gateway ]] || return 0 # the harness's stand-ins keep no such counters
  local name v
  for n in 1 2; do
    for name in dropped_pool_empty dropped_unwrap_failed dropped_segment_failed; do
      v=$(counter "$n" "slow_path.$name") || fail "$v"
      ((v == 0)) || fail "gateway $n counts slow_path.$name = $v after the transfer"
    done
  done
  pass "both gateways: slow_path.dropped_pool_empty, dropped_unwrap_failed, dropped_segment_failed all 0"
}

scenario_c() {
  CURRENT=c/legit-delivered
  capture_start tamper udp dst port 1000 and dst host "${TOPO_PIP[2]}"
  nsrun 10 vm1 python3 "$TOOL" udp-send --host "${TOPO_VIP[2]}" --port "$LISTEN_PORT" --payload PSPGW-C-LEGIT \
    --count 5 || fail "udp-send from vm1 failed"
  topo_poll 5 bash -c "(( \$(grep -c PSPGW-C-LEGIT '$LISTEN_LOG') >= 5 ))" ||
    fail "vm2 received $(received PSPGW-C-LEGIT) of 5 legitimate datagrams"
  capture_stop
  pass "5 datagrams vm1 -> vm2:$LISTEN_PORT delivered and captured"

  CURRENT=c/tampered-counted
  local before out
  before=$(counter 2 "${AUTH_FAIL_PATHS[@]}") || fail "$before"
  out=$(nsrun 20 host1 python3 "$TOOL" inject-tampered "$CAP_FILE" --src "${TOPO_PIP[1]}" --dst "${TOPO_PIP[2]}" \
    --count 5 2>&1) || fail "inject: $out"
  expect_counter 2 $((before + 5)) "${AUTH_FAIL_PATHS[@]}"
  pass "$out; host2 auth failures $before -> $((before + 5))"

  CURRENT=c/tampered-not-delivered
  sleep 0.5
  local got
  got=$(wc -l <"$LISTEN_LOG")
  ((got == 5)) || fail "vm2 received $((got - 5)) datagrams from the tampered copies: $(cat "$LISTEN_LOG")"
  pass "vm2 received none of the tampered copies"
}

scenario_d() {
  CURRENT=d/find-sa-key
  local found spi key vc_args=()
  [[ -n $VC ]] && vc_args=(--vc "$VC")
  # Scenario c's tampered copies came from host1's address, which host2 reads as a possible peer restart:
  # it re-exchanges the tunnel (rate limited; README "Tunnel lifecycle") and the SA of c's capture retires a
  # second later. So let that settle, then capture fresh traffic and find the SA that is in use now.
  # (The harness self-test's fake gateway has no such counter and never re-exchanges: nothing to wait for.)
  if want c && counter 2 slow_path.refreshes >/dev/null 2>&1; then
    local refreshes deadline=$((SECONDS + 5))
    until refreshes=$(counter 2 slow_path.refreshes) && ((refreshes >= 1)); do
      ((SECONDS < deadline)) || fail "host2 did not re-exchange the tunnel after the tampered packets"
      sleep 0.1
    done
    sleep 0.5
  fi
  capture_start fresh udp dst port 1000 and dst host "${TOPO_PIP[2]}"
  nsrun 10 vm1 python3 "$TOOL" udp-send --host "${TOPO_VIP[2]}" --port "$LISTEN_PORT" --payload PSPGW-D-FRESH \
    --count 3 || fail "udp-send from vm1 failed"
  topo_poll 5 bash -c "(( \$(grep -c PSPGW-D-FRESH '$LISTEN_LOG') >= 3 ))" ||
    fail "vm2 received $(received PSPGW-D-FRESH) of 3 datagrams"
  capture_stop
  found=$(timeout 30 python3 "$TOOL" find-key "$CAP_FILE" "${TOPO_LOG[1]}" "${TOPO_LOG[2]}" \
    --src "${TOPO_PIP[1]}" --dst "${TOPO_PIP[2]}" 2>&1) || fail "$found"
  read -r spi key <<<"$found"
  pass "SA host1 -> host2: SPI $spi (key from the -k logs opens the captured packets)"

  CURRENT=d/control-delivered
  local acl_before auth_before out
  acl_before=$(counter 2 "${ACL_MISS_PATHS[@]}") || fail "$acl_before"
  auth_before=$(counter 2 "${AUTH_FAIL_PATHS[@]}") || fail "$auth_before"
  out=$(nsrun 10 host1 python3 "$TOOL" craft --key "$key" --spi "$spi" --src "${TOPO_PIP[1]}" \
    --dst "${TOPO_PIP[2]}" --inner-src "${TOPO_VIP[1]}" --inner-dst "${TOPO_VIP[2]}" --dport "$LISTEN_PORT" \
    --payload PSPGW-D-CONTROL "${vc_args[@]}" 2>&1) || fail "craft: $out"
  topo_poll 5 grep -q PSPGW-D-CONTROL "$LISTEN_LOG" ||
    fail "a packet sealed by the test from the real VIP ${TOPO_VIP[1]} was not delivered: the harness's PSP model disagrees with the gateway, so the unknown-VIP check would prove nothing"
  pass "crafted packet from ${TOPO_VIP[1]} delivered (the harness seals like the gateway)"

  CURRENT=d/unknown-vip-acl-miss
  out=$(nsrun 10 host1 python3 "$TOOL" craft --key "$key" --spi "$spi" --src "${TOPO_PIP[1]}" \
    --dst "${TOPO_PIP[2]}" --inner-src "$TOPO_UNKNOWN_VIP" --inner-dst "${TOPO_VIP[2]}" --dport "$LISTEN_PORT" \
    --payload PSPGW-D-UNKNOWN "${vc_args[@]}" 2>&1) || fail "craft: $out"
  expect_counter 2 $((acl_before + 1)) "${ACL_MISS_PATHS[@]}"
  local auth_after
  auth_after=$(counter 2 "${AUTH_FAIL_PATHS[@]}") || fail "$auth_after"
  ((auth_after == auth_before)) || fail "auth failures moved $auth_before -> $auth_after: the packet should have authenticated"
  sleep 0.5
  (($(received PSPGW-D-UNKNOWN) == 0)) || fail "vm2 received the packet from unknown VIP $TOPO_UNKNOWN_VIP"
  pass "inner source $TOPO_UNKNOWN_VIP: ACL miss $acl_before -> $((acl_before + 1)), not delivered"
}

scenario_r() {
  CURRENT=r/restart
  local t0 out first n replies
  t0=$(date +%s.%N)
  _topo_stop_pid "${TOPO_GW_PID[2]}"
  topo_start_gateway 2 "${GW_FLAGS[@]}"
  topo_wait_ready 2 || fail "gateway 2 did not come back"
  topo_attach_vm 2 || fail "re-attaching vm2 to the new TAP"
  pass "gateway 2 restarted ($(python3 -c "import time; print(f'{time.time() - $t0:.2f}')") s down)"

  CURRENT=r/ping-recovers
  out=$(nsrun 30 vm1 ping "${PING_FLAGS[@]}" -c 40 -i 0.1 -W 1 "${TOPO_VIP[2]}" 2>&1)
  first=$(sed -n 's/.*icmp_seq=\([0-9]\+\).*/\1/p' <<<"$out" | head -1)
  replies=$(sed -n 's/.* \([0-9]\+\) received.*/\1/p' <<<"$out")
  [[ -n $first ]] || fail "vm1 -> vm2: no reply after the restart
$out"
  ((first <= 20)) || fail "vm1 -> vm2: the first reply after the restart is icmp_seq $first (> 2 s)
$out"
  n=$((40 - first + 1))
  ((replies >= n - 1)) || fail "vm1 -> vm2: $replies replies, $n expected from icmp_seq $first on
$out"
  pass "vm1 -> vm2 recovered: first reply icmp_seq $first (~$(((first - 1) * 100)) ms after the restart), $replies/40 replies"

  CURRENT=r/ping-back
  out=$(nsrun 20 vm2 ping "${PING_FLAGS[@]}" -c 5 -i 0.2 -W 1 "${TOPO_VIP[1]}" 2>&1)
  replies=$(sed -n 's/.* \([0-9]\+\) received.*/\1/p' <<<"$out")
  ((${replies:-0} >= 4)) || fail "vm2 -> vm1 after the restart: ${replies:-0} of 5 replies
$out"
  pass "vm2 -> vm1: $replies/5 replies"
  grep -h "may have restarted" "${TOPO_LOG[1]}" | head -3 | sed 's/^/  gateway 1: /'
}

# The tunnel's MTU: the wire's less the PSP overhead (gateway/path_mtu.hpp).
tunnel_mtu() {
  local o=40 # transport: UDP 8 + PSP header 16 + ICV 16
  [[ $MODE == tunnel && $OUTER == ipv4 ]] && o=60
  [[ $MODE == tunnel && $OUTER == ipv6 ]] && o=80
  [[ -n $VC ]] && o=$((o + 8))
  echo $((TOPO_WIRE_MTU - o))
}

scenario_p() {
  CURRENT=p/tap-mtu
  local t hdr n got out replies
  t=$(tunnel_mtu)
  hdr=28
  [[ $INNER == ipv6 ]] && hdr=48
  for n in 1 2; do
    got=$(ip -n "$(topo_ns "vm$n")" -o link show "${TOPO_TAP[$n]}" | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
    [[ $got == "$t" ]] || fail "vm$n's TAP has MTU $got, expected $t (wire $TOPO_WIRE_MTU less the PSP overhead)"
    ip -n "$(topo_ns "vm$n")" link set "${TOPO_TAP[$n]}" mtu "$TOPO_WIRE_MTU" || fail "raising vm$n's MTU"
  done
  pass "both TAPs came up with MTU $t; the VMs now use $TOPO_WIRE_MTU"

  CURRENT=p/tap-queue
  for n in 1 2; do  # --tap-queue-len's default (gateway/flags.hpp kDefaultTapQueueLen)
    got=$(ip -n "$(topo_ns "vm$n")" -o link show "${TOPO_TAP[$n]}" | sed -n 's/.* qlen \([0-9]*\).*/\1/p')
    [[ $got == 4096 ]] || fail "vm$n's TAP holds $got frames, expected --tap-queue-len's default 4096"
  done
  pass "both TAPs hold 4096 frames a queue"

  CURRENT=p/fits
  out=$(nsrun 30 vm1 ping "${PING_FLAGS[@]}" -M "do" -s $((t - hdr)) -c 4 -i 0.2 -W 2 "${TOPO_VIP[2]}" 2>&1)
  replies=$(sed -n 's/.* \([0-9]\+\) received.*/\1/p' <<<"$out")
  ((${replies:-0} >= 3)) || fail "ping -M do of $t bytes: ${replies:-0} of 4 replies (the first may be held)
$out"
  pass "ping -M do -s $((t - hdr)) ($t bytes): $replies/4 replies"

  # Before any "too big" error teaches vm1 the tunnel's MTU (its kernel would then fragment to it).
  if [[ $INNER == ipv4 ]]; then
    CURRENT=p/no-df-fragmented
    out=$(nsrun 20 vm1 ping -M dont -s 2000 -c 3 -i 0.2 -W 2 "${TOPO_VIP[2]}" 2>&1)
    replies=$(sed -n 's/.* \([0-9]\+\) received.*/\1/p' <<<"$out")
    ((${replies:-0} >= 2)) || fail "ping -M dont -s 2000: ${replies:-0} of 3 replies
$out"
    expect_counter_min 1 1 slow_path.too_big_fragmented
    pass "ping -M dont -s 2000: $replies/3 replies (fragmented before encapsulation)"
  fi

  CURRENT=p/too-big
  out=$(nsrun 20 vm1 ping "${PING_FLAGS[@]}" -M "do" -s $((TOPO_WIRE_MTU - hdr)) -c 2 -i 0.3 -W 1 "${TOPO_VIP[2]}" 2>&1)
  grep -Eq "mtu ?= ?$t\b" <<<"$out" || fail "ping -M do of $TOPO_WIRE_MTU bytes: no 'mtu = $t' error
$out"
  expect_counter_min 1 1 slow_path.too_big_icmp_sent
  pass "ping -M do -s $((TOPO_WIRE_MTU - hdr)): $(grep -Eo "(Frag needed|Packet too big|message too long)[^)]*mtu ?= ?$t" <<<"$out" | head -1)"

  CURRENT=p/tcp-pmtud
  # Forget the path MTU the pings taught vm1: the transfer has to discover it again.
  local before res="$TOPO_DIR/pmtu-transfer.result"
  ip -n "$(topo_ns vm1)" route flush cache 2>/dev/null
  ip -n "$(topo_ns vm1)" -6 route flush cache 2>/dev/null
  before=$(counter 1 slow_path.too_big_icmp_sent) || fail "$before"
  nsbg vm2 "$TOPO_DIR/pmtu-server.log" python3 "$TOOL" transfer-server --bind "${TOPO_VIP[2]}" --port 5202 \
    --out "$res" --ready "$TOPO_DIR/pmtu.ready" --timeout 60
  topo_poll 10 test -f "$TOPO_DIR/pmtu.ready" || fail "transfer server did not start: $(cat "$TOPO_DIR/pmtu-server.log")"
  out=$(nsrun 90 vm1 python3 "$TOOL" transfer-client --host "${TOPO_VIP[2]}" --port 5202 --size $((4 << 20)) \
    --marker "$MARKER" --timeout 60 2>&1) || fail "TCP transfer vm1 -> vm2 with MSS 1460 over a $t-byte tunnel: $out"
  expect_counter_min 1 $((before + 1)) slow_path.too_big_icmp_sent
  pass "$out; gateway 1 sent $(($(counter 1 slow_path.too_big_icmp_sent) - before)) too-big error(s) on the way"
}

# expect_counter_min N MIN PATH: polls (5 s) until gateway N's counter is at least MIN.
expect_counter_min() {
  local n=$1 min=$2 path=$3 got deadline=$((SECONDS + 5))
  while :; do
    got=$(counter "$n" "$path") || fail "$got"
    ((got >= min)) && return 0
    ((SECONDS >= deadline)) && fail "gateway $n counter $path: $got, expected at least $min"
    sleep 0.1
  done
}

# config_edit N PYTHON: rewrites gateway N's config; PYTHON changes the dict `c` (json.load of the file).
config_edit() {
  python3 - "${TOPO_CFG[$1]}" "$2" <<'PY' || fail "editing ${TOPO_CFG[$1]}"
import json, sys
path, code = sys.argv[1], sys.argv[2]
with open(path) as f:
    c = json.load(f)
exec(code)
with open(path, "w") as f:
    json.dump(c, f, indent=1)
PY
}

# reloads_in_log N: how many reloads gateway N has logged as done.
reloads_in_log() { grep -c "info: reloaded " "${TOPO_LOG[$1]}"; }
# reloaded_since N COUNT: gateway N has logged more than COUNT reloads (re-read on every poll).
reloaded_since() { (($(reloads_in_log "$1") > $2)); }

scenario_h() {
  CURRENT=h/reload
  local ping_log="$TOPO_DIR/reload-ping.log" ping_pid out before orig="$TOPO_DIR/host1.orig.json"
  local extra_local=10.98.0.1 extra_remote=10.99.0.1 extra_local2=10.98.0.2 extra_remote2=10.99.0.2
  if [[ $INNER == ipv6 ]]; then
    extra_local=fd98::1 extra_remote=fd99::1 extra_local2=fd98::2 extra_remote2=fd99::2
  fi
  cp "${TOPO_CFG[1]}" "$orig"
  nsbg vm1 "$ping_log" ping "${PING_FLAGS[@]}" -i 0.01 -c 700 -W 1 "${TOPO_VIP[2]}"
  ping_pid=$BG_PID
  sleep 0.3

  # 1. SIGHUP: a peer added (nobody answers there; it only has to be configured).
  before=$(reloads_in_log 1)
  config_edit 1 "c['peers'].append({'remote-grpc-address': '192.0.2.99:3000', 'sessions': [{'local-vip': '$extra_local', 'remote-vips': ['$extra_remote']}]})"
  kill -HUP "${TOPO_GW_PID[1]}"
  topo_poll 10 reloaded_since 1 "$before" || fail "SIGHUP: gateway 1 logged no reload"
  grep -q "reloaded .*peers +1 -0" "${TOPO_LOG[1]}" || fail "SIGHUP: the reload did not add the peer"
  pass "SIGHUP: peer 192.0.2.99:3000 added"
  sleep 0.3

  # 2. pspctl reload: the added peer's local and remote VIPs changed.
  CURRENT=h/reload-vip
  config_edit 1 "c['peers'][-1]['sessions'] = [{'local-vip': '$extra_local2', 'remote-vips': ['$extra_remote2']}]"
  out=$(topo_pspctl 1 reload 2>&1) || fail "pspctl reload (VIP change) failed: $out"
  grep -q "local VIPs +1 -1" <<<"$out" || fail "pspctl reload does not report the VIP change: $out"
  pass "pspctl reload: VIP $extra_local -> $extra_local2 ($out)"
  sleep 0.3

  # 3. pspctl reload: the peer removed again.
  CURRENT=h/reload-remove
  cp "$orig" "${TOPO_CFG[1]}"
  out=$(topo_pspctl 1 reload 2>&1) || fail "pspctl reload (peer removed) failed: $out"
  grep -q "peers +0 -1" <<<"$out" || fail "pspctl reload does not report the removed peer: $out"
  pass "pspctl reload: peer removed"
  sleep 0.3

  # 3b. A host port added live: its TAP appears in host1, serves its VIP (moved into vm3, ARP answered)
  # and carries a new tunnel to vm2; gateway 2 knows the new VIP first.
  scenario_h_host_port
  sleep 0.3

  # 4. An invalid config is refused as a whole: exit 1, the same error as at start; the running one stays.
  CURRENT=h/reload-refused
  config_edit 1 "c['bogus-key'] = 1"
  out=$(topo_pspctl 1 reload 2>&1) && fail "pspctl reload accepted an invalid config: $out"
  grep -q "bogus-key: unknown key" <<<"$out" || fail "pspctl reload's refusal does not name the key: $out"
  grep -q "reload refused, the running config stays" "${TOPO_LOG[1]}" || fail "gateway 1 did not log the refusal"
  cp "$orig" "${TOPO_CFG[1]}"
  pass "pspctl reload of an invalid config: exit 1, '$(tail -1 <<<"$out")'"

  CURRENT=h/no-loss
  topo_poll 15 bash -c "! kill -0 $ping_pid 2>/dev/null" || fail "the ping stream did not finish"
  wait "$ping_pid" 2>/dev/null
  out=$(grep "packets transmitted" "$ping_log")
  [[ $out =~ ^700\ packets\ transmitted,\ 700\ received ]] || fail "pings lost across the reloads: $out
$(tail -5 "$ping_log")"
  pass "vm1 -> vm2 every 10 ms across 6 reloads: $out"
}

# Scenario h's host-port part: gateway 1 gains a host port (TAP psp1x, VIP .9) with a tunnel to vm2,
# loses it again in the next reload.
scenario_h_host_port() {
  CURRENT=h/reload-port-add
  local tap=psp1x vip=10.0.0.9 cidr=10.0.0.9/24 out vm3 orig2="$TOPO_DIR/host2.orig.json"
  [[ $INNER == ipv6 ]] && vip=fd00:1::9 cidr=fd00:1::9/64
  vm3=$(topo_ns vm3)
  cp "${TOPO_CFG[2]}" "$orig2"
  config_edit 2 "c['peers'][0]['sessions'][0]['remote-vips'].append('$vip')"
  out=$(topo_pspctl 2 reload 2>&1) || fail "gateway 2: pspctl reload (remote VIP $vip) failed: $out"
  config_edit 1 "c.setdefault('x-sw', {})['host-ports'] = [{'name': '${TOPO_TAP[1]}', 'local-vips': ['${TOPO_VIP[1]}']}, {'name': '$tap', 'local-vips': ['$vip']}]; c['peers'][0]['sessions'].append({'local-vip': '$vip', 'remote-vips': ['${TOPO_VIP[2]}']})"
  out=$(topo_pspctl 1 reload 2>&1) || fail "pspctl reload (host port added) failed: $out"
  grep -q "host ports +1 -0" <<<"$out" || fail "pspctl reload does not report the added host port: $out"
  ip -n "$(topo_ns host1)" link show "$tap" >/dev/null 2>&1 || fail "no TAP $tap in host1 after the reload"
  ip -n "$(topo_ns host1)" link set "$tap" netns "$vm3" || fail "moving $tap into vm3"
  ip -n "$vm3" addr add "$cidr" dev "$tap" nodad 2>/dev/null || ip -n "$vm3" addr add "$cidr" dev "$tap"
  ip -n "$vm3" link set "$tap" up
  out=$(ip netns exec "$vm3" ping "${PING_FLAGS[@]}" -c 3 -i 0.2 -W 2 "${TOPO_VIP[2]}" 2>&1)
  [[ $out =~ 3\ received ]] || fail "vm3 ($vip, on the added port) cannot reach vm2: $(grep -E 'transmitted|100%' <<<"$out")"
  pass "pspctl reload: host port $tap added, vm3 ($vip) pings vm2 through it"

  CURRENT=h/reload-port-remove
  config_edit 1 "c['x-sw']['host-ports'] = c['x-sw']['host-ports'][:1]; c['peers'][0]['sessions'] = c['peers'][0]['sessions'][:1]"
  out=$(topo_pspctl 1 reload 2>&1) || fail "pspctl reload (host port removed) failed: $out"
  grep -q "host ports +0 -1" <<<"$out" || fail "pspctl reload does not report the removed host port: $out"
  topo_poll 5 bash -c "! ip -n '$vm3' link show '$tap' >/dev/null 2>&1" || fail "TAP $tap still there after its removal"
  topo_pspctl 1 --json tunnels | grep -q "\"$vip\"" && fail "gateway 1 still lists a tunnel of $vip"
  # Closed on both sides: gateway 2 (which still allows the pair) was told with CloseTunnels.
  topo_pspctl 2 --json tunnels | grep -q "\"$vip\"" && fail "gateway 2 still lists a tunnel of $vip: $(topo_pspctl 2 --json tunnels)"
  grep -q "closed 1 tunnel(s) that .* closed on its side (CloseTunnels)" "${TOPO_LOG[2]}" ||
    fail "gateway 2 logged no CloseTunnels"
  cp "$orig2" "${TOPO_CFG[2]}"
  out=$(topo_pspctl 2 reload 2>&1) || fail "gateway 2: pspctl reload (remote VIP gone) failed: $out"
  pass "pspctl reload: host port $tap removed (TAP gone, its tunnel closed on both gateways)"
}

scenario_t() {
  CURRENT=t/sigterm
  local pid=${TOPO_GW_PID[1]} rc=0
  kill -TERM "$pid"
  topo_poll 10 bash -c "! kill -0 $pid 2>/dev/null" || fail "gateway 1 still runs 10 s after SIGTERM"
  wait "$pid" 2>/dev/null || rc=$?
  TOPO_GW_PID[1]=""
  ((rc == 0)) || fail "gateway 1 exited with status $rc after SIGTERM"
  pass "SIGTERM: exit status 0"
  CURRENT=t/nothing-left
  _topo_tap_in vm1 "${TOPO_TAP[1]}" && fail "TAP ${TOPO_TAP[1]} still exists in vm1"
  _topo_tap_in host1 "${TOPO_TAP[1]}" && fail "TAP ${TOPO_TAP[1]} still exists in host1"
  [[ -e ${TOPO_SOCK[1]} ]] && fail "the admin socket ${TOPO_SOCK[1]} is still there"
  _topo_grpc_listening 1 && fail "something still listens on gRPC :3000 in host1"
  grep -q "info: stopped: " "${TOPO_LOG[1]}" || fail "gateway 1 did not log its stop"
  pass "no TAP, admin socket or gRPC listener left; '$(grep -o 'stopped: .*' "${TOPO_LOG[1]}")'"
}

# Admin view of the established tunnel and of the pipeline (spec §5 names).
# ----- flood (f) and a TAP deleted (x) -----
FLOOD_TOOL="$HERE/flood_tool.py"
# 0.75: on an idle machine, where the good TCP alone saturates both CPUs (~6 Gbit/s), the flood costs it
# 10-20% whatever the gateway does: the flooder's own CPU, the kernel's reassembly of its fragments, and
# its datagrams interleaved with the tunnel's, which cuts the receive side's GRO trains short. Measured
# 2026-12-07 on the idle 2-vCPU machine: 79.5-94.2% per comparison, this stop's binaries and the previous
# stop's alike (at 0.90 the case failed 9 runs of 11 there; loaded, in CI, it measured 107%).
# A flood that reached anything costly per datagram (a key derivation, an exchange) costs far more.
FLOOD_MIN_RATIO=${E2E_FLOOD_MIN_RATIO:-0.75}

# iperf_rate SECONDS PORT: vm1 -> vm2 TCP for SECONDS; prints the receiver's bits per second.
iperf_rate() {
  local out try
  for try in 1 2; do # once more after "the server is busy" (the previous run's server side still closing)
    out=$(nsrun $(($1 + 15)) vm1 iperf3 -c "${TOPO_VIP[2]}" -p "$2" -t "$1" -J 2>&1) && break
    ((try == 2)) && { echo "iperf3 failed: $out"; return 1; }
    sleep 0.5
  done
  python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]))' <<<"$out" ||
    { echo "iperf3 output: $out"; return 1; }
}

# flood_counted N: every drop gateway N counts for bad PSP input, plus the kernel's UDP and reassembly
# errors in hostN (what never reached the gateway's socket).
flood_counted() {
  local f="$TOPO_DIR/flood-counters.$1.json"
  topo_pspctl "$1" --json counters >"$f" 2>&1 || { echo "pspctl counters: $(cat "$f")"; return 1; }
  ip netns exec "$(topo_ns "host$1")" cat /proc/net/snmp >"$TOPO_DIR/flood-snmp.$1" || return 1
  python3 - "$f" "$TOPO_DIR/flood-snmp.$1" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
psp = sum(v for k, v in c["psp"].items() if k.startswith("drop_"))
acl = sum(p.get("syndromes", {}).get("acl_miss", 0) for p in c["pipes"] if p["name"] == "SYND_STATS")
net = c["ports"][0]["drops"]
snmp = {}
lines = open(sys.argv[2]).read().splitlines()
for head, vals in zip(lines[::2], lines[1::2]):
    keys, nums = head.split()[1:], vals.split()[1:]
    snmp[head.split(":")[0]] = dict(zip(keys, map(int, nums)))
kernel = snmp["Udp"]["InErrors"] + snmp["Ip"]["ReasmFails"]
print(psp, acl, net, kernel)
PY
}

scenario_f() {
  CURRENT=f/setup
  command -v iperf3 >/dev/null || fail "iperf3 is not installed (scripts/deps.sh)"
  local fl h2 out
  fl=$(topo_ns flood) h2=$(topo_ns host2)
  ip netns add "$fl" || fail "creating the flood namespace"
  TOPO_CREATED+=("$fl")
  ip -n "$fl" link set lo up
  ip link add fl0 netns "$fl" type veth peer name fl2 netns "$h2" || fail "the flood namespace's link"
  if ! { ip -n "$fl" addr add 192.168.77.1/24 dev fl0 && ip -n "$fl" link set fl0 up &&
    ip -n "$h2" addr add 192.168.77.2/24 dev fl2 && ip -n "$h2" link set fl2 up &&
    ip -n "$fl" route add "${TOPO_PIP[2]}/32" via 192.168.77.2; }; then
    fail "addressing the flood link"
  fi
  topo_poll 5 nsrun 2 flood ping -c 1 -W 1 "${TOPO_PIP[2]}" >/dev/null || fail "the flood namespace cannot reach ${TOPO_PIP[2]}"
  nsbg vm2 "$TOPO_DIR/iperf3-server.log" iperf3 -s -B "${TOPO_VIP[2]}" -p 5301
  topo_poll 10 bash -c "ip netns exec $(topo_ns vm2) ss -ltn | grep -q ':5301 '" ||
    fail "iperf3 server: $(cat "$TOPO_DIR/iperf3-server.log")"
  nsrun 20 vm1 ping -c 3 -i 0.2 -W 2 "${TOPO_VIP[2]}" >/dev/null # the tunnel, both ways
  capture_start flood-src -c 200 udp dst port 1000 and dst host "${TOPO_PIP[2]}"
  iperf_rate 1 5301 >/dev/null || fail "warm-up iperf3 failed"
  capture_stop
  REPLAY_PCAP=$CAP_FILE
  pass "flood namespace on host2's link, iperf3 up, $(python3 -c "import sys; sys.path.insert(0, '$HERE'); import e2e_tool; print(len(e2e_tool.psp_payloads('$CAP_FILE', '${TOPO_PIP[1]}', '${TOPO_PIP[2]}')))") real PSP packets captured to replay"

  CURRENT=f/throughput
  # The machine's load drifts (other work shares its two cores): undisturbed and flooded runs alternate,
  # three of each, the flooder paused (SIGSTOP) during the undisturbed ones, and their sums are compared.
  # The flooder is niced and held to E2E_FLOOD_RATE datagrams/s (default 5000): unbounded, one Python
  # sender takes a whole core of the two from iperf3 and both gateways, which measures the machine, not
  # the gateway (docs/robustness.md). A short comparison is measured again once before it fails.
  local before after stats="$TOPO_DIR/flood.json" attempt=0
  before=$(flood_counted 2) || fail "$before"
  nsbg flood "$TOPO_DIR/flood.log" nice -n 19 python3 "$FLOOD_TOOL" flood --dst "${TOPO_PIP[2]}" --pcap "$REPLAY_PCAP" \
    --src "${TOPO_PIP[1]}" --seconds 120 --out "$stats" --ready "$TOPO_DIR/flood.ready" --rate "${E2E_FLOOD_RATE:-5000}"
  local flood_pid=$BG_PID
  topo_poll 60 test -f "$TOPO_DIR/flood.ready" || fail "the flooder did not start: $(cat "$TOPO_DIR/flood.log")"
  local on=0 t0 base flooded r i ok=0 results=()
  while ((++attempt <= 2)); do
    base=0 flooded=0
    for i in 1 2 3; do
      kill -STOP "$flood_pid"
      [[ -n ${t0:-} ]] && on=$(python3 -c "print($on + $EPOCHREALTIME - $t0)")
      r=$(iperf_rate 2 5301) || fail "iperf3: $r"
      base=$((base + r))
      kill -CONT "$flood_pid"
      t0=$EPOCHREALTIME
      sleep 0.2
      r=$(iperf_rate 2 5301) || fail "iperf3: $r"
      flooded=$((flooded + r))
    done
    results+=("$(python3 -c "print(f'{$base/3e6:.0f} -> {$flooded/3e6:.0f} Mbit/s ({100*$flooded/$base:.1f}%)')")")
    if python3 -c "import sys; sys.exit(0 if $flooded >= $FLOOD_MIN_RATIO * $base else 1)"; then
      ok=1
      break
    fi
  done
  kill -TERM "$flood_pid"
  on=$(python3 -c "print($on + $EPOCHREALTIME - $t0)")
  topo_poll 60 bash -c "! kill -0 $flood_pid 2>/dev/null" || fail "the flooder did not stop"
  [[ -s $stats ]] || fail "the flooder wrote no statistics: $(cat "$TOPO_DIR/flood.log")"
  out=$(python3 -c "
import json; st = json.load(open('$stats'))
print(f\"flood of {st['total']} datagrams ({st['random']} random, {st['replayed']} replayed-corrupted, \"
      f\"{st['fragmented']} fragmented, {st['jumbo']} jumbo) in {$on:.1f} s: {st['total']/$on:.0f} per s\")")
  ((ok)) || fail "the good TCP fell below ${FLOOD_MIN_RATIO} of its undisturbed rate: ${results[*]}; $out"
  pass "TCP undisturbed -> flooded: ${results[*]}; $out"

  CURRENT=f/every-drop-counted
  local sent psp acl net kernel psp0 acl0 net0 kernel0 got
  sent=$(python3 -c "import json; print(json.load(open('$stats'))['total'])")
  read -r psp0 acl0 net0 kernel0 <<<"$before"
  # The gateway publishes worker counters every 100 ms: poll until they account for the flood.
  local deadline=$((SECONDS + 10))
  while :; do
    after=$(flood_counted 2) || fail "$after"
    read -r psp acl net kernel <<<"$after"
    got=$((psp - psp0 + acl - acl0 + net - net0 + kernel - kernel0))
    ((got >= sent || SECONDS >= deadline)) && break
    sleep 0.2
  done
  # Fragments the kernel dropped at reassembly count once per fragment (ReasmFails), so >= is the bound
  # when the kernel dropped any; without kernel drops it is exact.
  ((got == sent || (kernel > kernel0 && got >= sent))) ||
    fail "the flooder sent $sent datagrams, gateway 2 and its kernel account for $got (PSP drops $((psp - psp0)), ACL $((acl - acl0)), port $((net - net0)), kernel $((kernel - kernel0)))
$(cat "$TOPO_DIR/flood-counters.2.json")"
  pass "$sent flood datagrams all counted: PSP drop reasons $((psp - psp0)) ($(python3 -c "import json; c=json.load(open('$TOPO_DIR/flood-counters.2.json'))['psp']; print(', '.join(f'{k[5:]} {v}' for k,v in sorted(c.items()) if k.startswith('drop_')))")), network port $((net - net0)), kernel $((kernel - kernel0))"

  CURRENT=f/nothing-unauthenticated-delivered
  local f2="$TOPO_DIR/flood-counters.2.json" delivered authenticated
  read -r delivered authenticated < <(python3 -c "
import json; c = json.load(open('$f2'))
port = [p for p in c['ports'] if p['name'] == '${TOPO_TAP[2]}'][0]
print(port['tx_packets'] - c['slow_path']['exceptions_answered'], c['psp']['rx_packets'])")
  ((delivered <= authenticated)) || fail "gateway 2 delivered $delivered frames to vm2 but authenticated only $authenticated"
  capture_start_in vm2 "${TOPO_TAP[2]}" flood-vm2
  nsbg flood "$TOPO_DIR/flood2.log" nice -n 19 python3 "$FLOOD_TOOL" flood --dst "${TOPO_PIP[2]}" --pcap "$REPLAY_PCAP" \
    --src "${TOPO_PIP[1]}" --seconds 2 --seed 2 --out "$TOPO_DIR/flood2.json"
  flood_pid=$BG_PID
  nsrun 10 vm1 ping -c 20 -i 0.1 -W 1 "${TOPO_VIP[2]}" >/dev/null
  topo_poll 60 bash -c "! kill -0 $flood_pid 2>/dev/null" || fail "the second flood did not stop"
  capture_stop
  local second
  second=$(python3 -c "import json; print(json.load(open('$TOPO_DIR/flood2.json'))['total'])" 2>&1) ||
    fail "the second flood wrote no statistics: $(cat "$TOPO_DIR/flood2.log")"
  ((second > 0)) || fail "the second flood sent nothing: $(cat "$TOPO_DIR/flood2.log")"
  # What vm2 itself sent is not a delivery: its echo replies, and the IPv6 router solicitations its
  # interface keeps sending with backoff after it came up (one fell in this window now and then).
  local vm2_mac
  vm2_mac=$(ip -n "$(topo_ns vm2)" -br link show "${TOPO_TAP[2]}" | awk '{ print $3 }')
  [[ -n $vm2_mac ]] || fail "no MAC address on vm2's ${TOPO_TAP[2]}"
  out=$(timeout 30 tshark -n -r "$CAP_FILE" -Y "eth.src != $vm2_mac && !arp && !(icmp && ip.src == ${TOPO_VIP[1]})" \
    -T fields -e frame.number -e _ws.col.Info 2>/dev/null | head -5)
  [[ -z $out ]] || fail "vm2 received frames that are not vm1's pings during the flood: $out"
  pass "gateway 2 delivered $delivered frames to vm2 and authenticated $authenticated; during a second flood of $second datagrams vm2 saw only vm1's pings"
}

# capture_start_in ROLE IFACE NAME: like capture_start, on another namespace's interface.
capture_start_in() {
  CAP_FILE="$TOPO_DIR/$3.pcap"
  nsbg "$1" "$TOPO_DIR/$3.tcpdump.log" tcpdump -i "$2" -n -U --immediate-mode -s 0 -Z root -w "$CAP_FILE"
  CAP_PID=$BG_PID
  topo_poll 10 grep -qs "listening on" "$TOPO_DIR/$3.tcpdump.log" ||
    fail "tcpdump on $2 in $1 did not start: $(cat "$TOPO_DIR/$3.tcpdump.log")"
}

# CPU ticks (user + system) a process used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

scenario_x() {
  CURRENT=x/tap-deleted
  local pid=${TOPO_GW_PID[1]} t0 t1 hz out
  ip -n "$(topo_ns vm1)" link del "${TOPO_TAP[1]}" || fail "deleting vm1's TAP"
  topo_poll 5 grep -q "the device was removed under the gateway" "${TOPO_LOG[1]}" ||
    fail "gateway 1 did not log the deleted TAP"
  [[ $(grep -c "the device was removed under the gateway" "${TOPO_LOG[1]}") == 1 ]] || fail "the deleted TAP was logged more than once"
  pass "$(grep -o "port .*removed under the gateway" "${TOPO_LOG[1]}")"
  CURRENT=x/no-spin
  hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks "$pid")
  nsrun 10 vm2 ping -c 10 -i 0.2 -W 1 "${TOPO_VIP[1]}" >/dev/null # toward the dead port: counted drops
  t1=$(cpu_ticks "$pid")
  ((t1 - t0 < hz * 2 / 5)) || fail "gateway 1 used $((t1 - t0)) CPU ticks in 2 s with its TAP gone (spinning?)"
  topo_gateway_alive 1 || fail "gateway 1 exited after its TAP was deleted"
  out=$(topo_pspctl 1 --json counters 2>&1) || fail "pspctl counters after the TAP was deleted: $out"
  local drops
  drops=$(python3 -c "import json,sys; c=json.load(sys.stdin); print([p for p in c['ports'] if p['name'] == '${TOPO_TAP[1]}'][0]['drops'])" <<<"$out")
  ((drops >= 1)) || fail "gateway 1 counts no drop on its deleted TAP"
  pass "gateway 1 runs on: $((t1 - t0)) CPU ticks (of $((hz * 2))) in 2 s, pspctl answers, $drops frames counted as dropped on the dead port"
}

scenario_s() {
  CURRENT=s/sampled-logged
  local n
  grep -q "SAMPLED PACKET (egress" "${TOPO_LOG[1]}" || fail "gateway 1 logged no egress sample"
  grep -q "SAMPLED PACKET (ingress" "${TOPO_LOG[2]}" || fail "gateway 2 logged no ingress sample (S bit not seen)"
  grep -q "| PSP spi 0x" "${TOPO_LOG[2]}" || fail "gateway 2's sample summary decodes no PSP header"
  grep -q -- "--maintain-order: always in effect" "${TOPO_LOG[1]}" || fail "gateway 1 did not say what --maintain-order does"
  pass "egress samples logged by gateway 1, ingress samples (S bit) by gateway 2"
  CURRENT=s/sample-pcap
  for n in 1 2; do
    local count
    count=$(timeout 30 tshark -n -r "$TOPO_DIR/samples.$n.pcap" -T fields -e frame.number 2>/dev/null | wc -l)
    ((count > 0)) || fail "--sample-pcap of gateway $n holds no packet"
  done
  pass "both --sample-pcap files hold sampled packets"
  # The TCP transfer's TSO super-packets cross the gateway whole; their samples are their segments as they
  # go on the wire (each no larger than a wire frame), never a 64 KiB super-packet.
  CURRENT=s/super-packet-samples
  local largest
  largest=$(timeout 30 tshark -n -r "$TOPO_DIR/samples.1.pcap" -T fields -e frame.len 2>/dev/null | sort -n | tail -1)
  ((${largest:-0} > 1000 && largest <= TOPO_WIRE_MTU + 14)) ||
    fail "gateway 1's largest sample is ${largest:-nothing} bytes (want a full segment, at most $((TOPO_WIRE_MTU + 14)))"
  pass "gateway 1's egress samples are wire-sized segments (largest $largest bytes)"
}

# The gateways say how their key exchange is secured: mutual TLS unless the case asks for --grpc-insecure.
check_grpc_security() {
  CURRENT=setup/grpc-security
  [[ $(basename "$TOPO_GATEWAY") == psp-gateway ]] || return 0 # the harness's stand-ins speak no gRPC
  local want="(mutual TLS)" n
  [[ " ${GW_FLAGS[*]} " == *" --grpc-insecure "* ]] && want="(plaintext, unauthenticated: --grpc-insecure)"
  for n in 1 2; do
    topo_poll 5 grep -qF -- "$want" "${TOPO_LOG[$n]}" || fail "gateway $n does not log gRPC $want"
  done
  pass "both gateways: gRPC $want"
}

check_admin() {
  CURRENT=admin/tunnels
  local f="$TOPO_DIR/tunnels.1.json" v
  topo_pspctl 1 --json tunnels >"$f" 2>&1 || fail "pspctl tunnels: $(cat "$f")"
  v=$(python3 "$TOOL" json-get "$f" "tunnels[remote_vip=${TOPO_VIP[2]}].local_vip" 2>&1) ||
    fail "host1 lists no tunnel to ${TOPO_VIP[2]}: $v"
  [[ $v == "${TOPO_VIP[1]}" ]] || fail "host1's tunnel to ${TOPO_VIP[2]} has local VIP $v"
  pass "host1 tunnel ${TOPO_VIP[1]} -> ${TOPO_VIP[2]}"
  CURRENT=admin/pipeline
  local mm name
  mm=$(topo_pspctl 1 pipeline --format mermaid 2>&1) || fail "pspctl pipeline: $mm"
  for name in "${PIPELINE_NAMES[@]}"; do
    grep -q "$name" <<<"$mm" || fail "the Mermaid pipeline does not name $name:
$mm"
  done
  pass "pipeline names ${PIPELINE_NAMES[*]}"
}

# ----- the run -----
echo "e2e case $CASE: $MODE mode, outer $OUTER, inner $INNER, gateway flags: ${GW_FLAGS[*]:-none}, scenarios $SCENARIOS"
CURRENT=setup/topology
topo_create || fail "building the namespaces failed"
topo_write_configs
CURRENT=setup/gateways
SAMPLE_ARGS=()
if [[ $CASE == sampling ]]; then SAMPLE_ARGS=(--sample-pcap "$TOPO_DIR/samples.1.pcap"); fi
topo_start_gateway 1 "${GW_FLAGS[@]}" "${SAMPLE_ARGS[@]}"
if [[ $CASE == sampling ]]; then SAMPLE_ARGS=(--sample-pcap "$TOPO_DIR/samples.2.pcap"); fi
topo_start_gateway 2 "${GW_FLAGS[@]}" "${SAMPLE_ARGS[@]}"
topo_wait_ready 1 || fail "gateway 1 did not come up"
topo_wait_ready 2 || fail "gateway 2 did not come up"
topo_attach_vm 1 || fail "attaching vm1"
topo_attach_vm 2 || fail "attaching vm2"
pass "namespaces up, gateways ready, TAPs in the VMs"
check_grpc_security

if want a || want p; then
  want b && capture_start wire
  want a && scenario_a
  want p && scenario_p
  if want b; then
    capture_stop
    scenario_b
  fi
fi
if want c || want d; then listener_start; fi
want c && scenario_c
want d && scenario_d
want s && scenario_s
want r && scenario_r
want h && scenario_h
want f && scenario_f
want x && scenario_x
[[ $CASE == basic ]] && check_admin

CURRENT=teardown
for n in 1 2; do topo_gateway_alive "$n" || fail "gateway $n exited during the test"; done
want t && scenario_t
echo "ALL PASSED [$CASE]"
