// Byte helpers shared by the data-channel module: hex, base64, UTF-8,
// SHA-256 and UUIDs, all through the platform (WebCrypto, TextEncoder).

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: false });

export function utf8(s: string): Uint8Array {
	return enc.encode(s);
}

export function fromUtf8(b: Uint8Array): string {
	return dec.decode(b);
}

export function toHex(b: Uint8Array): string {
	let s = "";
	for (const x of b)
		s += x.toString(16).padStart(2, "0");
	return s;
}

export function fromHex(s: string): Uint8Array {
	if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s))
		throw new Error("invalid hex");
	const out = new Uint8Array(s.length / 2);
	for (let i = 0; i < out.length; i++)
		out[i] = parseInt(s.substr(i * 2, 2), 16);
	return out;
}

const B64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

export function toBase64(b: Uint8Array): string {
	let s = "";
	let i = 0;
	for (; i + 2 < b.length; i += 3) {
		const v = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
		s += B64[v >> 18] + B64[(v >> 12) & 63] + B64[(v >> 6) & 63] +
		    B64[v & 63];
	}
	if (i < b.length) {
		const v = (b[i] << 16) | ((i + 1 < b.length ? b[i + 1] : 0) << 8);
		s += B64[v >> 18] + B64[(v >> 12) & 63];
		s += i + 1 < b.length ? B64[(v >> 6) & 63] : "=";
		s += "=";
	}
	return s;
}

// Strict standard base64 (padded, no whitespace), as the C client's
// client_b64_decode accepts it.
export function fromBase64(s: string): Uint8Array {
	if (s.length === 0 || s.length % 4 !== 0 ||
	    !/^[A-Za-z0-9+/]*={0,2}$/.test(s))
		throw new Error("invalid base64");
	const pad = s.endsWith("==") ? 2 : s.endsWith("=") ? 1 : 0;
	const out = new Uint8Array(s.length / 4 * 3 - pad);
	let o = 0;
	for (let i = 0; i < s.length; i += 4) {
		let v = 0;
		for (let k = 0; k < 4; k++) {
			const c = s[i + k];
			v = (v << 6) | (c === "=" ? 0 : B64.indexOf(c));
		}
		if (o < out.length) out[o++] = (v >> 16) & 255;
		if (o < out.length) out[o++] = (v >> 8) & 255;
		if (o < out.length) out[o++] = v & 255;
	}
	return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
	let n = 0;
	for (const p of parts)
		n += p.length;
	const out = new Uint8Array(n);
	let off = 0;
	for (const p of parts) {
		out.set(p, off);
		off += p.length;
	}
	return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
	if (a.length !== b.length)
		return false;
	let d = 0;
	for (let i = 0; i < a.length; i++)
		d |= a[i] ^ b[i];
	return d === 0;
}

// WebCrypto wants a BufferSource backed by a plain ArrayBuffer.
export function bs(b: Uint8Array): Uint8Array<ArrayBuffer> {
	return b.buffer instanceof ArrayBuffer ? b as Uint8Array<ArrayBuffer> :
	    new Uint8Array(b);
}

export async function sha256(b: Uint8Array): Promise<Uint8Array> {
	return new Uint8Array(await crypto.subtle.digest("SHA-256", bs(b)));
}

export function randomBytes(n: number): Uint8Array {
	const b = new Uint8Array(n);
	crypto.getRandomValues(b);
	return b;
}

// Canonical RFC 4122 bytes of a hyphenated UUID string.
export function uuidBytes(s: string): Uint8Array {
	const h = s.replace(/-/g, "");
	if (!/^[0-9a-fA-F]{32}$/.test(h) || s.length !== 36)
		throw new Error("invalid UUID");
	return fromHex(h);
}

// Lower-case hyphenated form of 16 canonical bytes.
export function uuidString(b: Uint8Array): string {
	const h = toHex(b);
	return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-` +
	    `${h.slice(16, 20)}-${h.slice(20)}`;
}

export function uuidV4(): string {
	const b = randomBytes(16);
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	return uuidString(b);
}
