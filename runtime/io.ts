/**
 * File and URL input/output: the one module in sigil that touches a file system or the network.
 * Every loader takes a {@link FileSource} (a path, a URL or the bytes themselves) and every saver
 * writes to a path (or returns bytes, through its `...Bytes` form).
 *
 * - Paths go through `node:fs/promises`, which Deno, Node and Bun all provide. It is imported on
 *   first use, and only where `Deno` or `process.versions.node` exists, so a browser bundle
 *   never loads it (and bundlers leave the guarded `import()` alone).
 * - `http:`, `https:`, `blob:` and `data:` URLs (as `URL` objects or strings) go through
 *   `fetch`; `file:` URLs through the file system where there is one, else `fetch`. In a page,
 *   where there is no file system, a plain path string is fetched relative to the page.
 * - Bytes are any `ArrayBuffer` or view of one (`Uint8Array`, `DataView`, a Node `Buffer`);
 *   only the bytes the view covers are read, whatever its byte offset.
 * - Writes go to a temporary name next to the target and are renamed into place, so a failed
 *   save never leaves a half-written file under the final name.
 *
 * Every failure is an {@link IOError} naming the path or URL.
 *
 * @example Reading bytes, whatever view they come in
 * ```ts
 * import assert from "node:assert";
 * import { readBytes } from "./io.ts";
 * const file = new Uint8Array([9, 9, 1, 2, 3]);
 * const view = new DataView(file.buffer, 2, 3);
 * assert.deepStrictEqual([...await readBytes(view, "data")], [1, 2, 3]);
 * ```
 *
 * @module
 */
import { FormatError, IOError } from "./errors.ts";

/** Bytes in any form: an `ArrayBuffer`, or a typed array, `DataView` or Node `Buffer` over one. */
export type Bytes = ArrayBuffer | ArrayBufferView;

/** Where a file is read from: a path, a URL (`http(s):`, `file:`, `blob:`, `data:`) or its bytes. */
export type FileSource = string | URL | Bytes;

/** Where a file is written: a path or a `file:` URL. */
export type FileTarget = string | URL;

/** The subset of `node:fs/promises` used here. */
interface Fs {
  readFile(path: string | URL): Promise<Uint8Array>;
  writeFile(path: string | URL, data: Uint8Array | string): Promise<void>;
  rename(from: string | URL, to: string | URL): Promise<void>;
  rm(path: string | URL, options?: { force?: boolean }): Promise<void>;
  mkdir(path: string | URL, options?: { recursive?: boolean }): Promise<unknown>;
  stat(path: string | URL): Promise<{ isFile(): boolean }>;
}

let fsLoad: Promise<Fs | undefined> | undefined;

/** True where a server-side runtime (Deno, Node, Bun) provides `node:` modules. */
function hasNodeModules(): boolean {
  const g = globalThis as { Deno?: unknown; process?: { versions?: { node?: string } } };
  return g.Deno !== undefined || typeof g.process?.versions?.node === "string";
}

/** `node:fs/promises`, or undefined where there is no file system (a browser). */
function fileSystem(): Promise<Fs | undefined> {
  return fsLoad ??= (async () => {
    if (!hasNodeModules()) return undefined;
    try {
      // Inside `try`: bundlers targeting browsers leave this import out instead of failing.
      return await import("node:fs/promises") as unknown as Fs;
    } catch {
      return undefined;
    }
  })();
}

/**
 * True for a value {@link readBytes} takes as bytes: an `ArrayBuffer` or any view of one.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { isBytes } from "./io.ts";
 * assert(isBytes(new Float32Array(2)) && isBytes(new ArrayBuffer(4)) && !isBytes("a.params"));
 * ```
 */
export function isBytes(value: unknown): value is Bytes {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value) ||
    (typeof SharedArrayBuffer !== "undefined" && value instanceof SharedArrayBuffer);
}

/**
 * A plain `Uint8Array` over exactly the bytes of `value` (a view, not a copy). It is never a
 * `Buffer` or other subclass, so its `slice` copies as the standard says.
 *
 * @example A Uint8Array at a byte offset keeps its offset
 * ```ts
 * import assert from "node:assert";
 * import { toUint8Array } from "./io.ts";
 * const whole = new Uint8Array([0, 1, 2, 3]);
 * const part = toUint8Array(whole.subarray(1, 3));
 * assert(part.byteOffset === 1 && part.length === 2 && part.constructor === Uint8Array);
 * ```
 */
export function toUint8Array(value: Bytes, what = "bytes"): Uint8Array {
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (isBytes(value)) return new Uint8Array(value);
  throw new IOError(
    `${what}: expected bytes (an ArrayBuffer, typed array, DataView or Buffer), got ${
      describe(value)
    }`,
    what,
  );
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return (value as object).constructor?.name ?? "an object";
  return typeof value;
}

/** A string that names a URL rather than a path. */
const URL_STRING = /^(?:https?|file|blob|data):/i;

/**
 * How a source is named in messages: the path, the URL, or `fallback` for bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { sourceName } from "./io.ts";
 * assert(sourceName(new URL("https://example.com/a.json")) === "https://example.com/a.json");
 * assert(sourceName(new Uint8Array(1), "net.params") === "net.params");
 * ```
 */
export function sourceName(source: FileSource, fallback = "<bytes>"): string {
  if (typeof source === "string") return source;
  if (source instanceof URL) return source.href;
  return fallback;
}

function checkPath(path: string, what: string): void {
  if (path === "") throw new IOError(`${what}: the path is empty`, path);
  if (path.includes("\0")) {
    throw new IOError(
      `${what} '${path.replaceAll("\0", "\\0")}': a path cannot hold a NUL byte`,
      path,
    );
  }
}

function reason(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  if (code === "ENOENT") return "no such file or directory";
  if (code === "EISDIR") return "is a directory, not a file";
  if (code === "ENOTDIR") return "a part of the path is not a directory";
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  const name = (e as { name?: unknown })?.name;
  if (name === "NotCapable" || name === "PermissionDenied") {
    return `permission denied (${(e as Error).message})`;
  }
  return e instanceof Error ? e.message : String(e);
}

async function fetchBytes(url: URL, what: string): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new IOError(`cannot fetch ${what} '${url.href}': ${reason(e)}`, url.href, { cause: e });
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new IOError(
      `cannot fetch ${what} '${url.href}': HTTP ${res.status} ${res.statusText}`.trimEnd(),
      url.href,
    );
  }
  try {
    return new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw new IOError(`cannot fetch ${what} '${url.href}': ${reason(e)}`, url.href, { cause: e });
  }
}

/** The URL a string or URL names, or undefined for a plain path. */
function asUrl(source: string | URL): URL | undefined {
  if (source instanceof URL) return source;
  if (!URL_STRING.test(source)) return undefined;
  try {
    return new URL(source);
  } catch {
    return undefined;
  }
}

/**
 * Reads the bytes of a file, URL or byte view. `what` names the file's role in messages
 * ("parameter file"). Bytes come back as a plain `Uint8Array` view (see {@link toUint8Array}).
 *
 * @example A missing file is an IOError naming it
 * ```ts
 * import assert from "node:assert";
 * import { IOError } from "./errors.ts";
 * import { readBytes } from "./io.ts";
 * await assert.rejects(readBytes("no/such/file.params", "parameter file"), (e) =>
 *   e instanceof IOError && e.path === "no/such/file.params");
 * ```
 */
export async function readBytes(source: FileSource, what = "file"): Promise<Uint8Array> {
  if (typeof source !== "string" && !(source instanceof URL)) return toUint8Array(source, what);
  const url = asUrl(source);
  if (url && url.protocol !== "file:") return await fetchBytes(url, what);
  const fs = await fileSystem();
  if (!fs) {
    if (url) return await fetchBytes(url, what);
    const base = (globalThis as { location?: { href?: string } }).location?.href;
    if (base) return await fetchBytes(new URL(source as string, base), what);
    throw new IOError(
      `cannot read ${what} '${source}': there is no file system here; pass a URL or the bytes`,
      String(source),
    );
  }
  const name = url?.href ?? (source as string);
  if (!url) checkPath(name, what);
  try {
    return toUint8Array(await fs.readFile(url ?? name), what);
  } catch (e) {
    throw new IOError(`cannot read ${what} '${name}': ${reason(e)}`, name, { cause: e });
  }
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads a UTF-8 text file from a path, URL or bytes (a string source is a path or URL, never
 * the text itself). Invalid UTF-8 is a {@link FormatError}.
 *
 * @example Text from bytes
 * ```ts
 * import assert from "node:assert";
 * import { readText } from "./io.ts";
 * assert(await readText(new TextEncoder().encode("{}")) === "{}");
 * ```
 */
export async function readText(source: FileSource, what = "file"): Promise<string> {
  const bytes = await readBytes(source, what);
  try {
    return UTF8.decode(bytes);
  } catch (e) {
    throw new FormatError(`${sourceName(source)}: ${what} is not valid UTF-8`, undefined, {
      cause: e,
    });
  }
}

function targetOf(target: FileTarget, what: string): string | URL {
  if (target instanceof URL || (typeof target === "string" && URL_STRING.test(target))) {
    const url = asUrl(target);
    if (!url || url.protocol !== "file:") {
      throw new IOError(
        `cannot write ${what} '${String(target)}': only paths and file: URLs can be written`,
        String(target),
      );
    }
    return url;
  }
  if (typeof target !== "string") {
    throw new IOError(`${what}: expected a path or a file: URL, got ${describe(target)}`, "");
  }
  checkPath(target, what);
  return target;
}

function tempOf(target: string | URL): string | URL {
  const suffix = `.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`;
  return target instanceof URL ? new URL(target.href + suffix) : target + suffix;
}

/** One file of {@link writeFiles}. */
export interface FileWrite {
  /** Where it goes. */
  readonly target: FileTarget;
  /** Its contents (text is written as UTF-8). */
  readonly data: Uint8Array | string;
  /** Its role in messages ("symbol file"). */
  readonly what?: string;
}

/**
 * Writes files as one step: every file goes to a temporary name first and only when all are
 * written are they renamed into place, so a failure (a missing directory, a full disk) leaves
 * neither a half-written file nor a new file without its partner. Temporary files are removed
 * on failure.
 *
 * @example Writing a pair
 * ```ts
 * import assert from "node:assert";
 * import { readText, writeFiles } from "./io.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFiles([
 *   { target: `${dir}/a.txt`, data: "a" },
 *   { target: `${dir}/b.txt`, data: new TextEncoder().encode("b") },
 * ]);
 * assert(await readText(`${dir}/b.txt`) === "b");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFiles(files: readonly FileWrite[]): Promise<void> {
  const targets = files.map((f) => targetOf(f.target, f.what ?? "file"));
  const fs = await fileSystem();
  if (!fs) {
    throw new IOError(
      `cannot write ${files[0]?.what ?? "file"} '${
        String(files[0]?.target)
      }': there is no file system here; use the form that returns bytes`,
      String(files[0]?.target ?? ""),
    );
  }
  const temps: (string | URL)[] = [];
  let current = 0;
  try {
    for (; current < files.length; current++) {
      const tmp = tempOf(targets[current]);
      temps.push(tmp);
      await fs.writeFile(tmp, files[current].data);
    }
    for (current = 0; current < files.length; current++) {
      await fs.rename(temps[current], targets[current]);
    }
  } catch (e) {
    await Promise.all(temps.map((t) => fs.rm(t, { force: true }).catch(() => {})));
    const f = files[current];
    const name = String(f.target instanceof URL ? f.target.href : f.target);
    throw new IOError(`cannot write ${f.what ?? "file"} '${name}': ${reason(e)}`, name, {
      cause: e,
    });
  }
}

/**
 * Writes one file through a temporary name (see {@link writeFiles}).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { readBytes, writeFile } from "./io.ts";
 * const path = await Deno.makeTempFile();
 * await writeFile(path, new Uint8Array([1, 2]));
 * assert((await readBytes(path)).length === 2);
 * await Deno.remove(path);
 * ```
 */
export async function writeFile(
  target: FileTarget,
  data: Uint8Array | string,
  what = "file",
): Promise<void> {
  await writeFiles([{ target, data, what }]);
}

/**
 * True when `path` names an existing regular file (false when it does not exist).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { isFile } from "./io.ts";
 * assert(!(await isFile("no/such/file")));
 * ```
 */
export async function isFile(path: string): Promise<boolean> {
  checkPath(path, "file");
  const fs = await fileSystem();
  if (!fs) return false;
  try {
    return (await fs.stat(path)).isFile();
  } catch (e) {
    if ((e as { code?: unknown })?.code === "ENOENT") return false;
    throw new IOError(`cannot look at '${path}': ${reason(e)}`, path, { cause: e });
  }
}

/**
 * Creates a directory and its parents (no error when it exists).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { isFile, makeDirectory, writeFile } from "./io.ts";
 * const dir = await Deno.makeTempDir();
 * await makeDirectory(`${dir}/a/b`);
 * await writeFile(`${dir}/a/b/c`, "c");
 * assert(await isFile(`${dir}/a/b/c`));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function makeDirectory(path: string): Promise<void> {
  checkPath(path, "directory");
  const fs = await fileSystem();
  if (!fs) throw new IOError(`cannot create '${path}': there is no file system here`, path);
  try {
    await fs.mkdir(path, { recursive: true });
  } catch (e) {
    throw new IOError(`cannot create directory '${path}': ${reason(e)}`, path, { cause: e });
  }
}

/**
 * An environment variable, or undefined when unset or when the runtime does not give access
 * (a browser, or Deno without `--allow-env`).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { envVar } from "./io.ts";
 * assert(envVar("SIGIL_SURELY_UNSET_VARIABLE") === undefined);
 * ```
 */
export function envVar(name: string): string | undefined {
  const g = globalThis as {
    Deno?: { env: { get(n: string): string | undefined } };
    process?: { env?: Record<string, string | undefined> };
  };
  try {
    if (g.Deno) return g.Deno.env.get(name);
    return g.process?.env?.[name];
  } catch {
    return undefined;
  }
}
