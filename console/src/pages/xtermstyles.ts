// xterm.js's DOM renderer writes its theme colours and cell dimensions
// into <style> elements it creates at run time; the page's CSP
// (style-src 'self', no 'unsafe-inline') rightly ignores those. Rather
// than loosen the policy for the whole page, the text of <style>
// elements inside an xterm terminal (and only there) is mirrored into
// constructed style sheets (document.adoptedStyleSheets), which CSP does
// not govern. The text is xterm's own, built from its theme options;
// nothing from the session reaches it.

const sheets = new Map<HTMLStyleElement, CSSStyleSheet>();

function ours(n: Node | null): n is HTMLStyleElement {
	return n instanceof HTMLStyleElement && n.closest(".xterm") !== null;
}

function update(s: HTMLStyleElement): void {
	let sh = sheets.get(s);
	if (sh === undefined) {
		sh = new CSSStyleSheet();
		sheets.set(s, sh);
	}
	try {
		sh.replaceSync(s.textContent ?? "");
	} catch {
		/* a rule the browser does not take: keep the old ones */
	}
}

function adopt(): void {
	for (const s of Array.from(sheets.keys()))
		if (!s.isConnected)
			sheets.delete(s);
	document.adoptedStyleSheets = Array.from(sheets.values());
}

export function mirrorXtermStyles(): void {
	const mo = new MutationObserver((records) => {
		let changed = false;
		for (const r of records) {
			const t = r.type === "characterData" ?
			    r.target.parentNode : r.target;
			if (ours(t)) {
				update(t);
				changed = true;
			}
			for (const n of Array.from(r.addedNodes)) {
				if (ours(n)) {
					update(n);
					changed = true;
				} else if (n instanceof Element) {
					for (const s of Array.from(
					    n.querySelectorAll("style")))
						if (ours(s)) {
							update(s);
							changed = true;
						}
				}
			}
			if (r.removedNodes.length > 0 && sheets.size > 0)
				changed = true;
		}
		if (changed)
			adopt();
	});
	mo.observe(document, { subtree: true, childList: true,
	    characterData: true });
}
