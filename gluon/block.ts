/**
 * Blocks: `Block` (any forward code) and `HybridBlock` (forward code written with `F` that can
 * be traced into a graph by `hybridize`). A block is a pure function over a parameter record
 * (`asFunction`); the stateful Gluon methods keep the current record in Parameters.
 *
 * @module
 */
import { nameScope, variable } from "../compiler/sym.ts";
import { Symbol } from "../compiler/symbol.ts";
import { executeProgram, executeProgramAsync, type Execution } from "../compiler/execute.ts";
import { recordGraph } from "../compiler/autodiff/tape.ts";
import {
  isRecording,
  isTraining,
  nextTrainingSeed,
  withAutogradState,
} from "../runtime/autograd_state.ts";
import type { Engine, Program, ProgressCallback } from "../compiler/engine.ts";
import { resolveEngine, withEngine } from "../compiler/engines.ts";
import type { DType } from "../runtime/dtype.ts";
import type { Device } from "../runtime/device.ts";
import { ArgumentError, FormatError, SigilError } from "../runtime/errors.ts";
import { describeValue, showValue } from "../runtime/names.ts";
import { formatShape } from "../runtime/shape.ts";
import { Tensor } from "../runtime/tensor.ts";
import {
  type BindState,
  forwardState,
  type TraceState,
  type TrainingTrace,
  type Value,
  withForwardState,
} from "./context.ts";
import { random } from "../runtime/creation.ts";
import { type InitSpec, seedFor } from "./initializer.ts";
import { entriesToSave, loadInto, type LoadOptions } from "./io.ts";
import { Parameter } from "./parameter.ts";
import { warnOnce } from "./warn.ts";
import { OptConstraint } from "./opt_constraint.ts";
import { loadParams, paramsBytes, paramsToRecord } from "../runtime/params.ts";
import {
  type FileSource,
  type FileTarget,
  readText,
  sourceName,
  writeFile,
  writeFiles,
} from "../runtime/io.ts";
import { exportedGraph, tracedGraph } from "../compiler/passes/pipeline.ts";
import type { MemoryPlan } from "../compiler/passes/memory_plan.ts";
import { inlineSubgraphs } from "../compiler/passes/inline.ts";
import {
  getBackend,
  type PartitionOptions,
  type PartitionPlan,
} from "../compiler/passes/partition.ts";
import { makeNode } from "../compiler/symbol.ts";
import { getOp } from "../ops/registry.ts";
import { emptyRecord, setOwn } from "../runtime/record.ts";

/** A frozen record from structural parameter names (`features.0.weight`) to tensors. */
export type ParamRecord = Readonly<Record<string, Tensor>>;

/** What a block's forward returns. */
export type BlockOutput = Value | Value[];

/** `forward`'s result with symbols replaced by tensors: what `call` gives for tensor inputs. */
export type Concrete<T> = T extends readonly unknown[] ? Tensor[] : Tensor;

/** A handle that removes a hook. */
export interface HookHandle {
  /** Removes the hook. */
  detach(): void;
}

/** A hook called before forward with the block and its inputs. */
export type ForwardPreHook = (block: Block, inputs: readonly Value[]) => void;
/** A hook called after forward with the block, its inputs and outputs. */
export type ForwardHook = (block: Block, inputs: readonly Value[], outputs: BlockOutput) => void;
/** An op hook: `(name, opName, tensor)` for op outputs (and inputs with monitorAll). */
export type OpHook = (name: string, opName: string, tensor: Tensor) => void;

/** Options of {@link Block.initialize}. */
export interface InitializeOptions {
  /** Initializer for parameters without their own (Uniform(0.07)). */
  init?: InitSpec;
  /** Device for the data. */
  device?: Device;
  /** Seed: parameter `name` draws from `seedFor(seed, name)` (0 unless given). */
  seed?: number;
  /** Print each parameter as it is initialized. */
  verbose?: boolean;
  /** Re-initialize parameters that already hold data. */
  forceReinit?: boolean;
}

const blockIds = new WeakMap<object, number>();
let nextBlockId = 0;
/** A process-unique id for a block (for cache keys). */
/** A block's registered parameters (`registerParameter`), for this module's walks. */
let ownParams: (b: Block) => readonly Parameter[];

/**
 * Every parameter of the tree under `root`, in walk order, repeats included: no records,
 * name checks or warnings (collectParams does those), for the checks a call makes.
 */
function treeParams(root: Block): Parameter[] {
  const out: Parameter[] = [];
  const walk = (b: Block, depth: number) => {
    if (depth > 256) throw new SigilError("block tree is too deep (a cycle?)");
    for (const v of Object.values(b)) if (v instanceof Parameter) out.push(v);
    out.push(...ownParams(b));
    for (const [, c] of b.children()) walk(c, depth + 1);
  };
  walk(root, 0);
  return out;
}

function idOf(b: object): number {
  let id = blockIds.get(b);
  if (id === undefined) blockIds.set(b, id = nextBlockId++);
  return id;
}

const snakeNames = new Map<string, string>();

/** `camelCase` → `camel_case` (remembered: every call of a hybridized block walks its tree). */
function snake(name: string): string {
  let out = snakeNames.get(name);
  if (out === undefined) {
    out = name.replace(/[A-Z]/g, (m) => "_" + m.toLowerCase());
    if (snakeNames.size < 4096) snakeNames.set(name, out);
  }
  return out;
}

let warnedResetCtx = false;

/** Parameter attributes {@link Block.setattr} sets, by MXNet's and sigil's names. */
const PARAM_ATTRS: Readonly<Record<string, "gradReq" | "lrMult" | "wdMult" | "init">> = {
  gradReq: "gradReq",
  grad_req: "gradReq",
  lrMult: "lrMult",
  lr_mult: "lrMult",
  wdMult: "wdMult",
  wd_mult: "wdMult",
  init: "init",
};

/**
 * The base block. Subclasses create child blocks and parameters as properties (or with
 * {@link registerChild} / {@link registerParameter}) and implement {@link forward}.
 *
 * @example A custom block
 * ```ts
 * import assert from "node:assert";
 * import { Block, F, nd, nn, type Value } from "../mod.ts";
 * class Net extends Block {
 *   dense = new nn.Dense(3, { inUnits: 4 });
 *   forward(x: Value): Value {
 *     return F.Activation(this.dense.call(x) as Value, { act_type: "relu" });
 *   }
 * }
 * const net = new Net();
 * net.initialize({ seed: 1 });
 * assert(net.call(nd.ones([2, 4])).shape[1] === 3);
 * assert(Object.keys(net.collectParams()).join() === "dense.weight,dense.bias");
 * ```
 */
export abstract class Block {
  readonly #children: [string, Block][] = [];
  readonly #params: Parameter[] = [];

  static {
    ownParams = (b) => b.#params;
  }
  readonly #preHooks = new Map<number, ForwardPreHook>();
  readonly #hooks = new Map<number, ForwardHook>();
  #nextHook = 0;
  /** @internal Op hooks, reported when a hybridized graph runs. */
  protected opHooks: { callback: OpHook; monitorAll: boolean }[] = [];

  /** The forward computation. Use `F` ops and `param.value()` so it can be traced. */
  abstract forward(...inputs: Value[]): BlockOutput;

  /** Registers a child block under `name` (its index among registered children by default). */
  registerChild<B extends Block>(block: B, name?: string): B {
    if (!(block instanceof Block)) throw new SigilError("registerChild needs a Block");
    const key = name ?? String(this.#children.length);
    const at = this.#children.findIndex(([k]) => k === key);
    if (at >= 0) this.#children[at] = [key, block];
    else this.#children.push([key, block]);
    return block;
  }

  /** Registers a parameter that is not a property (its name is its structural key). */
  registerParameter(param: Parameter): Parameter {
    if (!(param instanceof Parameter)) throw new SigilError("registerParameter needs a Parameter");
    this.#params.push(param);
    return param;
  }

  /**
   * Sets an attribute on every Parameter of this block and its children (MXNet's
   * `setattr`): `gradReq` / `grad_req`, `lrMult` / `lr_mult`, `wdMult` / `wd_mult` or
   * `init`. (To add a child block or parameter, assign a property or use
   * {@link registerChild} / {@link registerParameter}.)
   *
   * @example Freezing a network
   * ```ts
   * import assert from "node:assert";
   * import { nn } from "../mod.ts";
   * const net = new nn.HybridSequential().add(new nn.Dense(4), new nn.Dense(2));
   * net.setattr("grad_req", "null");
   * net.setattr("lrMult", 0.5);
   * const params = Object.values(net.collectParams());
   * assert(params.every((p) => p.gradReq === "null" && p.lrMult === 0.5));
   * ```
   */
  setattr(name: string, value: unknown): void {
    const key = Object.hasOwn(PARAM_ATTRS, name) ? PARAM_ATTRS[name] : undefined;
    if (key === undefined) {
      throw new SigilError(
        `setattr: Parameters have no settable attribute '${name}'; use one of ${
          Object.keys(PARAM_ATTRS).join(", ")
        }`,
      );
    }
    if ((key === "lrMult" || key === "wdMult") && typeof value !== "number") {
      throw new SigilError(`setattr: ${name} must be a number, got ${typeof value}`);
    }
    for (const p of new Set(Object.values(this.collectParams()))) {
      (p as unknown as Record<string, unknown>)[key] = value;
    }
  }

  /**
   * Whether this block computes something else in training mode (Dropout masks, BatchNorm's
   * batch statistics). A hybridized block containing one traces a second, training-mode graph
   * for training calls (cached per input signature like the first): the moving statistics'
   * new values are extra outputs written back after each run, Dropout's noise an input drawn
   * from the training stream, and under `autograd.record` the run is one node of the tape.
   */
  trainsDifferently(): boolean {
    return this.children().some(([, b]) => b.trainsDifferently());
  }

  /**
   * Child blocks with their structural names: block-valued properties (camelCase names in
   * snake_case) in assignment order, then registered children. A block reachable under two
   * names appears twice, as in MXNet.
   */
  children(): [string, Block][] {
    const out: [string, Block][] = [];
    const own = this as unknown as Record<string, unknown>;
    for (const k of Object.keys(own)) {
      const v = own[k];
      if (v instanceof Block) out.push([snake(k), v]);
    }
    if (out.length === 0) return this.#children.map(([k, v]): [string, Block] => [k, v]);
    for (const [k, v] of this.#children) if (!out.some(([n]) => n === k)) out.push([k, v]);
    return out;
  }

  /** This block's own parameters by name (children's excluded). */
  get params(): Record<string, Parameter> {
    const out: Record<string, Parameter> = {};
    for (const v of [...Object.values(this), ...this.#params]) {
      if (v instanceof Parameter) {
        if (Object.hasOwn(out, v.name) && out[v.name] !== v) {
          throw new SigilError(`${this.constructor.name} has two parameters named '${v.name}'`);
        }
        setOwn(out, v.name, v);
      }
    }
    return out;
  }

  /**
   * Every parameter by structural name (`features.0.weight`), own first, then children's in
   * order. `select` is a regular expression matched at the start of the name, as MXNet does.
   */
  collectParams(select?: string): Record<string, Parameter> {
    const all: Record<string, Parameter> = {};
    const walk = (b: Block, prefix: string, depth: number) => {
      if (depth > 256) throw new SigilError("block tree is too deep (a cycle?)");
      b.#warnUnregisteredBlocks();
      for (const [name, p] of Object.entries(b.params)) setOwn(all, prefix + name, p);
      for (const [name, c] of b.children()) walk(c, `${prefix}${name}.`, depth + 1);
    };
    walk(this, "", 0);
    if (select === undefined) return all;
    const re = new RegExp(`^(?:${select})`);
    return Object.fromEntries(Object.entries(all).filter(([k]) => re.test(k)));
  }

  /**
   * Warns (once per block and property) about arrays, plain objects and Maps held as properties
   * that contain blocks which are not children: their parameters are not collected, as in
   * MXNet, which warns the same way from `collect_params`.
   */
  #warnUnregisteredBlocks(): void {
    let registered: Set<Block> | undefined;
    const seen = new Set<object>();
    const holdsStray = (v: unknown, depth: number): boolean => {
      if (v instanceof Block) {
        registered ??= new Set(this.children().map(([, c]) => c));
        return !registered.has(v);
      }
      if (typeof v !== "object" || v === null || depth > 8 || seen.has(v)) return false;
      seen.add(v);
      const values = containerValues(v);
      return values !== undefined && values.some((x) => holdsStray(x, depth + 1));
    };
    for (const [k, v] of Object.entries(this)) {
      if (containerValues(v) !== undefined && holdsStray(v, 0)) {
        warnOnce(
          this,
          `"${this.constructor.name}.${k}" is an unregistered container with Blocks. Note that ` +
            "Blocks inside the array, object or Map will not be registered automatically. Make " +
            "sure to register them using registerChild() or switching to " +
            "nn.Sequential/nn.HybridSequential instead.",
        );
      }
    }
  }

  /** Blocks with their structural paths (`features.0`), this one first (path ""). */
  namedBlocks(): [string, Block][] {
    const out: [string, Block][] = [];
    const walk = (b: Block, path: string, depth: number) => {
      if (depth > 256) throw new SigilError("block tree is too deep (a cycle?)");
      out.push([path, b]);
      for (const [name, c] of b.children()) walk(c, path ? `${path}.${name}` : name, depth + 1);
    };
    walk(this, "", 0);
    return out;
  }

  /** Calls `fn` on every child (recursively, children first) and then on this block. */
  apply(fn: (block: Block) => void): this {
    for (const [, c] of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  /**
   * Replaces parameters with the given ones where structural names match (MXNet's
   * `share_parameters`); returns this block.
   */
  shareParameters(shared: Readonly<Record<string, Parameter>>): this {
    const walk = (b: Block, prefix: string) => {
      for (const [key, v] of Object.entries(b)) {
        if (v instanceof Parameter && Object.hasOwn(shared, prefix + v.name)) {
          (b as unknown as Record<string, unknown>)[key] = shared[prefix + v.name];
        }
      }
      b.#params.forEach((p, i) => {
        if (Object.hasOwn(shared, prefix + p.name)) b.#params[i] = shared[prefix + p.name];
      });
      for (const [name, c] of b.children()) walk(c, `${prefix}${name}.`);
    };
    walk(this, "");
    return this;
  }

  /** Initializes every parameter (deferred where shapes are unknown). */
  initialize(options: InitializeOptions = {}): this {
    const done = new Set<Parameter>();
    for (const [name, p] of Object.entries(this.collectParams())) {
      if (done.has(p)) continue;
      done.add(p);
      p.initialize({
        init: options.init,
        device: options.device,
        seed: seedFor(options.seed ?? 0, name),
        forceReinit: options.forceReinit,
      });
      if (options.verbose) console.log(`initialized ${name}: ${p}`);
    }
    return this;
  }

  /** Sets every gradient to zero. */
  zeroGrad(): void {
    for (const p of new Set(Object.values(this.collectParams()))) p.zeroGrad();
  }

  /** Casts every parameter to `dtype` (children first; layers may keep some, like BatchNorm). */
  cast(dtype: DType): this {
    for (const [, c] of this.children()) c.cast(dtype);
    for (const p of Object.values(this.params)) p.cast(dtype);
    return this;
  }

  /** Moves every parameter to `device`. */
  resetDevice(device: Device): this {
    for (const p of new Set(Object.values(this.collectParams()))) p.resetDevice(device);
    return this;
  }

  /** @deprecated Use {@link resetDevice}. */
  resetCtx(device: Device): this {
    if (!warnedResetCtx) {
      warnedResetCtx = true;
      console.warn("Block.resetCtx is deprecated; use resetDevice");
    }
    return this.resetDevice(device);
  }

  /** The current parameter record: structural name to tensor (frozen). */
  paramRecord(): ParamRecord {
    const out: Record<string, Tensor> = {};
    for (const [name, p] of Object.entries(this.collectParams())) setOwn(out, name, p.data());
    return Object.freeze(out);
  }

  /**
   * The block as a pure function `(params, ...inputs) => outputs`: the same record and inputs
   * give the same outputs, and nothing else is read or written (hooks aside). With `engine`,
   * every call runs on it (eager ops and hybridized graphs alike); otherwise the scope's or the
   * device's default engine runs.
   *
   * @example Two records, one block
   * ```ts
   * import assert from "node:assert";
   * import { nd, nn, type Tensor } from "../mod.ts";
   * const dense = new nn.Dense(2, { inUnits: 3 });
   * dense.initialize({ seed: 1 });
   * const f = dense.asFunction();
   * const zeros = { weight: nd.zeros([2, 3]), bias: nd.ones([2]) };
   * const y = f(zeros, nd.ones([1, 3])) as Tensor;
   * assert((await y.data())[0] === 1);
   * ```
   */
  asFunction(
    options: { readonly engine?: Engine } = {},
  ): (params: ParamRecord, ...inputs: Tensor[]) => Tensor | Tensor[] {
    const engine = options.engine === undefined ? undefined : resolveEngine(options.engine);
    return (params, ...inputs) => {
      const values = new Map<object, Tensor>();
      for (const [name, p] of Object.entries(this.collectParams())) {
        const t = params[name];
        if (!(t instanceof Tensor)) {
          throw new SigilError(`parameter record has no tensor for '${name}'`);
        }
        const seen = values.get(p);
        if (seen && seen !== t) {
          throw new SigilError(
            `shared parameter '${name}' has two different tensors in the record`,
          );
        }
        values.set(p, t);
      }
      const state: BindState = { kind: "bind", values };
      const run = () => withForwardState(state, () => this.call(...inputs)) as Tensor | Tensor[];
      return engine ? withEngine(engine, run) : run();
    };
  }

  /**
   * Writes every parameter to a `.params` file (a path or `file:` URL) keyed by structural name
   * (MXNet's `save_parameters`). `deduplicate` saves each shared Parameter once. The format is
   * MXNet 1.x's V2 list unless `format: "npz"` (MXNet 2.x) is given or the file ends in `.npz`;
   * `format: "v3"` writes the list with V3 records, which hold 0-d parameters. The file is
   * written under a temporary name and renamed into place.
   */
  async saveParameters(
    file: FileTarget,
    options: { deduplicate?: boolean; format?: "v2" | "v3" | "npz" } = {},
  ): Promise<void> {
    const format = options.format ?? (String(file).endsWith(".npz") ? "npz" : "v2");
    await writeFile(file, this.parametersBytes({ ...options, format }), "parameter file");
  }

  /**
   * The bytes {@link saveParameters} writes (for a page, or any place without a file system).
   *
   * @example Round trip through bytes
   * ```ts
   * import assert from "node:assert";
   * import { nd, nn } from "../mod.ts";
   * const net = new nn.Dense(2, { inUnits: 3 });
   * net.initialize();
   * const bytes = net.parametersBytes();
   * const other = new nn.Dense(2, { inUnits: 3 });
   * other.initialize();
   * await other.loadParameters(bytes);
   * const x = nd.ones([1, 3]);
   * assert.deepStrictEqual(await other.call(x).data(), await net.call(x).data());
   * ```
   */
  parametersBytes(
    options: { deduplicate?: boolean; format?: "v2" | "v3" | "npz" } = {},
  ): Uint8Array {
    return paramsBytes(entriesToSave(this.collectParams(), options.deduplicate ?? false), {
      format: options.format ?? "v2",
    });
  }

  /**
   * Loads a `.params` file of any vintage (pre-V1, V1, V2, V3, `.npz`) into the parameters by
   * structural name; `arg:`/`aux:` prefixes are stripped. The file is a path, a URL or its
   * bytes (any `ArrayBuffer` view, a Node `Buffer` too). Missing or extra names fail unless
   * allowed; dtypes must match unless `castDtype`.
   */
  async loadParameters(file: FileSource, options: LoadOptions = {}): Promise<void> {
    const loaded = await loadParams(file);
    loadInto(
      this.collectParams(),
      paramsToRecord(loaded),
      options,
      sourceName(file, "the given bytes"),
    );
  }

  /** Loads a record of named tensors (keys may carry `arg:`/`aux:`), as `loadParameters` does. */
  loadDict(record: Readonly<Record<string, Tensor>>, options: LoadOptions = {}): void {
    loadInto(this.collectParams(), record, options, "the given dict");
  }

  /**
   * Saves the block: `<prefix>-model.json` describes the block tree (class names, parameter
   * names, hybridized flags and cached graphs) and `<prefix>-model.params` holds the
   * parameters. (MXNet 2.x writes the parameters to a hard-coded `MyModel-model.params`; sigil
   * keeps MXNet 1.x's per-prefix name.) Both files are written under temporary names and
   * renamed into place only when both are complete.
   */
  async save(prefix: string | URL): Promise<void> {
    let index = 0;
    const describe = (b: Block): Record<string, unknown> => {
      const entry: Record<string, unknown> = {
        params: Object.fromEntries(Object.entries(b.params).map(([k]) => [k, k])),
        hybridized: b instanceof HybridBlock && b.isHybridized,
      };
      const g = b instanceof HybridBlock ? b.cachedGraph() : undefined;
      if (g) entry.symbol = g.symbol.toJSON();
      for (const [, c] of b.children()) {
        entry[`${c.constructor.name.toLowerCase()}${index++}`] = describe(c);
      }
      return entry;
    };
    const tree = { [`${this.constructor.name.toLowerCase()}${index++}`]: describe(this) };
    await writeFiles([
      { target: withSuffix(prefix, "-model.json"), data: JSON.stringify(tree), what: "model file" },
      {
        target: withSuffix(prefix, "-model.params"),
        data: this.parametersBytes(),
        what: "parameter file",
      },
    ]);
  }

  /**
   * Loads what {@link save} wrote into a block of the same structure: checks the tree, loads
   * the parameters and turns hybridization back on where it was.
   */
  async load(prefix: string | URL): Promise<void> {
    const modelFile = withSuffix(prefix, "-model.json");
    const text = await readText(modelFile, "model file");
    let tree: unknown;
    try {
      tree = JSON.parse(text);
    } catch (e) {
      throw new FormatError(`${String(modelFile)}: ${(e as Error).message}`, undefined, {
        cause: e,
      });
    }
    let index = 0;
    const visit = (b: Block, entry: unknown, path: string) => {
      if (typeof entry !== "object" || entry === null) {
        throw new SigilError(`'${prefix}-model.json': no entry for block '${path || "(root)"}'`);
      }
      const e = entry as Record<string, unknown>;
      if (e.hybridized === true && b instanceof HybridBlock && !b.isHybridized) b.hybridize();
      for (const [name, c] of b.children()) {
        const key = `${c.constructor.name.toLowerCase()}${index++}`;
        visit(c, e[key], path ? `${path}.${name}` : name);
      }
    };
    const rootKey = `${this.constructor.name.toLowerCase()}${index++}`;
    visit(this, (tree as Record<string, unknown>)?.[rootKey], "");
    await this.loadParameters(withSuffix(prefix, "-model.params"));
  }

  /**
   * Prints (and returns) MXNet's summary table: each layer's output shape and parameter count,
   * then totals, trainable / non-trainable and shared counts. The block must be initialized
   * and not hybridized.
   *
   * @example Summarizing a small net
   * ```ts
   * import assert from "node:assert";
   * import { nd, nn } from "../mod.ts";
   * const net = new nn.HybridSequential().add(new nn.Dense(4), new nn.Dense(2));
   * net.initialize();
   * const table = net.summary(nd.ones([1, 3]));
   * assert(table.includes("Dense-1") && table.includes("Total params: 26"));
   * ```
   */
  summary(...inputs: Tensor[]): string {
    for (const [, b] of this.namedBlocks()) {
      if (b instanceof HybridBlock && b.isHybridized) {
        throw new SigilError(
          "summary needs a block that is not hybridized; call hybridize({ active: false })",
        );
      }
    }
    const rows: [string, string, number][] = [];
    const counts = new Map<string, number>();
    const seen = new Set<Parameter>();
    let total = 0;
    let trainable = 0;
    let shared = 0;
    const handles: HookHandle[] = [];
    for (const b of new Set(this.namedBlocks().map(([, b]) => b))) {
      if ((b.constructor as typeof Block).summaryTransparent) continue;
      handles.push(b.registerForwardHook((blk, _in, out) => {
        const cls = blk.constructor.name;
        const n = (counts.get(cls) ?? 0) + 1;
        counts.set(cls, n);
        let own = 0;
        for (const p of Object.values(blk.params)) {
          const size = p.shape ? p.shape.reduce((a, d) => a * d, 1) : 0;
          own += size;
          total += size;
          if (p.gradReq !== "null") trainable += size;
          if (seen.has(p)) shared += size;
          seen.add(p);
        }
        rows.push([`${cls}-${n}`, shapeText(out), own]);
      }));
    }
    try {
      this.call(...inputs);
    } finally {
      for (const h of handles) h.detach();
    }
    const line = (a: string, b: string, c: string) =>
      `${a.padStart(20)}  ${b.padStart(42)} ${c.padStart(15)}`;
    const out = [
      "-".repeat(80),
      line("Layer (type)", "Output Shape", "Param #"),
      "=".repeat(80),
      line("Input", inputs.map((x) => pyShape(x.shape)).join(", "), "0"),
      ...rows.map(([a, b, c]) => line(a, b, String(c))),
      "=".repeat(80),
      "Parameters in forward computation graph, duplicate included",
      `   Total params: ${total}`,
      `   Trainable params: ${trainable}`,
      `   Non-trainable params: ${total - trainable}`,
      `Shared params in forward computation graph: ${shared}`,
      `Unique parameters in model: ${total - shared}`,
      "-".repeat(80),
    ].join("\n");
    console.log(out);
    return out;
  }

  /** Containers (Sequential) get no row of their own in {@link summary}. */
  static summaryTransparent = false;

  /** Registers a hook run before forward. */
  registerForwardPreHook(hook: ForwardPreHook): HookHandle {
    const id = this.#nextHook++;
    this.#preHooks.set(id, hook);
    return { detach: () => void this.#preHooks.delete(id) };
  }

  /** Registers a hook run after forward. */
  registerForwardHook(hook: ForwardHook): HookHandle {
    const id = this.#nextHook++;
    this.#hooks.set(id, hook);
    return { detach: () => void this.#hooks.delete(id) };
  }

  /** Whether any forward hook is registered. */
  protected get hasForwardHooks(): boolean {
    return this.#hooks.size > 0 || this.#preHooks.size > 0;
  }

  /**
   * Reports `(name, opName, tensor)` for every op output (and input with `monitorAll`) while
   * a hybridized graph runs, with MXNet's names (`<node>_output`, `<node>_<input>`). Stored on
   * this block and its direct children, as MXNet does.
   */
  registerOpHook(callback: OpHook, options: { monitorAll?: boolean } = {}): void {
    const entry = { callback, monitorAll: options.monitorAll ?? false };
    this.opHooks.push(entry);
    for (const [, c] of this.children()) c.opHooks.push(entry);
  }

  /** Makes hybridizable children trace on their next call (a plain Block only forwards it). */
  hybridize(options: HybridizeOptions = {}): void {
    for (const [, c] of this.children()) c.hybridize(options);
  }

  /** Runs forward with hooks: Gluon's `__call__`. */
  call<T extends Block>(this: T, ...inputs: Value[]): Concrete<ReturnType<T["forward"]>> {
    checkArity(this, inputs);
    return this.callWithHooks(inputs, () => this.forward(...inputs)) as Concrete<
      ReturnType<T["forward"]>
    >;
  }

  /**
   * {@link call}, resolved: where a hybridized block runs on an asynchronous engine (WebGPU),
   * `HybridBlock.callAsync` awaits it; a plain Block runs `call`.
   */
  callAsync(...inputs: Value[]): Promise<BlockOutput> {
    try {
      return Promise.resolve(this.call(...inputs) as BlockOutput);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** {@link callWithHooks} around an asynchronous run. */
  protected async callWithHooksAsync(
    inputs: Value[],
    run: () => Promise<BlockOutput>,
  ): Promise<BlockOutput> {
    for (const h of this.#preHooks.values()) h(this, inputs);
    const out = await run();
    for (const h of this.#hooks.values()) h(this, inputs, out);
    return out;
  }

  /** Runs `run` between the pre-hooks and hooks (skipped while tracing). */
  protected callWithHooks(inputs: Value[], run: () => BlockOutput): BlockOutput {
    const tracing = forwardState()?.kind === "trace";
    if (!tracing) { for (const h of this.#preHooks.values()) h(this, inputs); }
    const out = run();
    if (!tracing) { for (const h of this.#hooks.values()) h(this, inputs, out); }
    return out;
  }

  /** `ClassName(\n  (child): ...\n)`, as MXNet prints blocks. */
  toString(): string {
    const kids = this.children();
    if (!kids.length) return `${this.constructor.name}()`;
    const body = kids.map(([k, c]) => `  (${k}): ${String(c).replace(/\n/g, "\n  ")}`).join("\n");
    return `${this.constructor.name}(\n${body}\n)`;
  }
}

/** Options of {@link HybridBlock.hybridize} (MXNet's names in camelCase). */
export interface HybridizeOptions {
  /** Turn hybridization on (default) or off. */
  active?: boolean;
  /** Plan memory once and reuse it (requires a compiled backend to matter). */
  staticAlloc?: boolean;
  /** Also assume input shapes stay the same; requires staticAlloc. */
  staticShape?: boolean;
  /** Largest nested graph (in op nodes) that a later inlining pass inlines (2). */
  inlineLimit?: number;
  /** Partition graphs with dynamic-shape ops (true). */
  partitionIfDynamic?: boolean;
  /** Engine bulk size for forward. */
  forwardBulkSize?: number;
  /** Engine bulk size for backward. */
  backwardBulkSize?: number;
  /**
   * The engine that runs the traced graph (default: the scope's, else the inputs' device's
   * default, i.e. the WASM engine on the CPU: compiled once per input signature, parameters
   * baked in, recompiled when a parameter's tensor changes). `referenceEngine` runs the
   * float64 interpreter, the oracle.
   */
  engine?: Engine;
  /**
   * Called as a graph compiles (`(done, total, what)`, kernels generated so far), for long
   * first calls of big models.
   */
  onProgress?: ProgressCallback;
}

/**
 * Options of {@link HybridBlock.optimizeFor}: the backend, the hybridize flags used when it
 * (re)hybridizes, and any other key as a backend option (MXNet's `**kwargs`).
 */
export interface OptimizeForOptions extends PartitionOptions {
  /** A registered partitioning backend (`default`, `static_shape`, ...). */
  readonly backend: string;
  /** Hybridize again (clearing cached graphs) even if the block is hybridized. */
  readonly clear?: boolean;
  /** Hybridize flag, used when optimizeFor hybridizes. */
  readonly staticAlloc?: boolean;
  /** Hybridize flag, used when optimizeFor hybridizes. */
  readonly staticShape?: boolean;
  /** Hybridize flag, used when optimizeFor hybridizes. */
  readonly inlineLimit?: number;
  /** Hybridize flag, used when optimizeFor hybridizes. */
  readonly partitionIfDynamic?: boolean;
  /** Hybridize flag, used when optimizeFor hybridizes. */
  readonly forwardBulkSize?: number;
  /** Hybridize flag, used when optimizeFor hybridizes. */
  readonly backwardBulkSize?: number;
}

/** A traced graph with what it needs to run. */
export interface CachedGraph {
  /** The graph (outputs grouped). */
  readonly symbol: Symbol;
  /** Names of the data inputs (`data`, or `data0`, `data1`, ...). */
  readonly inputNames: readonly string[];
  /** Parameters by variable name. */
  readonly params: ReadonlyMap<string, Parameter>;
  /** Whether forward returned a list. */
  readonly listOutput: boolean;
  /**
   * With `staticAlloc`: the memory plan of the program that ran this graph last (the one its
   * memory is allocated from; undefined before the first run and for engines without one).
   */
  readonly memoryPlan?: MemoryPlan;
  /**
   * For the training-mode graph: how many of the symbol's outputs are forward's (the rest are
   * the parameters' new values, written back after each run in `updates` order) and the
   * uniform inputs drawn from the training stream before each run.
   */
  readonly training?: {
    readonly outputs: number;
    readonly updates: readonly Parameter[];
    readonly noise: readonly { readonly name: string; readonly shape: readonly number[] }[];
  };
}

/**
 * A block whose forward can be traced into a symbol graph. After `hybridize()`, the next call
 * traces forward on symbolic inputs (cached per input shapes and dtypes) and later calls run
 * the graph.
 *
 * @example Hybridize and export
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../mod.ts";
 * const net = new nn.HybridSequential();
 * net.add(new nn.Dense(4, { activation: "relu" }), new nn.Dense(2));
 * net.initialize({ seed: 0 });
 * net.hybridize();
 * const y = net.call(nd.ones([3, 5]));
 * assert(y.shape.join() === "3,2");
 * assert(net.cachedGraph()!.symbol.listArguments()[0] === "data");
 * ```
 */
export abstract class HybridBlock extends Block {
  /** MXNet's `HybridBlock.OptConstraint`: see {@link OptConstraint}. */
  static readonly OptConstraint: typeof OptConstraint = OptConstraint;
  #active = false;
  #flags: HybridizeOptions = {};
  readonly #cache = new Map<string, CachedGraph>();
  #last: CachedGraph | undefined;
  #lastProgram: Program | undefined;
  /** Set by optimizeFor: graphs traced until the next hybridize are partitioned with it. */
  #partition: { backend: string; options: PartitionOptions } | undefined;

  /** Whether hybridization is on. */
  get isHybridized(): boolean {
    return this.#active;
  }

  /** The hybridize flags in force. */
  get hybridizeFlags(): Readonly<HybridizeOptions> {
    return this.#flags;
  }

  /** Turns tracing on (or off) for this block and its children. */
  override hybridize(options: HybridizeOptions = {}): void {
    if (options.staticShape && !options.staticAlloc) {
      throw new SigilError("hybridize: staticAlloc must be true when staticShape is true");
    }
    this.#active = options.active ?? true;
    this.#flags = { ...options };
    // Graphs will run compiled: let the engine get ready (worker threads) while the caller goes on.
    if (options.active !== false) resolveEngine(options.engine).prepare?.();
    this.#cache.clear();
    this.#last = undefined;
    this.#lastProgram = undefined;
    this.#partition = undefined;
    if (this.#active && this.hasForwardHooks) {
      console.warn(
        `${this.constructor.name}: forward hooks are not called inside a hybridized graph`,
      );
    }
    super.hybridize(options);
  }

  /** The graph of the most recent hybridized call (undefined before one). */
  cachedGraph(): CachedGraph | undefined {
    const plan = this.#flags.staticAlloc ? this.#lastProgram?.plan : undefined;
    return this.#last && plan ? { ...this.#last, memoryPlan: plan } : this.#last;
  }

  /** The graph `export` writes: the most recent cached graph. */
  protected exportGraph(): CachedGraph | undefined {
    return this.#last;
  }

  /**
   * Writes `<path>-symbol.json` (MXNet 1.x JSON, flat so MXNet loads it, unless
   * `keepSubgraphs: true` keeps nested-block calls above `inlineLimit` as subgraph nodes; AMP
   * casts removed unless `removeAmpCast: false`) and `<path>-<epoch, 4 digits>.params` with `arg:`/`aux:` keys, and
   * returns both file names (the second undefined when there are no parameters). Needs a
   * hybridized call first.
   */
  async export(
    path: string,
    options: ExportOptions = {},
  ): Promise<[string, string | undefined]> {
    const epoch = options.epoch ?? 0;
    if (!Number.isInteger(epoch) || epoch < 0 || epoch > 9999) {
      throw new ArgumentError(
        `export: epoch must be an integer from 0 to 9999, got ${showValue(epoch)}`,
        "epoch",
      );
    }
    if (typeof path !== "string") {
      throw new ArgumentError(
        `export: path must be a string prefix (export writes <path>-symbol.json and ` +
          `<path>-<epoch>.params), got ${describeValue(path)}`,
        "path",
      );
    }
    const { symbol, params } = this.exportBytes(options);
    const symbolFile = `${path}-symbol.json`;
    const paramsFile = params && `${path}-${String(epoch).padStart(4, "0")}.params`;
    await writeFiles([
      { target: symbolFile, data: symbol, what: "symbol file" },
      ...(paramsFile && params
        ? [{ target: paramsFile, data: params, what: "parameter file" }]
        : []),
    ]);
    return [symbolFile, paramsFile];
  }

  /**
   * What {@link export} writes, in memory: the symbol JSON text and the parameter file's bytes
   * (undefined when there are no parameters). For a page, or any place without a file system.
   *
   * @example Export to memory and import back
   * ```ts
   * import assert from "node:assert";
   * import { nd, nn, SymbolBlock, type Tensor } from "../mod.ts";
   * const net = new nn.HybridSequential().add(new nn.Dense(2));
   * net.initialize();
   * net.hybridize();
   * const x = nd.ones([1, 4]);
   * const y = net.call(x);
   * const { symbol, params } = net.exportBytes();
   * const back = await SymbolBlock.imports(new TextEncoder().encode(symbol), ["data"], params);
   * assert.deepStrictEqual(await (back.call(x) as Tensor).data(), await y.data());
   * ```
   */
  exportBytes(
    options: Omit<ExportOptions, "epoch"> = {},
  ): { symbol: string; params: Uint8Array | undefined } {
    const graph = this.exportGraph();
    if (!graph) {
      throw new SigilError(
        "export: please first call block.hybridize() and then run forward with this block at least once",
      );
    }
    // MXNet's files hold flat graphs: calls of nested blocks are inlined. Subgraph nodes made
    // by optimizeFor (partition nodes) stay, with their subgraphs, as MXNet's export keeps
    // the partitioned graph.
    // With keepSubgraphs, calls of nested blocks above the inline limit stay as `_CachedOp`
    // nodes with MXNet's `subgraphs` key (sigil loads them back; MXNet cannot run them).
    const symbol = exportedGraph(graph.symbol, options);
    const aux = new Set(symbol.listAuxiliaryStates());
    const entries: [string, Tensor][] = [];
    for (const name of symbol.listInputs()) {
      const p = graph.params.get(name);
      if (p) entries.push([`${aux.has(name) ? "aux" : "arg"}:${name}`, p.data()]);
    }
    for (const [name] of graph.params) {
      if (!symbol.listInputs().includes(name)) {
        console.warn(`export: parameter '${name}' is not used by the graph`);
      }
    }
    const format = options.format ?? "v2";
    if (format !== "v2" && format !== "v3" && format !== "npz") {
      throw new SigilError(`export: unknown format '${format}'; expected "v2", "v3" or "npz"`);
    }
    return {
      symbol: symbol.toJSON(),
      params: entries.length ? paramsBytes(entries, { format }) : undefined,
    };
  }

  /** Gluon's `__call__`: eager, traced, or the cached graph, depending on mode and inputs. */
  override call<T extends Block>(this: T, ...inputs: Value[]): Concrete<ReturnType<T["forward"]>> {
    const self = this as unknown as HybridBlock;
    return self.#dispatch(inputs) as Concrete<ReturnType<T["forward"]>>;
  }

  #dispatch(inputs: Value[]): BlockOutput {
    checkArity(this, inputs);
    const state = forwardState();
    if (state?.kind === "trace") {
      const prefix = state.prefixes.get(this) ?? "";
      // A nested hybridized block becomes a subgraph call node; others trace inline.
      // (In a training-mode trace they trace inline: their state updates join the root's.)
      if (this.#active && state.root !== this && !state.training) {
        return this.#callNode(inputs, state, prefix);
      }
      return this.callWithHooks(inputs, () => nameScope(() => this.forward(...inputs), { prefix }));
    }
    if (inputs.some((x) => x instanceof Symbol)) {
      if (!inputs.every((x) => x instanceof Symbol)) {
        throw new SigilError(`${this.constructor.name}: inputs mix Symbols and Tensors`);
      }
      // A symbolic call gives the flat graph MXNet would, with every internal output visible.
      const traced = this.trace(inputs as Symbol[]);
      const flat = inlineSubgraphs(traced.symbol);
      return traced.listOutput ? flat.outputs.map((e) => new Symbol([e], flat.graphAttrs)) : flat;
    }
    inputs.forEach((x, i) => {
      if (!(x instanceof Tensor)) {
        throw new ArgumentError(
          `${this.constructor.name}: input ${i} must be a Tensor or Symbol, got ${
            describeValue(x)
          }`,
          `inputs[${i}]`,
        );
      }
    });
    if (state?.kind !== "bind") this.#ensureShapes(inputs as Tensor[]);
    // Training mode runs the training-mode graph (batch statistics, dropout masks); a bound
    // parameter record (asFunction) runs forward eagerly then.
    if (!this.#active || (state?.kind === "bind" && isTraining() && this.trainsDifferently())) {
      return this.callWithHooks(inputs, () => this.forward(...inputs));
    }
    return this.callWithHooks(inputs, () => this.#runGraph(inputs as Tensor[], state));
  }

  /**
   * Completes deferred parameter shapes from the inputs (MXNet's deferred initialization).
   * Called eagerly, a block infers only the parameters no nested HybridBlock owns: as in
   * MXNet, each HybridBlock child infers its own on its own call (so a SymbolBlock child,
   * which cannot be traced into its parent, works). A hybridized call traces everything.
   */
  #ensureShapes(inputs: Tensor[]): void {
    // Every call of a hybridized block checks this: a plain walk (collectParams' records,
    // checks and warnings took 44% of a small MLP's call).
    const params = this.#active ? treeParams(this) : this.#ownParams();
    if (params.every((p) => p.isInitialized || !p.isDeferred)) return;
    this.inferShape(...inputs);
  }

  /** Parameters of this block and of nested plain Blocks, down to the next HybridBlocks. */
  #ownParams(): Parameter[] {
    const out: Parameter[] = [];
    const walk = (b: Block, depth: number) => {
      if (depth > 256) throw new SigilError("block tree is too deep (a cycle?)");
      out.push(...Object.values(b.params));
      for (const [, c] of b.children()) if (!(c instanceof HybridBlock)) walk(c, depth + 1);
    };
    walk(this, 0);
    return out;
  }

  /**
   * Traces forward on symbolic inputs and fills every parameter's unknown dims from the input
   * shapes (deferred initialization then completes).
   */
  inferShape(...inputs: Tensor[]): void {
    const traced = this.trace(inputs.map((_, i) => variable(dataName(i, inputs.length))));
    const shapes = Object.fromEntries(traced.inputNames.map((n, i) => [n, inputs[i].shape]));
    const r = traced.symbol.inferShapePartial(shapes);
    this.#assign(traced, r.argShapes, r.auxShapes, (p, s) => (p.shape = s));
  }

  /** Traces forward and sets every parameter's dtype from the input dtypes. */
  inferType(...inputs: Tensor[]): void {
    const traced = this.trace(inputs.map((_, i) => variable(dataName(i, inputs.length))));
    const types = Object.fromEntries(traced.inputNames.map((n, i) => [n, inputs[i].dtype]));
    const r = traced.symbol.inferTypePartial(types);
    this.#assign(traced, r.argTypes, r.auxTypes, (p, t) => {
      if (p.dtype !== t) p.cast(t);
    });
  }

  #assign<T>(
    traced: CachedGraph & { outputs: unknown },
    args: (T | undefined)[],
    aux: (T | undefined)[],
    set: (p: Parameter, v: T) => void,
  ): void {
    const names = [...traced.symbol.listArguments(), ...traced.symbol.listAuxiliaryStates()];
    const values = [...args, ...aux];
    names.forEach((n, i) => {
      const p = traced.params.get(n);
      if (p && values[i] !== undefined) set(p, values[i]!);
    });
  }

  /**
   * Traces forward with the given symbols as inputs. Parameters become variables named by
   * their structural names (the last one, for a shared parameter); ops of child blocks are
   * named `<path>_<name>` (`features_9_fwd`). With `training`, forward is traced in its
   * training-mode form (call it inside `autograd.trainMode`): nested hybridized blocks trace
   * inline, and layers that train differently add their state updates and random inputs to
   * `training` instead of returning them.
   */
  trace(
    inputs: Symbol[],
    training?: TrainingTrace,
  ): CachedGraph & { outputs: BlockOutput } {
    const vars = new Map<object, Symbol>();
    const params = new Map<string, Parameter>();
    // A shared parameter is named by its last structural name, as MXNet names it (and as a
    // deduplicating save keys it).
    const nameOf = new Map<Parameter, string>();
    for (const [name, p] of Object.entries(this.collectParams())) nameOf.set(p, name);
    for (const [p, name] of nameOf) {
      vars.set(p, p.var(name));
      params.set(name, p);
    }
    const prefixes = new Map<object, string>();
    for (const [path, b] of this.namedBlocks()) {
      prefixes.set(b, path ? path.replace(/\./g, "_") + "_" : "");
    }
    const state: TraceState = {
      kind: "trace",
      vars,
      prefixes,
      root: this,
      ...(training ? { training } : {}),
    };
    const outputs = withForwardState(state, () => nameScope(() => this.forward(...inputs)));
    const list = Array.isArray(outputs) ? outputs : [outputs];
    list.forEach((o, i) => {
      if (!(o instanceof Symbol)) {
        throw new SigilError(
          `${this.constructor.name}.forward returned a non-symbolic output ${i} while tracing`,
        );
      }
    });
    const symbol = new Symbol((list as Symbol[]).flatMap((s) => s.outputs));
    const inputNames = inputs.map((s) => {
      if (s.outputs.length !== 1 || !s.outputs[0].node.isVariable) {
        throw new SigilError("trace inputs must be variables");
      }
      return s.outputs[0].node.name;
    });
    return { symbol, inputNames, params, listOutput: Array.isArray(outputs), outputs };
  }

  /** Traces this (nested, hybridized) block as a subgraph and calls it with `inputs`. */
  #callNode(inputs: Value[], state: TraceState, prefix: string): BlockOutput {
    const outer = inputs.map((x, i) => {
      if (!(x instanceof Symbol) || x.numOutputs !== 1) {
        throw new SigilError(
          `${this.constructor.name}: traced input ${i} must be a single-output symbol`,
        );
      }
      return x.outputs[0];
    });
    const inner = outer.map((_, i) => variable(`${prefix}data${i}`));
    const result = withForwardState(
      { ...state, root: this },
      () => nameScope(() => this.forward(...inner), { prefix }),
    );
    const list = Array.isArray(result) ? result : [result];
    list.forEach((o, i) => {
      if (!(o instanceof Symbol)) {
        throw new SigilError(`${this.constructor.name}: output ${i} is not symbolic`);
      }
    });
    const graph = new Symbol((list as Symbol[]).flatMap((s) => s.outputs));
    const dataIndex = new Map(inner.map((s, i) => [s.outputs[0].node, i]));
    const callInputs = graph.nodes().filter((v) => v.isVariable).map((v) => {
      const i = dataIndex.get(v);
      return i === undefined ? v.entry() : outer[i];
    });
    const flags = this.#flags;
    const attrs: Record<string, string> = { inline_limit: String(flags.inlineLimit ?? 2) };
    if (flags.staticAlloc) attrs.static_alloc = "True";
    if (flags.staticShape) attrs.static_shape = "True";
    const node = makeNode({
      op: getOp("_CachedOp"),
      name: `${prefix}cachedop`,
      attrs,
      inputs: callInputs,
      subgraphs: [graph],
    });
    if (!Array.isArray(result)) return new Symbol(graph.outputs.map((_, i) => node.entry(i)));
    let at = 0;
    return (list as Symbol[]).map((s) => {
      const entries = s.outputs.map(() => node.entry(at++));
      return new Symbol(entries);
    });
  }

  /**
   * What a traced graph depends on, as a cache key: every block by path and identity, every
   * parameter by its block's path, name, shape, dtype and identity. One walk, without
   * collectParams' checks and warnings (they ran when the graph was traced): a call of a
   * hybridized block computes this every time (a 9-layer MLP's call spent a third of its
   * 230 µs in collectParams and namedBlocks).
   */
  #structureKey(): string {
    const parts: string[] = [];
    const param = (path: string, p: Parameter) =>
      parts.push(`${path}/${p.name}:${p.shape?.join("x")}:${p.dtype}:${idOf(p)}`);
    const walk = (b: Block, path: string, depth: number) => {
      if (depth > 256) throw new SigilError("block tree is too deep (a cycle?)");
      parts.push(`${path}#${idOf(b)}`);
      for (const v of Object.values(b)) if (v instanceof Parameter) param(path, v);
      for (const p of ownParams(b)) param(path, p);
      for (const [name, c] of b.children()) walk(c, path ? `${path}.${name}` : name, depth + 1);
    };
    walk(this, "", 0);
    return parts.join("|");
  }

  #cacheKey(inputs: Tensor[], training = false): string {
    return inputs.map((t) => `${t.dtype}(${t.shape.join(",")})`).join(";") + "|" +
      (training ? "train|" : "") + this.#structureKey();
  }

  /** Traces for the inputs; partitions the flat graph when optimizeFor asked for it. */
  #traceGraph(inputs: Tensor[], train = false): { graph: CachedGraph; plan?: PartitionPlan } {
    const names = inputs.map((_, i) => dataName(i, inputs.length));
    let training: TrainingTrace | undefined;
    if (train) {
      const shapes: Record<string, readonly number[]> = {};
      for (const [name, p] of Object.entries(this.collectParams())) {
        if (p.shape && p.shape.every((d) => d > 0)) shapes[name] = p.shape;
      }
      names.forEach((n, i) => shapes[n] = inputs[i].shape);
      training = { shapes, updates: [], noise: [] };
    }
    const traced = this.trace(names.map((n) => variable(n)), training);
    // Forward's outputs, then the parameters' new values.
    const outputs = training
      ? new Symbol([...traced.symbol.outputs, ...training.updates.flatMap((u) => u.value.outputs)])
      : traced.symbol;
    const { symbol, plan } = tracedGraph(outputs, {
      ...(this.#flags.inlineLimit !== undefined ? { inlineLimit: this.#flags.inlineLimit } : {}),
      ...(this.#partition ? { partition: this.#partition } : {}),
    });
    const graph: CachedGraph = {
      symbol,
      inputNames: traced.inputNames,
      params: traced.params,
      listOutput: traced.listOutput,
      ...(training
        ? {
          training: {
            outputs: traced.symbol.outputs.length,
            updates: training.updates.map((u) => u.target as Parameter),
            noise: [...training.noise],
          },
        }
        : {}),
    };
    return { graph, ...(plan ? { plan } : {}) };
  }

  /**
   * MXNet's `optimize_for`: hybridizes if `clear` or not hybridized yet, traces for the given
   * inputs as a hybridized call would, partitions the flat graph with `backend` (the other
   * option keys are the backend's options) and makes it the cached graph that later calls run
   * and `export` writes; graphs traced later (other input shapes) are partitioned the same
   * way until the next `hybridize`. Runs no forward. Returns the partition plan.
   *
   * @example Grouping a small net's FullyConnected ops
   * ```ts
   * import assert from "node:assert";
   * import { nd, nn } from "../mod.ts";
   * const net = new nn.HybridSequential().add(new nn.Dense(4, { activation: "relu" }), new nn.Dense(2));
   * net.initialize({ seed: 0 });
   * const x = nd.ones([3, 5]);
   * const eager = net.call(x);
   * const plan = net.optimizeFor(x, { backend: "default", opNames: ["FullyConnected"] });
   * assert(plan.subgraphs.length === 2);
   * const names = net.cachedGraph()!.symbol.nodes().map((n) => n.name);
   * assert(names.includes("_CachedOp0") && names.includes("_CachedOp1"));
   * assert((await net.call(x).data()).join() === (await eager.data()).join());
   * ```
   */
  optimizeFor(x: Tensor | Tensor[], options: OptimizeForOptions): PartitionPlan {
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
    if (!inputs.length) throw new SigilError("optimizeFor: give at least one input");
    inputs.forEach((t, i) => {
      if (!(t instanceof Tensor)) throw new SigilError(`optimizeFor: input ${i} is not a Tensor`);
    });
    checkArity(this, inputs);
    if (clear || !this.#active) {
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
    this.#ensureShapes(inputs);
    this.#partition = { backend, options: backendOptions };
    // Graphs cached before were not partitioned.
    this.#cache.clear();
    const { graph, plan } = this.#traceGraph(inputs);
    this.#cache.set(this.#cacheKey(inputs), graph);
    this.#last = graph;
    return plan!;
  }

  /** The cached graph for these inputs (traced on a miss), its bindings and run options. */
  #prepareRun(inputs: Tensor[], state: BindState | undefined) {
    const train = isTraining() && this.trainsDifferently();
    const key = this.#cacheKey(inputs, train);
    let graph = this.#cache.get(key);
    if (!graph) {
      graph = this.#traceGraph(inputs, train).graph;
      this.#cache.set(key, graph);
    }
    // The training-mode graph is not what export writes or cachedGraph() shows.
    if (!train) this.#last = graph;
    const bindings = emptyRecord<Tensor>();
    graph.inputNames.forEach((n, i) => (bindings[n] = inputs[i]));
    // Parameters the forward code never touched are not graph inputs.
    for (const name of graph.symbol.listInputs()) {
      const p = graph.params.get(name);
      if (p) bindings[name] = state?.values.get(p) ?? p.data();
    }
    // Dropout's noise: drawn from the training stream in forward order, as eager forward does.
    for (const { name, shape } of graph.training?.noise ?? []) {
      bindings[name] = random.uniform(0, 1, shape, { seed: nextTrainingSeed() });
    }
    const hooks = this.opHooks;
    const options = {
      ...(this.#flags.engine ? { engine: this.#flags.engine } : {}),
      ...(this.#flags.onProgress ? { onProgress: this.#flags.onProgress } : {}),
      // Parameters read from the block stay the same across calls: compile them in. A bound
      // record (asFunction) may change on every call, so its values stay inputs.
      // So do runs while recording or training (the parameters change every step).
      constants: state || graph.training || isRecording() ? [] : graph.params.keys(),
      ...(hooks.length ? { onNode: reportOps(hooks) } : {}),
    };
    return { graph, bindings, options };
  }

  /** The outputs of a run, after the bookkeeping every run does. */
  #finishRun(graph: CachedGraph, bindings: Record<string, Tensor>, ran: Execution): BlockOutput {
    this.#lastProgram = ran.program;
    const t = graph.training;
    const n = t ? t.outputs : ran.outputs.length;
    const outputs = ran.outputs.slice(0, n);
    // Inside autograd.record the run is one step of the tape, differentiated as a graph (its
    // forward outputs; the state updates are not differentiated, as MXNet's are not).
    if (isRecording()) {
      recordGraph(
        t ? new Symbol(graph.symbol.outputs.slice(0, n)) : graph.symbol,
        bindings,
        outputs,
      );
    }
    if (t) {
      withAutogradState(false, false, () => {
        t.updates.forEach((p, i) => p.setData(ran.outputs[n + i]));
      });
    }
    return graph.listOutput ? outputs : outputs[0];
  }

  /** A typed error of a run, rethrown naming the block and its input shapes. */
  #runError(e: unknown, graph: CachedGraph, inputs: Tensor[]): unknown {
    if (!(e instanceof SigilError)) return e;
    const described = graph.inputNames.map((n, i) => `'${n}' ${formatShape(inputs[i].shape)}`)
      .join(", ");
    const Ctor = e.constructor as new (m: string) => SigilError;
    const wrapped = new Ctor(
      `${this.constructor.name} called with input ${described}: ${e.message}`,
    );
    // Keep the original (its stack, offsets) reachable.
    Object.defineProperty(wrapped, "cause", { value: e, configurable: true, writable: true });
    return wrapped;
  }

  #runGraph(inputs: Tensor[], state: BindState | undefined): BlockOutput {
    const { graph, bindings, options } = this.#prepareRun(inputs, state);
    try {
      return this.#finishRun(graph, bindings, executeProgram(graph.symbol, bindings, options));
    } catch (e) {
      throw this.#runError(e, graph, inputs);
    }
  }

  async #runGraphAsync(inputs: Tensor[], state: BindState | undefined): Promise<BlockOutput> {
    const { graph, bindings, options } = this.#prepareRun(inputs, state);
    try {
      const ran = await executeProgramAsync(graph.symbol, bindings, options);
      return this.#finishRun(graph, bindings, ran);
    } catch (e) {
      throw this.#runError(e, graph, inputs);
    }
  }

  /**
   * {@link call}, for engines that run asynchronously: a hybridized block's graph runs with
   * the engine's device awaited and its results read back (the WebGPU engine, where `call`
   * throws a `BackendError` naming this method). Hooks run as in `call`. Not hybridized, or
   * inside a trace, it is `call`.
   *
   * @example A hybridized block, awaited (any engine; WebGPU needs it)
   * ```ts
   * import assert from "node:assert";
   * import { nd, nn, type Tensor } from "../mod.ts";
   * const net = new nn.Dense(2);
   * net.initialize({ seed: 0 });
   * net.hybridize();
   * const y = await net.callAsync(nd.ones([1, 3])) as Tensor;
   * assert.deepStrictEqual(y.shape, [1, 2]);
   * ```
   */
  override async callAsync(...inputs: Value[]): Promise<BlockOutput> {
    const state = forwardState();
    if (
      state?.kind === "trace" || !this.#active || !inputs.every((x) => x instanceof Tensor)
    ) return this.call(...inputs);
    checkArity(this, inputs);
    if (state?.kind !== "bind") this.#ensureShapes(inputs as Tensor[]);
    return await this.callWithHooksAsync(
      inputs,
      () => this.#runGraphAsync(inputs as Tensor[], state),
    );
  }
}

/**
 * The first entries (at most 10^4) of an array, a plain object or a Map, which may hold
 * blocks; undefined for anything else.
 */
function containerValues(v: unknown): unknown[] | undefined {
  const LIMIT = 10_000;
  if (Array.isArray(v)) return v.length > LIMIT ? v.slice(0, LIMIT) : v;
  if (v instanceof Map) return [...v.values()].slice(0, LIMIT);
  if (typeof v !== "object" || v === null) return undefined;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return undefined;
  return Object.values(v).slice(0, LIMIT);
}

/**
 * Rejects more inputs than forward declares (a forward with rest parameters takes any
 * number). Fewer reach forward as undefined and fail there with a typed error.
 */
function checkArity(block: Block, inputs: readonly Value[]): void {
  const declared = block.forward.length;
  if (declared > 0 && inputs.length > declared) {
    throw new SigilError(
      `${block.constructor.name} takes ${declared} input${
        declared === 1 ? "" : "s"
      }, got ${inputs.length}`,
    );
  }
}

function dataName(i: number, n: number): string {
  return n === 1 ? "data" : `data${i}`;
}

/** @internal The interpreter callback that reports op hooks. */
export function reportOps(hooks: { callback: OpHook; monitorAll: boolean }[]) {
  return (
    node: import("../compiler/symbol.ts").Node,
    outputs: readonly Tensor[],
    inputs: readonly Tensor[],
  ) => {
    const opName = node.opName;
    // MXNet names the inputs of an op without `FListInputNames` `input0`, `input1`, ...
    const named = node.inputNames;
    const listed = node.op?.namedInputs ?? !(named.length === 1 && named[0] === "data");
    const inputNames = listed ? named : named.map((_, i) => `input${i}`);
    for (const h of hooks) {
      if (h.monitorAll) {
        inputNames.forEach((n, i) => h.callback(`${node.name}_${n}`, opName, inputs[i]));
      }
      outputs.forEach((t, i) => h.callback(node.outputName(i), opName, t));
    }
  };
}

function pyShape(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}

function shapeText(out: BlockOutput): string {
  if (Array.isArray(out)) return `[${out.map((o) => shapeText(o)).join(", ")}]`;
  return out instanceof Tensor ? pyShape(out.shape) : String(out);
}

/** Options of `HybridBlock.export` and `exportBytes`. */
export interface ExportOptions {
  /** The epoch in the parameter file's name, `<path>-<epoch, 4 digits>.params` (0..9999; 0). */
  epoch?: number;
  /** Remove AMP casts from the graph (true). */
  removeAmpCast?: boolean;
  /**
   * Parameter file format: MXNet 1.x's V2 list (the default), the list with V3 records (0-d
   * parameters allowed) or MXNet 2.x's `.npz`.
   */
  format?: "v2" | "v3" | "npz";
  /** Keep calls of nested blocks above the inline limit as subgraph nodes (false). */
  keepSubgraphs?: boolean;
}

/** `prefix` + `suffix`, as a string or a URL as `prefix` is. */
function withSuffix(prefix: string | URL, suffix: string): string | URL {
  return prefix instanceof URL ? new URL(prefix.href + suffix) : prefix + suffix;
}
