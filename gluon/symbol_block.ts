/**
 * SymbolBlock: a block made from a symbol graph, such as an exported model or a slice of
 * another network's internals. Every non-input variable becomes a parameter named by the
 * variable (shared with the block it came from when given).
 *
 * @module
 */
import { load as loadSymbol } from "../compiler/sym.ts";
import { Symbol } from "../compiler/symbol.ts";
import { execute } from "../compiler/execute.ts";
import type { Device } from "../runtime/device.ts";
import type { DType } from "../runtime/dtype.ts";
import { SigilError } from "../runtime/errors.ts";
import { type FileSource, sourceName } from "../runtime/io.ts";
import { Tensor } from "../runtime/tensor.ts";
import {
  type BlockOutput,
  type CachedGraph,
  type Concrete,
  HybridBlock,
  reportOps,
} from "./block.ts";
import { forwardState, type Value } from "./context.ts";
import { Parameter } from "./parameter.ts";

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

  /**
   * Wraps `outputs` (one symbol, a group, or a list) computed from the variables `inputs`.
   * Parameters named in `params` (e.g. another block's `collectParams()`) are shared; the
   * others are created with deferred shapes (inferred at the first call) and dtypes inferred
   * from float32 inputs.
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
    const types = this.#symbol.inferTypePartial(
      Object.fromEntries(this.#inputNames.map((n) => [n, "float32" as DType])),
    );
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

  /** The graph export writes (always available). */
  protected override exportGraph(): CachedGraph {
    return {
      symbol: this.#symbol,
      inputNames: this.#inputNames,
      params: this.#params,
      listOutput: this.#listOutput,
    };
  }

  /** The graph, as a cached graph. */
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

  /** Evaluates the graph on tensor inputs. */
  forward(...inputs: Value[]): BlockOutput {
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
    inputs.forEach((x, i) => {
      if (!(x instanceof Tensor)) {
        throw new SigilError(`SymbolBlock: input '${this.#inputNames[i]}' is not a Tensor`);
      }
    });
    const tensors = inputs as Tensor[];
    if ([...this.#params.values()].some((p) => !p.isInitialized && p.isDeferred)) {
      this.inferShape(...tensors);
    }
    const bindings: Record<string, Tensor> = {};
    this.#inputNames.forEach((n, i) => (bindings[n] = tensors[i]));
    const state = forwardState();
    for (const [name, p] of this.#params) {
      bindings[name] = (state?.kind === "bind" ? state.values.get(p) : undefined) ?? p.data();
    }
    // Op hooks report when the block runs as a graph, i.e. hybridized (MXNet: a CachedOp).
    const hooks = this.isHybridized ? this.opHooks : [];
    const outs = execute(this.#symbol, bindings, {
      executor: this.hybridizeFlags.executor,
      // The block's own parameters stay the same across calls: the WASM backend compiles them in.
      constants: state?.kind === "bind" ? [] : this.#params.keys(),
      ...(hooks.length ? { onNode: reportOps(hooks) } : {}),
    });
    return this.#listOutput ? outs : outs[0];
  }

  /** `SymbolBlock(\n<Symbol ...> : 1 -> 1\n)`, as MXNet prints it. */
  override toString(): string {
    return `SymbolBlock(\n${this.#symbol} : ${this.#inputNames.length} -> ${this.#symbol.numOutputs}\n)`;
  }
}

function symbolVar(symbol: Symbol, name: string, file: string) {
  const node = symbol.nodes().find((n) => n.isVariable && n.name === name);
  if (!node) {
    throw new SigilError(
      `SymbolBlock.imports: '${file}' has no input named '${name}'; its inputs are ${
        symbol.listInputs().join(", ")
      }`,
    );
  }
  return node.entry();
}
