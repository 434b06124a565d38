/**
 * MXNet's `autograd` module: record eager calls, then differentiate them. The recorded calls
 * form a graph that {@link backward} differentiates as a graph transform (see
 * compiler/autodiff) and runs on an engine.
 *
 * @module
 */
import { backward, type BackwardOptions } from "../compiler/autodiff/tape.ts";
import { isRecording, isTraining, withAutogradState } from "../runtime/autograd_state.ts";
import type { Tensor } from "../runtime/tensor.ts";

/** Options of {@link autograd.record}. */
export interface RecordOptions {
  /** Training mode while recording (default true, as MXNet's `record(train_mode=True)`). */
  readonly trainMode?: boolean;
}

/**
 * Autograd: `record(fn)` runs `fn` recording the eager calls made on tensors with
 * `attachGrad` (and on parameters); `backward(y)` fills their gradients, as MXNet's
 * `with autograd.record(): ...; y.backward()`. Scopes cover synchronous code.
 *
 * @example Gradient of a dense layer's loss
 * ```ts
 * import assert from "node:assert";
 * import { autograd, nd, nn } from "../mod.ts";
 * const net = new nn.Dense(1, { inUnits: 2 });
 * net.initialize({ seed: 0 });
 * const x = nd.array([[1, 2]]);
 * const loss = autograd.record(() => nd.sum(net.call(x) as never));
 * autograd.backward(loss);
 * const w = net.collectParams().weight;
 * assert.deepStrictEqual(Array.from(w.grad().dataSync(), Number), [1, 2]);
 * ```
 */
export const autograd: {
  /** Runs `fn` recording eager calls (training mode on unless `trainMode: false`). */
  record<T>(fn: () => T, options?: RecordOptions): T;
  /** Runs `fn` without recording (and not in training mode, unless `trainMode: true`). */
  pause<T>(fn: () => T, options?: RecordOptions): T;
  /** Runs `fn` in training mode without recording. */
  trainMode<T>(fn: () => T): T;
  /** Runs `fn` in prediction mode. */
  predictMode<T>(fn: () => T): T;
  /** Whether eager calls are being recorded. */
  isRecording(): boolean;
  /** Whether layers run in training mode. */
  isTraining(): boolean;
  /**
   * Computes the gradients of `heads` (results recorded inside {@link autograd.record}) for
   * every leaf with a gradient slot they depend on, MXNet's `autograd.backward` /
   * `y.backward()`: with `headGrads`, the vector-Jacobian product with them; without, the
   * gradient of the sum of the heads. Slots with `"write"` get the new gradient, `"add"` add
   * it. The recorded graph is released unless `retainGraph`.
   */
  backward(
    heads: Tensor | readonly Tensor[],
    headGrads?: Tensor | readonly Tensor[],
    options?: BackwardOptions,
  ): void;
} = Object.freeze({
  record: <T>(fn: () => T, options: RecordOptions = {}) =>
    withAutogradState(true, options.trainMode ?? true, fn),
  pause: <T>(fn: () => T, options: RecordOptions = {}) =>
    withAutogradState(false, options.trainMode ?? false, fn),
  trainMode: <T>(fn: () => T) => withAutogradState(isRecording(), true, fn),
  predictMode: <T>(fn: () => T) => withAutogradState(isRecording(), false, fn),
  isRecording,
  isTraining,
  backward,
});

export type { BackwardOptions };
