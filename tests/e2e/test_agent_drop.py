"""The agent's data channel cut in the middle of a large output.

Proves that when only the agent's data-channel connection dies (twice)
while `seq 1 2000000` is printing, the agent reconnects, re-sends what was
not acknowledged, and the screen shows every line exactly once (checksums
local and remote as in test_resilience), the session goes on, and the
agent's control channel was never touched. The cuts are timed by the bytes
the agent has sent into the proxy, so they happen while it is still
producing output.
"""

import time

import harness
import test_resilience as tr


class AgentDropUnderLoad(tr.CutMixin, tr.ProxiedAgentBase):

    def test_agent_side_drop_no_loss(self):
        c = self.cluster
        since = time.monotonic()
        s = c.open_session(self.agent.instance_id, client="porthole")
        self.assertIn("ssm-user", s.run("whoami").split())
        data = self.proxy.live(since)
        # The record uploader's keep-alive connection may be the second.
        self.assertIn(len(data), (1, 2), "expected the agent's data "
                      "channel (and the record uploader's) as the new "
                      "proxied connections, got %d" % len(data))
        control = [p for p in self.proxy.live() if p.accepted < since]
        self.assertTrue(control, "the control channel is not proxied")
        self.seq_with_cuts(s, self.proxy, tr.SEQ_N, [0.25, 0.6], since=since,
                           agent_side=True)
        # The agent dialled its data channel again, and only that.
        self.assertGreater(len(self.proxy.pairs), len(control) + 1)
        self.assertTrue(all(not p.closed for p in control),
                        "the control channel was cut")
        self.assertEqual(c.instance_info(self.agent.instance_id)
                         ["PingStatus"], "Online")
        self.assertIn("after-drop", s.run("echo after-''drop"))
        sid = s.session_id
        self.assertEqual(s.exit(), 0)
        c.wait_session_status(sid, ("Terminated",))


if __name__ == "__main__":
    harness.main()
