/**
 * The calling convention of WASM kernels. A kernel is a WebAssembly module specialized to one
 * node's shapes: it imports the program's linear memory as `env.memory` and exports `run`,
 * taking byte pointers (i32): every input, then every output, then the kernel's integer
 * arguments if it has any (`extraArgs`: a work range), then a scratch area when
 * `scratchBytes > 0`. Pointers are 16-byte aligned. The executor places all buffers in one
 * memory (following the static memory plan) and calls each kernel's `run` in order.
 *
 * @module
 */
import type { Node } from "../../symbol.ts";
import type { DType } from "../../../runtime/dtype.ts";
import type { Shape } from "../../../runtime/shape.ts";
import type { ModuleBuilder } from "./encoder.ts";
import type { ScaledRows } from "../../scaled_rows.ts";
import type { ScalarExpr } from "../../../ops/scalar.ts";

/** A compiled kernel for one node. */
export interface CompiledKernel {
  /** A module importing `env.memory` and exporting `run(...ptrs: i32): void`. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Scratch bytes `run` needs (0: no scratch pointer is passed). */
  readonly scratchBytes: number;
  /** A short description for plans and profiles (`sgemm 64x64x64 relaxed`). */
  readonly label: string;
  /**
   * The same computation split into parts for threads (only when the request asked for
   * `parts > 1` and the generator can split): modules with `run`'s signature, each writing a
   * disjoint share of the outputs and needing its own `scratchBytes` of scratch. Running them
   * in any order, or at once, equals running `bytes`.
   */
  readonly parts?: readonly Uint8Array<ArrayBuffer>[];
  /**
   * Constant inputs the kernel reads in another form, computed now (e.g. transformed
   * weights): by input index, the values the executor uploads once and passes instead.
   * Absent while {@link partConstantInputs} gives the parts other values: `bytes` then needs
   * values nobody computed (they would be wasted work), and only the parts run.
   */
  readonly constantInputs?: ReadonlyMap<number, Float32Array>;
  /**
   * The same for each of `parts`, where parts want their own form (e.g. each packs only its
   * filters); parts without an entry use {@link constantInputs}. The same array object
   * in several places is uploaded once.
   */
  readonly partConstantInputs?: readonly (ReadonlyMap<number, Float32Array> | undefined)[];
  /**
   * Integers `run` takes after the output pointers (before the scratch pointer), for
   * kernels whose work range is an argument (e.g. `[start, end)`): the whole kernel's.
   */
  readonly extraArgs?: readonly number[];
  /** The same for each of `parts` (which may then all be the same bytes as `bytes`). */
  readonly partExtraArgs?: readonly (readonly number[])[];
  /**
   * For each of `parts`, bytes to add to its pointer arguments (its inputs, then its outputs;
   * absent entries 0), so that parts that differ only in where they start in the buffers are
   * the same module (e.g. a convolution's halves by filters).
   */
  readonly partOffsets?: readonly (readonly number[])[];
}

/**
 * What a generator gets: the node, its input and output shapes, and the dtypes its buffers
 * hold. Only a table's `elementwise` generator is given dtypes other than float32 (it reads
 * and writes them through `convert.ts`, declining what it cannot do); op generators always see
 * float32 buffers, the lowering widening and narrowing 16-bit floats around them.
 */
export interface KernelRequest {
  /** The node to compute (its op, parsed attributes, names). */
  readonly node: Node;
  /** Shapes of its inputs. */
  readonly inputs: readonly Shape[];
  /** Shapes of its outputs. */
  readonly outputs: readonly Shape[];
  /** Whether relaxed SIMD may be used. */
  readonly relaxed: boolean;
  /** Import the memory as shared (for threads; default false). */
  readonly shared?: boolean;
  /** How many parts to split the work into, at most (default 1: no split). */
  readonly parts?: number;
  /** Split even work too small to be worth a thread (for tests of the split kernels). */
  readonly forceSplit?: boolean;
  /**
   * For convolutions computed as one product per image (im2col or 1×1): the bytes of columns
   * a block of output rows aims at, when the product is computed a block at a time (default
   * 256 KiB; see `convBlockRows`). Tests set small values to cover blocks on small shapes.
   */
  readonly blockBytes?: number;
  /** Whether 3×3 convolutions may use Winograd F(4×4, 3×3) (default true). */
  readonly winograd?: boolean;
  /**
   * Values of inputs that are constants (parameters), by input index; others undefined. An
   * entry that {@link scaledConstants} also defines is computed when first read.
   */
  readonly constants?: readonly (Float32Array | undefined)[];
  /**
   * Constant inputs defined as rows of float32 values times a factor per row (a convolution's
   * filters with a BatchNorm folded in), by input index; others undefined. Their plain values,
   * `constants[i]`, are computed only if a generator reads them: a generator that packs or
   * transforms such an input in any case should read it from here and apply the factors as it
   * goes (`Math.fround(values[j] · scale[row])`, the bits of `constants[i]`), so that no scaled
   * copy is made. A generator that ignores this field sees the same values in `constants`.
   */
  readonly scaledConstants?: readonly (ScaledRows | undefined)[];
  /**
   * For convolutions: the epilogues (`_sigil_fused_conv`'s `epilogue`, undefined for none) of
   * every node of the program with this node's attributes and shapes, this node's among them,
   * in one order for all of them. A generator may compile them all into one module that takes
   * the index of the node's own as an argument (`extraArgs`), so that layers that differ only
   * in their activation share a module.
   */
  readonly epilogues?: readonly (ScalarExpr | undefined)[];
  /** Dtypes of the input buffers (default: all float32). */
  readonly inputTypes?: readonly DType[];
  /** Dtypes of the output buffers (default: all float32). */
  readonly outputTypes?: readonly DType[];
}

/** Makes a kernel for a node, or undefined when it cannot (the executor then falls back). */
export type KernelGenerator = (request: KernelRequest) => CompiledKernel | undefined;

/** Memory pages (64 KiB) a kernel module declares as its minimum import. */
export const MIN_PAGES = 1;

/** Imports the kernel memory `env.memory` (shared, with the largest maximum, for threads). */
export function importKernelMemory(mb: ModuleBuilder, shared = false): void {
  mb.importMemory(
    "env",
    "memory",
    shared ? { min: MIN_PAGES, max: 65536, shared: true } : { min: MIN_PAGES },
  );
}

/**
 * Splits `total` items into at most `parts` contiguous ranges, each a multiple of `quantum`
 * (but the last), never empty; one range when the work is too small to share.
 */
export function splitRange(
  total: number,
  parts: number,
  quantum = 1,
  minPerPart = 1,
): [number, number][] {
  const units = Math.ceil(total / quantum);
  const count = Math.max(1, Math.min(parts, units, Math.floor(total / Math.max(1, minPerPart))));
  const ranges: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    const lo = Math.min(total, Math.round((units * i) / count) * quantum);
    const hi = Math.min(total, Math.round((units * (i + 1)) / count) * quantum);
    if (hi > lo) ranges.push([lo, hi]);
  }
  return ranges;
}

/** Rounds a byte count up to the 16-byte alignment every kernel pointer has. */
export function align16(bytes: number): number {
  return Math.ceil(bytes / 16) * 16;
}

/**
 * The kernels a WASM engine is built from: a generator per op (by canonical name) and one for
 * every op with a scalar form (elementwise ops and fused chains). A plain value: an engine made
 * from another table (more ops, a faulty generator in a test) changes nothing else.
 */
export interface KernelTable {
  /** Generators by op name. */
  readonly ops: Readonly<Record<string, KernelGenerator>>;
  /** The generator for ops with a scalar form (unless `ops` names the op). */
  readonly elementwise?: KernelGenerator;
  /** The generator for ops with a copy plan (`OpDef.copy`; unless `ops` names the op). */
  readonly copy?: KernelGenerator;
}

/**
 * The generator for a node in `table`: its op's own, else the elementwise one for scalar-form
 * ops, else the copy one for ops with a copy plan.
 */
export function generatorFor(table: KernelTable, node: Node): KernelGenerator | undefined {
  if (Object.hasOwn(table.ops, node.opName)) return table.ops[node.opName];
  if (node.op?.scalar?.(node.parsed)) return table.elementwise;
  return node.op?.copy ? table.copy : undefined;
}
