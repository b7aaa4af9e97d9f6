"""Session records at portholed: the seed's Step 3 through the AWS CLI.

In a shell session type AAFFHHJJ, erase it with backspaces, run whoami,
exit: the asciicast (.cast) and the transcript (.log, through `porthole
logs`) both hold AAFFHHJJ, whoami and ssm-user in that order, and
DescribeSessions --state History points at the record (OutputUrl). A
portholed SIGKILLed mid-session and restarted still has the record up to
that moment. 50 MB of random output are recorded byte-exact (checked
against a SHA-256 the session prints, in the .rec, through `porthole logs
--raw` and through `porthole replay --speed 0`). No secret (the admin's
secret key, a session token) appears in any record or log file.
GetSessionLog and the record endpoint answer garbage with clear errors;
strict mode refuses sessions while the bucket cannot take records.
"""
import base64
import hashlib
import json
import os
import re
import shlex
import ssl
import struct
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import harness
import sessionkit

MAGIC = b"PHREC1\n"
NON_INTERACTIVE = "AWS-StartNonInteractiveCommand"
BLOB = 50 * 1000 * 1000


def read(path):
    with open(path, "rb") as f:
        return f.read()


def frames_of(data):
    """[(type, t_us, bytes)] of a raw record's complete frames."""
    assert data.startswith(MAGIC), data[:20]
    off = data.index(b"\n", len(MAGIC)) + 1
    out = []
    while len(data) - off >= 13:
        t = data[off:off + 1].decode()
        us, n = struct.unpack(">QI", data[off + 1:off + 13])
        if off + 13 + n > len(data):
            break
        out.append((t, us, data[off + 13:off + 13 + n]))
        off += 13 + n
    return out


def output_of(data):
    return b"".join(d for t, _, d in frames_of(data) if t == "o")


def in_order(text, *words):
    """Each word found after the previous one."""
    pos = 0
    for w in words:
        i = text.find(w, pos)
        if i < 0:
            return False
        pos = i + len(w)
    return True


class Recording(harness.ClusterTestCase):

    def rec_path(self, sid, ext="rec"):
        return os.path.join(self.cluster.data_dir, "records",
                            "%s.%s" % (sid, ext))

    def porthole(self, *args, timeout=120, check=True):
        p = subprocess.run([harness.binary("porthole"), *args],
                           capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, env=self.cluster.env)
        if check and p.returncode != 0:
            raise AssertionError("porthole %s: exit %d: %s"
                                 % (" ".join(args), p.returncode,
                                    p.stderr.decode(errors="replace")))
        return p

    def wait_rendered(self, sid, timeout=90):
        """The agent completes the record after the session; portholed
        renders it: `porthole logs` waits for that."""
        p = self.porthole("logs", sid, "--text", "--wait", str(timeout),
                          timeout=timeout + 30)
        return p.stdout

    def signed(self, target, body, access_key=None, secret=None):
        """A signed AWS JSON 1.1 call that botocore's model lacks:
        (status, parsed body)."""
        c = self.cluster
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = AWSRequest(method="POST", url=c.endpoint + "/", data=data,
                         headers={
                             "Content-Type": "application/x-amz-json-1.1",
                             "X-Amz-Target": "AmazonSSM." + target})
        SigV4Auth(Credentials(access_key or c.access_key,
                              secret or c.secret_key),
                  "ssm", c.region).add_auth(req)
        p = req.prepare()
        r = urllib.request.Request(p.url, data=p.body,
                                   headers=dict(p.headers), method="POST")
        ctx = ssl.create_default_context(cafile=c.ca)
        try:
            with urllib.request.urlopen(r, context=ctx, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def post_record(self, path, body=b"x"):
        """POST to the record endpoint without a client certificate."""
        c = self.cluster
        ctx = ssl.create_default_context(cafile=c.ca)
        r = urllib.request.Request(c.endpoint + path, data=body,
                                   method="POST")
        try:
            with urllib.request.urlopen(r, context=ctx, timeout=30) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code

    # ---- the seed's Step 3 -------------------------------------------------

    def test_seed_typed_and_erased(self):
        c = self.cluster
        s = c.open_session(self.target, client="aws")
        sid = s.session_id
        s.child.send("AAFFHHJJ")
        s.expect("AAFFHHJJ", timeout=10)
        time.sleep(0.3)
        s.child.send("\x7f" * 8)
        time.sleep(0.5)
        self.assertIn("ssm-user" if os.geteuid() == 0 else "",
                      s.run("whoami"))
        self.assertEqual(s.exit(), 0)

        text = self.wait_rendered(sid).decode("utf-8")
        self.assertTrue(in_order(text, "AAFFHHJJ", "whoami", "ssm-user"
                                 if os.geteuid() == 0 else "whoami"),
                        text[-2000:])
        self.assertNotIn("\x1b", text)

        cast = self.porthole("logs", sid, "--cast").stdout.decode("utf-8")
        lines = cast.splitlines()
        head = json.loads(lines[0])
        self.assertEqual(head["version"], 2)
        self.assertGreater(head["width"], 0)
        self.assertGreater(head["height"], 0)
        self.assertGreater(head["timestamp"], 1600000000)
        events = [json.loads(x) for x in lines[1:]]
        times = [e[0] for e in events]
        self.assertEqual(times, sorted(times))
        out = "".join(e[2] for e in events if e[1] == "o")
        inp = "".join(e[2] for e in events if e[1] == "i")
        self.assertTrue(in_order(out, "AAFFHHJJ", "whoami", "ssm-user"
                                 if os.geteuid() == 0 else "whoami"))
        self.assertTrue(in_order(inp, "AAFFHHJJ", "\x7f" * 8, "whoami"))
        self.assertEqual(read(self.rec_path(sid, "cast")).decode(), cast)

        # Local files: the record directory 0700, every file 0600.
        d = os.path.dirname(self.rec_path(sid))
        self.assertEqual(harness.file_mode(d) & 0o777, 0o700)
        for ext in ("rec", "cast", "log"):
            self.assertEqual(harness.file_mode(self.rec_path(sid, ext))
                             & 0o777, 0o600)

        # The raw form, and replay without waits.
        raw = self.porthole("logs", sid, "--raw").stdout
        self.assertEqual(raw, read(self.rec_path(sid)))
        played = self.porthole("replay", sid, "--speed", "0").stdout
        self.assertEqual(played, output_of(raw))

        # Session history points at the record.
        hist = c.aws("ssm", "describe-sessions", "--state", "History",
                     "--filters", "key=SessionId,value=" + sid)
        [sess] = hist["Sessions"]
        url = sess["OutputUrl"]["S3OutputUrl"]
        self.assertEqual(url, "file://" + self.rec_path(sid, "log"))

    # ---- crash safety ------------------------------------------------------

    def test_server_killed_mid_session(self):
        c = self.cluster
        s = c.open_session(self.target, client="porthole")
        sid = s.session_id
        self.assertIn("MARK", s.run("echo MARK''ER-BEFORE-KILL"))
        path = self.rec_path(sid)
        harness.wait_for(lambda: os.path.exists(path) and
                         b"MARKER-BEFORE-KILL" in output_of(read(path)),
                         30, 0.2, "the marker stored at portholed")
        before = read(path)
        c.server.kill()
        c.stop_server()
        s.close()
        # What portholed acknowledged is there after the crash.
        self.assertEqual(read(path)[:len(before)], before)
        c.start_server()
        c.wait_online(self.target, agent=self.agent)
        # The session waits for its client to resume; end it.
        c.aws("ssm", "terminate-session", "--session-id", sid)
        text = self.wait_rendered(sid).decode("utf-8")
        self.assertIn("MARKER-BEFORE-KILL", text)
        self.assertEqual(read(path)[:len(before)], before)

    # ---- binary output -----------------------------------------------------

    def test_random_output_byte_exact(self):
        c = self.cluster
        # The agent splits the command line like a shell's words and
        # runs it without one.
        cmd = "sh -c " + shlex.quote(
            "f=$(mktemp) && head -c %d /dev/urandom > $f && "
            "sha256sum < $f && cat $f; rm -f $f" % BLOB)
        argv = ["aws", "ssm", "start-session", "--target", self.target,
                "--document-name", NON_INTERACTIVE,
                "--parameters", json.dumps({"command": [cmd]})]
        p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120, env=c.env)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        m = re.search(rb"Starting session with SessionId: (\S+)", p.stdout)
        sid = m.group(1).decode()
        self.wait_rendered(sid, timeout=120)

        def check(out, where):
            nl = out.index(b"\n")
            want = out[:nl].split()[0].decode()
            self.assertEqual(len(want), 64, (where, out[:300]))
            body = out[nl + 1:]
            self.assertEqual(len(body), BLOB, where)
            self.assertEqual(hashlib.sha256(body).hexdigest(), want, where)

        check(output_of(read(self.rec_path(sid))), "the .rec")
        raw = self.porthole("logs", sid, "--raw").stdout
        self.assertEqual(hashlib.sha256(raw).digest(),
                         hashlib.sha256(read(self.rec_path(sid))).digest())
        check(self.porthole("replay", sid, "--speed", "0").stdout,
              "replay")
        # The readable forms exist and are valid (U+FFFD for the bytes
        # that are not UTF-8).
        with open(self.rec_path(sid, "cast"), encoding="utf-8") as f:
            self.assertEqual(json.loads(f.readline())["version"], 2)
            for _, line in zip(range(50), f):
                json.loads(line)

    # ---- secrets -----------------------------------------------------------

    def test_no_secrets_in_records_or_logs(self):
        c = self.cluster
        ssm = c.ssm()
        r = ssm.start_session(Target=self.target)
        token = r["TokenValue"]
        ssm.terminate_session(SessionId=r["SessionId"])
        s = c.open_session(self.target, client="aws")
        s.run("echo hello")
        sid = s.session_id
        self.assertEqual(s.exit(), 0)
        self.wait_rendered(sid)
        secrets = [c.secret_key.encode(), token.encode()]
        files = [c.server_log]
        for root in (c.data_dir, c.tmp):
            for dp, _, names in os.walk(root):
                for n in names:
                    if n.endswith((".rec", ".cast", ".log")):
                        files.append(os.path.join(dp, n))
        for a in c.agents:
            for dp, _, names in os.walk(a.state_dir):
                files += [os.path.join(dp, n) for n in names
                          if n.endswith((".rec", ".log"))]
        self.assertGreater(len(files), 3)
        for path in set(files):
            data = read(path)
            for secret in secrets:
                self.assertNotIn(secret, data, path)

    # ---- garbage -----------------------------------------------------------

    def test_get_session_log_garbage(self):
        c = self.cluster
        s = c.open_session(self.target, client="aws")
        sid = s.session_id
        self.assertEqual(s.exit(), 0)
        self.wait_rendered(sid)
        st, b = self.signed("GetSessionLog", {"SessionId": sid,
                                              "Format": "log"})
        self.assertEqual(st, 200, b)
        self.assertEqual(len(base64.b64decode(b["Content"])), b["Length"])
        bad = [
            ({"SessionId": "nobody-0123456789abcdef0"},
             "DoesNotExistException"),
            ({"SessionId": "../../etc/passwd"}, "DoesNotExistException"),
            ({"SessionId": sid, "Format": "xml"}, "ValidationException"),
            ({"SessionId": sid, "Offset": -1}, "ValidationException"),
            ({"SessionId": sid, "Offset": 1 << 40}, "ValidationException"),
            ({"SessionId": sid, "MaxBytes": 0}, "ValidationException"),
            ({"SessionId": sid, "MaxBytes": 1 << 30},
             "ValidationException"),
            ({"SessionId": sid, "Offset": "12"}, "SerializationException"),
            ({"SessionId": 7}, "SerializationException"),
            ({}, "ValidationException"),
            ({"SessionId": "x" * 500}, "ValidationException"),
        ]
        for body, want in bad:
            st, b = self.signed("GetSessionLog", body)
            self.assertEqual((st, b.get("__type")), (400, want), body)
            self.assertTrue(b.get("message"), body)
        st, b = self.signed("GetSessionLog", b"{not json")
        self.assertEqual(st, 400)
        # A user without ssm:GetSessionLog is refused by the policy
        # engine.
        c.aws("iam", "create-user", "--user-name", "no-logs")
        key = c.aws("iam", "create-access-key", "--user-name",
                    "no-logs")["AccessKey"]
        st, b = self.signed("GetSessionLog", {"SessionId": sid},
                            access_key=key["AccessKeyId"],
                            secret=key["SecretAccessKey"])
        self.assertEqual((st, b.get("__type")),
                         (400, "AccessDeniedException"))
        p = self.porthole("logs", "nobody-0123456789abcdef0", check=False)
        self.assertEqual(p.returncode, 255)
        self.assertIn(b"DoesNotExistException", p.stderr)
        p = self.porthole("replay", sid, "--speed", "fast", check=False)
        self.assertEqual(p.returncode, 2)

        # The record endpoint: a bad path is 400, a good one without the
        # session's target's certificate 403.
        self.assertEqual(self.post_record("/v1/record/" + sid +
                                          "?offset=0"), 403)
        self.assertEqual(self.post_record("/v1/record/" + sid +
                                          "/complete?length=1"), 403)
        for path in ("/v1/record/", "/v1/record/..?offset=0",
                     "/v1/record/%s/x?offset=0" % sid,
                     "/v1/record/a%00b?offset=0"):
            self.assertEqual(self.post_record(path), 400, path)
        self.assertTrue(c.server.alive())


class StrictRecording(unittest.TestCase):
    """RecordingStrict: while uploads to the preferences' bucket fail, a
    session that would record there is refused; one without a bucket
    still starts."""

    def test_strict_mode_refuses_while_sink_down(self):
        with harness.Cluster("strict") as c:
            cfg = {"RecordingStrict": True,
                   "S3Endpoint": "http://127.0.0.1:%d" % harness.free_port(),
                   "S3AccessKeyId": "AKIAEXAMPLESTRICT000",
                   "S3SecretAccessKey": "s" * 40,
                   "S3TimeoutSeconds": 2,
                   "SinkRetryMinSeconds": 1}
            path = os.path.join(c.data_dir, "config.json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            os.chmod(path, 0o600)
            c.restart_server()
            agent = c.add_agent("strict")
            sessionkit.set_session_prefs(c, s3BucketName="porthole-strict")
            # The first session runs (nothing has failed yet); its record
            # cannot be uploaded.
            s = c.open_session(agent.instance_id, client="aws")
            s.run("echo recorded")
            self.assertEqual(s.exit(), 0)
            ssm = c.ssm()
            refused = None
            for _ in range(120):
                try:
                    r = ssm.start_session(Target=agent.instance_id)
                    ssm.terminate_session(SessionId=r["SessionId"])
                except ssm.exceptions.ClientError as e:
                    refused = e.response["Error"]
                    break
                time.sleep(0.5)
            self.assertIsNotNone(refused, "never refused")
            self.assertEqual(refused["Code"], "InvalidDocument")
            self.assertIn("RecordingStrict", refused["Message"])
            self.assertIn("porthole-strict", refused["Message"])
            # No bucket in the preferences: nothing to refuse.
            sessionkit.set_session_prefs(c, s3BucketName="")
            r = ssm.start_session(Target=agent.instance_id)
            ssm.terminate_session(SessionId=r["SessionId"])


if __name__ == "__main__":
    harness.main()
