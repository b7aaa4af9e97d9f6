"""Session limits from the Session Manager preferences.

Proves that idleSessionTimeout "1" (set with `aws ssm update-document
--name SSM-SessionManagerRunShell ... --document-version '$LATEST'`) ends a
session that has been idle for about a minute: the user is told why on the
screen, the client exits, and the session is recorded as Terminated; a
session that keeps typing is not ended by it. And that maxSessionDuration
"1" ends even a busy session after about a minute, the same way. And
that `aws ssm terminate-session` from another terminal ends an open
session within a second (the client says so and exits 0), recorded as
Terminated, with `porthole` and with the AWS CLI. And that a client that
never acknowledges (the agent resends the same messages all along, as it
does to AWS's plugin after an acknowledgement is lost in a network cut)
still ends idle: a retransmission is not activity.

The scenarios that wait a minute or more (idle with each client, typing,
busy) run at the same time: preferences apply when a session starts, so
setUpClass opens each scenario's session under its own preferences, puts
the defaults back, and drives every session from a thread of its own; the
test of a scenario waits for its thread and checks what it saw.
"""

import re
import threading
import time

import harness
import sessionkit

TOLD_IDLE = r"(?i)idle|inactiv|timed out"
TOLD_MAX = r"(?i)maximum|duration|max|timed out|expired"


class Background(threading.Thread):
    """fn(session) in a thread of its own; result() gives what it returned
    or raises what it raised, in the test that owns the scenario."""

    def __init__(self, session, fn):
        super().__init__(daemon=True)
        self.session, self.fn = session, fn
        self.value = self.error = None
        self.start()

    def run(self):
        try:
            self.value = self.fn(self.session)
        except BaseException as e:  # noqa: BLE001 - raised by result()
            self.error = e

    def result(self, timeout):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("the scenario was still running after %ss"
                                 % timeout)
        if self.error is not None:
            raise self.error
        return self.value


class Failed:
    """A scenario whose session did not open: its test raises why."""

    def __init__(self, error):
        self.error = error

    def result(self, timeout):
        raise self.error


def wait_end(s, secs):
    """When the client exited; fails if it was still open after secs."""
    try:
        s.child.expect(harness.pexpect.EOF, timeout=secs)
    except harness.pexpect.TIMEOUT:
        raise AssertionError("the session was still open after %ss"
                             % secs) from None
    s.child.close()
    return time.monotonic()


def told(s):
    """What the client printed after the last prompt."""
    text = harness.strip_ansi(s.transcript.getvalue())
    return text[text.rfind(harness.PROMPT) + len(harness.PROMPT):]


def left_idle(s):
    """whoami, then nothing: the output and how long it sat idle."""
    who = s.run("whoami")
    last = time.monotonic()
    return who, wait_end(s, 120) - last


def typing(s):
    """A command every ten seconds for 90 s, then one more and exit."""
    started = time.monotonic()
    ticks = []
    for i in range(9):
        ticks.append(s.run("echo tick-''%d" % i))
        time.sleep(10)
    took = time.monotonic() - started
    alive = s.child.isalive()
    still = s.run("echo sti''ll")
    return ticks, took, alive, still, s.exit()


class RawSession:
    """A data channel opened by hand, for a client that never
    acknowledges."""

    def __init__(self, cluster, target):
        self.session_id, self.ws = sessionkit.open_raw_channel(cluster,
                                                               target)


def never_acks(s):
    """Read the agent's frames, acknowledge none, until the channel ends:
    (how it ended, seconds since the last new sequence number, frames that
    repeated one)."""
    seen = set()
    resent = 0
    last_new = time.monotonic()
    deadline = last_new + 150
    try:
        for _ in range(10 ** 6):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the channel was still open after "
                                     "150 s")
            try:
                f, ended = sessionkit.read_client_frame(s.ws, left)
            except TimeoutError:
                continue
            if ended is not None:
                return ended, time.monotonic() - last_new, resent
            if f.get("type") != "output_stream_data":
                continue
            if f["seq"] in seen:
                resent += 1
            else:
                seen.add(f["seq"])
                last_new = time.monotonic()
        raise AssertionError("too many frames")
    finally:
        s.ws.close()


def busy(s):
    """Output every half second until the session ends; how long it ran."""
    started = time.monotonic()
    s.child.sendline("while :; do echo busy; sleep 0.5; done")
    return wait_end(s, 120) - started


class SessionLimits(harness.ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.cluster
        cls.runs = {}
        try:
            sessionkit.set_session_prefs(c, idleSessionTimeout="1")
            for client in ("porthole", "aws"):
                cls.runs["idle " + client] = cls.begin(client, left_idle)
            cls.runs["typing"] = cls.begin("porthole", typing)
            cls.runs["never acks"] = cls.begin(None, never_acks)
            sessionkit.set_session_prefs(c, maxSessionDuration="1")
            cls.runs["busy"] = cls.begin("porthole", busy)
            sessionkit.set_session_prefs(c)
        except BaseException:
            c.close(dump=True, raise_reports=False)
            raise

    @classmethod
    def begin(cls, client, fn):
        """Open a session under the preferences in force; fn drives it."""
        try:
            if client is None:
                s = RawSession(cls.cluster, cls.agent.instance_id)
            else:
                s = cls.cluster.open_session(cls.agent.instance_id,
                                             client=client)
        except Exception as e:  # noqa: BLE001 - that scenario's test fails
            return Failed(e)
        return Background(s, fn)

    def test_idle_timeout(self):
        for client in ("porthole", "aws"):
            with self.subTest(client=client):
                run = self.runs["idle " + client]
                who, idle = run.result(180)
                s = run.session
                self.assertIn("ssm-user", who.split())
                self.assertGreater(idle, 50, "ended after %.0fs idle" % idle)
                self.assertLess(idle, 100, "ended after %.0fs idle" % idle)
                self.assertRegex(told(s), TOLD_IDLE)
                self.assertIsNotNone(s.exit_status())
                state, rec = self.cluster.wait_session_status(
                    s.session_id, ("Terminated",))
                self.assertEqual(state, "History")

    def test_typing_keeps_a_session_alive(self):
        ticks, took, alive, still, status = self.runs["typing"].result(360)
        for i, out in enumerate(ticks):
            self.assertIn("tick-%d" % i, out)
        self.assertGreater(took, 80)
        self.assertTrue(alive)
        self.assertIn("still", still)
        self.assertEqual(status, 0)

    def test_retransmissions_are_not_activity(self):
        run = self.runs["never acks"]
        ended, idle, resent = run.result(200)
        self.assertIsNotNone(ended)
        # Unacknowledged, the agent resends every few hundred ms at most.
        self.assertGreater(resent, 20, "the agent did not resend")
        self.assertGreater(idle, 50, "ended %.0fs after the last new "
                           "message" % idle)
        self.assertLess(idle, 100, "ended %.0fs after the last new "
                        "message" % idle)
        state, rec = self.cluster.wait_session_status(
            run.session.session_id, ("Terminated",))
        self.assertEqual(state, "History")

    def test_max_session_duration(self):
        run = self.runs["busy"]
        took = run.result(180)
        s = run.session
        self.assertGreater(took, 50, "ended after %.0fs" % took)
        self.assertLess(took, 100, "ended after %.0fs" % took)
        text = harness.strip_ansi(s.transcript.getvalue())
        tail = text[text.rfind("busy") + 4:]
        self.assertRegex(tail, TOLD_MAX)
        self.assertTrue(re.search(r"SessionId: ", tail), tail)
        self.cluster.wait_session_status(s.session_id, ("Terminated",))

    def terminate_from_elsewhere(self, client):
        s = self.cluster.open_session(self.target, client=client)
        self.assertIn("ssm-user", s.run("whoami").split())
        s.child.sendline("sleep 300")
        time.sleep(0.5)
        self.cluster.aws("ssm", "terminate-session", "--session-id",
                         s.session_id)
        returned = time.monotonic()
        s.child.expect(harness.pexpect.EOF, timeout=20)
        took = time.monotonic() - returned
        s.child.close()
        self.assertLess(took, 1.0, "the client ended %.2fs after "
                        "TerminateSession returned" % took)
        self.assertRegex(harness.strip_ansi(s.transcript.getvalue()),
                         r"(Exiting session with sessionId: |SessionId: )"
                         + s.session_id)
        self.assertEqual(s.exit_status(), 0)
        state, rec = self.cluster.wait_session_status(s.session_id,
                                                      ("Terminated",))
        self.assertEqual(state, "History")

    def test_terminate_from_another_terminal_porthole(self):
        self.terminate_from_elsewhere("porthole")

    def test_terminate_from_another_terminal_aws_cli(self):
        self.terminate_from_elsewhere("aws")

if __name__ == "__main__":
    harness.main()
