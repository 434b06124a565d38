/**
 * What a forward pass is running against: its own parameters (eager), a parameter record
 * (the pure-function view), or symbolic variables (tracing for hybridize). Parameters consult
 * this when forward code asks for their value.
 *
 * @module
 */
import type { Symbol } from "../compiler/symbol.ts";
import type { Tensor } from "../runtime/tensor.ts";

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
