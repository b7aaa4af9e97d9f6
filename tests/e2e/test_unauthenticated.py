"""Peers that have not authenticated cannot hold portholed.

portholed runs with small limits from config.json (a cap of 40
unauthenticated connections, 15 per source address, requests within 2 s,
WebSockets authenticated within 2 s). Attackers connect from other
loopback addresses (127.0.0.2 and up), legitimate users from 127.0.0.1,
so the per-source cap can be told from the total one. Proves that:

- past a source's cap, its new connections are closed at once, while a
  signed API call (boto3) and an interactive session from elsewhere work;
- with the total cap full, what has authenticated (a keep-alive API
  connection, an open session, the agent's control channel) keeps
  working, a new connection is closed at once rather than hung, and all
  is served again once the attackers leave;
- a WebSocket on /v1/data-channel/<session> that never sends its token
  is closed at the deadline though it keeps pinging, while the session's
  real client is not;
- request headers sent a byte at a time are closed at the request
  deadline (every byte used to restart an idle timer);
- a flood of refused connections writes a bounded number of log lines
  and says how many it suppressed.

Loopback only; every wait is bounded in time and count; bounds are
liveness limits, not performance figures.
"""

import json
import os
import re
import socket
import ssl
import time

import harness
from harness import RawWebSocket, OP_PING

CAP = 40
PER_SOURCE = 15
LIMITS = {
    "MaxUnauthenticatedConnections": CAP,
    "MaxUnauthenticatedPerSource": PER_SOURCE,
    "UnauthenticatedTimeoutSeconds": 120,
    "RequestTimeoutSeconds": 2,
    "WebSocketAuthTimeoutSeconds": 2,
}


class Attacker:
    """Connections from one loopback source address that never
    authenticate: TLS handshakes completed, then silence."""

    def __init__(self, cluster, src):
        self.cluster = cluster
        self.src = src
        self.held = []

    def _tcp(self):
        # Generous: a loaded machine may take seconds per handshake.
        return socket.create_connection(("127.0.0.1", self.cluster.port),
                                        timeout=20,
                                        source_address=(self.src, 0))

    def tls(self):
        """One TLS connection, or None if the server closed it before
        the handshake finished (refused)."""
        ctx = ssl.create_default_context(cafile=self.cluster.ca)
        raw = self._tcp()
        try:
            t = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        except (ssl.SSLError, ConnectionError, OSError):
            raw.close()
            return None
        return t

    def open(self, n):
        """Try n connections; returns (held now, refused)."""
        refused = 0
        for _ in range(n):
            t = self.tls()
            if t is None:
                refused += 1
            else:
                self.held.append(t)
        return self.alive(), refused

    def alive(self):
        """Held connections the server has not closed."""
        still = []
        for t in self.held:
            try:
                t.settimeout(0)
                data = t.recv(1)
                gone = data == b""
            except (ssl.SSLWantReadError, BlockingIOError):
                gone = False
            except (ssl.SSLError, OSError):
                gone = True
            if gone:
                t.close()
            else:
                still.append(t)
        self.held = still
        return len(still)

    def close(self):
        for t in self.held:
            try:
                t.close()
            except OSError:
                pass
        self.held = []


def set_limits(cluster, limits):
    path = os.path.join(cluster.data_dir, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg.update(limits)
    with open(path, "w") as f:
        json.dump(cfg, f)


class Unauthenticated(harness.ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.cluster
        set_limits(c, LIMITS)
        c.restart_server()
        c.wait_online(cls.agent.instance_id, agent=cls.agent, timeout=60)

    def setUp(self):
        self.attackers = []
        self.started = []

    def tearDown(self):
        for a in self.attackers:
            a.close()
        for sid in self.started:
            try:
                self.cluster.ssm().terminate_session(SessionId=sid)
            except Exception:  # noqa: BLE001 - best effort
                pass
        # The server sees the attackers' connections end and frees
        # their slots: a connection from their first source gets in.
        if self.attackers:
            a = Attacker(self.cluster, self.attackers[0].src)
            harness.wait_for(lambda: a.open(1)[0] == 1, 30, 0.2,
                             "the attackers' slots to be free")
            a.close()

    def attacker(self, src):
        a = Attacker(self.cluster, src)
        self.attackers.append(a)
        return a

    def log_since(self, offset):
        with open(self.cluster.server_log, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def log_size(self):
        return os.path.getsize(self.cluster.server_log)

    # ---- caps ----------------------------------------------------------

    def test_caps_leave_authenticated_traffic_served(self):
        c = self.cluster
        ssm = c.ssm()   # keeps its connection alive between calls
        ssm.describe_instance_information()

        # One source past its cap: the rest are refused at once.
        a = self.attacker("127.0.0.2")
        held, refused = a.open(PER_SOURCE + 10)
        self.assertEqual((held, refused), (PER_SOURCE, 10))
        # Meanwhile others are served: new signed calls and a session.
        info = c.ssm().describe_instance_information()
        ids = [i["InstanceId"] for i in info["InstanceInformationList"]]
        self.assertIn(self.target, ids)
        s = c.open_session(self.target, client="aws")
        self.assertIn("ssm-user", s.run("whoami").split())

        # More sources fill the total cap.
        b = self.attacker("127.0.0.3")
        held_b, refused_b = b.open(PER_SOURCE)
        d = self.attacker("127.0.0.4")
        held_d, refused_d = d.open(PER_SOURCE)
        self.assertEqual(held_b + held_d, CAP - PER_SOURCE)
        self.assertEqual(refused_b + refused_d,
                         2 * PER_SOURCE - (CAP - PER_SOURCE))
        # A newcomer from yet another address is closed at once, not
        # left hanging.
        e = self.attacker("127.0.0.5")
        self.assertEqual(e.open(1), (0, 1))
        # What has authenticated keeps working: the keep-alive API
        # connection, the open session, the agent's control channel.
        info = ssm.describe_instance_information(
            Filters=[{"Key": "InstanceIds", "Values": [self.target]}])
        self.assertEqual(info["InstanceInformationList"][0]["PingStatus"],
                         "Online")
        self.assertIn("still-here", s.run("echo still-''here"))
        # Nothing held was dropped to make room.
        self.assertEqual(a.alive() + b.alive() + d.alive(), CAP)

        # The attackers leave: everyone is served again.
        for x in (a, b, d):
            x.close()
        harness.wait_for(
            lambda: c.client("ssm", retries=1)
            .describe_instance_information(), 30, 0.3,
            "signed calls on new connections after the flood")
        self.assertEqual(s.exit(), 0)
        self.assertTrue(c.server.alive())

    # ---- deadlines ----------------------------------------------------

    def test_websocket_without_token_is_closed_though_it_pings(self):
        c = self.cluster
        s = c.open_session(self.target, client="porthole")
        r = c.ssm().start_session(Target=self.target)
        self.started.append(r["SessionId"])
        ws = RawWebSocket(c.port, harness.stream_url_path(r["StreamUrl"]),
                          c.ca)
        try:
            self.assertEqual(ws.status, 101)
            closed = None
            deadline = time.monotonic() + 30
            for _ in range(300):
                if time.monotonic() > deadline:
                    break
                try:
                    ws.send(OP_PING, b"alive")
                except OSError:
                    closed = "send failed"
                    break
                try:
                    closed = ws.wait_closed(0.2)
                    break
                except TimeoutError:
                    pass
            self.assertIsNotNone(closed, "the token-less WebSocket was "
                                 "kept open")
        finally:
            ws.close()
        # The real client of another session authenticated in time and
        # is still there well past the deadline.
        self.assertIn("alive", s.run("echo al''ive"))
        self.assertEqual(s.exit(), 0)
        self.assertIn("phase=authentication", self.log_since(0))

    def test_slow_request_header_is_closed(self):
        c = self.cluster
        a = self.attacker("127.0.0.6")
        t = a.tls()
        self.assertIsNotNone(t)
        head = ("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "X-Amz-Target: AmazonSSM.DescribeSessions\r\n"
                "X-Padding: %s\r\n\r\n" % ("p" * 300)).encode()
        t.settimeout(0.1)
        closed = False
        deadline = time.monotonic() + 30
        sent = 0
        # One byte per 100 ms: the whole head would take 40 s.
        for i in range(len(head)):
            if time.monotonic() > deadline:
                break
            try:
                t.sendall(head[i:i + 1])
                sent += 1
            except OSError:
                closed = True
                break
            try:
                if t.recv(1) == b"":
                    closed = True
                    break
            except (socket.timeout, ssl.SSLWantReadError):
                pass
            except (ssl.SSLError, OSError):
                closed = True
                break
        t.close()
        self.assertTrue(closed, "sent %d of %d bytes without being closed"
                        % (sent, len(head)))
        self.assertLess(sent, len(head))
        self.assertIn("peer=127.0.0.6 phase=request", self.log_since(0))
        # Whole requests are still served.
        c.ssm().describe_activations()

    # ---- logs -----------------------------------------------------------

    def test_refusal_flood_is_logged_briefly(self):
        a = self.attacker("127.0.0.7")
        held, _ = a.open(PER_SOURCE)
        self.assertEqual(held, PER_SOURCE)
        start = self.log_size()
        n = 300
        refused = 0
        deadline = time.monotonic() + 120
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            try:
                conn = a._tcp()
            except OSError:
                continue
            # Refused at accept: EOF before anything is sent.
            conn.settimeout(20)
            try:
                gone = conn.recv(1) == b""
            except socket.timeout:
                gone = False
            except OSError:
                gone = True
            conn.close()
            if not gone:
                break
            refused += 1
        self.assertEqual(refused, n)
        # The summary comes with portholed's next housekeeping tick.
        harness.wait_for(
            lambda: "key=conn_refused" in self.log_since(start), 30, 0.5,
            "the suppressed-lines summary")
        log = self.log_since(start)
        lines = re.findall(r"event=conn_refused .*", log)
        summaries = re.findall(r"event=log_suppressed key=conn_refused .*",
                               log)
        # An earlier test may have spent the burst: then all of these are
        # counted in a summary line. Either way the flood is reported.
        self.assertGreater(len(lines) + len(summaries), 0)
        # A burst of 10, one a second after it, never one per refusal.
        self.assertLess(len(lines) + len(summaries), n // 5,
                        "%d lines" % (len(lines) + len(summaries)))
        told = sum(int(m) for m in re.findall(
            r"event=conn_refused .* suppressed=(\d+)", log))
        told += sum(int(m) for m in re.findall(
            r"event=log_suppressed key=conn_refused count=(\d+)", log))
        # Every refusal is either a line or counted in one (counts of
        # earlier refusals may be reported here too).
        self.assertGreaterEqual(len(lines) + told, n)


if __name__ == "__main__":
    harness.main()
