"""A forwarding session survives network cuts mid-transfer.

- the client's connection: `porthole start-session` and `aws ssm
  start-session` with AWS_ENDPOINT_URL naming a TCP proxy in front of
  portholed (so the data channel and ResumeSession go through it too).
  While a 64 MiB download runs through the forwarded port, the proxy cuts
  every connection twice (once with a short outage); the client resumes
  and the file arrives intact (SHA-256), the same local connection all
  along. An upload of 32 MiB with a cut in the middle also arrives intact.
- the agent's data channel: an agent whose endpoint is a proxy loses its
  data-channel connection mid-download; it reconnects and the file
  arrives intact.
- portholed killed with SIGKILL and restarted mid-download: the session
  resumes and the file arrives intact.
After each, the session is still Connected and usable, and Ctrl-C ends it.
"""

import hashlib
import os
import socket
import threading
import time

import harness
import portkit
import sessionkit
import test_resilience as tr

N_DOWN = 64 * portkit.MIB
N_UP = 32 * portkit.MIB
CHUNK = 64 * 1024


def download(port, seed, n, cuts, on_cut, timeout=240):
    """Read a blob of n bytes through 127.0.0.1:port with an HTTP GET,
    calling on_cut() as the bytes read pass each fraction in cuts.
    Returns (sha256 of the body, body length, cuts made)."""
    pending = sorted(cuts)
    done = []
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        s.settimeout(timeout)
        s.sendall(b"GET /blob/%d/%d HTTP/1.0\r\n\r\n" % (seed, n))
        head = b""
        for _ in range(1000):
            b = s.recv(4096)
            if not b:
                raise AssertionError("eof in the response header")
            head += b
            if b"\r\n\r\n" in head:
                break
        head, body0 = head.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.0 200"):
            raise AssertionError("response %r" % head[:100])
        h = hashlib.sha256(body0)
        got = len(body0)
        deadline = time.monotonic() + timeout
        for _ in range(10 ** 7):
            if got >= n or time.monotonic() > deadline:
                break
            if pending and got >= pending[0] * n:
                pending.pop(0)
                done.append(on_cut())
            b = s.recv(CHUNK)
            if not b:
                break
            h.update(b)
            got += len(b)
        return h.hexdigest(), got, done
    finally:
        s.close()


class ResumeMixin:

    def check_download(self, s, cuts, on_cut, seed):
        want = hashlib.sha256(portkit.blob(seed, N_DOWN)).hexdigest()
        sha, got, done = download(s.local_port, seed, N_DOWN, cuts, on_cut)
        self.assertEqual(len(done), len(cuts), "the download ended before "
                         "every cut was made")
        self.assertTrue(all(done), "a cut found nothing to cut: %s" % done)
        self.assertEqual(got, N_DOWN, "download truncated: %d of %d\n%s"
                         % (got, N_DOWN, s.output()[-2000:]))
        self.assertEqual(sha, want, "the download differs after the cuts")

    def after(self, s):
        self.assertTrue(s.alive(), s.output())
        p = portkit.curl("http://127.0.0.1:%d/blob/5/70000" % s.local_port,
                         "-o", os.devnull, "-w", "%{http_code} "
                         "%{size_download}")
        self.assertEqual(p.stdout.split(), ["200", "70000"],
                         p.stderr + s.output())
        state, rec = self.cluster.session_record(s.session_id)
        self.assertEqual((state, rec and rec.get("Status")),
                         ("Active", "Connected"))
        sid = s.session_id
        self.assertEqual(s.interrupt(), 0, s.output())
        self.cluster.wait_session_status(sid, ("Terminated",), timeout=30)


class ClientCut(ResumeMixin, harness.ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.http = portkit.HttpServer("127.0.0.1")

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "http", None):
            cls.http.close()
        super().tearDownClass()

    def setUp(self):
        self.proxy = sessionkit.TcpProxy(self.cluster.port)
        self.addCleanup(self.proxy.close)
        self.env = self.cluster.make_env(AWS_ENDPOINT_URL=self.proxy.url)

    def resumes(self):
        log = harness.tail(self.cluster.server_log, 100000)
        return len([x for x in log.splitlines()
                    if "action=ResumeSession" in x and "status=200" in x])

    def check_download(self, s, cuts, on_cut, seed):
        n = self.resumes()
        super().check_download(s, cuts, on_cut, seed)
        # The client really reconnected with a fresh token.
        self.assertGreaterEqual(self.resumes() - n, 1)

    def session(self, client):
        return portkit.forward(self.cluster, self.target, self.http.port,
                               client=client, local_port=0, env=self.env)

    def test_porthole_download_two_cuts(self):
        s = self.session("porthole")
        outages = [0.0, 1.5]
        self.check_download(
            s, [0.3, 0.7],
            lambda: self.proxy.cut(outage=outages.pop(0)), 101)
        self.after(s)

    def test_aws_cli_download_cut(self):
        s = self.session("aws")
        self.check_download(s, [0.5], lambda: self.proxy.cut(outage=1.0),
                            102)
        self.after(s)

    def test_porthole_upload_cut(self):
        s = self.session("porthole")
        data = portkit.blob(103, N_UP)
        want = hashlib.sha256(data).hexdigest()
        n = len(self.http.uploads)
        k = socket.create_connection(("127.0.0.1", s.local_port),
                                     timeout=30)
        try:
            k.settimeout(240)
            k.sendall(b"PUT /upload HTTP/1.0\r\nContent-Length: %d\r\n\r\n"
                      % N_UP)
            cut_at = N_UP // 2
            k.sendall(data[:cut_at])
            # Let some of it be in flight, then cut.
            time.sleep(0.2)
            self.assertGreater(self.proxy.cut(outage=0.5), 0)
            k.sendall(data[cut_at:])
            resp = b""
            for _ in range(1000):
                b = k.recv(4096)
                if not b:
                    break
                resp += b
        finally:
            k.close()
        self.assertIn(("%s %d" % (want, N_UP)).encode(), resp,
                      s.output()[-2000:])
        self.assertEqual(self.http.uploads[n:], [(want, N_UP)])
        self.after(s)


class AgentCut(ResumeMixin, tr.ProxiedAgentBase):

    def test_agent_data_channel_cut_mid_download(self):
        http = portkit.HttpServer("127.0.0.1")
        self.addCleanup(http.close)
        since = time.monotonic()
        s = portkit.forward(self.cluster, self.agent.instance_id, http.port,
                            client="porthole", local_port=0)
        self.check_download(s, [0.4],
                            lambda: self.proxy.cut(since=since), 201)
        self.assertTrue(self.agent.proc.alive())
        self.assertEqual(self.cluster.instance_info(
            self.agent.instance_id)["PingStatus"], "Online")
        self.after(s)


class ServerKilled(ResumeMixin, harness.ClusterTestCase):

    def test_portholed_sigkill_mid_download(self):
        http = portkit.HttpServer("127.0.0.1")
        self.addCleanup(http.close)
        s = portkit.forward(self.cluster, self.target, http.port,
                            client="porthole", local_port=0)
        c = self.cluster
        box = {}

        def restart():
            c.server.kill()
            box["t"] = threading.Thread(target=self._restart, daemon=True)
            box["t"].start()
            return True

        self.check_download(s, [0.4], restart, 301)
        box["t"].join(timeout=60)
        c.wait_online(self.target, agent=self.agent, timeout=60)
        self.after(s)

    def _restart(self):
        c = self.cluster
        c.processes.remove(c.server)
        c.server.close()
        time.sleep(0.5)
        c.start_server()


if __name__ == "__main__":
    harness.main()
