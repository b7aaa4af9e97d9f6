// Managed instances: DescribeInstanceInformation for the fleet, then
// ListTagsForResource per instance (a few at a time) for the tags and the
// Name tag. A filter "Key=Value" (or "Key") keeps the instances with that
// tag; "Start session" opens #/session/ID.

import { allPages, clear, el, errorText, note, showError, ssm,
    table } from "./ui";

interface Instance {
	id: string;
	computer: string;
	platform: string;
	agent: string;
	ping: string;
	tags: { Key: string; Value: string }[] | null;
	tagError: string;
}

const TAG_PARALLEL = 6;

async function loadTags(list: Instance[]): Promise<void> {
	let next = 0;

	async function worker(): Promise<void> {
		while (next < list.length) {
			const i = list[next++];
			try {
				const r = await ssm("ListTagsForResource", {
				    ResourceType: "ManagedInstance",
				    ResourceId: i.id });
				i.tags = Array.isArray(r.TagList) ?
				    r.TagList : [];
			} catch (e) {
				i.tags = null;
				i.tagError = errorText(e);
			}
		}
	}
	const ws: Promise<void>[] = [];
	for (let n = 0; n < TAG_PARALLEL; n++)
		ws.push(worker());
	await Promise.all(ws);
}

function nameOf(i: Instance): string {
	const t = i.tags?.find((x) => x.Key === "Name");
	return t !== undefined && t.Value !== "" ? t.Value : i.computer;
}

// "Key=Value", "Key" or "" (everything).
function matches(i: Instance, filter: string): boolean {
	const f = filter.trim();
	if (f === "")
		return true;
	const eq = f.indexOf("=");
	const key = (eq < 0 ? f : f.slice(0, eq)).trim();
	const val = eq < 0 ? null : f.slice(eq + 1).trim();
	return (i.tags ?? []).some((t) => t.Key === key &&
	    (val === null || t.Value === val));
}

function pingClass(p: string): string {
	return p === "Online" ? "ok" : p === "ConnectionLost" ? "bad" : "warn";
}

export function instancesPage(root: HTMLElement): () => void {
	let gone = false;
	let list: Instance[] = [];
	const filter = el("input", { id: "tag-filter", type: "search",
	    placeholder: "Tag filter: Key=Value", "aria-label": "Tag filter" });
	const refresh = el("button", { type: "button", id: "refresh" },
	    "Refresh");
	const status = el("div", { class: "status", "aria-live": "polite" });
	const out = el("div", { id: "instances" });

	function render(): void {
		clear(out);
		const shown = list.filter((i) => matches(i, filter.value));
		if (list.length === 0) {
			out.appendChild(el("p", { class: "note" },
			    "No managed instances."));
			return;
		}
		const rows = shown.map((i) => {
			const tags = i.tags === null ?
			    el("span", { class: "muted", title: i.tagError },
			    "(tags not readable)") :
			    el("span", { class: "tags" }, ...i.tags.map((t) =>
			    el("span", { class: "tag" }, t.Key + "=" +
			    t.Value)));
			const start = el("button", { type: "button",
			    class: "primary", "data-instance": i.id,
			    onclick: () => { location.hash = "#/session/" +
			    encodeURIComponent(i.id); } }, "Start session");
			return [nameOf(i), el("code", {}, i.id), i.platform,
			    i.agent, el("span", { class: "ping " +
			    pingClass(i.ping) }, i.ping), tags, start];
		});
		const t = table("grid", ["Name", "Instance ID", "Platform",
		    "Agent version", "Ping status", "Tags", ""], rows);
		t.id = "instance-table";
		out.appendChild(el("p", { class: "meta", id: "instance-count" },
		    shown.length === list.length ? list.length + " instance" +
		    (list.length === 1 ? "" : "s") : shown.length + " of " +
		    list.length + " instances"));
		for (const [n, tr] of Array.from(
		    t.tBodies[0].rows).entries())
			tr.dataset.instance = shown[n].id;
		out.appendChild(t);
		if (shown.length === 0)
			out.appendChild(el("p", { class: "note" },
			    "No instance has the tag " + filter.value.trim() +
			    "."));
	}

	async function load(): Promise<void> {
		refresh.disabled = true;
		note(status, "Loading...");
		try {
			const info = await allPages(
			    "DescribeInstanceInformation", { MaxResults: 50 },
			    "InstanceInformationList");
			list = info.map((x: any): Instance => ({
				id: String(x.InstanceId ?? ""),
				computer: String(x.ComputerName ?? x.Name ??
				    ""),
				platform: [x.PlatformName, x.PlatformVersion]
				    .filter((s) => s).join(" ") ||
				    String(x.PlatformType ?? ""),
				agent: String(x.AgentVersion ?? ""),
				ping: String(x.PingStatus ?? ""),
				tags: [],
				tagError: "",
			}));
			await loadTags(list);
			if (gone)
				return;
			note(status, "");
			render();
		} catch (e) {
			if (!gone)
				showError(status, e);
		} finally {
			refresh.disabled = false;
		}
	}

	filter.addEventListener("input", render);
	refresh.addEventListener("click", () => void load());
	root.append(el("h1", {}, "Managed instances"),
	    el("div", { class: "toolbar" }, filter, refresh), status, out);
	void load();
	return () => { gone = true; };
}
