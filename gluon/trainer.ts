/**
 * `Trainer` (MXNet's `gluon.Trainer`): applies an optimizer to a set of parameters after
 * `autograd.backward` has filled their gradients.
 *
 * @module
 */
import { SigilError } from "../runtime/errors.ts";
import { loadParamsBytes, paramsBytes } from "../runtime/params.ts";
import { showValue } from "../runtime/names.ts";
import { type Tensor, tensorFromValues } from "../runtime/tensor.ts";
import type { Parameter } from "./parameter.ts";
import { type AnyOptimizerOptions, create, Optimizer } from "./optimizer.ts";

/**
 * Applies an optimizer to parameters: `step(batchSize)` after each backward pass, or
 * `allreduceGrads()` then `update(batchSize)`. Gradients are rescaled by
 * `optimizer.rescaleGrad / batchSize`. Parameters with `gradReq "null"` are skipped; with
 * `"add"` their gradients keep accumulating until you zero them (`zeroGrad`), as in MXNet.
 *
 * @example Two steps of SGD on a dense layer
 * ```ts
 * import assert from "node:assert";
 * import { autograd, loss, nd, nn, Trainer } from "../mod.ts";
 * const net = new nn.Dense(1, { inUnits: 2 });
 * net.initialize({ seed: 0 });
 * const trainer = new Trainer(net.collectParams(), "sgd", { learningRate: 0.1 });
 * const l2 = new loss.L2Loss();
 * const x = nd.array([[1, 2], [3, 4]]), y = nd.array([[1], [2]]);
 * const before = l2.call(net.call(x), y).toArray() as number[];
 * for (let i = 0; i < 2; i++) {
 *   const l = autograd.record(() => l2.call(net.call(x), y));
 *   autograd.backward(l);
 *   trainer.step(2);
 * }
 * const after = l2.call(net.call(x), y).toArray() as number[];
 * assert(after[0] + after[1] < before[0] + before[1]);
 * ```
 */
export class Trainer {
  /** The optimizer. */
  readonly optimizer: Optimizer;
  /** The parameters, in index order (shared parameters once). */
  readonly params: readonly Parameter[];
  readonly #scale: number;
  #states: (Tensor[] | undefined)[];

  /**
   * Creates the trainer for `params` (a record such as `net.collectParams()`, or a list) with
   * an optimizer, or its name and options.
   */
  constructor(
    params: Readonly<Record<string, Parameter>> | readonly Parameter[],
    optimizer: Optimizer | string,
    optimizerParams: AnyOptimizerOptions = {},
  ) {
    if (typeof params !== "object" || params === null) {
      throw new SigilError("Trainer: params must be a record or a list of Parameters");
    }
    const list = Array.isArray(params) ? params : Object.values(params);
    this.params = [...new Set(list as Parameter[])];
    if (optimizer instanceof Optimizer) {
      if (Object.keys(optimizerParams).length) {
        throw new SigilError(
          "Trainer: optimizerParams must be empty when optimizer is an Optimizer instance",
        );
      }
      this.optimizer = optimizer;
    } else if (typeof optimizer === "string") {
      this.optimizer = create(optimizer, optimizerParams);
    } else {
      throw new SigilError(`Trainer: optimizer must be an Optimizer or a name`);
    }
    this.#scale = this.optimizer.rescaleGrad;
    this.#states = this.params.map(() => undefined);
  }

  /** The optimizer's learning rate now. */
  get learningRate(): number {
    return this.optimizer.learningRate;
  }

  /** Sets the optimizer's learning rate. */
  setLearningRate(lr: number): void {
    this.optimizer.setLearningRate(lr);
  }

  /** Gradients from every device summed into each (one device: nothing to do). */
  allreduceGrads(): void {}

  /** {@link allreduceGrads}, then {@link update}. */
  step(batchSize: number): void {
    this.allreduceGrads();
    this.update(batchSize);
  }

  /** One optimizer update of every parameter with a gradient, scaled by `1 / batchSize`. */
  update(batchSize: number): void {
    if (!(Number.isFinite(batchSize) && batchSize > 0)) {
      throw new SigilError(
        `Trainer: batchSize must be a positive number, got ${showValue(batchSize)}`,
      );
    }
    this.optimizer.rescaleGrad = this.#scale / batchSize;
    this.params.forEach((p, i) => {
      if (p.gradReq === "null") return;
      if (!p.isInitialized) {
        throw new SigilError(`Trainer: parameter '${p.name}' has not been initialized`);
      }
      const weight = p.data();
      const states = this.#states[i] ??= this.optimizer.createState(weight);
      const out = this.optimizer.update(i, weight, p.grad(), states, {
        lrMult: p.lrMult,
        wdMult: p.wdMult,
      });
      this.#states[i] = out.states;
      p.setData(out.weight);
    });
  }

  /**
   * The optimizer's states (each parameter's state tensors and the update counts) as bytes of
   * an MXNet `.params` file, for {@link loadStates}.
   */
  saveStates(): Uint8Array {
    const entries: [string, Tensor][] = [];
    const counts = [this.optimizer.numUpdate];
    for (const [i, t] of this.optimizer.indexUpdateCount) counts.push(i, t);
    entries.push(["__counts__", tensorFromValues(counts, [counts.length], "float64")]);
    this.#states.forEach((states, i) => {
      states?.forEach((s, j) => entries.push([`${i}:${this.optimizer.stateNames[j]}`, s]));
    });
    return paramsBytes(entries);
  }

  /** Restores states written by {@link saveStates} (same parameters and optimizer). */
  loadStates(bytes: Uint8Array): void {
    const file = loadParamsBytes(bytes, "trainer states");
    const names = file.names ?? [];
    const counts = names.indexOf("__counts__");
    if (counts < 0) throw new SigilError("trainer states: no __counts__ entry");
    const c = Array.from(file.arrays[counts].dataSync(), Number);
    const states: (Tensor[] | undefined)[] = this.params.map(() => undefined);
    names.forEach((name, k) => {
      if (k === counts) return;
      const m = /^(\d+):(.+)$/.exec(name);
      const i = m ? Number(m[1]) : -1;
      const j = m ? this.optimizer.stateNames.indexOf(m[2]) : -1;
      if (i < 0 || i >= this.params.length || j < 0) {
        throw new SigilError(
          `trainer states: entry '${name}' names no state of this trainer's optimizer`,
        );
      }
      (states[i] ??= [])[j] = file.arrays[k];
    });
    states.forEach((s, i) => {
      if (s && s.filter(Boolean).length !== this.optimizer.stateNames.length) {
        throw new SigilError(`trainer states: parameter ${i} lacks some states`);
      }
    });
    this.optimizer.numUpdate = c[0];
    this.optimizer.indexUpdateCount.clear();
    for (let k = 1; k + 1 < c.length; k += 2) this.optimizer.indexUpdateCount.set(c[k], c[k + 1]);
    this.#states = states;
  }
}
