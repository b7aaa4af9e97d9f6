// quirky_client.mjs: a TEST TOOL, not a porthole client. It opens a
// Session Manager data channel the way some JavaScript clients in the wild
// do (wire spec 3.7), to check that porthole-agent serves them as AWS's
// agent does:
//   * the PayloadDigest field holds the first 32 characters of the hex
//     SHA-256 of the payload instead of its 32 raw bytes;
//   * PayloadLength disagrees with the message (0, or too large);
//   * every acknowledgement names output_stream_data as the acknowledged
//     type, with PayloadType 1 and Flags 0;
//   * the first message is a terminal size, PayloadType 3, sequence
//     number 0, sent before any output;
//   * the token (OpenDataChannel) message goes as a WebSocket text frame.
// It types a command, waits for its output, types exit and exits 0.
//
// Plain Node 20, no packages: run with `node --experimental-websocket`
// (Node 20's WebSocket client, undici's, behind that flag; default on in
// Node 22). Trust the server's CA with NODE_EXTRA_CA_CERTS.
//
// Usage: node --experimental-websocket quirky_client.mjs --stream-url URL
//        --token TOKEN [--command CMD] [--expect TEXT] [--timeout SECONDS]
// Exit: 0 when TEXT was read and the session ended; 1 on timeout or a
// closed channel before that; 2 on bad usage.

import { createHash, randomBytes, randomUUID } from "node:crypto";

const PT_OUTPUT = 1;
const PT_SIZE = 3;

function usage(msg) {
	process.stderr.write(`quirky_client: ${msg}\n`);
	process.exit(2);
}

function parseArgs(argv) {
	const a = {
		command: "echo quirky-$((6*7))",
		expect: "quirky-42",
		timeout: 60,
	};
	for (let i = 0; i < argv.length; i += 2) {
		const k = argv[i], v = argv[i + 1];
		if (v === undefined)
			usage(`${k} needs a value`);
		if (k === "--stream-url") a.url = v;
		else if (k === "--token") a.token = v;
		else if (k === "--command") a.command = v;
		else if (k === "--expect") a.expect = v;
		else if (k === "--timeout") a.timeout = Number(v);
		else usage(`unknown option ${k}`);
	}
	if (!a.url || a.token === undefined)
		usage("--stream-url and --token are required");
	if (!(a.timeout > 0 && a.timeout <= 600))
		usage("--timeout must be 1..600");
	return a;
}

// The first 32 characters of the lower-case hex SHA-256, as ASCII.
function hexPrefixDigest(payload) {
	const hex = createHash("sha256").update(payload).digest("hex");
	return Buffer.from(hex.slice(0, 32), "ascii");
}

// Encode one ClientMessage (spec 3.1) with the quirks above;
// payloadLength is what the PayloadLength field claims.
function encode(type, seq, flags, payloadType, payload, payloadLength) {
	const h = Buffer.alloc(120);
	h.writeUInt32BE(116, 0);
	h.fill(0x20, 4, 36);
	h.write(type, 4, "ascii");
	h.writeUInt32BE(1, 36);
	h.writeBigUInt64BE(BigInt(Date.now()), 40);
	h.writeBigInt64BE(BigInt(seq), 48);
	h.writeBigUInt64BE(BigInt(flags), 56);
	randomBytes(16).copy(h, 64);
	hexPrefixDigest(payload).copy(h, 80);
	h.writeUInt32BE(payloadType, 112);
	h.writeUInt32BE(payloadLength >>> 0, 116);
	return Buffer.concat([h, payload]);
}

// Decode a frame from the agent; the payload runs to the end.
function decode(buf) {
	if (buf.length < 120)
		return null;
	const b = Buffer.from(buf);
	const mid = Buffer.concat([b.subarray(72, 80), b.subarray(64, 72)])
	    .toString("hex");
	return {
		type: b.toString("ascii", 4, 36).replace(/[\s\0]+$/, ""),
		seq: Number(b.readBigInt64BE(48)),
		id: `${mid.slice(0, 8)}-${mid.slice(8, 12)}-${mid.slice(12, 16)}-` +
		    `${mid.slice(16, 20)}-${mid.slice(20)}`,
		payloadType: b.readUInt32BE(112),
		payload: b.subarray(b.readUInt32BE(0) + 4),
	};
}

function main() {
	const args = parseArgs(process.argv.slice(2));
	if (typeof globalThis.WebSocket !== "function")
		usage("no WebSocket client: run node with --experimental-websocket");

	const ws = new WebSocket(args.url);
	ws.binaryType = "arraybuffer";
	let nextSeq = 0;
	let expected = 0;          // next output sequence number
	const early = new Map();   // output received ahead of a gap
	const unacked = new Map(); // seq -> frame, resent until acked
	let text = "";
	let typed = false, exited = false, done = false;
	const stats = { outputs: 0, acksSent: 0, acksReceived: 0, resends: 0 };

	const finish = (code, why) => {
		if (done)
			return;
		done = true;
		clearInterval(resendTimer);
		clearTimeout(deadline);
		process.stdout.write(JSON.stringify({ result: why, ...stats,
		    output: text.slice(-2000) }) + "\n");
		try { ws.close(); } catch { /* already closed */ }
		process.exitCode = code;
		setTimeout(() => process.exit(code), 500).unref();
	};

	const sendInput = (payloadType, data, payloadLength) => {
		const f = encode("input_stream_data", nextSeq, 0, payloadType,
		    Buffer.from(data), payloadLength);
		unacked.set(nextSeq, f);
		nextSeq++;
		ws.send(f);
	};

	// Retransmit what the agent has not acknowledged (spec 4.4); the
	// agent may answer "not ready yet" by not acknowledging.
	const resendTimer = setInterval(() => {
		if (ws.readyState !== WebSocket.OPEN)
			return;
		for (const f of unacked.values()) {
			stats.resends++;
			ws.send(f);
		}
	}, 1000);
	const deadline = setTimeout(() => finish(1, "timeout"),
	    args.timeout * 1000);

	const onOutput = (f) => {
		if (f.payloadType !== PT_OUTPUT)
			return; // a handshake or size: a plain shell has none
		stats.outputs++;
		text += f.payload.toString("utf8");
		if (!typed) {
			// The first output is the prompt: type the command with
			// a PayloadLength claiming 100 bytes too many.
			typed = true;
			const cmd = `${args.command}\r`;
			sendInput(PT_OUTPUT, cmd, Buffer.byteLength(cmd) + 100);
		}
		// The output of the command, not its echo (the command does
		// not contain the expected text literally).
		if (!exited && text.includes(args.expect)) {
			exited = true;
			sendInput(PT_OUTPUT, "exit\r", 0);
		}
	};

	ws.addEventListener("open", () => {
		// The token message, as a text frame.
		ws.send(JSON.stringify({
			MessageSchemaVersion: "1.0",
			RequestId: randomUUID(),
			TokenValue: args.token,
			ClientId: randomUUID(),
		}));
		// A size before any output: PayloadType 3, seq 0,
		// PayloadLength 0.
		sendInput(PT_SIZE, JSON.stringify({ cols: 80, rows: 24 }), 0);
	});

	ws.addEventListener("message", (ev) => {
		if (typeof ev.data === "string")
			return;
		const f = decode(Buffer.from(ev.data));
		if (f === null)
			return;
		if (f.type === "channel_closed") {
			finish(exited ? 0 : 1, exited ? "ended" :
			    "channel_closed before the expected output");
			return;
		}
		if (f.type === "acknowledge") {
			try {
				const a = JSON.parse(f.payload.toString("utf8"));
				if (unacked.delete(a.AcknowledgedMessageSequenceNumber))
					stats.acksReceived++;
			} catch { /* not ours to judge */ }
			return;
		}
		if (f.type !== "output_stream_data")
			return;
		// Acknowledged whatever it is, always naming
		// output_stream_data, PayloadType 1, Flags 0, no length.
		const ack = Buffer.from(JSON.stringify({
			AcknowledgedMessageType: "output_stream_data",
			AcknowledgedMessageId: f.id,
			AcknowledgedMessageSequenceNumber: f.seq,
			IsSequentialMessage: true,
		}));
		ws.send(encode("acknowledge", 0, 0, PT_OUTPUT, ack, 0));
		stats.acksSent++;
		if (f.seq < expected)
			return;
		early.set(f.seq, f);
		while (early.has(expected)) {
			const g = early.get(expected);
			early.delete(expected);
			expected++;
			onOutput(g);
		}
	});

	ws.addEventListener("close", (ev) => {
		if (exited)
			finish(0, `closed ${ev.code}`);
		else
			finish(1, `closed ${ev.code} before the expected output`);
	});
	ws.addEventListener("error", () => {
		if (!done && !exited)
			finish(1, "WebSocket error");
	});
}

main();
