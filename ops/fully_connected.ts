/**
 * FullyConnected: MXNet's dense layer op, `y = x·Wᵀ + b`, over the flattened trailing dims
 * (`flatten=true`) or over the last axis (`flatten=false`).
 *
 * @module
 */
import { formatShape, type Shape } from "../runtime/shape.ts";
import { tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import { attr } from "./attrs.ts";
import { defineOp, dimProduct, type PartialShape, type Sample, shapeFail } from "./op.ts";
import type { OpDef } from "./op.ts";
import type { AttrSpec } from "./attrs.ts";

const SCHEMA = {
  num_hidden: attr.intRequired({ min: 1 }),
  no_bias: attr.bool(false),
  flatten: attr.bool(true),
};

/** A dense (fully connected) layer: `x·Wᵀ + b`. */
export const FullyConnected: OpDef<
  {
    num_hidden: AttrSpec<number, true>;
    no_bias: AttrSpec<boolean, false>;
    flatten: AttrSpec<boolean, false>;
  },
  readonly ["_npx_fully_connected", "_sparse_FullyConnected"],
  "one"
> = defineOp({
  name: "FullyConnected",
  aliases: ["_npx_fully_connected", "_sparse_FullyConnected"],
  doc:
    "Applies a linear transformation x·Wᵀ + b to the input flattened to 2-d (flatten=true) or to its last axis (flatten=false).",
  attrs: SCHEMA,
  inputNames: (a) => (a.no_bias ? ["data", "weight"] : ["data", "weight", "bias"]),
  inferShape: (inputs, a, outputs) => {
    const H = a.num_hidden;
    const w = inputs[1];
    const o = outputs[0];
    if (w !== undefined && w.length !== 2) {
      shapeFail(`FullyConnected: weight ${formatShape(w)} must be 2-d (num_hidden, input size)`);
    }
    const given = inputs[0];
    if (given === undefined) {
      // Without the data only the output's last dim and the weight's rows are known.
      const weight: Shape = [H, w?.[1] ?? -1];
      const out = a.flatten ? [o?.[0] ?? -1, H] : o?.slice(0, -1).concat([H]);
      return { inputs: biasAppended([undefined, weight], a.no_bias, H), outputs: [out] };
    }
    if (given.length === 0) shapeFail("FullyConnected: data must have at least 1 dim, got ()");
    const data = [...given];
    const last = data.length - 1;
    // Trivial backward inference: the weight fixes the contracted dim when it is a single dim.
    if (w !== undefined && w[1] >= 0) {
      if (!a.flatten && data[last] < 0) data[last] = w[1];
      if (a.flatten && data.length === 2 && data[1] < 0) data[1] = w[1];
    }
    if (o !== undefined) {
      if (a.flatten && data[0] < 0 && o.length === 2) data[0] = o[0];
      if (!a.flatten && o.length === data.length) {
        for (let i = 0; i < last; i++) if (data[i] < 0) data[i] = o[i];
      }
    }
    const inSize = a.flatten ? dimProduct(data.slice(1)) : data[last];
    const out = a.flatten ? [data[0], H] : [...data.slice(0, last), H];
    return { inputs: biasAppended([data, [H, inSize]], a.no_bias, H), outputs: [out] };
  },
  reference: (inputs, a, ctx) => {
    const [x, w] = inputs;
    const xv = tensorValues(x);
    const wv = tensorValues(w);
    const bv = a.no_bias ? undefined : tensorValues(inputs[2]);
    const H = a.num_hidden;
    const K = w.shape[1];
    const rows = ctx.outShapes[0].slice(0, -1).reduce((p, d) => p * d, 1);
    const out = new Float64Array(rows * H);
    for (let r = 0; r < rows; r++) {
      for (let h = 0; h < H; h++) {
        let acc = bv ? bv[h] : 0;
        for (let k = 0; k < K; k++) acc += xv[r * K + k] * wv[h * K + k];
        out[r * H + h] = acc;
      }
    }
    return [tensorFromValues(out, ctx.outShapes[0], ctx.outTypes[0])];
  },
  sample: (draw, x): Sample | undefined => {
    if (x.length === 0) return undefined;
    const H = draw.int(1, 4);
    const flatten = draw.bool();
    const noBias = draw.bool();
    const inSize = flatten ? x.slice(1).reduce((p, d) => p * d, 1) : x[x.length - 1];
    const attrs: Record<string, unknown> = { num_hidden: H };
    if (!flatten || draw.bool()) attrs.flatten = flatten;
    if (noBias || draw.bool()) attrs.no_bias = noBias;
    const weight = [H, inSize];
    return {
      attrs,
      inputs: noBias ? [x, weight] : [x, weight, [H]],
      params: noBias ? [1] : [1, 2],
    };
  },
});

function biasAppended(shapes: PartialShape[], noBias: boolean, H: number): PartialShape[] {
  return noBias ? shapes : [...shapes, [H]];
}
