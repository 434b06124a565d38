/**
 * Devices a tensor can live on.
 *
 * @module
 */
import { SigilError } from "./errors.ts";

/** The kinds of device sigil knows. */
export type DeviceKind = "cpu" | "webgpu";

/**
 * A device: a kind and an ordinal. Devices are interned, so equal devices are the same object.
 *
 * @example Comparing devices
 * ```ts
 * import assert from "node:assert";
 * import { cpu, Device } from "./device.ts";
 * assert(cpu() === Device.parse("cpu(0)"));
 * ```
 */
export class Device {
  static #cache = new Map<string, Device>();
  /** The device kind. */
  readonly kind: DeviceKind;
  /** The device ordinal. */
  readonly id: number;

  private constructor(kind: DeviceKind, id: number) {
    this.kind = kind;
    this.id = id;
  }

  /** The interned device of a kind and ordinal. */
  static of(kind: DeviceKind, id = 0): Device {
    if (kind !== "cpu" && kind !== "webgpu") throw new SigilError(`unknown device kind '${kind}'`);
    if (!Number.isInteger(id) || id < 0) throw new SigilError(`bad device ordinal ${id}`);
    const key = `${kind}(${id})`;
    let d = Device.#cache.get(key);
    if (!d) Device.#cache.set(key, d = new Device(kind, id));
    return d;
  }

  /** Parses `"cpu"`, `"cpu(0)"`, `"webgpu(1)"`. */
  static parse(text: string): Device {
    const m = /^\s*(cpu|webgpu)\s*(?:\(\s*(\d+)\s*\))?\s*$/.exec(text);
    if (!m) throw new SigilError(`cannot parse device '${text}'`);
    return Device.of(m[1] as DeviceKind, m[2] === undefined ? 0 : Number(m[2]));
  }

  /** MXNet's form, `cpu(0)`. */
  toString(): string {
    return `${this.kind}(${this.id})`;
  }
}

/** The CPU device (ordinal `id`). */
export function cpu(id = 0): Device {
  return Device.of("cpu", id);
}

/**
 * The GPU device (ordinal `id`), MXNet's `mx.gpu()`: the device of the WebGPU engine
 * (`getDefaultEngine(gpu())`, see compiler/engines.ts).
 *
 * @example The device
 * ```ts
 * import assert from "node:assert";
 * import { gpu } from "./device.ts";
 * assert.strictEqual(String(gpu()), "webgpu(0)");
 * ```
 */
export function gpu(id = 0): Device {
  return Device.of("webgpu", id);
}
