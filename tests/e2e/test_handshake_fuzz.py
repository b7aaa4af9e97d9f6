"""Bad handshake payloads from a client of an encrypted session.

A raw WebSocket client (this test) opens the data channel of a session
whose preferences name a KMS key, receives the agent's HandshakeRequest
(wire spec 5.2: SessionType, then KMSEncryption naming the key) and answers
it. First, as a control, correctly: GenerateDataKey (64 bytes, context =
session id and target id), the challenge of spec 6.4 decrypted with bytes
0-31 and re-encrypted with bytes 32-63, then HandshakeComplete says "This
session is encrypted using AWS KMS." and the shell's first output opens
with bytes 0-31 (AES-256-GCM, nonce first, tag last).

Then with garbage: payloads that are not JSON, JSON of the wrong shape or
types, deep nesting, huge strings, a payload over the frame limit, missing
actions, ActionStatus Failed / Unsupported / a string, no ActionResult, a
KMSCipherTextKey that is not base64, random bytes, or a real data key made
for another session's context; shell input before the handshake; silence
(the agent's 15-second wait); and in the challenge step, a challenge that is
not base64, not JSON, echoed back unchanged, or the wrong bytes. Each time
the session fails cleanly: the client's data channel is closed (or told
channel_closed) within a bound, no HandshakeComplete and no shell output
ever reach the client, input sent early never runs, the session is recorded
Failed or Terminated, and portholed and the agent keep running and serve
the next session (finally a real encrypted `porthole` session).
"""

import base64
import json
import os
import time
import uuid

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import harness
import sessionkit
from harness import client_message

ALIAS = "alias/e2e-handshake-fuzz"
END_WITHIN = 30  # seconds: the agent's 15 s handshake wait, and slack


class FakeClient(sessionkit.RawClient):
    """The client end of a data channel, driven by hand."""

    end_within = END_WITHIN

    def __init__(self, tc, document=None):
        kw = {"DocumentName": document} if document else {}
        super().__init__(tc, **kw)
        self.received = []      # every stream frame from the agent

    def on_stream(self, f):
        self.received.append(f)

    def wait_end(self, timeout=None):
        ended = super().wait_end(timeout)
        if ended is None:
            raise AssertionError("session %s still open on the client side "
                                 "after %ss" % (self.sid, timeout or
                                                self.end_within))
        return ended

    def handshake_request(self):
        f = self.next_stream((sessionkit.PT_HS_REQUEST,))
        req = json.loads(f["payload"])
        actions = req["RequestedClientActions"]
        self.tc.assertEqual(actions[0]["ActionType"], "SessionType")
        self.tc.assertEqual(actions[1]["ActionType"], "KMSEncryption")
        self.tc.assertEqual(actions[1]["ActionParameters"]["KMSKeyId"],
                            ALIAS)
        return req


def response(kms_result, kms_status=1, session_type_status=1):
    return json.dumps({
        "ClientVersion": "1.2.650.0",
        "ProcessedClientActions": [
            {"ActionType": "SessionType",
             "ActionStatus": session_type_status,
             "ActionResult": None, "Error": ""},
            {"ActionType": "KMSEncryption", "ActionStatus": kms_status,
             "ActionResult": kms_result, "Error": ""},
        ],
        "Errors": None,
    }).encode()


def cipher_result(blob):
    return {"KMSCipherTextKey": base64.b64encode(blob).decode(),
            "KMSCipherTextHash": None}


class HandshakeFuzz(harness.ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            sessionkit.create_key(cls.cluster, alias=ALIAS,
                                  policy=sessionkit.session_key_policy(
                                      cls.cluster))
            sessionkit.set_session_prefs(cls.cluster, kmsKeyId=ALIAS)
        except BaseException:
            cls.cluster.close(dump=True)
            raise

    def setUp(self):
        self.kms = self.cluster.client("kms")

    def data_key(self, sid, target=None):
        r = self.kms.generate_data_key(
            KeyId=ALIAS, NumberOfBytes=64,
            EncryptionContext={"aws:ssm:SessionId": sid,
                               "aws:ssm:TargetId": target or self.target})
        return r["Plaintext"], r["CiphertextBlob"]

    def fake(self):
        fc = FakeClient(self)
        self.addCleanup(fc.close)
        return fc

    def assertFailedCleanly(self, fc, started=None):
        how = fc.wait_end()
        bad = [f["ptype"] for f in fc.received
               if f["ptype"] in (sessionkit.PT_HS_COMPLETE,
                                 sessionkit.PT_OUTPUT)]
        self.assertEqual(bad, [], "the client got HandshakeComplete or "
                         "shell output after a bad handshake (%s)" % (how,))
        self.cluster.wait_session_status(fc.sid, ("Failed", "Terminated"),
                                         timeout=30)
        self.assertTrue(self.agent.proc.alive(), "the agent died")
        self.assertTrue(self.cluster.server.alive(), "portholed died")
        return how

    # ---- the control: a correct handshake ---------------------------------

    def test_valid_handshake_completes(self):
        fc = self.fake()
        req = fc.handshake_request()
        self.assertTrue(req.get("AgentVersion"))
        key, blob = self.data_key(fc.sid)
        fc.send(response(cipher_result(blob)), sessionkit.PT_HS_RESPONSE)
        ch = fc.next_stream((sessionkit.PT_CHALLENGE_REQUEST,))
        sealed = base64.b64decode(json.loads(ch["payload"])["Challenge"])
        self.assertEqual(len(sealed), 64 + 28)
        plain = AESGCM(key[:32]).decrypt(sealed[:12], sealed[12:], None)
        nonce = os.urandom(12)
        answer = nonce + AESGCM(key[32:]).encrypt(nonce, plain, None)
        fc.send(json.dumps({"Challenge": base64.b64encode(
            answer).decode()}).encode(), sessionkit.PT_CHALLENGE_RESPONSE)
        done = fc.next_stream((sessionkit.PT_HS_COMPLETE,))
        self.assertIn(sessionkit.ENCRYPTED_BANNER,
                      json.loads(done["payload"])["CustomerMessage"])
        # The shell's output is sealed with bytes 0-31.
        out = fc.next_stream((sessionkit.PT_OUTPUT,))
        p = out["payload"]
        self.assertGreater(len(p), 28)
        AESGCM(key[:32]).decrypt(p[:12], p[12:], None)
        # And input sealed with bytes 32-63 runs.
        path = "/tmp/porthole-e2e-%s" % uuid.uuid4().hex
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        nonce = os.urandom(12)
        fc.send(nonce + AESGCM(key[32:]).encrypt(
            nonce, ("touch %s\r" % path).encode(), None),
            sessionkit.PT_OUTPUT)
        harness.wait_for(lambda: os.path.exists(path), 15, 0.2,
                         "the sealed input to run")
        self.cluster.ssm().terminate_session(SessionId=fc.sid)
        fc.wait_end()

    def complete_handshake(self, fc):
        """A correct handshake; returns the 64-byte data key."""
        fc.handshake_request()
        key, blob = self.data_key(fc.sid)
        fc.send(response(cipher_result(blob)), sessionkit.PT_HS_RESPONSE)
        ch = fc.next_stream((sessionkit.PT_CHALLENGE_REQUEST,))
        sealed = base64.b64decode(json.loads(ch["payload"])["Challenge"])
        plain = AESGCM(key[:32]).decrypt(sealed[:12], sealed[12:], None)
        nonce = os.urandom(12)
        fc.send(json.dumps({"Challenge": base64.b64encode(
            nonce + AESGCM(key[32:]).encrypt(nonce, plain, None)).decode()
        }).encode(), sessionkit.PT_CHALLENGE_RESPONSE)
        fc.next_stream((sessionkit.PT_HS_COMPLETE,))
        return key

    def test_input_sealed_with_the_wrong_key(self):
        # After a good handshake, input that does not open with bytes
        # 32-63 never runs, and a client that keeps sending it (the
        # agent does not acknowledge it, so it is resent) loses the
        # session.
        fc = self.fake()
        key = self.complete_handshake(fc)
        path = "/tmp/porthole-e2e-%s" % uuid.uuid4().hex
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        nonce = os.urandom(12)
        bad = nonce + AESGCM(key[:32]).encrypt(
            nonce, ("touch %s\r" % path).encode(), None)
        for _ in range(40):
            fc.ws.send_binary(client_message(
                "input_stream_data", bad, seq=fc.seq,
                payload_type=sessionkit.PT_OUTPUT))
            time.sleep(0.05)
        fc.seq += 1
        fc.wait_end()
        self.cluster.wait_session_status(fc.sid, ("Failed", "Terminated"),
                                         timeout=30)
        self.assertFalse(os.path.exists(path),
                         "input sealed with the wrong key ran")
        self.assertTrue(self.agent.proc.alive(), "the agent died")

    # ---- garbage HandshakeResponses ---------------------------------------

    def bad_response(self, payload):
        fc = self.fake()
        fc.handshake_request()
        fc.send(payload, sessionkit.PT_HS_RESPONSE)
        return self.assertFailedCleanly(fc)

    def test_garbage_responses(self):
        big = "9" * 60000
        cases = {
            "not JSON": b"\x00\xffnot json {",
            "a JSON array": b"[1, 2, 3]",
            "a JSON string": b'"hello"',
            "null": b"null",
            "deep nesting": b"[" * 5000 + b"]" * 5000,
            "wrong types": json.dumps({
                "ClientVersion": 5, "ProcessedClientActions": "x",
                "Errors": 7}).encode(),
            "actions of the wrong type": json.dumps({
                "ClientVersion": "1.2.0.0",
                "ProcessedClientActions": [1, "a", None],
                "Errors": None}).encode(),
            "no actions": json.dumps({"ClientVersion": "1.2.0.0",
                                      "Errors": None}).encode(),
            "empty actions": json.dumps({
                "ClientVersion": "1.2.0.0", "ProcessedClientActions": [],
                "Errors": None}).encode(),
            "SessionType only": json.dumps({
                "ClientVersion": "1.2.0.0",
                "ProcessedClientActions": [{
                    "ActionType": "SessionType", "ActionStatus": 1,
                    "ActionResult": None, "Error": ""}],
                "Errors": None}).encode(),
            "KMSEncryption Failed": response(None, kms_status=2),
            "KMSEncryption Unsupported": response(None, kms_status=3),
            "SessionType Failed": response(cipher_result(os.urandom(64)),
                                           session_type_status=2),
            "ActionStatus a string": response(
                cipher_result(os.urandom(64)), kms_status="1"),
            "no ActionResult": response(None),
            "ActionResult a number": response(42),
            "key not base64": response({"KMSCipherTextKey": "!!not b64!!",
                                        "KMSCipherTextHash": None}),
            "key random bytes": response(cipher_result(os.urandom(180))),
            "key a huge string": response({"KMSCipherTextKey": "A" * 40000,
                                           "KMSCipherTextHash": None}),
            "client version huge": json.dumps({
                "ClientVersion": big, "ProcessedClientActions": [],
                "Errors": [big[:1000]]}).encode(),
            "over the frame limit": b'{"ClientVersion":"' +
                                    b"x" * (70 << 10) + b'"}',
        }
        for name, payload in cases.items():
            with self.subTest(case=name):
                self.bad_response(payload)

    def test_data_key_of_another_session(self):
        # A real data key, but bound to another session's context: the
        # agent's Decrypt with its own context must fail.
        fc = self.fake()
        fc.handshake_request()
        _key, blob = self.data_key("admin-0123456789abcdef0")
        fc.send(response(cipher_result(blob)), sessionkit.PT_HS_RESPONSE)
        self.assertFailedCleanly(fc)

    def test_data_key_for_another_target(self):
        fc = self.fake()
        fc.handshake_request()
        _key, blob = self.data_key(fc.sid, target="mi-0123456789abcdef0")
        fc.send(response(cipher_result(blob)), sessionkit.PT_HS_RESPONSE)
        self.assertFailedCleanly(fc)

    def test_input_before_the_handshake_never_runs(self):
        fc = self.fake()
        fc.handshake_request()
        path = "/tmp/porthole-e2e-%s" % uuid.uuid4().hex
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        fc.send(("touch %s\r" % path).encode(), sessionkit.PT_OUTPUT)
        fc.send(b"{not json", sessionkit.PT_HS_RESPONSE)
        self.assertFailedCleanly(fc)
        time.sleep(1.0)
        self.assertFalse(os.path.exists(path),
                         "input sent before the handshake ran")

    def test_silence_after_the_request(self):
        fc = self.fake()
        fc.handshake_request()
        started = time.monotonic()
        self.assertFailedCleanly(fc)
        # The agent waits 15 s for the response (spec 5.3), not forever.
        self.assertLess(time.monotonic() - started, END_WITHIN)

    # ---- garbage in the challenge step ------------------------------------

    def bad_challenge(self, answer_fn):
        fc = self.fake()
        fc.handshake_request()
        key, blob = self.data_key(fc.sid)
        fc.send(response(cipher_result(blob)), sessionkit.PT_HS_RESPONSE)
        ch = fc.next_stream((sessionkit.PT_CHALLENGE_REQUEST,))
        sealed = base64.b64decode(json.loads(ch["payload"])["Challenge"])
        fc.send(answer_fn(key, sealed),
                      sessionkit.PT_CHALLENGE_RESPONSE)
        return self.assertFailedCleanly(fc)

    def test_bad_challenge_answers(self):
        def seal(key, data):
            nonce = os.urandom(12)
            return nonce + AESGCM(key).encrypt(nonce, data, None)

        def as_json(b):
            return json.dumps({"Challenge": base64.b64encode(b).decode()}
                              ).encode()

        cases = {
            "wrong bytes": lambda k, s: as_json(seal(k[32:],
                                                    os.urandom(64))),
            "echoed unchanged": lambda k, s: as_json(s),
            "sealed with the wrong half": lambda k, s: as_json(seal(
                k[:32], AESGCM(k[:32]).decrypt(s[:12], s[12:], None))),
            "not base64": lambda k, s: b'{"Challenge":"%%%not base64%%%"}',
            "not JSON": lambda k, s: b"\x01\x02 challenge?",
            "empty challenge": lambda k, s: b'{"Challenge":""}',
            "truncated": lambda k, s: as_json(seal(k[32:], AESGCM(
                k[:32]).decrypt(s[:12], s[12:], None))[:40]),
        }
        for name, fn in cases.items():
            with self.subTest(case=name):
                self.bad_challenge(fn)

    # ---- and afterwards ---------------------------------------------------

    def test_zz_still_serving(self):
        # Runs last (alphabetical order): after all of the above, a real
        # encrypted session works.
        s = self.cluster.open_session(self.target, client="porthole")
        self.assertIn(sessionkit.ENCRYPTED_BANNER, s.output())
        self.assertIn("ssm-user", s.run("whoami").split())
        self.assertEqual(s.exit(), 0)


if __name__ == "__main__":
    harness.main()
