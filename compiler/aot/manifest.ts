/**
 * The plan an ahead-of-time artifact carries as JSON: inputs and outputs, and per SIMD variant
 * and batch size a program (memory size, where every buffer and constant lives, the steps in
 * order). Kernel modules are referred to by index into the artifact's code blob; constants by
 * byte range in the variant's weight file. Names from the model appear only as JSON strings.
 *
 * @module
 */

/** An input or output of an artifact: its name, shape (at the first batch size) and dtype. */
export interface TensorSpec {
  /** The name (from the model file: data, never code). */
  readonly name: string;
  /** The shape at the artifact's first batch size. */
  readonly shape: readonly number[];
  /** The element type (`float32`). */
  readonly dtype: "float32";
}

/** A step running one kernel module's `run` with byte pointers: `[0, module, args]`. */
export type KernelStepSpec = readonly [0, number, readonly number[]];
/**
 * A step split into parts for threads: `[1, modules, argsOfEachPart, wholeModule, wholeArgs]`
 * (`wholeModule` is -1 when there is no unsplit form: the parts then run in turn).
 */
export type SplitStepSpec = readonly [
  1,
  readonly number[],
  readonly (readonly number[])[],
  number,
  readonly number[],
];
/** Byte copies inside the memory: `[2, [dst, src, bytes, dst, src, bytes, ...]]`. */
export type CopyStepSpec = readonly [2, readonly number[]];
/** One step of a program. */
export type StepSpec = KernelStepSpec | SplitStepSpec | CopyStepSpec;

/** A compiled program for one SIMD variant and batch size. */
export interface ProgramSpec {
  /** The batch size (dimension 0 of every input) it was compiled for. */
  readonly batch: number;
  /** Bytes of linear memory. */
  readonly memoryBytes: number;
  /** Whether the kernels import a shared memory (compiled for threads). */
  readonly shared: boolean;
  /** Inputs it reads: `[index into Manifest.inputs, byte pointer, elements]`. */
  readonly inputs: readonly (readonly [number, number, number])[];
  /** Outputs in order: `[byte pointer, elements]`. */
  readonly outputs: readonly (readonly [number, number])[];
  /** Output shapes in order. */
  readonly outputShapes: readonly (readonly number[])[];
  /** Constants: `[byte pointer, offset in the weight file, bytes]`. */
  readonly constants: readonly (readonly [number, number, number])[];
  /**
   * Constants derived at load from a parameter in the shared weight file
   * ({@link Manifest.shared}); see {@link DerivedSpec}. Absent when there are none.
   */
  readonly derived?: readonly DerivedSpec[];
  /** Steps in execution order. */
  readonly steps: readonly StepSpec[];
}

/**
 * A WASM constant derived at load: `[byte pointer, bytes, kind, source offset, source bytes,
 * runs offset, run count, plane]`. The source is a parameter at that byte range of the shared
 * weight file; the runs (seven int32 each, at that byte offset of the variant's weight file) say
 * where its elements go: kind 0 copies them (packing is a permutation with zero padding),
 * 1 and 2 write the F(4×4) or F(2×2) Winograd tile of the 3×3 filter they start (entries
 * `plane` floats apart). See `deriveConstant` in runtime.ts.
 */
export type DerivedSpec = readonly [
  ptr: number,
  bytes: number,
  kind: 0 | 1 | 2,
  sourceAt: number,
  sourceBytes: number,
  runsAt: number,
  runs: number,
  plane: number,
];

/** The programs of one SIMD variant, with their weight file. */
export interface VariantSpec {
  /** `relaxed` (relaxed SIMD) or `baseline` (128-bit SIMD only). */
  readonly simd: "relaxed" | "baseline";
  /** The weight file's name (beside the module, or under the fetch URL). */
  readonly weightsFile: string;
  /** Its size in bytes. */
  readonly weightsBytes: number;
  /** One program per batch size, in the order of {@link Manifest.batchSizes}. */
  readonly programs: readonly ProgramSpec[];
}

/**
 * A WebGPU step: a dispatch `[0, shader, bindings, workgroups]` (bindings flat as
 * `[buffer, offset, size, ...]` in binding order, the shader an index into the code) or a
 * buffer copy `[1, src, srcOffset, dst, dstOffset, bytes]`.
 */
export type GpuStepSpec =
  | readonly [0, number, readonly number[], readonly [number, number, number]]
  | readonly [1, number, number, number, number, number];

/** A compiled WebGPU program for one batch size. */
export interface GpuProgramSpec {
  /** The batch size it was compiled for. */
  readonly batch: number;
  /** Bytes of each storage buffer. */
  readonly buffers: readonly number[];
  /**
   * Constants: `[buffer, byte offset, offset in the weight file, bytes]`, with a fifth element
   * `1` where the bytes are in the shared weight file ({@link Manifest.shared}) instead.
   */
  readonly constants: readonly (
    | readonly [number, number, number, number]
    | readonly [number, number, number, number, 1]
  )[];
  /** Inputs it reads: `[index into Manifest.inputs, buffer, elements]` (at offset 0). */
  readonly inputs: readonly (readonly [number, number, number])[];
  /** Outputs in order: `[buffer, byte offset, elements]`. */
  readonly outputs: readonly (readonly [number, number, number])[];
  /** Output shapes in order. */
  readonly outputShapes: readonly (readonly number[])[];
  /** The command stream of one run, in order. */
  readonly steps: readonly GpuStepSpec[];
}

/** The WebGPU programs of an artifact, with their weight file. */
export interface GpuSpec {
  /** The weight file's name. */
  readonly weightsFile: string;
  /** Its size in bytes. */
  readonly weightsBytes: number;
  /** One program per batch size, in the order of {@link Manifest.batchSizes}. */
  readonly programs: readonly GpuProgramSpec[];
}

/** Everything an artifact's runtime needs besides the code and weight bytes. */
export interface Manifest {
  /** Manifest format version. */
  readonly format: 1;
  /** The sigil version that compiled it. */
  readonly sigil: string;
  /** The targets, comma-separated, the preferred first (`wasm`, `webgpu`, `webgpu,wasm`). */
  readonly target: string;
  /** SHA-256 (hex) of the model's symbol JSON and the input signature. */
  readonly graphHash: string;
  /** Threads the programs were compiled for (the most a load can use). */
  readonly threads: number;
  /** Graph inputs. */
  readonly inputs: readonly TensorSpec[];
  /** Graph outputs (names made unique). */
  readonly outputs: readonly TensorSpec[];
  /** Batch sizes with a program, the first being the one shapes are given at. */
  readonly batchSizes: readonly number[];
  /** Kernel modules (WASM bytes, or WGSL text as UTF-8): `[offset, length]` in the inflated code blob. */
  readonly modules: readonly (readonly [number, number])[];
  /** Bytes of the inflated code blob. */
  readonly codeBytes: number;
  /** Where weights come from. */
  readonly weights: "embed" | "external" | "fetch";
  /** For `fetch`: the URL (or URL prefix ending in `/`) the weight files are under. */
  readonly weightsUrl?: string;
  /** The WASM SIMD variants, the preferred first (none without the WASM target). */
  readonly variants: readonly VariantSpec[];
  /** The WebGPU programs (with the WebGPU target). */
  readonly webgpu?: GpuSpec;
  /**
   * With both targets: the parameters both backends read, shipped once (WebGPU uploads them
   * as they are, WASM derives its packed and transformed constants from them at load).
   */
  readonly shared?: { readonly weightsFile: string; readonly weightsBytes: number };
}
