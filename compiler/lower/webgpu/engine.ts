/**
 * The WebGPU engine: graphs compiled to WGSL compute kernels over a few GPU buffers laid out by
 * the static memory plan. `webgpuEngine(options)` is a value; the kernels it uses are the typed
 * table {@link WEBGPU_KERNELS} unless another is given.
 *
 * WebGPU is asynchronous twice over, and the engine says so in its API:
 * - getting a device is asynchronous: `await engine.ready()` (or make the engine with
 *   {@link createWebGPUEngine}) before compiling; `compile` on an engine that is not ready
 *   throws a `BackendError` saying to await it. `Symbol.eval` and `block.callAsync` await it
 *   themselves. No adapter is a `BackendError` from `ready()`, never a hang.
 * - reading results back is asynchronous: programs run with `runAsync` (the synchronous `run`
 *   throws a `BackendError` naming it). `await symbol.eval(...)` and `await net.callAsync(x)`
 *   (a hybridized block) use it; a synchronous `net.call(x)` on this engine throws.
 *
 * Eager op calls (`nd.*` under `withEngine(gpuEngine, ...)`) run the op's reference
 * implementation on the host: an eager call returns its tensor at once, which a GPU round trip
 * cannot. Outputs of programs are read back to the host (CPU tensors), unless the engine or
 * the run says `resident: true`: then they stay in GPU buffers (`await t.data()` reads one;
 * feeding one to another program of the engine copies it on the device). `await
 * t.toDevice(engine)` uploads a tensor ahead of time.
 *
 * float16 and bfloat16 values (AMP-converted graphs) are stored in 16 bits: with `shader-f16`
 * as `f16` arrays, else packed two to a `u32` word; kernels compute in f32 (see storage.ts).
 *
 * @module
 */
import { gpu as gpuDevice } from "../../../runtime/device.ts";
import { BackendError, UnsupportedError } from "../../../runtime/errors.ts";
import type { Tensor, TensorMover } from "../../../runtime/tensor.ts";
import type { CompileOptions, Engine, OpCall, Program, Signature } from "../../engine.ts";
import { warnFallbacks } from "../../engine.ts";
import { interpretedProgram } from "../../reference_engine.ts";
import { identityOf } from "../../program_cache.ts";
import type { Graph, Pass } from "../../passes/pass.ts";
import { fuseElementwise } from "../../passes/fuse.ts";
import type { DType } from "../../../runtime/dtype.ts";
import { emptyRecord } from "../../../runtime/record.ts";
import { DEFAULT_PASSES } from "../../passes/pipeline.ts";
import { type GpuContext, requestGpu } from "./gpu.ts";
import { WEBGPU_KERNELS } from "./default_kernels.ts";
import type { GpuKernelTable } from "./kernel.ts";
import { type GpuTuneOption, lowerWebGPU } from "./lower.ts";
import { uploadTensor } from "./resident.ts";

/** Options of {@link webgpuEngine}. */
export interface WebGPUEngineOptions {
  /** An adapter to use (default: requested from `navigator.gpu`, once, and shared). */
  readonly adapter?: GPUAdapter;
  /** A device to use (default: requested from the adapter, once, and shared). */
  readonly device?: GPUDevice;
  /** Passed to `requestAdapter` (`"high-performance"` picks a discrete GPU where there is one). */
  readonly powerPreference?: GPUPowerPreference;
  /**
   * Use `shader-f16` where the adapter has it (default true): float16 values are then `f16`
   * arrays in the shaders. With `false` (or no such feature) they are stored packed two to a
   * `u32` word. Either way float16 stays 16 bits in memory and kernels compute in f32.
   */
  readonly f16?: boolean;
  /**
   * Use subgroup operations where the adapter has the `subgroups` feature (default true):
   * reductions and softmax then combine partial results with `subgroupAdd`/`subgroupMax`
   * instead of a tree in workgroup memory (`engine.gpu.subgroups` says whether they are on).
   * `false` keeps every kernel on workgroup memory.
   */
  readonly subgroups?: boolean;
  /**
   * Autotune workgroup sizes and GEMM tiles (default false: the table in tuning.ts): each
   * program times its kernels' candidates once, before its first run, and keeps the fastest,
   * cached per device and kernel signature. `{ candidate: i }` pins the i-th candidate.
   */
  readonly tune?: GpuTuneOption;
  /** Runs hand out outputs held in GPU buffers (default false: read back to the host). */
  readonly resident?: boolean;
  /** The WebGPU entry point (default `navigator.gpu`), e.g. a Node binding's `gpu` object. */
  readonly gpu?: GPU;
  /** Milliseconds to wait for an adapter and device (default 10000). */
  readonly timeoutMs?: number;
  /** The kernel generators (default {@link WEBGPU_KERNELS}). */
  readonly kernels?: GpuKernelTable;
  /** The passes run before lowering (default: the inference pipeline). */
  readonly passes?: readonly Pass[];
}

/** A WebGPU engine: an {@link Engine} with a device to wait for. */
export interface WebGPUEngine extends Engine, TensorMover {
  /** Resolves once the adapter and device are acquired (rejects with a `BackendError`). */
  ready(): Promise<void>;
  /** The device and its limits, once ready (undefined before). */
  readonly gpu: GpuContext | undefined;
}

/**
 * A WebGPU engine (see the module doc). Nothing is requested until `ready()` is first called;
 * engines with the same options share one adapter and device.
 *
 * @example A graph on the GPU, or a typed error where there is none
 * ```ts
 * import assert from "node:assert";
 * import { BackendError, nd, sym, webgpuEngine } from "../../../mod.ts";
 * const engine = webgpuEngine();
 * try {
 *   await engine.ready();
 *   const [y] = await sym.relu(sym.var("x")).eval({ x: nd.array([-1, 2]) }, { engine });
 *   assert.deepStrictEqual(await y.data(), new Float32Array([0, 2]));
 * } catch (e) {
 *   assert(e instanceof BackendError); // no WebGPU adapter here
 * }
 * ```
 */
export function webgpuEngine(options: WebGPUEngineOptions = {}): WebGPUEngine {
  const kernels = options.kernels ?? WEBGPU_KERNELS;
  const passes = Object.freeze([...(options.passes ?? DEFAULT_PASSES)]);
  let acquiring: Promise<void> | undefined;
  let ctx: GpuContext | undefined;
  const engine: WebGPUEngine = {
    name: "webgpu",
    device: gpuDevice(),
    get key() {
      return `webgpu(${ctx ? `d${identityOf(ctx.device)}` : "pending"}${
        kernels === WEBGPU_KERNELS ? "" : `,k${identityOf(kernels)}`
      }${options.passes ? `,p${passes.map((p) => p.name).join("+")}` : ""}${
        options.tune ? `,tune${JSON.stringify(options.tune)}` : ""
      }${options.resident ? ",resident" : ""})`;
    },
    get gpu() {
      return ctx;
    },
    passes,
    ready() {
      acquiring ??= requestGpu(options).then(
        (got) => {
          ctx = got;
        },
        (e) => {
          // A later call may try again (an adapter can appear, e.g. after a driver install).
          acquiring = undefined;
          throw e;
        },
      );
      return acquiring;
    },
    compile(graph: Graph, signature: Signature, compileOptions: CompileOptions = {}): Program {
      if (!ctx) {
        throw new BackendError(
          "the WebGPU engine has no device yet: `await engine.ready()` (or make it with `await createWebGPUEngine()`) before compiling",
        );
      }
      const started = performance.now();
      compileOptions.onProgress?.({ phase: "passes", done: 0, total: 1, elapsedMs: 0 });
      // Fusion is told the inputs' dtypes (a cast between 16-bit and float32 values ends a
      // chain) and fuses 16-bit chains too: kernels compute them in f32 and round once.
      const optimized = runWebGPUPasses(passes, graph, signature);
      try {
        return lowerWebGPU(optimized, signature, {
          gpu: ctx,
          kernels,
          engine,
          started,
          ...(options.tune ? { tune: options.tune } : {}),
          ...(options.resident ? { resident: true } : {}),
          ...(compileOptions.onProgress ? { onProgress: compileOptions.onProgress } : {}),
        });
      } catch (e) {
        if (!(e instanceof UnsupportedError)) throw e;
        const fallbacks = [{ node: "(graph)", op: "", reason: e.message, runsOn: "reference" }];
        warnFallbacks(engine.name, fallbacks);
        return interpretedProgram(graph, signature, engine, fallbacks);
      }
    },
    async upload(t: Tensor): Promise<Tensor> {
      await engine.ready();
      return uploadTensor(ctx!.device, t);
    },
    callOp({ op, inputs, attrs, outShapes, outTypes }: OpCall): Tensor[] {
      return op.reference(inputs, attrs, { outShapes, outTypes });
    },
  };
  return Object.freeze(engine);
}

/**
 * Runs the engine's passes for a signature: elementwise fusion is told the inputs' dtypes and
 * fuses float32, float16 and bfloat16 chains (kernels compute 16-bit chains in f32 and round
 * once, as the WASM engine's do); integer chains stay unfused, since rounding after each op is
 * part of their meaning.
 */
function runWebGPUPasses(passes: readonly Pass[], graph: Graph, signature: Signature): Graph {
  const inputTypes = emptyRecord<DType>();
  for (const [name, s] of Object.entries(signature.inputs)) inputTypes[name] = s.dtype;
  return passes.reduce(
    (g, pass) =>
      pass === fuseElementwise
        ? fuseElementwise.run(g, { inputTypes, dtypes: ["float32", "float16", "bfloat16"] })
        : pass.run(g),
    graph,
  );
}

/**
 * Makes a WebGPU engine and waits for its device: the engine it resolves with compiles at
 * once. Rejects with a `BackendError` when there is no WebGPU adapter.
 *
 * @example Picking the GPU for everything on gpu()
 * ```ts
 * import { BackendError, createWebGPUEngine, setDefaultEngine } from "../../../mod.ts";
 * try {
 *   const engine = await createWebGPUEngine({ powerPreference: "high-performance" });
 *   setDefaultEngine(engine); // the engine of gpu() tensors
 * } catch (e) {
 *   if (!(e instanceof BackendError)) throw e; // no adapter: stay on cpu()
 * }
 * ```
 */
export async function createWebGPUEngine(options: WebGPUEngineOptions = {}): Promise<WebGPUEngine> {
  const engine = webgpuEngine(options);
  await engine.ready();
  return engine;
}
