#!/usr/bin/env bash
# End-to-end test of fleet mode (issue 11; README "Fleet mode"): three psp-gateway hosts whose JSON lists
# NO peers; each registers its record in etcd and learns the others' VIPs from the store. etcd members run
# in a fabric namespace that also bridges the hosts' wires. Reuses scripts/lib/topology.sh's helpers
# (namespaces named per run, bounded polls, teardown of every process and namespace).
#
#   vm1 ~ host1 [gw] ---+                 fabric: bridge 192.168.200.254, etcd members :12379 :22379 :32379
#   vm2 ~ host2 [gw] ---+--- br0 (fabric)
#   vm3 ~ host3 [gw] ---+                 host3 also has port psp2b (vm2b: where vm2 migrates to)
#
#   fleet_e2e.sh [--case cluster|migrate|etcd-down|rbac] [--bin-dir DIR]
#
# Cases (one ctest test each, tests/e2e/CMakeLists.txt):
#   cluster    three etcd members; vm1, vm2, vm3 reach each other through PSP; one member killed: pings go on
#              and a VM that comes up afterwards (vm2b's VIP registered by host3) is reachable too.
#   migrate    vm2's VIP moves from host2 to host3 (host2 drops it, host3 adds it: both reloaded): vm1's
#              pings are answered by the new host within 2 s of the change.
#   etcd-down  every member stopped: existing tunnels carry pings, `pspctl status` says the store is
#              unreachable; members back: host3 (started meanwhile) registers and vm3 is reachable.
#   (FLEET_E2E_SHOW=1: the migrate case also prints the store's records and host1's status; the demo's.)
#   rbac       etcd with client certificates and RBAC roles (README): host1's certificate may write
#              /psp-gateway/hosts/host1 only; a gateway with host1's certificate claiming to be host2 is
#              refused by etcd and no host2 record appears.
#
# Exit: 0 pass, 1 a check failed ("FAIL [case/check]: ..."), 77 skipped (not root, no netns, no etcd).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CASE=cluster

while (($#)); do
  case "$1" in
    --case) CASE=$2; shift 2 ;;
    --bin-dir) export TOPO_BIN_DIR=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--case cluster|migrate|etcd-down|rbac] [--bin-dir DIR]" >&2; exit 2 ;;
  esac
done

# shellcheck source=scripts/lib/topology.sh
source "$REPO/scripts/lib/topology.sh"

why=$(topo_preflight)
if [[ -n $why ]]; then echo "SKIP: $why"; exit 77; fi
command -v etcd >/dev/null && command -v etcdctl >/dev/null || { echo "SKIP: no etcd/etcdctl (etcd-server, etcd-client)"; exit 77; }
topo_init --outer ipv4 --inner ipv4 || exit 1
for b in "$TOPO_GATEWAY" "$TOPO_PSPCTL"; do
  [[ -x $b ]] || { echo "SKIP: $b not built"; exit 77; }
done

FAILED=0
fail() {
  echo "FAIL [$CASE/$1]: $2" >&2
  FAILED=1
}
pass() { echo "PASS [$CASE/$1]: ${*:2}"; }
on_exit() {
  local rc=$?
  if ((FAILED || rc)); then
    local f
    for f in "$TOPO_DIR"/host*.log "$TOPO_DIR"/etcd*.log; do
      [[ -f $f ]] || continue
      printf '\n----- %s (last 40 lines) -----\n' "$f" >&2
      tail -n 40 "$f" >&2
    done
  fi
  topo_teardown
  ((FAILED)) && exit 1
  exit "$rc"
}
trap on_exit EXIT

FABRIC_IP=192.168.200.254
declare -A ETCD_PID ETCD_PORT
ETCD_PORT[0]=12379 ETCD_PORT[1]=22379 ETCD_PORT[2]=32379
ETCD_MEMBERS=1
ETCD_TLS=()   # server flags when the case uses client certificates
ETCD_SCHEME=http
GW_CERT=()    # x-sw.etcd TLS keys (JSON text) per host, rbac case

host_ip() { printf '192.168.200.%s' "$1"; }
vip() { printf '10.0.0.%s' "$1"; }

fabric_create() {
  topo_reap_stale
  local ns role
  for role in fabric host1 host2 host3 vm1 vm2 vm3 vm2b; do
    ns=$(topo_ns "$role")
    ip netns add "$ns" || return 1
    TOPO_CREATED+=("$ns")
    ip -n "$ns" link set lo up
  done
  local f
  f=$(topo_ns fabric)
  ip -n "$f" link add br0 type bridge || return 1
  ip -n "$f" addr add "$FABRIC_IP/24" dev br0
  ip -n "$f" link set br0 up
  local n h
  for n in 1 2 3; do
    h=$(topo_ns "host$n")
    ip link add "wire$n" netns "$h" type veth peer name "port$n" netns "$f" || return 1
    ip -n "$f" link set "port$n" master br0 up
    ip -n "$h" addr add "$(host_ip "$n")/24" dev "wire$n"
    ip -n "$h" link set "wire$n" up
    ip netns exec "$h" sysctl -qw net.ipv4.ip_forward=0
  done
  topo_poll 5 topo_exec host1 ping -c1 -W1 "$FABRIC_IP" >/dev/null || return 1
}

etcd_urls() {
  local i out=""
  for ((i = 0; i < ETCD_MEMBERS; i++)); do out+="${out:+,}$ETCD_SCHEME://$FABRIC_IP:${ETCD_PORT[$i]}"; done
  printf '%s' "$out"
}

etcd_start() {  # etcd_start I [existing]
  local i=$1 state=${2:-new} cluster="" j
  for ((j = 0; j < ETCD_MEMBERS; j++)); do
    cluster+="${cluster:+,}m$j=http://$FABRIC_IP:$((ETCD_PORT[$j] + 1))"
  done
  local url="$ETCD_SCHEME://$FABRIC_IP:${ETCD_PORT[$i]}"
  ip netns exec "$(topo_ns fabric)" etcd --name "m$i" --data-dir "$TOPO_DIR/etcd$i" \
    --listen-client-urls "$url" --advertise-client-urls "$url" \
    --listen-peer-urls "http://$FABRIC_IP:$((ETCD_PORT[$i] + 1))" \
    --initial-advertise-peer-urls "http://$FABRIC_IP:$((ETCD_PORT[$i] + 1))" \
    --initial-cluster "$cluster" --initial-cluster-state "$state" --initial-cluster-token "$TOPO_PREFIX" \
    --heartbeat-interval 50 --election-timeout 500 "${ETCD_TLS[@]}" >>"$TOPO_DIR/etcd$i.log" 2>&1 </dev/null &
  ETCD_PID[$i]=$!
  TOPO_PIDS+=("$!")
}

ctl() {  # etcdctl against the cluster (as root in the rbac case)
  ip netns exec "$(topo_ns fabric)" env ETCDCTL_API=3 timeout 10 etcdctl --endpoints "$(etcd_urls)" "${CTL_TLS[@]}" "$@"
}
CTL_TLS=()

etcd_up() {
  local i
  for ((i = 0; i < ETCD_MEMBERS; i++)); do etcd_start "$i"; done
  topo_poll 20 ctl endpoint health >/dev/null 2>&1 || { fail etcd "the etcd cluster did not become healthy"; exit 1; }
}

etcd_kill() {
  kill -KILL "${ETCD_PID[$1]}" 2>/dev/null
  wait "${ETCD_PID[$1]}" 2>/dev/null
}

# write_config N "VIPs of psp$N" ["VIPs of psp2b"] [host name]: no peers, only host ports and x-sw.etcd.
write_config() {
  local n=$1 vips=$2 vips2b=${3-} name ports
  name=${4:-host$n}
  ports="{\"name\": \"psp$n\", \"local-vips\": [$vips]}"
  ((n == 3)) && ports+=", {\"name\": \"psp2b\", \"local-vips\": [$vips2b]}"
  cat >"$TOPO_DIR/host$n.json" <<JSON
{ "config": { "local-grpc-address": "$(host_ip "$n"):3000", "local-pip": "$(host_ip "$n")" },
  "peers": [],
  "x-sw": { "host-ports": [ $ports ], "uplink-mtu": 1500,
            "etcd": { "endpoints": [$(etcd_urls | sed 's/[^,]*/"&"/g')], "host": "$name" ${GW_CERT[$n]:-} } } }
JSON
}

start_gw() {
  local n=$1
  TOPO_CFG[$n]="$TOPO_DIR/host$n.json" TOPO_LOG[$n]="$TOPO_DIR/host$n.log" TOPO_SOCK[$n]="$TOPO_DIR/host$n.sock"
  TOPO_TAP[$n]="psp$n"
  ip netns exec "$(topo_ns "host$n")" "$TOPO_GATEWAY" -c "${TOPO_CFG[$n]}" -d "psp$n" --admin-socket "${TOPO_SOCK[$n]}" \
    --outer-ip-type ipv4 --inner-ip-type ipv4 --grpc-insecure >>"${TOPO_LOG[$n]}" 2>&1 </dev/null &
  TOPO_GW_PID[$n]=$!
  TOPO_PIDS+=("$!")
  topo_poll 15 test -S "${TOPO_SOCK[$n]}" || { fail start "gateway $n did not start"; exit 1; }
}

attach() {  # attach HOST TAP VM VIP
  local h v
  h=$(topo_ns "host$1") v=$(topo_ns "$3")
  topo_poll 5 ip -n "$h" link show "$2" >/dev/null 2>&1 || { fail attach "no $2 in host$1"; exit 1; }
  ip -n "$h" link set "$2" netns "$v" && ip -n "$v" addr add "$4/24" dev "$2" && ip -n "$v" link set "$2" up
}

pings() {  # pings VM DST [COUNT]: all answered
  topo_exec "$1" ping -c "${3:-3}" -i 0.1 -W 1 "$2" >/dev/null 2>&1
}

fleet_is() { [[ $(fleet_field "$1" "$2") == "$3" ]]; }  # fleet_is N KEY VALUE

reaches() { topo_exec "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1; }

fleet_field() {  # fleet_field N KEY: pspctl status's fleet.KEY
  "$TOPO_PSPCTL" -s "${TOPO_SOCK[$1]}" --json status 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['fleet']['$2'])"
}

three_gateways() {
  local n
  write_config 1 "\"$(vip 1)\""
  write_config 2 "\"$(vip 2)\""
  write_config 3 "\"$(vip 3)\""
  for n in 1 2 3; do start_gw "$n"; done
  attach 1 psp1 vm1 "$(vip 1)"
  attach 2 psp2 vm2 "$(vip 2)"
  attach 3 psp3 vm3 "$(vip 3)"
  attach 3 psp2b vm2b "$(vip 2)"
  ip -n "$(topo_ns vm2b)" link set psp2b down  # vm2's twin on host3 sleeps until the migration
}

case_cluster() {
  ETCD_MEMBERS=3
  etcd_up
  three_gateways
  topo_poll 10 reaches vm1 "$(vip 2)" || fail first "vm1 cannot reach vm2 through the fleet"
  pings vm1 "$(vip 3)" && pings vm2 "$(vip 3)" && pings vm3 "$(vip 1)" || fail mesh "not every pair reaches the other"
  [[ $(fleet_field 1 directory_hosts) == 3 ]] || fail directory "host1's directory does not hold 3 hosts"
  pass mesh "three gateways without peer lists reach each other"
  etcd_kill 0
  pings vm1 "$(vip 2)" 10 && pings vm3 "$(vip 2)" 5 || fail member-killed "pings lost after one member died"
  # After the member's death, a change still propagates: host2 adds a VIP (10.0.0.12 on vm2).
  write_config 2 "\"$(vip 2)\", \"10.0.0.12\""
  ip -n "$(topo_ns vm2)" addr add 10.0.0.12/24 dev psp2
  kill -HUP "${TOPO_GW_PID[2]}"
  topo_poll 10 reaches vm1 10.0.0.12 || fail member-killed "a VIP registered after the member died is not reachable"
  ((FAILED)) || pass member-killed "pings go on with one etcd member dead; new VIPs still propagate"
}

case_migrate() {
  etcd_up
  three_gateways
  topo_poll 10 reaches vm1 "$(vip 2)" || fail first "vm1 cannot reach vm2"
  if [[ ${FLEET_E2E_SHOW:-0} == 1 ]]; then  # scripts/demo.sh: what the store and a gateway hold
    echo "-- the store: one record per host (etcdctl get --prefix /psp-gateway/)"
    ctl get --prefix /psp-gateway/ --print-value-only | sed 's/^/   /'
    echo "-- host1: pspctl status (fleet part), then its tunnels"
    "$TOPO_PSPCTL" -s "${TOPO_SOCK[1]}" --json status | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["fleet"]))' | sed 's/^/   /'
    "$TOPO_PSPCTL" -s "${TOPO_SOCK[1]}" tunnels | sed 's/^/   /'
    echo "-- vm2 (10.0.0.2) migrates from host2 to host3: both hosts reload, their records change"
  fi
  # The migration: vm2 stops on host2, its twin on host3 comes up; both hosts' records change.
  ip -n "$(topo_ns vm2)" link set psp2 down
  ip -n "$(topo_ns vm2b)" link set psp2b up
  write_config 2 ""
  write_config 3 "\"$(vip 3)\"" "\"$(vip 2)\""
  local t0=$SECONDS ms0
  ms0=$(date +%s%N)
  kill -HUP "${TOPO_GW_PID[2]}" "${TOPO_GW_PID[3]}"
  if topo_poll 2 reaches vm1 "$(vip 2)"; then
    pass moved "vm1 reaches vm2 on host3 $(( ($(date +%s%N) - ms0) / 1000000 )) ms after the change"
  else
    fail moved "no answer from vm2 on host3 within 2 s"
  fi
  : "$t0"
  # The answer came from host3's vm2b, never from the stopped vm2 on host2.
  local rx
  rx=$(ip -n "$(topo_ns vm2b)" -s link show psp2b | awk '/RX:/{getline; print $2; exit}')
  ((rx > 0)) || fail moved "vm2b received nothing"
}

case_etcd_down() {
  etcd_up
  write_config 1 "\"$(vip 1)\""
  write_config 2 "\"$(vip 2)\""
  write_config 3 "\"$(vip 3)\""
  start_gw 1; start_gw 2
  attach 1 psp1 vm1 "$(vip 1)"
  attach 2 psp2 vm2 "$(vip 2)"
  topo_poll 10 reaches vm1 "$(vip 2)" || fail first "vm1 cannot reach vm2"
  etcd_kill 0
  topo_poll 10 fleet_is 1 store unreachable || fail store-state "pspctl status does not say unreachable"
  pings vm1 "$(vip 2)" 20 || fail store-down "pings lost while etcd is down"
  ((FAILED)) || pass store-down "20/20 pings on the existing tunnel with etcd down, status: unreachable"
  start_gw 3  # registers once the store is back
  attach 3 psp3 vm3 "$(vip 3)"
  etcd_start 0 existing
  topo_poll 10 fleet_is 1 store connected || fail back "host1 does not reconnect"
  topo_poll 10 reaches vm1 "$(vip 3)" || fail back "vm3, registered after the store returned, is not reachable"
  ((FAILED)) || pass back "store back: host1 caught up and reaches vm3"
}

registered() { [[ $(ctl get "/psp-gateway/hosts/$1" --print-value-only) == "{"* ]]; }

case_rbac() {
  local certs=$TOPO_DIR/tls
  bash "$REPO/scripts/make-certs.sh" "$certs" ca
  bash "$REPO/scripts/make-certs.sh" "$certs" host etcd "IP:$FABRIC_IP"
  bash "$REPO/scripts/make-certs.sh" "$certs" host root "DNS:root"
  bash "$REPO/scripts/make-certs.sh" "$certs" host host1 "DNS:host1"
  ETCD_SCHEME=https
  ETCD_TLS=(--client-cert-auth --trusted-ca-file "$certs/ca.crt" --cert-file "$certs/etcd.crt" --key-file "$certs/etcd.key")
  CTL_TLS=(--cacert "$certs/ca.crt" --cert "$certs/root.crt" --key "$certs/root.key")
  etcd_up
  # README "Fleet mode: RBAC": one role per host, its own key read-write, the prefix read-only.
  ctl user add root --no-password >/dev/null && ctl role add root >/dev/null && ctl user grant-role root root >/dev/null &&
    ctl role add psp-host1 >/dev/null &&
    ctl role grant-permission psp-host1 readwrite /psp-gateway/hosts/host1 >/dev/null &&
    ctl role grant-permission psp-host1 read /psp-gateway/ --prefix >/dev/null &&
    ctl user add host1 --no-password >/dev/null && ctl user grant-role host1 psp-host1 >/dev/null &&
    ctl auth enable >/dev/null || { fail setup "etcdctl role set-up failed"; return; }
  GW_CERT[1]=", \"cert\": \"$certs/host1.crt\", \"key\": \"$certs/host1.key\", \"ca\": \"$certs/ca.crt\""
  GW_CERT[2]=${GW_CERT[1]}
  write_config 1 "\"$(vip 1)\""
  write_config 2 "\"$(vip 2)\"" "" host2  # host2's record, but host1's certificate
  start_gw 1; start_gw 2
  topo_poll 10 registered host1 ||
    fail own "host1 could not register its own record"
  topo_poll 10 grep -q "permission denied" "${TOPO_LOG[2]}" || fail other "the impostor was not refused"
  [[ -z $(ctl get /psp-gateway/hosts/host2 --print-value-only) ]] || fail other "a host2 record appeared"
  ((FAILED)) || pass rbac "host1's certificate writes hosts/host1; writing hosts/host2 is refused by etcd"
}

fabric_create || { fail setup "fabric"; exit 1; }
case "$CASE" in
  cluster) case_cluster ;;
  migrate) case_migrate ;;
  etcd-down) case_etcd_down ;;
  rbac) case_rbac ;;
  *) echo "unknown case $CASE" >&2; exit 2 ;;
esac
