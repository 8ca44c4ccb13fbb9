#!/usr/bin/env bash
# Throughput between two workloads through two psp-gateways, measured with iperf3, against baselines.
#
#   bench/iperf_tunnel.sh [--bin-dir DIR] [--time SECONDS] [--workers "1 2"] [--paths wire,psp,wg]
#
# Topology: scripts/lib/topology.sh (outer IPv6, inner IPv4; vm1 -- host1 ==wire== host2 -- vm2). Paths:
#   wire  iperf3 host1 -> host2 straight over the veth wire (MTU 1600): the kernel path with no tunnel,
#         the ceiling of this machine.
#   psp   vm1 -> vm2 through both gateways (TAP -> psp-gateway -> UDP/1000 -> psp-gateway -> TAP), once per
#         --workers value. A ping first sets up the tunnel so the key exchange is not timed.
#   wg    vm1 -> vm2 through WireGuard, made in host1/host2 and moved into vm1/vm2 as the gateways' TAPs are
#         (the UDP socket stays in the host): the kernel module if `ip link add type wireguard` works,
#         else wireguard-go (userspace, TUN) if installed, else skipped. Needs `wg` (Debian:
#         wireguard-tools, and wireguard-go for the userspace one); not in scripts/deps.sh: the project
#         does not need them, only this comparison.
# Tests on each path: TCP 1 stream, TCP 4 streams (-P 4), TCP reverse (-R: vm2 sends), UDP -u -b 0 -l 1400
# (as fast as the sender can; the receiver's rate and the loss are reported). Inner MTU 1500 on every path.
# CPU: machine busy % (of all CPUs, /proc/stat) and the CPU time of the tunnel's threads (/proc/PID/task)
# over each test, so the table shows what limits the number.
# PSPGW_FLAGS="..." adds gateway flags (e.g. "--udp-gso"). Needs root, iperf3, python3. Every namespace,
# process and file it made is removed on exit.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

BUILD_DIR=${BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR="$REPO/$BUILD_DIR"
BIN_DIR="$BUILD_DIR/bin"
DURATION=10
WORKERS="1 2"
PATHS="wire,psp,wg"
while (($#)); do
  case "$1" in
    --bin-dir) BIN_DIR=$2; shift 2 ;;
    --time) DURATION=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --paths) PATHS=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--bin-dir DIR] [--time S] [--workers \"1 2\"] [--paths wire,psp,wg]" >&2; exit 2 ;;
  esac
done
want() { [[ ",$PATHS," == *",$1,"* ]]; }

# shellcheck source=scripts/lib/topology.sh
source "$REPO/scripts/lib/topology.sh"
die() { echo "iperf_tunnel: $*" >&2; exit 1; }
why=$(topo_preflight)
[[ -z $why ]] || die "$why"
for tool in iperf3 python3 ping timeout; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
export TOPO_BIN_DIR=$BIN_DIR
topo_init --outer ipv6 --inner ipv4 || exit 2
if want psp; then [[ -x $TOPO_GATEWAY ]] || die "no gateway at $TOPO_GATEWAY (scripts/build.sh, or --bin-dir)"; fi

WG_SOCKS=()
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
IPERF_PORT=5201

# ----- CPU accounting -----
# cpu_ticks LABEL:PID...: "tid label/name ticks" for every thread of those processes (utime + stime, ticks).
cpu_ticks() {
  local lp pid t
  for lp in "$@"; do
    pid=${lp#*:}
    for t in /proc/"$pid"/task/*; do
      [[ -r $t/stat ]] || continue
      # comm may hold spaces: take the fields after the last ')'.
      awk -v tid="${t##*/}" -v name="${lp%%:*}/$(tr ' ' _ <"$t/comm")" \
        '{ sub(/.*\) /, ""); print tid, name, $12 + $13 }' "$t/stat" 2>/dev/null
    done
  done
}
machine_ticks() { awk '/^cpu / { idle = $5 + $6; tot = 0; for (i = 2; i <= NF; i++) tot += $i; print tot, idle }' /proc/stat; }

# cpu_report BEFORE AFTER SECONDS: per process (label), its CPU % over the interval (100 % = one core)
# and its busiest thread's, e.g. "gw1 52% (thread 48%)".
cpu_report() {
  local hz
  hz=$(getconf CLK_TCK)
  awk -v hz="$hz" -v secs="$3" 'NR == FNR { b[$1] = $3; next }
    { split($2, l, "/"); pct = 100 * ($3 - b[$1]) / hz / secs; tot[l[1]] += pct; if (pct > top[l[1]]) top[l[1]] = pct }
    END { for (k in tot) printf "%s %.0f%% (thread %.0f%%)\n", k, tot[k], top[k] }' "$1" "$2" | sort | paste -sd' ' -
}

# ----- one iperf3 test -----
# run_test PATH TEST SERVER_NS CLIENT_NS SERVER_ADDR "TUNNEL PIDS" IPERF_ARGS...
run_test() {
  local path=$1 test=$2 sns=$3 cns=$4 addr=$5 pids=$6
  shift 6
  local json="$TOPO_DIR/iperf.json" spid
  ip netns exec "$(topo_ns "$sns")" iperf3 -s -1 -B "$addr" -p "$IPERF_PORT" >"$TOPO_DIR/iperf-server.log" 2>&1 </dev/null &
  spid=$!
  TOPO_PIDS+=("$spid")
  topo_poll 5 bash -c "ip netns exec $(topo_ns "$sns") ss -Hltn 'sport = :$IPERF_PORT' | grep -q ." ||
    die "iperf3 server in $sns did not start: $(cat "$TOPO_DIR/iperf-server.log")"
  local m0 m1
  m0=$(machine_ticks)
  # shellcheck disable=SC2086  # pids is a list
  cpu_ticks $pids >"$TOPO_DIR/cpu.before"
  local t0=$SECONDS
  timeout $((DURATION + 30)) ip netns exec "$(topo_ns "$cns")" iperf3 -c "$addr" -p "$IPERF_PORT" -t "$DURATION" \
    -J "$@" >"$json" 2>"$TOPO_DIR/iperf-client.err"
  local rc=$?
  # shellcheck disable=SC2086
  cpu_ticks $pids >"$TOPO_DIR/cpu.after"
  m1=$(machine_ticks)
  local secs=$((SECONDS - t0))
  ((secs > 0)) || secs=1
  # iperf3 -s -1 exits after its one test; not after a client that failed to connect.
  topo_poll 3 bash -c "! kill -0 $spid 2>/dev/null" || kill "$spid" 2>/dev/null
  wait "$spid" 2>/dev/null
  local busy threads figures
  busy=$(awk -v a="$m0" -v b="$m1" 'BEGIN { split(a, x, " "); split(b, y, " ");
    printf "%.0f%%", 100 * (1 - (y[2] - x[2]) / (y[1] - x[1])) }')
  threads=$(cpu_report "$TOPO_DIR/cpu.before" "$TOPO_DIR/cpu.after" "$secs")
  if ((rc != 0)); then
    figures="failed"$'\t'"(iperf3 rc $rc: $(head -c 200 "$TOPO_DIR/iperf-client.err"; python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("error",""))' "$json" 2>/dev/null))"
  else
    figures=$(python3 - "$json" <<'EOF'
import json, sys
end = json.load(open(sys.argv[1]))["end"]
rx = end["sum_received"]
if "lost_percent" in rx:  # UDP: what arrived, and how much did not
    print(f"{rx['bits_per_second'] / 1e9:.2f}\tloss {rx['lost_percent']:.1f}% "
          f"(sent {end['sum_sent']['bits_per_second'] / 1e9:.2f})")
else:
    print(f"{rx['bits_per_second'] / 1e9:.2f}\tretr {end['sum_sent'].get('retransmits', '-')}")
EOF
    )
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$path" "$test" "$figures" "$busy" "${threads:--}" | tee -a "$RESULTS" >&2
}

# run_suite PATH SERVER_NS CLIENT_NS SERVER_ADDR "TUNNEL PIDS"
run_suite() {
  run_test "$1" "TCP 1 stream" "$2" "$3" "$4" "$5"
  run_test "$1" "TCP 4 streams" "$2" "$3" "$4" "$5" -P 4
  run_test "$1" "TCP -R" "$2" "$3" "$4" "$5" -R
  run_test "$1" "UDP -b 0 -l 1400" "$2" "$3" "$4" "$5" -u -b 0 -l 1400
}

# ----- paths -----
path_wire() {
  echo "== wire: host1 -> host2 over the veth, no tunnel" >&2
  run_suite "wire (veth, no tunnel)" host2 host1 "${TOPO_PIP[2]}" ""
}

path_psp() {
  local w=$1
  echo "== psp: vm1 -> vm2 through two psp-gateways --workers $w" >&2
  # shellcheck disable=SC2086 # PSPGW_FLAGS: extra gateway flags, word-split on purpose (e.g. "--udp-gso")
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
  run_suite "psp-gateway --workers $w" vm2 vm1 "${TOPO_VIP[2]}" "gw1:${TOPO_GW_PID[1]} gw2:${TOPO_GW_PID[2]}"
  topo_stop_gateways # the TAPs (and so the VMs' interfaces) go with them
}

# WireGuard: kernel if this kernel has it, else wireguard-go. Prints the kind, or nothing.
wg_kind() {
  command -v wg >/dev/null || return 0
  local probe="pspwgp$$"
  if ip -n "$(topo_ns host1)" link add "$probe" type wireguard 2>/dev/null; then
    ip -n "$(topo_ns host1)" link del "$probe"
    echo kernel
  elif command -v wireguard-go >/dev/null; then
    echo wireguard-go
  fi
}

# wg_make N KIND: interface wgN made in hostN (its UDP socket lives there), keyed, moved into vmN.
wg_make() {
  local n=$1 kind=$2 m=$((3 - $1))
  local ifc="pspwg$$-$n" hns vns
  hns=$(topo_ns "host$n") vns=$(topo_ns "vm$n")
  if [[ $kind == kernel ]]; then
    ip -n "$hns" link add "$ifc" type wireguard || return 1
  else
    WG_SOCKS+=("/var/run/wireguard/$ifc.sock")
    ip netns exec "$hns" env WG_PROCESS_FOREGROUND=1 wireguard-go "$ifc" >"$TOPO_DIR/wg$n.log" 2>&1 </dev/null &
    WG_PID[$n]=$!
    TOPO_PIDS+=("$!")
    topo_poll 5 test -S "/var/run/wireguard/$ifc.sock" || return 1
  fi
  ip netns exec "$hns" wg set "$ifc" private-key "$TOPO_DIR/wg$n.key" listen-port 51820 \
    peer "$(cat "$TOPO_DIR/wg$m.pub")" allowed-ips "${TOPO_VIP[$m]}/32" endpoint "[${TOPO_PIP[$m]}]:51820" || return 1
  ip -n "$hns" link set "$ifc" netns "$vns" || return 1
  ip -n "$vns" addr add "${TOPO_VIP_CIDR[$n]}" dev "$ifc" || return 1
  ip -n "$vns" link set "$ifc" mtu 1500 up
}

path_wg() {
  local kind
  kind=$(wg_kind)
  if [[ -z $kind ]]; then
    echo "== wg: skipped (no WireGuard in this kernel and no wireguard-go, or no wg)" >&2
    printf 'wireguard\t-\tskipped: no kernel module, no wireguard-go\t-\t-\t-\n' >>"$RESULTS"
    return 0
  fi
  echo "== wg: vm1 -> vm2 through WireGuard ($kind)" >&2
  declare -g -A WG_PID=()
  local n
  (umask 077 && for n in 1 2; do wg genkey >"$TOPO_DIR/wg$n.key" && wg pubkey <"$TOPO_DIR/wg$n.key" >"$TOPO_DIR/wg$n.pub"; done)
  wg_make 1 "$kind" || die "setting up WireGuard ($kind) failed: $(cat "$TOPO_DIR"/wg*.log 2>/dev/null)"
  wg_make 2 "$kind" ||
    die "setting up WireGuard ($kind) failed: $(cat "$TOPO_DIR"/wg*.log 2>/dev/null)"
  timeout 20 ip netns exec "$(topo_ns vm1)" ping -c 3 -i 0.2 -W 2 "${TOPO_VIP[2]}" >/dev/null || die "no ping through WireGuard"
  local label="WireGuard (kernel)" pids=""
  if [[ $kind == wireguard-go ]]; then
    label="wireguard-go $(wireguard-go --version 2>/dev/null | head -n 1 | awk '{ print $2 }')"
    pids="wg1:${WG_PID[1]} wg2:${WG_PID[2]}"
  fi
  run_suite "$label" vm2 vm1 "${TOPO_VIP[2]}" "$pids"
}

# ----- the run -----
topo_create 2>/dev/null || die "building the namespaces failed"
echo "machine: $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); iperf3 -t $DURATION" >&2
want wire && path_wire
if want psp; then
  topo_write_configs
  for w in $WORKERS; do path_psp "$w"; done
fi
want wg && path_wg

{
  printf '\n%-30s %-17s %7s  %-32s %6s  %s\n' PATH TEST Gbit/s "RETR / LOSS" "CPU" "TUNNEL PROCESSES: CPU (busiest thread), 100% = 1 core"
  while IFS=$'\t' read -r path test rate extra busy threads; do
    printf '%-30s %-17s %7s  %-32s %6s  %s\n' "$path" "$test" "$rate" "$extra" "$busy" "$threads"
  done <"$RESULTS"
  printf '\nGbit/s: received; CPU: the whole machine busy over the test (%s CPUs); machine load at the end: %s\n' \
    "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
}
