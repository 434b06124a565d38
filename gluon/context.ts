/**
 * What a forward pass is running against: its own parameters (eager), a parameter record
 * (the pure-function view), or symbolic variables (tracing for hybridize). Parameters consult
 * this when forward code asks for their value.
 *
 * @module
 */
import type { Symbol } from "../compiler/symbol.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { SigilError } from "../runtime/errors.ts";

/** A value flowing through forward code: a tensor when running, a symbol when tracing. */
export type Value = Tensor | Symbol;

/** Forward is being traced into a graph. */
export interface TraceState {
  /** Discriminant. */
  readonly kind: "trace";
  /** The variable standing for each parameter. */
  readonly vars: Map<object, Symbol>;
  /** Name prefixes of the blocks under the traced root (structural path, `_`-joined). */
  readonly prefixes: Map<object, string>;
  /** The block being traced (nested hybridized blocks become subgraph calls). */
  readonly root: object;
  /**
   * Set when tracing the training-mode graph (a hybridized block called in training mode):
   * layers that train differently add their state updates and random inputs here.
   */
  readonly training?: TrainingTrace;
}

/**
 * What a training-mode trace collects besides the forward outputs: values the run writes back
 * into parameters (BatchNorm's moving statistics) and random inputs drawn for each run
 * (Dropout's uniform noise), both in trace order (the order eager forward code would run in).
 */
export interface TrainingTrace {
  /**
   * Shapes of the traced variables (data inputs and parameters), to size random inputs; the
   * noise inputs join as they are added (so a layer after a Dropout knows its input's shape).
   */
  readonly shapes: Record<string, readonly number[]>;
  /**
   * New parameter values, written after each run (the parameter, or its variable name in a
   * rewritten graph; its new value).
   */
  readonly updates: { readonly target: object | string; readonly value: Symbol }[];
  /** Uniform [0, 1) inputs drawn from the training stream for each run. */
  readonly noise: { readonly name: string; readonly shape: readonly number[] }[];
}

/** The training-mode trace in progress, if any. */
export function trainingTrace(): TrainingTrace | undefined {
  return current?.kind === "trace" ? current.training : undefined;
}

/** The shape of a value traced in training mode (every dim known), for sizing random inputs. */
export function tracedShape(x: Symbol, training: TrainingTrace, who: string): number[] {
  const known: Record<string, readonly number[]> = {};
  for (const name of x.listInputs()) {
    if (Object.hasOwn(training.shapes, name)) known[name] = training.shapes[name];
  }
  const s = x.inferShapePartial(known).outShapes[0];
  if (!s || s.some((d) => d < 0)) {
    throw new SigilError(`${who}: the shape of its input is unknown while tracing for training`);
  }
  return [...s];
}

/** Forward runs with parameter values taken from a record. */
export interface BindState {
  /** Discriminant. */
  readonly kind: "bind";
  /** The tensor for each parameter. */
  readonly values: Map<object, Tensor>;
}

let current: TraceState | BindState | undefined;

/** The active state (undefined: parameters answer with their own data). */
export function forwardState(): TraceState | BindState | undefined {
  return current;
}

/** Runs `fn` with `state` active, restoring the previous state afterwards. */
export function withForwardState<T>(state: TraceState | BindState | undefined, fn: () => T): T {
  const saved = current;
  current = state;
  try {
    return fn();
  } finally {
    current = saved;
  }
}
