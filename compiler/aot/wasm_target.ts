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
import { array } from "../../runtime/creation.ts";
import { type Tensor, tensorStorage } from "../../runtime/tensor.ts";
import type { DerivedSpec, ProgramSpec, StepSpec } from "./manifest.ts";
import { artifactRuntime, deriveConstant } from "./runtime.ts";
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

  /** The index of `bytes` if it is held, else -1 (nothing is added). */
  find(bytes: Uint8Array): number {
    const bucket = this.#index.get(`${bytes.length}:${hashBytes(bytes)}`) ?? [];
    return bucket.find((i) => sameBytes(this.items[i], bytes)) ?? -1;
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

/** The WASM engine's lowering of one variant at one batch size. */
function lowerOnce(
  graph: Graph,
  request: TargetRequest,
  simd: "relaxed" | "baseline",
  batch: number,
  kernels: KernelTable,
  progress: boolean,
) {
  const relaxed = simd === "relaxed";
  const engine = wasmEngine({
    threads: request.threads,
    relaxedSimd: relaxed,
    winograd: request.winograd,
  });
  const inputs = Object.fromEntries(
    request.inputs.map((t) => [t.name, { shape: [batch, ...t.shape.slice(1)], dtype: t.dtype }]),
  );
  return lowerWasm(graph, { inputs }, {
    threads: request.threads,
    relaxed,
    winograd: request.winograd,
    kernels,
    engine,
    quiet: true,
    started: performance.now(),
    ...(progress && request.onProgress
      ? { onProgress: (p) => request.onProgress!({ ...p, variant: simd, batch }) }
      : {}),
  });
}

/** How a constant is derived from a parameter: {@link deriveConstant}'s kind, runs and plane. */
interface Derivation {
  readonly kind: 0 | 1 | 2;
  readonly param: string;
  readonly runs: Int32Array;
  readonly plane: number;
}

/** Float32 parameters replaced by their elements' 1-based positions (exact below 2²⁴). */
interface ProbeBatch {
  readonly graph: Graph;
  readonly names: readonly string[];
  readonly starts: readonly number[];
  readonly sizes: readonly number[];
  readonly total: number;
}

/**
 * The graph's float32 parameters coded by position, in as few graphs as keep every position
 * exact in float32. A lowering of a coded graph shows where each element of a parameter went
 * in every constant the kernels made of it.
 */
function probeBatches(graph: Graph): ProbeBatch[] {
  const limit = 2 ** 24 - 1;
  const batches: ProbeBatch[] = [];
  let names: string[] = [], starts: number[] = [], sizes: number[] = [], total = 0;
  const flush = () => {
    if (!names.length) return;
    const params: Record<string, Tensor> = { ...graph.params };
    names.forEach((name, i) => {
      const start = starts[i];
      const coded = new Float32Array(sizes[i]);
      for (let j = 0; j < coded.length; j++) coded[j] = start + j + 1;
      params[name] = array(coded, { shape: graph.params[name].shape });
    });
    batches.push({ graph: { symbol: graph.symbol, params }, names, starts, sizes, total });
    names = [];
    starts = [];
    sizes = [];
    total = 0;
  };
  for (const [name, t] of Object.entries(graph.params)) {
    const n = shapeSize(t.shape);
    if (t.dtype !== "float32" || n === 0 || n > limit) continue;
    if (total + n > limit) flush();
    names.push(name);
    starts.push(total);
    sizes.push(n);
    total += n;
  }
  flush();
  return batches;
}

/**
 * Runs `[dst, src, n1, s1, n2, s2, d2]` covering every position of `map` that is not -1 (see
 * {@link deriveConstant}): runs of `n1` positions whose sources step by `s1`, repeated `n2`
 * times `d2` positions apart with sources `s2` apart (the positions between left as they are,
 * which must be -1).
 */
export function compressRuns(map: Int32Array): Int32Array {
  const runs: number[] = [];
  const n = map.length;
  const next = (q: number) => {
    while (q < n && map[q] < 0) q++;
    return q;
  };
  for (let p = next(0); p < n; p = next(p)) {
    const s0 = map[p];
    let n1 = 1, s1 = 1;
    if (p + 1 < n && map[p + 1] >= 0) {
      s1 = map[p + 1] - s0;
      n1 = 2;
      while (p + n1 < n && map[p + n1] >= 0 && map[p + n1] === s0 + n1 * s1) n1++;
    }
    let n2 = 1, s2 = 0, d2 = n1;
    const q = next(p + n1);
    if (q < n) {
      d2 = q - p;
      s2 = map[q] - s0;
      for (;;) {
        const at = p + n2 * d2;
        if (at + n1 > n) break;
        let same = true;
        for (let i = 0; i < n1 && same; i++) {
          same = map[at + i] >= 0 && map[at + i] === s0 + n2 * s2 + i * s1;
        }
        // The gap before the block holds nothing.
        for (let g = at - d2 + n1; g < at && same; g++) same = map[g] < 0;
        if (!same) break;
        n2++;
      }
    }
    if (n2 === 1) s2 = 0, d2 = n1;
    runs.push(p, s0, n1, s1, n2, s2, d2);
    p += (n2 - 1) * d2 + n1;
  }
  return new Int32Array(runs);
}

/**
 * How the constant `real` (whose lowering over the coded parameters is `probe`) is made from a
 * parameter, if it is a permutation of one (with zero padding) or its Winograd tiles; checked
 * by deriving it from the parameter's values and comparing the bytes.
 */
function analyze(
  probe: Float32Array,
  real: Float32Array,
  batch: ProbeBatch,
  graph: Graph,
): Derivation | undefined {
  const { starts, sizes, total } = batch;
  const owner = (g: number) => {
    let lo = 0, hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= g) lo = mid;
      else hi = mid - 1;
    }
    return g < starts[lo] + sizes[lo] ? lo : -1;
  };
  const check = (kind: 0 | 1 | 2, who: number, map: Int32Array, plane: number) => {
    const runs = compressRuns(map);
    // A table more than a quarter of the constant's size saves too little.
    if (runs.length * 4 * 4 > real.byteLength) return undefined;
    const param = batch.names[who];
    const values = tensorStorage(graph.params[param]) as Float32Array;
    const out = new Float32Array(real.length);
    try {
      deriveConstant(kind, values, runs, out, plane);
    } catch {
      return undefined;
    }
    const a = new Uint32Array(out.buffer),
      b = new Uint32Array(real.buffer, real.byteOffset, real.length);
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return undefined;
    return { kind, param, runs, plane };
  };
  // A permutation: every value a position (or 0, padding) of one parameter.
  gather: {
    const map = new Int32Array(probe.length);
    let who = -1;
    for (let i = 0; i < probe.length; i++) {
      const v = probe[i];
      if (v === 0) {
        map[i] = -1;
        continue;
      }
      if (!Number.isInteger(v) || v < 1 || v > total) break gather;
      const g = v - 1;
      if (who < 0) who = owner(g);
      if (who < 0 || g < starts[who] || g >= starts[who] + sizes[who]) break gather;
      map[i] = g - starts[who];
    }
    if (who >= 0) {
      const got = check(0, who, map, 0);
      if (got) return got;
    }
  }
  // Winograd tiles: plane 0 holds g[0][0]/16 (F(4×4)) or g[0][0] (F(2×2)) of each filter.
  for (const [kind, a2, scale] of [[1, 36, 16], [2, 16, 1]] as const) {
    if (probe.length % a2 !== 0) continue;
    const plane = probe.length / a2;
    const map = new Int32Array(plane);
    let who = -1;
    let ok = plane > 0;
    for (let p = 0; p < plane && ok; p++) {
      const v = probe[p] * scale;
      if (!Number.isInteger(v) || v < 1 || v > total) {
        ok = false;
        break;
      }
      const g = v - 1;
      if (who < 0) who = owner(g);
      ok = who >= 0 && g >= starts[who] && g < starts[who] + sizes[who] &&
        (g - starts[who]) % 9 === 0;
      map[p] = g - starts[who];
    }
    if (!ok) continue;
    const got = check(kind, who, map, plane);
    if (got) return got;
  }
  return undefined;
}

/**
 * Which of a program's constants can be derived at load from a parameter, by constant index:
 * the program is lowered again over coded parameters (it must come out the same shape).
 */
function derivations(
  graph: Graph,
  request: TargetRequest,
  simd: "relaxed" | "baseline",
  batch: number,
  constants: readonly { ptr: number; values: { readonly length: number } }[],
): Map<number, Derivation> {
  const found = new Map<number, Derivation>();
  for (const probe of probeBatches(graph)) {
    const compiled = lowerOnce(probe.graph, request, simd, batch, WASM_KERNELS, false);
    try {
      const got = compiled.program.constants;
      if (
        got.length !== constants.length ||
        got.some((c, i) =>
          c.ptr !== constants[i].ptr || c.values.length !== constants[i].values.length
        )
      ) {
        continue;
      }
      got.forEach((c, i) => {
        const real = constants[i].values;
        if (
          found.has(i) || !(real instanceof Float32Array) || !(c.values instanceof Float32Array)
        ) {
          return;
        }
        const d = analyze(c.values, real, probe, graph);
        if (d) found.set(i, d);
      });
    } finally {
      compiled.dispose();
    }
  }
  return found;
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
  const compiled = lowerOnce(graph, request, simd, batch, recordingTable(captured), true);
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
    const derived = request.shared
      ? derivations(graph, request, simd, batch, program.constants)
      : new Map<number, Derivation>();
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
      // In memory order: the weight file then lies in the memory as it lies on disk (a load
      // reads it in a few long runs), but for constants an earlier one already holds.
      constants: program.constants.map((c, k) => ({ c, k })).sort((a, b) => a.c.ptr - b.c.ptr)
        .flatMap(({ c, k }) => {
          if (derived.has(k)) return [];
          const v = c.values;
          const i = weights.add(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
          return [[c.ptr, weights.offsets[i], v.byteLength] as const];
        }),
      ...(derived.size
        ? {
          derived: [...derived].map(([k, d]): DerivedSpec => {
            const c = program.constants[k];
            const values = tensorStorage(graph.params[d.param]) as Float32Array;
            const source = request.shared!.add(
              new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
            );
            const runs = weights.add(new Uint8Array(d.runs.buffer));
            return [
              c.ptr,
              c.values.byteLength,
              d.kind,
              request.shared!.offsets[source],
              values.byteLength,
              weights.offsets[runs],
              d.runs.length / 7,
              d.plane,
            ];
          }),
        }
        : {}),
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
