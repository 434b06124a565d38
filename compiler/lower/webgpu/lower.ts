/**
 * Lowering an inference graph to a WebGPU program (the WebGPU engine's compile, after its
 * passes), and running it.
 *
 * Buffers follow the static memory plan: one GPU buffer per planned buffer (a few: values whose
 * lives do not overlap share one), one per graph input, and the constants packed into as few
 * buffers as the device's binding limit allows, uploaded once at compile time. Each op node
 * becomes the passes of a kernel from the engine's kernel table (pipelines are cached per
 * device by shader text, so repeated blocks compile once; bind groups are made once per
 * program), a buffer copy (reshapes and other views), or a listed fallback running the op's
 * reference implementation on the host (ops without a kernel for these attributes).
 *
 * Dtypes: float32, float16 and bfloat16 values (graphs may mix them, as AMP-converted graphs
 * do) are stored as the host stores them, 16-bit floats in 16 bits: generators write float32
 * kernels and every binding is retyped to its value's storage (storage.ts): `array<f16>` with
 * `shader-f16`, else 16-bit halves of `u32` words; kernels compute in f32. int32, int8, uint8
 * and bool values take one `i32` word each (dtypes.ts); a node with such a value uses a kernel
 * only where its generator honours dtypes, else runs on the host. Other dtypes (float64,
 * int64) throw {@link UnsupportedError}.
 *
 * A run writes the inputs (or copies them on the device, for inputs a GPU buffer of this
 * device holds), encodes every dispatch and copy into one command buffer (split only where a
 * host fallback must read values back), submits it and reads the outputs back with `mapAsync`
 * (or, with `{ resident: true }`, hands them out as tensors held in GPU buffers): runs are
 * asynchronous ({@link WebGPUCompiled.runAsync}); runs of one program are queued one after
 * another, since they share its buffers. Device loss, out-of-memory and validation errors are
 * {@link GpuDeviceError}s naming the node.
 *
 * @module
 */
import { graphFacts, progressReporter } from "../facts.ts";
import { evaluate } from "../../interpreter.ts";
import { type MemoryPlan, planMemory } from "../../passes/memory_plan.ts";
import type { Graph } from "../../passes/pass.ts";
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
import { checkRunInputs } from "../../validate.ts";
import type { Entry } from "../../symbol.ts";
import {
  BackendError,
  GpuDeviceError,
  SigilError,
  UnsupportedError,
} from "../../../runtime/errors.ts";
import { formatShape, type Shape, shapeSize } from "../../../runtime/shape.ts";
import type { DType, StorageArray } from "../../../runtime/dtype.ts";
import { gpu as gpuDevice } from "../../../runtime/device.ts";
import {
  Tensor,
  tensorDeviceStorage,
  tensorStorage,
  tensorValues,
} from "../../../runtime/tensor.ts";
import { emptyRecord } from "../../../runtime/record.ts";
import { BUFFER_USAGE, type GpuContext, MAP_READ } from "./gpu.ts";
import { gpuGeneratorFor, type GpuKernel, type GpuKernelTable } from "./kernel.ts";
import {
  deviceBytes,
  fromDeviceBytes,
  type GpuStorage,
  isHalf,
  specializeStorage,
  storageFor,
  toDeviceArray,
} from "./storage.ts";
import { defaultTuning, type GpuTuning, tunedLimits, tuningCandidates } from "./tuning.ts";
import { gpuHeld, HELD_USAGE, heldOn, uploadBytes } from "./resident.ts";

/** Ops that only reinterpret their input's elements: they become a buffer copy. */
export const GPU_VIEW_OPS: ReadonlySet<string> = new Set([
  "Reshape",
  "Flatten",
  "expand_dims",
  "squeeze",
  "_copy",
]);

/** How {@link WebGPULowerOptions.tune} picks each kernel's workgroup and tile choice. */
export type GpuTuneOption = boolean | { readonly candidate: number };

/** What {@link lowerWebGPU} needs besides the graph. */
export interface WebGPULowerOptions {
  /** The device. */
  readonly gpu: GpuContext;
  /** The kernel generators. */
  readonly kernels: GpuKernelTable;
  /** The engine the program belongs to. */
  readonly engine: Engine;
  /** Progress of the compile's phases. */
  readonly onProgress?: ProgressCallback;
  /** When the compile began (`performance.now()`). */
  readonly started?: number;
  /** Do not warn about fallbacks (the caller handles them). */
  readonly quiet?: boolean;
  /**
   * Workgroup sizes and GEMM tiles: `false` (default) takes the table's choice (tuning.ts);
   * `true` times each kernel's candidates once, before the first run, and keeps the fastest
   * (cached per device and kernel signature, so later programs reuse it); `{ candidate: i }`
   * takes the i-th candidate of each kernel (the last where it has fewer), untimed.
   */
  readonly tune?: GpuTuneOption;
  /** Runs hand out outputs held in GPU buffers unless a run says otherwise (default false). */
  readonly resident?: boolean;
}

/** Options of {@link WebGPUCompiled.runAsync}. */
export interface WebGPURunOptions extends RunOptions {
  /**
   * Hand out the outputs as tensors held in GPU buffers (`await t.data()` reads one back;
   * feeding one to another program of the device copies it on the device). Default: the
   * program's `resident` option.
   */
  readonly resident?: boolean;
}

/** One node's time in a {@link WebGPUProfile}. */
export interface WebGPUProfileEntry {
  /** The node. */
  readonly node: string;
  /** Its op. */
  readonly op: string;
  /** What ran: a kernel's label, `copy ...` or `reference <op>` for a host fallback. */
  readonly label: string;
  /** Milliseconds. */
  readonly ms: number;
}

/** A profile of one run (see {@link WebGPUCompiled.profileAsync}). */
export interface WebGPUProfile {
  /** `timestamp-query`: kernels timed on the GPU; `cpu`: each step submitted alone and awaited. */
  readonly method: "timestamp-query" | "cpu";
  /** What the figures mean and leave out. */
  readonly note: string;
  /** Every step, in order. */
  readonly nodes: readonly WebGPUProfileEntry[];
  /** Their sum. */
  readonly totalMs: number;
}

/** What an autotuning program chose for one kernel. */
export interface WebGPUTuned {
  /** The node. */
  readonly node: string;
  /** Its op. */
  readonly op: string;
  /** The candidates' labels. */
  readonly candidates: readonly string[];
  /** The index chosen. */
  readonly chosen: number;
  /** Whether the choice came from the cache (an earlier program timed the same kernel). */
  readonly cached: boolean;
}

/** Where a value lives on the device: a buffer and a byte range, and how it is stored. */
interface Place {
  readonly buffer: GPUBuffer;
  readonly offset: number;
  readonly bytes: number;
  readonly dtype: DType;
}

interface Dispatch {
  readonly pipeline: GPUComputePipeline;
  readonly bindGroup: GPUBindGroup;
  readonly workgroups: readonly [number, number, number];
}

/** A program step. */
type Step =
  | {
    kind: "kernel";
    node: string;
    op: string;
    variants: { label: string; dispatches: Dispatch[] }[];
    chosen: number;
    /** The kernel signature (cache key of a tuned choice). */
    key: string;
  }
  | { kind: "copy"; node: string; op: string; src: Place; dst: Place; bytes: number; label: string }
  | {
    kind: "host";
    node: string;
    op: string;
    label: string;
    reads: readonly (Place | Tensor)[];
    shapes: readonly Shape[];
    writes: readonly Place[];
    outShapes: readonly Shape[];
    outTypes: readonly DType[];
    compute: (inputs: Tensor[]) => Tensor[];
  };

/** A compiled graph: a {@link Program} of the WebGPU engine, with its details. */
export interface WebGPUCompiled extends Program {
  /** The memory plan its buffers follow. */
  readonly plan: MemoryPlan;
  /** Per op node: `kernel`, `copy` or `fallback`, with its label. */
  readonly placement: readonly {
    node: string;
    op: string;
    how: "kernel" | "copy" | "fallback";
    label: string;
  }[];
  /** Compute passes one run dispatches. */
  readonly dispatches: number;
  /** How each binding stores its elements, by storage (`f32`, `f16`, `f16-packed`, ...): counts. */
  readonly storage: Readonly<Partial<Record<GpuStorage, number>>>;
  /** The autotuning choices, once made (empty for programs that do not tune). */
  readonly tuning: readonly WebGPUTuned[];
  /**
   * Runs on tensors by input name; resolves with the outputs read back (host tensors), or held
   * in GPU buffers with `{ resident: true }`. Inputs held in this device's buffers are copied
   * on the device.
   */
  runAsync(inputs: Readonly<Record<string, Tensor>>, options?: WebGPURunOptions): Promise<Tensor[]>;
  /**
   * Runs on raw arrays by input name: each the input dtype's storage array (float16 as
   * Uint16Array bit patterns) or plain numbers; resolves with the outputs' storage arrays (or
   * fills `into`).
   */
  runRawAsync(
    inputs: Readonly<Record<string, ArrayLike<number>>>,
    into?: readonly StorageArray[],
  ): Promise<StorageArray[]>;
  /**
   * Times one run per node: on the GPU with timestamp queries where the device has
   * `timestamp-query`, else each step submitted alone and awaited (CPU time; says so in
   * `note`).
   */
  profileAsync(inputs: Readonly<Record<string, Tensor>>): Promise<WebGPUProfile>;
  /**
   * Resolves when every pipeline compiled and every buffer was allocated, and (autotuning
   * programs) the choices are made; rejects with a `BackendError` naming a kernel that did not
   * compile, or a {@link GpuDeviceError} naming the node whose buffer found no memory.
   */
  ready(): Promise<void>;
}

/** Pipelines by shader text, per device: repeated kernels (ResNet's blocks) compile once. */
const pipelines = new WeakMap<GPUDevice, Map<string, PipelineEntry>>();

/** Autotuned choices per device, by kernel signature. */
const tuned = new WeakMap<GPUDevice, Map<string, number>>();

interface PipelineEntry {
  readonly pipeline: GPUComputePipeline;
  /** Resolves with an error message, or undefined when the shader compiled. */
  readonly checked: Promise<string | undefined>;
}

function pipelineFor(device: GPUDevice, code: string, label: string): PipelineEntry {
  let byCode = pipelines.get(device);
  if (!byCode) pipelines.set(device, byCode = new Map());
  const found = byCode.get(code);
  if (found) return found;
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code, label });
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module, entryPoint: "main" },
    label,
  });
  const checked = device.popErrorScope().then(async (err) => {
    if (!err) return undefined;
    const info = await module.getCompilationInfo?.().catch(() => undefined);
    const detail = info?.messages?.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join("; ");
    return `${err.message}${detail ? ` (${detail})` : ""}`;
  });
  const entry = { pipeline, checked };
  byCode.set(code, entry);
  return entry;
}

const align = (n: number, a: number) => Math.ceil(n / a) * a;

/** A 53-bit FNV-style hash of a string (kernel signatures as cache keys). */
function hash(text: string): string {
  let h1 = 0x811c9dc5, h2 = 0x01000193;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
  }
  return `${(h1 >>> 0).toString(16)}${(h2 >>> 0).toString(16)}`;
}

/** A dtype as generators see it: 16-bit floats are float32 (storage.ts retypes them). */
function asGenerated(dtype: DType): DType {
  return isHalf(dtype) ? "float32" : dtype;
}

/**
 * Lowers an optimized graph (its `params` are constants) to a WebGPU program. Nodes whose op
 * has no kernel, or whose generator throws {@link UnsupportedError}, run their reference
 * implementation on the host and are listed in `fallbacks`; any other generator error fails
 * the compile. A graph with values the device does not hold (float64, int64), or sizes past
 * the device's limits, throws {@link UnsupportedError}.
 */
export function lowerWebGPU(
  graph: Graph,
  signature: Signature,
  options: WebGPULowerOptions,
): WebGPUCompiled {
  const started = options.started ?? performance.now();
  const report = progressReporter(started, options.onProgress);
  const { device, limits } = options.gpu;
  const sym = graph.symbol;
  const bound = graph.params;
  report("plan");
  const { shapeDict, typeDict, shapes, types } = graphFacts(graph, signature);
  const storageKinds: Partial<Record<GpuStorage, number>> = {};
  const kindOf = (dtype: DType): GpuStorage => storageFor(dtype, options.gpu.f16);
  for (const n of sym.nodes()) {
    types.get(n)!.forEach((t, i) => {
      try {
        kindOf(t!);
      } catch (e) {
        throw new UnsupportedError(`'${n.outputName(i)}': ${(e as Error).message}`);
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
  // Buffers are sized as the device stores values (integers widened to words, storage.ts).
  const valueBytes = (v: { shape: Shape; dtype: DType }) =>
    shapeSize(v.shape) * deviceBytes(v.dtype);
  const bufferBytes = plan.buffers.map(() => 0);
  for (const v of plan.values) {
    bufferBytes[v.buffer] = Math.max(bufferBytes[v.buffer], valueBytes(v));
  }

  const maxBinding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const owned: GPUBuffer[] = [];
  // Allocations are checked for memory asynchronously; a failure names the buffer's node.
  const memoryChecks: Promise<GpuDeviceError | undefined>[] = [];
  const makeBuffer = (
    bytes: number,
    usage: number,
    label: string,
    owner?: { node: string; op: string },
  ): GPUBuffer => {
    const size = align(Math.max(bytes, 16), 16);
    if (size > limits.maxBufferSize) {
      throw new UnsupportedError(
        `${label} needs ${bytes} bytes; the device's buffers hold at most ${limits.maxBufferSize}`,
      );
    }
    device.pushErrorScope("out-of-memory");
    const b = device.createBuffer({ size, usage, label });
    memoryChecks.push(
      device.popErrorScope().then((err) =>
        err
          ? new GpuDeviceError(
            `WebGPU: no memory for ${label} (${size} bytes)${
              owner ? ` of node '${owner.node}' (${owner.op})` : ""
            }: ${err.message}`,
            "out-of-memory",
            owner?.node,
            owner?.op,
          )
          : undefined
      ),
    );
    owned.push(b);
    return b;
  };
  const storage = HELD_USAGE;
  const checkBinding = (bytes: number, what: string) => {
    if (bytes > maxBinding) {
      throw new UnsupportedError(
        `${what} is ${bytes} bytes; one WebGPU binding spans at most ${maxBinding}`,
      );
    }
  };

  // Graph inputs, then planned buffers; constants are placed as steps first read them.
  const inputPlace = new Map<string, Place>();
  const inputs = emptyRecord<{ place: Place; shape: Shape }>();
  let failed: unknown;
  try {
    for (const name of sym.listInputs()) {
      const shape = shapeDict[name];
      if (!shape) throw new SigilError(`WebGPU compile: no shape for input '${name}'`);
      if (Object.hasOwn(bound, name)) continue;
      const dtype = typeDict[name] ?? "float32";
      const bytes = shapeSize(shape) * deviceBytes(dtype);
      checkBinding(bytes, `input '${name}' ${formatShape(shape)}`);
      const place = {
        buffer: makeBuffer(bytes, storage, "input", { node: name, op: "input" }),
        offset: 0,
        bytes,
        dtype,
      };
      inputPlace.set(name, place);
      inputs[name] = { place, shape };
    }
  } catch (e) {
    failed = e;
  }
  const destroyAll = () => owned.forEach((b) => b.destroy());
  if (failed) {
    destroyAll();
    throw failed;
  }
  try {
    return build();
  } catch (e) {
    destroyAll();
    throw e;
  }

  function build(): WebGPUCompiled {
    const planned = plan.buffers.map((b) => {
      checkBinding(bufferBytes[b.id], `a planned buffer`);
      const first = b.values[0];
      return makeBuffer(
        bufferBytes[b.id],
        storage,
        "planned",
        first ? { node: first.node.name, op: first.node.opName } : undefined,
      );
    });
    // Constants: packed into arenas of at most one binding each, offsets aligned for binding.
    // Each is stored in its dtype (a float32 view a kernel made of one, in float32).
    const alignment = Math.max(4, limits.minStorageBufferOffsetAlignment);
    const pending: { values: StorageArray; at: { arena: number; offset: number } }[] = [];
    const arenas: number[] = [];
    const constPlace = new Map<
      StorageArray,
      { arena: number; offset: number; bytes: number; dtype: DType }
    >();
    const placeConstant = (values: StorageArray, dtype: DType, what: string) => {
      let got = constPlace.get(values);
      if (got) return got;
      const bytes = values.length * deviceBytes(dtype);
      checkBinding(bytes, what);
      let arena = arenas.findIndex((used) => align(used, alignment) + bytes <= maxBinding);
      if (arena < 0) {
        arena = arenas.length;
        arenas.push(0);
      }
      const offset = align(arenas[arena], alignment);
      arenas[arena] = offset + Math.max(align(bytes, 4), 4);
      got = { arena, offset, bytes, dtype };
      constPlace.set(values, got);
      pending.push({ values, at: got });
      return got;
    };
    // Float32 values of float constants, for generators that read them (repacking, folding).
    const decoded = new Map<string, Float32Array>();
    const constantF32 = (name: string): Float32Array | undefined => {
      const t = bound[name];
      if (t.dtype !== "float32" && !isHalf(t.dtype)) return undefined;
      let got = decoded.get(name);
      if (!got) {
        got = t.dtype === "float32"
          ? tensorStorage(t) as Float32Array
          : Float32Array.from(tensorValues(t));
        decoded.set(name, got);
      }
      return got;
    };
    // Constants as the device holds them, one array per name (the key of its place).
    const onDevice = new Map<string, StorageArray>();
    const deviceConstant = (name: string): StorageArray => {
      let got = onDevice.get(name);
      if (!got) {
        const t = bound[name];
        got = toDeviceArray(t.dtype, tensorStorage(t));
        onDevice.set(name, got);
      }
      return got;
    };
    // Arena buffers exist only once every step is placed; bindings resolve lazily.
    const arenaBuffers: GPUBuffer[] = [];
    type Ref = Place | { constant: StorageArray };
    const refOf = (e: Entry, replaced?: Float32Array): Ref => {
      if (replaced) {
        placeConstant(replaced, "float32", `a transformed constant of '${e.node.name}'`);
        return { constant: replaced };
      }
      if (e.node.isVariable) {
        const name = e.node.name;
        const given = inputPlace.get(name);
        if (given) return given;
        const values = deviceConstant(name);
        placeConstant(values, bound[name].dtype, `constant '${name}'`);
        return { constant: values };
      }
      const v = plan.valueOf(e);
      if (!v) {
        throw new BackendError(`WebGPU compile: no buffer for '${e.node.outputName(e.index)}'`);
      }
      return { buffer: planned[v.buffer], offset: 0, bytes: valueBytes(v), dtype: v.dtype };
    };
    const resolve = (r: Ref): Place => {
      if (!("constant" in r)) return r;
      const at = constPlace.get(r.constant)!;
      return {
        buffer: arenaBuffers[at.arena],
        offset: at.offset,
        bytes: at.bytes,
        dtype: at.dtype,
      };
    };
    const refType = (r: Ref): DType =>
      "constant" in r ? constPlace.get(r.constant)!.dtype : r.dtype;

    type PendingDispatch = {
      code: string;
      refs: Ref[];
      workgroups: readonly [number, number, number];
    };
    type Pending =
      | {
        kind: "kernel";
        node: string;
        op: string;
        variants: { label: string; passes: PendingDispatch[] }[];
        key: string;
      }
      | {
        kind: "copy";
        node: string;
        op: string;
        src: Ref;
        dst: Ref;
        bytes: number;
        label: string;
      }
      | {
        kind: "host";
        node: string;
        op: string;
        label: string;
        reads: (Ref | Tensor)[];
        shapes: Shape[];
        writes: Ref[];
        outShapes: Shape[];
        outTypes: DType[];
        compute: (inputs: Tensor[]) => Tensor[];
      };
    const todo: Pending[] = [];
    const fallbacks: Fallback[] = [];
    const placement: WebGPUCompiled["placement"][number][] = [];
    report("kernels", 0, plan.steps.length);
    for (const [done, node] of plan.steps.entries()) {
      if (done > 0) report("kernels", done, plan.steps.length);
      const ins = node.inputs.map(shapeOf);
      const outs = shapes.get(node)!.map((s) => s!);
      const outTypes = types.get(node)!.map((t) => t!);
      const opName = node.op!.name;
      if (GPU_VIEW_OPS.has(opName)) {
        const bytes = shapeSize(outs[0]) * deviceBytes(outTypes[0]);
        if (bytes > 0) {
          todo.push({
            kind: "copy",
            node: node.name,
            op: opName,
            src: refOf(node.inputs[0]),
            dst: refOf(node.entry(0)),
            bytes: align(bytes, 4),
            label: `copy ${opName}`,
          });
        }
        placement.push({ node: node.name, op: opName, how: "copy", label: "copy" });
        continue;
      }
      const generator = gpuGeneratorFor(options.kernels, node);
      const constIns = node.inputs.map((e) =>
        e.node.isVariable && Object.hasOwn(bound, e.node.name)
          ? constantF32(e.node.name)
          : undefined
      );
      // 16-bit floats are float32 to the generators (their bindings are retyped after).
      const inTypes = node.inputs.map((e) => asGenerated(typeOf(e)));
      const genOutTypes = outTypes.map(asGenerated);
      const allFloat32 = [...inTypes, ...genOutTypes].every((t) => t === "float32");
      const floats = [...node.inputs.map(typeOf), ...outTypes].filter((t) =>
        t === "float32" || isHalf(t)
      );
      const halfMath = options.gpu.f16 && floats.length > 0 &&
        floats.every((t) => t === "float16");
      // 16-bit values are retyped after generation (storage.ts), which a vec4 view escapes.
      const vectorViews = node.inputs.every((e) => !isHalf(typeOf(e)));
      const tunings: GpuTuning[] = options.tune
        ? tuningCandidates(opName, outs)
        : [defaultTuning(opName, outs)];
      const variants: { label: string; passes: PendingDispatch[] }[] = [];
      const seen = new Set<string>();
      let reason = generator ? "" : `the WebGPU engine has no kernel for ${opName}`;
      for (const [t, tuning] of tunings.entries()) {
        let kernel: GpuKernel | undefined;
        try {
          kernel = generator?.({
            node,
            inputs: ins,
            outputs: outs,
            limits: tunedLimits(limits, tuning),
            constants: constIns,
            inputTypes: inTypes,
            outputTypes: genOutTypes,
            ...(halfMath ? { halfMath } : {}),
            ...(vectorViews ? { vectorViews } : {}),
            ...(options.gpu.fallback ? { fallbackAdapter: true } : {}),
            ...(options.gpu.subgroups ? { subgroups: options.gpu.subgroups } : {}),
            tuning,
          });
          if (kernel && !allFloat32 && !kernel.typed) {
            kernel = undefined;
            if (t === 0) {
              reason = `the ${opName} kernel computes float32 values, not ${
                [...new Set([...inTypes, ...genOutTypes])].filter((d) => d !== "float32").join(
                  " and ",
                )
              }`;
            }
          } else if (generator && !kernel && t === 0) {
            reason = `the ${opName} kernel does not cover these attributes, shapes or dtypes`;
          }
        } catch (e) {
          if (!(e instanceof UnsupportedError)) {
            throw new BackendError(
              `compiling node '${node.name}' (${opName}) for the WebGPU engine: ${
                e instanceof Error ? e.message : String(e)
              }`,
              { cause: e },
            );
          }
          if (t === 0) reason = e.message;
        }
        if (!kernel) {
          if (t === 0) break;
          continue;
        }
        const slots: Ref[] = [
          ...node.inputs.map((e, i) => refOf(e, kernel.constantInputs?.get(i))),
          ...outs.map((_, i) => refOf(node.entry(i))),
          ...(kernel.scratch ?? []).map((bytes) => {
            checkBinding(bytes, `scratch of '${node.name}'`);
            return {
              buffer: makeBuffer(bytes, storage, "scratch", { node: node.name, op: opName }),
              offset: 0,
              bytes,
              dtype: "float32" as DType,
            };
          }),
        ];
        const passes = kernel.passes.map((pass) => {
          const refs = pass.bindings.map((s) => slots[s]);
          const kinds = refs.map((r) => kindOf(refType(r)));
          return { code: specializeStorage(pass.code, kinds), refs, workgroups: pass.workgroups };
        });
        const signature = passes.map((p) => `${p.workgroups.join(",")}|${p.code}`).join("\n");
        if (seen.has(signature)) continue;
        seen.add(signature);
        variants.push({ label: kernel.label, passes });
      }
      if (variants.length) {
        const key = hash(variants.map((v) => v.passes.map((p) => p.code).join("")).join("|"));
        todo.push({ kind: "kernel", node: node.name, op: opName, variants, key });
        placement.push({ node: node.name, op: opName, how: "kernel", label: variants[0].label });
        continue;
      }
      const called = node.calledGraph;
      todo.push({
        kind: "host",
        node: node.name,
        op: opName,
        label: `reference ${opName}`,
        reads: node.inputs.map((e) =>
          e.node.isVariable && Object.hasOwn(bound, e.node.name) ? bound[e.node.name] : refOf(e)
        ),
        shapes: ins,
        writes: outs.map((_, i) => refOf(node.entry(i))),
        outShapes: outs,
        outTypes,
        compute: (args) =>
          called
            ? evaluate(called, Object.fromEntries(called.listInputs().map((n, i) => [n, args[i]])))
            : node.op!.reference(args, node.parsed, { outShapes: outs, outTypes }),
      });
      placement.push({ node: node.name, op: opName, how: "fallback", label: "reference" });
      fallbacks.push({ node: node.name, op: opName, reason, runsOn: "reference" });
    }
    report("kernels", plan.steps.length, plan.steps.length);
    report("modules");
    // Constants: every arena made and filled once.
    arenas.forEach((used, i) => {
      arenaBuffers[i] = makeBuffer(used, storage, "constants");
    });
    for (const { values, at } of pending) {
      device.queue.writeBuffer(arenaBuffers[at.arena], at.offset, uploadBytes(values));
    }
    const checks: Promise<string | undefined>[] = [];
    const steps: Step[] = todo.map((t): Step => {
      if (t.kind === "copy") {
        return { ...t, src: resolve(t.src), dst: resolve(t.dst) };
      }
      if (t.kind === "host") {
        return {
          ...t,
          reads: t.reads.map((r) => (r instanceof Tensor ? r : resolve(r))),
          writes: t.writes.map(resolve),
        };
      }
      const variants = t.variants.map((v) => ({
        label: v.label,
        dispatches: v.passes.map((p): Dispatch => {
          const { pipeline, checked } = pipelineFor(device, p.code, v.label);
          checks.push(checked.then((m) => (m ? `${v.label} ('${t.node}'): ${m}` : undefined)));
          const bindGroup = device.createBindGroup({
            layout: pipeline.getBindGroupLayout(0),
            entries: p.refs.map((r, j) => {
              const place = resolve(r);
              storageKinds[kindOf(place.dtype)] = (storageKinds[kindOf(place.dtype)] ?? 0) + 1;
              return {
                binding: j,
                resource: {
                  buffer: place.buffer,
                  offset: place.offset,
                  size: align(Math.max(place.bytes, 4), 4),
                },
              };
            }),
          });
          return { pipeline, bindGroup, workgroups: p.workgroups };
        }),
      }));
      return { kind: "kernel", node: t.node, op: t.op, variants, chosen: 0, key: t.key };
    });
    report("instantiate");
    const outputs = sym.outputs.map((e) => {
      const shape = shapeOf(e);
      const dtype = typeOf(e);
      if (e.node.isVariable && Object.hasOwn(bound, e.node.name)) {
        return { shape, dtype, constant: bound[e.node.name] };
      }
      const r = e.node.isVariable ? inputPlace.get(e.node.name)! : refOf(e);
      return { shape, dtype, place: resolve(r) };
    });
    const outBytes = outputs.map((o) => align(shapeSize(o.shape) * deviceBytes(o.dtype), 4));
    const outOffsets: number[] = [];
    let readBytes = 0;
    for (const b of outBytes) {
      outOffsets.push(readBytes);
      readBytes += b;
    }
    const readback = makeBuffer(readBytes, MAP_READ_USAGE, "readback");
    const hostBytes = steps.reduce(
      (m, s) =>
        s.kind === "host"
          ? Math.max(
            m,
            s.reads.reduce((t, r) => t + (r instanceof Tensor ? 0 : align(r.bytes, 4)), 0),
          )
          : m,
      0,
    );
    const hostStaging = steps.some((s) => s.kind === "host")
      ? makeBuffer(hostBytes, MAP_READ_USAGE, "host staging")
      : undefined;
    let lost: GPUDeviceLostInfo | undefined;
    device.lost?.then((info) => {
      lost = info;
    });
    const lostError = (where: string) =>
      new GpuDeviceError(
        `WebGPU device lost (${lost?.reason ?? "unknown"}${
          lost?.message ? `: ${lost.message}` : ""
        })${where}; make a new engine (its device is requested again)`,
        "lost",
        lastNode.node,
        lastNode.op,
      );
    let lastNode = { node: "", op: "" };
    const compiled = Promise.all([Promise.all(checks), Promise.all(memoryChecks)]).then(
      ([messages, memory]) => {
        const bad = messages.filter((m) => m !== undefined);
        if (bad.length) {
          throw new BackendError(
            `WebGPU: ${bad.length} kernel(s) did not compile: ${bad.join("; ")}`,
          );
        }
        const oom = memory.find((m) => m !== undefined);
        if (oom) throw oom;
      },
    );
    // A failure is reported by the runs; this keeps it from being an unhandled rejection.
    compiled.catch(() => {});
    report("done", 1, 1);
    if (fallbacks.length && !options.quiet) warnFallbacks(options.engine.name, fallbacks);

    const inputNames = Object.keys(inputs);
    // A run may also pass what the source graph took and the passes folded away.
    const accepted = [...Object.keys(signature.inputs), ...sym.listInputs()];
    const memoryBytes = owned.reduce((t, b) => t + b.size, 0);
    let queue: Promise<unknown> = Promise.resolve();
    let disposed = false;
    const tuning: WebGPUTuned[] = [];
    let tunedYet = false;

    /** What a run binds for an input: host storage to write, or a device buffer to copy. */
    type InputValue = StorageArray | { buffer: GPUBuffer; bytes: number };

    const encodeKernel = (pass: GPUComputePassEncoder, dispatches: readonly Dispatch[]) => {
      for (const d of dispatches) {
        pass.setPipeline(d.pipeline);
        pass.setBindGroup(0, d.bindGroup);
        pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
      }
    };

    /** Writes host inputs and returns the device-side copies still to encode. */
    const writeInputs = (values: Readonly<Record<string, InputValue>>) => {
      const copies: [GPUBuffer, GPUBuffer, number][] = [];
      for (const name of inputNames) {
        const { place } = inputs[name];
        const v = values[name];
        if (place.bytes === 0) continue;
        if ("buffer" in v && !ArrayBuffer.isView(v)) {
          copies.push([v.buffer, place.buffer, align(place.bytes, 4)]);
        } else device.queue.writeBuffer(place.buffer, 0, uploadBytes(v as StorageArray));
      }
      return copies;
    };

    const prepare = async () => {
      if (disposed) throw new BackendError("this WebGPU program was disposed");
      if (lost) throw lostError("");
      await compiled;
      if (!tunedYet) {
        tunedYet = true;
        await tune();
      }
    };

    /** Picks each kernel's variant: forced, cached, or timed once (see `tune`). */
    const tune = async () => {
      const pick = options.tune;
      if (!pick) return;
      let cache = tuned.get(device);
      if (!cache) tuned.set(device, cache = new Map());
      for (const s of steps) {
        if (s.kind !== "kernel" || s.variants.length < 2) continue;
        const labels = s.variants.map((v) => v.label);
        if (typeof pick === "object") {
          s.chosen = Math.min(Math.max(0, Math.floor(pick.candidate)), s.variants.length - 1);
          tuning.push({
            node: s.node,
            op: s.op,
            candidates: labels,
            chosen: s.chosen,
            cached: false,
          });
          continue;
        }
        const hit = cache.get(s.key);
        if (hit !== undefined && hit < s.variants.length) {
          s.chosen = hit;
          tuning.push({ node: s.node, op: s.op, candidates: labels, chosen: hit, cached: true });
          continue;
        }
        let best = 0, bestMs = Infinity;
        for (const [i, v] of s.variants.entries()) {
          const time = async () => {
            const encoder = device.createCommandEncoder();
            const pass = encoder.beginComputePass();
            for (let r = 0; r < 3; r++) encodeKernel(pass, v.dispatches);
            pass.end();
            const t0 = performance.now();
            device.queue.submit([encoder.finish()]);
            await device.queue.onSubmittedWorkDone();
            return performance.now() - t0;
          };
          await time(); // warm-up: first use of a pipeline may compile it
          const ms = await time();
          if (ms < bestMs) [best, bestMs] = [i, ms];
        }
        s.chosen = best;
        cache.set(s.key, best);
        tuning.push({ node: s.node, op: s.op, candidates: labels, chosen: best, cached: false });
      }
    };

    /** Encodes a host step's reads, submits, runs it on the host and writes its outputs. */
    const runHost = async (
      s: Extract<Step, { kind: "host" }>,
      encoder: GPUCommandEncoder,
    ) => {
      let at = 0;
      const offsets = s.reads.map((r) => {
        if (r instanceof Tensor) return -1;
        const o = at;
        const n = align(r.bytes, 4);
        if (n > 0) encoder.copyBufferToBuffer(r.buffer, r.offset, hostStaging!, o, n);
        at += n;
        return o;
      });
      device.queue.submit([encoder.finish()]);
      const span = Math.max(at, 16);
      await hostStaging!.mapAsync(MAP_READ, 0, span);
      const mapped = hostStaging!.getMappedRange(0, span);
      const args = s.reads.map((r, i) =>
        r instanceof Tensor ? r : new Tensor(
          fromDeviceBytes(r.dtype, mapped, offsets[i], shapeSize(s.shapes[i])),
          s.shapes[i],
          r.dtype,
        )
      );
      hostStaging!.unmap();
      const results = s.compute(args);
      results.forEach((t, i) => {
        if (i >= s.writes.length || shapeSize(s.outShapes[i]) === 0) return;
        const w = s.writes[i];
        const values = toDeviceArray(
          w.dtype,
          t.dtype === w.dtype ? tensorStorage(t) : tensorValues(t),
        );
        device.queue.writeBuffer(w.buffer, w.offset, uploadBytes(values));
      });
    };

    const execute = async (
      values: Readonly<Record<string, InputValue>>,
      resident: boolean,
      into?: readonly StorageArray[],
    ): Promise<(StorageArray | Tensor)[]> => {
      await prepare();
      const copies = writeInputs(values);
      device.pushErrorScope("out-of-memory");
      device.pushErrorScope("validation");
      let encoder = device.createCommandEncoder();
      for (const [src, dst, n] of copies) encoder.copyBufferToBuffer(src, 0, dst, 0, n);
      let pass: GPUComputePassEncoder | undefined;
      const endPass = () => {
        pass?.end();
        pass = undefined;
      };
      try {
        for (const s of steps) {
          lastNode = { node: s.node, op: s.op };
          if (s.kind === "kernel") {
            pass ??= encoder.beginComputePass();
            encodeKernel(pass, s.variants[s.chosen].dispatches);
          } else if (s.kind === "copy") {
            endPass();
            encoder.copyBufferToBuffer(
              s.src.buffer,
              s.src.offset,
              s.dst.buffer,
              s.dst.offset,
              s.bytes,
            );
          } else {
            endPass();
            await runHost(s, encoder);
            encoder = device.createCommandEncoder();
          }
        }
        endPass();
        // Resident outputs: each copied into a buffer of its own, which its tensor owns.
        const held = outputs.map((o, i) => {
          if (!resident || !o.place) return undefined;
          const buffer = device.createBuffer({
            size: Math.max(16, outBytes[i]),
            usage: HELD_USAGE,
            label: "output",
          });
          if (outBytes[i] > 0) {
            encoder.copyBufferToBuffer(o.place.buffer, o.place.offset, buffer, 0, outBytes[i]);
          }
          return buffer;
        });
        outputs.forEach((o, i) => {
          if (!resident && o.place && outBytes[i] > 0) {
            encoder.copyBufferToBuffer(
              o.place.buffer,
              o.place.offset,
              readback,
              outOffsets[i],
              outBytes[i],
            );
          }
        });
        device.queue.submit([encoder.finish()]);
        const invalid = await device.popErrorScope();
        const oom = await device.popErrorScope();
        if (lost) throw lostError(" during a run");
        const error = oom ?? invalid;
        if (error) {
          held.forEach((b) => b?.destroy());
          throw new GpuDeviceError(
            `WebGPU run failed${
              lastNode.node ? ` (at or before node '${lastNode.node}' (${lastNode.op}))` : ""
            }: ${error.message}`,
            oom ? "out-of-memory" : "validation",
            lastNode.node,
            lastNode.op,
          );
        }
        if (resident) {
          return outputs.map((o, i) => {
            const count = shapeSize(o.shape);
            if (o.constant) return o.constant;
            return new Tensor(
              gpuHeld(device, held[i]!, count, o.dtype),
              o.shape,
              o.dtype,
              gpuDevice(),
            );
          });
        }
        await readback.mapAsync(MAP_READ, 0, Math.max(readBytes, 16));
        const mapped = readback.getMappedRange(0, Math.max(readBytes, 16));
        const results = outputs.map((o, i) => {
          const n = shapeSize(o.shape);
          if (o.constant) {
            const s = tensorStorage(o.constant);
            if (into?.[i]) into[i].set(s as never);
            return into?.[i] ?? s.slice();
          }
          const got = fromDeviceBytes(o.dtype, mapped, outOffsets[i], n);
          if (into?.[i]) {
            into[i].set(got as never);
            return into[i];
          }
          return got;
        });
        readback.unmap();
        return results;
      } catch (e) {
        if (lost && !(e instanceof GpuDeviceError)) throw lostError(" during a run");
        throw e;
      }
    };
    const serialized = <T>(f: () => Promise<T>): Promise<T> => {
      const run = queue.then(f, f);
      queue = run.catch(() => {});
      return run;
    };
    const outShapes = outputs.map((o) => o.shape);
    const asyncOnly = (what: string) => () => {
      throw new BackendError(
        `WebGPU programs run asynchronously: use ${what} (or await symbol.eval(...), await block.callAsync(...))`,
      );
    };
    /** Host storage or a same-device buffer for each input tensor (others read back first). */
    const inputValues = async (
      given: Readonly<Record<string, Tensor>>,
    ): Promise<Record<string, InputValue>> => {
      const values: Record<string, InputValue> = {};
      for (const name of inputNames) {
        const t = given[name];
        const want = inputs[name].place.dtype;
        const held = heldOn(t, device);
        if (held && !held.disposed && t.dtype === want) {
          values[name] = { buffer: held.buffer, bytes: held.bytes };
          continue;
        }
        const other = tensorDeviceStorage(t);
        const s = other ? await other.read() : tensorStorage(t);
        values[name] = toDeviceArray(
          want,
          t.dtype === want ? s : tensorValues(new Tensor(s, t.shape, t.dtype)),
        );
      }
      return values;
    };

    const profile = async (given: Readonly<Record<string, Tensor>>): Promise<WebGPUProfile> => {
      await prepare();
      writeInputs(await inputValues(given));
      const nodes: WebGPUProfileEntry[] = [];
      const kernels = steps.filter((s) => s.kind === "kernel");
      let method: WebGPUProfile["method"] = "cpu";
      let note =
        "each step submitted alone and awaited: CPU time, including submission and the wait (the device has no timestamp-query)";
      const gpuMs = new Map<Step, number>();
      if (options.gpu.timestamps && kernels.length) {
        const count = 2 * kernels.length;
        const querySet = device.createQuerySet({ type: "timestamp", count });
        const resolveBuffer = device.createBuffer({
          size: count * 8,
          usage: 0x200 | BUFFER_USAGE.COPY_SRC, // QUERY_RESOLVE
        });
        const read = device.createBuffer({ size: count * 8, usage: MAP_READ_USAGE });
        try {
          let encoder = device.createCommandEncoder();
          let k = 0;
          for (const s of steps) {
            if (s.kind === "kernel") {
              const pass = encoder.beginComputePass({
                timestampWrites: {
                  querySet,
                  beginningOfPassWriteIndex: 2 * k,
                  endOfPassWriteIndex: 2 * k + 1,
                },
              });
              encodeKernel(pass, s.variants[s.chosen].dispatches);
              pass.end();
              k++;
            } else if (s.kind === "copy") {
              encoder.copyBufferToBuffer(
                s.src.buffer,
                s.src.offset,
                s.dst.buffer,
                s.dst.offset,
                s.bytes,
              );
            } else {
              await runHost(s, encoder);
              encoder = device.createCommandEncoder();
            }
          }
          encoder.resolveQuerySet(querySet, 0, count, resolveBuffer, 0);
          encoder.copyBufferToBuffer(resolveBuffer, 0, read, 0, count * 8);
          device.queue.submit([encoder.finish()]);
          await read.mapAsync(MAP_READ);
          const stamps = new BigUint64Array(read.getMappedRange().slice(0));
          read.unmap();
          const spans = kernels.map((_, i) => Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6);
          if (spans.some((ms) => ms > 0) && spans.every((ms) => ms >= 0 && Number.isFinite(ms))) {
            kernels.forEach((s, i) => gpuMs.set(s, spans[i]));
            method = "timestamp-query";
            note =
              "kernels timed on the GPU with timestamp queries (one compute pass each); copies and host fallbacks are not timed (0)";
          } else {
            note =
              "the device's timestamps were unusable (all zero): each step submitted alone and awaited instead (CPU time)";
          }
        } finally {
          querySet.destroy();
          resolveBuffer.destroy();
          read.destroy();
        }
      }
      for (const s of steps) {
        const label = s.kind === "kernel" ? s.variants[s.chosen].label : s.label;
        if (method === "timestamp-query") {
          nodes.push({ node: s.node, op: s.op, label, ms: gpuMs.get(s) ?? 0 });
          continue;
        }
        const t0 = performance.now();
        const encoder = device.createCommandEncoder();
        if (s.kind === "kernel") {
          const pass = encoder.beginComputePass();
          encodeKernel(pass, s.variants[s.chosen].dispatches);
          pass.end();
          device.queue.submit([encoder.finish()]);
        } else if (s.kind === "copy") {
          encoder.copyBufferToBuffer(
            s.src.buffer,
            s.src.offset,
            s.dst.buffer,
            s.dst.offset,
            s.bytes,
          );
          device.queue.submit([encoder.finish()]);
        } else await runHost(s, encoder);
        await device.queue.onSubmittedWorkDone();
        nodes.push({ node: s.node, op: s.op, label, ms: performance.now() - t0 });
      }
      return { method, note, nodes, totalMs: nodes.reduce((t, n) => t + n.ms, 0) };
    };

    return {
      engine: options.engine,
      inputs: inputNames,
      outputs: outputs.map((o): InputSignature => ({ shape: o.shape, dtype: o.dtype })),
      fallbacks,
      memoryBytes,
      plan,
      placement,
      storage: storageKinds,
      get tuning() {
        return tuning;
      },
      dispatches: steps.reduce(
        (t, s) => t + (s.kind === "kernel" ? s.variants[0].dispatches.length : 0),
        0,
      ),
      run: asyncOnly("await program.runAsync(inputs)"),
      runRaw: asyncOnly("await program.runRawAsync(arrays)"),
      profile: asyncOnly("await program.profileAsync(inputs)"),
      runAsync(given, runOptions = {}) {
        if (runOptions.onNode) {
          return Promise.reject(
            new SigilError("op hooks need every node's outputs: run them on referenceEngine"),
          );
        }
        try {
          checkRunInputs(given, inputs, accepted, "WebGPU run");
        } catch (e) {
          return Promise.reject(e);
        }
        const resident = runOptions.resident ?? options.resident ?? false;
        return serialized(async () => {
          const got = await execute(await inputValues(given), resident);
          return got.map((v, i) =>
            v instanceof Tensor ? v : new Tensor(v, outShapes[i], outputs[i].dtype)
          );
        });
      },
      runRawAsync(arrays, into) {
        const values: Record<string, InputValue> = {};
        for (const name of inputNames) {
          if (!Object.hasOwn(arrays, name)) {
            return Promise.reject(new SigilError(`WebGPU run: no array for input '${name}'`));
          }
          const { place, shape } = inputs[name];
          const a = arrays[name];
          if (a.length !== shapeSize(shape)) {
            return Promise.reject(
              new SigilError(
                `WebGPU run: input '${name}' has ${a.length} elements; the program was compiled for ${
                  formatShape(shape)
                }`,
              ),
            );
          }
          values[name] = toDeviceArray(place.dtype, a);
        }
        return serialized(() => execute(values, false, into) as Promise<StorageArray[]>);
      },
      profileAsync: (given) => {
        try {
          checkRunInputs(given, inputs, accepted, "WebGPU profile");
        } catch (e) {
          return Promise.reject(e);
        }
        return serialized(() => profile(given));
      },
      ready: () => serialized(prepare),
      dispose() {
        if (disposed) return;
        disposed = true;
        // Runs in flight finish first: their buffers stay until then.
        queue.then(destroyAll);
      },
    };
  }
}

const MAP_READ_USAGE = BUFFER_USAGE.MAP_READ | BUFFER_USAGE.COPY_DST;
