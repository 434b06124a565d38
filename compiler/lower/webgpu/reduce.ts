/**
 * Reductions and softmax in WGSL.
 *
 * Reductions (`sum`, `mean`, `max`, `min`: any op with a reduction spec) run one invocation
 * per output, looping over the reduced elements. Softmax (`softmax`, `log_softmax`,
 * `SoftmaxActivation`, `SoftmaxOutput` at inference) views its input as (outer, axis, inner):
 * one workgroup of 64 per (outer, inner) row, each invocation striding over the axis, with
 * the max and the sum combined in workgroup memory; the row is read three times (max, sum of
 * exponentials, write).
 *
 * @module
 */
import type { ReductionSpec } from "../../../ops/op.ts";
import { type Shape, shapeSize } from "../../../runtime/shape.ts";
import type { GpuKernelGenerator, GpuKernelRequest } from "./kernel.ts";
import { bindings, coords, entry, f32, grid, offset, SPECIAL_FLOATS, u32 } from "./wgsl.ts";
import { UnsupportedError } from "../../../runtime/errors.ts";

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
  const reduceShared = (op: string) =>
    `  for (var s = ${u32(WG / 2)}; s > 0u; s = s >> 1u) {
    if (lid < s) { part[lid] = ${op}(part[lid], part[lid + s]); }
    workgroupBarrier();
  }`;
  const code = `${bindings([["in", 0], ["out", 0]])}
${SPECIAL_FLOATS}
var<workgroup> part: array<f32, ${WG}>;
fn add(a: f32, b: f32) -> f32 { return a + b; }
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wg.x + wg.y * ${u32(gx)};
  let live = row < ${u32(rows)};
  let o = row / ${u32(Math.max(inner, 1))};
  let i = row % ${u32(Math.max(inner, 1))};
  let base = o * ${u32(m * inner)} + i;
  var mx = bitcast<f32>(sg_ninf);
  if (live) {
    for (var j = lid; j < ${u32(m)}; j = j + ${u32(WG)}) {
      mx = max(mx, ${scaled(`in0[base + j * ${u32(inner)}]`)});
    }
  }
  part[lid] = mx;
  workgroupBarrier();
${reduceShared("max")}
  mx = part[0];
  workgroupBarrier();
  var sum = 0.0f;
  if (live) {
    for (var j = lid; j < ${u32(m)}; j = j + ${u32(WG)}) {
      sum = sum + exp(${scaled(`in0[base + j * ${u32(inner)}]`)} - mx);
    }
  }
  part[lid] = sum;
  workgroupBarrier();
${reduceShared("add")}
  sum = part[0];
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
    label,
    passes: [{ code, workgroups: [gx, gy, 1], bindings: [0, req.inputs.length] }],
  };
};
