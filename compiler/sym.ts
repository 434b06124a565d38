/**
 * The `sym` namespace: variables, op builders for every registered op (MXNet-style automatic
 * names), groups, and JSON loading.
 *
 * @module
 */
import { type AttrSchema, type AttrsInput, pyFloat } from "../ops/attrs.ts";
import { normalizeAttrs } from "../ops/call.ts";
import { splitArgs } from "../ops/call.ts";
import type { AnyOpDef, OpDef, OutputArity } from "../ops/op.ts";
import { type AliasTable, opNames, type OpTable } from "../ops/registry.ts";
import { type DType, dtypeInfo } from "../runtime/dtype.ts";
import { AttributeError, GraphError, ShapeError, SigilError } from "../runtime/errors.ts";
import { shapeProblem } from "../runtime/shape.ts";
import { loadJSON } from "./json.ts";
import { type Entry, makeNode, Symbol } from "./symbol.ts";
import { type FileSource, readText, sourceName } from "../runtime/io.ts";

/** Generates MXNet-style automatic names: `<hint><counter>` with an optional prefix. */
export class NameManager {
  readonly #counters = new Map<string, number>();
  /** The prefix added to every name this manager gives. */
  readonly prefix: string;

  /** Creates a manager whose names start with `prefix`. */
  constructor(prefix = "") {
    this.prefix = prefix;
  }

  /** `name` (prefixed) when given, else the next `<hint><n>`. */
  get(name: string | undefined, hint: string): string {
    if (name !== undefined) return this.prefix + name;
    const n = this.#counters.get(hint) ?? 0;
    this.#counters.set(hint, n + 1);
    return `${this.prefix}${hint}${n}`;
  }
}

let current = new NameManager();

/**
 * Runs `fn` with fresh automatic-name counters (and an optional prefix), as MXNet's
 * `with mx.name.NameManager()` / `mx.name.Prefix(...)`.
 *
 * @example Deterministic names
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../mod.ts";
 * const a = sym.nameScope(() => sym.exp(sym.var("x")));
 * const b = sym.nameScope(() => sym.exp(sym.var("x")), { prefix: "net_" });
 * assert(a.name === "exp0" && b.name === "net_exp0");
 * ```
 */
export function nameScope<T>(fn: () => T, options: { prefix?: string } = {}): T {
  const saved = current;
  current = new NameManager(options.prefix ?? "");
  try {
    return fn();
  } finally {
    current = saved;
  }
}

/** The optimization constraints (`__opt_constraint__` bits) stamped on op nodes built now. */
let optConstraints = 0;

/**
 * Runs `fn` with the `flags` bits added to the optimization constraints, as MXNet's
 * `HybridBlock.OptConstraint` scope does: every op node built inside (by `sym.<Op>`, or by `F`
 * while a block is traced) carries `__opt_constraint__`, the union of its own bits and the
 * scope's, as MXNet's deferred compute writes it. `fn` runs synchronously; the previous
 * constraints are restored when it returns or throws.
 *
 * @example Nodes built in the scope carry the flag
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../mod.ts";
 * import { withOptConstraints } from "./sym.ts";
 * const fc = withOptConstraints(1, () => sym.FullyConnected(sym.var("x"), { num_hidden: 2 }));
 * assert(fc.attr("__opt_constraint__") === "1");
 * assert(sym.exp(fc).attr("__opt_constraint__") === undefined);
 * ```
 */
export function withOptConstraints<T>(flags: number, fn: () => T): T {
  if (!Number.isInteger(flags) || flags < 0 || flags > 0x7fffffff) {
    throw new SigilError(
      `optimization constraint flags must be a non-negative integer, got ${flags}`,
    );
  }
  const saved = optConstraints;
  optConstraints = saved | flags;
  try {
    return fn();
  } finally {
    optConstraints = saved;
  }
}

/** Options of {@link variable}. */
export interface VarOptions {
  /** Shape (`-1` or `0` for unknown dims), written as `__shape__`. */
  shape?: readonly number[];
  /** Dtype, written as `__dtype__` (MXNet's type flag). */
  dtype?: DType;
  /** Initializer: a name (`"zeros"`) or `[name, params]` written as JSON. */
  init?: string | readonly [string, Record<string, unknown>];
  /** Learning-rate multiplier, written as `__lr_mult__`. */
  lrMult?: number;
  /** Weight-decay multiplier, written as `__wd_mult__`. */
  wdMult?: number;
  /** Extra attributes, written as given. */
  attr?: Readonly<Record<string, string>>;
}

/** MXNet's hidden attribute keys: given plainly, they are stored as `__key__`. */
const HIDDEN_KEYS = ["ctx_group", "lr_mult", "wd_mult", "force_mirroring", "mirror_stage"];

/**
 * Normalises an attribute key as MXNet's symbol API does: a key starting with a hidden key
 * (`lr_mult`) becomes `__lr_mult__`; one ending with it (`weight_lr_mult`, the old
 * per-variable form) is refused, as MXNet refuses it. Other keys pass unchanged.
 */
function hiddenKey(key: string, where: string): string {
  for (const k of HIDDEN_KEYS) {
    const at = key.lastIndexOf(k);
    if (at === 0) return `__${key}__`;
    if (at > 0 && at + k.length === key.length) {
      throw new AttributeError(
        `${where}: setting variable attributes with '${key}' is deprecated; give ${k} to the variable instead (sym.var(name, { attr: { ${k}: ... } }))`,
      );
    }
  }
  return key;
}

function normalizeHidden(
  attrs: Readonly<Record<string, string>> | undefined,
  where: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs ?? {})) out[hiddenKey(k, where)] = v;
  return out;
}

function pyTuple(shape: readonly number[]): string {
  const dims = shape.map((d) => (d < 0 ? 0 : d));
  return dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(", ")})`;
}

/**
 * A variable (a graph input or parameter).
 *
 * @example A typed, shaped variable
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../mod.ts";
 * const w = sym.var("w", { shape: [4, 3], dtype: "float16", lrMult: 2 });
 * assert(w.attr("__shape__") === "(4, 3)" && w.attr("__dtype__") === "2");
 * ```
 */
export function variable(name: string, options: VarOptions = {}): Symbol {
  if (typeof name !== "string" || name === "") {
    throw new SigilError("sym.var needs a non-empty name");
  }
  const attrs: Record<string, string> = normalizeHidden(options.attr, `sym.var '${name}'`);
  if (options.shape !== undefined) {
    const problem = shapeProblem(options.shape, { partial: true });
    if (problem !== undefined || !Array.isArray(options.shape)) {
      throw new ShapeError(`sym.var '${name}': the shape ${problem ?? "must be an array"}`);
    }
    attrs.__shape__ = pyTuple(options.shape);
  }
  if (options.dtype !== undefined) attrs.__dtype__ = String(dtypeInfo(options.dtype).flag);
  if (options.init !== undefined) {
    attrs.__init__ = typeof options.init === "string" ? options.init : pyJSON(options.init);
  }
  if (options.lrMult !== undefined) attrs.__lr_mult__ = pyFloat(options.lrMult);
  if (options.wdMult !== undefined) attrs.__wd_mult__ = pyFloat(options.wdMult);
  return new Symbol([makeNode({ op: null, name, attrs }).entry()]);
}

/** An attribute value as MXNet's Python front end writes it (`str(value)`). */
function pyValue(v: unknown): string {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : pyFloat(v);
  if (typeof v === "boolean") return v ? "True" : "False";
  return String(v);
}

/** JSON as Python's `json.dumps` writes it (`", "` and `": "` separators). */
function pyJSON(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(pyJSON).join(", ")}]`;
  if (v !== null && typeof v === "object") {
    return `{${
      Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${pyJSON(x)}`).join(", ")
    }}`;
  }
  if (typeof v === "number" && Number.isInteger(v)) return String(v);
  if (typeof v === "number") return pyFloat(v);
  return JSON.stringify(v);
}

/**
 * Groups symbols into one multi-output symbol.
 *
 * @example Grouping two outputs
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../mod.ts";
 * const x = sym.var("x");
 * const g = sym.group([sym.exp(x, { name: "e" }), sym.log(x, { name: "l" })]);
 * assert(g.listOutputs().join() === "e_output,l_output");
 * ```
 */
export function group(symbols: readonly Symbol[]): Symbol {
  if (!Array.isArray(symbols) || symbols.length === 0) {
    throw new SigilError("sym.group needs symbols");
  }
  const outs: Entry[] = [];
  for (const s of symbols) {
    if (!(s instanceof Symbol)) throw new SigilError("sym.group: every element must be a Symbol");
    outs.push(...s.outputs);
  }
  return new Symbol(outs);
}

/** Extra keys every symbolic op call accepts beside the op's attributes. */
export interface ComposeOptions {
  /** The node name; automatic (`convolution0`) when absent. */
  name?: string;
  /** Extra node attributes (e.g. hidden `__x__` keys), written as given. */
  attr?: Readonly<Record<string, string>>;
}

/** Composes an op node from symbols and attributes (the body of every `sym.<Op>`). */
export function compose(op: AnyOpDef, args: readonly unknown[]): Symbol {
  const { values, attrs } = splitArgs(args, (x): x is Symbol => x instanceof Symbol);
  const { name, attr: extra, ...rest } = attrs as ComposeOptions & Record<string, unknown>;
  const named: Record<string, Symbol> = {};
  const given: Record<string, unknown> = {};
  // Hidden keys given as op keywords (`lr_mult: 2`) become node attributes (`__lr_mult__`).
  const hidden: Record<string, string> = {};
  for (const [k, v] of Object.entries(rest)) {
    if (v instanceof Symbol) named[k] = v;
    else {
      const key = hiddenKey(k, `sym.${op.name}`);
      // `__x__` keys are node attributes too (MXNet's parsers allow hidden keys).
      if (key !== k || /^__.+__$/.test(k)) hidden[key] = pyValue(v);
      else given[k] = v;
    }
  }
  values.forEach((v, i) => {
    if (!(v instanceof Symbol)) {
      throw new SigilError(`sym.${op.name}: argument ${i} is not a Symbol`);
    }
  });
  if (name !== undefined && (typeof name !== "string" || name === "")) {
    throw new SigilError(`sym.${op.name}: name must be a non-empty string`);
  }
  if (op.variadic && given[op.variadic] === undefined) {
    given[op.variadic] = values.length + Object.keys(named).length;
  }
  const nodeName = current.get(name, op.name.toLowerCase());
  const where = `sym.${op.name} '${nodeName}'`;
  const { attrs: parsed, raw } = normalizeAttrs(op, given, where);
  const inputNames = op.inputNames(parsed);
  if (values.length > inputNames.length) {
    throw new GraphError(
      `${where}: takes ${inputNames.length} inputs (${
        inputNames.join(", ")
      }), got ${values.length}`,
    );
  }
  for (const k of Object.keys(named)) {
    const at = inputNames.indexOf(k);
    if (at < 0) {
      throw new GraphError(
        `${where}: '${k}' is not an input of ${op.name} (${inputNames.join(", ")})`,
      );
    }
    if (at < values.length) throw new GraphError(`${where}: input '${k}' given twice`);
  }
  const nodeAttrs = { ...raw, ...hidden, ...normalizeHidden(extra, where) };
  const inputs = inputNames.map((inName, i): Entry => {
    const s = values[i] ?? named[inName];
    if (s === undefined) {
      if (op.variadic) throw new GraphError(`${where}: missing input '${inName}'`);
      // MXNet creates the missing input as a variable carrying the op's attributes.
      let varAttrs: Record<string, string> = { ...nodeAttrs };
      const extraVar = op.inputVarAttrs?.(i);
      if (extraVar) { for (const [k, v] of Object.entries(extraVar)) varAttrs[k] ??= v; }
      varAttrs = Object.fromEntries(Object.entries(varAttrs));
      return makeNode({ op: null, name: `${nodeName}_${inName}`, attrs: varAttrs }).entry();
    }
    if (s.outputs.length !== 1) {
      throw new GraphError(
        `${where}: input '${inName}' has ${s.outputs.length} outputs; pick one with .get(i)`,
      );
    }
    return s.outputs[0];
  });
  let opAttrs = nodeAttrs;
  if (optConstraints !== 0) {
    const own = parseInt(nodeAttrs.__opt_constraint__ ?? "0", 10);
    const bits = (Number.isFinite(own) ? own : 0) | optConstraints;
    opAttrs = { ...nodeAttrs, __opt_constraint__: String(bits) };
  }
  const node = makeNode({ op, name: nodeName, attrs: opAttrs, inputs, parsed, where });
  const visible = node.numVisibleOutputs;
  return new Symbol(Array.from({ length: visible }, (_, i) => node.entry(i)));
}

/** What a symbolic op call takes: symbols, then attributes (plus name, attr, named inputs). */
export type SymAttrs<S extends AttrSchema> = AttrsInput<S> & ComposeOptions & {
  [input: string]: unknown;
};

/** The symbolic builder of an op. */
export type SymFn<D> = D extends OpDef<infer S extends AttrSchema, readonly string[], OutputArity>
  ? {
    (...args: [...inputs: Symbol[], attrs: SymAttrs<S>]): Symbol;
    (...inputs: Symbol[]): Symbol;
  }
  : never;

/** Builders for every op name and alias. */
export type SymOps =
  & { readonly [K in keyof OpTable]: SymFn<OpTable[K]> }
  & { readonly [K in keyof AliasTable]: SymFn<AliasTable[K]> };

const builders: Record<string, unknown> = {};
for (const [n, def] of opNames()) builders[n] = (...args: unknown[]) => compose(def, args);

/** Options of {@link zeros}, {@link ones} and {@link full}. */
export interface InitOptions extends ComposeOptions {
  /** The dtype (default float32, written out as MXNet's front end does). */
  dtype?: DType;
}

function initNode(op: string, shape: readonly number[] | number, extra: Record<string, unknown>) {
  const { dtype, ...rest } = extra as InitOptions;
  return compose(opNames().get(op)!, [{ shape, dtype: dtype ?? "float32", ...rest }]);
}

/**
 * Zeros of a shape as a graph node: MXNet's `mx.sym.zeros` (op `_zeros`).
 *
 * @example A constant input to an op
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../mod.ts";
 * const z = sym.zeros([2, 3], { name: "z" });
 * assert.deepStrictEqual(z.inferShape({}).outShapes[0], [2, 3]);
 * assert(z.toJSON().includes('"op": "_zeros"'));
 * ```
 */
export function zeros(shape: readonly number[] | number, options: InitOptions = {}): Symbol {
  return initNode("_zeros", shape, { ...options });
}

/** Ones of a shape as a graph node: MXNet's `mx.sym.ones` (op `_ones`). */
export function ones(shape: readonly number[] | number, options: InitOptions = {}): Symbol {
  return initNode("_ones", shape, { ...options });
}

/** A shape filled with `value` as a graph node: MXNet's `mx.sym.full` (op `_full`). */
export function full(
  shape: readonly number[] | number,
  value: number,
  options: InitOptions = {},
): Symbol {
  return initNode("_full", shape, { ...options, value });
}

/**
 * Reads a symbol from a `-symbol.json` file: a path, a URL (`http(s):`, `file:`) or the file's
 * bytes (for the JSON text itself, use `loadJSON`). A file that cannot be read is an `IOError`
 * naming the path.
 *
 * @example Loading a file
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../mod.ts";
 * const path = await Deno.makeTempFile({ suffix: "-symbol.json" });
 * await sym.Activation(sym.var("data"), { act_type: "relu" }).save(path);
 * const net = await sym.load(path);
 * assert.deepStrictEqual(net.listArguments(), ["data"]);
 * await Deno.remove(path);
 * ```
 */
export async function load(source: FileSource): Promise<Symbol> {
  return loadJSON(await readText(source, "symbol file"), sourceName(source, "symbol JSON"));
}

/**
 * Symbolic graph construction, as MXNet's `mx.sym`.
 *
 * @example Building, inferring, evaluating
 * ```ts
 * import assert from "node:assert";
 * import { nd, sym } from "../mod.ts";
 * const x = sym.var("x");
 * const y = sym._mul_scalar(sym.exp(x), { scalar: 2, name: "y" });
 * assert(y.inferShape({ x: [3] }).outShapes[0][0] === 3);
 * const [out] = await y.eval({ x: nd.zeros([3]) });
 * assert((await out.data())[0] === 2);
 * ```
 */
export const sym: SymOps & {
  /** See {@link variable}. */
  var: typeof variable;
  /** See {@link variable}. */
  Variable: typeof variable;
  /** See {@link group}. */
  group: typeof group;
  /** See {@link group}. */
  Group: typeof group;
  /** See {@link loadJSON}. */
  loadJSON: typeof loadJSON;
  /** See {@link load}. */
  load: typeof load;
  /** See {@link nameScope}. */
  nameScope: typeof nameScope;
  /** Zeros of a shape as a graph node (`mx.sym.zeros`, op `_zeros`). */
  zeros: (shape: readonly number[] | number, options?: InitOptions) => Symbol;
  /** Ones of a shape as a graph node (`mx.sym.ones`, op `_ones`). */
  ones: (shape: readonly number[] | number, options?: InitOptions) => Symbol;
  /** A shape filled with `value` as a graph node (`mx.sym.full`, op `_full`). */
  full: (shape: readonly number[] | number, value: number, options?: InitOptions) => Symbol;
} = Object.freeze({
  ...(builders as SymOps),
  var: variable,
  Variable: variable,
  group,
  Group: group,
  loadJSON,
  load,
  nameScope,
  zeros,
  ones,
  full,
});
