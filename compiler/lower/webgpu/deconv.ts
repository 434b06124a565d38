/**
 * `Deconvolution` (the transposed convolution) in WGSL: channel-first NCW / NCHW / NCDHW with
 * stride, pad or target_shape, adj, dilate, groups and bias. One invocation per output element
 * gathers what the reference scatters: for each input channel of its group and each tap, the
 * input position `(out + pad - tap·dilate) / stride` where that division is exact and in range.
 * Channel-last layouts are handled by the layout wrapper (layout_wrap.ts).
 *
 * @module
 */
import type { DeconvAttrs } from "../../../ops/deconvolution.ts";
import { shapeSize } from "../../../runtime/shape.ts";
import { deconvGeometry } from "../deconvolution.ts";
import type { GpuKernel, GpuKernelGenerator } from "./kernel.ts";
import { bindings, coords, entry, grid, i32, u32 } from "./wgsl.ts";

/** Deconvolution (see the module doc); undefined for channel-last layouts. */
export const deconvolutionGpuKernel: GpuKernelGenerator = (req): GpuKernel | undefined => {
  const a = req.node.parsed as unknown as DeconvAttrs;
  const [x, w] = req.inputs;
  const y = req.outputs[0];
  const n = a.kernel.length;
  if (x === undefined || w === undefined || y === undefined) return undefined;
  if (n < 1 || n > 3 || x.length !== n + 2 || y.length !== n + 2) return undefined;
  if (a.layout !== null && !a.layout.startsWith("NC")) return undefined;
  const groups = a.num_group;
  const cin = x[1];
  const F = a.num_filter;
  const cinG = cin / groups;
  const fG = F / groups;
  if (!Number.isInteger(cinG) || !Number.isInteger(fG) || y[1] !== F) return undefined;
  const label = `Deconvolution ${x.join("x")} -> ${y.join("x")}`;
  const total = shapeSize(y);
  if (total === 0) return { label, passes: [] };
  const { i3, o3, k3, s3, d3, p3 } = deconvGeometry(a, x, y);
  const bias = !a.no_bias;
  const g = grid(total, req.limits);
  const taps = shapeSize(k3);
  const axis = (v: string, o: string, d: number, k: string) =>
    `let t${v} = i32(${o}) + ${i32(p3[d])} - i32(${k}) * ${i32(d3[d])};
      if (t${v} < 0i || t${v} % ${i32(s3[d])} != 0i) { continue; }
      let ${v} = t${v} / ${i32(s3[d])};
      if (${v} >= ${i32(i3[d])}) { continue; }`;
  const body = `${coords([x[0], F, ...o3], "c")}
  let grp = c1 / ${u32(fG)};
  let fl = c1 % ${u32(fG)};
  var acc = ${bias ? "in2[c1]" : "0.0f"};
  for (var ci = 0u; ci < ${u32(cinG)}; ci = ci + 1u) {
    let ch = grp * ${u32(cinG)} + ci;
    let xb = (c0 * ${u32(cin)} + ch) * ${u32(shapeSize(i3))};
    let wb = (ch * ${u32(fG)} + fl) * ${u32(taps)};
    for (var k0 = 0u; k0 < ${u32(k3[0])}; k0 = k0 + 1u) {
      ${axis("z", "c2", 0, "k0")}
      for (var k1 = 0u; k1 < ${u32(k3[1])}; k1 = k1 + 1u) {
        ${axis("yy", "c3", 1, "k1")}
        for (var k2 = 0u; k2 < ${u32(k3[2])}; k2 = k2 + 1u) {
          ${axis("xx", "c4", 2, "k2")}
          acc = acc + in0[xb + u32((z * ${i32(i3[1])} + yy) * ${i32(i3[2])} + xx)] *
            in1[wb + (k0 * ${u32(k3[1])} + k1) * ${u32(k3[2])} + k2];
        }
      }
    }
  }
  out0[idx] = acc;`;
  const roles: Parameters<typeof bindings>[0] = bias
    ? [["in", 0], ["in", 1], ["in", 2], ["out", 0]]
    : [["in", 0], ["in", 1], ["out", 0]];
  const nIn = req.inputs.length;
  return {
    label,
    passes: [{
      code: `${bindings(roles)}\n${entry(g, body)}`,
      workgroups: g.workgroups,
      bindings: roles.map(([r, k]) => (r === "in" ? k : nIn + k)),
    }],
  };
};
