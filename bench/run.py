#!/usr/bin/env python3
"""porthole against OpenSSH, side by side in one run.

Starts a porthole cluster on loopback (portholed init + serve, one enrolled
porthole-agent; the machinery of tests/e2e/harness.py) and, in the same
run, an OpenSSH server on loopback (Debian's /usr/sbin/sshd with a
temporary host key, config, client key and known_hosts, all in a temporary
directory). Then measures the rows of issue 5 on both, prints one table
and writes the same figures as JSON (bench/results/latest.json unless
--out says otherwise). Every ratio is porthole / OpenSSH on the same work
in the same run: the machine is shared and noisy, so absolute figures mean
little and ratios mean more.

Rows:
  1  bulk output through an interactive session (MB/s; plaintext and, when
     it works, KMS-encrypted) against `ssh -tt`
  3  bulk input piped into the remote side (MB/s)
  4  keystroke echo round trip, p50 and p99
  5  time from starting the client to the first prompt byte (median)
  6  footprint: idle agent RSS, extra RSS per open session, the shells
  7  server scale through porthole-loadgen (pending until it is built)
  8  relay CPU seconds per GiB relayed, measured during row 1
  9  StartSession cycles/s signed by an IAM user whose group has a
     20-statement policy with tag conditions, against the root admin
     (which skips the policy engine) in the same run: the policy
     engine's cost (issue 10); the ratio column is user / admin here
  10 bulk output with session recording on against the same agent build
     with RecordSessions false, a quarter of row 1's size per round,
     rounds alternating in ABBA order in the same run (issue 11); the
     OpenSSH column holds recording off, the ratio is on / off (goal
     >= 0.95)
  11 Run Command fan-out: porthole-loadgen's command mode holds 1,000
     simulated agents (real mutual TLS), SendCommand AWS-RunShellScript to
     all of them by tag with MaxConcurrency 100%: seconds until the
     command is final with every invocation Success (11a), portholed's
     CPU seconds over that time (11b) and its peak RSS (11c); figures,
     not thresholds (issue 12)
  12 port forwarding and SSH (issue 13), each against OpenSSH in the same
     run: one TCP stream of 1 GiB through `porthole start-session`
     (12a) and `aws ssm start-session` (12b) port forwarding against
     `ssh -L`; 100 parallel connections each moving 10 MiB, total
     seconds (12c); connection set-up time through an open forwarding
     session, p50 and p99 (12d, 12e); scp of a 256 MiB file over
     AWS-StartSSHSession as ProxyCommand against plain scp (12f); peak
     RSS of the agent, the client and portholed during 12a (12g-12i,
     against sshd's per-connection processes and the ssh client); one
     TCP stream of 1 GiB the other way, written into `porthole
     start-session`'s port and read by the destination, against `ssh -L`
     (12j); the CPU seconds per GiB that porthole's path cannot shed
     (SHA-256 of each payload by its sender and the client's check,
     AES-GCM sealed and opened on both TLS hops, from `openssl speed` on
     this machine, plus the kernel time of its three processes in 12a)
     against all `ssh -L` spends in 12a (12k)

Usage:
  bench/run.py [--quick | --smoke] [--scale X] [--out FILE]
               [--perf DIR] [--rows 1,3,4]
  BENCH_SCALE=X scales the data sizes and sample counts (default 1.0:
  1 GiB output, 256 MiB input, 2,000 echo samples, 20 starts).
  --perf DIR also records `perf record -g` of portholed and the agent
  during the plaintext bulk-output row (perf.data files in DIR).

Environment: PORTHOLE_BIN (directory with the binaries; `make bench`
builds build-bench/ and sets it).

Benchmarks are not tests: nothing here asserts a time. Every loop is
bounded in count and time, every row has a timeout, and everything started
is stopped at the end, also on an error or Ctrl-C.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))

import harness  # noqa: E402
import pexpect  # noqa: E402
import portkit  # noqa: E402
import sessionkit  # noqa: E402

GIB = 1 << 30
MIB = 1 << 20
TICK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
SSHD = "/usr/sbin/sshd"
PROMPT_RE = re.compile(rb"[$#] ")
KMS_ALIAS = "alias/porthole-bench"

# What limits each row, from the profiles in docs/performance.md. The
# table adds the measured CPU share of the busiest process where it has it.
LIMITS = {
    "1": "CPU on 2 shared cores: agent, portholed and client each handle "
         "every output frame (up to 16 KiB: TLS on two hops, SHA-256, a "
         "JSON acknowledgement back), where ssh has two processes",
    "1k": "as 1a, plus AES-256-GCM of every frame at both ends",
    "12": "every byte crosses three processes (client, portholed, agent) "
          "and two TLS hops, each data-channel frame (up to 64 KiB of smux "
          "bytes) with a header, SHA-256 by its sender (and checked by "
          "the client) and an acknowledgement back, portholed unmasking "
          "the agent's or the client's WebSocket frames a byte at a time "
          "(wslay), where ssh -L has two processes and one cipher",
    "3": "1 KiB input frames (spec 10.4: what AWS's agent accepts), each "
         "with a header, SHA-256, a JSON acknowledgement and TLS on two "
         "hops; the two raw-mode terminals",
    "4": "two TLS hops through portholed (3 processes wake each way, "
         "ssh 2) and an acknowledgement frame each way",
    "5": "porthole: SigV4 StartSession + 2 TLS handshakes + shell start; "
         "aws: the Python CLI's own start-up (~1 s)",
    "6": "agent: libuv, OpenSSL, jansson, libcurl mapped in; per session "
         "buffers and the channel ring; shells are bash either way",
    "7": "one TLS connection, WebSocket and instance record per agent",
    "7e": "the 2 CPUs, shared with the load generator and its 100 "
          "clients' TLS handshakes",
    "9": "per cycle the user is decided twice (StartSession on the "
         "instance, TerminateSession on the session) against 20 "
         "statements, with the instance's tags read from the store; the "
         "parsed policies are cached per principal",
    "10": "recording on: the agent copies every output frame into its "
          "spool (64 KiB writes, no fsync), reads it back and uploads it "
          "over TLS (1-4 MiB requests); portholed appends and "
          "acknowledges",
    "11": "per reply portholed prepares and runs its SQLite statements "
          "afresh (sqlite3_prepare_v2 about a quarter of its CPU in perf) "
          "and updates the invocation and the command; each agent waits "
          "100 ms before its final reply and the driver polls every "
          "100 ms; the load generator's simulated agents share the 2 "
          "CPUs",
    "8": "per frame: TLS decrypt and re-encrypt, wslay unmasking the "
         "agent's masked frames byte by byte, copies between the TLS, "
         "WebSocket and queue buffers",
}


# Rows 12g-12i: what bounds memory while a stream runs.
RSS_LIMIT = ("backpressure: a slow reader pauses the writer through the "
             "smux stream, the channel's bounded send window and the TCP "
             "sockets; the figure is mostly libraries and fixed buffers")


class RowTimeout(Exception):
    pass


class Stop(BaseException):
    """SIGTERM: unwind like Ctrl-C so every finally clause runs."""


# ---- /proc ---------------------------------------------------------------

def proc_stat(pid):
    """(comm, ppid, cpu seconds utime+stime, of them in the kernel
    (stime)) of a process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    lp, rp = s.find("("), s.rfind(")")
    comm = s[lp + 1:rp]
    f = s[rp + 2:].split()
    return (comm, int(f[1]), (int(f[11]) + int(f[12])) / TICK,
            int(f[12]) / TICK)


def cpu_seconds(pid):
    st = proc_stat(pid)
    return st[2] if st else 0.0


def kernel_seconds(pid):
    st = proc_stat(pid)
    return st[3] if st else 0.0


def io_bytes(pid):
    """(rchar, wchar): bytes the process moved through read/write-like
    system calls, sockets and terminals included."""
    r = w = 0
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                if line.startswith("rchar:"):
                    r = int(line.split()[1])
                elif line.startswith("wchar:"):
                    w = int(line.split()[1])
    except OSError:
        pass
    return r, w


def rss_split(pid):
    """{"anon": KiB, "file": KiB}: private heap versus mapped files
    (shared libraries, mostly shared with other processes)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    out["anon_kib"] = int(line.split()[1])
                elif line.startswith("RssFile:"):
                    out["file_kib"] = int(line.split()[1])
    except OSError:
        pass
    return out


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def all_procs():
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st:
                out[int(d)] = st
    return out


def descendants(root, procs=None):
    """{pid: comm} of every process below root."""
    procs = procs if procs is not None else all_procs()
    kids = {}
    for pid, (_c, ppid, _t, _k) in procs.items():
        kids.setdefault(ppid, []).append(pid)
    out = {}
    todo = list(kids.get(root, []))
    for _ in range(100000):
        if not todo:
            break
        p = todo.pop()
        out[p] = procs[p][0]
        todo.extend(kids.get(p, []))
    return out


def machine_busy():
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


class CpuWatch:
    """CPU seconds of named groups of processes between start() and stop();
    a group is a callable returning pids (sampled at both ends, so a
    process that exits in between is missed: groups name long-lived
    processes only)."""

    def __init__(self, groups):
        self.groups = groups
        self.t0 = {}

    def _sample(self):
        return {k: sum(cpu_seconds(p) for p in fn())
                for k, fn in self.groups.items()}

    def _ksample(self):
        return {k: sum(kernel_seconds(p) for p in fn())
                for k, fn in self.groups.items()}

    def _io(self):
        out = {}
        for k, fn in self.groups.items():
            r = w = 0
            for p in fn():
                a, b = io_bytes(p)
                r += a
                w += b
            out[k] = (r, w)
        return out

    def start(self):
        self.io0 = self._io()
        self.c0 = self._sample()
        self.k0 = self._ksample()
        self.self0 = resource.getrusage(resource.RUSAGE_SELF)
        self.m0 = machine_busy()
        self.w0 = time.monotonic()

    def stop(self):
        c1 = self._sample()
        k1 = self._ksample()
        io1 = self._io()
        s1 = resource.getrusage(resource.RUSAGE_SELF)
        m1 = machine_busy()
        wall = max(time.monotonic() - self.w0, 1e-6)
        out = {k: c1[k] - self.c0[k] for k in c1}
        out["reader (bench)"] = (s1.ru_utime + s1.ru_stime -
                                 self.self0.ru_utime - self.self0.ru_stime)
        ncpu = os.cpu_count() or 1
        mb = (m1[0] - self.m0[0]) / max(m1[1] - self.m0[1], 1)
        io = {k: {"read": io1[k][0] - self.io0[k][0],
                  "written": io1[k][1] - self.io0[k][1]} for k in io1}
        return {"wall_s": wall, "cpu_s": out, "io_bytes": io,
                "kernel_s": {k: k1[k] - self.k0[k] for k in k1},
                "cpu_pct": {k: 100.0 * v / wall for k, v in out.items()},
                "machine_busy_pct": 100.0 * mb * ncpu}


def cpu_per_gib(watch, n):
    """CPU seconds per GiB moved of each process group but the bench's
    own reader, and their sum."""
    if not watch or not n:
        return None
    per = {k: round(v * GIB / n, 2) for k, v in watch["cpu_s"].items()
           if not k.startswith("reader")}
    per["sum"] = round(sum(per.values()), 2)
    return per


def openssl_speed(alg, block):
    """Bytes per second of one `openssl speed -evp` algorithm on `block`
    bytes (one core), or None."""
    try:
        out = subprocess.run(
            ["openssl", "speed", "-seconds", "1", "-bytes", str(block),
             "-evp", alg], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.stdout.splitlines()[::-1]:
        f = line.split()
        if len(f) >= 2 and f[-1].endswith("k"):
            try:
                return float(f[-1][:-1]) * 1000.0
            except ValueError:
                return None
    return None


def crypto_floor():
    """CPU seconds per GiB forwarded that the protocol and the security
    model require of porthole's path whatever the code: the sender's
    SHA-256 of each payload (AWS's plugin checks it) and the client's
    check (spec 3.7), AES-GCM sealed and opened on the client-portholed
    and portholed-agent TLS hops (TLS everywhere), at the cipher suite
    portholed prefers. Kernel copies and framing come on top."""
    sha = openssl_speed("sha256", 65536)
    gcm = openssl_speed("aes-128-gcm", 16384)
    if not sha or not gcm:
        return None
    # For the record: the suite portholed used to get (OpenSSL's own
    # default order), against the one it prefers now.
    gcm256 = openssl_speed("aes-256-gcm", 16384)
    return {"sha256_bytes_per_s": round(sha),
            "aes128gcm_bytes_per_s": round(gcm),
            "aes256gcm_bytes_per_s": round(gcm256) if gcm256 else None,
            "sha256_cpu_s": round(2 * GIB / sha, 2),
            "aes_gcm_cpu_s": round(4 * GIB / gcm, 2),
            "sum": round(2 * GIB / sha + 4 * GIB / gcm, 2)}


def kernel_per_gib(watch, n):
    """Kernel CPU seconds per GiB of each process group and their sum."""
    if not watch or not n or "kernel_s" not in watch:
        return None
    per = {k: round(v * GIB / n, 2) for k, v in watch["kernel_s"].items()}
    per["sum"] = round(sum(per.values()), 2)
    return per


def busiest(watch):
    items = sorted(watch["cpu_pct"].items(), key=lambda kv: -kv[1])
    s = ", ".join("%s %.0f%%" % kv for kv in items[:3])
    return "%s; machine %.0f%% of %d cores" % (
        s, watch["machine_busy_pct"], os.cpu_count() or 1)


# ---- raw terminal I/O -----------------------------------------------------

def take_buffer(sess):
    """What pexpect read past its last match, as bytes; pexpect's buffer is
    left empty so raw reads see every later byte."""
    pre = sess.child.buffer
    sess.child.buffer = sess.child.string_type()
    return pre.encode() if pre else b""


def give_back(sess, data):
    if data:
        sess.child.buffer = data.decode("utf-8", "replace") + \
            sess.child.buffer


def read_until(fd, marker, timeout, pre=b""):
    """Read a pty master until `marker`; returns (bytes read before the end
    of the marker, what followed it). Searches only new bytes plus a small
    overlap, so gigabytes cost little."""
    deadline = time.monotonic() + timeout
    total = 0
    tail = b""
    window = pre
    for _ in range(10 ** 8):
        i = window.find(marker)
        if i >= 0:
            end = i + len(marker)
            return total + end - len(tail), window[end:]
        total += len(window) - len(tail)
        tail = window[-(len(marker) + 64):]
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _w, _x = select.select([fd], [], [], min(left, 1.0))
        if not r:
            window = tail
            continue
        try:
            data = os.read(fd, 65536)  # < malloc mmap threshold
        except OSError:
            data = b""
        if not data:
            raise EOFError("the client exited before %r (last: %r)"
                           % (marker, tail[-200:]))
        window = tail + data
    raise TimeoutError("no %r within %ss (read %d bytes, last %r)"
                       % (marker, timeout, total, tail[-200:]))


def sync_prompt(sess, timeout=60):
    sess.child.expect_exact(harness.PROMPT, timeout=timeout)


def raw_command(sess, line, marker, timeout):
    """Type `line`, read raw until `marker`, give back what follows and
    wait for the prompt. Returns (seconds, bytes read)."""
    pre = take_buffer(sess)
    t0 = time.perf_counter()
    os.write(sess.child.child_fd, line.encode() + b"\r")
    n, rest = read_until(sess.child.child_fd, marker.encode(), timeout, pre)
    t = time.perf_counter() - t0
    give_back(sess, rest)
    sync_prompt(sess)
    return t, n


# ---- OpenSSH -------------------------------------------------------------

class OpenSsh:
    """sshd on a free loopback port with everything in a temporary
    directory, and the ssh command line that reaches it."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "openssh")
        self.proc = None
        self.error = None

    def start(self):
        if not os.access(SSHD, os.X_OK) or not shutil.which("ssh"):
            raise RuntimeError("%s or ssh is missing (apt-get install "
                               "openssh-server openssh-client)" % SSHD)
        os.makedirs(self.dir, mode=0o700)
        d = self.dir
        # sshd's privilege separation directory (compiled in, not a
        # config option); an empty root-owned directory.
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
        self.known_hosts = os.path.join(d, "known_hosts")
        with open(self.host_key + ".pub") as f:
            hk = f.read().split()
        with open(self.known_hosts, "w") as f:
            f.write("[127.0.0.1]:%d %s %s\n" % (self.port, hk[0], hk[1]))
        # The session's shell gets a home with Debian's stock dotfiles,
        # as ssm-user has, not the invoking user's (whose .bashrc may run
        # anything and would be timed as "ssh to prompt").
        self.home = os.path.join(d, "home")
        os.makedirs(self.home, mode=0o755)
        for f in (".bashrc", ".profile", ".bash_logout"):
            if os.path.exists("/etc/skel/" + f):
                shutil.copy("/etc/skel/" + f, os.path.join(self.home, f))
        self.config = os.path.join(d, "sshd_config")
        self.pidfile = os.path.join(d, "sshd.pid")
        self.log_path = os.path.join(d, "sshd.log")
        with open(self.config, "w") as f:
            f.write("\n".join([
                "Port %d" % self.port,
                "ListenAddress 127.0.0.1",
                "HostKey %s" % self.host_key,
                "PidFile %s" % self.pidfile,
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
                "MaxSessions 64",
                "MaxStartups 64:30:128",
                "LogLevel ERROR",
                "SetEnv HOME=%s" % self.home,
                # Row 12f: scp speaks SFTP by default (OpenSSH >= 9).
                "Subsystem sftp internal-sftp",
                ""]))
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", self.config],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log)
        self.pid = self.proc.pid

        def up():
            if self.proc.poll() is not None:
                raise harness.Fatal("sshd exited %s: %s" % (
                    self.proc.returncode, harness.tail(self.log_path, 20)))
            with socket.create_connection(("127.0.0.1", self.port), 1):
                return True
        harness.wait_for(up, 15, 0.1, "sshd to listen")
        self.user = "root" if os.getuid() == 0 else os.environ.get("USER")

    def argv(self, *extra):
        return ["ssh", "-F", "/dev/null",
                "-o", "UserKnownHostsFile=" + self.known_hosts,
                "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                "-o", "LogLevel=ERROR",
                "-i", self.client_key, "-p", str(self.port), *extra,
                "%s@127.0.0.1" % self.user]

    def session_pids(self):
        """sshd's per-connection processes (the privileged monitor and the
        session process), not the listener or the shells."""
        return [p for p, c in descendants(self.pid).items() if c == "sshd"]

    def stop(self):
        if self.proc is None:
            return
        for p in self.session_pids():
            try:
                os.kill(p, signal.SIGTERM)
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        self.proc = None


class SshSession(harness.Session):
    """harness.Session's interface (child, wait_ready, run, exit, close)
    over `ssh -tt` to the bench's sshd."""

    def __init__(self, ossh, env, dimensions=(24, 80), timeout=20):
        self.cluster = None
        self.target = "127.0.0.1"
        self.client = "ssh"
        self.session_id = None
        self.transcript = harness.io.StringIO()
        self.argv = ossh.argv("-tt")
        self.child = pexpect.spawn(self.argv[0], self.argv[1:], env=env,
                                   dimensions=dimensions, encoding="utf-8",
                                   codec_errors="replace", timeout=timeout)
        self.child.logfile_read = self.transcript
        self.child.delaybeforesend = 0.02

    def wait_started(self, timeout=30):
        return None

    def exit(self, timeout=20):
        self.child.sendline("exit")
        return self.wait_exit(timeout)


# ---- the bench -----------------------------------------------------------

class Bench:

    def __init__(self, args):
        self.args = args
        self.scale = args.scale
        self.rows = []
        self.cluster = None
        self.agent = None
        self.ossh = None
        self.sessions = []
        self.perf_procs = []
        self.kms_ok = False
        self.idle = {}

    # sizes, each bounded below so tiny scales still measure something
    def n_output(self):
        return max(int(GIB * self.scale) // 4 * 4, 64 * 1024)

    def n_input(self):
        return max(int(256 * MIB * self.scale), 16 * 1024)

    def n_echo(self):
        return max(int(2000 * min(self.scale * 4, 1.0)), 20)

    def n_starts(self):
        return max(int(20 * min(self.scale * 4, 1.0)), 3)

    def n_sessions(self):
        return 10 if self.scale >= 0.05 else 3

    def row(self, rid, name, unit, better, porthole=None, openssh=None,
            status="ok", limited_by=None, detail=None):
        ratio = None
        if isinstance(porthole, (int, float)) and \
                isinstance(openssh, (int, float)) and openssh:
            ratio = porthole / openssh
        r = {"id": rid, "name": name, "unit": unit, "better": better,
             "porthole": porthole, "openssh": openssh, "ratio": ratio,
             "status": status,
             "limited_by": limited_by or LIMITS.get(rid.rstrip("abcdefgh"),
                                                   ""),
             "detail": detail or {}}
        self.rows.append(r)
        return r

    # ---- setup and teardown ------------------------------------------

    def setup(self):
        # Row 7 holds thousands of TLS connections in portholed.
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
        self.cluster = harness.Cluster("bench")
        self.cluster.start()
        self.agent = self.cluster.add_agent("bench")
        self.ossh = OpenSsh(self.cluster.tmp)
        try:
            self.ossh.start()
        except Exception as e:  # noqa: BLE001 - OpenSSH columns go empty
            self.ossh.error = str(e)
            sys.stderr.write("bench: no OpenSSH side: %s\n" % e)
            self.ossh = None
        self.ssh_env = dict(self.cluster.env)
        time.sleep(1.0)
        self.idle["agent_rss_kib"] = rss_kib(self.agent.pid)
        self.idle["portholed_rss_kib"] = rss_kib(self.cluster.server.pid)
        if self.ossh:
            self.idle["sshd_rss_kib"] = rss_kib(self.ossh.pid)

    def teardown(self):
        for p in self.perf_procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        for s in self.sessions:
            try:
                s.close()
            except Exception:  # noqa: BLE001 - keep tearing down
                pass
        if self.ossh:
            try:
                self.ossh.stop()
            except Exception as e:  # noqa: BLE001
                sys.stderr.write("bench: stopping sshd: %r\n" % e)
        if self.cluster:
            # A failed row leaves the logs of portholed, the agent and
            # the sessions on stderr, so that it explains itself.
            failed = any(r["status"] == "error" for r in self.rows)
            self.cluster.close(dump=self.args.dump or failed)

    # ---- sessions -----------------------------------------------------

    def porthole_session(self, client="porthole"):
        s = self.cluster.open_session(self.agent.instance_id, client=client,
                                      ready=True)
        return s

    def ssh_session(self):
        s = SshSession(self.ossh, self.ssh_env)
        self.sessions.append(s)
        s.child.expect(PROMPT_RE.pattern.decode(), timeout=30)
        s.child.sendline(harness.SET_PROMPT)
        s.child.expect_exact(harness.PROMPT, timeout=30)
        return s

    def end(self, s):
        try:
            s.exit(timeout=20)
        except Exception:  # noqa: BLE001 - a stuck client is killed
            s.close()

    def porthole_groups(self, s, agent=None):
        agent = (agent or self.agent).pid
        return {
            "portholed": lambda: [self.cluster.server.pid],
            "agent": lambda: [agent] + [
                p for p, c in descendants(agent).items()
                if c.startswith("porthole")],
            "client": lambda: [s.child.pid] + list(
                descendants(s.child.pid)),
        }

    def ssh_groups(self, s):
        return {
            "sshd": self.ossh.session_pids,
            "ssh client": lambda: [s.child.pid],
        }

    # ---- row 1 and 8: bulk output ---------------------------------------

    def output_once(self, s, n, groups, perf_dir=None, perf_client=None):
        # `tr` rather than base64: cheaper for the shared CPUs, and no
        # newline, so the terminals' output processing changes nothing.
        line = ("head -c %d /dev/zero | tr '\\0' x; echo; echo OUT''-DONE"
                % n)
        watch = CpuWatch(groups)
        perf = self.perf_start(perf_dir, perf_client) if perf_dir else None
        watch.start()
        try:
            t, got = raw_command(s, line, "OUT-DONE", self.row_budget)
        finally:
            w = watch.stop()
            if perf:
                self.perf_stop(perf)
        if got < n:
            raise AssertionError("read %d bytes, expected at least %d"
                                 % (got, n))
        return n / t / 1e6, t, w

    def perf_start(self, d, client_pid=None):
        os.makedirs(d, exist_ok=True)
        procs = []
        targets = [("portholed", self.cluster.server.pid),
                   ("agent", self.agent.pid)]
        if client_pid:
            targets.append(("client", client_pid))
        for name, pid in targets:
            out = os.path.join(d, "perf-%s.data" % name)
            p = subprocess.Popen(["perf", "record", "-g", "-F", "999",
                                  "-o", out, "-p", str(pid)],
                                 stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            procs.append(p)
            self.perf_procs.append(p)
        time.sleep(1.0)
        return procs

    def perf_stop(self, procs):
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()

    def pty_baseline(self, n):
        """The same command and reader with no session in between: a local
        pty read by this process, the ceiling of the measurement."""
        line = ("head -c %d /dev/zero | tr '\\0' x; echo; echo OUT''-DONE"
                % n)
        child = pexpect.spawn("/bin/sh", ["-c", line], dimensions=(24, 80))
        try:
            t0 = time.perf_counter()
            read_until(child.child_fd, b"OUT-DONE", self.row_budget)
            return n / (time.perf_counter() - t0) / 1e6
        finally:
            child.close(force=True)

    def row_output(self):
        n = self.n_output()
        base = self.pty_baseline(n)
        s = self.porthole_session()
        ph, tp, wp = self.output_once(s, n, self.porthole_groups(s),
                                      self.args.perf, s.child.pid)
        self.end(s)
        oh = to = wo = None
        if self.ossh:
            s = self.ssh_session()
            oh, to, wo = self.output_once(s, n, self.ssh_groups(s))
            self.end(s)
        self.output_ssh = (oh, wo)
        amp = wp["io_bytes"]["agent"]["written"] / n
        self.row("1a", "bulk output, plaintext session (%s)" % size(n),
                 "MB/s", "higher", ph, oh,
                 limited_by="%s (the agent wrote %.2fx the payload; local "
                 "pty ceiling %.0f MB/s)" % (LIMITS["1"], amp, base),
                 detail={"bytes": n, "porthole_s": tp, "openssh_s": to,
                         "local_pty_baseline_mb_s": base,
                         "porthole_cpu": wp, "openssh_cpu": wo,
                         "busiest_porthole": busiest(wp),
                         "busiest_openssh": busiest(wo) if wo else None})
        gib = n / GIB
        relay = wp["cpu_s"]["portholed"] / gib
        sshd = wo["cpu_s"]["sshd"] / gib if wo else None
        self.row("8", "relay CPU per GiB relayed (portholed vs sshd)",
                 "CPU s/GiB", "lower", relay, sshd,
                 detail={"agent_cpu_s_per_gib":
                         wp["cpu_s"]["agent"] / gib,
                         "porthole_client_cpu_s_per_gib":
                         wp["cpu_s"]["client"] / gib,
                         "ssh_client_cpu_s_per_gib":
                         wo["cpu_s"]["ssh client"] / gib if wo else None,
                         "measured_during": "row 1a"})

    def row_output_kms(self):
        n = self.n_output()
        try:
            sessionkit.create_key(
                self.cluster, alias=KMS_ALIAS,
                policy=sessionkit.session_key_policy(self.cluster),
                description="porthole bench")
            sessionkit.set_session_prefs(self.cluster, kmsKeyId=KMS_ALIAS)
        except Exception as e:  # noqa: BLE001 - not there yet
            self.row("1b", "bulk output, KMS-encrypted session", "MB/s",
                     "higher", None, self.output_ssh[0],
                     status="not available",
                     limited_by="KMS-encrypted sessions do not work here "
                     "yet: %s" % first_line(e))
            return
        try:
            s = self.porthole_session()
            if sessionkit.ENCRYPTED_BANNER not in s.output():
                raise AssertionError("the session is not encrypted")
            ph, tp, wp = self.output_once(s, n, self.porthole_groups(s))
            self.end(s)
            amp = wp["io_bytes"]["agent"]["written"] / n
            self.row("1b", "bulk output, KMS-encrypted session (%s)"
                     % size(n), "MB/s", "higher", ph, self.output_ssh[0],
                     limited_by="%s (the agent wrote %.2fx the payload)"
                     % (LIMITS["1k"], amp),
                     detail={"bytes": n, "porthole_s": tp,
                             "porthole_cpu": wp,
                             "busiest_porthole": busiest(wp),
                             "openssh": "the row 1a ssh -tt figure"})
        except Exception as e:  # noqa: BLE001
            self.row("1b", "bulk output, KMS-encrypted session", "MB/s",
                     "higher", None, self.output_ssh[0],
                     status="not available",
                     limited_by="encrypted session failed: %s"
                     % first_line(e))
        finally:
            try:
                sessionkit.set_session_prefs(self.cluster, kmsKeyId="")
            except Exception:  # noqa: BLE001
                pass

    # ---- row 10: what recording costs -----------------------------------

    def norecord_agent(self):
        """A second agent of the same build whose agent.json says
        "RecordSessions": false."""
        c = self.cluster
        a = c.add_agent("bench-norecord", start=False)
        cfg = os.path.join(a.state_dir, "agent.json")
        with open(cfg) as f:
            conf = json.load(f)
        conf["RecordSessions"] = False
        with open(cfg, "w") as f:
            json.dump(conf, f)
        a.start()
        c.wait_online(a.instance_id, agent=a)
        return a

    def spool_drained(self, agent, timeout):
        """Seconds until the agent's spool holds no record: the upload
        of the last record is finished before the next round starts."""
        d = os.path.join(agent.state_dir, "records")
        t0 = time.monotonic()

        def empty():
            return not os.path.isdir(d) or not any(
                n.endswith(".rec") for n in os.listdir(d))
        harness.wait_for(empty, timeout, 0.1, "the record spool to drain")
        return time.monotonic() - t0

    def recording_rounds(self, n, pairs, on_agent, off_agent, got, drain):
        for i in range(pairs):
            order = ("on", "off") if i % 2 == 0 else ("off", "on")
            for side in order:
                a = on_agent if side == "on" else off_agent
                s = self.cluster.open_session(a.instance_id,
                                              client="porthole", ready=True)
                mbs, t, w = self.output_once(s, n,
                                             self.porthole_groups(s, a))
                self.end(s)
                got[side].append({"mb_s": mbs, "seconds": t, "cpu": w})
                if side == "on":
                    drain.append(self.spool_drained(
                        on_agent, min(self.row_budget / 4, 120)))

    def row_recording(self):
        """Bulk output with recording on (the bench's main agent) and off
        (a second agent, same binary, RecordSessions false), a fresh
        session per round, in ABBA order (on off off on on off ...) so
        that a drift of the machine's load falls on both sides."""
        name = ("bulk output, recording on (OpenSSH column: the same agent "
                "build with RecordSessions false)")
        n = max(self.n_output() // 4 // 4 * 4, 64 * 1024)
        pairs = 1 if self.args.smoke else 4
        off_agent = self.norecord_agent()
        on_agent = self.agent
        got = {"on": [], "off": []}
        # Records of earlier rows are delivered before the first round.
        self.spool_drained(on_agent, min(self.row_budget / 4, 120))
        drain = []
        try:
            self.recording_rounds(n, pairs, on_agent, off_agent, got, drain)
        finally:
            off_agent.proc.stop()

        def rate(lst):
            return len(lst) * n / sum(x["seconds"] for x in lst) / 1e6

        def cpu_per_gib(lst, who):
            return sum(x["cpu"]["cpu_s"][who] for x in lst) / \
                (len(lst) * n / GIB)
        on, off = rate(got["on"]), rate(got["off"])
        self.row("10", "%s (%s x %d each side)" % (name, size(n), pairs),
                 "MB/s", "higher", on, off,
                 detail={"bytes_per_round": n, "rounds_each_side": pairs,
                         "order": "ABBA, starting with recording on",
                         "on_mb_s": [x["mb_s"] for x in got["on"]],
                         "off_mb_s": [x["mb_s"] for x in got["off"]],
                         "agent_cpu_s_per_gib_on":
                         cpu_per_gib(got["on"], "agent"),
                         "agent_cpu_s_per_gib_off":
                         cpu_per_gib(got["off"], "agent"),
                         "portholed_cpu_s_per_gib_on":
                         cpu_per_gib(got["on"], "portholed"),
                         "portholed_cpu_s_per_gib_off":
                         cpu_per_gib(got["off"], "portholed"),
                         "record_delivered_after_session_s": drain,
                         "goal": "ratio on/off >= 0.95"})

    # ---- row 3: bulk input ------------------------------------------------

    def input_once(self, s, n, groups):
        fd = s.child.child_fd
        # Raw and no echo: the line discipline passes every byte and sends
        # nothing back; head ends on the byte count.
        line = ("stty raw -echo; echo IN''-READY; head -c %d >/dev/null; "
                "stty sane; echo IN''-DONE" % n)
        pre = take_buffer(s)
        os.write(fd, line.encode() + b"\r")
        _n, rest = read_until(fd, b"IN-READY", 30, pre)
        chunk = b"x" * 65536
        errors = []
        deadline = time.monotonic() + self.row_budget

        def writer():
            left = n
            try:
                for _ in range(n // 4096 + 2):
                    if left <= 0 or time.monotonic() > deadline:
                        break
                    left -= os.write(fd, chunk[:min(left, len(chunk))])
            except OSError as e:
                errors.append(e)
        watch = CpuWatch(groups)
        watch.start()
        t0 = time.perf_counter()
        th = threading.Thread(target=writer, daemon=True)
        th.start()
        _n, rest = read_until(fd, b"IN-DONE", self.row_budget, rest)
        t = time.perf_counter() - t0
        w = watch.stop()
        th.join(10)
        if errors:
            raise errors[0]
        give_back(s, rest)
        sync_prompt(s)
        return n / t / 1e6, t, w

    def row_input(self):
        n = self.n_input()
        s = self.porthole_session()
        ph, tp, wp = self.input_once(s, n, self.porthole_groups(s))
        self.end(s)
        oh = to = wo = None
        if self.ossh:
            s = self.ssh_session()
            oh, to, wo = self.input_once(s, n, self.ssh_groups(s))
            self.end(s)
        self.row("3", "bulk input, piped into the remote side (%s)"
                 % size(n), "MB/s", "higher", ph, oh,
                 detail={"bytes": n, "porthole_s": tp, "openssh_s": to,
                         "porthole_cpu": wp, "openssh_cpu": wo,
                         "busiest_porthole": busiest(wp),
                         "busiest_openssh": busiest(wo) if wo else None})

    # ---- row 4: keystroke echo ------------------------------------------

    def echo_once(self, s, k):
        fd = s.child.child_fd
        warm = 20
        # Non-canonical with echo on: the remote line discipline echoes
        # each byte as it arrives, as at a prompt; head ends on the count.
        line = ("stty -icanon -isig -iexten min 1 time 0; echo EC''-READY;"
                " head -c %d >/dev/null; stty sane; echo EC''-DONE"
                % (k + warm))
        pre = take_buffer(s)
        os.write(fd, line.encode() + b"\r")
        _n, rest = read_until(fd, b"EC-READY", 30, pre)
        if rest.strip(b"\r\n"):
            raise AssertionError("unexpected output %r" % rest[:100])
        deadline = time.monotonic() + self.row_budget
        samples = []
        typed = b""
        # Everything read after EC-READY's line, kept whole: one read may
        # hold the last echo and EC-DONE together (the shell runs on
        # while this process waits for a CPU), and what follows an echo
        # is the next echo's or EC-DONE's, never to be dropped.
        seen = rest.lstrip(b"\r\n")
        pos = 0
        for i in range(k + warm):
            b = bytes([ord("a") + i % 26])
            typed += b
            t0 = time.perf_counter()
            os.write(fd, b)
            for _ in range(10000):
                j = seen.find(b, pos)
                if j >= 0:
                    pos = j + 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no echo of keystroke %d of %d "
                                       "(read %s)" % (i + 1, k + warm,
                                                      echo_seen(seen)))
                r, _w, _x = select.select([fd], [], [], min(left, 1.0))
                if r:
                    data = os.read(fd, 4096)
                    if not data:
                        raise EOFError("client exited (read %s)"
                                       % echo_seen(seen))
                    seen += data
            dt = time.perf_counter() - t0
            if i >= warm:
                samples.append(dt * 1000.0)
        try:
            n, rest = read_until(fd, b"EC-DONE", 30, seen)
        except TimeoutError as e:
            raise TimeoutError("no EC-DONE within 30s after %d keystrokes "
                               "all echoed (read %s); %s"
                               % (k + warm, echo_seen(seen), e)) from None
        # The echo is the keystrokes, each once and in order, then
        # EC-DONE; anything else (a keystroke lost or delivered twice,
        # output garbled) is a fault, not a figure.
        if seen[:len(typed)] != typed or n != len(typed) + 7:
            raise AssertionError("echo %s (%d bytes to EC-DONE's end) is "
                                 "not the %d keystrokes"
                                 % (echo_seen(seen), n, len(typed)))
        give_back(s, rest)
        sync_prompt(s)
        samples.sort()
        return (percentile(samples, 50), percentile(samples, 99),
                len(samples))

    def row_echo(self):
        k = self.n_echo()
        s = self.porthole_session()
        p50, p99, n = self.echo_once(s, k)
        self.end(s)
        o50 = o99 = None
        if self.ossh:
            s = self.ssh_session()
            o50, o99, _ = self.echo_once(s, k)
            self.end(s)
        self.row("4a", "keystroke echo RTT p50 (%d samples)" % n, "ms",
                 "lower", p50, o50)
        self.row("4b", "keystroke echo RTT p99 (%d samples)" % n, "ms",
                 "lower", p99, o99)

    # ---- row 5: time to the first prompt byte -----------------------------

    def first_prompt(self, argv, env, cwd=None):
        """Seconds from spawning argv in a pty to the first prompt byte
        (`$ ` or `# ` after the session banner, if any)."""
        t0 = time.perf_counter()
        child = pexpect.spawn(argv[0], argv[1:], env=env, dimensions=(24, 80),
                              cwd=cwd, timeout=30)
        fd = child.child_fd
        try:
            buf = b""
            deadline = time.monotonic() + 60
            for _ in range(100000):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no prompt from %s: %r"
                                       % (argv[0], buf[-300:]))
                r, _w, _x = select.select([fd], [], [], min(left, 1.0))
                if not r:
                    continue
                data = os.read(fd, 65536)
                if not data:
                    raise EOFError("%s exited: %r" % (argv[0], buf[-300:]))
                buf += data
                start = buf.find(b"Starting session with SessionId")
                start = buf.find(b"\n", start) if start >= 0 else 0
                if start >= 0 and PROMPT_RE.search(buf, start):
                    break
            dt = time.perf_counter() - t0
            child.sendline("exit")
            try:
                child.expect(pexpect.EOF, timeout=20)
            except pexpect.TIMEOUT:
                pass
            return dt
        finally:
            child.close(force=True)

    def row_prompt(self):
        k = self.n_starts()
        env = self.cluster.env
        target = self.agent.instance_id
        argv = {
            "porthole": [harness.binary("porthole"), "start-session",
                         "--target", target],
            "aws": ["aws", "ssm", "start-session", "--target", target],
        }
        if self.ossh:
            argv["ssh"] = self.ossh.argv()
        times = {c: [] for c in argv}
        deadline = time.monotonic() + self.row_budget
        # Interleaved, so a burst of load on the shared machine hits all.
        for _ in range(k):
            if time.monotonic() > deadline:
                break
            for c, a in argv.items():
                times[c].append(self.first_prompt(
                    a, self.ssh_env if c == "ssh" else env,
                    cwd=self.cluster.home))
        med = {c: statistics.median(v) * 1000 if v else None
               for c, v in times.items()}
        self.row("5a", "time to first prompt byte, porthole start-session "
                 "(median of %d)" % len(times["porthole"]), "ms", "lower",
                 med["porthole"], med.get("ssh"),
                 detail={"samples_ms": {c: [x * 1000 for x in v]
                                        for c, v in times.items()}})
        self.row("5b", "time to first prompt byte, aws ssm start-session "
                 "(median of %d)" % len(times["aws"]), "ms", "lower",
                 med["aws"], med.get("ssh"))

    # ---- row 6: footprint -------------------------------------------------

    def row_footprint(self):
        """A fresh agent, so its heap has no high-water mark from the other
        rows: idle RSS once Online, then the extra with k open sessions."""
        k = self.n_sessions()
        fresh = self.cluster.add_agent("footprint")
        try:
            self.footprint(fresh, k)
        finally:
            fresh.proc.stop()

    def footprint(self, fresh, k):
        agent = fresh.pid
        time.sleep(2.0)
        idle = rss_kib(agent)
        idle_split = rss_split(agent)
        o_split = rss_split(self.ossh.pid) if self.ossh else {}
        sess = []
        for _ in range(k):
            sess.append(self.cluster.open_session(fresh.instance_id,
                                                  client="porthole"))
        time.sleep(1.0)
        procs = all_procs()
        desc = descendants(agent, procs)
        a_pids = [agent] + [p for p, c in desc.items()
                            if c.startswith("porthole")]
        shell_pids = [p for p, c in desc.items()
                      if not c.startswith("porthole")]
        with_k = sum(rss_kib(p) for p in a_pids)
        shells = sum(rss_kib(p) for p in shell_pids)
        for s in sess:
            self.end(s)
        o_idle = o_before = o_with = o_shells = None
        if self.ossh:
            o_idle = rss_kib(self.ossh.pid)
            o_before = sum(rss_kib(p) for p in self.ossh.session_pids())
            sess = [self.ssh_session() for _ in range(k)]
            time.sleep(1.0)
            procs = all_procs()
            desc = descendants(self.ossh.pid, procs)
            o_with = sum(rss_kib(p) for p, c in desc.items() if c == "sshd")
            o_shells = sum(rss_kib(p) for p, c in desc.items()
                           if c != "sshd")
            for s in sess:
                self.end(s)
        mib = 1024.0
        self.row("6a", "idle RSS: porthole-agent vs sshd listener", "MiB",
                 "lower", idle / mib, o_idle / mib if o_idle else None,
                 detail={"agent_rss": idle_split, "sshd_rss": o_split,
                         "agent_rss_kib_at_start_of_bench":
                         self.idle["agent_rss_kib"],
                         "portholed_idle_rss_kib":
                         self.idle["portholed_rss_kib"]})
        self.row("6b", "extra RSS per open session: agent vs sshd "
                 "processes (%d sessions)" % k, "MiB", "lower",
                 (with_k - idle) / k / mib,
                 (o_with - o_before) / k / mib if o_with else None,
                 detail={"agent_rss_kib_with_sessions": with_k,
                         "agent_rss_kib_idle": idle,
                         "sshd_session_processes_per_session": 2,
                         "note": "VmRSS, shared pages counted in full"})
        self.row("6c", "RSS of the shell per session (%d sessions)" % k,
                 "MiB", "lower", shells / k / mib,
                 o_shells / k / mib if o_shells else None)

    # ---- row 7: server scale (porthole-loadgen) ---------------------------

    def loadgen_help(self, lg):
        try:
            p = subprocess.run([lg, "--help"], capture_output=True,
                               text=True, timeout=10,
                               stdin=subprocess.DEVNULL)
            return p.stdout + p.stderr
        except (OSError, subprocess.SubprocessError):
            return ""

    def loadgen_run(self, lg, extra, hold, timeout):
        argv = [lg, "--endpoint", self.cluster.endpoint,
                "--ca", self.cluster.ca,
                "--data-dir", self.cluster.data_dir] + extra
        srv = self.cluster.server.pid
        log = os.path.join(self.cluster.tmp, "loadgen.log")
        with open(log, "ab") as errf:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=errf)
        out = []
        th = threading.Thread(target=lambda: out.append(p.stdout.read()),
                              daemon=True)
        th.start()
        samples = []
        deadline = time.monotonic() + timeout
        last = (time.monotonic(), cpu_seconds(srv))
        for _ in range(int(timeout / 0.5) + 2):
            if p.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.5)
            now = (time.monotonic(), cpu_seconds(srv))
            try:
                nfd = len(os.listdir("/proc/%d/fd" % srv))
            except OSError:
                nfd = 0
            samples.append({"t": now[0], "rss_kib": rss_kib(srv),
                            "cpu_pct": 100 * (now[1] - last[1]) /
                            max(now[0] - last[0], 1e-6), "fds": nfd})
            last = now
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        th.join(10)
        text = (out[0] if out else b"").decode(errors="replace")
        js = None
        for line in reversed(text.strip().splitlines()):
            try:
                js = json.loads(line)
                break
            except ValueError:
                continue
        if p.returncode != 0 and js is None:
            raise RuntimeError("porthole-loadgen exited %s: %s" % (
                p.returncode, " / ".join(
                    harness.tail(log, 3).strip().splitlines())))
        return js, samples

    def row_scale(self):
        lg = harness.binary("porthole-loadgen")
        # Two agent counts in every mode, so the rows keep their ids.
        counts = [10, 50] if self.args.smoke else \
            ([100, 1000] if self.scale < 0.5 else [1000, 10000])
        ids = [("7a", "7b"), ("7c", "7d")]
        if not os.access(lg, os.X_OK):
            for (ra, rb), n in zip(ids, counts):
                self.row(ra, "portholed RSS with %d idle agents" % n, "MiB",
                         "lower", status="pending",
                         limited_by="porthole-loadgen not built yet")
                self.row(rb, "portholed CPU with %d idle agents" % n,
                         "% of a core", "lower", status="pending",
                         limited_by="porthole-loadgen not built yet")
            self.row("7e", "StartSession to first byte cycles/s, 100 "
                     "agents", "1/s", "higher", status="pending",
                     limited_by="porthole-loadgen not built yet")
            return
        hold = 3 if self.args.smoke else 20
        # Its activations name this role; CreateActivation wants it real.
        self.cluster.ensure_role("porthole-loadgen")
        helptext = self.loadgen_help(lg)
        common = []
        if "--state-cache" in helptext:
            # Identities registered for the first count serve the next.
            common = ["--state-cache", os.path.join(self.cluster.tmp,
                                                    "loadgen-cache")]
        for (ra, rb), n in zip(ids, counts):
            try:
                js, smp = self.loadgen_run(
                    lg, ["--agents", str(n), "--hold", str(hold)] + common,
                    hold, min(self.row_budget, hold + 120 + n / 20))
                # Held: the samples with (nearly) every agent's connection
                # open; the steadier second half of them.
                full = [x for x in smp if x["fds"] >= n * 0.95]
                use = full[len(full) // 2:] or smp[-max(len(smp) // 4, 1):]
                rss = max(x["rss_kib"] for x in use) / 1024.0 if use \
                    else None
                cpu = statistics.mean(x["cpu_pct"] for x in use) \
                    if use else None
                det = {"loadgen": js, "samples_held": len(full),
                       "peak_rss_mib": max((x["rss_kib"] for x in smp),
                                           default=0) / 1024.0}
                st = "ok" if full else "partial"
                self.row(ra, "portholed RSS with %d idle agents" % n,
                         "MiB", "lower", rss, None, status=st, detail=det)
                self.row(rb, "portholed CPU with %d idle agents" % n,
                         "% of a core", "lower", cpu, None, status=st,
                         detail={"samples": len(use)})
            except Exception as e:  # noqa: BLE001
                for rid, what in ((ra, "RSS"), (rb, "CPU")):
                    self.row(rid, "portholed %s with %d idle agents"
                             % (what, n), "", "lower", status="error",
                             limited_by=first_line(e))
        name = "StartSession to first byte cycles/s, 100 agents"
        if "--sessions-per-second-agents" not in helptext:
            self.row("7e", name, "1/s", "higher", status="pending",
                     limited_by="porthole-loadgen has no "
                     "--sessions-per-second-agents yet")
            return
        secs = "5" if self.args.smoke else "20"
        try:
            js, _smp = self.loadgen_run(
                lg, ["--agents", "100", "--hold", "1",
                     "--sessions-per-second-agents", "100",
                     "--sessions-seconds", secs] + common, hold,
                min(self.row_budget, 240))
            js = js or {}
            lim = LIMITS["7e"]
            if js.get("session_first_byte_ms_p50") is not None:
                lim += " (first byte p50 %.0f ms, p99 %.0f ms)" % (
                    js["session_first_byte_ms_p50"],
                    js.get("session_first_byte_ms_p99") or 0)
            self.row("7e", name, "1/s", "higher",
                     js.get("sessions_per_second"), None,
                     limited_by=lim, detail={"loadgen": js})
        except Exception as e:  # noqa: BLE001
            pending = "not implemented" in str(e)
            self.row("7e", name, "1/s", "higher",
                     status="pending" if pending else "error",
                     limited_by="porthole-loadgen: session mode not "
                     "implemented yet" if pending else first_line(e))

    # ---- row 9: StartSession under a 20-statement policy -----------------

    def policy_20(self):
        """The bench user's group policy: what Step 6's end user gets,
        padded to 20 statements with ones a real account carries (other
        teams' tags, guard-rail Denies that do not match)."""
        st = [
            {"Sid": "StartOnBench", "Effect": "Allow",
             "Action": "ssm:StartSession",
             "Resource": "arn:aws:ssm:*:*:managed-instance/*",
             "Condition": {"StringEquals": {
                 "ssm:resourceTag/Environment": "bench"}}},
            {"Sid": "Documents", "Effect": "Allow",
             "Action": "ssm:StartSession",
             "Resource": "arn:aws:ssm:*:*:document/SSM-SessionManagerRunShell",
             "Condition": {"BoolIfExists": {
                 "ssm:SessionDocumentAccessCheck": "true"}}},
            {"Sid": "OwnSessions", "Effect": "Allow",
             "Action": ["ssm:TerminateSession", "ssm:ResumeSession"],
             "Resource": "arn:aws:ssm:*:*:session/${aws:username}-*"},
            {"Sid": "Read", "Effect": "Allow",
             "Action": ["ssm:DescribeSessions", "ssm:GetConnectionStatus",
                        "ssm:DescribeInstanceInformation"],
             "Resource": "*"},
        ]
        for i in range(10):
            st.append({"Sid": "Team%d" % i, "Effect": "Allow",
                       "Action": "ssm:StartSession",
                       "Resource": "arn:aws:ssm:*:*:managed-instance/*",
                       "Condition": {"StringEquals": {
                           "ssm:resourceTag/Team": "team-%d" % i,
                           "aws:PrincipalTag/Team": "team-%d" % i}}})
        st += [
            {"Sid": "NeverProd", "Effect": "Deny",
             "Action": "ssm:StartSession", "Resource": "*",
             "Condition": {"StringEquals": {
                 "ssm:resourceTag/Environment": "prod"}}},
            {"Sid": "TlsOnly", "Effect": "Deny", "Action": "*",
             "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "FromHere", "Effect": "Deny", "Action": "ssm:*",
             "Resource": "*",
             "Condition": {"NotIpAddress": {"aws:SourceIp": [
                 "127.0.0.0/8", "::1/128", "10.0.0.0/8"]}}},
            {"Sid": "NoIam", "Effect": "Deny", "Action": "iam:*",
             "Resource": "*"},
            {"Sid": "NoDocuments", "Effect": "Deny",
             "NotAction": ["ssm:StartSession", "ssm:TerminateSession",
                           "ssm:ResumeSession", "ssm:Describe*",
                           "ssm:Get*"],
             "Resource": "arn:aws:ssm:*:*:document/*"},
            {"Sid": "Window", "Effect": "Deny", "Action": "*",
             "Resource": "*",
             "Condition": {"DateGreaterThan": {
                 "aws:CurrentTime": "2099-12-31T23:59:59Z"}}},
        ]
        assert len(st) == 20
        return {"Version": "2012-10-17", "Statement": st}

    def row_policy(self):
        name = ("StartSession cycles/s, IAM user with a 20-statement group "
                "policy (OpenSSH column: root admin)")
        lg = harness.binary("porthole-loadgen")
        if not os.access(lg, os.X_OK) or \
                "--session-credentials" not in self.loadgen_help(lg):
            self.row("9", name, "1/s", "higher", status="pending",
                     limited_by="porthole-loadgen has no "
                     "--session-credentials")
            return
        c = self.cluster
        iam = c.client("iam")
        group, user = "bench-limited", "bench-user"
        iam.create_group(GroupName=group)
        iam.put_group_policy(GroupName=group, PolicyName="bench-20",
                             PolicyDocument=json.dumps(self.policy_20()))
        iam.create_user(UserName=user)
        iam.add_user_to_group(GroupName=group, UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        creds = os.path.join(c.tmp, "bench-user.credentials")
        fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("[porthole]\naws_access_key_id = %s\n"
                    "aws_secret_access_key = %s\n"
                    % (key["AccessKeyId"], key["SecretAccessKey"]))
        n = 20 if self.args.smoke else 50
        # The activation's tag reaches every instance registered with it;
        # its role must exist where activations check that.
        if hasattr(c, "ensure_role"):
            c.ensure_role(harness.TEST_ROLE)
        act = c.ssm().create_activation(
            IamRole=harness.TEST_ROLE, RegistrationLimit=n,
            Tags=[{"Key": "Environment", "Value": "bench"}])
        secs = "5" if self.args.smoke else "15"
        common = ["--agents", str(n), "--hold", "1",
                  "--sessions-per-second-agents", str(n),
                  "--sessions-seconds", secs,
                  "--activation-id", act["ActivationId"],
                  "--activation-code", act["ActivationCode"],
                  "--state-cache", os.path.join(c.tmp, "loadgen-policy")]
        # Interleaved rounds, so the machine's noise falls on both.
        rounds = 1 if self.args.smoke else 2
        got = {"admin": [], "user": []}
        for _ in range(rounds):
            for who in ("admin", "user"):
                extra = ["--session-credentials", creds] \
                    if who == "user" else []
                js, _smp = self.loadgen_run(lg, common + extra, 1,
                                            min(self.row_budget / 4, 150))
                got[who].append(js or {})

        def rate(lst):
            cyc = sum(j.get("session_cycles") or 0 for j in lst)
            t = sum(j.get("session_seconds") or 0 for j in lst)
            return cyc / t if t else None
        ru, ra = rate(got["user"]), rate(got["admin"])
        fails = sum(j.get("session_failures") or 0 for j in got["user"])
        lim = LIMITS["9"]
        if fails:
            lim += " (%d user cycles failed)" % fails
        self.row("9", name, "1/s", "higher", ru, ra,
                 status="ok" if ru else "error", limited_by=lim,
                 detail={"loadgen_user": got["user"],
                         "loadgen_admin": got["admin"],
                         "agents": n, "statements": 20})

    # ---- row 11: Run Command fan-out --------------------------------------

    def row_fanout(self):
        lg = harness.binary("porthole-loadgen")
        n = 20 if self.args.smoke else (200 if self.scale < 0.5 else 1000)
        names = {
            "11a": ("SendCommand to %d agents, MaxConcurrency 100%%: "
                    "time to all Success" % n, "s"),
            "11b": ("portholed CPU for that command", "s"),
            "11c": ("portholed peak RSS during that command", "MiB"),
        }
        helptext = self.loadgen_help(lg) if os.access(lg, os.X_OK) else ""
        if "--send-command" not in helptext:
            for rid, (name, unit) in names.items():
                self.row(rid, name, unit, "lower", status="pending",
                         limited_by="porthole-loadgen has no command "
                         "mode yet")
            return
        self.cluster.ensure_role("porthole-loadgen")
        extra = ["--agents", str(n), "--hold", "900",
                 "--state-cache", os.path.join(self.cluster.tmp,
                                               "loadgen-cache"),
                 "--command-delay-ms", "100", "--tag", "Fleet=bench-fanout",
                 "--send-command", "AWS-RunShellScript",
                 "--commands", "echo hi", "--max-concurrency", "100%",
                 "--target", "tag:Fleet=bench-fanout",
                 "--command-timeout", "600",
                 "--server-pid", str(self.cluster.server.pid)]
        js, _smp = self.loadgen_run(lg, extra, 0,
                                    min(self.row_budget, 800))
        js = js or {}
        cmd = js.get("command") or {}
        inv = cmd.get("invocations") or {}
        ok = (cmd.get("status") == "Success" and inv.get("Success") == n
              and js.get("agents_connected") == n)
        st = "ok" if ok else "partial"
        lim = LIMITS["11"]
        if not ok:
            lim = "not every invocation Success: %s %s; %s" % (
                cmd.get("status"), json.dumps(inv),
                cmd.get("error", ""))
        det = {"loadgen": js, "agents": n}
        rss = cmd.get("server_rss_kb_peak")
        self.row("11a", names["11a"][0], "s", "lower",
                 cmd.get("seconds_to_final"), None, status=st,
                 limited_by=lim, detail=det)
        self.row("11b", names["11b"][0], "s", "lower",
                 cmd.get("server_cpu_seconds"), None, status=st,
                 limited_by=lim)
        self.row("11c", names["11c"][0], "MiB", "lower",
                 rss / 1024.0 if isinstance(rss, int) and rss > 0 else None,
                 None, status=st, limited_by=lim,
                 detail={"vmhwm_kib": cmd.get("server_vmhwm_kb"),
                         "rss_kib_before": cmd.get("server_rss_kb_before")})


    # ---- row 12: port forwarding and SSH ----------------------------------

    def n_stream(self):
        return max(int(GIB * self.scale), MIB)

    def n_parallel(self):
        return (100, max(int(10 * MIB * self.scale), 64 * 1024)) \
            if self.scale >= 0.05 else (10, 64 * 1024)

    def n_setups(self):
        return max(int(500 * min(self.scale * 4, 1.0)), 20)

    def n_scp(self):
        return max(int(256 * MIB * self.scale), MIB)

    def ssh_forward(self, dport):
        """`ssh -N -L` to the bench's sshd; returns (Popen, local port)."""
        lp = harness.free_port()
        argv = self.ossh.argv("-N", "-o", "ExitOnForwardFailure=yes",
                              "-L", "127.0.0.1:%d:127.0.0.1:%d" % (lp, dport))
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=self.ssh_env,
                             start_new_session=True)

        def up():
            if p.poll() is not None:
                raise harness.Fatal("ssh -L exited %s: %s" % (
                    p.returncode, p.stderr.read()[-500:]))
            with socket.create_connection(("127.0.0.1", lp), 1):
                return True
        try:
            harness.wait_for(up, 30, 0.1, "ssh -L to listen")
        except BaseException:
            stop_proc(p)
            raise
        return p, lp

    def port_forward(self, dport, client="porthole"):
        s = portkit.forward(self.cluster, self.agent.instance_id, dport,
                            client=client, local_port=0)
        self.sessions.append(s)
        return s

    def row_port(self):
        src = SourceServer()
        try:
            self.port_rows(src)
        finally:
            src.close()

    def port_rows(self, src):
        n = self.n_stream()
        ph = {}
        for client in ("porthole", "aws"):
            s = self.port_forward(src.port, client)
            try:
                pids = {"portholed": [self.cluster.server.pid],
                        "agent": [self.agent.pid],
                        "client": [s.proc.pid] + list(
                            descendants(s.proc.pid))}
                peak = PeakRss(pids)
                groups = {k: (lambda v=v: v) for k, v in pids.items()}
                watch = CpuWatch(groups)
                # Warm: the first stream of a session pays for the dial.
                stream_once(s.local_port, MIB, self.row_budget)
                watch.start()
                peak.start()
                t = stream_once(s.local_port, n, self.row_budget)
                ph[client] = (n / t / 1e6, t, watch.stop(), peak.stop())
            finally:
                self.end_port(s)
        oh = None
        ossh_pids = None
        if self.ossh:
            p, lp = self.ssh_forward(src.port)
            try:
                stream_once(lp, MIB, self.row_budget)
                ossh_pids = {"sshd": self.ossh.session_pids(),
                             "ssh client": [p.pid]}
                peak = PeakRss(ossh_pids)
                watch = CpuWatch({k: (lambda v=v: v)
                                  for k, v in ossh_pids.items()})
                watch.start()
                peak.start()
                t = stream_once(lp, n, self.row_budget)
                oh = (n / t / 1e6, t, watch.stop(), peak.stop())
            finally:
                stop_proc(p)
        o = oh[0] if oh else None
        client_name = {"porthole": "porthole", "aws": "aws ssm"}
        for rid, client in (("12a", "porthole"), ("12b", "aws")):
            v, t, w, pk = ph[client]
            self.row(rid, "port forwarding, one TCP stream of %s, %s "
                     "start-session vs ssh -L"
                     % (size(n), client_name[client]), "MB/s",
                     "higher", v, o,
                     detail={"bytes": n, "porthole_s": t,
                             "openssh_s": oh[1] if oh else None,
                             "porthole_cpu": w,
                             "openssh_cpu": oh[2] if oh else None,
                             "peak_rss_kib": pk,
                             "openssh_peak_rss_kib": oh[3] if oh else None,
                             # The steadier figure on a shared machine:
                             # CPU seconds per GiB, all processes of the
                             # path (the bench's reader left out).
                             "cpu_s_per_gib": cpu_per_gib(w, n),
                             "openssh_cpu_s_per_gib": cpu_per_gib(
                                 oh[2], n) if oh else None,
                             "busiest_porthole": busiest(w),
                             "busiest_openssh": busiest(oh[2]) if oh
                             else None})
        pk = ph["porthole"][3]
        opk = oh[3] if oh else {}
        mib = (lambda k: k / 1024.0 if k else None)
        self.row("12g", "peak RSS during 12a: agent (vs sshd's connection "
                 "processes)", "MiB", "lower", mib(pk.get("agent")),
                 mib(opk.get("sshd")), limited_by=RSS_LIMIT)
        self.row("12h", "peak RSS during 12a: porthole client (vs ssh -L)",
                 "MiB", "lower", mib(pk.get("client")),
                 mib(opk.get("ssh client")), limited_by=RSS_LIMIT)
        self.row("12i", "peak RSS during 12a: portholed", "MiB", "lower",
                 mib(pk.get("portholed")), None, limited_by=RSS_LIMIT)

        # 12j: one stream the other way (client -> destination).
        sink = SinkServer()
        try:
            s = self.port_forward(sink.port)
            try:
                pids = {"portholed": [self.cluster.server.pid],
                        "agent": [self.agent.pid],
                        "client": [s.proc.pid]}
                upload_once(s.local_port, MIB, self.row_budget)
                watch = CpuWatch({k: (lambda v=v: v)
                                  for k, v in pids.items()})
                watch.start()
                tu = upload_once(s.local_port, n, self.row_budget)
                wu = watch.stop()
            finally:
                self.end_port(s)
            ou = None
            if self.ossh:
                p, lp = self.ssh_forward(sink.port)
                try:
                    upload_once(lp, MIB, self.row_budget)
                    watch = CpuWatch({
                        "sshd": (lambda: self.ossh.session_pids()),
                        "ssh client": (lambda: [p.pid])})
                    watch.start()
                    to = upload_once(lp, n, self.row_budget)
                    ou = (to, watch.stop())
                finally:
                    stop_proc(p)
        finally:
            sink.close()
        self.row("12j", "port forwarding, one TCP stream of %s uploaded "
                 "(client to destination), porthole start-session vs "
                 "ssh -L" % size(n), "MB/s", "higher", n / tu / 1e6,
                 n / ou[0] / 1e6 if ou else None,
                 detail={"bytes": n, "porthole_s": tu,
                         "openssh_s": ou[0] if ou else None,
                         "porthole_cpu": wu,
                         "openssh_cpu": ou[1] if ou else None,
                         "cpu_s_per_gib": cpu_per_gib(wu, n),
                         "openssh_cpu_s_per_gib": cpu_per_gib(ou[1], n)
                         if ou else None,
                         "busiest_porthole": busiest(wu),
                         "busiest_openssh": busiest(ou[1]) if ou
                         else None})

        # 12k: what no code change can take off porthole's CPU per byte,
        # against everything ssh -L spends (12a's OpenSSH column): the
        # crypto the protocol and TLS on both hops require, plus the
        # kernel time of moving each byte through three processes
        # (measured in 12a; ssh -L's two processes pay theirs inside its
        # figure).
        floor = crypto_floor()
        pk_kernel = kernel_per_gib(ph["porthole"][2], n)
        least = (round(floor["sum"] + pk_kernel["sum"], 2)
                 if floor and pk_kernel else None)
        ossh_sum = cpu_per_gib(oh[2], n)["sum"] if oh else None
        self.row("12k", "CPU-s per GiB porthole's path cannot shed (SHA-256 "
                 "by sender and client, AES-GCM on two TLS hops, its "
                 "kernel time in 12a) vs all of ssh -L's in 12a",
                 "CPU-s/GiB", "lower", least, ossh_sum,
                 status="ok" if least else "not available",
                 limited_by="the protocol's digest and TLS on both hops "
                 "(openssl speed, one core of this machine); on shared "
                 "cores throughput goes as 1 / CPU per byte, so 12a's "
                 "ratio cannot pass 1 / this ratio",
                 detail={"crypto": floor,
                         "porthole_kernel_s_per_gib": pk_kernel,
                         "openssh_kernel_s_per_gib": kernel_per_gib(
                             oh[2], n) if oh else None,
                         "porthole_measured_12a": cpu_per_gib(
                             ph["porthole"][2], n)})

        # 12c: many connections at once.
        k, each = self.n_parallel()
        s = self.port_forward(src.port)
        try:
            parallel_once(s.local_port, k, MIB, self.row_budget)
            tp = parallel_once(s.local_port, k, each, self.row_budget)
        finally:
            self.end_port(s)
        to = None
        if self.ossh:
            p, lp = self.ssh_forward(src.port)
            try:
                parallel_once(lp, k, MIB, self.row_budget)
                to = parallel_once(lp, k, each, self.row_budget)
            finally:
                stop_proc(p)
        self.row("12c", "port forwarding, %d parallel connections x %s, "
                 "total time" % (k, size(each)), "s", "lower", tp, to,
                 detail={"connections": k, "bytes_each": each})

        # 12d/12e: connection set-up through an open forwarding session.
        m = self.n_setups()
        s = self.port_forward(src.port)
        try:
            setup_times(s.local_port, 5, self.row_budget)
            sp = setup_times(s.local_port, m, self.row_budget)
        finally:
            self.end_port(s)
        so = []
        if self.ossh:
            p, lp = self.ssh_forward(src.port)
            try:
                setup_times(lp, 5, self.row_budget)
                so = setup_times(lp, m, self.row_budget)
            finally:
                stop_proc(p)
        self.row("12d", "connection set-up through an open forwarding "
                 "session, p50 (%d connections)" % len(sp), "ms", "lower",
                 percentile(sp, 50), percentile(so, 50))
        self.row("12e", "connection set-up through an open forwarding "
                 "session, p99 (%d connections)" % len(sp), "ms", "lower",
                 percentile(sp, 99), percentile(so, 99))

        # 12f: scp over AWS-StartSSHSession against plain scp.
        if not self.ossh:
            self.row("12f", "scp over AWS-StartSSHSession", "MB/s",
                     "higher", status="not available",
                     limited_by="no OpenSSH server in this run")
            return
        ns = self.n_scp()
        d = os.path.join(self.cluster.tmp, "scp-bench")
        os.makedirs(d, exist_ok=True)
        f = os.path.join(d, "src.bin")
        with open(f, "wb") as out:
            block = os.urandom(MIB)
            for i in range(ns // MIB):
                out.write(block)
            out.write(block[:ns % MIB])
        target = self.agent.instance_id
        with open(self.ossh.known_hosts, "a") as kh, \
                open(self.ossh.host_key + ".pub") as hk:
            key = hk.read().split()[:2]
            kh.write("[%s]:%d %s %s\n" % (target, self.ossh.port, *key))
        proxy = portkit.proxy_command("porthole")
        tp = self.scp_once(["-o", "ProxyCommand=" + proxy], target, f,
                           os.path.join(d, "via-porthole.bin"))
        to = self.scp_once([], "127.0.0.1", f,
                           os.path.join(d, "via-ssh.bin"))
        shutil.rmtree(d, ignore_errors=True)
        self.row("12f", "scp of %s over AWS-StartSSHSession (porthole "
                 "ProxyCommand) vs plain scp" % size(ns), "MB/s", "higher",
                 ns / tp / 1e6, ns / to / 1e6,
                 detail={"bytes": ns, "porthole_s": tp, "openssh_s": to})

    def scp_once(self, extra, host, src, dst):
        argv = ["scp", "-q", "-F", "/dev/null",
                "-o", "UserKnownHostsFile=" + self.ossh.known_hosts,
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes", "-i", self.ossh.client_key,
                "-P", str(self.ossh.port), *extra, src,
                "%s@%s:%s" % (self.ossh.user, host, dst)]
        t0 = time.perf_counter()
        p = subprocess.run(argv, timeout=self.row_budget, text=True,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           env=self.cluster.env)
        t = time.perf_counter() - t0
        if p.returncode != 0:
            raise AssertionError("scp to %s exited %d: %s"
                                 % (host, p.returncode, p.stderr[-500:]))
        if os.path.getsize(dst) != os.path.getsize(src):
            raise AssertionError("scp copied %d of %d bytes"
                                 % (os.path.getsize(dst),
                                    os.path.getsize(src)))
        os.unlink(dst)
        return t

    def end_port(self, s):
        try:
            s.interrupt(timeout=20)
        except Exception:  # noqa: BLE001 - a stuck client is killed
            pass
        s.close()
        try:
            self.cluster.sessions.remove(s)
        except ValueError:
            pass
        try:
            self.sessions.remove(s)
        except ValueError:
            pass

    # ---- running ------------------------------------------------------------

    def run_row(self, rid, fn, budget):
        self.row_budget = budget
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(int(budget + 60))
        t0 = time.monotonic()
        sys.stderr.write("bench: row %s ...\n" % rid)
        sys.stderr.flush()
        n = len(self.rows)
        try:
            fn()
        except (KeyboardInterrupt, Stop):
            raise
        except BaseException as e:  # noqa: BLE001 - the row says so
            if self.args.dump:
                traceback.print_exc()
            # The whole message: the row keeps only its first 200
            # characters.
            sys.stderr.write("bench: row %s failed: %s: %s\n"
                             % (rid, type(e).__name__, e))
            del self.rows[n:]
            self.row(rid, ROW_NAMES[rid], "", "", status="error",
                     limited_by="error: %s" % first_line(e))
            for s in list(self.cluster.sessions):
                s.close()
            self.cluster.sessions.clear()
        finally:
            signal.alarm(0)
        sys.stderr.write("bench: row %s done in %.1fs\n"
                         % (rid, time.monotonic() - t0))

    def run(self):
        want = set(self.args.rows.split(",")) if self.args.rows else None
        big = max(60.0, 900.0 * self.scale)
        plan = [
            ("1", self.row_output, big),
            ("3", self.row_input, big),
            ("4", self.row_echo, 120 + 60 * self.scale),
            ("5", self.row_prompt, 300),
            ("6", self.row_footprint, 180),
            ("1b", self.row_output_kms, big),
            ("7", self.row_scale, 900),
            ("9", self.row_policy, 600),
            ("10", self.row_recording, big),
            ("11", self.row_fanout, 900),
            ("12", self.row_port, max(300.0, 1800.0 * self.scale)),
        ]
        for rid, fn, budget in plan:
            if want and rid not in want and rid.rstrip("b") not in want:
                continue
            if rid == "1b" and not any(r["id"] == "1a" for r in self.rows):
                self.output_ssh = (None, None)
            self.run_row(rid, fn, budget)
        self.rows.sort(key=lambda r: (int(re.match(r"\d+", r["id"]).group()),
                                      r["id"]))


ROW_NAMES = {
    "1": "bulk output", "1b": "bulk output, KMS-encrypted",
    "3": "bulk input", "4": "keystroke echo RTT",
    "5": "time to first prompt byte", "6": "agent footprint",
    "7": "server scale", "8": "relay cost",
    "9": "StartSession under a 20-statement policy",
    "10": "bulk output, recording on and off",
    "11": "Run Command fan-out",
    "12": "port forwarding and SSH",
}


# ---- port forwarding helpers (row 12) --------------------------------------

class LoopbackServer:
    """A TCP server on a free loopback port that serves each connection
    in a thread of its own (`_serve`, in the subclasses) until close()."""

    def __init__(self, backlog):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(backlog)
        self.port = self.lsock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        for _ in range(10 ** 7):
            if self.stopping:
                break
            try:
                r, _w, _x = select.select([self.lsock], [], [], 0.2)
                if not r:
                    continue
                c, _a = self.lsock.accept()
            except (OSError, ValueError):
                break
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    @staticmethod
    def _read_count(c):
        """The 8-byte big-endian count a connection starts with (None if
        it closes first)."""
        hdr = b""
        for _ in range(100):
            if len(hdr) >= 8:
                break
            b = c.recv(8 - len(hdr))
            if not b:
                return None
            hdr += b
        return int.from_bytes(hdr[:8], "big")

    def close(self):
        self.stopping = True
        try:
            self.lsock.close()
        except OSError:
            pass
        self.thread.join(timeout=3)


class SourceServer(LoopbackServer):
    """A loopback TCP server: per connection it reads an 8-byte big-endian
    count and sends that many bytes (a repeated 1 MiB random block), then
    waits for the client to close."""

    def __init__(self):
        self.block = os.urandom(MIB)
        super().__init__(512)

    def _serve(self, c):
        try:
            c.settimeout(600)
            n = self._read_count(c)
            if n is None:
                return
            mv = memoryview(self.block)
            for _ in range(n // MIB + 2):
                if n <= 0:
                    break
                k = min(n, MIB)
                c.sendall(mv[:k])
                n -= k
            for _ in range(100):
                if not c.recv(4096):
                    break
        except OSError:
            pass
        finally:
            c.close()


class SinkServer(LoopbackServer):
    """A loopback TCP server: per connection it reads an 8-byte
    big-endian count, then that many bytes, and answers one byte."""

    def __init__(self):
        super().__init__(64)

    def _serve(self, c):
        try:
            c.settimeout(600)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            n = self._read_count(c)
            if n is None:
                return
            buf = bytearray(MIB)
            for _ in range(10 ** 8):
                if n <= 0:
                    break
                k = c.recv_into(buf, min(n, MIB))
                if not k:
                    return
                n -= k
            c.sendall(b"k")
        except OSError:
            pass
        finally:
            c.close()


def upload_once(port, n, budget):
    """Seconds to write n bytes through port into a SinkServer until it
    has read them all (its one-byte answer)."""
    block = memoryview(os.urandom(MIB))
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.settimeout(min(budget, 600))
        t0 = time.perf_counter()
        s.sendall(n.to_bytes(8, "big"))
        left = n
        for _ in range(n // MIB + 2):
            if left <= 0:
                break
            k = min(left, MIB)
            s.sendall(block[:k])
            left -= k
        if s.recv(1) != b"k":
            raise EOFError("the destination did not read %d bytes" % n)
        return time.perf_counter() - t0


def pull(sock, n, deadline):
    buf = bytearray(1 << 20)
    got = 0
    for _ in range(10 ** 8):
        if got >= n:
            break
        if time.monotonic() > deadline:
            raise TimeoutError("read %d of %d bytes" % (got, n))
        k = sock.recv_into(buf)
        if not k:
            raise EOFError("connection closed after %d of %d bytes"
                           % (got, n))
        got += k
    return got


def stream_once(port, n, budget):
    """Seconds to read n bytes from a SourceServer through port."""
    deadline = time.monotonic() + budget
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.settimeout(60)
        t0 = time.perf_counter()
        s.sendall(n.to_bytes(8, "big"))
        pull(s, n, deadline)
        return time.perf_counter() - t0


def parallel_once(port, k, each, budget):
    """Seconds for k connections opened at once to read `each` bytes
    each through port."""
    deadline = time.monotonic() + budget
    errors = []
    socks = [socket.create_connection(("127.0.0.1", port), timeout=60)
             for _ in range(k)]
    go = threading.Barrier(k + 1, timeout=60)

    def one(s):
        try:
            s.settimeout(120)
            go.wait()
            s.sendall(each.to_bytes(8, "big"))
            pull(s, each, deadline)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            s.close()

    threads = [threading.Thread(target=one, args=(s,), daemon=True)
               for s in socks]
    for t in threads:
        t.start()
    go.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout=max(1.0, deadline - time.monotonic()))
    t = time.perf_counter() - t0
    if errors or any(x.is_alive() for x in threads):
        raise AssertionError("%d of %d connections failed: %r"
                             % (len(errors), k, errors[:3]))
    return t


def setup_times(port, m, budget):
    """Milliseconds from connect() to the first byte of an answer, m
    times in a row, sorted."""
    deadline = time.monotonic() + budget
    out = []
    for _ in range(m):
        if time.monotonic() > deadline:
            break
        t0 = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.settimeout(30)
            s.sendall((1).to_bytes(8, "big"))
            if not s.recv(1):
                raise EOFError("no answer through port %d" % port)
            out.append((time.perf_counter() - t0) * 1000.0)
    out.sort()
    return out


def stop_proc(p):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


class PeakRss:
    """Peak RSS (KiB) of named groups of processes over an interval: each
    process's high-water mark is reset at start() (clear_refs 5, where
    permitted) and VmHWM read at stop(); RSS is also sampled every 50 ms
    as a fallback. A group's figure is the sum over its processes."""

    def __init__(self, groups):
        self.groups = groups
        self.samples = {k: 0 for k in groups}
        self.stopping = False
        self.reset_ok = True

    def start(self):
        for pids in self.groups.values():
            for p in pids:
                try:
                    with open("/proc/%d/clear_refs" % p, "w") as f:
                        f.write("5")
                except OSError:
                    self.reset_ok = False
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        for _ in range(10 ** 6):
            if self.stopping:
                break
            for k, pids in self.groups.items():
                self.samples[k] = max(self.samples[k],
                                      sum(rss_kib(p) for p in pids))
            time.sleep(0.05)

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=2)
        out = {}
        for k, pids in self.groups.items():
            hwm = 0
            for p in pids:
                hwm += vm_hwm_kib(p)
            out[k] = max(hwm, self.samples[k]) if self.reset_ok \
                else self.samples[k]
        return out


def vm_hwm_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _alarm(_sig, _frm):
    raise RowTimeout("the row's time limit passed")


def _term(_sig, _frm):
    raise Stop("SIGTERM")


def percentile(sorted_v, p):
    if not sorted_v:
        return None
    k = (len(sorted_v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_v) - 1)
    return sorted_v[lo] + (sorted_v[hi] - sorted_v[lo]) * (k - lo)


def size(n):
    if n >= GIB and n % GIB == 0:
        return "%d GiB" % (n // GIB)
    if n >= MIB:
        return "%g MiB" % round(n / MIB, 1)
    return "%g KiB" % round(n / 1024, 1)


def echo_seen(b):
    """Row 4's echo stream for an error message: its length and its ends
    (first_line keeps 200 characters)."""
    if len(b) <= 80:
        return "%d bytes %r" % (len(b), b)
    return "%d bytes %r...%r" % (len(b), b[:30], b[-40:])


def first_line(e):
    s = str(e).strip().splitlines()
    return (s[0] if s else type(e).__name__)[:200]


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 100:
            return "%.0f" % v
        if abs(v) >= 10:
            return "%.1f" % v
        return "%.2f" % v
    return str(v)


def table(rows):
    head = ("row", "measure", "unit", "porthole", "OpenSSH", "ratio p/o",
            "limited by")
    lines = []
    for r in rows:
        lim = r["limited_by"]
        if r["status"] not in ("ok",):
            lim = "%s: %s" % (r["status"], lim) if lim else r["status"]
        ratio = fmt(r["ratio"])
        if r["ratio"] is not None:
            ratio += " (%s better)" % r["better"]
        lines.append((r["id"], r["name"], r["unit"], fmt(r["porthole"]),
                      fmt(r["openssh"]), ratio, lim))
    w = [max(len(head[i]), *(len(x[i]) for x in lines)) if lines
         else len(head[i]) for i in range(len(head) - 1)]
    out = []
    fmtl = "  ".join("%%-%ds" % x for x in w) + "  %s"
    out.append(fmtl % head)
    out.append(fmtl % tuple("-" * len(h) for h in head))
    for x in lines:
        out.append(fmtl % x)
    return "\n".join(out)


def meta(args, bench):
    def cmd(argv):
        try:
            p = subprocess.run(argv, capture_output=True, text=True,
                               timeout=10, stdin=subprocess.DEVNULL)
            return (p.stdout + p.stderr).strip()
        except (OSError, subprocess.SubprocessError):
            return None
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join([os.path.relpath(sys.argv[0], REPO)]
                            + sys.argv[1:]),
        "scale": args.scale,
        "mode": "smoke" if args.smoke else ("quick" if args.quick
                                            else "full"),
        "git_commit": cmd(["git", "-C", REPO, "rev-parse", "HEAD"]),
        "porthole_bin": harness.porthole_bin(),
        "openssh": cmd(["ssh", "-V"]),
        "openssh_error": bench.ossh.error if bench.ossh and
        bench.ossh.error else None,
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "loadavg_at_end": os.getloadavg(),
        "ratio": "porthole / OpenSSH; `better` says which direction is "
                 "good for the row",
        "mb": "MB = 10^6 bytes",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="1/16 of the full sizes")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes, seconds: proves the harness works")
    ap.add_argument("--scale", type=float, default=None,
                    help="size multiplier (default BENCH_SCALE or 1.0)")
    ap.add_argument("--out", default=None,
                    help="JSON output (default bench/results/latest.json; "
                    "smoke runs: bench/results/smoke.json)")
    ap.add_argument("--perf", default=None, metavar="DIR",
                    help="perf record -g portholed and the agent during "
                    "row 1a into DIR")
    ap.add_argument("--rows", default=None,
                    help="comma-separated rows to run (1,1b,3,4,5,6,7,9,10,"
                    "11,12)")
    ap.add_argument("--dump", action="store_true",
                    help="print tracebacks and the logs at the end")
    args = ap.parse_args()
    if args.scale is None:
        if args.smoke:
            args.scale = 1.0 / 1024
        elif args.quick:
            args.scale = 1.0 / 16
        else:
            args.scale = float(os.environ.get("BENCH_SCALE", "1.0"))
    if args.out is None:
        args.out = os.path.join(HERE, "results", "smoke.json" if args.smoke
                                else "latest.json")
    signal.signal(signal.SIGTERM, _term)
    # Ctrl-C tears down even when started from a shell that ignores SIGINT
    # for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    bench = Bench(args)
    started = time.monotonic()
    try:
        bench.setup()
        bench.run()
    except (KeyboardInterrupt, Stop):
        sys.stderr.write("bench: interrupted; tearing down\n")
        bench.teardown()
        return 130
    except BaseException:
        bench.args.dump = True
        bench.teardown()
        raise
    bench.teardown()
    result = {"meta": meta(args, bench), "rows": bench.rows,
              "elapsed_s": time.monotonic() - started}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".tmp", "w") as f:
        json.dump(result, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(args.out + ".tmp", args.out)
    print(table(bench.rows))
    print("\n%s, %s, %d cores; ratio = porthole / OpenSSH; written to %s"
          % (result["meta"]["date"], result["meta"]["mode"],
             os.cpu_count() or 1, os.path.relpath(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
