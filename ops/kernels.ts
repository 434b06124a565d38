/**
 * Helpers shared by the neural-network op families (Convolution, Pooling, FullyConnected,
 * BatchNorm, dot): attribute specs that `attrs.ts` lacks, spatial attribute expansion, layout
 * checks, and the window arithmetic of strided, padded, dilated sliding windows.
 *
 * @module
 */
import { AttributeError } from "../runtime/errors.ts";
import type { AttrSpec } from "./attrs.ts";
import { shapeFail } from "./op.ts";

function parseBool(text: string): boolean {
  const t = text.trim().toLowerCase();
  if (t === "true" || t === "1") return true;
  if (t === "false" || t === "0") return false;
  throw new Error(`'${text}' is not a boolean (True/False/1/0)`);
}

/** An optional boolean (`None` when absent), as dmlc's `optional<bool>`. */
export function boolOrNone(): AttrSpec<boolean | null, false> {
  return Object.freeze({
    type: "bool or None",
    required: false as const,
    default: null,
    parse: (t: string) => (t.trim() === "None" ? null : parseBool(t)),
    print: (v: boolean | null) => (v === null ? "None" : v ? "True" : "False"),
    fromJS: (v: unknown) => {
      if (v === null || v === undefined || v === "None") return null;
      if (typeof v === "boolean") return v;
      if (v === 0 || v === 1) return v === 1;
      if (typeof v === "string") return parseBool(v);
      throw new Error(`${String(v)} is not a boolean`);
    },
  });
}

/**
 * Expands a per-spatial-dim tuple attribute: `()` becomes `fill` repeated `n` times; otherwise
 * its length must be `n`. Throws {@link AttributeError} naming the attribute.
 */
export function spatialTuple(
  value: readonly number[],
  n: number,
  fill: number,
  name: string,
  op: string,
): number[] {
  if (value.length === 0) return new Array<number>(n).fill(fill);
  if (value.length !== n) {
    throw new AttributeError(
      `${op}: ${name} has ${value.length} values but the kernel has ${n} dims`,
    );
  }
  return [...value];
}

/** Channel-first layout names by number of spatial dims. */
const CHANNEL_FIRST = ["", "NCW", "NCHW", "NCDHW"];

/**
 * Checks a layout attribute against the number of spatial dims: `null` and the channel-first
 * layout of that rank pass; channel-last layouts raise a ShapeError (unsupported), as does a
 * channel-first layout of another rank.
 */
export function checkLayout(layout: string | null, spatial: number, op: string): void {
  if (layout === null) return;
  if (!layout.startsWith("NC")) {
    shapeFail(`${op}: layout ${layout} is unsupported (only NCW, NCHW and NCDHW are computed)`);
  }
  if (layout !== CHANNEL_FIRST[spatial]) {
    shapeFail(`${op}: layout ${layout} does not match a ${spatial}-d kernel`);
  }
}

/** Output length of a strided, padded, dilated window sweep, floor convention. */
export function convOutDim(x: number, k: number, s: number, p: number, d: number): number {
  return Math.floor((x + 2 * p - (d * (k - 1) + 1)) / s) + 1;
}

/**
 * Pads `arr` (spatial parameters of 1 to 3 dims) at the front to 3 dims with `fill`, so the
 * kernels can always loop over depth, height and width.
 */
export function to3d(arr: readonly number[], fill: number): [number, number, number] {
  const out = [fill, fill, fill, ...arr].slice(-3);
  return [out[0], out[1], out[2]];
}

/** The divisors of `n` (ascending). */
export function divisors(n: number): number[] {
  const out: number[] = [];
  for (let i = 1; i <= n; i++) if (n % i === 0) out.push(i);
  return out;
}
