/**
 * The op registry: every op definition, keyed by MXNet's canonical name, and lookup by name or
 * alias. Each family file under ops/ exports only op definitions, each under its MXNet name;
 * adding an op means writing it in a family file (or a new file imported here).
 *
 * @module
 */
import { UnknownOpError } from "../runtime/errors.ts";
import type { AnyOpDef } from "./op.ts";
import * as activation from "./activation.ts";
import * as batchNorm from "./batch_norm.ts";
import * as binary from "./binary.ts";
import * as cachedOp from "./cached_op.ts";
import * as cast from "./cast.ts";
import * as clip from "./clip.ts";
import * as compare from "./compare.ts";
import * as concat from "./concat.ts";
import * as convolution from "./convolution.ts";
import * as deconvolution from "./deconvolution.ts";
import * as dot from "./dot.ts";
import * as dropout from "./dropout.ts";
import * as embedding from "./embedding.ts";
import * as fullyConnected from "./fully_connected.ts";
import * as fused from "./fused.ts";
import * as indexing from "./indexing.ts";
import * as init from "./init.ts";
import * as math from "./math.ts";
import * as movement from "./movement.ts";
import * as norm from "./norm.ts";
import * as pooling from "./pooling.ts";
import * as reduce from "./reduce.ts";
import * as reshape from "./reshape.ts";
import * as resize from "./resize.ts";
import * as roiPooling from "./roi_pooling.ts";
import * as scalarOps from "./scalar_ops.ts";
import * as softmax from "./softmax.ts";
import * as unary from "./unary.ts";

/** The typed op table: every op definition under its canonical MXNet name. */
export type OpTable = Readonly<
  & typeof activation
  & typeof batchNorm
  & typeof binary
  & typeof cachedOp
  & typeof cast
  & typeof clip
  & typeof compare
  & typeof concat
  & typeof convolution
  & typeof deconvolution
  & typeof dot
  & typeof dropout
  & typeof embedding
  & typeof fullyConnected
  & typeof fused
  & typeof indexing
  & typeof init
  & typeof math
  & typeof movement
  & typeof norm
  & typeof pooling
  & typeof reduce
  & typeof reshape
  & typeof resize
  & typeof roiPooling
  & typeof scalarOps
  & typeof softmax
  & typeof unary
>;

/** Every op, by canonical MXNet name (typed, for the `nd` and `sym` namespaces). */
export const OPS: OpTable = Object.freeze({
  ...activation,
  ...batchNorm,
  ...binary,
  ...cachedOp,
  ...cast,
  ...clip,
  ...compare,
  ...concat,
  ...convolution,
  ...deconvolution,
  ...dot,
  ...dropout,
  ...embedding,
  ...fullyConnected,
  ...fused,
  ...indexing,
  ...init,
  ...math,
  ...movement,
  ...norm,
  ...pooling,
  ...reduce,
  ...reshape,
  ...resize,
  ...roiPooling,
  ...scalarOps,
  ...softmax,
  ...unary,
});

/** Op definitions by alias name (typed). */
export type AliasTable = {
  [K in keyof OpTable as OpTable[K]["aliases"][number]]: OpTable[K];
};

const BY_NAME = new Map<string, AnyOpDef>();
const DEFS: AnyOpDef[] = [];
for (const [key, def] of Object.entries(OPS) as [string, AnyOpDef][]) {
  if (def.name !== key) throw new Error(`op export ${key} does not match op name ${def.name}`);
  DEFS.push(def);
  for (const n of [def.name, ...def.aliases]) {
    if (BY_NAME.has(n)) throw new Error(`op name ${n} registered twice`);
    BY_NAME.set(n, def);
  }
}

/**
 * The op with a canonical name or alias; throws {@link UnknownOpError} naming `where`.
 *
 * @example Resolving an alias
 * ```ts
 * import assert from "node:assert";
 * import { getOp } from "./registry.ts";
 * assert(getOp("identity").name === "_copy");
 * ```
 */
export function getOp(name: string, where?: string): AnyOpDef {
  const def = BY_NAME.get(name);
  if (!def) {
    throw new UnknownOpError(`${where ? `${where}: ` : ""}unknown op '${name}'`);
  }
  return def;
}

/** Whether a name (canonical or alias) is registered. */
export function hasOp(name: string): boolean {
  return BY_NAME.has(name);
}

/** All op definitions, each once. */
export function listOps(): readonly AnyOpDef[] {
  return DEFS;
}

/** All names (canonical and aliases) with their definitions. */
export function opNames(): ReadonlyMap<string, AnyOpDef> {
  return BY_NAME;
}
