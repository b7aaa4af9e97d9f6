"""bench/run.py's keystroke-echo row (4) keeps what it reads.

The row types keystrokes one at a time and waits for each echo; after the
last one the remote shell prints EC-DONE at once. When the bench reads late
(it waits for a CPU on a loaded machine) the last echo, EC-DONE and the
prompt come in one read; the row used to drop everything after the echo
and then waited 30 s for an EC-DONE it had already read (the intermittent
failure of test_bench_smoke). Here the "remote" is a local bash in a pty,
no porthole, and the bench is held after the last keystroke until the
shell has printed EC-DONE, so that read always holds both.
"""

import importlib.util
import os
import shutil
import tempfile
import time
import types
import unittest
from unittest import mock

import harness
import pexpect


def load_bench():
    path = os.path.join(harness.REPO, "bench", "run.py")
    spec = importlib.util.spec_from_file_location("bench_run", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class LocalShell:
    """The part of harness.Session that Bench.echo_once uses, over a
    local bash whose PROMPT_COMMAND creates `mark` before each prompt."""

    def __init__(self, mark):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "HOME": os.path.dirname(mark), "TERM": "xterm",
               "PS1": harness.PROMPT, "PROMPT_COMMAND": ": >" + mark}
        self.child = pexpect.spawn("bash", ["--norc", "--noprofile", "-i"],
                                   env=env, encoding="utf-8",
                                   codec_errors="replace", timeout=20)
        self.child.expect_exact(harness.PROMPT)

    def close(self):
        self.child.close(force=True)


class BenchEcho(unittest.TestCase):

    def setUp(self):
        self.bench_mod = load_bench()
        self.tmp = tempfile.mkdtemp(prefix="porthole-bench-echo-")
        self.mark = os.path.join(self.tmp, "prompted")
        self.sess = LocalShell(self.mark)
        self.bench = self.bench_mod.Bench(types.SimpleNamespace(
            scale=1.0 / 1024, dump=False))
        self.bench.row_budget = 60

    def tearDown(self):
        self.sess.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def echo(self, k, hold_last=False, twice=None):
        """Bench.echo_once(k); with hold_last the bench sleeps after
        writing the last keystroke until the shell has printed EC-DONE
        and its prompt; keystroke number `twice` is written twice."""
        real_write = os.write
        fd = self.sess.child.child_fd
        keys = [0]
        last = k + 20          # echo_once types 20 warm-up keystrokes too

        def write(f, data):
            if f != fd or len(data) != 1:
                return real_write(f, data)
            keys[0] += 1
            if keys[0] == twice:
                real_write(f, data)
            if not hold_last or keys[0] != last:
                return real_write(f, data)
            os.unlink(self.mark)
            n = real_write(f, data)
            deadline = time.monotonic() + 20
            while not os.path.exists(self.mark) and \
                    time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertTrue(os.path.exists(self.mark), "no prompt")
            time.sleep(0.1)    # the prompt follows PROMPT_COMMAND
            return n
        with mock.patch.object(self.bench_mod.os, "write", write):
            r = self.bench.echo_once(self.sess, k)
        self.assertEqual(keys[0], last)
        return r

    def test_echo(self):
        p50, p99, n = self.echo(20)
        self.assertEqual(n, 20)
        self.assertIsInstance(p50, float)
        self.assertIsInstance(p99, float)

    def test_echo_and_done_in_one_read(self):
        # The old loop dropped the EC-DONE of the read that held the last
        # echo and failed here after 30 s: "no b'EC-DONE' within 30s
        # (read 0 bytes, last b'')".
        (_p50, _p99, n) = self.echo(20, hold_last=True)
        self.assertEqual(n, 20)
        # And the shell is at its prompt with nothing left over.
        self.sess.child.sendline("echo X''Y")
        self.sess.child.expect_exact("XY")
        self.sess.child.expect_exact(harness.PROMPT)

    def test_keystroke_delivered_twice(self):
        # head ends one keystroke early and the last one lands at the
        # prompt: the row says so instead of giving a figure.
        with self.assertRaisesRegex(AssertionError,
                                    r"is not the 40 keystrokes"):
            self.echo(20, twice=30)


if __name__ == "__main__":
    harness.main()
