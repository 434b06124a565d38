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
import { type Tensor, tensorFromValues, tensorValues } from "../runtime/tensor.ts";

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
/** Channel-last layout names by number of spatial dims. */
const CHANNEL_LAST = ["", "NWC", "NHWC", "NDHWC"];

/**
 * Checks a layout attribute against the number of spatial dims and says whether it is
 * channel-last: `null` and the channel-first layout of that rank pass; the channel-last one
 * passes where `channelLast` is allowed (Convolution, Pooling) and is a ShapeError otherwise
 * (unsupported), as is a layout of another rank.
 */
export function checkLayout(
  layout: string | null,
  spatial: number,
  op: string,
  { channelLast = false }: { channelLast?: boolean } = {},
): boolean {
  if (layout === null) return false;
  const last = !layout.startsWith("NC");
  if (last && !channelLast) {
    shapeFail(`${op}: layout ${layout} is unsupported (only NCW, NCHW and NCDHW are computed)`);
  }
  if (layout !== (last ? CHANNEL_LAST : CHANNEL_FIRST)[spatial]) {
    shapeFail(`${op}: layout ${layout} does not match a ${spatial}-d kernel`);
  }
  return last;
}

/** Whether a layout attribute names a channel-last layout (NWC, NHWC, NDHWC). */
export function isChannelLast(layout: string | null): boolean {
  return layout !== null && !layout.startsWith("NC");
}

/** A channel-last shape `(N, *spatial, C)` as channel-first `(N, C, *spatial)` (unknown kept). */
export function lastToFirst<T extends readonly number[] | undefined>(s: T): T {
  if (s === undefined || s.length < 2) return s;
  return [s[0], s[s.length - 1], ...s.slice(1, -1)] as unknown as T;
}

/** A channel-first shape `(N, C, *spatial)` as channel-last `(N, *spatial, C)`. */
export function firstToLast<T extends readonly number[] | undefined>(s: T): T {
  if (s === undefined || s.length < 2) return s;
  return [s[0], ...s.slice(2), s[1]] as unknown as T;
}

/** Moves axis 1 of a tensor to the end (`toLast`) or the last axis to 1, in float64 values. */
export function moveChannels(x: Tensor, toLast: boolean): Tensor {
  const shape = x.shape;
  const out = toLast ? firstToLast(shape) : lastToFirst(shape);
  const v = tensorValues(x);
  const res = new Float64Array(v.length);
  const n = shape[0];
  const c = toLast ? shape[1] : shape[shape.length - 1];
  const sp = v.length / Math.max(1, n * c);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < sp; p++) {
        const first = (b * c + ch) * sp + p, last = (b * sp + p) * c + ch;
        if (toLast) res[last] = v[first];
        else res[first] = v[last];
      }
    }
  }
  return tensorFromValues(res, out, x.dtype);
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
