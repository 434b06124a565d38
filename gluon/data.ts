/**
 * Data (MXNet's `gluon.data`): datasets and a loader that batches them into stacked tensors.
 *
 * @module
 */
import { SigilError } from "../runtime/errors.ts";
import { showValue } from "../runtime/names.ts";
import { uniformAt } from "../runtime/random.ts";
import { Tensor, tensorFromValues, tensorValues } from "../runtime/tensor.ts";

/** A sample field: a tensor or a number. */
export type Field = Tensor | number;

/** What a loader reads: a length and the sample at an index. */
export interface Dataset<T> {
  /** The number of samples. */
  readonly length: number;
  /** The sample at index `i`. */
  get(i: number): T;
}

/** A column of an {@link ArrayDataset}: a tensor (samples along axis 0) or a list. */
export type Column = Tensor | readonly Field[];

function columnLength(c: Column): number {
  return c instanceof Tensor ? (c.ndim ? c.shape[0] : 0) : c.length;
}

function row(t: Tensor, i: number): Tensor {
  const inner = t.shape.slice(1);
  const n = inner.reduce((a, b) => a * b, 1);
  const values = tensorValues(t).subarray(i * n, (i + 1) * n);
  return tensorFromValues(values, inner, t.dtype, t.device);
}

/**
 * Samples from columns of equal length (MXNet's `ArrayDataset`): one column gives its items,
 * several give tuples. A tensor column's item is its row along axis 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { data, nd } from "../mod.ts";
 * const ds = new data.ArrayDataset(nd.array([[1, 2], [3, 4]]), [0, 1]);
 * const [x, y] = ds.get(1);
 * assert.deepStrictEqual([(x as never as { toArray(): unknown }).toArray(), y], [[3, 4], 1]);
 * ```
 */
export class ArrayDataset implements Dataset<Field[]> {
  readonly #columns: Column[];
  /** The number of samples. */
  readonly length: number;

  /** Creates the dataset (every column has the same length). */
  constructor(...columns: Column[]) {
    if (!columns.length) throw new SigilError("ArrayDataset needs at least one column");
    this.length = columnLength(columns[0]);
    columns.forEach((c, i) => {
      if (!(c instanceof Tensor) && !Array.isArray(c)) {
        throw new SigilError(`ArrayDataset: column ${i} must be a Tensor or an array`);
      }
      if (columnLength(c) !== this.length) {
        throw new SigilError(
          `ArrayDataset: column ${i} has ${columnLength(c)} samples, column 0 has ${this.length}`,
        );
      }
    });
    this.#columns = columns;
  }

  /** The sample at `i`: one field per column. */
  get(i: number): Field[] {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) {
      throw new SigilError(`ArrayDataset: index ${showValue(i)} out of range [0, ${this.length})`);
    }
    return this.#columns.map((c) => (c instanceof Tensor ? row(c, i) : c[i]));
  }
}

/** Stacks fields into one tensor with a new leading axis (numbers become a 1-D float32). */
export function stack(fields: readonly Field[]): Tensor {
  if (!fields.length) throw new SigilError("stack: no fields");
  if (fields.every((f) => typeof f === "number")) {
    return tensorFromValues(fields as number[], [fields.length], "float32");
  }
  const first = fields[0];
  if (!(first instanceof Tensor) || fields.some((f) => !(f instanceof Tensor))) {
    throw new SigilError("stack: fields must be all tensors or all numbers");
  }
  const shape = first.shape;
  const n = first.size;
  const out = new Float64Array(n * fields.length);
  fields.forEach((f, i) => {
    const t = f as Tensor;
    if (t.shape.join() !== shape.join() || t.dtype !== first.dtype) {
      throw new SigilError(
        `stack: sample ${i} has shape [${t.shape}] ${t.dtype}, sample 0 [${shape}] ${first.dtype}`,
      );
    }
    out.set(tensorValues(t), i * n);
  });
  return tensorFromValues(out, [fields.length, ...shape], first.dtype, first.device);
}

/** Options of {@link DataLoader}. */
export interface DataLoaderOptions {
  /** Samples per batch. */
  batchSize: number;
  /** Draw a new order every epoch (false). */
  shuffle?: boolean;
  /** The seed of the shuffles (0): the same seed gives the same orders. */
  seed?: number;
  /**
   * A last batch smaller than `batchSize`: `"keep"` it (the default), `"discard"` it, or
   * `"rollover"` its samples into the next epoch.
   */
  lastBatch?: "keep" | "discard" | "rollover";
  /** Turns a batch's samples into the batch (default: each field stacked). */
  batchify?: (samples: Field[][]) => Tensor[];
}

/**
 * Iterates a dataset in batches (MXNet's `DataLoader`): each batch is one stacked tensor per
 * field. Every `for...of` is an epoch; with `shuffle`, epoch `k` uses the order drawn from
 * `seed` and `k`, so runs repeat exactly.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { data, nd } from "../mod.ts";
 * const ds = new data.ArrayDataset(nd.arange(0, 5), [0, 1, 0, 1, 0]);
 * const loader = new data.DataLoader(ds, { batchSize: 2, lastBatch: "discard" });
 * const shapes = [...loader].map(([x, y]) => [x.shape[0], y.shape[0]]);
 * assert.deepStrictEqual(shapes, [[2, 2], [2, 2]]);
 * ```
 */
export class DataLoader implements Iterable<Tensor[]> {
  /** The dataset. */
  readonly dataset: Dataset<Field[] | Field>;
  /** Samples per batch. */
  readonly batchSize: number;
  /** Whether epochs are shuffled. */
  readonly shuffle: boolean;
  /** What happens to a short last batch. */
  readonly lastBatch: "keep" | "discard" | "rollover";
  readonly #seed: number;
  readonly #batchify: (samples: Field[][]) => Tensor[];
  #epoch = 0;
  #carry: number[] = [];

  /** Creates the loader. */
  constructor(dataset: Dataset<Field[] | Field>, options: DataLoaderOptions) {
    const { batchSize } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new SigilError(
        `DataLoader: batchSize must be an integer >= 1, got ${showValue(batchSize)}`,
      );
    }
    const lastBatch = options.lastBatch ?? "keep";
    if (!["keep", "discard", "rollover"].includes(lastBatch)) {
      throw new SigilError(`DataLoader: lastBatch must be "keep", "discard" or "rollover"`);
    }
    this.dataset = dataset;
    this.batchSize = batchSize;
    this.shuffle = options.shuffle ?? false;
    this.lastBatch = lastBatch;
    this.#seed = options.seed ?? 0;
    this.#batchify = options.batchify ??
      ((samples) => samples[0].map((_, f) => stack(samples.map((s) => s[f]))));
  }

  /** Batches in this epoch (rolled-over samples count where `lastBatch` is "rollover"). */
  get length(): number {
    const n = this.dataset.length + (this.lastBatch === "rollover" ? this.#carry.length : 0);
    return this.lastBatch === "keep"
      ? Math.ceil(n / this.batchSize)
      : Math.floor(n / this.batchSize);
  }

  /** The sample order of the next epoch. */
  #order(): number[] {
    const order = Array.from({ length: this.dataset.length }, (_, i) => i);
    if (this.shuffle) {
      // Fisher-Yates with a counter-based stream: the same seed and epoch, the same order.
      const seed = (this.#seed * 1000003 + this.#epoch) >>> 0;
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(uniformAt(seed, order.length - 1 - i) * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
    }
    this.#epoch++;
    return order;
  }

  /** One epoch of batches. */
  *[Symbol.iterator](): Iterator<Tensor[]> {
    const order = [...this.#carry, ...this.#order()];
    this.#carry = [];
    for (let start = 0; start < order.length; start += this.batchSize) {
      const idx = order.slice(start, start + this.batchSize);
      if (idx.length < this.batchSize) {
        if (this.lastBatch === "discard") return;
        if (this.lastBatch === "rollover") {
          this.#carry = idx;
          return;
        }
      }
      const samples = idx.map((i) => {
        const s = this.dataset.get(i);
        return Array.isArray(s) ? s : [s as Field];
      });
      yield this.#batchify(samples);
    }
  }
}
