/**
 * The WASM target of ahead-of-time compilation: the WASM engine's own lowering (the same
 * kernels, memory plan and splits as a JIT compile with the same options, so the same bits),
 * written down as data. For each SIMD variant and batch size the graph is lowered with
 * {@link lowerWasm}; the generated module bytes are captured as the kernel generators return
 * them, each program step is matched to its kernel (and checked against the compiled module),
 * and host steps, which are byte copies (reshapes, Concat, SliceChannel), are recorded as copy
 * lists by running them once over a memory that holds each word's own index, then checked on
 * random contents. Nodes that would run a reference implementation on the host cannot be
 * written down: the compile is refused with {@link AotUnsupportedError} listing them.
 *
 * @module
 */
import { BackendError, UnsupportedError } from "../../runtime/errors.ts";
import { shapeSize } from "../../runtime/shape.ts";
import type { HostStep } from "../../runtime/backends/wasm/executor.ts";
import type { Graph } from "../passes/pass.ts";
import { wasmEngine } from "../lower/wasm/engine.ts";
import { WASM_KERNELS } from "../lower/wasm/default_kernels.ts";
import type { CompiledKernel, KernelGenerator, KernelTable } from "../lower/wasm/kernel.ts";
import { lowerWasm } from "../lower/wasm/lower.ts";
import { cachedModule } from "../lower/wasm/module_cache.ts";
import type { ProgramSpec, StepSpec } from "./manifest.ts";
import { artifactRuntime } from "./runtime.ts";
import type { AotTarget, BuiltVariant, TargetBuild, TargetRequest } from "./target.ts";

/** A node the artifact cannot run: it has no WASM kernel for these attributes or dtypes. */
export interface UnsupportedNode {
  /** The node's name. */
  readonly node: string;
  /** Its op. */
  readonly op: string;
  /** Why the engine has no kernel for it. */
  readonly reason: string;
}

/**
 * The graph has nodes without a WASM kernel (the JIT engine would run them on the reference
 * interpreter). Artifacts carry no reference implementations: the compile is refused, and
 * {@link AotUnsupportedError.nodes} lists every such node.
 */
export class AotUnsupportedError extends BackendError {
  /** The nodes without a kernel. */
  readonly nodes: readonly UnsupportedNode[];
  /** Creates the error for `nodes`. */
  constructor(message: string, nodes: readonly UnsupportedNode[], options?: ErrorOptions) {
    super(message, options);
    this.nodes = nodes;
  }
}

/** Distinct byte arrays, each kept once, in order of first appearance. */
export class Distinct {
  readonly #index = new Map<string, number[]>();
  /** The arrays, in order. */
  readonly items: Uint8Array[] = [];
  /** Where each starts in {@link Distinct.concat}. */
  readonly offsets: number[] = [];
  /** Bytes of all. */
  bytes = 0;

  /** The index of `bytes` (added when new). */
  add(bytes: Uint8Array): number {
    const key = `${bytes.length}:${hashBytes(bytes)}`;
    const bucket = this.#index.get(key) ?? [];
    for (const i of bucket) if (sameBytes(this.items[i], bytes)) return i;
    const i = this.items.length;
    this.items.push(bytes);
    this.offsets.push(this.bytes);
    this.bytes += bytes.length;
    bucket.push(i);
    this.#index.set(key, bucket);
    return i;
  }

  /** Every array, concatenated. */
  concat(): Uint8Array {
    const out = new Uint8Array(this.bytes);
    this.items.forEach((b, i) => out.set(b, this.offsets[i]));
    return out;
  }
}

function hashBytes(b: Uint8Array): number {
  let h = 0x811c9dc5;
  const words = b.byteOffset % 4 === 0
    ? new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2)
    : undefined;
  if (words) { for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i], 0x01000193); }
  for (let i = words ? words.length * 4 : 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The WASM kernel table with every generator's results recorded in call order. */
function recordingTable(captured: CompiledKernel[]): KernelTable {
  const wrap = (gen: KernelGenerator | undefined): KernelGenerator | undefined =>
    gen &&
    ((request) => {
      const kernel = gen(request);
      if (kernel) captured.push(kernel);
      return kernel;
    });
  const ops: Record<string, KernelGenerator> = {};
  for (const [name, gen] of Object.entries(WASM_KERNELS.ops)) ops[name] = wrap(gen)!;
  return { ops, elementwise: wrap(WASM_KERNELS.elementwise), copy: wrap(WASM_KERNELS.copy) };
}

/**
 * A host step as byte copies `[dst, src, bytes, ...]`: run once over a memory whose every
 * word holds its own index, each changed word names the word it came from. The copies are
 * then replayed against the step on random contents; any difference (a step that computes
 * rather than moves, or moves bytes within words) refuses the step.
 */
export function copiesOfHostStep(step: HostStep, memoryBytes: number, node: string): number[] {
  const words = memoryBytes >>> 2;
  const probe = new ArrayBuffer(words * 4);
  const w = new Uint32Array(probe);
  for (let i = 0; i < words; i++) w[i] = i;
  step.run(probe);
  const copies: number[] = [];
  for (let i = 0; i < words;) {
    if (w[i] === i) {
      i++;
      continue;
    }
    const dst = i, src = w[i];
    let n = 0;
    while (i < words && w[i] !== i && w[i] === src + n) {
      i++;
      n++;
    }
    copies.push(dst * 4, src * 4, n * 4);
  }
  // Check on random contents: the step itself against the copies replayed.
  const a = new Uint32Array(words);
  let x = 0x9e3779b9;
  for (let i = 0; i < words; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    a[i] = x;
  }
  const b = a.slice();
  step.run(a.buffer);
  const bytes = new Uint8Array(b.buffer);
  for (let i = 0; i < copies.length; i += 3) {
    bytes.copyWithin(copies[i], copies[i + 1], copies[i + 1] + copies[i + 2]);
  }
  for (let i = 0; i < words; i++) {
    if (a[i] !== b[i]) {
      throw new AotUnsupportedError(
        `node ${JSON.stringify(node)}: its host step (${step.label}) is not a byte copy`,
        [{ node, op: step.label, reason: "a host step that is not a byte copy" }],
      );
    }
  }
  return copies;
}

/** Lowers one variant at one batch size and writes its program down. */
function buildProgram(
  graph: Graph,
  request: TargetRequest,
  simd: "relaxed" | "baseline",
  batch: number,
  modules: Distinct,
  weights: Distinct,
): { program: ProgramSpec; outputShapes: number[][] } {
  const captured: CompiledKernel[] = [];
  const relaxed = simd === "relaxed";
  const engine = wasmEngine({
    threads: request.threads,
    relaxedSimd: relaxed,
    winograd: request.winograd,
  });
  const inputs = Object.fromEntries(
    request.inputs.map((t) => [t.name, { shape: [batch, ...t.shape.slice(1)], dtype: t.dtype }]),
  );
  const started = performance.now();
  const compiled = lowerWasm(graph, { inputs }, {
    threads: request.threads,
    relaxed,
    winograd: request.winograd,
    kernels: recordingTable(captured),
    engine,
    quiet: true,
    started,
    ...(request.onProgress
      ? { onProgress: (p) => request.onProgress!({ ...p, variant: simd, batch }) }
      : {}),
  });
  try {
    if (compiled.fallbacks.length) {
      const nodes = compiled.fallbacks.map((f) => ({ node: f.node, op: f.op, reason: f.reason }));
      throw new AotUnsupportedError(
        `an ahead-of-time artifact runs WASM kernels only; ${nodes.length} node(s) have none: ${
          nodes.slice(0, 5).map((n) => `${JSON.stringify(n.node)} (${n.op}): ${n.reason}`).join(
            "; ",
          )
        }${nodes.length > 5 ? `; and ${nodes.length - 5} more` : ""}`,
        nodes,
      );
    }
    const program = compiled.program;
    const steps: StepSpec[] = [];
    let next = 0;
    const internal = (what: string) =>
      new BackendError(`ahead-of-time compile: ${what} (the lowering changed shape?)`);
    program.steps.forEach((step, i) => {
      const place = compiled.placement[i];
      if (step.kind === "host") {
        steps.push([2, copiesOfHostStep(step, program.memoryBytes, place?.node ?? "?")]);
        return;
      }
      const kernel = captured[next++];
      if (!kernel) throw internal(`no kernel recorded for step ${i} (${step.label})`);
      const forms = kernel.parts ?? [kernel.bytes];
      if (step.kind === "kernel") {
        if (cachedModule(forms[0]) !== step.module) {
          throw internal(`step ${i} (${step.label}) does not run the recorded kernel`);
        }
        steps.push([0, modules.add(forms[0]), [...step.args]]);
        return;
      }
      if (
        forms.length !== step.modules.length ||
        forms.some((b, p) => cachedModule(b) !== step.modules[p]) ||
        (step.whole && cachedModule(kernel.bytes) !== step.whole.module)
      ) {
        throw internal(`split step ${i} (${step.label}) does not run the recorded parts`);
      }
      steps.push([
        1,
        forms.map((b) => modules.add(b)),
        step.args.map((a) => [...a]),
        step.whole ? modules.add(kernel.bytes) : -1,
        step.whole ? [...step.whole.args] : [],
      ]);
    });
    if (next !== captured.length) throw internal("more kernels were generated than steps run");
    const names = request.inputs.map((t) => t.name);
    const spec: ProgramSpec = {
      batch,
      memoryBytes: program.memoryBytes,
      shared: program.shared ?? false,
      inputs: Object.entries(program.inputs).map(([name, b]) => {
        const index = names.indexOf(name);
        if (index < 0) throw internal(`the program reads '${name}', which is not an input`);
        return [index, b.ptr, shapeSize(b.shape)] as const;
      }),
      outputs: program.outputs.map((o) => [o.ptr, shapeSize(o.shape)] as const),
      outputShapes: program.outputs.map((o) => [...o.shape]),
      constants: program.constants.map((c) => {
        const v = c.values;
        const i = weights.add(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
        return [c.ptr, weights.offsets[i], v.byteLength] as const;
      }),
      steps,
    };
    return { program: spec, outputShapes: program.outputs.map((o) => [...o.shape]) };
  } catch (e) {
    if (e instanceof UnsupportedError && !(e instanceof AotUnsupportedError)) {
      throw new AotUnsupportedError(e.message, [], { cause: e });
    }
    throw e;
  } finally {
    compiled.dispose();
  }
}

function build(graph: Graph, request: TargetRequest): TargetBuild {
  const modules = new Distinct();
  let outputShapes: number[][] = [];
  const variants: BuiltVariant[] = request.simd.map((simd) => {
    const weights = new Distinct();
    const programs = request.batchSizes.map((batch, b) => {
      let built;
      try {
        built = buildProgram(graph, request, simd, batch, modules, weights);
      } catch (e) {
        if (e instanceof UnsupportedError && !(e instanceof AotUnsupportedError)) {
          throw new AotUnsupportedError(e.message, [], { cause: e });
        }
        throw e;
      }
      if (b === 0) outputShapes = built.outputShapes;
      return built.program;
    });
    return { simd, weights: weights.concat(), programs };
  });
  return {
    code: modules.concat(),
    modules: modules.items.map((b, i) => [modules.offsets[i], b.length] as const),
    variants,
    outputShapes,
  };
}

/**
 * The WASM ahead-of-time target.
 *
 * @example The target's name
 * ```ts
 * import assert from "node:assert";
 * import { wasmTarget } from "./wasm_target.ts";
 * assert.strictEqual(wasmTarget.name, "wasm");
 * ```
 */
export const wasmTarget: AotTarget = Object.freeze({
  name: "wasm",
  build,
  runtimeSource: () => String(artifactRuntime),
});
