// One data-channel session from the browser: the WebSocket to StartSession's
// StreamUrl, the OpenDataChannel token frame, the reliability layer, the
// agent's handshake (session type, KMS encryption, challenge), keystrokes
// and terminal sizes, reconnects with a fresh token from ResumeSession
// (spec 4.7, as src/client/session.c), channel_closed and TerminateSession.

import { Channel, ChannelCallbacks } from "./channel";
import { fromBase64, uuidV4 } from "./bytes";
import { CryptoError, SessionCrypt } from "./crypto";
import { ClientMessage, MT, PayloadType } from "./message";
import {
	Handshake, KmsOutcome, b64Valid, challengeResponse, handshakeResponse,
	kmsRequestBody, openDataChannel, parseChallenge, parseClosed,
	parseHandshakeComplete, parseHandshakeRequest, sizePayload,
} from "./proto";

// The console reports the C client's version: the agent's feature gates
// (spec 10.2) then treat both alike.
export const CLIENT_VERSION = "1.2.700.0";

const TICK_MS = 100;
const INPUT_CHUNK = 1024;          // spec 7.1
const MAX_RETRIES = 5;             // spec 4.7: first try + 5 retries
const STABLE_MS = 5000;            // a connection this old resets retries
const GIVEUP_RESENDS = 300;        // as the C client (about 5 minutes)
const MAX_PENDING_INPUT = 256 * 1024;
const HS_FAIL_WAIT_MS = 5000;      // after a failed handshake

export type SessionState = "connecting" | "open" | "reconnecting" | "closed";

export interface WebSocketLike {
	binaryType: string;
	readyState: number;
	onopen: ((ev: unknown) => void) | null;
	onmessage: ((ev: { data: unknown }) => void) | null;
	onclose: ((ev: { code: number }) => void) | null;
	onerror: ((ev: unknown) => void) | null;
	send(data: string | Uint8Array): void;
	close(code?: number, reason?: string): void;
}

export interface SessionOptions {
	sessionId: string;
	streamUrl: string;
	tokenValue: string;
	target: string;                  // StartSession's Target (spec 6.1)
	// kms:GenerateDataKey with the user's credentials: the response's
	// Plaintext and CiphertextBlob (base64 both, as KMS returns them).
	generateDataKey(body: Record<string, unknown>):
	    Promise<{ Plaintext: string; CiphertextBlob: string }>;
	// ssm:ResumeSession: a fresh TokenValue, or null when the session
	// is gone.
	resumeSession(): Promise<string | null>;
	terminateSession(): Promise<void>;
	onOutput(bytes: Uint8Array): void;
	// Text of our own for the user (banner, KMS notice, exit line).
	onNotice(text: string): void;
	onState?(s: SessionState): void;
	onEncrypted?(): void;
	onClosed?(reason: string): void;
	// Tests give a fake.
	webSocket?: (url: string) => WebSocketLike;
}

export class DataChannelSession {
	readonly clientId = uuidV4();
	private ws: WebSocketLike | null = null;
	private readonly ch: Channel;
	private token: string;
	private tokenUsed = false;
	private connectedOnce = false;
	private retries = 0;
	private timer: ReturnType<typeof setInterval> | null = null;
	private retryTimer: ReturnType<typeof setTimeout> | null = null;
	private stableTimer: ReturnType<typeof setTimeout> | null = null;
	private hsFailTimer: ReturnType<typeof setTimeout> | null = null;
	private finished = false;
	private ready = false;
	private hs: Handshake | null = null;
	private hsComplete = false;
	private hsFailed = false;
	private sc: SessionCrypt | null = null;
	private pending: Uint8Array[] = [];
	private pendingBytes = 0;
	private cols = 0;           // the terminal's size
	private rows = 0;
	private sentCols = 0;       // the last size sent
	private sentRows = 0;
	state: SessionState = "connecting";

	constructor(private readonly o: SessionOptions) {
		this.token = o.tokenValue;
		const cbs: ChannelCallbacks = {
			sendFrame: (f) => this.sendFrame(f),
			deliver: (t, p) => this.deliver(t, p),
			onControl: (m) => this.onControl(m),
		};
		this.ch = new Channel(cbs);
	}

	get encrypted(): boolean {
		return this.sc !== null;
	}

	get sessionId(): string {
		return this.o.sessionId;
	}

	// The channel, for tests.
	get channel(): Channel {
		return this.ch;
	}

	start(): void {
		this.timer = setInterval(() => this.tick(), TICK_MS);
		this.dial();
	}

	private setState(s: SessionState): void {
		if (this.state === s || this.state === "closed")
			return;
		this.state = s;
		this.o.onState?.(s);
	}

	private dial(): void {
		if (this.finished)
			return;
		const mk = this.o.webSocket ??
		    ((u: string) => new WebSocket(u) as unknown as WebSocketLike);
		let w: WebSocketLike;
		try {
			w = mk(this.o.streamUrl);
		} catch (e) {
			this.lost(`cannot connect: ${String(e)}`);
			return;
		}
		this.ws = w;
		w.binaryType = "arraybuffer";
		w.onopen = () => this.wsOpen(w);
		w.onmessage = (ev) => this.wsMessage(w, ev.data);
		w.onclose = (ev) => this.wsClose(w, ev.code);
		w.onerror = () => undefined;   // onclose follows
	}

	private wsOpen(w: WebSocketLike): void {
		if (this.finished || w !== this.ws)
			return;
		// spec 2.1: the token frame is the only authentication.
		w.send(openDataChannel(uuidV4(), this.token, this.clientId,
		    CLIENT_VERSION));
		this.tokenUsed = true;
		this.setState("open");
		if (!this.connectedOnce) {
			this.connectedOnce = true;
			// porthole's agent sizes the PTY from the first message.
			this.sendSize(true);
		} else {
			this.ch.resendAll();
			this.sendSize(false);
		}
		if (this.stableTimer !== null)
			clearTimeout(this.stableTimer);
		this.stableTimer = setTimeout(() => { this.retries = 0; },
		    STABLE_MS);
		this.flushInput();
	}

	private wsMessage(w: WebSocketLike, data: unknown): void {
		if (this.finished || w !== this.ws)
			return;
		if (!(data instanceof ArrayBuffer))
			return;     // the gateway sends binary frames only
		this.ch.receive(new Uint8Array(data)).catch(() => {
			// A frame that fails validation closes the connection
			// (and we resume), as the C client does.
			if (w === this.ws)
				w.close(4002, "invalid frame");
		});
	}

	private wsClose(w: WebSocketLike, code: number): void {
		if (w !== this.ws)
			return;
		this.ws = null;
		if (this.stableTimer !== null)
			clearTimeout(this.stableTimer);
		if (this.finished)
			return;
		// Any close without channel_closed is a lost connection to
		// resume (spec 4.7).
		this.lost(`the data channel closed (code ${code})`);
	}

	private lost(why: string): void {
		if (this.finished)
			return;
		if (this.retries >= MAX_RETRIES) {
			this.finish(`Connection to the session was lost: ${why}`);
			return;
		}
		this.setState("reconnecting");
		// spec 4.7: d * 2^k, d random in [100, 200) ms.
		const delay = (100 + Math.floor(Math.random() * 100)) *
		    2 ** this.retries;
		this.retries++;
		this.retryTimer = setTimeout(() => void this.retry(), delay);
	}

	private async retry(): Promise<void> {
		this.retryTimer = null;
		if (this.finished)
			return;
		if (!this.tokenUsed) {
			this.dial();
			return;
		}
		let tok: string | null;
		try {
			tok = await this.o.resumeSession();
		} catch (e) {
			this.lost(`ResumeSession failed: ${errText(e)}`);
			return;
		}
		if (this.finished)
			return;
		if (tok === null) {
			this.finish(`Session: ${this.o.sessionId} timed out.`);
			return;
		}
		this.token = tok;
		this.tokenUsed = false;
		this.dial();
	}

	private sendFrame(frame: Uint8Array): boolean {
		const w = this.ws;
		if (w === null || w.readyState !== 1 || this.finished)
			return false;
		try {
			w.send(frame);
			return true;
		} catch {
			return false;
		}
	}

	private tick(): void {
		if (this.finished)
			return;
		this.ch.tick();
		if (this.ch.headResends() >= GIVEUP_RESENDS) {
			this.finish("The agent stopped acknowledging input; " +
			    `session ${this.o.sessionId} terminated.`);
			void this.o.terminateSession().catch(() => undefined);
		}
	}

	// ---- input and size --------------------------------------------

	// The session takes input once output came (no handshake) or the
	// handshake completed, and the cipher is in place when KMS was
	// asked for (spec 5.3 [R]).
	private inputOpen(): boolean {
		return this.ready && !this.finished && this.ws !== null &&
		    this.ws.readyState === 1 &&
		    (this.hs === null || !this.hs.kmsRequested || this.sc !== null);
	}

	sendInput(bytes: Uint8Array): void {
		if (this.finished || bytes.length === 0)
			return;
		if (this.pendingBytes + bytes.length > MAX_PENDING_INPUT)
			return;     // typed faster than a stalled channel takes
		this.pending.push(bytes);
		this.pendingBytes += bytes.length;
		this.flushInput();
	}

	private flushInput(): void {
		if (!this.inputOpen())
			return;
		while (this.pending.length > 0 && this.ch.canSend()) {
			const b = this.pending[0];
			const k = Math.min(b.length, INPUT_CHUNK);
			void this.ch.send(PayloadType.Output, b.subarray(0, k))
			    .catch(() => undefined);
			this.pendingBytes -= k;
			if (k === b.length)
				this.pending.shift();
			else
				this.pending[0] = b.subarray(k);
		}
	}

	// spec 7.1: PayloadType 3 whenever the size changes.
	resize(cols: number, rows: number): void {
		if (cols <= 0 || rows <= 0)
			return;
		this.cols = cols;
		this.rows = rows;
		this.sendSize(false);
	}

	// A size that changed while the connection was down leaves once it
	// is back (wsOpen).
	private sendSize(force: boolean): void {
		if (this.finished || this.ws === null || this.cols === 0 ||
		    this.ws.readyState !== 1 || !this.ch.canSend())
			return;
		if (!force && this.cols === this.sentCols &&
		    this.rows === this.sentRows)
			return;
		this.sentCols = this.cols;
		this.sentRows = this.rows;
		void this.ch.send(PayloadType.Size,
		    sizePayload(this.cols, this.rows)).catch(() => undefined);
	}

	// ---- what the agent sends --------------------------------------

	private setReady(): void {
		if (this.ready)
			return;
		this.ready = true;
		this.flushInput();
	}

	private async deliver(type: number, p: Uint8Array): Promise<boolean> {
		if (this.finished)
			return true;
		const kmsWait = this.hs !== null && this.hs.kmsRequested &&
		    !this.hsComplete;
		switch (type) {
		case PayloadType.Output:
		case PayloadType.StdErr:
		case PayloadType.ExitCode:
			this.o.onOutput(p);
			if (!kmsWait)
				this.setReady();
			return true;
		case PayloadType.HandshakeRequest:
			await this.handshakeRequest(p);
			return true;
		case PayloadType.EncChallengeRequest:
			await this.challenge(p);
			return true;
		case PayloadType.HandshakeComplete:
			this.handshakeComplete(p);
			return true;
		default:
			return true;
		}
	}

	private async handshakeRequest(p: Uint8Array): Promise<void> {
		if (this.sc !== null) {
			this.finish("The agent asked for a second encryption " +
			    "handshake.");
			return;
		}
		let hs: Handshake;
		try {
			hs = parseHandshakeRequest(p);
		} catch {
			this.finish("The agent sent an invalid handshake request.");
			return;
		}
		this.hs = hs;
		let kms: KmsOutcome | null = null;
		if (hs.kmsRequested) {
			this.ready = false;
			kms = { ok: false };
			if (hs.kmsParamsOk) {
				kms = await this.generateKey(hs);
			}
		}
		const r = handshakeResponse(p, CLIENT_VERSION, kms);
		this.hs = r.hs;
		await this.ch.send(PayloadType.HandshakeResponse, r.response)
		    .catch(() => undefined);
		if (!r.hs.ok) {
			this.hsFailed = true;
			const why = r.hs.kmsRequested && kms !== null && !kms.ok ?
			    `KMS encryption failed: ${kms.error ?? ""}` :
			    r.hs.firstError;
			this.o.onNotice(why);
			// The agent cancels the session and channel_closed
			// follows; past this we end on our own (as session.c).
			this.hsFailTimer = setTimeout(() => {
				if (this.finished)
					return;
				this.finish(why);
				void this.o.terminateSession().catch(() => undefined);
			}, HS_FAIL_WAIT_MS);
		}
	}

	// spec 6.1: GenerateDataKey, then the cipher is set before the
	// response leaves (what the agent sends after it is sealed).
	private async generateKey(hs: Handshake): Promise<KmsOutcome> {
		let key: Uint8Array | null = null;
		let r: { Plaintext: string; CiphertextBlob: string };
		try {
			r = await this.o.generateDataKey(kmsRequestBody(
			    hs.kmsKeyId, this.o.sessionId, this.o.target,
			    hs.kmsChallenge));
		} catch (e) {
			// As the C client words it (kms.c, awsapi.c).
			const code = e !== null && typeof e === "object" &&
			    "code" in e ? String((e as { code: unknown }).code) :
			    "";
			return { ok: false, error: code !== "" ?
			    `An error occurred (${code}) when calling the ` +
			    `GenerateDataKey operation: ${errText(e)}` :
			    errText(e) };
		}
		try {
			if (typeof r?.CiphertextBlob !== "string" ||
			    r.CiphertextBlob.length > 8192 ||
			    !b64Valid(r.CiphertextBlob))
				return { ok: false, error: "The GenerateDataKey " +
				    "response has no usable CiphertextBlob." };
			if (typeof r.Plaintext !== "string" ||
			    !b64Valid(r.Plaintext) ||
			    (key = fromBase64(r.Plaintext)).length !== 64)
				return { ok: false, error: "The GenerateDataKey " +
				    "response has no 64-byte Plaintext key." };
			const sc = await SessionCrypt.create("client", key);
			this.sc = sc;
			this.ch.setCrypto(sc);
			return { ok: true, ciphertextB64: r.CiphertextBlob,
			    challengeAck: hs.kmsChallenge !== "" };
		} catch (e) {
			return { ok: false, error: "cannot set up the session " +
			    `cipher: ${errText(e)}` };
		} finally {
			key?.fill(0);
		}
	}

	// spec 6.4: open with the agent's key, seal with ours, answer.
	private async challenge(p: Uint8Array): Promise<void> {
		if (this.sc === null) {
			this.finish("The agent sent an encryption challenge " +
			    "without a session key.");
			return;
		}
		let resp: Uint8Array;
		try {
			const plain = await this.sc.open(parseChallenge(p));
			resp = challengeResponse(await this.sc.seal(plain));
			plain.fill(0);
		} catch (e) {
			this.finish(e instanceof CryptoError ?
			    "The agent's encryption challenge does not decrypt " +
			    "with the session key." :
			    "The agent sent an invalid encryption challenge.");
			return;
		}
		await this.ch.send(PayloadType.EncChallengeResponse, resp)
		    .catch(() => undefined);
	}

	private handshakeComplete(p: Uint8Array): void {
		let msg = "";
		try {
			msg = parseHandshakeComplete(p);
		} catch {
			msg = "";
		}
		if (this.hsFailed) {
			this.finish("The agent completed a handshake that " +
			    "failed.");
			return;
		}
		if (this.hs !== null && this.hs.kmsRequested && this.sc === null) {
			this.finish("The agent completed the handshake without " +
			    "the encryption it asked for.");
			return;
		}
		// spec 5.4: "This session is encrypted using AWS KMS."
		if (msg !== "")
			this.o.onNotice(msg);
		if (this.sc !== null)
			this.o.onEncrypted?.();
		this.hsComplete = true;
		this.setReady();
	}

	private onControl(m: ClientMessage): void {
		if (m.type !== MT.closed || this.finished)
			return;
		let text: string;
		try {
			const c = parseClosed(m.payload);
			const sid = c.sessionId ?? this.o.sessionId;
			text = c.output !== "" ? `SessionId: ${sid} : ${c.output}` :
			    `Exiting session with sessionId: ${sid}.`;
		} catch {
			text = `Exiting session with sessionId: ` +
			    `${this.o.sessionId}.`;
		}
		this.finish(text);
	}

	// ---- the end ---------------------------------------------------

	private finish(reason: string): void {
		if (this.finished)
			return;
		this.finished = true;
		if (this.timer !== null)
			clearInterval(this.timer);
		if (this.retryTimer !== null)
			clearTimeout(this.retryTimer);
		if (this.stableTimer !== null)
			clearTimeout(this.stableTimer);
		if (this.hsFailTimer !== null)
			clearTimeout(this.hsFailTimer);
		this.ch.close();
		const w = this.ws;
		this.ws = null;
		if (w !== null) {
			try {
				w.close(1000, "session ended");
			} catch {
				// already closing
			}
		}
		this.setState("closed");
		this.o.onClosed?.(reason);
	}

	// The user's Terminate: TerminateSession, then channel_closed ends
	// us; if it does not come, we end anyway.
	async terminate(): Promise<void> {
		if (this.finished)
			return;
		// A refusal (AccessDenied) leaves the session as it is.
		await this.o.terminateSession();
		setTimeout(() => this.finish(
		    `Exiting session with sessionId: ${this.o.sessionId}.`), 3000);
	}

	// Leave without terminating (page closed): the session stays
	// resumable until the service times it out.
	dispose(reason = "closed by the page"): void {
		this.finish(reason);
	}
}

function errText(e: unknown): string {
	if (e instanceof Error)
		return e.message;
	if (e !== null && typeof e === "object" && "message" in e)
		return String((e as { message: unknown }).message);
	return String(e);
}
