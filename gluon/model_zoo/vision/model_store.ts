/**
 * Pretrained weights for the model zoo. Building a model is synchronous; loading weights is file
 * or network IO and therefore asynchronous, so the factories (`resnet18_v1()`, ...) only build,
 * and {@link loadPretrained} (or `loadModel`) fills the weights from a local `.params` file or a
 * URL. Downloads are cached on disk under `$SIGIL_HOME/models` (default `~/.sigil/models`),
 * keyed by a hash of the URL, so a URL is fetched once.
 *
 * @module
 */
import { SigilError } from "../../../runtime/errors.ts";
import { envVar, isFile, makeDirectory, readBytes, writeFile } from "../../../runtime/io.ts";
import type { Block } from "../../block.ts";

/** Options shared by every model-zoo factory. */
export interface ModelOptions {
  /** Number of output classes (1000, as ImageNet). */
  classes?: number;
  /**
   * Factories only build: they are synchronous, and weights are read asynchronously. Leave this
   * out (or `false`, as MXNet's default) and use `await loadModel(name, { pretrained })` or
   * `await loadPretrained(net, source)` to load weights.
   */
  pretrained?: false;
}

/** Where pretrained weights come from: a local path, or an `http(s):` / `file:` URL. */
export type PretrainedSource = string | URL;

/** Options of {@link fetchPretrained} and {@link loadPretrained}. */
export interface PretrainedOptions {
  /** Cache directory for downloads (`$SIGIL_HOME/models`, else `~/.sigil/models`). */
  cacheDir?: string;
  /** Expected SHA-256 of the file (hex); a download that does not match is rejected. */
  sha256?: string;
  /** Download again even when the file is cached. */
  refresh?: boolean;
  /** Accept a file that lacks some of the model's parameters (false). */
  allowMissing?: boolean;
  /** Accept a file with parameters the model lacks (false). */
  ignoreExtra?: boolean;
}

/** Throws when a synchronous factory is asked for pretrained weights. */
export function checkNoPretrained(model: string, options: { pretrained?: unknown }): void {
  const p = options.pretrained;
  if (p === undefined || p === false) return;
  throw new SigilError(
    `${model}: model factories are synchronous and do not load weights; use ` +
      `\`await vision.loadModel("${model}", { pretrained: <path or URL> })\` or ` +
      "`await vision.loadPretrained(net, <path or URL>)`",
  );
}

/** Validates a class count. */
export function checkClasses(model: string, classes: number): number {
  if (!Number.isInteger(classes) || classes < 1) {
    throw new SigilError(`${model}: classes must be a positive integer, got ${classes}`);
  }
  return classes;
}

function asUrl(source: PretrainedSource): URL | undefined {
  if (source instanceof URL) return source;
  if (typeof source !== "string") {
    throw new SigilError(`pretrained must be a path or a URL, got ${typeof source}`);
  }
  return /^(https?|file):\/\//i.test(source) ? new URL(source) : undefined;
}

function defaultCacheDir(): string {
  const sigilHome = envVar("SIGIL_HOME");
  if (sigilHome) return `${sigilHome}/models`;
  const home = envVar("HOME") ?? envVar("USERPROFILE");
  if (home) return `${home}/.sigil/models`;
  throw new SigilError(
    "no SIGIL_HOME or HOME (or no access to them) to put the model cache in; pass cacheDir",
  );
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The cache file name for a URL: a hash of the URL, then the (sanitized) file name. */
async function cacheName(url: URL): Promise<string> {
  const hash = (await sha256Hex(new TextEncoder().encode(url.href))).slice(0, 16);
  const last = safeDecode(url.pathname.split("/").pop() ?? "").replace(
    /[^A-Za-z0-9._-]/g,
    "_",
  ).slice(-100);
  return `${hash}-${last && !/^\.+$/.test(last) ? last : "model.params"}`;
}

/**
 * Resolves pretrained weights to a local file: a path or `file:` URL is returned as is; an
 * `http(s):` URL is downloaded once into the cache (written to a temporary name, then renamed,
 * so an interrupted download never leaves a half file under the final name).
 *
 * @example A local file needs no download
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(await modelZoo.vision.fetchPretrained("weights.params") === "weights.params");
 * ```
 */
export async function fetchPretrained(
  source: PretrainedSource,
  options: PretrainedOptions = {},
): Promise<string> {
  const url = asUrl(source);
  if (!url) return source as string;
  if (url.protocol === "file:") {
    const path = safeDecode(url.pathname);
    return /^\/[A-Za-z]:\//.test(path) ? path.slice(1) : path;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new SigilError(`pretrained URL must be http(s) or file, got ${url.protocol}`);
  }
  const dir = options.cacheDir ?? defaultCacheDir();
  const path = `${dir}/${await cacheName(url)}`;
  if (!options.refresh && await isFile(path)) return path;
  const bytes = await readBytes(url, "pretrained weights");
  if (options.sha256 !== undefined) {
    const got = await sha256Hex(bytes);
    if (got !== options.sha256.toLowerCase()) {
      throw new SigilError(
        `download of ${url.href} has SHA-256 ${got}, expected ${options.sha256}`,
      );
    }
  }
  await makeDirectory(dir);
  await writeFile(path, bytes, "pretrained weights");
  return path;
}

/**
 * Loads pretrained weights into a built model: resolves `source` with {@link fetchPretrained}
 * and calls `net.loadParameters`. Returns the net.
 *
 * @example Weights saved from one net load into another of the same architecture
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo, nd } from "../../../mod.ts";
 * const { vision } = modelZoo;
 * const a = vision.squeezenet1_1({ classes: 10 });
 * a.initialize();
 * a.inferShape(nd.zeros([1, 3, 224, 224])); // completes the deferred shapes
 * const file = await Deno.makeTempFile({ suffix: ".params" });
 * await a.saveParameters(file);
 * const b = await vision.loadPretrained(vision.squeezenet1_1({ classes: 10 }), file);
 * assert(b.collectParams()["output.0.weight"].shape!.join() === "10,512,1,1");
 * await Deno.remove(file);
 * ```
 */
export async function loadPretrained<B extends Block>(
  net: B,
  source: PretrainedSource,
  options: PretrainedOptions = {},
): Promise<B> {
  const file = await fetchPretrained(source, options);
  await net.loadParameters(file, {
    allowMissing: options.allowMissing ?? false,
    ignoreExtra: options.ignoreExtra ?? false,
  });
  return net;
}
