"""The `make run` script (scripts/run.sh) and the lines it prints.

Proves, on a copy of the script in a temporary tree (so the checkout's
./var is not touched) whose build/bin points at PORTHOLE_BIN and with
PORTHOLE_LISTEN on a free loopback port, that it initialises ./var, starts
portholed, enrols this machine, and prints the AWS CLI environment and
the `aws ssm start-session` / `porthole start-session` lines; that those
printed lines, used as a user would paste them, open a shell as ssm-user
with both clients; that a second run reuses ./var (same instance); and
that Ctrl-C stops what it started.
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import pexpect

import harness

RUN_SH = os.path.join(harness.REPO, "scripts", "run.sh")


def listening(port):
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True,
                         timeout=10).stdout
    return re.search(r"127\.0\.0\.1:%d\b" % port, out) is not None


class MakeRun(unittest.TestCase):

    def setUp(self):
        harness.require_binaries("portholed", "porthole-agent", "porthole",
                                 "session-manager-plugin")
        self.top = tempfile.mkdtemp(prefix="porthole-makerun-")
        self.addCleanup(shutil.rmtree, self.top, True)
        os.mkdir(os.path.join(self.top, "scripts"))
        shutil.copy(RUN_SH, os.path.join(self.top, "scripts", "run.sh"))
        os.mkdir(os.path.join(self.top, "build"))
        os.symlink(harness.porthole_bin(), os.path.join(self.top, "build",
                                                        "bin"))
        self.home = os.path.join(self.top, "home")
        os.mkdir(self.home)
        self.port = harness.free_port()
        self.children = []
        self.addCleanup(self.stop_children)

    def stop_children(self):
        for c in self.children:
            if c.isalive():
                c.sendintr()
                try:
                    c.expect(pexpect.EOF, timeout=15)
                except pexpect.TIMEOUT:
                    pass
            c.close(force=True)
        if getattr(self, "_failed", False):
            for name in ("portholed.log", "agent.log"):
                log = os.path.join(self.top, "var", name)
                if os.path.exists(log):
                    print("---- %s ----\n%s" % (name, harness.tail(log, 60)))

    def base_env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_")}
        env.update(HOME=self.home, PORTHOLE_LISTEN="127.0.0.1:%d" % self.port,
                   TERM="xterm-256color", PYTHONWARNINGS="ignore")
        return env

    def start_run(self):
        log = harness.io.StringIO()
        c = pexpect.spawn("bash", [os.path.join(self.top, "scripts",
                                                "run.sh")],
                          env=self.base_env(), encoding="utf-8",
                          codec_errors="replace", timeout=90,
                          cwd=self.top)
        c.logfile_read = log
        c.transcript = log
        self.children.append(c)
        c.expect(r"Ctrl-C here stops portholed and the agent\.", timeout=90)
        return c, log.getvalue()

    def parse(self, text):
        env = dict(re.findall(r"^\s*export (AWS_[A-Z_]+)=(\S+)\s*$", text,
                              re.M))
        m = re.search(r"^\s*export PATH=(\S+):\$PATH\s*$", text, re.M)
        self.assertIsNotNone(m, text)
        path = m.group(1)
        aws = re.search(r"^\s*aws ssm start-session --target (mi-[0-9a-f]{17})"
                        r"\s*$", text, re.M)
        ph = re.search(r"^\s*porthole start-session --target (mi-[0-9a-f]{17})"
                       r"\s*$", text, re.M)
        self.assertIsNotNone(aws, text)
        self.assertIsNotNone(ph, text)
        self.assertEqual(aws.group(1), ph.group(1))
        return env, path, aws.group(1)

    def shell_with(self, env_vars, path, cmd):
        env = self.base_env()
        env.pop("PORTHOLE_LISTEN")
        env.update(env_vars)
        env["AWS_CONFIG_FILE"] = os.devnull
        env["PATH"] = path + os.pathsep + os.environ.get("PATH", "")
        s = pexpect.spawn(cmd[0], cmd[1:], env=env, encoding="utf-8",
                          codec_errors="replace", timeout=30,
                          dimensions=(24, 80), cwd=self.home)
        s.logfile_read = harness.io.StringIO()
        try:
            s.expect(r"Starting session with SessionId: ")
            s.expect(r"[$#] ")
            s.sendline("whoami")
            s.expect(r"ssm-user")
            s.sendline("exit")
            s.expect(r"Exiting session with sessionId")
            s.expect(pexpect.EOF)
            s.close()
            self.assertEqual(s.exitstatus, 0)
        except (pexpect.TIMEOUT, pexpect.EOF):
            print(harness.printable(s.logfile_read.getvalue()))
            raise
        finally:
            s.close(force=True)

    def test_run_prints_working_lines_and_stops_on_ctrl_c(self):
        try:
            c, text = self.start_run()
            text = harness.strip_ansi(text)
            self.assertIn("porthole is running on https://127.0.0.1:%d"
                          % self.port, text)
            self.assertRegex(text, r"enrolled as mi-[0-9a-f]{17} \(Online\)")
            env, path, target = self.parse(text)
            for k in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE",
                      "AWS_CA_BUNDLE", "AWS_ENDPOINT_URL",
                      "AWS_DEFAULT_REGION"):
                self.assertIn(k, env, text)
            self.assertEqual(env["AWS_ENDPOINT_URL"],
                             "https://127.0.0.1:%d" % self.port)
            self.assertEqual(harness.file_mode(os.path.join(self.top,
                                                            "var")), 0o700)

            self.shell_with(env, path, ["aws", "ssm", "start-session",
                                        "--target", target])
            self.shell_with(env, path, [os.path.join(path, "porthole"),
                                        "start-session", "--target",
                                        target])

            c.sendintr()
            c.expect(pexpect.EOF, timeout=20)
            c.close()
            self.assertEqual(c.exitstatus, 0)
            harness.wait_for(lambda: not listening(self.port), 10, 0.2,
                             "portholed to stop listening")
            ps = subprocess.run(["ps", "-eo", "args"], capture_output=True,
                                text=True, timeout=10).stdout
            self.assertNotIn(os.path.join(self.top, "var"), ps)

            # Again: ./var is reused, same instance, nothing re-enrolled.
            c2, text2 = self.start_run()
            _env2, _path2, target2 = self.parse(harness.strip_ansi(text2))
            self.assertEqual(target2, target)
            self.assertIn("already initialised", text2)
            c2.sendintr()
            c2.expect(pexpect.EOF, timeout=20)
        except BaseException:
            self._failed = True
            for ch in self.children:
                print(harness.printable(ch.transcript.getvalue()))
            raise


if __name__ == "__main__":
    harness.main()
