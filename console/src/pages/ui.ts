// Small DOM helpers shared by the pages. Text always goes in through
// textContent (or a Text node): nothing from a server, a user or a
// terminal is ever parsed as HTML.

import { awsCall, AwsError } from "../api/aws";

export type Child = Node | string | null | undefined | false;

export interface Attrs {
	[name: string]: string | boolean | undefined |
	    ((ev: Event) => void);
}

// el("button", {class: "x", onclick: f}, "Text"): attributes by
// setAttribute, handlers by addEventListener, children as nodes or text.
export function el<K extends keyof HTMLElementTagNameMap>(tag: K,
    attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
	const e = document.createElement(tag);

	for (const [k, v] of Object.entries(attrs)) {
		if (v === undefined || v === false)
			continue;
		if (typeof v === "function")
			e.addEventListener(k.replace(/^on/, ""), v);
		else if (v === true)
			e.setAttribute(k, "");
		else
			e.setAttribute(k, v);
	}
	append(e, ...children);
	return e;
}

export function append(parent: Node, ...children: Child[]): void {
	for (const c of children) {
		if (c === null || c === undefined || c === false)
			continue;
		parent.appendChild(typeof c === "string" ?
		    document.createTextNode(c) : c);
	}
}

export function clear(e: Node): void {
	while (e.firstChild !== null)
		e.removeChild(e.firstChild);
}

// An API call of the SSM service; target is the action name alone.
export function ssm(action: string, body: object = {}): Promise<any> {
	return awsCall("ssm", "AmazonSSM." + action, body);
}

// How an error reads in the page: AWS's code and message as AWS words
// them ("AccessDeniedException: User: arn:... is not authorized ...").
export function errorText(err: unknown): string {
	if (err instanceof AwsError)
		return err.code + ": " + err.message;
	if (err instanceof Error)
		return err.message !== "" ? err.message : err.name;
	return String(err);
}

export function errorBox(err: unknown): HTMLElement {
	return el("p", { class: "error", role: "alert" }, errorText(err));
}

// The app shell's answer to a console session that ended (expired or
// signed out elsewhere): the credentials endpoint says 401.
let onSessionEnded: (() => void) | null = null;

export function setSessionEndedHandler(f: () => void): void {
	onSessionEnded = f;
}

// Replaces what a status element shows: an error, or a plain note.
export function showError(where: HTMLElement, err: unknown): void {
	clear(where);
	where.appendChild(errorBox(err));
	if (err instanceof AwsError && err.status === 401 &&
	    onSessionEnded !== null)
		onSessionEnded();
}

export function note(where: HTMLElement, text: string): void {
	clear(where);
	if (text !== "")
		where.appendChild(el("p", { class: "note" }, text));
}

// botocore gives timestamps as epoch seconds (numbers); accept ISO text
// too. Shown in the browser's time zone, to the second.
export function fmtDate(v: unknown): string {
	let d: Date;

	if (typeof v === "number")
		d = new Date(v * 1000);
	else if (typeof v === "string" && v !== "")
		d = new Date(v);
	else
		return "";
	if (isNaN(d.getTime()))
		return String(v);
	const p = (n: number) => String(n).padStart(2, "0");
	return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" +
	    p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes()) +
	    ":" + p(d.getSeconds());
}

// A table from column headings and rows of cells (text or nodes).
export function table(cls: string, heads: string[],
    rows: Child[][]): HTMLTableElement {
	const t = el("table", { class: cls });
	const hr = el("tr");

	for (const h of heads)
		hr.appendChild(el("th", { scope: "col" }, h));
	t.appendChild(el("thead", {}, hr));
	const body = el("tbody");
	for (const r of rows) {
		const tr = el("tr");
		for (const c of r)
			tr.appendChild(el("td", {}, c));
		body.appendChild(tr);
	}
	t.appendChild(body);
	return t;
}

// Every page of a paginated call, bounded: a server that keeps handing
// out tokens cannot keep the page busy forever.
export async function allPages(action: string, body: object, key: string,
    maxPages = 50): Promise<any[]> {
	const out: any[] = [];
	let token: string | undefined;

	for (let i = 0; i < maxPages; i++) {
		const req: any = { ...body };
		if (token !== undefined)
			req.NextToken = token;
		const r = await ssm(action, req);
		if (Array.isArray(r[key]))
			out.push(...r[key]);
		if (typeof r.NextToken !== "string" || r.NextToken === "")
			break;
		token = r.NextToken;
	}
	return out;
}

export function sleep(ms: number): Promise<void> {
	return new Promise((res) => setTimeout(res, ms));
}

// A page: renders into root, may return a cleanup run when the user
// leaves it. params are the route's parts after the page name.
export type Page = (root: HTMLElement, params: string[]) =>
    (() => void) | void;
