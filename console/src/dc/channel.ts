// The client end of the reliability layer (spec 4), as
// src/common/channel.c: sequence numbers from 0, selective
// acknowledgements (seq 0, flags SYN|FIN), an out-of-order buffer,
// duplicates re-acknowledged and never delivered twice, retransmission of
// unacknowledged input with an adaptive RTO, everything resent after a
// reconnect. Sealed payload types are encrypted once when sent and opened
// before delivery. No I/O: frames leave through the transport callback.

import { uuidV4 } from "./bytes";
import { OVERHEAD, SessionCrypt, sealedType } from "./crypto";
import {
	ClientMessage, FLAG_FIN, FLAG_SYN, MT, PayloadType, decodeMessage,
	encodeMessage,
} from "./message";
import { ackPayload, parseAck } from "./proto";

const MAX_UNACKED = 10000;
const MAX_OUT_OF_ORDER = 10000;     // spec 4.3, client
const MAX_OOO_BYTES = 32 << 20;
export const MAX_STREAM_PAYLOAD = 64 * 1024;
const RTO_INIT = 200, SRTT_INIT = 100, ALPHA = 1 / 8, BETA = 1 / 4;
const CLOCK_G = 10, RTO_MAX = 1000;
const RESEND_BURST = 64;

export interface ChannelCallbacks {
	// Write one frame; false when the transport is down (the frame stays
	// buffered and is resent later).
	sendFrame(frame: Uint8Array): boolean;
	// An in-order stream payload (plaintext). Return false when not
	// ready: no ack, the agent resends.
	deliver(payloadType: number, payload: Uint8Array): Promise<boolean>;
	// channel_closed, publication and other unsequenced messages.
	onControl(m: ClientMessage): void;
}

interface OutMsg {
	seq: bigint;
	frame: Uint8Array;
	sentMs: number;
	sends: number;
}

interface InMsg {
	payloadType: number;
	payload: Uint8Array;   // opened already when it was sealed
}

export class Channel {
	private nextSeq = 0n;
	private expected = 0n;
	private readonly out = new Map<bigint, OutMsg>();
	private readonly ooo = new Map<bigint, InMsg>();
	private oooBytes = 0;
	private srtt = SRTT_INIT;
	private rttvar = 0;
	private rto = RTO_INIT;
	private crypto: SessionCrypt | null = null;
	private sendChain: Promise<unknown> = Promise.resolve();
	private recvChain: Promise<unknown> = Promise.resolve();
	private dead = false;
	openFailures = 0;
	now: () => number = () => performance.now();

	constructor(private readonly cb: ChannelCallbacks) {}

	setCrypto(sc: SessionCrypt | null): void {
		this.crypto = sc;
	}

	get encrypted(): boolean {
		return this.crypto !== null;
	}

	close(): void {
		this.dead = true;
		this.out.clear();
		this.ooo.clear();
	}

	canSend(): boolean {
		return !this.dead && this.out.size < MAX_UNACKED;
	}

	unacked(): number {
		return this.out.size;
	}

	expectedSeq(): bigint {
		return this.expected;
	}

	nextSendSeq(): bigint {
		return this.nextSeq;
	}

	rtoMs(): number {
		return this.rto;
	}

	// Resends of the oldest unacknowledged message (a caller gives up
	// past a bound).
	headResends(): number {
		const o = this.oldest();
		return o === undefined ? 0 : o.sends - 1;
	}

	private oldest(): OutMsg | undefined {
		let best: OutMsg | undefined;
		for (const o of this.out.values())
			if (best === undefined || o.seq < best.seq)
				best = o;
		return best;
	}

	// One stream message: next sequence number, sealed when the type
	// travels sealed, buffered until acknowledged, written in order.
	send(payloadType: number, payload: Uint8Array): Promise<void> {
		if (this.dead)
			return Promise.reject(new Error("channel closed"));
		if (payload.length === 0)
			return Promise.resolve();     // spec 3.6
		if (payload.length > MAX_STREAM_PAYLOAD)
			return Promise.reject(new Error("payload too big"));
		if (!this.canSend())
			return Promise.reject(new Error("send window full"));
		const seq = this.nextSeq++;
		const p = this.sendChain.then(async () => {
			let body = payload;
			if (this.crypto !== null &&
			    sealedType("client", payloadType))
				body = await this.crypto.seal(payload);
			const frame = await encodeMessage({
				type: MT.input, seq, flags: 0n,
				messageId: uuidV4(), payloadType, payload: body,
			});
			if (this.dead)
				return;
			const o: OutMsg = { seq, frame, sentMs: this.now(),
			    sends: 1 };
			this.out.set(seq, o);
			this.cb.sendFrame(frame);
		});
		this.sendChain = p.catch(() => undefined);
		return p;
	}

	// Frames arrive one at a time, in arrival order.
	receive(frame: Uint8Array): Promise<void> {
		const p = this.recvChain.then(() => this.receiveOne(frame));
		this.recvChain = p.catch(() => undefined);
		return p;
	}

	private async receiveOne(frame: Uint8Array): Promise<void> {
		if (this.dead)
			return;
		const m = await decodeMessage(frame);
		if (m.type === MT.output)
			await this.onStream(m);
		else if (m.type === MT.ack)
			this.onAck(m);
		else if (m.type === MT.input)
			return;
		else
			this.cb.onControl(m);
	}

	private onAck(m: ClientMessage): void {
		const seq = parseAck(m.payload);
		if (seq === null)
			return;
		const o = this.out.get(seq);
		if (o === undefined)
			return;
		this.out.delete(seq);
		// Karn: a resent message's ack cannot tell which copy it
		// answers.
		if (o.sends === 1)
			this.rttSample(Math.max(0, this.now() - o.sentMs));
	}

	private rttSample(sample: number): void {
		this.rttvar = (1 - BETA) * this.rttvar +
		    BETA * Math.abs(this.srtt - sample);
		this.srtt = (1 - ALPHA) * this.srtt + ALPHA * sample;
		this.rto = Math.min(RTO_MAX,
		    this.srtt + Math.max(CLOCK_G, 4 * this.rttvar));
	}

	private async ack(m: ClientMessage): Promise<void> {
		const frame = await encodeMessage({
			type: MT.ack, seq: 0n, flags: FLAG_SYN | FLAG_FIN,
			messageId: uuidV4(), payloadType: PayloadType.None,
			payload: ackPayload(m.type, m.messageId, m.seq),
		});
		if (!this.dead)
			this.cb.sendFrame(frame);
	}

	private mustOpen(payloadType: number): boolean {
		return this.crypto !== null && sealedType("agent", payloadType);
	}

	// spec 4.3
	private async onStream(m: ClientMessage): Promise<void> {
		if (m.seq < this.expected) {
			await this.ack(m);      // re-acked, never redelivered
			return;
		}
		if (m.seq === this.expected) {
			let p = m.payload;
			if (this.mustOpen(m.payloadType)) {
				try {
					p = await this.crypto!.open(p);
				} catch {
					this.openFailures++;
					return;         // not acked
				}
			}
			this.dropOoo(m.seq);
			if (!await this.cb.deliver(m.payloadType, p))
				return;
			if (this.dead)
				return;
			await this.ack(m);
			this.expected++;
			await this.drain();
			return;
		}
		if (this.ooo.has(m.seq)) {
			await this.ack(m);
			return;
		}
		if (m.seq - this.expected > BigInt(MAX_OUT_OF_ORDER) ||
		    this.oooBytes + m.payload.length > MAX_OOO_BYTES)
			return;
		let p = m.payload;
		if (this.mustOpen(m.payloadType)) {
			if (p.length < OVERHEAD)
				return;
			try {
				p = await this.crypto!.open(p);
			} catch {
				this.openFailures++;
				return;
			}
		}
		this.ooo.set(m.seq, { payloadType: m.payloadType, payload: p });
		this.oooBytes += p.length;
		await this.ack(m);
	}

	private dropOoo(seq: bigint): void {
		const e = this.ooo.get(seq);
		if (e !== undefined) {
			this.oooBytes -= e.payload.length;
			this.ooo.delete(seq);
		}
	}

	// Buffered messages now in order (acknowledged on arrival).
	private async drain(): Promise<void> {
		for (;;) {
			const e = this.ooo.get(this.expected);
			if (e === undefined || this.dead)
				return;
			if (!await this.cb.deliver(e.payloadType, e.payload))
				return;
			this.dropOoo(this.expected);
			this.expected++;
		}
	}

	// Retransmission timer: call every ~100 ms. Every message whose RTO
	// ran out is resent, oldest first, a burst at most per tick. Also
	// retries delivery of a buffered message the session refused.
	tick(): void {
		if (this.dead)
			return;
		if (this.ooo.has(this.expected))
			this.recvChain = this.recvChain.then(() => this.drain())
			    .catch(() => undefined);
		const now = this.now();
		const due = [...this.out.values()]
		    .filter((o) => now - o.sentMs > this.rto)
		    .sort((a, b) => (a.seq < b.seq ? -1 : 1))
		    .slice(0, RESEND_BURST);
		for (const o of due)
			this.resend(o, now);
	}

	private resend(o: OutMsg, now: number): void {
		o.sends++;
		o.sentMs = now;
		this.cb.sendFrame(o.frame);
	}

	// After a reconnect: everything unacknowledged, in order.
	resendAll(): void {
		const now = this.now();
		for (const o of [...this.out.values()]
		    .sort((a, b) => (a.seq < b.seq ? -1 : 1)))
			this.resend(o, now);
	}
}
