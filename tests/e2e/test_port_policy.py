#!/usr/bin/env python3
"""Port session documents are separate documents to IAM: a user whose
policy allows ssm:StartSession only on one instance and on
arn:aws:ssm:REGION::document/AWS-StartSSHSession (AWS-owned: no account in
the ARN), with AWS's documented ssm:SessionDocumentAccessCheck condition,
starts AWS-StartSSHSession and is refused AWS-StartPortForwardingSession,
…ToRemoteHost, the default shell and other instances, with AWS's
AccessDeniedException message, through the AWS CLI. StartSession's
parameter checks for the port documents (portNumber, localPortNumber,
host) refuse bad values with InvalidParameters before anything reaches an
agent, and a port session shows in DescribeSessions with its document.

Only the StartSession API is exercised: no data flows."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

USER = "sshonly"


class PortPolicy(harness.ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.cluster
        try:
            account = c.aws("sts", "get-caller-identity")["Account"]
            cls.account = account
            policy = {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Action": "ssm:StartSession",
                    "Resource": [
                        "arn:aws:ssm:%s:%s:managed-instance/%s"
                        % (c.region, account, cls.agent.instance_id),
                        "arn:aws:ssm:%s::document/AWS-StartSSHSession"
                        % c.region,
                    ],
                    "Condition": {"BoolIfExists": {
                        "ssm:SessionDocumentAccessCheck": "true"}},
                }, {
                    "Effect": "Allow",
                    "Action": "ssm:TerminateSession",
                    "Resource": "arn:aws:ssm:*:*:session/${aws:username}-*",
                }],
            }
            cls.user = c.aws("iam", "create-user", "--user-name",
                             USER)["User"]
            c.aws("iam", "put-user-policy", "--user-name", USER,
                  "--policy-name", "SSHOnly",
                  "--policy-document", json.dumps(policy))
            key = c.aws("iam", "create-access-key", "--user-name",
                        USER)["AccessKey"]
            cls.key = key
            path = os.path.join(c.tmp, "sshonly.credentials")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("[sshonly]\naws_access_key_id = %s\n"
                        "aws_secret_access_key = %s\n"
                        % (key["AccessKeyId"], key["SecretAccessKey"]))
            cls.user_env = c.make_env(AWS_SHARED_CREDENTIALS_FILE=path,
                                      AWS_PROFILE="sshonly")
        except BaseException:
            c.close(dump=True, raise_reports=False)
            raise

    def as_user(self, *args, check=True):
        return self.cluster.aws(*args, check=check, env=self.user_env)

    def user_ssm(self):
        return self.cluster.ssm(access_key=self.key["AccessKeyId"],
                                secret=self.key["SecretAccessKey"])

    def denied(self, p, resource):
        self.assertNotEqual(p.returncode, 0, p.stdout)
        want = ("An error occurred (AccessDeniedException) when calling the "
                "StartSession operation: User: %s is not authorized to "
                "perform: ssm:StartSession on resource: %s because no "
                "identity-based policy allows the ssm:StartSession action"
                % (self.user["Arn"], resource))
        self.assertEqual(p.stderr.strip(), want)

    def doc_arn(self, name):
        return "arn:aws:ssm:%s::document/%s" % (self.cluster.region, name)

    def invalid(self, p, word):
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("(InvalidParameters) when calling the StartSession "
                      "operation", p.stderr)
        self.assertIn(word, p.stderr)

    def test_1_ssh_allowed(self):
        ssm = self.user_ssm()
        r = ssm.start_session(Target=self.target,
                              DocumentName="AWS-StartSSHSession",
                              Parameters={"portNumber": ["22"]})
        sid = r["SessionId"]
        self.assertTrue(sid.startswith(USER + "-"), sid)
        self.assertTrue(r["TokenValue"])
        self.assertIn(sid, r["StreamUrl"])
        # The document's ARN names it too.
        r2 = ssm.start_session(Target=self.target,
                               DocumentName=self.doc_arn(
                                   "AWS-StartSSHSession"))
        # DescribeSessions (the admin's) shows them with their document,
        # whatever state the agent has put them in by now.
        found = {}
        for state in ("Active", "History"):
            out = self.cluster.aws("ssm", "describe-sessions", "--state",
                                   state)
            for s in out.get("Sessions", []):
                found[s["SessionId"]] = s
        for x in (sid, r2["SessionId"]):
            self.assertIn(x, found)
            self.assertEqual(found[x]["DocumentName"], "AWS-StartSSHSession")
            self.assertEqual(found[x]["Owner"], self.user["Arn"])
        for x in (sid, r2["SessionId"]):
            out = self.as_user("ssm", "terminate-session", "--session-id", x)
            self.assertEqual(out["SessionId"], x)

    def test_2_port_forwarding_refused(self):
        for doc, params in (
                ("AWS-StartPortForwardingSession",
                 "portNumber=80,localPortNumber=9999"),
                ("AWS-StartPortForwardingSessionToRemoteHost",
                 "host=127.0.0.2,portNumber=80,localPortNumber=0")):
            p = self.as_user("ssm", "start-session", "--target",
                             self.target, "--document-name", doc,
                             "--parameters", params, check=False)
            self.denied(p, self.doc_arn(doc))
            # By ARN as well.
            p = self.as_user("ssm", "start-session", "--target",
                             self.target, "--document-name",
                             self.doc_arn(doc), "--parameters", params,
                             check=False)
            self.denied(p, self.doc_arn(doc))
        # No document named: the default shell, refused by the
        # SessionDocumentAccessCheck condition on the instance.
        p = self.as_user("ssm", "start-session", "--target", self.target,
                         check=False)
        self.denied(p, "arn:aws:ssm:%s:%s:managed-instance/%s"
                    % (self.cluster.region, self.account, self.target))
        # Another instance, even with the allowed document.
        other = "mi-0123456789abcdef0"
        p = self.as_user("ssm", "start-session", "--target", other,
                         "--document-name", "AWS-StartSSHSession",
                         check=False)
        self.denied(p, "arn:aws:ssm:%s:%s:managed-instance/%s"
                    % (self.cluster.region, self.account, other))

    def test_3_parameters_checked(self):
        c = self.cluster
        bad = (
            ("AWS-StartSSHSession", "portNumber=0", "portNumber"),
            ("AWS-StartSSHSession", "portNumber=65536", "portNumber"),
            ("AWS-StartSSHSession", "portNumber=22;id", "portNumber"),
            ("AWS-StartSSHSession", "localPortNumber=1", "localPortNumber"),
            ("AWS-StartPortForwardingSession",
             "portNumber=80,localPortNumber=70000", "localPortNumber"),
            ("AWS-StartPortForwardingSession",
             "portNumber=80,localPortNumber=-1", "localPortNumber"),
            ("AWS-StartPortForwardingSession",
             "portNumber=80,host=example.com", "host"),
            ("AWS-StartPortForwardingSessionToRemoteHost",
             "portNumber=80", "host"),
            ("AWS-StartPortForwardingSessionToRemoteHost",
             "host=a b,portNumber=80", "host"),
            ("AWS-StartPortForwardingSessionToRemoteHost",
             "host=$(reboot),portNumber=80", "host"),
        )
        for doc, params, word in bad:
            with self.subTest(doc=doc, params=params):
                p = c.aws("ssm", "start-session", "--target", self.target,
                          "--document-name", doc, "--parameters", params,
                          check=False)
                self.invalid(p, word)
        # Two values for one parameter.
        ssm = c.ssm()
        self.assertClientError(
            "InvalidParameters", ssm.start_session, Target=self.target,
            DocumentName="AWS-StartPortForwardingSession",
            Parameters={"portNumber": ["80", "81"]})
        # Good values reach the agent as strings, defaults filled in
        # (spec 8.2); the API answers with a session either way.
        r = ssm.start_session(
            Target=self.target,
            DocumentName="AWS-StartPortForwardingSessionToRemoteHost",
            Parameters={"host": ["127.0.0.2"], "portNumber": ["8080"]})
        ssm.terminate_session(SessionId=r["SessionId"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
