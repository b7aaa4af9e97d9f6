// Run Command: a Command document (ListDocuments), its parameters
// (DescribeDocument), targets by instance id or by tag, SendCommand, then
// ListCommandInvocations once a second until every target is done, each
// target's output read with GetCommandInvocation.

import { allPages, clear, el, errorText, note, showError, sleep, ssm,
    table } from "./ui";

const DONE = ["Success", "Failed", "Cancelled", "TimedOut",
    "DeliveryTimedOut", "ExecutionTimedOut", "Undeliverable", "Terminated",
    "InvalidPlatform", "AccessDenied"];
const POLL_MS = 1000;
const POLL_MAX = 1800;		/* half an hour of polling at most */

interface Param {
	name: string;
	type: string;
	input: HTMLInputElement | HTMLTextAreaElement;
}

function statusClass(s: string): string {
	return s === "Success" ? "ok" : DONE.includes(s) ? "bad" : "warn";
}

export function runCommandPage(root: HTMLElement): () => void {
	let gone = false;
	let params: Param[] = [];
	const docSel = el("select", { id: "document" });
	const paramBox = el("div", { id: "parameters" });
	const byIds = el("input", { type: "radio", name: "targets",
	    id: "by-ids", value: "ids", checked: true });
	const byTag = el("input", { type: "radio", name: "targets",
	    id: "by-tag", value: "tag" });
	const ids = el("div", { id: "instance-choices", class: "choices" });
	const tag = el("input", { id: "target-tag",
	    placeholder: "Key=Value" });
	const comment = el("input", { id: "comment", maxlength: "100" });
	const run = el("button", { type: "submit", class: "primary", id: "run",
	    disabled: true }, "Run");
	const status = el("div", { id: "run-status", "aria-live": "polite" });
	const results = el("div", { id: "results" });

	async function loadDocs(): Promise<void> {
		try {
			const docs = await allPages("ListDocuments", {
			    Filters: [{ Key: "DocumentType",
			    Values: ["Command"] }], MaxResults: 50 },
			    "DocumentIdentifiers", 20);
			if (gone)
				return;
			const names = docs.map((d: any) => String(d.Name))
			    .sort();
			clear(docSel);
			for (const n of names)
				docSel.appendChild(el("option", { value: n },
				    n));
			if (names.includes("AWS-RunShellScript"))
				docSel.value = "AWS-RunShellScript";
			await loadParams();
			run.disabled = names.length === 0;
		} catch (e) {
			if (!gone)
				showError(status, e);
		}
	}

	async function loadParams(): Promise<void> {
		clear(paramBox);
		params = [];
		const name = docSel.value;
		if (name === "")
			return;
		try {
			const r = await ssm("DescribeDocument", { Name: name });
			if (gone || docSel.value !== name)
				return;
			for (const p of r.Document?.Parameters ?? []) {
				const type = String(p.Type ?? "String");
				const id = "param-" + String(p.Name);
				const dv = p.DefaultValue === undefined ? "" :
				    String(p.DefaultValue);
				const input = type === "StringList" ||
				    p.Name === "commands" ?
				    el("textarea", { id, rows: "4",
				    spellcheck: "false" }) :
				    el("input", { id });
				input.value = dv;
				params.push({ name: String(p.Name), type,
				    input });
				paramBox.appendChild(el("div",
				    { class: "field" },
				    el("label", { for: id }, String(p.Name) +
				    (type === "StringList" ? " (one per line)" :
				    "")), input,
				    p.Description ? el("small", {},
				    String(p.Description)) : null));
			}
		} catch (e) {
			if (!gone)
				showError(status, e);
		}
	}

	async function loadInstances(): Promise<void> {
		try {
			const list = await allPages(
			    "DescribeInstanceInformation", { MaxResults: 50 },
			    "InstanceInformationList");
			if (gone)
				return;
			clear(ids);
			for (const i of list) {
				const id = String(i.InstanceId);
				const box = el("input", { type: "checkbox",
				    value: id, id: "target-" + id });
				ids.appendChild(el("label", { class: "choice" },
				    box, " ", el("code", {}, id), " " +
				    String(i.ComputerName ?? "") + " (" +
				    String(i.PingStatus ?? "") + ")"));
			}
			if (list.length === 0)
				ids.appendChild(el("p", { class: "note" },
				    "No managed instances."));
		} catch (e) {
			if (!gone)
				ids.appendChild(el("p", { class: "error" },
				    errorText(e)));
		}
	}

	function request(): any {
		const body: any = { DocumentName: docSel.value,
		    Parameters: {} };
		for (const p of params) {
			const v = p.input.value;
			if (p.type === "StringList" || p.name === "commands") {
				const lines = v.split("\n").map((s) =>
				    s.replace(/\r$/, "")).filter((s) =>
				    s !== "");
				if (lines.length > 0)
					body.Parameters[p.name] = lines;
			} else if (v !== "") {
				body.Parameters[p.name] = [v];
			}
		}
		if (byTag.checked) {
			const t = tag.value.trim();
			const eq = t.indexOf("=");
			if (eq <= 0)
				throw new Error("Target tag: write Key=Value.");
			body.Targets = [{ Key: "tag:" + t.slice(0, eq).trim(),
			    Values: [t.slice(eq + 1).trim()] }];
		} else {
			const chosen = Array.from(ids.querySelectorAll<
			    HTMLInputElement>("input:checked")).map((b) =>
			    b.value);
			if (chosen.length === 0)
				throw new Error(
				    "Choose at least one instance.");
			body.InstanceIds = chosen;
		}
		if (comment.value.trim() !== "")
			body.Comment = comment.value.trim();
		return body;
	}

	async function output(cmd: string, inst: string,
	    into: HTMLElement): Promise<void> {
		try {
			const r = await ssm("GetCommandInvocation", {
			    CommandId: cmd, InstanceId: inst });
			clear(into);
			into.appendChild(el("pre", { class: "output",
			    "data-output": inst },
			    String(r.StandardOutputContent ?? "")));
			const err = String(r.StandardErrorContent ?? "");
			if (err !== "")
				into.appendChild(el("pre",
				    { class: "output stderr",
				    "data-stderr": inst }, err));
		} catch (e) {
			showError(into, e);
		}
	}

	async function watch(cmd: string): Promise<void> {
		const rows = new Map<string, { status: HTMLElement;
		    out: HTMLElement; done: boolean }>();
		const t = table("grid", ["Instance ID", "Status", "Output"],
		    []);
		t.id = "invocations";
		clear(results);
		results.append(el("p", { class: "meta" }, "Command ID: ",
		    el("code", { id: "command-id" }, cmd)), t);
		for (let n = 0; n < POLL_MAX && !gone; n++) {
			let list: any[];
			try {
				list = await allPages("ListCommandInvocations",
				    { CommandId: cmd, MaxResults: 50 },
				    "CommandInvocations", 20);
			} catch (e) {
				showError(status, e);
				return;
			}
			for (const inv of list) {
				const id = String(inv.InstanceId);
				const st = String(inv.Status ?? "");
				let r = rows.get(id);
				if (r === undefined) {
					r = { status: el("span", {
					    class: "badge" }), out: el("div"),
					    done: false };
					rows.set(id, r);
					const tr = el("tr",
					    { "data-instance": id },
					    el("td", {}, el("code", {}, id)),
					    el("td", {}, r.status),
					    el("td", {}, r.out));
					t.tBodies[0].appendChild(tr);
				}
				r.status.textContent = st;
				r.status.className = "badge " + statusClass(st);
				r.status.dataset.status = st;
				if (DONE.includes(st) && !r.done) {
					r.done = true;
					await output(cmd, id, r.out);
				}
			}
			// Done when every target so far is, and the command
			// itself says it is over (a tag's targets may still be
			// coming).
			if (list.length > 0 && Array.from(rows.values())
			    .every((r) => r.done)) {
				let over = true;
				try {
					const c = await ssm("ListCommands",
					    { CommandId: cmd });
					const st = String(
					    c.Commands?.[0]?.Status ?? "");
					over = st === "" || DONE.includes(st);
				} catch {
					/* not allowed to ask: the rows
					 * say enough */
				}
				if (over) {
					note(status, "");
					return;
				}
			}
			await sleep(POLL_MS);
		}
	}

	docSel.addEventListener("change", () => void loadParams());
	const form = el("form", { id: "run-form", class: "form" },
	    el("fieldset", {}, el("legend", {}, "Document"),
		el("div", { class: "field" },
		    el("label", { for: "document" }, "Command document"),
		    docSel),
		paramBox),
	    el("fieldset", {}, el("legend", {}, "Targets"),
		el("div", { class: "field check" }, byIds,
		    el("label", { for: "by-ids" }, "Choose instances")),
		ids,
		el("div", { class: "field check" }, byTag,
		    el("label", { for: "by-tag" }, "Instances with the tag")),
		el("div", { class: "field" }, tag)),
	    el("div", { class: "field" },
		el("label", { for: "comment" }, "Comment"), comment),
	    el("div", { class: "toolbar" }, run));
	form.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		let body: any;
		try {
			body = request();
		} catch (e) {
			showError(status, e);
			return;
		}
		run.disabled = true;
		note(status, "Sending...");
		try {
			const r = await ssm("SendCommand", body);
			const cmd = String(r.Command?.CommandId ?? "");
			note(status, "Running...");
			await watch(cmd);
		} catch (e) {
			if (!gone)
				showError(status, e);
		} finally {
			run.disabled = false;
		}
	});
	root.append(el("h1", {}, "Run Command"), form, status, results);
	void loadDocs();
	void loadInstances();
	return () => { gone = true; };
}
