/**
 * The WASM engine: graphs compiled to WASM-SIMD kernels over one statically planned memory,
 * split across worker threads. `wasmEngine(options)` is a value; the kernels it uses are the
 * typed table {@link WASM_KERNELS} unless another is given.
 *
 * Eager op calls (`nd.<op>`, and the ops of blocks that are not hybridized) that touch at least
 * {@link EAGER_MIN_ELEMENTS} float32 elements are compiled as one-op programs (kept in the one
 * program cache) and run there; smaller calls, and ops the kernels do not cover, run the op's
 * reference implementation, which costs less than a compile for tiny inputs.
 *
 * @module
 */
import { cpu } from "../../../runtime/device.ts";
import type { DType } from "../../../runtime/dtype.ts";
import { UnsupportedError } from "../../../runtime/errors.ts";
import { shapeSize } from "../../../runtime/shape.ts";
import { type Tensor, tensorStorage } from "../../../runtime/tensor.ts";
import {
  checkThreads,
  compileHelper,
  getDefaultThreads,
  kernelWarmer,
  startDefaultThreads,
  threadsSupported,
} from "../../../runtime/backends/wasm/threads.ts";
import type { CompileOptions, Engine, OpCall, Program, Signature } from "../../engine.ts";
import { warnFallbacks } from "../../engine.ts";
import { interpretedProgram } from "../../reference_engine.ts";
import { cachedProgram, identityOf } from "../../program_cache.ts";
import { type Graph, graphOf, type Pass } from "../../passes/pass.ts";
import { DEFAULT_PASSES } from "../../passes/pipeline.ts";
import { fuseConvEpilogue } from "../../passes/fuse.ts";
import { sym } from "../../sym.ts";
import type { Symbol } from "../../symbol.ts";
import { relaxedSimdSupported } from "./encoder.ts";
import { WASM_KERNELS } from "./default_kernels.ts";
import type { KernelTable } from "./kernel.ts";
import { lowerWasm, runWasmPasses, VIEW_OPS, type WasmCompiled } from "./lower.ts";

/**
 * The WASM engine's default passes: the inference pipeline (`DEFAULT_PASSES`), then
 * `fuse-conv-epilogue`, which merges a convolution with the activation that alone reads it
 * (the kernels apply it as they write the output; same bits as the two steps).
 */
export const WASM_PASSES: readonly Pass[] = Object.freeze([...DEFAULT_PASSES, fuseConvEpilogue]);

/** Eager calls touching fewer elements (inputs and outputs together) run on the reference. */
export const EAGER_MIN_ELEMENTS = 4096;

/** Options of {@link wasmEngine}. */
export interface WasmEngineOptions {
  /**
   * Threads to split kernels across (default: `getDefaultThreads()` when a program is
   * compiled, i.e. every core unless `setDefaultThreads` said otherwise). More than 1 needs
   * `SharedArrayBuffer`; where it is missing programs run on one thread.
   */
  readonly threads?: number;
  /** Use relaxed SIMD (default: where the runtime validates it). */
  readonly relaxedSimd?: boolean;
  /** Let 3×3 convolutions with constant weights use Winograd F(4×4, 3×3) (default true). */
  readonly winograd?: boolean;
  /** The kernel generators (default {@link WASM_KERNELS}). */
  readonly kernels?: KernelTable;
  /** The passes run before lowering (default {@link WASM_PASSES}: the inference pipeline, then convolution epilogues). */
  readonly passes?: readonly Pass[];
  /**
   * Run each new kernel once on a background worker while a program compiles, so that its
   * first run executes optimized code (default true; see `KernelWarmer`). Nothing is warmed
   * where the runtime reports one core, has no `SharedArrayBuffer`, or after
   * `setKernelWarming(false)`; by default (`setKernelWarming("auto")`) only where the cores
   * exceed the program's threads by two.
   */
  readonly warm?: boolean;
  /**
   * For one-thread programs: compute the Winograd weight transforms and fault in the
   * program's memory on a worker that lives for the compile, while the calling thread
   * generates the kernels (see `CompileHelper`). `"auto"` (default): where the runtime has
   * shared memory, workers and at least three cores; `true`: from two cores; `false`: never.
   * The program's memory is then shared; it still runs on the calling thread alone (V8's code
   * over a shared memory is a few percent slower: `bench/shared_memory.ts`).
   */
  readonly compileHelper?: boolean | "auto";
}

/** The WASM engine's options once resolved for a compile. */
interface Resolved {
  readonly threads: number;
  readonly relaxed: boolean;
  readonly winograd: boolean;
  readonly kernels: KernelTable;
  readonly warm: boolean;
  readonly compileHelper: boolean | "auto";
}

/**
 * A WASM engine: compiles graphs to WASM-SIMD kernels (see the module doc). Engines with equal
 * options share compiled programs.
 *
 * @example Two threads, baseline SIMD
 * ```ts
 * import assert from "node:assert";
 * import { nd, sym, wasmEngine } from "../../../mod.ts";
 * const engine = wasmEngine({ threads: 2, relaxedSimd: false });
 * const y = sym.Activation(sym.var("x"), { act_type: "relu" });
 * const [out] = await y.eval({ x: nd.array([-1, 2]) }, { engine });
 * assert.deepStrictEqual(await out.data(), new Float32Array([0, 2]));
 * ```
 */
export function wasmEngine(options: WasmEngineOptions = {}): Engine {
  if (options.threads !== undefined) checkThreads(options.threads, "wasmEngine");
  const kernels = options.kernels ?? WASM_KERNELS;
  const passes = Object.freeze([...(options.passes ?? WASM_PASSES)]);
  const resolve = (): Resolved => ({
    threads: options.threads ?? getDefaultThreads(),
    relaxed: options.relaxedSimd ?? relaxedSimdSupported(),
    winograd: options.winograd ?? true,
    kernels,
    warm: options.warm ?? true,
    compileHelper: options.compileHelper ?? "auto",
  });
  const keyOf = (r: Resolved) =>
    `wasm(t${r.threads}${r.relaxed ? ",relaxed" : ""}${r.winograd ? "" : ",nowino"}${
      kernels === WASM_KERNELS ? "" : `,k${identityOf(kernels)}`
    }${options.passes ? `,p${passes.map((p) => p.name).join("+")}` : ""})`;
  const engine: Engine = {
    name: "wasm",
    device: cpu(),
    get key() {
      return keyOf(resolve());
    },
    passes,
    compile(graph: Graph, signature: Signature, compileOptions: CompileOptions = {}): Program {
      const started = performance.now();
      compileOptions.onProgress?.({ phase: "passes", done: 0, total: 1, elapsedMs: 0 });
      const r = resolve();
      // The warmer's and the helper's workers come up while the passes run.
      if (r.warm) kernelWarmer(threadsSupported() ? r.threads : 1)?.start();
      const helper = compileHelper(r.threads, r.compileHelper);
      try {
        const optimized = runWasmPasses(passes, graph, signature);
        try {
          return lowerWasm(optimized, signature, {
            threads: r.threads,
            relaxed: r.relaxed,
            winograd: r.winograd,
            kernels: r.kernels,
            warm: r.warm,
            engine,
            started,
            weightsFirst: true,
            ...(compileOptions.onProgress ? { onProgress: compileOptions.onProgress } : {}),
            ...(helper ? { helper } : {}),
          });
        } catch (e) {
          if (!(e instanceof UnsupportedError)) throw e;
          const fallbacks = [{ node: "(graph)", op: "", reason: e.message, runsOn: "reference" }];
          warnFallbacks(engine.name, fallbacks);
          return interpretedProgram(graph, signature, engine, fallbacks);
        }
      } finally {
        void helper?.retire();
      }
    },
    callOp: (call: OpCall) => callOp(engine, resolve(), call),
    prepare() {
      const r = resolve();
      if (r.threads > 1) startDefaultThreads();
      if (r.warm) kernelWarmer(threadsSupported() ? r.threads : 1)?.start();
    },
  };
  return Object.freeze(engine);
}

/** Eager calls: a one-op program for big float32 calls, the reference otherwise. */
function callOp(engine: Engine, r: Resolved, call: OpCall): Tensor[] {
  const { op, inputs, given, attrs, outShapes, outTypes } = call;
  const reference = () => op.reference(inputs, attrs, { outShapes, outTypes });
  // Views only move data (the reference copies as fast); subgraph calls are whole graphs.
  if (VIEW_OPS.has(op.name) || op.subgraph) return reference();
  if (!inputs.every((t) => t.dtype === "float32") || !outTypes.every((t) => t === "float32")) {
    return reference();
  }
  let elements = 0;
  for (const t of inputs) elements += shapeSize(t.shape);
  for (const s of outShapes) elements += shapeSize(s);
  if (elements < EAGER_MIN_ELEMENTS) return reference();
  let givenKey: string;
  try {
    givenKey = JSON.stringify(given);
  } catch {
    return reference();
  }
  const key = `eager|${engine.key}|${op.name}|${givenKey}|${
    inputs.map((t) => t.shape.join("x")).join(",")
  }`;
  const program = cachedProgram(key, () => compileOneOp(engine, r, call));
  if (!program) return reference();
  const arrays: Record<string, Float32Array> = {};
  inputs.forEach((t, i) => (arrays[`in${i}`] = tensorStorage(t) as Float32Array));
  return (program as WasmCompiled).runTensors(arrays, outShapes, outTypes as DType[]);
}

/** A one-op program, or null when it would not run wholly on kernels. */
function compileOneOp(engine: Engine, r: Resolved, call: OpCall): Program | null {
  const { op, inputs, given } = call;
  const build = (sym as unknown as Record<string, (...a: unknown[]) => Symbol>)[op.name];
  if (typeof build !== "function") return null;
  const vars = inputs.map((_, i) => sym.var(`in${i}`));
  // A fixed name keeps the symbol API's automatic names untouched by eager calls.
  const symbol = build(...vars, { ...given, name: "eager" });
  const signature: Signature = {
    inputs: Object.fromEntries(
      inputs.map((t, i) => [`in${i}`, { shape: t.shape, dtype: t.dtype }]),
    ),
  };
  let compiled: Program;
  try {
    // One op: the inference passes have nothing to do.
    compiled = lowerWasm(graphOf(symbol), signature, {
      threads: r.threads,
      relaxed: r.relaxed,
      winograd: r.winograd,
      kernels: r.kernels,
      engine,
      quiet: true,
      // An eager call runs its kernel at once: warming it would only run it twice.
      warm: false,
    });
  } catch (e) {
    if (e instanceof UnsupportedError) return null;
    throw e;
  }
  // Every input must be a program input, and every node a kernel; else the reference is as good.
  if (compiled.fallbacks.length || compiled.inputs.length !== inputs.length) {
    compiled.dispose();
    return null;
  }
  return compiled;
}
