#!/usr/bin/env bash
# bench_udp_load's smoke test (ctest bench_udp_load_smoke): over loopback, IPv4 and IPv6, a paced send whose
# every datagram must arrive, counted and numbered in order; then bad arguments must be refused. Loopback
# with a 4 MB receive buffer holds the whole run (2,000 datagrams of 172 bytes), so any loss is the tool's.
# Usage: bench/udp_load_test.sh BUILD/bin/bench_udp_load
set -euo pipefail
BIN=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

for addr in 127.0.0.1 ::1; do
  out=$(mktemp)
  # A port below the ephemeral range; another one if something else holds it (the receiver exits).
  rpid=
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 12000))
    ss -Hlun "sport = :$port" | grep -q . && continue
    "$BIN" recv --bind "$addr" --port "$port" --idle-ms 300 --max-seconds 20 >"$out" 2>/dev/null &
    rpid=$!
    for _ in $(seq 50); do
      ss -Hlun "sport = :$port" | grep -q . || ! kill -0 "$rpid" 2>/dev/null && break
      sleep 0.05
    done
    kill -0 "$rpid" 2>/dev/null && break
  done
  kill -0 "$rpid" 2>/dev/null || fail "no receiver could bind on $addr"
  sent=$("$BIN" send --to "$addr" --port "$port" --payload 172 --seconds 0.4 --pps 5000 --batch 8)
  wait "$rpid" || fail "receiver on $addr exited $?"
  got=$(cat "$out"); rm -f "$out"
  n=$(field "$sent" sent)
  [ "$n" -ge 1000 ] && [ "$n" -le 2100 ] || fail "$addr: paced at 5000/s for 0.4 s, sent $n"
  [ "$(field "$got" received)" = "$n" ] || fail "$addr: sent $n, received: $got"
  [ "$(field "$got" max_seq)" = $((n - 1)) ] || fail "$addr: max_seq wrong: $got"
  [ "$(field "$got" reordered)" = 0 ] || fail "$addr: reordered on loopback: $got"
  [ "$(field "$got" bytes)" = $((n * 172)) ] || fail "$addr: bytes $(field "$got" bytes), want $((n * 172))"
  echo "$addr: $n sent, all received"
done

"$BIN" send --to 127.0.0.1 --payload 7 --seconds 0.1 2>/dev/null && fail "--payload 7 accepted"
"$BIN" send --to not-an-ip --seconds 0.1 2>/dev/null && fail "a bad address accepted"
"$BIN" send --to 127.0.0.1 --batch 65 --seconds 0.1 2>/dev/null && fail "--batch 65 accepted"
echo "bench_udp_load: ok"
