/**
 * Test helpers for the neural-network op tests: a tiny seeded {@link Draw}, random shapes, and
 * a loop that runs an op's own sampler, checks each sample against the op's shape rule, and
 * calls the op eagerly on seeded random float64 inputs.
 */
import { nd } from "../../mod.ts";
import { type AnyAttrs, normalizeAttrs } from "../../ops/call.ts";
import type { AnyOpDef } from "../../ops/op.ts";
import type { Shape } from "../../runtime/shape.ts";
import { Tensor, tensorValues } from "../../runtime/tensor.ts";
import { assert, seededDraw } from "../util.ts";

/** One sampled call, already run. */
export interface SampleCase {
  /** The attributes the sampler drew. */
  attrs: Record<string, unknown>;
  /** The parsed attributes. */
  parsed: AnyAttrs;
  /** The input tensors (float64). */
  inputs: Tensor[];
  /** Their values. */
  values: Float64Array[];
  /** The visible outputs of the nd call. */
  outputs: Tensor[];
}

/**
 * Draws `count` shapes of rank in `[minRank, maxRank]` with dims in `[1, maxDim]`, runs
 * `op.sample` on each, checks the sample against `op.inferShape`, runs `nd.<op>` and hands the
 * case to `check`. Returns how many samples were accepted.
 */
export function forEachSample(
  op: AnyOpDef,
  { count, seed, minRank = 1, maxRank = 5, maxDim = 6 }: {
    count: number;
    seed: number;
    minRank?: number;
    maxRank?: number;
    maxDim?: number;
  },
  check: (c: SampleCase) => void,
): number {
  const draw = seededDraw(seed);
  let accepted = 0;
  for (let i = 0; i < count; i++) {
    const rank = draw.int(minRank, maxRank);
    const x: Shape = Array.from({ length: rank }, () => draw.int(1, maxDim));
    const sample = op.sample!(draw, x);
    if (sample === undefined) continue;
    accepted++;
    const attrs = { ...sample.attrs } as Record<string, unknown>;
    const parsed = normalizeAttrs(op, attrs, "sample").attrs;
    const what = `${op.name} sample ${i} ${JSON.stringify(attrs)} ${JSON.stringify(sample.inputs)}`;
    assert.deepEqual(sample.inputs[0], x, what);
    const nOut = op.outputNames(parsed).length;
    const res = op.inferShape(sample.inputs, parsed, new Array(nOut).fill(undefined));
    res.inputs?.forEach((s, k) => {
      if (s !== undefined) assert.deepEqual([...s], [...sample.inputs[k]], `${what}: input ${k}`);
    });
    const inputs = sample.inputs.map((shape, k) =>
      sample.positive?.includes(k)
        ? nd.random.uniform(0.1, 2, shape, { seed: seed * 1000 + i * 10 + k, dtype: "float64" })
        : nd.random.uniform(-1, 1, shape, { seed: seed * 1000 + i * 10 + k, dtype: "float64" })
    );
    const fn = (nd as unknown as Record<string, (...a: unknown[]) => Tensor | Tensor[]>)[op.name];
    const out = fn(...inputs, attrs);
    const outputs = out instanceof Tensor ? [out] : out;
    check({ attrs, parsed, inputs, values: inputs.map(tensorValues), outputs });
  }
  return accepted;
}

/** Row-major strides. */
export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** Every multi-index of a shape, in row-major order. */
export function* indices(shape: readonly number[]): Generator<number[]> {
  const n = shape.reduce((p, d) => p * d, 1);
  const idx = new Array<number>(shape.length).fill(0);
  for (let k = 0; k < n; k++) {
    yield [...idx];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

/** The flat offset of a multi-index. */
export function offset(idx: readonly number[], st: readonly number[]): number {
  let o = 0;
  for (let i = 0; i < idx.length; i++) o += idx[i] * st[i];
  return o;
}
