#!/usr/bin/env python3
"""The web console in a real headless Chromium (tests/console/*.mjs,
playwright-core driving Debian's chromium) against a harness cluster with
a real agent: sign in (a wrong password refused, nothing secret where a
script can read it, a reload carries on, Sign out ends it); the instance
list shows the enrolled agent with its tags and filters by tag; a shell in
the browser (whoami, stty size before and after the window shrinks,
Ctrl-C, Terminate); session history shows the ended session and replays
it; a user the policies deny sees AWS's AccessDeniedException text; a
short network drop (a TCP proxy cuts every connection) is resumed on the
same session; copy and paste in the terminal (Ctrl-Shift-V, the
browser's paste event, a double-clicked word out with Ctrl-Shift-C); a
user whose login profile requires a new password is held at the
change-password form, then reaches the instances, and the old password no
longer signs in.

Users are IAM users with login profiles and inline policies made with the
AWS CLI. Each scenario saves a screenshot (consolekit.artifacts_dir()).
test_console_admin.py has the preferences, KMS and Run Command pages."""

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

OPERATOR, OPERATOR_PW = "console-operator", "Op3rator-Console!"
READER, READER_PW = "console-reader", "R3ader-Console!"
MARKER = "CONSOLE-MARK"


class Console(harness.ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        consolekit.require_console()
        super().setUpClass()
        c = cls.cluster
        try:
            c.aws("ssm", "add-tags-to-resource", "--resource-type",
                  "ManagedInstance", "--resource-id", cls.agent.instance_id,
                  "--tags", "Key=Name,Value=console-box",
                  "Key=Environment,Value=stage")
            cls.operator_arn = consolekit.add_console_user(
                c, OPERATOR, OPERATOR_PW, consolekit.ADMIN_POLICY)
            cls.reader_arn = consolekit.add_console_user(
                c, READER, READER_PW, consolekit.READ_ONLY_POLICY)
        except BaseException:
            c.close(dump=True, raise_reports=False)
            raise
        cls.ended_session = None

    def browser(self, name, user=OPERATOR, password=OPERATOR_PW, **params):
        p = {"user": user, "password": password,
             "instanceId": self.target}
        p.update(params)
        return consolekit.run_scenario(self.cluster, name, p)

    def test_1_signin(self):
        r = self.browser("signin")
        self.assertTrue(r["user"].startswith(OPERATOR))
        # Every attempt is audited as a ConsoleLogin event.
        ev = self.cluster.aws("cloudtrail", "lookup-events",
                              "--lookup-attributes",
                              "AttributeKey=EventName,"
                              "AttributeValue=ConsoleLogin",
                              check=False)
        if ev.returncode == 0:
            self.assertIn("ConsoleLogin", ev.stdout)

    def test_2_instances(self):
        r = self.browser("instances", tagKey="Environment",
                         tagValue="stage")
        info = self.cluster.instance_info(self.target)
        cells = [c.strip() for c in r["cells"]]
        self.assertEqual(cells[0], "console-box")
        self.assertEqual(cells[1], self.target)
        self.assertEqual(cells[3], info["AgentVersion"])
        self.assertEqual(cells[4], "Online")
        self.assertIn("Environment=stage", cells[5])
        self.assertIn("Name=console-box", cells[5])

    def test_3_shell(self):
        r = self.browser("shell", marker=MARKER)
        sid = r["sessionId"]
        self.assertTrue(sid.startswith(OPERATOR + "-"), sid)
        self.assertLess(r["after"]["cols"], r["before"]["cols"])
        self.assertEqual(r["after"]["rows"], r["rowsAfter"])
        # The Active tab listed it while it ran.
        self.assertEqual(r["active"][0].strip(), sid)
        self.assertEqual(r["active"][2].strip(), "Connected")
        self.assertEqual(r["active"][-1].strip(), "Terminate")
        self.cluster.wait_session_status(sid, ("Terminated",), timeout=30)
        type(self).ended_session = sid

    def test_4_history_and_replay(self):
        sid = type(self).ended_session
        if sid is None:
            self.skipTest("test_3_shell made no session")
        r = self.browser("history", sessionId=sid, marker=MARKER + "-42")
        cells = [c.strip() for c in r["cells"]]
        self.assertEqual(cells[0], sid)
        self.assertEqual(cells[1], self.operator_arn)
        self.assertEqual(cells[2], "Terminated")
        self.assertEqual(cells[3], self.target)
        s = self.cluster.aws("ssm", "describe-sessions", "--state",
                             "History", "--filters",
                             "key=SessionId,value=" + sid)["Sessions"]
        self.assertEqual(len(s), 1)
        url = s[0].get("OutputUrl", {}).get("S3OutputUrl", "")
        self.assertEqual(cells[6], url)
        self.assertIn(MARKER + "-42", r["transcript"])
        # The hostile line typed in test_3_shell is in the transcript as
        # text (the scenario checks it made no element).
        self.assertIn("<img src=x onerror=window.__xss=1>", r["transcript"])

    def test_5_denied(self):
        r = self.browser("denied", user=READER, password=READER_PW)
        self.assertIn("AccessDeniedException: User: %s is not authorized "
                      "to perform: ssm:StartSession on resource: "
                      % self.reader_arn, r["start"])
        self.assertIn("AccessDeniedException", r["prefs"])
        self.assertIn("ssm:GetDocument", r["prefs"])
        # And no session was made for the denied user.
        s = self.cluster.aws("ssm", "describe-sessions", "--state",
                             "History")["Sessions"]
        self.assertFalse([x for x in s if x["SessionId"].startswith(
            READER + "-")])

    def test_6_resume_after_network_drop(self):
        proxy = sessionkit.TcpProxy(self.cluster.port)
        self.addCleanup(proxy.close)
        cuts = []

        def cut():
            cuts.append(proxy.cut(outage=2.0))
            return cuts[-1]
        r = consolekit.run_scenario(
            self.cluster, "resume", {"user": OPERATOR,
                                     "password": OPERATOR_PW,
                                     "instanceId": self.target},
            url=proxy.url, handlers={"cut": cut})
        self.assertTrue(cuts and cuts[0] > 0, "nothing was cut")
        # The page showed the drop and came back on the same session.
        self.assertIn("connecting", r["states"])
        self.assertEqual(r["states"][-1], "open")
        self.cluster.wait_session_status(r["sessionId"], ("Terminated",),
                                         timeout=30)

    def test_7_clipboard(self):
        r = self.browser("clipboard")
        self.assertEqual(r["copied"].strip(), "PASTED-42")
        self.cluster.wait_session_status(r["sessionId"], ("Terminated",),
                                         timeout=30)

    def test_8_password_reset(self):
        c, name = self.cluster, "console-newbie"
        old, new, third = "Temp-Passw0rd!", "Own-Passw0rd!", "Thrd-Passw0rd!"
        c.aws("iam", "create-user", "--user-name", name)
        c.aws("iam", "put-user-policy", "--user-name", name,
              "--policy-name", "console-test", "--policy-document",
              json.dumps(consolekit.ADMIN_POLICY))
        c.aws("iam", "create-login-profile", "--user-name", name,
              "--password", old, "--password-reset-required")
        r = self.browser("passwordReset", user=name, password=old,
                         newPassword=new, thirdPassword=third)
        self.assertIn("changed", r["changed"])
        lp = c.aws("iam", "get-login-profile", "--user-name",
                   name)["LoginProfile"]
        self.assertFalse(lp.get("PasswordResetRequired", False))
        for pw in (old, new, third):
            self.assertNotIn(pw, c.server.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
