/**
 * Sizes from attributes: a few hundred bytes of symbol file can describe a tensor of many
 * gigabytes (a padding, a repeat count, a one-hot depth, a weight's `input_dim`). Shape
 * inference checks every shape it settles against the memory budget (`setMaxTensorBytes`)
 * and raises {@link TensorSizeError} before anything is allocated, so the interpreter, the WASM
 * engine, eager calls and SymbolBlock are all protected. tests/hostile_stress.ts measures peak
 * memory on the same files.
 */
import {
  DEFAULT_MAX_TENSOR_BYTES,
  getMaxTensorBytes,
  nd,
  referenceEngine,
  setMaxTensorBytes,
  ShapeError,
  SigilError,
  sym,
  type Symbol,
  SymbolBlock,
  TensorSizeError,
} from "../../mod.ts";
import type { AttrSchema } from "../../ops/attrs.ts";
import { listOps } from "../../ops/registry.ts";
import { applyShapeRule, normalizeAttrs } from "../../ops/call.ts";
import { assert, assertThrowsError, seededDraw } from "../util.ts";

/** Average pooling, kernel 1×1, pad 20000, over a 1×1×1×1 input: a 40001×40001 output. */
export const POOLING_FILE = JSON.stringify({
  nodes: [
    { op: "null", name: "x", attrs: { __shape__: "(1,1,1,1)" }, inputs: [] },
    {
      op: "Pooling",
      name: "p",
      attrs: { kernel: "(1,1)", pad: "(20000,20000)", pool_type: "avg" },
      inputs: [[0, 0, 0]],
    },
  ],
  arg_nodes: [0],
  heads: [[1, 0, 0]],
  attrs: { mxnet_version: ["int", 10901] },
});

async function rejectsSize(p: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  let err: unknown;
  try {
    await p();
  } catch (e) {
    err = e;
  }
  assert(err instanceof TensorSizeError, `expected TensorSizeError, got ${String(err)}`);
  assert.match((err as Error).message, pattern);
}

Deno.test("a 270-byte pooling file that asks for 12.8 GB is refused by every path", async () => {
  assert(POOLING_FILE.length < 300);
  const s = sym.loadJSON(POOLING_FILE);
  const msg = /node 'p' \(Pooling\): output 0 \(1, 1, 40001, 40001\).*over the budget/;
  const e = assertThrowsError(() => s.inferShape({}), TensorSizeError, msg);
  assert(e instanceof ShapeError); // callers catching ShapeError keep working
  assertThrowsError(() => s.inferShapePartial({}), TensorSizeError, msg);
  const x = nd.ones([1, 1, 1, 1]);
  await rejectsSize(() => s.eval({ x }, { engine: referenceEngine }), msg);
  await rejectsSize(() => s.eval({ x }), msg);
  await rejectsSize(
    () => SymbolBlock.imports(new TextEncoder().encode(POOLING_FILE), "x"),
    /over the budget/,
  );
  assertThrowsError(
    () => nd.Pooling(x, { kernel: [1, 1], pad: [20000, 20000], pool_type: "avg" }),
    TensorSizeError,
    /nd\.Pooling: output 0/,
  );
});

/** Ops whose output (or derived weight) size comes from an attribute, on small inputs. */
const CASES: [string, () => Symbol, Record<string, number[]>, RegExp][] = [
  [
    "Convolution kernel and pad (weight)",
    () =>
      sym.Convolution(sym.var("x"), {
        kernel: [40001, 40001],
        pad: [20000, 20000],
        num_filter: 1,
        name: "c",
      }),
    { x: [1, 1, 1, 1] },
    /node 'c'.*input 'weight' \(1, 1, 40001, 40001\)/,
  ],
  [
    "Convolution pad (output)",
    () => sym.Convolution(sym.var("x"), { kernel: [1, 1], pad: [30000, 30000], num_filter: 1 }),
    { x: [1, 1, 1, 1] },
    /output 0 \(1, 1, 60001, 60001\)/,
  ],
  [
    "Deconvolution stride",
    () =>
      sym.Deconvolution(sym.var("x"), { kernel: [1, 1], stride: [40000, 40000], num_filter: 1 }),
    { x: [1, 1, 2, 2] },
    /output 0 \(1, 1, 40001, 40001\)/,
  ],
  [
    "Deconvolution target_shape",
    () =>
      sym.Deconvolution(sym.var("x"), {
        kernel: [1, 1],
        stride: [50000, 50000],
        target_shape: [50000, 50000],
        num_filter: 1,
      }),
    { x: [1, 1, 2, 2] },
    /output 0 \(1, 1, 50000, 50000\)/,
  ],
  [
    "FullyConnected num_hidden (weight)",
    () => sym.FullyConnected(sym.var("x"), { num_hidden: 1_000_000_000, name: "fc" }),
    { x: [1, 10] },
    /input 'weight' \(1000000000, 10\)/,
  ],
  [
    "Embedding input_dim (weight)",
    () => sym.Embedding(sym.var("x"), { input_dim: 1_000_000_000, output_dim: 8 }),
    { x: [4] },
    /input 'weight' \(1000000000, 8\)/,
  ],
  [
    "one_hot depth",
    () => sym.one_hot(sym.var("x"), { depth: 1_000_000_000 }),
    { x: [16] },
    /output 0 \(16, 1000000000\)/,
  ],
  [
    "tile reps",
    () => sym.tile(sym.var("x"), { reps: [100000, 100000] }),
    { x: [1, 1] },
    /output 0 \(100000, 100000\)/,
  ],
  [
    "repeat repeats",
    () => sym.repeat(sym.var("x"), { repeats: 2_000_000_000 }),
    { x: [2] },
    /output 0 \(4000000000,\)/,
  ],
  [
    "broadcast_to shape",
    () => sym.broadcast_to(sym.var("x"), { shape: [100000, 100000] }),
    { x: [1, 1] },
    /output 0 \(100000, 100000\)/,
  ],
  [
    "broadcast_axis size",
    () => sym.broadcast_axis(sym.var("x"), { axis: [0, 1], size: [100000, 100000] }),
    { x: [1, 1] },
    /output 0 \(100000, 100000\)/,
  ],
  [
    "a variable's __shape__",
    () => sym.exp(sym.var("x", { shape: [100000, 100000] })),
    {},
    /node 'x' \(null\): __shape__ \(100000, 100000\)/,
  ],
  [
    "a shape given to inferShape",
    () => sym.exp(sym.var("x")),
    { x: [100000, 100000] },
    /the shape given for 'x' \(100000, 100000\)/,
  ],
];

Deno.test("every op whose size comes from an attribute is bounded", async (t) => {
  for (const [what, build, shapes, pattern] of CASES) {
    await t.step(what, () => {
      assertThrowsError(() => build().inferShape(shapes), TensorSizeError, pattern);
    });
  }
  // And through a file: what the writer printed fails the same way when read back.
  const text = sym.tile(sym.var("x"), { reps: [100000, 100000] }).toJSON();
  assertThrowsError(() => sym.loadJSON(text).inferShape({ x: [1, 1] }), TensorSizeError);
});

Deno.test("the budget is configurable and exact: at the budget passes, one element more fails", () => {
  assert.equal(getMaxTensorBytes(), DEFAULT_MAX_TENSOR_BYTES);
  const previous = setMaxTensorBytes(8 * 100);
  try {
    const to = (shape: number[]) => sym.broadcast_to(sym.var("x"), { shape });
    assert.deepEqual(to([10, 10]).inferShape({ x: [1, 1] }).outShapes, [[10, 10]]);
    assertThrowsError(
      () => to([10, 11]).inferShape({ x: [1, 1] }),
      TensorSizeError,
      /too many elements: 110 \(880 bytes.*budget of 800 bytes/,
    );
    // Unknown dims are checked once known (a dim may turn out to be 0).
    const tiled = sym.tile(sym.var("x"), { reps: [10, 11] });
    assert.deepEqual(tiled.inferShapePartial({ x: [-1, 1] }).outShapes, [[-1, 11]]);
    assert.deepEqual(tiled.inferShape({ x: [0, 1] }).outShapes, [[0, 11]]);
    assertThrowsError(() => tiled.inferShape({ x: [1, 1] }), TensorSizeError);
    // Eager calls are checked too, before the reference or WASM kernel allocates.
    assertThrowsError(() => nd.broadcast_to(nd.ones([1, 1]), { shape: [10, 11] }), TensorSizeError);
    assert.deepEqual(nd.broadcast_to(nd.ones([1, 1]), { shape: [10, 10] }).shape, [10, 10]);
  } finally {
    setMaxTensorBytes(previous);
  }
  for (const bad of [0, -1, 1.5, NaN, Infinity]) {
    assert.throws(() => setMaxTensorBytes(bad), RangeError);
  }
  assert.equal(getMaxTensorBytes(), DEFAULT_MAX_TENSOR_BYTES);
});

const HOSTILE_INTS = ["1000000000", "9007199254740991", "65536", "40000", "0", "-1"];

Deno.test("every registered op: hostile integer attributes end in a typed error or shapes within budget", () => {
  let checked = 0;
  for (const op of listOps()) {
    if (!op.sample) continue;
    for (let seed = 0; seed < 4; seed++) {
      const x = [2, 3, 4, 5].slice(0, 1 + seed);
      const sample = op.sample(seededDraw(seed + 1), x);
      if (!sample) continue;
      for (const [key, spec] of Object.entries(op.attrs as AttrSchema)) {
        if (key === op.variadic) continue;
        const given = sample.attrs[key];
        const len = Array.isArray(given) ? Math.max(1, given.length) : x.length;
        const values = spec.type.startsWith("int")
          ? HOSTILE_INTS
          : spec.type.startsWith("tuple")
          ? HOSTILE_INTS.map((v) => `(${new Array(len).fill(v).join(", ")})`)
          : [];
        for (const value of values) {
          let attrs;
          try {
            attrs = normalizeAttrs(op, { ...sample.attrs, [key]: value }, op.name).attrs;
          } catch (e) {
            assert(e instanceof SigilError, `${op.name} ${key}=${value}: ${e}`);
            continue;
          }
          checked++;
          try {
            const outs = new Array(op.outputNames(attrs).length).fill(undefined);
            const r = applyShapeRule(op, attrs, sample.inputs, outs, op.name);
            for (const s of [...r.inputs, ...r.outputs]) {
              if (s === undefined) continue;
              assert(s.every((d) => Number.isSafeInteger(d) && d >= -1), `${op.name}: ${s}`);
              const n = s.reduce((a, d) => a * Math.max(d, 0), 1);
              assert(n * 8 <= getMaxTensorBytes(), `${op.name} ${key}=${value}: ${s}`);
            }
          } catch (e) {
            assert(e instanceof SigilError, `${op.name} ${key}=${value}: ${e}`);
          }
        }
      }
    }
  }
  assert(checked > 1000, `only ${checked} cases`);
});
