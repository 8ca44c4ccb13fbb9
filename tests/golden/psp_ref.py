#!/usr/bin/env python3
"""An independent model of the google/psp reference tools, for psp-pcap's golden tests.

Written from the reference sources' behaviour (create_pcap.c, psp_encrypt.c, psp.h) and the spec page
(shared/spec/psp-protocol.md), sharing no code with psp-pcap. Framing, checksums and pcap files use only
the standard library; AES-GCM and AES-CMAC (key derivation) come from the `cryptography` package when it
is installed (Debian: python3-cryptography). Without it, only create and the published AEAD vector
(whose ciphertext is in the spec) can be modelled.

Usage:
  psp_ref.py create OUT [-n N] [-i 4|6] [-e] --start-time SEC   # the reference create_pcap
  psp_ref.py encrypt CFG IN OUT [-e]                          # the reference psp_encrypt
  psp_ref.py spec-vector IN OUT                               # the spec's AEAD vector as pcaps
  psp_ref.py regen tests/golden/data                          # rewrite the committed golden captures
"""
import argparse
import struct
import sys

PCAP_HDR = struct.Struct("<IHHiIII")  # written by a little-endian host, as libpcap's pcap_dump does
REC_HDR = struct.Struct("<IIII")
MAGIC_USEC = 0xA1B2C3D4
JUMBO = 9014  # ETH_JUMBO_MAX_OCTETS: snaplen of psp_encrypt/psp_decrypt output
CREATE_FRAME = 1434  # 1514 - (16 + 40 + 8 + 16)


# ---- pcap files --------------------------------------------------------------------------------------

def write_pcap(path, snaplen, records):
    with open(path, "wb") as f:
        f.write(PCAP_HDR.pack(MAGIC_USEC, 2, 4, 0, 0, snaplen, 1))
        for (sec, usec), frame in records:
            f.write(REC_HDR.pack(sec, usec, len(frame), len(frame)))
            f.write(frame)


def read_pcap(path):
    data = open(path, "rb").read()
    magic, _, _, _, _, snaplen, linktype = PCAP_HDR.unpack_from(data, 0)
    assert magic == MAGIC_USEC and linktype == 1, path
    off, records = PCAP_HDR.size, []
    while off < len(data):
        sec, usec, caplen, length = REC_HDR.unpack_from(data, off)
        off += REC_HDR.size
        records.append(((sec, usec), data[off:off + caplen]))
        off += caplen
    return snaplen, records


# ---- checksums ---------------------------------------------------------------------------------------

def csum(data, start=0):
    if len(data) % 2:
        data += b"\0"
    s = start + sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def fold(s):
    return ~s & 0xFFFF


def ipv4_with_checksum(hdr):
    hdr = bytearray(hdr)
    hdr[10:12] = b"\0\0"
    hdr[10:12] = struct.pack("!H", fold(csum(bytes(hdr))))
    return bytes(hdr)


# ---- create_pcap -------------------------------------------------------------------------------------

def create_frame(n, version, empty):
    eth = bytes.fromhex("008899aabb00" "002233445500") + struct.pack("!H", 0x0800 if version == 4 else 0x86DD)
    ip_len = 20 if version == 4 else 40
    payload_len = 0 if empty else CREATE_FRAME - 14 - ip_len - 8
    payload = bytes((n + i) & 0xFF for i in range(payload_len))
    udp_len = 8 + payload_len
    if version == 4:
        src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
        ip = ipv4_with_checksum(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, 17, 0, src, dst))
        pseudo = src + dst
    else:
        src, dst = bytes([10] + [0] * 14 + [1]), bytes([10] + [0] * 14 + [2])
        ip = struct.pack("!IHBB16s16s", 0x60000000, udp_len, 17, 64, src, dst)
        pseudo = src + dst
    udp0 = struct.pack("!HHHH", 11111, 22222, udp_len, 0)
    c = fold(csum(pseudo + struct.pack("!HH", 17, udp_len) + udp0 + payload))
    udp = struct.pack("!HHHH", 11111, 22222, udp_len, c or 0xFFFF)
    return eth + ip + udp + payload


def create(out, n, version, empty, start_sec):
    records = [((start_sec, i), create_frame(i, version, empty)) for i in range(n)]
    write_pcap(out, CREATE_FRAME, records)


# ---- psp_encrypt -------------------------------------------------------------------------------------

def parse_cfg(text):
    t = text.split()
    k0, k1 = bytes(int(x, 16) for x in t[0:32]), bytes(int(x, 16) for x in t[32:64])
    return dict(keys=(k0, k1), spi=int(t[64], 16), mode=t[65], version=0 if t[66] == "aes-gcm-128" else 1,
                t_off=int(t[67]), v4_off=int(t[68]), v6_off=int(t[69]), vc=t[70] == "vc")


def derive_key(keys, spi, version):
    from cryptography.hazmat.primitives.cmac import CMAC
    from cryptography.hazmat.primitives.ciphers import algorithms

    def block(counter):
        label = b"Pv0\0" if version == 0 else b"Pv1\0"
        return struct.pack("!I4sII", counter, label, spi, 128 if version == 0 else 256)

    mk = keys[1] if spi & 0x80000000 else keys[0]
    out = b""
    for counter in (1, 2)[: 1 + version]:
        c = CMAC(algorithms.AES(mk))
        c.update(block(counter))
        out += c.finalize()
    return out


def gcm_seal(key, nonce, aad, plaintext):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    sealed = AESGCM(key).encrypt(nonce, plaintext, aad)
    return sealed[:-16], sealed[-16:]


def psp_seal(key, header, body, crypt_off):
    """header: the 16-byte PSP header; body: VC (if any) + data. Returns header + clear + ciphertext + ICV."""
    clear, secret = body[:crypt_off], body[crypt_off:]
    ct, tag = gcm_seal(key, header[4:16], header + clear, secret)
    return header + clear + ct + tag


def l4_sport(frame, l4_at, proto):
    if proto in (6, 17):
        sport, dport = struct.unpack_from("!HH", frame, l4_at)
        return sport ^ dport
    return 1000


def encrypt_frame(cfg, key, iv, frame, corrupt):
    """The reference's frame, or None where it skips the frame."""
    etype = struct.unpack_from("!H", frame, 12)[0]
    if etype not in (0x0800, 0x86DD):
        return None
    v4 = etype == 0x0800
    vc = b"\0" * 8 if cfg["vc"] else b""
    ver_byte = (cfg["version"] << 2) | (2 if vc else 0) | 1
    ext_len = 2 if vc else 1
    if cfg["mode"] == "transport":
        ip_hdr = (frame[14] & 0xF) * 4 if v4 else 40
        proto = frame[14 + 9] if v4 else frame[14 + 6]
        if not v4 and proto not in (6, 17):
            return None
        payload = frame[14 + ip_hdr:]
        off = cfg["t_off"]
        if off * 4 > len(payload):
            return None
        ip = bytearray(frame[14:14 + ip_hdr])
        if v4:
            ip[2:4] = struct.pack("!H", struct.unpack_from("!H", ip, 2)[0] + 40 + len(vc))
            ip[9] = 17
            ip = ipv4_with_checksum(ip)
        else:
            ip[4:6] = struct.pack("!H", struct.unpack_from("!H", ip, 4)[0] + 40 + len(vc))
            ip[6] = 17
        sport = l4_sport(frame, 14 + ip_hdr, proto)
        udp = struct.pack("!HHHH", sport, 1000, len(payload) + 40 + len(vc), 0)
        next_hdr, protected = proto, payload
    else:
        ip_hdr = (frame[14] & 0xF) * 4 if v4 else 40
        proto = frame[14 + 9] if v4 else frame[14 + 6]
        protected = frame[14:]
        off = cfg["v4_off"] if v4 else cfg["v6_off"]
        if off * 4 > len(protected):
            return None
        if v4:
            ip = bytearray(frame[14:34])
            ip[0] = 0x45
            ip[2:4] = struct.pack("!H", struct.unpack_from("!H", ip, 2)[0] + 60 + len(vc))
            ip[9] = 17
            ip = ipv4_with_checksum(ip)
        else:
            ip = bytearray(frame[14:54])
            ip[4:6] = struct.pack("!H", struct.unpack_from("!H", ip, 4)[0] + 80 + len(vc))
            ip[6] = 17
        sport = l4_sport(frame, 14 + ip_hdr, proto)
        udp = struct.pack("!HHHH", sport, 1000, len(protected) + 40 + len(vc), 0)
        next_hdr = 4 if v4 else 41
    header = struct.pack("!BBBBIQ", next_hdr, ext_len, off, ver_byte, cfg["spi"], iv)
    psp = bytearray(psp_seal(key, header, vc + protected, off * 4))
    if corrupt:
        psp[2] |= 0x80
    return frame[:14] + bytes(ip) + udp + bytes(psp)


def encrypt(cfg_path, in_path, out_path, corrupt=False, key=None, first_iv=1):
    cfg = parse_cfg(open(cfg_path).read())
    key = key or derive_key(cfg["keys"], cfg["spi"], cfg["version"])
    _, records = read_pcap(in_path)
    out, iv = [], first_iv
    for ts, frame in records:
        sealed = encrypt_frame(cfg, key, iv, frame, corrupt)
        if sealed is not None:
            out.append((ts, sealed))
            iv += 1
    write_pcap(out_path, JUMBO, out)


# ---- the published AEAD vector (spec page §4), framed in IPv4 tunnel mode ---------------------------

SPEC_INNER = bytes.fromhex(
    "450000250001000040117cc57f0000017f00000104d2162e0011a0c4414141414141414141")
SPEC_SEALED = bytes.fromhex(
    "0401050111223344010203040506070845000025000100004011 7cc57f0000017f0000018e3e2b1345c76bf95cdac39b"
    "861762a0cfdffbbebbc6313a2b9de064759cdd71c9".replace(" ", ""))
SPEC_KEY = "ffeeddccbbaa99887766554433221100"
SPEC_CFG = " ".join(["00"] * 64) + " 11223344 tunnel aes-gcm-128 0 5 0 no-vc\n"


def spec_vector(in_path, out_path):
    eth = bytes.fromhex("008899aabb00002233445500") + b"\x08\x00"
    outer = bytearray(SPEC_INNER[:20])
    outer[2:4] = struct.pack("!H", 20 + 8 + len(SPEC_SEALED))
    outer = ipv4_with_checksum(outer)
    sport = 0x04D2 ^ 0x162E
    udp = struct.pack("!HHHH", sport, 1000, 8 + len(SPEC_SEALED), 0)
    write_pcap(in_path, CREATE_FRAME, [((1700000000, 0), eth + SPEC_INNER)])
    write_pcap(out_path, JUMBO, [((1700000000, 0), eth + outer + udp + SPEC_SEALED)])


K0 = "34 44 8a 06 42 92 60 1b 11 a0 97 8f 56 a2 d3 4c f3 fc 35 ed e1 a6 bc 04 f8 db 3e 52 43 a2 b0 ca"
K1 = "56 39 52 56 5d 3a 78 ae 77 3e c1 b7 79 f2 f2 d9 9f 4a 7f 53 a6 fb b9 b0 7d 5b 71 f3 93 64 d7 39"
GOLDEN_CFGS = {
    "v4_transport_128.cfg": "12345678 transport aes-gcm-128 1 6 11 no-vc",
    "v6_tunnel_256_vc.cfg": "9A345678 tunnel aes-gcm-256 0 0 1 vc",
}


def regen(d):
    """Writes tests/golden/data/ (needs `cryptography` for the two encrypted captures)."""
    import os
    for name, sa in GOLDEN_CFGS.items():
        open(os.path.join(d, name), "w").write(f"{K0}\n{K1}\n" + sa.replace(" ", "\n") + "\n")
    open(os.path.join(d, "spec_vector.cfg"), "w").write(SPEC_CFG)
    create(os.path.join(d, "clear_v4.pcap"), 2, 4, False, 1700000000)
    create(os.path.join(d, "clear_v6_empty.pcap"), 2, 6, True, 1700000000)
    encrypt(os.path.join(d, "v4_transport_128.cfg"), os.path.join(d, "clear_v4.pcap"),
            os.path.join(d, "enc_v4_transport_128.pcap"))
    encrypt(os.path.join(d, "v6_tunnel_256_vc.cfg"), os.path.join(d, "clear_v6_empty.pcap"),
            os.path.join(d, "enc_v6_empty_tunnel_256_vc.pcap"))
    spec_vector(os.path.join(d, "spec_vector_in.pcap"), os.path.join(d, "spec_vector_out.pcap"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("out")
    c.add_argument("-n", type=int, default=1)
    c.add_argument("-i", type=int, default=4, choices=(4, 6))
    c.add_argument("-e", action="store_true")
    c.add_argument("--start-time", type=int, required=True)
    e = sub.add_parser("encrypt")
    e.add_argument("cfg")
    e.add_argument("inp")
    e.add_argument("out")
    e.add_argument("-e", action="store_true")
    s = sub.add_parser("spec-vector")
    s.add_argument("inp")
    s.add_argument("out")
    r = sub.add_parser("regen")
    r.add_argument("dir")
    a = ap.parse_args()
    if a.cmd == "create":
        create(a.out, a.n, a.i, a.e, a.start_time)
    elif a.cmd == "encrypt":
        encrypt(a.cfg, a.inp, a.out, a.e)
    elif a.cmd == "spec-vector":
        spec_vector(a.inp, a.out)
    else:
        regen(a.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
