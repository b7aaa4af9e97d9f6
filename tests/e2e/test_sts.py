"""STS: GetCallerIdentity and AssumeRole with the real AWS CLI and boto3.

Proves that `aws sts get-caller-identity` names the admin, an IAM user and
a role session; that a profile with role_arn + source_profile in an AWS
config file assumes the role through portholed (botocore's own
AssumeRole provider) and then acts as
arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION, also for SSM; that a trust
policy that does not name the caller refuses it with AccessDenied; that
DurationSeconds above the role's MaxSessionDuration, malformed session
policies and garbage parameters are refused with STS's errors; that
temporary credentials are refused without their session token, with a
wrong one, once expired (ExpiredToken / ExpiredTokenException: the expiry
is moved into the past in the database while portholed is stopped) and
once their role is deleted.

Session policies (AssumeRole's Policy and PolicyArns) limit the session to
what both they and the role's policies allow: a session policy allowing
only ssm:DescribeSessions leaves describe-sessions working and refuses
describe-instance-information with AWS's "no session policy allows"
message, through the AWS CLI and boto3; a managed policy named in
PolicyArns does the same; an explicit Deny in a session policy is worded
as such; more than 2048 characters of session policy is
PackedPolicyTooLarge and more than 10 PolicyArns a ValidationError. A
trust policy the policy engine cannot read (an "AWS" principal that is no
ARN or account, a Resource element) is refused at CreateRole and
UpdateAssumeRolePolicy with MalformedPolicyDocument, and DeleteRole
removes the role's temporary credentials from the database.
"""

import configparser
import json
import os
import sqlite3
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import unittest

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import botocore.exceptions

import harness

TRUST_ACCOUNT = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",' \
    '"Principal":{"AWS":"arn:aws:iam::%s:root"},"Action":"sts:AssumeRole"}]}'
TRUST_OTHER = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",' \
    '"Principal":{"AWS":"arn:aws:iam::%s:user/somebody-else"},' \
    '"Action":"sts:AssumeRole"}]}'
SSM_READ = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",' \
    '"Action":["ssm:DescribeSessions","ssm:DescribeInstanceInformation"],' \
    '"Resource":"*"},{"Effect":"Allow","Action":"sts:AssumeRole",' \
    '"Resource":"arn:aws:iam::*:role/e2e-*"}]}'


class Sts(harness.ClusterTestCase):
    with_agent = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.cluster
        cls.account = cls.sts().get_caller_identity()["Account"]
        iam = c.client("iam")
        cls.role_arn = iam.create_role(
            RoleName="e2e-ops",
            AssumeRolePolicyDocument=TRUST_ACCOUNT % cls.account)[
                "Role"]["Arn"]
        iam.put_role_policy(RoleName="e2e-ops", PolicyName="ssm-read",
                            PolicyDocument=SSM_READ)
        iam.create_role(RoleName="e2e-closed",
                        AssumeRolePolicyDocument=TRUST_OTHER % cls.account)
        iam.create_role(RoleName="e2e-long", MaxSessionDuration=7200,
                        AssumeRolePolicyDocument=TRUST_ACCOUNT % cls.account)
        # An IAM user whose identity policy allows what the role's does.
        iam.create_user(UserName="e2e-sts-user")
        iam.put_user_policy(UserName="e2e-sts-user", PolicyName="p",
                            PolicyDocument=SSM_READ)
        key = iam.create_access_key(UserName="e2e-sts-user")["AccessKey"]
        cls.user_key = {"AccessKeyId": key["AccessKeyId"],
                        "SecretAccessKey": key["SecretAccessKey"],
                        "SessionToken": None}
        # Whether identity policies are evaluated (the policy engine of
        # authz.c) or only the root admin may act: what non-admin callers
        # are allowed depends on it, what they are refused does not.
        try:
            c.client("ssm", access_key=key["AccessKeyId"],
                     secret=key["SecretAccessKey"]).describe_sessions(
                         State="Active")
            cls.engine = True
        except botocore.exceptions.ClientError:
            cls.engine = False

    # ---- helpers ----------------------------------------------------------

    @classmethod
    def sts(cls, validate=True, **kw):
        return cls.cluster.client("sts", validate=validate, **kw)

    def temp_client(self, service, creds, token=True, validate=True):
        c = self.cluster
        cfg = botocore.config.Config(
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=5, read_timeout=30,
            parameter_validation=validate)
        s = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds.get("SessionToken") if token is True
            else token,
            region_name=c.region)
        return s.client(service, endpoint_url=c.endpoint, verify=c.ca,
                        config=cfg)

    def assume(self, role_arn=None, session="e2e", **kw):
        return self.sts().assume_role(RoleArn=role_arn or self.role_arn,
                                      RoleSessionName=session, **kw)

    def profile_env(self, **profile):
        """An AWS config file with profile `role` = profile (plus
        source_profile = porthole), and the environment that uses it."""
        c = self.cluster
        path = os.path.join(c.tmp, "aws-config-sts-%d" % time.monotonic_ns())
        cp = configparser.ConfigParser()
        cp["profile role"] = dict(source_profile="porthole",
                                  region=c.region, **profile)
        with open(path, "w") as f:
            cp.write(f)
        return c.make_env(AWS_CONFIG_FILE=path, AWS_PROFILE="role")

    # ---- GetCallerIdentity ------------------------------------------------

    def test_caller_identity_admin(self):
        out = self.cluster.aws("sts", "get-caller-identity")
        self.assertEqual(out["Account"], self.account)
        self.assertRegex(out["Arn"],
                         r"^arn:aws:iam::%s:user/" % self.account)
        self.assertTrue(out["UserId"].startswith("AIDA"), out)

    def test_caller_identity_user(self):
        c = self.cluster
        env = c.make_env(AWS_ACCESS_KEY_ID=self.user_key["AccessKeyId"],
                         AWS_SECRET_ACCESS_KEY=self.user_key[
                             "SecretAccessKey"],
                         AWS_PROFILE=None)
        out = c.aws("sts", "get-caller-identity", env=env)
        self.assertEqual(out["Arn"], "arn:aws:iam::%s:user/e2e-sts-user"
                         % self.account)
        self.assertEqual(out["Account"], self.account)
        self.assertEqual(
            out["UserId"],
            c.client("iam").get_user(UserName="e2e-sts-user")["User"][
                "UserId"])

    def test_user_assumes_role(self):
        """A user needs sts:AssumeRole in its own policies and the role's
        trust; the session is the role's, named after the user's call."""
        sts = self.temp_client("sts", self.user_key)
        self.assertClientError(
            "AccessDenied", sts.assume_role, RoleSessionName="u1",
            RoleArn="arn:aws:iam::%s:role/e2e-closed" % self.account)
        if not self.engine:
            e = self.assertClientError("AccessDenied", sts.assume_role,
                                       RoleArn=self.role_arn,
                                       RoleSessionName="u1")
            self.assertIn("user/e2e-sts-user is not authorized",
                          e.response["Error"]["Message"])
            return
        cr = sts.assume_role(RoleArn=self.role_arn,
                             RoleSessionName="user-session")["Credentials"]
        me = self.temp_client("sts", cr).get_caller_identity()
        self.assertEqual(me["Arn"], "arn:aws:sts::%s:assumed-role/e2e-ops/"
                         "user-session" % self.account)
        # A user without sts:AssumeRole in its policies is refused.
        iam = self.cluster.client("iam")
        iam.create_user(UserName="e2e-sts-nobody")
        key = iam.create_access_key(UserName="e2e-sts-nobody")["AccessKey"]
        self.assertClientError(
            "AccessDenied", self.temp_client("sts", key).assume_role,
            RoleArn=self.role_arn, RoleSessionName="nobody")
        # Role chaining: a role session assumes another role, for an hour
        # at most.
        sts = self.temp_client("sts", cr)
        long_arn = "arn:aws:iam::%s:role/e2e-long" % self.account
        e = self.assertClientError("ValidationError", sts.assume_role,
                                   RoleArn=long_arn, RoleSessionName="c1",
                                   DurationSeconds=7200)
        self.assertIn("role chaining", e.response["Error"]["Message"])
        chained = sts.assume_role(RoleArn=long_arn,
                                  RoleSessionName="chained")
        self.assertEqual(chained["AssumedRoleUser"]["Arn"],
                         "arn:aws:sts::%s:assumed-role/e2e-long/chained"
                         % self.account)

    # ---- AssumeRole -------------------------------------------------------

    def test_assume_role_answer(self):
        r = self.assume(session="answer@e2e", DurationSeconds=900)
        cr, who = r["Credentials"], r["AssumedRoleUser"]
        self.assertRegex(cr["AccessKeyId"], r"^ASIA[A-Z2-7]{16}$")
        self.assertEqual(len(cr["SecretAccessKey"]), 40)
        self.assertGreaterEqual(len(cr["SessionToken"]), 200)
        left = cr["Expiration"].timestamp() - time.time()
        self.assertTrue(840 < left <= 905, left)
        self.assertEqual(who["Arn"], "arn:aws:sts::%s:assumed-role/e2e-ops/"
                         "answer@e2e" % self.account)
        self.assertRegex(who["AssumedRoleId"], r"^AROA[A-Z0-9]+:answer@e2e$")
        me = self.temp_client("sts", cr).get_caller_identity()
        self.assertEqual(me["Arn"], who["Arn"])
        self.assertEqual(me["UserId"], who["AssumedRoleId"])
        self.assertEqual(me["Account"], self.account)
        # Every call with the credentials is logged under the session.
        def logged():
            with open(self.cluster.server_log) as f:
                return who["Arn"] in f.read()
        harness.wait_for(logged, 5, what="the audit line")

    def test_profile_with_role_arn(self):
        c = self.cluster
        env = self.profile_env(role_arn=self.role_arn,
                               role_session_name="cli-profile",
                               duration_seconds="900")
        out = c.aws("sts", "get-caller-identity", env=env)
        self.assertEqual(out["Arn"], "arn:aws:sts::%s:assumed-role/e2e-ops/"
                         "cli-profile" % self.account)
        # SSM as the role: its inline policy allows DescribeSessions
        # (where identity policies are evaluated; else only the root
        # admin may, and the refusal names the role session).
        p = c.aws("ssm", "describe-sessions", "--state", "Active",
                  env=env, check=False)
        if self.engine:
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("Sessions", json.loads(p.stdout))
        else:
            self.assertIn("assumed-role/e2e-ops/cli-profile is not "
                          "authorized", p.stderr)
        p = c.aws("ssm", "describe-activations", env=env, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("AccessDenied", p.stderr)
        self.assertIn("assumed-role/e2e-ops/cli-profile", p.stderr)

    def test_porthole_client_profile(self):
        """Our own client assumes the role of a role_arn profile too: the
        refusal of StartSession (the role may not) names the session."""
        c = self.cluster
        env = self.profile_env(role_arn=self.role_arn,
                               role_session_name="porthole-cli")
        p = subprocess.run(
            [harness.binary("porthole"), "start-session", "--target",
             "mi-00000000000000000"], capture_output=True, text=True,
            timeout=60, stdin=subprocess.DEVNULL, env=env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("AccessDenied", p.stderr)
        self.assertIn("arn:aws:sts::%s:assumed-role/e2e-ops/porthole-cli"
                      % self.account, p.stderr)
        # A role whose trust policy refuses: AssumeRole's own error.
        env = self.profile_env(
            role_arn="arn:aws:iam::%s:role/e2e-closed" % self.account)
        p = subprocess.run(
            [harness.binary("porthole"), "start-session", "--target",
             "mi-00000000000000000"], capture_output=True, text=True,
            timeout=60, stdin=subprocess.DEVNULL, env=env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("(AccessDenied) when calling the AssumeRole "
                      "operation", p.stderr)

    def test_start_session_as_role(self):
        """`aws ssm start-session` with a role_arn profile: the AWS CLI
        assumes the role, session-manager-plugin (ours) too for its own
        calls, and the session's owner is the role session."""
        if not self.engine:
            self.skipTest("identity policies are not evaluated here: only "
                          "the root admin may start sessions")
        c = self.cluster
        agent = c.add_agent("sts")
        c.client("iam").put_role_policy(
            RoleName="e2e-ops", PolicyName="sessions",
            PolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "ssm:StartSession",
                     "Resource": ["arn:aws:ssm:*:*:managed-instance/*",
                                  "arn:aws:ssm:*:*:document/*"]},
                    {"Effect": "Allow", "Action": [
                        "ssm:TerminateSession", "ssm:ResumeSession"],
                     "Resource": "arn:aws:ssm:*:*:session/shell-user-*"}]}))
        env = self.profile_env(role_arn=self.role_arn,
                               role_session_name="shell-user")
        s = c.open_session(agent.instance_id, client="aws", env=env)
        self.assertTrue(s.session_id.startswith("shell-user-"),
                        s.session_id)
        self.assertIn("hello-from-role", s.run("echo hello-from-role"))
        state, rec = c.session_record(s.session_id)
        self.assertEqual(rec["Owner"], "arn:aws:sts::%s:assumed-role/"
                         "e2e-ops/shell-user" % self.account)
        self.assertEqual(s.exit(), 0)

    def test_trust_policy_not_naming_caller(self):
        arn = "arn:aws:iam::%s:role/e2e-closed" % self.account
        e = self.assertClientError("AccessDenied", self.assume, arn)
        msg = e.response["Error"]["Message"]
        self.assertIn("is not authorized to perform: sts:AssumeRole on "
                      "resource: %s" % arn, msg)
        # Through a profile the CLI fails the same way.
        p = self.cluster.aws("sts", "get-caller-identity", check=False,
                             env=self.profile_env(role_arn=arn))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("AccessDenied", p.stderr)
        # A role that does not exist looks the same as one that refuses.
        self.assertClientError(
            "AccessDenied", self.assume,
            "arn:aws:iam::%s:role/no-such-role" % self.account)

    def test_duration_above_max_session_duration(self):
        e = self.assertClientError("ValidationError", self.assume,
                                   DurationSeconds=7200)
        self.assertIn("exceeds the MaxSessionDuration set for this role",
                      e.response["Error"]["Message"])
        self.cluster.client("iam").update_role(RoleName="e2e-ops",
                                               MaxSessionDuration=7200)
        try:
            r = self.assume(DurationSeconds=7200)
            left = r["Credentials"]["Expiration"].timestamp() - time.time()
            self.assertTrue(7100 < left <= 7205, left)
        finally:
            self.cluster.client("iam").update_role(RoleName="e2e-ops",
                                                   MaxSessionDuration=3600)

    def test_garbage_parameters(self):
        sts = self.sts(validate=False)
        bad = [
            dict(RoleArn=self.role_arn, RoleSessionName="x"),
            dict(RoleArn=self.role_arn, RoleSessionName="a" * 65),
            dict(RoleArn=self.role_arn, RoleSessionName="no spaces"),
            dict(RoleArn=self.role_arn, RoleSessionName="s\u00e9ssion"),
            dict(RoleArn=self.role_arn, RoleSessionName="ok",
                 DurationSeconds=899),
            dict(RoleArn=self.role_arn, RoleSessionName="ok",
                 DurationSeconds=43201),
            dict(RoleArn=self.role_arn, RoleSessionName="ok",
                 DurationSeconds="soon"),
            dict(RoleArn="short", RoleSessionName="ok"),
            dict(RoleArn="x" * 2049, RoleSessionName="ok"),
            dict(RoleArn="arn:aws:iam::%s:user/e2e-ops" % self.account,
                 RoleSessionName="ok"),
            dict(RoleArn="arn:aws:iam::%s:role/" % self.account,
                 RoleSessionName="ok"),
            dict(RoleArn=self.role_arn, RoleSessionName="ok",
                 ExternalId="!"),
            dict(RoleArn=self.role_arn, RoleSessionName="ok",
                 Tags=[{"Key": "", "Value": "v"}]),
            dict(RoleArn=self.role_arn),
            dict(RoleSessionName="ok"),
        ]
        for kw in bad:
            with self.subTest(kw=str(kw)[:80]):
                self.assertClientError("ValidationError", sts.assume_role,
                                       **kw)
        for doc in ("{", "[]", '{"Statement":[]}', "\x01",
                    '{"Version":"2012-10-17","Statement":{"Effect":"Allow",'
                    '"Action":"ssm:*"}}'):
            with self.subTest(policy=doc[:40]):
                self.assertClientError(
                    ("MalformedPolicyDocument", "ValidationError"),
                    sts.assume_role, RoleArn=self.role_arn,
                    RoleSessionName="ok", Policy=doc)
        # A valid session policy is taken.
        self.assume(Policy='{"Version":"2012-10-17","Statement":{"Effect":'
                    '"Allow","Action":"ssm:Describe*","Resource":"*"}}')
        self.assertClientError(("InvalidAction", "UnknownOperation"),
                               sts.get_session_token)

    def test_garbage_form_body(self):
        """Raw signed STS requests whose bodies are not what botocore
        sends: refused with an XML error, and portholed stays up."""
        c = self.cluster
        creds = botocore.credentials.Credentials(c.access_key, c.secret_key)
        bodies = [b"", b"Action=AssumeRole", b"Action=AssumeRole&RoleArn=%",
                  b"Action=AssumeRole&RoleArn=%zz&RoleSessionName=ab",
                  b"Action=AssumeRole&RoleArn=" + b"a" * 70000,
                  b"\xff\xfe\x00garbage", b"Action=GetCallerIdentity&" +
                  b"&".join(b"k%d=v" % i for i in range(3000))]
        ctx = ssl.create_default_context(cafile=c.ca)
        for body in bodies:
            req = botocore.awsrequest.AWSRequest(
                method="POST", url=c.endpoint + "/", data=body,
                headers={"Content-Type": "application/x-www-form-"
                         "urlencoded; charset=utf-8"})
            botocore.auth.SigV4Auth(creds, "sts", c.region).add_auth(req)
            r = urllib.request.Request(c.endpoint + "/", data=body,
                                       method="POST",
                                       headers=dict(req.headers.items()))
            try:
                with urllib.request.urlopen(r, context=ctx,
                                            timeout=15) as resp:
                    status, data = resp.status, resp.read()
            except urllib.error.HTTPError as e:
                status, data = e.code, e.read()
            with self.subTest(body=body[:40]):
                if body.startswith(b"Action=GetCallerIdentity"):
                    self.assertIn(status, (200, 400, 413))
                else:
                    self.assertTrue(400 <= status < 500, status)
                    self.assertIn(b"<Error>", data)
        self.sts().get_caller_identity()

    # ---- temporary credentials refused ------------------------------------

    def test_missing_or_wrong_token(self):
        cr = self.assume(session="token-check")["Credentials"]
        for token in (None, cr["SessionToken"][:-4] + "AAAA", "x"):
            with self.subTest(token=token and token[:8]):
                self.assertClientError(
                    "InvalidClientTokenId",
                    self.temp_client("sts", cr, token=token)
                    .get_caller_identity)
                self.assertClientError(
                    "UnrecognizedClientException",
                    self.temp_client("ssm", cr, token=token)
                    .describe_sessions, State="Active")
        # A long-term key with a session token is refused too.
        self.assertClientError(
            "InvalidClientTokenId",
            self.temp_client("sts", {
                "AccessKeyId": self.cluster.access_key,
                "SecretAccessKey": self.cluster.secret_key,
                "SessionToken": cr["SessionToken"]}).get_caller_identity)
        # The right one still works.
        self.temp_client("sts", cr).get_caller_identity()

    def test_expired_credentials(self):
        c = self.cluster
        cr = self.assume(session="soon-expired",
                         DurationSeconds=900)["Credentials"]
        sts = self.temp_client("sts", cr)
        sts.get_caller_identity()
        c.stop_server()
        db = sqlite3.connect(os.path.join(c.data_dir, "porthole.db"))
        with db:
            n = db.execute("UPDATE sts_credentials SET expiry_ms = ?1 "
                           "WHERE akid = ?2",
                           (int(time.time() * 1000) - 60000,
                            cr["AccessKeyId"])).rowcount
        db.close()
        self.assertEqual(n, 1)
        c.start_server()
        e = self.assertClientError("ExpiredToken",
                                   self.temp_client("sts", cr)
                                   .get_caller_identity)
        self.assertIn("expired", e.response["Error"]["Message"])
        self.assertClientError("ExpiredTokenException",
                               self.temp_client("ssm", cr)
                               .describe_sessions, State="Active")
        # New credentials for the same role still work.
        self.temp_client("sts", self.assume()["Credentials"]) \
            .get_caller_identity()

    def test_role_deleted_ends_sessions(self):
        c = self.cluster
        iam = c.client("iam")
        arn = iam.create_role(
            RoleName="e2e-short-lived",
            AssumeRolePolicyDocument=TRUST_ACCOUNT % self.account)[
                "Role"]["Arn"]
        cr = self.assume(arn, session="before-delete")["Credentials"]
        self.temp_client("sts", cr).get_caller_identity()
        iam.delete_role(RoleName="e2e-short-lived")
        self.assertClientError("InvalidClientTokenId",
                               self.temp_client("sts", cr)
                               .get_caller_identity)
        # A new role of the same name does not revive them.
        iam.create_role(RoleName="e2e-short-lived",
                        AssumeRolePolicyDocument=TRUST_ACCOUNT
                        % self.account)
        self.assertClientError("InvalidClientTokenId",
                               self.temp_client("sts", cr)
                               .get_caller_identity)

    # ---- session policies ---------------------------------------------------

    ONLY_SESSIONS = json.dumps({"Version": "2012-10-17", "Statement": {
        "Effect": "Allow", "Action": "ssm:DescribeSessions",
        "Resource": "*"}})

    def denied_by_session(self, msg, arn, action):
        self.assertEqual(msg, "User: %s is not authorized to perform: %s "
                         "on resource: * because no session policy allows "
                         "the %s action" % (arn, action, action))

    def test_session_policy_inline(self):
        if not self.engine:
            self.skipTest("identity policies are not evaluated")
        r = self.assume(session="narrow", Policy=self.ONLY_SESSIONS)
        cr, arn = r["Credentials"], r["AssumedRoleUser"]["Arn"]
        self.assertIn("PackedPolicySize", r)
        ssm = self.temp_client("ssm", cr)
        ssm.describe_sessions(State="Active")
        e = self.assertClientError("AccessDeniedException",
                                   ssm.describe_instance_information)
        self.denied_by_session(e.response["Error"]["Message"], arn,
                               "ssm:DescribeInstanceInformation")
        # The AWS CLI with the same credentials.
        env = self.cluster.make_env(
            AWS_PROFILE=None, AWS_ACCESS_KEY_ID=cr["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY=cr["SecretAccessKey"],
            AWS_SESSION_TOKEN=cr["SessionToken"])
        self.cluster.aws("ssm", "describe-sessions", "--state", "Active",
                         env=env)
        p = self.cluster.aws("ssm", "describe-instance-information",
                             env=env, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("AccessDeniedException", p.stderr)
        self.assertIn("because no session policy allows the "
                      "ssm:DescribeInstanceInformation action", p.stderr)
        # The session policy grants nothing the role lacks.
        wide = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ssm:DescribeSessions",
             "Resource": "*"}]})
        r = self.assume(session="wide", Policy=wide)
        ssm = self.temp_client("ssm", r["Credentials"])
        ssm.describe_instance_information()
        e = self.assertClientError("AccessDeniedException",
                                   ssm.describe_sessions, State="Active")
        self.assertTrue(e.response["Error"]["Message"].endswith(
            "with an explicit deny in a session policy"),
            e.response["Error"]["Message"])
        e = self.assertClientError("AccessDeniedException",
                                   ssm.describe_activations)
        self.assertIn("because no identity-based policy allows",
                      e.response["Error"]["Message"])
        # Without a session policy the role's policies alone decide.
        self.temp_client("ssm", self.assume(session="plain")[
            "Credentials"]).describe_instance_information()

    def test_session_policy_arns(self):
        if not self.engine:
            self.skipTest("identity policies are not evaluated")
        iam = self.cluster.client("iam")
        parn = iam.create_policy(PolicyName="e2e-only-sessions",
                                 PolicyDocument=self.ONLY_SESSIONS)[
                                     "Policy"]["Arn"]
        r = self.assume(session="managed", PolicyArns=[{"arn": parn}])
        ssm = self.temp_client("ssm", r["Credentials"])
        ssm.describe_sessions(State="History")
        e = self.assertClientError("AccessDeniedException",
                                   ssm.describe_instance_information)
        self.denied_by_session(e.response["Error"]["Message"],
                               r["AssumedRoleUser"]["Arn"],
                               "ssm:DescribeInstanceInformation")
        # A new default version of the policy applies at once.
        iam.create_policy_version(
            PolicyArn=parn, SetAsDefault=True,
            PolicyDocument=json.dumps({"Version": "2012-10-17",
                                       "Statement": {
                                           "Effect": "Allow",
                                           "Action": "ssm:Describe*",
                                           "Resource": "*"}}))
        ssm.describe_instance_information()

    def test_session_policy_limits(self):
        sts = self.sts(validate=False)
        big = json.dumps({"Version": "2012-10-17", "Statement": {
            "Effect": "Allow", "Action": "ssm:DescribeSessions",
            "Resource": "*", "Sid": "x" * 2000}})
        e = self.assertClientError("PackedPolicyTooLarge", sts.assume_role,
                                   RoleArn=self.role_arn,
                                   RoleSessionName="big", Policy=big)
        self.assertRegex(e.response["Error"]["Message"],
                         r"^Packed policy consumes \d+% of allotted space")
        arns = [{"arn": "arn:aws:iam::aws:policy/P%d" % i}
                for i in range(11)]
        self.assertClientError("ValidationError", sts.assume_role,
                               RoleArn=self.role_arn,
                               RoleSessionName="many", PolicyArns=arns)
        for bad in ("x" * 30, "arn:aws:iam::%s:role/e2e-ops" % self.account,
                    "arn:aws:iam::%s:policy/" % self.account,
                    "arn:aws:iam::%s:policy/a b" % self.account):
            with self.subTest(arn=bad):
                self.assertClientError("ValidationError", sts.assume_role,
                                       RoleArn=self.role_arn,
                                       RoleSessionName="bad",
                                       PolicyArns=[{"arn": bad}])
        for bad in ("\u20ac", "{\x0b}", '{"Statement":{"Effect":"Allow",'
                    '"Principal":"*","Action":"*","Resource":"*"}}'):
            with self.subTest(policy=bad):
                self.assertClientError(
                    ("ValidationError", "MalformedPolicyDocument"),
                    sts.assume_role, RoleArn=self.role_arn,
                    RoleSessionName="bad", Policy=bad)
        self.sts().get_caller_identity()

    # ---- trust policies and DeleteRole -------------------------------------

    def test_trust_policy_checked_by_engine(self):
        iam = self.cluster.client("iam")
        bad = [
            {"Effect": "Allow", "Principal": {"AWS": "alice"},
             "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root"
                                              % self.account},
             "Action": "sts:AssumeRole", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"Nobody": "x"},
             "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::*:root"},
             "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "NotPrincipal": {"AWS": self.account},
             "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"Service": "ec2 amazonaws"},
             "Action": "sts:AssumeRole"},
        ]
        for stmt in bad:
            doc = json.dumps({"Version": "2012-10-17", "Statement": [stmt]})
            with self.subTest(stmt=str(stmt)[:60]):
                self.assertClientError("MalformedPolicyDocument",
                                       iam.create_role,
                                       RoleName="e2e-bad-trust",
                                       AssumeRolePolicyDocument=doc)
                self.assertClientError("MalformedPolicyDocument",
                                       iam.update_assume_role_policy,
                                       RoleName="e2e-long",
                                       PolicyDocument=doc)
        p = self.cluster.aws("iam", "create-role", "--role-name",
                             "e2e-bad-trust", "--assume-role-policy-document",
                             json.dumps({"Version": "2012-10-17",
                                         "Statement": [bad[0]]}),
                             check=False)
        self.assertIn("MalformedPolicyDocument", p.stderr)
        self.assertIn("Invalid principal", p.stderr)
        self.assertClientError("NoSuchEntity", iam.get_role,
                               RoleName="e2e-bad-trust")
        # The role's trust policy is unchanged and still works.
        self.assume(self.role_arn.replace("e2e-ops", "e2e-long"),
                    session="after-bad-trust")

    def test_delete_role_revokes_credentials(self):
        c = self.cluster
        iam = c.client("iam")
        arn = iam.create_role(
            RoleName="e2e-revoked",
            AssumeRolePolicyDocument=TRUST_ACCOUNT % self.account)[
                "Role"]["Arn"]
        akid = self.assume(arn, session="revoke")["Credentials"][
            "AccessKeyId"]
        iam.delete_role(RoleName="e2e-revoked")
        db = sqlite3.connect(os.path.join(c.data_dir, "porthole.db"))
        try:
            n = db.execute("SELECT count(*) FROM sts_credentials WHERE "
                           "akid = ?1", (akid,)).fetchone()[0]
        finally:
            db.close()
        self.assertEqual(n, 0)

    def test_secrets_not_logged(self):
        cr = self.assume(session="log-check")["Credentials"]
        self.temp_client("sts", cr).get_caller_identity()
        with open(self.cluster.server_log) as f:
            log = f.read()
        self.assertIn(cr["AccessKeyId"], log)
        self.assertNotIn(cr["SecretAccessKey"], log)
        self.assertNotIn(cr["SessionToken"][:40], log)


if __name__ == "__main__":
    unittest.main()
