#!/usr/bin/env python3
"""Run Command end to end with the real AWS CLI, boto3 and two real agents
(tagged Role=web / Role=db, both Env=test): send-command by InstanceIds
and by Targets (tag:KEY, tag-key), `aws ssm wait command-executed`,
get-command-invocation (with its 24,000 / 8,000 character cut),
list-commands and list-command-invocations --details with filters and
paging, cancel-command of a `sleep 300`, a failing command, a user whose
policy allows ssm:SendCommand only on instances tagged Role=web, the
seed's Step 8 (ssm-user loses its sudo rule in a session and gets it back
through send-command; a new session has sudo again) and garbage in every
member."""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import botocore.exceptions  # noqa: E402

import harness  # noqa: E402

USER = "carol"
SUDOERS = "/etc/sudoers.d/ssm-agent-users"
SUDO_RULE = "ssm-user ALL=(ALL) NOPASSWD:ALL"

# SendCommand on every document, but on instances only where Role=web.
USER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "ssm:SendCommand",
            "Resource": "arn:aws:ssm:*:*:document/*",
        },
        {
            "Effect": "Allow",
            "Action": "ssm:SendCommand",
            "Resource": "arn:aws:ssm:*:*:managed-instance/*",
            "Condition": {
                "StringEquals": {"ssm:resourceTag/Role": "web"}
            },
        },
        {
            "Effect": "Allow",
            "Action": ["ssm:ListCommands", "ssm:ListCommandInvocations",
                       "ssm:GetCommandInvocation", "ssm:CancelCommand"],
            "Resource": "*",
        },
    ],
}


class RunCommand(harness.ClusterTestCase):
    with_agent = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.cluster
        try:
            cls.web = c.add_agent("web")
            cls.db = c.add_agent("db")
            for a, role in ((cls.web, "web"), (cls.db, "db")):
                c.aws("ssm", "add-tags-to-resource", "--resource-type",
                      "ManagedInstance", "--resource-id", a.instance_id,
                      "--tags", "Key=Role,Value=%s" % role,
                      "Key=Env,Value=test")
            c.aws("iam", "create-user", "--user-name", USER)
            c.aws("iam", "put-user-policy", "--user-name", USER,
                  "--policy-name", "RunCommandOnWeb",
                  "--policy-document", json.dumps(USER_POLICY))
            cls.user_key = c.aws("iam", "create-access-key", "--user-name",
                                 USER)["AccessKey"]
        except BaseException:
            c.close(dump=True, raise_reports=False)
            raise

    # ---- helpers ----------------------------------------------------------

    def ssm(self, **kw):
        return self.cluster.ssm(**kw)

    def send(self, commands, instance_ids=None, targets=None, **kw):
        args = {"DocumentName": "AWS-RunShellScript",
                "Parameters": {"commands": commands}}
        if instance_ids is not None:
            args["InstanceIds"] = instance_ids
        if targets is not None:
            args["Targets"] = targets
        args.update(kw)
        return self.ssm().send_command(**args)["Command"]

    def wait(self, command_id, instance_id, timeout=60):
        """boto3's CommandExecuted waiter, polling every second."""
        w = self.ssm().get_waiter("command_executed")
        w.wait(CommandId=command_id, InstanceId=instance_id,
               WaiterConfig={"Delay": 1, "MaxAttempts": timeout})
        return self.ssm().get_command_invocation(CommandId=command_id,
                                                 InstanceId=instance_id)

    def wait_status(self, command_id, instance_id, statuses, timeout=30):
        def done():
            try:
                r = self.ssm().get_command_invocation(
                    CommandId=command_id, InstanceId=instance_id)
            except botocore.exceptions.ClientError:
                return None
            return r if r["Status"] in statuses else None
        return harness.wait_for(done, timeout, 0.3,
                                "invocation %s" % "/".join(statuses))

    def user_ssm(self):
        return self.cluster.ssm(access_key=self.user_key["AccessKeyId"],
                                secret=self.user_key["SecretAccessKey"])

    # ---- the AWS CLI ------------------------------------------------------

    def test_cli_send_wait_get_list(self):
        c = self.cluster
        mi = self.web.instance_id
        cmd = c.aws("ssm", "send-command", "--document-name",
                    "AWS-RunShellScript", "--instance-ids", mi,
                    "--parameters", 'commands=["echo hello from $(id -un)"]',
                    "--comment", "cli test", "--timeout-seconds", "120",
                    "--max-concurrency", "1", "--max-errors", "0")["Command"]
        cid = cmd["CommandId"]
        self.assertEqual(len(cid), 36)
        self.assertEqual(cmd["DocumentName"], "AWS-RunShellScript")
        self.assertEqual(cmd["Comment"], "cli test")
        self.assertEqual(cmd["TargetCount"], 1)
        self.assertEqual(cmd["TimeoutSeconds"], 120)
        self.assertEqual(cmd["InstanceIds"], [mi])
        self.assertIn(cmd["Status"], ("Pending", "InProgress"))
        for k in ("ExpiresAfter", "RequestedDateTime", "MaxConcurrency",
                  "MaxErrors", "CompletedCount", "ErrorCount",
                  "DeliveryTimedOutCount", "OutputS3Region",
                  "NotificationConfig", "CloudWatchOutputConfig"):
            self.assertIn(k, cmd)
        # the waiter of the CLI itself (5 s between polls)
        p = c.aws("ssm", "wait", "command-executed", "--command-id", cid,
                  "--instance-id", mi, check=False, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        inv = c.aws("ssm", "get-command-invocation", "--command-id", cid,
                    "--instance-id", mi)
        self.assertEqual(inv["Status"], "Success")
        self.assertEqual(inv["StatusDetails"], "Success")
        self.assertEqual(inv["ResponseCode"], 0)
        self.assertEqual(inv["StandardOutputContent"],
                         "hello from root\n")
        self.assertRegex(inv["ExecutionStartDateTime"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertRegex(inv["ExecutionEndDateTime"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertRegex(inv["ExecutionElapsedTime"], r"^PT\d+\.\d{3}S$")
        self.assertEqual(inv["DocumentName"], "AWS-RunShellScript")
        self.assertEqual(inv["Comment"], "cli test")
        lst = c.aws("ssm", "list-commands", "--command-id", cid)["Commands"]
        self.assertEqual(len(lst), 1)
        self.assertEqual(lst[0]["Status"], "Success")
        self.assertEqual(lst[0]["CompletedCount"], 1)
        invs = c.aws("ssm", "list-command-invocations", "--command-id", cid,
                     "--details")["CommandInvocations"]
        self.assertEqual(len(invs), 1)
        self.assertEqual(invs[0]["InstanceId"], mi)
        self.assertEqual(invs[0]["Status"], "Success")
        self.assertTrue(invs[0]["InstanceName"])
        plugins = invs[0]["CommandPlugins"]
        self.assertEqual(len(plugins), 1)
        self.assertIn("hello from root", plugins[0]["Output"])
        self.assertEqual(plugins[0]["ResponseCode"], 0)
        # the CLI's paging over list-commands
        out = c.aws("ssm", "list-commands", "--max-items", "1")
        self.assertEqual(len(out["Commands"]), 1)

    def test_cli_errors(self):
        c = self.cluster
        p = c.aws("ssm", "send-command", "--document-name",
                  "AWS-RunShellScript", "--instance-ids",
                  "mi-0123456789abcdef0", "--parameters", "commands=true",
                  check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("InvalidInstanceId", p.stderr)
        p = c.aws("ssm", "send-command", "--document-name", "No-Such-Doc",
                  "--instance-ids", self.web.instance_id, check=False)
        self.assertIn("InvalidDocument", p.stderr)
        p = c.aws("ssm", "send-command", "--document-name",
                  "AWS-RunShellScript", "--instance-ids",
                  self.web.instance_id, "--parameters", "nope=1",
                  check=False)
        self.assertIn("InvalidParameters", p.stderr)
        p = c.aws("ssm", "get-command-invocation", "--command-id",
                  "11111111-1111-4111-8111-111111111111", "--instance-id",
                  self.web.instance_id, check=False)
        self.assertIn("InvocationDoesNotExist", p.stderr)

    # ---- boto3 -----------------------------------------------------------

    def test_boto3_targets_and_lists(self):
        ssm = self.ssm()
        web, db = self.web.instance_id, self.db.instance_id
        doc = ssm.describe_document(Name="AWS-RunShellScript")["Document"]
        cmd = self.send(["echo tag"], targets=[
            {"Key": "tag:Role", "Values": ["web"]}],
            DocumentHash=doc["Hash"], DocumentHashType="Sha256")
        self.assertEqual(cmd["TargetCount"], 1)
        self.assertEqual(cmd["Targets"],
                         [{"Key": "tag:Role", "Values": ["web"]}])
        self.assertEqual(self.wait(cmd["CommandId"], web)["Status"],
                         "Success")
        self.assertClientError("InvocationDoesNotExist",
                               ssm.get_command_invocation,
                               CommandId=cmd["CommandId"], InstanceId=db)
        both = self.send(["echo both"], targets=[
            {"Key": "tag-key", "Values": ["Env"]}], MaxConcurrency="1")
        self.assertEqual(both["TargetCount"], 2)
        for mi in (web, db):
            self.assertEqual(self.wait(both["CommandId"], mi)["Status"],
                             "Success")
        invs = ssm.list_command_invocations(
            CommandId=both["CommandId"])["CommandInvocations"]
        self.assertEqual(sorted(i["InstanceId"] for i in invs),
                         sorted([web, db]))
        self.assertEqual([i["CommandPlugins"] for i in invs], [[], []])
        harness.wait_for(lambda: ssm.list_commands(
            CommandId=both["CommandId"])["Commands"][0]["Status"] ==
            "Success", 15, 0.3, "the command's Success")
        c = ssm.list_commands(CommandId=both["CommandId"])["Commands"][0]
        self.assertEqual(c["CompletedCount"], 2)
        # by instance, filtered, paged
        mine = ssm.list_commands(InstanceId=db)["Commands"]
        self.assertIn(both["CommandId"], [x["CommandId"] for x in mine])
        self.assertNotIn(cmd["CommandId"], [x["CommandId"] for x in mine])
        r = ssm.list_commands(MaxResults=1, Filters=[
            {"key": "DocumentName", "value": "AWS-RunShellScript"},
            {"key": "ExecutionStage", "value": "Complete"}])
        self.assertEqual(len(r["Commands"]), 1)
        self.assertIn("NextToken", r)
        r2 = ssm.list_commands(MaxResults=1, NextToken=r["NextToken"],
                               Filters=[{"key": "ExecutionStage",
                                         "value": "Complete"}])
        self.assertNotEqual(r["Commands"][0]["CommandId"],
                            r2["Commands"][0]["CommandId"])
        pages = ssm.get_paginator("list_command_invocations").paginate(
            InstanceId=web, PaginationConfig={"PageSize": 1})
        seen = [i["CommandId"] for p in pages
                for i in p["CommandInvocations"]]
        self.assertIn(cmd["CommandId"], seen)
        self.assertIn(both["CommandId"], seen)
        self.assertEqual(len(seen), len(set(seen)))
        self.assertClientError("InvalidDocument", ssm.send_command,
                               DocumentName="AWS-RunShellScript",
                               InstanceIds=[web],
                               Parameters={"commands": ["true"]},
                               DocumentHash="0" * 64)
        # cancelling a finished command changes nothing
        self.assertEqual(
            {k: v for k, v in ssm.cancel_command(
                CommandId=cmd["CommandId"]).items()
             if k != "ResponseMetadata"}, {})

    def test_failed_command(self):
        web = self.web.instance_id
        cmd = self.send(["echo out; echo err >&2; exit 3"],
                        instance_ids=[web])
        with self.assertRaises(botocore.exceptions.WaiterError):
            self.wait(cmd["CommandId"], web)
        inv = self.ssm().get_command_invocation(
            CommandId=cmd["CommandId"], InstanceId=web)
        self.assertEqual(inv["Status"], "Failed")
        self.assertEqual(inv["ResponseCode"], 3)
        self.assertEqual(inv["StandardOutputContent"], "out\n")
        self.assertIn("err", inv["StandardErrorContent"])

    def test_output_cut_at_aws_limits(self):
        web = self.web.instance_id
        cmd = self.send(["head -c 30000 /dev/zero | tr '\\0' x",
                         "head -c 9000 /dev/zero | tr '\\0' e >&2"],
                        instance_ids=[web])
        inv = self.wait(cmd["CommandId"], web)
        self.assertEqual(inv["Status"], "Success")
        out, err = inv["StandardOutputContent"], inv["StandardErrorContent"]
        self.assertEqual(len(out), 24000)
        self.assertEqual(len(err), 8000)
        # AWS's agent marks the cut at its end, as porthole's does
        self.assertTrue(out.startswith("x" * 23000), out[:100])
        self.assertTrue(out.endswith("x") or
                        "truncated" in out[-40:].lower(), out[-100:])
        self.assertTrue(err.startswith("e" * 7000), err[:100])

    def test_cancel_sleep(self):
        ssm = self.ssm()
        db = self.db.instance_id
        cmd = self.send(["sleep 300"], instance_ids=[db])
        cid = cmd["CommandId"]
        self.wait_status(cid, db, ("InProgress",), timeout=30)
        t0 = time.monotonic()
        self.assertEqual(self.cluster.aws(
            "ssm", "cancel-command", "--command-id", cid, "--instance-ids",
            db), {})
        inv = self.wait_status(cid, db, ("Cancelled",), timeout=30)
        self.assertLess(time.monotonic() - t0, 30)
        self.assertEqual(inv["Status"], "Cancelled")
        harness.wait_for(lambda: ssm.list_commands(CommandId=cid)[
            "Commands"][0]["Status"] == "Cancelled", 15, 0.3,
            "the command's Cancelled")
        # the CLI's waiter fails on Cancelled
        p = self.cluster.aws("ssm", "wait", "command-executed",
                             "--command-id", cid, "--instance-id", db,
                             check=False, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        # the command's processes are gone from the instance
        harness.wait_for(lambda: "sleep 300" not in subprocess.run(
            ["ps", "-eo", "args"], capture_output=True, text=True).stdout,
            10, 0.3, "sleep 300 to be killed")

    # ---- authorisation -----------------------------------------------------

    def test_send_denied_by_resource_tag(self):
        user = self.user_ssm()
        err = self.assertClientError(
            "AccessDeniedException", user.send_command,
            DocumentName="AWS-RunShellScript",
            InstanceIds=[self.db.instance_id],
            Parameters={"commands": ["true"]})
        msg = err.response["Error"]["Message"]
        self.assertIn("user/%s is not authorized to perform: "
                      "ssm:SendCommand on resource: arn:aws:ssm:" % USER, msg)
        self.assertIn("managed-instance/%s" % self.db.instance_id, msg)
        # by tag: the db instance among the targets denies it all
        self.assertClientError(
            "AccessDeniedException", user.send_command,
            DocumentName="AWS-RunShellScript",
            Targets=[{"Key": "tag-key", "Values": ["Env"]}],
            Parameters={"commands": ["true"]})
        # allowed on web, through the CLI with the user's key
        cmd = user.send_command(DocumentName="AWS-RunShellScript",
                                InstanceIds=[self.web.instance_id],
                                Parameters={"commands": ["true"]})["Command"]
        self.assertEqual(self.wait(cmd["CommandId"], self.web.instance_id)[
            "Status"], "Success")

    # ---- the seed's Step 8 ------------------------------------------------

    def test_step8_restore_sudo_with_send_command(self):
        c = self.cluster
        web = self.web.instance_id
        try:
            with open(SUDOERS) as f:
                saved = f.read()
        except FileNotFoundError:
            saved = None
        try:
            if saved is None or SUDO_RULE not in saved:
                fd = os.open(SUDOERS, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                             0o440)
                with os.fdopen(fd, "w") as f:
                    f.write("# User rules for ssm-user\n%s\n" % SUDO_RULE)
            s = c.open_session(web)
            self.assertIn("ssm-user", s.run("id -un"))
            self.assertIn("SUDO_OK", s.run("sudo -n true && echo SUDO_OK"))
            s.run("sudo -n sed -i '/^ssm-user /d' %s" % SUDOERS)
            self.assertIn("SUDO_GONE",
                          s.run("sudo -n true 2>/dev/null || echo SUDO_GONE"))
            s.exit()
            cmd = c.aws("ssm", "send-command", "--document-name",
                        "AWS-RunShellScript", "--instance-ids", web,
                        "--comment", "Step 8: restore ssm-user sudo",
                        "--parameters", json.dumps({"commands": [
                            "grep -q '^ssm-user ' %s || echo '%s' >> %s"
                            % (SUDOERS, SUDO_RULE, SUDOERS),
                            "chmod 0440 %s" % SUDOERS,
                            "visudo -cf %s >/dev/null && echo restored"
                            % SUDOERS]}))["Command"]
            p = c.aws("ssm", "wait", "command-executed", "--command-id",
                      cmd["CommandId"], "--instance-id", web, check=False,
                      timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            inv = c.aws("ssm", "get-command-invocation", "--command-id",
                        cmd["CommandId"], "--instance-id", web)
            self.assertIn("restored", inv["StandardOutputContent"])
            s2 = c.open_session(web)
            self.assertIn("SUDO_OK", s2.run("sudo -n true && echo SUDO_OK"))
            s2.exit()
        finally:
            if saved is None:
                try:
                    os.unlink(SUDOERS)
                except FileNotFoundError:
                    pass
            else:
                fd = os.open(SUDOERS, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                             0o440)
                with os.fdopen(fd, "w") as f:
                    f.write(saved)
                os.chmod(SUDOERS, 0o440)

    # ---- garbage -----------------------------------------------------------

    def test_garbage(self):
        raw = self.cluster.ssm(validate=False)
        web = self.web.instance_id
        bad = [
            ("ValidationException", raw.send_command, {}),
            ("ValidationException", raw.send_command,
             {"DocumentName": "x"}),
            ("ValidationException", raw.send_command,
             {"DocumentName": "AWS-RunShellScript", "InstanceIds": ["x"]}),
            ("ValidationException", raw.send_command,
             {"DocumentName": "AWS-RunShellScript", "InstanceIds": [web],
              "TimeoutSeconds": 5}),
            ("ValidationException", raw.send_command,
             {"DocumentName": "AWS-RunShellScript", "InstanceIds": [web],
              "MaxConcurrency": "0%"}),
            ("ValidationException", raw.send_command,
             {"DocumentName": "AWS-RunShellScript", "InstanceIds": [web],
              "MaxErrors": "x"}),
            ("ValidationException", raw.send_command,
             {"DocumentName": "AWS-RunShellScript", "InstanceIds": [web],
              "Comment": "c" * 101}),
            ("ValidationException", raw.send_command,
             {"DocumentName": "AWS-RunShellScript",
              "InstanceIds": ["i-%08x" % i for i in range(51)]}),
            ("ValidationException", raw.send_command,
             {"DocumentName": "AWS-RunShellScript",
              "Targets": [{"Key": "tag-key", "Values": ["a"]}] * 6}),
            ("DuplicateInstanceId", raw.send_command,
             {"DocumentName": "AWS-RunShellScript", "InstanceIds": [web, web],
              "Parameters": {"commands": ["true"]}}),
            ("InvalidOutputFolder", raw.send_command,
             {"DocumentName": "AWS-RunShellScript", "InstanceIds": [web],
              "Parameters": {"commands": ["true"]},
              "OutputS3BucketName": "NOT_A_BUCKET"}),
            ("ValidationException", raw.list_commands, {"MaxResults": 0}),
            ("ValidationException", raw.list_commands,
             {"CommandId": "too-short"}),
            ("InvalidNextToken", raw.list_commands, {"NextToken": "@@@"}),
            ("ValidationException", raw.list_commands,
             {"Filters": [{"key": "Colour", "value": "red"}]}),
            ("InvalidCommandId", raw.list_command_invocations,
             {"CommandId": "11111111-1111-4111-8111-111111111111"}),
            ("ValidationException", raw.get_command_invocation,
             {"CommandId": "11111111-1111-4111-8111-111111111111"}),
            ("ValidationException", raw.get_command_invocation,
             {"CommandId": "11111111-1111-4111-8111-111111111111",
              "InstanceId": web, "PluginName": "x"}),
            ("ValidationException", raw.cancel_command, {}),
            ("InvalidCommandId", raw.cancel_command,
             {"CommandId": "11111111-1111-4111-8111-111111111111"}),
        ]
        for code, fn, kw in bad:
            with self.subTest(action=fn.__name__, request=str(kw)[:80]):
                self.assertClientError(code, fn, **kw)
        # wrong JSON types: botocore serialises what it is given
        for kw in ({"DocumentName": 5},
                   {"DocumentName": "AWS-RunShellScript",
                    "InstanceIds": "mi-0123456789abcdef0"},
                   {"DocumentName": "AWS-RunShellScript",
                    "InstanceIds": [web], "TimeoutSeconds": "60"}):
            with self.subTest(request=str(kw)):
                self.assertClientError(("SerializationException",
                                        "ValidationException"),
                                       raw.send_command, **kw)
        # a body over the API's limit is refused, and the server lives on
        try:
            raw.send_command(DocumentName="AWS-RunShellScript",
                             InstanceIds=[web],
                             Parameters={"commands": ["x" * (9 << 20)]})
            self.fail("a 9 MiB request was accepted")
        except (botocore.exceptions.ClientError,
                botocore.exceptions.BotoCoreError) as e:
            self.assertNotIsInstance(e, AssertionError)
        self.assertIsInstance(self.ssm().list_commands(MaxResults=1)[
            "Commands"], list)


if __name__ == "__main__":
    unittest.main(verbosity=2)
