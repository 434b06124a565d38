/**
 * A differential checker: two graphs are equivalent when the reference interpreter gives them
 * the same outputs, within tolerance, on the same seeded random inputs. This is how passes,
 * importers and backends are tested against each other.
 *
 * @module
 */
import { evaluate } from "../compiler/interpreter.ts";
import type { Symbol } from "../compiler/symbol.ts";
import { random } from "../runtime/creation.ts";
import { type DType, dtypeInfo } from "../runtime/dtype.ts";
import { SigilError } from "../runtime/errors.ts";
import { uniformValues } from "../runtime/random.ts";
import { formatShape, isKnownShape, type Shape, shapeSize, stridesOf } from "../runtime/shape.ts";
import { type Tensor, tensorFromValues, tensorValues } from "../runtime/tensor.ts";

/**
 * Thrown by {@link assertGraphsEquivalent} when two graphs differ (named `AssertionError`, as
 * test runners and `@std/assert` name assertion failures).
 *
 * @example Telling a mismatch from a usage error
 * ```ts
 * import { sym } from "../mod.ts";
 * import { AssertionError, assertGraphsEquivalent } from "./mod.ts";
 * const x = sym.var("x");
 * let caught: unknown;
 * try {
 *   assertGraphsEquivalent(sym.exp(x), sym.negative(x), { inputShapes: { x: [2] } });
 * } catch (e) {
 *   caught = e;
 * }
 * if (!(caught instanceof AssertionError)) throw new Error("exp and negative should differ");
 * ```
 */
export class AssertionError extends Error {
  /** Creates an assertion error with a message. */
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

/** Options of {@link assertGraphsEquivalent}. */
export interface EquivalenceOptions {
  /** Input shapes by name; inferred from the first graph (`__shape__` attributes) when absent. */
  inputShapes?: Readonly<Record<string, readonly number[]>>;
  /** Input dtypes by name; inferred from the first graph (`__dtype__`), else float32. */
  inputTypes?: Readonly<Record<string, DType>>;
  /** Relative tolerance (default 1e-4). */
  rtol?: number;
  /** Absolute tolerance (default 1e-5). */
  atol?: number;
  /** How many random input sets to try (default 3). */
  trials?: number;
  /** The seed of the random inputs (default 0). */
  seed?: number;
  /** Names of inputs that must hold positive values: they get values in [0.5, 2]. */
  positive?: Iterable<string>;
}

function difference(a: readonly string[], b: readonly string[]): string[] {
  const bs = new Set(b);
  return a.filter((n) => !bs.has(n));
}

/** Shapes of every input of `symbol`, from the given ones and shape inference. */
function inputShapesOf(
  symbol: Symbol,
  given: Readonly<Record<string, readonly number[]>>,
): Map<string, Shape> {
  const names = symbol.listInputs();
  const known: Record<string, readonly number[]> = {};
  for (const n of names) if (Object.hasOwn(given, n)) known[n] = given[n];
  const { argShapes, auxShapes } = symbol.inferShapePartial(known);
  const out = new Map<string, Shape>();
  const unknown: string[] = [];
  const collect = (list: readonly string[], shapes: readonly (Shape | undefined)[]) =>
    list.forEach((n, i) => {
      const s = shapes[i];
      if (isKnownShape(s)) out.set(n, s);
      else unknown.push(`${n} ${formatShape(s)}`);
    });
  collect(symbol.listArguments(), argShapes);
  collect(symbol.listAuxiliaryStates(), auxShapes);
  if (unknown.length) {
    throw new SigilError(
      `assertGraphsEquivalent: cannot infer the shapes of ${unknown.join(", ")}; pass inputShapes`,
    );
  }
  return out;
}

/** Dtypes of every input of `symbol`: given, inferred, else float32. */
function inputTypesOf(symbol: Symbol, given: Readonly<Record<string, DType>>): Map<string, DType> {
  const known: Record<string, DType> = {};
  for (const n of symbol.listInputs()) if (Object.hasOwn(given, n)) known[n] = given[n];
  const { argTypes, auxTypes } = symbol.inferTypePartial(known);
  const out = new Map<string, DType>();
  symbol.listArguments().forEach((n, i) => out.set(n, argTypes[i] ?? "float32"));
  symbol.listAuxiliaryStates().forEach((n, i) => out.set(n, auxTypes[i] ?? "float32"));
  return out;
}

/** A seeded random tensor: floats in [-1, 1] ([0.5, 2] when positive), small integers else. */
function randomInput(shape: Shape, dtype: DType, positive: boolean, seed: number): Tensor {
  if (dtypeInfo(dtype).isFloat) {
    return positive
      ? random.uniform(0.5, 2, shape, { seed, dtype })
      : random.uniform(-1, 1, shape, { seed, dtype });
  }
  const n = shapeSize(shape);
  if (dtype === "bool") {
    const bits = uniformValues(seed, n, 0, 1).map((v) => (positive || v >= 0.5 ? 1 : 0));
    return tensorFromValues(bits, shape, dtype);
  }
  const lo = positive ? 1 : dtype === "uint8" ? 0 : -3;
  const values = uniformValues(seed, n, lo, 3.999).map(Math.floor);
  return tensorFromValues(values, shape, dtype);
}

/** The multi-index of flat element `i` of a shape, as `[1, 0, 2]`. */
function indexOf(i: number, shape: Shape): string {
  const strides = stridesOf(shape);
  return `[${strides.map((s, d) => Math.floor(i / s) % shape[d]).join(", ")}]`;
}

/**
 * Asserts that two graphs compute the same function. Both must have the same set of inputs
 * (variables, by name). Random finite inputs (seeded, so a failure replays) are bound to both
 * by name, both are run by the reference interpreter, and every output element must agree
 * within `atol + rtol * |b|` (NaN equals NaN). Throws an {@link AssertionError} naming the
 * output, the element, both values and the tolerance; a {@link SigilError} when input shapes
 * cannot be inferred. Returns nothing on success.
 *
 * @example A rewrite that preserves meaning
 * ```ts
 * import { sym } from "../mod.ts";
 * import { assertGraphsEquivalent } from "./mod.ts";
 * const x = sym.var("x", { shape: [2, 3] });
 * const a = sym._mul_scalar(x, { scalar: 2 });
 * const b = sym.elemwise_add(x, x);
 * assertGraphsEquivalent(a, b);
 * ```
 */
export function assertGraphsEquivalent(
  a: Symbol,
  b: Symbol,
  options: EquivalenceOptions = {},
): void {
  const { rtol = 1e-4, atol = 1e-5, trials = 3, seed = 0 } = options;
  const names = a.listInputs();
  const onlyA = difference(names, b.listInputs());
  const onlyB = difference(b.listInputs(), names);
  if (onlyA.length || onlyB.length) {
    throw new AssertionError(
      `the graphs have different inputs: only in the first: [${
        onlyA.join(", ")
      }]; only in the second: [${onlyB.join(", ")}]`,
    );
  }
  if (a.numOutputs !== b.numOutputs) {
    throw new AssertionError(`the graphs have ${a.numOutputs} and ${b.numOutputs} outputs`);
  }
  const shapes = inputShapesOf(a, options.inputShapes ?? {});
  const types = inputTypesOf(a, options.inputTypes ?? {});
  const positive = new Set(options.positive ?? []);
  const outNames = a.listOutputs();
  for (let trial = 0; trial < trials; trial++) {
    const bindings: Record<string, Tensor> = {};
    names.forEach((n, k) => {
      const s = (seed * 7919 + trial) * 104729 + k;
      bindings[n] = randomInput(shapes.get(n)!, types.get(n)!, positive.has(n), s);
    });
    const outsA = evaluate(a, bindings);
    const outsB = evaluate(b, bindings);
    const where = (o: number) => `output ${o} (${outNames[o]}), trial ${trial} of seed ${seed}`;
    outsA.forEach((x, o) => {
      const y = outsB[o];
      if (formatShape(x.shape) !== formatShape(y.shape) || x.dtype !== y.dtype) {
        throw new AssertionError(
          `${where(o)}: ${x.dtype} ${formatShape(x.shape)} vs ${y.dtype} ${formatShape(y.shape)}`,
        );
      }
      const xv = tensorValues(x);
      const yv = tensorValues(y);
      for (let i = 0; i < xv.length; i++) {
        const p = xv[i];
        const q = yv[i];
        if (p === q || (Number.isNaN(p) && Number.isNaN(q))) continue;
        if (Math.abs(p - q) <= atol + rtol * Math.abs(q)) continue;
        throw new AssertionError(
          `${where(o)}: element ${i} ${
            indexOf(i, x.shape)
          } is ${p} in the first graph and ${q} in the second; ` +
            `|difference| ${
              Math.abs(p - q)
            } exceeds atol + rtol * |second| (atol ${atol}, rtol ${rtol})`,
        );
      }
    });
  }
}
