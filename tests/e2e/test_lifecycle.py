"""Server shutdown and restart with agents and sessions.

Proves that SIGTERM stops portholed cleanly (exit status 0 within a bound)
while an agent is connected and a session is open: the client is told and
exits, the open session is marked (Terminated or Failed, never left
Connected), and after a restart on the same data directory the session
history, activations and instance tags are still there and the agent,
which dials out and retries with backoff, comes back Online by itself and
can serve a new session.
"""

import harness


class Lifecycle(harness.ClusterTestCase):

    def test_restart_with_open_session(self):
        c = self.cluster
        ssm = c.ssm()
        ssm.add_tags_to_resource(ResourceType="ManagedInstance",
                                 ResourceId=self.target,
                                 Tags=[{"Key": "keep", "Value": "me"}])
        aid, _code = c.create_activation(limit=5)

        done = c.open_session(self.target)
        done_sid = done.session_id
        self.assertEqual(done.exit(), 0)
        c.wait_session_status(done_sid, ("Terminated",))

        s = c.open_session(self.target)
        open_sid = s.session_id
        self.assertIn("ssm-user", s.run("whoami"))

        rc = c.stop_server()
        self.assertEqual(rc, 0, harness.tail(c.server_log, 40))
        # The client learns the server went away and exits.
        s.child.expect(harness.pexpect.EOF, timeout=30)
        s.child.close()
        self.assertIsNotNone(s.exit_status())

        c.start_server()
        state, rec = c.wait_session_status(open_sid,
                                           ("Terminated", "Failed"))
        self.assertEqual(state, "History", rec)
        state, rec = c.session_record(done_sid)
        self.assertEqual((state, rec and rec["Status"]),
                         ("History", "Terminated"))
        lst = ssm.describe_activations(Filters=[
            {"FilterKey": "ActivationIds", "FilterValues": [aid]}
        ])["ActivationList"]
        self.assertEqual(len(lst), 1)
        tags = ssm.list_tags_for_resource(ResourceType="ManagedInstance",
                                          ResourceId=self.target)["TagList"]
        self.assertIn({"Key": "keep", "Value": "me"}, tags)

        # The agent reconnects on its own (backoff, so allow a while).
        c.wait_online(self.target, agent=self.agent, timeout=60)
        again = c.open_session(self.target)
        self.assertIn("ssm-user", again.run("whoami"))
        self.assertEqual(again.exit(), 0)

    def test_agent_restart(self):
        c = self.cluster
        a = c.add_agent("restart")
        a.proc.stop()
        harness.wait_for(
            lambda: c.instance_info(a.instance_id)["PingStatus"] ==
            "ConnectionLost", 20, 0.3, "PingStatus ConnectionLost")
        self.assertEqual(c.ssm().get_connection_status(
            Target=a.instance_id)["Status"], "notconnected")
        a.start()
        c.wait_online(a.instance_id, agent=a)
        s = c.open_session(a.instance_id)
        self.assertIn("ssm-user", s.run("whoami"))
        self.assertEqual(s.exit(), 0)


if __name__ == "__main__":
    harness.main()
