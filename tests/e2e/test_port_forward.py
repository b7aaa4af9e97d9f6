"""Port forwarding through sessions: AWS-StartPortForwardingSession and
AWS-StartPortForwardingSessionToRemoteHost.

Proves, with a threaded HTTP server on loopback as the destination and
curl as the local program:

- through `aws ssm start-session` (our session-manager-plugin) and
  `porthole start-session`, a 100 MB download and a 100 MB upload (PUT)
  are byte-exact (SHA-256 on both ends), the client prints AWS's lines
  ("Port N opened for sessionId ...", "Waiting for connections...") and
  the session is listed in DescribeSessions;
- localPortNumber 0 makes the client pick a free port and print it;
- a session document of our own (DocumentType Session, sessionType Port)
  with localConnectionType unix makes the client listen on a unix socket
  (mode 0600, removed when the client exits) that curl --unix-socket
  reaches;
- 100 connections held open at once through one multiplexed session, each
  moving 256 KiB down and 64 KiB up, are all byte-exact;
- ...ToRemoteHost with host=127.0.0.2 reaches a server bound to
  127.0.0.2 only;
- a destination port where nothing listens gives the client a clear
  message and the session stays usable: once a server listens there, the
  next connection goes through;
- flow control keeps memory bounded: a local reader that stops reading
  for a few seconds in the middle of a 100 MB download, and a destination
  that reads nothing of a 100 MB upload for a few seconds, leave the
  agent, the client and portholed each under 48 MiB more RSS than before
  (the sender is paused, nothing buffers the whole file), and then the
  bytes arrive intact;
- Ctrl-C (SIGINT to the client's process group) ends the session with
  exit status 0, its local port closes, and DescribeSessions shows it
  Terminated.
"""

import hashlib
import json
import os
import re
import socket
import sys
import threading
import time

import harness
import portkit

BIG = 100 * 1000 * 1000     # 100 MB
PAUSE = 4.0                 # seconds a reader stalls
RSS_GROWTH_MIB = 48         # bound on each process's growth meanwhile
N_CONN = 100
# AWS's plugin (and porthole's client) on ConnectToPortError:
# "Connection to destination port failed, check SSM Agent logs."
REFUSED_RE = r"(?i)(refused|fail|error|could not|unable)"


def sanitized(pid):
    """True if the process's program carries AddressSanitizer (linked
    statically by clang, so its maps may not name a libasan)."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            if "libasan" in f.read():
                return True
        with open("/proc/%d/exe" % pid, "rb") as f:
            data = f.read(64 << 20)
        return b"__asan_init" in data
    except OSError:
        return False


class PortForward(harness.ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            c = cls.cluster
            cls.big = os.path.join(c.tmp, "big.bin")
            cls.big_sha = portkit.random_file(cls.big, BIG)
            cls.http = portkit.HttpServer("127.0.0.1",
                                          files={"/big": cls.big})
        except BaseException:
            cls.cluster.close(dump=True, raise_reports=False)
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "http", None):
            cls.http.close()
        super().tearDownClass()

    def fetch_and_upload(self, s):
        """100 MB down and 100 MB up through the session's local port."""
        out = os.path.join(self.cluster.tmp, "down-%s.bin" % s.client)
        self.addCleanup(lambda: os.path.exists(out) and os.unlink(out))
        url = "http://127.0.0.1:%d" % s.local_port
        p = portkit.curl("-o", out, url + "/big")
        self.assertEqual(p.returncode, 0, p.stderr + s.output()[-2000:])
        self.assertEqual(os.path.getsize(out), BIG)
        self.assertEqual(portkit.sha256_file(out), self.big_sha,
                         "the 100 MB download differs")
        n = len(self.http.uploads)
        p = portkit.curl("-T", self.big, url + "/upload")
        self.assertEqual(p.returncode, 0, p.stderr + s.output()[-2000:])
        self.assertEqual(p.stdout.split(), [self.big_sha, str(BIG)],
                         "the 100 MB upload differs")
        self.assertEqual(self.http.uploads[n:], [(self.big_sha, BIG)])

    def check_session_listed(self, s):
        state, rec = self.cluster.session_record(s.session_id)
        self.assertEqual(state, "Active", rec)
        self.assertEqual(rec.get("Target"), self.target)
        self.assertEqual(rec.get("DocumentName"),
                         "AWS-StartPortForwardingSession")

    def ctrl_c(self, s):
        sid = s.session_id
        port = s.local_port
        self.assertEqual(s.interrupt(), 0, s.output())
        self.assertTrue(portkit.port_closed("127.0.0.1", port),
                        "the local port still accepts after Ctrl-C")
        self.cluster.wait_session_status(sid, ("Terminated",), timeout=30)

    # ---- 100 MB each way -------------------------------------------------

    def test_aws_cli_100mb_both_ways(self):
        lp = harness.free_port()
        s = portkit.forward(self.cluster, self.target, self.http.port,
                            client="aws", local_port=lp)
        self.assertEqual(s.local_port, lp)
        self.assertIn("Starting session with SessionId: %s" % s.session_id,
                      s.output())
        s.wait_output(r"Waiting for connections")
        self.check_session_listed(s)
        self.fetch_and_upload(s)
        s.wait_output(r"Connection accepted for session")
        self.ctrl_c(s)

    def test_porthole_100mb_both_ways(self):
        lp = harness.free_port()
        s = portkit.forward(self.cluster, self.target, self.http.port,
                            client="porthole", local_port=lp)
        self.assertEqual(s.local_port, lp)
        self.check_session_listed(s)
        self.fetch_and_upload(s)
        self.ctrl_c(s)

    def test_local_port_zero_picks_a_free_port(self):
        for client in ("aws", "porthole"):
            s = portkit.forward(self.cluster, self.target, self.http.port,
                                client=client, local_port=0)
            self.assertGreater(s.local_port, 0)
            p = portkit.curl("http://127.0.0.1:%d/blob/7/100000"
                             % s.local_port, "-o", os.devnull, "-w",
                             "%{http_code} %{size_download}")
            self.assertEqual(p.stdout.split(), ["200", "100000"],
                             p.stderr + s.output())
            self.ctrl_c(s)

    def test_unix_socket_listener(self):
        doc = {
            "schemaVersion": "1.0",
            "description": "port forwarding to a unix socket (e2e)",
            "sessionType": "Port",
            "parameters": {
                "portNumber": {"type": "String", "default": "80"},
                "localUnixSocket": {"type": "String"},
            },
            "properties": {
                "portNumber": "{{ portNumber }}",
                "type": "LocalPortForwarding",
                "localConnectionType": "unix",
                "localUnixSocket": "{{ localUnixSocket }}",
            },
        }
        path = os.path.join(self.cluster.tmp, "unix-doc.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        self.cluster.aws("ssm", "create-document", "--name",
                         "E2E-UnixForward", "--document-type", "Session",
                         "--content", "file://" + path)
        sock = os.path.join(self.cluster.tmp, "fwd.sock")
        for client in ("aws", "porthole"):
            s = portkit.PortSession(
                self.cluster, self.target, "E2E-UnixForward",
                {"portNumber": str(self.http.port),
                 "localUnixSocket": sock}, client=client)
            s.wait_output(r"opened for sessionId (\S+?)\.", timeout=40)
            self.assertTrue(os.path.exists(sock), s.output())
            self.assertEqual(harness.file_mode(sock), 0o600)
            p = portkit.curl("--unix-socket", sock,
                             "http://x/blob/11/200000", "-o", os.devnull,
                             "-w", "%{http_code} %{size_download}")
            self.assertEqual(p.stdout.split(), ["200", "200000"],
                             p.stderr + s.output())
            self.assertEqual(s.interrupt(), 0, s.output())
            self.assertFalse(os.path.exists(sock),
                             "the socket stayed after the client exited")

    # ---- many connections at once ----------------------------------------

    def test_100_concurrent_connections_one_session(self):
        ex = portkit.ExchangeServer()
        self.addCleanup(ex.close)
        s = portkit.forward(self.cluster, self.target, ex.port,
                            client="porthole", local_port=0)
        socks = []
        try:
            for i in range(N_CONN):
                socks.append(socket.create_connection(
                    ("127.0.0.1", s.local_port), timeout=30))
        except OSError as e:
            for k in socks:
                k.close()
            self.fail("connection %d of %d refused: %r" % (len(socks),
                                                          N_CONN, e))
        errors = []
        lock = threading.Lock()
        go = threading.Barrier(N_CONN, timeout=60)

        def one(i):
            try:
                go.wait()
            except threading.BrokenBarrierError:
                pass
            err = portkit.exchange(s.local_port, 1000 + i, 256 * 1024,
                                   64 * 1024, sock=socks[i])
            if err:
                with lock:
                    errors.append(err)

        threads = [threading.Thread(target=one, args=(i,), daemon=True)
                   for i in range(N_CONN)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=max(1.0, 240 - (time.monotonic() - t0)))
        stuck = [i for i, t in enumerate(threads) if t.is_alive()]
        self.assertEqual(stuck, [], "connections still moving after 240s")
        self.assertEqual(errors, [], "%d of %d exchanges differ"
                         % (len(errors), N_CONN))
        self.assertEqual(ex.count, N_CONN)
        self.assertEqual(ex.errors, 0)
        # Many streams at once on the one data channel.
        self.assertGreater(ex.max_active, 1)
        self.assertTrue(s.alive(), s.output())
        # Still one session, still usable.
        self.assertIsNone(portkit.exchange(s.local_port, 1, 1000, 1000))
        self.ctrl_c(s)

    # ---- remote host -----------------------------------------------------

    def test_remote_host_second_loopback_address(self):
        srv = portkit.HttpServer("127.0.0.2")
        self.addCleanup(srv.close)
        # Bound to 127.0.0.2 only: localhost:port reaches nothing.
        self.assertTrue(portkit.port_closed("127.0.0.1", srv.port))
        for client in ("aws", "porthole"):
            s = portkit.forward(self.cluster, self.target, srv.port,
                                client=client, local_port=0,
                                host="127.0.0.2")
            state, rec = self.cluster.session_record(s.session_id)
            self.assertEqual(rec.get("DocumentName"),
                             "AWS-StartPortForwardingSessionToRemoteHost")
            out = os.path.join(self.cluster.tmp, "remote.bin")
            p = portkit.curl("-o", out, "http://127.0.0.1:%d/blob/42/%d"
                             % (s.local_port, 3 * portkit.MIB))
            self.assertEqual(p.returncode, 0, p.stderr + s.output())
            with open(out, "rb") as f:
                self.assertEqual(f.read(), portkit.blob(42, 3 * portkit.MIB))
            os.unlink(out)
            self.ctrl_c(s)

    # ---- a destination that refuses --------------------------------------

    def test_refused_destination_then_usable(self):
        port = harness.free_port()
        for client in ("aws", "porthole"):
            s = portkit.forward(self.cluster, self.target, port,
                                client=client, local_port=0)
            before = len(s.output())
            p = portkit.curl("http://127.0.0.1:%d/blob/1/10" % s.local_port,
                             timeout=60)
            self.assertNotEqual(p.returncode, 0,
                                "curl got an answer from a closed port")
            s.wait_output(REFUSED_RE, timeout=20, start=before)
            self.assertTrue(s.alive(), "the client exited: %s" % s.output())
            # A second try is refused the same way; still alive.
            before = len(s.output())
            p = portkit.curl("http://127.0.0.1:%d/blob/1/10" % s.local_port,
                             timeout=60)
            self.assertNotEqual(p.returncode, 0)
            s.wait_output(REFUSED_RE, timeout=20, start=before)
            self.assertTrue(s.alive(), s.output())
            # Something listens there now: the next connection works.
            srv = portkit.HttpServer("127.0.0.1", port=port)
            try:
                p = portkit.curl("http://127.0.0.1:%d/blob/9/5000"
                                 % s.local_port, "-o", os.devnull, "-w",
                                 "%{http_code} %{size_download}")
                self.assertEqual(p.stdout.split(), ["200", "5000"],
                                 p.stderr + s.output())
            finally:
                srv.close()
            self.ctrl_c(s)
        self.assertTrue(self.agent.proc.alive())

    # ---- backpressure ------------------------------------------------------

    def rss(self, s):
        return {"agent": portkit.rss_kib(self.agent.pid),
                "portholed": portkit.rss_kib(self.cluster.server.pid),
                "client": portkit.rss_kib(s.proc.pid)}

    def assertBounded(self, before, after, what):
        grown = {k: (after[k] - before[k]) // 1024 for k in before}
        sys.stderr.write("%s: RSS growth MiB %s\n" % (what, grown))
        if sanitized(self.agent.pid):
            # ASan's quarantine keeps freed memory resident (up to 256
            # MiB): RSS says nothing about buffering there.
            return
        for k, mib in grown.items():
            self.assertLess(mib, RSS_GROWTH_MIB, "%s: %s grew by %d MiB "
                            "(before %s, after %s KiB)" % (what, k, mib,
                                                          before, after))

    def test_slow_local_reader_bounded(self):
        s = portkit.forward(self.cluster, self.target, self.http.port,
                            client="porthole", local_port=0)
        portkit.curl("http://127.0.0.1:%d/blob/1/1000" % s.local_port,
                     "-o", os.devnull)
        before = self.rss(s)
        k = socket.create_connection(("127.0.0.1", s.local_port),
                                     timeout=30)
        try:
            k.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            k.sendall(b"GET /big HTTP/1.0\r\n\r\n")
            first = k.recv(65536)
            self.assertTrue(first)
            time.sleep(PAUSE)       # the reader stalls
            stalled = self.rss(s)
            k.settimeout(120)
            head = first
            for _ in range(100):
                if b"\r\n\r\n" in head:
                    break
                head += k.recv(4096)
            head, data = head.split(b"\r\n\r\n", 1)
            h = hashlib.sha256()
            n = 0
            for _ in range(10 ** 6):
                if data:
                    h.update(data)
                    n += len(data)
                data = k.recv(1 << 20)
                if not data:
                    break
        finally:
            k.close()
        self.assertBounded(before, stalled, "a stalled local reader")
        # Then everything arrived, intact.
        self.assertEqual((n, h.hexdigest()), (BIG, self.big_sha))
        self.assertTrue(s.alive(), s.output())
        self.ctrl_c(s)

    def test_slow_destination_bounded(self):
        sink = portkit.SlowSink(BIG)
        self.addCleanup(sink.close)
        s = portkit.forward(self.cluster, self.target, sink.port,
                            client="porthole", local_port=0)
        before = self.rss(s)
        k = socket.create_connection(("127.0.0.1", s.local_port),
                                     timeout=30)
        box = {}

        def send():
            try:
                with open(self.big, "rb") as f:
                    for _ in range(BIG // portkit.MIB + 2):
                        b = f.read(portkit.MIB)
                        if not b:
                            break
                        k.sendall(b)
                box["sent"] = True
            except OSError as e:
                box["error"] = e

        k.settimeout(120)
        t = threading.Thread(target=send, daemon=True)
        t.start()
        time.sleep(PAUSE)           # the destination reads nothing
        stalled = self.rss(s)
        self.assertNotIn("sent", box, "100 MB went into a destination "
                         "that reads nothing: something buffered it all")
        sink.release()
        t.join(timeout=120)
        self.assertEqual(box.get("sent"), True, box)
        digest = portkit._read_exact(k, 32)
        k.close()
        self.assertEqual(digest.hex(), self.big_sha)
        self.assertBounded(before, stalled, "a destination that does not "
                           "read")
        self.ctrl_c(s)

    # ---- basic mode ------------------------------------------------------

    def test_basic_mode_with_an_old_agent(self):
        """An agent at 2.3.50.0 (not newer than 3.0.196.0): both clients
        forward one connection at a time, DisconnectToPort between them,
        and the agent does not expect smux (spec 7.4)."""
        old = self.cluster.add_agent(
            "old-basic", binary_path=harness.binary("porthole-agent-2.3.50.0"))
        for client in ("aws", "porthole"):
            s = portkit.forward(self.cluster, old.instance_id,
                                self.http.port, client=client, local_port=0)
            for size in (100000, 3000000):
                p = portkit.curl("http://127.0.0.1:%d/blob/7/%d"
                                 % (s.local_port, size), "-o", os.devnull,
                                 "-w", "%{http_code} %{size_download}")
                self.assertEqual(p.stdout.split(), ["200", str(size)],
                                 p.stderr + s.output()[-2000:])
            s.wait_output(r"Connection accepted for session %s\." %
                          re.escape(s.session_id))
            self.ctrl_c(s)
        self.assertTrue(old.proc.alive())

    # ---- Ctrl-C ----------------------------------------------------------

    def test_ctrl_c_mid_transfer_terminates(self):
        for client in ("aws", "porthole"):
            s = portkit.forward(self.cluster, self.target, self.http.port,
                                client=client, local_port=0)
            # A download in progress when Ctrl-C comes.
            with socket.create_connection(("127.0.0.1", s.local_port),
                                          timeout=30) as k:
                k.sendall(b"GET /big HTTP/1.0\r\n\r\n")
                self.assertTrue(k.recv(4096))
                self.ctrl_c(s)
                # The local connection ends too (bounded read).
                k.settimeout(20)
                total = 0
                for _ in range(100000):
                    try:
                        b = k.recv(1 << 16)
                    except OSError:
                        break
                    if not b:
                        break
                    total += len(b)
                self.assertLess(total, BIG, "the whole file arrived after "
                                "Ctrl-C")
        self.assertTrue(self.agent.proc.alive())
        self.assertEqual(self.cluster.instance_info(self.target)
                         ["PingStatus"], "Online")


if __name__ == "__main__":
    harness.main()
