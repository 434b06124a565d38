/**
 * Elementwise ops the scalar-form generator does not take whole, in WGSL:
 * - `LeakyReLU` prelu (gamma along axis 1, viewed as `(1, C, 1, ...)` for the elementwise
 *   shader) and rrelu (its hidden `mask` output holds the inference slope everywhere);
 * - `Dropout` at inference: the identity as a copy, and its hidden `mask` of ones;
 * - `amp_multicast` where every output keeps its input's dtype (float32 graphs): copies.
 *
 * @module
 */
import { s, type ScalarExpr } from "../../../ops/scalar.ts";
import type { DType } from "../../../runtime/dtype.ts";
import { shapeSize } from "../../../runtime/shape.ts";
import { elementwiseShader } from "./elementwise.ts";
import type { GpuKernel, GpuKernelGenerator, GpuKernelRequest, GpuPass } from "./kernel.ts";
import { copyPlanPasses } from "./layout.ts";
import { bindings, entry, f32, grid } from "./wgsl.ts";

/** A pass writing `value` to every element of output `out`. */
function fillPass(req: GpuKernelRequest, out: number, value: number): GpuPass[] {
  const count = shapeSize(req.outputs[out]);
  if (count === 0) return [];
  const g = grid(count, req.limits);
  return [{
    code: `${bindings([["out", out]])}\n${entry(g, `  out${out}[idx] = ${f32(value)};`)}`,
    workgroups: g.workgroups,
    bindings: [req.inputs.length + out],
  }];
}

/** The passes copying input `input` whole into output `out` (as bits). */
function copyPasses(req: GpuKernelRequest, input: number, out: number): GpuPass[] {
  const count = shapeSize(req.outputs[out]);
  if (count === 0) return [];
  return copyPlanPasses(req, [{
    input,
    src: 0,
    dst: 0,
    dims: [{ size: count, src: 1, dst: 1 }],
  }], out);
}

/** `x > 0 ? x : gamma[c] · x` over (data, gamma as (1, C, 1, ...)). */
const PRELU: ScalarExpr = s.select(
  s.binary("gt", s.in(0), s.c(0)),
  s.in(0),
  s.mul(s.in(0), s.in(1)),
);

/** `LeakyReLU` where its scalar form does not cover it: prelu, and rrelu with its mask. */
export const leakyReluGpuKernel: GpuKernelGenerator = (req): GpuKernel | undefined => {
  const a = req.node.parsed as { act_type: string; lower_bound: number; upper_bound: number };
  const x = req.inputs[0];
  if (x === undefined || req.outputs.length < 1) return undefined;
  const label = `LeakyReLU ${a.act_type} ${x.join("x")}`;
  if (shapeSize(x) === 0) return { label, passes: [] };
  const n = req.inputs.length;
  if (a.act_type === "prelu") {
    const gamma = req.inputs[1];
    if (gamma === undefined || gamma.length !== 1 || x.length < 2) return undefined;
    if (gamma[0] !== 1 && gamma[0] !== x[1]) return undefined;
    const view = x.map((_, i) => (i === 1 ? gamma[0] : 1));
    const shader = elementwiseShader(PRELU, [x, view], x, { limits: req.limits });
    if (!shader) return undefined;
    return {
      label,
      passes: [{ code: shader.code, workgroups: shader.workgroups, bindings: [...shader.used, n] }],
    };
  }
  const expr = req.node.op?.scalar?.(req.node.parsed);
  if (!expr) return undefined;
  const shader = elementwiseShader(expr, req.inputs, x, { limits: req.limits });
  if (!shader) return undefined;
  const passes: GpuPass[] = [
    { code: shader.code, workgroups: shader.workgroups, bindings: [...shader.used, n] },
  ];
  if (req.outputs.length > 1) {
    if (a.act_type !== "rrelu") return undefined;
    passes.push(...fillPass(req, 1, (a.lower_bound + a.upper_bound) / 2));
  }
  return { label, passes };
};

/** `Dropout` at inference (mode training, or p = 0): a copy, and a mask of ones. */
export const dropoutGpuKernel: GpuKernelGenerator = (req): GpuKernel | undefined => {
  const a = req.node.parsed as { p: number; mode: string };
  if (a.mode === "always" && a.p > 0) return undefined;
  if (req.inputs.length !== 1 || req.outputs.length !== 2) return undefined;
  return {
    label: `Dropout ${req.inputs[0].join("x")} (identity)`,
    passes: [...copyPasses(req, 0, 0), ...fillPass(req, 1, 1)],
  };
};

/** `amp_multicast` where every output has its input's dtype: a copy per output. */
export const ampMulticastGpuKernel: GpuKernelGenerator = (req): GpuKernel | undefined => {
  const ins = req.inputTypes ?? req.inputs.map((): DType => "float32");
  const outs = req.outputTypes ?? req.outputs.map((): DType => "float32");
  if (req.outputs.length !== req.inputs.length || outs.some((t, i) => t !== ins[i])) {
    return undefined;
  }
  return {
    label: `amp_multicast ${req.inputs.length} copies`,
    passes: req.inputs.flatMap((_, i) => copyPasses(req, i, i)),
    typed: true,
  };
};
