// Session encryption of spec 6 through WebCrypto, as
// src/common/sessioncrypt.c: AES-256-GCM, the 64-byte KMS data key split
// by direction (bytes 0-31 agent->client, 32-63 client->agent), payload =
// nonce (12) || ciphertext || tag (16), no additional data.

import { bs, concat, randomBytes } from "./bytes";

export const KEY_LEN = 64;
export const NONCE_LEN = 12;
export const TAG_LEN = 16;
export const OVERHEAD = NONCE_LEN + TAG_LEN;

export type Role = "client" | "agent";

export class CryptoError extends Error {
	constructor(msg: string) {
		super(msg);
		this.name = "CryptoError";
	}
}

async function importKey(raw: Uint8Array,
    usage: KeyUsage): Promise<CryptoKey> {
	return crypto.subtle.importKey("raw", bs(raw), { name: "AES-GCM" },
	    false, [usage]);
}

export class SessionCrypt {
	private counter: Uint8Array | null = null;

	private constructor(readonly role: Role,
	    private readonly sealKey: CryptoKey,
	    private readonly openKey: CryptoKey) {}

	// The key bytes are not kept: only the non-extractable CryptoKeys.
	static async create(role: Role, key: Uint8Array): Promise<SessionCrypt> {
		if (key.length !== KEY_LEN)
			throw new CryptoError("the session key is not 64 bytes");
		const a2c = key.subarray(0, 32), c2a = key.subarray(32, 64);
		return new SessionCrypt(role,
		    await importKey(role === "agent" ? a2c : c2a, "encrypt"),
		    await importKey(role === "agent" ? c2a : a2c, "decrypt"));
	}

	// Tests: the next seal uses nonce, later ones count up from it as
	// sessioncrypt_set_test_nonce does (null: random again).
	setTestNonce(nonce: Uint8Array | null): void {
		this.counter = nonce === null ? null : new Uint8Array(nonce);
	}

	private nextNonce(): Uint8Array {
		if (this.counter === null)
			return randomBytes(NONCE_LEN);
		const n = new Uint8Array(this.counter);
		// spec 6.3: a 96-bit little-endian counter.
		for (let i = 0; i < NONCE_LEN; i++)
			if (++this.counter[i] <= 255)
				break;
			else
				this.counter[i] = 0;
		return n;
	}

	async seal(plain: Uint8Array): Promise<Uint8Array> {
		const iv = this.nextNonce();
		const ct = new Uint8Array(await crypto.subtle.encrypt(
		    { name: "AES-GCM", iv: bs(iv), tagLength: 128 },
		    this.sealKey, bs(plain)));
		return concat(iv, ct);
	}

	async open(sealed: Uint8Array): Promise<Uint8Array> {
		if (sealed.length < OVERHEAD)
			throw new CryptoError("sealed payload too short");
		try {
			return new Uint8Array(await crypto.subtle.decrypt(
			    { name: "AES-GCM",
			    iv: bs(sealed.slice(0, NONCE_LEN)),
			    tagLength: 128 }, this.openKey,
			    bs(sealed.slice(NONCE_LEN))));
		} catch {
			throw new CryptoError("payload does not authenticate");
		}
	}
}

// spec 6.3: what travels sealed, by sender.
export function sealedType(sender: Role, payloadType: number): boolean {
	if (sender === "client")
		return payloadType === 1;
	return payloadType === 1 || payloadType === 11 || payloadType === 12;
}
