// The console's browser scenarios. Each takes the test handle (lib.mjs
// launch) and the parameters the Python driver passed, drives the page as
// a user does, saves a screenshot, and returns what the driver checks
// against the AWS CLI's view. Failures throw TestFailure.

import { join } from "node:path";

import { TestFailure, askDriver, check, signIn, termRows, termText,
    typeLine, waitFor, waitShell } from "./lib.mjs";

const BANNER = "This session is encrypted using AWS KMS.";
const SECRET_RE = new RegExp("AccessKeyId|SecretAccessKey|SessionToken|" +
    "ASIA|AKIA|porthole_console");

function hasLine(txt, want) {
	return txt.split("\n").some((l) => l.trim() === want);
}

// The terminal line just before the line `marker` (what a command
// printed right before `echo marker`).
function lineBefore(txt, marker) {
	const lines = txt.split("\n").map((l) => l.trim());
	for (let i = lines.length - 1; i > 0; i--)
		if (lines[i] === marker)
			return lines[i - 1];
	return null;
}

async function sttySize(page, n) {
	const marker = `SZ-${n}`;
	const txt = await typeLine(page,
	    `stty size; echo SZ-$((${n - 1}+1))`,
	    (t) => hasLine(t, marker), `stty size (${marker})`);
	const m = /^(\d+) (\d+)$/.exec(lineBefore(txt, marker) ?? "");
	check(m !== null, `no stty size output before ${marker}:\n${txt}`);
	return { rows: Number(m[1]), cols: Number(m[2]) };
}

// Text that would run script if anything put it in the page as HTML.
export const HOSTILE = "<img src=x onerror=window.__xss=1><b id=xss>b</b>";

// Nothing hostile became markup: no element from it, no script ran.
async function noMarkup(page, where) {
	const r = await page.evaluate(() => ({
		xss: window.__xss ?? null,
		img: document.querySelectorAll("#page img").length,
		b: document.getElementById("xss") !== null,
	}));
	check(r.xss === null && r.img === 0 && !r.b,
	    `${where}: text became markup: ${JSON.stringify(r)}`);
}

async function errorText(page, what, ms = 20000) {
	return waitFor(() => page.evaluate(() => Array.from(
	    document.querySelectorAll(".error")).map((e) => e.textContent)
	    .join("\n")), what, ms);
}

async function terminate(page) {
	await page.click("#terminate");
	await waitFor(() => page.evaluate(() =>
	    document.getElementById("terminate")?.disabled === true &&
	    !["open", "connected", "connecting", ""].includes(
	    document.getElementById("terminal")?.dataset.state ?? "")),
	    "the session to end after Terminate", 30000);
}

export const scenarios = {

	// Wrong password refused, sign-in, nothing secret readable by
	// script, a reload carries on, Sign out ends it.
	async signin(t, p) {
		const { page } = t;
		await page.goto(t.base, { waitUntil: "load" });
		await page.waitForSelector("#signin #username");
		await page.fill("#username", p.user);
		await page.fill("#password", p.password + "-wrong");
		await page.click("#signin button[type=submit]");
		const bad = await errorText(page, "the sign-in refusal");
		check(bad.includes("AuthenticationFailed"),
		    `wrong password: ${bad}`);
		await signIn(t, p.user, p.password);
		const who = await page.textContent("#user");
		const stored = await page.evaluate(() => ({
			local: JSON.stringify(Object.assign({}, localStorage)),
			session: JSON.stringify(Object.assign({},
			    sessionStorage)),
			cookie: document.cookie,
			url: location.href,
		}));
		for (const [k, v] of Object.entries(stored))
			check(!SECRET_RE.test(v),
			    `credentials visible in ${k}: ${v}`);
		await page.reload({ waitUntil: "load" });
		await page.waitForFunction((u) => document.getElementById(
		    "user")?.textContent?.startsWith(u), p.user);
		await t.shot();
		// Signed out in another tab: this one's next call finds its
		// credentials dead and goes back to the sign-in form.
		const other = await t.context.newPage();
		await other.goto(t.base, { waitUntil: "load" });
		await other.waitForSelector("#signout");
		await other.click("#signout");
		await other.waitForSelector("#signin #username");
		await other.close();
		await page.click("#refresh");
		await page.waitForSelector("#signin #username");
		const ended = await page.textContent("#signin-status");
		check(/session has ended/.test(ended ?? ""),
		    `after a sign-out elsewhere: ${ended}`);
		await signIn(t, p.user, p.password);
		await page.click("#signout");
		await page.waitForSelector("#signin #username");
		await page.reload({ waitUntil: "load" });
		await page.waitForSelector("#signin #username");
		check(await page.$("#user") === null,
		    "still signed in after Sign out and a reload");
		return { user: who };
	},

	// The fleet: the enrolled agent's row, its tags; the tag filter.
	async instances(t, p) {
		const { page } = t;
		await signIn(t, p.user, p.password);
		const row = "#instance-table " +
		    `tr[data-instance="${p.instanceId}"]`;
		await page.waitForSelector(row, { timeout: 20000 });
		const text = await page.textContent(row);
		const cells = await page.$$eval(`${row} td`, (tds) =>
		    tds.map((td) => td.textContent));
		await page.fill("#tag-filter", `${p.tagKey}=${p.tagValue}`);
		await page.waitForSelector(row);
		await t.shot();
		await page.fill("#tag-filter", `${p.tagKey}=no-such-value`);
		await waitFor(async () => await page.$(row) === null,
		    "the filter to hide the instance", 5000);
		await page.fill("#tag-filter", "");
		await page.waitForSelector(row);
		return { text, cells };
	},

	// A shell: whoami, stty size before and after a resize, Ctrl-C,
	// a marker for the history test, Terminate.
	async shell(t, p) {
		const { page } = t;
		await signIn(t, p.user, p.password);
		await page.click(`button[data-instance="${p.instanceId}"]`,
		    { timeout: 20000 });
		await page.waitForFunction((id) => location.hash ===
		    "#/session/" + id, p.instanceId);
		const sid = await waitShell(page);
		await typeLine(page, "whoami", (x) => hasLine(x, "ssm-user"),
		    "whoami to print ssm-user");
		// xterm's theme (its run-time <style> elements, which the CSP
		// must let through) applies: the default foreground is white.
		const fg = await page.evaluate(() => getComputedStyle(
		    document.querySelector("#terminal .xterm-rows")).color);
		check(fg === "rgb(255, 255, 255)",
		    `the terminal's theme is not applied (colour ${fg})`);
		const before = await sttySize(page, 11);
		const rowsBefore = await termRows(page);
		check(before.rows === rowsBefore, `stty says ${before.rows} ` +
		    `rows, the terminal shows ${rowsBefore}`);
		await page.setViewportSize({ width: 760, height: 520 });
		await waitFor(async () => await termRows(page) !== rowsBefore,
		    "the terminal to fit the smaller window", 10000);
		// Let the resize reach the agent before asking.
		await new Promise((r) => setTimeout(r, 700));
		const after = await sttySize(page, 12);
		const rowsAfter = await termRows(page);
		check(after.rows === rowsAfter, `after the resize stty says ` +
		    `${after.rows} rows, the terminal shows ${rowsAfter}`);
		check(after.cols < before.cols && after.rows < before.rows,
		    `the size did not shrink: ${JSON.stringify(before)} -> ` +
		    JSON.stringify(after));
		await page.click("#terminal");
		await page.keyboard.type("sleep 300", { delay: 5 });
		await page.keyboard.press("Enter");
		await new Promise((r) => setTimeout(r, 1000));
		await page.keyboard.press("Control+C");
		await typeLine(page, "echo CC-$((40+2))",
		    (x) => hasLine(x, "CC-42"), "the shell after Ctrl-C",
		    15000);
		await typeLine(page, `echo '${HOSTILE}' X-$((1+1))`,
		    (x) => x.split("\n").some((l) => l.trim() ===
		    `${HOSTILE} X-2`), "the hostile text as text");
		await noMarkup(page, "the terminal");
		await typeLine(page, `echo ${p.marker}-$((6*7))`,
		    (x) => hasLine(x, `${p.marker}-42`), "the marker");
		await t.shot();
		// Meanwhile, in another tab, the session is an active one.
		const other = await t.context.newPage();
		await other.goto(t.base + "#/history/active");
		const arow = `#session-table tr[data-session="${sid}"]`;
		await other.waitForSelector(arow, { timeout: 20000 });
		const active = await other.$$eval(`${arow} td`, (tds) =>
		    tds.map((td) => td.textContent));
		await other.screenshot({ path: join(t.artifacts,
		    "shell-active.png"), fullPage: true });
		await other.close();
		await terminate(page);
		return { sessionId: sid, before, after, rowsAfter, active };
	},

	// KMS: the key named in the preferences page (when p.kmsKey), then
	// the banner and a working shell.
	async kms(t, p) {
		const { page } = t;
		await signIn(t, p.user, p.password);
		if (p.kmsKey) {
			await page.goto(t.base + "#/preferences");
			await page.waitForSelector("#save:not([disabled])");
			await page.check("#kms-enabled");
			await page.fill("#kms-key", p.kmsKey);
			await page.click("#save");
			await page.waitForSelector("#saved");
		}
		await page.goto(t.base + "#/session/" + p.instanceId);
		const sid = await waitShell(page);
		await typeLine(page, "whoami", (x) => hasLine(x, "ssm-user"),
		    "whoami to print ssm-user");
		const st = await page.evaluate(() => ({
			banner: !document.getElementById("kms-banner").hidden,
			bannerText: document.getElementById("kms-banner")
			    .textContent,
			encrypted: document.getElementById("terminal")
			    .dataset.encrypted ?? "",
		}));
		const txt = await termText(page);
		check(st.banner && st.bannerText === BANNER,
		    `no KMS banner in the page: ${JSON.stringify(st)}`);
		await typeLine(page, "echo KMS-$((6*7))",
		    (x) => hasLine(x, "KMS-42"), "a command in the session");
		await t.shot();
		await terminate(page);
		return { sessionId: sid, encrypted: st.encrypted,
		    inTerminal: txt.includes(BANNER) };
	},

	// A short network drop: the driver cuts every connection (and
	// refuses new ones for a moment); the same session carries on.
	async resume(t, p) {
		const { page } = t;
		await signIn(t, p.user, p.password);
		await page.goto(t.base + "#/session/" + p.instanceId);
		const sid = await waitShell(page);
		await page.evaluate(() => {
			const c = document.getElementById("terminal");
			window.__states = [];
			new MutationObserver(() => window.__states.push(
			    c.dataset.state)).observe(c, { attributes: true,
			    attributeFilter: ["data-state"] });
		});
		await typeLine(page, "echo BEFORE-$((6*7))",
		    (x) => hasLine(x, "BEFORE-42"),
		    "a command before the drop");
		const cut = await askDriver(p, "cut");
		await typeLine(page, "echo RESUMED-$((6*7))",
		    (x) => hasLine(x, "RESUMED-42"), "the shell after the drop",
		    60000);
		const after = await page.evaluate(() =>
		    document.getElementById("terminal").dataset.sessionId);
		check(after === sid, `the session changed: ${sid} -> ${after}`);
		const states = await page.evaluate(() => window.__states);
		await t.shot();
		await terminate(page);
		return { sessionId: sid, states, cut };
	},

	// History: the ended session's row, its replay and transcript.
	async history(t, p) {
		const { page } = t;
		await signIn(t, p.user, p.password);
		await page.goto(t.base + "#/history");
		const row = `#session-table tr[data-session="${p.sessionId}"]`;
		await page.waitForSelector(row, { timeout: 20000 });
		const cells = await page.$$eval(`${row} td`, (tds) =>
		    tds.map((td) => td.textContent));
		await t.shot("list");
		await page.click(`a[data-replay="${p.sessionId}"]`);
		await page.waitForFunction((s) => location.hash ===
		    "#/replay/" + s, p.sessionId);
		const played = await waitFor(() => page.evaluate((m) => {
			const e = document.querySelector(".error");
			if (e !== null)
				return "ERROR " + e.textContent;
			const pl = document.getElementById("player");
			return pl !== null && (pl.textContent ?? "")
			    .includes(m) ? pl.textContent : "";
		}, p.marker), "the replay to show the marker", 60000);
		check(!played.startsWith("ERROR "), played);
		await t.shot();
		await noMarkup(page, "the replay");
		await page.click("#show-transcript");
		const transcript = await waitFor(() => page.evaluate((m) => {
			const e = document.getElementById("transcript");
			return e !== null && !e.hidden &&
			    (e.textContent ?? "").includes(m) ?
			    e.textContent : "";
		}, p.marker), "the transcript", 20000);
		await noMarkup(page, "the transcript");
		return { cells, transcript: transcript.slice(0, 4000) };
	},

	// A user the policies deny: AWS's AccessDenied text in the page.
	async denied(t, p) {
		const { page } = t;
		await signIn(t, p.user, p.password);
		await page.goto(t.base + "#/session/" + p.instanceId);
		const start = await errorText(page, "the StartSession denial");
		await t.shot();
		await page.goto(t.base + "#/preferences");
		const prefs = await errorText(page, "the GetDocument denial");
		await t.shot("preferences");
		return { start, prefs };
	},

	// Preferences edited and saved in the page; read back after a reload.
	async prefs(t, p) {
		const { page } = t;
		const v = p.prefs;
		await signIn(t, p.user, p.password);
		await page.goto(t.base + "#/preferences");
		await page.waitForSelector("#save:not([disabled])");
		await page.fill("#s3-bucket", v.s3BucketName);
		await page.fill("#s3-prefix", v.s3KeyPrefix);
		await page.setChecked("#s3-encryption", v.s3EncryptionEnabled);
		await page.setChecked("#kms-enabled", v.kmsKeyId !== "");
		if (v.kmsKeyId !== "")
			await page.fill("#kms-key", v.kmsKeyId);
		await page.fill("#idle-timeout", v.idleSessionTimeout);
		await page.fill("#max-duration", v.maxSessionDuration);
		await page.setChecked("#run-as-enabled", v.runAsEnabled);
		if (v.runAsEnabled)
			await page.fill("#run-as-user", v.runAsDefaultUser);
		await page.fill("#shell-linux", v.shellProfile.linux);
		await page.fill("#shell-windows", v.shellProfile.windows);
		await page.click("#save");
		await waitFor(() => page.evaluate(() => {
			const e = document.querySelector(
			    "#prefs-status .error");
			if (e !== null)
				return "ERROR " + e.textContent;
			return document.getElementById("saved")?.textContent;
		}), "the preferences to be saved").then((s) =>
		    check(!s.startsWith("ERROR "), s));
		await t.shot();
		await page.reload({ waitUntil: "load" });
		await page.waitForSelector("#save:not([disabled])");
		const back = await page.evaluate(() => {
			const val = (id) => document.getElementById(id).value;
			const on = (id) => document.getElementById(id).checked;
			return {
				s3BucketName: val("s3-bucket"),
				s3KeyPrefix: val("s3-prefix"),
				s3EncryptionEnabled: on("s3-encryption"),
				kmsKeyId: on("kms-enabled") ? val("kms-key") :
				    "",
				idleSessionTimeout: val("idle-timeout"),
				maxSessionDuration: val("max-duration"),
				runAsEnabled: on("run-as-enabled"),
				runAsDefaultUser: val("run-as-user"),
				shellProfile: { linux: val("shell-linux"),
				    windows: val("shell-windows") },
			};
		});
		// Saving the same again changes nothing (AWS's
		// DuplicateDocumentContent, said plainly).
		await page.click("#save");
		const same = await waitFor(() => page.evaluate(() => {
			const n = document.querySelector("#prefs-status p");
			return n !== null && !/Saving/.test(n.textContent) ?
			    n.textContent : "";
		}), "the answer to an unchanged save");
		// Out-of-range values are refused in the page, nothing saved.
		await page.fill("#idle-timeout", "0");
		await page.click("#save");
		const bad = await errorText(page, "the idle timeout refusal");
		return { back, same, bad };
	},

	// Run Command: AWS-RunShellScript on the instance, watched to the
	// end; every status the row showed is reported.
	async runcommand(t, p) {
		const { page } = t;
		await signIn(t, p.user, p.password);
		await page.goto(t.base + "#/run");
		await waitFor(() => page.evaluate(() =>
		    document.getElementById("document")?.value ===
		    "AWS-RunShellScript" &&
		    document.getElementById("param-commands") !== null),
		    "the document list and its parameters");
		await page.fill("#param-commands", p.commands.join("\n"));
		if (p.tag) {
			await page.check("#by-tag");
			await page.fill("#target-tag", p.tag);
		} else {
			await page.check(`input[id="target-${p.instanceId}"]`);
		}
		await page.click("#run");
		const row = `#invocations tr[data-instance="${p.instanceId}"]`;
		const seen = [];
		const final = await waitFor(async () => {
			const e = await page.$("#run-status .error");
			if (e !== null)
				throw new TestFailure(await e.textContent());
			const s = await page.evaluate((r) => document
			    .querySelector(r + " [data-status]")?.dataset
			    .status ?? "", row);
			if (s !== "" && seen[seen.length - 1] !== s)
				seen.push(s);
			const out = await page.$(`${row} pre[data-output]`);
			return ["Success", "Failed"].includes(s) &&
			    out !== null ? s : "";
		}, "the command to finish", 120000, 100);
		const output = await page.textContent(
		    `${row} pre[data-output]`);
		await noMarkup(page, "the command output");
		await t.shot();
		return { status: final, seen, output,
		    commandId: await page.textContent("#command-id") };
	},

	// Copy and paste in the terminal: a command pasted with
	// Ctrl-Shift-V (from the clipboard) and one with the browser's own
	// paste event both run; a word selected with the mouse leaves with
	// Ctrl-Shift-C and is what the clipboard then holds.
	async clipboard(t, p) {
		const { page, context } = t;
		await context.grantPermissions(["clipboard-read",
		    "clipboard-write"], { origin: new URL(t.base).origin });
		await signIn(t, p.user, p.password);
		await page.click(`button[data-instance="${p.instanceId}"]`,
		    { timeout: 20000 });
		const sid = await waitShell(page);
		await page.evaluate((s) => navigator.clipboard.writeText(s),
		    "echo PASTED-$((20+22))");
		await page.click("#terminal");
		await page.keyboard.press("Control+Shift+V");
		// The paste reads the clipboard asynchronously: Enter only
		// once the shell echoed it.
		await waitFor(async () => (await termText(page)).includes(
		    "echo PASTED-$((20+22))"), "the pasted command's echo");
		await page.keyboard.press("Enter");
		await waitFor(async () => hasLine(await termText(page),
		    "PASTED-42"), "the pasted command's output");
		// The browser's paste (menu, middle button): a paste event
		// on xterm's textarea.
		await page.evaluate((s) => {
			const ta = document.querySelector(
			    "#terminal .xterm-helper-textarea");
			const dt = new DataTransfer();
			dt.setData("text/plain", s);
			ta.dispatchEvent(new ClipboardEvent("paste",
			    { clipboardData: dt, bubbles: true,
			    cancelable: true }));
		}, "echo EVPASTE-$((3*3))");
		await waitFor(async () => (await termText(page)).includes(
		    "echo EVPASTE-$((3*3))"), "the paste event's echo");
		await page.keyboard.press("Enter");
		await waitFor(async () => hasLine(await termText(page),
		    "EVPASTE-9"), "the paste event's command output");
		// Select the output word with a double click; copy it out.
		await page.evaluate(() => navigator.clipboard.writeText(""));
		const box = await page.evaluate(() => {
			const rows = Array.from(document.querySelectorAll(
			    "#terminal .xterm-rows > div"));
			const row = rows.filter((r) => (r.textContent ?? "")
			    .replace(/\u00a0/g, " ").trim() === "PASTED-42")
			    .pop();
			if (row === undefined)
				return null;
			const range = document.createRange();
			range.selectNodeContents(row);
			const b = range.getBoundingClientRect();
			return { x: b.x, y: b.y, w: b.width, h: b.height };
		});
		check(box !== null && box.w > 0, "no PASTED-42 row to select");
		await page.mouse.dblclick(box.x + box.w / 2, box.y + box.h / 2);
		await page.keyboard.press("Control+Shift+C");
		const copied = await waitFor(async () => {
			const c = await page.evaluate(() =>
			    navigator.clipboard.readText());
			return c !== "" ? c : false;
		}, "the copied selection in the clipboard", 10000);
		check(copied.trim() === "PASTED-42",
		    `copied ${JSON.stringify(copied)}, not PASTED-42`);
		// Ctrl-Shift-C took nothing from the shell: it still answers.
		await typeLine(page, "echo AFTER-$((1+1))",
		    (x) => hasLine(x, "AFTER-2"), "the shell after the copy");
		await t.shot();
		await terminate(page);
		return { sessionId: sid, copied };
	},

	// A login profile with PasswordResetRequired: the sign-in leads to
	// the change-password form and nothing else; then the fleet. The
	// old password no longer signs in; the header's Change password
	// changes it again.
	async passwordReset(t, p) {
		const { page } = t;
		await page.goto(t.base, { waitUntil: "load" });
		await page.waitForSelector("#signin #username");
		await page.fill("#username", p.user);
		await page.fill("#password", p.password);
		await page.click("#signin button[type=submit]");
		await page.waitForSelector("#change-password #old-password",
		    { timeout: 20000 });
		check(await page.$("#page") === null && await page.$(
		    "#user") === null, "pages shown before the new password");
		// Another page of the same session gets the form too.
		await page.reload({ waitUntil: "load" });
		await page.waitForSelector("#change-password #old-password",
		    { timeout: 20000 });
		await t.shot("form");
		const fill = async (o, n, c) => {
			await page.fill("#old-password", o);
			await page.fill("#new-password", n);
			await page.fill("#confirm-password", c);
			await page.click("#change-password button[type=submit]");
		};
		await fill(p.password, p.newPassword, p.newPassword + "x");
		const mismatch = await errorText(page, "the mismatch message");
		check(/do not match/.test(mismatch), `mismatch: ${mismatch}`);
		await page.evaluate(() => document.querySelectorAll(".error")
		    .forEach((e) => e.remove()));
		await fill("Wr0ng-Old-Pw!", p.newPassword, p.newPassword);
		const wrong = await errorText(page, "the wrong-password message");
		check(/AccessDenied/.test(wrong), `wrong old password: ${wrong}`);
		await page.evaluate(() => document.querySelectorAll(".error")
		    .forEach((e) => e.remove()));
		await fill(p.password, p.newPassword, p.newPassword);
		await page.waitForFunction((u) => document.getElementById(
		    "user")?.textContent?.startsWith(u), p.user,
		    { timeout: 20000 });
		const row = "#instance-table " +
		    `tr[data-instance="${p.instanceId}"]`;
		await page.waitForSelector(row, { timeout: 20000 });
		await t.shot();
		await page.click("#signout");
		await page.waitForSelector("#signin #username");
		await page.fill("#username", p.user);
		await page.fill("#password", p.password);
		await page.click("#signin button[type=submit]");
		const old = await errorText(page, "the old password's refusal");
		check(old.includes("AuthenticationFailed"),
		    `old password: ${old}`);
		await signIn(t, p.user, p.newPassword);
		await page.waitForSelector(row, { timeout: 20000 });
		// Signed in: the header's link changes the password again.
		await page.click("#change-password-link");
		await page.waitForSelector("#change-password #old-password");
		await fill(p.newPassword, p.thirdPassword, p.thirdPassword);
		await page.waitForSelector("#password-changed",
		    { timeout: 20000 });
		return { changed: await page.textContent("#password-changed") };
	},
};
