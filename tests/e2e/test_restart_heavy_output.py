"""portholed killed with SIGKILL during heavy output, back 3 s later.

Proves that a session whose shell is pouring out output when portholed
dies resumes once portholed is back, and that the client receives exactly
the bytes the shell wrote: nothing lost, nothing twice, in order. The
generator is `seq`, so the expected stream is known here and compared by
length and SHA-256 (the output is tens of megabytes, never held whole).
Several crashes in a row, each in the middle of a fresh flood: it must
resume every time.

While portholed is down the agent keeps reading the shell only until its
window of unacknowledged output is full; on reconnect it resends that
window as fast as the new socket takes it. Before, it read up to 10,000
frames (~160 MB) and wrote them all into the new socket at once, which
then judged its own peer "not reading" and gave up the session.
"""

import hashlib
import signal
import time

import harness
import sessionkit

# seq 1 SEQ_N is ~148 MB through the terminal ("\r\n" line ends): more
# than the old 64 MiB cut-off needs once the outage lets it pile up.
SEQ_N = 16000000
ROUNDS = 3
DOWN_FOR = 3.0
# Crash once this much of the flood has reached the client.
CRASH_AFTER = 2 << 20
FLOOD_TIMEOUT = 300


def expected_stream(n, tail):
    """(length, sha256 hex) of `seq 1 n` through a terminal, then tail."""
    h = hashlib.sha256()
    total = 0
    step = 200000
    for a in range(1, n + 1, step):
        b = min(a + step, n + 1)
        chunk = ("\r\n".join(map(str, range(a, b))) + "\r\n").encode()
        h.update(chunk)
        total += len(chunk)
    t = tail.encode()
    h.update(t)
    return total + len(t), h.hexdigest()


class HashSink:
    """Stands in for pump()'s list of chunks: hashes and counts them."""

    def __init__(self):
        self.h = hashlib.sha256()
        self.n = 0

    def append(self, s):
        b = s.encode("utf-8", "surrogateescape")
        self.h.update(b)
        self.n += len(b)

    def __iter__(self):
        return iter(())


class RestartHeavyOutput(harness.ClusterTestCase):

    def setUp(self):
        self.cluster.wait_online(self.target, agent=self.agent, timeout=60)

    def crash_and_restart(self, down_for):
        c = self.cluster
        c.server.signal(signal.SIGKILL)
        c.server.popen.wait(timeout=10)
        c.server.close()
        c.processes.remove(c.server)
        time.sleep(down_for)
        c.start_server()

    def flood_through_crash(self, s, want_len, want_sha):
        crashed = []

        def progress(total):
            # In this thread: reading stops while portholed is down,
            # which it would anyway.
            if not crashed and total >= CRASH_AFTER:
                crashed.append(total)
                self.crash_and_restart(DOWN_FOR)

        s.child.sendline("echo GEN''-START; seq 1 %d; echo GEN''-END"
                         % SEQ_N)
        sessionkit.pump(s, "GEN-START\r\n", 60)
        sink = HashSink()
        sessionkit.pump(s, "GEN-END", FLOOD_TIMEOUT, sink=sink,
                        on_progress=progress)
        self.assertTrue(crashed, "the flood ended before the crash")
        self.assertEqual(sink.n, want_len, "bytes received")
        self.assertEqual(sink.h.hexdigest(), want_sha,
                         "the stream differs from seq's output")
        s.child.expect_exact(harness.PROMPT, timeout=60)

    def test_heavy_output_resumes_byte_exact(self):
        c = self.cluster
        want_len, want_sha = expected_stream(SEQ_N, "GEN-END")
        s = c.open_session(self.target, client="porthole")
        sid = s.session_id
        # The transcript would hold every byte of the floods.
        s.child.logfile_read = None
        for i in range(ROUNDS):
            with self.subTest(round=i):
                self.flood_through_crash(s, want_len, want_sha)
                self.assertIn("alive", s.run("echo al''ive", timeout=60))
        state, rec = c.session_record(sid)
        self.assertEqual((state, rec and rec.get("Status")),
                         ("Active", "Connected"))
        self.assertEqual(s.exit(timeout=60), 0)
        c.wait_session_status(sid, ("Terminated",), timeout=30)
        log = harness.tail(self.agent.log_path, 5000)
        for event in ("data_channel_lost", "ws_peer_not_reading",
                      "ws_write_overflow"):
            self.assertNotIn("event=" + event, log)


if __name__ == "__main__":
    harness.main()
