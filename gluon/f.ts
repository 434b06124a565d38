/**
 * `F`: every op, callable on tensors (runs eagerly) or on symbols (builds a graph node). Forward
 * code written with `F` runs both ways, which is what lets `hybridize` trace it.
 *
 * @module
 */
import { compose, type SymAttrs } from "../compiler/sym.ts";
import { Symbol } from "../compiler/symbol.ts";
import type { AttrSchema } from "../ops/attrs.ts";
import { nd } from "../ops/nd.ts";
import { Tensor } from "../runtime/tensor.ts";
import type { OpDef, OutputArity } from "../ops/op.ts";
import { type AliasTable, opNames, type OpTable } from "../ops/registry.ts";
import type { Value } from "./context.ts";

/** An op on values: tensors or symbols in, the same kind out. */
export type FFn<D> = D extends OpDef<infer S extends AttrSchema, readonly string[], OutputArity> ? {
    (...args: [...inputs: Value[], attrs: SymAttrs<S>]): Value;
    (...inputs: Value[]): Value;
  }
  : never;

/** Every op and alias as an {@link FFn}. */
export type FOps =
  & { readonly [K in keyof OpTable]: FFn<OpTable[K]> }
  & { readonly [K in keyof AliasTable]: FFn<AliasTable[K]> };

function isAttrs(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof Tensor);
}

/**
 * Ops on values: with any Symbol argument the call composes a graph node (`sym.<Op>`),
 * otherwise it runs eagerly (`nd.<Op>`). Types follow `sym`; at run time the result is a
 * Tensor (or Tensor[]) when every input is a Tensor.
 *
 * @example One forward, two modes
 * ```ts
 * import assert from "node:assert";
 * import { F, nd, sym, Tensor, type Value } from "../mod.ts";
 * const f = (x: Value) => F.exp(x);
 * assert(f(nd.zeros([1])) instanceof Tensor);
 * assert(!(f(sym.var("x")) instanceof Tensor));
 * ```
 */
export const F: FOps = (() => {
  const out: Record<string, unknown> = {};
  const eager = nd as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const [name, def] of opNames()) {
    out[name] = (...args: unknown[]) => {
      if (args.some((a) => a instanceof Symbol)) return compose(def, args);
      // Node names and extra node attributes only mean something in a graph.
      const last = args[args.length - 1];
      if (isAttrs(last) && ("name" in last || "attr" in last)) {
        const { name: _n, attr: _a, ...rest } = last;
        args = [...args.slice(0, -1), rest];
      }
      return eager[name](...args);
    };
  }
  return Object.freeze(out) as FOps;
})();
