"""Memory of TLS handshakes that stall is given back.

1,000 connections (250 from each of four loopback addresses, under the
default per-source cap) each send a real ClientHello and then nothing;
portholed answers each and waits. When they close, portholed's VmRSS
must fall back near where it was before them (it used to stay at the
peak: glibc kept the freed heap). The full-size measurement with 3,000
connections is bench/stalled_handshakes.py.

Loopback only; every wait is bounded in time and count.
"""

import select
import socket
import ssl
import time

import harness

SOURCES = ["127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"]
PER_SOURCE = 250


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def client_hello(ca):
    ctx = ssl.create_default_context(cafile=ca)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class StalledHandshakes(harness.ClusterTestCase):
    with_agent = False

    def test_memory_is_given_back(self):
        c = self.cluster
        pid = c.server.pid
        time.sleep(1)
        start = vmrss_kb(pid)
        hello = client_hello(c.ca)
        socks = []
        try:
            for src in SOURCES:
                for _ in range(PER_SOURCE):
                    s = socket.create_connection(
                        ("127.0.0.1", c.port), timeout=20,
                        source_address=(src, 0))
                    socks.append(s)
                    s.sendall(hello)
            # Each is answered (the server's flight arrives) once the
            # server has taken its ClientHello.
            pending = {s.fileno() for s in socks}
            poller = select.poll()
            for fd in pending:
                poller.register(fd, select.POLLIN)
            deadline = time.monotonic() + 60
            for _ in range(10000):
                if not pending or time.monotonic() > deadline:
                    break
                for fd, _ev in poller.poll(500):
                    if fd in pending:
                        poller.unregister(fd)
                        pending.discard(fd)
            self.assertEqual(len(pending), 0, "not all were answered")
            held = vmrss_kb(pid)
        finally:
            for s in socks:
                s.close()
        grown = held - start
        # ~48 KiB each: make sure there was something to give back.
        self.assertGreater(grown, 20 * 1024, "start %d held %d KiB"
                           % (start, held))
        try:
            harness.wait_for(
                lambda: vmrss_kb(pid) < start + grown // 4, 60, 0.5,
                "VmRSS to fall back")
        except TimeoutError:
            self.fail("VmRSS %d KiB after the close (start %d, held %d)"
                      % (vmrss_kb(pid), start, held))
        # And portholed still serves.
        c.ssm().describe_activations()


if __name__ == "__main__":
    harness.main()
