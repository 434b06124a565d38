/**
 * Getting a WebGPU device: the adapter is requested once per set of options and the device it
 * gives is shared by every engine made with those options (a device holds every program's
 * buffers and pipelines; two devices cannot share them). What the kernels may use is read from
 * the device's limits and features once, into a {@link GpuContext}.
 *
 * No WebGPU (no `navigator.gpu`, no adapter, or no answer in time) is a {@link BackendError}
 * that says so: never a hang.
 *
 * @module
 */
import { BackendError } from "../../../runtime/errors.ts";

/** `GPUBufferUsage` flags (the spec's values; Node has no such global). */
export const BUFFER_USAGE = Object.freeze({
  MAP_READ: 0x1,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  STORAGE: 0x80,
});

/** `GPUMapMode.READ`. */
export const MAP_READ = 0x1;

/** What kernels may use on a device: its limits and whether f16 arithmetic is available. */
export interface GpuLimits {
  /** Bytes one storage binding may span. */
  readonly maxStorageBufferBindingSize: number;
  /** Bytes one buffer may hold. */
  readonly maxBufferSize: number;
  /** Storage buffers one shader stage may bind. */
  readonly maxStorageBuffersPerShaderStage: number;
  /** Invocations per workgroup. */
  readonly maxComputeInvocationsPerWorkgroup: number;
  /** Workgroup size along x. */
  readonly maxComputeWorkgroupSizeX: number;
  /** Workgroup size along y. */
  readonly maxComputeWorkgroupSizeY: number;
  /** Workgroups per dispatch dimension. */
  readonly maxComputeWorkgroupsPerDimension: number;
  /** Bytes of workgroup memory. */
  readonly maxComputeWorkgroupStorageSize: number;
  /** Alignment of storage binding offsets. */
  readonly minStorageBufferOffsetAlignment: number;
}

/** How kernels use subgroup operations on a device that has them (`GpuContext.subgroups`). */
export type GpuSubgroups = NonNullable<GpuContext["subgroups"]>;

/** A device and what it allows. */
export interface GpuContext {
  /** The adapter the device came from. */
  readonly adapter: GPUAdapter;
  /** The device. */
  readonly device: GPUDevice;
  /** Its limits, as kernels read them. */
  readonly limits: GpuLimits;
  /** Whether `shader-f16` is enabled on the device. */
  readonly f16: boolean;
  /** Whether `timestamp-query` is enabled (profiles time dispatches on the GPU). */
  readonly timestamps: boolean;
  /**
   * Set when the device has the `subgroups` feature and kernels may use subgroup operations
   * (reductions: `subgroupAdd`, `subgroupMax`, `subgroupMin`); absent, they use workgroup memory.
   */
  readonly subgroups?: {
    /** Whether WGSL must start with `enable subgroups;` on this implementation. */
    readonly directive: boolean;
  };
  /** Whether the adapter says it is a CPU fallback (`info.isFallbackAdapter`: llvmpipe, ...). */
  readonly fallback?: boolean;
  /** The adapter's description (`llvmpipe (LLVM 15.0.6, 256 bits)`), for reports. */
  readonly description: string;
}

/** How to get a device (see {@link requestGpu}). */
export interface GpuRequest {
  /** The WebGPU entry point (default `navigator.gpu`), e.g. a Node binding's `gpu` object. */
  readonly gpu?: GPU;
  /** An adapter to use instead of requesting one. */
  readonly adapter?: GPUAdapter;
  /** A device to use instead of requesting one (its limits and features are read). */
  readonly device?: GPUDevice;
  /** Passed to `requestAdapter` (default: none). */
  readonly powerPreference?: GPUPowerPreference;
  /** Ask for `shader-f16` where the adapter has it (default true). */
  readonly f16?: boolean;
  /**
   * Ask for `subgroups` where the adapter has them, and let kernels use subgroup operations
   * (default true); `false` keeps every kernel on workgroup memory.
   */
  readonly subgroups?: boolean;
  /** Milliseconds to wait for the adapter and device before giving up (default 10000). */
  readonly timeoutMs?: number;
}

const shared = new Map<string, Promise<GpuContext>>();

/** Reads the limits kernels need from a device. */
export function limitsOf(device: GPUDevice): GpuLimits {
  const l = device.limits;
  return Object.freeze({
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment,
  });
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new BackendError(`WebGPU: no ${what} after ${ms} ms; use cpu()`)),
      ms,
    );
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

function isFallback(adapter: GPUAdapter): boolean {
  const info = (adapter as { info?: { isFallbackAdapter?: boolean } }).info;
  return info?.isFallbackAdapter === true ||
    (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
}

function describeAdapter(adapter: GPUAdapter): string {
  const info = (adapter as { info?: GPUAdapterInfo }).info;
  return info?.description || info?.vendor || "WebGPU adapter";
}

async function open(request: GpuRequest): Promise<GpuContext> {
  const ms = request.timeoutMs ?? 10_000;
  if (request.device) {
    const device = request.device;
    const adapter = request.adapter ?? ({} as GPUAdapter);
    const subgroups = request.subgroups === false ? undefined : await subgroupsOf(device, ms);
    return Object.freeze({
      adapter,
      device,
      limits: limitsOf(device),
      f16: device.features.has("shader-f16"),
      timestamps: device.features.has("timestamp-query"),
      ...(subgroups ? { subgroups } : {}),
      ...(request.adapter && isFallback(request.adapter) ? { fallback: true } : {}),
      description: request.adapter ? describeAdapter(request.adapter) : "given device",
    });
  }
  let adapter = request.adapter;
  if (!adapter) {
    const gpu = request.gpu ??
      (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
    if (!gpu || typeof gpu.requestAdapter !== "function") {
      throw new BackendError(
        "WebGPU is not available here (no navigator.gpu): no adapter for gpu(); use cpu()",
      );
    }
    const got = await withTimeout(
      gpu.requestAdapter(
        request.powerPreference ? { powerPreference: request.powerPreference } : {},
      ),
      ms,
      "adapter",
    );
    if (!got) {
      throw new BackendError("WebGPU: no adapter was found (requestAdapter gave null); use cpu()");
    }
    adapter = got;
  }
  const wantF16 = (request.f16 ?? true) && adapter.features.has("shader-f16");
  const wantTimestamps = adapter.features.has("timestamp-query");
  const features: GPUFeatureName[] = [];
  if (wantF16) features.push("shader-f16");
  if (wantTimestamps) features.push("timestamp-query");
  // Deno's adapter lists no `subgroups` but grants them: asked for where it reports sizes.
  const info = (adapter as { info?: { subgroupMinSize?: number } }).info;
  const listed = adapter.features.has("subgroups" as GPUFeatureName);
  const hinted = !listed && (info?.subgroupMinSize ?? 0) > 0;
  const wantSubgroups = (request.subgroups ?? true) && (listed || hinted);
  // Ask for the adapter's largest buffers: a model's weights and activations can pass the
  // defaults (128 MiB bindings, 256 MiB buffers).
  const al = adapter.limits;
  const ask = (more: GPUFeatureName[]) =>
    withTimeout(
      adapter.requestDevice({
        requiredFeatures: [...features, ...more],
        requiredLimits: {
          maxStorageBufferBindingSize: al.maxStorageBufferBindingSize,
          maxBufferSize: al.maxBufferSize,
        },
      }),
      ms,
      "device",
    );
  let device: GPUDevice;
  if (!wantSubgroups) device = await ask([]);
  else if (listed) device = await ask(["subgroups" as GPUFeatureName]);
  else {
    try {
      device = await ask(["subgroups" as GPUFeatureName]);
    } catch (e) {
      if (e instanceof BackendError) throw e; // the timeout
      device = await ask([]);
    }
  }
  const subgroups = wantSubgroups ? await subgroupsOf(device, ms) : undefined;
  return Object.freeze({
    adapter,
    device,
    limits: limitsOf(device),
    f16: wantF16 && device.features.has("shader-f16"),
    timestamps: device.features.has("timestamp-query"),
    ...(subgroups ? { subgroups } : {}),
    ...(isFallback(adapter) ? { fallback: true } : {}),
    description: describeAdapter(adapter),
  });
}

/** A subgroup reduction, with the directive or without, to learn which form compiles. */
function subgroupProbe(directive: boolean): string {
  return `${
    directive ? "enable subgroups;\n" : ""
  }@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) i: u32, @builtin(subgroup_size) n: u32) {
  o[i] = subgroupAdd(f32(n));
}`;
}

async function compiles(device: GPUDevice, code: string): Promise<boolean> {
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code });
  const info = await module.getCompilationInfo?.();
  const error = await device.popErrorScope();
  return !error && !(info?.messages ?? []).some((m) => m.type === "error");
}

/**
 * How kernels use subgroups on `device` (see the module doc), or undefined where it has no
 * `subgroups` feature or neither form of WGSL compiles.
 */
export async function subgroupsOf(
  device: GPUDevice,
  ms = 10_000,
): Promise<GpuSubgroups | undefined> {
  if (!device.features.has("subgroups" as GPUFeatureName)) return undefined;
  for (const directive of [true, false]) {
    if (await withTimeout(compiles(device, subgroupProbe(directive)), ms, "shader check")) {
      return Object.freeze({ directive });
    }
  }
  return undefined;
}

/**
 * The device for a request: one given, or requested once per (entry point, power preference,
 * f16, subgroups) and shared by later requests. A failed request is not kept, so a later one tries again.
 * Rejects with a {@link BackendError} when WebGPU is missing, no adapter exists, or none
 * answers within `timeoutMs`.
 */
export function requestGpu(request: GpuRequest = {}): Promise<GpuContext> {
  if (request.device || request.adapter) return open(request);
  const key = `${request.gpu ? "given" : "navigator"}|${request.powerPreference ?? ""}|${
    request.f16 ?? true
  }|${request.subgroups ?? true}`;
  // A custom entry point is not shared (it may be a test's stand-in).
  if (request.gpu) return open(request);
  let got = shared.get(key);
  if (!got) {
    got = open(request);
    shared.set(key, got);
    got.then((ctx) => {
      // A lost device is not handed out again.
      ctx.device.lost?.then(() => {
        if (shared.get(key) === got) shared.delete(key);
      });
    }, () => {
      if (shared.get(key) === got) shared.delete(key);
    });
  }
  return got;
}
