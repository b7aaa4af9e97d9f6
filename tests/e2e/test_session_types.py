"""Session types other than the shell.

Proves that InteractiveCommands (AWS-StartInteractiveCommand with its
`command` parameter) runs the command in a PTY with the client's terminal
size, reads what is typed, and ends the session when the command ends
(client exit 0, session Terminated), with `porthole` and the AWS CLI; and
that NonInteractiveCommands (AWS-StartNonInteractiveCommand) runs the
command without a terminal, keeps its stdout and stderr apart (the client
writes them to its own stdout and stderr), delivers a large output intact,
and makes the remote exit code the exit status of `porthole
start-session`.
"""

import json
import os
import re
import subprocess

import harness

INTERACTIVE = "AWS-StartInteractiveCommand"
NON_INTERACTIVE = "AWS-StartNonInteractiveCommand"


def json_params(command):
    return json.dumps({"command": [command]})


class InteractiveCommands(harness.ClusterTestCase):

    def run_command(self, client, command, dims=(24, 80), typed=None):
        s = self.cluster.open_session(
            self.target, client=client, dimensions=dims, ready=False,
            extra_args=["--document-name", INTERACTIVE, "--parameters",
                        json_params(command)])
        s.wait_started()
        if typed is not None:
            expect, line = typed
            s.child.expect_exact(expect, timeout=20)
            s.child.sendline(line)
        status = s.wait_exit(30)
        return s, status, harness.strip_ansi(s.transcript.getvalue())

    def test_command_runs_in_a_pty(self):
        for client in ("porthole", "aws"):
            with self.subTest(client=client):
                s, status, out = self.run_command(
                    client, "tty; stty size; echo pty-''ok", dims=(29, 101))
                self.assertEqual(status, 0, out)
                self.assertRegex(out, r"/dev/pts/\d+")
                self.assertNotIn("not a tty", out)
                self.assertIn("29 101", out)
                self.assertIn("pty-ok", out)
                self.cluster.wait_session_status(s.session_id,
                                                 ("Terminated",))

    def test_command_reads_input(self):
        s, status, out = self.run_command(
            "porthole", "printf 'name? '; read x; echo got-$x",
            typed=("name? ", "porthole"))
        self.assertEqual(status, 0, out)
        self.assertIn("got-porthole", out)

    def test_missing_command_is_refused(self):
        p = subprocess.run(
            [harness.binary("porthole"), "start-session", "--target",
             self.target, "--document-name", INTERACTIVE],
            capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL, env=self.cluster.env)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stdout + p.stderr,
                         r"InvalidParameters|InvalidDocument|command")


class NonInteractiveCommands(harness.ClusterTestCase):

    def porthole(self, params, pty_stdin=True, timeout=60):
        """`porthole start-session` of a non-interactive command with
        stdout and stderr captured apart; stdin a terminal (as when typed
        at a shell prompt with redirections) unless pty_stdin is false."""
        argv = [harness.binary("porthole"), "start-session", "--target",
                self.target, "--document-name", NON_INTERACTIVE,
                "--parameters", params]
        master = slave = None
        if pty_stdin:
            master, slave = os.openpty()
            stdin = slave
        else:
            stdin = subprocess.DEVNULL
        try:
            p = subprocess.run(argv, stdin=stdin, capture_output=True,
                               timeout=timeout, env=self.cluster.env)
        finally:
            for fd in (master, slave):
                if fd is not None:
                    os.close(fd)
        return (p.returncode, p.stdout.decode(errors="replace"),
                p.stderr.decode(errors="replace"))

    def test_exit_code_becomes_client_status(self):
        for code in (7, 0, 1, 42):
            with self.subTest(code=code):
                rc, out, err = self.porthole(
                    "command=sh -c 'exit %d'" % code)
                self.assertEqual(rc, code, "stdout %r stderr %r"
                                 % (out, err))

    def test_exit_code_in_a_terminal(self):
        s = self.cluster.open_session(
            self.target, client="porthole", ready=False,
            extra_args=["--document-name", NON_INTERACTIVE, "--parameters",
                        json_params("sh -c 'echo in-''terminal; exit 7'")])
        s.wait_started()
        self.assertEqual(s.wait_exit(60), 7, s.output())
        self.assertIn("in-terminal", s.output())
        self.cluster.wait_session_status(s.session_id,
                                         ("Terminated", "Failed"))

    def test_stdout_and_stderr_apart(self):
        rc, out, err = self.porthole(json_params(
            "sh -c 'echo to-out; echo to-err >&2; echo more-out; exit 3'"))
        self.assertEqual(rc, 3, "stdout %r stderr %r" % (out, err))
        self.assertIn("to-out", out)
        self.assertIn("more-out", out)
        self.assertNotIn("to-err", out)
        self.assertIn("to-err", err)
        self.assertNotIn("to-out", err)

    def test_no_terminal_and_no_stdin_needed(self):
        rc, out, err = self.porthole(json_params(
            "sh -c 'test -t 0 || echo no-tty-in; test -t 1 || "
            "echo no-tty-out'"), pty_stdin=False)
        self.assertEqual(rc, 0, "stdout %r stderr %r" % (out, err))
        self.assertIn("no-tty-in", out)
        self.assertIn("no-tty-out", out)

    def test_runs_as_ssm_user_without_a_shell(self):
        # spec 7.3: split shell-style and run directly, as AWS's agent
        # does: nothing is expanded unless the command runs a shell.
        rc, out, err = self.porthole(json_params(
            "sh -c 'id -un; echo \"home=$HOME\"'"))
        self.assertEqual(rc, 0, err)
        self.assertIn("ssm-user", out)
        self.assertIn("home=/home/ssm-user", out)
        rc, out, err = self.porthole(json_params("echo $HOME 'a  b'"))
        self.assertEqual(rc, 0, err)
        self.assertIn("$HOME a  b", out)

    def test_command_not_found(self):
        rc, out, err = self.porthole(json_params("no-such-command-xyz -v"))
        self.assertEqual(rc, 127, "stdout %r stderr %r" % (out, err))
        self.assertIn("no-such-command-xyz: command not found", err)

    def test_killed_command_is_128_plus_signal(self):
        rc, out, err = self.porthole(json_params("sh -c 'kill -TERM $$'"))
        self.assertEqual(rc, 128 + 15, "stdout %r stderr %r" % (out, err))

    def test_ctrl_c_interrupts_the_command(self):
        s = self.cluster.open_session(
            self.target, client="porthole", ready=False,
            extra_args=["--document-name", NON_INTERACTIVE, "--parameters",
                        json_params("sh -c 'echo ready-now; sleep 30; "
                                    "echo not-interrupted'")])
        s.wait_started()
        s.child.expect_exact("ready-now", timeout=20)
        s.child.send("\x03")
        self.assertEqual(s.wait_exit(20), 128 + 2, s.output())
        self.assertNotIn("not-interrupted", s.output())

    def test_aws_cli(self):
        """Through `aws ssm start-session` the plugin prints the exit code
        as AWS's does (EXIT_CODE: n on stdout) and exits 0: the CLI turns
        any other status of the plugin into 255 and an error."""
        p = self.cluster.aws(
            "ssm", "start-session", "--target", self.target,
            "--document-name", NON_INTERACTIVE, "--parameters",
            json_params("sh -c 'echo o-out; echo e-err >&2; exit 3'"),
            check=False, output="text")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("o-out", p.stdout)
        self.assertIn("EXIT_CODE: 3", p.stdout)
        if not os.environ.get("PORTHOLE_E2E_PLUGIN_DIR"):
            # AWS's plugin writes stderr to stdout; ours keeps it apart.
            self.assertIn("e-err", p.stderr)
            self.assertNotIn("e-err", p.stdout)

    def test_large_output_intact(self):
        n = 200000
        # The exit code comes after the last byte of output.
        rc, out, err = self.porthole(
            json_params("sh -c 'seq 1 %d; exit 5'" % n), timeout=120)
        self.assertEqual(rc, 5, err[-2000:])
        lines = [x for x in out.replace("\r", "").split("\n")
                 if re.fullmatch(r"\d+", x)]
        self.assertEqual(lines, [str(i) for i in range(1, n + 1)])


class NonInteractiveRunAs(harness.ClusterTestCase):
    """With RunAs in the session preferences the command runs as that
    user, as the shell would (spec 7.6)."""

    def test_runs_as_the_run_as_user(self):
        import sessionkit
        sessionkit.set_session_prefs(self.cluster, runAsEnabled=True,
                                     runAsDefaultUser="nobody")
        p = subprocess.run(
            [harness.binary("porthole"), "start-session", "--target",
             self.target, "--document-name", NON_INTERACTIVE,
             "--parameters", json_params("sh -c 'id -un; pwd'")],
            capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL, env=self.cluster.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("nobody\n", p.stdout)
        self.assertNotIn("ssm-user", p.stdout)


if __name__ == "__main__":
    harness.main()
