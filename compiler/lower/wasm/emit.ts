/**
 * Small code-emission helpers shared by the WASM kernel generators.
 *
 * @module
 */
import type { Shape } from "../../../runtime/shape.ts";
import type { FunctionBuilder } from "./encoder.ts";

/**
 * Emits `for (i = 0; i < count; i++) body()` with a fresh i32 counter (nothing when count is 0,
 * the body once when it is 1).
 */
export function repeat(fb: FunctionBuilder, count: number, body: () => void): void {
  if (count <= 0) return;
  if (count === 1) {
    body();
    return;
  }
  const i = fb.local("i32");
  fb.i32Const(0).localSet(i);
  const top = fb.loop();
  body();
  fb.localGet(i).i32Const(1).op("i32.add").localTee(i).i32Const(count).op("i32.lt_u").brIf(top);
  fb.end();
}

/**
 * Emits `body(k)` for the `k` that local `mode` holds, out of `count` (an if/else chain; just
 * `body(0)` when there is one).
 */
export function byMode(
  fb: FunctionBuilder,
  mode: number,
  count: number,
  body: (k: number) => void,
): void {
  if (count <= 1) {
    body(0);
    return;
  }
  for (let k = 0; k < count - 1; k++) {
    fb.localGet(mode).i32Const(k).op("i32.eq").if();
    body(k);
    fb.else();
  }
  body(count - 1);
  for (let k = 0; k < count - 1; k++) fb.end();
}

/** Emits `local += delta` (nothing when delta is 0). */
export function bump(fb: FunctionBuilder, local: number, delta: number): void {
  if (delta === 0) return;
  fb.localGet(local).i32Const(delta).op("i32.add").localSet(local);
}

/** A 1–3-element tuple padded in front with `fill` to three entries (`n` entries when empty). */
export function to3(arr: readonly number[], n: number, fill: number): [number, number, number] {
  const full = arr.length === 0 ? new Array<number>(n).fill(fill) : [...arr];
  const out = [fill, fill, fill, ...full].slice(-3);
  return [out[0], out[1], out[2]];
}

/**
 * The data, weight and output shapes of a channel-first convolution-like node (1 to 3 spatial
 * dims, layout NC..., no zero-sized dim), or undefined when a kernel should decline it.
 */
export function channelFirstShapes(
  inputs: readonly Shape[],
  outputs: readonly Shape[],
  kernel: readonly number[],
  layout: string | null,
): { x: Shape; w: Shape; y: Shape; n: number } | undefined {
  const [x, w] = inputs;
  const y = outputs[0];
  if (x === undefined || w === undefined || y === undefined) return undefined;
  const n = kernel.length;
  if (n < 1 || n > 3 || x.length !== n + 2 || y.length !== n + 2) return undefined;
  if (layout !== null && !layout.startsWith("NC")) return undefined;
  if ([...x, ...y, ...w].some((v) => v < 1)) return undefined;
  return { x, w, y, n };
}
