// The browser's data-channel module against the C client's vectors
// (tests/vectors/datachannel.json, checked by tests/unit/test_vectors.c),
// garbage for the decoder, and a whole encrypted session against a fake
// agent over a fake WebSocket: handshake, KMS, challenge, input, resize,
// a dropped connection resumed, channel_closed.
//   npm test   (node build.mjs --tests && node --test build-tests/)

import { strict as assert } from "node:assert";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { signRequest } from "../src/api/sigv4";
import { errorCode, parseError } from "../src/api/aws";
import {
	fromBase64, fromHex, fromUtf8, toBase64, toHex, utf8,
} from "../src/dc/bytes";
import { Channel } from "../src/dc/channel";
import { SessionCrypt } from "../src/dc/crypto";
import {
	ClientMessage, FrameError, MT, PayloadType, decodeMessage,
	encodeMessage,
} from "../src/dc/message";
import {
	ProtoError, challengeResponse, handshakeResponse, kmsRequestBody,
	openDataChannel, parseChallenge, parseClosed, parseHandshakeComplete,
	parseHandshakeRequest, sizePayload,
} from "../src/dc/proto";
import {
	CLIENT_VERSION, DataChannelSession, WebSocketLike,
} from "../src/dc/session";

// build-tests/dc.test.mjs -> ../../tests/vectors (repository root)
const here = dirname(fileURLToPath(import.meta.url));
const vectorsPath = process.env.PORTHOLE_VECTORS ??
    join(here, "..", "..", "tests", "vectors", "datachannel.json");
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const V: any = JSON.parse(readFileSync(vectorsPath, "utf8"));

test("frames encode to the C client's bytes and decode back", async () => {
	assert.ok(V.frames.length >= 5);
	for (const f of V.frames) {
		const frame = await encodeMessage({
			type: f.type, createdMs: BigInt(f.created_ms),
			seq: BigInt(f.seq), flags: BigInt(f.flags),
			messageId: f.message_id, payloadType: f.payload_type,
			payload: fromHex(f.payload_hex),
		});
		assert.equal(toHex(frame), f.frame_hex, f.name);
		const m = await decodeMessage(fromHex(f.frame_hex));
		assert.equal(m.type, f.type);
		assert.equal(m.createdMs, BigInt(f.created_ms));
		assert.equal(m.seq, BigInt(f.seq));
		assert.equal(m.flags, BigInt(f.flags));
		assert.equal(m.messageId, f.message_id);
		assert.equal(m.payloadType, f.payload_type);
		assert.equal(toHex(m.payload), f.payload_hex);
		assert.equal(m.schemaVersion, 1);
	}
});

test("the frames the C decoder refuses throw FrameError", async () => {
	assert.ok(V.bad_frames.length > 10);
	for (const f of V.bad_frames)
		await assert.rejects(decodeMessage(fromHex(f.frame_hex)),
		    FrameError, f.name);
});

test("garbage never throws anything but FrameError", async () => {
	const good = fromHex(V.frames[0].frame_hex);
	let seed = 12345;
	const rnd = (n: number): number => {
		seed = (seed * 1103515245 + 12345) & 0x7fffffff;
		return seed % n;
	};
	for (let i = 0; i < 2000; i++) {
		let b: Uint8Array;
		if (i % 2 === 0) {
			b = new Uint8Array(rnd(300));
			for (let k = 0; k < b.length; k++)
				b[k] = rnd(256);
		} else {
			b = good.slice(0, rnd(good.length + 1));
			for (let k = rnd(4); k >= 0 && b.length > 0; k--)
				b[rnd(b.length)] = rnd(256);
		}
		try {
			await decodeMessage(b);
		} catch (e) {
			assert.ok(e instanceof FrameError, String(e));
		}
	}
	// Oversized payloads are refused before they are hashed.
	const big = new Uint8Array(200 * 1024);
	big.set(good.subarray(0, 120));
	await assert.rejects(decodeMessage(big), FrameError);
	await assert.rejects(decodeMessage(null as unknown as Uint8Array),
	    FrameError);
});

test("acknowledgements are the C channel's, duplicates re-acked",
    async () => {
	for (const a of V.acks) {
		const f = V.frames[a.frame];
		const sent: Uint8Array[] = [];
		const got: Uint8Array[] = [];
		const ch = new Channel({
			sendFrame: (b) => { sent.push(b); return true; },
			deliver: async (_t, p) => { got.push(p); return true; },
			onControl: () => undefined,
		});
		await ch.receive(fromHex(f.frame_hex));
		await ch.receive(fromHex(f.frame_hex));
		assert.equal(got.length, 1, "delivered once");
		assert.equal(sent.length, 2, "acknowledged twice");
		for (const s of sent) {
			const m = await decodeMessage(s);
			assert.equal(m.type, MT.ack);
			assert.equal(m.seq, 0n);
			assert.equal(m.flags, 3n);
			assert.equal(m.payloadType, 0);
			assert.equal(fromUtf8(m.payload), a.ack_payload);
		}
		ch.close();
	}
});

test("handshake responses are the C client's", () => {
	for (const h of V.handshakes) {
		const kms = h.kms === null ? null : {
			ok: h.kms.ok, ciphertextB64: h.kms.ciphertext_b64,
			challengeAck: h.kms.challenge_ack, error: h.kms.error,
		};
		const r = handshakeResponse(utf8(h.request), h.client_version,
		    kms);
		assert.equal(fromUtf8(r.response), h.response, h.name);
		assert.deepEqual({
			session_type: r.hs.sessionType,
			kms_requested: r.hs.kmsRequested,
			ok: r.hs.ok,
			kms_key_id: r.hs.kmsKeyId,
			kms_challenge: r.hs.kmsChallenge,
			first_error: r.hs.firstError,
		}, h.parsed, h.name);
		// Parsing alone learns the same about the request.
		const p = parseHandshakeRequest(utf8(h.request));
		assert.equal(p.kmsKeyId, h.parsed.kms_key_id);
	}
	for (const b of V.bad_handshakes)
		assert.throws(() => handshakeResponse(utf8(b), CLIENT_VERSION,
		    null), ProtoError);
});

test("HandshakeComplete, channel_closed, KMS request, size, open", () => {
	for (const h of V.handshake_complete)
		assert.equal(parseHandshakeComplete(utf8(h.payload)),
		    h.customer_message);
	for (const c of V.channel_closed) {
		const r = parseClosed(utf8(c.payload));
		assert.deepEqual({ session_id: r.sessionId, output: r.output,
		    failed: r.failed }, c.parsed);
	}
	for (const k of V.kms_requests)
		assert.equal(JSON.stringify(kmsRequestBody(k.key_id,
		    k.session_id, k.target, k.challenge)), k.body);
	for (const s of V.sizes)
		assert.equal(fromUtf8(sizePayload(s.cols, s.rows)), s.payload);
	for (const o of V.open_data_channel)
		assert.equal(openDataChannel(o.request_id, o.token, o.client_id,
		    o.client_version), o.text);
	for (const bad of ["", "[]", "null", "{", "\"x\""]) {
		assert.throws(() => parseClosed(utf8(bad)), ProtoError);
		assert.throws(() => parseHandshakeComplete(utf8(bad)),
		    ProtoError);
		assert.throws(() => parseChallenge(utf8(bad)), ProtoError);
	}
	assert.throws(() => parseChallenge(utf8('{"Challenge":"%%%%"}')),
	    ProtoError);
});

test("session cipher: AES-GCM as sessioncrypt.c", async () => {
	const c = V.crypto;
	const key = fromHex(c.key_hex);
	const client = await SessionCrypt.create("client", key);
	const agent = await SessionCrypt.create("agent", key);
	for (const v of c.agent_to_client) {
		assert.equal(toHex(await client.open(fromHex(v.sealed_hex))),
		    v.plain_hex);
		agent.setTestNonce(fromHex(v.nonce_hex));
		assert.equal(toHex(await agent.seal(fromHex(v.plain_hex))),
		    v.sealed_hex);
		const bad = fromHex(v.sealed_hex);
		bad[bad.length - 1] ^= 1;
		await assert.rejects(client.open(bad));
	}
	for (const v of c.client_to_agent) {
		client.setTestNonce(fromHex(v.nonce_hex));
		assert.equal(toHex(await client.seal(fromHex(v.plain_hex))),
		    v.sealed_hex);
		assert.equal(toHex(await agent.open(fromHex(v.sealed_hex))),
		    v.plain_hex);
	}
	await assert.rejects(client.open(new Uint8Array(27)));
	// spec 6.4
	const ch = c.challenge;
	const plain = await client.open(parseChallenge(
	    utf8(ch.request_payload)));
	assert.equal(toHex(plain), ch.plain_hex);
	client.setTestNonce(fromHex(ch.client_nonce_hex));
	assert.equal(fromUtf8(challengeResponse(await client.seal(plain))),
	    ch.response_payload);
	// Random nonces once the test nonce is gone.
	client.setTestNonce(null);
	const a = await client.seal(utf8("x")), b = await client.seal(utf8("x"));
	assert.notEqual(toHex(a), toHex(b));
});

// SigV4: requests the console signs; test_vectors.c verifies the same
// ones with portholed's verifier.
const SIGV4_INPUTS = [
	{ service: "ssm", target: "AmazonSSM.DescribeInstanceInformation",
	  body: "{}", host: "127.0.0.1:8443", token: "" },
	{ service: "kms", target: "TrentService.GenerateDataKey",
	  body: '{"KeyId":"alias/porthole","NumberOfBytes":64}',
	  host: "porthole.example:443",
	  token: "FwoGZXIvYXdzEXAMPLETOKEN+/=" },
];

test("SigV4 signatures are stable and verified by portholed's C code",
    async () => {
	const out = [];
	for (const s of SIGV4_INPUTS) {
		const creds = {
			AccessKeyId: "ASIAEXAMPLEEXAMPLE01",
			SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
			SessionToken: s.token || undefined,
		};
		const headers = await signRequest({
			method: "POST", host: s.host, path: "/",
			headers: {
				"Content-Type": "application/x-amz-json-1.1",
				"X-Amz-Target": s.target,
			},
			body: s.body, region: "us-east-1", service: s.service,
			now: new Date(Date.UTC(2026, 11, 5, 6, 0, 0)),
		}, creds);
		out.push({
			method: "POST", path: "/", body: s.body,
			headers: { Host: s.host, ...headers },
			access_key_id: creds.AccessKeyId,
			secret_access_key: creds.SecretAccessKey,
			region: "us-east-1", service: s.service,
		});
	}
	if (process.env.PORTHOLE_VECTORS_WRITE) {
		V.sigv4 = out;
		writeFileSync(vectorsPath, JSON.stringify(V, null, 1) + "\n");
	}
	assert.deepEqual(out, V.sigv4);
	assert.match((out[1].headers as Record<string, string>).Authorization, /SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, /);
});

test("AWS error shapes", () => {
	assert.equal(errorCode("com.amazonaws.ssm#InvalidInstanceId"),
	    "InvalidInstanceId");
	assert.equal(errorCode("AccessDeniedException"), "AccessDeniedException");
	const e = parseError(400, '{"__type":"x#AccessDeniedException",' +
	    '"message":"User: arn:aws:iam::1:user/u is not authorized"}', null);
	assert.equal(e.code, "AccessDeniedException");
	assert.equal(e.status, 400);
	assert.match(e.message, /not authorized/);
	assert.equal(parseError(500, "<html>", null).code,
	    "InternalServerError");
	assert.equal(parseError(400, '{"Message":"m"}',
	    "ValidationException:http://x").code, "ValidationException");
});

// ---- a whole session against a fake agent ---------------------------

class FakeWs implements WebSocketLike {
	binaryType = "blob";
	readyState = 0;
	onopen: ((ev: unknown) => void) | null = null;
	onmessage: ((ev: { data: unknown }) => void) | null = null;
	onclose: ((ev: { code: number }) => void) | null = null;
	onerror: ((ev: unknown) => void) | null = null;
	texts: string[] = [];
	constructor(private readonly agent: FakeAgent) {
		setTimeout(() => {
			this.readyState = 1;
			this.onopen?.({});
		}, 1);
	}
	send(data: string | Uint8Array): void {
		if (this.readyState !== 1)
			throw new Error("not open");
		if (typeof data === "string")
			this.texts.push(data);
		else
			void this.agent.fromClient(this, data);
	}
	close(): void {
		this.drop(1000);
	}
	drop(code: number): void {
		if (this.readyState === 3)
			return;
		this.readyState = 3;
		setTimeout(() => this.onclose?.({ code }), 1);
	}
	deliver(frame: Uint8Array): void {
		if (this.readyState !== 1)
			return;
		const ab = frame.buffer.slice(frame.byteOffset,
		    frame.byteOffset + frame.length);
		this.onmessage?.({ data: ab });
	}
}

// The agent end: sends output_stream_data with its own sequence numbers,
// acknowledges input, keeps what came (opened with the agent's key).
class FakeAgent {
	sockets: FakeWs[] = [];
	seq = 0n;
	input: { type: number; payload: Uint8Array; seq: bigint }[] = [];
	acked: bigint[] = [];
	dropAcks = false;
	sc: SessionCrypt | null = null;
	waiters: (() => void)[] = [];

	get ws(): FakeWs {
		return this.sockets[this.sockets.length - 1];
	}

	async send(type: number, payload: Uint8Array,
	    seal = false): Promise<void> {
		const p = seal && this.sc !== null ? await this.sc.seal(payload) :
		    payload;
		this.ws.deliver(await encodeMessage({
			type: MT.output, seq: this.seq++,
			flags: this.seq === 1n ? 1n : 0n,
			messageId: "0f8fad5b-d9cb-469f-a165-70867728950e",
			payloadType: type, payload: p,
		}));
	}

	async control(type: string, payload: Uint8Array): Promise<void> {
		this.ws.deliver(await encodeMessage({
			type, seq: 0n, flags: 3n,
			messageId: "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
			payloadType: 0, payload,
		}));
	}

	async fromClient(ws: FakeWs, frame: Uint8Array): Promise<void> {
		const m: ClientMessage = await decodeMessage(frame);
		if (m.type === MT.ack) {
			const o = JSON.parse(fromUtf8(m.payload));
			this.acked.push(BigInt(o.AcknowledgedMessageSequenceNumber));
		} else if (m.type === MT.input) {
			let p = m.payload;
			if (m.payloadType === PayloadType.Output && this.sc !== null)
				p = await this.sc.open(p);
			if (!this.input.some((x) => x.seq === m.seq))
				this.input.push({ type: m.payloadType, payload: p,
				    seq: m.seq });
			if (!this.dropAcks)
				ws.deliver(await encodeMessage({
					type: MT.ack, seq: 0n, flags: 3n,
					messageId:
					    "e4eaaaf2-d142-11e1-b3e4-080027620cdd",
					payloadType: 0,
					payload: utf8(JSON.stringify({
						AcknowledgedMessageType: m.type,
						AcknowledgedMessageId: m.messageId,
						AcknowledgedMessageSequenceNumber:
						    Number(m.seq),
						IsSequentialMessage: true,
					})),
				}));
		}
		for (const w of this.waiters.splice(0))
			w();
	}

	async until(what: string, cond: () => boolean,
	    ms = 5000): Promise<void> {
		const end = Date.now() + ms;
		while (!cond()) {
			if (Date.now() > end)
				throw new Error(`timed out waiting for ${what}`);
			await new Promise((r) => setTimeout(r, 10));
		}
	}
}

test("an encrypted session: handshake, KMS, challenge, input, resize, " +
    "resume, channel_closed", async () => {
	const agent = new FakeAgent();
	const key = new Uint8Array(64).map((_, i) => i);
	agent.sc = await SessionCrypt.create("agent", key);
	const output: string[] = [];
	const notices: string[] = [];
	const states: string[] = [];
	const kmsBodies: unknown[] = [];
	let resumed = 0;
	let closedReason = "";
	let encrypted = false;
	const s = new DataChannelSession({
		sessionId: "alice-0123456789abcdef0",
		streamUrl: "wss://127.0.0.1:1/v1/data-channel/alice-0123?x",
		tokenValue: "token-1",
		target: "mi-0123456789abcdef0",
		generateDataKey: async (body) => {
			kmsBodies.push(body);
			return { Plaintext: toBase64(key),
			    CiphertextBlob: "AQIDBA==" };
		},
		resumeSession: async () => `token-${2 + resumed++}`,
		terminateSession: async () => undefined,
		onOutput: (b) => output.push(fromUtf8(b)),
		onNotice: (t) => notices.push(t),
		onState: (st) => states.push(st),
		onEncrypted: () => { encrypted = true; },
		onClosed: (r) => { closedReason = r; },
		webSocket: () => {
			const w = new FakeWs(agent);
			agent.sockets.push(w);
			return w;
		},
	});
	s.resize(80, 24);
	s.start();
	try {
		await agent.until("open", () => agent.ws?.texts.length === 1);
		const open = JSON.parse(agent.ws.texts[0]);
		assert.equal(open.TokenValue, "token-1");
		assert.equal(open.ClientId, s.clientId);
		assert.equal(open.ClientVersion, CLIENT_VERSION);
		// First message: the size (plaintext, PayloadType 3).
		await agent.until("size", () => agent.input.length === 1);
		assert.equal(agent.input[0].type, PayloadType.Size);
		assert.equal(fromUtf8(agent.input[0].payload),
		    '{"cols":80,"rows":24}');
		// Typed before the handshake: held back.
		s.sendInput(utf8("whoami\r"));
		await agent.send(PayloadType.HandshakeRequest,
		    utf8(V.handshakes[1].request));
		await agent.until("handshake response",
		    () => agent.input.length === 2);
		assert.equal(agent.input[1].type, PayloadType.HandshakeResponse);
		const resp = JSON.parse(fromUtf8(agent.input[1].payload));
		assert.equal(resp.ProcessedClientActions[1].ActionResult
		    .KMSCipherTextKey, "AQIDBA==");
		assert.equal(resp.ProcessedClientActions[1].ActionResult
		    .ChallengeAcknowledgement, true);
		assert.deepEqual(kmsBodies[0], kmsRequestBody("alias/porthole",
		    "alice-0123456789abcdef0", "mi-0123456789abcdef0",
		    "AAECAwQFBgcICQoLDA0ODw=="));
		// spec 6.4
		const secret = new Uint8Array(64).fill(7);
		await agent.send(PayloadType.EncChallengeRequest,
		    challengeResponse(await agent.sc.seal(secret)));
		await agent.until("challenge", () => agent.input.length === 3);
		assert.equal(agent.input[2].type,
		    PayloadType.EncChallengeResponse);
		const back = await agent.sc.open(parseChallenge(
		    agent.input[2].payload));
		assert.deepEqual(back, secret);
		assert.equal(agent.input.filter((x) =>
		    x.type === PayloadType.Output).length, 0,
		    "no keystrokes before HandshakeComplete");
		await agent.send(PayloadType.HandshakeComplete, utf8(
		    '{"HandshakeTimeToComplete":1,"CustomerMessage":' +
		    '"This session is encrypted using AWS KMS."}'));
		await agent.until("input", () => agent.input.length === 4);
		assert.ok(notices.includes(
		    "This session is encrypted using AWS KMS."));
		assert.ok(encrypted && s.encrypted);
		assert.equal(agent.input[3].type, PayloadType.Output);
		assert.equal(fromUtf8(agent.input[3].payload), "whoami\r");
		// Encrypted output, out of order: seq 5 before seq 4.
		const seq4 = agent.seq;
		agent.seq = seq4 + 1n;
		await agent.send(PayloadType.Output, utf8("user\r\n"), true);
		agent.seq = seq4;
		await agent.send(PayloadType.Output, utf8("ssm-"), true);
		agent.seq = seq4 + 2n;
		await agent.until("output", () => output.join("") ===
		    "ssm-user\r\n");
		await agent.until("acks", () => agent.acked.includes(seq4 + 1n));
		// Resize: a size message on change only.
		s.resize(120, 40);
		s.resize(120, 40);
		await agent.until("resize", () => agent.input.length === 5);
		assert.equal(fromUtf8(agent.input[4].payload),
		    '{"cols":120,"rows":40}');
		// A dropped connection with unacknowledged input: resumed
		// with a fresh token, the input resent.
		agent.dropAcks = true;
		s.sendInput(utf8("\x03"));
		await agent.until("ctrl-c", () => agent.input.length === 6);
		assert.equal(s.channel.unacked(), 1);
		agent.dropAcks = false;
		agent.ws.drop(1006);
		await agent.until("down", () => s.state === "reconnecting");
		// Resized while the connection is down: sent once it is back.
		s.resize(100, 30);
		await agent.until("reconnect", () => agent.sockets.length === 2 &&
		    agent.ws.texts.length === 1);
		assert.equal(JSON.parse(agent.ws.texts[0]).TokenValue, "token-2");
		assert.equal(JSON.parse(agent.ws.texts[0]).ClientId, s.clientId);
		await agent.until("resent ack", () => s.channel.unacked() === 0);
		assert.equal(fromUtf8(agent.input[5].payload), "\x03");
		await agent.until("size after resume", () =>
		    agent.input.length === 7);
		assert.equal(agent.input[6].type, PayloadType.Size);
		assert.equal(fromUtf8(agent.input[6].payload),
		    '{"cols":100,"rows":30}');
		assert.equal(resumed, 1);
		await agent.control(MT.closed, utf8(JSON.stringify({
		    SessionId: "alice-0123456789abcdef0", Output: "" })));
		await agent.until("closed", () => closedReason !== "");
		assert.equal(closedReason,
		    "Exiting session with sessionId: alice-0123456789abcdef0.");
		assert.equal(s.state, "closed");
		assert.ok(states.includes("open") &&
		    states.includes("reconnecting"));
	} finally {
		s.dispose();
	}
});

test("a session without a handshake opens input on first output", async () => {
	const agent = new FakeAgent();
	let closed = "";
	const s = new DataChannelSession({
		sessionId: "s-1", streamUrl: "wss://x/", tokenValue: "t",
		target: "mi-1",
		generateDataKey: async () => { throw new Error("no"); },
		resumeSession: async () => null,
		terminateSession: async () => undefined,
		onOutput: () => undefined, onNotice: () => undefined,
		onClosed: (r) => { closed = r; },
		webSocket: () => {
			const w = new FakeWs(agent);
			agent.sockets.push(w);
			return w;
		},
	});
	s.start();
	try {
		await agent.until("open", () => agent.ws?.texts.length === 1);
		s.sendInput(utf8("a"));
		await new Promise((r) => setTimeout(r, 50));
		assert.equal(agent.input.length, 0);
		await agent.send(PayloadType.Output, utf8("$ "));
		await agent.until("input", () => agent.input.length === 1);
		// A garbage frame closes the socket; ResumeSession says the
		// session is gone.
		agent.ws.deliver(new Uint8Array(50));
		await agent.until("closed", () => closed !== "");
		assert.equal(closed, "Session: s-1 timed out.");
	} finally {
		s.dispose();
	}
});

test("hostile handshake and control payloads throw ProtoError or parse",
    () => {
	const pieces = ['{"RequestedClientActions":', "[", "]", "{", "}",
	    '"ActionType":', '"KMSEncryption"', '"SessionType"',
	    '"ActionParameters":', '{"KMSKeyId":', '"Challenge":', "null",
	    "1e999", '"\\u0000"', ",", '"x"', "true", "-1"];
	let seed = 99;
	const rnd = (n: number): number => {
		seed = (seed * 1103515245 + 12345) & 0x7fffffff;
		return seed % n;
	};
	for (let i = 0; i < 3000; i++) {
		let s = "";
		for (let k = rnd(12); k >= 0; k--)
			s += pieces[rnd(pieces.length)];
		const p = utf8(s);
		for (const fn of [
			() => handshakeResponse(p, CLIENT_VERSION,
			    { ok: true, ciphertextB64: "AQIDBA==" }),
			() => parseHandshakeComplete(p),
			() => parseClosed(p),
			() => parseChallenge(p),
		]) {
			try {
				fn();
			} catch (e) {
				assert.ok(e instanceof ProtoError, `${e} for ${s}`);
			}
		}
	}
	// Over 64 KiB: refused unread.
	assert.throws(() => parseHandshakeRequest(utf8(
	    `{"RequestedClientActions":[],"x":"${"a".repeat(70000)}"}`)),
	    ProtoError);
});

test("unacknowledged input is retransmitted after the RTO, then dropped " +
    "when acknowledged", async () => {
	const sent: Uint8Array[] = [];
	let now = 1000;
	const ch = new Channel({
		sendFrame: (b) => { sent.push(b); return true; },
		deliver: async () => true,
		onControl: () => undefined,
	});
	ch.now = () => now;
	await ch.send(PayloadType.Output, utf8("a"));
	await ch.send(PayloadType.Output, utf8("b"));
	assert.equal(sent.length, 2);
	assert.equal(ch.unacked(), 2);
	now += 100;
	ch.tick();
	assert.equal(sent.length, 2, "not before the RTO (200 ms)");
	now += 150;
	ch.tick();
	assert.equal(sent.length, 4, "both resent, oldest first");
	assert.equal((await decodeMessage(sent[2])).seq, 0n);
	assert.equal((await decodeMessage(sent[3])).seq, 1n);
	assert.equal(ch.headResends(), 1);
	// The agent acknowledges seq 1 only (acks are selective).
	const m1 = await decodeMessage(sent[1]);
	await ch.receive(await encodeMessage({
		type: MT.ack, seq: 0n, flags: 3n,
		messageId: "e4eaaaf2-d142-11e1-b3e4-080027620cdd", payloadType: 0,
		payload: utf8(JSON.stringify({
			AcknowledgedMessageType: m1.type,
			AcknowledgedMessageId: m1.messageId,
			AcknowledgedMessageSequenceNumber: 1,
			IsSequentialMessage: true })),
	}));
	assert.equal(ch.unacked(), 1);
	// A garbage ack changes nothing.
	await ch.receive(await encodeMessage({
		type: MT.ack, seq: 0n, flags: 3n,
		messageId: "e4eaaaf2-d142-11e1-b3e4-080027620cdd", payloadType: 0,
		payload: utf8('{"AcknowledgedMessageSequenceNumber":"0"}'),
	}));
	assert.equal(ch.unacked(), 1);
	ch.resendAll();
	assert.equal(sent.length, 5);
	assert.equal((await decodeMessage(sent[4])).seq, 0n);
	// Empty payloads are never sent (spec 3.6).
	await ch.send(PayloadType.Output, new Uint8Array(0));
	assert.equal(sent.length, 5);
	assert.equal(ch.nextSendSeq(), 2n);
	ch.close();
});

test("GenerateDataKey refused: the handshake says why, no input leaves",
    async () => {
	const agent = new FakeAgent();
	const notices: string[] = [];
	const s = new DataChannelSession({
		sessionId: "s-2", streamUrl: "wss://x/", tokenValue: "t",
		target: "mi-2",
		generateDataKey: async () => {
			throw Object.assign(new Error("User: arn:aws:iam::1:user/" +
			    "bob is not authorized to perform: " +
			    "kms:GenerateDataKey"),
			    { code: "AccessDeniedException" });
		},
		resumeSession: async () => null,
		terminateSession: async () => undefined,
		onOutput: () => undefined,
		onNotice: (t) => notices.push(t),
		webSocket: () => {
			const w = new FakeWs(agent);
			agent.sockets.push(w);
			return w;
		},
	});
	s.start();
	try {
		await agent.until("open", () => agent.ws?.texts.length === 1);
		s.sendInput(utf8("secret\r"));
		await agent.send(PayloadType.HandshakeRequest,
		    utf8(V.handshakes[3].request));
		await agent.until("response", () => agent.input.some((x) =>
		    x.type === PayloadType.HandshakeResponse));
		const r = JSON.parse(fromUtf8(agent.input.find((x) =>
		    x.type === PayloadType.HandshakeResponse)!.payload));
		const a = r.ProcessedClientActions[1];
		assert.equal(a.ActionStatus, 2);
		assert.equal(a.Error, "An error occurred (AccessDeniedException) " +
		    "when calling the GenerateDataKey operation: User: " +
		    "arn:aws:iam::1:user/bob is not authorized to perform: " +
		    "kms:GenerateDataKey");
		assert.ok(notices.some((n) => n.startsWith(
		    "KMS encryption failed: An error occurred")));
		await new Promise((r) => setTimeout(r, 100));
		assert.ok(!agent.input.some((x) =>
		    x.type === PayloadType.Output), "nothing typed left");
		assert.ok(!s.encrypted);
	} finally {
		s.dispose();
	}
});
