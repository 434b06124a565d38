/**
 * Reverse-mode differentiation as a pure graph transform: `vjp` maps a symbol to the symbol of
 * its vector-Jacobian product, built from sigil's own ops, which the usual passes optimise and
 * any engine compiles. Elementwise ops are differentiated through their scalar form (one
 * derivative per scalar function); the others through the rules in rules.ts.
 *
 * @module
 */
import { sym } from "../sym.ts";
import { type Entry, type Node, type ShapeDict, Symbol, type TypeDict } from "../symbol.ts";
import { shapeFacts, typeFacts } from "../infer.ts";
import { inlineSubgraphs } from "../passes/inline.ts";
import { printScalar, s } from "../../ops/scalar.ts";
import type { DType } from "../../runtime/dtype.ts";
import { ArgumentError, GraphError, SigilError } from "../../runtime/errors.ts";
import type { Shape } from "../../runtime/shape.ts";
import { Tensor } from "../../runtime/tensor.ts";
import { derive, isZero } from "./scalar_grad.ts";
import { DECOMPOSED, type Decomposition } from "./decomposed.ts";
import { NOT_DIFFERENTIABLE, outputOf, unbroadcast, VJP_RULES, type VjpContext } from "./rules.ts";

type Builder = (...args: unknown[]) => Symbol;
const F = sym as unknown as Record<string, Builder>;

/** Options of {@link vjp} and {@link grad}. */
export interface GradOptions {
  /** Input dtypes (default: float32 for every input not given). */
  readonly types?: TypeDict;
}

/** The result of {@link vjp}. */
export interface Vjp {
  /**
   * The cotangents of the `wrt` inputs, one output each, in `wrt`'s order. Its inputs are the
   * original symbol's inputs (those the cotangents need) and one head variable per output.
   */
  readonly symbol: Symbol;
  /** The names of the head (output cotangent) variables, one per output of the original. */
  readonly heads: readonly string[];
}

const FLOAT_TYPES: ReadonlySet<DType> = new Set(["float16", "bfloat16", "float32", "float64"]);

/**
 * The vector-Jacobian product of `f` with respect to the inputs named in `wrt`, for inputs of
 * the given shapes: a symbol whose outputs are `Σ_k headₖ · ∂outputₖ/∂x` for each `x` in `wrt`,
 * with one head variable per output (named `<output>_head`).
 *
 * @example The gradient of `sum(x²)` is `2x`
 * ```ts
 * import assert from "node:assert";
 * import { nd, sym, vjp } from "../../mod.ts";
 * const x = sym.var("x");
 * const y = sym.sum(sym.square(x), { name: "y" });
 * const { symbol, heads } = vjp(y, ["x"], { x: [3] });
 * const [g] = await symbol.eval({ x: nd.array([1, 2, 3]), [heads[0]]: nd.array(1) });
 * assert.deepStrictEqual(Array.from(await g.data(), Number), [2, 4, 6]);
 * ```
 */
export function vjp(
  f: Symbol,
  wrt: readonly string[],
  shapes: ShapeDict,
  options: GradOptions = {},
): Vjp {
  if (!(f instanceof Symbol)) throw new ArgumentError("vjp: f must be a Symbol", "f");
  const heads = f.listOutputs().map((name) => `${name}_head`);
  const headVars = heads.map((name) => sym.var(name));
  const cot = transform(f, wrt, shapes, options, headVars, "vjp");
  return { symbol: sym.group(cot), heads };
}

/**
 * The gradient of the sum of `f`'s outputs with respect to the inputs named in `wrt` (MXNet's
 * `backward()` with no head gradient: every head is ones), as a symbol with one output per
 * name in `wrt`, over `f`'s inputs.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { grad, nd, sym } from "../../mod.ts";
 * const x = sym.var("x");
 * const g = grad(sym.exp(x), ["x"], { x: [2] });
 * const [dx] = await g.eval({ x: nd.array([0, 1]) });
 * assert.ok(Math.abs(Number((await dx.data())[1]) - Math.E) < 1e-6);
 * ```
 */
export function grad(
  f: Symbol,
  wrt: readonly string[],
  shapes: ShapeDict,
  options: GradOptions = {},
): Symbol {
  if (!(f instanceof Symbol)) throw new ArgumentError("grad: f must be a Symbol", "f");
  const ones = f.outputs.map((e) => F.ones_like(new Symbol([e])));
  return sym.group(transform(f, wrt, shapes, options, ones, "grad"));
}

/** What {@link valueAndGrad}'s function returns. */
export interface ValueAndGrad {
  /** The outputs of `f`. */
  readonly values: Tensor[];
  /** The gradient of the sum of the outputs for each name in `wrt`. */
  readonly grads: Record<string, Tensor>;
}

/**
 * `f`'s outputs and the gradient of their sum with respect to `wrt`, as one function of the
 * bindings: the forward and backward graphs are one symbol, compiled once per input signature
 * by the engine that runs it (`options.engine`, else the scope's or the device's default).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { nd, sym, valueAndGrad } from "../../mod.ts";
 * const x = sym.var("x");
 * const w = sym.var("w");
 * const loss = sym.sum(sym.square(sym.elemwise_mul(x, w)));
 * const f = valueAndGrad(loss, ["w"]);
 * const { values, grads } = await f({ x: nd.array([1, 2]), w: nd.array([3, 4]) });
 * assert.deepStrictEqual(Array.from(await values[0].data(), Number), [73]); // 3² + 8²
 * assert.deepStrictEqual(Array.from(await grads.w.data(), Number), [6, 32]); // 2·x²·w
 * ```
 */
export function valueAndGrad(
  f: Symbol,
  wrt: readonly string[],
): (
  bindings: Readonly<Record<string, Tensor>>,
  options?: { readonly engine?: import("../engine.ts").Engine },
) => Promise<ValueAndGrad> {
  if (!(f instanceof Symbol)) throw new ArgumentError("valueAndGrad: f must be a Symbol", "f");
  const cache = new Map<string, Symbol>();
  return async (bindings, options = {}) => {
    if (typeof bindings !== "object" || bindings === null) {
      throw new ArgumentError("valueAndGrad: bindings must be a record of tensors", "bindings");
    }
    const shapes: Record<string, readonly number[]> = {};
    const types: Record<string, DType> = {};
    for (const [name, t] of Object.entries(bindings)) {
      if (!(t instanceof Tensor)) {
        throw new ArgumentError(`valueAndGrad: binding '${name}' is not a Tensor`, name);
      }
      shapes[name] = t.shape;
      types[name] = t.dtype;
    }
    const key = JSON.stringify([shapes, types]);
    let both = cache.get(key);
    if (!both) {
      const g = grad(f, wrt, shapes, { types });
      both = sym.group([f, g]);
      cache.set(key, both);
    }
    const used = new Set(both.listInputs());
    const given: Record<string, Tensor> = {};
    for (const name of used) if (Object.hasOwn(bindings, name)) given[name] = bindings[name];
    const outs = await both.eval(given, options.engine ? { engine: options.engine } : {});
    const n = f.outputs.length;
    const grads: Record<string, Tensor> = {};
    wrt.forEach((name, i) => grads[name] = outs[n + i]);
    return { values: outs.slice(0, n), grads };
  };
}

/** The reverse sweep: cotangent symbols of `wrt`, given one head per output of `f`. */
function transform(
  given: Symbol,
  wrt: readonly string[],
  shapeDict: ShapeDict,
  options: GradOptions,
  headSyms: readonly Symbol[],
  where: string,
): Symbol[] {
  if (!Array.isArray(wrt) || wrt.length === 0) {
    throw new ArgumentError(`${where}: wrt must name at least one input`, "wrt");
  }
  const f = inlineSubgraphs(given);
  const inputs = new Set(f.listInputs());
  for (const name of wrt) {
    if (typeof name !== "string" || !inputs.has(name)) {
      throw new ArgumentError(
        `${where}: '${String(name)}' is not an input of the graph (inputs: ${
          [...inputs].slice(0, 6).join(", ")
        }${inputs.size > 6 ? `, and ${inputs.size - 6} more` : ""})`,
        String(name),
      );
    }
  }
  const nodes = f.nodes();
  const typeDict: Record<string, DType> = {};
  for (const name of inputs) typeDict[name] = options.types?.[name] ?? "float32";
  const shapes = shapeFacts(f, shapeDict);
  const types = typeFacts(f, typeDict);
  const shapeOf = (e: Entry): Shape => {
    const s = shapes.get(e.node)?.[e.index];
    if (!s || s.some((d) => d < 0)) {
      throw new ArgumentError(
        `${where}: the shape of '${
          e.node.outputName(e.index)
        }' is unknown; give every input's shape`,
        "shapes",
      );
    }
    return s as Shape;
  };
  const typeOf = (e: Entry): DType => types.get(e.node)?.[e.index] ?? "float32";

  // Nodes on a path from a wrt variable: only their inputs need cotangents.
  const wanted = new Set(wrt);
  const reaches = new Set<Node>();
  for (const node of nodes) {
    if (node.isVariable ? wanted.has(node.name) : node.inputs.some((e) => reaches.has(e.node))) {
      reaches.add(node);
    }
  }

  const cot = new Map<Node, (Symbol | undefined)[]>();
  const accumulate = (e: Entry, g: Symbol) => {
    let slots = cot.get(e.node);
    if (!slots) cot.set(e.node, slots = []);
    const prev = slots[e.index];
    slots[e.index] = prev ? F.elemwise_add(prev, g) : g;
  };
  f.outputs.forEach((e, i) => {
    if (reaches.has(e.node)) accumulate(e, headSyms[i]);
  });

  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k];
    if (node.isVariable || !reaches.has(node)) continue;
    const heads = cot.get(node);
    if (!heads || heads.every((h) => !h)) continue;
    const op = node.op!;
    // Integer and boolean results carry no gradient (their values move in steps).
    const outTypes = types.get(node) ?? [];
    if (!outTypes.some((t) => FLOAT_TYPES.has(t ?? "float32"))) continue;
    const needs = node.inputs.map((e) => reaches.has(e.node) && FLOAT_TYPES.has(typeOf(e)));
    if (!needs.some(Boolean)) continue;
    const ctx: VjpContext = {
      node,
      attrs: node.parsed,
      inputs: node.inputs.map((e) => new Symbol([e])),
      outputs: Array.from(
        { length: op.outputNames(node.parsed).length },
        (_, i) => outputOf(node, i),
      ),
      heads,
      inShapes: node.inputs.map(shapeOf),
      outShapes: (shapes.get(node) ?? []).map((s, i) => {
        if (!s || s.some((d) => d < 0)) shapeOf(node.entry(i));
        return s as Shape;
      }),
      inTypes: node.inputs.map(typeOf),
      outTypes: (types.get(node) ?? []).map((t) => t ?? "float32"),
      needs,
    };
    let grads: (Symbol | undefined)[];
    try {
      grads = ruleFor(ctx, where);
    } catch (e) {
      if (e instanceof SigilError) throw e;
      throw new GraphError(
        `${where}: differentiating node '${node.name}' (${op.name}): ${
          e instanceof Error ? e.message : String(e)
        }`,
        { cause: e },
      );
    }
    node.inputs.forEach((e, i) => {
      const g = grads[i];
      if (g && needs[i]) accumulate(e, g);
    });
  }

  const byName = new Map(nodes.filter((n) => n.isVariable).map((n) => [n.name, n]));
  return wrt.map((name) => {
    const node = byName.get(name)!;
    const g = cot.get(node)?.[0];
    if (g) return g;
    return F.zeros(shapeOf(node.entry(0)), { dtype: typeOf(node.entry(0)) });
  });
}

/** The input cotangents of one node: its op's rule, or the derivative of its scalar form. */
function ruleFor(ctx: VjpContext, where: string): (Symbol | undefined)[] {
  const op = ctx.node.op!;
  const ruled = VJP_RULES.get(op.name)?.(ctx);
  if (ruled) return ruled;
  const expr = op.scalar?.(ctx.attrs);
  if (expr && ctx.heads.every((h, i) => i === 0 || !h)) {
    const n = ctx.inputs.length;
    const head = ctx.heads[0]!;
    const outShape = ctx.outShapes[0];
    return ctx.inputs.map((_, i) => {
      if (!ctx.needs[i]) return undefined;
      const d = derive(expr, i);
      if (isZero(d)) return undefined;
      const local = d.kind === "const" && d.value === 1
        ? head
        : F._sigil_fused_elemwise(...ctx.inputs, head, {
          expr: printScalar(s.mul(s.in(n), d)),
          num_args: n + 1,
        });
      const g = unbroadcast(local, outShape, ctx.inShapes[i]);
      return ctx.inTypes[i] === ctx.outTypes[0] ? g : F.Cast(g, { dtype: ctx.inTypes[i] });
    });
  }
  const decomposition = DECOMPOSED.get(op.name);
  if (decomposition) return viaDecomposition(ctx, decomposition);
  // No gradient by nature: nothing flows back through it.
  if (NOT_DIFFERENTIABLE.has(op.name)) return ctx.inputs.map(() => undefined);
  throw new GraphError(
    `${where}: no gradient rule yet for op ${op.name} (node '${ctx.node.name}')`,
  );
}

/**
 * The input cotangents of a node through its decomposition: the decomposed output over fresh
 * variables is differentiated, then composed onto the node's inputs and head.
 */
function viaDecomposition(ctx: VjpContext, build: Decomposition): (Symbol | undefined)[] {
  const names = ctx.inputs.map((_, i) => `_decomposed_in${i}`);
  const vars = names.map((n) => sym.var(n));
  const f = build(ctx, vars);
  const read = new Set(f.listInputs());
  const wrt = names.filter((n, i) =>
    ctx.needs[i] && FLOAT_TYPES.has(ctx.inTypes[i]) && read.has(n)
  );
  if (!wrt.length) return ctx.inputs.map(() => undefined);
  const shapes: Record<string, readonly number[]> = {};
  const types: Record<string, DType> = {};
  names.forEach((n, i) => {
    if (!read.has(n)) return;
    shapes[n] = ctx.inShapes[i];
    types[n] = ctx.inTypes[i];
  });
  const head = sym.var("_decomposed_head");
  const cots = transform(f, wrt, shapes, { types }, [head], "grad");
  const args: Record<string, Symbol> = {
    _decomposed_head: ctx.heads[0] ?? F.zeros_like(ctx.outputs[0]),
  };
  names.forEach((n, i) => args[n] = ctx.inputs[i]);
  const out: (Symbol | undefined)[] = ctx.inputs.map(() => undefined);
  wrt.forEach((n, k) => {
    const g = cots[k];
    // A cotangent that is one of the variables (the head itself) is that symbol.
    const only = g.outputs[0].node;
    if (only.isVariable) {
      out[names.indexOf(n)] = args[only.name] ?? g;
      return;
    }
    const present = new Set(g.listInputs());
    const used: Record<string, Symbol> = {};
    for (const [name, s] of Object.entries(args)) if (present.has(name)) used[name] = s;
    out[names.indexOf(n)] = Object.keys(used).length ? g.compose(used) : g;
  });
  return out;
}
