/**
 * Normalization layers in WGSL: `LayerNorm`, `InstanceNorm`, `GroupNorm` and
 * `L2Normalization` view their input as (outer, n, inner) rows, as the reference does. A first
 * pass takes the row's statistics in two sweeps (the mean, then the squared deviations from
 * it, in float32) and writes them to the op's hidden outputs (mean and std or var; the L2
 * norm): one invocation per row, or for long rows one workgroup per row combining its
 * invocations' sums (as reductions do, reduce.ts: subgroups where the device has them); a
 * second pass (one invocation per element) normalizes and applies
 * gamma and beta per channel. `norm` (L1 or L2 over any axes) is one invocation per output
 * walking its reduced elements, or one workgroup per output as long reductions are.
 *
 * @module
 */
import { normAxis } from "../../../ops/op.ts";
import { type Shape, shapeSize } from "../../../runtime/shape.ts";
import type { GpuKernel, GpuKernelGenerator, GpuKernelRequest, GpuPass } from "./kernel.ts";
import { bindings, coords, entry, f32, grid, offset, u32 } from "./wgsl.ts";
import { UnsupportedError } from "../../../runtime/errors.ts";
import { reduceByWorkgroups, workgroupReduction } from "./reduce.ts";
import { workgroupCombine } from "./wg_reduce.ts";

interface NormView {
  /** Rows: (outer, inner) pairs, each normalized along n. */
  readonly outer: number;
  readonly n: number;
  readonly inner: number;
  /** Channels of gamma/beta: the element at flat k uses `(k / chanInner) % channels`. */
  readonly channels: number;
  readonly chanInner: number;
  /** What the second statistic output holds. */
  readonly second: "std" | "var";
}

function viewOf(req: GpuKernelRequest): NormView | undefined {
  const x = req.inputs[0];
  const a = req.node.parsed as { axis?: number; num_groups?: number };
  if (x === undefined || req.inputs.length !== 3) return undefined;
  const spatial = shapeSize(x.slice(2));
  switch (req.node.opName) {
    case "LayerNorm": {
      if (x.length === 0) return undefined;
      const axis = normAxis(a.axis ?? -1, x.length);
      const inner = shapeSize(x.slice(axis + 1));
      return {
        outer: shapeSize(x.slice(0, axis)),
        n: x[axis],
        inner,
        channels: x[axis],
        chanInner: inner,
        second: "std",
      };
    }
    case "InstanceNorm":
      if (x.length < 3) return undefined;
      return {
        outer: x[0] * x[1],
        n: spatial,
        inner: 1,
        channels: x[1],
        chanInner: spatial,
        second: "var",
      };
    case "GroupNorm": {
      const groups = a.num_groups ?? 1;
      if (x.length < 2 || x[1] % groups !== 0) return undefined;
      return {
        outer: x[0] * groups,
        n: (x[1] / groups) * spatial,
        inner: 1,
        channels: x[1],
        chanInner: spatial,
        second: "std",
      };
    }
  }
  return undefined;
}

/**
 * A step of a row-statistics pass: a sum over the row of `term(v)` (`v`: one element) declared
 * as `let <sum>`, or a WGSL statement between sums (which may use the sums before it).
 */
type RowStep = { readonly sum: string; readonly term: (v: string) => string } | string;

/** Whether {@link rowPass} gives each row a workgroup (see its doc). */
function byWorkgroups(req: GpuKernelRequest, view: { outer: number; n: number; inner: number }) {
  const rowwise = req.tuning?.reduction?.workgroup ??
    (!req.fallbackAdapter && workgroupReduction(view.outer * view.inner, view.n));
  return rowwise && view.n > 1;
}

/** The label's note of how the statistics pass combines. */
function rowNote(req: GpuKernelRequest, view: { outer: number; n: number; inner: number }) {
  return byWorkgroups(req, view) ? ` rows by workgroups${req.subgroups ? " subgroups" : ""}` : "";
}

/**
 * A pass over the rows of an (outer, n, inner) view computing `steps`, then `tail` (statements
 * that write the row's statistics at `idx`): one invocation per row, or, for long rows
 * ({@link workgroupReduction}; not on CPU adapters) or where the tuning says so, one workgroup
 * per row whose invocations stride over it and combine each sum as wg_reduce.ts does
 * (subgroup operations where the device has them).
 */
function rowPass(
  req: GpuKernelRequest,
  view: { outer: number; n: number; inner: number },
  steps: readonly RowStep[],
  tail: string,
  outs: readonly number[],
): GpuPass {
  const rows = view.outer * view.inner;
  const roles: Parameters<typeof bindings>[0] = [
    ["in", 0],
    ...outs.map((o) => ["out", o] as const),
  ];
  const bound = [0, ...outs.map((o) => req.inputs.length + o)];
  const base = `  let base = (idx / ${u32(view.inner)}) * ${u32(view.n * view.inner)} + idx % ${
    u32(view.inner)
  };`;
  const at = `in0[base + j * ${u32(view.inner)}]`;
  if (!byWorkgroups(req, view)) {
    const g = grid(rows, req.limits);
    const body = steps.map((step, k) =>
      typeof step === "string" ? step : `  var acc${k} = 0.0f;
  for (var j = 0u; j < ${u32(view.n)}; j = j + 1u) {
    let v = ${at};
    acc${k} = acc${k} + ${step.term("v")};
  }
  let ${step.sum} = acc${k};`
    ).join("\n");
    return {
      code: `${bindings(roles)}\n${entry(g, `${base}\n${body}\n${tail}`)}`,
      workgroups: g.workgroups,
      bindings: bound,
    };
  }
  const size = view.n >= 4096 && req.limits.maxComputeInvocationsPerWorkgroup >= 256 ? 256 : 64;
  const maxDim = req.limits.maxComputeWorkgroupsPerDimension;
  const gx = Math.min(rows, maxDim), gy = Math.ceil(rows / gx);
  if (gy > maxDim) {
    throw new UnsupportedError(`WebGPU: ${rows} rows exceed the dispatch limits`);
  }
  const c = workgroupCombine(size, req.subgroups);
  const body = steps.map((step, k) =>
    typeof step === "string" ? step : `  var acc${k} = 0.0f;
  if (live) {
    for (var j = lid; j < ${u32(view.n)}; j = j + ${u32(size)}) {
      let v = ${at};
      acc${k} = acc${k} + ${step.term("v")};
    }
  }
${c.combine("add", `acc${k}`, step.sum)}`
  ).join("\n");
  const code = `${c.directive}${bindings(roles)}
${c.decls}
@compute @workgroup_size(${size})
fn main(@builtin(workgroup_id) wg: vec3<u32>, ${c.params}) {
  let live = wg.x + wg.y * ${u32(gx)} < ${u32(rows)};
  let idx = min(wg.x + wg.y * ${u32(gx)}, ${u32(rows - 1)});
${base}
${body}
  if (live && lid == 0u) {
${tail}
  }
}`;
  return { code, workgroups: [gx, gy, 1], bindings: bound };
}

/** The statistics pass of LayerNorm, InstanceNorm and GroupNorm: mean, then squared deviations. */
function statsPass(
  req: GpuKernelRequest,
  view: { outer: number; n: number; inner: number },
  stats: string,
  outs: readonly number[],
): GpuPass {
  return rowPass(
    req,
    view,
    [
      { sum: "s", term: (v) => v },
      `  let mean = s / ${f32(view.n)};`,
      { sum: "q", term: (v) => `(${v} - mean) * (${v} - mean)` },
    ],
    stats,
    outs,
  );
}

/** LayerNorm, InstanceNorm and GroupNorm (see the module doc). */
export const layerNormGpuKernel: GpuKernelGenerator = (req): GpuKernel | undefined => {
  const view = viewOf(req);
  if (!view || req.outputs.length !== 3) return undefined;
  const eps = (req.node.parsed as { eps: number }).eps;
  const label = `${req.node.opName} ${req.inputs[0].join("x")}${rowNote(req, view)}`;
  const total = shapeSize(req.inputs[0]);
  if (total === 0 || view.n === 0) return { label, passes: [] };
  const stats = `  out1[idx] = mean;
  out2[idx] = ${
    view.second === "std" ? `sqrt(q / ${f32(view.n)} + ${f32(eps)})` : `q / ${f32(view.n)}`
  };`;
  const g = grid(total, req.limits);
  const sd = view.second === "std" ? "in4[r]" : `sqrt(in4[r] + ${f32(eps)})`;
  const body = `  let r = (idx / ${u32(view.n * view.inner)}) * ${u32(view.inner)} + idx % ${
    u32(view.inner)
  };
  let c = (idx / ${u32(view.chanInner)}) % ${u32(view.channels)};
  out0[idx] = (in0[idx] - in3[r]) / ${sd} * in1[c] + in2[c];`;
  const n = req.inputs.length;
  return {
    label,
    passes: [
      statsPass(req, view, stats, [1, 2]),
      {
        code: `${bindings([["in", 0], ["in", 1], ["in", 2], ["in", 3], ["in", 4], ["out", 0]])}\n${
          entry(g, body)
        }`,
        workgroups: g.workgroups,
        // The statistics written by the first pass are read back as inputs 3 and 4.
        bindings: [0, 1, 2, n + 1, n + 2, n],
      },
    ],
  };
};

/** The (outer, n, inner) view of L2Normalization's mode. */
function l2View(x: Shape, mode: string): { outer: number; n: number; inner: number } | undefined {
  if (mode === "instance") return { outer: x[0], n: shapeSize(x.slice(1)), inner: 1 };
  if (x.length < 3) return undefined;
  if (mode === "channel") return { outer: x[0], n: x[1], inner: shapeSize(x.slice(2)) };
  return { outer: x[0] * x[1], n: shapeSize(x.slice(2)), inner: 1 };
}

/** `L2Normalization`: `x / sqrt(Σ x² + eps)` per instance, channel or spatial row. */
export const l2NormalizationGpuKernel: GpuKernelGenerator = (req): GpuKernel | undefined => {
  const a = req.node.parsed as { eps: number; mode: string };
  const x = req.inputs[0];
  if (x === undefined || x.length < 2 || req.outputs.length !== 2) return undefined;
  const view = l2View(x, a.mode);
  if (!view) return undefined;
  const label = `L2Normalization ${x.join("x")} (${a.mode})${rowNote(req, view)}`;
  const total = shapeSize(x);
  if (total === 0 || view.outer * view.inner === 0) return { label, passes: [] };
  const g2 = grid(total, req.limits);
  const body2 = `  let r = (idx / ${u32(view.n * view.inner)}) * ${u32(view.inner)} + idx % ${
    u32(view.inner)
  };
  out0[idx] = in0[idx] / in1[r];`;
  return {
    label,
    passes: [
      rowPass(
        req,
        view,
        [{ sum: "s", term: (v) => `${v} * ${v}` }],
        `  out1[idx] = sqrt(s + ${f32(a.eps)});`,
        [1],
      ),
      {
        code: `${bindings([["in", 0], ["in", 1], ["out", 0]])}\n${entry(g2, body2)}`,
        workgroups: g2.workgroups,
        bindings: [0, 2, 1],
      },
    ],
  };
};

/**
 * `norm`: the L1 or L2 norm over `axis` (all axes when none): one invocation per output, or one
 * workgroup per output where a reduction would take one (reduce.ts).
 */
export const normGpuKernel: GpuKernelGenerator = (req): GpuKernel | undefined => {
  const a = req.node.parsed as { ord: number; axis: readonly number[] | null };
  const x = req.inputs[0];
  if (x === undefined || req.inputs.length !== 1 || (a.ord !== 1 && a.ord !== 2)) return undefined;
  const axes = a.axis && a.axis.length
    ? [...new Set(a.axis.map((v) => normAxis(v, x.length)))].sort((p, q) => p - q)
    : x.map((_, d) => d);
  const kept = x.map((_, d) => d).filter((d) => !axes.includes(d));
  const xs = x.map((_, d) => shapeSize(x.slice(d + 1)));
  const total = shapeSize(req.outputs[0]);
  const label = `norm L${a.ord} ${x.join("x")} axes ${axes.join(",")}`;
  if (total === 0) return { label, passes: [] };
  if (total !== kept.reduce((p, d) => p * x[d], 1)) return undefined;
  const count = axes.reduce((p, d) => p * x[d], 1);
  const rowwise = req.tuning?.reduction?.workgroup ??
    (!req.fallbackAdapter && workgroupReduction(total, count));
  if (rowwise && count > 1) {
    return reduceByWorkgroups(
      req,
      { axes, combine: "add", init: 0, mean: false, keepdims: false },
      label,
      total,
      count,
      (v) => (a.ord === 1 ? `abs(${v})` : `${v} * ${v}`),
      (r) => (a.ord === 1 ? r : `sqrt(${r})`),
    );
  }
  const g = grid(total, req.limits);
  const keptNames = kept.map((_, i) => `k${i}`);
  const redNames = axes.map((_, i) => `r${i}`);
  const body = `${coords(kept.map((d) => x[d]), "k")}
  let base = ${offset(keptNames, kept.map((d) => xs[d]))};
  var acc = 0.0f;
  for (var r = 0u; r < ${u32(count)}; r = r + 1u) {
${coords(axes.map((d) => x[d]), "r", "r").replaceAll("\n", "\n  ").replace(/^/, "  ")}
    let v = in0[base + ${offset(redNames, axes.map((d) => xs[d]))}];
    acc = acc + ${a.ord === 1 ? "abs(v)" : "v * v"};
  }
  out0[idx] = ${a.ord === 1 ? "acc" : "sqrt(acc)"};`;
  return {
    label,
    passes: [{
      code: `${bindings([["in", 0], ["out", 0]])}\n${entry(g, body)}`,
      workgroups: g.workgroups,
      bindings: [0, 1],
    }],
  };
};
