/**
 * Convolution in WGSL (1-D, 2-D and 3-D, channel-first, any stride, dilation, padding and
 * grouping), two ways:
 * - as an implicit GEMM (matmul.ts): per image and group, the filters (`F/G × C/G·k`) times the
 *   image's patches (`C/G·k × out pixels`), where a patch element is read straight from the
 *   input at its window position (zero outside), never materialized; a 1×1 convolution with
 *   stride 1 and no padding reads its input as the plain matrix it is; the filters are read
 *   four at a time where `C/G·k` is a multiple of 4, and a pointwise convolution's input
 *   where the pixels are (matmul.ts's vector loads);
 * - directly, one invocation per output: for groups with few filters each (depthwise
 *   convolutions), where a GEMM tile would be mostly empty.
 *
 * @module
 */
import type { ConvAttrs } from "../../../ops/convolution.ts";
import { spatialTuple, to3d } from "../../../ops/kernels.ts";
import { shapeSize } from "../../../runtime/shape.ts";
import type { GpuKernelGenerator, GpuKernelRequest } from "./kernel.ts";
import { gemmKernel } from "./matmul.ts";
import { epilogueWgsl } from "./elementwise.ts";
import type { ScalarExpr } from "../../../ops/scalar.ts";
import {
  type BindingRole,
  bindings,
  checkBindings,
  coords,
  entry,
  grid,
  i32,
  u32,
} from "./wgsl.ts";

/** The geometry of a convolution node in three spatial dims (missing leading dims are 1). */
export function convGeometry(req: GpuKernelRequest) {
  const a = req.node.parsed as unknown as ConvAttrs;
  const n = a.kernel.length;
  const x = req.inputs[0], out = req.outputs[0];
  if (n < 1 || n > 3 || x.length !== n + 2 || out.length !== n + 2) return undefined;
  if (a.layout !== null && !["NCW", "NCHW", "NCDHW"].includes(a.layout)) return undefined;
  const [batch, cin] = x;
  const f = a.num_filter, g = a.num_group;
  if (cin % g !== 0 || f % g !== 0 || out[1] !== f) return undefined;
  return {
    batch,
    cin,
    f,
    g,
    cinG: cin / g,
    fG: f / g,
    bias: !a.no_bias,
    in3: to3d(x.slice(2), 1),
    out3: to3d(out.slice(2), 1),
    k3: to3d(a.kernel, 1),
    s3: to3d(spatialTuple(a.stride, n, 1, "stride", "Convolution"), 1),
    d3: to3d(spatialTuple(a.dilate, n, 1, "dilate", "Convolution"), 1),
    p3: to3d(spatialTuple(a.pad, n, 0, "pad", "Convolution"), 0),
  };
}

type Geometry = NonNullable<ReturnType<typeof convGeometry>>;

/**
 * WGSL that sets `ok` and `at` (the input offset of channel `chan` at window tap `kz, ky, kx`
 * of output position `oz, oy, ox`): `ok` is false in the padding.
 */
function windowRead(c: Geometry, chan: string): string {
  const [id, ih, iw] = c.in3;
  const dims = [
    ["z", 0],
    ["y", 1],
    ["x", 2],
  ] as const;
  const lines = dims.map(([d, i]) =>
    `  let i${d} = i32(o${d} * ${u32(c.s3[i])} + k${d} * ${u32(c.d3[i])}) - ${i32(c.p3[i])};`
  );
  lines.push(
    `  let ok = iz >= 0i && iz < ${i32(id)} && iy >= 0i && iy < ${i32(ih)} && ix >= 0i && ix < ${
      i32(iw)
    };`,
  );
  lines.push(
    `  let at = ((${chan} * ${u32(id)} + u32(iz)) * ${u32(ih)} + u32(iy)) * ${u32(iw)} + u32(ix);`,
  );
  return lines.join("\n");
}

/** Convolution (see the module doc); undefined for channel-last layouts. */
export const convolutionGpuKernel: GpuKernelGenerator = (req) => {
  const c = convGeometry(req);
  if (!c) return undefined;
  // `_sigil_fused_conv`: the epilogue applied to each output as it is stored.
  const epilogue = (req.node.parsed as { epilogue?: ScalarExpr }).epilogue;
  const extra = epilogue ? epilogueWgsl(epilogue) : "";
  const finish = (v: string) => (epilogue ? `sg_epilogue(${v})` : v);
  const [od, oh, ow] = c.out3;
  const [kd, kh, kw] = c.k3;
  const pixels = od * oh * ow;
  const taps = kd * kh * kw;
  const label = `conv ${c.batch}x${c.cin}x${c.in3.join("x")} -> ${c.f} (k ${
    c.k3.join("x")
  }, groups ${c.g})`;
  if (shapeSize(req.outputs[0]) === 0) return { label, passes: [] };
  const roles: [BindingRole, number][] = c.bias
    ? [["in", 0], ["in", 1], ["in", 2], ["out", 0]]
    : [["in", 0], ["in", 1], ["out", 0]];
  checkBindings(roles.length, req.limits, label);
  // Few output pixels (the last stages of a small image; the weight gradient, whose "images"
  // are input channels): a GEMM tile would be nearly empty and wait at every barrier.
  const direct = c.fG < 8 || pixels < 16 ||
    c.batch * c.g > req.limits.maxComputeWorkgroupsPerDimension;
  if (direct) return directConv(req, c, roles, `${label} direct`, extra, finish);
  const K = c.cinG * taps;
  const pointwise = taps === 1 && c.s3.every((s) => s === 1) && c.p3.every((p) => p === 0) &&
    c.in3.every((d, i) => d === c.out3[i]);
  const G = u32(c.g);
  const pointwiseAt = `(b * ${u32(c.cin)} + g * ${u32(c.cinG)} + k) * ${u32(pixels)} + n`;
  const loadB = pointwise
    ? `  let b = z / ${G};
  let g = z % ${G};
  return in0[${pointwiseAt}];`
    : `  let b = z / ${G};
  let g = z % ${G};
  let ci = k / ${u32(taps)};
  let t = k % ${u32(taps)};
  let kz = t / ${u32(kh * kw)};
  let ky = (t / ${u32(kw)}) % ${u32(kh)};
  let kx = t % ${u32(kw)};
  let oz = n / ${u32(oh * ow)};
  let oy = (n / ${u32(ow)}) % ${u32(oh)};
  let ox = n % ${u32(ow)};
${windowRead(c, `(b * ${u32(c.cin)} + g * ${u32(c.cinG)} + ci)`)}
  if (!ok) { return 0.0f; }
  return in0[at];`;
  // Vector loads: the filters along K where K is a multiple of 4, a pointwise convolution's
  // pixels where they are (the gathers of other windows read one element at a time).
  const vecA = K % 4 === 0, vecB = pointwise && pixels % 4 === 0;
  const weightAt = `((z % ${G}) * ${u32(c.fG)} + m) * ${u32(K)} + k`;
  return gemmKernel(
    {
      m: c.fG,
      n: pixels,
      k: K,
      batch: c.batch * c.g,
      loadA: `  return in1[${weightAt}];`,
      loadB,
      ...(vecA ? { loadA4: `  return in1v[(${weightAt}) >> 2u];` } : {}),
      ...(vecB
        ? {
          loadB4: `  let b = z / ${G};
  let g = z % ${G};
  return in0v[(${pointwiseAt}) >> 2u];`,
        }
        : {}),
      ...(vecA || vecB ? { views: [...(vecA ? [1] : []), ...(vecB ? [0] : [])] } : {}),
      store: `  let f = (z % ${G}) * ${u32(c.fG)} + m;
  out0[((z / ${G}) * ${u32(c.f)} + f) * ${u32(pixels)} + n] = ${
        finish(c.bias ? "v + in2[f]" : "v")
      };`,
      ...(extra ? { extra } : {}),
      aAlongK: true,
      bAlongK: false,
      roles,
    },
    req,
    `${label} implicit gemm ${c.fG}x${K}x${pixels}${pointwise ? " pointwise" : ""}`,
  );
};

/** One invocation per output, looping over its group's channels and the window. */
function directConv(
  req: GpuKernelRequest,
  c: Geometry,
  roles: [BindingRole, number][],
  label: string,
  extra: string,
  finish: (v: string) => string,
) {
  const [od, oh, ow] = c.out3;
  const [kd, kh, kw] = c.k3;
  const total = shapeSize(req.outputs[0]);
  const g = grid(total, req.limits);
  const body = `${coords([c.batch, c.f, od, oh, ow], "c")}
  let b = c0;
  let f = c1;
  let oz = c2;
  let oy = c3;
  let ox = c4;
  let grp = f / ${u32(c.fG)};
  var acc = ${c.bias ? "in2[f]" : "0.0f"};
  for (var ci = 0u; ci < ${u32(c.cinG)}; ci = ci + 1u) {
    let chan = b * ${u32(c.cin)} + grp * ${u32(c.cinG)} + ci;
    let wbase = (f * ${u32(c.cinG)} + ci) * ${u32(kd * kh * kw)};
    for (var kz = 0u; kz < ${u32(kd)}; kz = kz + 1u) {
      for (var ky = 0u; ky < ${u32(kh)}; ky = ky + 1u) {
        for (var kx = 0u; kx < ${u32(kw)}; kx = kx + 1u) {
${windowRead(c, "chan")}
          if (ok) {
            acc = fma(in0[at], in1[wbase + (kz * ${u32(kh)} + ky) * ${u32(kw)} + kx], acc);
          }
        }
      }
    }
  }
  out0[idx] = ${finish("acc")};`;
  const n = req.inputs.length;
  return {
    label,
    passes: [{
      code: `${bindings(roles)}\n${extra}\n${entry(g, body)}`,
      workgroups: g.workgroups,
      bindings: roles.map(([r, k]) => (r === "in" ? k : n + k)),
    }],
  };
}
