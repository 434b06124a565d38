/**
 * One `WebAssembly.Module` per distinct kernel: modules are looked up by a hash of their bytes
 * (and the bytes compared), so nodes with the same shapes and attributes (ResNet's repeated
 * blocks, the whole and split forms of a step, the same graph compiled again at another batch
 * size or thread count) share one compiled module within a program and across programs. A
 * module holds no state (each program instantiates it over its own memory), so sharing is
 * invisible to results. The cache is bounded by count and by bytes, least recently used first
 * out.
 *
 * Generators also keep the code they emit for a geometry ({@link cachedCode}): equal layers
 * then skip generating it again, and only their weights are transformed and packed.
 *
 * @module
 */

/** Counters of {@link moduleCacheStats}. */
export interface ModuleCacheStats {
  /** Modules held. */
  readonly entries: number;
  /** Bytes of WASM those modules were compiled from. */
  readonly bytes: number;
  /** Lookups that found a module. */
  readonly hits: number;
  /** Lookups that compiled one. */
  readonly misses: number;
}

interface Entry {
  readonly bytes: Uint8Array;
  readonly module: WebAssembly.Module;
}

/** At most this many modules are kept. */
const MAX_ENTRIES = 2048;
/** At most this many bytes of WASM (their compiled code is a few times larger). */
const MAX_BYTES = 32 * 1024 * 1024;

// Insertion order is recency order: a hit moves its entry to the end.
const entries = new Map<string, Entry[]>();
let count = 0;
let held = 0;
let hits = 0;
let misses = 0;

/** FNV-1a over the bytes, with the length: a key for the map (collisions are compared out). */
function keyOf(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193);
  }
  return `${bytes.length}:${(h >>> 0).toString(36)}`;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The compiled module of `bytes`: the cached one when the same bytes were compiled before,
 * else a new one (compiled synchronously; V8 compiles function bodies lazily on first call).
 * Invalid bytes throw `WebAssembly.CompileError` as `new WebAssembly.Module` does.
 *
 * @example Two requests for the same bytes get one module
 * ```ts
 * import assert from "node:assert";
 * import { cachedModule } from "./module_cache.ts";
 * const bytes = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
 * assert.strictEqual(cachedModule(bytes), cachedModule(bytes.slice()));
 * ```
 */
export function cachedModule(bytes: Uint8Array<ArrayBuffer>): WebAssembly.Module {
  const key = keyOf(bytes);
  const bucket = entries.get(key);
  const found = bucket?.find((e) => sameBytes(e.bytes, bytes));
  if (found) {
    hits++;
    entries.delete(key);
    entries.set(key, bucket!);
    return found.module;
  }
  misses++;
  const module = new WebAssembly.Module(bytes);
  // Keep a copy: callers own their arrays and may reuse them.
  const entry = { bytes: bytes.slice(), module };
  if (bucket) bucket.push(entry);
  else entries.set(key, [entry]);
  count++;
  held += bytes.length;
  evict();
  return module;
}

function evict(): void {
  for (const [key, bucket] of entries) {
    if (count <= MAX_ENTRIES && held <= MAX_BYTES) return;
    entries.delete(key);
    for (const e of bucket) {
      count--;
      held -= e.bytes.length;
    }
  }
}

/**
 * How the module cache stands: modules held, their bytes, hits and misses so far.
 *
 * @example Reading the counters
 * ```ts
 * import assert from "node:assert";
 * import { moduleCacheStats } from "./module_cache.ts";
 * const s = moduleCacheStats();
 * assert(s.entries >= 0 && s.hits >= 0 && s.misses >= s.entries);
 * ```
 */
export function moduleCacheStats(): ModuleCacheStats {
  return { entries: count, bytes: held, hits, misses };
}

/**
 * Drops every cached module and generated code (programs already compiled keep theirs);
 * counters stay.
 *
 * @example Emptying the cache
 * ```ts
 * import assert from "node:assert";
 * import { clearModuleCache, moduleCacheStats } from "./module_cache.ts";
 * clearModuleCache();
 * assert.strictEqual(moduleCacheStats().entries, 0);
 * ```
 */
export function clearModuleCache(): void {
  codes.clear();
  entries.clear();
  count = 0;
  held = 0;
}

/** Generated code kept by {@link cachedCode}: at most this many entries. */
const MAX_CODE_ENTRIES = 512;
const codes = new Map<string, unknown>();

/**
 * The value `make()` returned for `key` before, else `make()`'s value, kept (the latest 512
 * keys). For kernel generators: `key` names everything the generated code depends on (op,
 * shapes, attributes, SIMD path, split), never a weight value or a name from a model, and
 * the value is immutable (bytes are only read).
 *
 * @example Generated once per key
 * ```ts
 * import assert from "node:assert";
 * import { cachedCode } from "./module_cache.ts";
 * let made = 0;
 * const make = () => ({ bytes: new Uint8Array([made++]) });
 * assert.strictEqual(cachedCode("example 3x3", make), cachedCode("example 3x3", make));
 * assert.strictEqual(made, 1);
 * ```
 */
export function cachedCode<T>(key: string, make: () => T): T {
  if (codes.has(key)) {
    const hit = codes.get(key) as T;
    codes.delete(key);
    codes.set(key, hit);
    return hit;
  }
  const value = make();
  codes.set(key, value);
  if (codes.size > MAX_CODE_ENTRIES) codes.delete(codes.keys().next().value!);
  return value;
}
