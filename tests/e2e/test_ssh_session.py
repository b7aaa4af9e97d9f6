"""ssh, scp and rsync through AWS-StartSSHSession as ProxyCommand.

The test starts its own sshd on a free loopback port (its own host key,
config and authorized_keys with a key it generates; StrictModes no; run
as root in the foreground with `-D -e -f config`; killed at teardown) and
reaches it as the AWS documentation says, with

  ssh -o ProxyCommand="aws ssm start-session --target %h
      --document-name AWS-StartSSHSession --parameters portNumber=%p"
      root@mi-...

and with `porthole start-session` in the ProxyCommand instead. Proves:
a remote command's output and exit status come back; 32 MiB piped through
ssh arrive byte-exact (sha256sum on the far side); scp copies a 24 MiB file
there and back byte-exact; rsync -a copies a directory tree (-e with the
same ProxyCommand) and a second run with a changed file transfers it
again, all files byte-exact; sftp in batch mode puts and gets a file
byte-exact; the host key is checked strictly; each ssh
session shows in DescribeSessions as AWS-StartSSHSession and ends
Terminated when ssh exits.
"""

import os
import shlex
import subprocess

import harness
import portkit


class SshSession(harness.ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.sshd = portkit.Sshd(cls.cluster.tmp).start()
            cls.sshd.trust(cls.agent.instance_id)
        except BaseException:
            if getattr(cls, "sshd", None):
                cls.sshd.stop()
            cls.cluster.close(dump=True, raise_reports=False)
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "sshd", None):
            cls.sshd.stop()
        super().tearDownClass()

    def dest(self):
        return "%s@%s" % (self.sshd.user, self.target)

    def ssh(self, client, *remote, stdin=None, timeout=180, input_path=None):
        argv = ["ssh", *self.sshd.ssh_opts(portkit.proxy_command(client)),
                "-p", str(self.sshd.port), self.dest(), *remote]
        f = open(input_path, "rb") if input_path else None
        try:
            p = subprocess.run(argv, stdin=f or subprocess.DEVNULL,
                               capture_output=True, timeout=timeout,
                               env=self.cluster.env, cwd=self.cluster.home)
        finally:
            if f:
                f.close()
        return p

    def scp(self, client, src, dst, timeout=240):
        argv = ["scp", "-q",
                *self.sshd.ssh_opts(portkit.proxy_command(client)),
                "-P", str(self.sshd.port), src, dst]
        return subprocess.run(argv, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True,
                              timeout=timeout, env=self.cluster.env,
                              cwd=self.cluster.home)

    def rsync(self, client, src, dst, timeout=240):
        e = " ".join(shlex.quote(x) for x in
                     ["ssh", *self.sshd.ssh_opts(
                         portkit.proxy_command(client)),
                      "-p", str(self.sshd.port)])
        argv = ["rsync", "-a", "--stats", "-e", e, src, dst]
        return subprocess.run(argv, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True,
                              timeout=timeout, env=self.cluster.env,
                              cwd=self.cluster.home)

    def ssh_sessions(self):
        r = self.cluster.ssm().describe_sessions(
            State="History", Filters=[{"key": "Target",
                                       "value": self.target}])
        return [s for s in r.get("Sessions", [])
                if s.get("DocumentName") == "AWS-StartSSHSession"]

    def remote_command(self, client):
        before = {x["SessionId"] for x in self.ssh_sessions()}
        p = self.ssh(client, "echo hello-$((6*7)); exit 3")
        self.assertEqual(p.returncode, 3, p.stderr.decode(errors="replace"))
        self.assertEqual(p.stdout.decode().strip(), "hello-42")

        # The session ended with ssh (the agent sees sshd close the
        # connection) and was recorded as an SSH session.
        def new():
            return [x for x in self.ssh_sessions()
                    if x["SessionId"] not in before]
        ended = harness.wait_for(new, 30, 0.5,
                                 "the ssh session in the History list")
        self.assertEqual(len(ended), 1, ended)
        self.cluster.wait_session_status(ended[0]["SessionId"],
                                         ("Terminated",), timeout=30)

    def test_aws_proxycommand_remote_command(self):
        self.remote_command("aws")

    def test_porthole_proxycommand_remote_command(self):
        self.remote_command("porthole")

    def test_unknown_host_key_refused(self):
        # StrictHostKeyChecking with a known_hosts that does not name
        # this host: ssh must refuse (the tunnel does not bypass it).
        other = os.path.join(self.cluster.tmp, "empty_known_hosts")
        open(other, "w").close()
        # ssh takes the first value of an option: this one first.
        argv = ["ssh", "-o", "UserKnownHostsFile=" + other,
                *self.sshd.ssh_opts(portkit.proxy_command("porthole")),
                "-p", str(self.sshd.port), self.dest(), "true"]
        p = subprocess.run(argv, capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL,
                           env=self.cluster.env)
        self.assertEqual(p.returncode, 255)
        self.assertRegex(p.stderr, r"(?i)host key")

    def test_piped_stdin_byte_exact(self):
        src = os.path.join(self.cluster.tmp, "pipe.bin")
        sha = portkit.random_file(src, 32 * portkit.MIB)
        for client in ("aws", "porthole"):
            p = self.ssh(client, "sha256sum", input_path=src)
            self.assertEqual(p.returncode, 0,
                             p.stderr.decode(errors="replace"))
            self.assertEqual(p.stdout.split()[0].decode(), sha)
        os.unlink(src)

    def test_scp_both_ways(self):
        d = os.path.join(self.cluster.tmp, "scp")
        os.makedirs(d, exist_ok=True)
        src = os.path.join(d, "src.bin")
        sha = portkit.random_file(src, 24 * portkit.MIB)
        for client in ("aws", "porthole"):
            there = os.path.join(d, "there-%s.bin" % client)
            back = os.path.join(d, "back-%s.bin" % client)
            p = self.scp(client, src, "%s:%s" % (self.dest(), there))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(portkit.sha256_file(there), sha)
            p = self.scp(client, "%s:%s" % (self.dest(), there), back)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(portkit.sha256_file(back), sha)
            os.unlink(there)
            os.unlink(back)

    def test_sftp_batch(self):
        d = os.path.join(self.cluster.tmp, "sftp")
        os.makedirs(d, exist_ok=True)
        src = os.path.join(d, "src.bin")
        sha = portkit.random_file(src, 4 * portkit.MIB)
        batch = os.path.join(d, "batch")
        with open(batch, "w") as f:
            f.write("put %s %s/there.bin\nget %s/there.bin %s/back.bin\n"
                    % (src, d, d, d))
        argv = ["sftp", "-b", batch,
                *self.sshd.ssh_opts(portkit.proxy_command("porthole")),
                "-P", str(self.sshd.port), self.dest()]
        p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=180,
                           env=self.cluster.env, cwd=self.cluster.home)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(portkit.sha256_file(os.path.join(d, "back.bin")),
                         sha)

    def test_rsync_directory(self):
        base = os.path.join(self.cluster.tmp, "rsync")
        src = os.path.join(base, "src")
        os.makedirs(os.path.join(src, "sub", "deeper"))
        portkit.random_file(os.path.join(src, "big.bin"), 16 * portkit.MIB)
        for i in range(40):
            portkit.random_file(os.path.join(src, "sub", "f%02d" % i),
                                1000 + 997 * i)
        portkit.random_file(os.path.join(src, "sub", "deeper", "x"), 1)
        open(os.path.join(src, "empty"), "w").close()
        want = portkit.tree_digest(src)
        for client in ("aws", "porthole"):
            dst = os.path.join(base, "dst-%s" % client)
            p = self.rsync(client, src + "/", "%s:%s/" % (self.dest(), dst))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(portkit.tree_digest(dst), want)
            # Back again into a third place.
            back = os.path.join(base, "back-%s" % client)
            p = self.rsync(client, "%s:%s/" % (self.dest(), dst), back + "/")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(portkit.tree_digest(back), want)
        # A changed file travels again (rsync's delta path).
        with open(os.path.join(src, "sub", "f03"), "ab") as f:
            f.write(b"changed")
        want = portkit.tree_digest(src)
        dst = os.path.join(base, "dst-porthole")
        p = self.rsync("porthole", src + "/", "%s:%s/" % (self.dest(), dst))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(portkit.tree_digest(dst), want)


if __name__ == "__main__":
    harness.main()
