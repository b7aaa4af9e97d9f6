// Shared machinery of the console's browser tests: Debian's chromium
// driven by playwright-core (from console/node_modules, no browser
// download), a fresh profile per run, helpers to sign in and to read the
// xterm.js terminal the way a user sees it (its DOM rows).

import { existsSync, mkdirSync, readFileSync, rmSync,
    writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, "..", "..");
const require = createRequire(join(REPO, "console", "package.json"));
const { chromium } = require("playwright-core");

export const CHROMIUM = process.env.PORTHOLE_CHROMIUM || "/usr/bin/chromium";

export class TestFailure extends Error {}

export function check(cond, msg) {
	if (!cond)
		throw new TestFailure(msg);
}

// Polls fn (async, returns a truthy value when done) every interval ms
// for at most ms; returns the value, or fails saying what was awaited
// and the last thing seen.
export async function waitFor(fn, what, ms = 20000, interval = 200) {
	const end = Date.now() + ms;
	let last;
	for (let i = 0; i < Math.ceil(ms / interval) + 1; i++) {
		try {
			last = await fn();
			if (last)
				return last;
		} catch (e) {
			if (e instanceof TestFailure)
				throw e;
			last = e;
		}
		if (Date.now() > end)
			break;
		await new Promise((r) => setTimeout(r, interval));
	}
	throw new TestFailure(`timed out after ${ms} ms waiting for ${what}` +
	    (last !== undefined ? ` (last: ${String(last).slice(0, 2000)})` :
	    ""));
}

export async function launch({ url, artifacts, name }) {
	// playwright gives every launch a fresh temporary profile
	// (user-data-dir) and removes it on close.
	mkdirSync(artifacts, { recursive: true });
	// A failure's screenshot from an earlier run would mislead.
	rmSync(join(artifacts, `${name}-failed.png`), { force: true });
	const browser = await chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: ["--headless", "--no-sandbox", "--disable-gpu",
		    "--disable-quic", "--no-first-run",
		    "--disable-background-networking",
		    "--disable-component-update", "--disable-sync"],
		timeout: 60000,
	});
	const context = await browser.newContext({
		ignoreHTTPSErrors: true,
		viewport: { width: 1280, height: 800 },
	});
	const page = await context.newPage();
	const log = [];
	page.on("console", (m) => log.push(`console.${m.type()}: ${m.text()}`));
	page.on("pageerror", (e) => log.push(`pageerror: ${e.message}`));
	page.on("requestfailed", (r) => log.push(`requestfailed: ${r.url()} ` +
	    `${r.failure()?.errorText ?? ""}`));
	const t = {
		url, artifacts, name, browser, context, page, log,
		base: url.replace(/\/+$/, "") + "/console/",
		async shot(label) {
			const file = join(artifacts, label ?
			    `${name}-${label}.png` : `${name}.png`);
			await page.screenshot({ path: file, fullPage: true });
			return file;
		},
		async close() {
			await browser.close();
		},
	};
	return t;
}

// Signs in through the form; returns when the header shows the user.
export async function signIn(t, user, password) {
	const { page } = t;
	await page.goto(t.base, { waitUntil: "load" });
	await page.waitForSelector("#signin #username", { timeout: 20000 });
	await page.fill("#username", user);
	await page.fill("#password", password);
	await page.click("#signin button[type=submit]");
	await page.waitForFunction((u) =>
	    document.getElementById("user")?.textContent?.startsWith(u),
	    user, { timeout: 20000 });
}

// The terminal's visible text, one line per xterm row (DOM renderer).
export async function termText(page, sel = "#terminal") {
	return page.evaluate((s) => {
		const c = document.querySelector(s);
		if (c === null)
			return "";
		const rows = c.querySelectorAll(".xterm-rows > div");
		return Array.from(rows).map((r) => (r.textContent ?? "")
		    .replace(/\u00a0/g, " ").replace(/\s+$/, "")).join("\n");
	}, sel);
}

export async function termRows(page, sel = "#terminal") {
	return page.evaluate((s) => document.querySelectorAll(
	    s + " .xterm-rows > div").length, sel);
}

// Types a line into the terminal (focused by a click) and waits until
// pred(text after the typing) holds for the terminal's text.
export async function typeLine(page, line, pred, what, ms = 20000) {
	await page.click("#terminal");
	await page.keyboard.type(line, { delay: 5 });
	await page.keyboard.press("Enter");
	return waitFor(async () => {
		const txt = await termText(page);
		return pred(txt) ? txt : false;
	}, what, ms);
}

// Waits until the terminal is open: the session id is set and the data
// channel's handshake is done (data-state open).
export async function waitShell(page, ms = 40000) {
	await waitFor(async () => {
		const st = await page.evaluate(() => {
			const c = document.getElementById("terminal");
			return { state: c?.dataset.state ?? "",
			    sid: c?.dataset.sessionId ?? "",
			    err: document.querySelector(".error")
				?.textContent ?? "" };
		});
		if (st.err !== "")
			throw new TestFailure("the session page shows an " +
			    "error: " + st.err);
		if (st.state === "closed")
			throw new TestFailure("the session closed: " +
			    await termText(page));
		return st.sid !== "" && st.state === "open";
	}, "the shell to open", ms);
	return page.evaluate(() =>
	    document.getElementById("terminal")?.dataset.sessionId ?? "");
}

// Asks the Python driver to do something mid-scenario (e.g. cut the
// network): writes SIGNAL_DIR/NAME.req and waits for NAME.done.
export async function askDriver(p, name, ms = 30000) {
	check(typeof p.signalDir === "string" && p.signalDir !== "",
	    "no signalDir parameter: the driver cannot be asked");
	const req = join(p.signalDir, `${name}.req`);
	const done = join(p.signalDir, `${name}.done`);
	writeFileSync(req, "");
	await waitFor(() => existsSync(done), `the driver to ${name}`, ms);
	return readFileSync(done, "utf8");
}
