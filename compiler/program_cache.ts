/**
 * The one program cache: every compiled program (graphs run by `Symbol.eval`, hybridized
 * blocks and `SymbolBlock`, and the one-op programs of eager calls) is kept here, keyed by
 * graph identity, input signature, engine and options, and bounded by count and by the bytes
 * of memory the programs hold. The least recently used programs leave first and are disposed.
 *
 * @module
 */
import { SigilError } from "../runtime/errors.ts";
import type { Program } from "./engine.ts";

/** Limits of the program cache. */
export interface ProgramCacheLimits {
  /** At most this many programs (default 128). */
  readonly maxPrograms: number;
  /** At most this many bytes of program memory (default 512 MiB). */
  readonly maxBytes: number;
}

const DEFAULT_LIMITS: ProgramCacheLimits = { maxPrograms: 128, maxBytes: 512 * 1024 * 1024 };

let limits: ProgramCacheLimits = DEFAULT_LIMITS;
/** Programs by key, least recently used first (a Map iterates in insertion order). */
const programs = new Map<string, Program | null>();
let bytes = 0;
let hits = 0;
let misses = 0;

function sizeOf(p: Program | null): number {
  return p?.memoryBytes ?? 0;
}

function evict(room: number): void {
  for (const [key, p] of programs) {
    if (programs.size < limits.maxPrograms && bytes + room <= limits.maxBytes) return;
    programs.delete(key);
    bytes -= sizeOf(p);
    p?.dispose();
  }
}

/**
 * The program cached under `key`, or the one `make` returns (cached; null caches "no program
 * for this key"). Hits move to the most recently used end.
 */
export function cachedProgram(key: string, make: () => Program | null): Program | null {
  const found = programs.get(key);
  if (found !== undefined || programs.has(key)) {
    hits++;
    programs.delete(key);
    programs.set(key, found!);
    return found!;
  }
  misses++;
  const made = make();
  evict(sizeOf(made));
  programs.set(key, made);
  bytes += sizeOf(made);
  return made;
}

/**
 * Sets the cache's limits (evicting at once what no longer fits) and returns the previous
 * ones.
 *
 * @example A smaller cache
 * ```ts
 * import { setProgramCacheLimits } from "../mod.ts";
 * const before = setProgramCacheLimits({ maxPrograms: 16 });
 * setProgramCacheLimits(before);
 * ```
 */
export function setProgramCacheLimits(next: Partial<ProgramCacheLimits>): ProgramCacheLimits {
  const merged = { ...limits, ...next };
  for (const [k, v] of Object.entries(merged)) {
    if (!Number.isInteger(v) || v < 0) {
      throw new SigilError(`setProgramCacheLimits: ${k} must be a non-negative integer, got ${v}`);
    }
  }
  const previous = limits;
  limits = merged;
  evict(0);
  return previous;
}

/** What the cache holds now and how often it answered. */
export interface ProgramCacheStats {
  /** Programs cached. */
  readonly programs: number;
  /** Bytes of program memory cached. */
  readonly bytes: number;
  /** Lookups answered from the cache. */
  readonly hits: number;
  /** Lookups that compiled. */
  readonly misses: number;
}

/**
 * The cache's size and hit counts.
 *
 * @example Reading the counts
 * ```ts
 * import assert from "node:assert";
 * import { programCacheStats } from "../mod.ts";
 * assert(programCacheStats().programs >= 0);
 * ```
 */
export function programCacheStats(): ProgramCacheStats {
  return { programs: programs.size, bytes, hits, misses };
}

/**
 * Disposes and forgets every cached program.
 *
 * @example Starting from an empty cache
 * ```ts
 * import assert from "node:assert";
 * import { clearProgramCache, programCacheStats } from "../mod.ts";
 * clearProgramCache();
 * assert.strictEqual(programCacheStats().programs, 0);
 * ```
 */
export function clearProgramCache(): void {
  for (const p of programs.values()) p?.dispose();
  programs.clear();
  bytes = 0;
}

const ids = new WeakMap<object, number>();
let nextId = 1;

/** A process-unique number for an object (a constant tensor, a kernel table) in cache keys. */
export function identityOf(o: object): number {
  let id = ids.get(o);
  if (id === undefined) ids.set(o, id = nextId++);
  return id;
}
