/**
 * Ahead-of-time compilation: a model (a Symbol with parameters, a HybridBlock or SymbolBlock,
 * or an MXNet symbol/params file pair) compiled for fixed input shapes into a self-contained
 * ES module that imports nothing: the precompiled kernels, the execution plan, the weights
 * (embedded, beside it, or at a URL) and a small runtime of its own.
 *
 * @module
 */
import type { Tensor } from "../../runtime/tensor.ts";
import { ArgumentError } from "../../runtime/errors.ts";
import { type FileSource, isBytes, makeDirectory, writeFiles } from "../../runtime/io.ts";
import { Symbol } from "../symbol.ts";
import { graphOf, pipeline } from "../passes/pass.ts";
import { wasmEngine } from "../lower/wasm/engine.ts";
import { HybridBlock } from "../../gluon/block.ts";
import { SymbolBlock } from "../../gluon/symbol_block.ts";
import { zeros } from "../../runtime/creation.ts";
import { variable } from "../sym.ts";
import type { Manifest, TensorSpec } from "./manifest.ts";
import { deflate, emitModule, emitTypes } from "./emit.ts";
import type { AotProgress, AotTarget, TargetBuild } from "./target.ts";
import { Distinct, wasmTarget } from "./wasm_target.ts";
import { webgpuTarget } from "./webgpu_target.ts";
import type { GpuProgramSpec } from "./manifest.ts";
import { SIGIL_VERSION } from "./version.ts";

/** A model to compile: a graph with its parameters, a block, or an MXNet file pair. */
export type AotModel =
  | HybridBlock
  | { readonly symbol: Symbol; readonly params?: Readonly<Record<string, Tensor>> }
  | { readonly symbol: FileSource; readonly params?: FileSource };

/** An input's shape, or its shape and dtype. */
export type AotInput = readonly number[] | {
  readonly shape: readonly number[];
  readonly dtype?: "float32";
};

/** Options of {@link compile}. */
export interface AotOptions {
  /** Every graph input by name, with its fixed shape (batch in dimension 0). */
  readonly inputs: Readonly<Record<string, AotInput>>;
  /**
   * Batch sizes to specialise for: one program each, dimension 0 of every input replaced
   * (default: the given shapes' own). The first is the one metadata shapes are given at.
   */
  readonly batchSizes?: readonly number[];
  /**
   * The target: `wasm` (default), `webgpu`, or both (`["wasm", "webgpu"]`, or `"wasm,webgpu"`):
   * the artifact then runs on WebGPU where the platform gives an adapter and on WASM
   * elsewhere, and ships the parameters once (`<name>.shared.bin`): WebGPU uploads them as they
   * are, WASM derives its packed and Winograd-transformed constants from them at load (each
   * checked here to have the engine's bits; one that is not derivable stays in the backend's
   * own file). With WebGPU programs, a model's `run` returns a Promise on WebGPU.
   */
  readonly target?: string | readonly string[];
  /** Threads to split kernels across (default 1); loads use at most this many. */
  readonly threads?: number;
  /**
   * `auto` (default): both a relaxed-SIMD and a baseline-SIMD variant, chosen at load time
   * by validating the kernels; `relaxed` or `baseline`: that variant only (half the weights).
   */
  readonly simd?: "auto" | "relaxed" | "baseline";
  /**
   * `embed` (base64 in the module), `external` (default: a `.bin` per variant beside the
   * module) or `fetch` (read from {@link weightsUrl}).
   */
  readonly weights?: "embed" | "external" | "fetch";
  /**
   * For `fetch`: the URL of the weight file, or a prefix ending in `/` that the variants'
   * files (`<name>.<variant>.bin`) are under; relative URLs resolve against the module.
   */
  readonly weightsUrl?: string;
  /** Minify the module (default true). */
  readonly minify?: boolean;
  /** Base name of the files (default `model`): letters, digits, `.`, `_`, `-`. */
  readonly name?: string;
  /** Let 3×3 convolutions use Winograd (default true, as the JIT engine). */
  readonly winograd?: boolean;
  /** Called as the compile advances (the engine's phases, then `emit`). */
  readonly onProgress?: (progress: AotProgress) => void;
}

/** One file of an artifact. */
export interface ArtifactFile {
  /** Its name (no directories). */
  readonly path: string;
  /** Its contents. */
  readonly data: Uint8Array | string;
}

/** A compiled artifact: the module, its types and its weight files. */
export interface Artifact {
  /** The files, the module first. */
  readonly files: readonly ArtifactFile[];
  /** The module's text. */
  readonly js: string;
  /** Its `.d.ts`. */
  readonly dts: string;
  /** The plan the module carries. */
  readonly manifest: Manifest;
  /** Bytes of kernel code (WASM, before deflating), across variants. */
  readonly codeBytes: number;
  /** Writes every file into `dir` (created when missing); returns the paths written. */
  write(dir: string): Promise<string[]>;
}

const TARGETS: Readonly<Record<string, AotTarget>> = Object.freeze({
  wasm: wasmTarget,
  webgpu: webgpuTarget,
});

const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;

function positiveInt(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 2 ** 31 - 1;
}

function checkInputs(inputs: AotOptions["inputs"]): TensorSpec[] {
  if (inputs === null || typeof inputs !== "object") {
    throw new ArgumentError("compile: inputs must map every input name to its shape", "inputs");
  }
  const list = Object.entries(inputs).map(([name, v]) => {
    const shape = Array.isArray(v) ? v : (v as { shape?: unknown })?.shape;
    const dtype = Array.isArray(v) ? "float32" : (v as { dtype?: unknown }).dtype ?? "float32";
    if (!Array.isArray(shape) || shape.length === 0 || !shape.every(positiveInt)) {
      throw new ArgumentError(
        `compile: input ${JSON.stringify(name)} needs a fixed shape of positive integers`,
        name,
      );
    }
    if (dtype !== "float32") {
      throw new ArgumentError(
        `compile: input ${JSON.stringify(name)} is ${String(dtype)}; artifacts take float32`,
        name,
      );
    }
    return { name, shape: [...shape] as number[], dtype: "float32" as const };
  });
  if (!list.length) {
    throw new ArgumentError("compile: the model needs at least one input", "inputs");
  }
  return list;
}

/** The graph and constants of a model, with its data input names. */
async function graphOfModel(
  model: AotModel,
  inputs: readonly TensorSpec[],
): Promise<{ symbol: Symbol; params: Record<string, Tensor> }> {
  if (model instanceof HybridBlock) {
    let cached = model.cachedGraph();
    if (!cached) {
      // Deferred parameter shapes complete from the inputs; tracing needs no run.
      model.inferShape(...inputs.map((t) => zeros(t.shape)));
      const names = inputs.map((_, i) => (inputs.length === 1 ? "data" : `data${i}`));
      cached = model.trace(names.map((n) => variable(n)));
    }
    const given = new Set(inputs.map((t) => t.name));
    const missing = cached.inputNames.filter((n) => !given.has(n));
    if (missing.length) {
      throw new ArgumentError(
        `compile: the block's inputs are ${
          cached.inputNames.map((n) => JSON.stringify(n)).join(", ")
        }; give a shape for ${missing.map((n) => JSON.stringify(n)).join(", ")}`,
        missing[0],
      );
    }
    const params: Record<string, Tensor> = {};
    for (const [name, p] of cached.params) params[name] = p.data();
    return { symbol: cached.symbol, params };
  }
  if (model === null || typeof model !== "object" || !("symbol" in model)) {
    throw new ArgumentError(
      "compile: the model must be a HybridBlock, { symbol, params } or an MXNet file pair",
      "model",
    );
  }
  if (model.symbol instanceof Symbol) {
    const params = (model.params ?? {}) as Record<string, Tensor>;
    return { symbol: model.symbol, params: { ...params } };
  }
  const source = model.symbol as FileSource;
  if (typeof source !== "string" && !(source instanceof URL) && !isBytes(source)) {
    throw new ArgumentError("compile: symbol must be a Symbol, a path, a URL or bytes", "symbol");
  }
  const block = await SymbolBlock.imports(
    source,
    inputs.map((t) => t.name),
    model.params as FileSource | undefined,
  );
  return graphOfModel(block, inputs);
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Output names made unique (`name`, `name_1`, ...), in order. */
function uniqueNames(names: readonly string[]): string[] {
  const seen = new Set<string>();
  return names.map((n) => {
    let name = n;
    for (let i = 1; seen.has(name); i++) name = `${n}_${i}`;
    seen.add(name);
    return name;
  });
}

/**
 * Compiles a model ahead of time into an ES module (`<name>.js`), its types (`<name>.d.ts`)
 * and, unless embedded, its weight files. The module imports nothing and exports
 * `load(options?) -> Promise<Model>`, `metadata` and `ModelError`; `Model.run(inputs)` takes
 * and returns `Float32Array`s by name and gives the bits a JIT compile of the WASM engine
 * gives with the same SIMD variant and thread count. Nodes the WASM engine has no kernel
 * for are refused ({@link import("./wasm_target.ts").AotUnsupportedError}). With
 * `target: "webgpu"` the module carries the WebGPU engine's WGSL kernels instead and `run`
 * returns a Promise; with `["wasm", "webgpu"]` it carries both and `load()` picks WebGPU where
 * `navigator.gpu` gives an adapter, WASM elsewhere.
 *
 * @example Compile a small graph and run the artifact
 * ```ts
 * import assert from "node:assert";
 * import { nd, sym } from "../../mod.ts";
 * import { compile } from "./compile.ts";
 * const y = sym.FullyConnected(sym.var("x"), { num_hidden: 2, name: "fc" });
 * const params = { fc_weight: nd.ones([2, 3]), fc_bias: nd.zeros([2]) };
 * const artifact = await compile({ symbol: y, params }, {
 *   inputs: { x: [1, 3] },
 *   weights: "embed",
 *   minify: false, // (the default, true, starts esbuild-wasm: seconds)
 * });
 * const dir = await Deno.makeTempDir();
 * await artifact.write(dir);
 * const { load } = await import(`file://${dir}/model.js`);
 * const model = await load();
 * assert.deepStrictEqual(model.run({ x: new Float32Array([1, 2, 3]) }).fc_output, new Float32Array([6, 6]));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function compile(model: AotModel, options: AotOptions): Promise<Artifact> {
  const started = performance.now();
  const report = (phase: AotProgress["phase"], done = 0, total = 1) =>
    options.onProgress?.({ phase, done, total, elapsedMs: performance.now() - started });
  if (options === null || typeof options !== "object") {
    throw new ArgumentError("compile: options with inputs are required", "options");
  }
  const asked = options.target ?? "wasm";
  const names = typeof asked === "string"
    ? asked.split(",").map((t) => t.trim())
    : Array.isArray(asked)
    ? [...asked]
    : [];
  const targets = names.map((targetName) => {
    const target = Object.hasOwn(TARGETS, targetName) ? TARGETS[targetName] : undefined;
    if (!target) {
      throw new ArgumentError(
        `compile: unknown target ${JSON.stringify(targetName)}; available: ${
          Object.keys(TARGETS).join(", ")
        }`,
        "target",
      );
    }
    return target;
  });
  if (!targets.length || new Set(names).size !== names.length) {
    throw new ArgumentError("compile: target must name distinct targets", "target");
  }
  const threads = options.threads ?? 1;
  if (!positiveInt(threads) || threads > 64) {
    throw new ArgumentError(
      `compile: threads must be an integer in [1, 64], got ${threads}`,
      "threads",
    );
  }
  const simdOption = options.simd ?? "auto";
  if (!["auto", "relaxed", "baseline"].includes(simdOption)) {
    throw new ArgumentError(`compile: simd must be auto, relaxed or baseline`, "simd");
  }
  const weightsMode = options.weights ?? "external";
  if (!["embed", "external", "fetch"].includes(weightsMode)) {
    throw new ArgumentError(`compile: weights must be embed, external or fetch`, "weights");
  }
  if (weightsMode === "fetch" && typeof options.weightsUrl !== "string") {
    throw new ArgumentError("compile: weights 'fetch' needs weightsUrl", "weightsUrl");
  }
  const name = options.name ?? "model";
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new ArgumentError(
      `compile: name must be letters, digits, '.', '_' or '-' (not starting with '.' or '-'), got ${
        JSON.stringify(name)
      }`,
      "name",
    );
  }
  const given = checkInputs(options.inputs);
  const batchSizes = [...(options.batchSizes ?? [given[0].shape[0]])];
  if (
    !batchSizes.length || !batchSizes.every(positiveInt) ||
    new Set(batchSizes).size !== batchSizes.length
  ) {
    throw new ArgumentError("compile: batchSizes must be distinct positive integers", "batchSizes");
  }
  const inputs = given.map((t) => ({ ...t, shape: [batchSizes[0], ...t.shape.slice(1)] }));

  report("passes");
  const { symbol, params } = await graphOfModel(model, inputs);
  const bound: Record<string, Tensor> = {};
  const inputNames = new Set(inputs.map((t) => t.name));
  for (const [k, v] of Object.entries(params)) if (!inputNames.has(k)) bound[k] = v;
  const free = symbol.listInputs().filter((n) => !Object.hasOwn(bound, n));
  const unknown = free.filter((n) => !inputNames.has(n));
  if (unknown.length) {
    throw new ArgumentError(
      `compile: ${unknown.map((n) => JSON.stringify(n)).join(", ")} ${
        unknown.length === 1 ? "is" : "are"
      } neither a parameter nor in inputs`,
      unknown[0],
    );
  }
  const notInGraph = inputs.filter((t) => !symbol.listInputs().includes(t.name));
  if (notInGraph.length) {
    throw new ArgumentError(
      `compile: input ${JSON.stringify(notInGraph[0].name)} is not an input of the graph`,
      notInGraph[0].name,
    );
  }
  const simd = simdOption === "auto" ? ["relaxed", "baseline"] as const : [simdOption] as const;
  // With both targets, parameters the WASM constants derive from are shipped once.
  const shared = names.includes("wasm") && names.includes("webgpu") ? new Distinct() : undefined;
  const request = {
    ...(shared ? { shared } : {}),
    inputs,
    batchSizes,
    threads,
    simd,
    winograd: options.winograd ?? true,
    onProgress: (p: AotProgress) =>
      options.onProgress?.({ ...p, elapsedMs: performance.now() - started }),
  };
  // Each target lowers the graph after its own engine's passes; the builds are merged into
  // one code blob (the WebGPU shaders after the WASM modules).
  const byName = new Map<string, TargetBuild>();
  const order = ["wasm", "webgpu"];
  for (const target of [...targets].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name))) {
    const passes = target.passes?.() ?? wasmEngine().passes;
    byName.set(
      target.name,
      await target.build(pipeline(passes).run(graphOf(symbol, bound)), request),
    );
  }
  const wasmBuild = byName.get("wasm");
  const gpuBuild = byName.get("webgpu")?.webgpu;
  const base = wasmBuild?.modules.length ?? 0;
  const shift = wasmBuild?.code.length ?? 0;
  const gpuCode = byName.get("webgpu");
  const code = new Uint8Array(shift + (gpuCode?.code.length ?? 0));
  if (wasmBuild) code.set(wasmBuild.code);
  if (gpuCode) code.set(gpuCode.code, shift);
  const built = {
    code,
    modules: [
      ...(wasmBuild?.modules ?? []),
      ...(gpuCode?.modules ?? []).map(([o, n]) => [o + shift, n] as const),
    ],
    variants: wasmBuild?.variants ?? [],
    outputShapes: (wasmBuild ?? gpuCode)!.outputShapes,
  };
  // WebGPU constants that are shared parameters are read from the shared file.
  const gpuOwn = new Distinct();
  const gpuPrograms = gpuBuild?.programs.map((p): GpuProgramSpec => ({
    ...p,
    constants: p.constants.map(([buffer, offset, at, n]) => {
      const bytes = gpuBuild.weights.subarray(at, at + n);
      const inShared = shared?.find(bytes) ?? -1;
      if (inShared >= 0) return [buffer, offset, shared!.offsets[inShared], n, 1] as const;
      return [buffer, offset, gpuOwn.offsets[gpuOwn.add(bytes)], n] as const;
    }),
    steps: p.steps.map((s) => (s[0] === 0 ? [0, s[1] + base, s[2], s[3]] as const : s)),
  }));
  report("emit");
  const outputNames = uniqueNames(symbol.listOutputs());
  const compiledThreads = built.variants.length &&
      built.variants.every((v) => v.programs.every((p) => p.shared))
    ? threads
    : 1;
  const graphHash = await sha256(
    JSON.stringify({ symbol: symbol.toJSON(), inputs, batchSizes }),
  );
  const variantFile = (simdName: string) =>
    built.variants.length === 1 ? `${name}.bin` : `${name}.${simdName}.bin`;
  const manifest: Manifest = {
    format: 1,
    sigil: SIGIL_VERSION,
    target: names.join(","),
    graphHash,
    threads: compiledThreads,
    inputs,
    outputs: built.outputShapes.map((shape, i) => ({
      name: outputNames[i],
      shape: [...shape],
      dtype: "float32" as const,
    })),
    batchSizes,
    modules: built.modules,
    codeBytes: built.code.length,
    weights: weightsMode,
    ...(weightsMode === "fetch" ? { weightsUrl: options.weightsUrl } : {}),
    variants: built.variants.map((v) => ({
      simd: v.simd,
      weightsFile: variantFile(v.simd),
      weightsBytes: v.weights.length,
      programs: v.programs,
    })),
    ...(gpuBuild && gpuPrograms
      ? {
        webgpu: {
          weightsFile: `${name}.webgpu.bin`,
          weightsBytes: gpuOwn.bytes,
          programs: gpuPrograms,
        },
      }
      : {}),
    ...(shared?.bytes
      ? { shared: { weightsFile: `${name}.shared.bin`, weightsBytes: shared.bytes } }
      : {}),
  };
  const weightFiles = [
    ...built.variants.map((v) => ({ path: variantFile(v.simd), data: v.weights })),
    // (A WebGPU file that would be empty, every constant being shared, is left out.)
    ...(gpuBuild && (gpuOwn.bytes || !shared?.bytes)
      ? [{ path: `${name}.webgpu.bin`, data: gpuOwn.concat() }]
      : []),
    ...(shared?.bytes ? [{ path: `${name}.shared.bin`, data: shared.concat() }] : []),
  ];
  const js = await emitModule({
    manifest,
    runtimeSource: (gpuBuild ? webgpuTarget : wasmTarget).runtimeSource(),
    code: await deflate(built.code),
    ...(weightsMode === "embed"
      ? { embedded: new Map(weightFiles.map((f) => [f.path, f.data])) }
      : {}),
    minify: options.minify ?? true,
  });
  const dts = emitTypes(manifest);
  const files: ArtifactFile[] = [
    { path: `${name}.js`, data: js },
    { path: `${name}.d.ts`, data: dts },
    ...(weightsMode === "external" ? weightFiles : []),
  ];
  report("done", 1, 1);
  return Object.freeze({
    files,
    js,
    dts,
    manifest,
    codeBytes: built.code.length,
    async write(dir: string): Promise<string[]> {
      if (typeof dir !== "string" || dir === "") {
        throw new ArgumentError("write: dir must be a directory path", "dir");
      }
      await makeDirectory(dir);
      const base = dir.endsWith("/") ? dir : `${dir}/`;
      const writes = files.map((f) => ({
        target: base + f.path,
        data: f.data,
        what: "artifact file",
      }));
      await writeFiles(writes);
      return writes.map((w) => w.target);
    },
  });
}
