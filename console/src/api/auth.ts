// Sign-in against portholed's /console/api/* (docs/console.md): the
// console session is an HttpOnly cookie the page never sees; the CSRF
// token and the temporary AWS credentials live in this module's memory
// only (never localStorage, never a URL).

import { AwsError, parseError } from "./aws";
import type { Credentials } from "./sigv4";

export interface ConsoleSession {
	UserName: string;
	Arn: string;
	AccountId: string;
	Expiration: string;
	CsrfToken: string;
	// The login profile asks for a new password: until it is changed,
	// the console session can do nothing else (credentials are 403).
	PasswordResetRequired?: boolean;
}

// Refresh this long before the credentials expire.
const REFRESH_MARGIN_MS = 60 * 1000;

let session: ConsoleSession | null = null;
let creds: Credentials | null = null;
let inflight: Promise<Credentials> | null = null;

async function post(path: string, body: unknown,
    csrf: boolean): Promise<Response> {
	const headers: Record<string, string> = {
		"Content-Type": "application/json",
	};
	if (csrf && session !== null)
		headers["X-Porthole-Csrf"] = session.CsrfToken;
	return fetch(path, {
		method: "POST",
		headers,
		body: JSON.stringify(body),
		credentials: "same-origin",
		cache: "no-store",
	});
}

async function failure(r: Response): Promise<AwsError> {
	return parseError(r.status, await r.text(),
	    r.headers.get("x-amzn-ErrorType"));
}

export async function signIn(user: string,
    password: string): Promise<ConsoleSession> {
	const r = await post("/console/api/signin",
	    { UserName: user, Password: password }, false);
	if (!r.ok)
		throw await failure(r);
	session = await r.json() as ConsoleSession;
	creds = null;
	return session;
}

// The signed-in session (a reloaded page carries on), or null.
export async function currentSession(): Promise<ConsoleSession | null> {
	const r = await fetch("/console/api/session", {
		credentials: "same-origin",
		cache: "no-store",
	});
	if (r.status === 401) {
		session = null;
		creds = null;
		return null;
	}
	if (!r.ok)
		throw await failure(r);
	session = await r.json() as ConsoleSession;
	return session;
}

// The signed-in user's own password (iam:ChangePassword's rules, checked
// by portholed); the answer is the session with PasswordResetRequired
// cleared.
export async function changePassword(oldPassword: string,
    newPassword: string): Promise<ConsoleSession> {
	if (session === null)
		await currentSession();
	if (session === null)
		throw new AwsError("NotSignedIn", "Sign in first.", 401);
	const r = await post("/console/api/change-password",
	    { OldPassword: oldPassword, NewPassword: newPassword }, true);
	if (!r.ok)
		throw await failure(r);
	session = await r.json() as ConsoleSession;
	creds = null;
	return session;
}

export function sessionInfo(): ConsoleSession | null {
	return session;
}

export async function signOut(): Promise<void> {
	try {
		if (session !== null) {
			const r = await post("/console/api/signout", {}, true);
			if (!r.ok && r.status !== 401)
				throw await failure(r);
		}
	} finally {
		session = null;
		creds = null;
		inflight = null;
	}
}

export function invalidateCredentials(): void {
	creds = null;
}

function fresh(c: Credentials | null): c is Credentials {
	if (c === null)
		return false;
	if (!c.Expiration)
		return true;
	const t = Date.parse(c.Expiration);
	return Number.isNaN(t) || t - Date.now() > REFRESH_MARGIN_MS;
}

async function fetchCredentials(): Promise<Credentials> {
	if (session === null)
		await currentSession();
	if (session === null)
		throw new AwsError("NotSignedIn", "Sign in first.", 401);
	const r = await post("/console/api/credentials", {}, true);
	if (!r.ok) {
		if (r.status === 401) {
			session = null;
			creds = null;
		}
		throw await failure(r);
	}
	const c = await r.json() as Credentials;
	if (typeof c.AccessKeyId !== "string" ||
	    typeof c.SecretAccessKey !== "string")
		throw new AwsError("InvalidResponse",
		    "The credentials response is not usable.", r.status);
	return c;
}

// The credentials provider: cached in memory, refreshed before
// Expiration, one request at a time.
export async function getCredentials(): Promise<Credentials> {
	if (fresh(creds))
		return creds;
	if (inflight === null) {
		inflight = fetchCredentials().then((c) => {
			creds = c;
			return c;
		}).finally(() => {
			inflight = null;
		});
	}
	return inflight;
}
