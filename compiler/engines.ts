/**
 * Which engine runs: the one place that decides. In order: the engine an entry point was given
 * (`{ engine }`), else the engine of the innermost {@link withEngine} scope, else the default
 * engine of the device the inputs live on ({@link getDefaultEngine}: the WASM engine for
 * `cpu()` unless {@link setDefaultEngine} said otherwise; for `gpu()` a WebGPU engine made at
 * the first ask, or the one set).
 *
 * @module
 */
import { cpu, type Device } from "../runtime/device.ts";
import { BackendError, SigilError } from "../runtime/errors.ts";
import type { Engine } from "./engine.ts";
import { wasmEngine } from "./lower/wasm/engine.ts";
import { webgpuEngine } from "./lower/webgpu/engine.ts";

const defaults = new Map<string, Engine>();
let scoped: Engine | undefined;

/** Whether `x` is an engine value (has `compile` and `callOp`). */
export function isEngine(x: unknown): x is Engine {
  const e = x as Engine;
  return typeof x === "object" && x !== null && typeof e.compile === "function" &&
    typeof e.callOp === "function" && typeof e.name === "string";
}

function checkEngine(x: unknown, where: string): Engine {
  if (!isEngine(x)) {
    throw new SigilError(
      `${where}: ${
        typeof x === "string" ? `'${x}'` : String(x)
      } is not an engine; pass an engine value such as wasmEngine() or referenceEngine`,
    );
  }
  return x;
}

/**
 * The default engine of a device (default `cpu()`): the WASM engine on every core unless set;
 * for `gpu()`, a WebGPU engine with default options made at the first ask (its device is
 * requested when it is first awaited: `Symbol.eval` and `block.callAsync` do; a synchronous
 * compile before that throws a `BackendError` saying to `await engine.ready()`). To choose the
 * adapter, set one: `setDefaultEngine(await createWebGPUEngine({ powerPreference }))`.
 *
 * @example The CPU default
 * ```ts
 * import assert from "node:assert";
 * import { cpu, getDefaultEngine } from "../mod.ts";
 * assert.strictEqual(getDefaultEngine(cpu()).name, "wasm");
 * ```
 */
export function getDefaultEngine(device: Device = cpu()): Engine {
  const set = defaults.get(device.kind);
  if (set) return set;
  if (device.kind === "cpu" || device.kind === "webgpu") {
    const made = device.kind === "cpu" ? wasmEngine() : webgpuEngine();
    defaults.set(device.kind, made);
    return made;
  }
  throw new BackendError(`no engine serves ${device}; use cpu()`);
}

/**
 * Sets the default engine of the engine's device (for `cpu()`: what `Symbol.eval`, `nd.*`,
 * hybridized blocks and `SymbolBlock` use where no engine is named) and returns the previous
 * one, so a caller can restore it.
 *
 * @example Everything on the oracle, then back
 * ```ts
 * import assert from "node:assert";
 * import { getDefaultEngine, referenceEngine, setDefaultEngine } from "../mod.ts";
 * const previous = setDefaultEngine(referenceEngine);
 * assert.strictEqual(getDefaultEngine().name, "reference");
 * setDefaultEngine(previous);
 * assert.strictEqual(getDefaultEngine().name, "wasm");
 * ```
 */
export function setDefaultEngine(engine: Engine): Engine {
  checkEngine(engine, "setDefaultEngine");
  const previous = getDefaultEngine(engine.device);
  defaults.set(engine.device.kind, engine);
  return previous;
}

/**
 * Runs `fn` with `engine` as the engine of every entry point that names none (eager calls,
 * `Symbol.eval`, blocks), then restores the previous scope. The scope covers `fn`'s
 * synchronous part only: an `async fn` leaves it at its first `await`.
 *
 * @example Eager calls on the reference engine
 * ```ts
 * import assert from "node:assert";
 * import { nd, referenceEngine, withEngine } from "../mod.ts";
 * const y = withEngine(referenceEngine, () => nd.exp(nd.zeros([3])));
 * assert.deepStrictEqual(await y.data(), new Float32Array([1, 1, 1]));
 * ```
 */
export function withEngine<T>(engine: Engine, fn: () => T): T {
  checkEngine(engine, "withEngine");
  const saved = scoped;
  scoped = engine;
  try {
    return fn();
  } finally {
    scoped = saved;
  }
}

/**
 * The engine that runs a call: `explicit` if given (checked), else the scope's, else the
 * default of `device`.
 *
 * @example Resolving
 * ```ts
 * import assert from "node:assert";
 * import { referenceEngine, resolveEngine } from "../mod.ts";
 * assert.strictEqual(resolveEngine(referenceEngine), referenceEngine);
 * assert.strictEqual(resolveEngine().name, "wasm");
 * ```
 */
export function resolveEngine(explicit?: Engine, device?: Device): Engine {
  if (explicit !== undefined) return checkEngine(explicit, "engine");
  return scoped ?? getDefaultEngine(device);
}
