"""portholed killed with SIGKILL, or drained with SIGUSR2, mid-session.

Proves that a crash of the server (no SIGTERM, no goodbye to anybody) does
not strand a session: when portholed comes back on the same port and data
directory, the agent's control and data channels and the client reconnect
on their own, the same session resumes (the shell still has its state), and
it ends normally afterwards; that a session whose client never comes
back ends Terminated or Failed instead of staying Connected; and that a
drained node (SIGUSR2: every WebSocket closed normally, code 1000, without
channel_closed) leaves its sessions open, and the clients resume them with
the next portholed instead of ending.
"""

import json
import os
import signal
import time

import harness


class ServerCrash(harness.ClusterTestCase):

    def setUp(self):
        # A previous test restarted portholed, so the agent's control
        # channel may be deep in its backoff (reset only after a minute
        # connected): each test starts with a new agent process on the
        # first step of its schedule instead of waiting that out.
        c, a = self.cluster, self.agent
        a.proc.stop()
        c.processes.remove(a.proc)
        a.proc.close()
        harness.wait_for(lambda: (c.instance_info(self.target) or {})
                         .get("PingStatus") != "Online", 20, 0.1,
                         "the stopped agent to be offline")
        a.start()
        self.wait_agent_back()

    def crash_and_restart(self, down_for=2.0, config=None):
        c = self.cluster
        c.server.signal(signal.SIGKILL)
        c.server.popen.wait(timeout=10)
        c.server.close()
        c.processes.remove(c.server)
        if config:
            path = os.path.join(c.data_dir, "config.json")
            with open(path) as f:
                cfg = json.load(f)
            cfg.update(config)
            with open(path, "w") as f:
                json.dump(cfg, f)
        time.sleep(down_for)
        c.start_server()

    def wait_agent_back(self):
        # The control channel comes back on its own backoff schedule.
        self.cluster.wait_online(self.target, agent=self.agent, timeout=60)

    def test_session_resumes_after_server_crash(self):
        c = self.cluster
        for client in ("porthole", "aws"):
            with self.subTest(client=client):
                s = c.open_session(self.target, client=client)
                sid = s.session_id
                s.run("export CRASH_MARK=kept-''%s" % client)
                self.crash_and_restart()
                # The shell is the same one: its variable survived.
                out = s.run("echo $CRASH_MARK", timeout=90)
                self.assertIn("kept-%s" % client, out)
                state, rec = c.session_record(sid)
                self.assertEqual((state, rec and rec.get("Status")),
                                 ("Active", "Connected"))
                self.assertEqual(s.exit(), 0)
                c.wait_session_status(sid, ("Terminated",), timeout=30)
                self.wait_agent_back()

    def test_drain_closes_normally_and_sessions_resume(self):
        c = self.cluster
        self.wait_agent_back()
        sessions = []
        for client in ("porthole", "aws"):
            s = c.open_session(self.target, client=client)
            s.run("export DRAIN_MARK=kept-''%s" % client)
            sessions.append((client, s))
        c.server.signal(signal.SIGUSR2)
        self.assertEqual(c.server.popen.wait(timeout=20), 0)
        c.server.close()
        c.processes.remove(c.server)
        log = harness.tail(c.server_log, 200)
        self.assertIn("drain=1", log)
        self.assertNotIn("portholed shut down", log)
        time.sleep(1.0)
        for client, s in sessions:
            self.assertTrue(s.child.isalive(),
                            "%s exited on a normal close" % client)
        c.start_server()
        for client, s in sessions:
            out = s.run("echo $DRAIN_MARK", timeout=90)
            self.assertIn("kept-%s" % client, out)
            state, rec = c.session_record(s.session_id)
            self.assertEqual((state, rec and rec.get("Status")),
                             ("Active", "Connected"))
        for client, s in sessions:
            sid = s.session_id
            self.assertEqual(s.exit(), 0)
            c.wait_session_status(sid, ("Terminated",), timeout=30)

    def test_bad_grace_settings_are_ignored(self):
        c = self.cluster
        # Garbage in config.json: each key is refused with a warning and
        # its default kept; portholed still starts and serves sessions.
        net_garbage = {
            "MaxUnauthenticatedConnections": "lots",
            "MaxUnauthenticatedPerSource": 0,
            "UnauthenticatedTimeoutSeconds": -1,
            "RequestTimeoutSeconds": [30],
            "WebSocketAuthTimeoutSeconds": {"s": 10}}
        self.crash_and_restart(config=dict({
            "ClientReconnectGraceSeconds": "soon",
            "AgentReconnectGraceSeconds": -5}, **net_garbage))
        log = harness.tail(c.server_log, 400)
        self.assertIn("event=config_ignored key=ClientReconnectGraceSeconds",
                      log)
        self.assertIn("event=config_ignored key=AgentReconnectGraceSeconds",
                      log)
        for key in net_garbage:
            self.assertIn("event=config_ignored key=%s" % key, log)
        self.crash_and_restart(config={
            "ClientReconnectGraceSeconds": 10 ** 12,
            "AgentReconnectGraceSeconds": 1.5})
        self.wait_agent_back()
        s = c.open_session(self.target, client="porthole")
        self.assertIn("ssm-user", s.run("whoami"))
        self.assertEqual(s.exit(), 0)
        # Later tests set their own values.
        self.crash_and_restart(config={
            "ClientReconnectGraceSeconds": 120,
            "AgentReconnectGraceSeconds": 30})

    def test_session_without_client_ends_after_crash(self):
        c = self.cluster
        self.wait_agent_back()
        s = c.open_session(self.target, client="porthole")
        sid = s.session_id
        self.assertIn("ssm-user", s.run("whoami"))
        # The client goes away for good together with the server.
        s.child.kill(signal.SIGKILL)
        s.child.close()
        # The operator's grace for clients that went away (config.json).
        self.crash_and_restart(config={"ClientReconnectGraceSeconds": 8})
        state, rec = c.wait_session_status(sid, ("Terminated", "Failed"),
                                           timeout=60)
        self.assertEqual(state, "History", rec)
        self.assertEqual(rec["Status"], "Terminated", rec)
        log = harness.tail(c.server_log, 400)
        self.assertIn("the client did not reconnect", log)


if __name__ == "__main__":
    harness.main()
