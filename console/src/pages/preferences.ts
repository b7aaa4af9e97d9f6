// Session Manager preferences: the SSM-SessionManagerRunShell document.
// Read with GetDocument (as JSON); saved as `aws ssm update-document
// --document-version '$LATEST'` does, then made the default version so
// `aws ssm get-document` shows it; created when it does not exist yet.
// Inputs the page does not edit (CloudWatch ones, anything newer) and the
// rest of the document are kept as they were.

import { AwsError } from "../api/aws";
import { clear, el, note, showError, ssm } from "./ui";

const DOC = "SSM-SessionManagerRunShell";

function skeleton(): any {
	return {
		schemaVersion: "1.0",
		description: "Document to hold regional settings for " +
		    "Session Manager",
		sessionType: "Standard_Stream",
		inputs: {
			s3BucketName: "", s3KeyPrefix: "",
			s3EncryptionEnabled: true,
			cloudWatchLogGroupName: "",
			cloudWatchEncryptionEnabled: true,
			cloudWatchStreamingEnabled: true,
			idleSessionTimeout: "20", maxSessionDuration: "",
			kmsKeyId: "", runAsEnabled: false, runAsDefaultUser: "",
			shellProfile: { windows: "", linux: "" },
		},
	};
}

function bool(v: unknown): boolean {
	return v === true || v === "true";
}

function str(v: unknown): string {
	return v === undefined || v === null ? "" : String(v);
}

export function preferencesPage(root: HTMLElement): () => void {
	let gone = false;
	let doc: any = null;
	let exists = false;

	const f = {
		bucket: el("input", { id: "s3-bucket", name: "s3BucketName" }),
		prefix: el("input", { id: "s3-prefix", name: "s3KeyPrefix" }),
		s3enc: el("input", { id: "s3-encryption", type: "checkbox" }),
		kmsOn: el("input", { id: "kms-enabled", type: "checkbox" }),
		kms: el("input", { id: "kms-key", name: "kmsKeyId",
		    placeholder: "key id, key ARN or alias/NAME" }),
		idle: el("input", { id: "idle-timeout", type: "number",
		    min: "1", max: "60", required: true }),
		maxDur: el("input", { id: "max-duration", type: "number",
		    min: "1", max: "1440", placeholder: "no limit" }),
		runAs: el("input", { id: "run-as-enabled", type: "checkbox" }),
		runAsUser: el("input", { id: "run-as-user",
		    placeholder: "ssm-user" }),
		linux: el("textarea", { id: "shell-linux", rows: "4",
		    spellcheck: "false" }),
		windows: el("textarea", { id: "shell-windows", rows: "4",
		    spellcheck: "false" }),
	};
	const status = el("div", { id: "prefs-status", "aria-live": "polite" });
	const version = el("span", { id: "prefs-version", class: "muted" });
	const save = el("button", { type: "submit", class: "primary",
	    id: "save", disabled: true }, "Save");

	function row(label: string, input: HTMLElement,
	    help = ""): HTMLElement {
		return el("div", { class: "field" },
		    el("label", { for: input.id }, label), input,
		    help !== "" ? el("small", {}, help) : null);
	}
	function check(label: string, input: HTMLInputElement): HTMLElement {
		return el("div", { class: "field check" }, input,
		    el("label", { for: input.id }, label));
	}

	function fill(): void {
		const i = doc.inputs ?? {};
		f.bucket.value = str(i.s3BucketName);
		f.prefix.value = str(i.s3KeyPrefix);
		f.s3enc.checked = bool(i.s3EncryptionEnabled);
		f.kms.value = str(i.kmsKeyId);
		f.kmsOn.checked = f.kms.value !== "";
		f.idle.value = str(i.idleSessionTimeout) || "20";
		f.maxDur.value = str(i.maxSessionDuration);
		f.runAs.checked = bool(i.runAsEnabled);
		f.runAsUser.value = str(i.runAsDefaultUser);
		f.linux.value = str(i.shellProfile?.linux);
		f.windows.value = str(i.shellProfile?.windows);
		f.kms.disabled = !f.kmsOn.checked;
		f.runAsUser.disabled = !f.runAs.checked;
	}

	function collect(): any {
		const d = JSON.parse(JSON.stringify(doc));
		const i = d.inputs = d.inputs ?? {};
		i.s3BucketName = f.bucket.value.trim();
		i.s3KeyPrefix = f.prefix.value.trim();
		i.s3EncryptionEnabled = f.s3enc.checked;
		i.kmsKeyId = f.kmsOn.checked ? f.kms.value.trim() : "";
		i.idleSessionTimeout = f.idle.value.trim();
		i.maxSessionDuration = f.maxDur.value.trim();
		i.runAsEnabled = f.runAs.checked;
		i.runAsDefaultUser = f.runAs.checked ?
		    f.runAsUser.value.trim() : str(i.runAsDefaultUser);
		i.shellProfile = { ...(i.shellProfile ?? {}),
		    linux: f.linux.value, windows: f.windows.value };
		return d;
	}

	function invalid(d: any): string {
		const i = d.inputs;
		const idle = Number(i.idleSessionTimeout);
		if (!Number.isInteger(idle) || idle < 1 || idle > 60)
			return "Idle session timeout: a whole number of " +
			    "minutes from 1 to 60.";
		if (i.maxSessionDuration !== "") {
			const m = Number(i.maxSessionDuration);
			if (!Number.isInteger(m) || m < 1 || m > 1440)
				return "Maximum session duration: a whole " +
				    "number of minutes from 1 to 1440, or " +
				    "empty.";
		}
		if (f.kmsOn.checked && i.kmsKeyId === "")
			return "KMS encryption: name a key.";
		if (i.runAsEnabled && i.runAsDefaultUser === "")
			return "Run As: name the operating system user.";
		return "";
	}

	async function load(): Promise<void> {
		note(status, "Loading...");
		try {
			const d = await ssm("GetDocument", { Name: DOC,
			    DocumentFormat: "JSON" });
			doc = JSON.parse(String(d.Content));
			exists = true;
			version.textContent = "version " +
			    str(d.DocumentVersion);
		} catch (e) {
			if (!(e instanceof AwsError) ||
			    e.code !== "InvalidDocument") {
				if (!gone)
					showError(status, e);
				return;
			}
			doc = skeleton();
			exists = false;
			version.textContent = "not saved yet";
		}
		if (gone)
			return;
		fill();
		note(status, "");
		save.disabled = false;
	}

	async function store(): Promise<void> {
		const d = collect();
		const bad = invalid(d);
		if (bad !== "") {
			showError(status, new Error(bad));
			return;
		}
		save.disabled = true;
		note(status, "Saving...");
		const content = JSON.stringify(d, null, 2);
		try {
			let ver: string;
			if (exists) {
				const r = await ssm("UpdateDocument", {
				    Name: DOC, Content: content,
				    DocumentFormat: "JSON",
				    DocumentVersion: "$LATEST" });
				ver = str(r.DocumentDescription
				    ?.DocumentVersion);
				await ssm("UpdateDocumentDefaultVersion", {
				    Name: DOC, DocumentVersion: ver });
			} else {
				const r = await ssm("CreateDocument", {
				    Name: DOC, Content: content,
				    DocumentType: "Session",
				    DocumentFormat: "JSON" });
				ver = str(r.DocumentDescription
				    ?.DocumentVersion);
				exists = true;
			}
			doc = d;
			version.textContent = "version " + ver;
			clear(status);
			status.appendChild(el("p", { class: "ok", id: "saved" },
			    "Preferences saved (version " + ver + ")."));
		} catch (e) {
			if (e instanceof AwsError &&
			    e.code === "DuplicateDocumentContent")
				note(status, "No changes to save.");
			else
				showError(status, e);
		} finally {
			save.disabled = false;
		}
	}

	f.kmsOn.addEventListener("change", () => {
		f.kms.disabled = !f.kmsOn.checked;
	});
	f.runAs.addEventListener("change", () => {
		f.runAsUser.disabled = !f.runAs.checked;
	});
	const form = el("form", { id: "prefs", class: "form",
	    novalidate: true },
	    el("fieldset", {}, el("legend", {}, "S3 logging"),
		row("S3 bucket", f.bucket, "Session records are copied " +
		    "here as PREFIX/SESSION-ID.*; empty: kept on the server."),
		row("S3 key prefix", f.prefix),
		check("Require S3 encryption", f.s3enc)),
	    el("fieldset", {}, el("legend", {}, "KMS encryption"),
		check("Encrypt sessions with a KMS key", f.kmsOn),
		row("KMS key", f.kms)),
	    el("fieldset", {}, el("legend", {}, "Timeouts"),
		row("Idle session timeout (minutes)", f.idle),
		row("Maximum session duration (minutes)", f.maxDur)),
	    el("fieldset", {}, el("legend", {}, "Run As"),
		check("Run sessions as another operating system user",
		    f.runAs),
		row("Operating system user", f.runAsUser)),
	    el("fieldset", {}, el("legend", {}, "Shell profile"),
		row("Linux", f.linux), row("Windows", f.windows)),
	    el("div", { class: "toolbar" }, save, version));
	form.addEventListener("submit", (ev) => {
		ev.preventDefault();
		void store();
	});
	root.append(el("h1", {}, "Preferences"), status, form);
	void load();
	return () => { gone = true; };
}
