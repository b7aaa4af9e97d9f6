"""Interactive shell through porthole's own client.

Proves that `porthole start-session --target mi-...` signs its own
StartSession (credentials, region, endpoint and CA taken from the AWS_*
environment like the AWS CLI, or from --profile/--region/--endpoint-url)
and runs the same session: the shell is ssm-user's, the initial size and a
resize reach `stty size`, Ctrl-C interrupts the foreground program, `exit`
ends the session with client exit status 0, restores the local terminal's
settings, and the session is recorded as Terminated. Also checks the `session-manager-plugin` name answers the
AWS CLI's `--version` probe with a version the CLI accepts for env-var mode.
"""

import re
import subprocess
import time

import harness


class PortholeSession(harness.ClusterTestCase):

    def test_whoami_resize_exit(self):
        s = self.cluster.open_session(self.target, client="porthole",
                                      dimensions=(25, 90))
        self.assertIn("ssm-user", s.run("whoami").split())
        self.assertIn("25 90", s.run("stty size"))
        s.child.setwinsize(40, 100)
        harness.wait_for(lambda: "40 100" in s.run("stty size"), 8, 0.5,
                         "stty size to show 40 100")
        sid = s.session_id
        self.assertEqual(s.exit(), 0)
        self.assertIn("Exiting session with sessionId: %s." % sid,
                      s.output())
        self.cluster.wait_session_status(sid, ("Terminated",))

    def test_ctrl_c_and_sudo(self):
        s = self.cluster.open_session(self.target, client="porthole")
        s.child.sendline("sleep 100")
        time.sleep(1.0)
        s.child.send("\x03")
        s.child.expect_exact(harness.PROMPT, timeout=10)
        self.assertIn("rc=0", s.run("sudo -n true; echo rc=$?"))
        self.assertEqual(s.exit(), 0)

    def test_explicit_flags_instead_of_environment(self):
        # No AWS_PROFILE/AWS_ENDPOINT_URL/AWS_DEFAULT_REGION in the
        # environment: everything comes from the flags.
        env = self.cluster.make_env(AWS_PROFILE=None, AWS_ENDPOINT_URL=None,
                                    AWS_DEFAULT_REGION=None)
        s = self.cluster.open_session(
            self.target, client="porthole", env=env,
            extra_args=["--profile", "porthole", "--region",
                        self.cluster.region, "--endpoint-url",
                        self.cluster.endpoint])
        self.assertIn("ssm-user", s.run("whoami").split())
        self.assertEqual(s.exit(), 0)

    def test_terminal_restored_after_exit(self):
        before, after = harness.stty_around_session(
            self.cluster, "porthole start-session --target " + self.target)
        self.assertEqual(after, before)

    def test_unknown_target_fails_cleanly(self):
        p = subprocess.run(
            [harness.binary("porthole"), "start-session", "--target",
             "mi-00000000000000000"],
            capture_output=True, text=True, timeout=30,
            stdin=subprocess.DEVNULL, env=self.cluster.env)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stdout + p.stderr,
                         r"TargetNotConnected|not connected")

    def test_plugin_version_probe(self):
        p = subprocess.run([harness.binary("session-manager-plugin"),
                            "--version"], capture_output=True, text=True,
                           timeout=10, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        v = re.sub(r"\s", "", p.stdout)
        self.assertRegex(v, r"^\d+(\.\d+){0,3}$")
        parts = [int(x) for x in v.split(".")] + [0] * 4
        # spec 1.1: strictly greater than 1.2.497.0 selects env-var mode.
        self.assertGreater(parts[:4], [1, 2, 497, 0])


if __name__ == "__main__":
    harness.main()
