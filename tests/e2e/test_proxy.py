"""HTTP CONNECT proxies (issue 14, section 3; docs/operator.md "Behind an
HTTP proxy").

The agent (and the porthole client) run in a network namespace this test
creates, joined to the root namespace by a veth pair with private
addresses and no route anywhere else. portholed listens on 127.0.0.1 in
the root namespace, which from inside the namespace is the namespace's own
loopback: the only way to portholed is a real tinyproxy (Debian's),
listening on the root side of the veth pair. Without a proxy setting the
agent cannot register; with https_proxy, or agent.json's Proxy, it
registers, comes Online and serves a shell, and the porthole client in the
namespace opens a session through the same proxy.

Also, in the root namespace: no_proxy sends the agent around a proxy, and
fake proxies (a Python socket server) that answer 403, junk or a header
too large for the agent fail its connection with a clear error in its log
while the agent lives on.
"""
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest

import pexpect

import harness
import sessionkit
from harness import (Cluster, Process, binary, tail, wait_for, PROMPT,
                     SET_PROMPT, strip_ansi)

NS_TAG = os.getpid() % 200 + 20
NS = "phproxy%d" % os.getpid()
VETH_ROOT = "phpx%dr" % (os.getpid() % 100000)
VETH_NS = "phpx%dn" % (os.getpid() % 100000)
ROOT_ADDR = "10.251.%d.1" % NS_TAG
NS_ADDR = "10.251.%d.2" % NS_TAG


def sh(*argv, check=True):
    p = subprocess.run(list(argv), capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError("%s: exit %d: %s" % (" ".join(argv),
                                                  p.returncode, p.stderr))
    return p


def ns_create():
    sh("ip", "netns", "add", NS)
    sh("ip", "link", "add", VETH_ROOT, "type", "veth", "peer", "name",
       VETH_NS)
    sh("ip", "link", "set", VETH_NS, "netns", NS)
    sh("ip", "addr", "add", ROOT_ADDR + "/30", "dev", VETH_ROOT)
    sh("ip", "link", "set", VETH_ROOT, "up")
    sh("ip", "netns", "exec", NS, "ip", "addr", "add", NS_ADDR + "/30",
       "dev", VETH_NS)
    sh("ip", "netns", "exec", NS, "ip", "link", "set", VETH_NS, "up")
    sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")


def ns_destroy():
    # Deleting the namespace takes its end of the pair, and so both.
    sh("ip", "netns", "delete", NS, check=False)
    sh("ip", "link", "delete", VETH_ROOT, check=False)


def in_ns(argv):
    return ["ip", "netns", "exec", NS] + list(argv)


class FakeProxy:
    """A TCP server on addr that answers every connection with `answer`
    (bytes) after reading what the client sent, then closes. Counts
    connections."""

    def __init__(self, addr, answer):
        self.answer = answer  # None: never answer (hold the connection)
        self.count = 0
        self.requests = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = "http://%s:%d" % (addr, self.port)
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.count += 1
            try:
                c.settimeout(5)
                data = b""
                deadline = time.monotonic() + 5
                while b"\r\n\r\n" not in data and len(data) < 65536 and \
                        time.monotonic() < deadline:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                if self.answer is None:
                    while not self.stop and time.monotonic() < \
                            deadline + 120:
                        time.sleep(0.2)
                else:
                    c.sendall(self.answer)
                    time.sleep(0.2)
            except OSError:
                pass
            finally:
                c.close()

    def close(self):
        self.stop = True
        self.thread.join(timeout=5)
        self.sock.close()


class ProxyTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.cluster = None
        cls.tinyproxy = None
        cls.fakes = []
        ns_destroy()
        ns_create()
        try:
            cls.cluster = Cluster("proxy")
            cls.cluster.start()
            cls.start_tinyproxy()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_tinyproxy(cls):
        c = cls.cluster
        cls.tp_port = harness.free_port()
        cls.tp_conf = os.path.join(c.tmp, "tinyproxy.conf")
        cls.tp_log = os.path.join(c.tmp, "tinyproxy.log")
        with open(cls.tp_conf, "w") as f:
            f.write("Port %d\nListen %s\nTimeout 120\nMaxClients 100\n"
                    "LogLevel Connect\nPidFile \"%s\"\n"
                    % (cls.tp_port, ROOT_ADDR,
                       os.path.join(c.tmp, "tinyproxy.pid")))
        cls.tinyproxy = Process("tinyproxy",
                                ["tinyproxy", "-d", "-c", cls.tp_conf],
                                cls.tp_log, c.env)
        c.processes.append(cls.tinyproxy)

        def up():
            if not cls.tinyproxy.alive():
                raise AssertionError("tinyproxy exited: %s"
                                     % tail(cls.tp_log, 20))
            try:
                socket.create_connection((ROOT_ADDR, cls.tp_port),
                                         timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(up, 20, 0.2, "tinyproxy to listen")
        cls.tp_url = "http://%s:%d" % (ROOT_ADDR, cls.tp_port)

    @classmethod
    def tearDownClass(cls):
        try:
            for f in cls.fakes:
                f.close()
            if cls.cluster is not None:
                cls.cluster.close(dump=cls.cluster.failed)
        finally:
            ns_destroy()

    def run(self, result=None):
        return harness.run_checked(self, result, super().run, lambda:
                                   sys.stderr.write("tinyproxy log:\n%s\n"
                                                    % tail(self.tp_log, 60)))

    # ---- helpers ---------------------------------------------------------

    def fake(self, answer, addr="127.0.0.1"):
        f = FakeProxy(addr, answer)
        self.fakes.append(f)
        return f

    def env(self, **kw):
        """The cluster's environment without any proxy variable of the
        machine's, plus kw (None removes)."""
        base = {k: None for k in ("https_proxy", "HTTPS_PROXY", "no_proxy",
                                  "NO_PROXY", "http_proxy", "HTTP_PROXY",
                                  "all_proxy", "ALL_PROXY")}
        base.update(kw)
        return self.cluster.make_env(**base)

    def register(self, agent, env, ns=True, extra=(), check=True):
        act_id, code = self.cluster.create_activation(limit=1)
        argv = [binary("porthole-agent"), "register",
                "--endpoint", self.cluster.endpoint, "--ca", self.cluster.ca,
                "--code", code, "--id", act_id,
                "--state-dir", agent.state_dir] + list(extra)
        if ns:
            argv = in_ns(argv)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=90,
                           stdin=subprocess.DEVNULL, env=env)
        agent.register_output = p.stdout + p.stderr
        with open(agent.log_path, "a") as f:
            f.write("==> register (exit %d)\n%s%s" % (
                p.returncode, p.stdout, p.stderr))
        if check:
            self.assertEqual(p.returncode, 0, agent.register_output)
            m = re.search(r"Registered as (mi-[0-9a-f]{17})", p.stdout)
            self.assertIsNotNone(m, agent.register_output)
            agent.instance_id = m.group(1)
        return p

    def start(self, agent, env, ns=True):
        argv = [binary("porthole-agent"), "run", "--state-dir",
                agent.state_dir]
        agent.proc = Process("agent-" + agent.label,
                             in_ns(argv) if ns else argv,
                             agent.log_path, env)
        self.cluster.processes.append(agent.proc)
        return agent.proc

    def shell_via_aws(self, target):
        s = self.cluster.open_session(target)
        out = s.run("echo proxied-$((6*7))")
        self.assertIn("proxied-42", out)
        self.assertEqual(s.exit(), 0)

    def wait_log(self, agent, pattern, timeout=30):
        rx = re.compile(pattern)

        def seen():
            if agent.proc is not None and not agent.proc.alive():
                raise harness.Fatal("agent exited: %s"
                                    % tail(agent.log_path, 30))
            return rx.search(agent.proc.log())
        try:
            return wait_for(seen, timeout, 0.2, "agent log /%s/" % pattern)
        except TimeoutError:
            raise AssertionError("no /%s/ in the agent log:\n%s" % (
                pattern, tail(agent.log_path, 40))) from None

    # ---- tests -----------------------------------------------------------

    def test_1_direct_route_refused(self):
        """Without a proxy setting the namespace cannot reach portholed,
        by its address nor by the root side of the veth."""
        a = self.cluster.new_agent("noproxy")
        p = self.register(a, self.env(), check=False)
        self.assertNotEqual(p.returncode, 0, a.register_output)
        self.assertIn("cannot register", a.register_output)
        port = self.cluster.port
        for host in ("127.0.0.1", ROOT_ADDR):
            r = sh(*in_ns(["python3", "-c",
                           "import socket;socket.create_connection(('%s',"
                           "%d),timeout=3)" % (host, port)]), check=False)
            self.assertNotEqual(r.returncode, 0,
                                "portholed reachable at %s" % host)

    def test_2_env_proxy_registers_and_serves(self):
        """https_proxy: register, Online, a shell through the aws CLI and
        through the porthole client in the namespace; tinyproxy saw the
        tunnels."""
        env = self.env(https_proxy=self.tp_url)
        a = self.cluster.new_agent("env")
        self.register(a, env)
        self.start(a, env)
        self.cluster.wait_online(a.instance_id, agent=a)
        self.shell_via_aws(a.instance_id)
        # The porthole client, also walled in, through the same proxy
        # (upper case names this time).
        cenv = self.env(HTTPS_PROXY=self.tp_url)
        child = pexpect.spawn("ip", ["netns", "exec", NS, binary("porthole"),
                                     "start-session", "--target",
                                     a.instance_id],
                              env=cenv, encoding="utf-8",
                              codec_errors="replace", timeout=30,
                              dimensions=(24, 80))
        try:
            child.expect(r"Starting session with SessionId: ", timeout=45)
            child.expect(r"[$#>] ", timeout=30)
            child.sendline(SET_PROMPT)
            child.expect_exact(PROMPT, timeout=30)
            child.sendline("echo client-$((7*6))")
            child.expect_exact(PROMPT, timeout=30)
            self.assertIn("client-42", strip_ansi(child.before))
            child.sendline("exit")
            child.expect(pexpect.EOF, timeout=30)
        finally:
            child.close(force=True)
        with open(self.tp_log, errors="replace") as f:
            log = f.read()
        self.assertRegex(log, r"CONNECT 127\.0\.0\.1:%d" % self.cluster.port)
        # The session records went up through the proxy too.
        self.wait_log(a, r"event=record_delivered")
        a.proc.stop()

    def test_2b_kms_session_through_proxy(self):
        """A KMS-encrypted session: the walled-in agent's KMS Decrypt goes
        through the proxy as well."""
        env = self.env(https_proxy=self.tp_url)
        a = self.cluster.new_agent("kms")
        self.register(a, env)
        self.start(a, env)
        self.cluster.wait_online(a.instance_id, agent=a)
        key = sessionkit.create_key(
            self.cluster, policy=sessionkit.session_key_policy(self.cluster),
            description="proxy e2e")
        sessionkit.set_session_prefs(self.cluster, kmsKeyId=key["KeyId"])
        try:
            self.shell_via_aws(a.instance_id)
        finally:
            sessionkit.set_session_prefs(self.cluster)
        self.wait_log(a, r"event=handshake_complete session=\S+ kms=1")
        a.proc.stop()

    def test_3_agent_json_proxy(self):
        """--proxy saves agent.json's Proxy; `run` then uses it and not the
        environment (which names a proxy that refuses everything)."""
        refuse = self.fake(b"HTTP/1.1 403 Forbidden\r\n"
                           b"Content-Length: 0\r\n\r\n", addr=ROOT_ADDR)
        a = self.cluster.new_agent("json")
        self.register(a, self.env(), extra=["--proxy", self.tp_url,
                                            "--no-proxy", "example.invalid"])
        with open(os.path.join(a.state_dir, "agent.json")) as f:
            cfg = json.load(f)
        self.assertEqual(cfg.get("Proxy"), {"Url": self.tp_url,
                                            "NoProxy": "example.invalid"})
        self.assertEqual(harness.file_mode(os.path.join(a.state_dir,
                                                        "agent.json")),
                         0o600)
        self.start(a, self.env(https_proxy=refuse.url))
        self.cluster.wait_online(a.instance_id, agent=a)
        self.assertIn("source=agent.json", a.proc.log())
        self.shell_via_aws(a.instance_id)
        self.assertEqual(refuse.count, 0)
        a.proc.stop()

    def test_4_no_proxy_bypass(self):
        """no_proxy naming portholed sends the agent direct, around a
        proxy that would refuse it."""
        refuse = self.fake(b"HTTP/1.1 403 Forbidden\r\n\r\n")
        a = self.cluster.new_agent("bypass")
        env = self.env(https_proxy=refuse.url,
                       no_proxy="example.invalid, 127.0.0.1:%d"
                       % self.cluster.port)
        self.register(a, env, ns=False)
        self.start(a, env, ns=False)
        self.cluster.wait_online(a.instance_id, agent=a)
        self.shell_via_aws(a.instance_id)
        self.assertEqual(refuse.count, 0)
        a.proc.stop()

    def _refused(self, label, answer, pattern, timeout=30):
        """An agent registered directly, then run with https_proxy at a
        fake proxy answering `answer`: its log names the reason, it keeps
        running (and retrying), and it is never Online."""
        f = self.fake(answer)
        a = self.cluster.new_agent(label)
        self.register(a, self.env(), ns=False)
        self.start(a, self.env(https_proxy=f.url), ns=False)
        self.wait_log(a, pattern, timeout)
        self.assertTrue(a.proc.alive())
        self.assertGreaterEqual(f.count, 1)
        self.assertTrue(f.requests[0].startswith(
            b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n" % self.cluster.port),
            f.requests[0][:200])
        info = self.cluster.instance_info(a.instance_id)
        self.assertNotEqual((info or {}).get("PingStatus"), "Online")
        a.proc.stop()
        return a

    def test_5_proxy_403(self):
        self._refused("p403", b"HTTP/1.1 403 Forbidden\r\n"
                      b"Content-Length: 5\r\n\r\nnope\n",
                      r"event=proxy_connect_failed .*status=403 "
                      r"err=\"the proxy refused CONNECT: 403 Forbidden\"")

    def test_6_proxy_407_with_credentials_not_logged(self):
        f = self.fake(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                      b"Proxy-Authenticate: Basic realm=\"x\"\r\n\r\n")
        a = self.cluster.new_agent("p407")
        self.register(a, self.env(), ns=False)
        url = f.url.replace("http://", "http://bob:s3cr3t-pw@")
        self.start(a, self.env(https_proxy=url), ns=False)
        self.wait_log(a, r"status=407 err=\"the proxy refused CONNECT: "
                         r"407 Proxy Authentication Required\"")
        # The credentials went to the proxy, never to the log.
        self.assertIn(b"Proxy-Authorization: Basic Ym9iOnMzY3IzdC1wdw==\r\n",
                      f.requests[0])
        self.assertNotIn("s3cr3t", a.proc.log())
        a.proc.stop()

    def test_7_proxy_junk(self):
        self._refused("junk", b"SSH-2.0-OpenSSH_9.2\r\n\x00\xff garbage\r\n",
                      r"event=proxy_connect_failed .*err=\"the proxy's "
                      r"response is not HTTP")

    def test_8_proxy_huge_header(self):
        self._refused("huge", b"HTTP/1.1 200 OK\r\nX-Pad: " +
                      b"a" * 20000 + b"\r\n\r\n",
                      r"event=proxy_connect_failed .*err=\"the proxy's "
                      r"response header is over 8192 bytes\"")

    def test_8b_proxy_silent(self):
        """A proxy that never answers CONNECT: the connect deadline
        (30 s) ends the dial, naming the proxy."""
        self._refused("silent", None,
                      r"event=conn_timeout peer=127\.0\.0\.1 phase=proxy "
                      r"proxy=http://127\.0\.0\.1:\d+|"
                      r"event=ws_dial_failed .*timed out", timeout=75)

    def test_9_https_proxy_url_refused(self):
        """An https:// proxy URL (or garbage) is a clear error at start,
        never a silent direct route."""
        a = self.cluster.new_agent("httpsurl")
        for val, msg in (("https://%s:%d" % (ROOT_ADDR, self.tp_port),
                          "not supported"),
                         ("http://\x01junk:99999", "https_proxy")):
            p = self.register(a, self.env(https_proxy=val), ns=False,
                              check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(msg, a.register_output)


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("test_proxy: skipped (needs root for ip netns)")
        sys.exit(0)
    unittest.main(verbosity=2)
