"""Helpers for the end-to-end tests of encrypted and resilient sessions.

- TcpProxy: a loopback TCP forwarder a test puts between a client (or an
  agent) and portholed, so it can cut every connection at a chosen moment
  and refuse new ones for a while (a laptop's Wi-Fi dropping).
- Session preferences: write an SSM-SessionManagerRunShell document and
  install it with `aws ssm update-document ... --document-version $LATEST`.
- KMS keys for sessions: the account id, principal ARNs and key policies.
- Frames: decode a ClientMessage (wire spec 3.1), build acknowledgements
  (4.2), and read portholed's relay capture (PORTHOLED_RELAY_CAPTURE).
- pump(): read a session's terminal output without pexpect's searches, for
  outputs of many megabytes.

Every loop here is bounded in time and count.
"""

import json
import os
import select
import socket
import struct
import threading
import time
import uuid

import harness

DEFAULT_INPUTS = {
    "s3BucketName": "",
    "s3KeyPrefix": "",
    "s3EncryptionEnabled": False,
    "cloudWatchLogGroupName": "",
    "cloudWatchEncryptionEnabled": False,
    "cloudWatchStreamingEnabled": False,
    "idleSessionTimeout": "20",
    "maxSessionDuration": "",
    "kmsKeyId": "",
    "runAsEnabled": False,
    "runAsDefaultUser": "",
    "shellProfile": {"windows": "", "linux": ""},
}

ENCRYPTED_BANNER = "This session is encrypted using AWS KMS."

# Payload types (wire spec 3.4).
PT_OUTPUT, PT_ERROR, PT_SIZE = 1, 2, 3
PT_HS_REQUEST, PT_HS_RESPONSE, PT_HS_COMPLETE = 5, 6, 7
PT_CHALLENGE_REQUEST, PT_CHALLENGE_RESPONSE = 8, 9
PT_FLAG, PT_STDERR, PT_EXIT_CODE = 10, 11, 12

PROXY_MAX_LIFETIME = 1800  # seconds; a forgotten proxy stops by itself


# ---- TCP proxy -----------------------------------------------------------

class _Pair:
    def __init__(self, n, down, up):
        self.n = n
        self.down = down        # accepted from the client
        self.up = up            # dialled to the server
        self.accepted = time.monotonic()
        self.closed = False
        self.frozen = False     # bytes swallowed, connection kept open
        self.lock = threading.Lock()

    def kill(self):
        with self.lock:
            if self.closed:
                return False
            self.closed = True
        for s in (self.down, self.up):
            try:
                # RST rather than FIN: the peers see the connection die.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
            except OSError:
                pass
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        return True


class TcpProxy:
    """127.0.0.1:<port> forwarding every connection to 127.0.0.1:target."""

    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.url = "https://127.0.0.1:%d" % self.port
        self.pairs = []
        self.lock = threading.Lock()
        self.down_until = 0.0
        self.stopping = False
        self.refused = 0
        self.bytes = {"up": 0, "down": 0}
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._accept_loop,
                                       daemon=True)
        self.thread.start()

    def _alive(self):
        return not self.stopping and \
            time.monotonic() - self.started < PROXY_MAX_LIFETIME

    def _accept_loop(self):
        for _ in range(10 ** 7):
            if not self._alive():
                break
            try:
                r, _w, _x = select.select([self.lsock], [], [], 0.2)
            except (OSError, ValueError):
                break
            if not r:
                continue
            try:
                down, _addr = self.lsock.accept()
            except OSError:
                continue
            if time.monotonic() < self.down_until:
                # "No network": the connection dies at once.
                self.refused += 1
                _Pair(-1, down, socket.socket()).kill()
                continue
            try:
                up = socket.create_connection(self.target, timeout=5)
                up.settimeout(None)
                down.settimeout(None)
            except OSError:
                down.close()
                continue
            with self.lock:
                p = _Pair(len(self.pairs), down, up)
                self.pairs.append(p)
            for src, dst, key in ((down, up, "up"), (up, down, "down")):
                threading.Thread(target=self._pump, args=(p, src, dst, key),
                                 daemon=True).start()

    def _pump(self, pair, src, dst, key):
        # Blocking sockets (a send timeout would lose bytes when the peer
        # applies backpressure); select bounds each wait for reading.
        for _ in range(10 ** 8):
            if pair.closed or not self._alive():
                break
            try:
                r, _w, _x = select.select([src], [], [], 1.0)
                if not r:
                    continue
                data = src.recv(65536)
            except (OSError, ValueError):
                break
            if not data:
                break
            if pair.frozen:
                continue    # a dead path: nothing arrives, nothing closes
            try:
                dst.sendall(data)
            except OSError:
                break
            self.bytes[key] += len(data)
        pair.kill()

    def live(self, since=None):
        with self.lock:
            return [p for p in self.pairs if not p.closed and
                    (since is None or p.accepted >= since)]

    def cut(self, since=None, outage=0.0):
        """Kill every live connection (accepted at or after the monotonic
        time `since`, if given) and refuse new ones for `outage` seconds.
        Returns how many were cut."""
        self.down_until = time.monotonic() + outage
        n = 0
        for p in self.live(since):
            if p.kill():
                n += 1
        return n

    def freeze(self, since=None):
        """Make every live connection (accepted at or after `since`) a
        black hole that stays open: the peers see silence, not a close.
        New connections still pass. Returns how many were frozen."""
        n = 0
        for p in self.live(since):
            if not p.frozen:
                p.frozen = True
                n += 1
        return n

    def describe(self):
        now = time.monotonic()
        return "proxy :%d -> :%d, bytes %s, %d refused, connections: %s" % (
            self.port, self.target[1], self.bytes, self.refused,
            ", ".join("#%d %s %.1fs ago" % (p.n, "closed" if p.closed
                                             else "open", now - p.accepted)
                      for p in self.pairs))

    def close(self):
        self.stopping = True
        for p in self.live():
            p.kill()
        try:
            self.lsock.close()
        except OSError:
            pass
        self.thread.join(timeout=3)


# ---- accounts, principals, key policies -------------------------------------

def account_id(cluster):
    with open(os.path.join(cluster.data_dir, "config.json")) as f:
        return json.load(f)["AccountId"]


def admin_arn(cluster):
    return "arn:aws:iam::%s:user/admin" % account_id(cluster)


def role_arn(cluster, role=harness.TEST_ROLE):
    return "arn:aws:iam::%s:role/%s" % (account_id(cluster), role)


def key_policy(statements):
    """A key policy document from (sid, principal ARNs, actions)."""
    return json.dumps({
        "Version": "2012-10-17",
        "Id": "porthole-e2e",
        "Statement": [{
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": actions,
            "Resource": "*",
        } for sid, principals, actions in statements],
    })


def session_key_policy(cluster, users=None, roles=None, decrypt_roles=None):
    """The key policy of the AWS documentation for Session Manager: the
    admin administers and uses the key (GenerateDataKey for the clients it
    opens sessions with), the instances' role may Decrypt."""
    users = [admin_arn(cluster)] if users is None else users
    roles = [role_arn(cluster)] if roles is None else roles
    st = []
    if users:
        st.append(("Users", users, "kms:*"))
    if roles:
        st.append(("Instances", roles, ["kms:Decrypt", "kms:DescribeKey"]))
    if decrypt_roles:
        st.append(("OtherInstances", decrypt_roles, ["kms:Decrypt"]))
    return key_policy(st)


def create_key(cluster, alias=None, policy=None, description="e2e key"):
    """`aws kms create-key` (+ create-alias); returns the KeyMetadata."""
    args = ["kms", "create-key", "--description", description]
    if policy is not None:
        path = os.path.join(cluster.tmp, "policy-%s.json" % uuid.uuid4().hex)
        with open(path, "w") as f:
            f.write(policy)
        args += ["--policy", "file://" + path,
                 "--bypass-policy-lockout-safety-check"]
    meta = cluster.aws(*args)["KeyMetadata"]
    if alias:
        cluster.aws("kms", "create-alias", "--alias-name", alias,
                    "--target-key-id", meta["KeyId"])
    return meta


# ---- session preferences ---------------------------------------------------

def prefs_document(**inputs):
    i = dict(DEFAULT_INPUTS)
    i.update(inputs)
    return {
        "schemaVersion": "1.0",
        # Unique, so no two updates carry the same content (AWS answers a
        # repeated content with DuplicateDocumentContent).
        "description": "porthole e2e preferences %s" % uuid.uuid4().hex,
        "sessionType": "Standard_Stream",
        "inputs": i,
    }


def set_session_prefs(cluster, **inputs):
    """Install new Session Manager preferences the way the AWS
    documentation does. Returns update-document's DocumentDescription."""
    path = os.path.join(cluster.tmp, "prefs.json")
    with open(path, "w") as f:
        json.dump(prefs_document(**inputs), f, indent=2)
    out = cluster.aws("ssm", "update-document", "--name",
                      "SSM-SessionManagerRunShell", "--content",
                      "file://" + path, "--document-version", "$LATEST")
    return out.get("DocumentDescription", out)


# ---- frames ------------------------------------------------------------------

def mid_from_wire(b):
    """The canonical MessageId string from its swapped wire form (3.2)."""
    return str(uuid.UUID(bytes=bytes(b[8:16]) + bytes(b[0:8])))


def parse_frame(b):
    """Decode a ClientMessage; None if it is too short to be one."""
    if len(b) < 120:
        return None
    hl = struct.unpack("!I", b[0:4])[0]
    mtype = b[4:36].replace(b"\0", b" ").strip().decode("latin-1")
    seq, flags = struct.unpack("!qQ", b[48:64])
    ptype, plen = struct.unpack("!II", b[112:120])
    return {
        "header_length": hl,
        "type": mtype,
        "seq": seq,
        "flags": flags,
        "id": mid_from_wire(b[64:80]),
        "digest": bytes(b[80:112]),
        "ptype": ptype,
        "plen": plen,
        "payload": bytes(b[hl + 4:]) if hl + 4 <= len(b) else b"",
    }


def ack_for(frame):
    """The acknowledge ClientMessage for a received stream frame (4.2)."""
    body = json.dumps({
        "AcknowledgedMessageType": frame["type"],
        "AcknowledgedMessageId": frame["id"],
        "AcknowledgedMessageSequenceNumber": frame["seq"],
        "IsSequentialMessage": True,
    }).encode()
    return harness.client_message("acknowledge", body, seq=0, flags=3,
                                  payload_type=0)


def read_client_frame(ws, left):
    """One frame a raw client reads from its data channel: (frame, None)
    with the parsed frame ({} for pings, other opcodes and frames that do
    not parse), or (None, ended) once the channel ended: ("eof", None),
    ("close", code bytes) or ("channel_closed", payload). Pings are
    answered; TimeoutError when nothing came within `left` seconds."""
    try:
        op, data = ws.recv(timeout=max(left, 0.05))
    except (ConnectionError, OSError) as e:
        if isinstance(e, TimeoutError) or "timed out" in str(e):
            raise TimeoutError() from None
        return None, ("eof", None)
    if op == harness.OP_CLOSE:
        return None, ("close", data[:2])
    if op == harness.OP_PING:
        ws.send(harness.OP_PONG, data)
        return {}, None
    if op != harness.OP_BINARY:
        return {}, None
    f = parse_frame(data)
    if f is None:
        return {}, None
    if f["type"] == "channel_closed":
        return None, ("channel_closed", f["payload"])
    return f, None



def open_raw_channel(cluster, target, **start):
    """StartSession(Target=target, **start), the WebSocket and
    OpenDataChannel: (session id, the open RawWebSocket)."""
    r = cluster.ssm().start_session(Target=target, **start)
    ws = harness.RawWebSocket(cluster.port, harness.stream_url_path(
        r["StreamUrl"]), cluster.ca, timeout=15)
    if ws.status != 101:
        ws.close()
        raise AssertionError("the upgrade was answered %s" % ws.status)
    ws.send_text(harness.open_data_channel_json(r["TokenValue"]))
    return r["SessionId"], ws


class RawClient:
    """The client end of a data channel, driven by hand (tests of hostile
    clients): StartSession(Target=tc.target, **start), the WebSocket and
    OpenDataChannel. Agent stream frames are acknowledged as they come and
    handed to on_stream; self.ended says how the channel ended."""

    end_within = 20  # seconds wait_end waits by default

    def __init__(self, tc, **start):
        self.tc = tc
        self.sid, self.ws = open_raw_channel(tc.cluster, tc.target, **start)
        self.seq = 0
        self.ended = None

    def close(self):
        self.ws.close()

    def send(self, payload, ptype=PT_OUTPUT):
        self.ws.send_binary(harness.client_message(
            "input_stream_data", payload, seq=self.seq, payload_type=ptype))
        self.seq += 1

    def on_stream(self, f):
        """Called with each agent stream frame, after its acknowledge."""

    def read_one(self, left):
        """One parsed frame, or sets self.ended and returns None;
        TimeoutError when nothing came within `left` seconds."""
        f, ended = read_client_frame(self.ws, left)
        if ended is not None:
            self.ended = ended
            return None
        if f.get("type") == "output_stream_data":
            self.ws.send_binary(ack_for(f))
            self.on_stream(f)
        return f

    def next_stream(self, ptypes, timeout=20):
        """The next agent stream frame of one of `ptypes`."""
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                f = self.read_one(left)
            except TimeoutError:
                break
            if f is None:
                raise AssertionError("the session ended (%s) while waiting "
                                     "for payload type %s"
                                     % (self.ended, ptypes))
            if f.get("type") == "output_stream_data" and \
                    f["ptype"] in ptypes:
                return f
        raise AssertionError("no payload type %s within %ss" % (ptypes,
                                                               timeout))

    def wait_end(self, timeout=None):
        """How the channel ended (see read_client_frame), or None if it
        is still open after `timeout` (end_within) seconds."""
        deadline = time.monotonic() + (self.end_within if timeout is None
                                       else timeout)
        for _ in range(100000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                if self.read_one(left) is None:
                    return self.ended
            except TimeoutError:
                break
        return None

def read_capture(path, offset=0):
    """Records of a relay capture file from byte `offset`: a list of
    (direction "A" or "C", frame bytes)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    i = 0
    for _ in range(len(data) // 6 + 1):
        if i + 6 > len(data):
            break
        tag = data[i:i + 2]
        n = struct.unpack("!I", data[i + 2:i + 6])[0]
        if tag not in (b"A>", b"C>"):
            raise AssertionError("relay capture is malformed at byte %d"
                                 % (offset + i))
        if i + 6 + n > len(data):
            break  # a record still being written
        out.append((chr(tag[0]), data[i + 6:i + 6 + n]))
        i += 6 + n
    return out


def stream_bytes(records, direction, ptypes=(PT_OUTPUT,)):
    """The in-order payload bytes of one direction's stream messages of the
    given payload types, each sequence number once (resends collapse)."""
    want = "output_stream_data" if direction == "A" else "input_stream_data"
    by_seq = {}
    for d, raw in records:
        if d != direction:
            continue
        f = parse_frame(raw)
        if f and f["type"] == want and f["ptype"] in ptypes:
            by_seq.setdefault(f["seq"], f["payload"])
    return b"".join(by_seq[k] for k in sorted(by_seq))


# ---- large outputs -------------------------------------------------------------

def pump(session, until, timeout, sink=None, on_progress=None):
    """Read a session's terminal output until the text `until` has been
    seen (searching only the newly read text and a small overlap), for at
    most `timeout` seconds. Returns everything read (str). `on_progress`
    (total characters so far) is called after each read."""
    child = session.child
    chunks = [] if sink is None else sink
    # What pexpect already read past its last match comes first.
    pre = child.buffer
    child.buffer = child.string_type()
    total = len(pre)
    i = pre.find(until)
    if i >= 0:
        child.buffer = pre[i + len(until):]
        return pre[:i + len(until)]
    chunks.append(pre)
    tail = pre[-(len(until) + 200):]
    deadline = time.monotonic() + timeout
    for _ in range(10 ** 7):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            data = child.read_nonblocking(1 << 16, timeout=min(left, 1.0))
        except harness.pexpect.TIMEOUT:
            continue
        except harness.pexpect.EOF:
            raise AssertionError("the client exited (%s) before %r; last "
                                 "output: %r" % (session.describe_exit(),
                                                 until, tail[-300:]))
        window = tail + data
        i = window.find(until)
        if i >= 0:
            # Leave what follows the marker (a prompt) to pexpect.
            cut = i + len(until) - len(tail)
            chunks.append(data[:cut])
            child.buffer = data[cut:]
            return "".join(chunks)
        chunks.append(data)
        total += len(data)
        tail = window[-(len(until) + 200):]
        if on_progress is not None:
            on_progress(total)
    raise TimeoutError("no %r within %ss (read %d characters; last: %r)"
                       % (until, timeout, total, tail[-300:]))
