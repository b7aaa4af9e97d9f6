// AWS Signature Version 4 for the console's JSON API calls, with WebCrypto
// (the browser's crypto.subtle, or Node's globalThis.crypto in tests).

export interface Credentials {
	AccessKeyId: string;
	SecretAccessKey: string;
	SessionToken?: string;
	Expiration?: string;
}

export interface SignInput {
	method: string;
	host: string;             // as the browser sends it (name[:port])
	path: string;             // already URI-encoded, e.g. "/"
	query?: string;           // canonical query string, "" if none
	headers: Record<string, string>;  // besides host and x-amz-date
	body: string;
	region: string;
	service: string;
	now?: Date;
}

const te = new TextEncoder();

function hex(b: ArrayBuffer): string {
	return [...new Uint8Array(b)]
	    .map((x) => x.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(s: string): Promise<string> {
	return hex(await crypto.subtle.digest("SHA-256", te.encode(s)));
}

async function hmac(key: ArrayBuffer | Uint8Array<ArrayBuffer>,
    msg: string): Promise<ArrayBuffer> {
	const k = await crypto.subtle.importKey("raw", key,
	    { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
	return crypto.subtle.sign("HMAC", k, te.encode(msg));
}

// 20240101T000000Z
export function amzDate(d: Date): string {
	return d.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

// The headers to send: the input's, X-Amz-Date, X-Amz-Security-Token when
// the credentials are temporary, and Authorization. Host is signed but not
// returned (the browser sets it).
export async function signRequest(req: SignInput,
    creds: Credentials): Promise<Record<string, string>> {
	const date = amzDate(req.now ?? new Date());
	const day = date.slice(0, 8);
	const headers: Record<string, string> = { ...req.headers };
	headers["X-Amz-Date"] = date;
	if (creds.SessionToken)
		headers["X-Amz-Security-Token"] = creds.SessionToken;
	const canon = new Map<string, string>();
	canon.set("host", req.host);
	for (const [k, v] of Object.entries(headers))
		canon.set(k.toLowerCase(), v.trim().replace(/\s+/g, " "));
	const names = [...canon.keys()].sort();
	const signedHeaders = names.join(";");
	const canonical = [
		req.method,
		req.path,
		req.query ?? "",
		names.map((n) => `${n}:${canon.get(n)}\n`).join(""),
		signedHeaders,
		await sha256Hex(req.body),
	].join("\n");
	const scope = `${day}/${req.region}/${req.service}/aws4_request`;
	const toSign = ["AWS4-HMAC-SHA256", date, scope,
	    await sha256Hex(canonical)].join("\n");
	let k = await hmac(te.encode(`AWS4${creds.SecretAccessKey}`), day);
	k = await hmac(k, req.region);
	k = await hmac(k, req.service);
	k = await hmac(k, "aws4_request");
	const sig = hex(await hmac(k, toSign));
	headers["Authorization"] = `AWS4-HMAC-SHA256 Credential=` +
	    `${creds.AccessKeyId}/${scope}, SignedHeaders=${signedHeaders}, ` +
	    `Signature=${sig}`;
	return headers;
}
