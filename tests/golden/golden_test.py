#!/usr/bin/env python3
"""Golden tests of the psp-pcap binary (run by ctest; one case per invocation).

  golden_test.py PSP_PCAP DATA_DIR CASE
  CASE: roundtrip | corrupt | errors | files | tshark | model

Exit 0 pass, 1 fail, 77 skip (tshark or python3-cryptography missing).
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import psp_ref  # noqa: E402  (the independent model of the reference tools)

SKIP = 77
K0 = "34 44 8a 06 42 92 60 1b 11 a0 97 8f 56 a2 d3 4c f3 fc 35 ed e1 a6 bc 04 f8 db 3e 52 43 a2 b0 ca"
K1 = "56 39 52 56 5d 3a 78 ae 77 3e c1 b7 79 f2 f2 d9 9f 4a 7f 53 a6 fb b9 b0 7d 5b 71 f3 93 64 d7 39"
START = "1700000000"


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class Env:
    def __init__(self, tool, data, tmp):
        self.tool, self.data, self.tmp = tool, data, tmp

    def path(self, name):
        return os.path.join(self.tmp, name)

    def run(self, *args, expect=0):
        p = subprocess.run([self.tool, *args], capture_output=True, text=True, timeout=60)
        check(p.returncode == expect,
              f"psp-pcap {' '.join(args)}: exit {p.returncode}, expected {expect}\n{p.stdout}{p.stderr}")
        return p

    def config(self, name, spi="9A345678", mode="tunnel", alg="aes-gcm-128", offsets="1 6 11", vc="no-vc"):
        path = self.path(name)
        with open(path, "w") as f:
            f.write(f"{K0}\n{K1}\n{spi}\n{mode}\n{alg}\n{offsets.replace(' ', chr(10))}\n{vc}\n")
        return path

    def create(self, name, ip, empty, n=3):
        out = self.path(name)
        self.run("create", "-o", out, "-n", str(n), "-i", str(ip), *(["-e"] if empty else []), "--start-time", START)
        return out


def same_records(a, b):
    """Same frames and timestamps; the file headers may differ only in snaplen (create writes 1434,
    encrypt/decrypt 9014, as the reference tools do)."""
    ha, hb = open(a, "rb").read(24), open(b, "rb").read(24)
    return ha[:16] == hb[:16] and ha[20:] == hb[20:] and psp_ref.read_pcap(a)[1] == psp_ref.read_pcap(b)[1]


MATRIX = [(mode, ip, alg, vc, empty)
          for mode in ("transport", "tunnel") for ip in (4, 6) for alg in ("aes-gcm-128", "aes-gcm-256")
          for vc in ("vc", "no-vc") for empty in (False, True)]


def case_roundtrip(env):
    """create -> encrypt -> decrypt restores every frame and timestamp, in every mode."""
    dec_cfg = env.path("dec.cfg")
    with open(dec_cfg, "w") as f:
        f.write(f"{K0}\n{K1}\n")
    for mode, ip, alg, vc, empty in MATRIX:
        tag = f"{mode}-v{ip}-{alg}-{vc}{'-empty' if empty else ''}"
        clear = env.create(f"{tag}.pcap", ip, empty)
        cfg = env.config(f"{tag}.cfg", mode=mode, alg=alg, vc=vc, offsets="0 0 0" if empty else "2 6 11")
        enc, dec = env.path(f"{tag}.enc.pcap"), env.path(f"{tag}.dec.pcap")
        out = env.run("encrypt", "-c", cfg, "-i", clear, "-o", enc).stdout
        check(f"encrypted 3 packets in {enc}, skipped 0 packets" in out, f"{tag}: {out}")
        out = env.run("decrypt", "-c", dec_cfg, "-i", enc, "-o", dec).stdout
        check(f"decrypted 3 packets in {dec}, skipped 0 packets, failed 0 packets" in out, f"{tag}: {out}")
        check(same_records(clear, dec), f"{tag}: decrypted capture differs from the input")
        check(open(clear, "rb").read()[24:] == open(dec, "rb").read()[24:], f"{tag}: bytes differ")


def case_corrupt(env):
    """-e: every frame fails authentication; none is written; exit status 2."""
    for mode, ip, alg, vc, empty in MATRIX:
        tag = f"{mode}-v{ip}-{alg}-{vc}{'-empty' if empty else ''}"
        clear = env.create(f"{tag}.pcap", ip, empty)
        cfg = env.config(f"{tag}.cfg", mode=mode, alg=alg, vc=vc, offsets="0 0 0")
        enc, dec = env.path(f"{tag}.enc.pcap"), env.path(f"{tag}.dec.pcap")
        env.run("encrypt", "-c", cfg, "-i", clear, "-o", enc, "-e")
        p = env.run("decrypt", "-c", cfg, "-i", enc, "-o", dec, expect=2)
        check("decrypted 0 packets" in p.stdout and "failed 3 packets" in p.stdout and
              "failed 3: auth-failed" in p.stdout, f"{tag}: {p.stdout}")
        check(psp_ref.read_pcap(dec)[1] == [], f"{tag}: a corrupted frame was written")


def case_errors(env):
    """Fatal errors name the problem, exit 1 and leave no output behind."""
    clear = env.create("c.pcap", 4, False, n=2)
    good = env.config("good.cfg")
    out = env.path("out.pcap")

    def fails(args, message):
        p = env.run(*args, expect=1)
        check(message in p.stderr, f"expected '{message}' in: {p.stderr}")
        check(not os.path.exists(out), f"{args}: output left behind")

    fails(["encrypt", "-c", env.path("missing.cfg"), "-i", clear, "-o", out], "cannot open config")
    fails(["encrypt", "-c", good, "-i", env.path("missing.pcap"), "-o", out], "missing.pcap: No such file")
    bad = env.config("bad.cfg", offsets="1 64 11")
    fails(["encrypt", "-c", bad, "-i", clear, "-o", out],
          "item 7 (IPv4 tunnel crypt offset), line 7: expected a crypt offset in 4-octet units, 0 to 63, found '64'")
    data = open(clear, "rb").read()
    truncated = env.path("truncated.pcap")
    open(truncated, "wb").write(data[:24 + 16 + 1434 + 16 + 100])
    fails(["encrypt", "-c", good, "-i", truncated, "-o", out],
          "record 2 (byte offset 1474): truncated packet data (100 of 1434 bytes)")
    cooked = env.path("cooked.pcap")
    open(cooked, "wb").write(data[:20] + struct.pack("<I", 113) + data[24:])
    fails(["encrypt", "-c", good, "-i", cooked, "-o", out], "link type 113 is not Ethernet (1)")
    ng = env.path("ng.pcapng")
    open(ng, "wb").write(bytes.fromhex("0a0d0d0a") + data[4:])
    fails(["decrypt", "-c", good, "-i", ng, "-o", out], "pcapng is not supported")
    partial = env.path("partial.pcap")
    open(partial, "wb").write(data[:24 + 12] + struct.pack("<I", 2000) + data[24 + 16:])
    fails(["encrypt", "-c", good, "-i", partial, "-o", out], "record 1: partial capture (1434 of 2000 bytes)")
    jumbo = env.path("jumbo.pcap")
    psp_ref.write_pcap(jumbo, 65535, [((1, 0), data[40:40 + 14] + bytes(9000))])
    fails(["encrypt", "-c", good, "-i", jumbo, "-o", out], "record 1: frame of 9014 bytes is too large to encrypt")
    fails(["create", "-o", out, "-i", "5"], "--ip: 5 not in {4,6}")


def case_files(env):
    """Byte-for-byte against committed captures made by psp_ref.py (independent of psp-pcap)."""
    d = env.data
    for name, ip, empty in (("clear_v4.pcap", 4, False), ("clear_v6_empty.pcap", 6, True)):
        out = env.create(name, ip, empty, n=2)
        check(open(out, "rb").read() == open(os.path.join(d, name), "rb").read(), f"create differs from {name}")
    for cfg, clear, want in (("v4_transport_128.cfg", "clear_v4.pcap", "enc_v4_transport_128.pcap"),
                             ("v6_tunnel_256_vc.cfg", "clear_v6_empty.pcap", "enc_v6_empty_tunnel_256_vc.pcap")):
        out = env.path(want)
        env.run("encrypt", "-c", os.path.join(d, cfg), "-i", os.path.join(d, clear), "-o", out)
        check(open(out, "rb").read() == open(os.path.join(d, want), "rb").read(), f"encrypt differs from {want}")
        back = env.path("back-" + want)
        env.run("decrypt", "-c", os.path.join(d, cfg), "-i", out, "-o", back)
        check(same_records(back, os.path.join(d, clear)), f"decrypt of {want} differs from {clear}")
    # The spec's published AEAD vector, with its raw key and IV.
    out = env.path("spec_vector_out.pcap")
    env.run("encrypt", "-c", os.path.join(d, "spec_vector.cfg"), "-i", os.path.join(d, "spec_vector_in.pcap"),
            "-o", out, "--key", psp_ref.SPEC_KEY, "--first-iv", "0x0102030405060708")
    check(open(out, "rb").read() == open(os.path.join(d, "spec_vector_out.pcap"), "rb").read(),
          "spec AEAD vector: output differs")


def case_tshark(env):
    """tshark reads every stage; the PSP header sits where the spec puts it (tshark 4.0 has no PSP
    dissector, so the UDP payload is checked as data)."""
    tshark = shutil.which("tshark")
    if tshark is None:
        return SKIP
    clear = env.create("c.pcap", 6, False, n=2)
    cfg = env.config("t.cfg", spi="9A345678", mode="tunnel", alg="aes-gcm-256", vc="vc")
    enc, dec = env.path("e.pcap"), env.path("d.pcap")
    env.run("encrypt", "-c", cfg, "-i", clear, "-o", enc)
    env.run("decrypt", "-c", cfg, "-i", enc, "-o", dec)
    for f in (clear, enc, dec):
        p = subprocess.run([tshark, "-r", f, "-c", "1"], capture_output=True, text=True, timeout=60)
        check(p.returncode == 0, f"tshark -r {f}: {p.stderr}")
    p = subprocess.run([tshark, "-r", enc, "-T", "fields", "-e", "udp.srcport", "-e", "udp.dstport", "-e", "data.data"],
                       capture_output=True, text=True, timeout=60)
    lines = p.stdout.split()
    check(p.returncode == 0 and len(lines) == 6, f"tshark fields: {p.stdout}{p.stderr}")
    for i in range(2):
        sport, dport, payload = lines[3 * i:3 * i + 3]
        check(sport == str(11111 ^ 22222) and dport == "1000", f"ports {sport} {dport}")
        # next header 41, hdr ext len 2 (VC), crypt offset 11, version 1 + V + 1, SPI, IV i + 1, VC 0
        want = "29020b07" + "9a345678" + "%016x" % (i + 1)
        check(payload.startswith(want), f"PSP header {payload[:48]} != {want}")
    p = subprocess.run([tshark, "-r", dec, "-T", "fields", "-e", "udp.srcport", "-e", "udp.dstport"],
                       capture_output=True, text=True, timeout=60)
    check(p.stdout.split() == ["11111", "22222"] * 2, f"decrypted ports: {p.stdout}")


def case_model(env):
    """Differential: psp-pcap encrypt == the independent model of psp_encrypt, across the config space."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        print("python3-cryptography not installed: skipping")
        return SKIP
    inputs = [env.create(f"c{ip}{e}.pcap", ip, e == "e") for ip in (4, 6) for e in ("", "e")]
    n = 0
    for mode in ("transport", "tunnel"):
        for alg in ("aes-gcm-128", "aes-gcm-256"):
            for vc in ("vc", "no-vc"):
                for offsets in ("0 0 0", "1 6 11", "3 8 13", "63 63 63"):
                    cfg = env.config("m.cfg", spi="9A345678" if n % 2 else "12345678", mode=mode, alg=alg,
                                     offsets=offsets, vc=vc)
                    for clear in inputs:
                        for corrupt in ([], ["-e"]):
                            env.run("encrypt", "-c", cfg, "-i", clear, "-o", env.path("tool.pcap"), *corrupt)
                            psp_ref.encrypt(cfg, clear, env.path("model.pcap"), corrupt=bool(corrupt))
                            check(open(env.path("tool.pcap"), "rb").read() == open(env.path("model.pcap"), "rb").read(),
                                  f"{mode} {alg} {vc} '{offsets}' {os.path.basename(clear)} {corrupt}: differs")
                            n += 1
    print(f"{n} configurations byte-identical to the model")


CASES = {"roundtrip": case_roundtrip, "corrupt": case_corrupt, "errors": case_errors, "files": case_files,
         "tshark": case_tshark, "model": case_model}


def main():
    tool, data, case = sys.argv[1:4]
    with tempfile.TemporaryDirectory(prefix="psp-golden-") as tmp:
        try:
            rc = CASES[case](Env(tool, data, tmp)) or 0
        except Failure as e:
            print(f"FAIL {case}: {e}")
            return 1
    print(("SKIP " if rc == SKIP else "PASS ") + case)
    return rc


if __name__ == "__main__":
    sys.exit(main())
