// The JSON payloads of the data channel (spec 2.1, 3.5, 4.2, 5, 6, 7.1),
// built byte for byte as src/client/proto.c, src/client/kms.c and
// src/common/channel.c build them (compact JSON, keys in the same order),
// so the shared vectors in tests/vectors/datachannel.json hold for both.

import { fromBase64, fromUtf8, toBase64, utf8 } from "./bytes";

const MAX_JSON = 64 * 1024;
export const MAX_MESSAGE_TEXT = 4096;
const MAX_KEY_ID = 2048;
const MAX_CHALLENGE = 1024;
export const MAX_CHALLENGE_BYTES = 1024;

export class ProtoError extends Error {
	constructor(msg: string) {
		super(msg);
		this.name = "ProtoError";
	}
}

function str(o: unknown): string {
	return JSON.stringify(o);
}

// A JSON object of at most 64 KiB, else null (proto.c's proto_load).
export function loadObject(p: Uint8Array): Record<string, unknown> | null {
	if (p.length === 0 || p.length > MAX_JSON)
		return null;
	try {
		const o: unknown = JSON.parse(fromUtf8(p));
		if (o === null || typeof o !== "object" || Array.isArray(o))
			return null;
		return o as Record<string, unknown>;
	} catch {
		return null;
	}
}

// spec 2.1: the text frame that opens (and reopens) the data channel.
export function openDataChannel(requestId: string, token: string,
    clientId: string, clientVersion: string): string {
	return str({
		MessageSchemaVersion: "1.0",
		RequestId: requestId,
		TokenValue: token,
		ClientId: clientId,
		ClientVersion: clientVersion,
	});
}

// spec 7.1: PayloadType 3.
export function sizePayload(cols: number, rows: number): Uint8Array {
	return utf8(`{"cols":${cols >>> 0},"rows":${rows >>> 0}}`);
}

// spec 4.2 as channel.c's ch_ack writes it.
export function ackPayload(type: string, messageId: string,
    seq: bigint): Uint8Array {
	return utf8(`{"AcknowledgedMessageType":${str(type)},` +
	    `"AcknowledgedMessageId":${str(messageId)},` +
	    `"AcknowledgedMessageSequenceNumber":${seq.toString()},` +
	    `"IsSequentialMessage":true}`);
}

// The acknowledged sequence number, or null for an unusable ack (as
// channel.c: an integer AcknowledgedMessageSequenceNumber). Our own
// sequence numbers stay far below 2^53.
export function parseAck(p: Uint8Array): bigint | null {
	const o = loadObject(p);
	const v = o?.AcknowledgedMessageSequenceNumber;
	if (typeof v !== "number" || !Number.isSafeInteger(v))
		return null;
	return BigInt(v);
}

// Text meant for the terminal: bounded, control characters (escape
// sequences in particular) replaced, as proto.c's proto_sanitize.
export function sanitize(s: string): string {
	let out = "";
	let bytes = 0;
	for (const ch of s) {
		const n = utf8(ch).length;
		if (bytes + n > MAX_MESSAGE_TEXT)
			break;
		bytes += n;
		const c = ch.codePointAt(0)!;
		out += (c < 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) ||
		    c === 0x7f ? "?" : ch;
	}
	return out;
}

export interface ChannelClosed {
	sessionId: string | null;
	output: string;
	failed: boolean;
}

// spec 3.5; throws ProtoError when it is not a JSON object.
export function parseClosed(p: Uint8Array): ChannelClosed {
	const o = loadObject(p);
	if (o === null)
		throw new ProtoError("invalid channel_closed");
	let sessionId: string | null = null;
	const sid = o.SessionId;
	if (typeof sid === "string" && sid.length > 0 &&
	    utf8(sid).length <= 256 && !/[\x00-\x20\x7f]/.test(sid))
		sessionId = sid;
	return {
		sessionId,
		output: typeof o.Output === "string" ? sanitize(o.Output) : "",
		failed: o.SessionStatus === "Failed",
	};
}

// spec 5.4: CustomerMessage ("" when absent), sanitised.
export function parseHandshakeComplete(p: Uint8Array): string {
	const o = loadObject(p);
	if (o === null)
		throw new ProtoError("invalid HandshakeComplete");
	return typeof o.CustomerMessage === "string" ?
	    sanitize(o.CustomerMessage) : "";
}

export const ActionStatus = { Success: 1, Failed: 2, Unsupported: 3 } as const;

export type SessionType = "" | "Standard_Stream" | "InteractiveCommands" |
    "NonInteractiveCommands" | "Port";

export interface Handshake {
	sessionType: SessionType;   // "" unless a SessionType action worked
	kmsRequested: boolean;
	kmsParamsOk: boolean;
	kmsKeyId: string;
	kmsChallenge: string;       // "" when the agent sent none
	ok: boolean;
	agentVersion: string;
	firstError: string;
}

export interface KmsOutcome {
	ok: boolean;
	ciphertextB64?: string;     // ok: GenerateDataKey's CiphertextBlob
	challengeAck?: boolean;
	error?: string;
}

export function b64Valid(s: string): boolean {
	return s.length > 0 && s.length % 4 === 0 &&
	    /^[A-Za-z0-9+/]*={0,2}$/.test(s);
}

function cut(s: string, n: number): string {
	return s.length > n ? s.slice(0, n) : s;
}

function kmsParams(params: unknown, hs: Handshake): string | null {
	if (params === null || typeof params !== "object" ||
	    Array.isArray(params))
		return "KMSEncryption has no ActionParameters object";
	const p = params as Record<string, unknown>;
	const kid = p.KMSKeyId;
	if (typeof kid !== "string" || kid.length === 0 ||
	    utf8(kid).length > MAX_KEY_ID || !/^[\x21-\x7e]+$/.test(kid))
		return "KMSEncryption has no usable KMSKeyId";
	const ch = p.Challenge;
	if (ch !== undefined && ch !== null && (typeof ch !== "string" ||
	    ch.length > MAX_CHALLENGE || !b64Valid(ch)))
		return "KMSEncryption has an unusable Challenge";
	hs.kmsKeyId = kid;
	if (typeof ch === "string")
		hs.kmsChallenge = ch;
	hs.kmsParamsOk = true;
	return null;
}

// Read a HandshakeRequest and, with answer, build the HandshakeResponse
// as proto.c's proto_handshake does. The console runs shell sessions
// only: a Port session type is refused.
function handshake(req: Uint8Array, clientVersion: string,
    kms: KmsOutcome | null): { hs: Handshake; response: string } {
	const o = loadObject(req);
	const actions = o?.RequestedClientActions;
	if (o === null || !Array.isArray(actions) || actions.length > 64)
		throw new ProtoError("invalid HandshakeRequest");
	const hs: Handshake = {
		sessionType: "", kmsRequested: false, kmsParamsOk: false,
		kmsKeyId: "", kmsChallenge: "", ok: true, agentVersion: "",
		firstError: "",
	};
	if (typeof o.AgentVersion === "string")
		hs.agentVersion = cut(o.AgentVersion, 63)
		    .replace(/[\x00-\x1f\x7f"]/g, "?");
	const done: unknown[] = [];
	const errors: string[] = [];
	for (const action of actions) {
		let type: string | null = null;
		if (action !== null && typeof action === "object" &&
		    !Array.isArray(action) &&
		    typeof (action as Record<string, unknown>).ActionType ===
		    "string")
			type = (action as Record<string, unknown>)
			    .ActionType as string;
		let status: number;
		let err = "";
		let result: unknown = null;
		if (type === null) {
			err = "Malformed action";
			done.push({ ActionType: "", ActionStatus:
			    ActionStatus.Unsupported, ActionResult: null,
			    Error: err });
		} else {
			const params = (action as Record<string, unknown>)
			    .ActionParameters;
			if (type === "SessionType") {
				const st = params !== null &&
				    typeof params === "object" &&
				    !Array.isArray(params) ?
				    (params as Record<string, unknown>)
				    .SessionType : undefined;
				const s = typeof st === "string" ? st : "";
				if (s === "Standard_Stream" ||
				    s === "InteractiveCommands" ||
				    s === "NonInteractiveCommands") {
					hs.sessionType = s;
					status = ActionStatus.Success;
				} else {
					status = ActionStatus.Failed;
					err = s === "Port" ? "Port sessions " +
					    "are not supported in the console" :
					    `Unknown session type ${cut(s, 64)}`;
				}
			} else if (type === "KMSEncryption") {
				status = ActionStatus.Failed;
				let e: string | null;
				if (hs.kmsRequested) {
					e = "Duplicate KMSEncryption action";
				} else {
					hs.kmsRequested = true;
					e = kmsParams(params, hs);
				}
				if (e !== null)
					err = e;
				else if (kms === null)
					err = "KMS encryption is not available";
				else if (!kms.ok)
					err = kms.error ? kms.error :
					    "KMS encryption failed";
				else {
					const r: Record<string, unknown> = {
						KMSCipherTextKey:
						    kms.ciphertextB64 ?? "",
						KMSCipherTextHash: null,
					};
					if (kms.challengeAck)
						r.ChallengeAcknowledgement =
						    true;
					result = r;
					status = ActionStatus.Success;
				}
			} else {
				status = ActionStatus.Unsupported;
				err = `Unsupported action ${cut(type, 64)}`;
			}
			done.push({ ActionType: type, ActionStatus: status,
			    ActionResult: result, Error: err });
		}
		if (err !== "") {
			if (hs.ok)
				hs.firstError = err;
			hs.ok = false;
			errors.push(err);
		}
	}
	return {
		hs,
		response: str({
			ClientVersion: clientVersion,
			ProcessedClientActions: done,
			Errors: errors.length > 0 ? errors : null,
		}),
	};
}

export function parseHandshakeRequest(req: Uint8Array): Handshake {
	return handshake(req, "", null).hs;
}

export function handshakeResponse(req: Uint8Array, clientVersion: string,
    kms: KmsOutcome | null): { hs: Handshake; response: Uint8Array } {
	const r = handshake(req, clientVersion, kms);
	return { hs: r.hs, response: utf8(r.response) };
}

// spec 6.1: the GenerateDataKey request (kms.c's client_kms_request_body).
export function kmsRequestBody(keyId: string, sessionId: string,
    target: string, challenge: string): Record<string, unknown> {
	const ctx: Record<string, string> = {
		"aws:ssm:SessionId": sessionId,
		"aws:ssm:TargetId": target,
	};
	if (challenge !== "")
		ctx["aws:ssm:RandomChallenge"] = challenge;
	return { KeyId: keyId, NumberOfBytes: 64, EncryptionContext: ctx };
}

// spec 6.4: EncChallengeRequest {"Challenge": base64} -> sealed bytes.
export function parseChallenge(p: Uint8Array): Uint8Array {
	const o = loadObject(p);
	const c = o?.Challenge;
	if (typeof c !== "string" || !b64Valid(c))
		throw new ProtoError("invalid EncChallengeRequest");
	const b = fromBase64(c);
	if (b.length === 0 || b.length > MAX_CHALLENGE_BYTES)
		throw new ProtoError("invalid EncChallengeRequest");
	return b;
}

export function challengeResponse(sealed: Uint8Array): Uint8Array {
	return utf8(str({ Challenge: toBase64(sealed) }));
}
