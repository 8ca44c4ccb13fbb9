#!/usr/bin/env python3
"""A toy PSP gateway for testing the e2e harness's scenarios c and d (tests/e2e/topology_selftest.sh).

Same command line as psp-gateway (-c FILE -d TAP --admin-socket PATH [-k] [--cookie]; inner IPv4 only).
Not a model of the daemon: one fixed SA per direction (key = sha256 of the SPI), proxy ARP for the peer
VIP, tunnel-mode seal/open with e2e_tool's PSP code, an ingress ACL on (inner src, inner dst), and an admin
socket answering `counters`, `tunnels` and `pipeline` in the shapes gateway_e2e.sh assumes. With it the
harness's tamper and unknown-VIP checks run end to end through the real pspctl.
"""
import argparse
import fcntl
import hashlib
import ipaddress
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_tool as psp  # noqa: E402  (the harness's PSP framing)

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
GW_MAC = bytes.fromhex("020000aa0001")
VC = 0x778899AABBCCDDEE


# FAKE_GW_BROKEN=icv: deliver packets whose ICV fails; =acl: no ingress ACL. For the harness's own test:
# each must make gateway_e2e.sh fail the matching check.
BROKEN = os.environ.get("FAKE_GW_BROKEN", "")


def decrypt_unchecked(key, pkt):
    """AES-GCM's CTR keystream without the tag check (GCM: counter block = nonce || 2 for the first block)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    hdr, _, ct, _ = psp.psp_split(pkt)
    d = Cipher(algorithms.AES(key), modes.CTR(hdr[4:16] + b"\x00\x00\x00\x02")).decryptor()
    return d.update(ct) + d.finalize()


def host_of(text):
    return text[1:].partition("]")[0] if text.startswith("[") else text.rpartition(":")[0] or text


def sa_key(spi):
    return hashlib.sha256(b"fake-sa" + struct.pack("!I", spi)).digest()


class Gateway:
    def __init__(self, a, cfg):
        self.pip = cfg["config"]["local-pip"]
        self.peer = host_of(cfg["peers"][0]["remote-grpc-address"])
        sess = cfg["peers"][0]["sessions"][0]
        self.vip, self.peer_vip = sess["local-vip"], sess["remote-vips"][0]
        self.cookie = a.cookie
        # The SPI this side accepts; the peer's is the other one (both derive it from the two PIPs).
        lo, hi = sorted([self.pip, self.peer])
        self.rx_spi = 0x100 if self.pip == lo else 0x200
        self.tx_spi = 0x300 - self.rx_spi
        self.synd = {"auth_failed": 0, "acl_miss": 0, "bad_trailer": 0}
        self.vm_mac = b"\xff" * 6
        if a.debug_keys:
            for d, spi in (("rx", self.rx_spi), ("tx", self.tx_spi)):
                print(f"fake SA {d} spi=0x{spi:08x} key={sa_key(spi).hex()}", flush=True)

    def from_tap(self, frame, udp, tap):
        etype = struct.unpack_from("!H", frame, 12)[0]
        self.vm_mac = frame[6:12]
        if etype == 0x0806 and frame[20:22] == b"\x00\x01":  # ARP request: proxy for the peer VIP only
            if frame[38:42] == ipaddress.ip_address(self.peer_vip).packed:
                reply = (frame[6:12] + GW_MAC + b"\x08\x06" + frame[14:20] + b"\x00\x02" + GW_MAC + frame[38:42]
                         + frame[22:28] + frame[28:32])
                os.write(tap, reply)
            return
        if etype != 0x0800:
            return
        vc = VC if self.cookie else None
        pkt = psp.psp_seal(sa_key(self.tx_spi), self.tx_spi, random.getrandbits(64), 4, 5 + (2 if vc else 0), vc,
                           frame[14:])
        udp.sendto(pkt, (self.peer, psp.PSP_PORT))

    def from_wire(self, pkt, tap):
        spi = struct.unpack_from("!I", pkt, 4)[0] if len(pkt) >= 8 else 0
        inner = psp.psp_open(sa_key(spi), pkt) if spi == self.rx_spi else None
        if inner is None and BROKEN == "icv" and psp.psp_split(pkt):
            inner = decrypt_unchecked(sa_key(spi), pkt)  # the bug the harness must catch
        elif inner is None:
            self.synd["auth_failed"] += 1
            return
        hdr, clear, _, _ = psp.psp_split(pkt)
        inner = (clear + inner)[8 if hdr[3] & 2 else 0:]
        src, dst = str(ipaddress.IPv4Address(inner[12:16])), str(ipaddress.IPv4Address(inner[16:20]))
        if (src, dst) != (self.peer_vip, self.vip) and BROKEN != "acl":
            self.synd["acl_miss"] += 1
            return
        try:
            os.write(tap, self.vm_mac + GW_MAC + b"\x08\x00" + inner)
        except OSError:
            pass

    def admin(self, line):
        cmd = json.loads(line).get("cmd")
        if cmd == "counters":
            res = {"pipes": [{"name": "SYND_STATS", "entries": 3, "hits": sum(self.synd.values()), "misses": 0,
                              "drops": sum(self.synd.values()), "syndromes": self.synd}]}
        elif cmd == "tunnels":
            res = {"tunnels": [{"local_vip": self.vip, "remote_vip": self.peer_vip, "state": "connected",
                                "tx_spi": self.tx_spi, "rx_spis": [self.rx_spi]}]}
        elif cmd == "pipeline":
            res = "flowchart LR\n ROOT-->EGR_ACL-->PSP_ENCRYPT\n PSP_DECRYPT-->INGR_ACL\n INGR_ACL-->SYND_STATS\n"
        else:
            return {"ok": False, "code": "unknown_command", "error": cmd}
        return {"ok": True, "result": res}


def set_tap_mtu(tap, pip, cookie):
    """As psp-gateway does: the TAP's MTU is the uplink's (the interface holding the PIP) less the PSP
    overhead (tunnel mode: outer IP + UDP + PSP header (+ VC) + ICV), so nothing is fragmented on the wire."""
    out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    ifname = next((l.split()[1] for l in out.splitlines() if f" {pip}/" in l), None)
    uplink = int(open(f"/sys/class/net/{ifname}/mtu", encoding="ascii").read()) if ifname else 1500
    overhead = (40 if ":" in pip else 20) + 8 + 16 + (8 if cookie else 0) + psp.ICV_LEN
    subprocess.run(["ip", "link", "set", "dev", tap, "mtu", str(uplink - overhead)], check=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("-c", "--config", required=True)
    p.add_argument("-d", "--vf-name", default="psp0")
    p.add_argument("--admin-socket", required=True)
    p.add_argument("-k", "--debug-keys", action="store_true")
    p.add_argument("--cookie", action="store_true")
    a, _ = p.parse_known_args()
    gw = Gateway(a, json.load(open(a.config, encoding="utf-8")))
    fam = socket.AF_INET6 if ":" in gw.pip else socket.AF_INET
    tap = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tap, TUNSETIFF, struct.pack("16sH", a.vf_name.encode(), IFF_TAP | IFF_NO_PI))
    set_tap_mtu(a.vf_name, gw.pip, a.cookie)
    udp = socket.socket(fam, socket.SOCK_DGRAM)
    udp.bind((gw.pip, psp.PSP_PORT))
    grpc = socket.socket(fam, socket.SOCK_STREAM)
    grpc.bind((gw.pip, 3000))
    grpc.listen(1)
    admin = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    admin.bind(a.admin_socket)
    admin.listen(4)

    def stop(*_):
        os.unlink(a.admin_socket)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        ready, _, _ = select.select([tap, udp, admin], [], [])
        if tap in ready:
            gw.from_tap(os.read(tap, 65535), udp, tap)
        if udp in ready:
            gw.from_wire(udp.recv(65535), tap)
        if admin in ready:
            conn, _ = admin.accept()
            with conn, conn.makefile("rw") as f:
                f.write(json.dumps(gw.admin(f.readline())) + "\n")


if __name__ == "__main__":
    main()
