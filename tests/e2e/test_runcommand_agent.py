"""Run Command on the agent, through the AWS CLI and a real portholed:
the working directory and AWS's environment variables, a missing working
directory, stderr and exit codes, output that grows while the step runs
(InProgress), a large output cut at AWS's limits, executionTimeout and
CancelCommand killing a process tree that ignores SIGTERM, a custom 2.2 document with a skipped
step, the whole output PUT for OutputS3BucketName, and an agent stopped
mid-command reporting it Failed after its restart."""

import json
import subprocess
import time

import harness

FINAL = ("Success", "Failed", "TimedOut", "Cancelled")


class RunCommandAgent(harness.ClusterTestCase):

    def send(self, params, *extra, document="AWS-RunShellScript"):
        argv = ["ssm", "send-command", "--instance-ids", self.target,
                "--document-name", document,
                "--parameters", json.dumps(params)]
        return self.cluster.aws(*argv, *extra)["Command"]["CommandId"]

    def invocation(self, cid, plugin=None):
        argv = ["ssm", "get-command-invocation", "--command-id", cid,
                "--instance-id", self.target]
        if plugin is not None:
            argv += ["--plugin-name", plugin]
        p = self.cluster.aws(*argv, check=False)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def wait(self, cid, statuses=FINAL, timeout=60, check=None):
        def done():
            inv = self.invocation(cid)
            if inv is None or inv["Status"] not in statuses:
                return None
            return inv if check is None or check(inv) else None
        try:
            return harness.wait_for(done, timeout, 0.5,
                                    "%s in %s" % (cid, statuses))
        except TimeoutError:
            raise AssertionError("%s: last %r\nagent:\n%s" % (
                cid, self.invocation(cid),
                harness.tail(self.agent.log_path, 40))) from None

    @staticmethod
    def pids_of(marker):
        p = subprocess.run(["pgrep", "-f", marker], capture_output=True,
                           text=True)
        return [int(x) for x in p.stdout.split()]

    # ---- tests -------------------------------------------------------------

    def test_working_directory_and_environment(self):
        cid = self.send({"commands": ["pwd", "echo id=$AWS_SSM_INSTANCE_ID",
                                      "echo cmd=$SSM_COMMAND_ID"],
                         "workingDirectory": ["/tmp"]})
        inv = self.wait(cid)
        self.assertEqual(inv["Status"], "Success", inv)
        self.assertEqual(inv["StandardOutputContent"],
                         "/tmp\nid=%s\ncmd=%s\n" % (self.target, cid))

    def test_default_directory_is_the_commands_own(self):
        cid = self.send({"commands": ["pwd"]})
        inv = self.wait(cid)
        self.assertEqual(inv["Status"], "Success", inv)
        self.assertTrue(inv["StandardOutputContent"].rstrip().endswith(
            "/commands/" + cid), inv)

    def test_missing_working_directory(self):
        cid = self.send({"commands": ["echo never"],
                         "workingDirectory": ["/nonexistent/porthole"]})
        inv = self.wait(cid)
        self.assertEqual(inv["Status"], "Failed", inv)
        self.assertNotIn("never", inv["StandardOutputContent"])
        details = json.dumps(self.cluster.aws(
            "ssm", "list-command-invocations", "--command-id", cid,
            "--details"))
        self.assertIn("does not exist", details)

    def test_stderr_and_exit_code(self):
        cid = self.send({"commands": ["echo to-out", "echo to-err >&2",
                                      "exit 42"]})
        inv = self.wait(cid)
        self.assertEqual((inv["Status"], inv["ResponseCode"]),
                         ("Failed", 42), inv)
        self.assertEqual(inv["StandardOutputContent"], "to-out\n")
        self.assertEqual(inv["StandardErrorContent"], "to-err\n")

    def test_output_while_running(self):
        cid = self.send({"commands": ["echo early-line", "sleep 8",
                                      "echo late-line"]})
        inv = self.wait(cid, ("InProgress",), 20,
                        lambda i: "early-line" in i["StandardOutputContent"])
        self.assertNotIn("late-line", inv["StandardOutputContent"])
        inv = self.wait(cid)
        self.assertEqual(inv["Status"], "Success", inv)
        self.assertIn("late-line", inv["StandardOutputContent"])

    def test_large_output(self):
        cid = self.send({"commands": [
            "i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done",
            "echo tail-marker"]})
        inv = self.wait(cid, timeout=90)
        self.assertEqual(inv["Status"], "Success", inv)
        out = inv["StandardOutputContent"]
        self.assertLessEqual(len(out), 24000)
        self.assertTrue(out.startswith("line-0\nline-1\n"), out[:40])
        self.assertNotIn("tail-marker", out)

    def test_timeout_kills_process_tree(self):
        marker = "sleep 3817"
        cid = self.send({"commands": [
            "(trap '' TERM; %s; echo child-done) &" % marker,
            marker, "echo not-reached"], "executionTimeout": ["5"]})
        inv = self.wait(cid, timeout=60)
        self.assertEqual((inv["Status"], inv["StatusDetails"]),
                         ("TimedOut", "ExecutionTimedOut"), inv)
        self.assertNotIn("not-reached", inv["StandardOutputContent"])
        harness.wait_for(lambda: not self.pids_of(marker), 15, 0.2,
                         "no %r left" % marker)

    def test_cancel_kills_process_tree(self):
        marker = "sleep 3819"
        cid = self.send({"commands": [
            "(trap '' TERM; %s) &" % marker, "echo started", marker]})
        self.wait(cid, ("InProgress",), 30,
                  lambda i: "started" in i["StandardOutputContent"])
        self.cluster.aws("ssm", "cancel-command", "--command-id", cid)
        inv = self.wait(cid, timeout=30)
        self.assertEqual(inv["Status"], "Cancelled", inv)
        harness.wait_for(lambda: not self.pids_of(marker), 15, 0.2,
                         "no %r left" % marker)

    def test_custom_document_steps(self):
        content = json.dumps({
            "schemaVersion": "2.2", "description": "two steps",
            "parameters": {"word": {"type": "String",
                                    "default": "default-word"}},
            "mainSteps": [
                {"action": "aws:runShellScript", "name": "first",
                 "inputs": {"runCommand": ["echo first {{ word }}"]}},
                {"action": "aws:runPowerShellScript", "name": "windows",
                 "precondition": {"StringEquals": ["platformType",
                                                   "Windows"]},
                 "inputs": {"runCommand": ["Write-Output no"]}},
                {"action": "aws:runShellScript", "name": "second",
                 "inputs": {"runCommand": ["echo second"]}}]})
        self.cluster.aws("ssm", "create-document", "--name",
                         "PortholeAgentSteps", "--document-type", "Command",
                         "--content", content)
        cid = self.send({}, document="PortholeAgentSteps")
        inv = self.wait(cid)
        self.assertEqual(inv["Status"], "Success", inv)
        out = self.cluster.aws("ssm", "list-command-invocations",
                               "--command-id", cid, "--details")
        plugins = {p["Name"]: p for p in
                   out["CommandInvocations"][0]["CommandPlugins"]}
        self.assertEqual(plugins["first"]["Status"], "Success", plugins)
        self.assertIn("first default-word", plugins["first"]["Output"])
        # CommandPluginStatus has no Skipped: AWS shows Success with
        # StatusDetails Skipped.
        self.assertEqual(plugins["windows"]["StatusDetails"], "Skipped",
                         plugins)
        self.assertIn("unsatisfied preconditions",
                      plugins["windows"]["Output"])
        self.assertEqual(plugins["second"]["Status"], "Success", plugins)

    def test_output_to_bucket(self):
        cid = self.send({"commands": ["echo bucket-bound",
                                      "echo err-bound >&2"]},
                        "--output-s3-bucket-name", "porthole-agent-out",
                        "--output-s3-key-prefix", "agent")
        inv = self.wait(cid)
        self.assertEqual(inv["Status"], "Success", inv)
        inv = harness.wait_for(
            lambda: (lambda i: i if i and i["StandardOutputUrl"] and
                     i["StandardErrorUrl"] else None)(self.invocation(cid)),
            20, 0.5, "the output URLs")
        self.assertIn("porthole-agent-out", inv["StandardOutputUrl"])

    def test_zz_agent_stopped_mid_command(self):
        c = self.cluster
        marker = "sleep 3818"
        cid = self.send({"commands": [marker, "echo finished"]})
        self.wait(cid, ("InProgress",), 30)
        time.sleep(1)
        self.agent.proc.stop()          # SIGTERM: a clean stop
        c.processes.remove(self.agent.proc)
        self.agent.proc.close()
        harness.wait_for(lambda: not self.pids_of(marker), 15, 0.2,
                         "no %r left" % marker)
        self.agent.start()
        c.wait_online(self.target, agent=self.agent)
        inv = self.wait(cid, timeout=60)
        self.assertEqual(inv["Status"], "Failed", inv)
        self.assertNotIn("finished", inv["StandardOutputContent"])
        details = json.dumps(c.aws("ssm", "list-command-invocations",
                                   "--command-id", cid, "--details"))
        self.assertIn("the agent stopped", details)


if __name__ == "__main__":
    harness.main()
