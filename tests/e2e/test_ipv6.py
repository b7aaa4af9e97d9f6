"""IPv6 end to end, on ::1.

portholed listens on [::1] only (`--listen [::1]:PORT`) with the
certificate `portholed init` makes by default (its names include ::1); an
agent registers and connects with `--endpoint https://[::1]:PORT`, the AWS
CLI and boto3 call `https://[::1]:PORT`, StartSession's StreamUrl is
`wss://[::1]:PORT/...` (the Host the client called), and shell sessions
work through `aws ssm start-session` (our session-manager-plugin) and
`porthole start-session`, a KMS-encrypted one too (the client's
GenerateDataKey and the agent's Decrypt go to the IPv6 endpoint).

TLS to an IP literal: the data channel's dialer sends no SNI for an IP
literal (RFC 6066 3) and sends it for a name (a TLS server of the test
records what arrives), and it verifies the certificate's IP addresses:
a certificate of the same CA without ::1 is refused before any request.

Garbage: `portholed serve --listen` with malformed addresses exits 2 with
a message naming the value and the reason and listens nowhere; an address
in use or given twice is refused clearly too.
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

import harness
import sessionkit


class V6Cluster(harness.Cluster):
    listen_host = "::1"


class IPv6Cluster(harness.ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        cls.cluster = V6Cluster(cls.__name__)
        try:
            cls.cluster.start()
            cls.agent = cls.cluster.add_agent("main")
        except BaseException:
            cls.cluster.close(dump=True, raise_reports=False)
            raise

    def test_endpoint_is_ipv6_only(self):
        c = self.cluster
        self.assertEqual(c.endpoint, "https://[::1]:%d" % c.port)
        # The default certificate names ::1 (Python checks IP SANs).
        self.assertTrue(c.tls_probe().startswith("TLS"))
        # [::1] binds IPv6 only: nothing of ours on 127.0.0.1:PORT.
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(3)
        try:
            self.assertNotEqual(s.connect_ex(("127.0.0.1", c.port)), 0)
        finally:
            s.close()
        with open(os.path.join(self.agent.state_dir, "agent.json")) as f:
            self.assertEqual(json.load(f)["Endpoint"], c.endpoint)

    def test_stream_url_uses_ipv6_host(self):
        r = self.cluster.ssm().start_session(Target=self.target)
        try:
            self.assertTrue(r["StreamUrl"].startswith(
                "wss://[::1]:%d/v1/data-channel/%s?" % (self.cluster.port,
                                                        r["SessionId"])),
                r["StreamUrl"])
        finally:
            self.cluster.ssm().terminate_session(SessionId=r["SessionId"])

    def session_works(self, client):
        s = self.cluster.open_session(self.target, client=client)
        self.assertIn("ssm-user", s.run("whoami").split())
        self.assertIn("v6-" + "ok", s.run("echo v6-''ok"))
        self.assertEqual(s.exit(), 0)

    def test_aws_cli_session(self):
        self.session_works("aws")

    def test_porthole_session(self):
        self.session_works("porthole")

    def test_encrypted_session(self):
        c = self.cluster
        alias = "alias/v6-session"
        sessionkit.create_key(c, alias=alias,
                              policy=sessionkit.session_key_policy(c))
        sessionkit.set_session_prefs(c, kmsKeyId=alias)
        try:
            s = c.open_session(self.target, client="aws")
            self.assertIn(sessionkit.ENCRYPTED_BANNER, s.output())
            self.assertIn("ssm-user", s.run("whoami").split())
            self.assertEqual(s.exit(), 0)
        finally:
            sessionkit.set_session_prefs(c)


class OneTlsServer:
    """Accepts one TLS connection on host (::1) with a given certificate
    and records the SNI it got (None: none) and the first bytes of the
    request, or the handshake's error."""

    def __init__(self, cert, key, host="::1"):
        self.sni = None
        self.sni_called = False
        self.request = b""
        self.error = None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.sni_callback = self._on_sni
        self.ctx = ctx
        self.sock = socket.socket(
            socket.AF_INET6 if ":" in host else socket.AF_INET,
            socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(4)
        self.sock.settimeout(30)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_sni(self, sslobj, name, ctx):
        self.sni_called = True
        self.sni = name

    def _run(self):
        try:
            conn, _ = self.sock.accept()
        except OSError as e:
            self.error = "accept: %s" % e
            return
        conn.settimeout(20)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as t:
                self.request = t.recv(4096)
        except (ssl.SSLError, OSError) as e:
            self.error = str(e)
        finally:
            conn.close()

    def close(self):
        self.sock.close()
        self.thread.join(5)


class TlsToIpLiterals(unittest.TestCase):
    """The data channel's TLS dialer (src/common/tls.c) against a TLS
    server of the test, through session-manager-plugin."""

    @classmethod
    def setUpClass(cls):
        harness.require_binaries("portholed", "session-manager-plugin")
        cls.tmp = tempfile.mkdtemp(prefix="porthole-v6tls-")
        cls.good = os.path.join(cls.tmp, "good")
        cls.other = os.path.join(cls.tmp, "other")
        for d, extra in ((cls.good, []),
                         (cls.other, ["--hostname", "other.example,::2"])):
            subprocess.run([harness.binary("portholed"), "init",
                            "--data-dir", d, *extra], check=True,
                           capture_output=True, timeout=60)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def dial(self, data_dir, host):
        """Run the plugin with a StreamUrl for host; return the server's
        record once its one connection is over."""
        # A name: where it resolves first (localhost may be IPv4 only).
        addr = "::1" if host.startswith("[") else socket.getaddrinfo(
            host, None, type=socket.SOCK_STREAM)[0][4][0]
        srv = OneTlsServer(os.path.join(data_dir, "server.pem"),
                           os.path.join(data_dir, "server.key"), addr)
        url = "wss://%s:%d/v1/data-channel/s-1?role=publish_subscribe" % (
            host, srv.port)
        resp = json.dumps({"SessionId": "s-1", "TokenValue": "t",
                           "StreamUrl": url})
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_")}
        env.update({"AWS_CA_BUNDLE": os.path.join(data_dir, "ca.pem"),
                    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
                    "AWS_SECRET_ACCESS_KEY": "x", "HOME": self.tmp,
                    "AWS_CONFIG_FILE": os.devnull,
                    "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
        p = subprocess.Popen(
            [harness.binary("session-manager-plugin"), resp, "us-east-1",
             "StartSession", "", json.dumps({"Target": "mi-1"}),
             "https://[::1]:1"], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            start_new_session=True)
        try:
            srv.thread.join(40)
        finally:
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass
            p.wait(10)
            srv.close()
        return srv

    def test_no_sni_and_ip_verified(self):
        srv = self.dial(self.good, "[::1]")
        self.assertIsNone(srv.error)
        self.assertTrue(srv.request.startswith(b"GET /v1/data-channel/s-1"),
                        srv.request[:80])
        self.assertIn(b"\r\nHost: [::1]:%d\r\n" % srv.port, srv.request)
        self.assertIsNone(srv.sni)

    def test_sni_for_names(self):
        srv = self.dial(self.good, "localhost")
        self.assertIsNone(srv.error)
        self.assertTrue(srv.request.startswith(b"GET /v1/data-channel/"))
        self.assertTrue(srv.sni_called)
        self.assertEqual(srv.sni, "localhost")

    def test_certificate_without_the_ip_is_refused(self):
        # Same kind of certificate, from its own CA the client trusts, but
        # for other.example and ::2: no request may arrive.
        srv = self.dial(self.other, "[::1]")
        self.assertEqual(srv.request, b"")
        self.assertIsNotNone(srv.error)


class BadListen(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        harness.require_binaries("portholed")
        cls.tmp = tempfile.mkdtemp(prefix="porthole-listen-")
        cls.data = os.path.join(cls.tmp, "d")
        subprocess.run([harness.binary("portholed"), "init", "--data-dir",
                        cls.data], check=True, capture_output=True,
                       timeout=60)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def serve(self, *listen, timeout=20):
        argv = [harness.binary("portholed"), "serve", "--data-dir",
                self.data]
        for v in listen:
            argv += ["--listen", v]
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def test_garbage_values(self):
        cases = [
            ("", "empty"),
            ("8443", "no :PORT"),
            ("::1:8443", "IPv6 addresses go in brackets"),
            ("[::1]", "want [IPv6]:PORT"),
            ("[::1]8443", "want [IPv6]:PORT"),
            ("[::1:8443", "'[' without ']'"),
            ("[127.0.0.1]:8443", "brackets are for IPv6"),
            ("[fe80::1%lo]:8443", "zone"),
            ("[::g]:8443", "not an IPv6 address"),
            ("127.0.0.1:", "port number is missing"),
            ("127.0.0.1:65536", "not in 0-65535"),
            ("127.0.0.1:-1", "not a number"),
            ("127.0.0.1:http", "not a number"),
            ("ssm.us-east-1.amazonaws.com:443", "not an IP address"),
            ("1.2.3.4.5:80", "not an IP address"),
            ("127.0.0.1:80 --help", "space"),
            ("127.0.0.1:\x1b[31m", "control"),
            ("\u00e9:80", "non-ASCII"),
            ("1" * 300 + ":80", "too long"),
        ]
        for value, why in cases:
            with self.subTest(value=value):
                p = self.serve("127.0.0.1:0", value)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("bad --listen", p.stderr)
                self.assertIn(why, p.stderr)
                self.assertNotIn("event=listening", p.stderr)
                self.assertNotIn("\x1b", p.stderr)

    def test_given_twice(self):
        p = self.serve("[::1]:8443", "[0:0::1]:8443")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("given twice", p.stderr)

    def test_too_many(self):
        p = self.serve(*["127.0.0.1:%d" % (20000 + i) for i in range(17)])
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("at most 16", p.stderr)

    def test_address_in_use(self):
        busy = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        busy.bind(("::1", 0))
        busy.listen(1)
        try:
            port = busy.getsockname()[1]
            p = self.serve("127.0.0.1:0", "[::1]:%d" % port)
        finally:
            busy.close()
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("cannot listen on [::1]:%d" % port, p.stderr)
        self.assertIn("already in use", p.stderr)

    def test_not_a_local_address(self):
        p = self.serve("[::1]:0", "192.0.2.7:8443")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("cannot listen on 192.0.2.7:8443", p.stderr)
        self.assertIn("not an address of this host", p.stderr)


if __name__ == "__main__":
    harness.main()
