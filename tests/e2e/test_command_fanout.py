"""Run Command fan-out: MaxConcurrency and MaxErrors on 20 agents.

porthole-loadgen in command mode holds 20 simulated agents (real mutual
TLS control channels) against the cluster's portholed; every second one
answers its jobs Failed (code 1), the others Success with their instance
id as output, each after 400 ms. Through boto3 and the AWS CLI:

- SendCommand to a tag with MaxConcurrency 5 / MaxErrors 2, and again with
  25% / 10% (the same numbers for 20 targets): ListCommandInvocations
  polled meanwhile never shows more than 5 InProgress, and the agents'
  own count of jobs in flight never passes 5; once more than 2 failed no
  new target gets the command: those are reported Cancelled /
  Terminated, as AWS reports them, and the agents never got a job for
  them; the command ends Failed.
- MaxConcurrency 100% to the ten succeeding agents: every invocation
  Success with the instance id as output.
- `porthole send-command --wait`: a progress line (rewritten in place on
  a terminal, plain lines otherwise), per-instance results (Failed with
  its code, Cancelled/Terminated for targets MaxErrors kept from
  running), exit status 0 when all succeeded and 1 when one failed;
  without --wait the CommandId; bad arguments exit 2 with a message and
  send nothing; an unknown document exits 255 with the AWS error.
Every loop is bounded in count and time.
"""

import json
import os
import pty
import select
import signal
import subprocess
import threading
import time

import harness

AGENTS = 20
FAIL_EVERY = 2
DELAY_MS = 400
TAG = "Fleet=fanout"
READY_TIMEOUT = 120
COMMAND_TIMEOUT = 90
FINAL = ("Success", "Failed", "Cancelled", "TimedOut")


class LoadGen:
    """porthole-loadgen in command mode, stopped with SIGTERM; its JSON
    summary line is the result."""

    def __init__(self, cluster, tag):
        self.cluster = cluster
        self.ready_file = os.path.join(cluster.tmp, "loadgen-ready-%s.json"
                                       % tag)
        if os.path.exists(self.ready_file):
            os.unlink(self.ready_file)
        self.log = os.path.join(cluster.tmp, "loadgen-%s.log" % tag)
        argv = [harness.binary("porthole-loadgen"),
                "--endpoint", cluster.endpoint, "--ca", cluster.ca,
                "--data-dir", cluster.data_dir,
                "--agents", str(AGENTS), "--hold", "600",
                "--state-cache", os.path.join(cluster.tmp, "loadgen-cache"),
                "--command-delay-ms", str(DELAY_MS),
                "--command-fail-every", str(FAIL_EVERY),
                "--tag", TAG, "--ready-file", self.ready_file]
        self.errf = open(self.log, "ab")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=self.errf,
                                  start_new_session=True)
        self.out = []
        self.reader = threading.Thread(
            target=lambda: self.out.append(self.p.stdout.read()),
            daemon=True)
        self.reader.start()
        self.ready = None

    def wait_ready(self):
        def ready():
            if self.p.poll() is not None:
                raise AssertionError("porthole-loadgen exited %s: %s" % (
                    self.p.returncode, harness.tail(self.log, 20)))
            return os.path.exists(self.ready_file)
        harness.wait_for(ready, READY_TIMEOUT, interval=0.3,
                         what="the simulated agents to connect")
        with open(self.ready_file) as f:
            self.ready = json.load(f)
        return self.ready

    def stop(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(10)
        self.reader.join(10)
        self.p.stdout.close()
        self.errf.close()
        text = (self.out[0] if self.out else b"").decode(errors="replace")
        for line in reversed(text.strip().splitlines()):
            try:
                return json.loads(line)
            except ValueError:
                continue
        raise AssertionError("porthole-loadgen printed no summary: %s"
                             % harness.tail(self.log, 20))

    def kill(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(10)
        if not self.p.stdout.closed:
            self.reader.join(10)
            self.p.stdout.close()
        if not self.errf.closed:
            self.errf.close()


class CommandFanout(harness.ClusterTestCase):

    with_agent = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        harness.require_binaries("porthole-loadgen")
        # loadgen's activations name this role.
        cls.cluster.ensure_role("porthole-loadgen")

    def start_loadgen(self, tag):
        lg = LoadGen(self.cluster, tag)
        self.addCleanup(lg.kill)
        ready = lg.wait_ready()
        self.assertEqual(len(ready["connected"]), AGENTS, ready)
        self.assertEqual(len(ready["failing"]), AGENTS // FAIL_EVERY)
        self.failing = set(ready["failing"])
        self.good = [i for i in ready["connected"] if i not in self.failing]
        # portholed has every agent online before a command goes out.
        ssm = self.cluster.ssm()

        def online():
            r = ssm.describe_instance_information(
                Filters=[{"Key": "PingStatus", "Values": ["Online"]}],
                MaxResults=50)
            ids = {x["InstanceId"] for x in r["InstanceInformationList"]}
            return set(ready["connected"]) <= ids
        harness.wait_for(online, 30, what="the agents to be Online")
        return lg

    def invocations(self, ssm, cid, details=False):
        out, token = [], None
        for _ in range(100):
            kw = {"CommandId": cid, "Details": details, "MaxResults": 50}
            if token:
                kw["NextToken"] = token
            r = ssm.list_command_invocations(**kw)
            out += r["CommandInvocations"]
            token = r.get("NextToken")
            if not token:
                break
        return out

    def wait_final(self, ssm, cid):
        """Poll until the command is final; the most invocations seen
        InProgress at once."""
        most = 0
        deadline = time.monotonic() + COMMAND_TIMEOUT
        cmd = None
        for _ in range(COMMAND_TIMEOUT * 10):
            invs = self.invocations(ssm, cid)
            most = max(most, sum(1 for i in invs
                                 if i["Status"] == "InProgress"))
            cmd = ssm.list_commands(CommandId=cid)["Commands"][0]
            if cmd["Status"] in FINAL or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertIn(cmd["Status"], FINAL, cmd)
        return cmd, most

    def check_max_errors(self, ssm, cid):
        cmd, most = self.wait_final(ssm, cid)
        self.assertLessEqual(most, 5)
        invs = self.invocations(ssm, cid, details=True)
        self.assertEqual(len(invs), AGENTS)
        by = {}
        for i in invs:
            by.setdefault(i["Status"], []).append(i)
        ok = by.get("Success", [])
        failed = by.get("Failed", [])
        notrun = by.get("Cancelled", [])
        self.assertEqual(len(ok) + len(failed) + len(notrun), AGENTS,
                         [(i["InstanceId"], i["Status"]) for i in invs])
        # Delivery stopped once more than 2 had failed: with 10 of 20
        # failing and at most 5 in flight, at least 3 never ran.
        self.assertGreaterEqual(len(failed), 3)
        self.assertGreaterEqual(len(notrun), 3)
        for i in notrun:
            self.assertEqual(i["StatusDetails"], "Terminated", i)
            self.assertFalse(any(p.get("Output") for p in
                                 i.get("CommandPlugins", [])), i)
        for i in failed:
            self.assertIn(i["InstanceId"], self.failing)
            self.assertEqual(i["CommandPlugins"][0]["ResponseCode"], 1, i)
        for i in ok:
            self.assertNotIn(i["InstanceId"], self.failing)
            self.assertIn(i["InstanceId"], i["CommandPlugins"][0]["Output"])
        self.assertEqual(cmd["Status"], "Failed", cmd)
        self.assertEqual(cmd["TargetCount"], AGENTS)
        self.assertEqual(cmd["CompletedCount"], AGENTS)
        self.assertEqual(cmd["ErrorCount"], len(failed))
        return len(ok) + len(failed)

    def test_max_concurrency_and_max_errors(self):
        lg = self.start_loadgen("errors")
        ssm = self.cluster.ssm()
        # Numbers, through boto3.
        r = ssm.send_command(
            DocumentName="AWS-RunShellScript",
            Targets=[{"Key": "tag:Fleet", "Values": ["fanout"]}],
            Parameters={"commands": ["echo hi"]},
            MaxConcurrency="5", MaxErrors="2", Comment="fan-out e2e")
        self.assertEqual(r["Command"]["MaxConcurrency"], "5")
        self.assertEqual(r["Command"]["MaxErrors"], "2")
        delivered = self.check_max_errors(ssm, r["Command"]["CommandId"])
        # Percentages of 20 targets, through the AWS CLI.
        out = self.cluster.aws(
            "ssm", "send-command", "--document-name", "AWS-RunShellScript",
            "--targets", "Key=tag:Fleet,Values=fanout",
            "--parameters", "commands=echo hi",
            "--max-concurrency", "25%", "--max-errors", "10%")
        self.assertEqual(out["Command"]["MaxConcurrency"], "25%")
        delivered += self.check_max_errors(ssm,
                                           out["Command"]["CommandId"])
        js = lg.stop()
        if os.environ.get("FANOUT_VERBOSE"):
            print(json.dumps(js))
        # The agents' own view: never more than 5 jobs at once, and a job
        # for exactly the invocations that ran.
        self.assertLessEqual(js["command_max_in_flight"], 5, js)
        self.assertGreaterEqual(js["command_max_in_flight"], 2, js)
        self.assertEqual(js["command_jobs"], delivered, js)
        self.assertEqual(js["command_bad_jobs"], 0, js)
        self.assertEqual(js["command_final_acked"],
                         js["command_final_replies"], js)
        self.assertEqual(js["command_in_flight_at_end"], 0, js)

    def test_all_success_and_porthole_send_command(self):
        lg = self.start_loadgen("success")
        ssm = self.cluster.ssm()
        r = ssm.send_command(
            DocumentName="AWS-RunShellScript", InstanceIds=self.good,
            Parameters={"commands": ["echo hi"]}, MaxConcurrency="100%")
        cid = r["Command"]["CommandId"]
        cmd, _most = self.wait_final(ssm, cid)
        self.assertEqual(cmd["Status"], "Success", cmd)
        invs = self.invocations(ssm, cid, details=True)
        self.assertEqual(sorted(i["InstanceId"] for i in invs),
                         sorted(self.good))
        for i in invs:
            self.assertEqual(i["Status"], "Success", i)
            self.assertEqual(i["CommandPlugins"][0]["Output"].strip(),
                             i["InstanceId"])
        env = self.cluster.env
        porthole = harness.binary("porthole")
        # --wait, all succeed: exit 0, a result per instance.
        three = self.good[:3]
        p = subprocess.run(
            [porthole, "send-command", "--document-name",
             "AWS-RunShellScript", "--instance-ids", ",".join(three),
             "--parameters", "commands=echo hi", "--max-concurrency", "2",
             "--wait", "--wait-seconds", str(COMMAND_TIMEOUT)],
            capture_output=True, text=True, timeout=COMMAND_TIMEOUT + 30,
            stdin=subprocess.DEVNULL, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        lines = p.stdout.splitlines()
        self.assertRegex(lines[0], r"^[0-9a-f-]{36}$")
        for iid in three:
            self.assertRegex(p.stdout, r"(?m)^%s  Success  code 0\n    %s$"
                             % (iid, iid))
        # Not a terminal: plain progress lines, the last one complete.
        self.assertRegex(p.stderr, r"(?m)^3 / 3 done, 0 failed \(Success\)$")
        self.assertNotIn("\r", p.stderr)
        # One failing instance: exit 1 and its Failed line.
        bad = sorted(self.failing)[0]
        p = subprocess.run(
            [porthole, "send-command", "--document-name",
             "AWS-RunShellScript", "--instance-ids", self.good[3], bad,
             "--parameters", "commands=echo hi", "--wait",
             "--wait-seconds", str(COMMAND_TIMEOUT)],
            capture_output=True, text=True, timeout=COMMAND_TIMEOUT + 30,
            stdin=subprocess.DEVNULL, env=env)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"(?m)^%s  Failed  code 1$" % bad)
        self.assertRegex(p.stdout, r"(?m)^%s  Success  code 0$"
                         % self.good[3])
        self.assertRegex(p.stderr, r"(?m)^2 / 2 done, 1 failed \(Failed\)$")
        # MaxErrors 0, one at a time, the failing one first (targets go
        # out in order): the others are never run, and say so.
        p = subprocess.run(
            [porthole, "send-command", "--document-name",
             "AWS-RunShellScript", "--instance-ids", bad, self.good[4],
             self.good[5], "--parameters", "commands=echo hi",
             "--max-concurrency", "1", "--max-errors", "0", "--wait",
             "--wait-seconds", str(COMMAND_TIMEOUT)],
            capture_output=True, text=True, timeout=COMMAND_TIMEOUT + 30,
            stdin=subprocess.DEVNULL, env=env)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"(?m)^%s  Failed  code 1$" % bad)
        for iid in self.good[4:6]:
            self.assertRegex(p.stdout, r"(?m)^%s  Cancelled/Terminated"
                             % iid)
        # On a terminal the progress line is rewritten in place.
        master, slave = pty.openpty()
        try:
            proc = subprocess.Popen(
                [porthole, "send-command", "--document-name",
                 "AWS-RunShellScript", "--instance-ids", self.good[6],
                 "--parameters", "commands=echo hi", "--wait",
                 "--wait-seconds", str(COMMAND_TIMEOUT)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=slave, env=env)
            os.close(slave)
            slave = -1
            out, _ = proc.communicate(timeout=COMMAND_TIMEOUT + 30)
            tty = b""
            for _ in range(1000):
                r, _w, _x = select.select([master], [], [], 0.5)
                if not r:
                    break
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                tty += chunk
        finally:
            if slave >= 0:
                os.close(slave)
            os.close(master)
        self.assertEqual(proc.returncode, 0, out + tty)
        self.assertIn(b"\r\x1b[K1 / 1 done, 0 failed (Success)", tty)
        self.assertIn(("%s  Success  code 0" % self.good[6]).encode(), out)
        # Without --wait: the CommandId only, exit 0.
        p = subprocess.run(
            [porthole, "send-command", "--document-name",
             "AWS-RunShellScript", "--targets", "Key=tag:Fleet,Values=fanout",
             "--parameters", "commands=echo hi"],
            capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        cid = p.stdout.strip()
        self.assertRegex(cid, r"^[0-9a-f-]{36}$")
        self.wait_final(ssm, cid)
        # Garbage arguments: a message and exit 2, nothing sent.
        before = len(ssm.list_commands()["Commands"])
        for argv in (["--document-name", "AWS-RunShellScript"],
                     ["--instance-ids", self.good[0]],
                     ["--document-name", "D", "--instance-ids", "x;y"],
                     ["--document-name", "D", "--targets", "tag:a=b"],
                     ["--document-name", "D", "--instance-ids",
                      self.good[0], "--max-concurrency", "0"],
                     ["--document-name", "D", "--instance-ids",
                      self.good[0], "--max-errors", "200%"],
                     ["--document-name", "D", "--instance-ids",
                      self.good[0], "--timeout-seconds", "5"],
                     ["--document-name", "D", "--instance-ids",
                      self.good[0], "--parameters", "{not json"],
                     ["--bogus"]):
            p = subprocess.run([porthole, "send-command"] + argv,
                               capture_output=True, text=True, timeout=30,
                               stdin=subprocess.DEVNULL, env=env)
            self.assertEqual(p.returncode, 2, (argv, p.stderr))
            self.assertIn("porthole send-command:", p.stderr)
            self.assertEqual(p.stdout, "")
        self.assertEqual(len(ssm.list_commands()["Commands"]), before)
        # An unknown document: the API's error, exit 255.
        p = subprocess.run(
            [porthole, "send-command", "--document-name", "No-Such-Doc",
             "--instance-ids", self.good[0]], capture_output=True,
            text=True, timeout=60, stdin=subprocess.DEVNULL, env=env)
        self.assertEqual(p.returncode, 255, p.stdout + p.stderr)
        self.assertIn("An error occurred (InvalidDocument)", p.stderr)
        js = lg.stop()
        self.assertEqual(js["command_bad_jobs"], 0, js)
        self.assertEqual(js["command_in_flight_at_end"], 0, js)

    def test_porthole_send_command_real_agent(self):
        """A real porthole-agent: the output lines and the exit code."""
        agent = self.cluster.add_agent("real")
        porthole = harness.binary("porthole")
        p = subprocess.run(
            [porthole, "send-command", "--document-name",
             "AWS-RunShellScript", "--instance-ids", agent.instance_id,
             "--parameters", "commands=echo one; echo two",
             "--parameters", "commands=echo oops >&2; exit 3",
             "--comment", "porthole send-command e2e", "--wait",
             "--wait-seconds", str(COMMAND_TIMEOUT)],
            capture_output=True, text=True, timeout=COMMAND_TIMEOUT + 30,
            stdin=subprocess.DEVNULL, env=self.cluster.env)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"(?m)^%s  Failed  code 3\n    one\n"
                         r"    two$" % agent.instance_id)
        self.assertRegex(p.stderr, r"(?m)^1 / 1 done, 1 failed \(Failed\)$")
        cid = p.stdout.splitlines()[0]
        inv = self.cluster.ssm().get_command_invocation(
            CommandId=cid, InstanceId=agent.instance_id)
        self.assertEqual(inv["ResponseCode"], 3)
        self.assertIn("oops", inv["StandardErrorContent"])
        cmd = self.cluster.ssm().list_commands(CommandId=cid)["Commands"][0]
        self.assertEqual(cmd["Comment"], "porthole send-command e2e")


if __name__ == "__main__":
    harness.main()
