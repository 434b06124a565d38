/**
 * What an ahead-of-time target is: the part of {@link import("./compile.ts").compile} that
 * depends on the device. A target turns an optimized graph and a fixed input signature into
 * programs (one per SIMD variant or other load-time choice, and per batch size), the code they
 * run (one blob of modules) and their weight files, plus the source of the runtime that runs
 * them. The WASM target ({@link import("./wasm_target.ts").wasmTarget}) is the first; a WebGPU
 * target supplies its own programs (WGSL instead of WASM modules) and runtime through the same
 * shape, and `compile` picks one by name.
 *
 * @module
 */
import type { Graph } from "../passes/pass.ts";
import type { CompileProgress } from "../engine.ts";
import type { ProgramSpec, TensorSpec } from "./manifest.ts";

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
  /** The variants, the preferred first. */
  readonly variants: readonly BuiltVariant[];
  /** Output shapes at the first batch size. */
  readonly outputShapes: readonly (readonly number[])[];
}

/** An ahead-of-time target. */
export interface AotTarget {
  /** Its name (`wasm`). */
  readonly name: string;
  /** Builds the programs of an optimized graph (its params are the constants). */
  build(graph: Graph, request: TargetRequest): TargetBuild;
  /**
   * The source of the runtime function the artifact calls as
   * `(source)(manifest, code, embeddedWeights, import.meta.url)`, returning
   * `{ load, metadata, ModelError }`.
   */
  readonly runtimeSource: () => string;
}
