"""The harness's sanitizer checks themselves: a small program built with
the same sanitizer flags as `make asan` commits a use-after-free, a leak,
undefined behaviour, or nothing; the harness must find a report for each
fault (and none for the clean one), fail a test after which one appeared,
and fail a Cluster's close. Without this, a harness that lost its reports
would let every sanitizer e2e run pass."""

import os
import shutil
import subprocess
import tempfile
import unittest

import harness

PROGRAMS = {
    "use_after_free": r"""
#include <stdlib.h>
int main(void) {
	char *volatile p = malloc(16);
	p[0] = 'x';
	free(p);
	return p[0] == 'x';
}
""",
    "leak": r"""
#include <stdlib.h>
void *volatile keep;
int main(void) {
	keep = malloc(64);
	keep = 0;
	return 0;
}
""",
    "undefined": r"""
#include <limits.h>
#include <stdio.h>
int main(int argc, char **argv) {
	volatile int big = INT_MAX;
	(void)argv;
	printf("%d\n", big + argc);
	return 0;
}
""",
    "clean": r"""
#include <stdlib.h>
int main(void) {
	free(malloc(8));
	return 0;
}
""",
}

# The flags of CMakeLists.txt's PORTHOLE_SANITIZE (with GCC it also links
# the runtimes statically, or some reports ignore log_path).
CFLAGS = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
          "-fno-sanitize-recover=undefined", "-O1", "-g"]


def compiler_flags(cc):
    v = subprocess.run([cc, "--version"], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL).stdout
    if "clang" in v:
        return CFLAGS
    return CFLAGS + ["-static-libasan", "-static-libubsan"]


class SanitizerReports(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="porthole-santest-")
        cc = os.environ.get("PORTHOLE_CC") or shutil.which("cc") or "gcc"
        flags = compiler_flags(cc)
        cls.exe = {}
        for name, src in PROGRAMS.items():
            c = os.path.join(cls.tmp, name + ".c")
            with open(c, "w") as f:
                f.write(src)
            exe = os.path.join(cls.tmp, name)
            p = subprocess.run([cc, *flags, "-o", exe, c],
                               capture_output=True, text=True, timeout=120,
                               stdin=subprocess.DEVNULL)
            if p.returncode != 0:
                raise AssertionError("%s cannot build %s: %s"
                                     % (cc, name, p.stderr))
            cls.exe[name] = exe

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        # The reports made here were expected: nothing to keep at exit.
        for p in list(harness._san_seen):
            try:
                os.unlink(p)
            except OSError:
                pass
        harness._san_seen.clear()

    def setUp(self):
        # Nothing left over from an earlier test.
        self.assertIsNone(harness.sanitizer_failure("before the test"))

    def run_program(self, name):
        return subprocess.run([self.exe[name]], capture_output=True,
                              text=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    def assertReport(self, name, needle):
        p = self.run_program(name)
        self.assertNotEqual(p.returncode, 0, "%s exited 0" % name)
        # Reports go to the harness's directory, not to stderr.
        self.assertNotIn(needle, p.stderr)
        msg = harness.sanitizer_failure("from %s" % name)
        self.assertIsNotNone(msg, "no sanitizer report for %s" % name)
        self.assertIn(needle, msg)
        # Seen reports are not reported twice.
        self.assertIsNone(harness.sanitizer_failure("again"))

    def test_use_after_free_is_reported(self):
        self.assertReport("use_after_free", "heap-use-after-free")

    def test_leak_at_exit_is_reported(self):
        self.assertReport("leak", "detected memory leaks")

    def test_undefined_behaviour_is_fatal_and_reported(self):
        self.assertReport("undefined", "runtime error")

    def test_clean_program_writes_nothing(self):
        p = self.run_program("clean")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIsNone(harness.sanitizer_failure("from clean"))

    def test_report_fails_the_test_that_caused_it(self):
        exe = self.exe["use_after_free"]

        class Inner(harness.ClusterTestCase):
            def test_crashes_a_child(self):
                subprocess.run([exe], capture_output=True, timeout=60,
                               stdin=subprocess.DEVNULL)

        result = unittest.TestResult()
        Inner("test_crashes_a_child").run(result)
        self.assertEqual(len(result.failures), 1, result.errors)
        self.assertIn("heap-use-after-free", result.failures[0][1])

    def test_report_fails_cluster_close(self):
        self.run_program("leak")
        c = harness.Cluster("santest")
        with self.assertRaises(AssertionError) as cm:
            c.close()
        self.assertIn("detected memory leaks", str(cm.exception))


if __name__ == "__main__":
    harness.main()
