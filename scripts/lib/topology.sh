# shellcheck shell=bash disable=SC2034  # TOPO_* variables are for the callers
# The two-host topology of the end-to-end test and the demo, in network namespaces (sourced, not run).
#
#   vm1 [TAP1 VIP1] ~~ host1 [psp-gateway] [wire1 PIP1] ==== [wire2 PIP2] host2 [psp-gateway] ~~ [TAP2 VIP2] vm2
#
# Each gateway runs in its host's namespace and creates its TAP there (-d); the harness then moves the TAP
# into the workload's namespace (`ip link set TAP netns vmN`, the issue's container flow: the gateway keeps
# its fd and works through it). The wire is a veth pair carrying only what the hosts send: PSP over UDP/1000
# and the gRPC key exchange (TCP/3000). Configs are in DOCA's schema (shared/spec/doca-psp-gateway.md §3),
# one peer each way, one session VIPn -> VIPm.
#
# Transport mode (topo_init --mode transport): the gateway sends through the host's UDP socket, so a
# workload's addresses are its host's wire addresses (VIP == PIP): each VM gets its host's PIP as its VIP,
# the configs list local-vip = local-pip and remote-vips = the peer's PIP, and inner family = outer family.
#
# Usage (callers trap EXIT to topo_teardown; every function is bounded in time):
#   source scripts/lib/topology.sh
#   topo_init --outer ipv6 --inner ipv4 [--mode tunnel|transport]   # names, addresses; TOPO_DIR: fresh dir
#   trap topo_teardown EXIT
#   topo_create                              # namespaces, wire, addresses
#   topo_write_configs                       # $TOPO_DIR/host{1,2}.json
#   topo_start_gateway 1 [flags...]; topo_start_gateway 2 [flags...]   # mutual TLS unless --grpc-insecure
#   topo_wait_ready 1; topo_wait_ready 2     # TAP created, admin socket and gRPC listener up
#   topo_attach_vm 1; topo_attach_vm 2       # TAP -> vmN, VIP, up
#   topo_exec vm1 ping -c 3 "${TOPO_VIP[2]}"
#
# Knobs (environment, read by topo_init): PSPGW_GATEWAY (the daemon; default $TOPO_BIN_DIR/psp-gateway),
# TOPO_BIN_DIR (default <repo>/build/bin), TOPO_WIRE_MTU (1500, a standard Ethernet underlay: each gateway
# gives its TAP the wire's MTU less the PSP overhead, so nothing is fragmented; README "MTU"),
# TOPO_KEEP_DIR=1 (keep TOPO_DIR after teardown).
#
# Mutual TLS (README "Security: TLS and authorisation"): topo_start_gateway makes a throwaway CA and one
# certificate per host in $TOPO_DIR/tls (scripts/make-certs.sh, the openssl command; SAN = the IP of the
# host's gRPC address) the first time it is needed, and starts every gateway with --grpc-tls-cert/-key/-ca,
# unless its flags include --grpc-insecure. Nothing is committed; the files go with TOPO_DIR.

TOPO_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Namespace names are "<prefix><role>", prefix "pspgw-<pid>-": unique per run, and a later run can tell a
# dead run's leftovers (topo_reap_stale).
TOPO_NS_BASE="pspgw-"
TOPO_ROLES=(host1 host2 vm1 vm2)

topo_log() { printf '[topo] %s\n' "$*" >&2; }

# topo_init [--outer ipv4|ipv6] [--inner ipv4|ipv6] [--mode tunnel|transport]
topo_init() {
  TOPO_OUTER=ipv6
  TOPO_INNER=ipv4
  TOPO_MODE=tunnel
  while (($#)); do
    case "$1" in
      --outer) TOPO_OUTER=$2; shift 2 ;;
      --inner) TOPO_INNER=$2; shift 2 ;;
      --mode) TOPO_MODE=$2; shift 2 ;;
      *) topo_log "topo_init: unknown argument $1"; return 2 ;;
    esac
  done
  case "$TOPO_OUTER/$TOPO_INNER" in
    ipv4/ipv4 | ipv4/ipv6 | ipv6/ipv4 | ipv6/ipv6) ;;
    *) topo_log "topo_init: --outer/--inner take ipv4 or ipv6"; return 2 ;;
  esac
  case "$TOPO_MODE" in
    tunnel) ;;
    transport)
      [[ $TOPO_INNER == "$TOPO_OUTER" ]] || {
        topo_log "topo_init: --mode transport needs --inner = --outer (the workloads use the wire addresses)"
        return 2
      }
      ;;
    *) topo_log "topo_init: --mode takes tunnel or transport"; return 2 ;;
  esac
  TOPO_PREFIX="${TOPO_NS_BASE}$$-"
  TOPO_BIN_DIR=${TOPO_BIN_DIR:-$TOPO_REPO/build/bin}
  TOPO_GATEWAY=${PSPGW_GATEWAY:-$TOPO_BIN_DIR/psp-gateway}
  TOPO_PSPCTL=${PSPGW_PSPCTL:-$TOPO_BIN_DIR/pspctl}
  TOPO_WIRE_MTU=${TOPO_WIRE_MTU:-1500}
  TOPO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pspgw-e2e.XXXXXX")
  TOPO_CREATED=()
  TOPO_PIDS=()

  # Outer (physical) addresses on the wire: ULA / RFC 1918, only inside our namespaces.
  declare -g -A TOPO_PIP TOPO_PIP_CIDR TOPO_VIP TOPO_VIP_CIDR TOPO_TAP TOPO_WIRE TOPO_CFG TOPO_LOG TOPO_SOCK \
    TOPO_GW_PID TOPO_GRPC
  if [[ $TOPO_OUTER == ipv6 ]]; then
    TOPO_PIP[1]=fd00:100::1 TOPO_PIP[2]=fd00:100::2 TOPO_PIP_CIDR[1]=fd00:100::1/64 TOPO_PIP_CIDR[2]=fd00:100::2/64
    TOPO_GRPC[1]="[fd00:100::1]:3000" TOPO_GRPC[2]="[fd00:100::2]:3000"
  else
    TOPO_PIP[1]=192.168.100.1 TOPO_PIP[2]=192.168.100.2
    TOPO_PIP_CIDR[1]=192.168.100.1/24 TOPO_PIP_CIDR[2]=192.168.100.2/24
    TOPO_GRPC[1]="192.168.100.1:3000" TOPO_GRPC[2]="192.168.100.2:3000"
  fi
  # Inner addresses (the workloads' VIPs) and an address no config knows (TOPO_UNKNOWN_VIP).
  if [[ $TOPO_INNER == ipv4 ]]; then
    TOPO_VIP[1]=10.0.0.1 TOPO_VIP[2]=10.0.0.2 TOPO_VIP_CIDR[1]=10.0.0.1/24 TOPO_VIP_CIDR[2]=10.0.0.2/24
    TOPO_UNKNOWN_VIP=10.0.0.99
  else
    TOPO_VIP[1]=fd00:1::1 TOPO_VIP[2]=fd00:1::2 TOPO_VIP_CIDR[1]=fd00:1::1/64 TOPO_VIP_CIDR[2]=fd00:1::2/64
    TOPO_UNKNOWN_VIP=fd00:1::99
  fi
  if [[ $TOPO_MODE == transport ]]; then
    # The workloads' addresses are the hosts' wire addresses; the unknown one is on the wire's subnet.
    TOPO_VIP[1]=${TOPO_PIP[1]} TOPO_VIP[2]=${TOPO_PIP[2]}
    TOPO_VIP_CIDR[1]=${TOPO_PIP_CIDR[1]} TOPO_VIP_CIDR[2]=${TOPO_PIP_CIDR[2]}
    TOPO_UNKNOWN_VIP=fd00:100::99
    [[ $TOPO_OUTER == ipv4 ]] && TOPO_UNKNOWN_VIP=192.168.100.99
  fi
  local n
  for n in 1 2; do
    TOPO_TAP[$n]="psp$n"
    TOPO_WIRE[$n]="wire$n"
    TOPO_CFG[$n]="$TOPO_DIR/host$n.json"
    TOPO_LOG[$n]="$TOPO_DIR/host$n.log"
    TOPO_SOCK[$n]="$TOPO_DIR/host$n.sock"
  done
}

topo_ns() { printf '%s%s' "$TOPO_PREFIX" "$1"; }

# topo_exec ROLE CMD...: run CMD in that namespace.
topo_exec() {
  local role=$1
  shift
  ip netns exec "$(topo_ns "$role")" "$@"
}

# Removes namespaces left by earlier runs that died without cleaning up (their pid is gone).
topo_reap_stale() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    [[ $ns =~ ^${TOPO_NS_BASE}([0-9]+)- ]] || continue
    pid=${BASH_REMATCH[1]}
    [[ $pid == "$$" ]] && continue
    kill -0 "$pid" 2>/dev/null && continue
    topo_log "removing stale namespace $ns (run $pid is gone)"
    _topo_kill_ns_pids "$ns"
    ip netns del "$ns" 2>/dev/null || true
  done
}

_topo_sysctl() { ip netns exec "$1" sysctl -qw "$2" >/dev/null 2>&1 || true; }

topo_create() {
  topo_reap_stale
  local role ns
  for role in "${TOPO_ROLES[@]}"; do
    ns=$(topo_ns "$role")
    ip netns add "$ns" || return 1
    TOPO_CREATED+=("$ns")
    ip -n "$ns" link set lo up
    # No duplicate address detection: addresses are usable at once, and nothing else shares these links.
    _topo_sysctl "$ns" net.ipv6.conf.all.accept_dad=0
    _topo_sysctl "$ns" net.ipv6.conf.default.accept_dad=0
  done
  # The hosts route nothing between their interfaces: the only way from vm1 to vm2 is the gateways.
  _topo_sysctl "$(topo_ns host1)" net.ipv4.ip_forward=0
  _topo_sysctl "$(topo_ns host2)" net.ipv4.ip_forward=0

  local h1 h2
  h1=$(topo_ns host1) h2=$(topo_ns host2)
  ip link add "${TOPO_WIRE[1]}" netns "$h1" type veth peer name "${TOPO_WIRE[2]}" netns "$h2" || return 1
  local n ns_n
  for n in 1 2; do
    ns_n=$(topo_ns "host$n")
    ip -n "$ns_n" link set "${TOPO_WIRE[$n]}" mtu "$TOPO_WIRE_MTU" up || return 1
    ip -n "$ns_n" addr add "${TOPO_PIP_CIDR[$n]}" dev "${TOPO_WIRE[$n]}" nodad 2>/dev/null ||
      ip -n "$ns_n" addr add "${TOPO_PIP_CIDR[$n]}" dev "${TOPO_WIRE[$n]}" || return 1
  done
  topo_wait_wire
}

# Bounded wait until each host reaches the other's outer address (veth carrier, neighbour resolution).
topo_wait_wire() {
  local ping_flags=(-c 1 -W 1)
  [[ $TOPO_OUTER == ipv6 ]] && ping_flags=(-6 "${ping_flags[@]}")
  local i
  for ((i = 0; i < 50; i++)); do
    if topo_exec host1 ping "${ping_flags[@]}" "${TOPO_PIP[2]}" >/dev/null 2>&1 &&
      topo_exec host2 ping "${ping_flags[@]}" "${TOPO_PIP[1]}" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  topo_log "the wire ${TOPO_PIP[1]} <-> ${TOPO_PIP[2]} does not pass pings"
  return 1
}

_topo_json_list() {
  local out="" a
  for a in "$@"; do out+="${out:+, }\"$a\""; done
  printf '[%s]' "$out"
}

# topo_write_configs: the config of each host in DOCA's schema (spec §3): where its gRPC service listens
# and its outer address (local-pip), one peer (the other host) with one session local VIP -> remote VIP.
# TOPO_XSW (optional, raw JSON object text) is added as the "x-sw" extension of both files.
topo_write_configs() {
  local n m
  for n in 1 2; do
    m=$((3 - n))
    {
      printf '{\n'
      printf '  "config": { "local-grpc-address": "%s", "local-pip": "%s" },\n' "${TOPO_GRPC[$n]}" "${TOPO_PIP[$n]}"
      printf '  "peers": [ { "remote-grpc-address": "%s",\n' "${TOPO_GRPC[$m]}"
      printf '               "sessions": [ { "local-vip": "%s", "remote-vips": %s } ] } ]' \
        "${TOPO_VIP[$n]}" "$(_topo_json_list "${TOPO_VIP[$m]}")"
      [[ -n ${TOPO_XSW:-} ]] && printf ',\n  "x-sw": %s' "$TOPO_XSW"
      printf '\n}\n'
    } >"${TOPO_CFG[$n]}"
  done
}

# topo_start_gateway N [extra flags...]: the daemon in hostN, in the background, log in TOPO_LOG[N].
# The interface (issue 4): psp-gateway -c FILE -d TAP [flags]; --admin-socket keeps two gateways on one
# machine apart (the default /run/psp-gateway/<instance>.sock would be shared by both).
topo_start_gateway() {
  local n=$1
  shift
  local tls=() a
  for a in "$@"; do [[ $a == --grpc-insecure ]] && tls=(--grpc-insecure); done
  if ((${#tls[@]} == 0)); then
    topo_tls_host "$n" || return 1
    tls=(--grpc-tls-cert "$TOPO_DIR/tls/host$n.crt" --grpc-tls-key "$TOPO_DIR/tls/host$n.key"
      --grpc-tls-ca "$TOPO_DIR/tls/ca.crt")
  else
    tls=()
  fi
  local cmd=("$TOPO_GATEWAY" -c "${TOPO_CFG[$n]}" -d "${TOPO_TAP[$n]}" --admin-socket "${TOPO_SOCK[$n]}"
    --outer-ip-type "$TOPO_OUTER" --inner-ip-type "$TOPO_INNER" --mode "$TOPO_MODE" "${tls[@]}" "$@")
  printf '%s\n' "${cmd[*]}" >"${TOPO_LOG[$n]}"
  # `ip netns exec` execs the daemon, so $! is the daemon's pid.
  ip netns exec "$(topo_ns "host$n")" "${cmd[@]}" >>"${TOPO_LOG[$n]}" 2>&1 </dev/null &
  TOPO_GW_PID[$n]=$!
  TOPO_PIDS+=("$!")
  topo_log "gateway $n: pid ${TOPO_GW_PID[$n]}, log ${TOPO_LOG[$n]}"
}

# topo_tls_host N: the CA (once per run) and hostN's certificate, whose SAN is the IP of TOPO_GRPC[N].
topo_tls_host() {
  local n=$1 host
  local dir="$TOPO_DIR/tls" mk="$TOPO_REPO/scripts/make-certs.sh"
  host=${TOPO_GRPC[$n]%:*}
  host=${host#[}
  host=${host%]}
  mkdir -p "$TOPO_DIR" || return 1
  if [[ ! -f $dir/ca.crt ]]; then
    "$mk" "$dir" ca || { topo_log "making the throwaway CA in $dir failed (openssl)"; return 1; }
  fi
  [[ -f $dir/host$n.crt ]] && return 0
  "$mk" "$dir" host "host$n" "IP:$host" || { topo_log "making host$n's certificate failed (openssl)"; return 1; }
}

topo_gateway_alive() { [[ -n ${TOPO_GW_PID[$1]:-} ]] && kill -0 "${TOPO_GW_PID[$1]}" 2>/dev/null; }

# topo_poll SECONDS CMD...: run CMD every 50 ms until it succeeds; fails after SECONDS.
topo_poll() {
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS >= deadline)) && return 1
    sleep 0.05
  done
}

_topo_tap_in() { ip -n "$(topo_ns "$1")" link show "$2" >/dev/null 2>&1; }
_topo_grpc_listening() {
  topo_exec "host$1" ss -Hltn "sport = :3000" 2>/dev/null | grep -q .
}
_topo_ready() {
  topo_gateway_alive "$1" || return 2
  _topo_tap_in "host$1" "${TOPO_TAP[$1]}" && [[ -S ${TOPO_SOCK[$1]} ]] && _topo_grpc_listening "$1"
}

# topo_wait_ready N [SECONDS]: the gateway created its TAP, its admin socket and its gRPC listener.
topo_wait_ready() {
  local n=$1 limit=${2:-15} rc=0
  local deadline=$((SECONDS + limit))
  while :; do
    _topo_ready "$n" && return 0
    rc=$?
    if ((rc == 2)); then
      topo_log "gateway $n exited during start-up"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      topo_log "gateway $n not ready after ${limit}s (TAP ${TOPO_TAP[$n]} in host$n: $(_topo_tap_in "host$n" "${TOPO_TAP[$n]}" && echo yes || echo no), socket ${TOPO_SOCK[$n]}: $([[ -S ${TOPO_SOCK[$n]} ]] && echo yes || echo no), gRPC :3000: $(_topo_grpc_listening "$n" && echo yes || echo no))"
      return 1
    fi
    sleep 0.05
  done
}

# topo_attach_vm N: move hostN's TAP into vmN, give it the VIP, bring it up.
topo_attach_vm() {
  local n=$1
  local tap=${TOPO_TAP[$n]} vm
  vm=$(topo_ns "vm$n")
  ip -n "$(topo_ns "host$n")" link set "$tap" netns "$vm" || return 1
  ip -n "$vm" addr add "${TOPO_VIP_CIDR[$n]}" dev "$tap" nodad 2>/dev/null ||
    ip -n "$vm" addr add "${TOPO_VIP_CIDR[$n]}" dev "$tap" || return 1
  ip -n "$vm" link set "$tap" up || return 1
  # The VIP's subnet is on-link: the VM resolves the peer VIP with ARP/NS, which the gateway answers.
  topo_poll 5 _topo_vip_usable "$n" || {
    topo_log "vm$n: ${TOPO_VIP[$n]} not usable on $tap"
    return 1
  }
}

_topo_vip_usable() {
  # An IPv6 address is usable once it is no longer tentative.
  ! ip -n "$(topo_ns "vm$1")" addr show dev "${TOPO_TAP[$1]}" 2>/dev/null | grep -q tentative
}

# topo_pspctl N ARGS...: pspctl against gateway N's admin socket.
topo_pspctl() {
  local n=$1
  shift
  timeout 10 "$TOPO_PSPCTL" -s "${TOPO_SOCK[$n]}" "$@"
}

# topo_dump_logs [LINES]: both gateways' logs (tail), for failure reports.
topo_dump_logs() {
  local lines=${1:-200} n
  for n in 1 2; do
    [[ -f ${TOPO_LOG[$n]:-} ]] || continue
    printf '\n----- gateway %s log (%s, last %s lines) -----\n' "$n" "${TOPO_LOG[$n]}" "$lines" >&2
    tail -n "$lines" "${TOPO_LOG[$n]}" >&2
  done
  printf -- '----- end of gateway logs -----\n' >&2
}

# _topo_stop_pid PID: TERM, up to 3 s to exit, then KILL.
_topo_stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 60; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

topo_stop_gateways() {
  local n
  for n in 1 2; do
    [[ -n ${TOPO_GW_PID[$n]:-} ]] && _topo_stop_pid "${TOPO_GW_PID[$n]}"
  done
  return 0
}

# Every process still inside one of our namespaces (helpers started there by the caller): ours, by pid.
_topo_kill_ns_pids() {
  local pid
  for pid in $(ip netns pids "$1" 2>/dev/null); do
    _topo_stop_pid "$pid"
  done
}

# topo_teardown: stop the gateways and every process in our namespaces, delete the namespaces. Idempotent;
# safe to call before topo_init finished.
topo_teardown() {
  local rc=$? pid ns
  for pid in "${TOPO_PIDS[@]}"; do _topo_stop_pid "$pid"; done
  TOPO_PIDS=()
  for ns in "${TOPO_CREATED[@]}"; do
    _topo_kill_ns_pids "$ns"
    ip netns del "$ns" 2>/dev/null || true
  done
  TOPO_CREATED=()
  # Namespaces of this run that another path created (a caller that failed mid-way).
  if [[ -n ${TOPO_PREFIX:-} ]]; then
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
      [[ $ns == "$TOPO_PREFIX"* ]] || continue
      _topo_kill_ns_pids "$ns"
      ip netns del "$ns" 2>/dev/null || true
    done
  fi
  if [[ -n ${TOPO_DIR:-} && -d $TOPO_DIR && ${TOPO_KEEP_DIR:-0} != 1 ]]; then
    rm -rf "$TOPO_DIR"
  fi
  return "$rc"
}

# topo_preflight: why this machine cannot run the topology (empty when it can). Callers skip (77) on it.
topo_preflight() {
  [[ $(id -u) == 0 ]] || { echo "needs root (network namespaces, TAP devices)"; return; }
  ip netns list >/dev/null 2>&1 || { echo "no 'ip netns' (iproute2)"; return; }
  [[ -c /dev/net/tun ]] || { echo "no /dev/net/tun"; return; }
  local probe="${TOPO_NS_BASE}$$-probe"
  if ! ip netns add "$probe" 2>/dev/null; then
    echo "cannot create a network namespace here"
    return
  fi
  ip netns del "$probe" 2>/dev/null || true
}
