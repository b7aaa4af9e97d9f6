// The binary ClientMessage frame of the SSM data channel (spec section 3),
// encoded and decoded as src/common/clientmsg.c does: 116-byte header,
// MessageType space-padded to 32 bytes, big-endian integers, the MessageId
// with its two 8-byte halves swapped, SHA-256 of the payload.

import { equalBytes, sha256, uuidBytes, uuidString } from "./bytes";

export const HEADER_LENGTH = 116;
export const PAYLOAD_OFFSET = 120;
const TYPE_LEN = 32;

export const PayloadType = {
	None: 0,
	Output: 1,
	Error: 2,
	Size: 3,
	Parameter: 4,
	HandshakeRequest: 5,
	HandshakeResponse: 6,
	HandshakeComplete: 7,
	EncChallengeRequest: 8,
	EncChallengeResponse: 9,
	Flag: 10,
	StdErr: 11,
	ExitCode: 12,
} as const;

export const FLAG_SYN = 1n;
export const FLAG_FIN = 2n;

export const MT = {
	input: "input_stream_data",
	output: "output_stream_data",
	ack: "acknowledge",
	closed: "channel_closed",
	startPublication: "start_publication",
	pausePublication: "pause_publication",
	sessionState: "agent_session_state",
} as const;

// Largest payload accepted by default: 64 KiB and the 28 bytes a sealed
// payload adds (spec 10.4, as the C client's SESS_WS_MAX_MESSAGE).
export const MAX_PAYLOAD = 64 * 1024 + 1024;

export interface ClientMessage {
	type: string;
	schemaVersion: number;
	createdMs: bigint;
	seq: bigint;
	flags: bigint;
	messageId: string;       // canonical lower-case hyphenated
	payloadType: number;
	payload: Uint8Array;
}

export class FrameError extends Error {
	constructor(msg: string) {
		super(msg);
		this.name = "FrameError";
	}
}

// Encode one frame. createdMs defaults to now.
export async function encodeMessage(m: {
	type: string; seq: bigint; flags: bigint; messageId: string;
	payloadType: number; payload: Uint8Array; createdMs?: bigint;
	schemaVersion?: number;
}): Promise<Uint8Array> {
	const t = m.type;
	if (t.length === 0 || t.length > TYPE_LEN || !/^[\x20-\x7e]+$/.test(t))
		throw new FrameError("invalid message type");
	const id = uuidBytes(m.messageId);
	const out = new Uint8Array(PAYLOAD_OFFSET + m.payload.length);
	const v = new DataView(out.buffer);
	v.setUint32(0, HEADER_LENGTH);
	out.fill(0x20, 4, 4 + TYPE_LEN);
	for (let i = 0; i < t.length; i++)
		out[4 + i] = t.charCodeAt(i);
	v.setUint32(36, m.schemaVersion ?? 1);
	v.setBigUint64(40, m.createdMs ?? BigInt(Date.now()));
	v.setBigInt64(48, m.seq);
	v.setBigUint64(56, m.flags);
	// spec 3.2: the halves are swapped on the wire.
	out.set(id.subarray(8, 16), 64);
	out.set(id.subarray(0, 8), 72);
	out.set(await sha256(m.payload), 80);
	v.setUint32(112, m.payloadType);
	v.setUint32(116, m.payload.length);
	out.set(m.payload, PAYLOAD_OFFSET);
	return out;
}

// spec 3.1: NULs dropped, surrounding whitespace stripped; control and
// non-ASCII bytes refused (as clientmsg.c's parse_type).
function parseType(b: Uint8Array): string {
	let s = "";
	for (const c of b) {
		if (c === 0)
			continue;
		if ((c < 0x20 && !(c >= 0x09 && c <= 0x0d)) || c > 0x7e)
			throw new FrameError("invalid message type");
		s += String.fromCharCode(c);
	}
	s = s.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, "");
	if (s.length === 0 || /[\x00-\x1f]/.test(s))
		throw new FrameError("invalid message type");
	return s;
}

// Decode and validate one frame as clientmsg_decode does: at least 120
// bytes, HeaderLength 116, PayloadLength equal to what follows, payload at
// most maxPayload, a type, a CreatedDate, a matching digest. Anything else
// throws FrameError. The payload is a copy.
export async function decodeMessage(frame: Uint8Array,
    maxPayload: number = MAX_PAYLOAD): Promise<ClientMessage> {
	if (!(frame instanceof Uint8Array) || frame.length < PAYLOAD_OFFSET)
		throw new FrameError("frame too short");
	const v = new DataView(frame.buffer, frame.byteOffset, frame.length);
	if (v.getUint32(0) !== HEADER_LENGTH)
		throw new FrameError("invalid header length");
	const n = frame.length - PAYLOAD_OFFSET;
	if (n > maxPayload)
		throw new FrameError("payload too big");
	if (v.getUint32(116) !== n)
		throw new FrameError("payload length does not match the frame");
	const type = parseType(frame.subarray(4, 4 + TYPE_LEN));
	const createdMs = v.getBigUint64(40);
	if (createdMs === 0n)
		throw new FrameError("no CreatedDate");
	const id = new Uint8Array(16);
	id.set(frame.subarray(72, 80), 0);
	id.set(frame.subarray(64, 72), 8);
	const payload = frame.slice(PAYLOAD_OFFSET);
	const digest = await sha256(payload);
	if (!equalBytes(digest, frame.subarray(80, 112)))
		throw new FrameError("payload digest does not match");
	return {
		type,
		schemaVersion: v.getUint32(36),
		createdMs,
		seq: v.getBigInt64(48),
		flags: v.getBigUint64(56),
		messageId: uuidString(id),
		payloadType: v.getUint32(112),
		payload,
	};
}
