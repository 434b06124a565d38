/**
 * The `nd` namespace: tensor creation plus an eager function for every registered op
 * (`nd.Convolution(x, w, b, { kernel: [3, 3], num_filter: 8 })`), each running the op's
 * reference implementation after checking attributes, shapes and dtypes.
 *
 * @module
 */
import * as creation from "../runtime/creation.ts";
import { SigilError } from "../runtime/errors.ts";
import { Tensor } from "../runtime/tensor.ts";
import type { AttrSchema, AttrsInput } from "./attrs.ts";
import { callEager, splitArgs } from "./call.ts";
import type { Engine } from "../compiler/engine.ts";
import { resolveEngine } from "../compiler/engines.ts";
import { recordCall } from "../compiler/autodiff/tape.ts";
import { isRecording } from "../runtime/autograd_state.ts";
import type { AnyOpDef, OpDef, OutputArity } from "./op.ts";
import { type AliasTable, opNames, type OpTable } from "./registry.ts";

/** What an eager call returns for an op's output arity. */
export type NdResult<O extends OutputArity> = O extends "one" ? Tensor
  : O extends "many" ? Tensor[]
  : Tensor | Tensor[];

/** The eager function of an op: tensors, then an optional attribute object. */
export type NdFn<D> = D extends OpDef<infer S extends AttrSchema, readonly string[], infer O> ? {
    (...args: [...inputs: Tensor[], attrs: AttrsInput<S>]): NdResult<O>;
    (...inputs: Tensor[]): NdResult<O>;
  }
  : never;

/** Eager functions for every op name and alias. */
export type NdOps =
  & { readonly [K in keyof OpTable]: NdFn<OpTable[K]> }
  & { readonly [K in keyof AliasTable]: NdFn<AliasTable[K]> };

export { splitArgs };

function eagerFn(op: AnyOpDef) {
  return (...args: unknown[]) => {
    const { values, attrs } = splitArgs(args, (x): x is Tensor => x instanceof Tensor);
    values.forEach((v, i) => {
      if (!(v instanceof Tensor)) {
        throw new SigilError(`nd.${op.name}: argument ${i} is not a Tensor`);
      }
    });
    let given = attrs;
    let explicit: Engine | undefined;
    if (Object.hasOwn(attrs, "engine")) {
      const { engine, ...rest } = attrs;
      explicit = engine as Engine;
      given = rest;
    }
    const engine = resolveEngine(explicit, values[0]?.device);
    const { outputs, attrs: parsed } = callEager(op, values, given, engine);
    if (isRecording()) recordCall(op, values, parsed, outputs);
    const visible = outputs.slice(0, op.numVisibleOutputs(parsed));
    if (op.arity === "one") return visible[0];
    if (op.arity === "many") return visible;
    return visible.length === 1 ? visible[0] : visible;
  };
}

const ops: Record<string, unknown> = {};
for (const [name, def] of opNames()) ops[name] = eagerFn(def);

/**
 * Eager tensor operations and creation functions, as MXNet's `mx.nd`.
 *
 * @example Eager math
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * const x = nd.array([1, 4, 9]);
 * const y = nd._plus_scalar(nd.sqrt(x), { scalar: 1 });
 * assert((await y.data())[2] === 4);
 * ```
 */
export const nd: NdOps & {
  /** See {@link creation.array}. */
  array: typeof creation.array;
  /** See {@link creation.zeros}. */
  zeros: typeof creation.zeros;
  /** See {@link creation.ones}. */
  ones: typeof creation.ones;
  /** See {@link creation.full}. */
  full: typeof creation.full;
  /** See {@link creation.arange}. */
  arange: typeof creation.arange;
  /** Seeded random tensors. */
  random: typeof creation.random;
} = Object.freeze({
  ...(ops as NdOps),
  array: creation.array,
  zeros: creation.zeros,
  ones: creation.ones,
  full: creation.full,
  arange: creation.arange,
  random: creation.random,
});
