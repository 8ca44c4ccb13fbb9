#!/usr/bin/env python3
"""A PSP garbage flooder for the flood and soak tests (gateway_e2e.sh --case flood, tests/soak/soak.sh).

  flood_tool.py flood --dst IP [--pcap CAPTURE --src PIP --dst-pip PIP] [--seconds S] [--rate PPS]
                      [--out STATS.json]

Sends UDP datagrams to DST:1000, as fast as it can (or at --rate packets per second), for --seconds:
  random     random bytes of a random length (0..1400): not PSP, a random version, an SPI never issued...
  replayed   a real PSP packet of the capture (src -> dst-pip) with one ICV-covered bit flipped (the SPI
             left alone, so the receiver derives the key, decrypts and fails the tag: the costly case)
  fragmented a replayed packet padded to 3000 bytes (the kernel fragments it at 1500; the receiver's
             kernel reassembles it before the gateway sees it: it fails authentication like any other)
  jumbo      a replayed packet padded to 9000 bytes (fragmented likewise)
Writes {"random": n, "replayed": n, "fragmented": n, "jumbo": n, "total": n, "seconds": s} to --out, also
when stopped early by SIGTERM (SIGSTOP/SIGCONT pause and resume it).
"""
import argparse
import json
import os
import random
import signal
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import e2e_tool  # noqa: E402  (read_pcap, psp_payloads, psp_split)

PSP_PORT = 1000
IP_MTU_DISCOVER = 10  # linux/in.h
IP_PMTUDISC_DONT = 0


def corrupt(rng, pkt):
    """One bit flipped past the SPI (IV, clear bytes, ciphertext or ICV): all covered by the ICV."""
    bad = bytearray(pkt)
    at = rng.randrange(8, len(bad))
    bad[at] ^= 1 << rng.randrange(8)
    return bytes(bad)


def cmd_flood(a):
    rng = random.Random(a.seed)
    replays = []
    if a.pcap:
        replays = [p for p in e2e_tool.psp_payloads(a.pcap, a.src, a.dst_pip) if e2e_tool.psp_split(p)]
        if not replays:
            e2e_tool.die(f"no PSP packet {a.src} -> {a.dst_pip} in {a.pcap} to replay")
    fam = e2e_tool.family_of(a.dst)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)  # let the kernel fragment
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    # A pool of ready datagrams (building one per send would bound the rate by Python, not the gateway).
    pool = []
    for i in range(4096):
        kind = "random"
        if replays and i % 2 == 0:
            kind = "replayed"
            if i % 128 == 0:
                kind = "fragmented"
            elif i % 512 == 2:
                kind = "jumbo"
        if kind == "random":
            pool.append((kind, rng.randbytes(rng.randrange(0, 1401))))
            continue
        pkt = corrupt(rng, replays[i % len(replays)])
        if kind == "fragmented":
            pkt = pkt + rng.randbytes(max(0, 3000 - len(pkt)))  # a capture may hold a GSO super-packet
        elif kind == "jumbo":
            pkt = pkt + rng.randbytes(max(0, 9000 - len(pkt)))
        pool.append((kind, pkt))
    counts = {"random": 0, "replayed": 0, "fragmented": 0, "jumbo": 0}
    dst = (a.dst, PSP_PORT)
    if a.ready:
        open(a.ready, "w").close()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))  # stop early, statistics still written
    start = time.monotonic()
    end = start + a.seconds
    sent = 0
    n = len(pool)
    # --rate: a token bucket holding at most 10 ms of datagrams, so a pause (SIGSTOP) is not made up for
    # by a burst afterwards.
    tokens, last = 0.0, start
    while not stop:
        now = time.monotonic()
        if now >= end:
            break
        if a.rate:
            tokens = min(tokens + (now - last) * a.rate, max(64.0, a.rate / 100))
            last = now
            if tokens < 64:
                time.sleep(0.001)
                continue
            tokens -= 64
        for _ in range(64):  # check the clock every 64 datagrams
            kind, pkt = pool[sent % n]
            try:
                s.sendto(pkt, dst)
            except (BlockingIOError, OSError):
                continue  # a full send buffer or ENOBUFS: not sent, not counted
            counts[kind] += 1
            sent += 1
    counts["total"] = sent
    counts["seconds"] = round(time.monotonic() - start, 3)
    text = json.dumps(counts)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    print(text)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("flood")
    s.add_argument("--dst", required=True, help="the gateway's outer address")
    s.add_argument("--pcap", help="a capture of real PSP packets to replay corrupted")
    s.add_argument("--src", help="outer source of the packets to replay")
    s.add_argument("--dst-pip", help="outer destination of the packets to replay (default --dst)")
    s.add_argument("--seconds", type=float, default=5.0)
    s.add_argument("--rate", type=float, default=0, help="packets per second (0: as fast as possible)")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--out")
    s.add_argument("--ready", help="a file created when sending starts")
    a = p.parse_args()
    if a.cmd == "flood":
        a.dst_pip = a.dst_pip or a.dst
        cmd_flood(a)


if __name__ == "__main__":
    main()
