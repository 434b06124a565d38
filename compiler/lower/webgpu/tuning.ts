/**
 * Workgroup sizes and GEMM tile shapes for WebGPU kernels: a small table keyed by op family
 * and shape class gives the choice a program uses, and {@link tuningCandidates} the choices an
 * autotuning compile (`webgpuEngine({ tune: true })`) times once per program, caching the
 * fastest per device and kernel signature. Every candidate computes the same values; only the
 * speed differs.
 *
 * Generators read a choice in two ways: 1-D kernels size their workgroups from the device's
 * `maxComputeWorkgroupSizeX`, which {@link tunedLimits} lowers to the chosen size; GEMM kernels
 * (FullyConnected, dot, batch_dot, implicit-GEMM Convolution) read {@link GpuTuning.gemm}.
 *
 * @module
 */
import { shapeSize } from "../../../runtime/shape.ts";
import type { Shape } from "../../../runtime/shape.ts";
import type { GpuLimits } from "./gpu.ts";

/** A choice of workgroup size and GEMM tiling for one kernel. */
export interface GpuTuning {
  /** Invocations per workgroup of one-dimensional kernels (elementwise, copies, pooling ...). */
  readonly workgroupSize: number;
  /**
   * GEMM kernels: `tiled` (workgroup-shared tiles) or one invocation per output, the outputs
   * per invocation `[rows, columns]` of a tiled product (default: by the product's shape),
   * whether tiles load four elements at a time where the shapes allow (`vec4`, default true),
   * whether the K step is unrolled (`unroll`, default: unless the adapter is a CPU one), and
   * whether an untiled product runs split-K, one workgroup per output (`splitK`, default: skinny
   * products with both operands along a K of 256 or more, unless the adapter is a CPU one).
   */
  readonly gemm?: {
    readonly tiled?: boolean;
    readonly micro?: readonly [number, number];
    readonly vec4?: boolean;
    readonly unroll?: boolean;
    readonly splitK?: boolean;
  };
  /**
   * Reductions: one workgroup per output (`workgroup: true`) or one invocation per output
   * (default: by the reduction's shape, reduce.ts).
   */
  readonly reduction?: { readonly workgroup?: boolean };
}

/** Op families the table distinguishes. */
export type TuningFamily = "gemm" | "pointwise";

/** Shape classes: outputs counted, small below 16 Ki elements, large from 256 Ki. */
export type ShapeClass = "small" | "medium" | "large";

/** One row of {@link TUNING_TABLE}. */
export interface TuningRow {
  /** The op family. */
  readonly family: TuningFamily;
  /** The shape class. */
  readonly shapeClass: ShapeClass;
  /** The choice. */
  readonly choice: GpuTuning;
}

const GEMM_OPS: ReadonlySet<string> = new Set([
  "FullyConnected",
  "dot",
  "batch_dot",
  "Convolution",
]);

/**
 * The default choices. Small outputs use 64-invocation workgroups, so that more workgroups
 * spread over a GPU's cores; GEMMs keep the generator's shape-based tiles (`gemm` unset).
 */
export const TUNING_TABLE: readonly TuningRow[] = Object.freeze(
  [
    { family: "pointwise", shapeClass: "small", choice: { workgroupSize: 64 } },
    { family: "pointwise", shapeClass: "medium", choice: { workgroupSize: 256 } },
    { family: "pointwise", shapeClass: "large", choice: { workgroupSize: 256 } },
    { family: "gemm", shapeClass: "small", choice: { workgroupSize: 64 } },
    { family: "gemm", shapeClass: "medium", choice: { workgroupSize: 256 } },
    { family: "gemm", shapeClass: "large", choice: { workgroupSize: 256 } },
  ] as const,
);

/** The family and shape class of a node's kernel. */
export function tuningClass(
  op: string,
  outputs: readonly Shape[],
): { family: TuningFamily; shapeClass: ShapeClass } {
  const n = outputs.reduce((t, s) => t + shapeSize(s), 0);
  return {
    family: GEMM_OPS.has(op) ? "gemm" : "pointwise",
    shapeClass: n < 1 << 14 ? "small" : n < 1 << 18 ? "medium" : "large",
  };
}

/** The table's choice for a node's kernel. */
export function defaultTuning(op: string, outputs: readonly Shape[]): GpuTuning {
  const { family, shapeClass } = tuningClass(op, outputs);
  return TUNING_TABLE.find((r) => r.family === family && r.shapeClass === shapeClass)!.choice;
}

/** The choices an autotuning compile times for a node's kernel, the table's first. */
export function tuningCandidates(op: string, outputs: readonly Shape[]): GpuTuning[] {
  const first = defaultTuning(op, outputs);
  const { family } = tuningClass(op, outputs);
  const more: GpuTuning[] = family === "gemm"
    ? [
      { workgroupSize: 256, gemm: { tiled: true, micro: [1, 1] } },
      { workgroupSize: 256, gemm: { tiled: true, micro: [2, 2] } },
      { workgroupSize: 256, gemm: { tiled: true, micro: [4, 4] } },
      { workgroupSize: 256, gemm: { tiled: true, micro: [4, 4], unroll: false } },
      { workgroupSize: 256, gemm: { tiled: true, micro: [4, 4], vec4: false } },
      { workgroupSize: 64, gemm: { tiled: false, splitK: false } },
      { workgroupSize: 64, gemm: { tiled: false, splitK: true } },
    ]
    : [64, 128, 256].map((workgroupSize) => ({ workgroupSize }));
  const seen = new Set<string>([JSON.stringify(first)]);
  return [
    first,
    ...more.filter((c) => !seen.has(JSON.stringify(c)) && seen.add(JSON.stringify(c))),
  ];
}

/** The device's limits as a kernel generated for `tuning` sees them. */
export function tunedLimits(limits: GpuLimits, tuning: GpuTuning): GpuLimits {
  const x = Math.min(limits.maxComputeWorkgroupSizeX, Math.max(1, tuning.workgroupSize));
  return x === limits.maxComputeWorkgroupSizeX
    ? limits
    : Object.freeze({ ...limits, maxComputeWorkgroupSizeX: x });
}
