/**
 * Data movement and normalization in WGSL: every op with a copy plan (ops/views.ts: slice,
 * tile, repeat, broadcast_to, stack, ...), plus Concat, SliceChannel and transpose written as
 * copy plans here, run as one pass per plan segment (one invocation per element of the
 * segment's box), copying 32-bit words as bits (so any dtype the device stores); and BatchNorm at inference (where the passes did not fold it into a
 * convolution).
 *
 * @module
 */
import { type CopyPlan, simplifyDims } from "../../../ops/views.ts";
import { type Shape, shapeSize } from "../../../runtime/shape.ts";
import type { GpuKernel, GpuKernelGenerator, GpuKernelRequest, GpuPass } from "./kernel.ts";
import { bindings, coords, entry, f32, grid, i32, u32 } from "./wgsl.ts";

function stridesOf(shape: Shape): number[] {
  const s = shape.map(() => 1);
  for (let d = shape.length - 2; d >= 0; d--) s[d] = s[d + 1] * shape[d + 1];
  return s;
}

/** `base + c0*s0 + ...` as i32 arithmetic (strides may be negative), as a u32 index. */
function signedOffset(names: readonly string[], strides: readonly number[], base: number): string {
  const terms = names.flatMap((n, i) => strides[i] === 0 ? [] : [`i32(${n}) * ${i32(strides[i])}`]);
  return `u32(${[i32(base), ...terms].join(" + ")})`;
}

/** The passes that run a copy plan into output `out` (slot numbers: inputs, then outputs). */
export function copyPlanPasses(
  req: GpuKernelRequest,
  plan: CopyPlan,
  out: number,
): GpuPass[] {
  const n = req.inputs.length;
  const passes: GpuPass[] = [];
  for (const seg of plan) {
    const dims = simplifyDims(seg.dims);
    const count = dims.reduce((p, d) => p * d.size, 1);
    if (count === 0) continue;
    const g = grid(count, req.limits);
    const names = dims.map((_, d) => `c${d}`);
    const body = `${coords(dims.map((d) => d.size), "c")}
  out${out}[${signedOffset(names, dims.map((d) => d.dst), seg.dst)}] = in${seg.input}[${
      signedOffset(names, dims.map((d) => d.src), seg.src)
    }];`;
    passes.push({
      code: `${bindings([["in", seg.input, "u32"], ["out", out, "u32"]])}\n${entry(g, body)}`,
      workgroups: g.workgroups,
      bindings: [seg.input, n + out],
    });
  }
  return passes;
}

/** Any op with a copy plan, as copy passes. */
export const copyGpuKernel: GpuKernelGenerator = (req) => {
  const copy = req.node.op?.copy;
  if (copy === undefined || req.outputs.length !== 1) return undefined;
  const plan = copy(req.node.parsed, req.inputs, req.outputs);
  return {
    label: `${req.node.opName} copy ${
      shapeSize(req.outputs[0])
    } elements (${plan.length} segments)`,
    passes: copyPlanPasses(req, plan, 0),
    typed: true,
  };
};

/** `transpose`: output axes read the input along permuted strides. */
export const transposeGpuKernel: GpuKernelGenerator = (req) => {
  const x = req.inputs[0], y = req.outputs[0];
  const given = (req.node.parsed as { axes: readonly number[] }).axes ?? [];
  const nd = x.length;
  const axes = given.length === 0
    ? Array.from({ length: nd }, (_, i) => nd - 1 - i)
    : given.map((a) => (a < 0 ? a + nd : a));
  if (axes.length !== nd || y.length !== nd) return undefined;
  const xs = stridesOf(x), ys = stridesOf(y);
  const plan: CopyPlan = [{
    input: 0,
    src: 0,
    dst: 0,
    dims: axes.map((a, d) => ({ size: y[d], src: xs[a], dst: ys[d] })),
  }];
  return {
    label: `transpose ${x.join("x")} (${axes.join(",")})`,
    passes: copyPlanPasses(req, plan, 0),
    typed: true,
  };
};

/** `Concat`: each input is a block of rows of the output along the axis. */
export const concatGpuKernel: GpuKernelGenerator = (req) => {
  const out = req.outputs[0];
  const rank = out.length;
  const raw = (req.node.parsed as { dim: number }).dim;
  const axis = raw < 0 ? raw + rank : raw;
  if (axis < 0 || axis >= rank || req.inputs.some((s) => s.length !== rank)) return undefined;
  const outer = shapeSize(out.slice(0, axis));
  const inner = shapeSize(out.slice(axis + 1));
  let at = 0;
  const plan: CopyPlan = req.inputs.map((s, i) => {
    const run = s[axis] * inner;
    const seg = {
      input: i,
      src: 0,
      dst: at,
      dims: [{ size: outer, src: run, dst: out[axis] * inner }, { size: run, src: 1, dst: 1 }],
    };
    at += run;
    return seg;
  });
  return {
    label: `Concat ${req.inputs.length} inputs along ${axis}`,
    passes: copyPlanPasses(req, plan, 0),
    typed: true,
  };
};

/** `SliceChannel`: each output is a block of rows of the input along the axis. */
export const sliceChannelGpuKernel: GpuKernelGenerator = (req) => {
  const x = req.inputs[0];
  const rank = x.length;
  const raw = (req.node.parsed as { axis: number }).axis;
  const axis = raw < 0 ? raw + rank : raw;
  const parts = req.outputs.length;
  if (axis < 0 || axis >= rank || x[axis] % parts !== 0) return undefined;
  const outer = shapeSize(x.slice(0, axis));
  const inner = shapeSize(x.slice(axis + 1));
  const run = (x[axis] / parts) * inner;
  const passes = req.outputs.flatMap((_, o) =>
    copyPlanPasses(req, [{
      input: 0,
      src: o * run,
      dst: 0,
      dims: [{ size: outer, src: x[axis] * inner, dst: run }, { size: run, src: 1, dst: 1 }],
    }], o)
  );
  return { label: `SliceChannel into ${parts} along ${axis}`, passes, typed: true };
};

/** BatchNorm at inference: `(x - mean) / sqrt(var + eps) · gamma + beta` along `axis`. */
export const batchNormGpuKernel: GpuKernelGenerator = (req): GpuKernel | undefined => {
  const a = req.node.parsed as { eps: number; fix_gamma: boolean; axis: number };
  const x = req.inputs[0];
  if (x.length === 0 || req.inputs.length !== 5) return undefined;
  const axis = a.axis < 0 ? a.axis + x.length : a.axis;
  if (axis < 0 || axis >= x.length) return undefined;
  const C = x[axis];
  const inner = shapeSize(x.slice(axis + 1));
  const total = shapeSize(x);
  const label = `BatchNorm ${x.join("x")} axis ${axis}`;
  const n = req.inputs.length;
  const passes: GpuPass[] = [];
  if (total > 0) {
    const g = grid(total, req.limits);
    const roles = a.fix_gamma
      ? [["in", 0], ["in", 2], ["in", 3], ["in", 4], ["out", 0]] as const
      : [["in", 0], ["in", 1], ["in", 2], ["in", 3], ["in", 4], ["out", 0]] as const;
    const body = `  let c = (idx / ${u32(inner)}) % ${u32(C)};
  let scale = ${a.fix_gamma ? "1.0f" : "in1[c]"} / sqrt(in4[c] + ${f32(a.eps)});
  out0[idx] = (in0[idx] - in3[c]) * scale + in2[c];`;
    passes.push({
      code: `${bindings(roles)}\n${entry(g, body)}`,
      workgroups: g.workgroups,
      bindings: roles.map(([r, k]) => (r === "in" ? k : n + k)),
    });
  }
  // The hidden outputs: the moving statistics, as MXNet gives them at inference.
  for (const [o, from] of [[1, 3], [2, 4]] as const) {
    if (req.outputs.length <= o || shapeSize(req.outputs[o]) === 0) continue;
    passes.push(...copyPlanPasses(req, [{
      input: from,
      src: 0,
      dst: 0,
      dims: [{ size: shapeSize(req.outputs[o]), src: 1, dst: 1 }],
    }], o));
  }
  return { label, passes };
};
