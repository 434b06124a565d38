/**
 * The resize ops (ops/resize.ts) in WGSL, float32 NCHW:
 * - `UpSampling` nearest: the op's copy plans as copy passes (concat mode), or one invocation
 *   per output adding every input's nearest element (sum mode); bilinear: the Deconvolution
 *   MXNet computes for it (`upsamplingAsDeconvolution`, shared with the WASM engine), through
 *   the Deconvolution kernel;
 * - `_contrib_BilinearResize2D`: one invocation per output element, with MXNet's source index
 *   and weights (`bilinearTaps`, computed in float32 in the shader) and its blend
 *   `h0·(w0·a + w1·b) + h1·(w0·c + w1·d)`.
 *
 * @module
 */
import { nearestPlans, type UpSamplingAttrs } from "../../../ops/resize_math.ts";
import { shapeSize } from "../../../runtime/shape.ts";
import { upsamplingAsDeconvolution } from "../deconvolution.ts";
import { deconvolutionGpuKernel } from "./deconv.ts";
import type { GpuKernel, GpuKernelGenerator } from "./kernel.ts";
import { copyPlanPasses } from "./layout.ts";
import { bindings, checkBindings, coords, entry, f32, grid, u32 } from "./wgsl.ts";

/** `UpSampling` (see the module doc); declines shapes that are not 4-d or are empty. */
export const upsamplingGpuKernel: GpuKernelGenerator = (req): GpuKernel | undefined => {
  const a = req.node.parsed as unknown as UpSamplingAttrs & { sample_type: string };
  const out = req.outputs[0];
  if (
    out === undefined || [...req.inputs, out].some((s) => s.length !== 4 || s.some((d) => d < 1))
  ) {
    return undefined;
  }
  if (a.sample_type === "bilinear") {
    return upsamplingAsDeconvolution(req, deconvolutionGpuKernel);
  }
  if (a.multi_input_mode !== "sum" || req.inputs.length === 1) {
    const plans = nearestPlans(a, req.inputs, out);
    return {
      label: `UpSampling nearest ${req.inputs.map((s) => s.join("x")).join(", ")}`,
      passes: plans.flatMap((plan) => copyPlanPasses(req, plan, 0)),
      typed: true,
    };
  }
  checkBindings(req.inputs.length + 1, req.limits, "UpSampling");
  const [, , oh, ow] = out;
  const g = grid(shapeSize(out), req.limits);
  const terms = req.inputs.map(([, c, h, w], i) =>
    `in${i}[((c0 * ${u32(c)} + c1) * ${u32(h)} + c2 / ${u32(oh / h)}) * ${u32(w)} + c3 / ${
      u32(ow / w)
    }]`
  );
  const roles: Parameters<typeof bindings>[0] = [
    ...req.inputs.map((_, i) => ["in", i] as const),
    ["out", 0],
  ];
  return {
    label: `UpSampling nearest sum of ${req.inputs.length}`,
    passes: [{
      code: `${bindings(roles)}\n${
        entry(g, `${coords(out, "c")}\n  out0[idx] = ${terms.join(" + ")};`)
      }`,
      workgroups: g.workgroups,
      bindings: [...req.inputs.map((_, i) => i), req.inputs.length],
    }],
  };
};

/** WGSL: the source index, step and weight along one axis (MXNet's, in float32). */
function taps(v: string, o: string, inSize: number, outSize: number, align: boolean): string {
  const scale = outSize > 1 ? (align ? (inSize - 1) / (outSize - 1) : inSize / outSize) : 0;
  const r = align
    ? `${f32(scale)} * f32(${o})`
    : `max(${f32(scale)} * (f32(${o}) + 0.5f) - 0.5f, 0.0f)`;
  return `  let r${v} = ${r};
  let i${v} = u32(trunc(r${v}));
  let s${v} = select(0u, 1u, i${v} < ${u32(inSize - 1)});
  let w${v}1 = r${v} - f32(i${v});
  let w${v}0 = 1.0f - w${v}1;`;
}

/** `_contrib_BilinearResize2D` (see the module doc); declines shapes not 4-d or empty. */
export const bilinearResizeGpuKernel: GpuKernelGenerator = (req): GpuKernel | undefined => {
  const align = (req.node.parsed as { align_corners?: boolean }).align_corners ?? true;
  const x = req.inputs[0];
  const y = req.outputs[0];
  if (x === undefined || y === undefined || x.length !== 4 || y.length !== 4) return undefined;
  if ([...x, ...y].some((d) => d < 1)) return undefined;
  const [n, c, ih, iw] = x;
  const [, , oh, ow] = y;
  const g = grid(shapeSize(y), req.limits);
  const body = `${coords([n * c, oh, ow], "c")}
${taps("y", "c1", ih, oh, align)}
${taps("x", "c2", iw, ow, align)}
  let base = c0 * ${u32(ih * iw)};
  let r0 = base + iy * ${u32(iw)};
  let r1 = r0 + sy * ${u32(iw)};
  let top = wx0 * in0[r0 + ix] + wx1 * in0[r0 + ix + sx];
  let bottom = wx0 * in0[r1 + ix] + wx1 * in0[r1 + ix + sx];
  out0[idx] = wy0 * top + wy1 * bottom;`;
  return {
    label: `BilinearResize2D ${x.join("x")} -> ${y.join("x")}`,
    passes: [{
      code: `${bindings([["in", 0], ["out", 0]])}\n${entry(g, body)}`,
      workgroups: g.workgroups,
      bindings: [0, req.inputs.length],
    }],
  };
};

/**
 * `_sigil_bilinear_resize_grad` (the transpose of bilinear resizing): one invocation per result
 * pixel gathers the incoming values whose taps read it, `Σ h(oy, y) · w(ox, x) · g[oy, ox]`, the
 * row weight `h` summing both taps where they coincide (at the last row), as the reference's
 * scatter adds them.
 */
export const bilinearResizeGradGpuKernel: GpuKernelGenerator = (req): GpuKernel | undefined => {
  const align = (req.node.parsed as { align_corners?: boolean }).align_corners ?? true;
  const g = req.inputs[0];
  const y = req.outputs[0];
  if (g === undefined || y === undefined || g.length !== 4 || y.length !== 4) return undefined;
  if ([...g, ...y].some((d) => d < 1)) return undefined;
  const [n, c, oh, ow] = g;
  const [, , ih, iw] = y;
  const gr = grid(shapeSize(y), req.limits);
  const body = `${coords([n * c, ih, iw], "c")}
  let base = c0 * ${u32(oh * ow)};
  var acc = 0.0f;
  for (var oy = 0u; oy < ${u32(oh)}; oy = oy + 1u) {
  ${taps("y", "oy", ih, oh, align).replaceAll("\n", "\n  ")}
    let h = select(0.0f, wy0, iy == c1) + select(0.0f, wy1, iy + sy == c1);
    if (h == 0.0f) { continue; }
    for (var ox = 0u; ox < ${u32(ow)}; ox = ox + 1u) {
    ${taps("x", "ox", iw, ow, align).replaceAll("\n", "\n    ")}
      let w = select(0.0f, wx0, ix == c2) + select(0.0f, wx1, ix + sx == c2);
      acc = acc + h * w * in0[base + oy * ${u32(ow)} + ox];
    }
  }
  out0[idx] = acc;`;
  return {
    label: `bilinear resize transpose ${g.join("x")} -> ${y.join("x")}`,
    passes: [{
      code: `${bindings([["in", 0], ["out", 0]])}\n${entry(gr, body)}`,
      workgroups: gr.workgroups,
      bindings: [0, req.inputs.length],
    }],
  };
};
