#!/usr/bin/env bash
# Throughput between two hosts, three ways in ONE run (issue 9 step 6): through psp-gateway, through
# wireguard-go, and over the bare veth, on a standard 1500-byte wire. One table at the end.
#
#   bench/e2e.sh [--quick] [--bin-dir DIR] [--time SECONDS] [--workers "1 2"] [--paths veth,psp,wg]
#                [--paced-trials N] [--rounds N]
#
# Topology: scripts/lib/topology.sh (outer IPv6, inner IPv4; vm1 -- host1 ==wire (MTU 1500)== host2 -- vm2).
# Paths:
#   veth   iperf3 host1 -> host2 straight over the wire: the kernel path with no tunnel, this machine's ceiling.
#   psp    vm1 -> vm2 through both gateways (TAP -> psp-gateway -> UDP/1000 -> psp-gateway -> TAP), default
#          flags (PSPGW_FLAGS="..." adds some), once per --workers value. The TAPs come up with the wire's MTU
#          less the PSP overhead (1420 here); a ping sets up the tunnel first, so the exchange is not timed.
#   wg     vm1 -> vm2 through wireguard-go (Debian wireguard-go + wireguard-tools, scripts/deps.sh), its
#          interfaces made in host1/host2 (the UDP socket stays in the host) and moved into vm1/vm2, MTU 1420
#          (wg-quick's: the wire's less WireGuard's 80 bytes over IPv6). Skipped, said so, if not installed.
# Tests on each path (iperf3 -J): TCP 1 and 4 streams, each both ways (-R: vm2 sends); UDP -b 0 (as fast as
# the sender can) in 64-byte and 1400-byte IP packets (-l 36 / -l 1372: every path's MTU holds them whole),
# what arrived; then each UDP size paced ("UDP ... <=1% loss"): the highest rate a trial of iperf3 -b RATE
# delivered with at most 1% of its datagrams lost (RFC 2544's throughput, with 1% for iperf3's in-flight
# tail), searched in up to --paced-trials trials (default 5) from the -b 0 figure: up by half while trials
# pass (down by 30% while none has), then halfway between the best pass and the lowest failure. The paced
# trials give iperf3 4 MB socket buffers (-w 4M, capped by net.core.rmem_max/wmem_max), every path alike:
# with the default 208 KB a receiving iperf3 descheduled for a few milliseconds overflowed its socket at
# rates every path carried (1-8%, the bare veth's too). At -b 0 the sending iperf3 spends a CPU on
# datagrams the sender's TAP drops (nothing pushes back on a TAP writer) and the receiving iperf3 goes
# short; paced, the figure is what the path carries when its ends are not starved. --paced-trials 0 skips.
# The same UDP tests again with "batched" ends (bench_udp_load, build/bin: numbered datagrams, sendmmsg and
# recvmmsg of up to 32/64 a system call, 4 MB socket buffers): iperf3 sends and reads one datagram a system
# call, which on a 2-vCPU machine caps even the bare veth near 0.25 Mpps of 1400-byte packets, so its UDP
# figures measure iperf3 as much as the path. The batched rows are the path's own: unpaced ("UDP ... B
# batched"), then paced by the same search ("UDP ... B batched <=1% loss": the rate in datagrams a second,
# sent in batches of at most 100 us of it); loss is what the receiver did not count by the time the link
# had been quiet for half a second after the sender stopped (nothing in flight counts as lost).
# Columns: Gbit/s received; Mpps received (UDP datagrams; TCP: -); CPU s/GB = CPU seconds the whole machine
# spent (all CPUs, /proc/stat, both ends, tunnel and kernel) per GB received: the cost of moving a byte;
# tunnel s/GB = CPU seconds of the tunnel's two processes alone (psp-gateway or wireguard-go: user and
# system time, so also the kernel work they do in their syscalls) per GB: the same cost, apart from the
# rest of the machine (other work on it counts in CPU s/GB, not here);
# then per test the ratios psp-gateway / wireguard-go and psp-gateway / bare veth.
# --rounds N (default 1) runs the paths N times in turn (veth, psp, wg, veth, psp, ...; gateways and
# wireguard-go started afresh each round) and prints the medians: each figure the median of its N rounds,
# each ratio the median of the N ratios taken within a round (the two sides measured minutes apart, not
# rounds apart), the NOTE column the per-round values of the row's main figure (Mpps for UDP, Gbit/s for
# TCP). On a VM whose speed drifts, single runs' ratios swing by a third (README: Performance).
#
# --quick (what scripts/test.sh runs through ctest, e2e_bench_quick): 1-second TCP 1 stream, UDP 1400 B and
# UDP 1400 B batched on every path (no paced search), well under a minute; it fails only when a path is
# broken (no traffic) or a gateway crashed, never on a number. Needs root, iperf3, python3; exit 77 (skipped) where the machine
# cannot run it. Every namespace, process and file it made is removed on exit.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

BUILD_DIR=${BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR="$REPO/$BUILD_DIR"
BIN_DIR="$BUILD_DIR/bin"
DURATION=10
WORKERS="1"
PATHS="veth,psp,wg"
QUICK=0
PACED_TRIALS=5
ROUNDS=1
while (($#)); do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --bin-dir) BIN_DIR=$2; shift 2 ;;
    --time) DURATION=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --paths) PATHS=$2; shift 2 ;;
    --paced-trials) PACED_TRIALS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--quick] [--bin-dir DIR] [--time S] [--workers \"1 2\"] [--paths veth,psp,wg] [--paced-trials N] [--rounds N]" >&2; exit 2 ;;
  esac
done
[[ $PACED_TRIALS =~ ^[0-9]+$ ]] || { echo "bench/e2e: --paced-trials wants a count, not '$PACED_TRIALS'" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "bench/e2e: --rounds wants a count of at least 1, not '$ROUNDS'" >&2; exit 2; }
((QUICK)) && DURATION=1 && PACED_TRIALS=0 && ROUNDS=1
ROUND=1
want() { [[ ",$PATHS," == *",$1,"* ]]; }

# shellcheck source=scripts/lib/topology.sh
source "$REPO/scripts/lib/topology.sh"
die() { echo "bench/e2e: FAIL: $*" >&2; exit 1; }
skip() { echo "bench/e2e: SKIP: $*" >&2; exit 77; }
why=$(topo_preflight)
[[ -z $why ]] || skip "$why"
for tool in iperf3 python3 ping timeout; do command -v "$tool" >/dev/null || skip "$tool is not installed"; done
export TOPO_BIN_DIR=$BIN_DIR
topo_init --outer ipv6 --inner ipv4 || exit 2
if want psp; then [[ -x $TOPO_GATEWAY ]] || skip "no gateway at $TOPO_GATEWAY (scripts/build.sh, or --bin-dir)"; fi
# The batched UDP load from --bin-dir, else this tree's build (a --bin-dir of an older build may lack it).
LOAD_BIN=$BIN_DIR/bench_udp_load
[[ -x $LOAD_BIN ]] || LOAD_BIN=$BUILD_DIR/bin/bench_udp_load
[[ -x $LOAD_BIN ]] || skip "no bench_udp_load at $LOAD_BIN (scripts/build.sh)"

WG_SOCKS=()
WG_PIDS=()
cleanup() {
  local rc=$? s
  trap - EXIT INT TERM
  topo_teardown
  # wireguard-go's control sockets are global (/var/run/wireguard): they go when it exits; make sure.
  for s in "${WG_SOCKS[@]}"; do rm -f "$s"; done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RESULTS="$TOPO_DIR/results.tsv"
: >"$RESULTS"
ROWS_TO=$RESULTS
IPERF_PORT=5201
LOAD_PORT=5202

machine_ticks() { awk '/^cpu / { idle = $5 + $6; tot = 0; for (i = 2; i <= NF; i++) tot += $i; print tot, idle }' /proc/stat; }
# The tunnel's own processes (the two psp-gateways, the two wireguard-gos; none for the bare veth): their
# CPU ticks in all (user + system, every thread: /proc/PID/stat utime and stime, the 12th and 13th fields
# after the command name), so a path's cost is read apart from whatever else runs on the machine.
TUNNEL_PIDS=()
tunnel_ticks() {
  local total=0 p rest
  for p in "${TUNNEL_PIDS[@]}"; do
    rest=$(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null) || continue
    # shellcheck disable=SC2086 # the fields, split on purpose
    set -- $rest
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

# udp_counters NS: "delivered overflowed" for the namespace's UDP sockets (IPv4 and IPv6 together):
# datagrams handed to a socket, and datagrams that reached a socket whose receive buffer was full (dropped).
udp_counters() {
  ip netns exec "$(topo_ns "$1")" nstat -asz 2>/dev/null |
    awk '$1 ~ /^Udp6?InDatagrams$/ { d += $2 } $1 ~ /^Udp6?RcvbufErrors$/ { o += $2 } END { print d + 0, o + 0 }'
}

# load_as_iperf3 SEND_JSON RECV_JSON: bench_udp_load's two reports as the iperf3 -J fields run_with
# reads (end.sum: bytes, seconds, packets, lost_packets, lost_percent), over the sender's seconds.
load_as_iperf3() {
  python3 - "$@" <<'PY'
import json, sys
try:
    s, r = (json.load(open(f)) for f in sys.argv[1:3])
except Exception as e:
    print(json.dumps({"error": f"bench_udp_load gave no report ({e})"}))
    sys.exit(0)
sent, got = s["sent"], r["received"]
lost = max(sent - got, 0)
print(json.dumps({"end": {"sum": {"bytes": r["bytes"], "seconds": s["seconds"], "packets": sent,
                                  "lost_packets": lost, "lost_percent": 100 * lost / max(sent, 1)}}}))
PY
}

# ----- one test -----
# run_test PATH TEST SERVER_NS CLIENT_NS SERVER_ADDR IPERF_ARGS...: one iperf3 test. run_load PATH TEST
# SERVER_NS CLIENT_NS SERVER_ADDR BYTES PPS: one bench_udp_load test, the "batched" rows (BYTES-byte IPv4
# packets: payload BYTES - 28, as iperf3's -l; PPS datagrams a second, 0 as fast as it goes). Each appends
# "path test gbps mpps cpu_s_per_gb tunnel_s_per_gb note loss% round" to $ROWS_TO (RESULTS, or a paced
# search's trials); "failed" figures when the client failed or nothing arrived.
run_test() { run_with iperf3 "$@"; }
run_load() { run_with load "$@"; }

run_with() {
  local tool=$1 path=$2 test=$3 sns=$4 cns=$5 addr=$6
  shift 6
  local json="$TOPO_DIR/iperf.json" spid listening
  if [[ $tool == iperf3 ]]; then
    ip netns exec "$(topo_ns "$sns")" iperf3 -s -1 -B "$addr" -p "$IPERF_PORT" >"$TOPO_DIR/iperf-server.log" 2>&1 </dev/null &
    listening="ss -Hltn 'sport = :$IPERF_PORT'"
  else
    ip netns exec "$(topo_ns "$sns")" "$LOAD_BIN" recv --bind "$addr" --port "$LOAD_PORT" \
      --max-seconds $((DURATION + 20)) --idle-ms 500 >"$TOPO_DIR/load-recv.json" 2>"$TOPO_DIR/iperf-server.log" </dev/null &
    listening="ss -Hlun 'sport = :$LOAD_PORT'"
  fi
  spid=$!
  TOPO_PIDS+=("$spid")
  topo_poll 5 bash -c "ip netns exec $(topo_ns "$sns") $listening | grep -q ." ||
    die "$tool receiver in $sns did not start: $(cat "$TOPO_DIR/iperf-server.log")"
  local m0 m1 t0 t1 u0 u1 rc
  m0=$(machine_ticks)
  t0=$(tunnel_ticks)
  u0=$(udp_counters "$sns")
  if [[ $tool == iperf3 ]]; then
    timeout $((DURATION + 30)) ip netns exec "$(topo_ns "$cns")" iperf3 -c "$addr" -p "$IPERF_PORT" -t "$DURATION" \
      -J "$@" >"$json" 2>"$TOPO_DIR/iperf-client.err"
    rc=$?
  else
    timeout $((DURATION + 30)) ip netns exec "$(topo_ns "$cns")" "$LOAD_BIN" send --to "$addr" --port "$LOAD_PORT" \
      --seconds "$DURATION" --payload $(($1 - 28)) --pps "$2" >"$TOPO_DIR/load-send.json" 2>"$TOPO_DIR/iperf-client.err"
    rc=$?
    # The receiver stops half a second after the last datagram (what was still queued is counted).
    topo_poll 5 bash -c "! kill -0 $spid 2>/dev/null" || rc=124
    load_as_iperf3 "$TOPO_DIR/load-send.json" "$TOPO_DIR/load-recv.json" >"$json"
  fi
  m1=$(machine_ticks)
  t1=$(tunnel_ticks)
  u1=$(udp_counters "$sns")
  # iperf3 -s -1 exits after its one test; not after a client that failed to connect.
  topo_poll 3 bash -c "! kill -0 $spid 2>/dev/null" || kill "$spid" 2>/dev/null
  wait "$spid" 2>/dev/null
  python3 - "$json" "$rc" "$m0" "$m1" "$(getconf CLK_TCK)" "$path" "$test" "$((t1 - t0))" "${#TUNNEL_PIDS[@]}" \
    "$u0" "$u1" "$ROUND" "$tool" <<'PY' | tee -a "$ROWS_TO" >&2
import json, sys
path_json, rc, m0, m1, hz, path, test, tunnel_ticks, tunnel_procs, u0, u1, rnd, tool = sys.argv[1:]
busy = (int(m1.split()[0]) - int(m0.split()[0])) - (int(m1.split()[1]) - int(m0.split()[1]))
cpu_s = busy / int(hz)
tunnel_s = int(tunnel_ticks) / int(hz)
try:
    doc = json.load(open(path_json))
except Exception:
    doc = {}
end = doc.get("end", {})
rx = end.get("sum_received") or end.get("sum") or {}
if rc != "0" or not rx or rx.get("bytes", 0) == 0:
    print(f"{path}\t{test}\tfailed\t-\t-\t-\t{tool} rc {rc}: {doc.get('error', '')}\t-\t{rnd}")
    sys.exit(0)
secs = rx.get("seconds") or 1
gbps = rx["bytes"] * 8 / secs / 1e9
mpps = "-"
loss = "-"
note = f"retr {end.get('sum_sent', {}).get('retransmits', '-')}"
if "lost_packets" in rx or "packets" in rx:  # UDP: the datagrams that arrived
    got = rx.get("packets", 0) - rx.get("lost_packets", 0)
    mpps = f"{got / secs / 1e6:.3f}"
    loss = f"{rx.get('lost_percent', 0):.3f}"
    note = f"sent {rx.get('packets', 0) / secs / 1e6:.3f} Mpps, loss {rx.get('lost_percent', 0):.1f}%"
    # Where the loss is: what the path delivered to the receiver's UDP layer (read by the receiver, or
    # dropped there because it did not read fast enough) against what it read.
    (d0, o0), (d1, o1) = (map(int, u.split()) for u in (u0, u1))
    reached = (d1 - d0) + (o1 - o0)
    if reached > 0:
        note += f"; {reached / secs / 1e6:.3f} Mpps reached the receiver, {100 * (o1 - o0) / reached:.0f}% of it overflowed the receiver's socket"
gb = rx['bytes'] / 1e9
tunnel = f"{tunnel_s / gb:.2f}" if tunnel_procs != "0" else "-"
print(f"{path}\t{test}\t{gbps:.3f}\t{mpps}\t{cpu_s / gb:.2f}\t{tunnel}\t{note}\t{loss}\t{rnd}")
PY
}

# udp_paced PATH BYTES SERVER_NS CLIENT_NS SERVER_ADDR [batched]: the paced search (see the top) for BYTES-byte
# IP packets, from the Mpps the unpaced test of that size (and sender) just put in RESULTS. Appends one row
# "UDP BYTES B[ batched] <=1% loss": the passing trial that delivered the most (its NOTE: the rate offered
# and the trials run), or, if none passed, the trial with the least loss, said so. With "batched" the
# trials are bench_udp_load's (--pps: datagrams a second), else iperf3's.
udp_paced() {
  local path=$1 bytes=$2 sns=$3 cns=$4 addr=$5 kind=${6:+ $6}
  local name="UDP $bytes B$kind <=1% loss" trials="$TOPO_DIR/paced.tsv" rate lo=0 hi=0 i row loss next
  rate=$(awk -F'\t' -v p="$path" -v t="UDP $bytes B$kind" '$1 == p && $2 == t { r = $4 } END { print r + 0 }' "$RESULTS")
  awk -v r="$rate" 'BEGIN { exit !(r > 0) }' || return 0  # the unpaced test failed: it already says so
  : >"$trials"
  for ((i = 0; i < PACED_TRIALS; i++)); do
    # iperf3 -b counts UDP payload bits: BYTES less 28 (IPv4 + UDP headers) a datagram. In kbit/s: a plain
    # number above 2^31 is cut to 2.147 Gbit/s (0.196 Mpps of 1400-byte packets), a ceiling every path hit.
    ROWS_TO=$trials
    if [[ -n $kind ]]; then
      run_load "$path" "$name" "$sns" "$cns" "$addr" "$bytes" "$(awk -v r="$rate" 'BEGIN { printf "%d", r * 1e6 }')"
    else
      run_test "$path" "$name" "$sns" "$cns" "$addr" -u -w 4M -l $((bytes - 28)) \
        -b "$(awk -v r="$rate" -v l=$((bytes - 28)) 'BEGIN { printf "%dK", r * 1e3 * l * 8 }')"
    fi
    ROWS_TO=$RESULTS
    row=$(tail -n 1 "$trials")
    loss=$(cut -f8 <<<"$row")
    printf '%s\n' "$rate" >>"$trials.rates"
    if [[ $loss != - ]] && awk -v l="$loss" 'BEGIN { exit !(l <= 1) }'; then
      lo=$rate
    else
      hi=$rate
    fi
    # Up by half until a failure bounds it; then bisect; without a pass yet, down by 30%.
    next=$(awk -v lo="$lo" -v hi="$hi" -v r="$rate" \
      'BEGIN { if (hi == 0) r = lo * 1.5; else if (lo == 0) r = r * 0.7; else r = (lo + hi) / 2; printf "%.6f", r }')
    rate=$next
  done
  python3 - "$trials" "$trials.rates" <<'PY' | tee -a "$RESULTS" >&2
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
rates = [float(l) for l in open(sys.argv[2]) if l.strip()]
def num(v, default):
    try: return float(v)
    except ValueError: return default
tried = list(zip(rows, rates))
passed = [(r, o) for r, o in tried if num(r[7], 100.0) <= 1.0]
if passed:
    r, o = max(passed, key=lambda x: num(x[0][3], 0.0))
    how = f"offered {o:.3f} Mpps"
else:
    r, o = min(tried, key=lambda x: num(x[0][7], 100.0))
    how = f"NO trial <=1% loss; least loss at {o:.3f} Mpps offered"
r[6] = f"{r[6]}; {how}, {len(tried)} trials"
print("\t".join(r))
PY
  rm -f "$trials" "$trials.rates"
}

# run_suite PATH SERVER_NS CLIENT_NS SERVER_ADDR
run_suite() {
  run_test "$1" "TCP 1 stream" "$2" "$3" "$4"
  if ((!QUICK)); then
    run_test "$1" "TCP 1 stream -R" "$2" "$3" "$4" -R
    run_test "$1" "TCP 4 streams" "$2" "$3" "$4" -P 4
    run_test "$1" "TCP 4 streams -R" "$2" "$3" "$4" -P 4 -R
    run_test "$1" "UDP 64 B" "$2" "$3" "$4" -u -b 0 -l $((64 - 28))
  fi
  run_test "$1" "UDP 1400 B" "$2" "$3" "$4" -u -b 0 -l $((1400 - 28))
  ((!QUICK)) && run_load "$1" "UDP 64 B batched" "$2" "$3" "$4" 64 0
  run_load "$1" "UDP 1400 B batched" "$2" "$3" "$4" 1400 0
  if ((PACED_TRIALS > 0)); then
    udp_paced "$1" 64 "$2" "$3" "$4"
    udp_paced "$1" 1400 "$2" "$3" "$4"
    udp_paced "$1" 64 "$2" "$3" "$4" batched
    udp_paced "$1" 1400 "$2" "$3" "$4" batched
  fi
}

# ----- paths -----
path_veth() {
  echo "== bare veth: host1 -> host2 over the wire (MTU $TOPO_WIRE_MTU), no tunnel" >&2
  TUNNEL_PIDS=()
  run_suite "bare veth" host2 host1 "${TOPO_PIP[2]}"
}

path_psp() {
  local w=$1 label="psp-gateway"
  [[ $w != 1 ]] && label="psp-gateway --workers $w"
  echo "== $label: vm1 -> vm2 through two psp-gateways" >&2
  # shellcheck disable=SC2086 # PSPGW_FLAGS: extra gateway flags, word-split on purpose (e.g. "--udp-zero-checksum")
  topo_start_gateway 1 --workers "$w" ${PSPGW_FLAGS:-}
  # shellcheck disable=SC2086
  topo_start_gateway 2 --workers "$w" ${PSPGW_FLAGS:-}
  if ! topo_wait_ready 1 || ! topo_wait_ready 2; then
    topo_dump_logs 30
    die "the gateways did not come up"
  fi
  if ! topo_attach_vm 1 || ! topo_attach_vm 2; then die "attaching the VMs"; fi
  timeout 20 ip netns exec "$(topo_ns vm1)" ping -c 3 -i 0.2 -W 2 "${TOPO_VIP[2]}" >/dev/null ||
    { topo_dump_logs 30; die "no ping through the tunnel"; }
  TUNNEL_PIDS=("${TOPO_GW_PID[1]}" "${TOPO_GW_PID[2]}")
  run_suite "$label" vm2 vm1 "${TOPO_VIP[2]}"
  local n
  for n in 1 2; do
    topo_gateway_alive "$n" || { topo_dump_logs 30; die "gateway $n exited during the run"; }
  done
  topo_stop_gateways # the TAPs (and so the VMs' interfaces) go with them
}

# wg_make N: wireguard-go interface made in hostN (its UDP socket lives there), keyed, moved into vmN.
wg_make() {
  local n=$1 m=$((3 - $1))
  local ifc="pspwg$$-$n" hns vns
  hns=$(topo_ns "host$n") vns=$(topo_ns "vm$n")
  WG_SOCKS+=("/var/run/wireguard/$ifc.sock")
  ip netns exec "$hns" env WG_PROCESS_FOREGROUND=1 wireguard-go "$ifc" >"$TOPO_DIR/wg$n.log" 2>&1 </dev/null &
  TOPO_PIDS+=("$!")
  WG_PIDS+=("$!")
  topo_poll 5 test -S "/var/run/wireguard/$ifc.sock" || return 1
  ip netns exec "$hns" wg set "$ifc" private-key "$TOPO_DIR/wg$n.key" listen-port 51820 \
    peer "$(cat "$TOPO_DIR/wg$m.pub")" allowed-ips "${TOPO_VIP[$m]}/32" endpoint "[${TOPO_PIP[$m]}]:51820" || return 1
  ip -n "$hns" link set "$ifc" netns "$vns" || return 1
  ip -n "$vns" addr add "${TOPO_VIP_CIDR[$n]}" dev "$ifc" || return 1
  ip -n "$vns" link set "$ifc" mtu $((TOPO_WIRE_MTU - 80)) up
}

path_wg() {
  if ! command -v wireguard-go >/dev/null || ! command -v wg >/dev/null; then
    echo "== wireguard-go: skipped (install wireguard-go and wireguard-tools: scripts/deps.sh)" >&2
    return 0
  fi
  local label n
  label="wireguard-go $(wireguard-go --version 2>/dev/null | head -n 1 | awk '{ print $2 }')"
  echo "== $label: vm1 -> vm2" >&2
  (umask 077 && for n in 1 2; do wg genkey >"$TOPO_DIR/wg$n.key" && wg pubkey <"$TOPO_DIR/wg$n.key" >"$TOPO_DIR/wg$n.pub"; done)
  if ! wg_make 1 || ! wg_make 2; then die "setting up wireguard-go failed: $(cat "$TOPO_DIR"/wg*.log 2>/dev/null)"; fi
  timeout 20 ip netns exec "$(topo_ns vm1)" ping -c 3 -i 0.2 -W 2 "${TOPO_VIP[2]}" >/dev/null || die "no ping through wireguard-go"
  TUNNEL_PIDS=("${WG_PIDS[@]}")
  run_suite "$label" vm2 vm1 "${TOPO_VIP[2]}"
  wg_stop
}

# wg_stop: both wireguard-go processes ended (their interfaces go with them), for the next round.
wg_stop() {
  local p s
  for p in "${WG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  # Exited means gone or a zombie (our child until waited for).
  for p in "${WG_PIDS[@]}"; do
    topo_poll 5 bash -c "! kill -0 $p 2>/dev/null || [[ \$(awk '{ print \$3 }' /proc/$p/stat 2>/dev/null) == Z ]]" ||
      kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  for s in "${WG_SOCKS[@]}"; do rm -f "$s"; done
  WG_PIDS=()
  WG_SOCKS=()
}

# ----- the run -----
topo_create 2>/dev/null || die "building the namespaces failed"
echo "machine: $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); iperf3 -t $DURATION" >&2
want psp && topo_write_configs
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  ((ROUNDS > 1)) && echo "== round $ROUND of $ROUNDS" >&2
  want veth && path_veth
  if want psp; then
    for w in $WORKERS; do path_psp "$w"; done
  fi
  want wg && path_wg
done

python3 - "$RESULTS" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$DURATION" "$ROUNDS" <<'PY'
import statistics
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
rounds = int(sys.argv[5])
tests = list(dict.fromkeys(r[1] for r in rows))
paths = list(dict.fromkeys(r[0] for r in rows))
get = {(r[0], r[1], r[8]): r for r in rows}  # (path, test, round)
def num(v):
    try: return float(v)
    except ValueError: return None
def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None
def cell(v, digits):
    return "-" if v is None else f"{v:.{digits}f}"
def ratio(a, b, col):
    x, y = num(a[col]) if a else None, num(b[col]) if b else None
    return x / y if x is not None and y else None
def main_col(t):
    return 3 if t.startswith("UDP") else 2  # Mpps for UDP, Gbit/s for TCP
psp = next((p for p in paths if p.startswith("psp-gateway")), None)
wg = next((p for p in paths if p.startswith("wireguard-go")), None)
veth = "bare veth" if "bare veth" in paths else None
fmt = "{:<18} {:<26} {:>8} {:>8} {:>9} {:>11}  {}"
print()
print(fmt.format("TEST", "PATH", "Gbit/s", "Mpps", "CPU s/GB", "tunnel s/GB", "NOTE"))
rnds = [str(n) for n in range(1, rounds + 1)]
for t in tests:
    for p in paths:
        rs = [get[(p, t, n)] for n in rnds if (p, t, n) in get]
        if not rs: continue
        if rounds == 1:
            r = rs[0]
            print(fmt.format(t, p, r[2], r[3], r[4], r[5], r[6]))
            continue
        digits = (3, 3, 2, 2)
        cols = [cell(median(num(r[c]) for r in rs), d) for c, d in zip((2, 3, 4, 5), digits)]
        per = ", ".join(r[main_col(t)] for r in rs)
        print(fmt.format(t, p, *cols, f"rounds: {per}"))
    for name, other in (("psp / wireguard-go", wg), ("psp / bare veth", veth)):
        if not (psp and other): continue
        per_round = [[ratio(get.get((psp, t, n)), get.get((other, t, n)), c) for n in rnds] for c in (2, 3, 4, 5)]
        cols = [("-" if median(v) is None else f"{median(v):.2f}x") for v in per_round]
        note = ""
        if rounds > 1:
            mine = per_round[main_col(t) - 2]
            note = "rounds: " + ", ".join("-" if v is None else f"{v:.2f}x" for v in mine)
        print(fmt.format("", name, *cols, note))
many = f"; each figure the median of {rounds} rounds, each ratio the median of the {rounds} ratios within a round" if rounds > 1 else ""
print(f"\nGbit/s, Mpps: received, iperf3 -t {sys.argv[4]}; CPU s/GB: CPU seconds of the whole machine "
      f"({sys.argv[2]} CPUs) per GB received (lower is better); tunnel s/GB: the same for the tunnel's own "
      f"two processes alone (user + system, every thread){many}; load at the end: {sys.argv[3]}")
failed = [f"{r[0]} / {r[1]} (round {r[8]})" for r in rows if r[2] == "failed"]
if failed:
    print("FAIL: no traffic on: " + ", ".join(failed), file=sys.stderr)
    sys.exit(1)
PY
