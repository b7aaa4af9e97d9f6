// Runs one browser scenario of the console against a running portholed:
//   node tests/console/run.mjs SCENARIO
// Environment:
//   PORTHOLE_CONSOLE_URL        https://127.0.0.1:PORT (console at /console/)
//   PORTHOLE_CONSOLE_ARTIFACTS  directory for screenshots (SCENARIO.png)
//   PORTHOLE_CONSOLE_PARAMS     JSON: user, password, instance id, ...
//                               (in the environment, not argv: passwords)
// Prints one line "RESULT <json>" and exits 0, or prints the failure, the
// page's console log and a screenshot's path and exits 1. The whole run
// is bounded (PORTHOLE_CONSOLE_TIMEOUT seconds, default 240).

import { launch } from "./lib.mjs";
import { scenarios } from "./scenarios.mjs";

const name = process.argv[2] ?? "";
const url = process.env.PORTHOLE_CONSOLE_URL ?? "";
const artifacts = process.env.PORTHOLE_CONSOLE_ARTIFACTS ??
    "build/test-artifacts/console";
const limit = Number(process.env.PORTHOLE_CONSOLE_TIMEOUT ?? "240");

if (!(name in scenarios) || url === "") {
	console.error("usage: PORTHOLE_CONSOLE_URL=... node run.mjs " +
	    Object.keys(scenarios).join("|"));
	process.exit(2);
}
let params;
try {
	params = JSON.parse(process.env.PORTHOLE_CONSOLE_PARAMS ?? "{}");
} catch (e) {
	console.error(`PORTHOLE_CONSOLE_PARAMS is not JSON: ${e.message}`);
	process.exit(2);
}

const guard = setTimeout(() => {
	console.error(`${name}: still running after ${limit} s, giving up`);
	process.exit(3);
}, limit * 1000);

let t = null;
let rc = 1;
try {
	// Screenshots are named after the scenario, or params.label when
	// one scenario serves several tests.
	t = await launch({ url, artifacts, name: typeof params.label ===
	    "string" && /^[A-Za-z0-9_-]+$/.test(params.label) ?
	    params.label : name });
	const result = await scenarios[name](t, params);
	// The page works under its CSP: nothing it needs is refused.
	const csp = t.log.filter((l) => /Content Security Policy/i.test(l));
	if (csp.length > 0)
		throw new Error("the page hit its Content-Security-Policy:\n" +
		    csp.join("\n"));
	console.log("RESULT " + JSON.stringify(result ?? {}));
	rc = 0;
} catch (e) {
	console.error(`${name} failed: ${e?.stack ?? e}`);
	if (t !== null) {
		try {
			console.error("screenshot: " + await t.shot("failed"));
		} catch (e2) {
			console.error(`no screenshot: ${e2.message}`);
		}
		try {
			console.error("page URL: " + t.page.url());
			const text = await t.page.evaluate(() =>
			    document.body.innerText);
			console.error("page text:\n" + text.slice(0, 4000));
		} catch {
			/* the page is gone */
		}
		console.error("page log:\n" + t.log.slice(-60).join("\n"));
	}
} finally {
	if (t !== null)
		await t.close().catch(() => {});
	clearTimeout(guard);
}
process.exit(rc);
