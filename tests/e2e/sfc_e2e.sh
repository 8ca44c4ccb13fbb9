#!/usr/bin/env bash
# End-to-end test of service chaining (issue 8): the two-host topology of gateway_e2e.sh
# (scripts/lib/topology.sh) where host2's gateway also has VNF ports (x-sw.host-ports[].role "vnf"). Each
# VNF is a namespace vnfN holding the TAPs fwNi / fwNo, joined by tests/e2e/sfc_tool.py's `vnf` (a raw-socket
# bump in the wire that logs every IP packet with a timestamp, and can drop a port or reflect).
#
#   vm1 ~ host1 [gw] ==PSP== [gw] host2 ~ vm2        host2's gw ~ fw1i [vnf1] fw1o ~ ... ~ fwNi [vnfN] fwNo
#
#   sfc_e2e.sh [--case chain|lb|health|verbs|chain6|transport] [--bin-dir DIR]
#
# Cases (one ctest test each, tests/e2e/CMakeLists.txt):
#   chain   a 3-hop bi-directional entry-lport chain in front of vm2 (config x-sw.sfc): ping vm1 -> vm2 crosses
#           fw1, fw2, fw3 in order after decryption and the reply fw3, fw2, fw1 before encryption (the VNFs'
#           timestamps); fw2 drops TCP 7002: a transfer to 7002 fails while one to 5201 passes; per classifier,
#           hop and instance counters in `pspctl counters`; the chain pipes in the Mermaid dump.
#   lb      one hop of two instances: 24 UDP flows vm1 -> vm2 (echoed) all answered, spread over both, each
#           flow on one instance both ways.
#   health  hop 1 (fw1, fail-mode close) and hop 2 (fw2, fail-mode open), probes every 200 ms, 3 misses, 300 ms
#           timeout: fw2 stopped (SIGSTOP) -> out, pings bypass it; fw1 stopped -> out, pings dropped
#           (sfc_no_instance); both resumed -> back in, pings cross both again.
#   verbs   chains made at run time with `pspctl sfc`: a 1-hop chain on TCP added and removed while vm1
#           pings vm2 every 50 ms (ICMP: not lost); an overlapping classifier refused naming both; a VNF that
#           reflects packets: counted (SFC_HOP sfc_no_hop) and dropped, never looped.
#   chain6  IPv6 inside the tunnel: a 2-hop bi-directional chain (ip6) in front of vm2; pings vm1 -> vm2 are
#           answered, every instance counted data both ways and the classifier its return packets.
#   transport  the same 2-hop chain (ip4) with --mode transport (the VIPs are the hosts' own addresses).
#
# Exit: 0 pass, 1 a check failed ("FAIL [case/check]: ..."), 77 skipped (not root, no netns, no binaries).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TOOL="$HERE/sfc_tool.py"
E2E_TOOL="$HERE/e2e_tool.py"
CASE=chain

while (($#)); do
  case "$1" in
    --case) CASE=$2; shift 2 ;;
    --bin-dir) export TOPO_BIN_DIR=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--case chain|lb|health|verbs|chain6|transport] [--bin-dir DIR]" >&2; exit 2 ;;
  esac
done

# shellcheck source=scripts/lib/topology.sh
source "$REPO/scripts/lib/topology.sh"

why=$(topo_preflight)
if [[ -n $why ]]; then echo "SKIP: $why"; exit 77; fi
case $CASE in
  chain6) topo_init --outer ipv6 --inner ipv6 || exit 1 ;;
  transport) topo_init --outer ipv4 --inner ipv4 --mode transport || exit 1 ;;
  *) topo_init --outer ipv6 --inner ipv4 || exit 1 ;;
esac
for b in "$TOPO_GATEWAY" "$TOPO_PSPCTL"; do
  [[ -x $b ]] || { echo "SKIP: $b not built"; exit 77; }
done

FAILED=0
fail() {
  echo "FAIL [$CASE/$1]: $2" >&2
  FAILED=1
}
on_exit() {
  local rc=$?
  if ((FAILED || rc)); then
    topo_pspctl 2 sfc show >&2 2>&1 || true
    [[ -f $TOPO_DIR/vnf.log ]] && tail -n 40 "$TOPO_DIR/vnf.log" >&2
    topo_dump_logs 60
  fi
  topo_teardown
}
trap on_exit EXIT

case $CASE in
  chain) NVNF=3 ;;
  lb | health | chain6 | transport) NVNF=2 ;;
  verbs) NVNF=2 ;;
  *) echo "unknown case $CASE" >&2; exit 2 ;;
esac
VNF_LOG="$TOPO_DIR/vnf.log"
declare -A VNF_PID

# x-sw of host2: the workload port psp2 and the VNF ports; $1: the "sfc" object.
write_host2_xsw() {
  python3 - "${TOPO_CFG[2]}" "${TOPO_VIP[2]}" "$NVNF" "$1" <<'EOF'
import json, sys
path, vip, n, sfc = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
cfg = json.load(open(path))
ports = [{"name": "psp2", "local-vips": [vip]}]
for i in range(1, n + 1):
    ports += [{"name": f"fw{i}i", "role": "vnf"}, {"name": f"fw{i}o", "role": "vnf"}]
cfg["x-sw"] = {"host-ports": ports, "sfc": sfc}
json.dump(cfg, open(path, "w"), indent=2)
EOF
}

# vnfN: its TAPs moved in from host2 and up (no IPv6: no router or neighbour chatter), the forwarder started.
start_vnf() {
  local i=$1
  shift
  local ns h2
  ns=$(topo_ns "vnf$i") h2=$(topo_ns host2)
  _topo_sysctl "$ns" net.ipv6.conf.all.disable_ipv6=1
  _topo_sysctl "$ns" net.ipv6.conf.default.disable_ipv6=1
  local tap
  for tap in "fw${i}i" "fw${i}o"; do
    ip -n "$h2" link set "$tap" netns "$ns" || return 1
    _topo_sysctl "$ns" "net.ipv6.conf.$tap.disable_ipv6=1" # it was made in host2, with IPv6 on
    ip -n "$ns" link set "$tap" up || return 1
  done
  ip netns exec "$ns" python3 "$TOOL" vnf "fw${i}i" "fw${i}o" --name "fw$i" --log "$VNF_LOG" \
    --ready "$TOPO_DIR/vnf$i.ready" "$@" </dev/null >>"$TOPO_DIR/vnf$i.out" 2>&1 &
  VNF_PID[$i]=$!
  TOPO_PIDS+=("$!")
  topo_poll 20 test -f "$TOPO_DIR/vnf$i.ready" # python3 starting beside a loaded machine
}

setup() {
  TOPO_ROLES=(host1 host2 vm1 vm2)
  local i
  for ((i = 1; i <= NVNF; i++)); do TOPO_ROLES+=("vnf$i"); done
  topo_create || return 1
  topo_write_configs || return 1
  write_host2_xsw "$1" || return 1
  topo_start_gateway 1 && topo_start_gateway 2 || return 1
  topo_wait_ready 1 && topo_wait_ready 2 || return 1
  topo_attach_vm 1 && topo_attach_vm 2 || return 1
}

counters() { topo_pspctl 2 --json counters; }
dead_count() { topo_pspctl 2 --json sfc show | grep -c '"live": false'; }
# Probes start with the gateway, before the VNFs: wait until every instance answered one.
dead_is() { [[ $(dead_count) == "$1" ]]; }
live_is() { [[ $(live_of "$1") == "$2" ]]; }
wait_live() { topo_poll 20 dead_is 0 || fail setup "instances not live 20 s after their VNFs started"; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }
pings() { topo_exec vm1 ping -c "$1" -i "${2:-0.2}" -W 1 "${TOPO_VIP[2]}" 2>/dev/null | sed -n 's/.* \([0-9]*\) received.*/\1/p'; }
live_of() { topo_pspctl 2 --json sfc show | jget "[i['live'] for i in d['counters']['instances'] if i['pair']=='$1'][0]"; }

pair_json() { printf '{"name": "fw%s", "in": "fw%si", "out": "fw%so"}' "$1" "$1" "$1"; }

case_chain() {
  local sfc
  sfc=$(printf '{"pairs": [%s, %s, %s], "chains": [{"name": "pc1", "groups": [
    {"name": "pg1", "pairs": ["fw1"]}, {"name": "pg2", "pairs": ["fw2"]}, {"name": "pg3", "pairs": ["fw3"]}]}],
    "classifiers": [{"name": "c1", "chain": "pc1", "port": "psp2", "direction": "entry-lport",
                     "bi-directional": true, "match": "ip4"}],
    "health": {"interval-ms": 1000, "misses": 5, "timeout-ms": 1000}}' "$(pair_json 1)" "$(pair_json 2)" "$(pair_json 3)")
  setup "$sfc" || { fail setup "topology or gateways did not come up"; return; }
  start_vnf 1 && start_vnf 2 --drop-tcp-port 7002 && start_vnf 3 || { fail setup "VNFs did not start"; return; }
  wait_live

  local got
  got=$(pings 5)
  ((${got:-0} >= 4)) || fail ping "vm1 -> vm2 through 3 VNFs: ${got:-0} of 5 replies"
  python3 "$TOOL" order "$VNF_LOG" "fw1+,fw2+,fw3+,fw3-,fw2-,fw1-" --proto 1 ||
    fail order "echo requests must cross fw1, fw2, fw3 and the replies fw3, fw2, fw1"

  topo_exec vm2 python3 "$E2E_TOOL" transfer-server --bind "${TOPO_VIP[2]}" --port 5201 \
    --out "$TOPO_DIR/t5201" --ready "$TOPO_DIR/t5201.ready" --timeout 20 &
  TOPO_PIDS+=("$!")
  topo_exec vm2 python3 "$E2E_TOOL" transfer-server --bind "${TOPO_VIP[2]}" --port 7002 \
    --out "$TOPO_DIR/t7002" --ready "$TOPO_DIR/t7002.ready" --timeout 20 &
  TOPO_PIDS+=("$!")
  topo_poll 10 test -f "$TOPO_DIR/t5201.ready" -a -f "$TOPO_DIR/t7002.ready" || fail tcp "the TCP servers did not start"
  topo_exec vm1 timeout 15 python3 "$E2E_TOOL" transfer-client --host "${TOPO_VIP[2]}" --port 5201 \
    --size $((256 << 10)) --marker SFC --timeout 10 >/dev/null ||
    fail tcp "a TCP transfer to 5201 through the chain failed"
  if topo_exec vm1 timeout 4 python3 "$E2E_TOOL" transfer-client --host "${TOPO_VIP[2]}" --port 7002 \
    --size 4096 --marker SFC --timeout 3 >/dev/null 2>&1; then
    fail drop "TCP 7002 reached vm2 although fw2 drops it"
  fi

  local c
  c=$(counters)
  [[ $(jget "d['sfc']['classifiers'][0]['packets'] > 0 and d['sfc']['classifiers'][0]['return_packets'] > 0" <<<"$c") == True ]] ||
    fail counters "classifier c1 counted no packets (or no return packets)"
  [[ $(jget "all(h['packets'] > 0 for h in d['sfc']['hops']) and len(d['sfc']['hops']) == 3" <<<"$c") == True ]] ||
    fail counters "not every hop counted packets"
  [[ $(jget "all(i['in_tx'] > 0 and i['out_rx'] > 0 and i['live'] for i in d['sfc']['instances'])" <<<"$c") == True ]] ||
    fail counters "not every instance counted packets both ways, or one is not live"
  local dump
  dump=$(topo_pspctl 2 pipeline --format mermaid)
  for p in SFC_ENTRY SFC_EXIT SFC_HOP; do
    grep -q "$p" <<<"$dump" || fail dump "the Mermaid dump has no $p"
  done
}

# chain6 / transport: a 2-hop bi-directional chain of MATCH $1; pings answered, data counted both ways.
two_hops_both_ways() {
  local sfc got c
  sfc=$(printf '{"pairs": [%s, %s], "chains": [{"name": "pc1", "groups": [
    {"name": "pg1", "pairs": ["fw1"]}, {"name": "pg2", "pairs": ["fw2"]}]}],
    "classifiers": [{"name": "c1", "chain": "pc1", "port": "psp2", "direction": "entry-lport",
                     "bi-directional": true, "match": "%s"}],
    "health": {"interval-ms": 1000, "misses": 5, "timeout-ms": 1000}}' "$(pair_json 1)" "$(pair_json 2)" "$1")
  setup "$sfc" || { fail setup "topology or gateways did not come up"; return; }
  start_vnf 1 && start_vnf 2 || { fail setup "VNFs did not start"; return; }
  wait_live
  got=$(pings 5)
  ((${got:-0} >= 4)) || fail ping "vm1 -> vm2 (${TOPO_VIP[2]}) through 2 VNFs: ${got:-0} of 5 replies"
  c=$(counters)
  [[ $(jget "d['sfc']['classifiers'][0]['packets'] >= 4 and d['sfc']['classifiers'][0]['return_packets'] >= 4" <<<"$c") == True ]] ||
    fail counters "classifier c1: too few packets or return packets: $(jget "d['sfc']['classifiers']" <<<"$c")"
  [[ $(jget "all(i['in_tx'] >= 4 and i['out_rx'] >= 4 and i['out_tx'] >= 4 and i['in_rx'] >= 4 for i in d['sfc']['instances'])" <<<"$c") == True ]] ||
    fail counters "not every instance counted data both ways: $(jget "d['sfc']['instances']" <<<"$c")"
  ((FAILED)) || echo "PASS [$CASE]: $got of 5 pings vm1 -> ${TOPO_VIP[2]} through fw1, fw2 both ways"
}
case_chain6() { two_hops_both_ways "ip6"; }
case_transport() { two_hops_both_ways "ip4"; }

case_lb() {
  local sfc
  sfc=$(printf '{"pairs": [%s, %s], "chains": [{"name": "pc1", "groups": [{"name": "pg1", "pairs": ["fw1", "fw2"]}]}],
    "classifiers": [{"name": "c1", "chain": "pc1", "port": "psp2", "direction": "entry-lport",
                     "bi-directional": true, "match": "udp.dst == 6000"}],
    "health": {"interval-ms": 1000, "misses": 5, "timeout-ms": 1000}}' "$(pair_json 1)" "$(pair_json 2)")
  setup "$sfc" || { fail setup "topology or gateways did not come up"; return; }
  start_vnf 1 && start_vnf 2 || { fail setup "VNFs did not start"; return; }
  wait_live
  topo_exec vm2 python3 "$TOOL" udp-echo --bind "${TOPO_VIP[2]}" --port 6000 --duration 60 \
    --ready "$TOPO_DIR/echo.ready" &
  TOPO_PIDS+=("$!")
  topo_poll 10 test -f "$TOPO_DIR/echo.ready" || fail setup "the UDP echo did not start"
  pings 2 >/dev/null # the tunnel
  local answered used
  answered=$(topo_exec vm1 python3 "$TOOL" udp-flows --host "${TOPO_VIP[2]}" --port 6000 --flows 24)
  [[ $answered == 24 ]] || fail flows "${answered:-0} of 24 UDP flows echoed through the group"
  used=$(python3 "$TOOL" sticky "$VNF_LOG" --port 6000) || fail sticky "a flow crossed two instances"
  [[ $used == "fw1 fw2" ]] || fail spread "24 flows used only '$used'"
}

case_health() {
  local sfc
  sfc=$(printf '{"pairs": [%s, %s], "chains": [{"name": "pc1", "groups": [
    {"name": "pg1", "fail-mode": "close", "pairs": ["fw1"]}, {"name": "pg2", "fail-mode": "open", "pairs": ["fw2"]}]}],
    "classifiers": [{"name": "c1", "chain": "pc1", "port": "psp2", "direction": "entry-lport",
                     "bi-directional": true, "match": "icmp4"}],
    "health": {"interval-ms": 200, "misses": 3, "timeout-ms": 300}}' "$(pair_json 1)" "$(pair_json 2)")
  setup "$sfc" || { fail setup "topology or gateways did not come up"; return; }
  start_vnf 1 && start_vnf 2 || { fail setup "VNFs did not start"; return; }
  wait_live
  local got t0
  got=$(pings 4)
  ((${got:-0} >= 3)) || fail ping "through both hops: ${got:-0} of 4"

  kill -STOP "${VNF_PID[2]}"
  t0=$(date +%s%N)
  topo_poll 5 live_is fw2 False || fail open-out "fw2 stopped but still live after 5 s"
  # When the gateway took it out: its log line's timestamp (wall clock, as t0).
  local line at
  line=$(grep "sfc: port pair fw2 out" "${TOPO_LOG[2]}" | tail -n 1)
  at=$(date -d "${line%% *}" +%s%N 2>/dev/null || echo 0)
  echo "fw2 out $(((at - t0) / 1000000)) ms after it stopped (configured: 200 ms x 3 misses + 300 ms timeout)"
  local before after
  before=$(python3 "$TOOL" count "$VNF_LOG" --name fw1)
  got=$(pings 3)
  ((${got:-0} == 3)) || fail open "fail-mode open: ${got:-0} of 3 pings bypassed the dead hop"
  after=$(python3 "$TOOL" count "$VNF_LOG" --name fw1)
  ((after > before)) || fail open "the bypassing pings did not cross fw1"

  kill -STOP "${VNF_PID[1]}"
  topo_poll 5 live_is fw1 False || fail close-out "fw1 stopped but still live after 5 s"
  got=$(pings 3)
  ((${got:-0} == 0)) || fail close "fail-mode close: ${got} of 3 pings got through a hop with no instance"
  [[ $(counters | jget "[p for p in d['pipes'] if p['name']=='SFC_ENTRY'][0].get('drop_reasons', {}).get('sfc_no_instance', 0) > 0") == True ]] ||
    fail close "SFC_ENTRY counted no sfc_no_instance drops"

  kill -CONT "${VNF_PID[1]}" "${VNF_PID[2]}"
  topo_poll 5 dead_is 0 || fail recover "the instances did not come back within 5 s"
  got=$(pings 3)
  ((${got:-0} == 3)) || fail recover "after recovery: ${got:-0} of 3 pings"
}

case_verbs() {
  # One probe per minute: the reflecting VNF stays in long enough to reflect.
  setup '{"health": {"interval-ms": 60000}}' || { fail setup "topology or gateways did not come up"; return; }
  start_vnf 1 && start_vnf 2 --reflect || { fail setup "VNFs did not start"; return; }
  pings 2 >/dev/null # the tunnel
  # 60 pings over 3 s while a chain on TCP is added and removed: ICMP is other traffic and loses nothing.
  topo_exec vm1 ping -c 60 -i 0.05 -W 1 "${TOPO_VIP[2]}" >"$TOPO_DIR/ping.out" 2>&1 &
  local ping_pid=$!
  local verbs=("pair-add fw1i fw1o fw1" "chain-add pc1" "group-add pc1 pg1 --fail-mode close" "group-pair-add pg1 fw1")
  local v
  for v in "${verbs[@]}"; do
    # shellcheck disable=SC2086  # the verb's words
    topo_pspctl 2 sfc $v >/dev/null || fail verbs "pspctl sfc $v failed"
  done
  topo_pspctl 2 sfc classifier-add pc1 psp2 entry-lport bi-directional c1 "tcp" >/dev/null ||
    fail verbs "classifier-add c1 failed"
  local err
  err=$(topo_pspctl 2 sfc classifier-add pc1 psp2 entry-lport uni-directional c2 "ip4 && tcp.dst == 80" 2>&1) &&
    fail overlap "an overlapping classifier was accepted"
  [[ $err == *c1* && $err == *c2* ]] || fail overlap "the refusal does not name both classifiers: $err"
  sleep 1
  topo_pspctl 2 sfc classifier-del c1 >/dev/null || fail verbs "classifier-del c1 failed"
  wait "$ping_pid"
  grep -q ' 0% packet loss' "$TOPO_DIR/ping.out" ||
    fail hitless "pings lost while a chain was added and removed: $(grep -o '[0-9.]*% packet loss' "$TOPO_DIR/ping.out")"

  # A 1-hop chain on UDP through fw1 (verbs), then a reflecting VNF (fw2) on TCP.
  topo_pspctl 2 sfc classifier-add pc1 psp2 entry-lport bi-directional c1 "udp" >/dev/null || fail verbs "re-add c1"
  topo_exec vm2 python3 "$TOOL" udp-echo --bind "${TOPO_VIP[2]}" --port 6000 --duration 30 \
    --ready "$TOPO_DIR/echo.ready" &
  TOPO_PIDS+=("$!")
  topo_poll 10 test -f "$TOPO_DIR/echo.ready" || fail setup "the UDP echo did not start"
  local answered
  answered=$(topo_exec vm1 python3 "$TOOL" udp-flows --host "${TOPO_VIP[2]}" --port 6000 --flows 4)
  [[ $answered == 4 ]] || fail one-hop "${answered:-0} of 4 UDP flows through the 1-hop chain"
  (($(python3 "$TOOL" count "$VNF_LOG" --name fw1) >= 8)) || fail one-hop "fw1 did not see the flows both ways"
  for v in "pair-add fw2i fw2o fw2" "chain-add pc2" "group-add pc2 pg2" "group-pair-add pg2 fw2"; do
    # shellcheck disable=SC2086
    topo_pspctl 2 sfc $v >/dev/null || fail verbs "pspctl sfc $v failed"
  done
  topo_pspctl 2 sfc classifier-add pc2 psp2 entry-lport uni-directional c3 "tcp" >/dev/null || fail verbs "c3"
  topo_exec vm1 timeout 3 python3 "$E2E_TOOL" transfer-client --host "${TOPO_VIP[2]}" --port 7003 \
    --size 1024 --marker SFC --timeout 2 >/dev/null 2>&1
  local hop_drops seen
  hop_drops=$(counters | jget "[p for p in d['pipes'] if p['name']=='SFC_HOP'][0].get('drop_reasons', {}).get('sfc_no_hop', 0)")
  seen=$(python3 "$TOOL" count "$VNF_LOG" --name fw2)
  ((hop_drops >= 1)) || fail reflect "a reflected packet was not counted as sfc_no_hop"
  ((seen >= 1 && seen <= hop_drops)) || fail reflect "fw2 saw $seen packets for $hop_drops reflected: a loop"
}

"case_$CASE"
if ((FAILED)); then exit 1; fi
echo "PASS [$CASE]"
