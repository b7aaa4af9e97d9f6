"""Authentication of API callers, and the data directory `init` creates.

Proves that portholed refuses every request that is not correctly SigV4
signed by a known access key, with HTTP 403 and the AWS error type in
`__type`: no signature (MissingAuthenticationTokenException), the wrong
secret (InvalidSignatureException), an unknown access key
(UnrecognizedClientException), an X-Amz-Date 10 minutes in the past or the
future (InvalidSignatureException), and a body changed after signing
(InvalidSignatureException); that botocore surfaces these as ClientError
with the same codes; and that `portholed init` on an existing directory
changes nothing and says so, while the files holding secrets are 0600.
"""

import datetime
import hashlib
import json
import os
import socket
import ssl
import subprocess
import unittest.mock
import urllib.error
import urllib.request
import warnings

import botocore.auth
import botocore.awsrequest
import botocore.credentials

import harness

TARGET = "AmazonSSM.DescribeActivations"


class Auth(harness.ClusterTestCase):
    with_agent = False

    def post(self, headers, body=b"{}"):
        """POST to the API with exactly these headers; returns (status,
        parsed JSON body)."""
        ctx = ssl.create_default_context(cafile=self.cluster.ca)
        req = urllib.request.Request(self.cluster.endpoint + "/", data=body,
                                     method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=15) as r:
                status, data = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        try:
            doc = json.loads(data) if data else {}
        except ValueError:
            self.fail("response is not JSON: %r" % data[:300])
        return status, doc

    def signed_headers(self, access_key=None, secret=None, when=None,
                       body=b"{}", target=TARGET):
        creds = botocore.credentials.Credentials(
            access_key or self.cluster.access_key,
            secret or self.cluster.secret_key)
        req = botocore.awsrequest.AWSRequest(
            method="POST", url=self.cluster.endpoint + "/", data=body,
            headers={"Content-Type": "application/x-amz-json-1.1",
                     "X-Amz-Target": target})
        signer = botocore.auth.SigV4Auth(creds, "ssm", self.cluster.region)
        if when is None:
            signer.add_auth(req)
        else:
            with unittest.mock.patch("botocore.auth.get_current_datetime",
                                     return_value=when):
                signer.add_auth(req)
        return dict(req.headers.items())

    def assertRefused(self, status, doc, error_type):
        self.assertEqual(status, 403, doc)
        self.assertEqual(doc.get("__type", "").split("#")[-1], error_type,
                         doc)
        msg = doc.get("message") or doc.get("Message") or ""
        self.assertTrue(msg, doc)
        self.assertNotIn(self.cluster.secret_key, json.dumps(doc))

    def test_correctly_signed_request_works(self):
        status, doc = self.post(self.signed_headers())
        self.assertEqual(status, 200, doc)
        self.assertIn("ActivationList", doc)

    def test_unsigned_request(self):
        status, doc = self.post({
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": TARGET})
        self.assertRefused(status, doc, "MissingAuthenticationTokenException")

    def test_wrong_secret(self):
        h = self.signed_headers(secret="x" * 40)
        self.assertRefused(*self.post(h), "InvalidSignatureException")

    def test_unknown_access_key(self):
        h = self.signed_headers(access_key="AKIAEXAMPLEUNKNOWN00")
        self.assertRefused(*self.post(h), "UnrecognizedClientException")

    def test_date_ten_minutes_old(self):
        when = datetime.datetime.now(datetime.timezone.utc) - \
            datetime.timedelta(minutes=10)
        h = self.signed_headers(when=when)
        self.assertRefused(*self.post(h), "InvalidSignatureException")

    def test_date_ten_minutes_ahead(self):
        when = datetime.datetime.now(datetime.timezone.utc) + \
            datetime.timedelta(minutes=10)
        h = self.signed_headers(when=when)
        self.assertRefused(*self.post(h), "InvalidSignatureException")

    def test_date_within_skew_is_accepted(self):
        when = datetime.datetime.now(datetime.timezone.utc) - \
            datetime.timedelta(minutes=3)
        status, doc = self.post(self.signed_headers(when=when))
        self.assertEqual(status, 200, doc)

    def test_malformed_authorization(self):
        h = self.signed_headers()
        h["Authorization"] = "AWS4-HMAC-SHA256 Credential=garbage"
        self.assertRefused(*self.post(h), "IncompleteSignatureException")

    def test_missing_date(self):
        h = self.signed_headers()
        for k in list(h):
            if k.lower() == "x-amz-date":
                del h[k]
        self.assertRefused(*self.post(h), "IncompleteSignatureException")

    def test_body_changed_after_signing(self):
        h = self.signed_headers(body=b"{}")
        status, doc = self.post(h, body=b'{"MaxResults": 1}')
        self.assertRefused(status, doc, "InvalidSignatureException")

    def test_target_changed_after_signing(self):
        h = self.signed_headers()
        h["X-Amz-Target"] = "AmazonSSM.DeleteActivation"
        self.assertRefused(*self.post(h), "InvalidSignatureException")

    def test_payload_hash_header_must_match(self):
        # A signed, but false, x-amz-content-sha256.
        creds = botocore.credentials.Credentials(self.cluster.access_key,
                                                 self.cluster.secret_key)
        fake = hashlib.sha256(b"something else").hexdigest()
        req = botocore.awsrequest.AWSRequest(
            method="POST", url=self.cluster.endpoint + "/", data=b"{}",
            headers={"Content-Type": "application/x-amz-json-1.1",
                     "X-Amz-Target": TARGET,
                     "X-Amz-Content-SHA256": fake})
        botocore.auth.SigV4Auth(creds, "ssm", self.cluster.region) \
            .add_auth(req)
        status, doc = self.post(dict(req.headers.items()))
        self.assertEqual(status, 403, doc)

    def test_botocore_sees_aws_error_codes(self):
        bad = self.cluster.ssm(secret="y" * 40)
        self.assertClientError("InvalidSignatureException",
                               bad.describe_activations)
        unknown = self.cluster.ssm(access_key="AKIAEXAMPLEUNKNOWN00")
        self.assertClientError("UnrecognizedClientException",
                               unknown.describe_activations)
        # The AWS CLI reports the same and exits non-zero.
        env = self.cluster.make_env(AWS_PROFILE=None,
                                    AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                                    AWS_ACCESS_KEY_ID="AKIAEXAMPLEUNKNOWN00",
                                    AWS_SECRET_ACCESS_KEY="z" * 40)
        p = self.cluster.aws("ssm", "describe-activations", check=False,
                             env=env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("UnrecognizedClientException", p.stderr)

    def test_unknown_action(self):
        h = self.signed_headers(target="AmazonSSM.NoSuchAction")
        status, doc = self.post(h)
        self.assertEqual(status, 400, doc)
        self.assertIn(doc.get("__type", "").split("#")[-1],
                      ("UnknownOperationException", "InvalidAction"))

    def test_tls_1_2_or_later_only(self):
        # This client can speak TLS 1.0/1.1 (checked against an
        # `openssl s_server -tls1_1`); portholed must refuse them.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.cluster.ca)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        try:
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        except ssl.SSLError:
            pass
        with socket.create_connection(("127.0.0.1", self.cluster.port),
                                      timeout=5) as s:
            with self.assertRaises((ssl.SSLError, OSError)):
                with ctx.wrap_socket(s, server_hostname="127.0.0.1"):
                    pass
        self.assertIn(self.cluster.tls_probe(), ("TLSv1.2", "TLSv1.3"))

    def test_tls_1_3_prefers_aes_128_gcm(self):
        # The server's order decides: a client that lists AES-256-GCM
        # first (OpenSSL's and Python's default) still gets AES-128-GCM;
        # a client that offers only AES-256-GCM or ChaCha20 gets it.
        def cipher(suites):
            out = subprocess.run(
                ["openssl", "s_client", "-brief", "-tls1_3",
                 "-ciphersuites", suites, "-CAfile", self.cluster.ca,
                 "-connect", "127.0.0.1:%d" % self.cluster.port],
                input=b"", capture_output=True, timeout=20)
            for line in out.stderr.decode(errors="replace").splitlines():
                if line.startswith("Ciphersuite:"):
                    return line.split(":", 1)[1].strip()
            return out.stderr.decode(errors="replace")[-300:]
        self.assertEqual(cipher("TLS_AES_256_GCM_SHA384:"
                                "TLS_CHACHA20_POLY1305_SHA256:"
                                "TLS_AES_128_GCM_SHA256"),
                         "TLS_AES_128_GCM_SHA256")
        self.assertEqual(cipher("TLS_AES_256_GCM_SHA384"),
                         "TLS_AES_256_GCM_SHA384")
        self.assertEqual(cipher("TLS_CHACHA20_POLY1305_SHA256"),
                         "TLS_CHACHA20_POLY1305_SHA256")


class NoSecretsInLogs(harness.ClusterTestCase):
    """After an enrolment and a session, no secret is in any log."""

    def test_logs_hold_no_secrets(self):
        c = self.cluster
        aid, code = c.create_activation()
        a = c.new_agent("logged")
        a.register(aid, code)
        a.start()
        c.wait_online(a.instance_id, agent=a)
        r = c.ssm().start_session(Target=a.instance_id)
        token = r["TokenValue"]
        token2 = c.ssm().resume_session(SessionId=r["SessionId"])[
            "TokenValue"]
        c.ssm().terminate_session(SessionId=r["SessionId"])
        s = c.open_session(a.instance_id)
        self.assertEqual(s.exit(), 0)
        with open(os.path.join(a.state_dir, "key.pem")) as f:
            key_body = "".join(line for line in f.read().splitlines()
                               if line and not line.startswith("-----"))
        with open(os.path.join(c.data_dir, "ca.key")) as f:
            ca_body = "".join(line for line in f.read().splitlines()
                              if line and not line.startswith("-----"))
        logs = c.server.log() + a.proc.log() + self.agent.proc.log()
        self.assertIn(a.instance_id, logs)  # the logs are the right ones
        for name, secret in (("admin secret key", c.secret_key),
                             ("activation code", code),
                             ("StartSession token", token),
                             ("ResumeSession token", token2),
                             ("agent private key", key_body[:40]),
                             ("CA private key", ca_body[:40])):
            self.assertNotIn(secret, logs, "%s in the logs" % name)


class InitDataDir(harness.ClusterTestCase):
    with_agent = False

    def snapshot(self, d):
        out = {}
        for root, _dirs, files in os.walk(d):
            for f in files:
                p = os.path.join(root, f)
                if f.endswith(("-wal", "-shm", "-journal")):
                    continue
                st = os.stat(p)
                with open(p, "rb") as fh:
                    out[p] = (hashlib.sha256(fh.read()).hexdigest(),
                              st.st_mode & 0o777)
        return out

    def test_second_init_changes_nothing(self):
        d = os.path.join(self.cluster.tmp, "fresh")
        p = self.cluster.init(data_dir=d)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        before = self.snapshot(d)
        for name in ("ca.pem", "admin.credentials", "config.json"):
            self.assertIn(os.path.join(d, name), before)
        p = self.cluster.init(data_dir=d)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex((p.stdout + p.stderr).lower(), r"already")
        self.assertEqual(self.snapshot(d), before)
        # And the running server's own directory too.
        d = self.cluster.data_dir
        before = self.snapshot(d)
        p = self.cluster.init(data_dir=d)
        self.assertEqual(p.returncode, 0)
        self.assertRegex((p.stdout + p.stderr).lower(), r"already")
        after = self.snapshot(d)
        for path in ("ca.pem", "admin.credentials", "config.json"):
            path = os.path.join(d, path)
            self.assertEqual(after[path], before[path], path)

    def test_secret_files_are_private(self):
        d = self.cluster.data_dir
        self.assertEqual(harness.file_mode(
            os.path.join(d, "admin.credentials")), 0o600)
        for root, _dirs, files in os.walk(d):
            for f in files:
                p = os.path.join(root, f)
                with open(p, "rb") as fh:
                    head = fh.read(1 << 16)
                if b"PRIVATE KEY" in head or f.endswith(".key") or \
                        b"aws_secret_access_key" in head or \
                        f.startswith("porthole.db"):
                    self.assertEqual(harness.file_mode(p) & 0o077, 0,
                                     "%s is mode %o" % (p,
                                                        harness.file_mode(p)))
        self.assertEqual(harness.file_mode(d) & 0o022, 0)

    def test_credentials_file_and_config(self):
        with open(self.cluster.credentials_file) as f:
            text = f.read()
        self.assertIn("[porthole]", text)
        self.assertRegex(self.cluster.access_key, r"^[A-Z0-9]{16,128}$")
        self.assertGreaterEqual(len(self.cluster.secret_key), 30)
        with open(os.path.join(self.cluster.data_dir, "config.json")) as f:
            cfg = json.load(f)
        self.assertIsInstance(cfg, dict)
        # The secret is not in the logs.
        self.cluster.ssm().describe_activations()
        self.assertNotIn(self.cluster.secret_key, self.cluster.server.log())
        self.assertNotIn(self.cluster.secret_key, self.cluster.init_output)

    def test_init_options(self):
        d = os.path.join(self.cluster.tmp, "custom")
        p = self.cluster.init("--hostname", "porthole.example",
                              "--account-id", "123456789012",
                              data_dir=d)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(os.path.join(d, "config.json")) as f:
            cfg = json.dumps(json.load(f))
        self.assertIn("123456789012", cfg)
        cert = subprocess.run(
            ["openssl", "x509", "-noout", "-text", "-in",
             os.path.join(d, "server.pem")],
            capture_output=True, text=True, timeout=10)
        if cert.returncode == 0:
            self.assertIn("porthole.example", cert.stdout)
        bad = self.cluster.init("--account-id", "12", data_dir=os.path.join(
            self.cluster.tmp, "bad"))
        self.assertNotEqual(bad.returncode, 0)

    def test_sigterm_is_clean(self):
        # SIGTERM: exit status 0 within the stop bound. The server is
        # started again so the other tests of the class are unaffected.
        rc = self.cluster.restart_server()
        self.assertEqual(rc, 0, harness.tail(self.cluster.server_log, 30))
        self.cluster.ssm().describe_activations()


if __name__ == "__main__":
    harness.main()
