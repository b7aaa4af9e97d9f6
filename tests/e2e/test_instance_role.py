"""The seed's Step 5: an agent acts as the IAM role of its activation.

One agent registers with an activation naming "porthole-limited", a role
holding only what Session Manager needs (the statements of
AmazonSSMManagedInstanceCore that matter here: ssm:UpdateInstanceInformation
and ssmmessages:*, plus kms:Decrypt for encrypted sessions). The session
key has AWS's default key policy, so the account's IAM (the role's
policies) decides who may Decrypt.

- With the whole policy, a KMS-encrypted session works.
- Without its kms:Decrypt statement (`aws iam put-role-policy` with a new
  document) the next encrypted session fails: DescribeSessions' Details
  and the agent's log say "kms:Decrypt denied".
- Without ssmmessages:CreateDataChannel / OpenDataChannel a session fails
  with the refused action in its Details.
- Without the ssmmessages statements a restarted agent stays
  ConnectionLost; portholed logs the principal and the action; the agent
  backs off instead of hammering; with the statements back it comes
  Online again. The same without ssm:UpdateInstanceInformation.
- A key policy whose Decrypt grant has a Condition on
  kms:EncryptionContext:aws:ssm:TargetId grants for the matching instance
  only.
- CreateActivation refuses a role that does not exist.
"""

import json
import re
import time

import harness
import sessionkit

ROLE = "porthole-limited"
POLICY_NAME = "session-manager-limited"
ALIAS = "alias/step5-sessions"

SSM = {"Sid": "Ssm", "Effect": "Allow",
       "Action": ["ssm:UpdateInstanceInformation"], "Resource": "*"}
CONTROL = ["ssmmessages:CreateControlChannel",
           "ssmmessages:OpenControlChannel"]
DATA = ["ssmmessages:CreateDataChannel", "ssmmessages:OpenDataChannel"]
KMS = {"Sid": "Kms", "Effect": "Allow", "Action": "kms:Decrypt",
       "Resource": "*"}


def messages(actions):
    return {"Sid": "Messages", "Effect": "Allow", "Action": actions,
            "Resource": "*"}


def document(*statements):
    return json.dumps({"Version": "2012-10-17",
                       "Statement": list(statements)})


class InstanceRole(harness.ClusterTestCase):

    with_agent = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.cluster
        try:
            c.aws("iam", "create-role", "--role-name", ROLE,
                  "--assume-role-policy-document", harness.SSM_TRUST_POLICY)
            c.roles.add(ROLE)   # not ensure_role's broad defaults
            cls.put_policy(SSM, messages(CONTROL + DATA), KMS)
            aid, code = c.create_activation(role=ROLE)
            cls.agent = c.new_agent("limited")
            cls.agent.register(aid, code, name="step5")
            cls.agent.start()
            c.wait_online(cls.agent.instance_id, agent=cls.agent)
            # AWS's default key policy: the account's IAM decides.
            sessionkit.create_key(c, alias=ALIAS,
                                  description="Step 5 sessions")
        except BaseException:
            c.close(dump=True, raise_reports=False)
            raise

    @classmethod
    def put_policy(cls, *statements):
        cls.cluster.aws("iam", "put-role-policy", "--role-name", ROLE,
                        "--policy-name", POLICY_NAME, "--policy-document",
                        document(*statements))

    def tearDown(self):
        self.put_policy(SSM, messages(CONTROL + DATA), KMS)
        sessionkit.set_session_prefs(self.cluster, kmsKeyId="")

    def failed_session(self, pattern):
        """Start a session that must fail; returns its Details."""
        s = self.cluster.open_session(self.target, client="porthole",
                                      ready=False)
        try:
            s.child.expect(harness.pexpect.EOF, timeout=45)
        except harness.pexpect.TIMEOUT:
            self.fail("the client still runs: %s"
                      % harness.printable(s.transcript.getvalue()))
        s.child.close()
        out = harness.strip_ansi(s.transcript.getvalue())
        self.assertNotEqual(s.exit_status(), 0, out)
        self.assertNotIn(sessionkit.ENCRYPTED_BANNER, out)
        m = re.search(r"Starting session with SessionId: (\S+)", out)
        self.assertIsNotNone(m, out)
        _state, rec = self.cluster.wait_session_status(
            m.group(1), ("Failed",), timeout=30)
        self.assertRegex(rec.get("Details", ""), pattern)
        return rec["Details"]

    def agent_log(self):
        with open(self.agent.log_path, errors="replace") as f:
            return f.read()

    def test_1_encrypted_session_works(self):
        sessionkit.set_session_prefs(self.cluster, kmsKeyId=ALIAS)
        s = self.cluster.open_session(self.target, client="porthole")
        self.assertIn(sessionkit.ENCRYPTED_BANNER, s.output())
        self.assertIn("ssm-user", s.run("whoami").split())
        self.assertEqual(s.exit(), 0)

    def test_2_without_kms_decrypt(self):
        self.put_policy(SSM, messages(CONTROL + DATA))
        sessionkit.set_session_prefs(self.cluster, kmsKeyId=ALIAS)
        details = self.failed_session(r"kms:Decrypt denied")
        arn = "arn:aws:sts::%s:assumed-role/%s/%s" % (
            sessionkit.account_id(self.cluster), ROLE, self.target)
        self.assertIn(arn, details)
        self.assertIn("identity-based policy", details)
        harness.wait_for(lambda: "kms:Decrypt denied" in self.agent_log(),
                         10, 0.2, "the agent to log the refusal")
        # Unencrypted sessions need no KMS: they still work.
        sessionkit.set_session_prefs(self.cluster, kmsKeyId="")
        s = self.cluster.open_session(self.target, client="porthole")
        self.assertIn("ssm-user", s.run("whoami").split())
        self.assertEqual(s.exit(), 0)

    def test_3_without_data_channels(self):
        self.put_policy(SSM, messages(CONTROL), KMS)
        details = self.failed_session(r"ssmmessages:CreateDataChannel")
        self.assertIn("data channel", details)
        harness.wait_for(
            lambda: "ssmmessages:CreateDataChannel" in self.agent_log(),
            10, 0.2, "the agent to log portholed's reason")

    def test_4_without_control_channel(self):
        c = self.cluster
        self.put_policy(SSM, KMS)
        self.agent.proc.stop()
        harness.wait_for(
            lambda: (c.instance_info(self.target) or {}).get("PingStatus")
            == "ConnectionLost", 15, 0.2, "the agent to be ConnectionLost")
        with open(self.agent.log_path, errors="replace") as f:
            f.seek(0, 2)
            start = f.tell()
        self.agent.start()
        want = "action=ssmmessages:CreateControlChannel"
        harness.wait_for(lambda: want in harness.tail(c.server_log, 400),
                         15, 0.2, "portholed to log the refusal")
        line = [x for x in harness.tail(c.server_log, 400).splitlines()
                if want in x][-1]
        self.assertIn("event=instance_denied", line)
        self.assertIn("principal=arn:aws:sts::%s:assumed-role/%s/%s" % (
            sessionkit.account_id(c), ROLE, self.target), line)
        time.sleep(6)
        self.assertEqual(c.instance_info(self.target)["PingStatus"],
                         "ConnectionLost")
        with open(self.agent.log_path, errors="replace") as f:
            f.seek(start)
            log = f.read()
        self.assertIn("status=403", log)
        # Backing off: a handful of attempts in ~7 s, not hundreds.
        dials = log.count("event=control_channel_dial ")
        self.assertGreaterEqual(dials, 2, log[-2000:])
        self.assertLessEqual(dials, 6, log[-2000:])
        # The permission back: the agent is Online again by itself.
        self.put_policy(SSM, messages(CONTROL + DATA), KMS)
        c.wait_online(self.target, agent=self.agent, timeout=40)

    def test_5_without_update_instance_information(self):
        c = self.cluster
        self.put_policy(messages(CONTROL + DATA), KMS)
        self.agent.proc.stop()
        harness.wait_for(
            lambda: (c.instance_info(self.target) or {}).get("PingStatus")
            == "ConnectionLost", 15, 0.2, "the agent to be ConnectionLost")
        self.agent.start()
        want = "action=ssm:UpdateInstanceInformation resource=arn:aws:" \
            "ssm:%s:%s:managed-instance/%s" % (
                c.region, sessionkit.account_id(c), self.target)
        harness.wait_for(lambda: want in harness.tail(c.server_log, 400),
                         15, 0.2, "portholed to log the refusal")
        time.sleep(1)
        self.assertEqual(c.instance_info(self.target)["PingStatus"],
                         "ConnectionLost")
        self.put_policy(SSM, messages(CONTROL + DATA), KMS)
        c.wait_online(self.target, agent=self.agent, timeout=40)

    def test_6_key_policy_condition(self):
        c = self.cluster
        acct = sessionkit.account_id(c)

        def key(target):
            pol = json.dumps({"Version": "2012-10-17", "Statement": [
                {"Sid": "Admin", "Effect": "Allow",
                 "Principal": {"AWS": sessionkit.admin_arn(c)},
                 "Action": "kms:*", "Resource": "*"},
                {"Sid": "ThisInstanceOnly", "Effect": "Allow",
                 "Principal": {"AWS": "arn:aws:iam::%s:role/%s"
                               % (acct, ROLE)},
                 "Action": "kms:Decrypt", "Resource": "*",
                 "Condition": {"StringEquals": {
                     "kms:EncryptionContext:aws:ssm:TargetId": target}}}]})
            return sessionkit.create_key(c, policy=pol)["KeyId"]

        # The role's own policy has no kms:Decrypt: only the key policy
        # can grant it.
        self.put_policy(SSM, messages(CONTROL + DATA))
        sessionkit.set_session_prefs(c, kmsKeyId=key(self.target))
        s = c.open_session(self.target, client="porthole")
        self.assertIn(sessionkit.ENCRYPTED_BANNER, s.output())
        self.assertIn("ssm-user", s.run("whoami").split())
        self.assertEqual(s.exit(), 0)
        sessionkit.set_session_prefs(c, kmsKeyId=key("mi-00000000000000000"))
        self.failed_session(r"kms:Decrypt denied.*resource-based policy")

    def test_7_activation_needs_a_role(self):
        self.assertClientError(
            ("ValidationException",), self.cluster.ssm().create_activation,
            IamRole="no-such-role")
        p = self.cluster.aws("ssm", "create-activation", "--iam-role",
                             "no-such-role", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Nonexistent role or missing ssm service principal "
                      "in trust policy", p.stderr)


if __name__ == "__main__":
    harness.main()
