#!/usr/bin/env python3
"""The web console's administration pages in a real headless Chromium
(tests/console/*.mjs): preferences edited and saved in the page are what
`aws ssm get-document --name SSM-SessionManagerRunShell` returns; with
preferences naming a KMS key a session opened in the browser shows "This
session is encrypted using AWS KMS." and works; Run Command to the
instance shows the target reach Success and its output. Each scenario
saves a screenshot (consolekit.artifacts_dir()). test_console.py has
sign-in, instances, the shell, history and the denied user."""

import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "console"))

import harness  # noqa: E402
import consolekit  # noqa: E402
import sessionkit  # noqa: E402

OPERATOR, OPERATOR_PW = "console-admin", "Adm1n-Console!"
ALIAS = "alias/console-session-key"
HOSTILE = "<img src=x onerror=window.__xss=1><b id=xss>b</b>"

PAGE_PREFS = {
    "s3BucketName": "console-records",
    "s3KeyPrefix": "sessions/console",
    "s3EncryptionEnabled": True,
    "kmsKeyId": "",
    "idleSessionTimeout": "17",
    "maxSessionDuration": "90",
    "runAsEnabled": True,
    "runAsDefaultUser": "ssm-user",
    "shellProfile": {"linux": "export CONSOLE_PREF=1\ncd /tmp",
                     "windows": "Set-Location C:\\"},
}


class ConsoleAdmin(harness.ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        consolekit.require_console()
        super().setUpClass()
        c = cls.cluster
        try:
            cls.operator_arn = consolekit.add_console_user(
                c, OPERATOR, OPERATOR_PW, consolekit.ADMIN_POLICY)
            # The AWS documentation's key policy, with the console user
            # among those who may GenerateDataKey.
            sessionkit.create_key(
                c, alias=ALIAS, description="console sessions",
                policy=sessionkit.session_key_policy(
                    c, users=[sessionkit.admin_arn(c), cls.operator_arn]))
        except BaseException:
            c.close(dump=True, raise_reports=False)
            raise

    def setUp(self):
        # Every test starts from the harness's plain preferences.
        sessionkit.set_session_prefs(self.cluster)

    def browser(self, name, **params):
        p = {"user": OPERATOR, "password": OPERATOR_PW,
             "instanceId": self.target}
        p.update(params)
        return consolekit.run_scenario(self.cluster, name, p)

    def test_preferences_saved_are_get_document(self):
        r = self.browser("prefs", prefs=PAGE_PREFS)
        self.assertEqual(r["back"], PAGE_PREFS)
        self.assertEqual(r["same"], "No changes to save.")
        self.assertIn("Idle session timeout", r["bad"])
        d = self.cluster.aws("ssm", "get-document", "--name",
                             "SSM-SessionManagerRunShell")
        self.assertEqual(d["DocumentType"], "Session")
        inputs = json.loads(d["Content"])["inputs"]
        for k, v in PAGE_PREFS.items():
            self.assertEqual(inputs.get(k), v, k)
        # Inputs the page does not edit are kept.
        self.assertIn("cloudWatchLogGroupName", inputs)
        latest = self.cluster.aws("ssm", "get-document", "--name",
                                  "SSM-SessionManagerRunShell",
                                  "--document-version", "$LATEST")
        self.assertEqual(latest["DocumentVersion"], d["DocumentVersion"])

    def test_kms_encrypted_session(self):
        sessionkit.set_session_prefs(self.cluster, kmsKeyId=ALIAS)
        r = self.browser("kms")
        self.assertEqual(r["encrypted"], "true")
        self.assertTrue(r["inTerminal"], "no KMS notice in the terminal")
        sid = r["sessionId"]
        self.cluster.wait_session_status(sid, ("Terminated",), timeout=30)

    def test_kms_key_named_in_the_page(self):
        r = self.browser("kms", kmsKey=ALIAS, label="kms-via-preferences")
        self.assertEqual(r["encrypted"], "true")
        d = self.cluster.aws("ssm", "get-document", "--name",
                             "SSM-SessionManagerRunShell")
        self.assertEqual(json.loads(d["Content"])["inputs"]["kmsKeyId"],
                         ALIAS)
        self.cluster.wait_session_status(r["sessionId"], ("Terminated",),
                                         timeout=30)

    def test_run_command(self):
        r = self.browser("runcommand", commands=[
            "echo RUNCMD-$((6*7))", "sleep 3", "echo '%s'" % HOSTILE,
            "echo RUNCMD-DONE"])
        self.assertEqual(r["status"], "Success", r)
        self.assertIn("RUNCMD-42", r["output"])
        self.assertIn("RUNCMD-DONE", r["output"])
        # Output is text in the page, never markup (the scenario also
        # checks no element came of it).
        self.assertIn(HOSTILE, r["output"])
        # The page showed the target in progress before it succeeded.
        self.assertTrue(set(r["seen"]) & {"Pending", "InProgress"}, r)
        inv = self.cluster.aws("ssm", "get-command-invocation",
                               "--command-id", r["commandId"],
                               "--instance-id", self.target)
        self.assertEqual(inv["Status"], "Success")
        self.assertEqual(inv["StandardOutputContent"].strip(),
                         r["output"].strip())

    def test_run_command_by_tag(self):
        self.cluster.aws("ssm", "add-tags-to-resource", "--resource-type",
                         "ManagedInstance", "--resource-id", self.target,
                         "--tags", "Key=Role,Value=console-run")
        r = self.browser("runcommand", tag="Role=console-run",
                         label="runcommand-by-tag",
                         commands=["echo TAGGED-$((6*7))"])
        self.assertEqual(r["status"], "Success", r)
        self.assertIn("TAGGED-42", r["output"])
        cmd = self.cluster.aws("ssm", "list-commands", "--command-id",
                               r["commandId"])["Commands"][0]
        self.assertEqual(cmd["Targets"], [{"Key": "tag:Role",
                                           "Values": ["console-run"]}])


if __name__ == "__main__":
    unittest.main(verbosity=2)
