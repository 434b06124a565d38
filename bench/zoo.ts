/**
 * What the whole-model benches share: their command-line arguments, medians, and a model zoo
 * network traced with random weights at batch 1, 224×224, with a fixed input.
 *
 * @module
 */
import * as current from "../mod.ts";
import type { Api } from "./before.ts";

/** The value after `--<name>` on the command line, else `fallback`. */
export function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

/** The median of `xs` (the upper one of an even count). */
export function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[xs.length >> 1];
}

/** The input shape of the zoo's vision models here: batch 1, 224×224. */
export const ZOO_SHAPE: readonly number[] = [1, 3, 224, 224];

/** A fixed input of {@link ZOO_SHAPE}. */
export function zooInput(): Float32Array {
  return new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i) * 0.5);
}

/**
 * A zoo model traced over `data` with its random weights (seed 1) bound by name, built with
 * `api` (this checkout's by default; another build's for A/B benches).
 */
export function tracedZooModel(
  name: string,
  api: Api = current,
): { symbol: current.Symbol; params: Record<string, current.Tensor> } {
  const net = api.modelZoo.vision.getModel(name);
  net.initialize({ seed: 1 });
  net.inferShape(api.nd.zeros(ZOO_SHAPE));
  const traced = net.trace([api.sym.var("data")]);
  const params: Record<string, current.Tensor> = {};
  for (const [n, p] of traced.params) params[n] = p.data() as current.Tensor;
  return { symbol: traced.symbol as current.Symbol, params };
}
