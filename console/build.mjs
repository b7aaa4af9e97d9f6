// Build the console: src/main.ts bundled (esbuild) into OUT/app.js, the
// page, its style sheet and the vendor style sheets copied next to it.
//   node build.mjs [--out DIR] [--sourcemap] [--tests]
// --tests bundles test/*.test.ts into build-tests/ for `node --test`.
// Nothing here fetches anything: the inputs are this directory and
// node_modules (npm ci).
import { build } from "esbuild";
import { copyFile, mkdir, readdir, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
let out = join(here, "dist");
let sourcemap = false;
let tests = false;

for (let i = 0; i < args.length; i++) {
	if (args[i] === "--out" && i + 1 < args.length)
		out = resolve(args[++i]);
	else if (args[i] === "--sourcemap")
		sourcemap = true;
	else if (args[i] === "--tests")
		tests = true;
	else {
		console.error("usage: node build.mjs [--out DIR] [--sourcemap] " +
		    "[--tests]");
		process.exit(2);
	}
}

// Style sheets the page links, from the npm packages: name in OUT, source.
const vendorCss = [
	["xterm.css", "node_modules/@xterm/xterm/css/xterm.css"],
	["asciinema-player.css",
	    "node_modules/asciinema-player/dist/bundle/asciinema-player.css"],
];

async function buildApp() {
	await mkdir(out, { recursive: true });
	// What an earlier build may have left that this one might not make.
	for (const f of ["app.js.map", "app.js.LEGAL.txt"])
		await rm(join(out, f), { force: true });
	await build({
		absWorkingDir: here,
		entryPoints: ["src/main.ts"],
		outfile: join(out, "app.js"),
		bundle: true,
		format: "esm",
		platform: "browser",
		target: "es2022",
		minify: true,
		sourcemap,
		legalComments: "linked",
		logLevel: "warning",
	});
	for (const f of ["index.html", "styles.css"])
		await copyFile(join(here, f), join(out, f));
	for (const [name, src] of vendorCss)
		await copyFile(join(here, src), join(out, name));
}

async function buildTests() {
	const dir = join(here, "test");
	let names = [];

	try {
		names = (await readdir(dir)).filter((n) => n.endsWith(".test.ts"));
	} catch (e) {
		if (e.code !== "ENOENT")
			throw e;
	}
	const outdir = join(here, "build-tests");
	await rm(outdir, { recursive: true, force: true });
	await mkdir(outdir, { recursive: true });
	if (names.length === 0)
		return;
	await build({
		absWorkingDir: here,
		entryPoints: names.map((n) => join("test", n)),
		outdir,
		outExtension: { ".js": ".mjs" },
		bundle: true,
		format: "esm",
		platform: "node",
		target: "node20",
		packages: "external",
		sourcemap: "inline",
		logLevel: "warning",
	});
}

try {
	if (tests)
		await buildTests();
	else
		await buildApp();
} catch (e) {
	console.error(`build.mjs: ${e.message}`);
	process.exit(1);
}
