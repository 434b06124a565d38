/**
 * The tensor: an immutable n-dimensional array with a shape, a dtype, a device and contiguous
 * row-major storage.
 *
 * @module
 */
import {
  allocStorage,
  bfloat16ToNumber,
  decode,
  type DType,
  dtypeInfo,
  encode,
  float16ToNumber,
  type StorageArray,
  storageMatches,
} from "./dtype.ts";
import { attachSlot, type GradReq, slotOf } from "./autograd_state.ts";
import { cpu, Device } from "./device.ts";
import { ResidencyError, ShapeError, SigilError } from "./errors.ts";
import { checkShape, formatShape, type Shape, shapeSize } from "./shape.ts";

/**
 * What {@link Tensor.data} returns for each dtype: float16 and bfloat16 are decoded exactly
 * into a Float32Array, bool is a Uint8Array of 0/1, int64 a BigInt64Array.
 */
export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int32Array
  | BigInt64Array;

const STORAGE = new WeakMap<Tensor, StorageArray>();

/**
 * Values a device holds (a GPU buffer) for a tensor: read back asynchronously, freed by
 * `dispose` (or, as a safety net, when the tensor is garbage collected).
 */
export interface DeviceStorage {
  /** What holds the memory (a `GPUDevice`): engines move tensors they own without a copy. */
  readonly owner: object;
  /** Resolves with a copy of the values as the dtype's storage array. */
  read(): Promise<StorageArray>;
  /** Frees the device memory (idempotent); later reads reject. */
  dispose(): void;
}

/** What can place a tensor on its device: an engine with device memory (a WebGPU engine). */
export interface TensorMover {
  /** The device it places tensors on. */
  readonly device: Device;
  /** A tensor with `t`'s values held on the device (`t` itself when it already is). */
  upload(t: Tensor): Promise<Tensor>;
}

const RESIDENT = new WeakMap<Tensor, DeviceStorage>();
const DISPOSED = new WeakSet<Tensor>();
const finalizer = new FinalizationRegistry<DeviceStorage>((held) => held.dispose());

function isDeviceStorage(x: unknown): x is DeviceStorage {
  return typeof x === "object" && x !== null && typeof (x as DeviceStorage).read === "function" &&
    typeof (x as DeviceStorage).dispose === "function" && "owner" in x;
}

function resident(t: Tensor): never {
  throw new ResidencyError(
    `${t} holds its values in device memory: read them with \`await t.data()\` (or move it with \`await t.toDevice(cpu())\`)`,
  );
}

/**
 * Host tensors whose values are computed when first read (see {@link deferredTensor}), until
 * then: the computation.
 */
const DEFERRED = new WeakMap<Tensor, () => StorageArray>();

/** What the constructor takes, from {@link deferredTensor} alone, for deferred values. */
class Deferred {
  readonly compute: () => StorageArray;
  constructor(compute: () => StorageArray) {
    this.compute = compute;
  }
}

function hostStorage(t: Tensor): StorageArray {
  return STORAGE.get(t) ?? computed(t) ?? resident(t);
}

/** The values of a deferred tensor, computed now and kept (undefined for other tensors). */
function computed(t: Tensor): StorageArray | undefined {
  const compute = DEFERRED.get(t);
  if (compute === undefined) return undefined;
  const storage = compute();
  if (!storageMatches(t.dtype, storage) || storage.length !== t.size) {
    throw new SigilError(`the deferred values of ${t} are not ${t.size} ${t.dtype} values`);
  }
  STORAGE.set(t, storage);
  DEFERRED.delete(t);
  return storage;
}

function toData(dtype: DType, s: StorageArray, copy: boolean): TensorData {
  if (dtype === "float16" || dtype === "bfloat16") {
    const dec = dtype === "float16" ? float16ToNumber : bfloat16ToNumber;
    const out = new Float32Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = dec(s[i] as number);
    return out;
  }
  return (copy ? s.slice() : s) as TensorData;
}

/**
 * An immutable n-dimensional array. Create tensors with `nd.array`, `nd.zeros`, ... and read
 * them with `await t.data()`.
 *
 * @example Making and reading a tensor
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * const t = nd.array([1, 2, 3, 4], { shape: [2, 2] });
 * assert(t.size === 4 && t.dtype === "float32");
 * assert((await t.data())[3] === 4);
 * ```
 */
export class Tensor {
  /** The shape. */
  readonly shape: Shape;
  /** The element type. */
  readonly dtype: DType;
  /** Where the data lives. */
  readonly device: Device;
  /** Number of elements. */
  readonly size: number;

  /**
   * Wraps storage (taken, not copied) as a tensor. The storage must be the dtype's storage
   * array (16-bit floats as Uint16Array bit patterns) with exactly `prod(shape)` elements, or
   * a {@link DeviceStorage} a device holds (then `device` names that device).
   */
  constructor(
    storage: StorageArray | DeviceStorage,
    shape: ArrayLike<number>,
    dtype: DType,
    device?: Device,
  ) {
    dtypeInfo(dtype);
    this.shape = checkShape(shape);
    this.size = shapeSize(this.shape);
    if ((storage as unknown) instanceof Deferred) {
      this.dtype = dtype;
      this.device = device ?? cpu();
      DEFERRED.set(this, (storage as unknown as Deferred).compute);
      Object.freeze(this);
      return;
    }
    if (isDeviceStorage(storage)) {
      if (!device || device.kind === "cpu") {
        throw new SigilError("a tensor held in device memory needs its (non-CPU) device");
      }
      this.dtype = dtype;
      this.device = device;
      RESIDENT.set(this, storage);
      finalizer.register(this, storage, storage);
      Object.freeze(this);
      return;
    }
    if (!storageMatches(dtype, storage)) {
      throw new SigilError(
        `storage ${(storage as object)?.constructor?.name} does not hold ${dtype}`,
      );
    }
    if (storage.length !== this.size) {
      throw new ShapeError(
        `storage has ${storage.length} elements but shape ${
          formatShape(this.shape)
        } needs ${this.size}`,
      );
    }
    this.dtype = dtype;
    this.device = device ?? cpu();
    // A Node Buffer is a Uint8Array whose `slice` is a view: keep a plain Uint8Array over the
    // same bytes, so copies made with `slice` are copies.
    if (storage instanceof Uint8Array && storage.constructor !== Uint8Array) {
      storage = new Uint8Array(storage.buffer, storage.byteOffset, storage.length);
    }
    STORAGE.set(this, storage);
    Object.freeze(this);
  }

  /**
   * Marks this tensor as a leaf whose gradient a backward pass computes (MXNet's
   * `attach_grad`): `"write"` replaces {@link Tensor.grad} on each backward, `"add"` adds to it,
   * `"null"` detaches. Calls recorded in `autograd.record` that use the tensor become
   * differentiable; `autograd.backward(y)` fills the gradient.
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { autograd, nd } from "../mod.ts";
   * const x = nd.array([1, 2, 3]);
   * x.attachGrad();
   * const y = autograd.record(() => nd.sum(nd.square(x)));
   * autograd.backward(y);
   * assert.deepStrictEqual(Array.from(x.grad!.dataSync(), Number), [2, 4, 6]);
   * ```
   */
  attachGrad(gradReq: GradReq = "write"): void {
    if (gradReq !== "write" && gradReq !== "add" && gradReq !== "null") {
      throw new SigilError(
        `attachGrad: gradReq must be "write", "add" or "null", got ${String(gradReq)}`,
      );
    }
    let grad: Tensor | undefined;
    attachSlot(this, { req: gradReq, read: () => grad, write: (g) => grad = g });
  }

  /** The gradient a backward pass stored for this tensor (after {@link Tensor.attachGrad}). */
  get grad(): Tensor | undefined {
    return slotOf(this)?.read();
  }

  /** Number of dimensions. */
  get ndim(): number {
    return this.shape.length;
  }

  /**
   * A copy of the values as a typed array (see {@link TensorData}). For a tensor held in
   * device memory this reads it back: the one point where the host waits for the device.
   */
  data(): Promise<TensorData> {
    const held = RESIDENT.get(this);
    if (held) return held.read().then((s) => toData(this.dtype, s, false));
    return Promise.resolve(this.dataSync());
  }

  /**
   * Synchronous {@link data}: host tensors only (a tensor held in device memory throws a
   * {@link ResidencyError} saying to await `data()`).
   */
  dataSync(): TensorData {
    return toData(this.dtype, hostStorage(this), true);
  }

  /** Whether the values live in device memory (a GPU buffer) rather than on the host. */
  get isResident(): boolean {
    return RESIDENT.has(this);
  }

  /**
   * This tensor on another device. To `cpu()` (or any device, from a host tensor): the values
   * on the host, read back from device memory where they are held there. To an engine with
   * device memory (a WebGPU engine): uploaded now, so programs of that engine read them with
   * no copy from the host. A host tensor moved to a bare `gpu()` device keeps its values on
   * the host until a program of the engine uploads them at its graph boundary.
   *
   * @example A round trip through the GPU, where there is one
   * ```ts
   * import assert from "node:assert";
   * import { BackendError, cpu, createWebGPUEngine, nd } from "../mod.ts";
   * const x = nd.array([1, 2, 3]);
   * try {
   *   const engine = await createWebGPUEngine();
   *   const onGpu = await x.toDevice(engine);
   *   assert(onGpu.isResident);
   *   const back = await onGpu.toDevice(cpu());
   *   assert.deepStrictEqual(back.dataSync(), new Float32Array([1, 2, 3]));
   *   onGpu.dispose();
   * } catch (e) {
   *   if (!(e instanceof BackendError)) throw e; // no WebGPU adapter here
   * }
   * ```
   */
  async toDevice(target: Device | TensorMover): Promise<Tensor> {
    if (!(target instanceof Device)) return await target.upload(this);
    const held = RESIDENT.get(this);
    if (target === this.device) return this;
    const storage = held ? await held.read() : hostStorage(this);
    return new Tensor(storage, this.shape, this.dtype, target);
  }

  /** Frees the device memory of a tensor held there (later reads reject); no-op on the host. */
  dispose(): void {
    const held = RESIDENT.get(this);
    if (!held || DISPOSED.has(this)) return;
    DISPOSED.add(this);
    finalizer.unregister(held);
    held.dispose();
  }

  /** The values as nested JavaScript arrays (numbers; int64 converted with Number). */
  toArray(): unknown {
    const flat = Array.from(decode(this.dtype, hostStorage(this)));
    if (this.shape.length === 0) return flat[0];
    const build = (dim: number, offset: number, stride: number): unknown[] => {
      const n = this.shape[dim];
      const inner = stride / Math.max(n, 1);
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) {
        out.push(
          dim === this.shape.length - 1
            ? flat[offset + i]
            : build(dim + 1, offset + i * inner, inner),
        );
      }
      return out;
    };
    return build(0, 0, this.size);
  }

  /** A short description: `Tensor<float32 (2, 3) cpu(0)>`. */
  toString(): string {
    return `Tensor<${this.dtype} ${formatShape(this.shape)} ${this.device}>`;
  }

  /**
   * What `console.log` and `Deno.inspect` show in Deno: the shape, dtype, device and the
   * leading values (see {@link inspectTensor}).
   */
  [Symbol.for("Deno.customInspect")](): string {
    return inspectTensor(this);
  }

  /** What `console.log` and `util.inspect` show in Node and Bun (as in Deno). */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return inspectTensor(this);
  }
}

/** How many leading values {@link inspectTensor} shows. */
export const INSPECT_VALUES = 8;

/**
 * A one-line description with the leading values in row-major order:
 * `Tensor<float32 (2, 3) cpu(0)> [0, 1, 2, 3, 4, 5]`, or
 * `Tensor<float32 (1000,) cpu(0)> [0, 1, 2, 3, 4, 5, 6, 7, … 992 more]`. What `console.log`
 * prints for a tensor in Deno, Node and Bun.
 *
 * @example Printing a tensor
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * import { inspectTensor } from "./tensor.ts";
 * assert.strictEqual(inspectTensor(nd.array([1, 2.5])), "Tensor<float32 (2,) cpu(0)> [1, 2.5]");
 * ```
 */
export function inspectTensor(t: Tensor, max: number = INSPECT_VALUES): string {
  if (RESIDENT.has(t)) return t.toString();
  const storage = hostStorage(t);
  const n = Math.min(max, storage.length);
  const head = decode(t.dtype, storage.subarray(0, n) as StorageArray);
  const shown = Array.from(head, (v, i) => {
    if (t.dtype === "bool") return v ? "true" : "false";
    if (t.dtype === "int64") return String(storage[i]);
    if (Object.is(v, -0)) return "-0";
    if (t.dtype === "float64" || !Number.isFinite(v)) return String(v);
    // The shortest decimal that reads back as the same stored value (0.1, not 0.100000001).
    for (let p = 1; p < 9; p++) {
      const short = Number(v.toPrecision(p));
      if (encode(t.dtype, [short])[0] === storage[i]) return String(short);
    }
    return String(v);
  });
  if (storage.length > n) shown.push(`… ${storage.length - n} more`);
  return `${t.toString()} [${shown.join(", ")}]`;
}

/** The raw storage of a tensor (not a copy: do not write to it). */
export function tensorStorage(t: Tensor): StorageArray {
  return hostStorage(t);
}

/**
 * A host tensor whose values `compute` gives when something first reads them (they are then
 * kept, and `compute` dropped): for constants derived from others that a consumer may never
 * need in plain form (a folded BatchNorm's scaled weights, which the WASM lowering packs from
 * the originals). Every reader sees the values as for any tensor; `compute` must return the
 * dtype's storage array of `prod(shape)` elements (else the read throws a SigilError) and
 * must always give the same values.
 *
 * @example Computed once, on the first read
 * ```ts
 * import assert from "node:assert";
 * import { deferredTensor, isDeferred } from "./tensor.ts";
 * let calls = 0;
 * const t = deferredTensor(() => (calls++, new Float32Array([1, 2])), [2], "float32");
 * assert(isDeferred(t));
 * assert.strictEqual(calls, 0);
 * assert.deepStrictEqual(await t.data(), new Float32Array([1, 2]));
 * t.dataSync();
 * assert(!isDeferred(t));
 * assert.strictEqual(calls, 1);
 * ```
 */
export function deferredTensor(
  compute: () => StorageArray,
  shape: ArrayLike<number>,
  dtype: DType,
): Tensor {
  return new Tensor(new Deferred(compute) as unknown as StorageArray, shape, dtype);
}

/** Whether a tensor's values are deferred and not computed yet (see {@link deferredTensor}). */
export function isDeferred(t: Tensor): boolean {
  return DEFERRED.has(t);
}

/** The device memory holding a tensor's values, or undefined for a host tensor. */
export function tensorDeviceStorage(t: Tensor): DeviceStorage | undefined {
  return RESIDENT.get(t);
}

/** The values of a tensor decoded to float64 (a fresh array). */
export function tensorValues(t: Tensor): Float64Array {
  return decode(t.dtype, hostStorage(t));
}

/** A tensor of `dtype` from float64 values, rounded as the dtype stores them. */
export function tensorFromValues(
  values: ArrayLike<number>,
  shape: Shape,
  dtype: DType,
  device?: Device,
): Tensor {
  return new Tensor(encode(dtype, values), shape, dtype, device);
}

/** A zero-filled tensor. */
export function zerosTensor(shape: Shape, dtype: DType, device?: Device): Tensor {
  return new Tensor(allocStorage(dtype, shapeSize(checkShape(shape))), shape, dtype, device);
}
