"""Private DNS names (the seed's Step 7): portholed answers as AWS's
endpoints, and unmodified tools reach it with no endpoint setting.

portholed starts as usual (`portholed init`, 127.0.0.1:PORT) and an agent
enrols on that address. Then `portholed cert reissue --aws-endpoint-names`
re-issues the server certificate from the same CA for the region's AWS
names (ssm, ssmmessages, ec2messages, kms, sts, cloudtrail, iam); SIGHUP
makes the running portholed serve it; portholed restarts with a second
listener on port 443 of a spare loopback address (`--listen
127.44.X.Y:443`). The first agent comes back without re-enrolling.

The client side runs in private mount namespaces (`unshare -m`, then a
bind mount of a hosts file over /etc/hosts, so the machine's own hosts
file is never touched) where those names resolve to that address: there,
with no AWS_ENDPOINT_URL and only AWS_CA_BUNDLE set,
- `aws ssm`, `aws kms`, `aws sts`, `aws iam` reach portholed;
- StartSession's StreamUrl is wss://ssm.REGION.amazonaws.com/... (the name
  the client called, no port for 443);
- a second agent registers with `--region REGION` and no `--endpoint`, so
  it derives https://ssm.REGION.amazonaws.com as AWS's agent does,
  and serves sessions;
- with preferences naming a KMS key (made there with `aws kms`), `aws ssm
  start-session` through our session-manager-plugin opens an encrypted
  session: the plugin calls GenerateDataKey at the default
  https://kms.REGION.amazonaws.com as AWS's plugin does, and the shell
  runs a command, on both agents; `porthole start-session` works too.

Needs root (CI runs as root) for the namespace and port 443; skipped
otherwise.
"""

import io
import json
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import unittest

import harness
import pexpect
import sessionkit

REGION = harness.REGION
NAMES = ["%s.%s.amazonaws.com" % (s, REGION) for s in
         ("ssm", "ssmmessages", "ec2messages", "kms", "sts", "cloudtrail")]
NAMES += ["sts.amazonaws.com", "iam.amazonaws.com"]
SSM_NAME = "ssm.%s.amazonaws.com" % REGION
ALIAS = "alias/private-dns-sessions"
# Mount the hosts file ($0) over /etc/hosts in the new namespace, then run
# the command.
NS_SCRIPT = 'mount --bind "$0" /etc/hosts && exec "$@"'


def ns_argv(hosts, argv):
    return ["unshare", "--mount", "--propagation", "private", "--",
            "sh", "-c", NS_SCRIPT, hosts] + list(argv)


def spare_address():
    """A loopback address other than 127.0.0.x whose port 443 is free."""
    rnd = random.Random(os.getpid())
    for _ in range(50):
        addr = "127.44.%d.%d" % (rnd.randrange(1, 255), rnd.randrange(2, 255))
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((addr, 443))
            return addr
        except OSError:
            continue
        finally:
            s.close()
    raise unittest.SkipTest("no free 127.44.x.y:443")


class DnsCluster(harness.Cluster):
    """A Cluster whose aws() runs in the namespace (with ns_env) once
    hosts is set."""

    hosts = None
    ns_env = None

    def aws(self, *args, check=True, timeout=60, env=None, output="json"):
        if self.hosts is None:
            return super().aws(*args, check=check, timeout=timeout, env=env,
                               output=output)
        return super().aws(*args, check=check, timeout=timeout,
                           env=env or self.ns_env, output=output,
                           wrap=lambda argv: ns_argv(self.hosts, argv))


class NsSession(harness.Session):
    """harness.Session, its client started in the namespace."""

    def __init__(self, cluster, target, client, env, dimensions=(24, 80),
                 timeout=20):
        self.cluster = cluster
        self.target = target
        self.client = client
        self.session_id = None
        self.transcript = io.StringIO()
        if client == "aws":
            cmd = ["aws", "ssm", "start-session", "--target", target]
        else:
            cmd = [harness.binary("porthole"), "start-session", "--target",
                   target]
        self.argv = ns_argv(cluster.hosts, cmd)
        self.child = pexpect.spawn(self.argv[0], self.argv[1:], env=env,
                                   dimensions=dimensions, encoding="utf-8",
                                   codec_errors="replace", timeout=timeout,
                                   cwd=cluster.home)
        self.child.logfile_read = self.transcript
        self.child.delaybeforesend = 0.02


class PrivateDns(harness.ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root (mount namespace, port 443)")
        p = subprocess.run(ns_argv("/etc/hosts", ["true"]),
                           capture_output=True, timeout=30)
        if p.returncode != 0:
            raise unittest.SkipTest("no private mount namespace here: %r"
                                    % p.stderr[-200:])
        cls.cluster = c = DnsCluster(cls.__name__)
        try:
            c.start()
            cls.agent = c.add_agent("direct")
            cls.setup_names()
            cls.setup_named_agent()
        except BaseException:
            c.close(dump=True, raise_reports=False)
            raise

    @classmethod
    def setup_names(cls):
        c = cls.cluster
        p = subprocess.run([harness.binary("portholed"), "cert", "reissue",
                            "--data-dir", c.data_dir,
                            "--aws-endpoint-names"],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise harness.CommandError(p.args, p)
        cls.reissue_output = p.stdout
        # SIGHUP serves it at once on the running listener.
        c.server.signal(signal.SIGHUP)
        harness.wait_for(lambda: "event=tls_reloaded" in c.server.log(),
                         20, 0.2, "portholed to reload its certificate")
        ctx = ssl.create_default_context(cafile=c.ca)
        with socket.create_connection(("127.0.0.1", c.port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname=SSM_NAME):
                pass
        cls.addr = spare_address()
        c.serve_args = ("--listen", "%s:443" % cls.addr)
        c.restart_server()
        # The agent enrolled before keeps its certificate and comes back.
        c.wait_online(cls.agent.instance_id, agent=cls.agent, timeout=90)
        c.hosts = os.path.join(c.tmp, "hosts")
        with open("/etc/hosts") as f:
            base = f.read()
        with open(c.hosts, "w") as f:
            f.write(base.rstrip("\n") + "\n# porthole e2e: private DNS\n")
            f.write("%s %s\n" % (cls.addr, " ".join(NAMES)))
        c.ns_env = c.make_env(AWS_ENDPOINT_URL=None)

    @classmethod
    def setup_named_agent(cls):
        """An agent that registers and connects by the AWS name."""
        c = cls.cluster
        act_id, code = c.create_activation(limit=1)
        a = c.new_agent("named")
        argv = ns_argv(c.hosts, [
            a.binary(), "register", "--region", REGION,
            "--ca", c.ca, "--code", code, "--id", act_id,
            "--state-dir", a.state_dir, "--name", "e2e-named"])
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL, env=c.env)
        with open(a.log_path, "a") as f:
            f.write("==> register (exit %d)\n%s%s" % (p.returncode, p.stdout,
                                                     p.stderr))
        if p.returncode != 0:
            raise harness.CommandError(argv, p)
        a.instance_id = harness.INSTANCE_RE.search(p.stdout + p.stderr)[0]
        a.proc = harness.Process("agent-named", ns_argv(c.hosts, [
            a.binary(), "run", "--state-dir", a.state_dir]), a.log_path,
            c.env)
        c.processes.append(a.proc)
        c.wait_online(a.instance_id, agent=a)
        cls.named = a

    # ---- helpers ---------------------------------------------------------

    def ns_run(self, argv, timeout=60):
        c = self.cluster
        return subprocess.run(ns_argv(c.hosts, argv), capture_output=True,
                              text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=c.ns_env)

    def open_ns_session(self, target, client="aws", ready=True):
        s = NsSession(self.cluster, target, client, self.cluster.ns_env)
        self.cluster.sessions.append(s)
        if ready:
            s.wait_ready()
        return s

    # ---- tests -----------------------------------------------------------

    def test_certificate_names(self):
        for n in NAMES:
            self.assertIn(n, self.reissue_output)
        p = subprocess.run([harness.binary("portholed"), "cert", "show",
                            "--data-dir", self.cluster.data_dir],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        for n in NAMES + ["localhost", "127.0.0.1", "::1"]:
            self.assertRegex(p.stdout, r"(?m)^  %s$" % re.escape(n))
        # The extra listener serves the certificate under those names.
        ctx = ssl.create_default_context(cafile=self.cluster.ca)
        for n in (SSM_NAME, "kms.%s.amazonaws.com" % REGION):
            with socket.create_connection((self.addr, 443), timeout=5) as s:
                with ctx.wrap_socket(s, server_hostname=n) as t:
                    self.assertTrue(t.version().startswith("TLS"))

    def test_aws_cli_without_endpoint(self):
        c = self.cluster
        self.assertNotIn("AWS_ENDPOINT_URL", c.ns_env)
        info = c.aws("ssm", "describe-instance-information")
        ids = {i["InstanceId"] for i in info["InstanceInformationList"]}
        self.assertLessEqual({self.agent.instance_id,
                              self.named.instance_id}, ids)
        who = c.aws("sts", "get-caller-identity")
        self.assertTrue(who["Arn"].endswith(":user/admin"), who)
        self.assertIn("Keys", c.aws("kms", "list-keys"))
        users = c.aws("iam", "list-users")["Users"]
        self.assertIn("admin", [u["UserName"] for u in users])
        # Outside the namespace the same call has no portholed to reach:
        # the names resolve only there.
        p = subprocess.run(["getent", "hosts", SSM_NAME],
                           capture_output=True, text=True, timeout=30)
        self.assertNotIn(self.addr, p.stdout)

    def test_stream_url_is_the_name(self):
        code = ("import boto3,json;c=boto3.client('ssm',region_name=%r);"
                "r=c.start_session(Target=%r);"
                "c.terminate_session(SessionId=r['SessionId']);"
                "print(json.dumps(r))" % (REGION, self.named.instance_id))
        p = self.ns_run(["python3", "-c", code])
        self.assertEqual(p.returncode, 0, p.stderr)
        r = json.loads(p.stdout)
        self.assertTrue(r["StreamUrl"].startswith(
            "wss://%s/v1/data-channel/%s?" % (SSM_NAME, r["SessionId"])),
            r["StreamUrl"])

    def encrypted_session(self, target):
        s = self.open_ns_session(target, "aws")
        self.assertIn(sessionkit.ENCRYPTED_BANNER, s.output())
        self.assertIn("ssm-user", s.run("whoami").split())
        self.assertIn("private-" + "dns-42", s.run("echo private-dns-$((6*7))"))
        self.assertEqual(s.exit(), 0)

    def test_encrypted_session_through_plugin(self):
        c = self.cluster
        if not getattr(PrivateDns, "key", None):
            PrivateDns.key = sessionkit.create_key(
                c, alias=ALIAS, policy=sessionkit.session_key_policy(c),
                description="Session Manager encryption (private DNS)")
        sessionkit.set_session_prefs(c, kmsKeyId=ALIAS)
        try:
            self.encrypted_session(self.named.instance_id)
            self.encrypted_session(self.agent.instance_id)
        finally:
            sessionkit.set_session_prefs(c)

    def test_porthole_client_without_endpoint(self):
        s = self.open_ns_session(self.named.instance_id, "porthole")
        self.assertIn("ssm-user", s.run("whoami").split())
        self.assertEqual(s.exit(), 0)

    def test_named_agent_endpoint(self):
        with open(os.path.join(self.named.state_dir, "agent.json")) as f:
            self.assertEqual(json.load(f)["Endpoint"], "https://" + SSM_NAME)


if __name__ == "__main__":
    harness.main()
