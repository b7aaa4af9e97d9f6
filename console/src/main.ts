// The console's app shell: the sign-in form, the header with the signed-in
// user and Sign out, and a hash router that mounts one page at a time
// (src/pages/*). Routes:
//   #/instances            managed instances (default)
//   #/session/INSTANCE-ID  a shell on one instance
//   #/history              session history (active and ended)
//   #/replay/SESSION-ID    a recorded session played back
//   #/preferences          Session Manager preferences
//   #/run                  Run Command
//   #/password             change the signed-in user's password
// A sign-in whose login profile requires a new password gets only the
// change-password form until the password is changed.

import { changePassword, currentSession, signIn,
    signOut } from "./api/auth";
import type { ConsoleSession } from "./api/auth";
import { AwsError } from "./api/aws";
import { historyPage, replayPage } from "./pages/history";
import { instancesPage } from "./pages/instances";
import { preferencesPage } from "./pages/preferences";
import { runCommandPage } from "./pages/runcommand";
import { sessionPage } from "./pages/session";
import { append, clear, el, errorText, Page,
    setSessionEndedHandler } from "./pages/ui";

interface Route {
	title: string;
	page: Page;
	nav?: string;		// the header link it lights up
}

const routes: { [name: string]: Route } = {
	instances: { title: "Managed instances", page: instancesPage,
	    nav: "instances" },
	session: { title: "Session", page: sessionPage, nav: "instances" },
	history: { title: "Session history", page: historyPage,
	    nav: "history" },
	replay: { title: "Replay", page: replayPage, nav: "history" },
	preferences: { title: "Preferences", page: preferencesPage,
	    nav: "preferences" },
	run: { title: "Run Command", page: runCommandPage, nav: "run" },
	password: { title: "Change password", page: passwordPage },
};

const navItems: [string, string][] = [
	["instances", "Managed instances"],
	["history", "Session history"],
	["preferences", "Preferences"],
	["run", "Run Command"],
];

let user: { UserName: string; Arn?: string; AccountId?: string } | null =
    null;
let cleanup: (() => void) | null = null;

const app = document.getElementById("app") as HTMLElement;

function leavePage(): void {
	if (cleanup !== null) {
		const f = cleanup;
		cleanup = null;
		try {
			f();
		} catch {
			/* a page's cleanup must not stop the next page */
		}
	}
}

function header(): HTMLElement {
	const nav = el("nav", { "aria-label": "Console" });
	for (const [name, label] of navItems)
		nav.appendChild(el("a", { href: "#/" + name, "data-nav": name },
		    label));
	const who = el("span", { id: "user", title: user?.Arn ?? "" },
	    user?.UserName ?? "");
	if (user?.AccountId)
		append(who, el("span", { class: "account" },
		    " @ " + user.AccountId));
	const pwlink = el("a", { id: "change-password-link",
	    href: "#/password" }, "Change password");
	const out = el("button", { id: "signout", type: "button",
	    onclick: () => void doSignOut() }, "Sign out");
	return el("header", { class: "top" },
	    el("a", { class: "brand", href: "#/instances" }, "porthole"),
	    nav, el("span", { class: "spacer" }), who, pwlink, out);
}

function route(): void {
	// Signed out, or held at the change-password form: no pages.
	if (user === null || document.getElementById("page") === null)
		return;
	const parts = location.hash.replace(/^#\/?/, "").split("/")
	    .map((p) => { try { return decodeURIComponent(p); }
	    catch { return ""; } });
	let name = parts[0] ?? "";
	if (!(name in routes))
		name = "instances";
	const r = routes[name];
	leavePage();
	for (const a of app.querySelectorAll<HTMLElement>("[data-nav]"))
		a.classList.toggle("current", a.dataset.nav === r.nav);
	const root = document.getElementById("page") as HTMLElement;
	clear(root);
	root.dataset.page = name;
	document.title = r.title + " - porthole";
	const done = r.page(root, parts.slice(1));
	cleanup = typeof done === "function" ? done : null;
}

function showApp(): void {
	clear(app);
	append(app, header(), el("main", { id: "page" }));
	route();
}

// The change-password form: the current password, the new one twice.
// done runs with the session once portholed took the new password.
function passwordForm(heading: string, note: string,
    done: (s: ConsoleSession) => void): HTMLElement {
	const field = (id: string, auto: string) => el("input", { id,
	    name: id, type: "password", autocomplete: auto, required: true });
	const oldpw = field("old-password", "current-password");
	const newpw = field("new-password", "new-password");
	const again = field("confirm-password", "new-password");
	const status = el("div", { id: "password-status",
	    "aria-live": "polite" });
	const submit = el("button", { type: "submit" }, "Change password");
	const form = el("form", { id: "change-password", class: "signin" },
	    el("h1", {}, heading));
	if (note !== "")
		form.appendChild(el("p", { class: "note" }, note));
	append(form,
	    el("label", { for: "old-password" }, "Current password"), oldpw,
	    el("label", { for: "new-password" }, "New password"), newpw,
	    el("label", { for: "confirm-password" }, "Confirm new password"),
	    again, submit, status);
	form.addEventListener("submit", (ev) => {
		ev.preventDefault();
		clear(status);
		if (newpw.value !== again.value) {
			status.appendChild(el("p", { class: "error",
			    role: "alert" }, "The new passwords do not match."));
			return;
		}
		submit.disabled = true;
		changePassword(oldpw.value, newpw.value).then((s) => {
			oldpw.value = newpw.value = again.value = "";
			done(s);
		}, (err) => {
			submit.disabled = false;
			status.appendChild(el("p", { class: "error",
			    role: "alert" }, errorText(err)));
		});
	});
	return form;
}

function passwordPage(root: HTMLElement): void {
	root.appendChild(passwordForm("Change password", "", () => {
		const status = el("p", { id: "password-changed",
		    class: "note" }, "Your password has been changed.");
		clear(root);
		root.appendChild(status);
	}));
}

// Signed in with a password that must be changed: nothing else first.
function showPasswordReset(): void {
	leavePage();
	clear(app);
	document.title = "Change password - porthole";
	const form = passwordForm("Change your password",
	    "Your password must be changed before you continue.", (s) => {
		user = s;
		showApp();
	});
	form.appendChild(el("button", { id: "signout", type: "button",
	    class: "link", onclick: () => void doSignOut() }, "Sign out"));
	app.appendChild(form);
	(form.querySelector("#old-password") as HTMLElement).focus();
}

// A session: the app, or first the new password it needs.
function enter(s: ConsoleSession): void {
	user = s;
	if (s.PasswordResetRequired === true)
		showPasswordReset();
	else
		showApp();
}

function showSignIn(message = ""): void {
	leavePage();
	user = null;
	clear(app);
	document.title = "Sign in - porthole";
	const name = el("input", { id: "username", name: "username",
	    autocomplete: "username", required: true });
	const pw = el("input", { id: "password", name: "password",
	    type: "password", autocomplete: "current-password",
	    required: true });
	const status = el("div", { id: "signin-status",
	    "aria-live": "polite" });
	const submit = el("button", { type: "submit" }, "Sign in");
	if (message !== "")
		status.appendChild(el("p", { class: "note" }, message));
	const form = el("form", { id: "signin", class: "signin" },
	    el("h1", {}, "Sign in to porthole"),
	    el("label", { for: "username" }, "IAM user name"), name,
	    el("label", { for: "password" }, "Password"), pw,
	    submit, status);
	form.addEventListener("submit", (ev) => {
		ev.preventDefault();
		submit.disabled = true;
		clear(status);
		signIn(name.value, pw.value).then((s) => {
			pw.value = "";
			enter(s);
		}, (err) => {
			submit.disabled = false;
			status.appendChild(el("p", { class: "error",
			    role: "alert" }, errorText(err)));
		});
	});
	app.appendChild(form);
	name.focus();
}

async function doSignOut(): Promise<void> {
	leavePage();
	try {
		await signOut();
	} catch {
		/* signed out locally either way */
	}
	showSignIn("You have signed out.");
}

// A call refused because the console session ended (401 from the
// credentials endpoint) sends the user back to the sign-in form.
function sessionEnded(): void {
	if (user !== null)
		showSignIn("Your console session has ended; sign in again.");
}
setSessionEndedHandler(sessionEnded);
window.addEventListener("unhandledrejection", (ev) => {
	const e = ev.reason;
	if (e instanceof AwsError && e.status === 401)
		sessionEnded();
});

window.addEventListener("hashchange", route);

async function start(): Promise<void> {
	try {
		const s = await currentSession();
		if (s !== null && s !== undefined) {
			enter(s);
			return;
		}
	} catch {
		/* not signed in */
	}
	showSignIn();
}

void start();
