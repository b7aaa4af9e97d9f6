"""Interactive shell through the real AWS CLI.

Proves that `aws ssm start-session --target mi-...` (AWS CLI v1, which execs
our `session-manager-plugin` first on PATH) opens a shell on the managed
server through portholed and porthole-agent, and that the shell behaves like
a terminal: it runs as ssm-user with passwordless sudo, the initial window
size and later resizes reach `stty size`, Ctrl-C interrupts the foreground
program and not the session, line editing works, full-screen programs
(top, vim) draw with escape sequences, two sessions run at once, `exit`
ends the session (client exit status 0, "Exiting session" printed) and
leaves the local terminal's settings as they were, and DescribeSessions
then lists the session as Terminated.
"""

import time

import harness


class CliSession(harness.ClusterTestCase):

    def test_whoami_is_ssm_user(self):
        s = self.cluster.open_session(self.target)
        self.assertRegex(s.session_id, r"^[A-Za-z0-9._-]+$")
        self.assertIn("ssm-user", s.run("whoami").split())
        self.assertEqual(s.exit(), 0)

    def test_sudo_without_password(self):
        s = self.cluster.open_session(self.target)
        out = s.run("sudo -n true; echo rc=$?")
        self.assertIn("rc=0", out)
        self.assertIn("uid=0(root)", s.run("sudo -n id"))
        self.assertEqual(s.exit(), 0)

    def test_initial_window_size(self):
        s = self.cluster.open_session(self.target, dimensions=(33, 111))
        self.assertIn("33 111", s.run("stty size"))
        self.assertEqual(s.exit(), 0)

    def test_resize_reaches_stty(self):
        s = self.cluster.open_session(self.target, dimensions=(24, 80))
        self.assertIn("24 80", s.run("stty size"))
        s.child.setwinsize(40, 100)
        # The client may poll the size (the official plugin does every
        # 500 ms): allow a few seconds.
        seen = []

        def resized():
            out = s.run("stty size")
            seen.append(out.strip())
            return "40 100" in out
        harness.wait_for(resized, 8, 0.5, "stty size to show 40 100")
        s.child.setwinsize(30, 120)
        harness.wait_for(lambda: "30 120" in s.run("stty size"), 8, 0.5,
                         "stty size to show 30 120")
        self.assertEqual(s.exit(), 0)

    def test_ctrl_c_interrupts_foreground_program(self):
        s = self.cluster.open_session(self.target)
        s.child.sendline("sleep 100")
        time.sleep(1.0)
        started = time.monotonic()
        s.child.send("\x03")
        s.child.expect_exact(harness.PROMPT, timeout=10)
        self.assertLess(time.monotonic() - started, 10)
        # The prompt came back long before 100 s: the interrupt reached the
        # foreground program. The session itself is still there:
        self.assertIn("alive", s.run("echo al''ive"))
        self.assertEqual(s.exit(), 0)

    def test_full_screen_program_draws(self):
        s = self.cluster.open_session(self.target, dimensions=(30, 100))
        s.child.sendline("TERM=xterm-256color top -d 1")
        # top clears the screen / moves the cursor home / switches to the
        # alternate screen: any of these proves it is drawing full screen.
        s.child.expect(r"\x1b\[(\?1049h|H|2J|\d+;\d+H)", timeout=15)
        s.child.expect(r"load average|Tasks:", timeout=15)
        time.sleep(1.2)
        s.child.send("q")
        s.child.expect_exact(harness.PROMPT, timeout=10)
        self.assertIn("still-here", s.run("echo still-''here"))
        self.assertEqual(s.exit(), 0)

    def test_vim_draws(self):
        s = self.cluster.open_session(self.target, dimensions=(30, 100))
        s.child.sendline("vim -u NONE -N -n")
        # The alternate screen or a clear, then vim's empty-buffer tildes.
        s.child.expect(r"\x1b\[(\?1049h|H|2J|\d+;\d+H)", timeout=15)
        s.child.expect(r"~", timeout=15)
        s.child.send("ihello-from-vim\x1b")
        s.child.expect("hello-from-vim", timeout=10)
        s.child.send(":q!\r")
        s.child.expect_exact(harness.PROMPT, timeout=10)
        self.assertIn("back", s.run("echo ba''ck"))
        self.assertEqual(s.exit(), 0)

    def test_terminal_restored_after_exit(self):
        before, after = harness.stty_around_session(
            self.cluster, "aws ssm start-session --target " + self.target)
        self.assertEqual(after, before)

    def test_line_editing(self):
        s = self.cluster.open_session(self.target)
        # Type "echo abXc", move left twice, delete the X with backspace,
        # press Enter: the shell must receive "echo abc".
        s.child.send("echo abXc")
        s.child.send("\x1b[D")
        s.child.send("\x7f")
        s.child.send("\r")
        s.child.expect_exact(harness.PROMPT, timeout=10)
        self.assertIn("abc", harness.strip_ansi(s.child.before).split())
        self.assertEqual(s.exit(), 0)

    def test_exit_ends_session_and_is_recorded(self):
        s = self.cluster.open_session(self.target)
        sid = s.session_id
        state, rec = self.cluster.session_record(sid)
        self.assertEqual(state, "Active", rec)
        self.assertEqual(rec["Status"], "Connected")
        self.assertEqual(rec["Target"], self.target)
        s.child.sendline("exit")
        s.child.expect(r"Exiting session with sessionId: ([^\s]+)\.",
                       timeout=20)
        self.assertEqual(s.child.match.group(1), sid)
        self.assertEqual(s.wait_exit(), 0)
        state, rec = self.cluster.wait_session_status(sid, ("Terminated",))
        self.assertEqual(state, "History")
        self.assertIn("EndDate", rec)
        # The same through the CLI's own describe-sessions.
        out = self.cluster.aws("ssm", "describe-sessions", "--state",
                               "History", "--filters",
                               "key=SessionId,value=" + sid)
        self.assertEqual([x["Status"] for x in out["Sessions"]],
                         ["Terminated"])

    def test_two_sessions_at_once(self):
        a = self.cluster.open_session(self.target)
        b = self.cluster.open_session(self.target)
        self.assertNotEqual(a.session_id, b.session_id)
        self.assertIn("one", a.run("echo o''ne"))
        self.assertIn("two", b.run("echo t''wo"))
        self.assertEqual(a.exit(), 0)
        self.assertIn("three", b.run("echo th''ree"))
        self.assertEqual(b.exit(), 0)


if __name__ == "__main__":
    harness.main()
