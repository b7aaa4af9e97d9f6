// The few Node built-ins the unit tests use, declared here so the type
// check needs no @types/node package.
declare module "node:assert" {
	interface Assert {
		(v: unknown, msg?: string): asserts v;
		ok(v: unknown, msg?: string): asserts v;
		equal(a: unknown, b: unknown, msg?: string): void;
		notEqual(a: unknown, b: unknown, msg?: string): void;
		deepEqual(a: unknown, b: unknown, msg?: string): void;
		match(s: string, re: RegExp, msg?: string): void;
		throws(fn: () => unknown, err?: unknown, msg?: string): void;
		rejects(p: Promise<unknown> | (() => Promise<unknown>),
		    err?: unknown, msg?: string): Promise<void>;
	}
	export const strict: Assert;
}
declare module "node:fs" {
	export function readFileSync(path: string, enc: "utf8"): string;
	export function writeFileSync(path: string, data: string): void;
}
declare module "node:path" {
	export function dirname(p: string): string;
	export function join(...p: string[]): string;
}
declare module "node:test" {
	export function test(name: string,
	    fn: () => void | Promise<void>): void;
}
declare module "node:url" {
	export function fileURLToPath(u: string | URL): string;
}
declare const process: { env: Record<string, string | undefined> };
