// Session history: DescribeSessions with State Active or History (session
// id, owner, status, dates, target, Output location), and the replay of
// a recorded session: AmazonSSM.GetSessionLog (docs/recording.md) read
// page by page as an asciicast and played with asciinema-player, or as
// the plain-text transcript.

import * as AsciinemaPlayer from "asciinema-player";
import { allPages, clear, el, fmtDate, note, showError, sleep, ssm,
    table } from "./ui";
import { AwsError } from "../api/aws";

const PAGE_BYTES = 1048576;
const MAX_LOG_BYTES = 64 * 1048576;	/* bigger records: porthole logs */
const NOT_READY_TRIES = 15;

function outputLocation(s: any, prefs: { bucket: string;
    prefix: string } | null): string {
	const u = s.OutputUrl ?? {};
	if (typeof u.S3OutputUrl === "string" && u.S3OutputUrl !== "")
		return u.S3OutputUrl;
	if (typeof u.CloudWatchOutputUrl === "string" &&
	    u.CloudWatchOutputUrl !== "")
		return u.CloudWatchOutputUrl;
	if (prefs !== null && prefs.bucket !== "") {
		const p = prefs.prefix.replace(/\/+$/, "");
		return "s3://" + prefs.bucket + "/" + (p !== "" ? p + "/" :
		    "") + s.SessionId + ".log";
	}
	return "";
}

async function prefsBucket(): Promise<{ bucket: string;
    prefix: string } | null> {
	try {
		const d = await ssm("GetDocument", {
		    Name: "SSM-SessionManagerRunShell",
		    DocumentFormat: "JSON" });
		const i = JSON.parse(d.Content).inputs ?? {};
		return { bucket: String(i.s3BucketName ?? ""),
		    prefix: String(i.s3KeyPrefix ?? "") };
	} catch {
		return null;
	}
}

export function historyPage(root: HTMLElement,
    params: string[]): () => void {
	let gone = false;
	const which = params[0] === "active" ? "Active" : "History";
	const tabs = el("div", { class: "tabs", role: "tablist" },
	    el("a", { href: "#/history/active", role: "tab",
	    id: "tab-active", class: which === "Active" ? "current" : "" },
	    "Active sessions"),
	    el("a", { href: "#/history", role: "tab", id: "tab-history",
	    class: which === "History" ? "current" : "" }, "Session history"));
	const refresh = el("button", { type: "button", id: "refresh" },
	    "Refresh");
	const status = el("div", { class: "status", "aria-live": "polite" });
	const out = el("div", { id: "sessions" });

	async function load(): Promise<void> {
		refresh.disabled = true;
		note(status, "Loading...");
		try {
			const [list, prefs] = await Promise.all([
			    allPages("DescribeSessions", { State: which,
			    MaxResults: 200 }, "Sessions", 20), prefsBucket()]);
			if (gone)
				return;
			list.sort((a: any, b: any) =>
			    Number(b.StartDate ?? 0) -
			    Number(a.StartDate ?? 0));
			note(status, list.length === 0 ? (which === "Active" ?
			    "No active sessions." : "No ended sessions.") : "");
			clear(out);
			if (list.length === 0)
				return;
			const rows = list.map((s: any) => {
				const sid = String(s.SessionId ?? "");
				const act = which === "Active" ?
				    el("button", { type: "button",
				    class: "danger", "data-terminate": sid,
				    onclick: async (ev: Event) => {
					const b = ev.target as
					    HTMLButtonElement;
					b.disabled = true;
					try {
						await ssm("TerminateSession",
						    { SessionId: sid });
						void load();
					} catch (e) {
						b.disabled = false;
						showError(status, e);
					}
				    } }, "Terminate") :
				    el("a", { class: "button",
				    href: "#/replay/" + encodeURIComponent(sid),
				    "data-replay": sid }, "Replay");
				return [el("code", {}, sid),
				    el("span", { class: "arn" },
				    String(s.Owner ?? "")),
				    el("span", { class: "badge" },
				    String(s.Status ?? "")),
				    String(s.Target ?? ""),
				    el("span", { class: "date" },
				    fmtDate(s.StartDate)),
				    el("span", { class: "date" },
				    fmtDate(s.EndDate)),
				    el("span", { class: "url" },
				    outputLocation(s, prefs)), act];
			});
			const t = table("grid", ["Session ID", "Owner",
			    "Status", "Target", "Start date", "End date",
			    "Output location", ""], rows);
			t.id = "session-table";
			for (const [n, tr] of Array.from(
			    t.tBodies[0].rows).entries())
				tr.dataset.session = String(
				    list[n].SessionId ?? "");
			out.appendChild(t);
		} catch (e) {
			if (!gone)
				showError(status, e);
		} finally {
			refresh.disabled = false;
		}
	}

	refresh.addEventListener("click", () => void load());
	root.append(el("h1", {}, "Sessions"), tabs,
	    el("div", { class: "toolbar" }, refresh), status, out);
	void load();
	return () => { gone = true; };
}

function b64bytes(s: string): Uint8Array {
	const bin = atob(s);
	const out = new Uint8Array(bin.length);
	for (let i = 0; i < bin.length; i++)
		out[i] = bin.charCodeAt(i);
	return out;
}

// The whole record in one format, page by page (at most MAX_LOG_BYTES:
// then truncated is set); while the agent is still delivering it
// (RecordNotReadyException) wait a little and ask again.
async function readLog(sid: string, format: string,
    onWait: (n: number) => void, isGone: () => boolean,
    truncated: { value: boolean } = { value: false }): Promise<string> {
	for (let tries = 0; ; tries++) {
		try {
			const parts: Uint8Array[] = [];
			let offset = 0, total = 0;
			truncated.value = false;
			for (let i = 0; ; i++) {
				if (i >= MAX_LOG_BYTES / PAGE_BYTES) {
					truncated.value = true;
					break;
				}
				const r = await ssm("GetSessionLog", {
				    SessionId: sid, Format: format,
				    Offset: offset, MaxBytes: PAGE_BYTES });
				const b = b64bytes(String(r.Content ?? ""));
				parts.push(b);
				total += b.length;
				if (typeof r.NextOffset !== "number" ||
				    b.length === 0)
					break;
				offset = r.NextOffset;
			}
			const all = new Uint8Array(total);
			let at = 0;
			for (const p of parts) {
				all.set(p, at);
				at += p.length;
			}
			return new TextDecoder("utf-8").decode(all);
		} catch (e) {
			if (!(e instanceof AwsError) ||
			    e.code !== "RecordNotReadyException" ||
			    tries + 1 >= NOT_READY_TRIES || isGone())
				throw e;
			onWait(tries + 1);
			await sleep(1000);
		}
	}
}

// The asciicast without its "m" (metadata) events: asciinema-player
// takes "m" for a marker, and ours carry JSON, not labels.
function castForPlayer(cast: string): string {
	const lines = cast.split("\n");
	const keep = [lines[0]];
	for (const l of lines.slice(1)) {
		if (l === "")
			continue;
		try {
			const ev = JSON.parse(l);
			if (Array.isArray(ev) && ev[1] === "m")
				continue;
		} catch {
			continue;
		}
		keep.push(l);
	}
	return keep.join("\n") + "\n";
}

export function replayPage(root: HTMLElement,
    params: string[]): () => void {
	const sid = params[0] ?? "";
	let gone = false;
	let player: AsciinemaPlayer.Player | null = null;
	const status = el("div", { id: "replay-status",
	    "aria-live": "polite" });
	const stage = el("div", { id: "player", class: "player" });
	const transcript = el("pre", { id: "transcript", class: "transcript",
	    hidden: true });
	const showText = el("button", { type: "button", id: "show-transcript" },
	    "Show transcript");

	showText.addEventListener("click", async () => {
		if (!transcript.hidden) {
			transcript.hidden = true;
			showText.textContent = "Show transcript";
			return;
		}
		showText.disabled = true;
		try {
			transcript.textContent = await readLog(sid, "log",
			    () => {}, () => gone);
			transcript.hidden = false;
			showText.textContent = "Hide transcript";
		} catch (e) {
			showError(status, e);
		} finally {
			showText.disabled = false;
		}
	});

	root.append(
	    el("div", { class: "pagehead" },
		el("h1", {}, "Replay of ", el("code", {}, sid)),
		el("span", { class: "spacer" }),
		el("a", { class: "button", href: "#/history" },
		    "Back to history")),
	    status, stage, el("div", { class: "toolbar" }, showText),
	    transcript);

	(async () => {
		note(status, "Loading the recording...");
		try {
			const cut = { value: false };
			const cast = await readLog(sid, "cast", (n) =>
			    note(status, "The record is still arriving " +
			    "(try " + n + ")..."), () => gone, cut);
			if (gone)
				return;
			note(status, cut.value ? "The record is longer than " +
			    "the page plays; it shows the first " +
			    MAX_LOG_BYTES / 1048576 + " MiB (all of it: " +
			    "porthole logs " + sid + " --cast)." : "");
			player = AsciinemaPlayer.create(
			    { data: castForPlayer(cast) }, stage,
			    { autoPlay: true, idleTimeLimit: 2,
			    fit: "width", controls: true });
			stage.dataset.state = "playing";
			player.addEventListener("ended", () => {
				stage.dataset.state = "ended";
			});
		} catch (e) {
			if (!gone) {
				showError(status, e);
				stage.dataset.state = "failed";
			}
		}
	})();

	return () => {
		gone = true;
		player?.dispose();
	};
}
