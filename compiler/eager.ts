/**
 * Eager op calls (`nd.<op>`, and the `F` ops of blocks that are not hybridized) on the CPU
 * device's WASM backend: a float32 call that touches at least {@link EAGER_MIN_ELEMENTS}
 * elements is compiled as a one-op graph (once per op, attributes and input shapes; the
 * least recently used programs leave the cache beyond 64 programs or 256 MiB of their memories)
 * and run there. Smaller calls, calls with other dtypes,
 * ops without a kernel, and everything while the default executor is `"reference"`, run on the
 * op's reference implementation, which costs less than a compile for tiny inputs.
 *
 * @module
 */
import { type EagerEngine, setEagerEngine } from "../ops/call.ts";
import type { AnyOpDef } from "../ops/op.ts";
import { shapeSize } from "../runtime/shape.ts";
import { type Tensor, tensorFromValues, tensorStorage } from "../runtime/tensor.ts";
import { SigilError } from "../runtime/errors.ts";
import { sym } from "./sym.ts";
import type { Symbol } from "./symbol.ts";
import { compileWasm, VIEW_OPS, type WasmCompiled } from "./lower/wasm/lower.ts";

/** Calls touching fewer elements (inputs and outputs together) run on the reference. */
export const EAGER_MIN_ELEMENTS = 4096;

/** At most this many one-op programs, and this many bytes of their memories, stay cached. */
const MAX_PROGRAMS = 64;
const MAX_BYTES = 256 * 1024 * 1024;
const programs = new Map<string, WasmCompiled | null>();
let cachedBytes = 0;

function evictUntil(fits: (count: number, bytes: number) => boolean): void {
  for (const [key, prog] of programs) {
    if (fits(programs.size, cachedBytes)) return;
    programs.delete(key);
    if (prog) {
      cachedBytes -= prog.program.memoryBytes;
      prog.dispose();
    }
  }
}

let enabled = (): boolean => true;

/** @internal Lets execute.ts turn eager WASM calls off with the default executor. */
export function setEagerEnabled(check: () => boolean): void {
  enabled = check;
}

const engine: EagerEngine = (op: AnyOpDef, inputs, given, outShapes, outTypes) => {
  // Views only move data (the reference copies as fast); subgraph calls are whole graphs.
  if (!enabled() || VIEW_OPS.has(op.name) || op.subgraph) return undefined;
  if (inputs.some((t) => t.dtype !== "float32") || outTypes.some((t) => t !== "float32")) {
    return undefined;
  }
  let elements = 0;
  for (const t of inputs) elements += shapeSize(t.shape);
  for (const s of outShapes) elements += shapeSize(s);
  if (elements < EAGER_MIN_ELEMENTS) return undefined;
  const key = `${op.name}|${JSON.stringify(given)}|${
    inputs.map((t) => t.shape.join("x")).join(",")
  }`;
  let compiled = programs.get(key);
  if (compiled === undefined) {
    compiled = compile(op, inputs, given);
    const bytes = compiled?.program.memoryBytes ?? 0;
    // Least recently used first (a Map iterates in insertion order; hits move to the end).
    evictUntil((count, total) => count < MAX_PROGRAMS && total + bytes <= MAX_BYTES);
    programs.set(key, compiled);
    cachedBytes += bytes;
  } else {
    programs.delete(key);
    programs.set(key, compiled);
  }
  if (compiled === null) return undefined;
  const arrays: Record<string, Float32Array> = {};
  inputs.forEach((t, i) => (arrays[`in${i}`] = tensorStorage(t) as Float32Array));
  return compiled.runRaw(arrays).map((v, i) => tensorFromValues(v, outShapes[i], "float32"));
};

/** A one-op program, or null when the backend would only run the reference anyway. */
function compile(
  op: AnyOpDef,
  inputs: readonly Tensor[],
  given: Readonly<Record<string, unknown>>,
): WasmCompiled | null {
  const vars = inputs.map((_, i) => sym.var(`in${i}`));
  // A fixed name keeps the symbol API's automatic names untouched by eager calls.
  const build = (sym as unknown as Record<string, (...a: unknown[]) => Symbol>)[op.name];
  if (typeof build !== "function") return null;
  try {
    const symbol = build(...vars, { ...given, name: "eager" });
    const shapes = Object.fromEntries(inputs.map((t, i) => [`in${i}`, t.shape]));
    const compiled = compileWasm(symbol, {}, shapes, { optimize: false });
    if (compiled.placement.some((p) => p.how !== "kernel")) {
      compiled.dispose();
      return null;
    }
    // Every input must be a program input (a kernel could ignore one; keep it simple).
    if (Object.keys(compiled.program.inputs).length !== inputs.length) {
      compiled.dispose();
      return null;
    }
    return compiled;
  } catch (e) {
    if (e instanceof SigilError) return null;
    throw e;
  }
}

setEagerEngine(engine);
