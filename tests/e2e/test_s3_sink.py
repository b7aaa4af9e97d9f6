"""Record delivery to an S3 server of its own: moto's, on loopback.

The sink (src/server/sink.c) and its S3 client (src/server/s3.c) are
driven by build/tests/test_sink's driver mode ("test_sink drive DATA_DIR
SECONDS [ITEM]": the store and sink portholed uses, no sessions). Every
request goes through a proxy in this test that checks its SigV4
signature the way botocore computes it (moto itself checks none), then
passes it on to moto. Proves: a small file, an asciicast and a 12 MiB
record (multipart) arrive byte-exact under the prefix as PREFIX/ID.EXT,
path-style or virtual-hosted, with SSE-S3 or SSE-KMS as asked
(head_object), and the local copies go only then; with the S3 server
down, uploads fail, back off, keep every file and report the failure,
and when it is back the files arrive, both in the same process and after
a restart with files queued; an HTTPS endpoint is trusted only through
S3CAFile; hostile answers (random bytes, no UploadId, entity expansion,
a 200 whose body is an <Error>, a 5 MB error body) leave every file
queued; a bad item is refused; the secret key appears in no output.

End to end (S3SessionTest): a shell session through the AWS CLI with
s3BucketName, s3KeyPrefix and s3EncryptionEnabled in the preferences;
the S3 server stops mid-session and starts again after it ended; the
record's .log, .cast and .rec arrive complete under the prefix with
SSE-S3, the local copy goes, and DescribeSessions --state History names
the transcript's object; `porthole logs --status` (GetRecordDeliveryStatus)
shows files queued and the sink unhealthy during the outage, an empty,
healthy queue after the delivery.

S3AuditTest: with AuditS3Bucket, audit files closed by rotation (by size)
arrive byte-exact under AuditS3KeyPrefix with SSE-S3 and stay in the
trail, where LookupEvents still finds their events.
"""

import hashlib
import http.client
import http.server
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials

import harness

AKID = "AKIDS3SINKTEST"
SECRET = "s3SinkSecret/Do+Not+Log+Me0123456789abc"
REGION = "eu-west-3"
BUCKET = "porthole-records"
PREFIX = "Session-Manager/"
KMS_KEY = "arn:aws:kms:eu-west-3:123456789012:key/1234abcd-12ab-34cd-" \
    "56ef-1234567890ab"


def test_sink_bin():
    return os.path.join(os.path.dirname(harness.porthole_bin()), "tests",
                        "test_sink")


class SigV4Proxy(http.server.BaseHTTPRequestHandler):
    """Checks each request's signature, then forwards it to moto."""
    protocol_version = "HTTP/1.1"
    upstream = None          # moto's port, or None while it is down
    requests = 0
    virtual = 0
    bad = []
    hostile = None     # (method, path) -> (status, body, headers) or None

    def log_message(self, fmt, *args):
        pass

    def _check(self, body):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return "no SigV4 Authorization"
        parts = dict(p.strip().split("=", 1)
                     for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        cred = parts["Credential"].split("/")
        if cred[0] != AKID or cred[2] != REGION or cred[3] != "s3":
            return "bad credential scope %r" % parts["Credential"]
        sha = self.headers.get("x-amz-content-sha256")
        if sha != hashlib.sha256(body).hexdigest():
            return "x-amz-content-sha256 is not the body's"
        signed = parts["SignedHeaders"].split(";")
        for h in ("host", "x-amz-date", "x-amz-content-sha256"):
            if h not in signed:
                return "%s not signed" % h
        headers = {h: self.headers.get(h, "") for h in signed}
        req = botocore.awsrequest.AWSRequest(
            method=self.command, url="http://%s%s" % (
                self.headers["Host"], self.path),
            headers=headers, data=body)
        req.context["timestamp"] = self.headers["x-amz-date"]
        a = botocore.auth.S3SigV4Auth(
            botocore.credentials.Credentials(AKID, SECRET), "s3", REGION)
        cr = a.canonical_request(req)
        want = a.signature(a.string_to_sign(req, cr), req)
        if want != parts["Signature"]:
            return "signature mismatch for %s %s" % (self.command,
                                                     self.path)
        for h in ("x-amz-server-side-encryption",
                  "x-amz-server-side-encryption-aws-kms-key-id"):
            if h in self.headers and h not in signed:
                return "%s not signed" % h
        return None

    def _reply(self, status, body, headers=()):
        # Hostile answers end the exchange: a client that stopped
        # reading must not leave a body on a reused connection.
        if SigV4Proxy.hostile is not None:
            self.close_connection = True
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _any(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n) if n else b""
        SigV4Proxy.requests += 1
        why = self._check(body)
        if why:
            SigV4Proxy.bad.append(why)
            return self._reply(403, b"<Error><Code>SignatureDoesNotMatch"
                               b"</Code></Error>")
        if SigV4Proxy.hostile is not None:
            r = SigV4Proxy.hostile(self.command, self.path)
            if r is not None:
                return self._reply(*r)
        if SigV4Proxy.upstream is None:
            return self._reply(503, b"<Error><Code>ServiceUnavailable"
                               b"</Code><Message>moto is down</Message>"
                               b"</Error>")
        try:
            c = http.client.HTTPConnection("127.0.0.1", SigV4Proxy.upstream,
                                           timeout=30)
            hdrs = {k: v for k, v in self.headers.items()
                    if k.lower() not in ("expect", "connection")}
            # moto takes BUCKET.localhost (virtual-hosted) as the bucket.
            if self.headers.get("Host", "").startswith(BUCKET + "."):
                SigV4Proxy.virtual += 1
            c.request(self.command, self.path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            keep = [(k, v) for k, v in r.getheaders()
                    if k.lower() not in ("content-length", "connection",
                                         "transfer-encoding")]
            c.close()
        except OSError:
            return self._reply(503, b"<Error><Code>ServiceUnavailable"
                               b"</Code></Error>")
        return self._reply(r.status, data, keep)

    do_PUT = do_POST = do_DELETE = do_GET = do_HEAD = _any


class Moto:
    def __init__(self, port, log_path):
        self.port = port
        self.log = open(log_path, "ab")
        self.p = None

    def start(self):
        self.p = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
             str(self.port)], stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)
        s3 = self.client()
        harness.wait_for(lambda: s3.list_buckets() is not None, 30,
                         what="moto's S3 server")
        # moto keeps everything in memory: a new one has no bucket.
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={
            "LocationConstraint": REGION})
        SigV4Proxy.upstream = self.port

    def stop(self):
        SigV4Proxy.upstream = None
        if self.p is not None and self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(timeout=10)
        self.p = None

    def client(self):
        return boto3.client("s3", endpoint_url="http://127.0.0.1:%d"
                            % self.port, aws_access_key_id=AKID,
                            aws_secret_access_key=SECRET,
                            region_name=REGION)


class Driver:
    """test_sink drive, its status lines read as they come."""

    def __init__(self, data_dir, seconds, item=()):
        self.lines = []
        self.p = subprocess.Popen(
            [test_sink_bin(), "drive", data_dir, str(seconds), *item],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.err = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        self.t2 = threading.Thread(target=self._read_err, daemon=True)
        self.t2.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.strip())

    def _read_err(self):
        for line in self.p.stderr:
            self.err.append(line)

    def statuses(self):
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def wait(self, timeout=90):
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(timeout=10)
            raise
        self.t.join(5)
        self.t2.join(5)
        self.p.stdout.close()
        self.p.stderr.close()
        return self.p.returncode

    def stop(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
        return self.wait(20)


class S3SinkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(test_sink_bin()):
            raise unittest.SkipTest("no %s" % test_sink_bin())
        cls.tmp = tempfile.mkdtemp(prefix="porthole-s3sink-")
        cls.proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                    SigV4Proxy)
        cls.proxy.daemon_threads = True
        cls.proxy_port = cls.proxy.server_address[1]
        threading.Thread(target=cls.proxy.serve_forever,
                         daemon=True).start()
        cls.moto = Moto(harness.free_port(),
                        os.path.join(cls.tmp, "moto.log"))
        cls.moto.start()
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.moto.stop()
        cls.moto.log.close()
        cls.proxy.shutdown()
        cls.proxy.server_close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def data_dir(self, **extra):
        S3SinkTest.n += 1
        d = os.path.join(self.tmp, "d%d" % self.n)
        os.mkdir(d, 0o700)
        cfg = {"S3Endpoint": "http://127.0.0.1:%d" % self.proxy_port,
               "S3Region": REGION, "S3AccessKeyId": AKID,
               "S3SecretAccessKey": SECRET, "SinkRetryMinSeconds": 1,
               "SinkRetryMaxSeconds": 2}
        cfg.update(extra)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
        os.chmod(os.path.join(d, "config.json"), 0o600)
        return d

    def files(self, d, sid, sizes):
        out = {}
        for ext, n in sizes.items():
            p = os.path.join(d, sid + ext)
            with open(p, "wb") as f:
                f.write(os.urandom(n))
            with open(p, "rb") as f:
                out[ext] = (p, f.read())
        return out

    def check_arrived(self, sid, files, sse, kms=None):
        s3 = self.moto.client()
        for ext, (path, data) in files.items():
            key = PREFIX + sid + ext
            h = s3.head_object(Bucket=BUCKET, Key=key)
            self.assertEqual(h.get("ServerSideEncryption"), sse, key)
            if kms:
                self.assertEqual(h.get("SSEKMSKeyId"), kms)
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            self.assertEqual(hashlib.sha256(body).hexdigest(),
                             hashlib.sha256(data).hexdigest(), key)
            self.assertFalse(os.path.exists(path),
                             "%s kept after delivery" % path)

    def assert_no_secret(self, drv):
        self.assertNotIn(SECRET, "".join(drv.err) + "\n".join(drv.lines))

    def test_1_delivery_sse_s3_and_multipart(self):
        d = self.data_dir()
        sid = "alice-0a1b2c3d4e5f60718"
        f = self.files(d, sid, {".log": 2000, ".cast": 300,
                                ".rec": 12 * 1024 * 1024 + 17})
        drv = Driver(d, 60, [sid, BUCKET, PREFIX, "1", "",
                             *(p for p, _ in f.values())])
        self.assertEqual(drv.wait(), 0, drv.err)
        self.assertEqual(drv.statuses()[-1]["depth"], 0, drv.lines)
        self.check_arrived(sid, f, "AES256")
        self.assertIn("event=sink_delivered", "".join(drv.err))
        self.assert_no_secret(drv)
        self.assertEqual(SigV4Proxy.bad, [])

    def test_2_sse_kms(self):
        d = self.data_dir()
        sid = "bob-0a1b2c3d4e5f60718"
        f = self.files(d, sid, {".log": 100})
        drv = Driver(d, 60, [sid, BUCKET, PREFIX.rstrip("/"), "1", KMS_KEY,
                             f[".log"][0]])
        self.assertEqual(drv.wait(), 0, drv.err)
        self.check_arrived(sid, f, "aws:kms", KMS_KEY)
        self.assertEqual(SigV4Proxy.bad, [])

    def test_3_outage_then_recovery(self):
        d = self.data_dir()
        sid = "carol-0a1b2c3d4e5f60718"
        f = self.files(d, sid, {".log": 5000, ".rec": 6 * 1024 * 1024})
        self.moto.stop()
        try:
            drv = Driver(d, 90, [sid, BUCKET, PREFIX, "0", "",
                                 *(p for p, _ in f.values())])
            harness.wait_for(lambda: any(not s["healthy"]
                                         for s in drv.statuses()), 30,
                             what="the sink to report the outage")
            time.sleep(3)     # a few retries, backing off
            for p, _ in f.values():
                self.assertTrue(os.path.exists(p))
            st = [s for s in drv.statuses() if not s["healthy"]][-1]
            self.assertEqual(st["depth"], 2)
            self.assertGreater(st["oldest_ms"], 0)
            self.assertIn("503", st["last_error"])
        finally:
            self.moto.start()
        self.assertEqual(drv.wait(), 0, drv.err)
        self.assertEqual(drv.statuses()[-1]["depth"], 0, drv.lines)
        self.assertTrue(drv.statuses()[-1]["healthy"])
        self.check_arrived(sid, f, None)
        err = "".join(drv.err)
        self.assertIn("event=sink_unhealthy", err)
        self.assertIn("event=sink_healthy", err)
        self.assert_no_secret(drv)
        self.assertEqual(SigV4Proxy.bad, [])

    def test_4_restart_with_files_queued(self):
        d = self.data_dir()
        sid = "dave-0a1b2c3d4e5f60718"
        f = self.files(d, sid, {".log": 700, ".cast": 900})
        self.moto.stop()
        try:
            drv = Driver(d, 4, [sid, BUCKET, PREFIX, "1", "",
                                *(p for p, _ in f.values())])
            self.assertEqual(drv.wait(), 0, drv.err)
            last = drv.statuses()[-1]
            self.assertEqual(last["depth"], 2, drv.lines)
            self.assertFalse(last["healthy"])
        finally:
            self.moto.start()
        drv = Driver(d, 60)     # a new process: the queue is on disk
        self.assertEqual(drv.wait(), 0, drv.err)
        self.assertEqual(drv.statuses()[-1]["depth"], 0, drv.lines)
        self.check_arrived(sid, f, "AES256")
        self.assertEqual(SigV4Proxy.bad, [])

    def test_6_virtual_hosted(self):
        # libcurl resolves NAME.localhost to loopback itself.
        d = self.data_dir(S3Endpoint="http://localhost:%d" % self.proxy_port,
                          S3PathStyle=False)
        sid = "frank-0a1b2c3d4e5f60718"
        f = self.files(d, sid, {".log": 100, ".rec": 9 * 1024 * 1024})
        before = SigV4Proxy.virtual
        drv = Driver(d, 60, [sid, BUCKET, PREFIX, "0", "",
                             *(p for p, _ in f.values())])
        self.assertEqual(drv.wait(), 0, drv.err)
        self.assertEqual(drv.statuses()[-1]["depth"], 0, drv.lines)
        self.check_arrived(sid, f, None)
        # PutObject, and Create, 2 parts, Complete.
        self.assertGreaterEqual(SigV4Proxy.virtual - before, 5)
        self.assertEqual(SigV4Proxy.bad, [])

    def tls_proxy(self, name):
        """The proxy again, over TLS with a self-signed certificate for
        127.0.0.1: (port, certificate path)."""
        cert = os.path.join(self.tmp, name + ".pem")
        key = os.path.join(self.tmp, name + ".key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1", "-days", "1",
                        "-keyout", key, "-out", cert], check=True,
                       capture_output=True, timeout=60)
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SigV4Proxy)
        srv.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        return srv.server_address[1], cert

    def test_7_https_endpoint(self):
        port, cert = self.tls_proxy("s3tls")
        _, other = self.tls_proxy("other")
        endpoint = "https://127.0.0.1:%d" % port
        # A certificate the configured CA did not sign: nothing leaves.
        d = self.data_dir(S3Endpoint=endpoint, S3CAFile=other)
        sid = "grace-0a1b2c3d4e5f60718"
        f = self.files(d, sid, {".log": 100})
        n = SigV4Proxy.requests
        drv = Driver(d, 3, [sid, BUCKET, PREFIX, "0", "", f[".log"][0]])
        self.assertEqual(drv.wait(), 0, drv.err)
        last = drv.statuses()[-1]
        self.assertEqual(last["depth"], 1)
        self.assertFalse(last["healthy"])
        self.assertIn("certificate", last["last_error"].lower())
        self.assertEqual(SigV4Proxy.requests, n)
        self.assertTrue(os.path.exists(f[".log"][0]))
        # The right CA: delivered.
        with open(os.path.join(d, "config.json")) as fp:
            cfg = json.load(fp)
        cfg["S3CAFile"] = cert
        with open(os.path.join(d, "config.json"), "w") as fp:
            json.dump(cfg, fp)
        drv = Driver(d, 60)
        self.assertEqual(drv.wait(), 0, drv.err)
        self.assertEqual(drv.statuses()[-1]["depth"], 0, drv.lines)
        self.check_arrived(sid, f, None)
        self.assertEqual(SigV4Proxy.bad, [])

    def test_8_hostile_answers(self):
        laughs = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaa">'
                  + b"".join(b'<!ENTITY %s "%s">' % (
                      bytes([98 + i]), (b"&%s;" % bytes([97 + i])) * 10)
                      for i in range(8))
                  + b']><InitiateMultipartUploadResult><UploadId>&i;'
                  b'</UploadId></InitiateMultipartUploadResult>')
        modes = {
            # Random bytes, 200, no ETag: nothing counts as stored.
            "garbage": lambda m, p: (200, os.urandom(3000)),
            # CreateMultipartUpload without an UploadId; PutObject
            # without an ETag.
            "no-upload-id": lambda m, p: (
                200, b"<InitiateMultipartUploadResult><Bucket>x</Bucket>"
                b"</InitiateMultipartUploadResult>") if "uploads=" in p
            else (200, b""),
            # Entity expansion in the UploadId.
            "laughs": lambda m, p: (200, laughs) if "uploads=" in p
            else (500, b""),
            # 200 from CompleteMultipartUpload with an <Error> body (S3
            # does that); PutObject refused with a 5 MB error body.
            "complete-error": lambda m, p: (
                200, b"<Error><Code>InternalError</Code><Message>"
                b"boom</Message></Error>")
            if m == "POST" and "uploadId=" in p
            else (500, b"<" * (5 << 20)) if "?" not in p else None,
        }
        s3 = self.moto.client()
        try:
            for name, fn in modes.items():
                SigV4Proxy.hostile = fn
                d = self.data_dir()
                sid = "hostile-%s" % name
                f = self.files(d, sid, {".log": 100,
                                        ".rec": 9 * 1024 * 1024})
                drv = Driver(d, 3, [sid, BUCKET, PREFIX, "0", "",
                                    *(p for p, _ in f.values())])
                self.assertEqual(drv.wait(), 0, (name, drv.err))
                last = drv.statuses()[-1]
                self.assertEqual(last["depth"], 2, (name, drv.lines))
                self.assertFalse(last["healthy"], name)
                self.assertLess(len(last["last_error"]), 256)
                for p, _ in f.values():
                    self.assertTrue(os.path.exists(p), (name, p))
                got = s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX + sid)
                self.assertEqual(got.get("KeyCount", 0), 0, name)
        finally:
            SigV4Proxy.hostile = None

    def test_5_garbage_item(self):
        d = self.data_dir()
        f = self.files(d, "eve-1", {".log": 10})
        for sid, bucket in (("eve-1", "Not_A_Bucket"), ("../eve", BUCKET),
                            ("eve 1", BUCKET)):
            drv = Driver(d, 5, [sid, bucket, PREFIX, "0", "",
                                f[".log"][0]])
            self.assertEqual(drv.wait(), 1)
            self.assertIn("enqueue", drv.lines[0])
        self.assertTrue(os.path.exists(f[".log"][0]))
        self.assertGreater(SigV4Proxy.requests, 0)


class S3ServerFixture:
    """moto and the signature-checking proxy for a test with a
    portholed of its own."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="porthole-s3sess-")
        self.proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     SigV4Proxy)
        self.proxy.daemon_threads = True
        threading.Thread(target=self.proxy.serve_forever,
                         daemon=True).start()
        self.moto = Moto(harness.free_port(),
                         os.path.join(self.tmp, "moto.log"))
        self.moto.start()
        SigV4Proxy.bad = []

    def tearDown(self):
        self.moto.stop()
        self.moto.log.close()
        self.proxy.shutdown()
        self.proxy.server_close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def configure(self, c, **extra):
        path = os.path.join(c.data_dir, "config.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg.update(extra)
        cfg.update({"S3Endpoint": "http://127.0.0.1:%d"
                    % self.proxy.server_address[1],
                    "S3Region": REGION, "S3AccessKeyId": AKID,
                    "S3SecretAccessKey": SECRET,
                    "SinkRetryMinSeconds": 1, "SinkRetryMaxSeconds": 2})
        with open(path, "w") as f:
            json.dump(cfg, f)
        os.chmod(path, 0o600)
        c.restart_server()



class S3SessionTest(S3ServerFixture, unittest.TestCase):
    """A shell session whose preferences name the bucket: the S3 server
    stops mid-session and comes back later; the record's objects arrive
    complete under the prefix, DescribeSessions points at them."""

    def status(self, c):
        return subprocess.run([harness.binary("porthole"), "logs",
                               "--status"], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL,
                              env=c.env)

    def test_session_record_survives_outage(self):
        import sessionkit
        with harness.Cluster("s3sink") as c:
            self.configure(c)
            agent = c.add_agent("s3")
            sessionkit.set_session_prefs(
                c, s3BucketName=BUCKET, s3KeyPrefix=PREFIX.rstrip("/"),
                s3EncryptionEnabled=True)
            s = c.open_session(agent.instance_id, client="aws")
            sid = s.session_id
            s.run("echo before-$((6*7))-outage")
            self.moto.stop()
            s.run("echo during-$((6*7))-outage")
            self.assertEqual(s.exit(), 0)
            local = os.path.join(c.data_dir, "records", sid + ".log")
            harness.wait_for(
                lambda: "event=sink_unhealthy" in c.server.log(), 60,
                what="portholed to report the bucket down")
            self.assertTrue(os.path.exists(local), local)
            # The queue, as `porthole logs --status` shows it (exit 1
            # while the last upload failed).
            p = self.status(c)
            self.assertEqual(p.returncode, 1, p.stderr)
            st = dict(line.split(": ", 1)
                      for line in p.stdout.splitlines())
            self.assertGreater(int(st["queue_depth"]), 0, p.stdout)
            self.assertEqual(st["healthy"], "no", p.stdout)
            self.assertIn("oldest_queued", st)
            self.assertTrue(st.get("last_error"), p.stdout)
            self.assertNotIn(SECRET, p.stdout)
            time.sleep(1)
            self.moto.start()
            s3 = self.moto.client()
            keys = [PREFIX + sid + e for e in (".log", ".cast", ".rec")]

            def arrived():
                got = {o["Key"] for o in s3.list_objects_v2(
                    Bucket=BUCKET).get("Contents", [])}
                return all(k in got for k in keys)
            harness.wait_for(arrived, 60, what="the record in the bucket")
            for k in keys:
                h = s3.head_object(Bucket=BUCKET, Key=k)
                self.assertEqual(h.get("ServerSideEncryption"), "AES256")
            log = s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()
            text = log.decode("utf-8", "replace")
            self.assertIn("before-42-outage", text)
            self.assertIn("during-42-outage", text)
            cast = s3.get_object(Bucket=BUCKET, Key=keys[1])["Body"].read()
            self.assertIn(b"during-42-outage", cast)
            harness.wait_for(lambda: not os.path.exists(local), 30,
                             what="the local copy to go")
            harness.wait_for(
                lambda: self.status(c).stdout ==
                "queue_depth: 0\nhealthy: yes\n", 30,
                what="an empty, healthy queue in logs --status")
            self.assertEqual(self.status(c).returncode, 0)
            out = c.ssm().describe_sessions(State="History")["Sessions"]
            mine = [x for x in out if x["SessionId"] == sid]
            self.assertEqual(len(mine), 1, out)
            url = mine[0].get("OutputUrl", {}).get("S3OutputUrl", "")
            self.assertTrue(url.endswith("/%s/%s" % (BUCKET, keys[0])),
                            url)
            self.assertIn("event=sink_healthy", c.server.log())
            self.assertNotIn(SECRET, c.server.log())
            self.assertEqual(SigV4Proxy.bad, [])


class S3AuditTest(S3ServerFixture, unittest.TestCase):
    """AuditS3Bucket: audit files closed by rotation (by size here) are
    uploaded byte-exact under AuditS3KeyPrefix; the trail keeps them and
    LookupEvents still reads their events; the outbox link goes."""

    def test_rotated_audit_files_delivered(self):
        with harness.Cluster("s3audit") as c:
            self.configure(c, AuditS3Bucket=BUCKET,
                           AuditS3KeyPrefix="audit-trail",
                           AuditS3EncryptionEnabled=True,
                           AuditMaxFileBytes=4096)
            adir = os.path.join(c.data_dir, "audit")
            ssm = c.ssm()

            def rotated():
                ssm.describe_sessions(State="History")
                return len([n for n in os.listdir(adir)
                            if n.endswith(".jsonl")]) >= 3
            harness.wait_for(rotated, 60, interval=0.01,
                             what="the audit trail to rotate")
            names = sorted(n for n in os.listdir(adir)
                           if n.endswith(".jsonl"))
            day = time.strftime("%Y-%m-%d", time.gmtime())
            first = "audit-%s.jsonl" % day
            self.assertIn(first, names)
            s3 = self.moto.client()
            key = "audit-trail/" + first
            harness.wait_for(lambda: s3.head_object(Bucket=BUCKET,
                                                    Key=key), 30,
                             what="the first audit file in the bucket")
            h = s3.head_object(Bucket=BUCKET, Key=key)
            self.assertEqual(h.get("ServerSideEncryption"), "AES256")
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            with open(os.path.join(adir, first), "rb") as f:
                self.assertEqual(body, f.read())
            for line in body.splitlines():
                json.loads(line)
            outbox = os.path.join(c.data_dir, "audit-outbox")
            harness.wait_for(lambda: first not in os.listdir(outbox), 30,
                             what="the outbox link to go")
            # The trail still has the file, and LookupEvents its events.
            self.assertTrue(os.path.exists(os.path.join(adir, first)))
            ev = json.loads(body.splitlines()[0])
            out = c.aws("cloudtrail", "lookup-events", "--lookup-"
                        "attributes", "AttributeKey=EventId,"
                        "AttributeValue=" + ev["eventID"])
            self.assertEqual([e["EventId"] for e in out["Events"]],
                             [ev["eventID"]])
            log = c.server.log()
            self.assertIn("event=audit_file_queued file=" + first, log)
            self.assertNotIn("audit_file_not_queued", log)
            self.assertNotIn(SECRET, log)
            self.assertEqual(SigV4Proxy.bad, [])


if __name__ == "__main__":
    harness.main()
