/**
 * Lowering an inference graph to a {@link WasmProgram} (the WASM engine's compile, after its
 * passes): the memory plan places every op output, and each op node becomes a kernel from the
 * engine's kernel table, a host copy (reshapes and other views), or a listed fallback running
 * the op's reference implementation on the host (ops without a kernel for these attributes or
 * dtypes), so every graph runs and each kernel is tested against the same oracle.
 *
 * Dtypes: every buffer holds its value's dtype as `runtime/tensor.ts` stores it (float16 and
 * bfloat16 as 16-bit patterns). Kernels compute in float32: elementwise kernels read and write
 * 16-bit floats (and casts read and write integers and bool) directly; other kernels run on
 * float32 copies, the lowering widening their 16-bit float inputs (constants once, at compile
 * time) and rounding their outputs to nearest-even (`convert.ts`), and Embedding reads integer
 * indices the same way. What no kernel computes exactly as the reference does (integer
 * arithmetic, float64, int64) runs the op's reference implementation on the host, per node.
 *
 * @module
 */
import { graphFacts, progressReporter } from "../facts.ts";
import { evaluate } from "../../interpreter.ts";
import { type MemoryPlan, planMemory } from "../../passes/memory_plan.ts";
import { type Graph, graphOf, type Pass } from "../../passes/pass.ts";
import type {
  Engine,
  Fallback,
  InputSignature,
  Program,
  ProgressCallback,
  RunOptions,
  Signature,
} from "../../engine.ts";
import { warnFallbacks } from "../../engine.ts";
import { fuseConvEpilogue, fuseElementwise } from "../../passes/fuse.ts";
import type { Entry, Node, Symbol } from "../../symbol.ts";
import { printScalar, type ScalarExpr } from "../../../ops/scalar.ts";
import { BackendError, SigilError, UnsupportedError } from "../../../runtime/errors.ts";
import { checkCompileArgs, checkRunInputs } from "../../validate.ts";
import { type Shape, shapeSize } from "../../../runtime/shape.ts";
import { type DType, encode, type StorageArray } from "../../../runtime/dtype.ts";
import { Tensor, tensorStorage, tensorValues } from "../../../runtime/tensor.ts";
import { scaledRowsOf } from "../../scaled_rows.ts";
import {
  type HostStep,
  type KernelStep,
  type ProgramBuffer,
  type SplitStep,
  storageView,
  WasmExecutor,
  type WasmProgram,
} from "../../../runtime/backends/wasm/executor.ts";
import {
  checkThreads,
  type CompileHelper,
  compileHelper,
  ConstantJobs,
  type DeriveTarget,
  getDefaultThreads,
  kernelWarmer,
  poolFor,
  threadsSupported,
  type WarmTask,
} from "../../../runtime/backends/wasm/threads.ts";
import { relaxedSimdSupported } from "./encoder.ts";
import { align16, type CompiledKernel, generatorFor, type KernelTable } from "./kernel.ts";
import { convertKernel, elementBytes, isKernelFloat, lanesReadable } from "./convert.ts";
import { cachedModule } from "./module_cache.ts";
import { type ArenaScratch, type OffloadJob, withConstantArena } from "./arena.ts";
import { wasmEngine } from "./engine.ts";
import { WASM_KERNELS } from "./default_kernels.ts";
import { emptyRecord } from "../../../runtime/record.ts";

export type { CompileProgress } from "../../engine.ts";

/** Ops that only reinterpret their input's elements: they become a host copy. */
export const VIEW_OPS: ReadonlySet<string> = new Set([
  "Reshape",
  "Flatten",
  "expand_dims",
  "squeeze",
  "_copy",
]);

/** Options of {@link compileWasm}. */
export interface WasmCompileOptions {
  /** Run the WASM engine's passes (the inference pipeline) first (default true). */
  optimize?: boolean;
  /** Use relaxed SIMD where supported (default: when the runtime validates it). */
  relaxed?: boolean;
  /**
   * Threads to split kernels across (default: {@link getDefaultThreads}, i.e. every core
   * unless set otherwise). More than 1 needs `SharedArrayBuffer`; where it is missing the
   * program runs on one thread.
   */
  threads?: number;
  /** Split kernels across the threads even where the work is too small to gain (for tests). */
  forceSplit?: boolean;
  /**
   * Bytes of input columns a convolution computed as a product (im2col, 1×1) takes a block of
   * output rows at a time (default 256 KiB; `Infinity`: whole products; for tests and tuning).
   */
  blockBytes?: number;
  /** Let 3×3 convolutions with constant weights use Winograd F(4×4, 3×3) (default true). */
  winograd?: boolean;
  /** The kernel generators to use (default {@link WASM_KERNELS}). */
  kernels?: KernelTable;
  /** Dtypes of the unbound inputs, by name (default float32); parameters keep their own. */
  inputTypes?: Readonly<Record<string, DType>>;
  /**
   * Called as the compile advances (a large model takes a while on its first compile): at the
   * start of each phase and after every node's kernel. Exceptions it throws abort the compile.
   */
  onProgress?: ProgressCallback;
  /**
   * For a one-thread program: compute the Winograd weight transforms and fault in the
   * program's memory on a worker that lives for the compile (see `CompileHelper`).
   * `"auto"` (default): where the runtime has shared memory, workers and at least three
   * cores; `true`: from two cores; `false`: never. The program's memory is then shared; the
   * program still runs on the calling thread alone.
   */
  compileHelper?: boolean | "auto";
}

/** A compiled graph: a {@link Program} of the WASM engine, with the WASM details. */
export interface WasmCompiled extends Program {
  /** The program (buffers, steps). */
  readonly program: WasmProgram;
  /** The memory plan it follows. */
  readonly plan: MemoryPlan;
  /** Per op node: `kernel`, `copy` or `fallback`, with its label. */
  readonly placement: readonly {
    node: string;
    op: string;
    how: "kernel" | "copy" | "fallback";
    label: string;
  }[];
  /** Runs the graph on tensors by name (converted to the inputs' dtypes where they differ). */
  run(inputs: Readonly<Record<string, Tensor>>, options?: RunOptions): Tensor[];
  /**
   * Runs the graph on raw storage arrays by name (no tensor conversion): each input as its
   * dtype's storage (`Float32Array` for float32, `Uint16Array` of bit patterns for float16 and
   * bfloat16, `Int32Array`, `Uint8Array` for bool, ...). Returns copies of the outputs in the
   * same form (`T`: their storage type, `Float32Array` for float32 outputs), or writes them
   * into `into` (reused arrays: no allocation per run).
   */
  runRaw<T extends StorageArray = Float32Array>(
    inputs: Readonly<Record<string, StorageArray>>,
    into?: readonly T[],
  ): T[];
  /**
   * Times every step of one run: `[label, ms]` in order, on the calling thread alone unless
   * `threaded` (then split steps use the workers, once they hold the program).
   */
  profile(
    inputs: Readonly<Record<string, StorageArray>>,
    options?: { threaded?: boolean },
  ): [string, number][];
  /** Threads the program was compiled for (1: no workers). */
  readonly threads: number;
  /** Whether runs use the worker threads now (they must hold the program; see {@link ready}). */
  readonly threadsReady: boolean;
  /**
   * Resolves when the worker threads hold the program. Runs before that use the calling
   * thread only (same results); with one thread it resolves at once.
   */
  ready(): Promise<void>;
  /** Frees the program's parts in the worker threads; later runs use one thread. */
  dispose(): void;
  /** @internal Runs on raw arrays and wraps the outputs as tensors (no extra copy). */
  runTensors(
    inputs: Readonly<Record<string, StorageArray>>,
    shapes?: readonly Shape[],
    types?: readonly DType[],
  ): Tensor[];
}

/**
 * Compiles a graph for the WASM executor: runs the WASM engine's passes (unless `optimize:
 * false`), then lowers it. Unbound variables are the inputs, with the given shapes and dtypes
 * (`options.inputTypes`, default float32; see the module doc for how each dtype runs). Ops
 * without a kernel for their attributes or dtypes run their reference implementation on the
 * host and are listed in `fallbacks`.
 *
 * @example Compiling and running a small graph
 * ```ts
 * import assert from "node:assert";
 * import { nd, sym } from "../../../mod.ts";
 * import { compileWasm } from "./lower.ts";
 * const y = sym.Activation(sym.FullyConnected(sym.var("x"), { num_hidden: 2, name: "fc" }), { act_type: "relu" });
 * const params = { fc_weight: nd.ones([2, 3]), fc_bias: nd.zeros([2]) };
 * const compiled = compileWasm(y, params, { x: [1, 3] });
 * const [out] = compiled.run({ x: nd.ones([1, 3]) });
 * assert((await out.data())[0] === 3);
 * assert.deepStrictEqual(compiled.fallbacks, []);
 * ```
 */
export function compileWasm(
  symbol: Symbol,
  params: Readonly<Record<string, Tensor>>,
  inputShapes: Readonly<Record<string, readonly number[]>>,
  options: WasmCompileOptions = {},
): WasmCompiled {
  checkCompileArgs(symbol, params, inputShapes, "compileWasm");
  if (options.threads !== undefined) checkThreads(options.threads, "compileWasm");
  if (options.blockBytes !== undefined && !(options.blockBytes >= 1024)) {
    throw new BackendError(
      `compileWasm: blockBytes must be at least 1024 (or Infinity), got ${options.blockBytes}`,
    );
  }
  const engine = wasmEngine({
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    ...(options.relaxed !== undefined ? { relaxedSimd: options.relaxed } : {}),
    ...(options.winograd !== undefined ? { winograd: options.winograd } : {}),
    ...(options.kernels ? { kernels: options.kernels } : {}),
  });
  const started = performance.now();
  options.onProgress?.({ phase: "passes", done: 0, total: 1, elapsedMs: 0 });
  const given = graphOf(symbol, params);
  const inputs: Record<string, InputSignature> = {};
  for (const [name, shape] of Object.entries(inputShapes)) {
    const dtype = options.inputTypes && Object.hasOwn(options.inputTypes, name)
      ? options.inputTypes[name]
      : "float32";
    inputs[name] = { shape, dtype };
  }
  const threads = options.threads ?? getDefaultThreads();
  // The helper's worker comes up while the passes run.
  const helper = compileHelper(threads, options.compileHelper);
  try {
    const graph = options.optimize === false
      ? given
      : runWasmPasses(engine.passes, given, { inputs });
    return lowerWasm(graph, { inputs }, {
      threads,
      relaxed: options.relaxed ?? relaxedSimdSupported(),
      winograd: options.winograd ?? true,
      kernels: options.kernels ?? WASM_KERNELS,
      forceSplit: options.forceSplit ?? false,
      ...(options.blockBytes !== undefined ? { blockBytes: options.blockBytes } : {}),
      engine,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(helper ? { helper } : {}),
      started,
      weightsFirst: true,
    });
  } finally {
    void helper?.retire();
  }
}

/** What {@link lowerWasm} needs besides the graph: every option resolved. */
export interface LowerOptions {
  /** Threads requested. */
  readonly threads: number;
  /** Relaxed SIMD. */
  readonly relaxed: boolean;
  /** Winograd for 3×3 convolutions. */
  readonly winograd: boolean;
  /** The kernel generators. */
  readonly kernels: KernelTable;
  /** Force splits (tests). */
  readonly forceSplit?: boolean;
  /** Convolution product blocks (`KernelRequest.blockBytes`; tests and tuning). */
  readonly blockBytes?: number;
  /** The engine the program belongs to. */
  readonly engine: Engine;
  /** Progress of the compile's phases. */
  readonly onProgress?: ProgressCallback;
  /** When the compile began (`performance.now()`; default: when lowering begins). */
  readonly started?: number;
  /** Do not warn about fallbacks (the caller handles them). */
  readonly quiet?: boolean;
  /**
   * Lower convolutions with constant weights first, the largest first, where the pool's
   * workers compute their Winograd weights during the compile (default false: nodes in plan
   * order, which a kernel table that records its calls may rely on). Outputs are the same bits;
   * only the constants are laid out in another order.
   */
  readonly weightsFirst?: boolean;
  /**
   * A worker for a one-thread program's constant jobs and page faults (see
   * {@link CompileHelper}); the caller retires it after the compile. Absent: none, and a
   * one-thread program's memory is not shared (as ahead-of-time artifacts need).
   */
  readonly helper?: CompileHelper;
  /**
   * Run each kernel once on the process's kernel warmer while the compile goes on (default
   * true, subject to `setKernelWarming`, whose default warms only where a core is spare; see
   * `KernelWarmer`): the first run then executes optimized code.
   */
  readonly warm?: boolean;
}

/**
 * Lowers an already optimized graph (its `params` are constants) to a WASM program for the
 * given input signature. Nodes whose op has no kernel, or whose kernel generator throws
 * {@link UnsupportedError}, run their reference implementation on the host and are listed in
 * `fallbacks`; any other error from a generator fails the compile. A graph with values that
 * are not float32, or shapes that cannot be placed, throws {@link UnsupportedError}.
 */
export function lowerWasm(
  graph: Graph,
  signature: Signature,
  options: LowerOptions,
): WasmCompiled {
  const started = options.started ?? performance.now();
  const report = progressReporter(started, options.onProgress);
  const sym = graph.symbol;
  const bound = graph.params;
  const relaxed = options.relaxed;
  const requested = checkThreads(options.threads, "compileWasm");
  const threads = threadsSupported() ? requested : 1;
  // A one-thread program compiled with a helper worker gets a shared memory, which the
  // helper computes constants into and faults in (CompileHelper).
  const helper = threads === 1 ? options.helper : undefined;
  const shared = threads > 1 || helper !== undefined;
  // The workers start now (where the runtime creates them synchronously), so that they are up
  // to take the first run's parts.
  const pool = poolFor(threads);
  // Only a pool whose workers exist takes jobs: otherwise they would be computed here anyway,
  // and lowering the largest convolutions first (below) would only pack their weights before
  // the JIT has optimized the packing (measured: ResNet-18's packing 7.6 → 25 ms on a fresh
  // Deno pool, whose workers start after the first output).
  const jobTarget: DeriveTarget | undefined = pool?.deriving ? pool : helper;
  const jobWorkers = jobTarget === pool ? threads - 1 : 1;
  const warmer = options.warm === false ? undefined : kernelWarmer(threads);
  warmer?.start();
  const toucher = warmer ?? helper;
  report("plan");
  // Passes may fold inputs away or bind new constants: only the optimized graph's inputs count.
  const { shapeDict, typeDict, shapes, types } = graphFacts(graph, signature);
  for (const n of sym.nodes()) {
    types.get(n)!.forEach((t, i) => {
      if (t === undefined) {
        throw new UnsupportedError(
          `the dtype of '${n.outputName(i)}' is unknown before running the graph`,
        );
      }
    });
  }
  const shapeOf = (e: Entry): Shape => shapes.get(e.node)![e.index]!;
  const typeOf = (e: Entry): DType => types.get(e.node)![e.index]!;
  const plan = planMemory(
    sym,
    Object.fromEntries(sym.listInputs().map((n) => [n, shapeDict[n]])),
    typeDict,
  );

  // Layout: inputs, planned buffers, constants (as steps first read them), then one scratch
  // area shared by all steps.
  let top = 0;
  const alloc = (bytes: number) => {
    const ptr = top;
    top += align16(Math.max(bytes, 4));
    return ptr;
  };
  // Constants get memory only when a step reads them as they are: a weight that every kernel
  // takes in another form (packed, transformed) is uploaded only in that form.
  const varPtr = new Map<string, number>();
  const constants: (ProgramBuffer & { values: StorageArray; resident?: boolean })[] = [];
  const constantCache = new Map<string, Float32Array | undefined>();
  // Float32 storage is used as it is (read only): copying a model's weights costs fresh
  // memory, which dominates a cold compile. Kernels see other constants as float32 values:
  // exact for 16-bit floats and small integers. Taken when first wanted: a deferred constant
  // (a folded BatchNorm's weights, scaled_rows.ts) whose kernels pack it from its definition
  // is never computed.
  const constantValues = (name: string): Float32Array | undefined => {
    if (constantCache.has(name)) return constantCache.get(name);
    const t = bound[name];
    const values = t.dtype === "float32"
      ? tensorStorage(t) as Float32Array
      : lanesReadable(t.dtype)
      ? Float32Array.from(tensorValues(t))
      : undefined;
    constantCache.set(name, values);
    return values;
  };
  const inputs = emptyRecord<ProgramBuffer>();
  for (const name of sym.listInputs()) {
    const shape = shapeDict[name];
    if (!shape) throw new SigilError(`compileWasm: no shape for input '${name}'`);
    if (!Object.hasOwn(bound, name)) {
      const dtype = typeDict[name];
      const ptr = alloc(shapeSize(shape) * elementBytes(dtype));
      varPtr.set(name, ptr);
      inputs[name] = { ptr, shape, dtype };
    }
  }
  const isConstant = (e: Entry) => e.node.isVariable && Object.hasOwn(bound, e.node.name);
  const bufferPtr = plan.buffers.map((b) => alloc(b.bytes));
  // The program's memory exists from the first constant a generator computes: packed and
  // transformed weights are written there directly (arena.ts), where the kernels read them.
  let memory: WebAssembly.Memory | undefined;
  const cover = (bytes: number) => {
    const pages = Math.ceil(bytes / 65536);
    if (pages > 65536) throw new BackendError(`WASM program needs ${bytes} bytes; too many`);
    if (memory === undefined) {
      memory = shared
        ? new WebAssembly.Memory({ initial: pages, maximum: 65536, shared: true })
        : new WebAssembly.Memory({ initial: pages });
      // A shared memory's pages are faulted in on the warmer's thread, ahead of the constants
      // written here and of the first run's buffers.
      toucher?.touch(memory, 0, pages * 65536);
      return;
    }
    const have = memory.buffer.byteLength / 65536;
    // Grown by at least a quarter at a time: a model computes hundreds of constants.
    if (pages > have) {
      const grown = Math.min(65536 - have, Math.max(pages - have, have >> 2));
      memory.grow(grown);
      toucher?.touch(memory, have * 65536, (have + grown) * 65536);
    }
  };
  const inMemory = new Map<Float32Array, { ptr: number; length: number }>();
  const arena = (length: number, slack = 0): Float32Array => {
    const ptr = alloc(length * 4);
    // With the room past the new array its caller will borrow (arena.ts), so that lending it
    // does not grow the memory (which would detach the view returned here).
    cover(top + slack);
    const view = new Float32Array(memory!.buffer, ptr, length);
    inMemory.set(view, { ptr, length });
    return view;
  };
  // Constants a kernel computes with a WASM kernel of its own (the Winograd weight transform)
  // go to the pool's workers where the memory is shared: they compute them into the program's
  // memory while this thread generates the other kernels, and what no worker has started when
  // the kernels are made is computed here (ConstantJobs). Each worker stages its inputs in
  // scratch bytes of its own in the program's memory.
  let jobs: ConstantJobs | undefined;
  const workerScratch: { at: number; bytes: number }[] = [];
  let offloaded = 0;
  const offload = (job: OffloadJob): boolean => {
    const scratchPtr = align16(top);
    if (!jobTarget || memory === undefined || scratchPtr + job.need > memory.buffer.byteLength) {
      return false;
    }
    const worker = offloaded % jobWorkers;
    let own = workerScratch[worker];
    if (own === undefined || own.bytes < job.need) {
      // Within the slack the arena allocation just covered: the memory does not grow here.
      own = workerScratch[worker] = { at: alloc(job.need), bytes: job.need };
    }
    const at = own.at;
    jobs ??= new ConstantJobs(jobTarget, memory);
    const posted = jobs.post(worker, {
      module: job.module,
      scratch: at,
      values: job.values,
      factors: job.factors,
      ops: job.ops,
    }, () => {
      const here = align16(top);
      cover(here + job.need);
      job.local(here);
    });
    if (posted) offloaded++;
    return posted;
  };
  const arenaScratch = (): ArenaScratch | undefined => {
    if (memory === undefined) return undefined;
    const ptr = align16(top);
    return {
      memory,
      ptr,
      bytes: Math.max(0, memory.buffer.byteLength - ptr),
      ...(jobTarget ? { offload } : {}),
    };
  };
  const resident: { ptr: number; length: number }[] = [];
  // Constants as float32, for kernels that run on float32 copies of 16-bit values.
  const widenedPtr = new Map<string, number>();
  const ptrOfFloat32 = (e: Entry): number => {
    const name = e.node.name;
    if (bound[name].dtype === "float32") return ptrOf(e);
    let ptr = widenedPtr.get(name);
    if (ptr === undefined) {
      const values = constantValues(name)!;
      ptr = alloc(values.length * 4);
      widenedPtr.set(name, ptr);
      constants.push({ ptr, shape: shapeDict[name], values });
    }
    return ptr;
  };
  const ptrOf = (e: Entry): number => {
    if (e.node.isVariable) {
      const name = e.node.name;
      let ptr = varPtr.get(name);
      if (ptr === undefined) {
        const t = bound[name];
        ptr = alloc(t.size * elementBytes(t.dtype));
        varPtr.set(name, ptr);
        constants.push({ ptr, shape: shapeDict[name], dtype: t.dtype, values: tensorStorage(t) });
      }
      return ptr;
    }
    const v = plan.valueOf(e);
    if (!v) throw new BackendError(`compileWasm: no buffer for '${e.node.outputName(e.index)}'`);
    return bufferPtr[v.buffer];
  };

  // Kernels are generated first, their modules compiled after (the `modules` phase). Each
  // node's steps, placement and fallback are kept by its place in the plan: nodes may be
  // lowered in another order (below).
  type Step = KernelStep | SplitStep | HostStep | (() => KernelStep | SplitStep);
  const stepsOf: Step[][] = plan.steps.map(() => []);
  let steps: Step[] = [];
  const fallbacksOf: Fallback[][] = plan.steps.map(() => []);
  let fallbacks: Fallback[] = [];
  const placementOf: WasmCompiled["placement"][number][][] = plan.steps.map(() => []);
  let placement: WasmCompiled["placement"][number][] = [];
  const table = options.kernels;
  let scratch = 0;
  const pendingScratch: { args: number[]; at: number; part: number }[] = [];
  // Float32 copies of 16-bit values around float32-only kernels share one area (steps run
  // in order, and a node's copies live only across its own steps). Conversions run whole on
  // the calling thread: they are bound by memory traffic, and a split step costs a handoff to
  // the workers (measured, AMP float16 ResNet-18 on two threads: split conversions took 22% of
  // the run and the program 1.34x float32's time; whole, 1% and 1.09x; bench/README.md).
  let convertArea = 0;
  const pendingConvert: { args: number[]; at: number; offset: number }[] = [];
  const convertStep = (
    count: number,
    from: DType,
    to: DType,
    src: number,
    dst: number,
    at: number,
    offset: number,
  ) => {
    const k = convertKernel(count, from, to, shared)!;
    const args = [src, dst];
    pendingConvert.push({ args, at, offset });
    steps.push(() => ({ kind: "kernel", module: cachedModule(k.bytes), args, label: k.label }));
  };
  // Each kernel runs once on the warmer as soon as it exists, with the arguments the program
  // will pass; the scratch and conversion areas, placed only at the end, are put past
  // everything allocated so far.
  const warmLater = (
    mods: readonly WebAssembly.Module[],
    argsList: readonly number[][],
    scratchMark: number,
    convertMark: number,
  ) => {
    if (!warmer) return;
    const base = align16(top);
    const scratchEnd = base + scratch;
    const patched = argsList.map((a) => [...a]);
    const patch = (args: number[], at: number, value: number) => {
      const i = argsList.indexOf(args);
      if (i >= 0) patched[i][at] = value;
    };
    for (const { args, at, part } of pendingScratch.slice(scratchMark)) {
      patch(args, at, base + part);
    }
    for (const { args, at, offset } of pendingConvert.slice(convertMark)) {
      patch(args, at, scratchEnd + offset);
    }
    const bytes = scratchEnd + convertArea + 64;
    const tasks: WarmTask[] = mods.map((module, i) => ({
      module,
      args: patched[i],
      bytes,
      shared,
    }));
    warmer.warm(tasks);
  };
  // Where workers compute the Winograd weights (see `offload`) and the caller allows it,
  // convolutions with constant weights are lowered first, the largest first: their transforms
  // are then handed out early and run on the workers while this thread generates the other
  // kernels, instead of being left to this thread at the end.
  const order = plan.steps.map((_, i) => i);
  if (jobTarget && options.weightsFirst) {
    const weightOf = (n: Node) =>
      (n.opName === "Convolution" || n.opName === "_sigil_fused_conv") && n.inputs.length > 1 &&
        isConstant(n.inputs[1])
        ? shapeSize(shapeOf(n.inputs[1]))
        : 0;
    const weights = plan.steps.map(weightOf);
    order.sort((a, b) => weights[b] - weights[a] || a - b);
  }
  // Convolutions that differ only in their fused epilogue (ResNet's conv + ReLU beside the
  // conv before the residual add) are told each other's epilogues, so their kernels can share
  // one module (KernelRequest.epilogues).
  const epiloguesOf = new Map<Node, (ScalarExpr | undefined)[]>();
  {
    const groups = new Map<string, Node[]>();
    for (const n of plan.steps) {
      if (n.opName !== "Convolution" && n.opName !== "_sigil_fused_conv") continue;
      const { epilogue: _, ...attrs } = n.parsed as Record<string, unknown>;
      const key = JSON.stringify([
        attrs,
        n.inputs.map((e) => [shapeOf(e), typeOf(e), isConstant(e)]),
        shapes.get(n),
        types.get(n),
      ]);
      const group = groups.get(key);
      if (group) group.push(n);
      else groups.set(key, [n]);
    }
    for (const group of groups.values()) {
      const distinct = [
        ...new Set(group.map((n) => (n.parsed as { epilogue?: ScalarExpr }).epilogue)),
      ];
      if (distinct.length < 2) continue;
      const text = (e: ScalarExpr | undefined) => (e ? printScalar(e) : "");
      distinct.sort((x, y) => (text(x) < text(y) ? -1 : text(x) > text(y) ? 1 : 0));
      for (const n of group) epiloguesOf.set(n, distinct);
    }
  }
  report("kernels", 0, plan.steps.length);
  for (const [done, index] of order.entries()) {
    const node = plan.steps[index];
    steps = stepsOf[index];
    fallbacks = fallbacksOf[index];
    placement = placementOf[index];
    if (done > 0) report("kernels", done, plan.steps.length);
    const ins = node.inputs.map(shapeOf);
    const outs = shapes.get(node)!.map((s) => s!);
    const inTypes = node.inputs.map(typeOf);
    const outTypes = types.get(node)!.map((t) => t!);
    const outPtrs = outs.map((_, i) => ptrOf(node.entry(i)));
    const opName = node.op!.name;
    if (VIEW_OPS.has(opName)) {
      const [src, dst] = [ptrOf(node.inputs[0]), outPtrs[0]];
      const bytes = shapeSize(outs[0]) * elementBytes(outTypes[0]);
      steps.push({
        kind: "host",
        label: `copy ${opName}`,
        run: (m) => new Uint8Array(m).copyWithin(dst, src, src + bytes),
      });
      placement.push({ node: node.name, op: opName, how: "copy", label: "copy" });
      continue;
    }
    if (opName === "Concat" || opName === "SliceChannel") {
      const bytes = elementBytes(outTypes[0]);
      steps.push(concatSplitStep(node, ins, outs, node.inputs.map(ptrOf), outPtrs, bytes));
      placement.push({ node: node.name, op: opName, how: "copy", label: "copy" });
      continue;
    }
    const generator = generatorFor(table, node);
    // Elementwise kernels are bound by memory traffic: next to the graph's inputs and outputs
    // (copied in and out by the calling thread, so in its cache) a second thread only adds
    // cross-core traffic (measured: relu(x·a+b) over 1M floats, 0.81 ms on one thread and
    // 1.06 ms split), so they stay whole there.
    const atBoundary = node.inputs.some((e) => e.node.isVariable && !isConstant(e)) ||
      sym.outputs.some((e) => e.node === node);
    const parts = atBoundary && !options.forceSplit && node.op?.scalar?.(node.parsed) ? 1 : threads;
    const scaledIns = node.inputs.map((e) =>
      isConstant(e) ? scaledRowsOf(bound[e.node.name]) : undefined
    );
    const constIns: (Float32Array | undefined)[] = [];
    node.inputs.forEach((e, i) => {
      if (!isConstant(e)) constIns[i] = undefined;
      else if (scaledIns[i] === undefined) constIns[i] = constantValues(e.node.name);
      else {
        // Computed only if the generator reads it (KernelRequest.scaledConstants).
        Object.defineProperty(constIns, i, {
          get: () => constantValues(e.node.name),
          enumerable: true,
        });
      }
    });
    const request = {
      constants: constIns,
      ...(scaledIns.some((d) => d !== undefined) ? { scaledConstants: scaledIns } : {}),
      node,
      inputs: ins,
      outputs: outs,
      relaxed,
      shared,
      parts,
      forceSplit: options.forceSplit ?? false,
      winograd: options.winograd,
      ...(options.blockBytes !== undefined ? { blockBytes: options.blockBytes } : {}),
      ...(epiloguesOf.has(node) ? { epilogues: epiloguesOf.get(node) } : {}),
    };
    const allFloat32 = inTypes.every((t) => t === "float32") &&
      outTypes.every((t) => t === "float32");
    // Typed: the kernel reads and writes the buffers as they are. Widened: a float32 kernel
    // over float32 copies of the 16-bit (or index) inputs and outputs.
    let kernel: CompiledKernel | undefined;
    let widened = false;
    let reason = generator ? "" : `the WASM engine has no kernel for ${opName}`;
    try {
      if (generator && allFloat32) {
        kernel = withConstantArena(arena, () => generator(request), arenaScratch);
      } else if (generator && generator === table.elementwise) {
        kernel = generator({ ...request, inputTypes: inTypes, outputTypes: outTypes });
      } else if (generator && widenable(node, inTypes, outTypes)) {
        kernel = generator(request);
        widened = kernel !== undefined;
      } else if (generator) {
        reason = `the ${opName} kernel computes in float32, which is not exact for ${
          describeTypes(inTypes, outTypes)
        }`;
      }
      if (generator && !kernel && !reason) {
        reason = `the ${opName} kernel does not cover these attributes, shapes or dtypes`;
      }
    } catch (e) {
      if (e instanceof UnsupportedError) reason = e.message;
      else {
        throw new BackendError(
          `compiling node '${node.name}' (${opName}) for the WASM engine: ${
            e instanceof Error ? e.message : String(e)
          }`,
          { cause: e },
        );
      }
    }
    if (kernel) {
      const k = kernel;
      const modules = k.parts ?? [k.bytes];
      // Where each non-float32 input and output has its float32 copy in the convert area.
      const copyAt = new Map<number, number>();
      if (widened) {
        let at = 0;
        const take = (slot: number, elements: number) => {
          copyAt.set(slot, at);
          at += align16(elements * 4);
        };
        node.inputs.forEach((e, i) => {
          if (inTypes[i] !== "float32" && !isConstant(e)) take(i, shapeSize(ins[i]));
        });
        outTypes.forEach((t, j) => {
          if (t !== "float32") take(ins.length + j, shapeSize(outs[j]));
        });
        convertArea = Math.max(convertArea, at);
        node.inputs.forEach((e, i) => {
          const offset = copyAt.get(i);
          if (offset === undefined) return;
          convertStep(shapeSize(ins[i]), inTypes[i], "float32", ptrOf(e), 0, 1, offset);
        });
      }
      // Constants the kernel (or each part) wants in another form: uploaded once, passed instead.
      const uploaded = new Map<Float32Array, number>();
      const insOf = (part: number) => {
        const own = k.parts ? k.partConstantInputs?.[part] : undefined;
        const replaced = own ?? k.constantInputs;
        return node.inputs.map((e, i) => {
          const values = replaced?.get(i);
          if (values === undefined) {
            if (!widened || inTypes[i] === "float32") return ptrOf(e);
            return isConstant(e) ? ptrOfFloat32(e) : -1;
          }
          let ptr = uploaded.get(values);
          if (ptr === undefined) {
            const at = inMemory.get(values);
            if (at !== undefined) {
              ptr = at.ptr;
              resident.push(at);
            } else {
              ptr = alloc(values.length * 4);
              constants.push({ ptr, shape: [values.length], values });
            }
            uploaded.set(values, ptr);
          }
          return ptr;
        });
      };
      // `part` -1: the whole kernel (`bytes`), else one of `parts`.
      const argsOf = (part: number) => {
        const extra = part < 0 || !k.parts ? k.extraArgs : k.partExtraArgs?.[part];
        // The whole kernel reads part 0's constants (they are shared) and its scratch.
        const index = Math.max(part, 0);
        const args = [...insOf(index), ...outPtrs, ...(extra ?? [])];
        // A part's pointers moved to where its share starts (CompiledKernel.partOffsets).
        const moved = part >= 0 && k.parts ? k.partOffsets?.[part] : undefined;
        const by = (slot: number) => moved?.[slot] ?? 0;
        for (const [slot, offset] of copyAt) {
          if (slot >= ins.length || args[slot] === -1) {
            pendingConvert.push({ args, at: slot, offset: offset + by(slot) });
          }
        }
        if (moved) {
          for (let slot = 0; slot < ins.length + outPtrs.length; slot++) {
            const pending = copyAt.has(slot) && (slot >= ins.length || args[slot] === -1);
            if (!pending) args[slot] += by(slot);
          }
        }
        if (k.scratchBytes > 0) {
          const each = align16(k.scratchBytes);
          scratch = Math.max(scratch, each * modules.length);
          pendingScratch.push({ args, at: args.length, part: index * each });
          args.push(0);
        }
        return args;
      };
      const label = widened ? `${k.label} (${outTypes[0]} via float32)` : k.label;
      const scratchMark = pendingScratch.length;
      const convertMark = pendingConvert.length;
      const compiledModules = modules.map(cachedModule);
      if (modules.length > 1) {
        // The unsplit kernel for runs without workers, where it costs no extra constants (its
        // constants are the parts' own; parts that pack their own filters have other ones).
        const shareConstants = (k.partConstantInputs ?? []).every((m) =>
          !m || [...m].every(([i, v]) => k.constantInputs?.get(i) === v)
        );
        const wholeArgs = shareConstants ? argsOf(-1) : undefined;
        const args = modules.map((_, i) => argsOf(i));
        warmLater(compiledModules, args, scratchMark, convertMark);
        steps.push(() => ({
          kind: "split",
          modules: compiledModules,
          args,
          label: `${label} (${modules.length} parts)`,
          ...(wholeArgs ? { whole: { module: cachedModule(k.bytes), args: wholeArgs } } : {}),
        }));
      } else {
        const args = argsOf(k.parts ? 0 : -1);
        warmLater(compiledModules, [args], scratchMark, convertMark);
        steps.push(() => ({
          kind: "kernel",
          module: compiledModules[0],
          args,
          label,
        }));
      }
      outTypes.forEach((t, j) => {
        const offset = copyAt.get(ins.length + j);
        if (offset === undefined) return;
        convertStep(shapeSize(outs[j]), "float32", t, 0, outPtrs[j], 0, offset);
      });
      placement.push({ node: node.name, op: opName, how: "kernel", label });
      continue;
    }
    steps.push(fallbackStep(node, ins, outs, inTypes, outTypes, node.inputs.map(ptrOf), outPtrs));
    placement.push({ node: node.name, op: opName, how: "fallback", label: "reference" });
    fallbacks.push({ node: node.name, op: opName, reason, runsOn: "reference" });
  }
  jobs?.finish();
  steps = stepsOf.flat();
  fallbacks = fallbacksOf.flat();
  placement = placementOf.flat();
  report("kernels", plan.steps.length, plan.steps.length);
  report("modules");
  const made = steps.map((s) => typeof s === "function" ? s() : s);
  const outputs = sym.outputs.map((e) => ({
    ptr: ptrOf(e),
    shape: shapeOf(e),
    dtype: typeOf(e),
  }));
  const scratchPtr = alloc(scratch);
  for (const { args, at, part } of pendingScratch) args[at] = scratchPtr + part;
  const convertPtr = alloc(convertArea);
  for (const { args, at, offset } of pendingConvert) args[at] = convertPtr + offset;
  // Kernels may read up to 16 bytes past a buffer (vector tails).
  const memoryBytes = top + 64;
  if (memory) cover(memoryBytes);
  for (const { ptr, length } of resident) {
    constants.push({
      ptr,
      shape: [length],
      values: new Float32Array(memory!.buffer, ptr, length),
      resident: true,
    });
  }
  const program: WasmProgram = {
    memoryBytes,
    steps: made,
    inputs,
    outputs,
    constants,
    shared,
  };
  report("instantiate");
  const executor = new WasmExecutor(program, {
    ...(pool ? { pool } : {}),
    ...(memory ? { memory } : {}),
  });
  report("done", 1, 1);
  if (fallbacks.length && !options.quiet) warnFallbacks(options.engine.name, fallbacks);
  const outShapes = program.outputs.map((o) => o.shape);
  const outTypes = program.outputs.map((o): DType => o.dtype ?? "float32");
  const inputNames = Object.keys(inputs);
  // A run may also pass what the source graph took and the passes folded away.
  const accepted = [...Object.keys(signature.inputs), ...sym.listInputs()];
  const toTensors = (values: StorageArray[], shp: readonly Shape[], typ: readonly DType[]) =>
    values.map((v, i) => new Tensor(v, shp[i], typ[i]));
  // With workers, kernels not warmed when the first run starts stay unwarmed: the warmer would
  // take a core from the run. With one thread it goes on ahead of the run, on another core,
  // until the run ends.
  let warming = warmer !== undefined;
  const once = <T>(run: () => T): T => {
    if (!warming) return run();
    warming = false;
    if (threads > 1) warmer!.stop();
    try {
      return run();
    } finally {
      if (threads === 1) warmer!.stop();
    }
  };
  return {
    engine: options.engine,
    inputs: inputNames,
    outputs: outShapes.map((shape, i) => ({ shape, dtype: outTypes[i] })),
    fallbacks,
    memoryBytes,
    program,
    plan,
    placement,
    run(given, runOptions = {}) {
      if (runOptions.onNode) {
        throw new SigilError("op hooks need every node's outputs: run them on referenceEngine");
      }
      checkRunInputs(given, inputs, accepted, "compiled graph");
      const arrays: Record<string, StorageArray> = {};
      for (const name of inputNames) {
        const t = given[name];
        const dtype = inputs[name].dtype ?? "float32";
        arrays[name] = t.dtype === dtype ? tensorStorage(t) : encode(dtype, tensorValues(t));
      }
      return toTensors(once(() => executor.run<StorageArray>(arrays)), outShapes, outTypes);
    },
    runTensors: (arrays, shp = outShapes, typ = outTypes) =>
      toTensors(once(() => executor.run(arrays)), shp, typ),
    runRaw: (arrays, into) => once(() => executor.run(arrays, into)),
    profile: (arrays, opts) => once(() => executor.profile(arrays, opts)),
    threads,
    get threadsReady() {
      return executor.threaded;
    },
    ready: () => executor.ready(),
    dispose: () => executor.dispose(),
  };
}

/**
 * Concat and SliceChannel as block copies: along the axis, each input (or output) owns a
 * contiguous run of `dim * inner` elements in every one of the `outer` rows.
 */
function concatSplitStep(
  node: Node,
  ins: readonly Shape[],
  outs: readonly Shape[],
  inPtrs: readonly number[],
  outPtrs: readonly number[],
  elementBytes: number,
): HostStep {
  const concat = node.opName === "Concat";
  const whole = concat ? outs[0] : ins[0];
  const parts = concat ? ins : outs;
  const rank = whole.length;
  const rawAxis = concat ? node.parsed.dim as number : node.parsed.axis as number;
  const axis = rawAxis < 0 ? rawAxis + rank : rawAxis;
  const outer = shapeSize(whole.slice(0, axis));
  const inner = shapeSize(whole.slice(axis + 1));
  const wholeRow = whole[axis] * inner * elementBytes;
  // A squeezed split output has lost the axis; its run along it is one element wide.
  const runs = parts.map((s) => (s.length === rank ? s[axis] : 1) * inner * elementBytes);
  const wholePtr = concat ? outPtrs[0] : inPtrs[0];
  const partPtrs = concat ? inPtrs : outPtrs;
  return {
    kind: "host",
    label: `${node.opName} as copies`,
    run: (m) => {
      const bytes = new Uint8Array(m);
      for (let o = 0; o < outer; o++) {
        let at = wholePtr + o * wholeRow;
        parts.forEach((_, i) => {
          const src = partPtrs[i] + o * runs[i];
          if (concat) bytes.copyWithin(at, src, src + runs[i]);
          else bytes.copyWithin(src, at, at + runs[i]);
          at += runs[i];
        });
      }
    },
  };
}

/** A host step that runs a node's reference implementation over the program's memory. */
function fallbackStep(
  node: Node,
  ins: readonly Shape[],
  outs: readonly Shape[],
  inTypes: readonly DType[],
  outTypes: readonly DType[],
  inPtrs: readonly number[],
  outPtrs: readonly number[],
): HostStep {
  const called = node.calledGraph;
  return {
    kind: "host",
    label: `reference ${node.opName}`,
    run: (m) => {
      const args = ins.map((s, i) =>
        new Tensor(storageView(m, inTypes[i], inPtrs[i], shapeSize(s)).slice(), s, inTypes[i])
      );
      const results = called
        ? evaluate(called, Object.fromEntries(called.listInputs().map((n, i) => [n, args[i]])))
        : node.op!.reference(args, node.parsed, { outShapes: outs, outTypes });
      results.forEach((t, i) => {
        const values = t.dtype === outTypes[i]
          ? tensorStorage(t)
          : encode(outTypes[i], tensorValues(t));
        const view = storageView(m, outTypes[i], outPtrs[i], shapeSize(outs[i]));
        (view as Float32Array).set(values as Float32Array);
      });
    },
  };
}

/**
 * Whether a float32 kernel over float32 copies of the node's values computes what the
 * reference does, up to float32 arithmetic: every value float32, float16 or bfloat16 (widened
 * exactly, outputs rounded once), or Embedding's integer indices (exact below 2^24 rows, and
 * clipped alike above).
 */
function widenable(node: Node, inTypes: readonly DType[], outTypes: readonly DType[]): boolean {
  if (!outTypes.every(isKernelFloat)) return false;
  return inTypes.every((t, i) =>
    isKernelFloat(t) ||
    (node.opName === "Embedding" && i === 0 && lanesReadable(t) &&
      (node.parsed.input_dim as number) <= 2 ** 24)
  );
}

/** The dtypes of 16-bit floats and of integers, as a fallback reason names them. */
function describeTypes(inTypes: readonly DType[], outTypes: readonly DType[]): string {
  const seen = [...new Set([...inTypes, ...outTypes])].filter((t) => t !== "float32");
  return seen.join(" and ");
}

/**
 * Runs an engine's passes for a signature: elementwise fusion is told the inputs' dtypes and
 * also fuses float16 and bfloat16 chains (the WASM kernels compute them in float32 and round
 * once at the chain's end); integer chains stay unfused, since rounding after each op is part
 * of their meaning.
 */
export function runWasmPasses(passes: readonly Pass[], graph: Graph, signature: Signature): Graph {
  const inputTypes = emptyRecord<DType>();
  for (const [name, s] of Object.entries(signature.inputs)) inputTypes[name] = s.dtype;
  const dtypes: DType[] = ["float32", "float64", "float16", "bfloat16"];
  return passes.reduce(
    (g, pass) =>
      pass === fuseElementwise
        ? fuseElementwise.run(g, { inputTypes, dtypes })
        : pass === fuseConvEpilogue
        ? fuseConvEpilogue.run(g, { inputTypes })
        : pass.run(g),
    graph,
  );
}
