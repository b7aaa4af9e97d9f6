"""Large input and output in a shell session, the way people use one.

Proves that a 10,000-line paste (about 60 characters a line) typed into
`cat > /tmp/paste-<uuid>` and ended with Ctrl-D arrives complete and in
order (sha256sum on the managed server equals the local one, line count
too), with `porthole` and with the AWS CLI; that Ctrl-C during a flood of
output (`yes`) gives the prompt back within a few seconds; and that the
shell has the client's real terminal size from the very first command,
before any resize.
"""

import hashlib
import os
import random
import string
import threading
import time
import uuid

import harness
import sessionkit

PASTE_LINES = 10000
# Printable characters only: no control characters the line discipline or
# the shell would act on.
ALPHABET = string.ascii_letters + string.digits + " .,:;_=+-/()[]{}<>@%"


def paste_text(seed):
    rnd = random.Random(seed)
    lines = []
    for i in range(PASTE_LINES):
        n = rnd.randint(50, 70)
        lines.append("%05d %s" % (i, "".join(rnd.choice(ALPHABET)
                                              for _ in range(n - 6))))
    return "\n".join(lines) + "\n"


class LargeIo(harness.ClusterTestCase):

    def paste(self, client):
        s = self.cluster.open_session(self.target, client=client)
        path = "/tmp/paste-%s" % uuid.uuid4()
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        text = paste_text(path)
        s.child.sendline("cat > %s" % path)
        time.sleep(0.5)
        data = text.encode()
        errors = []

        def writer():
            # A terminal delivers a paste in pieces; write it as fast as
            # the client takes it, while the main thread reads the echo.
            try:
                for i in range(0, len(data), 4096):
                    os.write(s.child.child_fd, data[i:i + 4096])
                os.write(s.child.child_fd, b"\x04")
                os.write(s.child.child_fd, b"echo PASTE''-DONE\r")
            except OSError as e:
                errors.append(e)

        t = threading.Thread(target=writer, daemon=True)
        started = time.monotonic()
        t.start()
        sessionkit.pump(s, "PASTE-DONE", 180)
        t.join(timeout=10)
        took = time.monotonic() - started
        self.assertEqual(errors, [])
        s.child.expect_exact(harness.PROMPT, timeout=30)
        want = hashlib.sha256(data).hexdigest()
        out = s.run("sha256sum %s; wc -l < %s" % (path, path), timeout=30)
        self.assertIn(want, out, "the pasted file differs (took %.1fs)"
                      % took)
        self.assertIn(str(PASTE_LINES), out.split())
        self.assertEqual(s.exit(), 0)
        return took

    def test_paste_10000_lines_porthole(self):
        self.paste("porthole")

    def test_paste_10000_lines_aws_cli(self):
        self.paste("aws")

    def flood_then_ctrl_c(self, client):
        s = self.cluster.open_session(self.target, client=client)
        s.child.sendline("yes")
        time.sleep(2.0)
        started = time.monotonic()
        s.child.send("\x03")
        sessionkit.pump(s, harness.PROMPT, 30)
        took = time.monotonic() - started
        self.assertLess(took, 5, "the prompt came back after %.1fs" % took)
        self.assertIn("alive", s.run("echo al''ive", timeout=30))
        self.assertEqual(s.exit(), 0)

    def test_ctrl_c_stops_a_flood_porthole(self):
        self.flood_then_ctrl_c("porthole")

    def test_ctrl_c_stops_a_flood_aws_cli(self):
        self.flood_then_ctrl_c("aws")

    def first_command_size(self, client, rows, cols):
        s = self.cluster.open_session(self.target, client=client,
                                      dimensions=(rows, cols), ready=False)
        s.wait_started()
        s.child.expect(r"[$#>] ", timeout=30)
        # The very first thing typed: no resize has happened.
        s.child.sendline("stty size; echo SIZE''-DONE")
        s.child.expect(r"(\d+) (\d+)\r?\nSIZE-DONE", timeout=20)
        self.assertEqual((int(s.child.match.group(1)),
                          int(s.child.match.group(2))), (rows, cols))
        s.child.sendline(harness.SET_PROMPT)
        s.child.expect_exact(harness.PROMPT, timeout=20)
        self.assertEqual(s.exit(), 0)

    def test_initial_size_porthole(self):
        self.first_command_size("porthole", 43, 137)

    def test_initial_size_aws_cli(self):
        self.first_command_size("aws", 19, 71)


if __name__ == "__main__":
    harness.main()
