/**
 * The scalar-expression form in which elementwise math is written once. A backend translates
 * these few node kinds (to JavaScript closures here, to WASM or WGSL later), so an elementwise
 * op or a fused chain of them needs no per-backend code. Expressions are interned: equal
 * expressions are the same object.
 *
 * @module
 */
import { AttributeError } from "../runtime/errors.ts";

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
  | "ceil"
  | "trunc"
  | "round"
  | "rint"
  | "sin"
  | "cos"
  | "tan"
  | "atan";

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

/**
 * Error function in float64, to about 1e-15: for |x| < 3 the series
 * `erf(x) = 2/√π · e^(-x²) · Σ 2ⁿ x^(2n+1) / (1·3···(2n+1))` (positive terms, no
 * cancellation; exactly 0 at 0 and odd), above it `1 - erfc(x)` with erfc's continued fraction.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const z = Math.abs(x);
  let r: number;
  if (z < 3) {
    let term = z;
    let sum = z;
    const z2 = z * z;
    for (let n = 1; n < 200 && term > sum * 1e-17; n++) {
      term *= (2 * z2) / (2 * n + 1);
      sum += term;
    }
    r = (2 / Math.sqrt(Math.PI)) * Math.exp(-z2) * sum;
  } else if (z < 27) {
    // erfc(z) = e^(-z²)/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + 2/(z + ...))))), from the tail
    let f = z;
    for (let k = 60; k >= 1; k--) f = z + (k / 2) / f;
    r = 1 - Math.exp(-z * z) / (Math.sqrt(Math.PI) * f);
  } else {
    r = 1;
  }
  return x < 0 ? -r : r;
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
  trunc: Math.trunc,
  round: roundHalfAway,
  rint: roundHalfEven,
  sin: Math.sin,
  cos: Math.cos,
  tan: Math.tan,
  atan: Math.atan,
};

/** Rounds half away from zero (C's `round`, MXNet's `round`), keeping the sign of zero. */
function roundHalfAway(x: number): number {
  const t = Math.trunc(x);
  return Math.abs(x - t) >= 0.5 ? t + Math.sign(x) : t;
}

/** Rounds half to even (C's `rint` in the default mode, MXNet's `rint`). */
function roundHalfEven(x: number): number {
  const t = Math.trunc(x);
  const d = Math.abs(x - t);
  if (d < 0.5 || (d === 0.5 && t % 2 === 0)) return t;
  return t + Math.sign(x);
}

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

// ---------------------------------------------------------------------------------------------
// Text form: S-expressions such as `(add (in 0) (const 1))`, used for the `expr` attribute of
// fused elementwise nodes so that they survive MXNet JSON.

const UNARY_NAMES: ReadonlySet<string> = new Set(Object.keys(UNARY));
const BINARY_NAMES: ReadonlySet<string> = new Set(Object.keys(BINARY));

/** The deepest expression {@link parseScalar} accepts (parsing and compiling recurse). */
export const MAX_SCALAR_DEPTH = 1000;

/** The text of a constant: JavaScript's shortest round-trip form, `-0`, `inf`, `-inf`, `nan`. */
function printNumber(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (v === Infinity) return "inf";
  if (v === -Infinity) return "-inf";
  if (Object.is(v, -0)) return "-0";
  return String(v);
}

const NUMBER_RE = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:e[+-]?\d+)?$/;
const INDEX_RE = /^(?:0|[1-9]\d{0,8})$/;

/**
 * Prints an expression as an S-expression: `(in i)`, `(const v)`, `(<fn> a)`, `(<fn> a b)` and
 * `(select cond a b)`, one space between items. Constants print in JavaScript's shortest
 * round-trip form (with `-0`, `inf`, `-inf` and `nan`), so {@link parseScalar} gives back the
 * very same (interned) expression. Throws {@link AttributeError} for an object that is not a
 * well-formed expression.
 *
 * @example Printing `exp(x) + 1`
 * ```ts
 * import assert from "node:assert";
 * import { parseScalar, printScalar, s } from "./scalar.ts";
 * const e = s.add(s.unary("exp", s.in(0)), s.c(1));
 * assert(printScalar(e) === "(add (exp (in 0)) (const 1))");
 * assert(parseScalar(printScalar(e)) === e);
 * ```
 */
export function printScalar(e: ScalarExpr): string {
  const out: string[] = [];
  const go = (x: ScalarExpr, depth: number): void => {
    if (depth > MAX_SCALAR_DEPTH) {
      throw new AttributeError(`printScalar: expression deeper than ${MAX_SCALAR_DEPTH}`);
    }
    switch (x?.kind) {
      case "in":
        if (!Number.isInteger(x.index) || x.index < 0 || !INDEX_RE.test(String(x.index))) {
          throw new AttributeError(`printScalar: bad input index ${String(x.index)}`);
        }
        out.push(`(in ${x.index})`);
        return;
      case "const":
        if (typeof x.value !== "number") {
          throw new AttributeError(`printScalar: constant ${String(x.value)} is not a number`);
        }
        out.push(`(const ${printNumber(x.value)})`);
        return;
      case "unary":
        if (!UNARY_NAMES.has(x.fn)) {
          throw new AttributeError(`printScalar: unknown unary function '${String(x.fn)}'`);
        }
        out.push(`(${x.fn} `);
        go(x.a, depth + 1);
        out.push(")");
        return;
      case "binary":
        if (!BINARY_NAMES.has(x.fn)) {
          throw new AttributeError(`printScalar: unknown binary function '${String(x.fn)}'`);
        }
        out.push(`(${x.fn} `);
        go(x.a, depth + 1);
        out.push(" ");
        go(x.b, depth + 1);
        out.push(")");
        return;
      case "select":
        out.push("(select ");
        go(x.cond, depth + 1);
        out.push(" ");
        go(x.a, depth + 1);
        out.push(" ");
        go(x.b, depth + 1);
        out.push(")");
        return;
      default:
        throw new AttributeError(`printScalar: not a scalar expression: ${String(x)}`);
    }
  };
  go(e, 1);
  return out.join("");
}

/**
 * Parses the text form that {@link printScalar} writes. Whitespace between items may be any
 * run of spaces, tabs or newlines; everything else is strict: known function names with the
 * right number of arguments, input indices as plain non-negative integers, constants as
 * decimal numbers (or `inf`, `-inf`, `nan`), nesting at most {@link MAX_SCALAR_DEPTH} deep,
 * and nothing after the expression. Bad text raises {@link AttributeError} naming the
 * character offset. The result is interned (equal text gives the same object).
 *
 * @example Parsing a clipped ReLU
 * ```ts
 * import assert from "node:assert";
 * import { compileScalar, parseScalar } from "./scalar.ts";
 * const e = parseScalar("(min (max (in 0) (const 0)) (const 6))");
 * assert(compileScalar(e)([7]) === 6 && compileScalar(e)([-1]) === 0);
 * ```
 */
export function parseScalar(text: string): ScalarExpr {
  if (typeof text !== "string") {
    throw new AttributeError(`parseScalar: expected a string, got ${typeof text}`);
  }
  const tokens: { text: string; at: number }[] = [];
  const re = /\s*(?:(\(|\))|([^\s()]+))/y;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) {
      if (/^\s*$/.test(text.slice(pos))) break;
      throw new AttributeError(`parseScalar: unexpected character at offset ${pos}`);
    }
    const tok = m[1] ?? m[2];
    tokens.push({ text: tok, at: re.lastIndex - tok.length });
    pos = re.lastIndex;
  }
  let i = 0;
  const fail = (what: string, at = tokens[i]?.at ?? text.length): never => {
    throw new AttributeError(`parseScalar: ${what} at offset ${at} of '${clip(text)}'`);
  };
  const expect = (t: string) => {
    if (tokens[i]?.text !== t) fail(`expected '${t}'`);
    i++;
  };
  const atom = (): { text: string; at: number } => {
    const t = tokens[i];
    if (t === undefined || t.text === "(" || t.text === ")") fail("expected a name or number");
    i++;
    return t;
  };
  const expr = (depth: number): ScalarExpr => {
    if (depth > MAX_SCALAR_DEPTH) fail(`expression deeper than ${MAX_SCALAR_DEPTH}`);
    expect("(");
    const head = atom();
    let e: ScalarExpr;
    if (head.text === "in") {
      const t = atom();
      if (!INDEX_RE.test(t.text)) fail(`bad input index '${t.text}'`, t.at);
      e = s.in(Number(t.text));
    } else if (head.text === "const") {
      const t = atom();
      e = s.c(parseNumber(t.text) ?? fail(`bad number '${t.text}'`, t.at));
    } else if (head.text === "select") {
      const c = expr(depth + 1);
      const a = expr(depth + 1);
      e = s.select(c, a, expr(depth + 1));
    } else if (UNARY_NAMES.has(head.text)) {
      e = s.unary(head.text as UnaryFn, expr(depth + 1));
    } else if (BINARY_NAMES.has(head.text)) {
      const a = expr(depth + 1);
      e = s.binary(head.text as BinaryFn, a, expr(depth + 1));
    } else {
      return fail(`unknown function '${head.text}'`, head.at);
    }
    expect(")");
    return e;
  };
  const e = expr(1);
  if (i !== tokens.length) fail("unexpected text after the expression");
  return e;
}

function parseNumber(t: string): number | undefined {
  if (t === "inf") return Infinity;
  if (t === "-inf") return -Infinity;
  if (t === "nan") return NaN;
  return NUMBER_RE.test(t) ? Number(t) : undefined;
}

function clip(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
