#!/usr/bin/env python3
"""psp-gateway speaks systemd's notify protocol (Type=notify): READY=1 only once start() succeeded (ports,
workers, gRPC and the admin socket up: its "started:" line is already written), STOPPING=1 on SIGTERM, exit
0; a gateway that cannot start sends no READY=1 and exits 1.

  notify_test.py PATH/TO/psp-gateway

Runs the real daemon as root in a fresh network namespace (unshare -n: its own loopback, its TAP gone with
it). NOTIFY_SOCKET points at a Unix datagram socket this test binds. Exit 77 (skipped) without root."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

DEADLINE_S = 20


def config(pip):
    return {
        "config": {"local-grpc-address": "127.0.0.1:3000", "local-pip": pip},
        "peers": [{"remote-grpc-address": "127.0.0.2:3000",
                   "sessions": [{"local-vip": "10.0.0.1", "remote-vips": ["10.0.0.2"]}]}],
    }


def start(binary, tmp, name, pip, notify_path):
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(config(pip), f)
    cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', binary, "-c", path,
           "--grpc-insecure", "--outer-ip-type", "ipv4", "-d", "pspnt0",
           "--admin-socket", os.path.join(tmp, name + ".sock")]
    env = dict(os.environ, NOTIFY_SOCKET=notify_path)
    env.pop("JOURNAL_STREAM", None)
    log = open(os.path.join(tmp, name + ".log"), "w+")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), log


def receive(sock, want, proc):
    """Datagrams until one carries `want` (True), or the process exits / the deadline passes (False)."""
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            if proc.poll() is not None:
                return False
            continue
        if want in msg.split("\n"):
            return True
    return False


def main():
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        print("SKIP: needs root and /dev/net/tun")
        return 77
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        notify_path = os.path.join(tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(notify_path)
        sock.settimeout(0.1)

        # Cannot start: its local-pip is on no interface, the PSP socket cannot bind. No READY=1.
        proc, log = start(binary, tmp, "bad", "192.0.2.1", notify_path)
        ready = receive(sock, "READY=1", proc)
        rc = proc.wait(timeout=DEADLINE_S)
        log.seek(0)
        if ready or rc != 1:
            print(f"FAIL: a gateway that cannot start sent READY=1={ready}, exit {rc}\n{log.read()}")
            return 1

        proc, log = start(binary, tmp, "good", "127.0.0.1", notify_path)
        if not receive(sock, "READY=1", proc):
            log.seek(0)
            print(f"FAIL: no READY=1 (exit {proc.poll()})\n{log.read()}")
            proc.kill()
            return 1
        log.flush()
        with open(log.name) as f:
            text = f.read()
        if "started:" not in text or not os.path.exists(os.path.join(tmp, "good.sock")):
            print(f"FAIL: READY=1 before start() finished (no 'started:' line or admin socket)\n{text}")
            proc.kill()
            return 1
        proc.send_signal(signal.SIGTERM)
        stopping = receive(sock, "STOPPING=1", proc)
        rc = proc.wait(timeout=DEADLINE_S)
        if not stopping or rc != 0:
            print(f"FAIL: SIGTERM: STOPPING=1 {stopping}, exit {rc}")
            return 1
    print("PASS: READY=1 after start, none when start fails, STOPPING=1 and exit 0 on SIGTERM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
