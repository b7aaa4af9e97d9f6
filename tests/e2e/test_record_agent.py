"""The agent records every session and delivers the record to portholed.

A shell through the real AWS CLI: while it runs, the agent's spool
(STATE_DIR/records/<id>.rec) holds the header and input frames with every
key typed (AAFFHHJJ, then erased) and output frames; after it, portholed
has the record byte for byte (DATA_DIR/records/<id>.rec) and the spool is
gone; a line typed at a password prompt (echo off) is not kept. 50 MB of
random bytes from a non-interactive command are recorded
exactly. An agent SIGKILLed mid-session delivers its record after a
restart, ended by a frame saying the agent stopped.
"""
import hashlib
import json
import os
import re
import signal
import struct
import subprocess
import time
import unittest

import harness
import sessionkit

MAGIC = b"PHREC1\n"
NON_INTERACTIVE = "AWS-StartNonInteractiveCommand"
ALIAS = "alias/record-e2e"


def parse_record(data):
    """(header, [(type, t_us, bytes)]) of a raw record; fails on a
    partial or unknown frame."""
    assert data.startswith(MAGIC), data[:20]
    nl = data.index(b"\n", len(MAGIC))
    header = json.loads(data[len(MAGIC):nl])
    off, frames = nl + 1, []
    while off < len(data):
        assert len(data) - off >= 13, "partial frame head at %d" % off
        t = data[off:off + 1]
        us, n = struct.unpack(">QI", data[off + 1:off + 13])
        assert t in (b"i", b"o", b"r", b"m"), (t, off)
        assert off + 13 + n <= len(data), "partial frame at %d" % off
        frames.append((t.decode(), us, data[off + 13:off + 13 + n]))
        off += 13 + n
    return header, frames


def read(path):
    with open(path, "rb") as f:
        return f.read()


def joined(frames, kind):
    return b"".join(d for t, _, d in frames if t == kind)


class RecordAgent(harness.ClusterTestCase):

    def spool(self, agent, sid):
        return os.path.join(agent.state_dir, "records", sid + ".rec")

    def server_record(self, sid):
        return os.path.join(self.cluster.data_dir, "records", sid + ".rec")

    def wait_delivered(self, agent, sid, timeout=60):
        """The spool file goes only after portholed completed the record."""
        harness.wait_for(lambda: not os.path.exists(self.spool(agent, sid)),
                         timeout, 0.2, "the spool of %s to be delivered"
                         % sid)
        return read(self.server_record(sid))

    def test_shell_typed_and_erased(self):
        c = self.cluster
        s = c.open_session(self.agent.instance_id, client="aws")
        sid = s.session_id
        s.child.send("AAFFHHJJ")
        time.sleep(0.3)
        s.child.send("\x7f" * 8)
        time.sleep(0.2)
        self.assertIn("ssm-user", s.run("whoami"))
        # A password prompt (echo off): the typed line is not recorded.
        s.child.sendline("read -s -p 'PW: ' X; echo got-${#X}")
        s.expect("PW: ")
        time.sleep(0.2)
        s.child.sendline("SECRET-PW-123")
        s.expect("got-13")
        s.child.expect_exact(harness.PROMPT)
        # While the session runs the spool has header, input and output.
        path = self.spool(self.agent, sid)
        harness.wait_for(lambda: os.path.exists(path), 10, 0.1,
                         "the spool file")
        harness.wait_for(lambda: b"ssm-user" in read(path),
                         10, 0.1, "output in the spool")
        self.assertEqual(harness.file_mode(path) & 0o077, 0)
        head, frames = parse_record(read(path))
        self.assertEqual(head["session_id"], sid)
        self.assertEqual(head["instance_id"], self.agent.instance_id)
        self.assertEqual(head["session_type"], "Standard_Stream")
        self.assertIn(b"AAFFHHJJ", joined(frames, "i"))
        self.assertIn(b"\x7f" * 8, joined(frames, "i"))
        self.assertEqual(s.exit(), 0)

        data = self.wait_delivered(self.agent, sid)
        head, frames = parse_record(data)
        self.assertEqual(head["session_id"], sid)
        self.assertEqual(head["run_as"], "ssm-user"
                         if os.geteuid() == 0 else head["run_as"])
        inp, out = joined(frames, "i"), joined(frames, "o")
        self.assertLess(inp.index(b"AAFFHHJJ"), inp.index(b"whoami"))
        self.assertIn(b"ssm-user", out)
        self.assertTrue(any(t == "r" for t, _, _ in frames))
        self.assertNotIn(b"SECRET-PW", data)
        hidden = [json.loads(d) for t, _, d in frames
                  if t == "m" and b"input_hidden" in d]
        self.assertEqual(sum(h["bytes"] for h in hidden), 14)
        t, _, end = frames[-1]
        self.assertEqual(t, "m")
        end = json.loads(end)
        self.assertEqual(end["event"], "end")
        self.assertEqual(end["status"], "Terminated")
        times = [us for _, us, _ in frames]
        self.assertEqual(times, sorted(times))

    def test_binary_output_exact(self):
        c = self.cluster
        blob = os.path.join(c.tmp, "blob.bin")
        with open(blob, "wb") as f:
            f.write(os.urandom(50 * 1000 * 1000))
        os.chmod(blob, 0o644)
        os.chmod(c.tmp, 0o755)
        want = hashlib.sha256(read(blob)).hexdigest()
        out = os.path.join(c.tmp, "blob.out")
        argv = ["aws", "ssm", "start-session", "--target",
                self.agent.instance_id, "--document-name", NON_INTERACTIVE,
                "--parameters", json.dumps({"command": ["cat " + blob]})]
        with open(out, "wb") as f:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=f,
                               stderr=subprocess.PIPE, timeout=90,
                               env=c.env)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        text = read(out)
        m = text.index(b"Starting session with SessionId: ")
        sid = text[m:].split(b"\n", 1)[0].split()[-1].decode()
        data = self.wait_delivered(self.agent, sid, timeout=90)
        head, frames = parse_record(data)
        self.assertEqual(head["session_type"], "NonInteractiveCommands")
        got = hashlib.sha256(joined(frames, "o")).hexdigest()
        self.assertEqual(got, want)
        end = json.loads(frames[-1][2])
        self.assertEqual(end.get("exit_code"), 0)
        self.assertEqual(end.get("bytes_out"), 50 * 1000 * 1000)

    def test_agent_killed_mid_session(self):
        c = self.cluster
        a = c.add_agent("killed")
        s = c.open_session(a.instance_id, client="porthole")
        sid = s.session_id
        self.assertIn("MARK", s.run("echo MARK''ER-BEFORE-KILL"))
        path = self.spool(a, sid)
        harness.wait_for(
            lambda: b"MARKER-BEFORE-KILL" in read(path),
            10, 0.1, "the output in the spool")
        os.kill(a.pid, signal.SIGKILL)
        a.proc.popen.wait(10)
        s.close()
        self.assertTrue(os.path.exists(path))
        # portholed is down when the agent comes back: the uploader
        # retries until it is up again.
        c.stop_server()
        a.start()
        time.sleep(2)
        self.assertTrue(os.path.exists(path))
        c.start_server()
        data = self.wait_delivered(a, sid)
        head, frames = parse_record(data)
        self.assertIn(b"MARKER-BEFORE-KILL", joined(frames, "o"))
        self.assertIn(b"echo MARK''ER-BEFORE-KILL", joined(frames, "i"))
        end = json.loads(frames[-1][2])
        self.assertEqual((frames[-1][0], end["event"], end["status"]),
                         ("m", "end", "Failed"))
        self.assertIn("agent stopped", end["reason"])
        self.assertFalse(os.path.exists(path[:-4] + ".ack"))
        c.wait_online(self.agent.instance_id, agent=self.agent)

    def test_full_spool_slows_session(self):
        """portholed cannot store records for a while: the agent's spool
        fills to RecordSpoolMaxBytes, the command's output waits, and
        once portholed stores again everything arrives, exact."""
        c = self.cluster
        a = c.add_agent("bounded", start=False)
        cfg = os.path.join(a.state_dir, "agent.json")
        with open(cfg) as f:
            conf = json.load(f)
        conf["RecordSpoolMaxBytes"] = 1 << 20
        with open(cfg, "w") as f:
            json.dump(conf, f)
        a.start()
        c.wait_online(a.instance_id, agent=a)
        blob = os.path.join(c.tmp, "blob8.bin")
        content = os.urandom(8 << 20)
        with open(blob, "wb") as f:
            f.write(content)
        os.chmod(blob, 0o644)
        os.chmod(c.tmp, 0o755)
        recdir = os.path.join(c.data_dir, "records")
        os.makedirs(recdir, exist_ok=True)
        away = recdir + ".away"
        os.rename(recdir, away)
        with open(recdir, "w"):
            pass  # a file where the directory was: appends fail (503)
        outpath = os.path.join(c.tmp, "bounded.out")
        argv = [harness.binary("porthole"), "start-session", "--target",
                a.instance_id, "--document-name", NON_INTERACTIVE,
                "--parameters", json.dumps({"command": ["cat " + blob]})]
        with open(outpath, "wb") as out:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.PIPE, env=c.env)
            try:
                time.sleep(3)
                self.assertIsNone(p.poll(), "the command was not slowed")
                self.assertLess(os.path.getsize(outpath), 3 << 20)
                spool = os.path.join(a.state_dir, "records")
                held = sum(os.path.getsize(os.path.join(spool, n))
                           for n in os.listdir(spool) if n.endswith(".rec"))
                self.assertLess(held, 2 << 20)
            finally:
                os.unlink(recdir)
                os.rename(away, recdir)
            _, err = p.communicate(timeout=90)
        self.assertEqual(p.returncode, 0, err[-2000:])
        text = read(outpath)
        self.assertIn(content, text)
        m = re.search(rb"SessionId: (\S+)", text + err)
        data = self.wait_delivered(a, m.group(1).decode().rstrip("."))
        head, frames = parse_record(data)
        self.assertEqual(joined(frames, "o"), content)

    def test_encrypted_session_recorded(self):
        """KMS-encrypted: the record holds the plaintext."""
        c = self.cluster
        sessionkit.create_key(c, alias=ALIAS,
                              policy=sessionkit.session_key_policy(c),
                              description="record e2e")
        sessionkit.set_session_prefs(c, kmsKeyId=ALIAS)
        try:
            s = c.open_session(self.agent.instance_id, client="aws")
            self.assertIn("KMS-PLAIN", s.run("echo KMS''-PLAIN''-TEXT"))
            self.assertEqual(s.exit(), 0)
            self.assertIn("encrypted using AWS KMS", s.output())
        finally:
            sessionkit.set_session_prefs(c, kmsKeyId="")
        head, frames = parse_record(self.wait_delivered(self.agent,
                                                        s.session_id))
        self.assertIn(b"KMS-PLAIN-TEXT", joined(frames, "o"))
        self.assertIn(b"echo KMS''-PLAIN''-TEXT", joined(frames, "i"))


if __name__ == "__main__":
    unittest.main()
