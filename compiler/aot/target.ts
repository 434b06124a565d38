/**
 * What an ahead-of-time target is: the part of {@link import("./compile.ts").compile} that
 * depends on the device. A target turns an optimized graph and a fixed input signature into
 * programs (one per SIMD variant or other load-time choice, and per batch size), the code they
 * run (one blob of modules) and their weight files, plus the source of the runtime that runs
 * them. The WASM target ({@link import("./wasm_target.ts").wasmTarget}) writes WASM modules;
 * the WebGPU target ({@link import("./webgpu_target.ts").webgpuTarget}) WGSL text and its own
 * programs; `compile` picks them by name and merges the builds of several into one artifact.
 *
 * @module
 */
import type { Graph } from "../passes/pass.ts";
import type { CompileProgress } from "../engine.ts";
import type { Pass } from "../passes/pass.ts";
import type { GpuProgramSpec, ProgramSpec, TensorSpec } from "./manifest.ts";

/** Byte arrays kept once each, concatenated into one weight file. */
export interface WeightPool {
  /** The index of `bytes` (added when new). */
  add(bytes: Uint8Array): number;
  /** Where each array starts in the file, by index. */
  readonly offsets: readonly number[];
}

/** What a target is asked to build. */
export interface TargetRequest {
  /** The graph inputs (shapes at `batchSizes[0]`). */
  readonly inputs: readonly TensorSpec[];
  /** Batch sizes to specialise for (dimension 0 of every input). */
  readonly batchSizes: readonly number[];
  /** Threads to split kernels across (1: no workers). */
  readonly threads: number;
  /** SIMD variants to build, the preferred first. */
  readonly simd: readonly ("relaxed" | "baseline")[];
  /** Whether 3×3 convolutions may use Winograd (as the JIT engine's option). */
  readonly winograd: boolean;
  /**
   * Where the parameters both targets read go (artifacts with both targets): the WASM target
   * then stores a constant it can derive at load from a parameter (a packing, a Winograd
   * transform; checked bit for bit) as the parameter's bytes added here plus a small table in
   * its own file, instead of the constant's bytes.
   */
  readonly shared?: WeightPool;
  /** Progress of each lowering, with the variant and batch it belongs to. */
  readonly onProgress?: (progress: AotProgress) => void;
}

/** Where an ahead-of-time compile stands. */
export interface AotProgress extends Omit<CompileProgress, "phase"> {
  /** An engine phase (`passes`, `plan`, `kernels`, ...) or `emit` (writing the module). */
  readonly phase: CompileProgress["phase"] | "emit";
  /** The SIMD variant being lowered (absent for whole-compile phases). */
  readonly variant?: string;
  /** The batch size being lowered (absent for whole-compile phases). */
  readonly batch?: number;
}

/** One variant's programs and weight bytes. */
export interface BuiltVariant {
  /** The variant's name. */
  readonly simd: "relaxed" | "baseline";
  /** Its weight file: every constant its programs upload, each once. */
  readonly weights: Uint8Array;
  /** A program per batch size. */
  readonly programs: readonly ProgramSpec[];
}

/** What a target built. */
export interface TargetBuild {
  /** Every distinct module, concatenated. */
  readonly code: Uint8Array;
  /** `[offset, length]` of each module in `code`. */
  readonly modules: readonly (readonly [number, number])[];
  /** The WASM variants, the preferred first (none for other targets). */
  readonly variants: readonly BuiltVariant[];
  /** The WebGPU programs and their weight file (WebGPU target). */
  readonly webgpu?: { readonly weights: Uint8Array; readonly programs: readonly GpuProgramSpec[] };
  /** Output shapes at the first batch size. */
  readonly outputShapes: readonly (readonly number[])[];
}

/** An ahead-of-time target. */
export interface AotTarget {
  /** Its name (`wasm`, `webgpu`). */
  readonly name: string;
  /** The passes its engine runs before lowering (default: the WASM engine's). */
  readonly passes?: () => readonly Pass[];
  /** Builds the programs of an optimized graph (its params are the constants). */
  build(graph: Graph, request: TargetRequest): TargetBuild | Promise<TargetBuild>;
  /**
   * The source of the runtime function the artifact calls as
   * `(source)(manifest, code, embeddedWeights, import.meta.url)`, returning
   * `{ load, metadata, ModelError }`.
   */
  readonly runtimeSource: () => string;
}
