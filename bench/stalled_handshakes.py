#!/usr/bin/env python3
"""portholed's memory across TLS handshakes that stall, then close.

Starts portholed (init + serve) in a temporary directory on a free
loopback port, reads its VmRSS, then opens N TCP connections (default
3,000), sends a real ClientHello on each and never answers the server's
flight, so every handshake stalls half way. It reads VmRSS while they
are held (peak), closes them all, waits until portholed has dropped them
(its /proc/<pid>/fd count falls back) and a few seconds more, and reads
VmRSS again. One JSON line on stdout:

    {"connections": N, "opened": K, "rss_kb_start": ..,
     "rss_kb_held": .., "rss_kb_after": .., "rss_kb_per_conn_held": ..}

Loopback only; every wait is bounded. Needs RLIMIT_NOFILE above N + 100
for this process (it raises its own soft limit up to the hard one) and
for portholed (which raises its own).

    PORTHOLE_BIN=build/bin python3 bench/stalled_handshakes.py [-n 3000]
"""

import argparse
import json
import os
import resource
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_hello(ca):
    """The first flight of a real TLS client, as bytes."""
    ctx = ssl.create_default_context(cafile=ca)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def wait_serving(port, timeout):
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.1) + 2):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("--settle", type=float, default=7.0,
                    help="seconds to wait after the server dropped them "
                    "(portholed gives memory back on a 5 s tick)")
    ap.add_argument("--no-hello", action="store_true",
                    help="connect and send nothing (TCP only)")
    ap.add_argument("--default-caps", action="store_true",
                    help="keep portholed's unauthenticated-connection caps "
                    "(by default they are lifted so every handshake gets "
                    "in)")
    ap.add_argument("--bin", default=os.environ.get("PORTHOLE_BIN",
                                                    "build/bin"))
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, args.n + 200)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < args.n + 100:
        sys.exit("RLIMIT_NOFILE hard limit %d is too low for -n %d"
                 % (hard, args.n))
    tmp = tempfile.mkdtemp(prefix="porthole-stall-")
    data = os.path.join(tmp, "server")
    portholed = os.path.join(os.path.abspath(args.bin), "portholed")
    log = open(os.path.join(tmp, "portholed.log"), "wb")
    srv = None
    socks = []
    try:
        subprocess.run([portholed, "init", "--data-dir", data],
                       check=True, stdout=log, stderr=log, timeout=60)
        # This measures memory, not the unauthenticated-connection caps:
        # lift them so every handshake gets in.
        cfg_path = os.path.join(data, "config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        if not args.default_caps:
            cfg.update({"MaxUnauthenticatedConnections": args.n + 100,
                        "MaxUnauthenticatedPerSource": args.n + 100})
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        port = free_port()
        env = dict(os.environ, PORTHOLE_LOG="error")
        srv = subprocess.Popen([portholed, "serve", "--data-dir", data,
                                "--listen", "127.0.0.1:%d" % port],
                               stdout=log, stderr=log, env=env,
                               stdin=subprocess.DEVNULL)
        if not wait_serving(port, 20):
            sys.exit("portholed did not start")
        time.sleep(1.0)
        fds0 = nfds(srv.pid)
        start = rss_kb(srv.pid)
        hello = client_hello(os.path.join(data, "ca.pem"))
        for _ in range(args.n):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                if not args.no_hello:
                    s.sendall(hello)
                socks.append(s)
            except OSError:
                break
        # The server has answered every ClientHello (its flight waits in
        # our receive buffers) once it has read them all: bounded wait.
        deadline = time.monotonic() + (30 if not args.no_hello else 3)
        pending = {s.fileno(): s for s in socks}
        poller = select.poll()
        for fd in pending:
            poller.register(fd, select.POLLIN)
        for _ in range(100000):
            if not pending or time.monotonic() > deadline:
                break
            for fd, _ev in poller.poll(1000):
                if fd in pending:
                    poller.unregister(fd)
                    del pending[fd]
        # Answered: the server's flight arrived, or (refused) it closed.
        answered = len(socks) - len(pending)
        held_fds = nfds(srv.pid) - fds0
        held = rss_kb(srv.pid)
        for s in socks:
            s.close()
        socks = []
        deadline = time.monotonic() + 60
        for _ in range(600):
            if nfds(srv.pid) <= fds0 + 5 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        time.sleep(args.settle)
        after = rss_kb(srv.pid)
        print(json.dumps({
            "connections": args.n, "hello": not args.no_hello,
            "caps": "default" if args.default_caps else "lifted",
            "answered": answered, "server_fds_held": held_fds,
            "rss_kb_start": start, "rss_kb_held": held,
            "rss_kb_after": after,
            "rss_kb_per_conn_held": round((held - start) / max(1, args.n),
                                          1)}))
    finally:
        for s in socks:
            s.close()
        if srv is not None:
            srv.terminate()
            try:
                srv.wait(timeout=10)
            except subprocess.TimeoutExpired:
                srv.kill()
                srv.wait(timeout=10)
        log.close()
        if not os.environ.get("PORTHOLE_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            sys.stderr.write("kept %s\n" % tmp)


if __name__ == "__main__":
    main()
