/**
 * The calling convention of WebGPU kernels. A kernel is one or more compute passes, each a WGSL
 * module specialized to one node's shapes (every size is a literal in the code) with entry
 * point `main`. A pass names the buffers it binds, in binding order, by slot: the node's inputs
 * first (`0 .. n-1`, read only), then its outputs (`n .. n+m-1`), then the kernel's scratch
 * buffers. Every binding is an `array<f32>` (or `array<f16>` in f16 programs; `array<i32>` for
 * integer and bool values, see dtypes.ts) in group 0. The
 * executor runs the passes in order, in one command buffer with the rest of the program.
 *
 * Only generated identifiers and validated numbers reach WGSL (see wgsl.ts): node names,
 * attribute strings and other text from model files never do.
 *
 * @module
 */
import type { Node } from "../../symbol.ts";
import type { DType } from "../../../runtime/dtype.ts";
import type { Shape } from "../../../runtime/shape.ts";
import type { GpuContext, GpuLimits } from "./gpu.ts";
import type { GpuTuning } from "./tuning.ts";

/** One compute dispatch of a kernel. */
export interface GpuPass {
  /** A WGSL module with a `@compute` entry point `main`. */
  readonly code: string;
  /** Workgroups to dispatch along x, y and z (each within the device's limit). */
  readonly workgroups: readonly [number, number, number];
  /** The slots bound at bindings 0, 1, ...: inputs, then outputs, then scratch buffers. */
  readonly bindings: readonly number[];
}

/** A compiled kernel for one node. */
export interface GpuKernel {
  /** A short description for plans and profiles (`gemm 64x64x64`). */
  readonly label: string;
  /** The passes, run in order (none: nothing to compute, e.g. an empty output). */
  readonly passes: readonly GpuPass[];
  /** Bytes of each scratch buffer the passes bind after the outputs. */
  readonly scratch?: readonly number[];
  /**
   * Constant inputs the kernel reads in another form (e.g. a repacked weight), by input index:
   * the executor uploads these values once and binds them instead.
   */
  readonly constantInputs?: ReadonlyMap<number, Float32Array>;
  /** Whether the passes read and write the request's dtypes (see `GpuKernelRequest.inputTypes`). */
  readonly typed?: boolean;
}

/** What a generator gets: the node, its input and output shapes, and the device's limits. */
export interface GpuKernelRequest {
  /** The node to compute (its op and parsed attributes). */
  readonly node: Node;
  /** Shapes of its inputs. */
  readonly inputs: readonly Shape[];
  /** Shapes of its outputs. */
  readonly outputs: readonly Shape[];
  /** What the device allows. */
  readonly limits: GpuLimits;
  /** Values of inputs that are constants (parameters), by input index; others undefined. */
  readonly constants?: readonly (Float32Array | undefined)[];
  /**
   * The dtypes of the inputs and outputs (default float32), stored as dtypes.ts says. A
   * generator that honours them marks its kernel `typed`; for a node with a value that is
   * not float32, a kernel without that mark is not used (the node runs on the host).
   */
  readonly inputTypes?: readonly DType[];
  /** The dtypes of the outputs (see `inputTypes`). */
  readonly outputTypes?: readonly DType[];
  /**
   * The node's float values are all float16 and the device has `shader-f16`: a generator may
   * compute in f16 (products; sums stay f32). Its bindings are retyped either way (storage.ts).
   */
  readonly halfMath?: boolean;
  /**
   * The node's inputs are all float32 or integer values held in 32-bit words (no 16-bit
   * storage to retype): a pass may bind an input a second time as `array<vec4<f32>>` (a
   * read-only view; bindings start 256-byte aligned) to load four elements at once.
   */
  readonly vectorViews?: boolean;
  /**
   * The adapter is a CPU fallback (`isFallbackAdapter`: llvmpipe, SwiftShader, WARP): a
   * generator may pick the code such drivers run faster (the GEMM keeps its K loop rolled).
   */
  readonly fallbackAdapter?: boolean;
  /**
   * Set where the device has subgroups and kernels may use subgroup operations (gpu.ts); a
   * generator that does must start its WGSL with the directive it asks for.
   */
  readonly subgroups?: GpuContext["subgroups"];
  /** The workgroup and tile choice to generate for (see tuning.ts; `limits` already reflect it). */
  readonly tuning?: GpuTuning;
}

/**
 * Makes a kernel for a node, or undefined when it cannot (the node then runs on the host and is
 * listed as a fallback); may throw {@link import("../../../runtime/errors.ts").UnsupportedError}
 * with a reason.
 */
export type GpuKernelGenerator = (request: GpuKernelRequest) => GpuKernel | undefined;

/**
 * The kernels a WebGPU engine is built from: a generator per op (by canonical name), one for
 * every op with a scalar form (elementwise ops and fused chains) and one for every op with a
 * copy plan. A plain value: an engine made from another table changes nothing else.
 */
export interface GpuKernelTable {
  /** Generators by op name. */
  readonly ops: Readonly<Record<string, GpuKernelGenerator>>;
  /** The generator for ops with a scalar form (unless `ops` names the op). */
  readonly elementwise?: GpuKernelGenerator;
  /** The generator for ops with a copy plan (`OpDef.copy`; unless `ops` names the op). */
  readonly copy?: GpuKernelGenerator;
}

/** The generator for a node: its op's own, else the elementwise one, else the copy one. */
export function gpuGeneratorFor(
  table: GpuKernelTable,
  node: Node,
): GpuKernelGenerator | undefined {
  if (Object.hasOwn(table.ops, node.opName)) return table.ops[node.opName];
  if (node.op?.scalar?.(node.parsed)) return table.elementwise;
  return node.op?.copy ? table.copy : undefined;
}
