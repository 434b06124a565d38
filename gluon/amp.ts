/**
 * AMP (automatic mixed precision) for inference, as MXNet 2.x's `mxnet.amp`: convert a graph
 * ({@link convertSymbol}, the {@link ampConvert} pass) or a whole hybridizable block
 * ({@link convertHybridBlock}) so that convolutions and dense layers run in float16 or
 * bfloat16, with MXNet's op lists deciding what else follows.
 *
 * @example Converting a small network
 * ```ts
 * import assert from "node:assert";
 * import { amp, nd, nn, type Tensor } from "../mod.ts";
 * const net = new nn.HybridSequential().add(new nn.Dense(8, { activation: "relu" }), new nn.Dense(2));
 * net.initialize({ seed: 0 });
 * const x = nd.random.uniform(-1, 1, [2, 5], { seed: 1 });
 * const lp = amp.convertHybridBlock(net, { targetDtype: "float16", dataExample: [x] });
 * const y = lp.call(x) as Tensor;
 * assert(y.dtype === "float32" && y.shape.join() === "2,2");
 * ```
 *
 * @module
 */
import {
  ampConvert,
  type AmpDType,
  ampLists,
  type AmpOpLists,
  type ConvertSymbolOptions,
} from "../compiler/passes/amp.ts";
import { inlineSubgraphs } from "../compiler/passes/inline.ts";
import { graphOf } from "../compiler/passes/pass.ts";
import { Symbol } from "../compiler/symbol.ts";
import type { Device } from "../runtime/device.ts";
import type { DType } from "../runtime/dtype.ts";
import { SigilError } from "../runtime/errors.ts";
import { Tensor } from "../runtime/tensor.ts";
import { HybridBlock } from "./block.ts";
import { SymbolBlock } from "./symbol_block.ts";

export {
  ampConvert,
  type AmpConvertOptions,
  type AmpDType,
  ampLists,
  type AmpOpLists,
  BF16_LISTS,
  type ConditionalFp32Op,
  convertSymbol,
  type ConvertSymbolOptions,
  DISABLE_AMP_FLAG,
  FP16_LISTS,
  OFFLINE_CAST_DTYPE_ATTR,
  OPT_CONSTRAINT_ATTR,
  removeAmpCastPass,
} from "../compiler/passes/amp.ts";

/**
 * The ops run in the target dtype by default (MXNet's `list_lp16_ops`).
 *
 * @example Dense layers run in float16
 * ```ts
 * import assert from "node:assert";
 * import { amp } from "../mod.ts";
 * assert(amp.listLp16Ops("float16").includes("FullyConnected"));
 * ```
 */
export function listLp16Ops(targetDtype: AmpDType): readonly string[] {
  return ampLists(targetDtype).targetDtypeOps;
}

/**
 * The ops kept in float32 by default (MXNet's `list_fp32_ops`).
 *
 * @example SoftmaxOutput keeps float32
 * ```ts
 * import assert from "node:assert";
 * import { amp } from "../mod.ts";
 * assert(amp.listFp32Ops("float16").includes("SoftmaxOutput"));
 * ```
 */
export function listFp32Ops(targetDtype: AmpDType): readonly string[] {
  return ampLists(targetDtype).fp32Ops;
}

/**
 * The ops that follow their inputs' precision (MXNet's `list_lp16_fp32_ops`).
 *
 * @example BatchNorm follows its input
 * ```ts
 * import assert from "node:assert";
 * import { amp } from "../mod.ts";
 * assert(amp.listLp16Fp32Ops("float16").includes("BatchNorm"));
 * ```
 */
export function listLp16Fp32Ops(targetDtype: AmpDType): readonly string[] {
  return ampLists(targetDtype).lp16Fp32Ops;
}

/**
 * The conditional fp32 rules (MXNet's `list_conditional_fp32_ops`).
 *
 * @example softrelu keeps float32
 * ```ts
 * import assert from "node:assert";
 * import { amp } from "../mod.ts";
 * assert(amp.listConditionalFp32Ops("float16")[0].join("|") === "Activation|act_type|softrelu");
 * ```
 */
export function listConditionalFp32Ops(
  targetDtype: AmpDType,
): AmpOpLists["conditionalFp32Ops"] {
  return ampLists(targetDtype).conditionalFp32Ops;
}

/**
 * The ops run in low precision only when all their inputs are (MXNet's
 * `list_widest_type_cast`).
 *
 * @example Concat needs matching inputs
 * ```ts
 * import assert from "node:assert";
 * import { amp } from "../mod.ts";
 * assert(amp.listWidestTypeCast("bfloat16").includes("Concat"));
 * ```
 */
export function listWidestTypeCast(targetDtype: AmpDType): readonly string[] {
  return ampLists(targetDtype).widestTypeCasts;
}

/** Options of {@link convertHybridBlock} (MXNet's `convert_hybrid_block` arguments). */
export interface ConvertHybridBlockOptions
  extends Omit<ConvertSymbolOptions, "inputTypes" | "paramTypes"> {
  /**
   * The inputs to run the block on (hybridized) to trace its graph; their dtypes are the
   * graph's input dtypes. Without it, the block's most recent hybridized call is used (and
   * the inputs are taken as float32).
   */
  dataExample?: Tensor | readonly Tensor[];
  /** Device for the converted block's parameters. */
  device?: Device;
}

/**
 * Converts a hybridizable block to mixed precision, as MXNet 2.x's `amp.convert_hybrid_block`:
 * the block is hybridized (if it is not) and run on `dataExample`, its graph inlined and
 * converted, and a {@link SymbolBlock} returned over the converted graph with the block's
 * parameters loaded as MXNet does (`castDtype`, dtypes from the saved values: float32 except
 * parameters cast offline). The original block is left as it was, apart from hybridization.
 *
 * @example Conv, BatchNorm and Dense in float16
 * ```ts
 * import assert from "node:assert";
 * import { amp, nd, nn, type Tensor } from "../mod.ts";
 * const net = new nn.HybridSequential().add(
 *   new nn.Conv2D(4, 3, { inChannels: 3 }),
 *   new nn.BatchNorm(),
 *   new nn.Dense(2),
 * );
 * net.initialize({ seed: 0 });
 * const x = nd.random.uniform(-1, 1, [1, 3, 6, 6], { seed: 2 });
 * const lp = amp.convertHybridBlock(net, {
 *   targetDtype: "float16",
 *   dataExample: [x],
 *   castParamsOffline: true,
 * });
 * assert(lp.collectParams()["0.weight"].dtype === "float16");
 * assert(lp.collectParams()["1.gamma"].dtype === "float32");
 * assert((lp.call(x) as Tensor).dtype === "float32");
 * ```
 */
export function convertHybridBlock(
  block: HybridBlock,
  options: ConvertHybridBlockOptions,
): SymbolBlock {
  const where = "convertHybridBlock";
  if (!(block instanceof HybridBlock)) {
    throw new SigilError(`${where}: block must be a HybridBlock`);
  }
  const { dataExample, device, ...convert } = options ?? ({} as ConvertHybridBlockOptions);
  const examples = dataExample === undefined
    ? undefined
    : dataExample instanceof Tensor
    ? [dataExample]
    : [...dataExample];
  examples?.forEach((t, i) => {
    if (!(t instanceof Tensor)) throw new SigilError(`${where}: dataExample ${i} is not a Tensor`);
  });
  if (!block.isHybridized) block.hybridize();
  if (examples) block.call(...examples);
  const cached = block.cachedGraph();
  if (!cached) {
    throw new SigilError(
      `${where}: give dataExample, or hybridize the block and run it at least once`,
    );
  }
  const symbol = inlineSubgraphs(cached.symbol);
  const params: Record<string, Tensor> = {};
  for (const name of symbol.listInputs()) {
    const p = cached.params.get(name);
    if (p) params[name] = p.data();
  }
  const inputTypes: Record<string, DType> = {};
  cached.inputNames.forEach((n, i) => (inputTypes[n] = examples?.[i]?.dtype ?? "float32"));
  const lp = ampConvert.run(graphOf(symbol, params), { ...convert, inputTypes });
  const inputs = cached.inputNames.map((n) => {
    const node = lp.symbol.nodes().find((v) => v.isVariable && v.name === n);
    if (!node) throw new SigilError(`${where}: the graph does not use its input '${n}'`);
    return new Symbol([node.entry()]);
  });
  const out = new SymbolBlock(lp.symbol, inputs);
  out.loadDict(lp.params, { device, castDtype: true, dtypeSource: "saved" });
  return out;
}
