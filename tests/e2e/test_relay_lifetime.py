"""The gateway's relay outlives every close order of its channels.

A fake agent (the registered agent's own certificate, driven by hand) and
a raw client data channel close in the orders that once freed a session's
relay twice in portholed (issue: heap use-after-free in dchan_on_close):

1. client data channel, then the agent's control channel, then the
   agent's data channel;
2. client data channel, then agent_task_complete Success on the control
   channel, then the agent's data channel;

and a few more orders around them. After each, portholed must still be
alive and answering, and the session must have a terminal status. Under the
ASan build (the e2e-asan label) a second free aborts portholed at once.
Upgrades for sessions that do not exist or have ended are refused before
a WebSocket opens.
"""
import json
import os
import time
import unittest

import harness
import sessionkit

OP_TEXT, OP_BINARY, OP_CLOSE = 1, 2, 8


class FakeAgent:
    """The control channel and data channels of an agent, opened by hand
    with its certificate."""

    def __init__(self, cluster, agent):
        self.cluster = cluster
        self.iid = agent.instance_id
        self.cert = os.path.join(agent.state_dir, "cert.pem")
        self.key = os.path.join(agent.state_dir, "key.pem")
        self.ctl = None

    def ws(self, path):
        return harness.RawWebSocket(self.cluster.port, path,
                                    self.cluster.ca, cert=self.cert,
                                    key=self.key)

    def connect(self):
        self.ctl = self.ws("/v1/control-channel/%s" % self.iid)
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

    def wait_task(self, session_id, timeout=10):
        """Read the control channel until the session's start task."""
        deadline = time.monotonic() + timeout
        for _ in range(200):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            op, data = self.ctl.recv(timeout=left)
            if op != OP_BINARY:
                continue
            f = sessionkit.parse_frame(data)
            if f and f["type"] == "interactive_shell" and \
                    session_id.encode() in f["payload"]:
                return f
        raise AssertionError("no start task for %s" % session_id)

    def open_data(self, session_id):
        d = self.ws("/v1/data-channel/%s" % session_id)
        if d.status != 101:
            raise AssertionError("agent data channel refused: %d" % d.status)
        d.send_text(json.dumps({"MessageSchemaVersion": "1.0",
                                "RequestId": "r", "ClientId": "agent"}))
        return d

    def task_complete(self, session_id, status="Success"):
        body = json.dumps({"TaskId": session_id,
                           "FinalTaskStatus": status,
                           "Output": ""}).encode()
        self.ctl.send_binary(harness.client_message(
            "agent_task_complete", body, flags=3, payload_type=0))

    def close_ctl(self):
        if self.ctl is not None:
            self.ctl.close()
            self.ctl = None


class RelayLifetimeTest(harness.ClusterTestCase):

    with_agent = False

    def setUp(self):
        self.agent = self.cluster.add_agent(
            "fake-%d" % (int(time.time() * 1000) % 100000), start=False)
        self.fake = FakeAgent(self.cluster, self.agent)
        self.fake.connect()

    def tearDown(self):
        self.fake.close_ctl()

    def start(self):
        """StartSession, the fake agent's data channel and a client's."""
        ssm = self.cluster.ssm()
        r = ssm.start_session(Target=self.fake.iid)
        sid = r["SessionId"]
        self.fake.wait_task(sid)
        agent_dc = self.fake.open_data(sid)
        client_dc = harness.RawWebSocket(
            self.cluster.port, harness.stream_url_path(r["StreamUrl"]),
            self.cluster.ca)
        self.assertEqual(client_dc.status, 101)
        client_dc.send_text(harness.open_data_channel_json(r["TokenValue"]))
        # Both attached: a frame from the agent reaches the client.
        agent_dc.send_binary(harness.client_message(
            "output_stream_data", b"hello", seq=0, payload_type=1))
        op, data = client_dc.recv(timeout=10)
        self.assertEqual(op, OP_BINARY)
        self.assertEqual(sessionkit.parse_frame(data)["payload"], b"hello")
        return sid, agent_dc, client_dc

    def assert_server_alive(self):
        self.assertTrue(self.cluster.server.alive(),
                        "portholed died:\n" + harness.tail(
                            self.cluster.server_log))
        # And it still answers a signed call.
        self.cluster.ssm().describe_sessions(State="Active")

    def settle(self):
        # Let portholed see the closes and run its timers (relays are
        # reclaimed on its 500 ms tick).
        time.sleep(1.2)

    def test_client_then_control_then_agent_data(self):
        sid, agent_dc, client_dc = self.start()
        client_dc.close()
        time.sleep(0.3)
        self.fake.close_ctl()
        time.sleep(0.3)
        agent_dc.close()
        self.settle()
        self.assert_server_alive()
        rec = self.cluster.wait_session_status(
            sid, ("Failed", "Terminated"), timeout=15)
        self.assertIsNotNone(rec)
        self.fake.connect()  # for tearDown and the next test

    def test_client_then_task_complete_then_agent_data(self):
        sid, agent_dc, client_dc = self.start()
        client_dc.close()
        time.sleep(0.3)
        self.fake.task_complete(sid, "Success")
        time.sleep(0.3)
        agent_dc.close()
        self.settle()
        self.assert_server_alive()
        self.cluster.wait_session_status(sid, ("Terminated",), timeout=15)

    def test_task_complete_then_both_data_channels(self):
        sid, agent_dc, client_dc = self.start()
        self.fake.task_complete(sid, "Success")
        time.sleep(0.2)
        agent_dc.close()
        client_dc.close()
        self.settle()
        self.assert_server_alive()
        self.cluster.wait_session_status(sid, ("Terminated",), timeout=15)

    def test_terminate_then_closes_in_any_order(self):
        sid, agent_dc, client_dc = self.start()
        self.cluster.ssm().terminate_session(SessionId=sid)
        # Both ends are told and closed by portholed.
        self.assertIn(client_dc.wait_closed(10)[0], ("close", "eof"))
        self.assertIn(agent_dc.wait_closed(10)[0], ("close", "eof"))
        agent_dc.close()
        client_dc.close()
        self.fake.task_complete(sid, "Success")
        self.settle()
        self.assert_server_alive()
        self.cluster.wait_session_status(sid, ("Terminated",), timeout=15)

    def test_failed_task_while_both_attached(self):
        sid, agent_dc, client_dc = self.start()
        self.fake.task_complete(sid, "Failed")
        self.assertIn(client_dc.wait_closed(10)[0], ("close", "eof"))
        client_dc.close()
        agent_dc.close()
        self.settle()
        self.assert_server_alive()
        self.cluster.wait_session_status(sid, ("Failed",), timeout=15)

    def test_agent_data_then_control_then_client(self):
        sid, agent_dc, client_dc = self.start()
        agent_dc.close()
        time.sleep(0.3)
        self.fake.close_ctl()
        self.assertIn(client_dc.wait_closed(10)[0], ("close", "eof"))
        client_dc.close()
        self.settle()
        self.assert_server_alive()
        self.cluster.wait_session_status(sid, ("Failed",), timeout=15)
        self.fake.connect()

    def test_upgrade_for_unknown_or_ended_session_refused(self):
        # No such session: refused before any WebSocket opens, client or
        # agent, with the same answer as for an ended one (an
        # unauthenticated caller learns nothing about which ids exist).
        bogus = "nobody-0123456789abcdef0"
        ws = harness.RawWebSocket(self.cluster.port,
                                  "/v1/data-channel/%s" % bogus,
                                  self.cluster.ca)
        try:
            self.assertNotEqual(ws.status, 101)
            self.assertEqual(ws.status, 403)
        finally:
            ws.close()
        d = self.fake.ws("/v1/data-channel/%s" % bogus)
        try:
            self.assertEqual(d.status, 403)
        finally:
            d.close()
        # An ended session: refused too.
        sid, agent_dc, client_dc = self.start()
        self.cluster.ssm().terminate_session(SessionId=sid)
        client_dc.wait_closed(10)
        agent_dc.wait_closed(10)
        client_dc.close()
        agent_dc.close()
        self.cluster.wait_session_status(sid, ("Terminated",), timeout=15)
        ws = harness.RawWebSocket(self.cluster.port,
                                  "/v1/data-channel/%s" % sid,
                                  self.cluster.ca)
        try:
            self.assertEqual(ws.status, 403)
        finally:
            ws.close()
        self.assert_server_alive()


if __name__ == "__main__":
    harness.main()
