/**
 * Optimization constraints: MXNet 2.x's `HybridBlock.OptConstraint`, a scope whose op nodes
 * carry `__opt_constraint__` so that graph conversions leave them alone (AMP keeps them in
 * float32).
 *
 * @module
 */
import { DISABLE_AMP_FLAG } from "../compiler/passes/amp.ts";
import { withOptConstraints } from "../compiler/sym.ts";
import { SigilError } from "../runtime/errors.ts";

/** The constraint bits (MXNet's `HybridBlock.OptConstraint.Flag`). */
export interface OptConstraintFlags {
  /** Keep the nodes out of AMP conversion: they stay in float32 (bit 1). */
  readonly DisableAMP: number;
}

/**
 * A scope of optimization constraints (MXNet's `HybridBlock.OptConstraint`, also reachable as
 * `HybridBlock.OptConstraint`). Op nodes built while the scope runs (ops a block's forward
 * calls while it is traced, or `sym.<Op>` calls) get `__opt_constraint__`, and AMP conversion
 * (`amp.convertHybridBlock`, `amp.convertSymbol`) keeps such nodes in float32, as MXNet's
 * `ReducePrecision` pass does; the attribute is written to exported symbol files. Eager op
 * calls build no nodes and are unaffected; the scope runs its function synchronously.
 *
 * @example A layer kept in float32 by AMP
 * ```ts
 * import assert from "node:assert";
 * import { amp, HybridBlock, nd, nn, OptConstraint, type Value } from "../mod.ts";
 * class Net extends HybridBlock {
 *   lp = new nn.Dense(4);
 *   fp32 = new nn.Dense(2);
 *   forward(x: Value): Value {
 *     const y = this.lp.call(x);
 *     return OptConstraint.disableAmp(() => this.fp32.call(y));
 *   }
 * }
 * const net = new Net();
 * net.initialize();
 * const x = nd.ones([1, 3]);
 * const lp = amp.convertHybridBlock(net, { targetDtype: "float16", dataExample: [x], castParamsOffline: true });
 * const dtypes = Object.fromEntries(Object.entries(lp.collectParams()).map(([k, p]) => [k, p.dtype]));
 * assert(dtypes["lp.weight"] === "float16" && dtypes["fp32.weight"] === "float32");
 * ```
 */
export class OptConstraint {
  /** The constraint bits (MXNet's `OptConstraint.Flag`). */
  static readonly Flag: OptConstraintFlags = Object.freeze({ DisableAMP: DISABLE_AMP_FLAG });

  /** The bits this scope adds. */
  readonly flag: number;

  /** A scope adding `flag` (a union of {@link OptConstraint.Flag} bits). */
  constructor(flag: number) {
    if (!Number.isInteger(flag) || flag < 0 || flag > 0x7fffffff) {
      throw new SigilError(`OptConstraint: flag must be a non-negative integer, got ${flag}`);
    }
    this.flag = flag;
  }

  /** Runs `fn` inside the scope and returns what it returns (MXNet's `with` block). */
  run<T>(fn: () => T): T {
    if (typeof fn !== "function") throw new SigilError("OptConstraint.run needs a function");
    return withOptConstraints(this.flag, fn);
  }

  /** The scope that keeps nodes out of AMP (MXNet's `OptConstraint.disable_amp()`). */
  static disableAmp(): OptConstraint;
  /** Runs `fn` with AMP disabled for the nodes it builds and returns what it returns. */
  static disableAmp<T>(fn: () => T): T;
  /** Either form of {@link OptConstraint.disableAmp}. */
  static disableAmp<T>(fn?: () => T): OptConstraint | T {
    const scope = new OptConstraint(OptConstraint.Flag.DisableAMP);
    return fn === undefined ? scope : scope.run(fn);
  }

  /** The scope with every constraint (MXNet's `disable_all`, which forgets to return it). */
  static disableAll(): OptConstraint {
    return new OptConstraint(Object.values(OptConstraint.Flag).reduce((a, b) => a | b, 0));
  }
}
