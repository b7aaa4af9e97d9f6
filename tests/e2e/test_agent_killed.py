"""A SIGKILLed agent ends its sessions with the same clear message every
time.

When the agent dies, portholed sees its control channel and its data
channel go away in either order. Whatever the order, the client must get
channel_closed with "The session's agent disconnected." and exit 1, not
lose its connection, resume, and end with "Session: ... timed out."
(which it once did about one run in eight, more under CPU load: when the
client had paused reading, its WebSocket layer dropped the messages that
came in the same read as the close frame, channel_closed among them;
tests/unit/test_net.c test_ws_pause_then_peer_close). Each round kills
the agent under load from two busy loops and checks the message; the
rounds are bounded.
"""
import os
import signal
import subprocess
import time

import harness

ROUNDS = int(os.environ.get("ROUNDS", "4"))
MESSAGE = "The session's agent disconnected."


class AgentKilledTest(harness.ClusterTestCase):

    def burn(self):
        """Two bounded busy loops, for CPU load while the agent dies."""
        procs = []
        for _ in range(2):
            # Its own process group, so killing it leaves no loop behind.
            procs.append(subprocess.Popen(
                ["timeout", "-s", "KILL", "20", "sh", "-c",
                 "while :; do :; done"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True))
        return procs

    def test_kill_agent_message_every_time(self):
        c = self.cluster
        for client in ("porthole", "aws"):
            for i in range(ROUNDS // 2):
                with self.subTest(client=client, round=i):
                    self.one_round(c, client)

    def one_round(self, c, client):
        s = c.open_session(self.target, client=client)
        self.assertIn("ssm-user", s.run("whoami"))
        burners = self.burn()
        try:
            os.kill(self.agent.pid, signal.SIGKILL)
            s.expect(MESSAGE.replace(".", r"\.").replace("'", "."),
                     timeout=60)
            status = s.wait_exit(30)
        finally:
            for p in burners:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        out = s.output()
        self.assertNotIn("timed out", out)
        if client == "porthole":
            self.assertEqual(status, 1, s.describe_exit())
        self.agent.start()
        c.wait_online(self.target, agent=self.agent, timeout=60)
        time.sleep(0.2)


if __name__ == "__main__":
    harness.main()
