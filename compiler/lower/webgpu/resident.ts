/**
 * Tensors held in GPU buffers: the {@link DeviceStorage} a WebGPU program's outputs carry when
 * it runs with `{ resident: true }`, and what `await t.toDevice(engine)` makes. The buffer
 * holds the values as programs do (storage.ts: 16-bit floats as their bit patterns, like a
 * host `Uint16Array`; integers and bool as 32-bit words); reading back copies it to a mappable buffer and maps that, the one point
 * where the host waits for the device.
 *
 * @module
 */
import { allocStorage, type DType, type StorageArray } from "../../../runtime/dtype.ts";
import { GpuDeviceError, ResidencyError } from "../../../runtime/errors.ts";
import { gpu as gpuDevice } from "../../../runtime/device.ts";
import { shapeSize } from "../../../runtime/shape.ts";
import {
  type DeviceStorage,
  Tensor,
  tensorDeviceStorage,
  tensorStorage,
} from "../../../runtime/tensor.ts";
import { BUFFER_USAGE, MAP_READ } from "./gpu.ts";
import { deviceBytes, fromDeviceBytes, toDeviceArray } from "./storage.ts";

/** A tensor's values in a GPU buffer of `device` (from offset 0). */
export interface GpuHeld extends DeviceStorage {
  /** The device. */
  readonly owner: GPUDevice;
  /** The buffer (its size a multiple of 4 bytes, at least the values' bytes). */
  readonly buffer: GPUBuffer;
  /** Bytes of the values. */
  readonly bytes: number;
  /** Their dtype. */
  readonly dtype: DType;
  /** Whether {@link DeviceStorage.dispose} ran. */
  readonly disposed: boolean;
}

/** Usage of a buffer that holds a tensor: bound as storage, copied from and to. */
export const HELD_USAGE = BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_SRC | BUFFER_USAGE.COPY_DST;

const align4 = (n: number) => Math.ceil(n / 4) * 4;

/** The held storage of a tensor on `device`, or undefined (a host tensor, or another device's). */
export function heldOn(t: Tensor, device: GPUDevice): GpuHeld | undefined {
  const held = tensorDeviceStorage(t) as GpuHeld | undefined;
  return held && held.owner === device && "buffer" in held ? held : undefined;
}

/** Reads `bytes` from a buffer into a fresh storage array of `dtype` (`count` elements). */
export async function readBuffer(
  device: GPUDevice,
  buffer: GPUBuffer,
  count: number,
  dtype: DType,
): Promise<StorageArray> {
  const bytes = count * deviceBytes(dtype);
  if (bytes === 0) return allocStorage(dtype, count);
  const span = align4(bytes);
  const staging = device.createBuffer({
    size: span,
    usage: BUFFER_USAGE.MAP_READ | BUFFER_USAGE.COPY_DST,
    label: "tensor readback",
  });
  try {
    const encoder = device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, 0, staging, 0, span);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_READ, 0, span);
    const out = fromDeviceBytes(dtype, staging.getMappedRange(0, span), 0, count);
    staging.unmap();
    return out;
  } catch (e) {
    throw new GpuDeviceError(
      `WebGPU: reading a tensor back failed (${e instanceof Error ? e.message : String(e)})`,
      "lost",
      "",
      "",
      { cause: e },
    );
  } finally {
    staging.destroy();
  }
}

/** Wraps a buffer holding `count` elements of `dtype` as device storage (owning the buffer). */
export function gpuHeld(
  device: GPUDevice,
  buffer: GPUBuffer,
  count: number,
  dtype: DType,
): GpuHeld {
  let disposed = false;
  return {
    owner: device,
    buffer,
    bytes: count * deviceBytes(dtype),
    dtype,
    get disposed() {
      return disposed;
    },
    read() {
      if (disposed) {
        return Promise.reject(new ResidencyError("this GPU tensor was disposed"));
      }
      return readBuffer(device, buffer, count, dtype);
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      buffer.destroy();
    },
  };
}

/** The storage bytes of an array, padded with zeros to a multiple of 4 (what `writeBuffer` takes). */
export function uploadBytes(s: StorageArray): Uint8Array<ArrayBuffer> {
  const bytes = s.length * s.BYTES_PER_ELEMENT;
  const out = new Uint8Array(align4(bytes));
  out.set(new Uint8Array(s.buffer, s.byteOffset, bytes));
  return out;
}

/**
 * `t` held in a new buffer of `device` (`t` itself when it already is there): the values read
 * back first when another device holds them.
 */
export async function uploadTensor(device: GPUDevice, t: Tensor): Promise<Tensor> {
  if (heldOn(t, device)) return t;
  const other = tensorDeviceStorage(t);
  const storage = other ? await other.read() : tensorStorage(t);
  const bytes = shapeSize(t.shape) * deviceBytes(t.dtype);
  device.pushErrorScope("out-of-memory");
  const buffer = device.createBuffer({
    size: Math.max(16, align4(bytes)),
    usage: HELD_USAGE,
    label: "tensor",
  });
  const oom = await device.popErrorScope();
  if (oom) {
    buffer.destroy();
    throw new GpuDeviceError(
      `WebGPU: no memory for a ${bytes}-byte tensor (${oom.message})`,
      "out-of-memory",
    );
  }
  if (bytes > 0) device.queue.writeBuffer(buffer, 0, uploadBytes(toDeviceArray(t.dtype, storage)));
  return new Tensor(gpuHeld(device, buffer, t.size, t.dtype), t.shape, t.dtype, gpuDevice());
}
