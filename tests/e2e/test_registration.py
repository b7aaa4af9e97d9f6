"""Agent enrolment: `porthole-agent register` and `run`.

Proves that registration succeeds only with a valid activation (a wrong
code, an unknown activation id, an expired activation and an exhausted
registration limit are each refused with a non-zero exit status and a clear
message, and leave no instance behind), that a successful registration
prints "Registered as mi-<17 hex>", counts against the activation and
stores the agent's state with mode 0600, that the agent's private key never
reaches the server, and that a running agent holds no listening socket
(`ss -ltnup` shows none owned by its pid, while it does show portholed's).
"""

import datetime
import os
import re
import subprocess
import time

import harness

CLEAR = re.compile(r"activation|code|expired|limit|invalid|denied|refused",
                   re.I)


class Registration(harness.ClusterTestCase):
    with_agent = False

    def assertRefused(self, proc, *words):
        out = proc.stdout + proc.stderr
        self.assertNotEqual(proc.returncode, 0, out)
        self.assertNotIn("Registered as", out)
        self.assertRegex(out, CLEAR)
        self.assertNotIn("Traceback", out)
        self.assertNotIn("Segmentation", out)
        if words:
            self.assertRegex(out, re.compile("|".join(words), re.I))

    def instance_count(self):
        return len(self.cluster.ssm().describe_instance_information()
                   ["InstanceInformationList"])

    def test_register_and_state_files(self):
        aid, code = self.cluster.create_activation(limit=2)
        a = self.cluster.new_agent("ok")
        p = a.register(aid, code, name="reg-ok")
        self.assertRegex(p.stdout, r"Registered as mi-[0-9a-f]{17}\b")
        files = a.state_files()
        self.assertTrue(files, "no state files in %s" % a.state_dir)
        for f in files:
            self.assertEqual(harness.file_mode(f) & 0o077, 0,
                             "%s is mode %o" % (f, harness.file_mode(f)))
        self.assertEqual(harness.file_mode(a.state_dir) & 0o077, 0)
        self.assertIsNotNone(a.find_state_file(a.instance_id))
        key = a.find_state_file("PRIVATE KEY")
        self.assertIsNotNone(key, files)
        self.assertIsNotNone(a.find_state_file("BEGIN CERTIFICATE"))

        lst = self.cluster.ssm().describe_activations(Filters=[
            {"FilterKey": "ActivationIds", "FilterValues": [aid]}
        ])["ActivationList"]
        self.assertEqual(lst[0]["RegistrationsCount"], 1)

        # The private key stays on the managed server: nothing under the
        # server's data directory contains it.
        with open(key, "rb") as f:
            pem = f.read()
        body = b"".join(line for line in pem.splitlines()
                        if line and not line.startswith(b"-----"))
        for root, _dirs, names in os.walk(self.cluster.data_dir):
            for n in names:
                with open(os.path.join(root, n), "rb") as f:
                    self.assertNotIn(body[:64], f.read())

        # Registered but never run: known to the API, not connected.
        info = self.cluster.instance_info(a.instance_id)
        self.assertIsNotNone(info)
        self.assertNotEqual(info.get("PingStatus"), "Online")
        self.assertEqual(info.get("Name"), "reg-ok")

    def test_wrong_code(self):
        aid, code = self.cluster.create_activation()
        wrong = ("A" if code[0] != "A" else "B") + code[1:]
        n = self.instance_count()
        p = self.cluster.new_agent("wrongcode").register(aid, wrong,
                                                         check=False)
        self.assertRefused(p)
        self.assertEqual(self.instance_count(), n)
        # The activation is not used up by the failure.
        self.cluster.new_agent("rightcode").register(aid, code)

    def test_unknown_activation(self):
        _aid, code = self.cluster.create_activation()
        p = self.cluster.new_agent("unknown").register(
            "00000000-0000-4000-8000-000000000000", code, check=False)
        self.assertRefused(p)

    def test_exhausted_limit(self):
        aid, code = self.cluster.create_activation(limit=1)
        self.cluster.new_agent("first").register(aid, code)
        p = self.cluster.new_agent("second").register(aid, code,
                                                      check=False)
        self.assertRefused(p, "limit", "exhaust", "used")

    def test_deleted_activation(self):
        aid, code = self.cluster.create_activation()
        self.cluster.ssm().delete_activation(ActivationId=aid)
        p = self.cluster.new_agent("deleted").register(aid, code,
                                                       check=False)
        self.assertRefused(p)

    def test_expired_activation(self):
        soon = datetime.datetime.now(datetime.timezone.utc) + \
            datetime.timedelta(seconds=3)
        self.cluster.ensure_role()
        try:
            r = self.cluster.ssm().create_activation(
                IamRole=harness.TEST_ROLE, ExpirationDate=soon)
        except Exception as e:  # noqa: BLE001 - the server may refuse
            self.skipTest("server refuses an activation that expires in 3 s"
                          " (%s); expiry is covered by the unit tests" % e)
        aid, code = r["ActivationId"], r["ActivationCode"]
        time.sleep(max(0.0, (soon - datetime.datetime.now(
            datetime.timezone.utc)).total_seconds()) + 1.5)
        lst = self.cluster.ssm().describe_activations(Filters=[
            {"FilterKey": "ActivationIds", "FilterValues": [aid]}
        ])["ActivationList"]
        self.assertTrue(lst[0]["Expired"])
        p = self.cluster.new_agent("expired").register(aid, code,
                                                       check=False)
        self.assertRefused(p, "expired")

    def test_unreachable_or_untrusted_server(self):
        aid, code = self.cluster.create_activation()
        a = self.cluster.new_agent("wrongca")
        other_ca = os.path.join(self.cluster.tmp, "other-ca.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=other",
             "-keyout", os.path.join(self.cluster.tmp, "other-ca.key"),
             "-out", other_ca, "-days", "1"],
            check=True, capture_output=True, timeout=30)
        argv = [harness.binary("porthole-agent"), "register",
                "--endpoint", self.cluster.endpoint, "--ca", other_ca,
                "--code", code, "--id", aid, "--state-dir", a.state_dir]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        self.assertNotEqual(p.returncode, 0)
        self.assertNotIn("Registered as", p.stdout + p.stderr)
        # The activation was not consumed by the refused attempt.
        a.register(aid, code)

    def test_agent_never_listens(self):
        a = self.cluster.add_agent("listen")
        s = self.cluster.open_session(a.instance_id)  # busiest state
        self.assertIn("ssm-user", s.run("whoami"))
        out = subprocess.run(["ss", "-ltnupH"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
        server_pid = "pid=%d," % self.cluster.server.pid
        self.assertIn(server_pid, out, "ss does not show process owners")
        self.assertNotIn("pid=%d," % a.pid, out)
        # Also no listening UNIX socket.
        out = subprocess.run(["ss", "-lxpH"], capture_output=True, text=True,
                             timeout=10, check=True).stdout
        self.assertNotIn("pid=%d," % a.pid, out)
        self.assertEqual(s.exit(), 0)


if __name__ == "__main__":
    harness.main()
