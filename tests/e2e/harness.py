"""Shared machinery for porthole's end-to-end tests.

A `Cluster` is one portholed (init + serve) in a fresh temporary directory,
listening on a free loopback port, with helpers to drive it the way a user
does: the AWS CLI (`aws ...`), boto3, `porthole-agent register` + `run`, and
interactive sessions through a pseudo-terminal (pexpect) with either
`aws ssm start-session` (which execs our `session-manager-plugin`) or
`porthole start-session`.

Every wait is bounded in time and in iterations. Teardown stops every
process it started (SIGTERM, then SIGKILL after a bound) and, when a test
failed, prints the tail of the server and agent logs and of the session
transcripts to stderr so `ctest --output-on-failure` shows them.

Sanitizers: every process started from here (directly or through the AWS
CLI) gets ASAN_OPTIONS, UBSAN_OPTIONS and LSAN_OPTIONS that send reports
to files in one directory per test program instead of stderr. When the
binaries are built with ASan+UBSan (`make test-asan-e2e`), a test after
which a report appeared fails and prints it; a class whose teardown (which
stops its processes and so runs LeakSanitizer) leaves one fails too.
Binaries built without sanitizers ignore the variables.

Environment:
  PORTHOLE_BIN       directory with portholed, porthole-agent, porthole and
                     the session-manager-plugin symlink (default: build/bin)
  PORTHOLE_E2E_KEEP  if set, the temporary directory is kept for inspection
  ASAN_OPTIONS ...   a caller's options are kept and win over ours, except
                     log_path (e.g. ASAN_OPTIONS=detect_leaks=0)
"""

import atexit
import base64
import configparser
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import uuid

import boto3
import botocore.config
import pexpect

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# The test process itself must not pick up a developer's AWS settings:
# boto3 clients made here get every setting explicitly.
for _k in list(os.environ):
    if _k.startswith("AWS_"):
        del os.environ[_k]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

REGION = "us-east-1"
# The instance role of test activations: what the seed's Step 5 "limited"
# role holds. CreateActivation refuses a role that does not exist or does
# not trust ssm.amazonaws.com, so Cluster.ensure_role makes it (once per
# Cluster, through `aws iam`) before its first activation.
TEST_ROLE = "porthole-test-role"
SSM_TRUST_POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow",
                   "Principal": {"Service": "ssm.amazonaws.com"},
                   "Action": "sts:AssumeRole"}]})
SSM_CORE_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
KMS_DECRYPT_POLICY_NAME = "porthole-kms-decrypt"
KMS_DECRYPT_POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt",
                   "Resource": "*"}]})
PROMPT = "PH_E2E> "
# Typed as two quoted halves so the echo of the command line never
# matches the prompt itself.
SET_PROMPT = "PS1='PH_''E2E> '"
INSTANCE_RE = re.compile(r"\bmi-[0-9a-f]{17}\b")
ANSI_RE = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78MNODEHc])")

SERVER_START_TIMEOUT = 20
AGENT_ONLINE_TIMEOUT = 20
STOP_GRACE = 5


def porthole_bin():
    b = os.environ.get("PORTHOLE_BIN") or os.path.join(REPO, "build", "bin")
    return os.path.abspath(b)


def binary(name):
    return os.path.join(porthole_bin(), name)


# ---- sanitizer reports ----------------------------------------------------

# One directory per test program, so programs can run in parallel. Reports
# are files named report.<pid>; a process killed with SIGKILL writes none
# (so leaks are checked only on exits we cause with SIGTERM or that
# happen by themselves). UBSan findings are fatal (the build also uses
# -fno-sanitize-recover) so a test cannot pass over one.
SANITIZER_DIR = tempfile.mkdtemp(prefix="porthole-sanitizer-")
_SAN_OURS = {
    "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:abort_on_error=0:"
                    "color=never",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:color=never",
    "LSAN_OPTIONS": "color=never",
}
for _k, _v in _SAN_OURS.items():
    _mine = os.environ.get(_k, "")
    os.environ[_k] = ":".join(x for x in (
        _v, _mine, "log_path=" + os.path.join(SANITIZER_DIR, "report"))
        if x)
_san_seen = {}


def sanitizer_reports():
    """Report files written or grown since the last call, as
    [(path, text)]."""
    out = []
    try:
        names = sorted(os.listdir(SANITIZER_DIR))
    except OSError:
        return out
    for n in names:
        p = os.path.join(SANITIZER_DIR, n)
        try:
            size = os.path.getsize(p)
        except OSError:
            continue
        if size == 0 or _san_seen.get(p) == size:
            continue
        _san_seen[p] = size
        out.append((p, head(p, 300)))
    return out


def head(path, lines):
    """The first lines of a file (a report's first error matters most)."""
    try:
        with open(path, "r", errors="replace") as f:
            data = f.readlines()
    except OSError as e:
        return "(cannot read %s: %s)\n" % (path, e)
    more = len(data) - lines
    return "".join(data[:lines]) + (
        "... %d more lines in %s\n" % (more, path) if more > 0 else "")


def sanitizer_failure(where):
    """None, or an assertion message quoting every new sanitizer
    report."""
    reports = sanitizer_reports()
    if not reports:
        return None
    msg = ["%d sanitizer report(s) %s:" % (len(reports), where)]
    for p, text in reports:
        msg.append("---- %s ----\n%s" % (p, text))
    return "\n".join(msg)


def _sanitizer_dir_cleanup():
    if _san_seen or os.environ.get("PORTHOLE_E2E_KEEP"):
        sys.stderr.write("sanitizer reports kept in %s\n" % SANITIZER_DIR)
    else:
        shutil.rmtree(SANITIZER_DIR, ignore_errors=True)


atexit.register(_sanitizer_dir_cleanup)


def require_binaries(*names):
    missing = [n for n in names if not os.access(binary(n), os.X_OK)]
    if missing:
        raise RuntimeError("missing binaries in %s: %s (set PORTHOLE_BIN)"
                           % (porthole_bin(), ", ".join(missing)))


def strip_ansi(s):
    return ANSI_RE.sub("", s).replace("\r", "")


def printable(s, limit=6000):
    """The tail of a transcript with control characters made visible."""
    s = s[-limit:]
    out = []
    for ch in s:
        if ch == "\n" or ch == "\t" or " " <= ch < "\x7f" or ord(ch) > 0x9f:
            out.append(ch)
        elif ch == "\r":
            continue
        else:
            out.append("\\x%02x" % ord(ch))
    return "".join(out)


class Fatal(AssertionError):
    """Raised by a wait_for predicate to stop waiting at once."""


def wait_for(pred, timeout, interval=0.2, what="a condition"):
    """Call pred() until it returns a true value; bounded in time and count.
    Exceptions from pred count as "not yet" (the last one is reported),
    except Fatal, which ends the wait."""
    deadline = time.monotonic() + timeout
    last_exc = None
    for _ in range(int(timeout / interval) + 2):
        try:
            v = pred()
            if v:
                return v
        except Fatal:
            raise
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last_exc = e
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    msg = "timed out after %.0fs waiting for %s" % (timeout, what)
    if last_exc is not None:
        msg += " (last error: %r)" % (last_exc,)
    raise TimeoutError(msg)


def free_port(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tail(path, lines=150):
    try:
        with open(path, "r", errors="replace") as f:
            data = f.readlines()
    except OSError as e:
        return "(cannot read %s: %s)\n" % (path, e)
    return "".join(data[-lines:])


def file_mode(path):
    return os.stat(path).st_mode & 0o777


class CommandError(AssertionError):
    def __init__(self, argv, proc):
        self.argv = argv
        self.proc = proc
        super().__init__("%s exited %s\nstdout: %s\nstderr: %s" % (
            " ".join(argv), proc.returncode, proc.stdout.strip()[-2000:],
            proc.stderr.strip()[-2000:]))


class Process:
    """A long-running child (portholed serve, porthole-agent run) whose
    stdout and stderr go to a log file."""

    def __init__(self, name, argv, log_path, env):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self._log.write(("==> %s\n" % " ".join(argv)).encode())
        self._log.flush()
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                      stdout=self._log,
                                      stderr=subprocess.STDOUT, env=env)
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, grace=STOP_GRACE):
        """SIGTERM, then SIGKILL after `grace` seconds. Returns the exit
        status (negative for a signal, like Popen)."""
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._log.write(b"==> did not stop on SIGTERM; SIGKILL\n")
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=grace)
        self._log.flush()
        return self.popen.returncode

    def kill(self):
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(timeout=STOP_GRACE)

    def close(self):
        self.stop()
        self._log.close()

    def log(self):
        self._log.flush()
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Agent:
    """One porthole-agent with its own state directory."""

    def __init__(self, cluster, label, binary_path=None):
        self.cluster = cluster
        self.label = label
        # Another agent binary than the build's (a copy an update test
        # may replace); None: binary("porthole-agent").
        self.binary_path = binary_path
        self.state_dir = os.path.join(cluster.tmp, "agent-" + label)
        self.log_path = os.path.join(cluster.tmp, "agent-%s.log" % label)
        self.instance_id = None
        self.proc = None
        self.register_output = ""

    def register(self, activation_id, code, name=None, check=True,
                 timeout=60):
        """Run `porthole-agent register`. Returns the CompletedProcess;
        with check, fails unless it exited 0 and named an instance id."""
        argv = [self.binary(), "register",
                "--endpoint", self.cluster.endpoint,
                "--ca", self.cluster.ca,
                "--code", code, "--id", activation_id,
                "--state-dir", self.state_dir]
        if name:
            argv += ["--name", name]
        p = subprocess.run(argv, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL,
                           env=self.cluster.env)
        self.register_output = p.stdout + p.stderr
        with open(self.log_path, "a") as f:
            f.write("==> register (exit %d)\n%s%s" % (p.returncode,
                                                     p.stdout, p.stderr))
        if check:
            if p.returncode != 0:
                raise CommandError(argv, p)
            m = re.search(r"Registered as (mi-[0-9a-f]{17})", p.stdout)
            if m is None:
                m = INSTANCE_RE.search(p.stdout + p.stderr)
            if m is None:
                raise AssertionError("register printed no instance id: %r"
                                     % (p.stdout + p.stderr))
            self.instance_id = m.group(1) if m.lastindex else m.group(0)
        return p

    def start(self):
        if self.proc is not None and self.proc.alive():
            raise AssertionError("agent %s already running" % self.label)
        self.proc = Process("agent-" + self.label,
                            [self.binary(), "run",
                             "--state-dir", self.state_dir],
                            self.log_path, self.cluster.env)
        self.cluster.processes.append(self.proc)
        return self.proc

    def binary(self):
        return self.binary_path or binary("porthole-agent")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def detached_pids(self):
        """Processes an agent update started outside the harness's
        children (its watchdog, an agent it restarted after a roll-back):
        the pids their files in the state directory name, if those still
        run for this state directory."""
        out = []
        for name in ("update-watchdog.pid", "update-restarted.pid"):
            try:
                with open(os.path.join(self.state_dir, name)) as f:
                    pid = int(f.read().strip())
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    cmd = f.read()
            except (OSError, ValueError):
                continue
            if self.state_dir.encode() in cmd:
                out.append(pid)
        return out

    def kill_detached(self):
        for pid in self.detached_pids():
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                deadline = time.time() + STOP_GRACE
                while time.time() < deadline and \
                        os.path.exists("/proc/%d" % pid):
                    time.sleep(0.1)
                if not os.path.exists("/proc/%d" % pid):
                    break

    def state_files(self):
        out = []
        for root, _dirs, files in os.walk(self.state_dir):
            for f in files:
                out.append(os.path.join(root, f))
        return sorted(out)

    def find_state_file(self, marker):
        """The first state file containing `marker` (e.g. a PEM header)."""
        for p in self.state_files():
            try:
                with open(p, "rb") as f:
                    if marker.encode() in f.read(1 << 20):
                        return p
            except OSError:
                pass
        return None


class Cluster:
    """portholed in a temporary directory plus the agents and sessions a
    test starts. Use as a context manager or call start()/close()."""

    # The address portholed listens on and the endpoint names (an IPv6
    # literal is put in brackets), and more `serve` arguments (another
    # --listen); subclasses change them.
    listen_host = "127.0.0.1"
    serve_args = ()

    def __init__(self, name="e2e", region=REGION):
        self.name = name
        self.region = region
        self.tmp = None
        self.processes = []
        self.agents = []
        self.sessions = []
        self.server = None
        self.failed = False
        self.init_output = ""
        self.roles = set()     # instance roles ensure_role made

    # ---- lifecycle -------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close(dump=True, raise_reports=False)
            raise
        return self

    def __exit__(self, et, ev, tb):
        self.close(dump=et is not None or self.failed,
                   raise_reports=et is None)
        return False

    def start(self):
        require_binaries("portholed", "porthole-agent", "porthole",
                         "session-manager-plugin")
        self.tmp = tempfile.mkdtemp(prefix="porthole-%s-" % self.name)
        self.data_dir = os.path.join(self.tmp, "server")
        self.home = os.path.join(self.tmp, "home")
        os.mkdir(self.home, 0o700)
        self.aws_config = os.path.join(self.tmp, "aws-config")
        with open(self.aws_config, "w"):
            pass
        self.port = free_port(self.listen_host)
        self.endpoint = "https://%s:%d" % (self.url_host, self.port)
        self.server_log = os.path.join(self.tmp, "portholed.log")
        p = self.init()
        if p.returncode != 0:
            raise CommandError(p.args, p)
        self.ca = os.path.join(self.data_dir, "ca.pem")
        self.credentials_file = os.path.join(self.data_dir,
                                             "admin.credentials")
        self._read_credentials()
        self.env = self.make_env()
        self.start_server()

    def init(self, *extra, data_dir=None):
        argv = [binary("portholed"), "init",
                "--data-dir", data_dir or self.data_dir,
                "--region", self.region, *extra]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        self.init_output = p.stdout + p.stderr
        with open(self.server_log, "a") as f:
            f.write("==> %s (exit %d)\n%s%s" % (" ".join(argv), p.returncode,
                                               p.stdout, p.stderr))
        return p

    def _read_credentials(self):
        cp = configparser.ConfigParser()
        cp.read(self.credentials_file)
        if "porthole" not in cp:
            raise AssertionError("%s has no [porthole] profile"
                                 % self.credentials_file)
        self.access_key = cp["porthole"]["aws_access_key_id"]
        self.secret_key = cp["porthole"]["aws_secret_access_key"]

    def make_env(self, **overrides):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_")}
        env.update({
            "AWS_SHARED_CREDENTIALS_FILE": self.credentials_file,
            "AWS_PROFILE": "porthole",
            "AWS_CA_BUNDLE": self.ca,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_CONFIG_FILE": self.aws_config,
            "AWS_MAX_ATTEMPTS": "2",
            "AWS_PAGER": "",
            "HOME": self.home,
            "PATH": porthole_bin() + os.pathsep + os.environ.get(
                "PATH", "/usr/local/bin:/usr/bin:/bin"),
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
            "PYTHONWARNINGS": "ignore",
        })
        # Conformance runs: PORTHOLE_E2E_PLUGIN_DIR names a directory with
        # another session-manager-plugin (e.g. AWS's, built from its public
        # source) that the AWS CLI then runs instead of ours. That plugin's
        # WebSocket trusts SSL_CERT_FILE, not AWS_CA_BUNDLE (spec 2.1).
        plugin_dir = os.environ.get("PORTHOLE_E2E_PLUGIN_DIR")
        if plugin_dir:
            env["PATH"] = plugin_dir + os.pathsep + env["PATH"]
            env["SSL_CERT_FILE"] = self.ca
        for k, v in overrides.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    @property
    def url_host(self):
        h = self.listen_host
        return "[%s]" % h if ":" in h else h

    def start_server(self, timeout=SERVER_START_TIMEOUT):
        self.server = Process("portholed",
                              [binary("portholed"), "serve",
                               "--data-dir", self.data_dir,
                               "--listen", "%s:%d" % (self.url_host,
                                                      self.port),
                               *self.serve_args],
                              self.server_log, self.env)
        self.processes.append(self.server)

        def ready():
            if not self.server.alive():
                raise AssertionError("portholed exited with %s"
                                     % self.server.popen.returncode)
            self.tls_probe()
            self.ssm().describe_activations()
            return True

        deadline = time.monotonic() + timeout
        last = None
        for _ in range(int(timeout / 0.1) + 2):
            try:
                if ready():
                    return
            except AssertionError:
                raise AssertionError("portholed exited early (status %s)\n%s"
                                     % (self.server.popen.returncode,
                                        tail(self.server_log)))
            except Exception as e:  # noqa: BLE001 - not up yet
                last = e
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        raise TimeoutError("portholed not serving on %s after %ds: %r"
                           % (self.endpoint, timeout, last))

    def stop_server(self):
        """SIGTERM the server (SIGKILL after a bound); returns its exit
        status."""
        rc = self.server.stop()
        self.server.close()
        self.processes.remove(self.server)
        return rc

    def restart_server(self):
        """Stop the server and start it again on the same port and data
        directory; returns the exit status of the stopped one."""
        rc = self.stop_server()
        self.start_server()
        return rc

    def tls_probe(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        with socket.create_connection((self.listen_host, self.port),
                                      timeout=3) as s:
            with ctx.wrap_socket(s, server_hostname=self.listen_host) as t:
                return t.version()

    def close(self, dump=False, raise_reports=True):
        """Stop everything; then fail (AssertionError) if a process wrote
        a sanitizer report, unless raise_reports is false (another error
        is on its way), in which case the reports go to stderr."""
        for s in list(self.sessions):
            s.close()
        for p in reversed(self.processes):
            try:
                p.close()
            except Exception as e:  # noqa: BLE001 - keep tearing down
                sys.stderr.write("teardown %s: %r\n" % (p.name, e))
        for a in self.agents:
            a.kill_detached()
        # After the stops: LeakSanitizer reports at exit.
        reports = sanitizer_failure("while %s ran or stopped" % self.name)
        if dump or reports:
            self.dump_logs()
        self.release_storage()
        if self.tmp and not os.environ.get("PORTHOLE_E2E_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp:
            sys.stderr.write("kept %s\n" % self.tmp)
        if reports and raise_reports:
            raise AssertionError(reports)
        if reports:
            sys.stderr.write(reports + "\n")

    def release_storage(self):
        """After the processes stopped, before the temporary directory
        goes: for subclasses that mounted something inside it."""

    def dump_logs(self):
        w = sys.stderr.write
        w("\n======== porthole e2e logs (%s, %s) ========\n"
          % (self.name, self.tmp))
        if self.tmp and os.path.exists(self.server_log):
            w("---- portholed (%s) ----\n" % self.server_log)
            w(tail(self.server_log, 200))
        for a in self.agents:
            if os.path.exists(a.log_path):
                w("---- agent %s %s (%s) ----\n" % (a.label, a.instance_id,
                                                   a.log_path))
                w(tail(a.log_path, 120))
        for s in self.sessions:
            w("---- session %s via %s (%s) ----\n" % (s.session_id, s.client,
                                                     s.describe_exit()))
            w(printable(s.transcript.getvalue()))
            w("\n")
        w("======== end of logs ========\n")
        sys.stderr.flush()

    # ---- API access ------------------------------------------------------

    def aws(self, *args, check=True, timeout=60, env=None, output="json",
            wrap=None):
        """Run the AWS CLI with the cluster's environment; returns parsed
        JSON (check=True) or the CompletedProcess (check=False). `wrap`
        turns the command line into the one to run (in a namespace...)."""
        argv = ["aws", *args, "--output", output]
        if wrap is not None:
            argv = wrap(argv)
        p = subprocess.run(argv, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL,
                           env=env or self.env)
        if not check:
            return p
        if p.returncode != 0:
            raise CommandError(argv, p)
        if output != "json":
            return p.stdout
        return json.loads(p.stdout) if p.stdout.strip() else {}

    def session_boto(self, secret=None, access_key=None):
        return boto3.session.Session(
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret or self.secret_key,
            region_name=self.region)

    def client(self, service="ssm", validate=True, retries=1, **kw):
        cfg = botocore.config.Config(
            retries={"max_attempts": retries, "mode": "standard"},
            connect_timeout=5, read_timeout=30,
            parameter_validation=validate)
        return self.session_boto(**kw).client(
            service, endpoint_url=self.endpoint, verify=self.ca, config=cfg)

    def ssm(self, **kw):
        return self.client("ssm", **kw)

    # ---- enrolment -------------------------------------------------------

    def ensure_role(self, role=TEST_ROLE):
        """Make `role` an instance role (trusting ssm.amazonaws.com, with
        AmazonSSMManagedInstanceCore attached and an inline kms:Decrypt
        policy) unless this Cluster already did; one that exists already
        (a restarted server, another test) is left as it is."""
        if role in self.roles:
            return
        p = self.aws("iam", "create-role", "--role-name", role,
                     "--assume-role-policy-document", SSM_TRUST_POLICY,
                     "--description", "porthole e2e instance role",
                     check=False)
        if p.returncode == 0:
            self.aws("iam", "attach-role-policy", "--role-name", role,
                     "--policy-arn", SSM_CORE_POLICY_ARN)
            self.aws("iam", "put-role-policy", "--role-name", role,
                     "--policy-name", KMS_DECRYPT_POLICY_NAME,
                     "--policy-document", KMS_DECRYPT_POLICY)
        elif "EntityAlreadyExists" not in p.stderr:
            raise CommandError(p.args, p)
        self.roles.add(role)

    def create_activation(self, limit=1, role=TEST_ROLE, name=None,
                          expiration=None):
        self.ensure_role(role)
        args = ["ssm", "create-activation", "--iam-role", role,
                "--registration-limit", str(limit)]
        if name:
            args += ["--default-instance-name", name]
        if expiration:
            args += ["--expiration-date", expiration]
        out = self.aws(*args)
        return out["ActivationId"], out["ActivationCode"]

    def new_agent(self, label, binary_path=None):
        a = Agent(self, label, binary_path)
        self.agents.append(a)
        return a

    def add_agent(self, label="main", name=None, start=True, wait=True,
                  binary_path=None):
        """create-activation, register, run, and wait until Online."""
        act_id, code = self.create_activation(limit=1)
        a = self.new_agent(label, binary_path)
        a.register(act_id, code, name=name or "e2e-" + label)
        if start:
            a.start()
            if wait:
                self.wait_online(a.instance_id, agent=a)
        return a

    def instance_info(self, instance_id):
        r = self.ssm().describe_instance_information(
            Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])
        lst = r.get("InstanceInformationList", [])
        return lst[0] if lst else None

    def wait_online(self, instance_id, agent=None,
                    timeout=AGENT_ONLINE_TIMEOUT):
        def online():
            if agent is not None and agent.proc and not agent.proc.alive():
                raise Fatal("agent exited with %s"
                            % agent.proc.popen.returncode)
            info = self.instance_info(instance_id)
            return info if info and info.get("PingStatus") == "Online" \
                else None
        try:
            return wait_for(online, timeout, 0.2,
                            "%s to be Online" % instance_id)
        except (Fatal, TimeoutError) as e:
            if agent is None:
                raise
            raise AssertionError("%s\nagent log:\n%s"
                                 % (e, tail(agent.log_path, 40))) from None

    def session_record(self, session_id):
        """The DescribeSessions record of a session, Active or History."""
        c = self.ssm()
        for state in ("Active", "History"):
            r = c.describe_sessions(
                State=state,
                Filters=[{"key": "SessionId", "value": session_id}])
            for s in r.get("Sessions", []):
                if s.get("SessionId") == session_id:
                    return state, s
        return None, None

    def wait_session_status(self, session_id, statuses, timeout=15):
        def done():
            state, rec = self.session_record(session_id)
            return (state, rec) if rec and rec.get("Status") in statuses \
                else None
        try:
            return wait_for(done, timeout, 0.3,
                            "session %s to be %s" % (session_id, statuses))
        except TimeoutError as e:
            state, rec = self.session_record(session_id)
            raise AssertionError("%s; last record: %s %s"
                                 % (e, state, rec)) from None

    # ---- interactive sessions -------------------------------------------

    def open_session(self, target, client="aws", dimensions=(24, 80),
                     extra_args=(), env=None, ready=True):
        s = Session(self, target, client, dimensions, extra_args, env)
        self.sessions.append(s)
        if ready:
            s.wait_ready()
        return s


class Session:
    """An interactive session driven through a pseudo-terminal."""

    def __init__(self, cluster, target, client="aws", dimensions=(24, 80),
                 extra_args=(), env=None, timeout=20):
        self.cluster = cluster
        self.target = target
        self.client = client
        self.session_id = None
        self.transcript = io.StringIO()
        if client == "aws":
            cmd = "aws"
            args = ["ssm", "start-session", "--target", target]
        elif client == "porthole":
            cmd = binary("porthole")
            args = ["start-session", "--target", target]
        else:
            raise ValueError(client)
        args += list(extra_args)
        self.argv = [cmd] + args
        self.child = pexpect.spawn(cmd, args, env=env or cluster.env,
                                   dimensions=dimensions, encoding="utf-8",
                                   codec_errors="replace", timeout=timeout,
                                   cwd=cluster.home)
        self.child.logfile_read = self.transcript
        self.child.delaybeforesend = 0.02

    def expect(self, pattern, timeout=20):
        return self.child.expect(pattern, timeout=timeout)

    def wait_started(self, timeout=30):
        self.child.expect(r"Starting session with SessionId: ([^\s]+)\r?\n",
                          timeout=timeout)
        self.session_id = self.child.match.group(1)
        return self.session_id

    def wait_ready(self, timeout=30):
        """Wait for the session banner and the shell's first prompt, then
        set a prompt we can match exactly."""
        self.wait_started(timeout)
        self.child.expect(r"[$#>] ", timeout=timeout)
        self.child.sendline(SET_PROMPT)
        self.child.expect_exact(PROMPT, timeout=timeout)
        return self

    def run(self, command, timeout=15):
        """Type a command line; return its output (without the echoed
        command line and the next prompt), ANSI sequences removed."""
        self.child.sendline(command)
        self.child.expect_exact(PROMPT, timeout=timeout)
        out = strip_ansi(self.child.before)
        nl = out.find("\n")
        return out[nl + 1:] if nl >= 0 else ""

    def exit(self, timeout=20):
        """Type `exit`; wait for the client to print its goodbye and exit.
        Returns the client's exit status."""
        self.child.sendline("exit")
        self.child.expect(r"Exiting session with sessionId: ([^\s]+)\.",
                          timeout=timeout)
        return self.wait_exit(timeout)

    def wait_exit(self, timeout=30):
        self.child.expect(pexpect.EOF, timeout=timeout)
        self.child.close()
        return self.exit_status()

    def exit_status(self):
        if self.child.isalive():
            return None
        if self.child.exitstatus is not None:
            return self.child.exitstatus
        return -self.child.signalstatus if self.child.signalstatus else None

    def describe_exit(self):
        if self.child.isalive():
            return "still running"
        return "exit status %s" % self.exit_status()

    def output(self):
        return strip_ansi(self.transcript.getvalue())

    def close(self):
        if self.child.isalive():
            self.child.terminate(force=True)
        try:
            self.child.close(force=True)
        except Exception:  # noqa: BLE001 - best effort
            pass


def stty_around_session(cluster, command, timeout=30):
    """Run `command` (a session client) from a local /bin/sh in a
    pseudo-terminal, type whoami and exit in the session, and return the
    local terminal's `stty -g` from before and after."""
    sh = pexpect.spawn("/bin/sh", env=cluster.make_env(PS1="LOCAL$ "),
                       encoding="utf-8", codec_errors="replace",
                       timeout=timeout, dimensions=(24, 80),
                       cwd=cluster.home)
    transcript = io.StringIO()
    sh.logfile_read = transcript
    try:
        sh.expect_exact("LOCAL$ ")
        sh.sendline("stty -g; echo '=''='")
        sh.expect(r"\n([0-9a-f:]+)\r?\n==")
        before = sh.match.group(1)
        sh.sendline(command)
        sh.expect(r"Starting session with SessionId: ")
        sh.expect(r"[$#] ")
        sh.sendline("whoami")
        sh.expect("ssm-user")
        sh.sendline("exit")
        sh.expect("Exiting session with sessionId")
        sh.expect_exact("LOCAL$ ")
        sh.sendline("stty -g; echo '=''='")
        sh.expect(r"\n([0-9a-f:]+)\r?\n==")
        after = sh.match.group(1)
        sh.sendline("exit")
        sh.expect(pexpect.EOF)
        return before, after
    except (pexpect.TIMEOUT, pexpect.EOF):
        sys.stderr.write("---- local shell ----\n%s\n"
                         % printable(transcript.getvalue()))
        raise
    finally:
        sh.close(force=True)


def run_checked(case, result, run, on_failure=None):
    """A TestCase's run(result) through run, failed as well by a sanitizer
    report written during it (a crash, or a leak at a process's exit),
    whatever it asserted. When it fails, case.cluster (if any) is marked
    failed, so that its close dumps the logs, and on_failure is called."""
    if result is None:
        return run(result)
    before = len(result.failures) + len(result.errors)
    out = run(result)
    reports = sanitizer_failure("during %s" % case.id())
    if reports:
        try:
            raise AssertionError(reports)
        except AssertionError:
            result.addFailure(case, sys.exc_info())
    if len(result.failures) + len(result.errors) > before and \
            case.cluster is not None:
        case.cluster.failed = True
        if on_failure is not None:
            on_failure()
    return out


class ClusterTestCase(unittest.TestCase):
    """One Cluster (and, if `with_agent`, one Online agent) per test class.
    A failing test makes the class's teardown print the logs."""

    with_agent = True
    cluster = None
    agent = None

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(cls.__name__)
        try:
            cls.cluster.start()
            if cls.with_agent:
                cls.agent = cls.cluster.add_agent("main")
        except BaseException:
            cls.cluster.close(dump=True, raise_reports=False)
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.cluster is not None:
            cls.cluster.close(dump=cls.cluster.failed)

    def run(self, result=None):
        return run_checked(self, result, super().run)

    @property
    def target(self):
        return self.agent.instance_id

    def assertClientError(self, codes, fn, *args, **kw):
        """fn(*args, **kw) must raise botocore ClientError with one of
        `codes`; returns the error."""
        import botocore.exceptions
        if isinstance(codes, str):
            codes = (codes,)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            fn(*args, **kw)
        code = cm.exception.response.get("Error", {}).get("Code")
        self.assertIn(code, codes, "error %s: %s" % (
            code, cm.exception.response.get("Error")))
        return cm.exception


# ---- a small raw WebSocket client (test code only) ----------------------

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class RawWebSocket:
    """Just enough of RFC 6455 to send well-formed and malformed frames to
    the gateway and see whether it closes the connection."""

    def __init__(self, port, path, ca, cert=None, key=None, host="127.0.0.1",
                 timeout=10):
        ctx = ssl.create_default_context(cafile=ca)
        if cert:
            ctx.load_cert_chain(cert, key)
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        self.sock.settimeout(timeout)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % (path, host, port, key))
        self.sock.sendall(req.encode())
        head = self._read_until(b"\r\n\r\n", 16384)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                self.headers[k.strip().lower()] = v.strip()
        if self.status == 101:
            want = base64.b64encode(hashlib.sha1(
                (key + WS_GUID).encode()).digest()).decode()
            if self.headers.get("sec-websocket-accept") != want:
                raise AssertionError("bad Sec-WebSocket-Accept")

    def _read_until(self, marker, limit):
        for _ in range(1000):
            i = self.buf.find(marker)
            if i >= 0:
                head, self.buf = self.buf[:i], self.buf[i + len(marker):]
                return head
            if len(self.buf) > limit:
                raise AssertionError("response header too long")
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake: %r"
                                      % self.buf[:200])
            self.buf += chunk
        raise AssertionError("no end of response header")

    def _read_exact(self, n):
        for _ in range(100000):
            if len(self.buf) >= n:
                out, self.buf = self.buf[:n], self.buf[n:]
                return out
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("eof")
            self.buf += chunk
        raise AssertionError("read loop bound")

    @staticmethod
    def frame(opcode, payload, fin=True, mask=True, rsv=0,
              length_override=None):
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload) if length_override is None else length_override
        mbit = 0x80 if mask else 0
        if n < 126:
            hdr = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, mbit | 127, n)
        if not mask:
            return hdr + payload
        mkey = os.urandom(4)
        masked = bytes(b ^ mkey[i & 3] for i, b in enumerate(payload))
        return hdr + mkey + masked

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, opcode, payload, **kw):
        self.send_raw(self.frame(opcode, payload, **kw))

    def send_text(self, s):
        self.send(OP_TEXT, s.encode())

    def send_binary(self, b):
        self.send(OP_BINARY, b)

    def recv(self, timeout=10):
        """One frame as (opcode, payload); ConnectionError on EOF."""
        self.sock.settimeout(timeout)
        h = self._read_exact(2)
        op = h[0] & 0x0F
        n = h[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read_exact(8))[0]
        if n > (16 << 20):
            raise AssertionError("server sent a %d-byte frame" % n)
        if h[1] & 0x80:
            mkey = self._read_exact(4)
            data = self._read_exact(n)
            data = bytes(b ^ mkey[i & 3] for i, b in enumerate(data))
        else:
            data = self._read_exact(n)
        return op, data

    def wait_closed(self, timeout=10):
        """Read until the server sends a close frame or the connection
        ends. Returns ("close", code) or ("eof", None); raises
        TimeoutError if the connection is still open after `timeout`."""
        deadline = time.monotonic() + timeout
        for _ in range(10000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                op, data = self.recv(timeout=left)
            except (ConnectionError, ssl.SSLError, OSError) as e:
                if isinstance(e, (socket.timeout, TimeoutError)):
                    break
                return ("eof", None)
            if op == OP_CLOSE:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 \
                    else None
                return ("close", code)
            if op == OP_PING:
                try:
                    self.send(OP_PONG, data)
                except OSError:
                    return ("eof", None)
        raise TimeoutError("connection still open after %ss" % timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def stream_url_path(url):
    u = urllib.parse.urlsplit(url)
    return u.path + ("?" + u.query if u.query else "")


def open_data_channel_json(token, client_id=None):
    return json.dumps({
        "MessageSchemaVersion": "1.0",
        "RequestId": str(uuid.uuid4()),
        "TokenValue": token,
        "ClientId": client_id or str(uuid.uuid4()),
    })


def client_message(message_type, payload, seq=0, flags=0, payload_type=1,
                   digest=None, header_length=116):
    """Encode a ClientMessage (wire spec section 3.1)."""
    mid = uuid.uuid4().bytes
    return (struct.pack("!I", header_length)
            + message_type.encode().ljust(32, b" ")
            + struct.pack("!IQqQ", 1, int(time.time() * 1000), seq, flags)
            + mid[8:] + mid[:8]
            + (digest if digest is not None
               else hashlib.sha256(payload).digest())
            + struct.pack("!II", payload_type, len(payload))
            + payload)


def main():
    prog = unittest.main(verbosity=2, exit=False)
    # Processes a test started outside any Cluster, or reports that came
    # after the last check.
    reports = sanitizer_failure("after the last test")
    if reports:
        sys.stderr.write(reports + "\n")
        sys.exit(1)
    sys.exit(0 if prog.result.wasSuccessful() else 1)
