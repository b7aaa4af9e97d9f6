"""Helpers of the console's e2e programs (tests/e2e/test_console*.py):
console users (IAM users with login profiles and policies, made with the
AWS CLI) and one browser scenario run as `node tests/console/run.mjs
NAME` (playwright-core + Debian's chromium, tests/console/*.mjs).

Environment:
  PORTHOLE_CONSOLE_ARTIFACTS  where screenshots go (default:
                              BUILD/test-artifacts/console, BUILD being
                              PORTHOLE_BIN's parent)
  PORTHOLE_CHROMIUM           the browser (default /usr/bin/chromium)
"""

import json
import os
import shutil
import subprocess
import tempfile
import threading

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_MJS = os.path.join(HERE, "run.mjs")
BROWSER_TIMEOUT = 240       # seconds for one scenario, browser included

ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}

# Sees the fleet and the sessions, may start none and read no document.
READ_ONLY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Action": ["ssm:DescribeInstanceInformation",
                   "ssm:ListTagsForResource", "ssm:DescribeSessions"],
        "Resource": "*",
    }],
}


def artifacts_dir():
    d = os.environ.get("PORTHOLE_CONSOLE_ARTIFACTS") or os.path.join(
        os.path.dirname(harness.porthole_bin()), "test-artifacts", "console")
    os.makedirs(d, exist_ok=True)
    return d


def console_dir():
    return os.path.join(os.path.dirname(harness.porthole_bin()), "console")


def require_console():
    """The bundle, node and the browser must be there; says which is
    missing (the CMake `console` target builds the bundle)."""
    missing = []
    if not os.path.isfile(os.path.join(console_dir(), "app.js")):
        missing.append("%s/app.js (cmake --build BUILD --target console)"
                       % console_dir())
    if shutil.which("node") is None:
        missing.append("node (scripts/deps.sh)")
    chromium = os.environ.get("PORTHOLE_CHROMIUM", "/usr/bin/chromium")
    if not os.access(chromium, os.X_OK):
        missing.append("%s (scripts/deps.sh)" % chromium)
    pw = os.path.join(harness.REPO, "console", "node_modules",
                      "playwright-core")
    if not os.path.isdir(pw):
        missing.append("%s (npm ci in console/)" % pw)
    if missing:
        raise RuntimeError("the console tests need: " + ", ".join(missing))


def add_console_user(cluster, name, password, policy):
    """An IAM user with a console password and one inline policy."""
    cluster.aws("iam", "create-user", "--user-name", name)
    cluster.aws("iam", "put-user-policy", "--user-name", name,
                "--policy-name", "console-test",
                "--policy-document", json.dumps(policy))
    cluster.aws("iam", "create-login-profile", "--user-name", name,
                "--password", password)
    return cluster.aws("iam", "get-user", "--user-name",
                       name)["User"]["Arn"]


class BrowserFailure(AssertionError):
    pass


class _Signals:
    """Answers a scenario's askDriver(NAME): runs handlers[NAME]() when
    NAME.req appears in a fresh directory and writes its answer to
    NAME.done."""

    def __init__(self, handlers):
        self.dir = tempfile.mkdtemp(prefix="porthole-console-signal-")
        self.handlers = handlers
        self.stop = threading.Event()
        self.errors = []
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        done = set()
        # Bounded: a scenario never runs longer than BROWSER_TIMEOUT.
        for _ in range(int(BROWSER_TIMEOUT / 0.1) + 600):
            if self.stop.wait(0.1):
                return
            for name, fn in self.handlers.items():
                if name in done or not os.path.exists(
                        os.path.join(self.dir, name + ".req")):
                    continue
                done.add(name)
                try:
                    answer = str(fn())
                except Exception as e:  # reported by run_scenario
                    self.errors.append("%s: %r" % (name, e))
                    answer = "error"
                with open(os.path.join(self.dir, name + ".done"),
                          "w") as f:
                    f.write(answer)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


def run_scenario(cluster, name, params, timeout=BROWSER_TIMEOUT, url=None,
                 handlers=None):
    """Runs one scenario; returns its RESULT object, or raises with the
    browser's account of the failure (message, page text, page log, the
    screenshot's path). url: where the browser goes (default the
    cluster's endpoint); handlers: {NAME: fn} run when the scenario asks
    (askDriver in lib.mjs)."""
    signals = _Signals(handlers) if handlers else None
    try:
        if signals is not None:
            params = dict(params, signalDir=signals.dir)
        r = _run(cluster, name, params, timeout, url or cluster.endpoint)
    finally:
        if signals is not None:
            signals.close()
    if signals is not None and signals.errors:
        raise BrowserFailure("%s: driver handlers failed: %s"
                             % (name, signals.errors))
    return r


def _run(cluster, name, params, timeout, url):
    env = dict(os.environ)
    env.update({
        "PORTHOLE_CONSOLE_URL": url,
        "PORTHOLE_CONSOLE_ARTIFACTS": artifacts_dir(),
        "PORTHOLE_CONSOLE_PARAMS": json.dumps(params),
        "PORTHOLE_CONSOLE_TIMEOUT": str(timeout),
    })
    # A process group of its own, so a hung browser goes with node.
    p = subprocess.Popen(["node", RUN_MJS, name], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        out, err = p.communicate()
        raise BrowserFailure("%s: node did not finish in %ss\n%s%s"
                             % (name, timeout + 30, out, err))
    finally:
        try:
            os.killpg(p.pid, 9)
        except ProcessLookupError:
            pass
    for line in out.splitlines():
        if line.startswith("RESULT ") and p.returncode == 0:
            return json.loads(line[len("RESULT "):])
    raise BrowserFailure("browser scenario %s failed (exit %s):\n%s\n%s"
                         % (name, p.returncode, out[-4000:], err[-12000:]))
