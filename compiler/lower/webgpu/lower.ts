/**
 * Lowering a float32 inference graph to a WebGPU program (the WebGPU engine's compile, after
 * its passes), and running it.
 *
 * Buffers follow the static memory plan: one GPU buffer per planned buffer (a few: values whose
 * lives do not overlap share one), one per graph input, and the constants packed into as few
 * buffers as the device's binding limit allows, uploaded once at compile time. Each op node
 * becomes the passes of a kernel from the engine's kernel table (pipelines are cached per
 * device by shader text, so repeated blocks compile once; bind groups are made once per
 * program), a buffer copy (reshapes and other views), or a listed fallback running the op's
 * reference implementation on the host (ops without a kernel for these attributes).
 *
 * A run writes the inputs, encodes every dispatch and copy into one command buffer (split only
 * where a host fallback must read values back), submits it and reads the outputs back with
 * `mapAsync`: runs are asynchronous ({@link WebGPUCompiled.runAsync}); runs of one program are
 * queued one after another, since they share its buffers.
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
import { BackendError, SigilError, UnsupportedError } from "../../../runtime/errors.ts";
import { formatShape, type Shape, shapeSize } from "../../../runtime/shape.ts";
import { Tensor, tensorFromValues, tensorStorage, tensorValues } from "../../../runtime/tensor.ts";
import { allocStorage, type DType, roundTo, type StorageArray } from "../../../runtime/dtype.ts";
import { gpuElementOf, gpuStorable } from "./dtypes.ts";
import { emptyRecord } from "../../../runtime/record.ts";
import { BUFFER_USAGE, type GpuContext, MAP_READ } from "./gpu.ts";
import { gpuGeneratorFor, type GpuKernel, type GpuKernelTable } from "./kernel.ts";

/** Ops that only reinterpret their input's elements: they become a buffer copy. */
export const GPU_VIEW_OPS: ReadonlySet<string> = new Set([
  "Reshape",
  "Flatten",
  "expand_dims",
  "squeeze",
  "_copy",
]);

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
}

/** Where a value lives on the device: a buffer and a byte range. */
interface Place {
  readonly buffer: GPUBuffer;
  readonly offset: number;
  readonly bytes: number;
}

/** A program step. */
type Step =
  | {
    kind: "dispatch";
    pipeline: GPUComputePipeline;
    bindGroup: GPUBindGroup;
    workgroups: readonly [number, number, number];
    label: string;
  }
  | { kind: "copy"; src: Place; dst: Place; bytes: number; label: string }
  | {
    kind: "host";
    label: string;
    reads: readonly (Place | Words)[];
    shapes: readonly Shape[];
    inTypes: readonly DType[];
    writes: readonly Place[];
    outShapes: readonly Shape[];
    outTypes: readonly DType[];
    compute: (inputs: Tensor[]) => Tensor[];
  };

/** Values as the device stores them (dtypes.ts): float32 words, or i32 words. */
type Words = Float32Array | Int32Array;

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
  /** Runs on tensors by input name; resolves with the outputs read back (host tensors). */
  runAsync(inputs: Readonly<Record<string, Tensor>>, options?: RunOptions): Promise<Tensor[]>;
  /**
   * Runs on raw arrays by input name; resolves with the outputs in their dtypes' storage
   * (`Float32Array` for float32, `Int32Array`, `Uint8Array` for bool, ...), or fills `into`.
   */
  runRawAsync(
    inputs: Readonly<Record<string, ArrayLike<number>>>,
    into?: readonly StorageArray[],
  ): Promise<StorageArray[]>;
  /** Resolves when every pipeline compiled (rejects with a `BackendError` naming one that did not). */
  ready(): Promise<void>;
}

/** Pipelines by shader text, per device: repeated kernels (ResNet's blocks) compile once. */
const pipelines = new WeakMap<GPUDevice, Map<string, PipelineEntry>>();

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

/** The array itself where its memory is a plain ArrayBuffer; else a copy (WebGPU takes no shared memory). */
function plain(f: Words): Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer> {
  if (f.buffer instanceof ArrayBuffer) {
    return f as Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer>;
  }
  return f instanceof Int32Array ? new Int32Array(f) : new Float32Array(f);
}

/** Values of `dtype` as the device stores them (dtypes.ts), from numbers or storage. */
function toWords(dtype: DType, a: ArrayLike<number>): Words {
  if (gpuElementOf(dtype) === "f32") return a instanceof Float32Array ? a : Float32Array.from(a);
  if (a instanceof Int32Array) return a;
  return Int32Array.from(a as ArrayLike<number>, (v) => roundTo(dtype, Number(v)));
}

/** Device words read back into `dtype`'s own storage. */
function fromWords(dtype: DType, words: Words): StorageArray {
  if (dtype === "float32" || dtype === "int32") return words.slice();
  const out = allocStorage(dtype, words.length) as Uint8Array | Int8Array;
  out.set(words);
  return out;
}

/**
 * Lowers an optimized graph (its `params` are constants) to a WebGPU program. Nodes whose op
 * has no kernel, or whose generator throws {@link UnsupportedError}, run their reference
 * implementation on the host and are listed in `fallbacks`; any other generator error fails
 * the compile. Values are float32, int32, int8, uint8 or bool, stored as dtypes.ts says; a node
 * with a value that is not float32 uses a kernel only where its generator honours dtypes (the
 * elementwise, copy and indexing ones), else runs on the host. A graph with values of other
 * dtypes (float64, int64, 16-bit floats), or sizes past the device's limits, throws
 * {@link UnsupportedError}.
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
  for (const n of sym.nodes()) {
    types.get(n)!.forEach((t, i) => {
      if (!t || !gpuStorable(t)) {
        throw new UnsupportedError(
          `'${n.outputName(i)}' is ${
            t ?? "of unknown dtype"
          }; the WebGPU engine compiles float32, int32, int8, uint8 and bool graphs`,
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
  // Every element takes one 32-bit word on the device (dtypes.ts): buffers are sized in words.
  const wordBytes = (v: { shape: Shape }) => shapeSize(v.shape) * 4;
  const bufferBytes = plan.buffers.map(() => 0);
  for (const v of plan.values) {
    bufferBytes[v.buffer] = Math.max(bufferBytes[v.buffer], wordBytes(v));
  }

  const maxBinding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const owned: GPUBuffer[] = [];
  const makeBuffer = (bytes: number, usage: number, label: string): GPUBuffer => {
    const size = align(Math.max(bytes, 16), 16);
    if (size > limits.maxBufferSize) {
      throw new UnsupportedError(
        `${label} needs ${bytes} bytes; the device's buffers hold at most ${limits.maxBufferSize}`,
      );
    }
    const b = device.createBuffer({ size, usage, label });
    owned.push(b);
    return b;
  };
  const storage = BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_DST | BUFFER_USAGE.COPY_SRC;
  const checkBinding = (bytes: number, what: string) => {
    if (bytes > maxBinding) {
      throw new UnsupportedError(
        `${what} is ${bytes} bytes; one WebGPU binding spans at most ${maxBinding}`,
      );
    }
  };

  // Graph inputs, then planned buffers; constants are placed as steps first read them.
  const inputPlace = new Map<string, Place>();
  const constantValues = new Map<string, Words>();
  const inputs = emptyRecord<{ place: Place; shape: Shape; dtype: DType }>();
  let failed: unknown;
  try {
    for (const name of sym.listInputs()) {
      const shape = shapeDict[name];
      if (!shape) throw new SigilError(`WebGPU compile: no shape for input '${name}'`);
      if (Object.hasOwn(bound, name)) {
        const t = bound[name];
        const dtype = typeDict[name] ?? "float32";
        constantValues.set(
          name,
          t.dtype === "float32" && dtype === "float32"
            ? tensorStorage(t) as Float32Array
            : toWords(dtype, tensorValues(t)),
        );
      } else {
        const bytes = shapeSize(shape) * 4;
        checkBinding(bytes, `input '${name}' ${formatShape(shape)}`);
        const place = { buffer: makeBuffer(bytes, storage, "input"), offset: 0, bytes };
        inputPlace.set(name, place);
        inputs[name] = { place, shape, dtype: typeDict[name] ?? "float32" };
      }
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
    const planned = bufferBytes.map((bytes) => {
      checkBinding(bytes, `a planned buffer`);
      return makeBuffer(bytes, storage, "planned");
    });
    // Constants: packed into arenas of at most one binding each, offsets aligned for binding.
    const alignment = Math.max(4, limits.minStorageBufferOffsetAlignment);
    const pending: { values: Words; at: { arena: number; offset: number } }[] = [];
    const arenas: number[] = [];
    const constPlace = new Map<Words, { arena: number; offset: number; bytes: number }>();
    const placeConstant = (values: Words, what: string) => {
      let got = constPlace.get(values);
      if (got) return got;
      const bytes = values.length * 4;
      checkBinding(bytes, what);
      let arena = arenas.findIndex((used) => align(used, alignment) + bytes <= maxBinding);
      if (arena < 0) {
        arena = arenas.length;
        arenas.push(0);
      }
      const offset = align(arenas[arena], alignment);
      arenas[arena] = offset + Math.max(bytes, 4);
      got = { arena, offset, bytes };
      constPlace.set(values, got);
      pending.push({ values, at: got });
      return got;
    };
    // Arena buffers exist only once every step is placed; bindings resolve lazily.
    const arenaBuffers: GPUBuffer[] = [];
    type Ref = Place | { constant: Words };
    const refOf = (e: Entry, replaced?: Float32Array): Ref => {
      if (replaced) {
        placeConstant(replaced, `a transformed constant of '${e.node.name}'`);
        return { constant: replaced };
      }
      if (e.node.isVariable) {
        const name = e.node.name;
        const given = inputPlace.get(name);
        if (given) return given;
        const values = constantValues.get(name)!;
        placeConstant(values, `constant '${name}'`);
        return { constant: values };
      }
      const v = plan.valueOf(e);
      if (!v) {
        throw new BackendError(`WebGPU compile: no buffer for '${e.node.outputName(e.index)}'`);
      }
      return { buffer: planned[v.buffer], offset: 0, bytes: wordBytes(v) };
    };
    const resolve = (r: Ref): Place => {
      if (!("constant" in r)) return r;
      const at = constPlace.get(r.constant)!;
      return { buffer: arenaBuffers[at.arena], offset: at.offset, bytes: at.bytes };
    };

    type Pending =
      | {
        kind: "dispatch";
        code: string;
        refs: Ref[];
        workgroups: readonly [number, number, number];
        label: string;
      }
      | { kind: "copy"; src: Ref; dst: Ref; bytes: number; label: string }
      | {
        kind: "host";
        label: string;
        reads: (Ref | Words)[];
        shapes: Shape[];
        inTypes: DType[];
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
      const opName = node.op!.name;
      if (GPU_VIEW_OPS.has(opName)) {
        const bytes = shapeSize(outs[0]) * 4;
        if (bytes > 0) {
          todo.push({
            kind: "copy",
            src: refOf(node.inputs[0]),
            dst: refOf(node.entry(0)),
            bytes,
            label: `copy ${opName}`,
          });
        }
        placement.push({ node: node.name, op: opName, how: "copy", label: "copy" });
        continue;
      }
      const generator = gpuGeneratorFor(options.kernels, node);
      const constIns = node.inputs.map((e) =>
        e.node.isVariable ? constantValues.get(e.node.name) : undefined
      );
      const inTypes = node.inputs.map(typeOf);
      const outTypes = outs.map((_, i) => typeOf(node.entry(i)));
      const allFloat32 = [...inTypes, ...outTypes].every((t) => t === "float32");
      let kernel: GpuKernel | undefined;
      let reason = generator ? "" : `the WebGPU engine has no kernel for ${opName}`;
      try {
        kernel = generator?.({
          node,
          inputs: ins,
          outputs: outs,
          limits,
          constants: constIns.map((c) => (c instanceof Float32Array ? c : undefined)),
          inputTypes: inTypes,
          outputTypes: outTypes,
        });
        if (kernel && !allFloat32 && !kernel.typed) {
          kernel = undefined;
          reason = `the ${opName} kernel computes float32 values, not ${
            [...new Set([...inTypes, ...outTypes])].filter((t) => t !== "float32").join(" and ")
          }`;
        } else if (generator && !kernel) {
          reason = `the ${opName} kernel does not cover these attributes, shapes or dtypes`;
        }
      } catch (e) {
        if (e instanceof UnsupportedError) reason = e.message;
        else {
          throw new BackendError(
            `compiling node '${node.name}' (${opName}) for the WebGPU engine: ${
              e instanceof Error ? e.message : String(e)
            }`,
            { cause: e },
          );
        }
      }
      if (kernel) {
        const slots: Ref[] = [
          ...node.inputs.map((e, i) => refOf(e, kernel.constantInputs?.get(i))),
          ...outs.map((_, i) => refOf(node.entry(i))),
          ...(kernel.scratch ?? []).map((bytes) => {
            checkBinding(bytes, `scratch of '${node.name}'`);
            return { buffer: makeBuffer(bytes, storage, "scratch"), offset: 0, bytes };
          }),
        ];
        for (const pass of kernel.passes) {
          todo.push({
            kind: "dispatch",
            code: pass.code,
            refs: pass.bindings.map((s) => slots[s]),
            workgroups: pass.workgroups,
            label: kernel.label,
          });
        }
        placement.push({ node: node.name, op: opName, how: "kernel", label: kernel.label });
        continue;
      }
      const called = node.calledGraph;
      todo.push({
        kind: "host",
        label: `reference ${opName}`,
        reads: node.inputs.map((e, i) => constIns[i] ?? refOf(e)),
        shapes: ins,
        inTypes,
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
      device.queue.writeBuffer(arenaBuffers[at.arena], at.offset, plain(values));
    }
    const checks: Promise<string | undefined>[] = [];
    const steps: Step[] = todo.map((t): Step => {
      if (t.kind === "copy") {
        return {
          kind: "copy",
          src: resolve(t.src),
          dst: resolve(t.dst),
          bytes: t.bytes,
          label: t.label,
        };
      }
      if (t.kind === "host") {
        return {
          ...t,
          reads: t.reads.map((r) => (isWords(r) ? r : resolve(r))),
          writes: t.writes.map(resolve),
        };
      }
      const { pipeline, checked } = pipelineFor(device, t.code, t.label);
      checks.push(checked.then((m) => (m ? `${t.label}: ${m}` : undefined)));
      const bindGroup = device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: t.refs.map((r, j) => {
          const p = resolve(r);
          return {
            binding: j,
            resource: { buffer: p.buffer, offset: p.offset, size: align(Math.max(p.bytes, 4), 4) },
          };
        }),
      });
      return { kind: "dispatch", pipeline, bindGroup, workgroups: t.workgroups, label: t.label };
    });
    report("instantiate");
    const outputs = sym.outputs.map((e) => {
      const shape = shapeOf(e);
      const dtype = typeOf(e);
      if (e.node.isVariable && constantValues.has(e.node.name)) {
        return { shape, dtype, constant: constantValues.get(e.node.name)! };
      }
      const r = e.node.isVariable ? inputPlace.get(e.node.name)! : refOf(e);
      return { shape, dtype, place: resolve(r) };
    });
    const outBytes = outputs.map((o) => align(shapeSize(o.shape) * 4, 4));
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
            s.reads.reduce((t, r) => t + (isWords(r) ? 0 : align(r.bytes, 4)), 0),
          )
          : m,
      0,
    );
    const hostStaging = steps.some((s) => s.kind === "host")
      ? makeBuffer(hostBytes, MAP_READ_USAGE, "host staging")
      : undefined;
    const compiled = Promise.all(checks).then((messages) => {
      const bad = messages.filter((m) => m !== undefined);
      if (bad.length) {
        throw new BackendError(
          `WebGPU: ${bad.length} kernel(s) did not compile: ${bad.join("; ")}`,
        );
      }
    });
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

    const execute = async (
      arrays: Readonly<Record<string, ArrayLike<number>>>,
      into?: readonly StorageArray[],
    ): Promise<StorageArray[]> => {
      if (disposed) throw new BackendError("this WebGPU program was disposed");
      await compiled;
      for (const name of inputNames) {
        const { place, shape, dtype } = inputs[name];
        const a = arrays[name];
        if (a.length !== shapeSize(shape)) {
          throw new SigilError(
            `WebGPU run: input '${name}' has ${a.length} elements; the program was compiled for ${
              formatShape(shape)
            }`,
          );
        }
        if (a.length === 0) continue;
        device.queue.writeBuffer(place.buffer, 0, plain(toWords(dtype, a)));
      }
      device.pushErrorScope("validation");
      let encoder = device.createCommandEncoder();
      let pass: GPUComputePassEncoder | undefined;
      const endPass = () => {
        pass?.end();
        pass = undefined;
      };
      for (const s of steps) {
        if (s.kind === "dispatch") {
          pass ??= encoder.beginComputePass();
          pass.setPipeline(s.pipeline);
          pass.setBindGroup(0, s.bindGroup);
          pass.dispatchWorkgroups(s.workgroups[0], s.workgroups[1], s.workgroups[2]);
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
          const gpuReads = s.reads.map((r) => isWords(r) ? undefined : r);
          let at = 0;
          const offsets = gpuReads.map((r) => {
            if (!r) return -1;
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
          const args = s.reads.map((r, i) => {
            const n = shapeSize(s.shapes[i]);
            const words = isWords(r)
              ? r
              : gpuElementOf(s.inTypes[i]) === "i32"
              ? new Int32Array(mapped, offsets[i], n)
              : new Float32Array(mapped, offsets[i], n);
            return tensorFromValues(words, s.shapes[i], s.inTypes[i]);
          });
          hostStaging!.unmap();
          const results = s.compute(args);
          results.forEach((t, i) => {
            if (i >= s.writes.length || shapeSize(s.outShapes[i]) === 0) return;
            const v = plain(toWords(s.outTypes[i], tensorValues(t)));
            device.queue.writeBuffer(s.writes[i].buffer, s.writes[i].offset, v);
          });
          encoder = device.createCommandEncoder();
        }
      }
      endPass();
      outputs.forEach((o, i) => {
        if (o.place && outBytes[i] > 0) {
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
      const error = await device.popErrorScope();
      if (error) throw new BackendError(`WebGPU run failed: ${error.message}`);
      await readback.mapAsync(MAP_READ, 0, Math.max(readBytes, 16));
      const mapped = readback.getMappedRange(0, Math.max(readBytes, 16));
      const results = outputs.map((o, i) => {
        const n = shapeSize(o.shape);
        const words = o.constant ??
          (gpuElementOf(o.dtype) === "i32"
            ? new Int32Array(mapped, outOffsets[i], n)
            : new Float32Array(mapped, outOffsets[i], n));
        const target = into?.[i];
        if (!target) return fromWords(o.dtype, words);
        (target as Int32Array).set(words);
        return target;
      });
      readback.unmap();
      return results;
    };
    const serialized = <T>(f: () => Promise<T>): Promise<T> => {
      const run = queue.then(f, f);
      queue = run.catch(() => {});
      return run;
    };
    const outShapes = outputs.map((o) => o.shape);
    const outTypes = outputs.map((o) => o.dtype);
    const asyncOnly = (what: string) => () => {
      throw new BackendError(
        `WebGPU programs run asynchronously: use ${what} (or await symbol.eval(...), await block.callAsync(...))`,
      );
    };
    return {
      engine: options.engine,
      inputs: inputNames,
      outputs: outShapes.map((shape, i): InputSignature => ({ shape, dtype: outTypes[i] })),
      fallbacks,
      memoryBytes,
      plan,
      placement,
      dispatches: steps.filter((s) => s.kind === "dispatch").length,
      run: asyncOnly("await program.runAsync(inputs)"),
      runRaw: asyncOnly("await program.runRawAsync(arrays)"),
      profile: asyncOnly("timestamps from a GPU profiler"),
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
        const arrays: Record<string, ArrayLike<number>> = {};
        for (const name of inputNames) {
          const t = given[name];
          const dtype = inputs[name].dtype;
          arrays[name] = t.dtype === dtype && (dtype === "float32" || dtype === "int32")
            ? tensorStorage(t) as Float32Array | Int32Array
            : tensorValues(t);
        }
        return serialized(() => execute(arrays)).then((values) =>
          values.map((v, i) => new Tensor(v, outShapes[i], outTypes[i]))
        );
      },
      runRawAsync(arrays, into) {
        for (const name of inputNames) {
          if (!Object.hasOwn(arrays, name)) {
            return Promise.reject(new SigilError(`WebGPU run: no array for input '${name}'`));
          }
        }
        return serialized(() => execute(arrays, into));
      },
      ready: () => compiled,
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

function isWords(r: unknown): r is Words {
  return r instanceof Float32Array || r instanceof Int32Array;
}
