// The console's API layer under Node with a fake fetch: sign-in keeps the
// CSRF token, credentials are fetched with it, cached in memory and
// refreshed before they expire, awsCall signs for the page's own origin
// and turns AWS's JSON errors into AwsError, retrying once with fresh
// credentials when the old ones expired.

import { strict as assert } from "node:assert";
import { test } from "node:test";

import { getCredentials, signIn, signOut } from "../src/api/auth";
import { AwsError, awsCall } from "../src/api/aws";

interface Seen {
	url: string;
	method: string;
	headers: Record<string, string>;
	body: string;
}

const seen: Seen[] = [];
let credsExpiry = 0;
let credsIssued = 0;
let denyNext: string | null = null;

function reply(status: number, body: unknown): Response {
	return new Response(JSON.stringify(body), { status,
	    headers: { "Content-Type": "application/json" } });
}

(globalThis as Record<string, unknown>).location =
    { href: "https://console.example:8443/console/#/instances" };
(globalThis as Record<string, unknown>).fetch = async (input: string,
    init: { method?: string; headers?: Record<string, string>;
    body?: string } = {}): Promise<Response> => {
	const s: Seen = { url: String(input), method: init.method ?? "GET",
	    headers: init.headers ?? {}, body: init.body ?? "" };
	seen.push(s);
	if (s.url === "/console/api/signin") {
		const b = JSON.parse(s.body);
		if (b.Password !== "right")
			return reply(401, { __type: "AuthenticationFailed",
			    message: "Wrong user name or password." });
		return reply(200, { UserName: b.UserName, Arn: "arn:x",
		    AccountId: "1", Expiration: "2099-01-01T00:00:00Z",
		    CsrfToken: "csrf-1" });
	}
	if (s.url === "/console/api/credentials") {
		if (s.headers["X-Porthole-Csrf"] !== "csrf-1")
			return reply(403, { __type: "AccessDeniedException",
			    message: "CSRF" });
		credsIssued++;
		return reply(200, { AccessKeyId: `ASIA${credsIssued}`,
		    SecretAccessKey: "secret", SessionToken: `tok${credsIssued}`,
		    Expiration: new Date(Date.now() + credsExpiry)
		    .toISOString() });
	}
	if (s.url === "/console/api/signout")
		return reply(200, {});
	if (s.url === "https://console.example:8443/") {
		if (denyNext !== null) {
			const t = denyNext;
			denyNext = null;
			return reply(400, { __type: t, message: "nope" });
		}
		if (s.headers["X-Amz-Target"] === "AmazonSSM.Denied")
			return reply(400, {
			    __type: "com.amazonaws.ssm#AccessDeniedException",
			    message: "User: arn:x is not authorized to perform: " +
			    "ssm:Denied" });
		return reply(200, { Echo: JSON.parse(s.body) });
	}
	return reply(404, {});
};

test("sign-in, credentials with the CSRF header, refresh, awsCall",
    async () => {
	await assert.rejects(signIn("alice", "wrong"), (e: unknown) =>
	    e instanceof AwsError && e.code === "AuthenticationFailed" &&
	    e.status === 401);
	const s = await signIn("alice", "right");
	assert.equal(s.CsrfToken, "csrf-1");

	credsExpiry = 15 * 60 * 1000;
	const c1 = await getCredentials();
	const c2 = await getCredentials();
	assert.equal(c1.AccessKeyId, "ASIA1");
	assert.equal(c2.AccessKeyId, "ASIA1", "cached");
	assert.equal(credsIssued, 1);

	const r = await awsCall("ssm", "AmazonSSM.DescribeInstanceInformation",
	    { MaxResults: 5 });
	assert.deepEqual(r, { Echo: { MaxResults: 5 } });
	const call = seen[seen.length - 1];
	assert.equal(call.method, "POST");
	assert.equal(call.headers["X-Amz-Target"],
	    "AmazonSSM.DescribeInstanceInformation");
	assert.equal(call.headers["Content-Type"],
	    "application/x-amz-json-1.1");
	assert.equal(call.headers["X-Amz-Security-Token"], "tok1");
	assert.match(call.headers.Authorization, /^AWS4-HMAC-SHA256 Credential=ASIA1\/\d{8}\/us-east-1\/ssm\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=[0-9a-f]{64}$/);

	await assert.rejects(awsCall("ssm", "AmazonSSM.Denied", {}),
	    (e: unknown) => e instanceof AwsError &&
	    e.code === "AccessDeniedException" && /not authorized/.test(
	    e.message) && e.status === 400);

	// Expired under us: fresh credentials, one retry.
	denyNext = "ExpiredTokenException";
	await awsCall("kms", "TrentService.ListKeys", {});
	assert.equal(credsIssued, 2);
	assert.match(seen[seen.length - 1].headers.Authorization,
	    /Credential=ASIA2\/\d{8}\/us-east-1\/kms\//);

	// Credentials about to expire are refreshed before use.
	credsExpiry = 30 * 1000;
	denyNext = "ExpiredTokenException";
	await awsCall("ssm", "AmazonSSM.X", {});
	const n = credsIssued;
	await getCredentials();
	assert.equal(credsIssued, n + 1);

	await signOut();
	const out = seen[seen.length - 1];
	assert.equal(out.url, "/console/api/signout");
	assert.equal(out.headers["X-Porthole-Csrf"], "csrf-1");
	// Nothing in a URL, nothing stored.
	for (const x of seen) {
		assert.ok(!x.url.includes("secret") && !x.url.includes("tok"));
	}
	assert.equal(typeof (globalThis as Record<string, unknown>)
	    .localStorage, "undefined");
});
