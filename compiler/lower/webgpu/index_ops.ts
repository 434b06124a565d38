/**
 * Indexing by values in WGSL: `Embedding`, `take`, `pick`, `one_hot`, and the index reductions
 * `argmax`, `argmin` and `topk`, one invocation per output element (per input element for
 * `topk`, which ranks each element within its row and writes it where its rank says).
 *
 * Indices are read from any dtype the device stores (dtypes.ts): float indices truncate
 * toward zero (saturating at the i32 range; NaN is row 0 for `Embedding`, `take` and `pick`,
 * and no position for `one_hot`), then clip or wrap as the op's mode says. Gathered values are
 * copied as 32-bit words, so tables and data of any stored dtype move exactly. `take` with
 * mode `raise` has no kernel (a shader cannot throw): it runs on the host.
 *
 * @module
 */
import type { DType } from "../../../runtime/dtype.ts";
import { normAxis } from "../../../ops/op.ts";
import { type Shape, shapeSize } from "../../../runtime/shape.ts";
import { Conversions, gpuElementOf } from "./dtypes.ts";
import type { GpuKernel, GpuKernelGenerator, GpuKernelRequest } from "./kernel.ts";
import { bindings, entry, f32, grid, i32, SPECIAL_FLOATS, u32 } from "./wgsl.ts";

/** WGSL helpers of the indexing kernels. */
const INDEX_HELPERS = `fn sg_isnan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}
fn sg_idx(x: f32) -> i32 {
  if (sg_isnan(x)) { return 0i; }
  return i32(trunc(clamp(x, -2147483648.0f, 2147483520.0f)));
}
fn sg_clip(j: i32, n: i32) -> i32 {
  return clamp(j, 0i, n - 1i);
}
fn sg_wrap(j: i32, n: i32) -> i32 {
  let r = j % n;
  return select(r, r + n, r < 0i);
}`;

function typesOf(req: GpuKernelRequest): { ins: readonly DType[]; outs: readonly DType[] } {
  return {
    ins: req.inputTypes ?? req.inputs.map((): DType => "float32"),
    outs: req.outputTypes ?? req.outputs.map((): DType => "float32"),
  };
}

/** WGSL of a stored index (`e`, of `dtype`) as an i32 position before clipping. */
function position(dtype: DType, e: string): string {
  return gpuElementOf(dtype) === "i32" ? e : `sg_idx(${e})`;
}

function around(shape: Shape, axis: number): [number, number, number] {
  return [shapeSize(shape.slice(0, axis)), shape[axis], shapeSize(shape.slice(axis + 1))];
}

/** A one-pass kernel over the output's elements. */
function gather(
  req: GpuKernelRequest,
  label: string,
  roles: Parameters<typeof bindings>[0],
  slots: number[],
  body: string,
  extra = "",
): GpuKernel {
  const total = shapeSize(req.outputs[0]);
  if (total === 0) return { label, passes: [], typed: true };
  const g = grid(total, req.limits);
  return {
    label,
    passes: [{
      code: [bindings(roles), INDEX_HELPERS, extra, entry(g, body)].filter((s) => s).join("\n"),
      workgroups: g.workgroups,
      bindings: slots,
    }],
    typed: true,
  };
}

/** `Embedding`: each output row is the table row its index names (truncated, clipped). */
export const embeddingGpuKernel: GpuKernelGenerator = (req) => {
  const a = req.node.parsed as { input_dim: number; output_dim: number };
  const [idx, w] = req.inputs;
  const { ins } = typesOf(req);
  if (idx === undefined || w === undefined || w.length !== 2) return undefined;
  if (w[0] !== a.input_dim || w[1] !== a.output_dim || !gpuElementOf(ins[0])) return undefined;
  const cols = a.output_dim;
  const body = `  let r = idx / ${u32(cols)};
  let j = sg_clip(${position(ins[0], "in0[r]")}, ${i32(a.input_dim)});
  out0[idx] = in1[u32(j) * ${u32(cols)} + idx % ${u32(cols)}];`;
  return gather(
    req,
    `Embedding ${shapeSize(idx)} rows of ${cols}`,
    [["in", 0, gpuElementOf(ins[0])], ["in", 1, "u32"], ["out", 0, "u32"]],
    [0, 1, 2],
    body,
  );
};

/** `take`: slices of `a` along `axis` at each index (clip or wrap). */
export const takeGpuKernel: GpuKernelGenerator = (req) => {
  const a = req.node.parsed as { axis: number; mode: "clip" | "wrap" | "raise" };
  const [x, idx] = req.inputs;
  const { ins } = typesOf(req);
  if (x === undefined || idx === undefined || x.length === 0 || a.mode === "raise") {
    return undefined;
  }
  const [, n, inner] = around(x, normAxis(a.axis, x.length));
  const m = shapeSize(idx);
  if (n === 0) return undefined;
  const body = `  let o = idx / ${u32(m * inner)};
  let t = (idx / ${u32(inner)}) % ${u32(m)};
  let j = sg_${a.mode}(${position(ins[1], "in1[t]")}, ${i32(n)});
  out0[idx] = in0[(o * ${u32(n)} + u32(j)) * ${u32(inner)} + idx % ${u32(inner)}];`;
  return gather(
    req,
    `take ${x.join("x")} at ${m} (${a.mode})`,
    [["in", 0, "u32"], ["in", 1, gpuElementOf(ins[1])], ["out", 0, "u32"]],
    [0, 1, 2],
    body,
  );
};

/** `pick`: one element along `axis` per position, by index (clip or wrap). */
export const pickGpuKernel: GpuKernelGenerator = (req) => {
  const a = req.node.parsed as { axis: number; mode: "clip" | "wrap" };
  const [x] = req.inputs;
  const { ins } = typesOf(req);
  if (x === undefined || x.length === 0 || req.inputs.length !== 2) return undefined;
  const [, n, inner] = around(x, normAxis(a.axis, x.length));
  if (n === 0) return undefined;
  const body = `  let j = sg_${a.mode}(${position(ins[1], "in1[idx]")}, ${i32(n)});
  out0[idx] = in0[((idx / ${u32(inner)}) * ${u32(n)} + u32(j)) * ${u32(inner)} + idx % ${
    u32(inner)
  }];`;
  return gather(
    req,
    `pick ${x.join("x")} (${a.mode})`,
    [["in", 0, "u32"], ["in", 1, gpuElementOf(ins[1])], ["out", 0, "u32"]],
    [0, 1, 2],
    body,
  );
};

/** `one_hot`: `on_value` where the trailing position is the index, `off_value` elsewhere. */
export const oneHotGpuKernel: GpuKernelGenerator = (req) => {
  const a = req.node.parsed as { depth: number; on_value: number; off_value: number };
  const { ins, outs } = typesOf(req);
  const conv = new Conversions();
  if (req.inputs.length !== 1 || !gpuElementOf(ins[0]) || !gpuElementOf(outs[0])) {
    return undefined;
  }
  const load = gpuElementOf(ins[0]) === "i32"
    ? "in0[idx / d]"
    : "select(sg_idx(in0[idx / d]), -1i, sg_isnan(in0[idx / d]))";
  const body = `  let d = ${u32(a.depth)};
  let j = ${load};
  out0[idx] = select(${conv.fromF32(outs[0], f32(a.off_value))}, ${
    conv.fromF32(outs[0], f32(a.on_value))
  }, j == i32(idx % d));`;
  return gather(
    req,
    `one_hot ${shapeSize(req.inputs[0])} x ${a.depth}`,
    [["in", 0, gpuElementOf(ins[0])], ["out", 0, gpuElementOf(outs[0])]],
    [0, 1],
    body,
    `${SPECIAL_FLOATS}\n${conv.code()}`,
  );
};

/**
 * `better(v, b)` of argmax/argmin/topk in WGSL: for floats, NaN counts as the extreme (NumPy's
 * rule, as the reference); integers compare as i32.
 */
function betterFn(element: "f32" | "i32", max: boolean): string {
  const cmp = max ? ">" : "<";
  return element === "i32"
    ? `fn sg_better(v: i32, b: i32) -> bool { return v ${cmp} b; }`
    : `fn sg_better(v: f32, b: f32) -> bool {
  return v ${cmp} b || (sg_isnan(v) && !sg_isnan(b));
}`;
}

/** `argmax` / `argmin`: the first position of the extreme along the axis (or of all values). */
export const argGpuKernel: GpuKernelGenerator = (req) => {
  const a = req.node.parsed as { axis: number | null };
  const x = req.inputs[0];
  const { ins, outs } = typesOf(req);
  const el = gpuElementOf(ins[0]), outEl = gpuElementOf(outs[0]);
  if (x === undefined || !el || !outEl || shapeSize(x) === 0) return undefined;
  const shape = a.axis === null ? [shapeSize(x)] : x;
  const [, n, inner] = around(shape, a.axis === null ? 0 : normAxis(a.axis, x.length));
  const conv = new Conversions();
  const max = req.node.opName === "argmax";
  const result = outEl === "i32" ? conv.fromI32(outs[0], "i32(best)") : "f32(best)";
  const body = `  let base = (idx / ${u32(inner)}) * ${u32(n * inner)} + idx % ${u32(inner)};
  var best = 0u;
  var bv = in0[base];
  for (var j = 1u; j < ${u32(n)}; j = j + 1u) {
    let v = in0[base + j * ${u32(inner)}];
    if (sg_better(v, bv)) { best = j; bv = v; }
  }
  out0[idx] = ${result};`;
  return gather(
    req,
    `${req.node.opName} ${x.join("x")}`,
    [["in", 0, el], ["out", 0, outEl]],
    [0, 1],
    body,
    `${betterFn(el, max)}\n${conv.code()}`,
  );
};

/**
 * `topk`: each element of a row counts the elements ranked before it (by the order, ties by
 * position, as the reference's stable sort); ranks below k write their value and index to
 * that place of the outputs, or 1 to the mask.
 */
export const topkGpuKernel: GpuKernelGenerator = (req) => {
  const a = req.node.parsed as {
    axis: number | null;
    k: number;
    ret_typ: "value" | "indices" | "mask" | "both";
    is_ascend: boolean;
  };
  const x = req.inputs[0];
  const { ins, outs } = typesOf(req);
  const el = gpuElementOf(ins[0]);
  if (x === undefined || !el || !outs.every(gpuElementOf) || shapeSize(x) === 0) {
    return undefined;
  }
  const shape = a.axis === null ? [shapeSize(x)] : x;
  if (shape.length === 0) return undefined;
  const [, n, inner] = around(shape, normAxis(a.axis ?? 0, shape.length));
  const k = a.k;
  if (k > n) return undefined;
  const conv = new Conversions();
  const total = shapeSize(x);
  const g = grid(total, req.limits);
  const asIndex = (dtype: DType, e: string) =>
    gpuElementOf(dtype) === "i32" ? conv.fromI32(dtype, `i32(${e})`) : `f32(${e})`;
  const one = (dtype: DType) => (gpuElementOf(dtype) === "i32" ? "1i" : "1.0f");
  const zero = (dtype: DType) => (gpuElementOf(dtype) === "i32" ? "0i" : "0.0f");
  const writes: string[] = [];
  const roles: Parameters<typeof bindings>[0][number][] = [["in", 0, el]];
  const at = `(o * ${u32(k)} + rank) * ${u32(inner)} + i`;
  switch (a.ret_typ) {
    case "value":
      writes.push(`if (rank < ${u32(k)}) { out0[${at}] = v; }`);
      roles.push(["out", 0, el]);
      break;
    case "indices":
      writes.push(`if (rank < ${u32(k)}) { out0[${at}] = ${asIndex(outs[0], "j")}; }`);
      roles.push(["out", 0, gpuElementOf(outs[0])]);
      break;
    case "both":
      writes.push(
        `if (rank < ${u32(k)}) { out0[${at}] = v; out1[${at}] = ${asIndex(outs[1], "j")}; }`,
      );
      roles.push(["out", 0, el], ["out", 1, gpuElementOf(outs[1])]);
      break;
    case "mask":
      writes.push(
        `out0[idx] = select(${zero(outs[0])}, ${one(outs[0])}, rank < ${u32(k)});`,
      );
      roles.push(["out", 0, gpuElementOf(outs[0])]);
      break;
  }
  const body = `  let o = idx / ${u32(n * inner)};
  let j = (idx / ${u32(inner)}) % ${u32(n)};
  let i = idx % ${u32(inner)};
  let base = o * ${u32(n * inner)} + i;
  let v = in0[idx];
  var rank = 0u;
  for (var q = 0u; q < ${u32(n)}; q = q + 1u) {
    let w = in0[base + q * ${u32(inner)}];
    if (sg_better(w, v) || (q < j && !sg_better(v, w))) { rank = rank + 1u; }
  }
  ${writes.join("\n  ")}`;
  return {
    label: `topk ${x.join("x")} k ${k} (${a.ret_typ})`,
    passes: [{
      code: [
        bindings(roles),
        INDEX_HELPERS,
        betterFn(el, !a.is_ascend),
        conv.code(),
        entry(g, body),
      ]
        .filter((s) => s).join("\n"),
      workgroups: g.workgroups,
      bindings: [0, ...roles.slice(1).map(([, o]) => 1 + o)],
    }],
    typed: true,
  };
};
