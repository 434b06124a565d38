/**
 * The scalar-expression form in which elementwise math is written once. A backend translates
 * these few node kinds (to JavaScript closures here, to WASM or WGSL later), so an elementwise
 * op or a fused chain of them needs no per-backend code. Expressions are interned: equal
 * expressions are the same object.
 *
 * @module
 */

/** Unary scalar functions. */
export type UnaryFn =
  | "neg"
  | "abs"
  | "exp"
  | "log"
  | "sqrt"
  | "rsqrt"
  | "square"
  | "tanh"
  | "sigmoid"
  | "erf"
  | "log1p"
  | "expm1"
  | "sign"
  | "recip"
  | "floor"
  | "ceil";

/** Binary scalar functions (comparisons give 1 or 0). */
export type BinaryFn =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "max"
  | "min"
  | "pow"
  | "lt"
  | "gt"
  | "le"
  | "ge"
  | "eq";

/** A scalar expression over the op's inputs (`in`) and constants. */
export type ScalarExpr =
  | { readonly kind: "in"; readonly index: number }
  | { readonly kind: "const"; readonly value: number }
  | { readonly kind: "unary"; readonly fn: UnaryFn; readonly a: ScalarExpr }
  | {
    readonly kind: "binary";
    readonly fn: BinaryFn;
    readonly a: ScalarExpr;
    readonly b: ScalarExpr;
  }
  | {
    readonly kind: "select";
    readonly cond: ScalarExpr;
    readonly a: ScalarExpr;
    readonly b: ScalarExpr;
  };

const ids = new WeakMap<ScalarExpr, number>();
const table = new Map<string, ScalarExpr>();
let nextId = 0;

function intern(e: ScalarExpr, key: string): ScalarExpr {
  let got = table.get(key);
  if (!got) {
    got = Object.freeze(e);
    ids.set(got, nextId++);
    table.set(key, got);
  }
  return got;
}

const idOf = (e: ScalarExpr) => ids.get(e)!;

/** Builders for scalar expressions. */
export const s = {
  /** The op's `index`-th input. */
  in(index: number): ScalarExpr {
    return intern({ kind: "in", index }, `i${index}`);
  },
  /** A constant. */
  c(value: number): ScalarExpr {
    return intern({ kind: "const", value }, `c${Object.is(value, -0) ? "-0" : value}`);
  },
  /** A unary function. */
  unary(fn: UnaryFn, a: ScalarExpr): ScalarExpr {
    return intern({ kind: "unary", fn, a }, `u${fn}(${idOf(a)})`);
  },
  /** A binary function. */
  binary(fn: BinaryFn, a: ScalarExpr, b: ScalarExpr): ScalarExpr {
    return intern({ kind: "binary", fn, a, b }, `b${fn}(${idOf(a)},${idOf(b)})`);
  },
  /** `cond != 0 ? a : b`. */
  select(cond: ScalarExpr, a: ScalarExpr, b: ScalarExpr): ScalarExpr {
    return intern({ kind: "select", cond, a, b }, `s(${idOf(cond)},${idOf(a)},${idOf(b)})`);
  },
  /** `a + b`. */
  add: (a: ScalarExpr, b: ScalarExpr): ScalarExpr => s.binary("add", a, b),
  /** `a - b`. */
  sub: (a: ScalarExpr, b: ScalarExpr): ScalarExpr => s.binary("sub", a, b),
  /** `a * b`. */
  mul: (a: ScalarExpr, b: ScalarExpr): ScalarExpr => s.binary("mul", a, b),
  /** `a / b`. */
  div: (a: ScalarExpr, b: ScalarExpr): ScalarExpr => s.binary("div", a, b),
  /** `max(a, b)`. */
  max: (a: ScalarExpr, b: ScalarExpr): ScalarExpr => s.binary("max", a, b),
  /** `min(a, b)`. */
  min: (a: ScalarExpr, b: ScalarExpr): ScalarExpr => s.binary("min", a, b),
};

/** Error function, to within 1.2e-7 (Numerical Recipes' erfc Chebyshev fit). */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t *
    Math.exp(
      -z * z - 1.26551223 +
        t * (1.00002368 +
            t * (0.37409196 +
                t * (0.09678418 +
                    t * (-0.18628806 +
                        t * (0.27886807 +
                            t *
                              (-1.13520398 +
                                t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

/** The float64 meaning of each unary function: the reference every backend matches. */
export const UNARY: Readonly<Record<UnaryFn, (x: number) => number>> = {
  neg: (x) => -x,
  abs: Math.abs,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  square: (x) => x * x,
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  erf,
  log1p: Math.log1p,
  expm1: Math.expm1,
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : x),
  recip: (x) => 1 / x,
  floor: Math.floor,
  ceil: Math.ceil,
};

/** The float64 meaning of each binary function. */
export const BINARY: Readonly<Record<BinaryFn, (a: number, b: number) => number>> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  max: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  min: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
  pow: Math.pow,
  lt: (a, b) => (a < b ? 1 : 0),
  gt: (a, b) => (a > b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0),
  eq: (a, b) => (a === b ? 1 : 0),
};

/** A compiled scalar function: reads inputs from `args`. */
export type ScalarFn = (args: ArrayLike<number>) => number;

/**
 * Compiles an expression to a closure (the reference "backend" of the scalar form).
 *
 * @example Evaluating `x * 2 + 1`
 * ```ts
 * import assert from "node:assert";
 * import { compileScalar, s } from "./scalar.ts";
 * const f = compileScalar(s.add(s.mul(s.in(0), s.c(2)), s.c(1)));
 * assert(f([3]) === 7);
 * ```
 */
export function compileScalar(e: ScalarExpr): ScalarFn {
  switch (e.kind) {
    case "in": {
      const i = e.index;
      return (args) => args[i];
    }
    case "const": {
      const v = e.value;
      return () => v;
    }
    case "unary": {
      const f = UNARY[e.fn];
      const a = compileScalar(e.a);
      return (args) => f(a(args));
    }
    case "binary": {
      const f = BINARY[e.fn];
      const a = compileScalar(e.a);
      const b = compileScalar(e.b);
      return (args) => f(a(args), b(args));
    }
    case "select": {
      const c = compileScalar(e.cond);
      const a = compileScalar(e.a);
      const b = compileScalar(e.b);
      return (args) => (c(args) !== 0 ? a(args) : b(args));
    }
  }
}

/** Replaces each `in(i)` in `e` by `args[i]`: how elementwise chains compose (fusion). */
export function substitute(e: ScalarExpr, args: readonly ScalarExpr[]): ScalarExpr {
  switch (e.kind) {
    case "in":
      return args[e.index];
    case "const":
      return e;
    case "unary":
      return s.unary(e.fn, substitute(e.a, args));
    case "binary":
      return s.binary(e.fn, substitute(e.a, args), substitute(e.b, args));
    case "select":
      return s.select(substitute(e.cond, args), substitute(e.a, args), substitute(e.b, args));
  }
}
