"""End-to-end KMS encryption of sessions.

Proves that setting `kmsKeyId` in the Session Manager preferences (`aws ssm
update-document --name SSM-SessionManagerRunShell --content file://prefs.json
--document-version '$LATEST'`, the key and its alias made with `aws kms`)
makes new sessions encrypted end to end, with the AWS CLI + our
session-manager-plugin and with `porthole start-session`: the client prints
"This session is encrypted using AWS KMS.", the shell works (whoami, window
size, Ctrl-C, a large output, a cut connection resumed), and the relay in
the middle never sees the text: portholed runs with PORTHOLED_RELAY_CAPTURE,
and a marker typed and printed in the session appears in neither
direction's relayed bytes, while the handshake (PayloadTypes 5 and 6, which
are never encrypted) shows the KMSEncryption request naming the key. As a
control, the same marker does appear in the capture of an unencrypted
session.

Denied cases: a user the key policy does not allow (a policy naming only
the instances' role) gets a clear AccessDenied error and no session; a
disabled key refuses the session the same way; an instance whose role the
key policy does not allow to Decrypt fails the handshake cleanly (client
exits non-zero, session Failed or Terminated, no shell output relayed); the
agent then serves the next session.
"""

import json
import os
import re
import time
import uuid

import harness
import sessionkit

ALIAS = "alias/session-manager-demo-encryption"


class CaptureCluster(harness.Cluster):
    """portholed (and everything else) with PORTHOLED_RELAY_CAPTURE set."""

    def make_env(self, **overrides):
        env = super().make_env(**overrides)
        env["PORTHOLED_RELAY_CAPTURE"] = self.capture_path
        return env

    @property
    def capture_path(self):
        return os.path.join(self.tmp, "relay.capture")


class EncryptedBase(harness.ClusterTestCase):

    needs_key = True

    @classmethod
    def setUpClass(cls):
        cls.cluster = CaptureCluster(cls.__name__)
        try:
            cls.cluster.start()
            cls.agent = cls.cluster.add_agent("main")
            if cls.needs_key:
                cls.key = sessionkit.create_key(
                    cls.cluster, alias=ALIAS,
                    policy=sessionkit.session_key_policy(cls.cluster),
                    description="Session Manager encryption")
        except BaseException:
            cls.cluster.close(dump=True)
            raise

    def capture_offset(self):
        try:
            return os.path.getsize(self.cluster.capture_path)
        except FileNotFoundError:
            return 0

    def capture(self, offset):
        return sessionkit.read_capture(self.cluster.capture_path, offset)

    def marker(self):
        """(typed command, printed text, secret prefix) of a fresh marker:
        the printed text differs from the typed one, so it can only come
        from the shell."""
        tag = "SECRET-MARKER-%s-" % uuid.uuid4().hex[:8]
        return "echo %s$((6*7))" % tag, tag + "42", tag

    def assert_no_shell_output(self, records):
        shell = sessionkit.stream_bytes(records, "A", (sessionkit.PT_OUTPUT,))
        self.assertEqual(shell, b"", "shell output was relayed: %r"
                         % shell[:200])

    def session_id_from(self, s):
        m = re.search(r"Starting session with SessionId: (\S+)",
                      harness.strip_ansi(s.transcript.getvalue()))
        return m.group(1) if m else None

    def wait_failed_start(self, target, client, secs=60):
        """A session that must not open: returns (session, output)."""
        s = self.cluster.open_session(target, client=client, ready=False)
        try:
            s.child.expect(harness.pexpect.EOF, timeout=secs)
        except harness.pexpect.TIMEOUT:
            self.fail("the client still runs after %ss: %s"
                      % (secs, harness.printable(s.transcript.getvalue())))
        s.child.close()
        return s, harness.strip_ansi(s.transcript.getvalue())

    def assert_session_ended(self, sid):
        if sid is None:
            return  # StartSession itself was refused: nothing recorded
        self.cluster.wait_session_status(sid, ("Failed", "Terminated"),
                                         timeout=30)


class EncryptedSession(EncryptedBase):

    def setUp(self):
        sessionkit.set_session_prefs(self.cluster, kmsKeyId=ALIAS)

    def encrypted_session(self, client):
        off = self.capture_offset()
        s = self.cluster.open_session(self.target, client=client,
                                      dimensions=(31, 97))
        self.assertIn(sessionkit.ENCRYPTED_BANNER, s.output())
        self.assertIn("ssm-user", s.run("whoami").split())
        self.assertIn("31 97", s.run("stty size"))
        typed, printed, secret = self.marker()
        out = s.run(typed)
        self.assertIn(printed, out.split())
        sid = s.session_id
        self.assertEqual(s.exit(), 0)
        self.cluster.wait_session_status(sid, ("Terminated",))

        recs = self.capture(off)
        self.assertTrue(any(d == "A" for d, _ in recs) and
                        any(d == "C" for d, _ in recs),
                        "the capture has not both directions")
        for d, raw in recs:
            self.assertNotIn(secret.encode(), raw,
                             "the marker crossed the relay in clear "
                             "(from %s)" % d)
            self.assertNotIn(b"whoami", raw)
        for direction in ("A", "C"):
            self.assertNotIn(secret.encode(),
                             sessionkit.stream_bytes(recs, direction))
        # The handshake is there, in clear as the spec has it, naming the
        # key; stream payloads carry nonce and tag (28 bytes more).
        frames = [(d, sessionkit.parse_frame(r)) for d, r in recs]
        req = [f for d, f in frames if d == "A" and f and
               f["type"] == "output_stream_data" and
               f["ptype"] == sessionkit.PT_HS_REQUEST]
        self.assertTrue(req, "no HandshakeRequest was relayed")
        self.assertIn(b"KMSEncryption", req[0]["payload"])
        self.assertIn(ALIAS.encode(), req[0]["payload"])
        resp = [f for d, f in frames if d == "C" and f and
                f["type"] == "input_stream_data" and
                f["ptype"] == sessionkit.PT_HS_RESPONSE]
        self.assertTrue(resp, "no HandshakeResponse was relayed")
        self.assertIn(b"KMSCipherTextKey", resp[0]["payload"])
        for d, f in frames:
            if f and f["type"].endswith("_stream_data") and \
                    f["ptype"] == sessionkit.PT_OUTPUT:
                self.assertGreater(len(f["payload"]), 28)
        return sid

    def test_encrypted_with_porthole(self):
        self.encrypted_session("porthole")

    def test_encrypted_with_aws_cli(self):
        self.encrypted_session("aws")

    def test_preferences_document_holds_the_key(self):
        d = self.cluster.aws("ssm", "get-document", "--name",
                             "SSM-SessionManagerRunShell",
                             "--document-version", "$LATEST")
        self.assertEqual(json.loads(d["Content"])["inputs"]["kmsKeyId"],
                         ALIAS)
        self.assertEqual(d.get("DocumentType"), "Session")

    def test_encrypted_large_output_ctrl_c_and_cut(self):
        proxy = sessionkit.TcpProxy(self.cluster.port)
        self.addCleanup(proxy.close)
        env = self.cluster.make_env(AWS_ENDPOINT_URL=proxy.url)
        s = self.cluster.open_session(self.target, client="porthole",
                                      env=env)
        self.assertIn(sessionkit.ENCRYPTED_BANNER, s.output())
        n = 300000
        cut = []

        def progress(total):
            if not cut and total > n * 3:
                cut.append(proxy.cut())
        s.child.sendline("seq 1 %d; echo SEQ''-DONE" % n)
        out = harness.strip_ansi(sessionkit.pump(s, "SEQ-DONE", 180,
                                                 on_progress=progress))
        s.child.expect_exact(harness.PROMPT, timeout=30)
        self.assertTrue(cut and cut[0] > 0, "no connection was cut")
        lines = [x for x in out.split("\n")[1:] if x.isdigit()]
        self.assertEqual(lines, [str(i) for i in range(1, n + 1)])
        s.child.sendline("sleep 100")
        time.sleep(1.0)
        s.child.send("\x03")
        s.child.expect_exact(harness.PROMPT, timeout=10)
        self.assertIn("ok", s.run("echo o''k"))
        self.assertEqual(s.exit(), 0)


class EncryptedSessionTypes(EncryptedBase):
    """The command session types are encrypted the same way: stdout,
    stderr (PayloadType 11) and the exit code (12) are sealed with bytes
    0-31 and none of them crosses the relay in clear."""

    def setUp(self):
        sessionkit.set_session_prefs(self.cluster, kmsKeyId=ALIAS)

    def porthole(self, document, command, timeout=60):
        argv = [harness.binary("porthole"), "start-session", "--target",
                self.target, "--document-name", document, "--parameters",
                json.dumps({"command": [command]})]
        master, slave = os.openpty()
        try:
            p = harness.subprocess.run(
                argv, stdin=slave, capture_output=True, timeout=timeout,
                env=self.cluster.env)
        finally:
            os.close(master)
            os.close(slave)
        return (p.returncode, p.stdout.decode(errors="replace"),
                p.stderr.decode(errors="replace"))

    def assert_sealed(self, recs, secret):
        self.assertTrue(recs, "nothing was relayed")
        for d, raw in recs:
            self.assertNotIn(secret.encode(), raw,
                             "the marker crossed the relay in clear")
        for d, raw in recs:
            f = sessionkit.parse_frame(raw)
            if f and f["type"] == "output_stream_data" and f["ptype"] in (
                    sessionkit.PT_OUTPUT, sessionkit.PT_STDERR,
                    sessionkit.PT_EXIT_CODE):
                self.assertGreater(len(f["payload"]), 28)
        self.assertFalse(any(
            (sessionkit.parse_frame(raw) or {}).get("payload", b"")
            .startswith(b"EXIT_CODE") for _d, raw in recs),
            "the exit code crossed the relay in clear")

    def test_non_interactive_command(self):
        _typed, _printed, secret = self.marker()
        off = self.capture_offset()
        rc, out, err = self.porthole(
            "AWS-StartNonInteractiveCommand",
            "sh -c 'echo %sout$((1+1)); echo %serr$((2+2)) >&2; exit 5'"
            % (secret, secret))
        self.assertEqual(rc, 5, "stdout %r stderr %r" % (out, err))
        self.assertIn(sessionkit.ENCRYPTED_BANNER, out + err)
        self.assertIn(secret + "out2", out)
        self.assertIn(secret + "err4", err)
        self.assertNotIn(secret + "err4", out)
        self.assert_sealed(self.capture(off), secret)

    def test_interactive_command(self):
        _typed, _printed, secret = self.marker()
        off = self.capture_offset()
        rc, out, err = self.porthole(
            "AWS-StartInteractiveCommand",
            "sh -c 'echo %s$((6*7)); stty size'" % secret)
        self.assertEqual(rc, 0, "stdout %r stderr %r" % (out, err))
        self.assertIn(sessionkit.ENCRYPTED_BANNER, out + err)
        self.assertIn(secret + "42", out)
        self.assert_sealed(self.capture(off), secret)


class UnencryptedControl(EncryptedBase):
    """Without kmsKeyId the same marker is visible on the relay: the
    capture really shows what the relay handles."""

    needs_key = False

    def test_marker_visible_without_encryption(self):
        sessionkit.set_session_prefs(self.cluster, kmsKeyId="")
        off = self.capture_offset()
        s = self.cluster.open_session(self.target, client="porthole")
        self.assertNotIn(sessionkit.ENCRYPTED_BANNER, s.output())
        typed, printed, secret = self.marker()
        self.assertIn(printed, s.run(typed).split())
        self.assertEqual(s.exit(), 0)
        recs = self.capture(off)
        self.assertIn(printed.encode(), sessionkit.stream_bytes(recs, "A"))
        self.assertIn(typed.encode(), sessionkit.stream_bytes(recs, "C"))


class EncryptionDenied(EncryptedBase):

    def tearDown(self):
        sessionkit.set_session_prefs(self.cluster, kmsKeyId="")

    def use_new_key(self, policy, prefix):
        alias = "alias/%s-%s" % (prefix, uuid.uuid4().hex[:8])
        meta = sessionkit.create_key(self.cluster, alias=alias,
                                     policy=policy)
        sessionkit.set_session_prefs(self.cluster, kmsKeyId=alias)
        return meta, alias

    def refused(self, client, pattern):
        off = self.capture_offset()
        s, out = self.wait_failed_start(self.target, client)
        self.assertNotEqual(s.exit_status(), 0, out)
        self.assertRegex(out, pattern)
        self.assertNotIn(sessionkit.ENCRYPTED_BANNER, out)
        self.assert_session_ended(self.session_id_from(s))
        self.assert_no_shell_output(self.capture(off))
        return out

    def test_user_not_allowed_by_key_policy(self):
        c = self.cluster
        # The policy lets the admin, who is the user opening the session,
        # administer the key (as AWS, KMS needs the key policy to allow
        # kms:CreateAlias on the key) but not use it; only the instances'
        # role may.
        self.use_new_key(sessionkit.key_policy([
            ("KeyAdministrators", [sessionkit.admin_arn(c)],
             ["kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey",
              "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:DisableKey",
              "kms:EnableKey", "kms:ScheduleKeyDeletion"]),
            ("RoleOnly", [sessionkit.role_arn(c)], "kms:*")]), "role-only")
        for client in ("porthole", "aws"):
            with self.subTest(client=client):
                self.refused(client, r"AccessDenied")

    def test_disabled_key(self):
        meta, _alias = self.use_new_key(
            sessionkit.session_key_policy(self.cluster), "disabled")
        self.cluster.aws("kms", "disable-key", "--key-id", meta["KeyId"])
        self.refused("porthole", r"DisabledException|is disabled")

    def test_instance_not_allowed_to_decrypt(self):
        c = self.cluster
        other = "arn:aws:iam::%s:role/some-other-role" % \
            sessionkit.account_id(c)
        # The admin may generate data keys; only another role may decrypt.
        self.use_new_key(sessionkit.session_key_policy(
            c, roles=[], decrypt_roles=[other]), "no-decrypt")
        started = time.monotonic()
        self.refused("porthole", r"(?i)handshake|decrypt|encrypt|kms|"
                     r"AccessDenied")
        self.assertLess(time.monotonic() - started, 45)
        # The agent and portholed are fine and serve the next session.
        self.assertTrue(self.agent.proc.alive())
        self.assertTrue(c.server.alive())
        sessionkit.set_session_prefs(c, kmsKeyId=ALIAS)
        s = c.open_session(self.target, client="porthole")
        self.assertIn(sessionkit.ENCRYPTED_BANNER, s.output())
        self.assertIn("ssm-user", s.run("whoami").split())
        self.assertEqual(s.exit(), 0)


if __name__ == "__main__":
    harness.main()
