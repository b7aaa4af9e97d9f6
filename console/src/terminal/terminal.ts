// A shell in the page: StartSession, the data channel (src/dc) and an
// xterm.js terminal. Output is written to xterm as bytes, never as HTML.
// The container carries the state for tests and pages:
// data-session-id, data-state=connecting|open|closed, data-encrypted=true.

import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";

import { awsCall } from "../api/aws";
import { utf8 } from "../dc/bytes";
import { sanitize } from "../dc/proto";
import { DataChannelSession, SessionState } from "../dc/session";

export interface TerminalOptions {
	documentName?: string;
	onStatus?: (s: string) => void;
	onClosed?: (reason: string) => void;
}

export interface TerminalHandle {
	terminate(): Promise<void>;
	dispose(): void;
	sessionId: string;
}

// As AWS's plugin prints it (spec 5.4).
export const KMS_NOTICE = "This session is encrypted using AWS KMS.";

function domState(s: SessionState): string {
	// "reconnecting" shows as connecting to the page.
	return s === "reconnecting" ? "connecting" : s;
}

export async function openTerminal(container: HTMLElement,
    instanceId: string, opts: TerminalOptions = {}): Promise<TerminalHandle> {
	const status = (s: string): void => {
		if (container.dataset.state === s)
			return;
		container.dataset.state = s;
		opts.onStatus?.(s);
	};
	delete container.dataset.state;
	status("connecting");
	container.dataset.encrypted = "false";
	const req: Record<string, unknown> = { Target: instanceId };
	if (opts.documentName)
		req.DocumentName = opts.documentName;
	let start: { SessionId: string; TokenValue: string; StreamUrl: string };
	try {
		start = await awsCall("ssm", "AmazonSSM.StartSession", req);
	} catch (e) {
		status("closed");
		throw e;
	}
	const sessionId = start.SessionId;
	container.dataset.sessionId = sessionId;

	const term = new Terminal({
		cursorBlink: true,
		scrollback: 5000,
		fontFamily: "monospace",
		// Links and HTML are xterm's own rendering; nothing the
		// agent sends becomes markup.
		allowProposedApi: false,
	});
	const fit = new FitAddon();
	term.loadAddon(fit);
	term.open(container);
	try {
		fit.fit();
	} catch {
		// not laid out yet: the observer below sizes it
	}
	const notice = (text: string): void => {
		const t = sanitize(text).replace(/\r?\n/g, "\r\n");
		term.write(utf8(`\r\n${t}\r\n`));
	};
	notice(`Starting session with SessionId: ${sessionId}`);

	let closed = false;
	const dc = new DataChannelSession({
		sessionId,
		streamUrl: start.StreamUrl,
		tokenValue: start.TokenValue,
		target: instanceId,
		generateDataKey: (body) => awsCall("kms",
		    "TrentService.GenerateDataKey", body),
		resumeSession: async () => {
			const r = await awsCall("ssm", "AmazonSSM.ResumeSession",
			    { SessionId: sessionId });
			return typeof r?.TokenValue === "string" &&
			    r.TokenValue !== "" ? r.TokenValue : null;
		},
		terminateSession: async () => {
			await awsCall("ssm", "AmazonSSM.TerminateSession",
			    { SessionId: sessionId });
		},
		onOutput: (b) => term.write(b),
		onNotice: notice,
		onEncrypted: () => { container.dataset.encrypted = "true"; },
		onState: (s) => status(domState(s)),
		onClosed: (reason) => {
			closed = true;
			notice(reason);
			status("closed");
			ro.disconnect();
			opts.onClosed?.(reason);
		},
	});

	const sendSize = (): void => dc.resize(term.cols, term.rows);
	term.onResize(sendSize);
	const ro = new ResizeObserver(() => {
		try {
			fit.fit();
		} catch {
			// hidden
		}
		sendSize();
	});
	ro.observe(container);

	// Keystrokes, Ctrl-C included (0x03 goes to the remote side), and
	// pastes (xterm's textarea receives them).
	term.onData((d) => dc.sendInput(utf8(d)));
	term.onBinary((d) => {
		const b = new Uint8Array(d.length);
		for (let i = 0; i < d.length; i++)
			b[i] = d.charCodeAt(i) & 255;
		dc.sendInput(b);
	});
	// Copy and paste by keyboard without taking Ctrl-C from the shell:
	// Ctrl-Shift-C / Ctrl-Shift-V (Cmd-C / Cmd-V on a Mac).
	term.attachCustomKeyEventHandler((ev) => {
		if (ev.type !== "keydown")
			return true;
		const k = ev.key.toLowerCase();
		const copy = (ev.ctrlKey && ev.shiftKey && k === "c") ||
		    (ev.metaKey && k === "c");
		const paste = (ev.ctrlKey && ev.shiftKey && k === "v");
		if (copy && term.hasSelection()) {
			void navigator.clipboard?.writeText(term.getSelection())
			    .catch(() => undefined);
			ev.preventDefault();
			return false;
		}
		if (copy)
			return !ev.metaKey;
		if (paste) {
			void navigator.clipboard?.readText()
			    .then((t) => term.paste(t)).catch(() => undefined);
			ev.preventDefault();
			return false;
		}
		return true;
	});

	if (term.cols > 0 && term.rows > 0)
		dc.resize(term.cols, term.rows);
	dc.start();
	term.focus();

	return {
		sessionId,
		async terminate(): Promise<void> {
			if (closed)
				return;
			await dc.terminate();
		},
		dispose(): void {
			ro.disconnect();
			dc.dispose();
			term.dispose();
		},
	};
}
