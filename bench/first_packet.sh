#!/usr/bin/env bash
# First-packet latency through two psp-gateway processes (issue 7 §5: "first packet through a new tunnel
# <= 5 ms including the exchange on an idle machine").
#
#   bench/first_packet.sh [--bin-dir DIR] [--tunnels N] [--idle SECONDS] [-- GATEWAY FLAGS...]
#
# Topology: scripts/lib/topology.sh, outer IPv4, inner IPv4, mutual TLS (vm1 -- host1 ==wire== host2 -- vm2).
# vm2 holds N VIPs (10.0.0.2 ...), each a session of its own toward vm1's 10.0.0.1; both VMs have the
# other side's addresses in their neighbour tables beforehand, so a ping's round trip is the tunnel's alone.
# After both gateways are up and have connected their channels, vm1 pings each of vm2's VIPs once, with
# --idle seconds (default 0.5) of quiet in between: each ping is the first packet of a new tunnel, held on
# host1 while the key exchange runs, and its round trip (ping's own figure) includes the exchange.
# Reported: the first tunnel of the processes' lives, then the median, p90 and max over all N. Needs root.
# Every namespace, process and file it made is removed on exit.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

BIN_DIR="$REPO/build/bin"
TUNNELS=20
IDLE=0.5
GW_FLAGS=()
while (($#)); do
  case "$1" in
    --bin-dir) BIN_DIR=$2; shift 2 ;;
    --tunnels) TUNNELS=$2; shift 2 ;;
    --idle) IDLE=$2; shift 2 ;;
    --) shift; GW_FLAGS=("$@"); break ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--bin-dir DIR] [--tunnels N] [--idle S] [-- GATEWAY FLAGS...]" >&2; exit 2 ;;
  esac
done
((TUNNELS >= 1 && TUNNELS <= 200)) || { echo "first_packet: --tunnels takes 1..200" >&2; exit 2; }

# shellcheck source=scripts/lib/topology.sh
source "$REPO/scripts/lib/topology.sh"
die() { echo "first_packet: $*" >&2; exit 1; }
why=$(topo_preflight)
[[ -z $why ]] || die "$why"
for tool in python3 ping timeout; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
export TOPO_BIN_DIR=$BIN_DIR
topo_init --outer ipv4 --inner ipv4 || exit 2
[[ -x $TOPO_GATEWAY ]] || die "no gateway at $TOPO_GATEWAY (scripts/build.sh, or --bin-dir)"
trap topo_teardown EXIT
trap 'exit 1' INT TERM

# vm2's VIPs: 10.0.0.2 .. 10.0.0.(N+1).
VIPS=()
for ((i = 0; i < TUNNELS; i++)); do VIPS+=("10.0.0.$((i + 2))"); done
list() {
  local out="" a
  for a in "$@"; do out+="${out:+, }\"$a\""; done
  printf '[%s]' "$out"
}
sessions2() {
  local out="" v
  for v in "${VIPS[@]}"; do out+="${out:+, }{ \"local-vip\": \"$v\", \"remote-vips\": [\"10.0.0.1\"] }"; done
  printf '[%s]' "$out"
}
write_config() { # N SESSIONS
  local n=$1 m=$((3 - $1))
  printf '{ "config": { "local-grpc-address": "%s", "local-pip": "%s" },\n  "peers": [ { "remote-grpc-address": "%s", "sessions": %s } ] }\n' \
    "${TOPO_GRPC[$n]}" "${TOPO_PIP[$n]}" "${TOPO_GRPC[$m]}" "$2" >"${TOPO_CFG[$n]}"
}

topo_create || die "building the namespaces failed"
write_config 1 "[ { \"local-vip\": \"10.0.0.1\", \"remote-vips\": $(list "${VIPS[@]}") } ]"
write_config 2 "$(sessions2)"
topo_start_gateway 1 "${GW_FLAGS[@]}"
topo_start_gateway 2 "${GW_FLAGS[@]}"
topo_wait_ready 1 || die "gateway 1 did not come up: $(tail -5 "${TOPO_LOG[1]}")"
topo_wait_ready 2 || die "gateway 2 did not come up: $(tail -5 "${TOPO_LOG[2]}")"
topo_attach_vm 1 || die "attaching vm1"
topo_attach_vm 2 || die "attaching vm2"
for v in "${VIPS[@]:1}"; do topo_exec vm2 ip addr add "$v/24" dev "${TOPO_TAP[2]}" || die "adding $v to vm2"; done

# Neighbour entries ahead, so that no ARP adds to the first round trip: the MAC each gateway answers ARP
# with on its first host port when the config names none (gateway.cpp, default_gateway_mac).
GW_MAC=02:50:53:50:00:01
for v in "${VIPS[@]}"; do topo_exec vm1 ip neigh replace "$v" lladdr $GW_MAC dev "${TOPO_TAP[1]}" nud permanent; done
topo_exec vm2 ip neigh replace 10.0.0.1 lladdr $GW_MAC dev "${TOPO_TAP[2]}" nud permanent

sleep 1 # both gateways idle, their channels to each other connected ahead
times=()
for v in "${VIPS[@]}"; do
  out=$(topo_exec vm1 timeout 5 ping -c 1 -W 3 "$v" 2>&1)
  t=$(sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' <<<"$out")
  [[ -n $t ]] || die "no reply from $v through a new tunnel:
$out
$(tail -20 "${TOPO_LOG[1]}")"
  times+=("$t")
  sleep "$IDLE"
done
python3 - "${times[@]}" <<'EOF'
import sys
t = [float(x) for x in sys.argv[1:]]
s = sorted(t)
print(f"first packet through a new tunnel, two gateway processes, {len(t)} tunnels: "
      f"first of the processes' lives {t[0]:.2f} ms; median {s[len(s) // 2]:.2f} ms, "
      f"p90 {s[min(len(s) - 1, len(s) * 9 // 10)]:.2f} ms, max {s[-1]:.2f} ms")
print("all (ms):", " ".join(f"{x:.2f}" for x in t))
EOF
