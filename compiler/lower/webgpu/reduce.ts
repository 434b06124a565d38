/**
 * Reductions and softmax in WGSL.
 *
 * Reductions (`sum`, `mean`, `max`, `min`: any op with a reduction spec) run one invocation
 * per output, looping over the reduced elements, when each output reduces few elements or
 * there are many outputs, or the adapter is a CPU fallback; else ({@link workgroupReduction})
 * one workgroup per output, its
 * invocations striding over the reduced elements (neighbours read neighbouring addresses where
 * the reduced axes are the trailing ones) and combining their partial results as
 * wg_reduce.ts does: a tree in workgroup memory, or subgroup operations where the device has
 * them. Softmax (`softmax`, `log_softmax`, `SoftmaxActivation`, `SoftmaxOutput` at inference)
 * views its input as (outer, axis, inner): one workgroup of 64 per (outer, inner) row, each
 * invocation striding over the axis, with the max and the sum combined the same way; the row
 * is read three times (max, sum of exponentials, write).
 *
 * @module
 */
import type { ReductionSpec } from "../../../ops/op.ts";
import { type Shape, shapeSize } from "../../../runtime/shape.ts";
import type { GpuKernel, GpuKernelGenerator, GpuKernelRequest } from "./kernel.ts";
import { bindings, coords, entry, f32, grid, offset, SPECIAL_FLOATS, u32 } from "./wgsl.ts";
import { UnsupportedError } from "../../../runtime/errors.ts";
import { workgroupCombine } from "./wg_reduce.ts";

function stridesOf(shape: Shape): number[] {
  const s = shape.map(() => 1);
  for (let d = shape.length - 2; d >= 0; d--) s[d] = s[d + 1] * shape[d + 1];
  return s;
}

/** A reduction over the axes its op's spec names (see the module doc). */
export const reductionGpuKernel: GpuKernelGenerator = (req) => {
  const op = req.node.op;
  const x = req.inputs[0];
  if (!op?.reduction || x === undefined || req.inputs.length !== 1) return undefined;
  const spec: ReductionSpec = op.reduction(req.node.parsed, x);
  const reduced = new Set(spec.axes);
  const kept = x.map((_, d) => d).filter((d) => !reduced.has(d));
  const xs = stridesOf(x);
  const total = shapeSize(req.outputs[0]);
  const count = spec.axes.reduce((p, d) => p * x[d], 1);
  const label = `reduce ${spec.combine}${spec.mean ? " mean" : ""} ${x.join("x")} axes ${
    spec.axes.join(",")
  }`;
  if (total === 0) return { label, passes: [] };
  if (total !== kept.reduce((p, d) => p * x[d], 1)) return undefined;
  // A CPU adapter runs workgroups as loops with barriers between: one invocation per output
  // ran 2-10x faster there (bench/README.md).
  const rowwise = req.tuning?.reduction?.workgroup ??
    (!req.fallbackAdapter && workgroupReduction(total, count));
  if (rowwise && count > 1) return reduceByWorkgroups(req, spec, label, total, count);
  const g = grid(total, req.limits);
  const keptNames = kept.map((_, i) => `k${i}`);
  const redShape = spec.axes.map((d) => x[d]);
  const redNames = spec.axes.map((_, i) => `r${i}`);
  const init = f32(spec.init);
  const combine = spec.combine === "add"
    ? "acc = acc + v;"
    : spec.combine === "max"
    ? "acc = max(acc, v);"
    : "acc = min(acc, v);";
  // Reduced axes that are the trailing, contiguous ones read base + r.
  const trailing = spec.axes.every((d, i) => d === x.length - spec.axes.length + i);
  const body = `${coords(kept.map((d) => x[d]), "k")}
  let base = ${offset(keptNames, kept.map((d) => xs[d]))};
  var acc = ${init};
  for (var r = 0u; r < ${u32(count)}; r = r + 1u) {
${
    trailing
      ? "    let v = in0[base + r];"
      : `${coords(redShape, "r", "r").replaceAll("\n", "\n  ").replace(/^/, "  ")}
    let v = in0[base + ${offset(redNames, spec.axes.map((d) => xs[d]))}];`
  }
    ${combine}
  }
  out0[idx] = acc${spec.mean ? ` / ${f32(count)}` : ""};`;
  return {
    label,
    passes: [{
      code: `${bindings([["in", 0], ["out", 0]])}\n${SPECIAL_FLOATS}\n${entry(g, body)}`,
      workgroups: g.workgroups,
      bindings: [0, 1],
    }],
  };
};

/**
 * Whether a reduction of `count` elements into each of `total` outputs runs one workgroup per
 * output: when each output reduces at least 128 elements and there are few outputs (at most
 * 4096), or at least 2048 elements each, whatever the outputs. Below that, one invocation per
 * output keeps a GPU busier with no barriers.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { workgroupReduction } from "./reduce.ts";
 * assert(workgroupReduction(1, 1000)); // a global sum
 * assert(!workgroupReduction(1 << 16, 16)); // many short rows
 * ```
 */
export function workgroupReduction(total: number, count: number): boolean {
  return count >= 128 && (total <= 4096 || count >= 2048);
}

/**
 * The largest power of two at most `want` that the device's workgroups allow (the tuning's
 * workgroup size, which `maxComputeWorkgroupSizeX` reflects, is for one-invocation-per-item
 * kernels; WebGPU guarantees 256 along x).
 */
function workgroupSize(req: GpuKernelRequest, want: number): number {
  const cap = Math.min(want, req.limits.maxComputeInvocationsPerWorkgroup);
  return 2 ** Math.floor(Math.log2(Math.max(2, cap)));
}

/**
 * One workgroup per output, combining its invocations' partial results (see the module doc):
 * the reduction `spec` of the input over its axes, of each element's `term` (default itself),
 * the result written through `finish` (default: itself, or the mean). `norm` uses it too.
 */
export function reduceByWorkgroups(
  req: GpuKernelRequest,
  spec: ReductionSpec,
  label: string,
  total: number,
  count: number,
  term: (v: string) => string = (v) => v,
  finish?: (r: string) => string,
): GpuKernel {
  const x = req.inputs[0];
  const reduced = new Set(spec.axes);
  const kept = x.map((_, d) => d).filter((d) => !reduced.has(d));
  const xs = stridesOf(x);
  const size = workgroupSize(req, count >= 4096 ? 256 : 64);
  const maxDim = req.limits.maxComputeWorkgroupsPerDimension;
  const gx = Math.min(total, maxDim), gy = Math.ceil(total / gx);
  if (gy > maxDim) {
    throw new UnsupportedError(`WebGPU: ${total} reduction outputs exceed the dispatch limits`);
  }
  const c = workgroupCombine(size, req.subgroups, false);
  const trailing = spec.axes.every((d, i) => d === x.length - spec.axes.length + i);
  const redShape = spec.axes.map((d) => x[d]);
  const read = trailing
    ? "in0[base + r]"
    : `in0[base + ${offset(spec.axes.map((_, i) => `r${i}`), spec.axes.map((d) => xs[d]))}]`;
  const fold = spec.combine === "add" ? "acc = acc + v;" : `acc = ${spec.combine}(acc, v);`;
  const code = `${c.directive}${bindings([["in", 0], ["out", 0]])}
${SPECIAL_FLOATS}
${c.decls}
@compute @workgroup_size(${size})
fn main(@builtin(workgroup_id) wg: vec3<u32>, ${c.params}) {
  let row = wg.x + wg.y * ${u32(gx)};
  let live = row < ${u32(total)};
  let idx = min(row, ${u32(total - 1)});
${coords(kept.map((d) => x[d]), "k")}
  let base = ${offset(kept.map((_, i) => `k${i}`), kept.map((d) => xs[d]))};
  var acc = ${f32(spec.init)};
  if (live) {
    for (var r = lid; r < ${u32(count)}; r = r + ${u32(size)}) {
${trailing ? "" : coords(redShape, "r", "r").replaceAll(/^/gm, "    ")}
      let v = ${term(read)};
      ${fold}
    }
  }
${c.combine(spec.combine, "acc", "whole")}
  if (live && lid == 0u) {
    out0[row] = ${finish ? finish("whole") : `whole${spec.mean ? ` / ${f32(count)}` : ""}`};
  }
}`;
  return {
    label: `${label} workgroups of ${size}${c.subgroups ? " subgroups" : ""}`,
    passes: [{ code, workgroups: [gx, gy, 1], bindings: [0, 1] }],
  };
}

/** The (outer, axis, inner) view of a softmax node, its temperature, and whether it is log. */
function softmaxView(
  req: GpuKernelRequest,
): { view: [number, number, number]; t: number; log: boolean } | undefined {
  const x = req.inputs[0];
  const a = req.node.parsed as Record<string, unknown>;
  if (x === undefined || x.length === 0) return undefined;
  const n = x.length;
  const prod = (lo: number, hi = n) => shapeSize(x.slice(lo, hi));
  switch (req.node.opName) {
    case "softmax":
    case "log_softmax": {
      if (a.use_length || req.inputs.length !== 1) return undefined;
      const axis = ((a.axis as number) % n + n) % n;
      return {
        view: [prod(0, axis), x[axis], prod(axis + 1)],
        t: (a.temperature as number | null) ?? 1,
        log: req.node.opName === "log_softmax",
      };
    }
    case "SoftmaxActivation":
      return {
        view: a.mode === "channel" ? [x[0], x[1] ?? 1, prod(2)] : [prod(0, n - 1), x[n - 1], 1],
        t: 1,
        log: false,
      };
    case "SoftmaxOutput": {
      const total = shapeSize(x);
      if (a.multi_output) return { view: [x[0], x[1] ?? 1, prod(2)], t: 1, log: false };
      if (a.preserve_shape) return { view: [total / x[n - 1], x[n - 1], 1], t: 1, log: false };
      return { view: [x[0], total / x[0], 1], t: 1, log: false };
    }
  }
  return undefined;
}

const WG = 64;

/** Softmax and its kin (see the module doc); declines `use_length`. */
export const softmaxGpuKernel: GpuKernelGenerator = (req) => {
  const v = softmaxView(req);
  if (!v) return undefined;
  const [outer, m, inner] = v.view;
  if (![outer, m, inner].every((d) => Number.isInteger(d) && d >= 0)) return undefined;
  const rows = outer * inner;
  const label = `${v.log ? "log_softmax" : "softmax"} ${outer}x${m}x${inner}`;
  if (rows * m === 0) return { label, passes: [] };
  const maxDim = req.limits.maxComputeWorkgroupsPerDimension;
  const gx = Math.min(rows, maxDim), gy = Math.ceil(rows / gx);
  if (gy > maxDim || req.limits.maxComputeInvocationsPerWorkgroup < WG) {
    throw new UnsupportedError(`WebGPU: ${rows} softmax rows exceed the dispatch limits`);
  }
  const scaled = (e: string) => (v.t === 1 ? e : `(${e} / ${f32(v.t)})`);
  const c = workgroupCombine(WG, req.subgroups, false);
  const code = `${c.directive}${bindings([["in", 0], ["out", 0]])}
${SPECIAL_FLOATS}
${c.decls}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, ${c.params}) {
  let row = wg.x + wg.y * ${u32(gx)};
  let live = row < ${u32(rows)};
  let o = row / ${u32(Math.max(inner, 1))};
  let i = row % ${u32(Math.max(inner, 1))};
  let base = o * ${u32(m * inner)} + i;
  var mx0 = bitcast<f32>(sg_ninf);
  if (live) {
    for (var j = lid; j < ${u32(m)}; j = j + ${u32(WG)}) {
      mx0 = max(mx0, ${scaled(`in0[base + j * ${u32(inner)}]`)});
    }
  }
${c.combine("max", "mx0", "mx")}
  var sum0 = 0.0f;
  if (live) {
    for (var j = lid; j < ${u32(m)}; j = j + ${u32(WG)}) {
      sum0 = sum0 + exp(${scaled(`in0[base + j * ${u32(inner)}]`)} - mx);
    }
  }
${c.combine("add", "sum0", "sum")}
  if (live) {
    for (var j = lid; j < ${u32(m)}; j = j + ${u32(WG)}) {
      let at = base + j * ${u32(inner)};
      ${
    v.log
      ? `out0[at] = ${scaled("in0[at]")} - mx - log(sum);`
      : `out0[at] = exp(${scaled("in0[at]")} - mx) / sum;`
  }
    }
  }
}`;
  return {
    label: `${label}${c.subgroups ? " subgroups" : ""}`,
    passes: [{ code, workgroups: [gx, gy, 1], bindings: [0, req.inputs.length] }],
  };
};
