// awsCall: one AWS JSON 1.1 call (SSM, KMS) from the page to portholed,
// POST / on the page's own origin, SigV4-signed with the signed-in user's
// temporary credentials. Errors come back as AwsError from AWS's JSON
// error shape.

import { getCredentials, invalidateCredentials } from "./auth";
import { signRequest } from "./sigv4";

export type Service = "ssm" | "kms";

const PREFIX: Record<Service, string> = {
	ssm: "AmazonSSM",
	kms: "TrentService",
};

let region = "us-east-1";

export function setRegion(r: string): void {
	region = r;
}

export function getRegion(): string {
	return region;
}

export class AwsError extends Error {
	constructor(readonly code: string, message: string,
	    readonly status: number) {
		super(message);
		this.name = "AwsError";
	}
}

// "com.amazonaws.ssm#InvalidInstanceId" -> "InvalidInstanceId"; also
// the "Code:http://..." form some services use.
export function errorCode(type: string): string {
	let t = type;
	const hash = t.lastIndexOf("#");
	if (hash >= 0)
		t = t.slice(hash + 1);
	const colon = t.indexOf(":");
	if (colon >= 0)
		t = t.slice(0, colon);
	return t;
}

export function parseError(status: number, text: string,
    headerType: string | null): AwsError {
	let code = "";
	let message = "";
	try {
		const o = JSON.parse(text) as Record<string, unknown>;
		if (typeof o.__type === "string")
			code = errorCode(o.__type);
		if (typeof o.message === "string")
			message = o.message;
		else if (typeof o.Message === "string")
			message = o.Message;
	} catch {
		// not JSON
	}
	if (code === "" && headerType)
		code = errorCode(headerType);
	if (code === "")
		code = status === 403 ? "AccessDeniedException" :
		    status >= 500 ? "InternalServerError" : "UnknownError";
	if (message === "")
		message = `HTTP ${status}`;
	return new AwsError(code, message, status);
}

function pageOrigin(): URL {
	const loc = (globalThis as { location?: { href: string } }).location;
	if (loc === undefined)
		throw new Error("awsCall needs a page origin");
	return new URL("/", loc.href);
}

export async function awsCall(service: Service, target: string,
    body: unknown): Promise<any> {
	const url = pageOrigin();
	const text = JSON.stringify(body ?? {});
	const fullTarget = target.includes(".") ? target :
	    `${PREFIX[service]}.${target}`;
	for (let attempt = 0; ; attempt++) {
		const creds = await getCredentials();
		const headers = await signRequest({
			method: "POST",
			host: url.host,
			path: "/",
			headers: {
				"Content-Type": "application/x-amz-json-1.1",
				"X-Amz-Target": fullTarget,
			},
			body: text,
			region,
			service,
		}, creds);
		const resp = await fetch(url.href, {
			method: "POST",
			headers,
			body: text,
			credentials: "omit",
			cache: "no-store",
		});
		const rt = await resp.text();
		if (resp.ok)
			return rt === "" ? {} : JSON.parse(rt);
		const err = parseError(resp.status, rt,
		    resp.headers.get("x-amzn-ErrorType"));
		// Credentials that expired under us: fetch fresh ones once.
		if (attempt === 0 && (err.code === "ExpiredTokenException" ||
		    err.code === "UnrecognizedClientException")) {
			invalidateCredentials();
			continue;
		}
		throw err;
	}
}
