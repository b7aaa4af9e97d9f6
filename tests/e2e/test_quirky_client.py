"""A sloppy data-channel client is served as AWS's agent serves it.

tests/e2e/quirky_client.mjs (a Node test tool) opens a shell session the
way JavaScript clients in the wild do (wire spec 3.7): digests holding the
first 32 hex characters of the SHA-256, PayloadLengths that disagree with
the message, acknowledgements that always name output_stream_data with
PayloadType 1 and Flags 0, a size message with PayloadType 3 and sequence
number 0 before any output, and the token message as a text frame. It
types `echo quirky-$((6*7))`, must read `quirky-42`, types exit and exits
0. The agent logs the digest mismatch once for the session and counts the
mismatches in its session_end line; portholed relays every such frame.

Then garbage that must still be refused: frames shorter than the header
and a HeaderLength past the frame close the client's data channel (1007),
and portholed and the agent serve the next quirky session. Last, a
ClientMessage sent as a text frame after the token is relayed and run.
"""

import os
import re
import shutil
import struct
import subprocess
import time
import unittest
import uuid

import harness
from harness import RawWebSocket, client_message, open_data_channel_json

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "quirky_client.mjs")
NODE = shutil.which("node")


def node_has_websocket():
    """Node 20.10+ has a WebSocket client behind --experimental-websocket
    (on by default from Node 22)."""
    if NODE is None:
        return False
    p = subprocess.run(
        [NODE, "--experimental-websocket", "--no-warnings", "-e",
         "process.exit(typeof WebSocket === 'function' ? 0 : 3)"],
        capture_output=True, timeout=30)
    return p.returncode == 0


def read(path):
    with open(path, "r", errors="replace") as f:
        return f.read()


@unittest.skipUnless(node_has_websocket(),
                     "needs node >= 20.10 (its WebSocket client)")
class QuirkyClient(harness.ClusterTestCase):

    def run_client(self, timeout=60):
        r = self.cluster.ssm().start_session(Target=self.target)
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=self.cluster.ca)
        p = subprocess.run(
            [NODE, "--experimental-websocket", "--no-warnings", CLIENT,
             "--stream-url", r["StreamUrl"], "--token", r["TokenValue"],
             "--timeout", str(timeout)],
            env=env, capture_output=True, text=True, timeout=timeout + 30)
        self.assertEqual(p.returncode, 0, "quirky client failed:\n%s\n%s"
                         % (p.stdout[-3000:], p.stderr[-3000:]))
        self.assertIn("quirky-42", p.stdout)
        return r["SessionId"]

    def wait_log(self, path, pattern, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(pattern, read(path))
            if m:
                return m
            time.sleep(0.2)
        self.fail("no %r in %s" % (pattern, path))

    def test_1_quirky_shell(self):
        sid = self.run_client()
        self.cluster.wait_session_status(
            sid, ("Terminated", "Success"), timeout=30)
        end = self.wait_log(
            self.agent.log_path,
            r"event=session_end session=%s status=\S+ "
            r"digest_mismatches=(\d+) length_mismatches=(\d+)"
            % re.escape(sid))
        # The size, the command, exit and every ack: all mismatched.
        self.assertGreaterEqual(int(end.group(1)), 4)
        self.assertGreaterEqual(int(end.group(2)), 3)
        log = read(self.agent.log_path)
        said = re.findall(r"event=client_digest_mismatch session=%s "
                          r"kind=(\S+)" % re.escape(sid), log)
        self.assertEqual(said, ["hex_prefix"], "logged once, as hex prefix")
        self.assertEqual(len(re.findall(
            r"event=client_length_mismatch session=%s" % re.escape(sid),
            log)), 1)
        self.assertNotIn("event=bad_frame session=%s" % sid, log)
        self.assertNotIn("event=bad_frame session=%s" % sid,
                         read(self.cluster.server_log))

    def garbage_closes(self, frame, codes=(1007,)):
        r = self.cluster.ssm().start_session(Target=self.target)
        ws = RawWebSocket(self.cluster.port, harness.stream_url_path(
            r["StreamUrl"]), self.cluster.ca, timeout=15)
        try:
            self.assertEqual(ws.status, 101)
            ws.send_text(open_data_channel_json(r["TokenValue"]))
            ws.send_binary(frame)
            how, code = ws.wait_closed(timeout=15)
        finally:
            ws.close()
        self.assertEqual(how, "close")
        self.assertIn(code, codes)
        self.cluster.ssm().terminate_session(SessionId=r["SessionId"])

    def test_2_garbage_still_refused(self):
        good = client_message("input_stream_data", b"{\"cols\":80}",
                              payload_type=3)
        # Shorter than the header (116..119 bytes is AWS's crash zone).
        for n in (0, 1, 115, 116, 119):
            with self.subTest(length=n):
                self.garbage_closes(good[:n] if n else b"")
        # HeaderLength past the frame, and HeaderLength 0.
        for hl in (len(good), 0xffffffff, 0):
            with self.subTest(header_length=hl):
                self.garbage_closes(struct.pack(">I", hl) + good[4:])
        # Above the payload maximum (64 KiB + 28).
        # (the WebSocket layer may refuse the message first: 1009).
        self.garbage_closes(client_message(
            "input_stream_data", b"x" * (64 * 1024 + 29)), (1007, 1009))
        self.assertTrue(self.agent.proc.alive(), "the agent died")
        self.assertTrue(self.cluster.server.alive(), "portholed died")
        # And the next sloppy client is served.
        self.run_client()

    def test_3_client_message_as_text_frame(self):
        # AWS's agent reads text and binary messages alike; portholed
        # relays a ClientMessage sent as a text frame, and drops text that
        # is not one (as before), keeping the channel open.
        r = self.cluster.ssm().start_session(Target=self.target)
        made = "/tmp/porthole-e2e-%s" % uuid.uuid4().hex
        self.addCleanup(lambda: os.path.exists(made) and os.unlink(made))
        ws = RawWebSocket(self.cluster.port, harness.stream_url_path(
            r["StreamUrl"]), self.cluster.ca, timeout=15)
        try:
            self.assertEqual(ws.status, 101)
            ws.send_text(open_data_channel_json(r["TokenValue"]))
            time.sleep(1.5)  # the shell is up and reading its PTY
            ws.send_text("not a ClientMessage")
            # A text frame must be UTF-8 (RFC 6455; portholed's
            # WebSocket layer closes with 1007 otherwise): CreatedDate
            # and MessageId are chosen ASCII-only, the digest left zero.
            f = bytearray(client_message(
                "input_stream_data", ("touch %s\r" % made).encode(),
                digest=b"\0" * 32))
            f[40:48] = bytes.fromhex("0000017f7f7f7f7f")
            f[64:80] = b"0123456789abcdef"
            self.assertTrue(all(b < 0x80 for b in f))
            ws.send(harness.OP_TEXT, bytes(f))
            harness.wait_for(lambda: os.path.exists(made), 10, 0.2,
                             "the text-frame input to run")
            with self.assertRaises(TimeoutError):
                ws.wait_closed(0.5)
        finally:
            ws.close()
        self.cluster.ssm().terminate_session(SessionId=r["SessionId"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
