/**
 * BatchNorm folding (`fold-batchnorm`): at inference, `BatchNorm(Convolution(x))` is one
 * convolution with rescaled filters and a shifted bias, because BatchNorm is a per-channel
 * affine map:
 *
 * ```
 * scale[c] = (fix_gamma ? 1 : gamma[c]) / sqrt(moving_var[c] + eps)
 * weight'[c, ...] = weight[c, ...] * scale[c]
 * bias'[c] = (bias[c] (0 when no_bias) - moving_mean[c]) * scale[c] + beta[c]
 * ```
 *
 * The same holds for `FullyConnected` (channels on the last axis). A BatchNorm folds when:
 * - its data is output 0 of a Convolution (channel-first layout) or FullyConnected whose only
 *   reader it is (not also a graph output);
 * - its `axis` is that op's channel axis (1 for Convolution; the last axis for
 *   FullyConnected, which for `flatten=false` and an axis other than -1 needs the data's
 *   rank from `inputShapes`);
 * - only its output 0 is read (its mean/var outputs are unused);
 * - gamma, beta, moving_mean, moving_var and the weight (and bias, if any) are variables bound
 *   in `graph.params`, with one value per channel. Anything unbound is left alone.
 *
 * New parameters are computed in float64 and stored in the original dtypes (the bias a
 * `no_bias` op gains takes the weight's dtype). A float32 weight's folded values are
 * deferred (`compiler/scaled_rows.ts`): computed when first read, while the WASM engine packs
 * the original weights with the per-channel scale instead, to the same bits. They are named after the originals:
 * `<weight>_folded`, `<bias>_folded`, or `<op name>_bias_folded` for a new bias (with a number
 * appended if the name is taken). The folded op keeps the producer's name and attributes (with
 * `no_bias` false). Parameters only the folded nodes used are dropped from `params`.
 * Chains such as Convolution → BatchNorm → BatchNorm fold completely in one run, so the pass is
 * idempotent.
 *
 * @module
 */
import { normAxis } from "../../ops/op.ts";
import { type DType, dtypeInfo } from "../../runtime/dtype.ts";
import type { Shape } from "../../runtime/shape.ts";
import { type Tensor, tensorFromValues, tensorValues } from "../../runtime/tensor.ts";
import { scaledRowsTensor } from "../scaled_rows.ts";
import { shapeFacts } from "../infer.ts";
import { type Entry, makeNode, type Node, type ShapeDict } from "../symbol.ts";
import { definePass, type Graph, graphOf, type Pass } from "./pass.ts";
import { rebuildWith } from "./rewrite.ts";
import { emptyRecord } from "../../runtime/record.ts";

const CHANNEL_FIRST: ReadonlySet<string | null> = new Set([null, "NCW", "NCHW", "NCDHW"]);

/** Options of {@link foldBatchNorm}. */
export interface FoldBatchNormOptions {
  /**
   * Shapes of unbound inputs. Only needed to fold a BatchNorm after a `flatten=false`
   * FullyConnected whose `axis` is not -1 (the output's rank decides whether it is the last
   * axis).
   */
  inputShapes?: ShapeDict;
}

/** The bound value of a variable entry, or undefined. */
function boundValue(e: Entry | undefined, params: Readonly<Record<string, Tensor>>) {
  if (e === undefined || !e.node.isVariable || !Object.hasOwn(params, e.node.name)) {
    return undefined;
  }
  return params[e.node.name];
}

/**
 * Folds inference BatchNorms into the Convolution or FullyConnected before them (see the
 * module doc for when and how).
 *
 * @example Convolution → BatchNorm becomes one Convolution
 * ```ts
 * import assert from "node:assert";
 * import { nd, sym } from "../../mod.ts";
 * import { graphOf } from "./pass.ts";
 * import { foldBatchNorm } from "./fold_batchnorm.ts";
 * const conv = sym.Convolution(sym.var("x"), { kernel: [3, 3], num_filter: 2, name: "conv" });
 * const bn = sym.BatchNorm(conv, { fix_gamma: false, name: "bn" });
 * const params = {
 *   conv_weight: nd.ones([2, 1, 3, 3]),
 *   conv_bias: nd.zeros([2]),
 *   bn_gamma: nd.array([1, 2]),
 *   bn_beta: nd.array([0, 1]),
 *   bn_moving_mean: nd.array([0, 0.5]),
 *   bn_moving_var: nd.array([1, 4]),
 * };
 * const out = foldBatchNorm.run(graphOf(bn, params));
 * assert(out.symbol.nodes().every((n) => n.opName !== "BatchNorm"));
 * assert(Object.keys(out.params).sort().join() === "conv_bias_folded,conv_weight_folded");
 * const x = nd.ones([1, 1, 4, 4]);
 * const [want] = await bn.eval({ x, ...params });
 * const [got] = await out.symbol.eval({ x, ...out.params });
 * assert(Math.abs(want.dataSync()[4] as number - (got.dataSync()[4] as number)) < 1e-5);
 * ```
 */
export const foldBatchNorm: Pass<FoldBatchNormOptions> = definePass<FoldBatchNormOptions>({
  name: "fold-batchnorm",
  doc: "Folds inference BatchNorm into a preceding single-use Convolution or FullyConnected " +
    "whose parameters are bound, giving new weight and bias params. Preserves inputs, " +
    "outputs and values (up to rounding of the new params); unbound params are left alone.",
  idempotent: true,
  run(graph: Graph, options: FoldBatchNormOptions = {}): Graph {
    const symbol = graph.symbol;
    const nodes = symbol.nodes();
    const uses = new Map<Node, number>();
    const otherOutputRead = new Set<Node>();
    const count = (e: Entry) => {
      uses.set(e.node, (uses.get(e.node) ?? 0) + 1);
      if (e.index !== 0) otherOutputRead.add(e.node);
    };
    for (const n of nodes) {
      n.inputs.forEach(count);
      for (const d of n.controlDeps) uses.set(d, (uses.get(d) ?? 0) + 2);
    }
    symbol.outputs.forEach(count);
    if (!nodes.some((n) => n.opName === "BatchNorm")) return graph;

    // Ranks of FullyConnected outputs (flatten=false) need the data's rank: shapes are
    // inferred the first time one is asked for (never for a network of convolutions).
    let facts: Map<Node, (Shape | undefined)[]> | null | undefined;
    const rank = (n: Node): number | undefined => {
      if (facts === undefined) {
        try {
          const known = emptyRecord<Shape>();
          const inputs = new Set(symbol.listInputs());
          for (const [k, t] of Object.entries(graph.params)) {
            if (inputs.has(k)) known[k] = t.shape;
          }
          for (const [k, s] of Object.entries(options.inputShapes ?? {})) {
            if (inputs.has(k)) known[k] = s;
          }
          facts = shapeFacts(symbol, known);
        } catch {
          // Contradicting shapes: only statically known ranks are used.
          facts = null;
        }
      }
      return facts?.get(n)?.[0]?.length;
    };

    const taken = new Set([...symbol.listInputs(), ...Object.keys(graph.params)]);
    const fresh = (base: string): string => {
      let name = base;
      for (let k = 1; taken.has(name); k++) name = `${base}${k}`;
      taken.add(name);
      return name;
    };
    const params = Object.assign(emptyRecord<Tensor>(), graph.params);

    const fold = (bn: Node, mapEntry: (e: Entry) => Entry): Node | undefined => {
      if (bn.opName !== "BatchNorm" || otherOutputRead.has(bn) || bn.controlDeps.length) {
        return undefined;
      }
      const original = bn.inputs[0];
      const data = mapEntry(original);
      const prod = data.node;
      const isConv = prod.opName === "Convolution";
      if (!isConv && prod.opName !== "FullyConnected") return undefined;
      if (data.index !== 0 || uses.get(original.node) !== 1 || prod.controlDeps.length) {
        return undefined;
      }
      const a = prod.parsed as {
        no_bias: boolean;
        num_filter?: number;
        num_hidden?: number;
        kernel?: readonly number[];
        layout?: string | null;
        flatten?: boolean;
      };
      const channels = isConv ? a.num_filter! : a.num_hidden!;
      // The BatchNorm axis must be the channel axis of the producer's output.
      const bnAxis = (bn.parsed as { axis: number }).axis;
      if (isConv) {
        if (!CHANNEL_FIRST.has(a.layout ?? null)) return undefined;
        const nd = a.kernel!.length + 2;
        if (bnAxis < -nd || bnAxis >= nd || normAxis(bnAxis, nd) !== 1) return undefined;
      } else if (bnAxis !== -1) {
        const nd = a.flatten ? 2 : rank(original.node);
        if (nd === undefined || bnAxis < -nd || bnAxis >= nd) return undefined;
        if (normAxis(bnAxis, nd) !== nd - 1) return undefined;
      }
      const w = boundValue(prod.inputs[1], params);
      const b = a.no_bias ? undefined : boundValue(prod.inputs[2], params);
      const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) =>
        boundValue(bn.inputs[i], graph.params)
      );
      if (!w || (!a.no_bias && !b) || !gamma || !beta || !mean || !variance) return undefined;
      if (w.ndim < 1 || w.shape[0] !== channels || w.size % channels !== 0) return undefined;
      const perChannel = [b, gamma, beta, mean, variance].filter((t) => t !== undefined);
      if (perChannel.some((t) => t.size !== channels)) return undefined;
      if (![w, ...perChannel].every((t) => dtypeInfo(t.dtype).isFloat)) return undefined;

      const { eps, fix_gamma } = bn.parsed as { eps: number; fix_gamma: boolean };
      const bv = b ? tensorValues(b) : new Float64Array(channels);
      const gv = tensorValues(gamma);
      const betav = tensorValues(beta);
      const mv = tensorValues(mean);
      const vv = tensorValues(variance);
      const scale = new Float64Array(channels);
      const newB = new Float64Array(channels);
      for (let c = 0; c < channels; c++) {
        scale[c] = (fix_gamma ? 1 : gv[c]) / Math.sqrt(vv[c] + eps);
        newB[c] = (bv[c] - mv[c]) * scale[c] + betav[c];
      }
      const wVar = prod.inputs[1].node;
      const bVar = b ? prod.inputs[2].node : undefined;
      const wName = fresh(`${wVar.name}_folded`);
      const bName = fresh(bVar ? `${bVar.name}_folded` : `${prod.name}_bias_folded`);
      const bType: DType = b?.dtype ?? w.dtype;
      params[wName] = foldedWeight(w, scale);
      params[bName] = tensorFromValues(newB, [channels], bType);
      const bAttrs: Record<string, string> = bVar
        ? { ...bVar.attrs }
        : wVar.attrs.__dtype__ !== undefined
        ? { __dtype__: wVar.attrs.__dtype__ }
        : {};
      const attrs: Record<string, string> = { ...prod.attrs };
      if (a.no_bias) attrs.no_bias = "False";
      return makeNode({
        op: prod.op,
        name: prod.name,
        attrs,
        // Parsed already: the producer's attributes, with its bias now present.
        parsed: a.no_bias ? { ...(prod.parsed as object), no_bias: false } : prod.parsed,
        inputs: [
          prod.inputs[0],
          makeNode({ op: null, name: wName, attrs: wVar.attrs }).entry(),
          makeNode({ op: null, name: bName, attrs: bAttrs }).entry(),
        ],
      });
    };

    const out = rebuildWith(symbol, (node, mapEntry) => fold(node, mapEntry));
    if (out === symbol) return graph;
    // Drop the params that only the folded nodes read; keep everything else as given.
    const before = new Set(symbol.listInputs());
    const after = new Set(out.listInputs());
    const kept = emptyRecord<Tensor>();
    for (const [k, v] of Object.entries(params)) {
      if (after.has(k) || !before.has(k) && Object.hasOwn(graph.params, k)) kept[k] = v;
    }
    return graphOf(out, kept);
  },
});

/**
 * The folded weight: `w`'s rows (filters, or FullyConnected's output units) times `scale`,
 * each product formed in float64 and rounded once to `w`'s dtype. A float32 host weight
 * becomes a deferred {@link scaledRowsTensor}: its values are computed only if something reads
 * them, and the WASM lowering packs the original weights with the factors instead (no folded
 * copy of a model's filters: fresh memory dominates a cold compile). Other dtypes (and weights
 * held in device memory) are computed now.
 */
function foldedWeight(w: Tensor, scale: Float64Array): Tensor {
  if (w.dtype === "float32" && !w.isResident) return scaledRowsTensor(w, scale);
  const wv = tensorValues(w);
  const inner = w.size / scale.length;
  for (let r = 0; r < scale.length; r++) {
    for (let i = r * inner; i < (r + 1) * inner; i++) wv[i] *= scale[r];
  }
  return tensorFromValues(wv, w.shape, w.dtype);
}
