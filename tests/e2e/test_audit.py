"""The audit trail of the control plane (issue 11).

Every API call, allowed or denied, and every channel open lands in
DATA_DIR/audit/audit-YYYY-MM-DD.jsonl as a CloudTrail-shaped event, and
`aws cloudtrail lookup-events` (and `porthole audit`) read them back. As
the admin and as an IAM user with a narrow policy the test makes allowed
and denied calls of SSM, KMS, IAM and STS and finds them, with the
caller's ARN and the error code of the denied ones; the agent's control
channel and a session's data channel are there too. The secrets
CreateAccessKey, AssumeRole and CreateLoginProfile hand out or take, and a
KMS plaintext, are in no file under the data directory (the store's
database, which must keep SigV4 secrets to verify signatures, is checked
for the plaintext and the password only), nor in portholed's log.
LookupEvents refuses garbage with CloudTrail's errors and pages with
NextToken.
"""

import base64
import datetime
import json
import os
import re
import stat
import subprocess
import time
import unittest

import harness
from harness import RawWebSocket, open_data_channel_json

ALICE_POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow",
                   "Action": ["ssm:DescribeSessions",
                              "sts:GetCallerIdentity"],
                   "Resource": "*"}]})
TRUST_ACCOUNT = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",' \
    '"Principal":{"AWS":"arn:aws:iam::%s:root"},"Action":"sts:AssumeRole"}]}'
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                     r"[0-9a-f]{12}$")
DB_FILES = ("porthole.db", "porthole.db-wal", "porthole.db-shm",
            "porthole.db-journal")


class Audit(harness.ClusterTestCase):
    with_agent = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.cluster
        cls.account = c.client("sts").get_caller_identity()["Account"]
        c.aws("iam", "create-user", "--user-name", "alice")
        c.aws("iam", "put-user-policy", "--user-name", "alice",
              "--policy-name", "narrow", "--policy-document", ALICE_POLICY)
        key = c.aws("iam", "create-access-key", "--user-name",
                    "alice")["AccessKey"]
        cls.alice_key = key
        cls.alice_arn = "arn:aws:iam::%s:user/alice" % cls.account
        cls.alice_env = c.make_env(
            AWS_ACCESS_KEY_ID=key["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"], AWS_PROFILE=None)
        cls.secrets = {"CreateAccessKey secret": key["SecretAccessKey"]}

    # ---- helpers ----------------------------------------------------------

    def lookup(self, *args, env=None):
        """Every event `aws cloudtrail lookup-events ARGS` finds (the CLI
        follows NextToken itself)."""
        out = self.cluster.aws("cloudtrail", "lookup-events", *args,
                               env=env, timeout=60)
        return out.get("Events", [])

    def events_of(self, user, name=None):
        evs = self.lookup("--lookup-attributes",
                          "AttributeKey=Username,AttributeValue=%s" % user)
        evs = [e for e in evs if name is None or e["EventName"] == name]
        return [(e, json.loads(e["CloudTrailEvent"])) for e in evs]

    def audit_files(self):
        d = os.path.join(self.cluster.data_dir, "audit")
        return d, sorted(os.listdir(d))

    def all_files(self):
        for root, _dirs, files in os.walk(self.cluster.data_dir):
            for f in files:
                yield os.path.join(root, f)

    def assertNowhere(self, needle, what, skip_db):
        needle = needle.encode() if isinstance(needle, str) else needle
        hits = []
        paths = list(self.all_files()) + [self.cluster.server_log]
        for path in paths:
            if skip_db and os.path.basename(path) in DB_FILES:
                continue
            try:
                with open(path, "rb") as f:
                    if needle in f.read():
                        hits.append(path)
            except OSError:
                pass
        self.assertEqual(hits, [], "%s found in %s" % (what, hits))

    # ---- the trail --------------------------------------------------------

    def test_files_and_modes(self):
        self.cluster.ssm().describe_sessions(State="Active")
        d, files = self.audit_files()
        self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o700)
        today = datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d")
        self.assertIn("audit-%s.jsonl" % today, files)
        for f in files:
            self.assertRegex(f, r"^audit-\d{4}-\d\d-\d\d(\.\d+)?\.jsonl$")
            p = os.path.join(d, f)
            self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600, f)
            with open(p) as fh:
                for line in fh:
                    ev = json.loads(line)
                    self.assertEqual(ev["eventVersion"], "1.08")
                    self.assertTrue(UUID_RE.match(ev["eventID"]), ev)
                    self.assertEqual(ev["eventType"], "AwsApiCall")

    def test_denied_and_allowed_calls_of_a_user(self):
        c = self.cluster
        env = self.alice_env
        c.aws("ssm", "describe-sessions", "--state", "Active", env=env)
        p = c.aws("ssm", "describe-activations", env=env, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("AccessDeniedException", p.stderr)
        p = c.aws("iam", "list-users", env=env, check=False)
        self.assertIn("AccessDenied", p.stderr)
        p = c.aws("kms", "create-key", env=env, check=False)
        self.assertIn("AccessDeniedException", p.stderr)
        c.aws("sts", "get-caller-identity", env=env)

        evs = self.events_of("alice")
        by_name = {}
        for e, ct in evs:
            by_name.setdefault(e["EventName"], (e, ct))
        for name in ("DescribeSessions", "DescribeActivations", "ListUsers",
                     "CreateKey", "GetCallerIdentity"):
            self.assertIn(name, by_name, sorted(by_name))
        e, ct = by_name["DescribeActivations"]
        self.assertEqual(ct["errorCode"], "AccessDeniedException")
        self.assertIn("alice", ct["errorMessage"])
        self.assertEqual(ct["userIdentity"]["type"], "IAMUser")
        self.assertEqual(ct["userIdentity"]["arn"], self.alice_arn)
        self.assertEqual(ct["userIdentity"]["userName"], "alice")
        self.assertEqual(ct["userIdentity"]["accessKeyId"],
                         self.alice_key["AccessKeyId"])
        self.assertEqual(ct["userIdentity"]["accountId"], self.account)
        self.assertEqual(ct["eventSource"], "ssm.amazonaws.com")
        self.assertEqual(ct["sourceIPAddress"], "127.0.0.1")
        self.assertIn("aws-cli", ct["userAgent"])
        self.assertEqual(ct["awsRegion"], c.region)
        self.assertEqual(ct["recipientAccountId"], self.account)
        self.assertTrue(ct["readOnly"])
        self.assertEqual(e["Username"], "alice")
        self.assertEqual(e["AccessKeyId"], self.alice_key["AccessKeyId"])
        self.assertEqual(e["ReadOnly"], "true")
        self.assertTrue(ct["requestID"])
        # Query services answer their own codes.
        self.assertEqual(by_name["ListUsers"][1]["errorCode"], "AccessDenied")
        self.assertEqual(by_name["ListUsers"][1]["eventSource"],
                         "iam.amazonaws.com")
        self.assertEqual(by_name["CreateKey"][1]["errorCode"],
                         "AccessDeniedException")
        self.assertFalse(by_name["CreateKey"][1]["readOnly"])
        # The allowed ones carry no error.
        for name in ("DescribeSessions", "GetCallerIdentity"):
            self.assertNotIn("errorCode", by_name[name][1])
        self.assertEqual(by_name["DescribeSessions"][1]["requestParameters"],
                         {"State": "Active"})
        # Newest first.
        times = [e["EventTime"] for e, _ct in evs]
        self.assertEqual(times, sorted(times, reverse=True))

    def test_user_may_not_look(self):
        p = self.cluster.aws("cloudtrail", "lookup-events",
                             env=self.alice_env, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("AccessDeniedException", p.stderr)
        self.assertIn("cloudtrail:LookupEvents", p.stderr)

    def test_failed_authentication_recorded(self):
        c = self.cluster
        env = c.make_env(AWS_ACCESS_KEY_ID=self.alice_key["AccessKeyId"],
                         AWS_SECRET_ACCESS_KEY="x" * 40, AWS_PROFILE=None)
        p = c.aws("ssm", "describe-sessions", "--state", "Active", env=env,
                  check=False)
        self.assertIn("InvalidSignatureException", p.stderr)
        evs = self.lookup("--lookup-attributes",
                          "AttributeKey=AccessKeyId,AttributeValue=%s"
                          % self.alice_key["AccessKeyId"])
        bad = [json.loads(e["CloudTrailEvent"]) for e in evs
               if json.loads(e["CloudTrailEvent"]).get("errorCode") ==
               "InvalidSignatureException"]
        self.assertTrue(bad, evs)
        self.assertEqual(bad[0]["userIdentity"]["type"], "Unknown")
        self.assertEqual(bad[0]["eventName"], "DescribeSessions")
        self.assertEqual(bad[0]["eventSource"], "ssm.amazonaws.com")
        self.assertIsNone(bad[0]["requestParameters"])

    def test_channel_opens(self):
        c = self.cluster
        ctl = self.lookup("--lookup-attributes",
                          "AttributeKey=EventName,"
                          "AttributeValue=OpenControlChannel")
        mine = [json.loads(e["CloudTrailEvent"]) for e in ctl]
        mine = [ev for ev in mine
                if ev["requestParameters"].get("InstanceId") == self.target]
        self.assertTrue(mine, ctl)
        self.assertEqual(mine[0]["eventSource"],
                         "ssmmessages.amazonaws.com")
        self.assertEqual(mine[0]["userIdentity"]["type"], "AssumedRole")
        self.assertIn(":assumed-role/%s/%s" % (harness.TEST_ROLE,
                                                self.target),
                      mine[0]["userIdentity"]["arn"])
        self.assertNotIn("errorCode", mine[0])
        # A session's client channel: refused with a wrong token, then
        # opened with the right one.
        r = c.ssm().start_session(Target=self.target)
        path = harness.stream_url_path(r["StreamUrl"])
        ws = RawWebSocket(c.port, path, c.ca)
        ws.send_text(open_data_channel_json("not-the-token"))
        ws.wait_closed(10)
        ws.close()
        ws = RawWebSocket(c.port, path, c.ca)
        ws.send_text(open_data_channel_json(r["TokenValue"]))
        self.addCleanup(ws.close)
        sid = r["SessionId"]

        def opened():
            evs = self.lookup("--lookup-attributes",
                              "AttributeKey=ResourceName,AttributeValue=%s"
                              % sid)
            evs = [json.loads(e["CloudTrailEvent"]) for e in evs]
            evs = [ev for ev in evs if ev["eventName"] == "OpenDataChannel"]
            return evs if len(evs) >= 2 else None
        evs = harness.wait_for(opened, 15, interval=0.5,
                               what="OpenDataChannel events")
        client = [ev for ev in evs
                  if "InstanceId" not in ev["requestParameters"]]
        self.assertTrue(any(ev.get("errorCode") == "AccessDeniedException"
                            for ev in client), client)
        self.assertTrue(any("errorCode" not in ev for ev in client), client)
        for ev in client:
            self.assertRegex(ev["userIdentity"]["arn"],
                             r"^arn:aws:iam::%s:user/" % self.account)
            self.assertEqual(ev["requestParameters"]["SessionId"], sid)
        # StartSession's answer names the session, never its token.
        st = self.lookup("--lookup-attributes",
                         "AttributeKey=ResourceName,AttributeValue=%s" % sid)
        st = [json.loads(e["CloudTrailEvent"]) for e in st
              if e["EventName"] == "StartSession"]
        self.assertEqual(len(st), 1, st)
        self.assertEqual(st[0]["responseElements"]["SessionId"], sid)
        self.assertNotIn("TokenValue", st[0]["responseElements"])
        self.assertEqual(st[0]["requestParameters"]["Target"], self.target)
        c.ssm().terminate_session(SessionId=sid)

    def test_no_secret_written(self):
        c = self.cluster
        iam = c.client("iam")
        # AssumeRole's credentials.
        iam.create_role(RoleName="audit-role",
                        AssumeRolePolicyDocument=TRUST_ACCOUNT % self.account)
        cr = c.aws("sts", "assume-role", "--role-arn",
                   "arn:aws:iam::%s:role/audit-role" % self.account,
                   "--role-session-name", "audit-s")["Credentials"]
        # The role session calls something, so its key is used.
        s_env = c.make_env(AWS_ACCESS_KEY_ID=cr["AccessKeyId"],
                           AWS_SECRET_ACCESS_KEY=cr["SecretAccessKey"],
                           AWS_SESSION_TOKEN=cr["SessionToken"],
                           AWS_PROFILE=None)
        who = c.aws("sts", "get-caller-identity", env=s_env)
        self.assertIn("assumed-role/audit-role/audit-s", who["Arn"])
        # A password.
        password = "Pw-%s-Zq9!" % os.urandom(6).hex()
        p = c.aws("iam", "create-login-profile", "--user-name", "alice",
                  "--password", password, check=False)
        # KMS: a plaintext in, a data key out.
        kms = c.client("kms")
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        plain = b"PLAIN-" + os.urandom(12).hex().encode()
        blob = kms.encrypt(KeyId=key_id, Plaintext=plain)["CiphertextBlob"]
        self.assertEqual(kms.decrypt(CiphertextBlob=blob)["Plaintext"], plain)
        dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
        # Everything above is in the trail.
        names = {e["EventName"] for e in self.lookup(
            "--start-time", str(int(time.time()) - 120))}
        for n in ("AssumeRole", "CreateKey", "Encrypt", "Decrypt",
                  "GenerateDataKey", "CreateRole"):
            self.assertIn(n, names)
        # AssumeRole's answer names the key it issued (not its secret),
        # and the role session's own calls carry it.
        ar = [json.loads(e["CloudTrailEvent"]) for e in self.lookup(
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=AssumeRole")]
        self.assertEqual(
            ar[0]["responseElements"]["Credentials"]["AccessKeyId"],
            cr["AccessKeyId"])
        used = [json.loads(e["CloudTrailEvent"]) for e in self.lookup(
            "--lookup-attributes",
            "AttributeKey=AccessKeyId,AttributeValue=%s" % cr["AccessKeyId"])]
        self.assertTrue(used)
        self.assertEqual(used[0]["userIdentity"]["type"], "AssumedRole")
        self.assertEqual(used[0]["userIdentity"]["sessionContext"][
            "sessionIssuer"]["userName"], "audit-role")
        enc = [json.loads(e["CloudTrailEvent"]) for e in self.lookup(
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=Encrypt")]
        self.assertEqual(enc[0]["requestParameters"]["Plaintext"],
                         "HIDDEN_DUE_TO_SECURITY_REASONS")
        self.assertEqual(enc[0]["requestParameters"]["KeyId"], key_id)
        secrets = dict(self.secrets)
        secrets.update({
            "AssumeRole secret": cr["SecretAccessKey"],
            "AssumeRole session token": cr["SessionToken"],
        })
        for what, s in secrets.items():
            self.assertNowhere(s, what, skip_db=True)
        everywhere = {
            "KMS plaintext": plain,
            "KMS plaintext (base64)": base64.b64encode(plain),
            "data key (base64)": base64.b64encode(dk["Plaintext"]),
        }
        if p.returncode == 0:
            everywhere["password"] = password
        for what, s in everywhere.items():
            self.assertNowhere(s, what, skip_db=False)

    # ---- LookupEvents -----------------------------------------------------

    def test_lookup_garbage(self):
        c = self.cluster
        ct = c.client("cloudtrail", validate=False)
        cases = [
            ({"LookupAttributes": [{"AttributeKey": "Nope",
                                    "AttributeValue": "x"}]},
             "ValidationException"),
            ({"LookupAttributes": [{"AttributeKey": "Username",
                                    "AttributeValue": ""}]},
             "ValidationException"),
            ({"LookupAttributes": [{"AttributeKey": "Username",
                                    "AttributeValue": "a"},
                                   {"AttributeKey": "EventName",
                                    "AttributeValue": "b"}]},
             "InvalidLookupAttributesException"),
            ({"LookupAttributes": [{"AttributeKey": "ReadOnly",
                                    "AttributeValue": "maybe"}]},
             "InvalidLookupAttributesException"),
            ({"MaxResults": 0}, "InvalidMaxResultsException"),
            ({"MaxResults": 51}, "InvalidMaxResultsException"),
            ({"NextToken": "garbage"}, "InvalidNextTokenException"),
            ({"NextToken": "pha1.2026-13-45.0.0"},
             "InvalidNextTokenException"),
            ({"NextToken": "pha1.2026-12-04.0.-1"},
             "InvalidNextTokenException"),
            ({"NextToken": "pha1.../../../etc/passwd.0.0"},
             "InvalidNextTokenException"),
            ({"StartTime": 2000000000, "EndTime": 1000000000},
             "InvalidTimeRangeException"),
            ({"EventCategory": "data"}, "InvalidEventCategoryException"),
        ]
        for body, code in cases:
            with self.subTest(body=body):
                self.assertClientError(code, ct.lookup_events, **body)
        # Raw bodies the SDK would never send.
        for raw in (b"[", b"[]", b'{"StartTime": "yesterday"}',
                    b'{"MaxResults": "5"}', b"\xff\xfe",
                    b'{"LookupAttributes": "x"}',
                    b'{"LookupAttributes": ["x"]}',
                    b'{"LookupAttributes": [{"AttributeKey": 1}]}',
                    b'{"NextToken": 5}', b'{"EventCategory": []}'):
            p = self.raw_lookup(raw)
            self.assertIn(p, ("SerializationException",
                              "ValidationException"), raw)
        self.assertTrue(c.server.alive())

    def raw_lookup(self, body):
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        import urllib.request
        import ssl
        c = self.cluster
        req = botocore.awsrequest.AWSRequest(
            method="POST", url=c.endpoint + "/", data=body, headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "com.amazonaws.cloudtrail.v20131101."
                                "CloudTrail_20131101.LookupEvents"})
        botocore.auth.SigV4Auth(
            botocore.credentials.Credentials(c.access_key, c.secret_key),
            "cloudtrail", c.region).add_auth(req)
        r = urllib.request.Request(c.endpoint + "/", data=body,
                                   headers=dict(req.headers), method="POST")
        ctx = ssl.create_default_context(cafile=c.ca)
        try:
            urllib.request.urlopen(r, context=ctx, timeout=10)
            return "200"
        except urllib.error.HTTPError as e:
            return json.loads(e.read()).get("__type")

    def test_lookup_pages_and_filters(self):
        c = self.cluster
        ssm = c.ssm()
        for _ in range(7):
            ssm.describe_sessions(State="History")
        ct = c.client("cloudtrail")
        attrs = [{"AttributeKey": "EventName",
                  "AttributeValue": "DescribeSessions"}]
        seen, token, pages = [], None, 0
        while pages < 50:
            kw = {"LookupAttributes": attrs, "MaxResults": 3}
            if token:
                kw["NextToken"] = token
            r = ct.lookup_events(**kw)
            self.assertLessEqual(len(r["Events"]), 3)
            seen += r["Events"]
            pages += 1
            token = r.get("NextToken")
            if not token:
                break
        self.assertGreaterEqual(len(seen), 7)
        ids = [e["EventId"] for e in seen]
        self.assertEqual(len(ids), len(set(ids)), "an event twice")
        times = [e["EventTime"] for e in seen]
        self.assertEqual(times, sorted(times, reverse=True))
        # EventId finds exactly one.
        one = ct.lookup_events(LookupAttributes=[{
            "AttributeKey": "EventId", "AttributeValue": ids[0]}])["Events"]
        self.assertEqual([e["EventId"] for e in one], [ids[0]])
        # A time range in the future is empty; ReadOnly=false finds
        # writes only.
        future = ct.lookup_events(StartTime=time.time() + 3600)["Events"]
        self.assertEqual(future, [])
        writes = ct.lookup_events(LookupAttributes=[{
            "AttributeKey": "ReadOnly", "AttributeValue": "false"}],
            MaxResults=20)["Events"]
        self.assertTrue(all(e["ReadOnly"] == "false" for e in writes))
        self.assertTrue(writes)

    def test_porthole_audit(self):
        c = self.cluster
        p = c.aws("ssm", "describe-activations", env=self.alice_env,
                  check=False)
        self.assertNotEqual(p.returncode, 0)
        out = subprocess.run(
            [harness.binary("porthole"), "audit", "--user", "alice",
             "--event", "DescribeActivations", "--since", "10m"],
            capture_output=True, text=True, timeout=30, env=c.env,
            stdin=subprocess.DEVNULL)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
        self.assertTrue(lines, out.stdout)
        self.assertIn("DescribeActivations", lines[0])
        self.assertIn(self.alice_arn, lines[0])
        self.assertIn("AccessDeniedException", lines[0])
        bad = subprocess.run(
            [harness.binary("porthole"), "audit", "--since", "not-a-time"],
            capture_output=True, text=True, timeout=30, env=c.env,
            stdin=subprocess.DEVNULL)
        self.assertEqual(bad.returncode, 2, bad.stderr)
        denied = subprocess.run(
            [harness.binary("porthole"), "audit"], capture_output=True,
            text=True, timeout=30, env=self.alice_env,
            stdin=subprocess.DEVNULL)
        self.assertEqual(denied.returncode, 255)
        self.assertIn("AccessDeniedException", denied.stderr)


if __name__ == "__main__":
    harness.main()
