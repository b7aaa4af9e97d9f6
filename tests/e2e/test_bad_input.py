"""Hostile input end to end, and an agent that dies mid-session.

Proves that the gateway closes a data-channel WebSocket that sends garbage
(bytes that are not WebSocket frames, a binary frame before
OpenDataChannel, random bytes as a ClientMessage, a truncated ClientMessage,
a bad HeaderLength, a digest mismatch, a frame whose length field claims
100 MB), or that presents an invalid, reused or foreign TokenValue; that an
agent-only control channel refuses a caller without the instance's client
certificate; that non-HTTP bytes on the API port only cost their own
connection; and that after each of these the server still answers API calls
and an interactive session opened before keeps working. Finally, that
SIGKILL of the agent mid-session makes the client (AWS CLI + plugin, and
porthole) exit non-zero within a bounded time, and the session ends Failed
or Terminated, never stuck Connected.

Not covered yet: a client data channel for a session owned by another IAM
user (needs IAM users, a later issue).
"""

import os
import signal
import socket
import ssl
import time
import uuid

import harness
from harness import RawWebSocket, client_message, open_data_channel_json


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class BadInput(harness.ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # test_token_expires needs a token older than its 60 s life
        # (STORE_TOKEN_TTL_MS): its session starts here and ages while
        # the other tests run.
        try:
            cls.aging = cls.cluster.ssm().start_session(
                Target=cls.agent.instance_id)
            cls.aging_since = time.monotonic()
        except BaseException:
            cls.cluster.close(dump=True, raise_reports=False)
            raise

    def setUp(self):
        # An interactive session that must survive whatever the test does.
        self.bystander = self.cluster.open_session(self.target)
        self.assertIn("before", self.bystander.run("echo be''fore"))
        self.started = []

    def tearDown(self):
        ssm = self.cluster.ssm()
        for sid in self.started:
            try:
                ssm.terminate_session(SessionId=sid)
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass
        if self.bystander.child.isalive():
            try:
                self.bystander.exit()
            except Exception:  # noqa: BLE001 - reported by the test
                self.bystander.close()

    def assertStillServing(self):
        self.cluster.ssm().describe_activations()
        self.assertIn("after", self.bystander.run("echo af''ter"))
        self.assertTrue(self.cluster.server.alive())

    def start_session(self):
        r = self.cluster.ssm().start_session(Target=self.target)
        self.started.append(r["SessionId"])
        return r

    def data_ws(self, url_or_sid):
        if url_or_sid.startswith("wss://"):
            path = harness.stream_url_path(url_or_sid)
        else:
            path = "/v1/data-channel/%s?role=publish_subscribe" % url_or_sid
        ws = RawWebSocket(self.cluster.port, path, self.cluster.ca)
        self.addCleanup(ws.close)
        self.assertEqual(ws.status, 101, "upgrade refused: %s" % ws.status)
        return ws

    def attached(self):
        """A client data channel attached with a valid token."""
        r = self.start_session()
        ws = self.data_ws(r["StreamUrl"])
        ws.send_text(open_data_channel_json(r["TokenValue"]))
        self.assertOpen(ws, 1.0)
        return ws, r

    def assertOpen(self, ws, secs):
        try:
            how = ws.wait_closed(secs)
        except TimeoutError:
            return
        self.fail("connection closed (%s) when it should be open" % (how,))

    def assertClosed(self, ws, secs=10):
        try:
            return ws.wait_closed(secs)
        except TimeoutError:
            self.fail("the server kept the connection open for %ss" % secs)

    # ---- WebSocket-level garbage ------------------------------------------

    def test_bytes_that_are_not_websocket_frames(self):
        ws, _ = self.attached()
        ws.send_raw(b"\xff" * 64)  # RSV bits set, reserved opcode
        self.assertClosed(ws)
        self.assertStillServing()

    def test_unmasked_client_frame(self):
        ws, _ = self.attached()
        ws.send(harness.OP_BINARY, client_message(
            "input_stream_data", b"x"), mask=False)
        self.assertClosed(ws)
        self.assertStillServing()

    def test_length_field_claims_100_mb(self):
        before = rss_kib(self.cluster.server.pid)
        ws, _ = self.attached()
        hdr = RawWebSocket.frame(harness.OP_BINARY, b"", mask=True,
                                 length_override=100 * 1024 * 1024)
        started = time.monotonic()
        ws.send_raw(hdr + os.urandom(4096))
        self.assertClosed(ws, 10)
        self.assertLess(time.monotonic() - started, 10)
        self.assertStillServing()
        grown = rss_kib(self.cluster.server.pid) - before
        self.assertLess(grown, 32 * 1024,
                        "portholed grew by %d KiB" % grown)

    def test_length_field_claims_100_mb_before_open(self):
        r = self.start_session()
        ws = self.data_ws(r["StreamUrl"])
        ws.send_raw(RawWebSocket.frame(harness.OP_TEXT, b"", mask=True,
                                       length_override=100 * 1024 * 1024)
                    + b"{" * 1024)
        self.assertClosed(ws)
        self.assertStillServing()

    # ---- ClientMessage-level garbage --------------------------------------

    def test_random_bytes_as_client_message(self):
        ws, _ = self.attached()
        ws.send_binary(os.urandom(300))
        self.assertClosed(ws)
        self.assertStillServing()

    def test_truncated_client_message(self):
        ws, _ = self.attached()
        ws.send_binary(client_message("input_stream_data", b"ls\r")[:60])
        self.assertClosed(ws)
        self.assertStillServing()

    def test_payload_shorter_than_length(self):
        # Wire spec 3.7 [R]: as AWS's agent, the payload runs to the end of
        # the WebSocket message whatever PayloadLength says, so the frame
        # is relayed and taken, not refused.
        ws, _ = self.attached()
        time.sleep(1.5)  # the shell is up and reading its PTY
        made = "/tmp/porthole-e2e-%s" % uuid.uuid4().hex
        self.addCleanup(lambda: os.path.exists(made) and os.unlink(made))
        m = bytearray(client_message("input_stream_data",
                                     ("touch %s\r" % made).encode()))
        m[116:120] = (3).to_bytes(4, "big")
        ws.send_binary(bytes(m))
        harness.wait_for(lambda: os.path.exists(made), 10, 0.2,
                         "the whole payload to reach the shell")
        self.assertOpen(ws, 0.5)
        self.assertStillServing()

    def test_bad_header_length(self):
        ws, _ = self.attached()
        ws.send_binary(client_message("input_stream_data", b"ls\r",
                                      header_length=4000))
        self.assertClosed(ws)
        self.assertStillServing()

    def test_digest_mismatch(self):
        # Wire spec 3.7 [R]: AWS's agent never checks a client's digest
        # and clients in the wild depend on it; the gateway relays the
        # frame and the agent takes it (counting the mismatch).
        ws, _ = self.attached()
        time.sleep(1.5)  # the shell is up and reading its PTY
        made = "/tmp/porthole-e2e-%s" % uuid.uuid4().hex
        self.addCleanup(lambda: os.path.exists(made) and os.unlink(made))
        ws.send_binary(client_message("input_stream_data",
                                      ("touch %s\r" % made).encode(),
                                      digest=b"\0" * 32))
        harness.wait_for(lambda: os.path.exists(made), 10, 0.2,
                         "input with a zero digest to run")
        self.assertOpen(ws, 0.5)
        self.assertStillServing()

    def test_binary_frame_before_open_data_channel(self):
        r = self.start_session()
        ws = self.data_ws(r["StreamUrl"])
        ws.send_binary(client_message("input_stream_data", b"id\r"))
        self.assertClosed(ws)
        self.assertStillServing()

    def test_open_data_channel_not_json(self):
        r = self.start_session()
        ws = self.data_ws(r["StreamUrl"])
        ws.send_text('{"MessageSchemaVersion": "1.0", "TokenValue": ')
        self.assertClosed(ws)
        self.assertStillServing()

    # ---- tokens -----------------------------------------------------------

    def test_invalid_token(self):
        r = self.start_session()
        ws = self.data_ws(r["StreamUrl"])
        ws.send_text(open_data_channel_json("not-a-valid-token"))
        self.assertClosed(ws)
        self.assertStillServing()

    def test_token_is_single_use(self):
        ws, r = self.attached()
        ws.close()
        again = self.data_ws(r["StreamUrl"])
        again.send_text(open_data_channel_json(r["TokenValue"]))
        self.assertClosed(again)
        # ResumeSession hands out a fresh one that works.
        token = self.cluster.ssm().resume_session(
            SessionId=r["SessionId"])["TokenValue"]
        resumed = self.data_ws(r["StreamUrl"])
        resumed.send_text(open_data_channel_json(token))
        self.assertOpen(resumed, 1.0)
        self.assertStillServing()

    def test_token_expires(self):
        r = self.aging
        self.started.append(r["SessionId"])
        # The token lives 60 s (STORE_TOKEN_TTL_MS).
        time.sleep(max(0.0, 62 - (time.monotonic() - self.aging_since)))
        ws = self.data_ws(r["StreamUrl"])
        ws.send_text(open_data_channel_json(r["TokenValue"]))
        self.assertClosed(ws)
        self.assertStillServing()

    def test_token_of_another_session(self):
        a = self.start_session()
        b = self.start_session()
        ws = self.data_ws(b["StreamUrl"])
        ws.send_text(open_data_channel_json(a["TokenValue"]))
        self.assertClosed(ws)
        self.assertStillServing()

    def test_unknown_session(self):
        # Refused before the upgrade: no WebSocket is held for an id that
        # names no open session.
        ws = RawWebSocket(self.cluster.port,
                          "/v1/data-channel/nobody-0123456789abcdef0",
                          self.cluster.ca)
        self.addCleanup(ws.close)
        self.assertEqual(ws.status, 403)
        self.assertStillServing()

    def test_data_channel_of_another_users_session(self):
        self.skipTest("needs IAM users (a later issue): a token is bound to "
                      "its session, tested above, but ownership by a "
                      "second principal cannot be set up yet")

    # ---- agent-only channels and the API port -----------------------------

    def test_control_channel_needs_the_instance_certificate(self):
        ws = RawWebSocket(
            self.cluster.port, "/v1/control-channel/%s?role=subscribe&"
            "stream=input" % self.target, self.cluster.ca)
        self.addCleanup(ws.close)
        self.assertIn(ws.status, (401, 403))
        # The real agent is still Online.
        self.assertEqual(self.cluster.instance_info(self.target)
                         ["PingStatus"], "Online")
        self.assertStillServing()

    def test_garbage_on_the_api_port(self):
        ctx = ssl.create_default_context(cafile=self.cluster.ca)
        for junk in (b"\x00\x01\x02garbage\r\n\r\n",
                     b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                     b"GET / HTTP/1.1\r\nX: " + b"a" * 200000 + b"\r\n\r\n",
                     b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: "
                     b"104857600\r\n\r\n{"):
            with socket.create_connection(("127.0.0.1", self.cluster.port),
                                          timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                    s.settimeout(10)
                    try:
                        s.sendall(junk)
                        data = s.recv(4096)
                    except (OSError, ssl.SSLError):
                        data = b""
                    # Either an HTTP error status or a closed connection;
                    # never a success.
                    if data:
                        self.assertRegex(data[:12], rb"^HTTP/1\.[01] [45]")
        # Plain TCP without TLS.
        with socket.create_connection(("127.0.0.1", self.cluster.port),
                                      timeout=10) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            raw.settimeout(10)
            try:
                raw.recv(4096)
            except OSError:
                pass
        self.assertStillServing()


class AgentDeath(harness.ClusterTestCase):
    """SIGKILL of the agent mid-session; one fresh agent per test."""

    with_agent = False

    def kill_agent_mid_session(self, client):
        a = self.cluster.add_agent("victim-" + client)
        s = self.cluster.open_session(a.instance_id, client=client)
        self.assertIn("ssm-user", s.run("whoami"))
        s.child.sendline("sleep 100")
        time.sleep(0.5)
        a.proc.signal(signal.SIGKILL)
        a.proc.popen.wait(timeout=5)
        started = time.monotonic()
        s.child.expect(harness.pexpect.EOF, timeout=45)
        s.child.close()
        took = time.monotonic() - started
        status = s.exit_status()
        self.assertIsNotNone(status)
        self.assertNotEqual(status, 0,
                            "client exited 0 after the agent died")
        state, rec = self.cluster.wait_session_status(
            s.session_id, ("Failed", "Terminated"), timeout=20)
        self.assertEqual(state, "History")
        # Not stuck: the instance shows the connection lost.
        harness.wait_for(
            lambda: self.cluster.instance_info(a.instance_id)
            ["PingStatus"] == "ConnectionLost", 20, 0.5,
            "PingStatus ConnectionLost")
        return took

    def test_sigkill_agent_with_aws_cli(self):
        self.kill_agent_mid_session("aws")

    def test_sigkill_agent_with_porthole(self):
        self.kill_agent_mid_session("porthole")


if __name__ == "__main__":
    harness.main()
