"""Hostile input to port sessions, and the agent's deny list.

A raw client (this test) starts an AWS-StartPortForwardingSession with
boto3, opens its data channel with the session's token, completes the
handshake as a multiplexing client (ClientVersion 1.2.650.0) and then
speaks smux v1 itself (spec 7.4: ver 1 | cmd | length LE16 | stream LE32).
First, as a control, a correct stream: SYN, PSH, the echo comes back.
Then garbage: a frame of version 2, an unknown command, data for a stream
never opened, FIN for a stream never opened, a SYN for stream 0, the same
stream opened twice, a frame announcing 65535 bytes (over smux's 32768
limit) with all of them, a length that announces more than ever comes,
random bytes, and Flag payloads of the wrong size or an unknown value.
Each time the stream or the session closes cleanly within a bound (the
session still answers a fresh stream, or it ended with channel_closed or a
closed connection), the agent and portholed keep running, and another
forwarding session opened beforehand (porthole start-session) keeps moving
bytes exactly all along. A Flag TerminateSession from the raw client ends
its session: Terminated. A client older than 1.1.70 gets basic mode: its
bytes reach the destination as they are (garbage included),
DisconnectToPort closes the destination connection and the next bytes
dial a new one.

The deny list: an agent whose agent.json has DeniedPortForwardingRemoteIPs
["127.0.0.3"] refuses host=127.0.0.3 (where a server really listens) with
a clear message to the client, the client keeps running and a second
connection gets the same answer, and the same agent still forwards to
127.0.0.1. An agent with no list in agent.json refuses the EC2 metadata
address 169.254.169.254 (the default list) without dialling it.
"""

import json
import os
import struct
import time

import harness
import portkit
import sessionkit

SYN, FIN, PSH, NOP = 0, 1, 2, 3
FLAG_DISCONNECT, FLAG_TERMINATE = 1, 2
END_WITHIN = 20
# What the client says when the agent refuses a connection: AWS's plugin
# has one line for every ConnectToPortError ("Connection to destination
# port failed, check SSM Agent logs."); a refusal at session start may
# name the denial.
DENIED_RE = r"(?i)denied|not allowed|forbidden|destination port failed"


def smux(cmd, sid, data=b"", ver=1, length=None):
    n = len(data) if length is None else length
    return struct.pack("<BBHI", ver, cmd, n, sid) + data


class RawPortClient(sessionkit.RawClient):
    """The client end of a port session's data channel, by hand."""

    end_within = END_WITHIN

    def __init__(self, tc, port):
        super().__init__(tc, DocumentName="AWS-StartPortForwardingSession",
                         Parameters={"portNumber": [str(port)]})
        self.by_seq = {}        # agent output payloads by sequence number
        self.flags = []
        self.buf = b""          # the agent's smux byte stream, in order
        self.next_seq = None

    def send_smux(self, data):
        # Arbitrary chunking, as the spec allows: payload boundaries are
        # not frame boundaries.
        for i in range(0, len(data), 1024):
            self.send(data[i:i + 1024])

    def on_stream(self, f):
        if f["ptype"] == sessionkit.PT_OUTPUT and f["seq"] not in self.by_seq:
            self.by_seq[f["seq"]] = f["payload"]
            self._advance()
        elif f["ptype"] == sessionkit.PT_FLAG:
            self.flags.append(f["payload"])

    def _advance(self):
        if self.next_seq is None:
            self.next_seq = min(self.by_seq)
        for _ in range(100000):
            p = self.by_seq.get(self.next_seq)
            if p is None:
                break
            self.buf += p
            self.next_seq += 1

    def handshake(self, client_version="1.2.650.0"):
        f = self.next_stream((sessionkit.PT_HS_REQUEST,))
        req = json.loads(f["payload"])
        act = req["RequestedClientActions"][0]
        self.tc.assertEqual(act["ActionType"], "SessionType")
        self.tc.assertEqual(act["ActionParameters"]["SessionType"], "Port")
        props = act["ActionParameters"]["Properties"]
        self.tc.assertEqual(props.get("type"), "LocalPortForwarding")
        self.send(json.dumps({
            "ClientVersion": client_version,
            "ProcessedClientActions": [
                {"ActionType": "SessionType", "ActionStatus": 1,
                 "ActionResult": None, "Error": ""}],
            "Errors": None}).encode(), sessionkit.PT_HS_RESPONSE)
        self.next_stream((sessionkit.PT_HS_COMPLETE,))
        return req

    def frames(self):
        """Parse the agent's smux bytes read so far into (cmd, sid, data);
        what is left incomplete stays in the buffer."""
        out = []
        for _ in range(100000):
            if len(self.buf) < 8:
                break
            ver, cmd, n, sid = struct.unpack("<BBHI", self.buf[:8])
            if ver != 1:
                raise AssertionError("agent sent smux version %d" % ver)
            if len(self.buf) < 8 + n:
                break
            out.append((cmd, sid, self.buf[8:8 + n]))
            self.buf = self.buf[8 + n:]
        return out

    def raw_bytes(self, want, timeout=20):
        """Basic mode: read until `want` bytes of the agent's stream came
        (or the session ended); returns them and empties the buffer."""
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            if len(self.buf) >= want:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                if self.read_one(left) is None:
                    break
            except TimeoutError:
                break
        out, self.buf = self.buf, b""
        return out

    def collect(self, sid, want, timeout=20):
        """Read until stream sid delivered `want` bytes, was closed (FIN)
        or the session ended. Returns (data, how)."""
        got = b""
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            for cmd, s, data in self.frames():
                if s != sid:
                    continue
                if cmd == PSH:
                    got += data
                elif cmd == FIN:
                    return got, "fin"
            if len(got) >= want:
                return got, "data"
            left = deadline - time.monotonic()
            if left <= 0:
                return got, "timeout"
            try:
                f = self.read_one(left)
            except TimeoutError:
                return got, "timeout"
            if f is None:
                return got, "ended"
        return got, "timeout"


class PortHostile(harness.ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.echo = portkit.EchoServer()
            cls.ex = portkit.ExchangeServer()
            # The bystander: a real forwarding session open all along.
            cls.other = portkit.forward(cls.cluster, cls.agent.instance_id,
                                        cls.ex.port, client="porthole",
                                        local_port=0)
        except BaseException:
            cls.cluster.close(dump=True, raise_reports=False)
            raise

    @classmethod
    def tearDownClass(cls):
        for x in ("echo", "ex"):
            if getattr(cls, x, None):
                getattr(cls, x).close()
        super().tearDownClass()

    def raw(self):
        rc = RawPortClient(self, self.echo.port)
        self.addCleanup(rc.close)
        rc.handshake()
        return rc

    def assertBystanderFine(self, seed):
        self.assertTrue(self.agent.proc.alive(), "the agent died")
        self.assertTrue(self.cluster.server.alive(), "portholed died")
        self.assertTrue(self.other.alive(), self.other.output())
        self.assertIsNone(portkit.exchange(self.other.local_port, seed,
                                           200000, 50000))

    def echo_stream(self, rc, sid, n=3000):
        data = os.urandom(n)
        rc.send_smux(smux(SYN, sid) + smux(PSH, sid, data))
        got, how = rc.collect(sid, n)
        return got == data, how, got

    def test_valid_streams_echo(self):
        rc = self.raw()
        for sid in (3, 5, 7):
            ok, how, _ = self.echo_stream(rc, sid, 5000 + sid)
            self.assertTrue(ok, "stream %d: %s" % (sid, how))
        # One frame of the maximum size, 32768 bytes.
        data = os.urandom(32768)
        rc.send_smux(smux(SYN, 9) + smux(PSH, 9, data))
        got, how = rc.collect(9, len(data))
        self.assertEqual(got, data, how)
        rc.send_smux(smux(FIN, 3))
        # TerminateSession flag ends the session.
        rc.send(struct.pack("!I", FLAG_TERMINATE), sessionkit.PT_FLAG)
        self.assertIsNotNone(rc.wait_end(), "TerminateSession did not end "
                             "the session")
        self.cluster.wait_session_status(rc.sid, ("Terminated",),
                                         timeout=30)
        self.assertBystanderFine(1)

    def garbage(self, payload, seed, chunked=True):
        """Send a good stream, then `payload`; then the session must
        either have ended or still answer a fresh stream."""
        rc = self.raw()
        ok, how, _ = self.echo_stream(rc, 3)
        self.assertTrue(ok, "control stream: %s" % how)
        if chunked:
            rc.send_smux(payload)
        else:
            rc.send(payload)
        ended = rc.wait_end(timeout=2)
        if ended is None:
            # Still open: it must still work (a fresh stream echoes) or
            # end within the bound; a hang is the failure.
            try:
                ok, how, _ = self.echo_stream(rc, 1001)
            except (OSError, ConnectionError):
                ok, how = False, "ended"
            if not ok:
                self.assertIn(how, ("ended", "fin"),
                              "after garbage the session neither answered "
                              "nor ended: %s" % how)
                if how == "fin":
                    # The stream closed; the session must still end or
                    # serve within the bound.
                    ok, how, _ = self.echo_stream(rc, 1003)
                    self.assertTrue(ok or how == "ended", how)
        if rc.ended:
            self.cluster.wait_session_status(
                rc.sid, ("Terminated", "Failed"), timeout=30)
        self.assertBystanderFine(seed)
        return rc

    def test_basic_mode_old_client(self):
        # A client older than 1.1.70 gets basic mode (spec 7.4): raw
        # bytes, one destination connection, DisconnectToPort closes it
        # and the next Output dials again.
        # Counted before the session starts: the agent dials as it starts.
        n0 = self.echo.count
        rc = RawPortClient(self, self.echo.port)
        self.addCleanup(rc.close)
        rc.handshake(client_version="1.1.0.0")
        for i in range(3):
            data = os.urandom(2000 + i)
            rc.send(data)
            self.assertEqual(rc.raw_bytes(len(data)), data,
                             "round %d: %s" % (i, rc.ended))
            rc.send(struct.pack("!I", FLAG_DISCONNECT), sessionkit.PT_FLAG)
            time.sleep(0.3)
        harness.wait_for(lambda: self.echo.count - n0 >= 3, 10, 0.2,
                         "a new destination connection per round")
        # Garbage in basic mode is just bytes for the destination.
        junk = smux(0xFF, 1, b"x", ver=9) + os.urandom(3000)
        rc.send(junk)
        self.assertEqual(rc.raw_bytes(len(junk)), junk)
        rc.send(struct.pack("!I", FLAG_TERMINATE), sessionkit.PT_FLAG)
        self.assertIsNotNone(rc.wait_end(), "TerminateSession did not end "
                             "the basic session")
        self.cluster.wait_session_status(rc.sid, ("Terminated",),
                                         timeout=30)
        self.assertBystanderFine(30)

    def test_unknown_version(self):
        self.garbage(smux(PSH, 3, b"xyz", ver=2), 2)

    def test_unknown_command(self):
        self.garbage(smux(9, 3, b"abc"), 3)
        self.garbage(smux(0xFF, 77, b""), 4)

    def test_data_for_a_stream_never_opened(self):
        self.garbage(smux(PSH, 99, os.urandom(500)), 5)

    def test_fin_for_a_stream_never_opened(self):
        self.garbage(smux(FIN, 12345), 6)

    def test_syn_stream_zero_and_twice(self):
        self.garbage(smux(SYN, 0) + smux(PSH, 0, b"hello"), 7)
        self.garbage(smux(SYN, 3) + smux(PSH, 3, b"again"), 8)

    def test_huge_length(self):
        # 65535 announced and sent: twice smux's frame limit.
        self.garbage(smux(PSH, 3, os.urandom(65535)), 9)
        # 65535 announced, 10 sent, then a valid-looking frame inside
        # what the agent must take as that frame's data.
        self.garbage(smux(PSH, 3, b"0123456789", length=65535)
                     + smux(SYN, 5), 10)

    def test_random_bytes(self):
        for i in range(3):
            self.garbage(os.urandom(4000), 11 + i)

    def test_bad_flags(self):
        rc = self.raw()
        ok, how, _ = self.echo_stream(rc, 3)
        self.assertTrue(ok, how)
        for p in (b"", b"\x00\x00", struct.pack("!I", 99),
                  struct.pack("!I", 3), os.urandom(300),
                  struct.pack("!I", FLAG_DISCONNECT)):
            rc.send(p, sessionkit.PT_FLAG)
        if rc.wait_end(timeout=2) is None:
            ok, how, _ = self.echo_stream(rc, 21)
            self.assertTrue(ok or how in ("ended", "fin"), how)
        self.assertBystanderFine(21)

    def test_other_payload_types(self):
        rc = self.raw()
        for pt in (sessionkit.PT_SIZE, sessionkit.PT_HS_RESPONSE,
                   sessionkit.PT_CHALLENGE_RESPONSE, 77):
            rc.send(os.urandom(100), pt)
        if rc.wait_end(timeout=2) is None:
            ok, how, _ = self.echo_stream(rc, 3)
            self.assertTrue(ok or how in ("ended", "fin"), how)
        self.assertBystanderFine(22)


    def test_default_deny_list_metadata_address(self):
        # The EC2 metadata address is refused by an agent whose
        # agent.json names no list (the default), before any dial.
        s = portkit.PortSession(
            self.cluster, self.target,
            "AWS-StartPortForwardingSessionToRemoteHost",
            {"host": "169.254.169.254", "portNumber": "80",
             "localPortNumber": "0"}, client="porthole")
        harness.wait_for(lambda: portkit.OPENED_RE.search(s.output())
                         or not s.alive(), 40, 0.1,
                         "the client to listen or exit")
        if s.alive():
            s.wait_listening()
            p = portkit.curl("http://127.0.0.1:%d/" % s.local_port,
                             timeout=60)
            self.assertNotEqual(p.returncode, 0)
            s.wait_output(DENIED_RE, timeout=20)
            s.interrupt()
        else:
            self.assertRegex(s.output(), DENIED_RE)


class DenyList(harness.ClusterTestCase):
    """An agent whose agent.json denies 127.0.0.3."""

    with_agent = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            c = cls.cluster
            act, code = c.create_activation(limit=1)
            cls.agent = c.new_agent("deny")
            cls.agent.register(act, code, name="e2e-deny")
            path = os.path.join(cls.agent.state_dir, "agent.json")
            with open(path) as f:
                conf = json.load(f)
            conf["DeniedPortForwardingRemoteIPs"] = ["127.0.0.3"]
            with open(path, "w") as f:
                json.dump(conf, f)
            cls.agent.start()
            c.wait_online(cls.agent.instance_id, agent=cls.agent)
        except BaseException:
            cls.cluster.close(dump=True, raise_reports=False)
            raise

    def test_denied_destination(self):
        srv = portkit.HttpServer("127.0.0.3")
        self.addCleanup(srv.close)
        for client in ("aws", "porthole"):
            s = portkit.PortSession(
                self.cluster, self.target,
                "AWS-StartPortForwardingSessionToRemoteHost",
                {"host": "127.0.0.3", "portNumber": str(srv.port),
                 "localPortNumber": "0"}, client=client)
            harness.wait_for(lambda: portkit.OPENED_RE.search(s.output())
                             or not s.alive(), 40, 0.1,
                             "the client to listen or exit")
            if s.alive():
                s.wait_listening()
                for _ in range(2):
                    before = len(s.output())
                    p = portkit.curl("http://127.0.0.1:%d/blob/1/10"
                                     % s.local_port, timeout=60)
                    self.assertNotEqual(p.returncode, 0,
                                        "a denied destination answered")
                    s.wait_output(DENIED_RE, timeout=20, start=before)
                    self.assertTrue(s.alive(), s.output())
                s.interrupt()
            else:
                # Refused when the session opened: the client says why.
                self.assertRegex(s.output(), DENIED_RE)
            self.assertEqual(srv.gets, 0, "the denied server was reached")
        self.assertTrue(self.agent.proc.alive())
        # The agent's log says why, naming the address.
        log = harness.tail(self.agent.log_path, 2000)
        self.assertRegex(log, r"(?i)den(y|ied).*127\.0\.0\.3|"
                         r"127\.0\.0\.3.*den(y|ied)")
        # The same agent still forwards to an allowed address.
        ok = portkit.HttpServer("127.0.0.1")
        self.addCleanup(ok.close)
        s = portkit.forward(self.cluster, self.target, ok.port,
                            client="porthole", local_port=0)
        p = portkit.curl("http://127.0.0.1:%d/blob/3/1000" % s.local_port,
                         "-o", os.devnull, "-w", "%{http_code}")
        self.assertEqual(p.stdout, "200", p.stderr + s.output())
        s.interrupt()


if __name__ == "__main__":
    harness.main()
