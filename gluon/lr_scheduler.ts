/**
 * Learning-rate schedules (MXNet's `lr_scheduler`): called with the number of updates done so
 * far, they give the learning rate, with an optional linear warmup from `warmupBeginLr` to
 * `baseLr` over the first `warmupSteps` updates.
 *
 * @module
 */
import { SigilError } from "../runtime/errors.ts";

/** Options every schedule takes. */
export interface LRSchedulerOptions {
  /** The learning rate after warmup (0.01; an optimizer given a learning rate sets it). */
  baseLr?: number;
  /** Updates of linear warmup (0). */
  warmupSteps?: number;
  /** The learning rate warmup starts from (0). */
  warmupBeginLr?: number;
}

/**
 * The base of the schedules: `call(numUpdate)` gives the learning rate.
 *
 * @example A factor schedule with warmup
 * ```ts
 * import assert from "node:assert";
 * import { lrScheduler } from "../mod.ts";
 * const s = new lrScheduler.FactorScheduler(10, { factor: 0.5, baseLr: 1, warmupSteps: 4 });
 * assert.deepStrictEqual([0, 2, 4, 10, 11].map((n) => s.call(n)), [0, 0.5, 1, 1, 0.5]);
 * ```
 */
export abstract class LRScheduler {
  /** The learning rate after warmup. */
  baseLr: number;
  /** Updates of warmup. */
  readonly warmupSteps: number;
  /** Where warmup starts. */
  readonly warmupBeginLr: number;

  /** Creates the schedule. */
  constructor(options: LRSchedulerOptions = {}) {
    this.baseLr = options.baseLr ?? 0.01;
    this.warmupSteps = options.warmupSteps ?? 0;
    this.warmupBeginLr = options.warmupBeginLr ?? 0;
    if (!Number.isInteger(this.warmupSteps) || this.warmupSteps < 0) {
      throw new SigilError(`LRScheduler: warmupSteps must be an integer >= 0`);
    }
  }

  /** The learning rate during warmup: linear from `warmupBeginLr` to `baseLr`. */
  warmupLr(numUpdate: number): number {
    return this.warmupBeginLr +
      (this.baseLr - this.warmupBeginLr) * numUpdate / this.warmupSteps;
  }

  /** The learning rate after `numUpdate` updates. */
  abstract call(numUpdate: number): number;
}

/** Options of {@link FactorScheduler}. */
export interface FactorSchedulerOptions extends LRSchedulerOptions {
  /** What the rate is multiplied by every `step` updates (1). */
  factor?: number;
  /** The floor of the rate (1e-8). */
  stopFactorLr?: number;
}

/**
 * `baseLr · factor^k` after `k·step` updates (past warmup), never under `stopFactorLr`.
 * Like MXNet's, it counts forward as it is called.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { lrScheduler } from "../mod.ts";
 * const s = new lrScheduler.FactorScheduler(2, { factor: 0.1, baseLr: 1 });
 * assert.deepStrictEqual([1, 2, 3, 5].map((n) => s.call(n)), [1, 1, 0.1, 0.1 * 0.1]);
 * ```
 */
export class FactorScheduler extends LRScheduler {
  /** Updates between decays. */
  readonly step: number;
  /** The decay factor. */
  readonly factor: number;
  /** The floor. */
  readonly stopFactorLr: number;
  #count = 0;

  /** Creates the schedule. */
  constructor(step: number, options: FactorSchedulerOptions = {}) {
    super(options);
    if (!Number.isInteger(step) || step < 1) {
      throw new SigilError(`FactorScheduler: step must be an integer >= 1`);
    }
    this.step = step;
    this.factor = options.factor ?? 1;
    if (this.factor > 1) throw new SigilError(`FactorScheduler: factor must be <= 1`);
    this.stopFactorLr = options.stopFactorLr ?? 1e-8;
  }

  /** The learning rate after `numUpdate` updates. */
  call(numUpdate: number): number {
    if (numUpdate < this.warmupSteps) return this.warmupLr(numUpdate);
    while (numUpdate > this.#count + this.step) {
      this.#count += this.step;
      this.baseLr = Math.max(this.baseLr * this.factor, this.stopFactorLr);
    }
    return this.baseLr;
  }
}

/** Options of {@link MultiFactorScheduler}. */
export interface MultiFactorSchedulerOptions extends LRSchedulerOptions {
  /** What the rate is multiplied by at each step (1). */
  factor?: number;
}

/**
 * Multiplies the rate by `factor` once the update count passes each of `steps` (increasing).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { lrScheduler } from "../mod.ts";
 * const s = new lrScheduler.MultiFactorScheduler([2, 4], { factor: 0.5, baseLr: 1 });
 * assert.deepStrictEqual([1, 2, 3, 5].map((n) => s.call(n)), [1, 1, 0.5, 0.25]);
 * ```
 */
export class MultiFactorScheduler extends LRScheduler {
  /** The update counts after which the rate decays. */
  readonly steps: readonly number[];
  /** The decay factor. */
  readonly factor: number;
  #next = 0;

  /** Creates the schedule. */
  constructor(steps: readonly number[], options: MultiFactorSchedulerOptions = {}) {
    super(options);
    if (!steps.length || steps.some((s, i) => !Number.isInteger(s) || s < 1 || s <= steps[i - 1])) {
      throw new SigilError(`MultiFactorScheduler: steps must be increasing integers >= 1`);
    }
    this.steps = [...steps];
    this.factor = options.factor ?? 1;
    if (this.factor > 1) throw new SigilError(`MultiFactorScheduler: factor must be <= 1`);
  }

  /** The learning rate after `numUpdate` updates. */
  call(numUpdate: number): number {
    if (numUpdate < this.warmupSteps) return this.warmupLr(numUpdate);
    while (this.#next < this.steps.length && numUpdate > this.steps[this.#next]) {
      this.#next++;
      this.baseLr *= this.factor;
    }
    return this.baseLr;
  }
}

/** Options of {@link CosineScheduler}. */
export interface CosineSchedulerOptions extends LRSchedulerOptions {
  /** The rate at `maxUpdate` and after (0). */
  finalLr?: number;
}

/**
 * Half a cosine from `baseLr` (after warmup) down to `finalLr` at `maxUpdate` updates.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { lrScheduler } from "../mod.ts";
 * const s = new lrScheduler.CosineScheduler(10, { baseLr: 1, warmupSteps: 2 });
 * assert.deepStrictEqual([1, 2, 6, 10, 12].map((n) => s.call(n)), [0.5, 1, 0.5, 0, 0]);
 * ```
 */
export class CosineScheduler extends LRScheduler {
  /** Updates until `finalLr`. */
  readonly maxUpdate: number;
  /** The final rate. */
  readonly finalLr: number;

  /** Creates the schedule. */
  constructor(maxUpdate: number, options: CosineSchedulerOptions = {}) {
    super(options);
    if (!Number.isInteger(maxUpdate) || maxUpdate < 1) {
      throw new SigilError(`CosineScheduler: maxUpdate must be an integer >= 1`);
    }
    if (this.warmupSteps >= maxUpdate) {
      throw new SigilError(`CosineScheduler: warmupSteps must be less than maxUpdate`);
    }
    this.maxUpdate = maxUpdate;
    this.finalLr = options.finalLr ?? 0;
  }

  /** The learning rate after `numUpdate` updates. */
  call(numUpdate: number): number {
    if (numUpdate < this.warmupSteps) return this.warmupLr(numUpdate);
    if (numUpdate >= this.maxUpdate) return this.finalLr;
    const t = (numUpdate - this.warmupSteps) / (this.maxUpdate - this.warmupSteps);
    return this.finalLr + (this.baseLr - this.finalLr) * (1 + Math.cos(Math.PI * t)) / 2;
  }
}
