// A shell on one instance: the terminal module (src/terminal) opens the
// session (StartSession, the data channel, KMS when the preferences name
// a key) inside a container and marks it with data-state,
// data-session-id and data-encrypted; this page shows those, the KMS
// banner, and a Terminate button. Leaving the page ends the session.

import { openTerminal } from "../terminal/terminal";
import { clear, el, errorText, showError } from "./ui";

const BANNER = "This session is encrypted using AWS KMS.";
const ENDED = ["closed", "terminated", "failed", "ended", "exited"];

export function sessionPage(root: HTMLElement,
    params: string[]): () => void {
	const instanceId = params[0] ?? "";
	let handle: { terminate(): unknown; dispose(): unknown;
	    sessionId?: string } | null = null;
	let gone = false;

	const state = el("span", { id: "session-state", class: "badge" },
	    "connecting");
	const sid = el("code", { id: "session-id" });
	const banner = el("p", { id: "kms-banner", class: "banner",
	    hidden: true }, BANNER);
	const status = el("div", { id: "session-status",
	    "aria-live": "polite" });
	const term = el("div", { id: "terminal", class: "terminal" });
	const stop = el("button", { id: "terminate", type: "button",
	    class: "danger", disabled: true }, "Terminate");

	function sync(): void {
		const s = term.dataset.state ?? "";
		if (s !== "")
			state.textContent = s;
		state.className = "badge " + (ENDED.includes(s) ? "warn" :
		    s === "open" || s === "connected" ? "ok" : "");
		sid.textContent = term.dataset.sessionId ?? "";
		banner.hidden = term.dataset.encrypted !== "true";
		if (ENDED.includes(s))
			stop.disabled = true;
	}
	const mo = new MutationObserver(sync);
	mo.observe(term, { attributes: true, attributeFilter: ["data-state",
	    "data-session-id", "data-encrypted"] });

	stop.addEventListener("click", async () => {
		if (handle === null)
			return;
		stop.disabled = true;
		try {
			await handle.terminate();
		} catch (e) {
			stop.disabled = false;
			showError(status, e);
		}
	});

	root.append(
	    el("div", { class: "pagehead" },
		el("h1", {}, "Session on ", el("code", {}, instanceId)),
		el("span", { class: "spacer" }),
		el("a", { class: "button", href: "#/instances" },
		    "Managed instances"), stop),
	    el("p", { class: "meta" }, "Session ID: ", sid, " ", state),
	    banner, status, term);

	(async () => {
		try {
			const h = await openTerminal(term, instanceId, {});
			if (gone) {
				void Promise.resolve(h.terminate()).catch(
				    () => {});
				h.dispose();
				return;
			}
			handle = h;
			if (h.sessionId)
				sid.textContent = h.sessionId;
			stop.disabled = false;
			sync();
		} catch (e) {
			if (gone)
				return;
			state.textContent = "failed";
			state.className = "badge bad";
			showError(status, e);
			clear(term);
			term.hidden = true;
			term.dataset.state = "failed";
			term.dataset.error = errorText(e);
		}
	})();

	return () => {
		gone = true;
		mo.disconnect();
		if (handle !== null) {
			const h = handle;
			handle = null;
			if (!ENDED.includes(term.dataset.state ?? ""))
				void Promise.resolve(h.terminate()).catch(
				    () => {});
			h.dispose();
		}
	};
}
