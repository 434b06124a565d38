/**
 * SymbolBlock: a block made from a symbol graph, such as an exported model or a slice of
 * another network's internals. Every non-input variable becomes a parameter named by the
 * variable (shared with the block it came from when given).
 *
 * @module
 */
import { didYouMean, listNames, showValue } from "../runtime/names.ts";
import { load as loadSymbol } from "../compiler/sym.ts";
import { Symbol } from "../compiler/symbol.ts";
import { execute, executeAsync, type ExecuteOptions } from "../compiler/execute.ts";
import { recordGraph } from "../compiler/autodiff/tape.ts";
import {
  isRecording,
  isTraining,
  nextTrainingSeed,
  withAutogradState,
} from "../runtime/autograd_state.ts";
import { random } from "../runtime/creation.ts";
import { declaredType } from "../compiler/infer.ts";
import type { Device } from "../runtime/device.ts";
import type { DType } from "../runtime/dtype.ts";
import { ArgumentError, SigilError } from "../runtime/errors.ts";
import { type FileSource, sourceName } from "../runtime/io.ts";
import { Tensor } from "../runtime/tensor.ts";
import {
  type BlockOutput,
  type CachedGraph,
  type Concrete,
  HybridBlock,
  type HybridizeOptions,
  type OptimizeForOptions,
  reportOps,
} from "./block.ts";
import { getBackend, partition, type PartitionPlan } from "../compiler/passes/partition.ts";
import { graphOf } from "../compiler/passes/pass.ts";
import { forwardState, type TrainingTrace, type Value } from "./context.ts";
import { trainingGraph, trainsDifferently } from "./training_graph.ts";
import { Parameter } from "./parameter.ts";
import { emptyRecord } from "../runtime/record.ts";

/** A training-mode graph: forward's outputs, then the parameters' new values. */
interface TrainingRun {
  readonly symbol: Symbol;
  /** How many outputs are forward's. */
  readonly outputs: number;
  /** The parameters the remaining outputs are written to, in order. */
  readonly updates: readonly Parameter[];
  /** Uniform [0, 1) inputs drawn from the training stream before each run. */
  readonly noise: TrainingTrace["noise"];
}

function asList(x: Symbol | readonly Symbol[], what: string): Symbol[] {
  const list = Array.isArray(x) ? [...x] : [x as Symbol];
  list.forEach((s, i) => {
    if (!(s instanceof Symbol)) throw new SigilError(`SymbolBlock: ${what} ${i} is not a Symbol`);
  });
  return list;
}

/**
 * A block that runs a symbol graph.
 *
 * @example A feature extractor sharing another block's parameters
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn, sym, SymbolBlock, type Symbol, type Tensor } from "../mod.ts";
 * const net = new nn.HybridSequential().add(new nn.Dense(8, { activation: "relu" }), new nn.Dense(2));
 * net.initialize();
 * net.call(nd.ones([1, 4]));
 * const data = sym.var("data");
 * const internals = (net.call(data) as unknown as Symbol).getInternals();
 * const features = new SymbolBlock(internals.get("0_act_fwd_output"), data, net.collectParams());
 * assert((features.call(nd.ones([1, 4])) as Tensor).shape.join() === "1,8");
 * assert(features.collectParams()["0.weight"] === net.collectParams()["0.weight"]);
 * ```
 */
export class SymbolBlock extends HybridBlock {
  readonly #symbol: Symbol;
  readonly #inputNames: readonly string[];
  readonly #params: Map<string, Parameter>;
  readonly #listOutput: boolean;
  /** The graph optimizeFor partitioned, run and exported until the next hybridize. */
  #partitioned: Symbol | undefined;
  /** Whether the graph has BatchNorm or Dropout nodes that act differently in training. */
  readonly #trains: boolean;
  /** Training-mode graphs by input signature. */
  readonly #trainingRuns = new Map<string, TrainingRun>();

  /**
   * Wraps `outputs` (one symbol, a group, or a list) computed from the variables `inputs`.
   * Parameters named in `params` (e.g. another block's `collectParams()`) are shared; the
   * others are created with deferred shapes (inferred at the first call) and dtypes inferred
   * from the dtypes the inputs declare (`sym.var("data", { dtype: "float64" })`), else from
   * the variables' own `__dtype__`, else float32.
   */
  constructor(
    outputs: Symbol | readonly Symbol[],
    inputs: Symbol | readonly Symbol[],
    params?: Readonly<Record<string, Parameter>>,
  ) {
    super();
    const outs = asList(outputs, "output");
    this.#listOutput = Array.isArray(outputs) || outs.some((s) => s.numOutputs > 1);
    this.#symbol = new Symbol(outs.flatMap((s) => s.outputs), outs[0].graphAttrs);
    this.#inputNames = asList(inputs, "input").map((s, i) => {
      if (s.numOutputs !== 1 || !s.outputs[0].node.isVariable) {
        throw new SigilError(`SymbolBlock: input ${i} must be a variable (sym.var)`);
      }
      return s.outputs[0].node.name;
    });
    const graphInputs = new Set(this.#symbol.listInputs());
    for (const n of this.#inputNames) {
      if (!graphInputs.has(n)) {
        throw new SigilError(`SymbolBlock: input '${n}' is not used by the outputs`);
      }
    }
    const types = paramTypes(this.#symbol, asList(inputs, "input"));
    const argNames = this.#symbol.listArguments();
    const auxNames = this.#symbol.listAuxiliaryStates();
    const typeOf = new Map<string, DType | undefined>([
      ...argNames.map((n, i) => [n, types.argTypes[i]] as const),
      ...auxNames.map((n, i) => [n, types.auxTypes[i]] as const),
    ]);
    const aux = new Set(auxNames);
    const shapes = this.#symbol.inferShapePartial({});
    const shapeOf = new Map([
      ...argNames.map((n, i) => [n, shapes.argShapes[i]] as const),
      ...auxNames.map((n, i) => [n, shapes.auxShapes[i]] as const),
    ]);
    this.#trains = trainsDifferently(this.#symbol);
    this.#params = new Map();
    for (const name of this.#symbol.listInputs()) {
      if (this.#inputNames.includes(name) || this.#params.has(name)) continue;
      const given = params && Object.hasOwn(params, name) ? params[name] : undefined;
      this.#params.set(
        name,
        given ?? new Parameter(name, {
          shape: shapeOf.get(name),
          dtype: typeOf.get(name) ?? "float32",
          gradReq: aux.has(name) ? "null" : "write",
          allowDeferredInit: true,
        }),
      );
    }
  }

  /**
   * Loads a `-symbol.json` file and, when given, its `.params` file (parameters take the
   * file's dtypes; `arg:`/`aux:` prefixes are stripped). `inputNames` names the data inputs.
   * Each file is a path, a URL (`http(s):`, `file:`; in a page, a path is fetched relative to
   * it) or the file's bytes.
   *
   * @example Export, then import
   * ```ts
   * import assert from "node:assert";
   * import { nd, nn, SymbolBlock, type Tensor } from "../mod.ts";
   * const net = new nn.HybridSequential().add(new nn.Dense(3));
   * net.initialize();
   * net.hybridize();
   * const x = nd.ones([2, 5]);
   * const y = net.call(x);
   * const dir = await Deno.makeTempDir();
   * const [symbolFile, paramsFile] = await net.export(`${dir}/net`);
   * const back = await SymbolBlock.imports(symbolFile, ["data"], paramsFile);
   * assert((await (back.call(x) as Tensor).data())[0] === (await y.data())[0]);
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  static async imports(
    symbolFile: FileSource,
    inputNames: string | readonly string[],
    paramFile?: FileSource,
    options: { device?: Device; allowMissing?: boolean; ignoreExtra?: boolean } = {},
  ): Promise<SymbolBlock> {
    if (
      typeof inputNames !== "string" &&
      !(Array.isArray(inputNames) && inputNames.every((n) => typeof n === "string"))
    ) {
      throw new ArgumentError(
        `SymbolBlock.imports: inputNames must be a name or an array of names, got ${
          showValue(inputNames)
        }`,
        "inputNames",
      );
    }
    const symbol = await loadSymbol(symbolFile);
    const names = typeof inputNames === "string" ? [inputNames] : [...inputNames];
    const inputs = names.map((n) =>
      new Symbol([symbolVar(symbol, n, sourceName(symbolFile, "symbol JSON"))])
    );
    const block = new SymbolBlock(symbol, inputs);
    if (paramFile !== undefined) {
      await block.loadParameters(paramFile, {
        device: options.device,
        allowMissing: options.allowMissing,
        ignoreExtra: options.ignoreExtra,
        castDtype: true,
        dtypeSource: "saved",
      });
    }
    return block;
  }

  /** The graph. */
  get symbol(): Symbol {
    return this.#symbol;
  }

  /** The parameters, by variable name. */
  override get params(): Record<string, Parameter> {
    return Object.fromEntries(this.#params);
  }

  /** Shares parameters by variable name. */
  override shareParameters(shared: Readonly<Record<string, Parameter>>): this {
    for (const name of this.#params.keys()) {
      if (Object.hasOwn(shared, name)) this.#params.set(name, shared[name]);
    }
    return this;
  }

  /**
   * Casts the parameters; for float16, BatchNorm's gamma, beta and statistics go back to
   * float32, found by MXNet's name rule (`<prefix>running_var` with its siblings, or
   * `moving_var`).
   */
  override cast(dtype: DType): this {
    super.cast(dtype);
    if (dtype !== "float16") return this;
    const names = new Set(this.#params.keys());
    for (const name of names) {
      for (
        const [suffix, mean] of [["running_var", "running_mean"], ["moving_var", "moving_mean"]]
      ) {
        if (!name.endsWith(suffix)) continue;
        const prefix = name.slice(0, -suffix.length);
        const group = [name, ...[mean, "gamma", "beta"].map((s) => prefix + s)];
        if (group.every((n) => names.has(n))) {
          for (const n of group) this.#params.get(n)!.cast("float32");
        }
      }
    }
    return this;
  }

  /**
   * Whether the graph has BatchNorm (without `use_global_stats`) or Dropout (`p > 0`) nodes.
   * In training mode (inside `autograd.record`) such a block runs its graph's training-mode
   * form, as MXNet does: batch statistics, moving statistics updated, Dropout masks drawn.
   */
  override trainsDifferently(): boolean {
    return this.#trains;
  }

  /** The graph export writes (always available). */
  protected override exportGraph(): CachedGraph {
    return {
      symbol: this.#partitioned ?? this.#symbol,
      inputNames: this.#inputNames,
      params: this.#params,
      listOutput: this.#listOutput,
    };
  }

  /** Turns hybridization on or off; drops the graph optimizeFor partitioned. */
  override hybridize(options: HybridizeOptions = {}): void {
    super.hybridize(options);
    this.#partitioned = undefined;
  }

  /**
   * MXNet 2.x's flow for imported models: partitions the graph with `backend` (the other
   * option keys are the backend's options), hybridizing first if `clear` or not hybridized,
   * and completing deferred parameter shapes from `x`. Later calls run the partitioned graph
   * and `export` writes it, until the next `hybridize`. Runs no forward; returns the plan.
   *
   * @example Importing, then partitioning
   * ```ts
   * import assert from "node:assert";
   * import { nd, nn, SymbolBlock, type Tensor } from "../mod.ts";
   * const net = new nn.HybridSequential().add(new nn.Dense(4, { activation: "relu" }), new nn.Dense(2));
   * net.initialize({ seed: 0 });
   * net.hybridize();
   * const x = nd.ones([3, 5]);
   * const y = net.call(x);
   * const dir = await Deno.makeTempDir();
   * const [symbolFile, paramsFile] = await net.export(`${dir}/net`);
   * const block = await SymbolBlock.imports(symbolFile, ["data"], paramsFile);
   * const plan = block.optimizeFor(x, { backend: "default", opNames: ["FullyConnected"] });
   * assert(plan.subgraphs.length === 2);
   * const [got, want] = [await (block.call(x) as Tensor).data(), await y.data()];
   * assert(got.every((v, i) => Math.abs(Number(v) - Number(want[i])) < 1e-5));
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  override optimizeFor(x: Tensor | Tensor[], options: OptimizeForOptions): PartitionPlan {
    const {
      backend,
      clear = false,
      staticAlloc,
      staticShape,
      inlineLimit,
      partitionIfDynamic,
      forwardBulkSize,
      backwardBulkSize,
      ...backendOptions
    } = options ?? {};
    if (typeof backend !== "string") throw new SigilError("optimizeFor: give a backend");
    getBackend(backend);
    const inputs = Array.isArray(x) ? x : [x];
    if (inputs.length !== this.#inputNames.length) {
      throw new SigilError(
        `optimizeFor: the SymbolBlock takes ${this.#inputNames.length} inputs (${
          this.#inputNames.join(", ")
        }), got ${inputs.length}`,
      );
    }
    inputs.forEach((t, i) => {
      if (!(t instanceof Tensor)) throw new SigilError(`optimizeFor: input ${i} is not a Tensor`);
    });
    if (clear || !this.isHybridized) {
      this.hybridize({
        active: true,
        staticAlloc,
        staticShape,
        inlineLimit,
        partitionIfDynamic,
        forwardBulkSize,
        backwardBulkSize,
      });
    }
    if ([...this.#params.values()].some((p) => !p.isInitialized && p.isDeferred)) {
      this.inferShape(...inputs);
    }
    const { graph, plan } = partition(graphOf(this.#symbol), backend, backendOptions);
    this.#partitioned = graph.symbol;
    return plan;
  }

  /** The graph (partitioned after optimizeFor), as a cached graph. */
  override cachedGraph(): CachedGraph {
    return this.exportGraph();
  }

  /** Infers deferred parameter shapes from the input shapes. */
  override inferShape(...inputs: Tensor[]): void {
    const shapes = Object.fromEntries(this.#inputNames.map((n, i) => [n, inputs[i].shape]));
    const r = this.#symbol.inferShapePartial(shapes);
    const names = [...this.#symbol.listArguments(), ...this.#symbol.listAuxiliaryStates()];
    const values = [...r.argShapes, ...r.auxShapes];
    names.forEach((n, i) => {
      const p = this.#params.get(n);
      if (p && values[i]) p.shape = values[i];
    });
  }

  /** Runs the graph with the reference interpreter. */
  override call<T extends import("./block.ts").Block>(
    this: T,
    ...inputs: Value[]
  ): Concrete<ReturnType<T["forward"]>> {
    const self = this as unknown as SymbolBlock;
    return self.callWithHooks(inputs, () => self.forward(...inputs)) as Concrete<
      ReturnType<T["forward"]>
    >;
  }

  /** Evaluates the graph on tensor inputs; on symbols, gives the graph composed on them. */
  forward(...inputs: Value[]): BlockOutput {
    const run = this.#prepare(inputs);
    if (!("bindings" in run)) return run.composed;
    const outs = execute(run.graph, run.bindings, run.options);
    return this.#finish(run.graph, run.bindings, outs, run.training);
  }

  /**
   * {@link forward} with its hooks, awaiting engines that run asynchronously (WebGPU, where
   * `call` throws a `BackendError` naming this method).
   *
   * @example An imported graph, awaited
   * ```ts
   * import assert from "node:assert";
   * import { nd, sym, SymbolBlock, type Tensor } from "../mod.ts";
   * const net = new SymbolBlock(sym.exp(sym.var("data")), [sym.var("data")]);
   * const y = await net.callAsync(nd.zeros([2])) as Tensor;
   * assert.deepStrictEqual(await y.data(), new Float32Array([1, 1]));
   * ```
   */
  override callAsync(...inputs: Value[]): Promise<BlockOutput> {
    if (!inputs.every((x) => x instanceof Tensor)) return super.callAsync(...inputs);
    return this.callWithHooksAsync(inputs, async () => {
      const run = this.#prepare(inputs);
      if (!("bindings" in run)) return run.composed;
      const outs = await executeAsync(run.graph, run.bindings, run.options);
      return this.#finish(run.graph, run.bindings, outs, run.training);
    });
  }

  /** The graph, bindings and options of a run on tensors (or the composed graph on symbols). */
  #prepare(
    inputs: Value[],
  ):
    | { composed: BlockOutput }
    | {
      graph: Symbol;
      bindings: Record<string, Tensor>;
      options: ExecuteOptions;
      training?: TrainingRun;
    } {
    if (forwardState()?.kind === "trace") {
      throw new SigilError("a SymbolBlock cannot be called inside another block's trace");
    }
    if (inputs.length !== this.#inputNames.length) {
      throw new SigilError(
        `SymbolBlock expects ${this.#inputNames.length} inputs (${
          this.#inputNames.join(", ")
        }), got ${inputs.length}`,
      );
    }
    if (inputs.some((x) => x instanceof Symbol)) return { composed: this.#compose(inputs) };
    inputs.forEach((x, i) => {
      if (!(x instanceof Tensor)) {
        throw new SigilError(`SymbolBlock: input '${this.#inputNames[i]}' is not a Tensor`);
      }
    });
    const tensors = inputs as Tensor[];
    if ([...this.#params.values()].some((p) => !p.isInitialized && p.isDeferred)) {
      this.inferShape(...tensors);
    }
    const bindings = emptyRecord<Tensor>();
    this.#inputNames.forEach((n, i) => (bindings[n] = tensors[i]));
    const state = forwardState();
    for (const [name, p] of this.#params) {
      bindings[name] = (state?.kind === "bind" ? state.values.get(p) : undefined) ?? p.data();
    }
    // A SymbolBlock always runs as a graph (MXNet: a CachedOp), so op hooks always report.
    const hooks = this.opHooks;
    const engine = this.hybridizeFlags.engine;
    const training = isTraining() && this.#trains ? this.#trainingRun(tensors) : undefined;
    // Dropout's noise: drawn from the training stream in graph order, as eager Dropout does.
    for (const { name, shape } of training?.noise ?? []) {
      bindings[name] = random.uniform(0, 1, shape, { seed: nextTrainingSeed() });
    }
    const graph = training?.symbol ?? this.#partitioned ?? this.#symbol;
    const updated = new Set<Parameter>(training?.updates);
    const options = {
      ...(engine ? { engine } : {}),
      // The block's own parameters stay the same across calls: the WASM backend compiles them in.
      // While recording, those with a gradient change every step: they stay inputs; so do the
      // moving statistics a training run updates.
      constants: state?.kind === "bind"
        ? []
        : [...this.#params].filter(([, p]) =>
          (!isRecording() || p.gradReq === "null") && !updated.has(p)
        ).map(([n]) => n),
      ...(hooks.length ? { onNode: reportOps(hooks) } : {}),
    };
    return { graph, bindings, options, ...(training ? { training } : {}) };
  }

  /** The training-mode graph for these inputs (rewritten on the first call per signature). */
  #trainingRun(inputs: Tensor[]): TrainingRun {
    const key = inputs.map((t) => `${t.dtype}(${t.shape.join(",")})`).join(";");
    let run = this.#trainingRuns.get(key);
    if (run) return run;
    const shapes: Record<string, readonly number[]> = {};
    for (const [name, p] of this.#params) {
      if (p.shape && p.shape.every((d) => d > 0)) shapes[name] = p.shape;
    }
    this.#inputNames.forEach((n, i) => (shapes[n] = inputs[i].shape));
    const trace: TrainingTrace = { shapes, updates: [], noise: [] };
    const forward = trainingGraph(this.#symbol, trace);
    const updates = trace.updates.map((u) => this.#params.get(u.target as string)!);
    run = {
      symbol: new Symbol(
        [...forward.outputs, ...trace.updates.flatMap((u) => u.value.outputs)],
        forward.graphAttrs,
      ),
      outputs: forward.outputs.length,
      updates,
      noise: [...trace.noise],
    };
    this.#trainingRuns.set(key, run);
    return run;
  }

  #finish(
    graph: Symbol,
    bindings: Record<string, Tensor>,
    all: Tensor[],
    training?: TrainingRun,
  ): BlockOutput {
    const n = training?.outputs ?? all.length;
    const outs = all.slice(0, n);
    // Inside autograd.record the run is one step of the tape (fine-tuning an imported model):
    // its forward outputs; the moving statistics' updates are not differentiated, as in MXNet.
    if (isRecording()) {
      recordGraph(training ? new Symbol(graph.outputs.slice(0, n)) : graph, bindings, outs);
    }
    if (training) {
      withAutogradState(false, false, () => {
        training.updates.forEach((p, i) => p.setData(all[n + i]));
      });
    }
    return this.#listOutput ? outs : outs[0];
  }

  /**
   * Called on symbols, the block gives its graph composed on them (MXNet's `_compose`): each
   * input variable is replaced by the given symbol; parameters stay variables of their names.
   */
  #compose(inputs: Value[]): BlockOutput {
    const args: Record<string, Symbol> = {};
    inputs.forEach((x, i) => {
      if (!(x instanceof Symbol)) {
        throw new SigilError(`SymbolBlock: inputs mix Symbols and Tensors (input ${i})`);
      }
      args[this.#inputNames[i]] = x;
    });
    const out = this.#symbol.compose(args);
    return this.#listOutput ? out.outputs.map((e) => new Symbol([e], out.graphAttrs)) : out;
  }

  /** `SymbolBlock(\n<Symbol ...> : 1 -> 1\n)`, as MXNet prints it. */
  override toString(): string {
    return `SymbolBlock(\n${this.#symbol} : ${this.#inputNames.length} -> ${this.#symbol.numOutputs}\n)`;
  }
}

/**
 * Parameter dtypes as MXNet's SymbolBlock infers them: from the dtypes the input variables
 * declare (`sym.var("data", { dtype })`), through the graph. Where inference fails (e.g. a
 * float16 export seen with float32 inputs), each variable keeps the dtype it declares, as the
 * parameters of an exported graph do; float32 where nothing is known.
 */
function paramTypes(symbol: Symbol, inputs: readonly Symbol[]) {
  const given: Record<string, DType> = {};
  for (const s of inputs) {
    const node = s.outputs[0].node;
    const t = declaredType(node);
    if (t !== undefined) given[node.name] = t;
  }
  try {
    return symbol.inferTypePartial(given);
  } catch (e) {
    if (!(e instanceof SigilError)) throw e;
    const declared = (names: string[]) =>
      names.map((n) => declaredType(symbol.nodes().find((v) => v.isVariable && v.name === n)!));
    return {
      argTypes: declared(symbol.listArguments()),
      auxTypes: declared(symbol.listAuxiliaryStates()),
    };
  }
}

function symbolVar(symbol: Symbol, name: string, file: string) {
  const node = symbol.nodes().find((n) => n.isVariable && n.name === name);
  if (!node) {
    throw new SigilError(
      `SymbolBlock.imports: '${file}' has no input named '${name}'${
        didYouMean(name, symbol.listInputs())
      }; its inputs are ${listNames(symbol.listInputs())}`,
    );
  }
  return node.entry();
}
