/**
 * Vector math for WASM kernels: every {@link UnaryFn} and {@link BinaryFn} of the scalar form
 * (ops/scalar.ts) as `f32x4` code, including those WebAssembly has no instruction for.
 *
 * Functions with a non-trivial body (exp, log, expm1, log1p, tanh, sigmoid, erf, pow, sign)
 * are emitted once per module as helper functions `(v128[, v128]) -> v128` and called; the
 * rest are inlined. Polynomials use `f32x4.relaxed_madd` when relaxed SIMD is allowed, `mul` +
 * `add` otherwise (both paths are tested).
 *
 * Methods:
 * - exp: `x = n·ln2 + r` (ln2 split hi/lo, |r| ≤ ln2/2), degree-7 Taylor polynomial for e^r,
 *   scaled by 2^n as two exponent-built factors so denormal results round once; x is clamped to
 *   [-104, 89] so overflow gives +Inf and underflow 0; NaN propagates.
 * - log: denormals are pre-scaled by 2^23; exponent/mantissa split with the mantissa in
 *   [√½, √2); `log1p(f) = f - hfsq + s·(hfsq + R(s²))`, `s = f/(2+f)`; log(0) = -Inf,
 *   log(x < 0) = NaN, log(+Inf) = +Inf.
 * - expm1: same reduction as exp, `(expm1(r) + (1 - 2^-n))·2^n`; exact for tiny x.
 * - log1p: `u = 1 + x`; `x` when `u == 1`, else `log(u)·x/(u - 1)` (Goldberg); +Inf kept.
 * - tanh: `t = expm1(2|x|)`, `t/(t + 2)` with |x| clamped to 9, sign restored.
 * - sigmoid: `e = exp(-|x|)`, `1/(1+e)` for x ≥ 0 and `e/(1+e)` below (no overflow).
 * - erf: Taylor series for |x| < 0.5, above it Numerical Recipes' Chebyshev erfc fit (within
 *   1.2e-7 of erf), with |x| clamped to 4.
 * - pow: `exp(b·log|a|)` with JavaScript `Math.pow`'s special cases: b = ±0 → 1, NaN in → NaN,
 *   negative base with odd integer b → negative, with non-integer finite b → NaN,
 *   |a| = 1 with b = ±Inf → NaN, zeros and infinities signed as `Math.pow` signs them.
 *   Limit: the relative error grows with |b·log|a|| (about |b·ln a|·2^-24 plus a few ulp),
 *   since log is not carried in extra precision.
 * - sin, cos, tan: `x = j·π/2 + r` (π/2 split in three parts, the first two short enough that
 *   `j·part` is exact for |j| < 2^12), |r| ≤ π/4; Taylor polynomials of sin r (to r^9) and
 *   cos r (to r^10); the quadrant `j mod 4` picks ±sin r or ±cos r (tan: `sin r / cos r` or
 *   `-cos r / sin r`). Accurate for |x| up to about 6000; beyond that the reduction loses
 *   bits (absolute error about |x|·2^-35), and from 2^24 on (where float32 has no fraction
 *   bits left) the result is NaN rather than a meaningless number.
 * - atan: |x| > 1 → π/2 - atan(1/|x|); then t > tan(π/8) → π/4 + atan((t-1)/(t+1)); Taylor
 *   series to t^19 on |t| ≤ tan(π/8); sign restored (±0 and NaN kept, ±Inf → ±π/2).
 * - round (half away from zero): `t = trunc(x)`, `t + copysign(1, x)` where `|x - t| ≥ 0.5`
 *   (`x - t` is exact); trunc and rint (half to even: `f32x4.nearest`) are single instructions.
 * - rsqrt = 1/sqrt, recip = 1/x, sign (±1, or x itself for ±0 and NaN), comparisons give 1 or
 *   0 (false for NaN), max/min propagate NaN, select takes a where cond ≠ 0 (NaN counts as ≠ 0).
 *
 * Measured (tests/lower/elementwise_test.ts, against Math.* in float64 rounded to float32, over
 * ±0, ±Inf, NaN, denormals and log-uniform magnitudes from 1e-45 to 3e38), max error in ulps of
 * the float32 result (both SIMD paths):
 * exp 1, log 1, expm1 1, log1p 2, tanh 2, sigmoid 2, erf 3 (against a float64 series for the
 * true erf), rsqrt 1, atan 3, round/rint/trunc 0, sin and cos 2 and tan 3 for |x| ≤ 6000 (plus the
 * reduction error times the derivative near tan's poles),
 * recip 0, sign 0; pow at most 3·max(1, |b·ln a|) ulp.
 *
 * @module
 */
import type { BinaryFn, UnaryFn } from "../../../ops/scalar.ts";
import type { FunctionBuilder, ModuleBuilder, SimpleOpName } from "./encoder.ts";

const LOG2E = 1.4426950408889634;
const LN2_HI = 0.693359375;
const LN2_LO = -2.12194440e-4;

/** The unary functions VMath emits as helper functions (the rest are inline). */
type HelperUnary =
  | "exp"
  | "log"
  | "expm1"
  | "log1p"
  | "tanh"
  | "sigmoid"
  | "erf"
  | "sign"
  | "round"
  | "sin"
  | "cos"
  | "tan"
  | "atan";

/**
 * Emits f32x4 math into functions of one module. Values are passed on the operand stack.
 *
 * @example `exp` over four lanes
 * ```ts
 * import assert from "node:assert";
 * import { ModuleBuilder } from "./encoder.ts";
 * import { VMath } from "./vmath.ts";
 * const mb = new ModuleBuilder();
 * mb.memory({ min: 1 }, "memory");
 * const vm = new VMath(mb, false);
 * const fb = mb.addFunction([], [], { export: "run" });
 * fb.i32Const(16).i32Const(0).load("v128.load");
 * vm.unary(fb, "exp");
 * fb.store("v128.store").end();
 * const { instance } = await WebAssembly.instantiate(mb.build());
 * const mem = new Float32Array((instance.exports.memory as WebAssembly.Memory).buffer);
 * mem.set([0, 1, -Infinity, 100]);
 * (instance.exports.run as () => void)();
 * assert.deepStrictEqual([...mem.subarray(4, 8)], [1, Math.fround(Math.E), 0, Infinity]);
 * ```
 */
export class VMath {
  /** The module helper functions are added to. */
  readonly module: ModuleBuilder;
  /** Whether `f32x4.relaxed_madd` may be used. */
  readonly relaxed: boolean;
  #helpers = new Map<string, FunctionBuilder>();
  #temps = new WeakMap<FunctionBuilder, number[]>();

  /** Math for functions of `module`; `relaxed` allows relaxed-SIMD instructions. */
  constructor(module: ModuleBuilder, relaxed: boolean) {
    this.module = module;
    this.relaxed = relaxed;
  }

  /** Pops `x` (v128, four f32), pushes `fn(x)`. */
  unary(fb: FunctionBuilder, fn: UnaryFn): void {
    switch (fn) {
      case "neg":
        fb.op("f32x4.neg");
        return;
      case "abs":
        fb.op("f32x4.abs");
        return;
      case "sqrt":
        fb.op("f32x4.sqrt");
        return;
      case "floor":
        fb.op("f32x4.floor");
        return;
      case "ceil":
        fb.op("f32x4.ceil");
        return;
      case "trunc":
        fb.op("f32x4.trunc");
        return;
      case "rint":
        fb.op("f32x4.nearest");
        return;
      case "rsqrt": {
        const t = this.#temp(fb, 0);
        fb.op("f32x4.sqrt").localSet(t);
        splat(fb, 1).localGet(t).op("f32x4.div");
        return;
      }
      case "recip": {
        const t = this.#temp(fb, 0);
        fb.localSet(t);
        splat(fb, 1).localGet(t).op("f32x4.div");
        return;
      }
      case "square": {
        const t = this.#temp(fb, 0);
        fb.localTee(t).localGet(t).op("f32x4.mul");
        return;
      }
      default:
        fb.call(this.#helper(fn));
    }
  }

  /** Pops `a` then `b` (pushed in that order), pushes `fn(a, b)`. */
  binary(fb: FunctionBuilder, fn: BinaryFn): void {
    const cmp = (op: SimpleOpName) => {
      fb.op(op);
      splat(fb, 1).op("v128.and");
    };
    switch (fn) {
      case "add":
      case "sub":
      case "mul":
      case "div":
      case "max":
      case "min":
        fb.op(`f32x4.${fn}`);
        return;
      case "lt":
      case "gt":
      case "le":
      case "ge":
      case "eq":
        cmp(`f32x4.${fn}`);
        return;
      case "pow":
        fb.call(this.#powHelper());
        return;
    }
  }

  /** Pops `a`, `b`, `cond` (pushed in that order), pushes `cond != 0 ? a : b` per lane. */
  select(fb: FunctionBuilder): void {
    splat(fb, 0).op("f32x4.ne", "v128.bitselect");
  }

  /** Pushes `a * b + c` for `a`, `b`, `c` pushed in that order (fused where relaxed). */
  madd(fb: FunctionBuilder): void {
    if (this.relaxed) fb.op("f32x4.relaxed_madd");
    else {
      const t = this.#temp(fb, 0);
      fb.localSet(t).op("f32x4.mul").localGet(t).op("f32x4.add");
    }
  }

  /** A v128 scratch local of `fb` (slot 0 is used by inline ops and madd). */
  #temp(fb: FunctionBuilder, slot: number): number {
    let ts = this.#temps.get(fb);
    if (!ts) this.#temps.set(fb, ts = []);
    return ts[slot] ??= fb.local("v128");
  }

  /** Horner: stack has nothing; `x` local; pushes c[0] + x·(c[1] + x·(...)). */
  #poly(fb: FunctionBuilder, x: number, coeffs: readonly number[]): void {
    splat(fb, coeffs[coeffs.length - 1]);
    for (let i = coeffs.length - 2; i >= 0; i--) {
      fb.localGet(x);
      splat(fb, coeffs[i]);
      // stack: p, x, c → need p*x + c
      this.madd(fb);
    }
  }

  #helper(fn: HelperUnary): FunctionBuilder {
    let h = this.#helpers.get(fn);
    if (h) return h;
    h = this.module.addFunction(["v128"], ["v128"], { name: `vmath_${fn}` });
    this.#helpers.set(fn, h);
    BODIES[fn](this, h);
    h.end();
    return h;
  }

  #powHelper(): FunctionBuilder {
    let h = this.#helpers.get("pow");
    if (h) return h;
    h = this.module.addFunction(["v128", "v128"], ["v128"], { name: "vmath_pow" });
    this.#helpers.set("pow", h);
    powBody(this, h);
    h.end();
    return h;
  }

  /** @internal */
  poly(fb: FunctionBuilder, x: number, coeffs: readonly number[]): void {
    this.#poly(fb, x, coeffs);
  }

  /** @internal A helper function (emitted once). */
  helper(fn: HelperUnary): FunctionBuilder {
    return this.#helper(fn);
  }
}

function splat(fb: FunctionBuilder, v: number): FunctionBuilder {
  return fb.f32x4Const(v, v, v, v);
}

function isplat(fb: FunctionBuilder, v: number): FunctionBuilder {
  return fb.i32x4Const(v, v, v, v);
}

/** Pushes 2^k for i32 lanes k in [-126, 127] (local `k`). */
function pow2(fb: FunctionBuilder, k: number): void {
  fb.localGet(k);
  isplat(fb, 127).op("i32x4.add").i32Const(23).op("i32x4.shl");
}

const INV_FACT = [1, 1, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040, 1 / 40320, 1 / 362880];

/**
 * Range reduction shared by exp and expm1: from `x` (local, already clamped), sets `n` (f32
 * lanes, integral), `ni` (i32 lanes) and `r = x - n·ln2`.
 */
function reduce(fb: FunctionBuilder, x: number, n: number, ni: number, r: number) {
  fb.localGet(x);
  splat(fb, LOG2E).op("f32x4.mul", "f32x4.nearest").localTee(n);
  fb.op("i32x4.trunc_sat_f32x4_s").localSet(ni);
  // r = x - n*ln2_hi - n*ln2_lo  (n*ln2_hi is exact: 9-bit constant, |n| ≤ 150)
  fb.localGet(x).localGet(n);
  splat(fb, LN2_HI).op("f32x4.mul", "f32x4.sub");
  fb.localGet(n);
  splat(fb, LN2_LO).op("f32x4.mul", "f32x4.sub").localSet(r);
}

const BODIES: Readonly<Record<HelperUnary, (vm: VMath, fb: FunctionBuilder) => void>> = {
  exp(vm, fb) {
    const x = 0, n = fb.local("v128"), ni = fb.local("v128"), r = fb.local("v128");
    const h = fb.local("v128");
    fb.localGet(x);
    splat(fb, -104).op("f32x4.max");
    splat(fb, 89).op("f32x4.min").localSet(x);
    reduce(fb, x, n, ni, r);
    vm.poly(fb, r, INV_FACT.slice(0, 8));
    // * 2^(n>>1) * 2^(n - (n>>1))
    fb.localGet(ni).i32Const(1).op("i32x4.shr_s").localSet(h);
    pow2(fb, h);
    fb.op("f32x4.mul");
    fb.localGet(ni).localGet(h).op("i32x4.sub").localSet(h);
    pow2(fb, h);
    fb.op("f32x4.mul");
  },

  expm1(vm, fb) {
    const x = 0, n = fb.local("v128"), ni = fb.local("v128"), r = fb.local("v128");
    const h = fb.local("v128"), orig = fb.local("v128");
    fb.localGet(x).localTee(orig);
    splat(fb, -20).op("f32x4.max");
    splat(fb, 89).op("f32x4.min").localSet(x);
    reduce(fb, x, n, ni, r);
    // em = r + r²·(1/2 + r·(1/6 + ...))
    vm.poly(fb, r, INV_FACT.slice(2, 10));
    fb.localGet(r).localGet(r).op("f32x4.mul");
    fb.op("f32x4.mul").localGet(r).op("f32x4.add");
    // + (1 - 2^-min(n, 25))
    splat(fb, 1);
    fb.localGet(ni);
    isplat(fb, 25).op("i32x4.min_s", "i32x4.neg").localSet(h);
    pow2(fb, h);
    fb.op("f32x4.sub", "f32x4.add");
    fb.localGet(ni).i32Const(1).op("i32x4.shr_s").localSet(h);
    pow2(fb, h);
    fb.op("f32x4.mul");
    fb.localGet(ni).localGet(h).op("i32x4.sub").localSet(h);
    pow2(fb, h);
    fb.op("f32x4.mul");
    // keep x itself where x == 0 (signed zero)
    fb.localSet(r).localGet(orig).localGet(r).localGet(orig);
    splat(fb, 0).op("f32x4.eq", "v128.bitselect");
  },

  log(vm, fb) {
    const x = 0, m = fb.local("v128"), e = fb.local("v128"), f = fb.local("v128");
    const sv = fb.local("v128"), z = fb.local("v128"), hfsq = fb.local("v128");
    const mask = fb.local("v128"), ef = fb.local("v128");
    // denormals: scale by 2^23, exponent adjust -23
    fb.localGet(x);
    splat(fb, 1.1754943508222875e-38).op("f32x4.lt").localSet(mask);
    fb.localGet(x);
    splat(fb, 8388608).op("f32x4.mul").localGet(x).localGet(mask).op("v128.bitselect");
    fb.localTee(m);
    fb.i32Const(23).op("i32x4.shr_u");
    isplat(fb, 127).op("i32x4.sub");
    fb.localGet(mask);
    isplat(fb, 23).op("v128.and", "i32x4.sub").localSet(e);
    // mantissa in [1, 2)
    fb.localGet(m);
    isplat(fb, 0x7fffff).op("v128.and");
    isplat(fb, 0x3f800000).op("v128.or").localTee(m);
    splat(fb, Math.SQRT2).op("f32x4.gt").localSet(mask);
    fb.localGet(m);
    splat(fb, 0.5).op("f32x4.mul").localGet(m).localGet(mask).op("v128.bitselect");
    splat(fb, 1).op("f32x4.sub").localSet(f);
    fb.localGet(e).localGet(mask).op("i32x4.sub", "f32x4.convert_i32x4_s").localSet(ef);
    // s = f / (2 + f), z = s², hfsq = f²/2
    fb.localGet(f).localGet(f);
    splat(fb, 2).op("f32x4.add", "f32x4.div").localTee(sv).localGet(sv).op("f32x4.mul");
    fb.localSet(z);
    fb.localGet(f).localGet(f).op("f32x4.mul");
    splat(fb, 0.5).op("f32x4.mul").localSet(hfsq);
    // R = z·(2/3 + z·(2/5 + z·(2/7 + z·2/9)))
    vm.poly(fb, z, [2 / 3, 2 / 5, 2 / 7, 2 / 9]);
    fb.localGet(z).op("f32x4.mul");
    // s·(hfsq + R) + e·ln2_lo
    fb.localGet(hfsq).op("f32x4.add").localGet(sv).op("f32x4.mul");
    fb.localGet(ef);
    splat(fb, LN2_LO).op("f32x4.mul", "f32x4.add").localSet(z);
    // e·ln2_hi - ((hfsq - that) - f)
    fb.localGet(ef);
    splat(fb, LN2_HI).op("f32x4.mul");
    fb.localGet(hfsq).localGet(z).op("f32x4.sub").localGet(f).op("f32x4.sub", "f32x4.sub");
    // specials: +Inf → +Inf, 0 → -Inf, !(x ≥ 0) → NaN
    fb.localSet(m);
    splat(fb, Infinity).localGet(m).localGet(x);
    splat(fb, Infinity).op("f32x4.eq", "v128.bitselect").localSet(m);
    splat(fb, -Infinity).localGet(m).localGet(x);
    splat(fb, 0).op("f32x4.eq", "v128.bitselect").localSet(m);
    fb.localGet(m);
    splat(fb, NaN).localGet(x);
    splat(fb, 0).op("f32x4.ge", "v128.bitselect");
  },

  log1p(vm, fb) {
    const x = 0, u = fb.local("v128"), res = fb.local("v128");
    fb.localGet(x);
    splat(fb, 1).op("f32x4.add").localTee(u);
    fb.call(vm.helper("log"));
    fb.localGet(x).localGet(u);
    splat(fb, 1).op("f32x4.sub", "f32x4.div", "f32x4.mul").localSet(res);
    // x where u == 1 or x == +Inf
    fb.localGet(x).localGet(res).localGet(u);
    splat(fb, 1).op("f32x4.eq");
    fb.localGet(x);
    splat(fb, Infinity).op("f32x4.eq", "v128.or", "v128.bitselect");
  },

  tanh(vm, fb) {
    const x = 0, t = fb.local("v128");
    fb.localGet(x).op("f32x4.abs");
    splat(fb, 9).op("f32x4.min");
    splat(fb, 2).op("f32x4.mul");
    fb.call(vm.helper("expm1")).localTee(t).localGet(t);
    splat(fb, 2).op("f32x4.add", "f32x4.div");
    fb.localGet(x);
    isplat(fb, -0x80000000).op("v128.and", "v128.or");
  },

  sigmoid(vm, fb) {
    const x = 0, e = fb.local("v128"), q = fb.local("v128");
    fb.localGet(x).op("f32x4.abs", "f32x4.neg");
    fb.call(vm.helper("exp")).localSet(e);
    splat(fb, 1);
    fb.localGet(e);
    splat(fb, 1).op("f32x4.add", "f32x4.div").localSet(q);
    fb.localGet(e).localGet(q).op("f32x4.mul").localGet(q).localGet(x);
    splat(fb, 0).op("f32x4.lt", "v128.bitselect");
  },

  erf(vm, fb) {
    const x = 0, z = fb.local("v128"), t = fb.local("v128"), z2 = fb.local("v128");
    const small = fb.local("v128"), big = fb.local("v128");
    fb.localGet(x).op("f32x4.abs");
    splat(fb, 4).op("f32x4.min").localTee(z).localGet(z).op("f32x4.mul").localSet(z2);
    // small: z·(2/√π)·Σ (-1)^k z^{2k}/(k!(2k+1)), k ≤ 7
    const c: number[] = [];
    let fact = 1;
    for (let k = 0; k <= 7; k++) {
      if (k > 0) fact *= k;
      c.push(((k % 2 ? -1 : 1) * 2 / Math.sqrt(Math.PI)) / (fact * (2 * k + 1)));
    }
    vm.poly(fb, z2, c);
    fb.localGet(z).op("f32x4.mul").localSet(small);
    // big: 1 - t·exp(-z² - 1.26551223 + t·P(t)), t = 1/(1 + z/2)
    splat(fb, 1);
    splat(fb, 1).localGet(z);
    splat(fb, 0.5).op("f32x4.mul", "f32x4.add", "f32x4.div").localSet(t);
    vm.poly(fb, t, [
      -1.26551223,
      1.00002368,
      0.37409196,
      0.09678418,
      -0.18628806,
      0.27886807,
      -1.13520398,
      1.48851587,
      -0.82215223,
      0.17087277,
    ]);
    fb.localGet(z2).op("f32x4.sub");
    fb.call(vm.helper("exp")).localGet(t).op("f32x4.mul");
    fb.localSet(big);
    splat(fb, 1).localGet(big).op("f32x4.sub").localSet(big);
    fb.localGet(small).localGet(big).localGet(z);
    splat(fb, 0.5).op("f32x4.lt", "v128.bitselect");
    // restore sign (NaN stays NaN)
    fb.localGet(x);
    isplat(fb, -0x80000000).op("v128.and", "v128.or");
  },

  round(_vm, fb) {
    const x = 0, t = fb.local("v128");
    // t + copysign(1, x) where |x - t| >= 0.5, else t (keeps -0, NaN and ±Inf: x - t is NaN)
    fb.localGet(x).op("f32x4.trunc").localTee(t);
    fb.localGet(x);
    isplat(fb, -0x80000000).op("v128.and");
    splat(fb, 1).op("v128.or", "f32x4.add");
    fb.localGet(t);
    fb.localGet(x).localGet(t).op("f32x4.sub", "f32x4.abs");
    splat(fb, 0.5).op("f32x4.ge", "v128.bitselect");
  },

  sin(vm, fb) {
    trig(vm, fb, 0);
  },

  cos(vm, fb) {
    trig(vm, fb, 1);
  },

  tan(vm, fb) {
    const x = 0, r = fb.local("v128"), ni = fb.local("v128");
    const sr = fb.local("v128"), cr = fb.local("v128");
    trigReduce(fb, x, r, ni);
    sinPoly(vm, fb, r);
    fb.localSet(sr);
    cosPoly(vm, fb, r);
    fb.localSet(cr);
    // even j: sin r / cos r; odd j: -cos r / sin r
    fb.localGet(sr).localGet(cr).op("f32x4.div");
    fb.localGet(cr).localGet(sr).op("f32x4.div", "f32x4.neg");
    fb.localGet(ni);
    isplat(fb, 1).op("v128.and");
    isplat(fb, 0).op("i32x4.eq", "v128.bitselect");
    nanBeyondReduction(fb, x);
  },

  atan(vm, fb) {
    const x = 0, a = fb.local("v128"), big = fb.local("v128"), mid = fb.local("v128");
    const t = fb.local("v128"), z = fb.local("v128");
    fb.localGet(x).op("f32x4.abs").localTee(a);
    splat(fb, 1).op("f32x4.gt").localSet(big);
    // t = big ? 1/a : a
    splat(fb, 1).localGet(a).op("f32x4.div").localGet(a).localGet(big).op("v128.bitselect");
    fb.localTee(t);
    splat(fb, TAN_PI_8).op("f32x4.gt").localSet(mid);
    // t = mid ? (t - 1)/(t + 1) : t
    fb.localGet(t);
    splat(fb, 1).op("f32x4.sub").localGet(t);
    splat(fb, 1).op("f32x4.add", "f32x4.div").localGet(t).localGet(mid).op("v128.bitselect");
    fb.localTee(t).localGet(t).op("f32x4.mul").localSet(z);
    // p = t·Σ (-1)^n z^n/(2n+1)
    vm.poly(fb, z, Array.from({ length: 10 }, (_, n) => (n % 2 ? -1 : 1) / (2 * n + 1)));
    fb.localGet(t).op("f32x4.mul");
    // + (mid ? π/4 : 0); big: π/2 - that
    splat(fb, Math.PI / 4);
    splat(fb, 0).localGet(mid).op("v128.bitselect", "f32x4.add").localSet(t);
    splat(fb, Math.PI / 2).localGet(t).op("f32x4.sub").localGet(t).localGet(big);
    fb.op("v128.bitselect");
    // restore the sign (abs cleared it; NaN stays NaN)
    fb.localGet(x);
    isplat(fb, -0x80000000).op("v128.and", "v128.or");
  },

  sign(_vm, fb) {
    const x = 0;
    splat(fb, 1).localGet(x).localGet(x);
    splat(fb, 0).op("f32x4.gt", "v128.bitselect");
    fb.localSet(x);
    splat(fb, -1).localGet(x).localGet(x);
    splat(fb, 0).op("f32x4.lt", "v128.bitselect");
  },
};

/** π/2 as P1 + P2 + P3: P1 has 8 significant bits and P2 12, so j·P1 and j·P2 are exact. */
const PIO2_1 = 1.5703125;
const PIO2_2 = 4058 / 2 ** 23;
const PIO2_3 = 7.549790126404332e-8;
const TAN_PI_8 = Math.SQRT2 - 1;
const SIN_COEFFS = [1, -1 / 6, 1 / 120, -1 / 5040, 1 / 362880];
const COS_COEFFS = [1, -1 / 2, 1 / 24, -1 / 720, 1 / 40320, -1 / 3628800];

/** Sets `r = x - j·π/2` (f32 lanes) and `ni = j` (i32 lanes), `j = nearest(x·2/π)`. */
function trigReduce(fb: FunctionBuilder, x: number, r: number, ni: number): void {
  const j = fb.local("v128");
  fb.localGet(x);
  splat(fb, 2 / Math.PI).op("f32x4.mul", "f32x4.nearest").localTee(j);
  fb.op("i32x4.trunc_sat_f32x4_s").localSet(ni);
  fb.localGet(x).localGet(j);
  splat(fb, PIO2_1).op("f32x4.mul", "f32x4.sub");
  fb.localGet(j);
  splat(fb, PIO2_2).op("f32x4.mul", "f32x4.sub");
  fb.localGet(j);
  splat(fb, PIO2_3).op("f32x4.mul", "f32x4.sub").localSet(r);
  // j = 0: r = x exactly (x - 0 would turn -0 into +0)
  fb.localGet(x).localGet(r).localGet(j);
  splat(fb, 0).op("f32x4.eq", "v128.bitselect").localSet(r);
}

/** Pushes sin r for |r| ≤ π/4 (local `r`): r·(1 + z·(-1/6 + ...)), z = r² (keeps -0). */
function sinPoly(vm: VMath, fb: FunctionBuilder, r: number): void {
  const z = fb.local("v128");
  fb.localGet(r).localGet(r).op("f32x4.mul").localSet(z);
  vm.poly(fb, z, SIN_COEFFS);
  fb.localGet(r).op("f32x4.mul");
}

/** Pushes cos r for |r| ≤ π/4 (local `r`). */
function cosPoly(vm: VMath, fb: FunctionBuilder, r: number): void {
  const z = fb.local("v128");
  fb.localGet(r).localGet(r).op("f32x4.mul").localSet(z);
  vm.poly(fb, z, COS_COEFFS);
}

/** sin (`shift` 0) or cos (`shift` 1 = a quarter turn): picks ±sin r or ±cos r by quadrant. */
function trig(vm: VMath, fb: FunctionBuilder, shift: number): void {
  const x = 0, r = fb.local("v128"), ni = fb.local("v128");
  trigReduce(fb, x, r, ni);
  if (shift) {
    fb.localGet(ni);
    isplat(fb, shift).op("i32x4.add").localSet(ni);
  }
  // odd quadrant: cos r, else sin r; then flip the sign where bit 1 of the quadrant is set
  cosPoly(vm, fb, r);
  sinPoly(vm, fb, r);
  fb.localGet(ni);
  isplat(fb, 1).op("v128.and");
  isplat(fb, 0).op("i32x4.ne", "v128.bitselect");
  fb.localGet(ni).i32Const(30).op("i32x4.shl");
  isplat(fb, -0x80000000).op("v128.and", "v128.xor");
  nanBeyondReduction(fb, x);
}

/** Replaces the value on the stack by NaN where |x| ≥ 2^24 (no meaningful reduction there). */
function nanBeyondReduction(fb: FunctionBuilder, x: number): void {
  const v = fb.local("v128");
  fb.localSet(v);
  splat(fb, NaN).localGet(v).localGet(x).op("f32x4.abs");
  splat(fb, 16777216).op("f32x4.ge", "v128.bitselect");
}

function powBody(vm: VMath, fb: FunctionBuilder): void {
  const a = 0, b = 1, res = fb.local("v128"), bint = fb.local("v128"), t = fb.local("v128");
  // magnitude: exp(b·log|a|)
  fb.localGet(a).op("f32x4.abs").call(vm.helper("log")).localGet(b).op("f32x4.mul");
  fb.call(vm.helper("exp")).localSet(res);
  // bint: b is an integer (±Inf included)
  fb.localGet(b).localGet(b).op("f32x4.nearest", "f32x4.eq").localSet(bint);
  // odd: integer, |b| < 2^24, low bit set → flip the sign where a's sign bit is set
  fb.localGet(b).op("i32x4.trunc_sat_f32x4_s").i32Const(31).op("i32x4.shl");
  fb.localGet(bint).op("v128.and");
  fb.localGet(b).op("f32x4.abs");
  splat(fb, 16777216).op("f32x4.lt", "v128.and");
  fb.localGet(a);
  isplat(fb, -0x80000000).op("v128.and", "v128.and");
  fb.localGet(res).op("v128.xor").localSet(res);
  // NaN: -Inf < a < 0 with b not an integer
  fb.localGet(a);
  splat(fb, 0).op("f32x4.lt");
  fb.localGet(a);
  splat(fb, -Infinity).op("f32x4.gt", "v128.and");
  fb.localGet(bint).op("v128.andnot").localSet(t);
  splat(fb, NaN).localGet(res).localGet(t).op("v128.bitselect").localSet(res);
  // b == 0 → 1
  splat(fb, 1).localGet(res).localGet(b);
  splat(fb, 0).op("f32x4.eq", "v128.bitselect");
}
