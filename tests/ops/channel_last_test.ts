/**
 * Channel-last Convolution and Pooling (NWC, NHWC, NDHWC): MXNet's shapes (weight
 * `(F, *kernel, C/groups)`), and the law that a channel-last op is the channel-first op between
 * transposes, on the reference and on the WASM backend.
 */
import fc from "npm:fast-check@^4";
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { nd, referenceEngine, sym, type Tensor } from "../../mod.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { assert, assertClose } from "../util.ts";

/** Axes moving channels last (`toLast`) or back to axis 1, for a rank. */
function perm(rank: number, toLast: boolean): number[] {
  const sp = Array.from({ length: rank - 2 }, (_, i) => i + 2);
  return toLast ? [0, ...sp, 1] : [0, rank - 1, ...sp.map((a) => a - 1)];
}

Deno.test("Convolution NHWC: MXNet's weight and output shapes", () => {
  const s = sym.Convolution(sym.var("data"), {
    kernel: [3, 3],
    num_filter: 6,
    num_group: 2,
    layout: "NHWC",
    name: "c",
  });
  const r = s.inferShape({ data: [1, 7, 5, 4] });
  assert.deepEqual(r.argShapes, [[1, 7, 5, 4], [6, 3, 3, 2], [6]]);
  assert.deepEqual(r.outShapes, [[1, 5, 3, 6]]);
  const p = sym.Pooling(sym.var("data"), { kernel: [2], stride: [2], layout: "NWC" });
  assert.deepEqual(p.inferShape({ data: [2, 9, 3] }).outShapes, [[2, 4, 3]]);
  const g = sym.Pooling(sym.var("data"), { global_pool: true, layout: "NDHWC" });
  assert.deepEqual(g.inferShape({ data: [2, 4, 5, 6, 3] }).outShapes, [[2, 1, 1, 1, 3]]);
});

const arbCase = fc.record({
  n: fc.integer({ min: 1, max: 3 }),
  batch: fc.integer({ min: 1, max: 2 }),
  c: fc.integer({ min: 1, max: 4 }),
  size: fc.integer({ min: 3, max: 6 }),
  k: fc.integer({ min: 1, max: 3 }),
  s: fc.integer({ min: 1, max: 2 }),
  p: fc.integer({ min: 0, max: 1 }),
  groups: fc.constantFrom(1, 2),
  pool: fc.constantFrom("max", "avg", "sum"),
  global: fc.boolean(),
  seed: fc.integer({ min: 0, max: 1e6 }),
});

Deno.test("property: channel-last Convolution and Pooling are the channel-first ops between transposes", () => {
  const layouts = ["NWC", "NHWC", "NDHWC"];
  fc.assert(
    fc.property(arbCase, (t) => {
      const c = t.c * t.groups;
      const rank = t.n + 2;
      const first = [t.batch, c, ...new Array(t.n).fill(t.size)];
      const x = nd.random.uniform(-1, 1, first, { seed: t.seed });
      const xl = nd.transpose(x, { axes: perm(rank, true) });
      const conv = {
        kernel: new Array(t.n).fill(t.k),
        stride: new Array(t.n).fill(t.s),
        pad: new Array(t.n).fill(t.p),
        num_filter: 2 * t.groups,
        num_group: t.groups,
      };
      const w = nd.random.uniform(-1, 1, [2 * t.groups, t.c, ...conv.kernel], { seed: t.seed + 1 });
      const b = nd.random.uniform(-1, 1, [2 * t.groups], { seed: t.seed + 2 });
      const want = nd.Convolution(x, w, b, conv);
      const wl = nd.transpose(w, { axes: perm(rank, true) });
      const got = nd.Convolution(xl, wl, b, { ...conv, layout: layouts[t.n - 1] });
      assertClose(nd.transpose(got, { axes: perm(rank, false) }), tensorValues(want), {
        rtol: 1e-5,
      });

      const pool = t.global
        ? { global_pool: true, pool_type: t.pool }
        : { kernel: conv.kernel, stride: conv.stride, pad: conv.pad, pool_type: t.pool };
      const pw = nd.Pooling(x, pool);
      const pl = nd.Pooling(xl, { ...pool, layout: layouts[t.n - 1] });
      assertClose(nd.transpose(pl, { axes: perm(rank, false) }), tensorValues(pw), { rtol: 1e-5 });

      // the WASM backend: channel-last pooling of 1-D and 2-D data is a kernel
      const sy = sym.Pooling(sym.var("x"), { ...pool, layout: layouts[t.n - 1] });
      const program = compileWasm(sy, {}, { x: xl.shape }, { threads: 1 });
      const [out] = program.run({ x: xl });
      assertClose(out, tensorValues(pl), { rtol: 1e-5, atol: 1e-6 });
      assert.equal(program.placement[0].how, t.n < 3 ? "kernel" : "fallback");
      program.dispose();
    }),
    { numRuns: 60 },
  );
});

Deno.test("channel-last Convolution compiles (its reference runs as a listed fallback step)", async () => {
  const y = sym.Convolution(sym.var("x"), {
    kernel: [3, 3],
    num_filter: 4,
    pad: [1, 1],
    layout: "NHWC",
    name: "c",
  });
  const params = {
    c_weight: nd.random.uniform(-1, 1, [4, 3, 3, 2], { seed: 1 }),
    c_bias: nd.zeros([4]),
  };
  const program = compileWasm(y, params, { x: [1, 5, 5, 2] });
  assert.deepEqual(program.placement.map((p) => p.how), ["fallback"]);
  const x = nd.random.uniform(-1, 1, [1, 5, 5, 2], { seed: 2 });
  const [got] = program.run({ x });
  const [want] = await y.eval({ x, ...params }, { engine: referenceEngine });
  assertClose(got, (want as Tensor).dataSync() as unknown as number[], { rtol: 1e-5, atol: 1e-6 });
  program.dispose();
});
