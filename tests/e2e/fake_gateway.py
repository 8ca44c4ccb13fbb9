#!/usr/bin/env python3
"""A stand-in for psp-gateway that tests the harness itself (tests/e2e/topology_selftest.sh).

Same command line as the daemon (-c FILE -d TAP --admin-socket PATH; other flags ignored): creates the TAP,
listens on the config's gRPC address and on the admin socket (so the harness's readiness checks pass), and
relays Ethernet frames between its TAP and the peer's UDP port 1000 IN PLAINTEXT. So the workloads can ping
and transfer through it, and the harness's wire check must reject what it sends: a harness that passed
this stand-in's wire would be a test that cannot fail.
"""
import argparse
import fcntl
import json
import os
import select
import signal
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000


def split_host_port(text):
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return host, int(port or 3000)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, 3000


def main():
    p = argparse.ArgumentParser()
    p.add_argument("-c", "--config", required=True)
    p.add_argument("-d", "--vf-name", default="psp0")
    p.add_argument("--admin-socket")
    a, _ = p.parse_known_args()
    cfg = json.load(open(a.config, encoding="utf-8"))
    pip = cfg["config"]["local-pip"]
    grpc_host, grpc_port = split_host_port(cfg["config"]["local-grpc-address"])
    peer_host, _ = split_host_port(cfg["peers"][0]["remote-grpc-address"])
    fam = socket.AF_INET6 if ":" in pip else socket.AF_INET

    tap = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tap, TUNSETIFF, struct.pack("16sH", a.vf_name.encode(), IFF_TAP | IFF_NO_PI))
    udp = socket.socket(fam, socket.SOCK_DGRAM)
    udp.bind((pip, 1000))
    grpc = socket.socket(fam, socket.SOCK_STREAM)
    grpc.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    grpc.bind((grpc_host, grpc_port))
    grpc.listen(4)
    admin = None
    if a.admin_socket:
        admin = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        admin.bind(a.admin_socket)
        admin.listen(1)

    def stop(*_):
        if a.admin_socket:
            try:
                os.unlink(a.admin_socket)
            except OSError:
                pass
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"fake gateway: TAP {a.vf_name}, relaying in plaintext to {peer_host}:1000", flush=True)
    while True:
        ready, _, _ = select.select([tap, udp], [], [])
        if tap in ready:
            udp.sendto(os.read(tap, 65535), (peer_host, 1000))
        if udp in ready:
            frame = udp.recv(65535)
            try:
                os.write(tap, frame)
            except OSError:  # EIO while the TAP is down (not yet moved and brought up): drop, as a NIC would
                pass


if __name__ == "__main__":
    main()
