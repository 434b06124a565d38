/**
 * Autograd's state, below the compiler: whether eager calls are being recorded and in which
 * mode, and the gradient slots attached to tensors (`attachGrad`, parameters). The tape and the
 * backward pass live in compiler/autodiff/tape.ts; this module only holds what tensors and
 * parameters need to know.
 *
 * @module
 */
import { SigilError } from "./errors.ts";
import type { Tensor } from "./tensor.ts";

/** How a backward pass writes a gradient: replace it, add to it, or leave it alone. */
export type GradReq = "write" | "add" | "null";

/** Where the gradient of a leaf tensor goes. */
export interface GradSlot {
  /** How the backward pass writes it. */
  readonly req: GradReq;
  /** The current gradient (undefined before the first backward). */
  read(): Tensor | undefined;
  /** Stores a new gradient (already combined with the old one for `add`). */
  write(grad: Tensor): void;
}

const slots = new WeakMap<Tensor, GradSlot>();
let recording = false;
let training = false;

/** Attaches a gradient slot to a tensor (replacing any). */
export function attachSlot(tensor: Tensor, slot: GradSlot): void {
  slots.set(tensor, slot);
}

/** The slot attached to a tensor, if any. */
export function slotOf(tensor: Tensor): GradSlot | undefined {
  return slots.get(tensor);
}

/** Whether eager calls are being recorded for a backward pass. */
export function isRecording(): boolean {
  return recording;
}

/** Whether layers run in training mode (Dropout drops, BatchNorm uses batch statistics). */
export function isTraining(): boolean {
  return training;
}

/** Runs `fn` with the recording and training flags set, restoring them after (sync only). */
export function withAutogradState<T>(rec: boolean, train: boolean, fn: () => T): T {
  if (typeof fn !== "function") throw new SigilError("autograd: expected a function to run");
  const [r, t] = [recording, training];
  recording = rec;
  training = train;
  try {
    const out = fn();
    if (out instanceof Promise) {
      throw new SigilError(
        "autograd scopes run synchronous code only: record the eager calls, then await outside",
      );
    }
    return out;
  } finally {
    recording = r;
    training = t;
  }
}

let trainingSeed = 0;
let drawn = 0;

/**
 * Seeds the stream training-mode layers draw from (Dropout masks): the same seed and the same
 * sequence of calls give the same masks on every run and machine.
 */
export function setTrainingSeed(seed: number): void {
  if (typeof seed !== "number" || !Number.isFinite(seed)) {
    throw new SigilError(`the training seed must be a finite number, got ${String(seed)}`);
  }
  trainingSeed = seed;
  drawn = 0;
}

/** The next seed of the training stream (one per mask drawn). */
export function nextTrainingSeed(): number {
  return (trainingSeed * 0x9e3779b1 + ++drawn) >>> 0;
}
