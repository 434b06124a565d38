/**
 * The WebGPU target of ahead-of-time compilation: the WebGPU engine's own lowering
 * ({@link lowerWebGPU}, the same WGSL kernels, buffers and bindings as a JIT compile), written
 * down as data. The lowering runs against a recording device that has the limits every WebGPU
 * adapter grants by default: it notes the buffers made, the constants uploaded, the shader
 * text of every pipeline and the bindings of every bind group; one probe run of the compiled
 * program then records the command stream (dispatches with their workgroup counts, buffer
 * copies) and which buffers the inputs are written to and the outputs read from. Nodes the
 * engine would run on the host (fallbacks) cannot be written down: the compile is refused
 * with {@link AotUnsupportedError}.
 *
 * @module
 */
import { BackendError, UnsupportedError } from "../../runtime/errors.ts";
import { shapeSize } from "../../runtime/shape.ts";
import type { Graph } from "../passes/pass.ts";
import { webgpuEngine } from "../lower/webgpu/engine.ts";
import { WEBGPU_KERNELS } from "../lower/webgpu/default_kernels.ts";
import { BUFFER_USAGE, type GpuContext, limitsOf } from "../lower/webgpu/gpu.ts";
import { lowerWebGPU } from "../lower/webgpu/lower.ts";
import type { GpuProgramSpec, GpuStepSpec } from "./manifest.ts";
import { artifactRuntime, deriveConstant, webgpuRuntime } from "./runtime.ts";
import type { AotTarget, TargetBuild, TargetRequest } from "./target.ts";
import { AotUnsupportedError, Distinct } from "./wasm_target.ts";

/**
 * The limits every WebGPU adapter grants without asking (the specification's defaults): the
 * artifact asks for nothing more, so it runs on any adapter.
 */
export const DEFAULT_GPU_LIMITS: Readonly<Record<string, number>> = Object.freeze({
  maxStorageBufferBindingSize: 134217728,
  maxBufferSize: 268435456,
  maxStorageBuffersPerShaderStage: 8,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxComputeWorkgroupsPerDimension: 65535,
  maxComputeWorkgroupStorageSize: 16384,
  minStorageBufferOffsetAlignment: 256,
});

interface FakeBuffer {
  readonly id: number;
  readonly size: number;
  readonly usage: number;
  readonly label: string;
  mapAsync(): Promise<void>;
  getMappedRange(offset?: number, size?: number): ArrayBuffer;
  unmap(): void;
  destroy(): void;
}

type Binding = readonly [buffer: number, offset: number, size: number];

/** What the recording device saw. */
interface Recording {
  readonly buffers: FakeBuffer[];
  /** Uploads: buffer, offset, bytes. */
  readonly writes: { buffer: number; offset: number; bytes: Uint8Array }[];
  /** Commands of the probe run, in order. */
  readonly commands: (
    | { kind: "dispatch"; code: string; bindings: Binding[]; workgroups: [number, number, number] }
    | {
      kind: "copy";
      src: number;
      srcOffset: number;
      dst: number;
      dstOffset: number;
      bytes: number;
    }
  )[];
  /** Whether the command stream is being recorded (the probe run). */
  probing: boolean;
}

/** A stand-in GPUDevice that records what the lowering and one run do with it. */
function recordingDevice(rec: Recording): GPUDevice {
  const bytesOf = (data: BufferSource | SharedArrayBuffer, offset = 0, size?: number) => {
    const view = ArrayBuffer.isView(data)
      ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      : new Uint8Array(data as ArrayBuffer);
    const unit = ArrayBuffer.isView(data) && "BYTES_PER_ELEMENT" in data
      ? (data as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT
      : 1;
    const start = offset * unit;
    return view.slice(start, size === undefined ? undefined : start + size * unit);
  };
  const device = {
    limits: DEFAULT_GPU_LIMITS,
    features: new Set<string>(),
    lost: new Promise(() => {}),
    queue: {
      writeBuffer(
        buffer: FakeBuffer,
        offset: number,
        data: BufferSource,
        dataOffset?: number,
        size?: number,
      ) {
        rec.writes.push({ buffer: buffer.id, offset, bytes: bytesOf(data, dataOffset, size) });
      },
      submit() {},
      onSubmittedWorkDone: () => Promise.resolve(),
    },
    createBuffer({ size, usage, label }: { size: number; usage: number; label?: string }) {
      const b: FakeBuffer = {
        id: rec.buffers.length,
        size,
        usage,
        label: label ?? "",
        mapAsync: () => Promise.resolve(),
        getMappedRange: (_o?: number, n?: number) => new ArrayBuffer(n ?? size),
        unmap() {},
        destroy() {},
      };
      rec.buffers.push(b);
      return b;
    },
    pushErrorScope() {},
    popErrorScope: () => Promise.resolve(null),
    createShaderModule: ({ code }: { code: string }) => ({
      code,
      getCompilationInfo: () => Promise.resolve({ messages: [] }),
    }),
    createComputePipeline: ({ compute }: { compute: { module: { code: string } } }) => {
      const pipeline = { code: compute.module.code, getBindGroupLayout: () => ({ pipeline }) };
      return pipeline;
    },
    createBindGroup: (
      { entries }: {
        entries: {
          binding: number;
          resource: { buffer: FakeBuffer; offset: number; size: number };
        }[];
      },
    ) => ({
      bindings: [...entries].sort((a, b) => a.binding - b.binding).map((e): Binding => [
        e.resource.buffer.id,
        e.resource.offset ?? 0,
        e.resource.size,
      ]),
    }),
    createCommandEncoder() {
      return {
        beginComputePass() {
          let code = "";
          let bindings: Binding[] = [];
          return {
            setPipeline(p: { code: string }) {
              code = p.code;
            },
            setBindGroup(_i: number, g: { bindings: Binding[] }) {
              bindings = g.bindings;
            },
            dispatchWorkgroups(x: number, y = 1, z = 1) {
              if (rec.probing) {
                rec.commands.push({ kind: "dispatch", code, bindings, workgroups: [x, y, z] });
              }
            },
            end() {},
          };
        },
        copyBufferToBuffer(
          src: FakeBuffer,
          srcOffset: number,
          dst: FakeBuffer,
          dstOffset: number,
          bytes: number,
        ) {
          if (rec.probing) {
            rec.commands.push({
              kind: "copy",
              src: src.id,
              srcOffset,
              dst: dst.id,
              dstOffset,
              bytes,
            });
          }
        },
        finish: () => ({}),
      };
    },
  };
  return device as unknown as GPUDevice;
}

/** Lowers the graph at one batch size and writes its program down. */
async function buildProgram(
  graph: Graph,
  request: TargetRequest,
  batch: number,
  shaders: Distinct,
  weights: Distinct,
): Promise<{ program: GpuProgramSpec; outputShapes: number[][] }> {
  const rec: Recording = { buffers: [], writes: [], commands: [], probing: false };
  const device = recordingDevice(rec);
  const gpu: GpuContext = {
    adapter: {} as GPUAdapter,
    device,
    limits: limitsOf(device),
    f16: false,
    timestamps: false,
    description: "ahead-of-time recording",
  };
  const inputs = Object.fromEntries(
    request.inputs.map((t) => [t.name, { shape: [batch, ...t.shape.slice(1)], dtype: t.dtype }]),
  );
  let compiled;
  try {
    compiled = lowerWebGPU(graph, { inputs }, {
      gpu,
      kernels: WEBGPU_KERNELS,
      engine: webgpuEngine(),
      quiet: true,
      ...(request.onProgress
        ? { onProgress: (p) => request.onProgress!({ ...p, variant: "webgpu", batch }) }
        : {}),
    });
  } catch (e) {
    if (e instanceof UnsupportedError && !(e instanceof AotUnsupportedError)) {
      throw new AotUnsupportedError(`WebGPU: ${e.message}`, [], { cause: e });
    }
    throw e;
  }
  if (compiled.fallbacks.length) {
    const nodes = compiled.fallbacks.map((f) => ({ node: f.node, op: f.op, reason: f.reason }));
    throw new AotUnsupportedError(
      `a WebGPU artifact runs WGSL kernels only; ${nodes.length} node(s) have none: ${
        nodes.slice(0, 5).map((n) => `${JSON.stringify(n.node)} (${n.op}): ${n.reason}`).join("; ")
      }${nodes.length > 5 ? `; and ${nodes.length - 5} more` : ""}`,
      nodes,
    );
  }
  const internal = (what: string) =>
    new BackendError(`ahead-of-time WebGPU compile: ${what} (the lowering changed shape?)`);
  const constants = [...rec.writes];
  rec.writes.length = 0;
  rec.probing = true;
  const arrays = Object.fromEntries(
    request.inputs.map((t) => [t.name, new Float32Array(shapeSize(inputs[t.name].shape))]),
  );
  await compiled.runRawAsync(arrays);
  rec.probing = false;
  const names = request.inputs.map((t) => t.name);
  const inputWrites = rec.writes;
  // The probe wrote each non-empty input once, in the program's input order.
  const programInputs = compiled.inputs.filter((n) => shapeSize(inputs[n]?.shape ?? [0]) > 0);
  if (inputWrites.length !== programInputs.length) {
    throw internal(`${inputWrites.length} input uploads for ${programInputs.length} inputs`);
  }
  const readback = rec.buffers.filter((b) => b.label === "readback");
  if (readback.length !== 1) throw internal("no single readback buffer");
  const rb = readback[0].id;
  const storage = rec.buffers.filter((b) => b.usage & BUFFER_USAGE.STORAGE);
  if (rec.buffers.some((b) => b.id !== rb && !(b.usage & BUFFER_USAGE.STORAGE))) {
    throw internal("a buffer that is neither storage nor the readback");
  }
  // Buffers renumbered densely (storage buffers only).
  const index = new Map(storage.map((b, i) => [b.id, i]));
  const at = (id: number) => {
    const i = index.get(id);
    if (i === undefined) throw internal(`buffer ${id} is not a storage buffer`);
    return i;
  };
  const outputs: [number, number, number][] = [];
  const steps: GpuStepSpec[] = [];
  for (const c of rec.commands) {
    if (c.kind === "copy" && c.dst === rb) {
      outputs.push([at(c.src), c.srcOffset, c.bytes >>> 2]);
      continue;
    }
    if (c.kind === "copy") {
      steps.push([1, at(c.src), c.srcOffset, at(c.dst), c.dstOffset, c.bytes]);
      continue;
    }
    steps.push([
      0,
      shaders.add(new TextEncoder().encode(c.code)),
      c.bindings.flatMap(([b, o, n]) => [at(b), o, n]),
      c.workgroups,
    ]);
  }
  const outputShapes = compiled.outputs.map((o) => [...o.shape]);
  if (outputs.length !== outputShapes.length) {
    throw internal("an output that is a constant or empty (not copied back)");
  }
  outputs.forEach((o, i) => {
    o[2] = shapeSize(outputShapes[i]);
  });
  const program: GpuProgramSpec = {
    batch,
    buffers: storage.map((b) => b.size),
    constants: constants.map((w) => {
      const i = weights.add(w.bytes);
      return [at(w.buffer), w.offset, weights.offsets[i], w.bytes.length] as const;
    }),
    inputs: programInputs.map((name, k) => {
      const i = names.indexOf(name);
      if (i < 0) throw internal(`the program reads '${name}', which is not an input`);
      return [i, at(inputWrites[k].buffer), shapeSize(inputs[name].shape)] as const;
    }),
    outputs,
    outputShapes,
    steps,
  };
  compiled.dispose();
  return { program, outputShapes };
}

/** Builds the WebGPU programs of a graph (one per batch size); their WGSL is the code. */
export async function buildWebGPU(graph: Graph, request: TargetRequest): Promise<TargetBuild> {
  const shaders = new Distinct();
  const weights = new Distinct();
  let outputShapes: number[][] = [];
  const programs: GpuProgramSpec[] = [];
  for (const [b, batch] of request.batchSizes.entries()) {
    const built = await buildProgram(graph, request, batch, shaders, weights);
    if (b === 0) outputShapes = built.outputShapes;
    programs.push(built.program);
  }
  return {
    code: shaders.concat(),
    modules: shaders.items.map((s, i) => [shaders.offsets[i], s.length] as const),
    variants: [],
    webgpu: { weights: weights.concat(), programs },
    outputShapes,
  };
}

/**
 * The WebGPU ahead-of-time target: WGSL kernels, run by a small WebGPU runtime in the artifact
 * (pipelines made once at load, one command buffer per run, outputs read back
 * asynchronously: `run` returns a Promise).
 *
 * @example The target's name
 * ```ts
 * import assert from "node:assert";
 * import { webgpuTarget } from "./webgpu_target.ts";
 * assert.strictEqual(webgpuTarget.name, "webgpu");
 * ```
 */
export const webgpuTarget: AotTarget = Object.freeze({
  name: "webgpu",
  passes: () => webgpuEngine().passes,
  build: buildWebGPU,
  runtimeSource: () =>
    `((m, c, e, b) => (${String(artifactRuntime)})(m, c, e, b, ${String(webgpuRuntime)}, ${
      String(deriveConstant)
    }))`,
});
