/**
 * Generated sgemm kernels against a naive float64 matmul, on both multiply-add paths.
 *
 * Tolerance: |c - ref| <= rtol · Σ_p |a_ip·b_pj| with rtol 1e-4, i.e. rtol taken relative to
 * the magnitude of the terms of each dot product, since a plain per-element rtol is
 * meaningless where random signs cancel to near zero.
 */
import fc from "npm:fast-check@^4";
import { relaxedSimdSupported } from "../../compiler/lower/wasm/encoder.ts";
import { ModuleBuilder } from "../../compiler/lower/wasm/encoder.ts";
import {
  emitSgemm,
  generateSgemm,
  instantiateSgemm,
  packLayoutA,
  packSgemmA,
  packSgemmB,
  type SgemmOptions,
  type SgemmPath,
  type SgemmTile,
} from "../../compiler/lower/wasm/sgemm.ts";
import { BackendError, ShapeError } from "../../runtime/errors.ts";
import { assert, assertThrowsError } from "../util.ts";

const RTOL = 1e-4;

/** Paths this runtime can run; prints why the relaxed one is skipped. */
function paths(): SgemmPath[] {
  if (relaxedSimdSupported()) return ["relaxed", "simd"];
  console.log("relaxed path skipped: WebAssembly.validate rejects f32x4.relaxed_madd here");
  return ["simd"];
}

/** mulberry32, so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Case {
  m: number;
  n: number;
  k: number;
  alpha?: number;
  bias?: boolean;
  path: SgemmPath;
  tile?: Partial<SgemmTile>;
  seed?: number;
}

/** Runs one kernel and checks it against float64; returns the worst error ratio. */
function check(c: Case, extra: Partial<SgemmOptions> = {}): void {
  const { m, n, k } = c;
  const alpha = c.alpha ?? 1;
  const kernel = generateSgemm({
    m,
    n,
    k,
    alpha,
    bias: c.bias,
    path: c.path,
    tile: c.tile,
    ...extra,
  });
  assert.equal(kernel.path, c.path);
  const memory = extra.memory === "import"
    ? new WebAssembly.Memory({
      initial: kernel.layout.pages,
      maximum: extra.shared ? kernel.layout.pages : undefined,
      shared: extra.shared ?? false,
    })
    : undefined;
  const g = instantiateSgemm(kernel, memory);
  const rand = rng(c.seed ?? m * 7919 + n * 104729 + k);
  for (let i = 0; i < g.a.length; i++) g.a[i] = rand() * 2 - 1;
  for (let i = 0; i < g.b.length; i++) g.b[i] = rand() * 2 - 1;
  if (g.bias) { for (let i = 0; i < n; i++) g.bias[i] = rand() * 4 - 2; }
  g.c.fill(NaN); // the kernel must overwrite C, not accumulate into it
  g.run();
  const ref = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const x = g.a[i * k + p];
      for (let j = 0; j < n; j++) {
        const y = x * g.b[p * n + j];
        ref[i * n + j] += y;
        mag[i * n + j] += Math.abs(y);
      }
    }
  }
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const at = i * n + j;
      const b = g.bias ? g.bias[j] : 0;
      const want = alpha * ref[at] + b;
      const scale = Math.abs(alpha) * mag[at] + Math.abs(b);
      const got = g.c[at];
      if (!(Math.abs(got - want) <= RTOL * scale + 1e-30)) {
        throw new assert.AssertionError({
          message: `${c.path} ${m}x${n}x${k} tile ${JSON.stringify(kernel.tile)}: ` +
            `C[${i},${j}] = ${got}, want ${want} (scale ${scale})`,
        });
      }
    }
  }
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [64, 64, 64],
  [65, 33, 17],
  [1, 100, 3],
  [100, 1, 3],
  [3, 5, 300],
  [6, 8, 4],
  [12, 16, 300],
  [97, 131, 263],
];

for (const path of paths()) {
  Deno.test(`sgemm ${path}: fixed shapes match float64`, () => {
    for (const [m, n, k] of SHAPES) check({ m, n, k, path });
  });

  Deno.test(`sgemm ${path}: 256x256x256 matches float64`, () => {
    check({ m: 256, n: 256, k: 256, path });
  });

  Deno.test(`sgemm ${path}: alpha and bias across several K and M blocks`, () => {
    const tile = { kc: 8, mc: 12 };
    check({ m: 29, n: 21, k: 37, alpha: -0.5, bias: true, path, tile });
    check({ m: 29, n: 21, k: 37, alpha: 3, path, tile });
    check({ m: 5, n: 3, k: 2, bias: true, path });
  });

  Deno.test(`sgemm ${path}: random shapes and tiles (property)`, () => {
    fc.assert(
      fc.property(
        fc.record({
          m: fc.integer({ min: 1, max: 40 }),
          n: fc.integer({ min: 1, max: 40 }),
          k: fc.integer({ min: 1, max: 40 }),
          alpha: fc.constantFrom(1, 1, -2, 0.25),
          bias: fc.boolean(),
          mr: fc.integer({ min: 1, max: 8 }),
          nr: fc.constantFrom(4, 8, 12, 16),
          kc: fc.integer({ min: 1, max: 48 }),
          mc: fc.integer({ min: 1, max: 48 }),
          unroll: fc.integer({ min: 1, max: 8 }),
          seed: fc.integer({ min: 0, max: 2 ** 31 }),
        }),
        (r) => {
          const { m, n, k, alpha, bias, seed } = r;
          const tile = { mr: r.mr, nr: r.nr, kc: r.kc, mc: r.mc, unroll: r.unroll };
          check({ m, n, k, alpha, bias, path, tile, seed });
        },
      ),
      { numRuns: 60 },
    );
  });
}

Deno.test("sgemm: imported (shared) memory at a base offset", () => {
  const [path] = paths();
  check({ m: 9, n: 10, k: 11, path, bias: true }, { memory: "import", base: 128 });
  if (typeof SharedArrayBuffer !== "undefined") {
    check({ m: 9, n: 10, k: 11, path }, { memory: "import", shared: true, base: 64 });
  }
});

Deno.test("sgemm: packB once, compute many times", () => {
  const [path] = paths();
  const g = instantiateSgemm(generateSgemm({ m: 2, n: 5, k: 3, path }));
  g.b.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
  g.packB();
  g.b.fill(0); // compute reads the packed copy only
  g.a.set([1, 0, 0, 0, 1, 0]);
  g.compute();
  assert.deepStrictEqual([...g.c], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  g.a.set([0, 0, 1, 1, 1, 1]);
  g.compute();
  assert.deepStrictEqual([...g.c], [11, 12, 13, 14, 15, 18, 21, 24, 27, 30]);
});

Deno.test("sgemm: layout regions are aligned and disjoint", () => {
  const k = generateSgemm({ m: 33, n: 17, k: 9, bias: true, base: 640, path: "simd" });
  const { a, b, bias, c, packedA, packedB, end } = k.layout;
  const regions: [number, number][] = [
    [a, 33 * 9 * 4],
    [b, 9 * 17 * 4],
    [bias!, 17 * 4],
    [c, 33 * 17 * 4],
    [packedB, k.layout.packedBBytes],
    [packedA, k.layout.packedABytes],
  ];
  assert.equal(a, 640);
  for (const [at] of regions) assert.equal(at % 64, 0, `region at ${at} is 64-aligned`);
  regions.sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < regions.length; i++) {
    assert(regions[i - 1][0] + regions[i - 1][1] <= regions[i][0], "regions overlap");
  }
  assert(end >= packedA + k.layout.packedABytes + 16);
  assert.equal(k.layout.pages, Math.ceil(end / 65536));
  assert.equal(k.flops, 2 * 33 * 17 * 9);
  assert(WebAssembly.validate(k.bytes));
});

Deno.test("sgemm: both paths generate valid modules whatever this runtime supports", () => {
  const r = generateSgemm({ m: 8, n: 8, k: 8, path: "relaxed" });
  const s = generateSgemm({ m: 8, n: 8, k: 8, path: "simd" });
  assert.equal(r.path, "relaxed");
  assert.equal(s.path, "simd");
  assert(WebAssembly.validate(s.bytes));
  assert.equal(WebAssembly.validate(r.bytes), relaxedSimdSupported());
  const auto = generateSgemm({ m: 8, n: 8, k: 8 });
  assert.equal(auto.path, relaxedSimdSupported() ? "relaxed" : "simd");
});

Deno.test("sgemm: bad options give typed errors", () => {
  assertThrowsError(() => generateSgemm({ m: 0, n: 1, k: 1 }), ShapeError, /m must be/);
  assertThrowsError(() => generateSgemm({ m: 1, n: 1.5, k: 1 }), ShapeError, /n must be/);
  assertThrowsError(
    () => generateSgemm({ m: 1, n: 1, k: 1, tile: { nr: 6 } }),
    ShapeError,
    /multiple of 4/,
  );
  assertThrowsError(() => generateSgemm({ m: 1, n: 1, k: 1, base: 8 }), ShapeError, /base/);
  assertThrowsError(
    () => generateSgemm({ m: 40000, n: 40000, k: 40000 }),
    ShapeError,
    /more than wasm32 allows/,
  );
  assertThrowsError(
    () => generateSgemm({ m: 1, n: 1, k: 1, path: "avx" as SgemmPath }),
    BackendError,
    /unknown path/,
  );
  const imported = generateSgemm({ m: 1, n: 1, k: 1, memory: "import", path: "simd" });
  assertThrowsError(() => instantiateSgemm(imported), BackendError, /imports its memory/);
});

/** Runs an emitSgemm product with the given A and B arrays (as stored) in a fresh memory. */
function runEmitted(
  opts: import("../../compiler/lower/wasm/sgemm.ts").SgemmCallOptions,
  a: Float32Array,
  b: Float32Array,
  cLen: number,
): Float32Array {
  const mb = new ModuleBuilder();
  mb.importMemory("env", "memory", { min: 1 });
  const call = emitSgemm(mb, opts);
  const run = mb.addFunction(["i32", "i32", "i32", "i32", "i32"], [], { export: "run" });
  for (let i = 0; i < 5; i++) run.localGet(i);
  run.call(call.fn).end();
  const aAt = 64;
  const bAt = aAt + Math.ceil(a.length / 16) * 64 + 64;
  const cAt = bAt + Math.ceil(b.length / 16) * 64 + 64;
  const sAt = cAt + Math.ceil(cLen / 16) * 64 + 64;
  const guard = sAt + Math.ceil(call.scratchBytes / 16) * 16;
  const bytes = guard + 4096;
  const memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / 65536) + 1 });
  const f = new Float32Array(memory.buffer);
  f.set(a, aAt / 4);
  f.set(b, bAt / 4);
  f.fill(7, guard / 4, guard / 4 + 1024);
  const inst = new WebAssembly.Instance(new WebAssembly.Module(mb.build()), { env: { memory } });
  (inst.exports.run as (...p: number[]) => void)(aAt, bAt, 0, cAt, sAt);
  assert.ok(f.subarray(guard / 4, guard / 4 + 1024).every((v) => v === 7), "wrote past scratch");
  return f.slice(cAt / 4, cAt / 4 + cLen);
}

Deno.test("sgemm: prepacked constant A and B give the packing-at-run-time bits (property)", () => {
  const [path] = paths();
  fc.assert(
    fc.property(
      fc.record({
        m: fc.integer({ min: 1, max: 30 }),
        n: fc.integer({ min: 1, max: 30 }),
        k: fc.integer({ min: 1, max: 30 }),
        transA: fc.boolean(),
        transB: fc.boolean(),
        mr: fc.integer({ min: 1, max: 6 }),
        nr: fc.constantFrom(4, 8),
        kc: fc.integer({ min: 1, max: 20 }),
        mc: fc.integer({ min: 1, max: 20 }),
        seed: fc.integer({ min: 0, max: 2 ** 31 }),
      }),
      (r) => {
        const { m, n, k, transA, transB } = r;
        const next = rng(r.seed);
        const a = Float32Array.from({ length: m * k }, () => next() * 2 - 1);
        const b = Float32Array.from({ length: k * n }, () => next() * 2 - 1);
        const tile = { mr: r.mr, nr: r.nr, kc: r.kc, mc: r.mc };
        const opts = { m, n, k, transA, transB, path, tile };
        const want = runEmitted(opts, a, b, m * n);
        const pa = packSgemmA(a, opts);
        const pb = packSgemmB(b, opts);
        // The layout packLayoutA describes is the one packSgemmA writes (A row-major here).
        if (!transA) {
          const l = packLayoutA(opts);
          for (let i = 0; i < m; i++) {
            for (let c = 0; c < k; c++) {
              const at = l.col[c] + l.rowStart[i] * l.colBlock[c] + l.colIn[c] * l.rowPanel[i] +
                l.rowIn[i];
              assert.equal(pa[at], a[i * k + c]);
            }
          }
        }
        // Packing into a caller's (longer, dirty) buffer writes the same values in its front.
        const into = new Float32Array(m * k + 3).fill(7);
        assert.strictEqual(packSgemmA(a, opts, into), into);
        assert.deepEqual(into.subarray(0, m * k), pa);
        assert.deepEqual([...into.subarray(m * k)], [7, 7, 7]);
        for (const [ua, ub] of [[true, false], [false, true], [true, true]]) {
          const got = runEmitted(
            { ...opts, prepackedA: ua, prepackedB: ub },
            ua ? pa : a,
            ub ? pb : b,
            m * n,
          );
          assert.deepEqual(got, want, `prepacked A ${ua}, B ${ub}`);
        }
      },
    ),
    { numRuns: 80 },
  );
});
