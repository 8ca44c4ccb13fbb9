#!/usr/bin/env python3
"""Helpers of the service-chaining end-to-end test (tests/e2e/sfc_e2e.sh); each one is bounded in time.

  vnf IF_IN IF_OUT     a bump-in-the-wire VNF: every frame in one interface goes out of the other, unchanged
                       (raw AF_PACKET sockets). Logs one line per forwarded IP packet:
                       "MONOTONIC_NS NAME +|- PROTO SPORT DPORT" (+: IF_IN -> IF_OUT, -: the reverse), so the
                       order packets crossed several VNFs is the order of their timestamps (one clock for every
                       namespace). --drop-tcp-port / --drop-udp-port drop that port (either side); --reflect
                       sends frames back out of the interface they came in on (a broken VNF).
  udp-echo             answers every datagram to --port with the same payload
  udp-flows            one datagram on each of --flows source ports to HOST:PORT, waits for each echo;
                       prints the number answered
  order LOG PATTERN    the log's packets of --proto, by time, repeat PATTERN ("fw1+,fw2+,fw3+,fw3-,...")
  sticky LOG           every UDP flow to/from --port crossed one VNF both ways; prints the VNFs used
  count LOG            lines of the log (of --name, if given)
"""
import argparse
import os
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def l4_of(frame):
    """(proto, sport, dport) of an IPv4/IPv6 frame, or None."""
    if len(frame) < 14:
        return None
    etype = struct.unpack_from("!H", frame, 12)[0]
    if etype == 0x0800 and len(frame) >= 34:
        ihl = (frame[14] & 0x0F) * 4
        proto, off = frame[23], 14 + ihl
    elif etype == 0x86DD and len(frame) >= 54:
        proto, off = frame[20], 54
    else:
        return None
    if proto in (6, 17) and len(frame) >= off + 4:
        sport, dport = struct.unpack_from("!HH", frame, off)
        return proto, sport, dport
    return proto, 0, 0


def raw_socket(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    return s


def cmd_vnf(a):
    sockets = {"+": (raw_socket(a.if_in), raw_socket(a.if_out)), "-": (raw_socket(a.if_out), raw_socket(a.if_in))}
    by_fd = {pair[0].fileno(): (way, pair) for way, pair in sockets.items()}
    drops = {6: a.drop_tcp_port, 17: a.drop_udp_port}
    end = time.monotonic() + a.duration
    if a.ready:
        with open(a.ready, "w", encoding="ascii") as f:
            f.write("ready\n")
    with open(a.log, "a", encoding="ascii") as log:
        while time.monotonic() < end:
            ready, _, _ = select.select(list(by_fd), [], [], 0.2)
            for fd in ready:
                way, (rx, tx) = by_fd[fd]
                frame, addr = rx.recvfrom(65535)
                if addr[2] == PACKET_OUTGOING:
                    continue  # our own transmission on this interface, seen by its socket
                l4 = l4_of(frame)
                if l4 is not None:
                    proto, sport, dport = l4
                    if drops.get(proto) and drops[proto] in (sport, dport):
                        continue
                    log.write(f"{time.monotonic_ns()} {a.name} {way} {proto} {sport} {dport}\n")
                    log.flush()
                (rx if a.reflect else tx).send(frame)


def cmd_udp_echo(a):
    fam = socket.AF_INET6 if ":" in a.bind else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((a.bind, a.port))
    s.settimeout(0.2)
    if a.ready:
        with open(a.ready, "w", encoding="ascii") as f:
            f.write("ready\n")
    end = time.monotonic() + a.duration
    while time.monotonic() < end:
        try:
            data, peer = s.recvfrom(65535)
        except socket.timeout:
            continue
        s.sendto(data, peer)


def cmd_udp_flows(a):
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    answered = 0
    for i in range(a.flows):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind(("", a.first_sport + i))
        s.settimeout(a.timeout)
        for _ in range(a.tries):
            s.sendto(f"flow-{i}".encode(), (a.host, a.port))
            try:
                s.recvfrom(65535)
                answered += 1
                break
            except socket.timeout:
                continue
        s.close()
    print(answered)


def read_log(path):
    rows = []
    with open(path, encoding="ascii") as f:
        for line in f:
            t, name, way, proto, sport, dport = line.split()
            rows.append((int(t), name, way, int(proto), int(sport), int(dport)))
    return sorted(rows)


def cmd_order(a):
    want = a.pattern.split(",")
    got = [f"{r[1]}{r[2]}" for r in read_log(a.log) if r[3] == a.proto]
    if not got or len(got) % len(want) != 0 or any(g != want[i % len(want)] for i, g in enumerate(got)):
        print(f"order: expected repeats of {want}, got {got}", file=sys.stderr)
        return 1
    print(f"order ok: {len(got) // len(want)} x {','.join(want)}")
    return 0


def cmd_sticky(a):
    seen = {}  # client port -> {(vnf, way)}
    for _, name, way, proto, sport, dport in read_log(a.log):
        if proto != 17 or a.port not in (sport, dport):
            continue
        client = sport if dport == a.port else dport
        seen.setdefault(client, set()).add((name, way))
    used = set()
    for client, hops in seen.items():
        names = {n for n, _ in hops}
        ways = {w for _, w in hops}
        if len(names) != 1 or ways != {"+", "-"}:
            print(f"sticky: flow from port {client} crossed {sorted(hops)}", file=sys.stderr)
            return 1
        used |= names
    print(" ".join(sorted(used)))
    return 0


def cmd_count(a):
    n = 0
    if os.path.exists(a.log):
        n = sum(1 for r in read_log(a.log) if a.name in ("", r[1]))
    print(n)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("vnf")
    s.add_argument("if_in")
    s.add_argument("if_out")
    s.add_argument("--name", required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--ready")
    s.add_argument("--drop-tcp-port", type=int, default=0)
    s.add_argument("--drop-udp-port", type=int, default=0)
    s.add_argument("--reflect", action="store_true")
    s.add_argument("--duration", type=float, default=200)
    s.set_defaults(fn=cmd_vnf)
    s = sub.add_parser("udp-echo")
    s.add_argument("--bind", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--duration", type=float, default=200)
    s.add_argument("--ready")
    s.set_defaults(fn=cmd_udp_echo)
    s = sub.add_parser("udp-flows")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--flows", type=int, default=16)
    s.add_argument("--first-sport", type=int, default=42000)
    s.add_argument("--tries", type=int, default=3)
    s.add_argument("--timeout", type=float, default=0.5)
    s.set_defaults(fn=cmd_udp_flows)
    s = sub.add_parser("order")
    s.add_argument("log")
    s.add_argument("pattern")
    s.add_argument("--proto", type=int, default=1)
    s.set_defaults(fn=cmd_order)
    s = sub.add_parser("sticky")
    s.add_argument("log")
    s.add_argument("--port", type=int, required=True)
    s.set_defaults(fn=cmd_sticky)
    s = sub.add_parser("count")
    s.add_argument("log")
    s.add_argument("--name", default="")
    s.set_defaults(fn=cmd_count)
    a = p.parse_args()
    try:
        return a.fn(a) or 0
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
