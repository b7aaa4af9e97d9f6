"""Keep-alive pings and a dead peer.

Proves that `porthole start-session --keepalive 2` notices a connection
that went silent without closing (a TCP proxy between client and
portholed swallows every byte but keeps the socket open, as a dead NAT
entry or a stuck proxy does): within a bounded time, the keep-alive
timeout (three intervals) drops it, the client redials through a fresh
connection and the same shell answers, with nothing typed lost or run
twice; and that when the path stays dead (the silent connection, and no
new connection gets through) the client says the connection was lost and
exits non-zero in bounded time instead of hanging. Bounds are liveness
limits, generous for a loaded machine, not performance figures.
"""

import re
import time

import harness
import sessionkit

KEEPALIVE_S = 2


class DeadPeer(harness.ClusterTestCase):

    def setUp(self):
        self.proxy = sessionkit.TcpProxy(self.cluster.port)
        self.addCleanup(self.proxy.close)
        self.env = self.cluster.make_env(AWS_ENDPOINT_URL=self.proxy.url)

    def open(self):
        since = time.monotonic()
        s = self.cluster.open_session(
            self.target, client="porthole", env=self.env,
            extra_args=["--keepalive", str(KEEPALIVE_S)])
        self.assertIn("ssm-user", s.run("whoami").split())
        return s, since

    def test_silent_connection_is_replaced(self):
        s, since = self.open()
        n0 = len(self.proxy.pairs)
        self.assertGreaterEqual(self.proxy.freeze(since=since), 1)
        t0 = time.monotonic()
        s.child.sendline("echo after-''freeze")
        s.child.expect_exact(harness.PROMPT, timeout=60)
        waited = time.monotonic() - t0
        out = harness.strip_ansi(s.child.before)
        self.assertEqual(len(re.findall(r"^after-freeze\r?$", out, re.M)),
                         1, out)
        # A new connection carried it, after at least the keep-alive
        # timeout of silence.
        self.assertGreater(len(self.proxy.pairs), n0)
        self.assertGreaterEqual(waited, KEEPALIVE_S)
        state, rec = self.cluster.session_record(s.session_id)
        self.assertEqual((state, rec and rec.get("Status")),
                         ("Active", "Connected"))
        self.assertEqual(s.exit(), 0)

    def test_dead_path_ends_with_a_message(self):
        s, since = self.open()
        # Nothing new gets through for the rest of the test.
        self.proxy.down_until = time.monotonic() + 3600
        self.assertGreaterEqual(self.proxy.freeze(since=since), 1)
        s.child.expect(harness.pexpect.EOF, timeout=90)
        s.child.close()
        text = harness.strip_ansi(s.transcript.getvalue())
        self.assertIn("Connection to the session was lost", text)
        self.assertNotEqual(s.exit_status(), 0)


if __name__ == "__main__":
    harness.main()
