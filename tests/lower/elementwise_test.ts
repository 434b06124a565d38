/**
 * Elementwise WASM kernels and their vector math: accuracy of every VMath function in ulps over
 * wide ranges and special values, every op with a scalar form against its reference, fused
 * expressions, broadcasting, and a fast-check property; both SIMD paths.
 */
import fc from "npm:fast-check@^4";
import { callEager } from "../../ops/call.ts";
import { referenceEngine } from "../../compiler/reference_engine.ts";
import { listOps } from "../../ops/registry.ts";
import { BINARY, printScalar, UNARY, type UnaryFn } from "../../ops/scalar.ts";
import { sym } from "../../compiler/sym.ts";
import type { Symbol } from "../../compiler/symbol.ts";
import type { Shape } from "../../runtime/shape.ts";
import { tensorFromValues, tensorValues } from "../../runtime/tensor.ts";
import { ModuleBuilder, relaxedSimdSupported } from "../../compiler/lower/wasm/encoder.ts";
import { align16, type CompiledKernel } from "../../compiler/lower/wasm/kernel.ts";
import { elementwiseKernel } from "../../compiler/lower/wasm/elementwise.ts";
import { VMath } from "../../compiler/lower/wasm/vmath.ts";
import { assert, assertClose, seededDraw } from "../util.ts";

const PATHS: readonly boolean[] = relaxedSimdSupported() ? [false, true] : [false];
const ANY_OP = sym as unknown as Record<string, (...args: unknown[]) => Symbol>;

// ---------------------------------------------------------------------------------------------
// VMath accuracy

/** A module whose `run(a, b, out, bytes)` applies one function to whole vectors. */
function vmathModule(fn: string, relaxed: boolean, binary: boolean): Uint8Array<ArrayBuffer> {
  const mb = new ModuleBuilder();
  mb.importMemory("env", "memory", { min: 1 });
  const vm = new VMath(mb, relaxed);
  const fb = mb.addFunction(["i32", "i32", "i32", "i32"], [], { export: "run" });
  const i = fb.local("i32");
  fb.block();
  const loop = fb.loop();
  fb.localGet(i).localGet(3).op("i32.ge_u").brIf(1);
  fb.localGet(2).localGet(i).op("i32.add");
  fb.localGet(0).localGet(i).op("i32.add").load("v128.load");
  if (binary) {
    fb.localGet(1).localGet(i).op("i32.add").load("v128.load");
    vm.binary(fb, "pow");
  } else vm.unary(fb, fn as UnaryFn);
  fb.store("v128.store");
  fb.localGet(i).i32Const(16).op("i32.add").localSet(i).br(loop);
  fb.end().end().end();
  return mb.build();
}

/** Spacing of float32 values at |v|. */
function ulp(v: number): number {
  const a = Math.abs(Math.fround(v));
  if (a < 2 ** -126) return 2 ** -149;
  const e = Math.floor(Math.log2(a));
  return 2 ** (Math.fround(a) < 2 ** e ? e - 24 : e - 23);
}

/** The true erf in float64 (power series, or erfc's continued fraction beyond 3). */
function trueErf(x: number): number {
  const z = Math.abs(x);
  let r: number;
  if (z < 3) {
    let sum = 0, term = z;
    for (let k = 0; k < 200; k++) {
      sum += term / (2 * k + 1);
      term *= -z * z / (k + 1);
    }
    r = 2 / Math.sqrt(Math.PI) * sum;
  } else if (Number.isNaN(z)) r = NaN;
  else {
    let cf = 0;
    for (let k = 60; k >= 1; k--) cf = k / 2 / (z + cf);
    r = 1 - Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + cf);
  }
  return x < 0 ? -r : r;
}

function testInputs(seed: number): Float32Array {
  const draw = seededDraw(seed);
  const u = () => draw.int(0, 1 << 30) / (1 << 30);
  const xs: number[] = [0, -0, Infinity, -Infinity, NaN, 1, -1, 2 ** -149, -(2 ** -149), 1e-40];
  xs.push(-1e-40, 3.4028234663852886e38, -3.4028234663852886e38, 88.72, 88.73, -87.3, -103);
  xs.push(-104, 0.5, -0.5, 1e-8, -1e-8, 9, -9, 4, -4, 0.4999, 0.5001, -1 + 1e-7);
  for (let k = 0; k < 12000; k++) xs.push((u() < 0.5 ? -1 : 1) * Math.exp(u() * 190 - 103));
  for (let k = 0; k < 6000; k++) xs.push(u() * 40 - 20);
  for (let k = 0; k < 6000; k++) xs.push(u() * 2 - 1);
  while (xs.length % 4) xs.push(0);
  return Float32Array.from(xs);
}

/** Max ulps of each function (pow: per unit of max(1, |b·ln a|)), as the vmath doc states. */
const ULPS: Readonly<Record<string, number>> = {
  exp: 1,
  log: 1,
  expm1: 1,
  log1p: 2,
  tanh: 2,
  sigmoid: 2,
  erf: 3,
  rsqrt: 1,
  recip: 0,
  sign: 0,
  sqrt: 0,
  square: 0,
  floor: 0,
  ceil: 0,
  abs: 0,
  neg: 0,
  trunc: 0,
  rint: 0,
  round: 0,
  atan: 3,
  pow: 3,
};

for (const relaxed of PATHS) {
  Deno.test(`vmath accuracy in ulps (${relaxed ? "relaxed" : "simd"})`, async () => {
    const xs = testInputs(7);
    const n = xs.length;
    const memory = new WebAssembly.Memory({ initial: Math.ceil((n * 12) / 65536) + 1 });
    const f = new Float32Array(memory.buffer);
    const draw = seededDraw(11);
    const exps = [2, 0.5, -1, 3, -2.5, 1 / 3, 10, 0, -0, NaN, Infinity, -Infinity, 7, -3];
    const ys = Float32Array.from(xs, (_, i) => {
      const b = exps[i % exps.length];
      return i % 5 === 0 ? b * draw.int(1, 400) / 100 : b;
    });
    const measured: string[] = [];
    for (const fn of Object.keys(ULPS)) {
      const binary = fn === "pow";
      const { instance } = await WebAssembly.instantiate(vmathModule(fn, relaxed, binary), {
        env: { memory },
      });
      f.set(xs, 0);
      f.set(ys, n);
      (instance.exports.run as (...p: number[]) => void)(0, n * 4, n * 8, n * 4);
      const ref = fn === "erf" ? trueErf : (UNARY as Record<string, (x: number) => number>)[fn];
      let worst = 0;
      for (let i = 0; i < n; i++) {
        const x = xs[i], y = ys[i];
        const want = Math.fround(binary ? BINARY.pow(x, y) : ref(x));
        const got = f[2 * n + i];
        if (Object.is(want, got) || (want === 0 && got === 0 && fn !== "sign")) continue;
        const where = `${fn}(${x}${binary ? `, ${y}` : ""}) = ${got}, want ${want}`;
        assert.ok(Number.isFinite(want) && Number.isFinite(got), where);
        let e = Math.abs(got - want) / ulp(want);
        if (binary) e /= Math.max(1, Math.abs(y * Math.log(Math.abs(x))));
        assert.ok(e <= ULPS[fn], `${where}: ${e} ulp`);
        worst = Math.max(worst, e);
      }
      measured.push(`${fn} ${worst.toFixed(2)}`);
    }
    assert.ok(measured.length === Object.keys(ULPS).length, measured.join(", "));
  });
}

/** Runs one unary VMath function over `xs`. */
async function runUnary(fn: UnaryFn, relaxed: boolean, xs: Float32Array): Promise<Float32Array> {
  const n = xs.length;
  const memory = new WebAssembly.Memory({ initial: Math.ceil((n * 8) / 65536) + 1 });
  const f = new Float32Array(memory.buffer);
  f.set(xs, 0);
  const { instance } = await WebAssembly.instantiate(vmathModule(fn, relaxed, false), {
    env: { memory },
  });
  (instance.exports.run as (...p: number[]) => void)(0, 0, n * 4, n * 4);
  return f.slice(n, 2 * n);
}

for (const relaxed of PATHS) {
  Deno.test(`vmath sin, cos, tan (${relaxed ? "relaxed" : "simd"})`, async () => {
    // |x| up to 6000 (the documented range): within 3 ulp of the result plus the reduction's
    // absolute error |x|·2^-44 times the derivative (which only matters near tan's poles).
    const draw = seededDraw(23);
    const u = () => draw.int(0, 1 << 30) / (1 << 30);
    const xs: number[] = [0, -0, 1e-40, -1e-40, 1e-8, Math.PI / 2, Math.PI, -Math.PI, 2 * Math.PI];
    xs.push(Math.PI / 4, 0.7853982, 1, -1, 100, 5999);
    for (let k = 0; k < 8000; k++) xs.push((u() < 0.5 ? -1 : 1) * Math.exp(u() * 78 - 69.5));
    for (let k = 0; k < 8000; k++) xs.push(u() * 20 - 10);
    while (xs.length % 4) xs.push(0);
    const input = Float32Array.from(xs);
    const deriv: Record<string, (x: number) => number> = {
      sin: (x) => Math.abs(Math.cos(x)),
      cos: (x) => Math.abs(Math.sin(x)),
      tan: (x) => 1 + Math.tan(x) ** 2,
    };
    for (const fn of ["sin", "cos", "tan"] as const) {
      const got = await runUnary(fn, relaxed, input);
      input.forEach((x, i) => {
        const want = Math.fround(UNARY[fn](x));
        const bound = 3 * ulp(want) + deriv[fn](x) * Math.abs(x) * 2 ** -44;
        const where = `${fn}(${x}) = ${got[i]}, want ${want}`;
        assert.ok(Math.abs(got[i] - want) <= bound, where);
        if (x === 0) assert.ok(Object.is(got[i], fn === "cos" ? 1 : x), `${where}: signed zero`);
      });
      // no meaningful reduction from 2^24 on, and none at all for ±Inf or NaN: NaN
      const far = Float32Array.from([
        2 ** 24,
        -(2 ** 24),
        3e38,
        -3e38,
        Infinity,
        -Infinity,
        NaN,
        0,
      ]);
      const out = await runUnary(fn, relaxed, far);
      out.slice(0, 7).forEach((v, i) => assert.ok(Number.isNaN(v), `${fn}(${far[i]}) = ${v}`));
    }
  });
}

Deno.test("rounding functions at halves: round away from zero, rint to even", async () => {
  const xs = Float32Array.from([0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, -0.49999997]);
  for (const relaxed of PATHS) {
    const round = await runUnary("round", relaxed, xs);
    const rint = await runUnary("rint", relaxed, xs);
    assert.deepEqual([...round], [1, -1, 2, -2, 3, -3, 0, -0]);
    assert.deepEqual([...rint], [0, -0, 2, -2, 2, -2, 0, -0]);
    assert.deepEqual([...round], [...xs].map(UNARY.round));
    assert.deepEqual([...rint], [...xs].map(UNARY.rint));
  }
});

// ---------------------------------------------------------------------------------------------
// Kernels

/** Writes inputs into a fresh memory, runs the kernel, returns the output. */
async function runKernel(
  kernel: CompiledKernel,
  inputs: readonly Float32Array[],
  outSize: number,
): Promise<Float32Array> {
  const offsets: number[] = [];
  let at = 64;
  for (const x of inputs) {
    offsets.push(at);
    at += align16(x.length * 4);
  }
  const outAt = at;
  at += align16(outSize * 4) + 64;
  const memory = new WebAssembly.Memory({ initial: Math.ceil(at / 65536) + 1 });
  const f = new Float32Array(memory.buffer);
  f.fill(NaN);
  inputs.forEach((x, i) => f.set(x, offsets[i] / 4));
  const { instance } = await WebAssembly.instantiate(kernel.bytes, { env: { memory } });
  (instance.exports.run as (...p: number[]) => void)(
    ...offsets,
    outAt,
    ...(kernel.extraArgs ?? []),
  );
  // guard words around the output stay untouched
  assert.ok(Number.isNaN(f[outAt / 4 + align16(outSize * 4) / 4]), "wrote past the output");
  return f.slice(outAt / 4, outAt / 4 + outSize);
}

const size = (s: Shape) => s.reduce((a, b) => a * b, 1);

/** Builds the node, runs the kernel and the reference; false when either declines. */
async function check(
  opName: string,
  attrs: Record<string, unknown>,
  shapes: readonly Shape[],
  values: readonly Float32Array[],
  relaxed: boolean,
  tol: { rtol: number; atol: number },
): Promise<boolean> {
  const op = listOps().find((o) => o.name === opName)!;
  const ref = callEager(
    op,
    values.map((v, i) => tensorFromValues(v, shapes[i], "float32")),
    attrs,
    referenceEngine,
  );
  if (ref.outputs[0].dtype !== "float32") return false;
  const vars = shapes.map((_, i) => sym.var(`x${i}`));
  const node = ANY_OP[opName](...vars, attrs).outputs[0].node;
  const kernel = elementwiseKernel({
    node,
    inputs: shapes,
    outputs: ref.outputs.map((t) => t.shape),
    relaxed,
  });
  if (kernel === undefined) return false;
  assert.match(kernel.label, /^elemwise /);
  const out = ref.outputs[0];
  const got = await runKernel(kernel, values, out.size);
  assertClose(got, tensorValues(out), { ...tol, what: `${opName} ${kernel.label}` });
  return true;
}

function randomValues(seed: number, n: number, positive: boolean): Float32Array {
  const d = seededDraw(seed);
  return Float32Array.from(
    { length: n },
    () => positive ? 0.5 + d.int(0, 10000) / 4000 : (d.int(0, 20000) - 10000) / 3000,
  );
}

const SCALAR_OPS = listOps().filter((op) => op.scalar && op.sample);

for (const relaxed of PATHS) {
  Deno.test(`every op with a scalar form (${relaxed ? "relaxed" : "simd"})`, async () => {
    let ran = 0;
    for (const op of SCALAR_OPS) {
      const draw = seededDraw(op.name.length * 131 + 5);
      let opRan = 0;
      for (let i = 0; i < 24; i++) {
        const x = Array.from({ length: i % 5 }, () => draw.int(1, 7));
        const sample = op.sample!(draw, x);
        if (!sample) continue;
        const values = sample.inputs.map((s, k) =>
          randomValues(i * 17 + k, size(s), sample.positive?.includes(k) ?? false)
        );
        // the fused sampler's random trees: float64 reference vs float32 throughout
        const tol = op.name === "_sigil_fused_elemwise"
          ? { rtol: 1e-4, atol: 1e-5 }
          : { rtol: 1e-5, atol: 1e-6 };
        if (await check(op.name, { ...sample.attrs }, sample.inputs, values, relaxed, tol)) {
          opRan++;
        }
      }
      if (!["Cast", "amp_cast", "Dropout"].includes(op.name)) {
        assert.ok(opRan > 0, `${op.name}: no call ran`);
      }
      ran += opRan;
    }
    assert.ok(ran > 300, `only ${ran} calls ran`);
  });
}

Deno.test("special values through unary kernels", async () => {
  const xs = Float32Array.from([0, -0, Infinity, -Infinity, NaN, 1e-40, -1e-40, 100, -100, 3]);
  for (const relaxed of PATHS) {
    for (const fn of Object.keys(UNARY) as UnaryFn[]) {
      const expr = printScalar({ kind: "unary", fn, a: { kind: "in", index: 0 } });
      assert.ok(
        await check("_sigil_fused_elemwise", { expr }, [[xs.length]], [xs], relaxed, {
          rtol: 1e-5,
          atol: 1e-6,
        }),
        `${expr}: no kernel ran`,
      );
    }
  }
});

Deno.test("broadcasting shapes", async () => {
  const cases: Shape[][] = [
    [[2, 3, 5], [3, 1]],
    [[4, 1, 5], [1, 6, 1]],
    [[7], []],
    [[], [3, 2]],
    [[1, 1], [1]],
    [[3, 9], [3, 9]],
    [[2, 1, 3, 1], [1, 4, 1, 6]],
    [[0, 3], [3]],
    [[5, 4, 3], [4, 1]],
  ];
  for (const relaxed of PATHS) {
    for (const [a, b] of cases) {
      const va = randomValues(1, size(a), false), vb = randomValues(2, size(b), true);
      assert.ok(
        await check("broadcast_add", {}, [a, b], [va, vb], relaxed, { rtol: 1e-6, atol: 0 }),
      );
      const expr = "(select (gt (in 0) (in 1)) (exp (in 0)) (div (in 2) (in 1)))";
      const vc = randomValues(3, size(b), false);
      assert.ok(
        await check("_sigil_fused_elemwise", { expr }, [a, b, b], [va, vb, vc], relaxed, {
          rtol: 1e-5,
          atol: 1e-6,
        }),
      );
    }
  }
});

Deno.test("pow with constant exponents matches Math.pow", async () => {
  const xs = Float32Array.from([0, -0, Infinity, -Infinity, NaN, 2, -2, 0.3, -0.3, 1e-20]);
  for (const c of ["0", "1", "2", "3", "-1", "0.5", "-0.5", "1.5"]) {
    const expr = `(pow (in 0) (const ${c}))`;
    for (const relaxed of PATHS) {
      assert.ok(
        await check("_sigil_fused_elemwise", { expr }, [[xs.length]], [xs], relaxed, {
          rtol: 1e-5,
          atol: 1e-6,
        }),
        `${expr}: no kernel ran`,
      );
    }
  }
});

Deno.test("property: random fused expressions and shapes", async () => {
  const fused = listOps().find((o) => o.name === "_sigil_fused_elemwise")!;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 1 << 30 }),
      fc.array(fc.integer({ min: 1, max: 9 }), { maxLength: 4 }),
      fc.boolean(),
      async (seed, shape, relaxedWanted) => {
        const sample = fused.sample!(seededDraw(seed), shape)!;
        const values = sample.inputs.map((s, k) => randomValues(seed + k, size(s), false));
        const relaxed = relaxedWanted && PATHS.length > 1;
        assert.ok(
          await check(
            "_sigil_fused_elemwise",
            { ...sample.attrs },
            sample.inputs,
            values,
            relaxed,
            {
              rtol: 1e-4,
              atol: 1e-5,
            },
          ),
        );
      },
    ),
    { numRuns: 150, seed: 42 },
  );
});

Deno.test("clamps and selects on comparisons: the reference's bits, -0 and NaN included", async () => {
  const xs = Float32Array.from([
    0,
    -0,
    Infinity,
    -Infinity,
    NaN,
    1e-40,
    -1e-40,
    6,
    6.5,
    -0.5,
    3,
    -7,
    0.25,
    1,
    -1,
    2,
  ]);
  const n = xs.length;
  const cases: [string, Record<string, unknown>][] = [
    ["clip", { a_min: 0, a_max: 6 }],
    ["clip", { a_min: -0.5, a_max: 0.25 }],
    // Bounds the wrong way round: a_max wins above it, a_min below a_min (no clamp form).
    ["clip", { a_min: 1, a_max: -1 }],
    ["clip", { a_min: -0, a_max: 0 }],
    ["_sigil_fused_elemwise", { expr: "(select (lt (in 0) (const 2)) (const 2) (in 0))" }],
    ["_sigil_fused_elemwise", { expr: "(select (gt (in 0) (const -1)) (const -1) (in 0))" }],
    ["_sigil_fused_elemwise", { expr: "(select (ge (in 0) (const 0)) (in 0) (neg (in 0)))" }],
    ["_sigil_fused_elemwise", { expr: "(select (eq (in 0) (const 6)) (const 1) (in 0))" }],
    // A comparison used twice keeps its 1/0 value.
    ["_sigil_fused_elemwise", {
      expr: "(add (select (le (in 0) (const 1)) (in 0) (const 3)) (le (in 0) (const 1)))",
    }],
  ];
  for (const relaxed of PATHS) {
    for (const [opName, attrs] of cases) {
      const op = listOps().find((o) => o.name === opName)!;
      const [ref] = callEager(op, [tensorFromValues(xs, [n], "float32")], attrs, referenceEngine)
        .outputs;
      const node = ANY_OP[opName](sym.var("x"), attrs).outputs[0].node;
      const kernel = elementwiseKernel({ node, inputs: [[n]], outputs: [[n]], relaxed })!;
      const got = await runKernel(kernel, [xs], n);
      const want = tensorValues(ref);
      for (let i = 0; i < n; i++) {
        assert.ok(
          Object.is(got[i], want[i]),
          `${opName} ${JSON.stringify(attrs)} at ${xs[i]}: ${got[i]} != ${want[i]}`,
        );
      }
    }
  }
});
