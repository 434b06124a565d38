/**
 * Pooling in WGSL: one invocation per output, walking its window (1-D, 2-D or 3-D,
 * channel-first; max, avg, sum and lp; global pooling; every convention), with the window
 * bounds, the average's count and the max's start value exactly as the op's reference.
 *
 * @module
 */
import { spatialTuple, to3d } from "../../../ops/kernels.ts";
import { shapeSize } from "../../../runtime/shape.ts";
import type { GpuKernelGenerator } from "./kernel.ts";
import { bindings, coords, entry, f32, grid, i32, u32 } from "./wgsl.ts";

interface PoolAttrs {
  readonly kernel: readonly number[];
  readonly pool_type: "max" | "avg" | "sum" | "lp";
  readonly global_pool: boolean;
  readonly stride: readonly number[];
  readonly pad: readonly number[];
  readonly p_value: number | null;
  readonly count_include_pad: boolean | null;
  readonly layout: string | null;
}

/** The lowest finite float32 (MXNet's start of a max window). */
const LOWEST = -3.4028234663852886e38;

/** Pooling (see the module doc); undefined for channel-last layouts and adaptive pooling. */
export const poolingGpuKernel: GpuKernelGenerator = (req) => {
  const a = req.node.parsed as unknown as PoolAttrs;
  const x = req.inputs[0], out = req.outputs[0];
  const n = x.length - 2;
  if (n < 1 || n > 3 || out.length !== x.length) return undefined;
  if (a.layout !== null && !["NCW", "NCHW", "NCDHW"].includes(a.layout)) return undefined;
  const spatial = x.slice(2);
  const kernel = a.global_pool ? spatial : [...a.kernel];
  const stride = a.global_pool
    ? spatial.map(() => 1)
    : spatialTuple(a.stride, n, 1, "stride", "Pooling");
  const pad = a.global_pool ? spatial.map(() => 0) : spatialTuple(a.pad, n, 0, "pad", "Pooling");
  if (kernel.length !== n) return undefined;
  const [id, ih, iw] = to3d(spatial, 1);
  const [od, oh, ow] = to3d(out.slice(2), 1);
  const k3 = to3d(kernel, 1), s3 = to3d(stride, 1), p3 = to3d(pad, 0);
  const planes = x[0] * x[1];
  const label = `pool ${a.pool_type} ${x.join("x")} -> ${out.join("x")}`;
  const total = shapeSize(out);
  if (total === 0) return { label, passes: [] };
  const p = a.p_value ?? 1;
  const includePad = a.count_include_pad ?? true;
  const g = grid(total, req.limits);
  const axis = (d: string, i: number, size: number) =>
    `  let ${d}0 = i32(o${d} * ${u32(s3[i])}) - ${i32(p3[i])};
  let ${d}1 = min(${d}0 + ${i32(k3[i])}, ${i32(size + p3[i])});
  let ${d}lo = max(${d}0, 0i);
  let ${d}hi = min(${d}1, ${i32(size)});`;
  const combine = a.pool_type === "max"
    ? "acc = max(acc, v);"
    : a.pool_type === "lp"
    ? `acc = acc + ${p === 1 ? "v" : p === 2 ? "v * v" : "v * v * v"};`
    : "acc = acc + v;";
  let finish = "";
  if (a.pool_type === "avg") {
    finish = includePad
      ? "  acc = acc / f32((z1 - z0) * (y1 - y0) * (x1 - x0));"
      : "  acc = acc / f32((zhi - zlo) * (yhi - ylo) * (xhi - xlo));";
  } else if (a.pool_type === "lp" && p === 2) finish = "  acc = sqrt(acc);";
  else if (a.pool_type === "lp" && p === 3) {
    finish = "  acc = sign(acc) * pow(abs(acc), 1.0f / 3.0f);";
  }
  const body = `${coords([planes, od, oh, ow], "c")}
  let plane = c0;
  let oz = c1;
  let oy = c2;
  let ox = c3;
${axis("z", 0, id)}
${axis("y", 1, ih)}
${axis("x", 2, iw)}
  var acc = ${a.pool_type === "max" ? f32(LOWEST) : "0.0f"};
  for (var zi = zlo; zi < zhi; zi = zi + 1i) {
    for (var yi = ylo; yi < yhi; yi = yi + 1i) {
      let row = (plane * ${u32(id)} + u32(zi)) * ${u32(ih)} + u32(yi);
      for (var xi = xlo; xi < xhi; xi = xi + 1i) {
        let v = in0[row * ${u32(iw)} + u32(xi)];
        ${combine}
      }
    }
  }
${finish}
  out0[idx] = acc;`;
  return {
    label,
    passes: [{
      code: `${bindings([["in", 0], ["out", 0]])}\n${entry(g, body)}`,
      workgroups: g.workgroups,
      bindings: [0, req.inputs.length],
    }],
  };
};
