"""Helpers for the end-to-end tests of port forwarding and SSH sessions.

- payload files of random bytes with their SHA-256;
- HttpServer: a threaded HTTP server on a chosen loopback address that
  serves files (GET), deterministic blobs (GET /blob/<seed>/<n>) and hashes
  uploads (PUT or POST /upload answers "<sha256> <length>");
- ExchangeServer: a tiny TCP protocol for many concurrent connections: the
  client sends seed, n_down, n_up (3 x uint32, big-endian) and n_up bytes;
  the server answers n_down bytes of random.Random(seed) and the SHA-256
  of what it received. No half-close needed (smux v1 has none);
- EchoServer: echoes every byte back;
- PortSession: `aws ssm start-session` or `porthole start-session` with a
  Port document, its output in a log file, stopped with SIGINT (Ctrl-C);
- Sshd: an OpenSSH server on loopback with its own host key, config,
  authorized_keys and a client key, and the ssh/scp/rsync command lines
  that reach it through AWS-StartSSHSession as ProxyCommand.

Every loop is bounded in time and count; every server thread is a daemon
and every server stops at close().
"""

import hashlib
import io
import os
import random
import re
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import threading
import http.server

import harness

MIB = 1 << 20
SSHD = "/usr/sbin/sshd"


def random_file(path, n):
    """Write n random bytes to path; returns their SHA-256 (hex)."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = n
        for _ in range(n // MIB + 2):
            if left <= 0:
                break
            b = os.urandom(min(MIB, left))
            h.update(b)
            f.write(b)
            left -= len(b)
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for _ in range(10 ** 6):
            b = f.read(MIB)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def blob(seed, n):
    return random.Random(seed).randbytes(n)


def port_closed(host, port):
    """True if nothing accepts on host:port."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except OSError:
        return True


# ---- servers ---------------------------------------------------------------

class _Threaded(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # A client that goes away mid-response (Ctrl-C, a cut) is what
        # several tests do on purpose; anything else is printed.
        import sys
        e = sys.exc_info()[1]
        if not isinstance(e, (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _HttpHandler(http.server.BaseHTTPRequestHandler):
    server_version = "porthole-e2e"

    def log_message(self, fmt, *args):   # quiet
        pass

    def do_GET(self):
        srv = self.server.owner
        srv.gets += 1
        m = re.match(r"^/blob/(\d+)/(\d+)$", self.path)
        if m:
            data = blob(int(m.group(1)), int(m.group(2)))
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        path = srv.files.get(self.path)
        if path is None:
            self.send_error(404)
            return
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with open(path, "rb") as f:
            for _ in range(size // (256 * 1024) + 2):
                b = f.read(256 * 1024)
                if not b:
                    break
                self.wfile.write(b)

    def _upload(self):
        srv = self.server.owner
        n = int(self.headers.get("Content-Length") or 0)
        h = hashlib.sha256()
        left = n
        for _ in range(n // 4096 + 2):
            if left <= 0:
                break
            b = self.rfile.read(min(left, 256 * 1024))
            if not b:
                break
            h.update(b)
            left -= len(b)
        got = n - left
        srv.uploads.append((h.hexdigest(), got))
        body = ("%s %d\n" % (h.hexdigest(), got)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = _upload
    do_POST = _upload


class HttpServer:
    def __init__(self, host="127.0.0.1", port=0, files=None):
        self.files = dict(files or {})
        self.uploads = []
        self.gets = 0
        self.srv = _Threaded((host, port), _HttpHandler)
        self.srv.owner = self
        self.host = host
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever,
                                       kwargs={"poll_interval": 0.2},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(timeout=5)


def _read_exact(sock, n):
    out = bytearray()
    for _ in range(n // 1024 + 100000):
        if len(out) >= n:
            break
        b = sock.recv(min(n - len(out), 1 << 16))
        if not b:
            raise ConnectionError("eof after %d of %d bytes" % (len(out), n))
        out += b
    return bytes(out)


class _ExchangeHandler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server.owner
        with srv.lock:
            srv.count += 1
            srv.active += 1
            srv.max_active = max(srv.max_active, srv.active)
        try:
            self.request.settimeout(120)
            seed, n_down, n_up = struct.unpack("!III",
                                               _read_exact(self.request, 12))
            h = hashlib.sha256()
            left = n_up
            for _ in range(n_up // 1024 + 100000):
                if left <= 0:
                    break
                b = self.request.recv(min(left, 1 << 16))
                if not b:
                    raise ConnectionError("eof in upload")
                h.update(b)
                left -= len(b)
            self.request.sendall(blob(seed, n_down) + h.digest())
            # Wait for the client to close, so the connection counts as
            # active for as long as the client holds it.
            self.request.settimeout(60)
            for _ in range(1000):
                if not self.request.recv(4096):
                    break
        except OSError:
            with srv.lock:
                srv.errors += 1
        finally:
            with srv.lock:
                srv.active -= 1


class ExchangeServer:
    def __init__(self, host="127.0.0.1", port=0):
        self.lock = threading.Lock()
        self.count = self.active = self.max_active = self.errors = 0
        self.srv = _Threaded((host, port), _ExchangeHandler)
        self.srv.owner = self
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever,
                                       kwargs={"poll_interval": 0.2},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(timeout=5)


def exchange(port, seed, n_down, n_up, sock=None, timeout=120):
    """One exchange with an ExchangeServer through 127.0.0.1:port; returns
    None when byte-exact, else a description of what differed."""
    s = sock or socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        s.settimeout(timeout)
        up = blob(seed ^ 0x5A5A5A5A, n_up)
        s.sendall(struct.pack("!III", seed, n_down, n_up) + up)
        got = _read_exact(s, n_down + 32)
        if got[:n_down] != blob(seed, n_down):
            return "seed %d: download differs" % seed
        if got[n_down:] != hashlib.sha256(up).digest():
            return "seed %d: upload differs" % seed
        return None
    except OSError as e:
        return "seed %d: %r" % (seed, e)
    finally:
        s.close()


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.server.owner.count += 1
        self.request.settimeout(60)
        try:
            for _ in range(10 ** 6):
                b = self.request.recv(1 << 16)
                if not b:
                    break
                self.request.sendall(b)
        except OSError:
            pass


class EchoServer:
    def __init__(self, host="127.0.0.1", port=0):
        self.count = 0          # connections accepted
        self.srv = _Threaded((host, port), _EchoHandler)
        self.srv.owner = self
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever,
                                       kwargs={"poll_interval": 0.2},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(timeout=5)


class _SlowSinkHandler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server.owner
        self.request.settimeout(120)
        h = hashlib.sha256()
        got = 0
        try:
            # Reads nothing until told to: the sender must be paused.
            srv.go.wait(120)
            for _ in range(10 ** 7):
                b = self.request.recv(1 << 16)
                if not b:
                    break
                h.update(b)
                got += len(b)
                if got >= srv.expect:
                    break
            self.request.sendall(h.digest())
            for _ in range(100):
                if not self.request.recv(4096):
                    break
        except OSError:
            pass


class SlowSink:
    """Accepts, reads nothing until release(), then hashes `expect`
    bytes and answers their SHA-256 (32 bytes)."""

    def __init__(self, expect, host="127.0.0.1"):
        self.expect = expect
        self.go = threading.Event()
        self.srv = _Threaded((host, 0), _SlowSinkHandler)
        self.srv.owner = self
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever,
                                       kwargs={"poll_interval": 0.2},
                                       daemon=True)
        self.thread.start()

    def release(self):
        self.go.set()

    def close(self):
        self.go.set()
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(timeout=5)


def rss_kib(pid):
    """VmRSS of a process and its children (KiB)."""
    total = 0
    pids = [pid]
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                pids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def echo_ok(port, n=4096, timeout=20):
    """A round trip of n random bytes through 127.0.0.1:port."""
    data = os.urandom(n)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(data)
        return _read_exact(s, n) == data


def curl(*args, timeout=300):
    """curl with no proxy from the environment; returns CompletedProcess."""
    argv = ["curl", "-sS", "--noproxy", "*", "--max-time",
            str(int(timeout - 5)), *args]
    return subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


# ---- forwarding sessions ----------------------------------------------------

OPENED_RE = re.compile(r"Port (\d+) opened for sessionId (\S+?)\.?\s*$",
                       re.M)
STARTED_RE = re.compile(r"Starting session with SessionId: (\S+)")


def parameters(params):
    """AWS CLI shorthand: k=v,k=v."""
    return ",".join("%s=%s" % kv for kv in params.items())


class PortSession:
    """A forwarding (or SSH) session's client run in the background, its
    stdout and stderr in a log file. For Cluster.sessions it offers
    close(), session_id, client, describe_exit() and transcript."""

    def __init__(self, cluster, target, document, params, client="aws",
                 env=None, stdin=subprocess.DEVNULL):
        self.cluster = cluster
        self.client = client
        self.document = document
        self.session_id = None
        self.local_port = None
        n = len(cluster.sessions)
        self.log_path = os.path.join(cluster.tmp, "port-session-%d.log" % n)
        if client == "aws":
            argv = ["aws", "ssm", "start-session"]
        elif client == "porthole":
            argv = [harness.binary("porthole"), "start-session"]
        else:
            raise ValueError(client)
        argv += ["--target", target, "--document-name", document]
        if params:
            argv += ["--parameters", parameters(params)]
        self.argv = argv
        self._log = open(self.log_path, "wb")
        # Its own process group: SIGINT to the group is Ctrl-C at a
        # terminal (the AWS CLI ignores it and the plugin acts on it).
        self.proc = subprocess.Popen(argv, stdin=stdin, stdout=self._log,
                                     stderr=subprocess.STDOUT,
                                     env=env or cluster.env,
                                     cwd=cluster.home,
                                     start_new_session=True)
        cluster.sessions.append(self)

    @property
    def transcript(self):
        return io.StringIO(self.output())

    def output(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def wait_listening(self, timeout=40):
        """Wait for "Port N opened for sessionId ID."; returns N."""
        def opened():
            out = self.output()
            m = OPENED_RE.search(out)
            if m:
                return m
            if not self.alive():
                raise harness.Fatal("the client exited %s before listening:"
                                    " %s" % (self.proc.returncode,
                                             out[-2000:]))
            return None
        m = harness.wait_for(opened, timeout, 0.1,
                             "the client to listen (%s)" % self.client)
        self.local_port = int(m.group(1))
        self.session_id = m.group(2)
        return self.local_port

    def wait_output(self, pattern, timeout=20, start=0):
        rx = re.compile(pattern)

        def seen():
            m = rx.search(self.output(), start)
            return m
        return harness.wait_for(seen, timeout, 0.1,
                                "client output %r" % pattern)

    def interrupt(self, timeout=20):
        """Ctrl-C: SIGINT to the client's process group; returns the exit
        status."""
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        return self.proc.wait(timeout=timeout)

    def exit_status(self):
        return self.proc.poll()

    def describe_exit(self):
        rc = self.proc.poll()
        return "still running" if rc is None else "exit status %s" % rc

    def close(self):
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        try:
            self._log.close()
        except OSError:
            pass


def forward(cluster, target, port, client="aws", local_port=None,
            host=None, env=None, document=None):
    """Start a forwarding session to port (on host, if given) and wait
    until the client listens; returns the PortSession."""
    params = {"portNumber": str(port)}
    if local_port is not None:
        params["localPortNumber"] = str(local_port)
    if host is not None:
        params["host"] = host
    doc = document or ("AWS-StartPortForwardingSessionToRemoteHost"
                       if host is not None
                       else "AWS-StartPortForwardingSession")
    s = PortSession(cluster, target, doc, params, client=client, env=env)
    s.wait_listening()
    return s


# ---- sshd ------------------------------------------------------------------

class Sshd:
    """sshd on a free loopback port, everything in `dir`, run as root in
    the foreground (-D -e) and killed at close()."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "sshd")
        self.proc = None

    def start(self):
        if not os.access(SSHD, os.X_OK) or not shutil.which("ssh"):
            raise RuntimeError("%s or ssh missing (scripts/deps.sh installs "
                               "openssh-server)" % SSHD)
        os.makedirs(self.dir, mode=0o700)
        d = self.dir
        if not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.host_key = os.path.join(d, "host_ed25519")
        self.client_key = os.path.join(d, "client_ed25519")
        for k in (self.host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "",
                            "-f", k], check=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        self.port = harness.free_port()
        self.auth_keys = os.path.join(d, "authorized_keys")
        shutil.copy(self.client_key + ".pub", self.auth_keys)
        with open(self.host_key + ".pub") as f:
            self.host_pub = f.read().split()[:2]
        self.known_hosts = os.path.join(d, "known_hosts")
        self.config = os.path.join(d, "sshd_config")
        self.log_path = os.path.join(d, "sshd.log")
        with open(self.config, "w") as f:
            f.write("\n".join([
                "Port %d" % self.port,
                "ListenAddress 127.0.0.1",
                "HostKey %s" % self.host_key,
                "PidFile %s" % os.path.join(d, "sshd.pid"),
                "AuthorizedKeysFile %s" % self.auth_keys,
                "UsePAM no",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PrintMotd no",
                "PrintLastLog no",
                "UseDNS no",
                "MaxStartups 64:30:128",
                "Subsystem sftp internal-sftp",
                "LogLevel ERROR",
                ""]))
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", self.config],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log,
                                     start_new_session=True)

        def up():
            if self.proc.poll() is not None:
                raise harness.Fatal("sshd exited %s: %s" % (
                    self.proc.returncode, harness.tail(self.log_path, 20)))
            with socket.create_connection(("127.0.0.1", self.port), 1):
                return True
        harness.wait_for(up, 15, 0.1, "sshd to listen")
        self.user = "root" if os.getuid() == 0 else os.environ.get("USER")
        return self

    def trust(self, host):
        """known_hosts names `host` (an instance id reached through a
        ProxyCommand) with the sshd's host key."""
        with open(self.known_hosts, "a") as f:
            f.write("[%s]:%d %s %s\n" % (host, self.port, *self.host_pub))

    def ssh_opts(self, proxy):
        """Options shared by ssh and scp: -F /dev/null, our key and
        known_hosts, BatchMode, the ProxyCommand."""
        return ["-F", "/dev/null",
                "-o", "UserKnownHostsFile=" + self.known_hosts,
                "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=60",
                "-o", "ProxyCommand=" + proxy,
                "-i", self.client_key]

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        # Per-connection sshd children left behind by a killed client.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()
        self.proc = None


def proxy_command(client="aws"):
    """The ProxyCommand of the AWS documentation (or porthole's own)."""
    if client == "aws":
        cmd = "aws ssm start-session"
    else:
        cmd = harness.binary("porthole") + " start-session"
    return ("%s --target %%h --document-name AWS-StartSSHSession "
            "--parameters portNumber=%%p" % cmd)


def tree_digest(root):
    """{relative path: sha256} of every regular file below root."""
    out = {}
    for d, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = sha256_file(p)
    return out
