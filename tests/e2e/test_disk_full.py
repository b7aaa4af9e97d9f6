"""portholed with its data directory full, and read-only.

Proves that with the data directory on a small tmpfs that is then filled
to the last byte, portholed keeps answering (reads answer, writes answer
200 or a 5xx, nothing hangs or crashes), and that a session that ends and
an agent that dies meanwhile are not left Active/Online: once space is
freed, within a bounded wait and without a restart, DescribeSessions
shows both sessions in History and DescribeInstanceInformation shows the
instance ConnectionLost, and porthole.db itself holds that state. Also
that `portholed serve` on a read-only data directory names the real
cause instead of suggesting `portholed init`, and that it still suggests
init when there is no database.

Mounting needs root (the tests and CI run as root); without it the tmpfs
tests are skipped.
"""

import os
import sqlite3
import subprocess
import tempfile
import unittest

import botocore.exceptions

import harness

TMPFS_SIZE = 24 << 20
FILL_CHUNK = 1 << 20


def mount_tmpfs(path, size):
    return subprocess.run(["mount", "-t", "tmpfs", "-o",
                           "size=%d,mode=0700" % size, "tmpfs", path],
                          capture_output=True, text=True, timeout=30)


def umount(path):
    subprocess.run(["umount", path], capture_output=True, timeout=30)


def can_mount():
    if os.geteuid() != 0:
        return False
    d = tempfile.mkdtemp(prefix="porthole-mountprobe-")
    try:
        if mount_tmpfs(d, 1 << 20).returncode != 0:
            return False
        umount(d)
        return True
    finally:
        os.rmdir(d)


MOUNT_OK = can_mount()


def fill(path):
    """Write `path` until the file system has no byte left; bounded by
    the file system's size. Returns the bytes written."""
    st = os.statvfs(os.path.dirname(path))
    total = st.f_blocks * st.f_frsize
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (FILL_CHUNK, 4096, 1):
            block = b"\0" * chunk
            for _ in range(total // chunk + 2):
                try:
                    n = os.write(fd, block)
                except OSError:
                    break
                written += n
                if n < chunk:
                    break
    finally:
        os.close(fd)
    return written


class TmpfsCluster(harness.Cluster):
    """A Cluster whose data directory is a tmpfs of its own."""

    mounted = None

    def init(self, *extra, data_dir=None):
        d = data_dir or self.data_dir
        if self.mounted is None:
            os.mkdir(d, 0o700)
            p = mount_tmpfs(d, TMPFS_SIZE)
            if p.returncode != 0:
                raise AssertionError("mount: %s" % p.stderr)
            self.mounted = d
        return super().init(*extra, data_dir=data_dir)

    def release_storage(self):
        # The processes have stopped: the tmpfs can go before the
        # temporary directory that holds it.
        if self.mounted is not None:
            umount(self.mounted)
            self.mounted = None


def db_state(data_dir, session_ids, instance_id):
    """(statuses of the sessions, ping status) as porthole.db holds them,
    read with SQLite directly (portholed keeps it open in WAL mode)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir,
                                                          "porthole.db"),
                         uri=True, timeout=5)
    try:
        ss = {}
        for sid in session_ids:
            row = db.execute("SELECT status FROM sessions WHERE id = ?",
                             (sid,)).fetchone()
            ss[sid] = row and row[0]
        row = db.execute("SELECT ping_status FROM instances WHERE id = ?",
                         (instance_id,)).fetchone()
        return ss, row and row[0]
    finally:
        db.close()


@unittest.skipUnless(MOUNT_OK, "needs root and tmpfs mounts")
class DiskFull(unittest.TestCase):

    def test_state_written_after_space_returns(self):
        with TmpfsCluster("diskfull") as c:
            try:
                self.scenario(c)
            except BaseException:
                c.failed = True
                raise

    def scenario(self, c):
        agent = c.add_agent("main")
        mi = agent.instance_id
        ended = c.open_session(mi, client="porthole")
        self.assertIn("ssm-user", ended.run("whoami"))
        lost = c.open_session(mi, client="porthole")
        self.assertIn("ssm-user", lost.run("whoami"))
        ended_sid, lost_sid = ended.session_id, lost.session_id

        filler = os.path.join(c.data_dir, "filler")
        self.assertGreater(fill(filler), 0)
        self.assertEqual(os.statvfs(c.data_dir).f_bavail, 0)

        ssm = c.ssm()
        # Reads answer; a write answers, at worst with a 5xx.
        ssm.describe_instance_information()
        try:
            ssm.create_activation(IamRole=harness.TEST_ROLE)
        except botocore.exceptions.ClientError as e:
            self.assertGreaterEqual(
                e.response["ResponseMetadata"]["HTTPStatusCode"], 500)

        # One session ends, then the agent dies under the other one.
        self.assertEqual(ended.exit(), 0)
        agent.proc.kill()
        lost.wait_exit(timeout=60)
        self.assertTrue(c.server.alive(), "portholed died on a full disk")
        # The API answers while the disk is full, and already shows the
        # state that is waiting to be written.
        harness.wait_for(
            lambda: c.instance_info(mi)["PingStatus"] == "ConnectionLost",
            20, 0.3, "PingStatus ConnectionLost on a full disk")
        state, _ = c.wait_session_status(ended_sid, ("Terminated",))
        self.assertEqual(state, "History")
        state, _ = c.wait_session_status(lost_sid, ("Terminated", "Failed"))
        self.assertEqual(state, "History")
        # ... which the database does not hold yet: the disk is full.
        sessions, ping = db_state(c.data_dir, (ended_sid, lost_sid), mi)
        self.assertEqual((sessions, ping), ({ended_sid: "Connected",
                                             lost_sid: "Connected"},
                                            "Online"))
        self.assertEqual(os.statvfs(c.data_dir).f_bavail, 0)

        os.unlink(filler)

        harness.wait_for(
            lambda: c.instance_info(mi)["PingStatus"] == "ConnectionLost",
            20, 0.3, "PingStatus ConnectionLost after space returned")
        state, rec = c.wait_session_status(ended_sid, ("Terminated",),
                                           timeout=20)
        self.assertEqual(state, "History", rec)
        state, rec = c.wait_session_status(lost_sid,
                                           ("Terminated", "Failed"),
                                           timeout=20)
        self.assertEqual(state, "History", rec)
        # Written to the database, not only shown.
        sessions, ping = harness.wait_for(
            lambda: (lambda r: r if r[1] == "ConnectionLost" and
                     r[0][ended_sid] == "Terminated" and
                     r[0][lost_sid] in ("Terminated", "Failed") else None)
            (db_state(c.data_dir, (ended_sid, lost_sid), mi)),
            20, 0.3, "porthole.db to hold the new state")
        self.assertEqual(ping, "ConnectionLost")
        self.assertTrue(c.server.alive())
        # And writes work again.
        ssm.create_activation(IamRole=harness.TEST_ROLE)


def serve_once(data_dir):
    """`portholed serve` that is expected to exit at once."""
    return subprocess.run(
        [harness.binary("portholed"), "serve", "--data-dir", data_dir,
         "--listen", "127.0.0.1:%d" % harness.free_port()],
        capture_output=True, text=True, timeout=30,
        stdin=subprocess.DEVNULL)


@unittest.skipUnless(MOUNT_OK, "needs root and tmpfs mounts")
class ReadOnly(unittest.TestCase):

    def test_read_only_data_dir(self):
        tmp = tempfile.mkdtemp(prefix="porthole-rodir-")
        data = os.path.join(tmp, "data")
        os.mkdir(data, 0o700)
        try:
            self.assertEqual(mount_tmpfs(data, 8 << 20).returncode, 0)
            p = subprocess.run([harness.binary("portholed"), "init",
                                "--data-dir", data], capture_output=True,
                               text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
            self.assertEqual(p.returncode, 0, p.stderr)
            r = subprocess.run(["mount", "-o", "remount,ro", data],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            p = serve_once(data)
            self.assertNotEqual(p.returncode, 0)
            msg = p.stderr.splitlines()[-1] if p.stderr else ""
            self.assertIn("read-only", msg.lower(), p.stderr)
            self.assertIn("porthole.db", msg, p.stderr)
            self.assertNotIn("portholed init", msg, p.stderr)
        finally:
            umount(data)
            subprocess.run(["rm", "-rf", tmp], timeout=30)


class NoDatabase(unittest.TestCase):

    def test_missing_database_suggests_init(self):
        tmp = tempfile.mkdtemp(prefix="porthole-nodb-")
        try:
            p = serve_once(tmp)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("portholed init", p.stderr)
            # serve does not create an empty database in its place
            self.assertFalse(os.path.exists(os.path.join(tmp,
                                                         "porthole.db")))
        finally:
            subprocess.run(["rm", "-rf", tmp], timeout=30)


if __name__ == "__main__":
    harness.main()
