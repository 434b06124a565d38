/**
 * Symbolic derivatives of scalar expressions: the gradient of every elementwise op (and of a
 * fused chain) comes from the one scalar form the op is written in, so each elementwise op has
 * its derivative stated once, here, per scalar function.
 *
 * @module
 */
import { s, type ScalarExpr } from "../../ops/scalar.ts";

const ZERO = s.c(0);
const ONE = s.c(1);

const isConst = (e: ScalarExpr, v: number): boolean => e.kind === "const" && e.value === v;
const constOf = (e: ScalarExpr): number | undefined => e.kind === "const" ? e.value : undefined;

/** `a + b`, folding zeros and constants. */
function add(a: ScalarExpr, b: ScalarExpr): ScalarExpr {
  if (isConst(a, 0)) return b;
  if (isConst(b, 0)) return a;
  const [x, y] = [constOf(a), constOf(b)];
  return x !== undefined && y !== undefined ? s.c(x + y) : s.add(a, b);
}

/** `-a`, folding constants and double negation. */
function neg(a: ScalarExpr): ScalarExpr {
  const x = constOf(a);
  if (x !== undefined) return s.c(-x);
  return a.kind === "unary" && a.fn === "neg" ? a.a : s.unary("neg", a);
}

/** `a - b`, folding zeros. */
function sub(a: ScalarExpr, b: ScalarExpr): ScalarExpr {
  if (isConst(b, 0)) return a;
  if (isConst(a, 0)) return neg(b);
  const [x, y] = [constOf(a), constOf(b)];
  return x !== undefined && y !== undefined ? s.c(x - y) : s.sub(a, b);
}

/** `a * b`, folding zeros, ones and constants. */
function mul(a: ScalarExpr, b: ScalarExpr): ScalarExpr {
  if (isConst(a, 0) || isConst(b, 0)) return ZERO;
  if (isConst(a, 1)) return b;
  if (isConst(b, 1)) return a;
  if (isConst(a, -1)) return neg(b);
  if (isConst(b, -1)) return neg(a);
  const [x, y] = [constOf(a), constOf(b)];
  return x !== undefined && y !== undefined ? s.c(x * y) : s.mul(a, b);
}

/** `a / b`, folding zeros and ones. */
function div(a: ScalarExpr, b: ScalarExpr): ScalarExpr {
  if (isConst(a, 0)) return ZERO;
  if (isConst(b, 1)) return a;
  return s.div(a, b);
}

const square = (a: ScalarExpr) => s.unary("square", a);

/**
 * The partial derivative of `e` with respect to its input `index`, as a scalar expression over
 * the same inputs (constant 0 when `e` does not depend on it, or only through steps and
 * comparisons). At the kinks of `abs`, `max` and `min` it takes MXNet's side: `abs'(0) = 0`,
 * `max` sends the gradient to its first argument when `a >= b`, `min` when `a <= b`.
 */
export function derive(e: ScalarExpr, index: number): ScalarExpr {
  const memo = new Map<ScalarExpr, ScalarExpr>();
  const d = (x: ScalarExpr): ScalarExpr => {
    let got = memo.get(x);
    if (!got) memo.set(x, got = step(x));
    return got;
  };
  const step = (x: ScalarExpr): ScalarExpr => {
    switch (x.kind) {
      case "in":
        return x.index === index ? ONE : ZERO;
      case "const":
        return ZERO;
      case "select": {
        const [da, db] = [d(x.a), d(x.b)];
        return isConst(da, 0) && isConst(db, 0) ? ZERO : s.select(x.cond, da, db);
      }
      case "unary": {
        const da = d(x.a);
        if (isConst(da, 0)) return ZERO;
        const a = x.a;
        switch (x.fn) {
          case "neg":
            return neg(da);
          case "abs":
            return mul(da, s.unary("sign", a));
          case "exp":
            return mul(da, x);
          case "log":
            return div(da, a);
          case "sqrt":
            return div(da, mul(s.c(2), x));
          case "rsqrt":
            return mul(da, mul(s.c(-0.5), div(x, a)));
          case "square":
            return mul(da, mul(s.c(2), a));
          case "tanh":
            return mul(da, sub(ONE, square(x)));
          case "sigmoid":
            return mul(da, mul(x, sub(ONE, x)));
          case "erf":
            return mul(da, mul(s.c(2 / Math.sqrt(Math.PI)), s.unary("exp", neg(square(a)))));
          case "log1p":
            return div(da, add(ONE, a));
          case "expm1":
            return mul(da, add(x, ONE));
          case "recip":
            return neg(mul(da, square(x)));
          case "sin":
            return mul(da, s.unary("cos", a));
          case "cos":
            return neg(mul(da, s.unary("sin", a)));
          case "tan":
            return mul(da, add(ONE, square(x)));
          case "atan":
            return div(da, add(ONE, square(a)));
          case "sign":
          case "floor":
          case "ceil":
          case "trunc":
          case "round":
          case "rint":
            return ZERO;
        }
        throw new Error(`unreachable: ${(x as { fn: string }).fn}`);
      }
      case "binary": {
        const { a, b } = x;
        const [da, db] = [d(a), d(b)];
        if (isConst(da, 0) && isConst(db, 0)) return ZERO;
        switch (x.fn) {
          case "add":
            return add(da, db);
          case "sub":
            return sub(da, db);
          case "mul":
            return add(mul(da, b), mul(a, db));
          case "div":
            return sub(div(da, b), div(mul(a, db), square(b)));
          case "max":
            return s.select(s.binary("ge", a, b), da, db);
          case "min":
            return s.select(s.binary("le", a, b), da, db);
          case "pow": {
            const viaBase = isConst(da, 0)
              ? ZERO
              : mul(da, mul(b, s.binary("pow", a, sub(b, ONE))));
            const viaExponent = isConst(db, 0) ? ZERO : mul(db, mul(x, s.unary("log", a)));
            return add(viaBase, viaExponent);
          }
          case "lt":
          case "gt":
          case "le":
          case "ge":
          case "eq":
            return ZERO;
        }
        throw new Error(`unreachable: ${(x as { fn: string }).fn}`);
      }
    }
  };
  return d(e);
}

/** Whether an expression is the constant 0 (no gradient flows). */
export function isZero(e: ScalarExpr): boolean {
  return isConst(e, 0);
}

/** `head * e`, folded: the cotangent an elementwise input receives. */
export function timesHead(e: ScalarExpr, head: ScalarExpr): ScalarExpr {
  return mul(head, e);
}
