"""Agent self-update through AWS-UpdateSSMAgent (docs/agent-update.md).

The agents here run a copy of the test agent that reports 2.3.50.0
(tests/CMakeLists.txt builds it) from their own temporary directory: an
update replaces the binary it runs from, never one in the build directory.

- The seed's flow: an agent at 2.3.50.0 is refused a KMS-encrypted
  session; `portholed agent-package add` hosts the real agent
  (3.3.1000.0); `aws ssm send-command --document-name AWS-UpdateSSMAgent`
  goes InProgress -> Success; DescribeInstanceInformation shows
  AgentVersion 3.3.1000.0 and IsLatestVersion true; the next session is
  encrypted. The same version again is "already installed"; an older
  one is refused without allowDowngrade and installed with it.
- Roll-back: a signed package that cannot start (`exit 1`) is installed,
  does not reconnect within UpdateConfirmSeconds, and the watchdog puts
  the old binary back and starts it; the invocation is Failed with the
  reason, the agent is 2.3.50.0 and Online again and runs commands.
- A package changed on portholed's disk after `agent-package add` is
  refused by the agent (Failed, nothing installed).
- Garbage on GET /v1/agent-package and on `portholed agent-package`.
"""

import hashlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import unittest

import harness
import sessionkit

OLD = "2.3.50.0"
NEW = "3.3.1000.0"
ALIAS = "alias/agent-update-demo"
FINAL = ("Success", "Failed", "TimedOut", "Cancelled")


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class UpdateBase(harness.ClusterTestCase):

    confirm_seconds = 30

    @classmethod
    def setUpClass(cls):
        harness.require_binaries("porthole-agent-" + OLD)
        cls.cluster = harness.Cluster(cls.__name__)
        try:
            cls.cluster.start()
            cls.agent = cls.old_agent("main")
        except BaseException:
            cls.cluster.close(dump=True)
            raise

    @classmethod
    def old_agent(cls, label):
        """An agent running a copy of the 2.3.50.0 build from a directory
        of its own, with a short confirmation deadline."""
        c = cls.cluster
        bindir = os.path.join(c.tmp, "bin-" + label)
        os.mkdir(bindir)
        exe = os.path.join(bindir, "porthole-agent")
        shutil.copy2(harness.binary("porthole-agent-" + OLD), exe)
        a = c.add_agent(label, start=False, binary_path=exe)
        cfg = os.path.join(a.state_dir, "agent.json")
        with open(cfg) as f:
            conf = json.load(f)
        conf["UpdateConfirmSeconds"] = cls.confirm_seconds
        with open(cfg, "w") as f:
            json.dump(conf, f)
        a.start()
        c.wait_online(a.instance_id, agent=a)
        return a

    # ---- helpers -----------------------------------------------------------

    def publish(self, path, version, check=True, *extra):
        argv = [harness.binary("portholed"), "agent-package", "add", path,
                "--version", version, "--data-dir", self.cluster.data_dir,
                *extra]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise harness.CommandError(argv, p)
        return p

    def update(self, agent, *params):
        argv = ["ssm", "send-command", "--instance-ids", agent.instance_id,
                "--document-name", "AWS-UpdateSSMAgent",
                "--comment", "agent update"]
        if params:
            argv += ["--parameters", ",".join(params)]
        return self.cluster.aws(*argv)["Command"]["CommandId"]

    def watch(self, cid, agent, timeout):
        """Poll the invocation until it is final: (it, statuses seen)."""
        ssm = self.cluster.ssm()
        seen = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                inv = ssm.get_command_invocation(
                    CommandId=cid, InstanceId=agent.instance_id)
            except ssm.exceptions.InvocationDoesNotExist:
                inv = None
            if inv is not None:
                if not seen or seen[-1] != inv["Status"]:
                    seen.append(inv["Status"])
                if inv["Status"] in FINAL:
                    return inv, seen
            time.sleep(0.1)
        raise AssertionError("%s not final after %ss (seen %s)\nagent:\n%s"
                             "\nserver:\n%s" % (
                                 cid, timeout, seen,
                                 harness.tail(agent.log_path, 40),
                                 harness.tail(self.cluster.server_log, 40)))

    def update_watched(self, agent, *params, timeout=120):
        """update() through the AWS CLI while a thread polls the
        instance's invocations with boto3 from before the command exists
        (the CLI takes about a second to start): (final invocation,
        statuses seen)."""
        ssm = self.cluster.ssm()
        seen = []
        stop = threading.Event()
        known = {i["CommandId"] for i in ssm.list_command_invocations(
            InstanceId=agent.instance_id).get("CommandInvocations", [])}

        def poll():
            deadline = time.time() + timeout
            while not stop.is_set() and time.time() < deadline:
                try:
                    r = ssm.list_command_invocations(
                        InstanceId=agent.instance_id)
                except Exception:  # noqa: BLE001 - keep polling
                    r = {}
                for inv in r.get("CommandInvocations", []):
                    if inv["CommandId"] not in known and \
                            (not seen or seen[-1] != inv["Status"]):
                        seen.append(inv["Status"])
                time.sleep(0.05)
        t = threading.Thread(target=poll, daemon=True)
        t.start()
        try:
            cid = self.update(agent, *params)
            inv, later = self.watch(cid, agent, timeout)
        finally:
            stop.set()
            t.join(10)
        for st in later:
            if not seen or seen[-1] != st:
                seen.append(st)
        return inv, seen

    def info(self, agent):
        return self.cluster.instance_info(agent.instance_id)

    def wait_version(self, agent, version, timeout=60):
        def ok():
            i = self.info(agent)
            return i if i and i.get("PingStatus") == "Online" and \
                i.get("AgentVersion") == version else None
        return harness.wait_for(ok, timeout, 0.3,
                                "%s to be Online at %s"
                                % (agent.instance_id, version))


class SeedFlow(UpdateBase):
    """The seed's Step 4 on one agent, through the AWS CLI."""

    def test_update_then_kms_session(self):
        c = self.cluster
        a = self.agent
        info = self.info(a)
        self.assertEqual(info["AgentVersion"], OLD)
        # Nothing hosted: compared with portholed's own agent version.
        self.assertFalse(info["IsLatestVersion"])

        key = sessionkit.create_key(
            c, alias=ALIAS, policy=sessionkit.session_key_policy(c),
            description="agent update test")
        self.assertTrue(key)
        sessionkit.set_session_prefs(c, kmsKeyId=ALIAS)
        try:
            p = c.aws("ssm", "start-session", "--target", a.instance_id,
                      check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("InvalidDocument", p.stderr)
            self.assertIn(OLD, p.stderr)

            out = self.publish(harness.binary("porthole-agent"), NEW)
            self.assertIn("hosting porthole-agent " + NEW, out.stdout)
            listing = subprocess.run(
                [harness.binary("portholed"), "agent-package", "list",
                 "--data-dir", c.data_dir], capture_output=True, text=True,
                timeout=60, check=True).stdout
            self.assertIn(NEW, listing)
            self.assertIn("linux-", listing)

            before = sha256_file(a.binary())
            inv, seen = self.update_watched(a)
            self.assertEqual(inv["Status"], "Success", (inv, seen))
            self.assertIn("InProgress", seen)
            self.assertIn("updated porthole-agent from %s to %s"
                          % (OLD, NEW), inv["StandardOutputContent"])
            self.assertEqual(inv["ResponseCode"], 0)
            # The same process (pid) now runs the new binary.
            self.assertTrue(a.proc.alive())
            self.assertEqual(sha256_file(a.binary()),
                             sha256_file(harness.binary("porthole-agent")))
            self.assertEqual(sha256_file(a.binary() + ".old"), before)

            info = self.wait_version(a, NEW)
            self.assertTrue(info["IsLatestVersion"])
            # aws ssm describe-instance-information shows it as well.
            out = c.aws("ssm", "describe-instance-information",
                        "--filters", "Key=InstanceIds,Values=" +
                        a.instance_id)
            row = out["InstanceInformationList"][0]
            self.assertEqual(row["AgentVersion"], NEW)
            self.assertTrue(row["IsLatestVersion"])

            s = c.open_session(a.instance_id, client="aws")
            self.assertIn(sessionkit.ENCRYPTED_BANNER, s.output())
            self.assertIn("ssm-user", s.run("whoami").split())
            self.assertEqual(s.exit(), 0)

            # Again: nothing to do, no restart.
            pid = a.proc.pid
            cid = self.update(a, "version=" + NEW)
            inv, _ = self.watch(cid, a, 60)
            self.assertEqual(inv["Status"], "Success")
            self.assertIn("already installed", inv["StandardOutputContent"])
            self.assertEqual(a.proc.pid, pid)
            self.assertTrue(a.proc.alive())
            # An older version without allowDowngrade is refused.
            cid = self.update(a, "version=" + OLD)
            inv, _ = self.watch(cid, a, 60)
            self.assertEqual(inv["Status"], "Failed")
            self.assertIn("allowDowngrade", inv["StandardErrorContent"])
            # The operator's way back: publish the old build and allow
            # the downgrade (docs/agent-update.md).
            self.publish(harness.binary("porthole-agent-" + OLD), OLD)
            cid = self.update(a, "version=" + OLD, "allowDowngrade=true")
            inv, _ = self.watch(cid, a, 120)
            self.assertEqual(inv["Status"], "Success", inv)
            self.assertIn("from %s to %s" % (NEW, OLD),
                          inv["StandardOutputContent"])
            info = self.wait_version(a, OLD)
            # 3.3.1000.0 is still hosted: not the latest.
            self.assertFalse(info["IsLatestVersion"])
        finally:
            sessionkit.set_session_prefs(c, kmsKeyId="")


class Rollback(UpdateBase):
    """A package that cannot start is rolled back by the watchdog."""

    confirm_seconds = 4

    def test_rollback(self):
        c = self.cluster
        a = self.agent
        broken = os.path.join(c.tmp, "broken-agent")
        with open(broken, "w") as f:
            f.write("#!/bin/sh\nexit 1\n")
        self.publish(broken, "9.0.0.0")
        before = sha256_file(a.binary())
        cid = self.update(a, "version=9.0.0.0")
        # While it waits, the watchdog holds none of the agent's sockets.
        pidfile = os.path.join(a.state_dir, "update-watchdog.pid")
        harness.wait_for(lambda: os.path.exists(pidfile), 30, 0.05,
                         "the watchdog to start")
        with open(pidfile) as f:
            wpid = int(f.read())
        try:
            fds = os.listdir("/proc/%d/fd" % wpid)
        except FileNotFoundError:
            fds = []    # already done: a very slow machine
        for fd in fds:
            try:
                link = os.readlink("/proc/%d/fd/%s" % (wpid, fd))
            except OSError:
                continue
            self.assertFalse(link.startswith("socket:"), (fd, link))
        inv, seen = self.watch(cid, a, 120)
        self.assertEqual(inv["Status"], "Failed", (inv, seen))
        err = inv["StandardErrorContent"]
        self.assertIn("did not reconnect within %d s" % self.confirm_seconds,
                      err)
        self.assertIn("rolled back to " + OLD, err)
        # The old binary is back, and an agent runs it (started by the
        # watchdog, detached: the harness's child exited 1).
        self.assertEqual(sha256_file(a.binary()), before)
        self.assertFalse(a.proc.alive())
        self.assertTrue(a.detached_pids())
        info = self.wait_version(a, OLD)
        self.assertFalse(info["IsLatestVersion"])
        # It runs commands again.
        out = c.aws("ssm", "send-command", "--instance-ids", a.instance_id,
                    "--document-name", "AWS-RunShellScript",
                    "--parameters", '{"commands":["echo back-again"]}')
        inv, _ = self.watch(out["Command"]["CommandId"], a, 60)
        self.assertEqual(inv["Status"], "Success")
        self.assertIn("back-again", inv["StandardOutputContent"])


class Tampered(UpdateBase):
    """A hosted package changed on disk after `agent-package add` is
    refused by the agent; garbage on the route and the subcommand."""

    def test_tampered_refused(self):
        c = self.cluster
        a = self.agent
        self.publish(harness.binary("porthole-agent"), NEW)
        blob = os.path.join(c.data_dir, "agent-packages",
                            "porthole-agent-%s-%s" % (self.platform(), NEW))
        self.assertTrue(os.path.exists(blob), blob)
        with open(blob, "r+b") as f:
            f.seek(100)
            b = f.read(1)
            f.seek(100)
            f.write(bytes([b[0] ^ 0xff]))
        before = sha256_file(a.binary())
        cid = self.update(a, "version=" + NEW)
        inv, _ = self.watch(cid, a, 120)
        self.assertEqual(inv["Status"], "Failed")
        err = inv["StandardErrorContent"]
        self.assertIn("failed verification", err)
        self.assertIn("nothing was installed", err)
        self.assertEqual(sha256_file(a.binary()), before)
        self.assertFalse(os.path.exists(a.binary() + ".old"))
        self.assertTrue(a.proc.alive())
        self.assertEqual(self.info(a)["AgentVersion"], OLD)

    def platform(self):
        out = subprocess.run([harness.binary("portholed"), "--help"],
                             capture_output=True, text=True, timeout=30)
        for word in (out.stdout + out.stderr).replace("]", " ").split():
            if word.startswith("linux-"):
                return word
        return "linux-amd64"

    # ---- the download route -------------------------------------------------

    def get(self, target, cert=True, method="GET"):
        ctx = ssl.create_default_context(cafile=self.cluster.ca)
        if cert:
            ctx.load_cert_chain(os.path.join(self.agent.state_dir,
                                             "cert.pem"),
                                os.path.join(self.agent.state_dir,
                                             "key.pem"))
        conn = http.client.HTTPSConnection("127.0.0.1", self.cluster.port,
                                           context=ctx, timeout=30)
        try:
            conn.request(method, target)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def test_route(self):
        a = self.agent
        for f in ("cert.pem", "key.pem"):
            self.assertTrue(os.path.exists(os.path.join(a.state_dir, f)))
        self.publish(harness.binary("porthole-agent"), "3.3.1000.1")
        plat = self.platform()
        st, h, body = self.get("/v1/agent-package?platform=%s&version="
                               "3.3.1000.1" % plat)
        self.assertEqual(st, 200)
        self.assertEqual(h["X-Porthole-Package-Version"], "3.3.1000.1")
        self.assertEqual(hashlib.sha256(body).hexdigest(),
                         h["X-Porthole-Package-Sha256"])
        self.assertTrue(h["X-Porthole-Package-Signature"])
        # Without an instance certificate: refused.
        st, _, body = self.get("/v1/agent-package?platform=" + plat,
                               cert=False)
        self.assertEqual(st, 403)
        self.assertIn(b"AccessDenied", body)
        st, _, body = self.get("/v1/agent-package?platform=%s&version=1.2.3"
                               % plat)
        self.assertEqual(st, 404)
        self.assertIn(b"NotFound", body)
        for q in ("", "?", "?platform=", "?platform=linux",
                  "?platform=../../etc/passwd", "?version=1.0",
                  "?platform=%s&version=x" % plat,
                  "?platform=%s&platform=%s" % (plat, plat),
                  "?platform=%s&junk=1" % plat, "?%00%01%ff",
                  "?platform=" + "a" * 5000, "?" + "&" * 300):
            st, _, body = self.get("/v1/agent-package" + q)
            self.assertEqual(st, 400, q)
            self.assertIn(b"ValidationException", body)
        st, _, _ = self.get("/v1/agent-package?platform=" + plat,
                            method="POST")
        self.assertEqual(st, 405)
        st, _, _ = self.get("/v1/agent-package?platform=" + plat,
                            method="DELETE")
        self.assertEqual(st, 405)
        # portholed still serves.
        self.assertEqual(self.info(a)["PingStatus"], "Online")

    def test_add_garbage(self):
        c = self.cluster
        good = harness.binary("porthole-agent")
        empty = os.path.join(c.tmp, "empty")
        open(empty, "w").close()
        cases = [
            (good, "not-a-version", ()),
            (good, "1.2.3.4.5", ()),
            (good, "../../x", ()),
            (good, "", ()),
            (good, "1.0", ("--platform", "Linux/amd64")),
            (good, "1.0", ("--platform", "linux")),
            (good, "1.0", ("--platform", "x" * 100 + "-y")),
            ("/nonexistent/agent", "1.0", ()),
            (c.tmp, "1.0", ()),
            (empty, "1.0", ()),
        ]
        for path, version, extra in cases:
            p = self.publish(path, version, False, *extra)
            self.assertNotEqual(p.returncode, 0, (path, version, extra))
            self.assertIn("portholed agent-package", p.stderr)
        # The same version twice.
        self.publish(good, "3.3.1000.2")
        p = self.publish(good, "3.3.1000.2", False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("hosted already", p.stderr)
        for argv in (["agent-package"], ["agent-package", "add"],
                     ["agent-package", "add", good],
                     ["agent-package", "remove", good, "--version", "1.0"],
                     ["agent-package", "list", "extra",
                      "--data-dir", c.data_dir],
                     ["agent-package", "list", "--data-dir",
                      "/nonexistent"]):
            p = subprocess.run([harness.binary("portholed"), *argv],
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(p.returncode, 0, argv)


if __name__ == "__main__":
    unittest.main()
