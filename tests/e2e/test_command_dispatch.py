"""Run Command's delivery with a real agent, through the AWS CLI: a
command runs and its output comes back; executionTimeout kills the whole
process tree; an offline agent's invocation ends DeliveryTimedOut at
TimeoutSeconds; a result finished while portholed was down arrives when
it is back; an agent restarted mid-command reports the command Failed
with the reason; CancelCommand; and the step-output endpoint
(/v1/command-output) answers garbage with 400/403 and files a step's
output for the command's bucket."""

import json
import os
import re
import ssl
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import harness

FINAL = ("Success", "Failed", "TimedOut", "Cancelled")


class CommandDispatch(harness.ClusterTestCase):

    # ---- helpers -----------------------------------------------------------

    def send(self, commands, *extra, target=None, timeout=None):
        """aws ssm send-command with AWS-RunShellScript; the CommandId."""
        argv = ["ssm", "send-command",
                "--instance-ids", target or self.target,
                "--document-name", "AWS-RunShellScript",
                "--parameters", json.dumps(commands)]
        if timeout is not None:
            argv += ["--timeout-seconds", str(timeout)]
        out = self.cluster.aws(*argv, *extra)
        return out["Command"]["CommandId"]

    def invocation(self, cid, target=None):
        p = self.cluster.aws("ssm", "get-command-invocation",
                             "--command-id", cid,
                             "--instance-id", target or self.target,
                             check=False)
        if p.returncode != 0:
            return None   # InvocationDoesNotExist right after sending
        return json.loads(p.stdout)

    def wait_invocation(self, cid, statuses, timeout, target=None):
        def done():
            inv = self.invocation(cid, target)
            return inv if inv and inv["Status"] in statuses else None
        try:
            return harness.wait_for(done, timeout, 0.5,
                                    "%s to be %s" % (cid, statuses))
        except TimeoutError:
            raise AssertionError("%s: last %r\nserver:\n%s\nagent:\n%s" % (
                cid, self.invocation(cid, target),
                harness.tail(self.cluster.server_log, 40),
                harness.tail(self.agent.log_path, 40))) from None

    def command(self, cid):
        out = self.cluster.aws("ssm", "list-commands", "--command-id", cid)
        return out["Commands"][0]

    def wait_command(self, cid, timeout=20):
        return harness.wait_for(
            lambda: (lambda c: c if c["Status"] in FINAL else None)(
                self.command(cid)), timeout, 0.5, "command %s final" % cid)

    @staticmethod
    def pids_of(marker):
        p = subprocess.run(["pgrep", "-f", marker], capture_output=True,
                           text=True)
        return [int(x) for x in p.stdout.split()]

    # ---- tests -------------------------------------------------------------

    def test_success_output_and_counts(self):
        cid = self.send({"commands": ["echo hello-dispatch",
                                      "echo oops >&2"]})
        inv = self.wait_invocation(cid, FINAL, 60)
        self.assertEqual((inv["Status"], inv["StatusDetails"]),
                         ("Success", "Success"), inv)
        self.assertEqual(inv["ResponseCode"], 0)
        self.assertIn("hello-dispatch", inv["StandardOutputContent"])
        self.assertIn("oops", inv["StandardErrorContent"])
        cmd = self.wait_command(cid)
        self.assertEqual((cmd["Status"], cmd["StatusDetails"]),
                         ("Success", "Success"))
        self.assertEqual((cmd["TargetCount"], cmd["CompletedCount"],
                          cmd["ErrorCount"]), (1, 1, 0))
        # The waiter botocore ships works on it.
        self.cluster.aws("ssm", "wait", "command-executed", "--command-id",
                         cid, "--instance-id", self.target, output="text")

    def test_failure_code(self):
        cid = self.send({"commands": ["echo before", "exit 7"]})
        inv = self.wait_invocation(cid, FINAL, 60)
        self.assertEqual(inv["Status"], "Failed", inv)
        self.assertEqual(inv["ResponseCode"], 7)
        cmd = self.wait_command(cid)
        self.assertEqual((cmd["Status"], cmd["ErrorCount"]), ("Failed", 1))

    def test_execution_timeout_kills_process_tree(self):
        marker = "sleep 2938"
        script = ["(%s; echo never) &" % marker, "%s" % marker,
                  "echo not-reached"]
        cid = self.send({"commands": script, "executionTimeout": ["3"]})
        inv = self.wait_invocation(cid, FINAL, 60)
        self.assertEqual((inv["Status"], inv["StatusDetails"]),
                         ("TimedOut", "ExecutionTimedOut"), inv)
        self.assertNotIn("not-reached", inv["StandardOutputContent"])
        # Neither the script nor its background child survives.
        harness.wait_for(lambda: not self.pids_of(marker), 10, 0.2,
                         "no %r left" % marker)
        cmd = self.wait_command(cid)
        self.assertEqual((cmd["Status"], cmd["StatusDetails"]),
                         ("TimedOut", "ExecutionTimedOut"))
        self.assertEqual(cmd["ErrorCount"], 1)

    def test_cancel(self):
        marker = "sleep 2939"
        cid = self.send({"commands": [marker]})
        self.wait_invocation(cid, ("InProgress",), 30)
        self.cluster.aws("ssm", "cancel-command", "--command-id", cid)
        inv = self.wait_invocation(cid, FINAL, 30)
        self.assertEqual(inv["Status"], "Cancelled", inv)
        cmd = self.wait_command(cid)
        self.assertEqual(cmd["Status"], "Cancelled")
        harness.wait_for(lambda: not self.pids_of(marker), 10, 0.2,
                         "no %r left" % marker)
        # A final command cannot be cancelled again.
        p = self.cluster.aws("ssm", "cancel-command", "--command-id", cid,
                             check=False)
        self.assertNotEqual(p.returncode, 0)

    def test_result_after_portholed_restart(self):
        c = self.cluster
        cid = self.send({"commands": ["sleep 4", "echo after-restart"]})
        self.wait_invocation(cid, ("InProgress",), 30)
        self.assertEqual(c.stop_server(), 0)
        time.sleep(7)   # the command ends while portholed is down
        c.start_server()
        inv = self.wait_invocation(cid, FINAL, 360)
        self.assertEqual(inv["Status"], "Success", inv)
        self.assertIn("after-restart", inv["StandardOutputContent"])
        self.assertEqual(self.wait_command(cid)["Status"], "Success")

    def test_agent_restarted_mid_command(self):
        c = self.cluster
        cid = self.send({"commands": ["sleep 2940", "echo finished"]})
        self.wait_invocation(cid, ("InProgress",), 30)
        self.agent.proc.kill()
        c.processes.remove(self.agent.proc)
        self.agent.proc.close()
        self.agent.start()
        c.wait_online(self.target, agent=self.agent)
        inv = self.wait_invocation(cid, FINAL, 120)
        self.assertEqual(inv["Status"], "Failed", inv)
        reason = (inv["StandardErrorContent"] + inv["StandardOutputContent"]
                  + json.dumps(c.aws("ssm", "list-command-invocations",
                                     "--command-id", cid, "--details")))
        self.assertRegex(reason.lower(), r"restart|interrupt|agent")
        self.assertNotIn("finished", inv["StandardOutputContent"])
        subprocess.run(["pkill", "-f", "sleep 2940"], check=False)

    def test_zz_delivery_timeout_offline_agent(self):
        c = self.cluster
        self.agent.proc.stop()
        c.processes.remove(self.agent.proc)
        self.agent.proc.close()
        try:
            harness.wait_for(lambda: (c.instance_info(self.target) or {})
                             .get("PingStatus") != "Online", 30, 0.5,
                             "the agent to be offline")
            t0 = time.monotonic()
            cid = self.send({"commands": ["echo never"]}, timeout=30)
            inv = self.wait_invocation(cid, ("Pending", "Delayed"), 15)
            inv = self.wait_invocation(cid, FINAL, 60)
            self.assertGreaterEqual(time.monotonic() - t0, 28)
            self.assertEqual((inv["Status"], inv["StatusDetails"]),
                             ("TimedOut", "DeliveryTimedOut"), inv)
            self.assertEqual(inv["ResponseCode"], -1)
            cmd = self.wait_command(cid)
            self.assertEqual((cmd["Status"], cmd["StatusDetails"]),
                             ("TimedOut", "DeliveryTimedOut"))
            self.assertEqual((cmd["DeliveryTimedOutCount"],
                              cmd["ErrorCount"], cmd["CompletedCount"]),
                             (1, 0, 1))
        finally:
            self.agent.start()
            c.wait_online(self.target, agent=self.agent)
        # Coming back later does not run it.
        time.sleep(2)
        self.assertEqual(self.invocation(cid)["Status"], "TimedOut")

    # ---- /v1/command-output ------------------------------------------------

    def put_output(self, path, body=b"x", cert=None):
        c = self.cluster
        ctx = ssl.create_default_context(cafile=c.ca)
        if cert is not None:
            ctx.load_cert_chain(*cert)
        r = urllib.request.Request(c.endpoint + path, data=body,
                                   method="PUT")
        try:
            with urllib.request.urlopen(r, context=ctx, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def agent_cert(self):
        crt = key = None
        for p in self.agent.state_files():
            try:
                with open(p, "rb") as f:
                    data = f.read(1 << 16)
            except OSError:
                continue
            if b"BEGIN CERTIFICATE" in data and crt is None and \
                    not p.endswith(("ca.pem", "ca.crt")):
                crt = p
            if b"PRIVATE KEY" in data and key is None:
                key = p
        return (crt, key) if crt and key else None

    def test_output_endpoint(self):
        c = self.cluster
        cid = self.send({"commands": ["echo to-bucket"]}, "--output-s3-bucket-name",
                        "porthole-e2e-out", "--output-s3-key-prefix", "runs")
        self.wait_invocation(cid, FINAL, 60)
        good = "/v1/command-output/%s/aws%%3ArunShellScript/stdout" % cid
        # Garbage paths: 400, whoever asks.
        for path in ("/v1/command-output/", "/v1/command-output/x/y/stdout",
                     "/v1/command-output/%s/step/other" % cid,
                     "/v1/command-output/%s//stdout" % cid,
                     "/v1/command-output/%s/a%%2Fb/stdout" % cid,
                     "/v1/command-output/%s/%%zz/stdout" % cid,
                     "/v1/command-output/%s/..//stdout" % cid,
                     "/v1/command-output/%s/a%%00b/stdout" % cid):
            st, body = self.put_output(path)
            self.assertEqual(st, 400, (path, body))
        # Without the target's certificate: 403.
        st, body = self.put_output(good)
        self.assertEqual(st, 403, body)
        cert = self.agent_cert()
        if cert is None:
            self.skipTest("no agent certificate found in its state dir")
        try:
            st, body = self.put_output(good, b"whole output\n" * 100, cert)
        except ssl.SSLError as e:
            self.skipTest("agent key not loadable: %s" % e)
        self.assertEqual(st, 200, body)
        self.assertEqual(body["Key"], "runs/%s/%s/awsrunShellScript/"
                         "awsrunShellScript/stdout" % (cid, self.target))
        self.assertIn("porthole-e2e-out", body["Url"])
        inv = self.invocation(cid)
        self.assertEqual(inv["StandardOutputUrl"], body["Url"])
        # Another command's output, or a command without a bucket: refused.
        other = self.send({"commands": ["true"]})
        self.wait_invocation(other, FINAL, 60)
        st, body = self.put_output(
            "/v1/command-output/%s/aws%%3ArunShellScript/stdout" % other,
            b"x", cert)
        self.assertEqual(st, 400, body)
        self.assertTrue(c.server.alive())


if __name__ == "__main__":
    harness.main()
