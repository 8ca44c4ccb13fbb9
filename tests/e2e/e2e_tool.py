#!/usr/bin/env python3
"""Helpers of the end-to-end test (tests/e2e/gateway_e2e.sh); each subcommand is bounded in time.

  transfer-server / transfer-client   a byte-exact TCP transfer (sha256 compared on both ends)
  udp-listen / udp-send               datagrams to and from the workloads
  wire-check PCAP                     what crossed the wire: only PSP (UDP/1000) and the key exchange
  find-key PCAP LOG...                the SA key: a hex string in the -k logs that opens a captured packet
  inject-tampered PCAP                captured PSP packets with one byte flipped, sent to the peer
  craft                               a correctly sealed PSP tunnel packet with chosen inner addresses
  json-get FILE PATH...               the first of several candidate paths in a JSON document

PSP framing follows shared/spec/psp-protocol.md (the same model as tests/golden/psp_ref.py): a 16-byte
header (next header, hdr ext len, crypt offset, S/D/version/V/1, SPI, IV), nonce = SPI || IV,
AAD = header + the clear bytes up to the crypt offset, AES-GCM with a 16-byte ICV. AES-GCM comes from
python3-cryptography.
"""
import argparse
import hashlib
import ipaddress
import json
import os
import random
import re
import socket
import struct
import sys
import time

PSP_PORT = 1000
PSP_HDR = struct.Struct("!BBBBIQ")
ICV_LEN = 16


def die(msg, code=1):
    print(f"e2e_tool: {msg}", file=sys.stderr)
    sys.exit(code)


def family_of(addr):
    return socket.AF_INET6 if ipaddress.ip_address(addr).version == 6 else socket.AF_INET


def touch(path):
    if path:
        with open(path, "w", encoding="ascii") as f:
            f.write("ready\n")


# ---- TCP transfer ------------------------------------------------------------------------------------

def transfer_data(size, marker, seed):
    """Random bytes with `marker` at the start of every KiB: recognisable if it ever crosses in clear."""
    rng = random.Random(seed)
    out = bytearray()
    m = marker.encode()
    while len(out) < size:
        out += m + rng.randbytes(1024 - len(m))
    return bytes(out[:size])


def cmd_transfer_server(a):
    srv = socket.socket(family_of(a.bind), socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((a.bind, a.port))
    srv.listen(1)
    srv.settimeout(a.timeout)
    touch(a.ready)
    conn, _ = srv.accept()
    conn.settimeout(a.timeout)
    h, n = hashlib.sha256(), 0
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    line = f"{n} {h.hexdigest()}\n"
    conn.sendall(line.encode())
    conn.close()
    with open(a.out, "w", encoding="ascii") as f:
        f.write(line)


def cmd_transfer_client(a):
    data = transfer_data(a.size, a.marker, a.seed)
    want = f"{len(data)} {hashlib.sha256(data).hexdigest()}"
    c = socket.create_connection((a.host, a.port), timeout=a.timeout)
    c.settimeout(a.timeout)
    t0 = time.monotonic()
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = c.recv(256)
        if not chunk:
            break
        reply += chunk
    dt = time.monotonic() - t0
    got = reply.decode(errors="replace").strip()
    if got != want:
        die(f"transfer mismatch: sent '{want}', receiver saw '{got}'")
    print(f"transfer ok: {len(data)} bytes, sha256 {want.split()[1][:16]}..., {len(data) * 8 / dt / 1e6:.1f} Mbit/s")


# ---- UDP to and from the workloads -------------------------------------------------------------------

def cmd_udp_listen(a):
    s = socket.socket(family_of(a.bind), socket.SOCK_DGRAM)
    s.bind((a.bind, a.port))
    s.settimeout(0.2)
    touch(a.ready)
    end = time.monotonic() + a.duration
    with open(a.out, "a", encoding="ascii") as f:
        while time.monotonic() < end:
            try:
                data, peer = s.recvfrom(65535)
            except socket.timeout:
                continue
            f.write(f"{peer[0]} {data.decode('ascii', errors='replace')}\n")
            f.flush()


def cmd_udp_send(a):
    s = socket.socket(family_of(a.host), socket.SOCK_DGRAM)
    for i in range(a.count):
        s.sendto(f"{a.payload}-{i}".encode(), (a.host, a.port))
        time.sleep(a.gap)


# ---- pcap reading and outer-header classification ----------------------------------------------------

def read_pcap(path):
    """Ethernet frames of a classic pcap (either byte order, usec or nsec)."""
    data = open(path, "rb").read()
    if len(data) < 24:
        return []
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        die(f"{path}: not a classic pcap (tcpdump -w writes one)")
    linktype = struct.unpack_from(e + "I", data, 20)[0]
    if linktype != 1:
        die(f"{path}: link type {linktype}, expected Ethernet")
    off, frames = 24, []
    while off + 16 <= len(data):
        caplen = struct.unpack_from(e + "I", data, off + 8)[0]
        off += 16
        frames.append(data[off:off + caplen])
        off += caplen
    return frames


def outer(frame):
    """(kind, src, dst, proto, sport, dport, l4 payload, detail) of a frame's outer headers."""
    if len(frame) < 14:
        return ("runt", None, None, None, None, None, b"", "")
    etype = struct.unpack_from("!H", frame, 12)[0]
    p = frame[14:]
    if etype == 0x0806:
        return ("arp", None, None, None, None, None, b"", "")
    if etype == 0x0800 and len(p) >= 20:
        ihl = (p[0] & 0xF) * 4
        src, dst, proto = str(ipaddress.IPv4Address(p[12:16])), str(ipaddress.IPv4Address(p[16:20])), p[9]
        l4 = p[ihl:]
    elif etype == 0x86DD and len(p) >= 40:
        src, dst, proto = str(ipaddress.IPv6Address(p[8:24])), str(ipaddress.IPv6Address(p[24:40])), p[6]
        l4 = p[40:]
        while proto in (0, 43, 60) and len(l4) >= 8:  # hop-by-hop (MLD), routing, destination options
            proto, l4 = l4[0], l4[(l4[1] + 1) * 8:]
    else:
        return ("other", None, None, None, None, None, b"", f"ethertype 0x{etype:04x}")
    if proto in (6, 17) and len(l4) >= 8:
        sport, dport = struct.unpack_from("!HH", l4, 0)
        body = l4[8:] if proto == 17 else l4[(l4[12] >> 4) * 4:]
        return ("ip", src, dst, proto, sport, dport, body, "")
    if proto in (1, 58) and l4:
        return ("ip", src, dst, proto, None, None, l4, f"icmp type {l4[0]}")
    return ("ip", src, dst, proto, None, None, l4, "")


def outer_fragment(frame):
    """True for an IPv4 fragment (MF or an offset) or an IPv6 packet with a Fragment header first."""
    etype = struct.unpack_from("!H", frame, 12)[0] if len(frame) >= 14 else 0
    p = frame[14:]
    if etype == 0x0800 and len(p) >= 20:
        return struct.unpack_from("!H", p, 6)[0] & 0x3FFF != 0
    return etype == 0x86DD and len(p) >= 40 and p[6] == 44


ND_TYPES = {133, 134, 135, 136, 137, 143}  # RS, RA, NS, NA, redirect, MLDv2 report


def psp_plausible(body):
    """A PSP header (spec: next header a tunnelled IP or transport protocol, version 0..1 (AES-GCM), the
    always-1 bit set) with room for its ICV."""
    if psp_split(body) is None:
        return False
    nh, flags = body[0], body[3]
    return nh in (4, 41, 6, 17, 1, 58) and flags & 1 == 1 and (flags >> 2) & 0xF in (0, 1)


TUNNEL_NEXT_HEADERS = {4, 41}


def psp_expected(body, mode, vc):
    """None when a PSP packet is of the mode the gateways run (tunnel: Next Header 4/41; transport: an L4
    protocol) and carries the virtualization cookie `vc` in the clear (when given), else what is wrong."""
    if mode and (body[0] in TUNNEL_NEXT_HEADERS) != (mode == "tunnel"):
        return f"has Next Header {body[0]} in {mode} mode"
    if vc is not None:
        _, clear, _, _ = psp_split(body)
        if not body[3] & 2 or len(clear) < 8 or int.from_bytes(clear[:8], "big") != vc:
            return f"does not carry the cookie 0x{vc:016x} in the clear"
    return None


def cmd_wire_check(a):
    """Every frame on the wire is PSP (UDP to port 1000) or gRPC (TCP/3000) between the two outer
    addresses, ARP, or ICMPv6 neighbour discovery; no frame carries the marker; PSP packets seen > 0."""
    frames = read_pcap(a.pcap)
    raw = open(a.pcap, "rb").read()
    pips = {str(ipaddress.ip_address(a.pip1)), str(ipaddress.ip_address(a.pip2))}
    counts = {"psp": 0, "grpc": 0, "nd/arp": 0, "bad": 0}
    bad = []
    for i, f in enumerate(frames, 1):
        kind, src, dst, proto, sport, dport, body, detail = outer(f)
        between = {src, dst} == pips
        if outer_fragment(f):  # issue 9: the gateways never send one (a DF-set, MTU-sized PSP packet)
            counts["bad"] += 1
            bad.append(f"frame {i}: an outer IP fragment {src} -> {dst}")
        elif kind == "arp" or (proto == 58 and body and body[0] in ND_TYPES):
            counts["nd/arp"] += 1
        elif between and proto == 17 and dport == PSP_PORT:
            why = psp_expected(body, a.mode, a.vc) if psp_plausible(body) else "without a PSP header"
            if why is None:
                counts["psp"] += 1
            elif why != "without a PSP header":
                counts["bad"] += 1
                bad.append(f"frame {i}: PSP {src} -> {dst} {why}: {bytes(body[:24]).hex()}")
            else:
                counts["bad"] += 1
                bad.append(f"frame {i}: UDP/1000 {src} -> {dst} without a PSP header: {bytes(body[:16]).hex()}")
        elif between and proto == 6 and 3000 in (sport, dport):
            counts["grpc"] += 1
        else:
            counts["bad"] += 1
            bad.append(f"frame {i}: {kind} {src} -> {dst} proto {proto} ports {sport}->{dport} {detail}")
    print(f"wire: {len(frames)} frames: {counts}")
    ok = True
    if bad:
        ok = False
        print("wire-check: frames that are not PSP/UDP-1000, gRPC or ND:\n  " + "\n  ".join(bad[:10]),
              file=sys.stderr)
    if counts["psp"] == 0:
        ok = False
        print("wire-check: no PSP (UDP/1000) packet between the outer addresses", file=sys.stderr)
    if a.marker and a.marker.encode() in raw:
        ok = False
        print(f"wire-check: the plaintext marker '{a.marker}' appears in the capture", file=sys.stderr)
    sys.exit(0 if ok else 1)


# ---- PSP ---------------------------------------------------------------------------------------------

def psp_payloads(pcap, src, dst):
    """UDP payloads of the PSP packets src -> dst:1000 in a capture, in order."""
    src, dst = str(ipaddress.ip_address(src)), str(ipaddress.ip_address(dst))
    out = []
    for f in read_pcap(pcap):
        kind, s, d, proto, _, dport, body, _ = outer(f)
        if kind == "ip" and s == src and d == dst and proto == 17 and dport == PSP_PORT and len(body) >= 32:
            out.append(bytes(body))
    return out


def psp_split(pkt):
    """(header, clear, ciphertext, icv) of a PSP UDP payload, or None when it is not one."""
    if len(pkt) < 16 + ICV_LEN:
        return None
    _, ext, off, flags, _, _ = PSP_HDR.unpack_from(pkt, 0)
    # The crypt offset counts from the end of the IV, VC included (spec: a VC is clear only when the
    # offset covers it); AAD = these 16 bytes + the clear bytes.
    clear_end = PSP_HDR.size + (off & 0x3F) * 4
    if ext != (2 if flags & 2 else 1) or clear_end > len(pkt) - ICV_LEN:
        return None
    return pkt[:PSP_HDR.size], pkt[PSP_HDR.size:clear_end], pkt[clear_end:-ICV_LEN], pkt[-ICV_LEN:]


def psp_open(key, pkt):
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    parts = psp_split(pkt)
    if parts is None:
        return None
    hdr, clear, ct, icv = parts
    try:
        return AESGCM(key).decrypt(hdr[4:16], ct + icv, hdr + clear)
    except InvalidTag:
        return None


def psp_seal(key, spi, iv, next_hdr, clear_words, vc, payload):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    ver_byte = ((1 if len(key) == 32 else 0) << 2) | (2 if vc is not None else 0) | 1
    hdr = PSP_HDR.pack(next_hdr, 2 if vc is not None else 1, clear_words, ver_byte, spi, iv)
    body = (struct.pack("!Q", vc) if vc is not None else b"") + payload
    clear, secret = body[:clear_words * 4], body[clear_words * 4:]
    return hdr + clear + AESGCM(key).encrypt(hdr[4:16], secret, hdr + clear)


HEX_RUN = re.compile(r"(?i)(?<![0-9a-f])(?:[0-9a-f]{2}[:\s-]?){15,31}[0-9a-f]{2}(?![0-9a-f])")


def key_candidates(logs):
    """Every 16- or 32-byte hex string in the logs (plain, or bytes separated by ':', ' ' or '-')."""
    seen = []
    for path in logs:
        text = open(path, encoding="utf-8", errors="replace").read()
        for m in HEX_RUN.finditer(text):
            digits = re.sub(r"[^0-9a-fA-F]", "", m.group(0))
            for n in (64, 32):  # a longer run may hold a key plus neighbouring hex
                for start in range(0, len(digits) - n + 1, 2):
                    k = bytes.fromhex(digits[start:start + n])
                    if k not in seen:
                        seen.append(k)
    return seen


def cmd_find_key(a):
    """Prints 'SPI KEYHEX': the key (from the -k logs) that authenticates a captured src->dst packet."""
    pkts = psp_payloads(a.pcap, a.src, a.dst)
    if not pkts:
        die(f"no PSP packet {a.src} -> {a.dst} in {a.pcap}")
    cands = key_candidates(a.logs)
    for pkt in pkts[:3]:
        spi = PSP_HDR.unpack_from(pkt, 0)[4]
        for k in cands:
            if psp_open(k, pkt) is not None:
                print(f"0x{spi:08x} {k.hex()}")
                return
    die(f"none of {len(cands)} hex strings in {' '.join(a.logs)} opens a captured packet "
        f"(SPI 0x{PSP_HDR.unpack_from(pkts[0], 0)[4]:08x}): does -k log the keys in hex?")


def tamper_positions(pkt):
    """Byte offsets to flip, each covered by the ICV: IV, a clear (authenticated) byte, first and last
    ciphertext byte, last ICV byte. The SPI is left alone: a changed SPI selects another key."""
    hdr, clear, ct, _ = psp_split(pkt)
    pos = [15]
    if clear:
        pos.append(len(hdr) + len(clear) - 1)
    if ct:
        pos += [len(hdr) + len(clear), len(pkt) - ICV_LEN - 1]
    pos.append(len(pkt) - 1)
    return pos


def cmd_inject_tampered(a):
    pkts = [p for p in psp_payloads(a.pcap, a.src, a.dst) if psp_split(p)]
    if not pkts:
        die(f"no PSP packet {a.src} -> {a.dst} in {a.pcap} to tamper with")
    s = socket.socket(family_of(a.dst), socket.SOCK_DGRAM)
    s.bind((a.src, 0))
    sent = 0
    while sent < a.count:
        pkt = pkts[sent % len(pkts)]
        pos = tamper_positions(pkt)
        at = pos[sent % len(pos)]
        bad = bytearray(pkt)
        bad[at] ^= 0x01
        s.sendto(bytes(bad), (a.dst, PSP_PORT))
        sent += 1
        time.sleep(0.02)
    print(f"injected {sent} tampered PSP packets {a.src} -> {a.dst}:{PSP_PORT}")


def inner_udp(src, dst, sport, dport, payload):
    """An inner IPv4/IPv6 + UDP packet with correct checksums."""
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    length = 8 + len(payload)
    if s.version == 4:
        pseudo = s.packed + d.packed + struct.pack("!BBH", 0, 17, length)
    else:
        pseudo = s.packed + d.packed + struct.pack("!IxxxB", length, 17)
    udp = struct.pack("!HHHH", sport, dport, length, 0) + payload
    c = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    if s.version == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, 0x1234, 0x4000, 64, 17, 0, s.packed, d.packed)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        return 4, ip + udp
    ip = struct.pack("!IHBB16s16s", 0x60000000, length, 17, 64, s.packed, d.packed)
    return 41, ip + udp


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    t = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return ~t & 0xFFFF


def cmd_craft(a):
    """One PSP tunnel-mode packet (inner src/dst of our choice) sealed with a known SA, sent to dst:1000."""
    key = bytes.fromhex(a.key)
    next_hdr, inner = inner_udp(a.inner_src, a.inner_dst, 40000, a.dport, a.payload.encode())
    clear_words = a.crypt_offset if a.crypt_offset is not None else (5 if next_hdr == 4 else 10)
    vc = int(a.vc, 0) if a.vc else None
    if vc is not None and a.crypt_offset is None:
        clear_words += 2  # DOCA's default keeps the VC in the clear too
    pkt = psp_seal(key, int(a.spi, 0), random.getrandbits(64), next_hdr, clear_words, vc, inner)
    s = socket.socket(family_of(a.dst), socket.SOCK_DGRAM)
    s.bind((a.src, 0))
    s.sendto(pkt, (a.dst, PSP_PORT))
    print(f"crafted PSP packet SPI {a.spi}, inner {a.inner_src} -> {a.inner_dst}:{a.dport}, {len(pkt)} bytes")


# ---- JSON --------------------------------------------------------------------------------------------

def lookup(doc, path):
    """'pipes[name=SYND_STATS].syndromes.auth_failed' -> value, or KeyError."""
    cur = doc
    for part in re.findall(r"[^.\[]+(?:\[[^\]]*\])?", path):
        m = re.fullmatch(r"([^\[]+)(?:\[(\w+)=([^\]]+)\])?", part)
        if not m:
            raise KeyError(part)
        key, sel_k, sel_v = m.groups()
        if not isinstance(cur, dict) or key not in cur:
            raise KeyError(key)
        cur = cur[key]
        if sel_k:
            hits = [e for e in cur if isinstance(e, dict) and str(e.get(sel_k)) == sel_v] if isinstance(cur, list) else []
            if not hits:
                raise KeyError(part)
            cur = hits[0]
    return cur


def cmd_json_get(a):
    """Prints the value at the first candidate path that exists; exit 3 naming them all when none does."""
    try:
        doc = json.load(open(a.file, encoding="utf-8"))
    except (OSError, ValueError) as e:
        die(f"{a.file}: not JSON: {e}", 3)
    for p in a.paths:
        try:
            v = lookup(doc, p)
        except KeyError:
            continue
        print(json.dumps(v) if isinstance(v, (dict, list)) else v)
        return
    top = list(doc) if isinstance(doc, dict) else type(doc).__name__
    die(f"{a.file}: none of the paths {a.paths} exists (top-level keys: {top})", 3)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("transfer-server")
    s.add_argument("--bind", required=True)
    s.add_argument("--port", type=int, default=5201)
    s.add_argument("--out", required=True)
    s.add_argument("--ready")
    s.add_argument("--timeout", type=float, default=30)
    s.set_defaults(fn=cmd_transfer_server)

    s = sub.add_parser("transfer-client")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, default=5201)
    s.add_argument("--size", type=int, default=4 << 20)
    s.add_argument("--marker", required=True)
    s.add_argument("--seed", type=int, default=4)
    s.add_argument("--timeout", type=float, default=30)
    s.set_defaults(fn=cmd_transfer_client)

    s = sub.add_parser("udp-listen")
    s.add_argument("--bind", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--ready")
    s.add_argument("--duration", type=float, default=120)
    s.set_defaults(fn=cmd_udp_listen)

    s = sub.add_parser("udp-send")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--payload", required=True)
    s.add_argument("--count", type=int, default=1)
    s.add_argument("--gap", type=float, default=0.05)
    s.set_defaults(fn=cmd_udp_send)

    s = sub.add_parser("wire-check")
    s.add_argument("pcap")
    s.add_argument("--pip1", required=True)
    s.add_argument("--pip2", required=True)
    s.add_argument("--marker")
    s.add_argument("--mode", choices=["tunnel", "transport"], help="PSP Next Headers must be of this mode")
    s.add_argument("--vc", type=lambda v: int(v, 0), help="every PSP packet carries this cookie in the clear")
    s.set_defaults(fn=cmd_wire_check)

    s = sub.add_parser("find-key")
    s.add_argument("pcap")
    s.add_argument("logs", nargs="+")
    s.add_argument("--src", required=True)
    s.add_argument("--dst", required=True)
    s.set_defaults(fn=cmd_find_key)

    s = sub.add_parser("inject-tampered")
    s.add_argument("pcap")
    s.add_argument("--src", required=True)
    s.add_argument("--dst", required=True)
    s.add_argument("--count", type=int, default=5)
    s.set_defaults(fn=cmd_inject_tampered)

    s = sub.add_parser("craft")
    s.add_argument("--key", required=True)
    s.add_argument("--spi", required=True)
    s.add_argument("--src", required=True, help="outer source (the injecting host's address)")
    s.add_argument("--dst", required=True, help="outer destination (the receiving gateway)")
    s.add_argument("--inner-src", required=True)
    s.add_argument("--inner-dst", required=True)
    s.add_argument("--dport", type=int, required=True)
    s.add_argument("--payload", required=True)
    s.add_argument("--crypt-offset", type=int)
    s.add_argument("--vc", help="virtualization cookie to carry (e.g. 0x778899aabbccddee)")
    s.set_defaults(fn=cmd_craft)

    s = sub.add_parser("json-get")
    s.add_argument("file")
    s.add_argument("paths", nargs="+")
    s.set_defaults(fn=cmd_json_get)

    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
