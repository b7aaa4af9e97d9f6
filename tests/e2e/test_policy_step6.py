#!/usr/bin/env python3
"""The seed's Step 6 end to end with the AWS CLI: the root admin creates the
group session-manager-limited with AWS's documented Session Manager
end-user policy (StartSession on instances tagged Environment=stage and on
the session documents, the read actions, Terminate/ResumeSession on
session/${aws:username}-*), a user in it with an access key, and two agents
tagged Environment=prod and Environment=stage. The user's
`aws ssm start-session` to stage opens a shell and to prod is refused with
AWS's AccessDeniedException message; the user terminates its own session
and is refused on the admin's (and cannot use its token on the admin's
data channel); a time-window Deny on aws:CurrentTime blocks everything
outside the window with the explicit-deny message.

The agents and activations stay the root admin's; only the user's calls
are made with the user's key."""

import datetime
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import RawWebSocket, open_data_channel_json  # noqa: E402

GROUP = "session-manager-limited"
USER = "alice"

END_USER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "StartSessionOnStageInstances",
            "Effect": "Allow",
            "Action": ["ssm:StartSession"],
            "Resource": ["arn:aws:ec2:*:*:instance/*",
                         "arn:aws:ssm:*:*:managed-instance/*"],
            "Condition": {
                "StringLike": {"ssm:resourceTag/Environment": ["stage"]}
            },
        },
        {
            "Sid": "SessionDocuments",
            "Effect": "Allow",
            "Action": ["ssm:StartSession"],
            "Resource": [
                "arn:aws:ssm:*:*:document/AWS-StartSSHSession",
                "arn:aws:ssm:*:*:document/SSM-SessionManagerRunShell",
            ],
            "Condition": {
                "BoolIfExists": {"ssm:SessionDocumentAccessCheck": "true"}
            },
        },
        {
            "Effect": "Allow",
            "Action": ["ssm:DescribeSessions", "ssm:GetConnectionStatus",
                       "ssm:DescribeInstanceInformation"],
            "Resource": "*",
        },
        {
            "Sid": "OwnSessionsOnly",
            "Effect": "Allow",
            "Action": ["ssm:TerminateSession", "ssm:ResumeSession"],
            "Resource": ["arn:aws:ssm:*:*:session/${aws:username}-*"],
        },
    ],
}


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class Step6(harness.ClusterTestCase):
    with_agent = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.cluster
        try:
            cls.prod = c.add_agent("prod")
            cls.stage = c.add_agent("stage")
            for a, env in ((cls.prod, "prod"), (cls.stage, "stage")):
                c.aws("ssm", "add-tags-to-resource", "--resource-type",
                      "ManagedInstance", "--resource-id", a.instance_id,
                      "--tags", "Key=Environment,Value=%s" % env)
            c.aws("iam", "create-group", "--group-name", GROUP)
            c.aws("iam", "put-group-policy", "--group-name", GROUP,
                  "--policy-name", "SessionManagerEndUser",
                  "--policy-document", json.dumps(END_USER_POLICY))
            cls.user = c.aws("iam", "create-user", "--user-name",
                             USER)["User"]
            c.aws("iam", "add-user-to-group", "--group-name", GROUP,
                  "--user-name", USER)
            key = c.aws("iam", "create-access-key", "--user-name",
                        USER)["AccessKey"]
            cls.user_key = key
            path = os.path.join(c.tmp, "alice.credentials")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("[alice]\naws_access_key_id = %s\n"
                        "aws_secret_access_key = %s\n"
                        % (key["AccessKeyId"], key["SecretAccessKey"]))
            cls.user_env = c.make_env(AWS_SHARED_CREDENTIALS_FILE=path,
                                      AWS_PROFILE="alice")
        except BaseException:
            c.close(dump=True, raise_reports=False)
            raise

    # ---- helpers ----------------------------------------------------------

    def as_user(self, *args, check=True):
        return self.cluster.aws(*args, check=check, env=self.user_env)

    def user_ssm(self):
        return self.cluster.ssm(access_key=self.user_key["AccessKeyId"],
                                secret=self.user_key["SecretAccessKey"])

    def denied(self, p, action, resource, explicit=False):
        """p (a failed CLI run) is AWS's AccessDeniedException for
        action on resource, and says nothing more."""
        self.assertNotEqual(p.returncode, 0, p.stdout)
        why = ("with an explicit deny in an identity-based policy"
               if explicit else "because no identity-based policy allows "
               "the %s action" % action)
        want = ("An error occurred (AccessDeniedException) when calling the "
                "%s operation: User: %s is not authorized to perform: %s on "
                "resource: %s %s" % (action.split(":")[1],
                                     self.user["Arn"], action, resource,
                                     why))
        self.assertEqual(p.stderr.strip(), want)

    def arn(self, kind, rid):
        return "arn:aws:ssm:%s:%s:%s/%s" % (
            self.cluster.region, self.user["Arn"].split(":")[4], kind, rid)

    # ---- tests ------------------------------------------------------------

    def test_1_shell_on_stage(self):
        s = self.cluster.open_session(self.stage.instance_id,
                                      env=self.user_env)
        self.assertTrue(s.session_id.startswith(USER + "-"), s.session_id)
        self.assertRegex(s.session_id, r"^alice-[0-9a-f]{17}$")
        self.assertIn("hello-42", s.run("echo hello-$((6*7))"))
        state, rec = self.cluster.session_record(s.session_id)
        self.assertEqual(rec["Owner"], self.user["Arn"])
        self.assertEqual(s.exit(), 0)

    def test_2_prod_refused(self):
        p = self.as_user("ssm", "start-session", "--target",
                         self.prod.instance_id, check=False)
        self.denied(p, "ssm:StartSession",
                    self.arn("managed-instance", self.prod.instance_id))
        # A document named is checked too (AWS-owned: no account in its
        # ARN); the default one, named, is in the policy.
        p = self.as_user("ssm", "start-session", "--target",
                         self.stage.instance_id, "--document-name",
                         "AWS-StartInteractiveCommand", check=False)
        self.denied(p, "ssm:StartSession",
                    "arn:aws:ssm:%s::document/AWS-StartInteractiveCommand"
                    % self.cluster.region)
        r = self.user_ssm().start_session(
            Target=self.stage.instance_id,
            DocumentName="SSM-SessionManagerRunShell")
        self.user_ssm().terminate_session(SessionId=r["SessionId"])
        # The admin is not limited by the user's policy.
        r = self.cluster.ssm().start_session(Target=self.prod.instance_id)
        self.cluster.ssm().terminate_session(SessionId=r["SessionId"])

    def test_3_terminate_own_not_admins(self):
        mine = self.user_ssm().start_session(Target=self.stage.instance_id)
        theirs = self.cluster.ssm().start_session(
            Target=self.stage.instance_id)
        self.assertTrue(mine["SessionId"].startswith(USER + "-"))
        self.assertFalse(theirs["SessionId"].startswith(USER + "-"))
        # Refused on the admin's session, by the CLI and by boto3.
        p = self.as_user("ssm", "terminate-session", "--session-id",
                         theirs["SessionId"], check=False)
        self.denied(p, "ssm:TerminateSession",
                    self.arn("session", theirs["SessionId"]))
        p = self.as_user("ssm", "resume-session", "--session-id",
                         theirs["SessionId"], check=False)
        self.denied(p, "ssm:ResumeSession",
                    self.arn("session", theirs["SessionId"]))
        # A token is bound to its session: the user's token does not
        # open the admin's data channel.
        ws = RawWebSocket(self.cluster.port, harness.stream_url_path(
            theirs["StreamUrl"]), self.cluster.ca)
        self.addCleanup(ws.close)
        self.assertEqual(ws.status, 101)
        ws.send_text(open_data_channel_json(mine["TokenValue"]))
        ws.wait_closed(10)
        # Its own session: terminated.
        out = self.as_user("ssm", "terminate-session", "--session-id",
                           mine["SessionId"])
        self.assertEqual(out["SessionId"], mine["SessionId"])
        self.cluster.wait_session_status(mine["SessionId"],
                                         ("Terminated",))
        state, rec = self.cluster.session_record(theirs["SessionId"])
        self.assertNotIn(rec["Status"], ("Terminated", "Failed"))
        self.cluster.ssm().terminate_session(SessionId=theirs["SessionId"])
        # The group's read actions work.
        self.as_user("ssm", "describe-sessions", "--state", "History")
        st = self.as_user("ssm", "get-connection-status", "--target",
                          self.stage.instance_id)
        self.assertEqual(st["Status"], "connected")

    def test_4_time_window(self):
        c = self.cluster
        now = datetime.datetime.now(datetime.timezone.utc)

        def window(start, end):
            return json.dumps({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "OutsideOfficeHours",
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"DateLessThan": {
                        "aws:CurrentTime": iso(start)}},
                }, {
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"DateGreaterThan": {
                        "aws:CurrentTime": iso(end)}},
                }]})
        hour = datetime.timedelta(hours=1)
        try:
            # A window that opens in an hour: everything is refused now,
            # with the explicit-deny message.
            c.aws("iam", "put-user-policy", "--user-name", USER,
                  "--policy-name", "OfficeHours", "--policy-document",
                  window(now + hour, now + 2 * hour))
            p = self.as_user("ssm", "describe-sessions", "--state",
                             "Active", check=False)
            self.denied(p, "ssm:DescribeSessions", "*", explicit=True)
            p = self.as_user("ssm", "start-session", "--target",
                             self.stage.instance_id, check=False)
            self.denied(p, "ssm:StartSession",
                        self.arn("managed-instance", self.stage.instance_id),
                        explicit=True)
            # A window that closed an hour ago: refused too.
            c.aws("iam", "put-user-policy", "--user-name", USER,
                  "--policy-name", "OfficeHours", "--policy-document",
                  window(now - 2 * hour, now - hour))
            p = self.as_user("ssm", "describe-sessions", "--state",
                             "Active", check=False)
            self.denied(p, "ssm:DescribeSessions", "*", explicit=True)
            # Inside the window the group's policy decides again.
            c.aws("iam", "put-user-policy", "--user-name", USER,
                  "--policy-name", "OfficeHours", "--policy-document",
                  window(now - hour, now + hour))
            self.as_user("ssm", "describe-sessions", "--state", "Active")
            p = self.as_user("ssm", "start-session", "--target",
                             self.prod.instance_id, check=False)
            self.denied(p, "ssm:StartSession",
                        self.arn("managed-instance", self.prod.instance_id))
        finally:
            c.aws("iam", "delete-user-policy", "--user-name", USER,
                  "--policy-name", "OfficeHours", check=False)

    def test_5_log_names_the_denial_without_secrets(self):
        p = self.as_user("ssm", "start-session", "--target",
                         self.prod.instance_id, check=False)
        self.assertNotEqual(p.returncode, 0)
        log = self.cluster.server.log()
        self.assertIn("event=authz_deny principal=%s action=ssm:StartSession"
                      % self.user["Arn"], log)
        self.assertNotIn(self.user_key["SecretAccessKey"], log)

    def test_6_tag_change_takes_effect_at_once(self):
        c = self.cluster
        # Retag prod as stage: the cached decision must not survive.
        c.aws("ssm", "add-tags-to-resource", "--resource-type",
              "ManagedInstance", "--resource-id", self.prod.instance_id,
              "--tags", "Key=Environment,Value=stage")
        try:
            r = self.user_ssm().start_session(Target=self.prod.instance_id)
            self.user_ssm().terminate_session(SessionId=r["SessionId"])
        finally:
            c.aws("ssm", "add-tags-to-resource", "--resource-type",
                  "ManagedInstance", "--resource-id", self.prod.instance_id,
                  "--tags", "Key=Environment,Value=prod")
        p = self.as_user("ssm", "start-session", "--target",
                         self.prod.instance_id, check=False)
        self.denied(p, "ssm:StartSession",
                    self.arn("managed-instance", self.prod.instance_id))


if __name__ == "__main__":
    unittest.main(verbosity=2)
