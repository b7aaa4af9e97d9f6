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
import sessionkit

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

    def test_output_to_bucket(self):
        cid = self.send({"commands": ["echo to-the-bucket"]},
                        "--output-s3-bucket-name", "porthole-e2e-out",
                        "--output-s3-key-prefix", "runs")
        self.wait_invocation(cid, FINAL, 60)
        want = "runs/%s/%s/awsrunShellScript/0.awsrunShellScript/stdout" % (
            cid, self.target)
        inv = harness.wait_for(
            lambda: (lambda i: i if i and i["StandardOutputUrl"] else None)(
                self.invocation(cid)), 20, 0.5, "StandardOutputUrl")
        self.assertTrue(inv["StandardOutputUrl"].endswith(want), inv)
        self.assertIn("porthole-e2e-out", inv["StandardOutputUrl"])
        det = self.cluster.aws("ssm", "list-command-invocations",
                               "--command-id", cid, "--details")
        plugin = det["CommandInvocations"][0]["CommandPlugins"][0]
        self.assertTrue(plugin["StandardOutputUrl"].endswith(want), plugin)
        self.assertEqual(plugin["OutputS3BucketName"], "porthole-e2e-out")

    def test_execution_timeout_kills_process_tree(self):
        marker = "sleep 2938"
        script = ["(%s; echo never) &" % marker, "%s" % marker,
                  "echo not-reached"]
        cid = self.send({"commands": script, "executionTimeout": ["5"]})
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


# ---- the server's side alone, against agents driven by hand -----------------

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 1, 2, 8, 9, 10


class JobAgent:
    """An agent's control channel opened by hand with its certificate:
    reads agent_job frames, answers with acks and replies of our
    choosing (spec 8.3)."""

    def __init__(self, cluster, agent):
        self.cluster = cluster
        self.iid = agent.instance_id
        self.cert = os.path.join(agent.state_dir, "cert.pem")
        self.key = os.path.join(agent.state_dir, "key.pem")
        self.ctl = None
        self.frames = []

    def connect(self):
        self.close()
        self.ctl = harness.RawWebSocket(self.cluster.port,
                                        "/v1/control-channel/%s" % self.iid,
                                        self.cluster.ca, cert=self.cert,
                                        key=self.key)
        if self.ctl.status != 101:
            raise AssertionError("control channel refused: %d"
                                 % self.ctl.status)
        self.ctl.send_text(json.dumps({
            "MessageSchemaVersion": "1.0", "RequestId": "r",
            "AgentVersion": "3.3.1000.0", "PlatformType": "linux",
            "PlatformName": "fake", "PlatformVersion": "1",
            "IPAddress": "127.0.0.1", "ComputerName": "fake"}))
        harness.wait_for(
            lambda: self.cluster.ssm().get_connection_status(
                Target=self.iid)["Status"] == "connected",
            15, 0.2, "the fake agent's control channel")

    def close(self):
        if self.ctl is not None:
            self.ctl.close()
            self.ctl = None

    def incoming(self, timeout):
        """Frames as they come, until `timeout` passes."""
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                op, data = self.ctl.recv(timeout=left)
            except (TimeoutError, OSError):
                break
            if op == OP_PING:
                self.ctl.send(OP_PONG, data)
                continue
            if op != OP_BINARY:
                continue
            f = sessionkit.parse_frame(data)
            if f is None:
                continue
            f["json"] = json.loads(f["payload"] or b"null")
            yield f

    def read(self, timeout):
        """Every frame until `timeout` passes."""
        return list(self.incoming(timeout))

    @staticmethod
    def is_job(f, cid, topic):
        return f["type"] == "agent_job" and f["json"]["Topic"] == topic \
            and cid in f["json"]["Content"] + f["json"]["JobId"]

    def jobs(self, cid, timeout=5, topic="aws.ssm.sendCommand"):
        """The jobs of command cid (a cancel names it in its content)
        that come in `timeout`."""
        return [f for f in self.read(timeout)
                if self.is_job(f, cid, topic)]

    def first(self, match, timeout):
        """The first frame match(frame) accepts, as soon as it comes (the
        frames before it are dropped); None after `timeout`."""
        for f in self.incoming(timeout):
            if match(f):
                return f
        return None

    def wait_job(self, cid, timeout=10, topic="aws.ssm.sendCommand"):
        f = self.first(lambda f: self.is_job(f, cid, topic), timeout)
        if f is None:
            raise AssertionError("%s: no %s job for %s"
                                 % (self.iid, topic, cid))
        return f

    def send(self, mtype, payload):
        b = harness.client_message(mtype, payload if isinstance(
            payload, bytes) else json.dumps(payload).encode(), flags=3,
            payload_type=0)
        self.ctl.send_binary(b)
        return sessionkit.parse_frame(b)["id"]

    def ack(self, job, code="200", message="Successful"):
        return self.send("agent_job_ack", {
            "jobId": job["json"]["JobId"], "acknowledgedMessageId": job["id"],
            "createdDate": "2026-12-05T02:00:00.000Z", "statusCode": code,
            "errorMessage": message})

    def reply(self, job_id, status, out="", err="", code=0,
              topic="aws.ssm.sendCommand", content=None):
        if content is None:
            step = {"status": status, "code": code,
                    "name": "aws:runShellScript", "output": out + err,
                    "startDateTime": "2026-12-05T02:00:01.000Z",
                    "endDateTime": "2026-12-05T02:00:02.000Z",
                    "outputS3BucketName": "", "outputS3KeyPrefix": "",
                    "stepName": "aws:runShellScript",
                    "standardOutput": out, "standardError": err}
            content = json.dumps({
                "additionalInfo": {"agent": {"name": "fake"},
                                   "dateTime": "2026-12-05T02:00:02.000Z",
                                   "runId": "", "runtimeStatusCounts": {}},
                "documentStatus": status, "documentTraceOutput": "",
                "runtimeStatus": {"aws:runShellScript": step}})
        return self.send("agent_job_reply", {
            "schemaVersion": 1, "jobId": job_id, "content": content,
            "topic": topic})

    def wait_reply_ack(self, mid, timeout=10):
        f = self.first(lambda f: f["type"] == "agent_job_reply_ack" and
                       f["json"]["acknowledgedMessageId"] == mid, timeout)
        if f is None:
            raise AssertionError("no agent_job_reply_ack for %s" % mid)
        return f


class DispatchRules(harness.ClusterTestCase):
    """MaxConcurrency, MaxErrors, acks, resends, restarts, cancel and
    garbage, with three agents driven by hand."""

    with_agent = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.fakes = []
            for i in range(3):
                a = cls.cluster.add_agent("job%d" % i, start=False)
                cls.fakes.append(JobAgent(cls.cluster, a))
        except BaseException:
            cls.cluster.close(dump=True, raise_reports=False)
            raise

    def setUp(self):
        for f in self.fakes:
            f.connect()
            f.read(0.3)

    def tearDown(self):
        for f in self.fakes:
            f.close()

    def send(self, targets, *extra, commands=("true",)):
        out = self.cluster.aws(
            "ssm", "send-command", "--instance-ids", *targets,
            "--document-name", "AWS-RunShellScript", "--parameters",
            json.dumps({"commands": list(commands)}), *extra)
        return out["Command"]["CommandId"]

    # Reads go through boto3: these polls paid the AWS CLI's start-up
    # (0.7 s here: time aws --version) again and again. CommandDispatch
    # makes the same calls through the AWS CLI.
    def inv(self, cid, iid):
        return self.cluster.ssm().get_command_invocation(CommandId=cid,
                                                         InstanceId=iid)

    def wait_inv(self, cid, iid, statuses, timeout=15):
        def done():
            i = self.inv(cid, iid)
            return i if i["Status"] in statuses else None
        return harness.wait_for(done, timeout, 0.3,
                                "%s on %s in %s" % (cid, iid, statuses))

    def cmd(self, cid):
        return self.cluster.ssm().list_commands(CommandId=cid)["Commands"][0]

    def wait_cmd(self, cid, statuses, timeout=15):
        return harness.wait_for(
            lambda: (lambda c: c if c["Status"] in statuses else None)(
                self.cmd(cid)), timeout, 0.3, "%s in %s" % (cid, statuses))

    def test_max_concurrency_and_max_errors(self):
        a, b, c = self.fakes
        cid = self.send([a.iid, b.iid, c.iid], "--max-concurrency", "1",
                        "--max-errors", "0")
        job = a.wait_job(cid)
        self.assertEqual(job["json"]["JobId"],
                         "aws.ssm.%s.%s" % (cid, a.iid))
        self.assertEqual(job["json"]["SchemaVersion"], 1)
        content = json.loads(job["json"]["Content"])
        self.assertEqual(content["CommandId"], cid)
        self.assertEqual(content["DocumentName"], "AWS-RunShellScript")
        self.assertEqual(content["CloudWatchOutputEnabled"], "false")
        self.assertIn("commands", content["Parameters"])
        self.assertIsInstance(content["DocumentContent"], dict)
        # One at a time: the others wait for the first.
        self.assertEqual(b.jobs(cid, 2) + c.jobs(cid, 0.5), [])
        a.ack(job)
        self.wait_inv(cid, a.iid, ("InProgress",))
        self.assertEqual(self.cmd(cid)["Status"], "InProgress")
        mid = a.reply(job["json"]["JobId"], "Failed", err="no\n", code=2)
        a.wait_reply_ack(mid)
        inv = self.wait_inv(cid, a.iid, ("Failed",))
        self.assertEqual(inv["ResponseCode"], 2)
        # MaxErrors 0 passed: the rest is never sent.
        cmd = self.wait_cmd(cid, ("Failed",))
        self.assertEqual((cmd["ErrorCount"], cmd["CompletedCount"],
                          cmd["TargetCount"]), (1, 3, 3))
        for f in (b, c):
            i = self.inv(cid, f.iid)
            self.assertEqual((i["Status"], i["StatusDetails"]),
                             ("Cancelled", "Terminated"))
        self.assertEqual(b.jobs(cid, 1.5) + c.jobs(cid, 0.2), [])

    def test_percentage_concurrency_all_success(self):
        a, b, c = self.fakes
        cid = self.send([a.iid, b.iid, c.iid], "--max-concurrency", "67%")
        ja, jb = a.wait_job(cid), b.wait_job(cid)
        self.assertEqual(c.jobs(cid, 2), [])     # 67% of 3: two at once
        for f, j in ((a, ja), (b, jb)):
            f.ack(j)
            f.wait_reply_ack(f.reply(j["json"]["JobId"], "Success",
                                     out="ok\n"))
        jc = c.wait_job(cid)
        c.ack(jc)
        c.wait_reply_ack(c.reply(jc["json"]["JobId"], "Success", out="ok\n"))
        cmd = self.wait_cmd(cid, ("Success",))
        self.assertEqual((cmd["CompletedCount"], cmd["ErrorCount"]), (3, 0))
        self.assertEqual(self.inv(cid, c.iid)["StandardOutputContent"],
                         "ok\n")

    def test_resend_on_reconnect_and_duplicate(self):
        a = self.fakes[0]
        cid = self.send([a.iid])
        job = a.wait_job(cid)
        # Gone before acking: sent again when back.
        a.connect()
        again = a.wait_job(cid)
        self.assertEqual(again["json"]["JobId"], job["json"]["JobId"])
        a.ack(again, "51405", "DuplicateCommand")
        self.wait_inv(cid, a.iid, ("InProgress",))
        # Acked: never sent again, not even after a reconnect.
        a.connect()
        self.assertEqual(a.jobs(cid, 2), [])
        # InProgress replies carry output while it runs.
        a.wait_reply_ack(a.reply(job["json"]["JobId"], "InProgress",
                                 out="half"))
        i = self.wait_inv(cid, a.iid, ("InProgress",))
        self.assertEqual(i["StandardOutputContent"], "half")
        a.wait_reply_ack(a.reply(job["json"]["JobId"], "Success",
                                 out="half and all"))
        i = self.wait_inv(cid, a.iid, ("Success",))
        self.assertEqual(i["StandardOutputContent"], "half and all")

    def test_ack_error(self):
        a = self.fakes[1]
        cid = self.send([a.iid])
        job = a.wait_job(cid)
        a.ack(job, "51406", "InvalidDocument")
        i = self.wait_inv(cid, a.iid, ("Failed",))
        self.assertIn("InvalidDocument", i["StandardErrorContent"])
        self.wait_cmd(cid, ("Failed",))

    def test_reply_after_portholed_restart(self):
        cl = self.cluster
        a = self.fakes[2]
        cid = self.send([a.iid])
        job = a.wait_job(cid)
        a.ack(job)
        self.wait_inv(cid, a.iid, ("InProgress",))
        a.close()
        self.assertEqual(cl.stop_server(), 0)
        cl.start_server()
        a.connect()
        # Delivered before: not sent again by the new process.
        self.assertEqual(a.jobs(cid, 2), [])
        mid = a.reply(job["json"]["JobId"], "Success", out="late\n")
        a.wait_reply_ack(mid)
        i = self.wait_inv(cid, a.iid, ("Success",))
        self.assertEqual(i["StandardOutputContent"], "late\n")

    def test_pending_delivered_by_next_process(self):
        cl = self.cluster
        a = self.fakes[2]
        a.close()
        cid = self.send([a.iid])
        self.assertEqual(cl.stop_server(), 0)
        cl.start_server()
        a.connect()
        job = a.wait_job(cid)
        self.assertEqual(job["json"]["JobId"], "aws.ssm.%s.%s" % (cid, a.iid))
        a.ack(job)
        a.wait_reply_ack(a.reply(job["json"]["JobId"], "Success"))
        self.wait_cmd(cid, ("Success",))

    def test_cancel(self):
        a, b = self.fakes[0], self.fakes[1]
        b.close()
        cid = self.send([a.iid, b.iid])
        job = a.wait_job(cid)
        a.ack(job)
        self.wait_inv(cid, a.iid, ("InProgress",))
        self.cluster.aws("ssm", "cancel-command", "--command-id", cid)
        # Not delivered: Cancelled at once; delivered: Cancelling.
        self.assertEqual(self.inv(cid, b.iid)["Status"], "Cancelled")
        self.assertEqual(self.inv(cid, a.iid)["Status"], "Cancelling")
        self.assertEqual(self.cmd(cid)["Status"], "Cancelling")
        cancel = a.wait_job(cid, topic="aws.ssm.cancelCommand")
        self.assertEqual(json.loads(cancel["json"]["Content"]),
                         {"CancelMessageId": job["json"]["JobId"]})
        self.assertNotEqual(cancel["json"]["JobId"], job["json"]["JobId"])
        a.ack(cancel)
        a.wait_reply_ack(a.reply(job["json"]["JobId"], "Cancelled"))
        self.wait_inv(cid, a.iid, ("Cancelled",))
        self.wait_cmd(cid, ("Cancelled",))

    def test_cancel_one_instance(self):
        a, b = self.fakes[0], self.fakes[1]
        cid = self.send([a.iid, b.iid])
        ja, jb = a.wait_job(cid), b.wait_job(cid)
        a.ack(ja)
        b.ack(jb)
        self.wait_inv(cid, b.iid, ("InProgress",))
        self.cluster.aws("ssm", "cancel-command", "--command-id", cid,
                         "--instance-ids", b.iid)
        self.assertEqual(self.inv(cid, b.iid)["Status"], "Cancelling")
        self.assertEqual(self.inv(cid, a.iid)["Status"], "InProgress")
        self.assertEqual(a.jobs(cid, 1, topic="aws.ssm.cancelCommand"), [])
        b.wait_job(cid, topic="aws.ssm.cancelCommand")
        b.wait_reply_ack(b.reply(jb["json"]["JobId"], "Cancelled"))
        a.wait_reply_ack(a.reply(ja["json"]["JobId"], "Success"))
        self.wait_inv(cid, a.iid, ("Success",))
        self.wait_inv(cid, b.iid, ("Cancelled",))
        self.wait_cmd(cid, ("Cancelled",))

    def test_sent_but_never_acked_times_out(self):
        a = self.fakes[2]
        cid = self.send([a.iid], "--timeout-seconds", "30")
        job = a.wait_job(cid)
        i = self.wait_inv(cid, a.iid, ("TimedOut",), timeout=45)
        self.assertEqual(i["StatusDetails"], "DeliveryTimedOut")
        # A late ack changes nothing, and a late reply is acked, dropped.
        a.ack(job)
        a.wait_reply_ack(a.reply(job["json"]["JobId"], "Success"))
        time.sleep(1)
        self.assertEqual(self.inv(cid, a.iid)["Status"], "TimedOut")
        cmd = self.wait_cmd(cid, ("TimedOut",))
        self.assertEqual(cmd["DeliveryTimedOutCount"], 1)

    def test_garbage_acks_and_replies(self):
        cl = self.cluster
        a, b = self.fakes[0], self.fakes[1]
        cid = self.send([a.iid])
        job = a.wait_job(cid)
        jid = job["json"]["JobId"]
        for junk in (b"", b"not json", b"[]", b"{}", b'{"jobId":7}',
                     json.dumps({"jobId": "aws.ssm.%s.%s" % (cid, b.iid),
                                 "statusCode": "200"}).encode(),
                     json.dumps({"jobId": "x" * 5000}).encode()):
            a.send("agent_job_ack", junk)
            a.send("agent_job_reply", junk)
        # Another instance's job, an unknown command, unreadable content:
        # acknowledged (the agent stops resending) and dropped.
        for job_id, content in (
                ("aws.ssm.%s.%s" % (cid, b.iid), None),
                ("aws.ssm.00000000-0000-4000-8000-000000000000.%s" % a.iid,
                 None),
                (jid, "not json"), (jid, "{}"),
                (jid, json.dumps({"documentStatus": "Success",
                                  "runtimeStatus": "x"})),
                (jid, "x" * 130000)):
            a.wait_reply_ack(a.reply(job_id, "Success", content=content))
        self.assertTrue(cl.server.alive())
        i = self.inv(cid, a.iid)
        self.assertEqual(i["Status"], "Pending" if i["Status"] == "Pending"
                         else "Delayed")
        # Still deliverable afterwards.
        a.ack(job)
        a.wait_reply_ack(a.reply(jid, "Success", out="fine"))
        self.assertEqual(self.wait_inv(cid, a.iid, ("Success",))
                         ["StandardOutputContent"], "fine")

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

    def test_output_endpoint(self):
        a, b = self.fakes[0], self.fakes[1]
        cid = self.send([a.iid], "--output-s3-bucket-name",
                        "porthole-e2e-out", "--output-s3-key-prefix", "runs")
        good = "/v1/command-output/%s/aws%%3ArunShellScript/stdout" % cid
        for path in ("/v1/command-output/", "/v1/command-output/x/y/stdout",
                     "/v1/command-output/%s/step/other" % cid,
                     "/v1/command-output/%s//stdout" % cid,
                     "/v1/command-output/%s/a%%2Fb/stdout" % cid,
                     "/v1/command-output/%s/%%zz/stdout" % cid,
                     "/v1/command-output/%s/%%4/stdout" % cid,
                     "/v1/command-output/%s/../stdout" % cid,
                     "/v1/command-output/%s/a%%00b/stdout" % cid,
                     "/v1/command-output/%s/%s/stdout" % (cid, "s" * 200)):
            st, body = self.put_output(path, cert=(a.cert, a.key))
            self.assertEqual(st, 400, (path, body))
        # No certificate, or not a target's: 403.
        self.assertEqual(self.put_output(good)[0], 403)
        self.assertEqual(self.put_output(good, cert=(b.cert, b.key))[0], 403)
        st, body = self.put_output(good, b"whole output\n" * 1000,
                                   cert=(a.cert, a.key))
        self.assertEqual(st, 200, body)
        self.assertEqual(body["Key"], "runs/%s/%s/awsrunShellScript/"
                         "0.awsrunShellScript/stdout" % (cid, a.iid))
        self.assertIn("porthole-e2e-out", body["Url"])
        self.assertEqual(self.inv(cid, a.iid)["StandardOutputUrl"],
                         body["Url"])
        # A command without a bucket: 400.
        other = self.send([a.iid])
        st, body = self.put_output(
            "/v1/command-output/%s/aws%%3ArunShellScript/stdout" % other,
            b"x", cert=(a.cert, a.key))
        self.assertEqual(st, 400, body)
        self.assertTrue(self.cluster.server.alive())


if __name__ == "__main__":
    harness.main()
