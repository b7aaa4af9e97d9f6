"""Sessions that survive the network.

Proves that a session loses nothing and duplicates nothing when its
connections are cut:

- the client's connection: `porthole start-session` and `aws ssm
  start-session` run through a TCP proxy (AWS_ENDPOINT_URL names the proxy;
  the StreamUrl follows the Host header, so the data channel and
  ResumeSession go through it too). While `seq 1 2000000` prints to the
  terminal the proxy cuts every connection, once with no outage and once
  with a short outage in which new connections die at once. The client
  resumes (ResumeSession, fresh token, same StreamUrl) and the screen shows
  every line exactly once: the checksum of the lines seen equals both the
  local one and `seq 1 2000000 | md5sum` on the managed server.
- the agent's data channel: an agent whose endpoint is a proxy loses only
  its data-channel connection right after the session opened; it
  reconnects, the session goes on, a command typed meanwhile runs exactly
  once, and the control channel was never touched.
"""

import hashlib
import json
import os
import re
import time

import harness
import sessionkit

SEQ_N = 2000000


def seq_text(n):
    return "".join("%d\n" % i for i in range(1, n + 1))


def seq_md5(n):
    return hashlib.md5(seq_text(n).encode()).hexdigest()


class CutMixin:
    """Run `seq 1 N` in a ready session, cutting connections as the
    output passes the given fractions of its size; check the screen."""

    def seq_with_cuts(self, s, proxy, n, cuts, outage=0.0, since=None,
                      agent_side=False):
        """Cut when the output passes the fractions `cuts` of its size:
        as read by the client, or (agent_side) as sent by the agent into
        the proxy, whose bytes are what must be cut mid-stream."""
        # The terminal adds a CR per line: about n more characters.
        size = len(seq_text(n)) + n
        pending = sorted(cuts)
        done = []
        base = proxy.bytes["up"]

        def progress(total):
            if agent_side:
                # Frames, WebSocket and TLS add some 10 % on the wire.
                total = (proxy.bytes["up"] - base) / 1.1
            # A cut waits until the previous one was recovered from (there
            # is a connection again): output buffered on the way may still
            # arrive while the cut side is reconnecting.
            if pending and total >= pending[0] * size and \
                    proxy.live(since):
                pending.pop(0)
                done.append(proxy.cut(since=since, outage=outage))

        s.child.sendline("seq 1 %d; echo SEQ''-DONE" % n)
        try:
            out = sessionkit.pump(s, "SEQ-DONE", 240, on_progress=progress)
        except (AssertionError, TimeoutError) as e:
            raise AssertionError("%s\ncuts made: %s\n%s"
                                 % (e, done, proxy.describe())) from None
        s.child.expect_exact(harness.PROMPT, timeout=60)
        self.assertEqual(len(done), len(cuts),
                         "the output ended before every cut was made")
        self.assertTrue(all(k > 0 for k in done),
                        "a cut found no connection to cut: %s" % done)
        text = harness.strip_ansi(out)
        # Drop the echoed command line; keep the lines up to the marker.
        body = text.split("\n", 1)[1] if "\n" in text else ""
        body = body[:body.rfind("SEQ-DONE")]
        lines = [x for x in body.split("\n") if x != ""]
        want = [str(i) for i in range(1, n + 1)]
        if lines != want:
            seen = {}
            for x in lines:
                seen[x] = seen.get(x, 0) + 1
            missing = [x for x in want if x not in seen][:10]
            dups = [x for x, c in seen.items() if c > 1][:10]
            junk = [x for x in seen if not x.isdigit()][:10]
            self.fail("screen output differs from seq 1 %d: %d lines, "
                      "missing (first) %s, duplicated %s, other %s"
                      % (n, len(lines), missing, dups, junk))
        got = hashlib.md5(("\n".join(lines) + "\n").encode()).hexdigest()
        self.assertEqual(got, seq_md5(n))
        # The same checksum computed on the managed server.
        remote = s.run("seq 1 %d | md5sum" % n, timeout=60)
        self.assertIn(seq_md5(n), remote)
        return done


class ClientConnectionCut(CutMixin, harness.ClusterTestCase):

    def setUp(self):
        self.proxy = sessionkit.TcpProxy(self.cluster.port)
        self.addCleanup(self.proxy.close)
        self.env = self.cluster.make_env(AWS_ENDPOINT_URL=self.proxy.url)

    def resumes_in_log(self, sid):
        log = harness.tail(self.cluster.server_log, 100000)
        return len([x for x in log.splitlines()
                    if "action=ResumeSession" in x and "status=200" in x])

    def run_cut(self, client, cuts, outage):
        before = self.resumes_in_log(None)
        s = self.cluster.open_session(self.target, client=client,
                                      env=self.env)
        self.assertIn("ssm-user", s.run("whoami").split())
        n0 = len(self.proxy.pairs)
        self.seq_with_cuts(s, self.proxy, SEQ_N, cuts, outage)
        # It reconnected through the proxy and asked for a fresh token.
        self.assertGreater(len(self.proxy.pairs), n0)
        # At least one fresh token: a cut that lands while the client is
        # still dialling (before OpenDataChannel spent the token) is
        # retried with the same, unspent token, so two cuts may need only
        # one ResumeSession.
        self.assertGreaterEqual(self.resumes_in_log(None) - before, 1)
        # Still the same session, still usable.
        self.assertIn("still-here", s.run("echo still-''here"))
        state, rec = self.cluster.session_record(s.session_id)
        self.assertEqual((state, rec and rec.get("Status")),
                         ("Active", "Connected"))
        sid = s.session_id
        self.assertEqual(s.exit(), 0)
        self.cluster.wait_session_status(sid, ("Terminated",))

    def test_porthole_two_cuts_no_loss(self):
        self.run_cut("porthole", [0.25, 0.6], outage=0.0)

    def test_porthole_cut_with_outage_no_loss(self):
        self.run_cut("porthole", [0.4], outage=1.5)

    def test_aws_cli_cut_no_loss(self):
        self.run_cut("aws", [0.3, 0.7], outage=1.0)


class ProxiedAgentBase(harness.ClusterTestCase):
    """One fresh agent per test whose connections go through a proxy, so a
    test can cut only its data channel (accepted after the session
    started)."""

    with_agent = False

    def setUp(self):
        c = self.cluster
        self.proxy = sessionkit.TcpProxy(c.port)
        self.addCleanup(self.proxy.close)
        act_id, code = c.create_activation(limit=1)
        self.agent = c.new_agent("proxied-%d" % len(c.agents))
        self.agent.register(act_id, code, name="e2e-proxied")
        path = os.path.join(self.agent.state_dir, "agent.json")
        with open(path) as f:
            conf = json.load(f)
        conf["Endpoint"] = self.proxy.url
        with open(path, "w") as f:
            json.dump(conf, f)
        self.agent.start()
        c.wait_online(self.agent.instance_id, agent=self.agent)

    def tearDown(self):
        self.agent.proc.stop()


class AgentDataChannelDrop(ProxiedAgentBase):

    def test_agent_side_drop_while_idle(self):
        c = self.cluster
        since = time.monotonic()
        s = c.open_session(self.agent.instance_id, client="porthole")
        # The data channel, and the record uploader's connection if it
        # is open.
        self.assertIn(self.proxy.cut(since=since), (1, 2))
        # Typing right after the drop reaches the shell once the agent is
        # back, exactly once.
        s.child.sendline("echo typed-''during-drop")
        s.child.expect_exact(harness.PROMPT, timeout=30)
        out = harness.strip_ansi(s.child.before)
        self.assertEqual(len(re.findall(r"^typed-during-drop$", out,
                                        re.M)), 1, out)
        self.assertIn("ssm-user", s.run("whoami").split())
        self.assertEqual(s.exit(), 0)


if __name__ == "__main__":
    harness.main()
