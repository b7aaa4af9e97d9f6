"""Session limits from the Session Manager preferences.

Proves that idleSessionTimeout "1" (set with `aws ssm update-document
--name SSM-SessionManagerRunShell ... --document-version '$LATEST'`) ends a
session that has been idle for about a minute: the user is told why on the
screen, the client exits, and the session is recorded as Terminated; a
session that keeps typing is not ended by it. And that maxSessionDuration
"1" ends even a busy session after about a minute, the same way. And
that `aws ssm terminate-session` from another terminal ends an open
session within a second (the client says so and exits 0), recorded as
Terminated, with `porthole` and with the AWS CLI.
"""

import re
import time

import harness
import sessionkit

TOLD_IDLE = r"(?i)idle|inactiv|timed out"
TOLD_MAX = r"(?i)maximum|duration|max|timed out|expired"


class SessionLimits(harness.ClusterTestCase):

    def tearDown(self):
        sessionkit.set_session_prefs(self.cluster)

    def wait_end(self, s, secs):
        try:
            s.child.expect(harness.pexpect.EOF, timeout=secs)
        except harness.pexpect.TIMEOUT:
            self.fail("the session was still open after %ss" % secs)
        s.child.close()
        return time.monotonic()

    def told(self, s):
        """What the client printed after the last prompt."""
        text = harness.strip_ansi(s.transcript.getvalue())
        return text[text.rfind(harness.PROMPT) + len(harness.PROMPT):]

    def test_idle_timeout(self):
        sessionkit.set_session_prefs(self.cluster, idleSessionTimeout="1")
        for client in ("porthole", "aws"):
            with self.subTest(client=client):
                s = self.cluster.open_session(self.target, client=client)
                self.assertIn("ssm-user", s.run("whoami").split())
                last = time.monotonic()
                ended = self.wait_end(s, 120)
                idle = ended - last
                self.assertGreater(idle, 50, "ended after %.0fs idle" % idle)
                self.assertLess(idle, 100, "ended after %.0fs idle" % idle)
                self.assertRegex(self.told(s), TOLD_IDLE)
                self.assertIsNotNone(s.exit_status())
                state, rec = self.cluster.wait_session_status(
                    s.session_id, ("Terminated",))
                self.assertEqual(state, "History")

    def test_typing_keeps_a_session_alive(self):
        sessionkit.set_session_prefs(self.cluster, idleSessionTimeout="1")
        s = self.cluster.open_session(self.target, client="porthole")
        started = time.monotonic()
        for i in range(9):
            self.assertIn("tick-%d" % i, s.run("echo tick-''%d" % i))
            time.sleep(10)
        self.assertGreater(time.monotonic() - started, 80)
        self.assertTrue(s.child.isalive())
        self.assertIn("still", s.run("echo sti''ll"))
        self.assertEqual(s.exit(), 0)

    def test_max_session_duration(self):
        sessionkit.set_session_prefs(self.cluster, maxSessionDuration="1")
        s = self.cluster.open_session(self.target, client="porthole")
        started = time.monotonic()
        # Busy all the time: output every half second.
        s.child.sendline("while :; do echo busy; sleep 0.5; done")
        ended = self.wait_end(s, 120)
        took = ended - started
        self.assertGreater(took, 50, "ended after %.0fs" % took)
        self.assertLess(took, 100, "ended after %.0fs" % took)
        text = harness.strip_ansi(s.transcript.getvalue())
        tail = text[text.rfind("busy") + 4:]
        self.assertRegex(tail, TOLD_MAX)
        self.assertTrue(re.search(r"SessionId: ", tail), tail)
        self.cluster.wait_session_status(s.session_id, ("Terminated",))

    def terminate_from_elsewhere(self, client):
        s = self.cluster.open_session(self.target, client=client)
        self.assertIn("ssm-user", s.run("whoami").split())
        s.child.sendline("sleep 300")
        time.sleep(0.5)
        self.cluster.aws("ssm", "terminate-session", "--session-id",
                         s.session_id)
        returned = time.monotonic()
        s.child.expect(harness.pexpect.EOF, timeout=20)
        took = time.monotonic() - returned
        s.child.close()
        self.assertLess(took, 1.0, "the client ended %.2fs after "
                        "TerminateSession returned" % took)
        self.assertRegex(harness.strip_ansi(s.transcript.getvalue()),
                         r"(Exiting session with sessionId: |SessionId: )"
                         + s.session_id)
        self.assertEqual(s.exit_status(), 0)
        state, rec = self.cluster.wait_session_status(s.session_id,
                                                      ("Terminated",))
        self.assertEqual(state, "History")

    def test_terminate_from_another_terminal_porthole(self):
        self.terminate_from_elsewhere("porthole")

    def test_terminate_from_another_terminal_aws_cli(self):
        self.terminate_from_elsewhere("aws")

if __name__ == "__main__":
    harness.main()
