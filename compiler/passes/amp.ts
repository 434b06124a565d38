/**
 * AMP graph conversion: MXNet 2.x's `ReducePrecision` pass (`amp.convert_symbol`), which inserts
 * `amp_cast` nodes so that ops on the target list run in float16 or bfloat16, ops on the fp32
 * list keep float32, ops on the widest-type list run in low precision only when all their
 * inputs already are, and every other op follows its inputs (low precision when some input
 * already is). Casts are named `<source node>_<output index>_amp_cast_<dtype>` and shared by
 * all consumers of the same (source output, dtype). The graph's outputs keep their dtypes.
 *
 * Like MXNet's final 2.x pass (and unlike 1.x), no `amp_multicast` is inserted: a widest-type
 * op with mixed inputs runs in float32, its low-precision inputs cast back. The decision is
 * made twice, as MXNet does: a first, virtual sweep creates the casts every node would want, so
 * the second sweep's decisions do not depend on the order in which nodes are visited.
 *
 * Preserves: the graph's inputs (names, order) and outputs (count, dtypes); values up to the
 * rounding of the low-precision ops. Node names and attributes are kept; excluded nodes
 * (`excludedSymNames`, conditional fp32 matches) gain `__opt_constraint__` as in MXNet, and
 * parameters cast offline gain `__amp_dtype__`. Converting a converted graph changes nothing.
 *
 * Where sigil departs from MXNet, on purpose:
 * - float64 and integer entries are never "cast" (MXNet inserts `amp_cast` nodes that pass them
 *   through and records them as low precision); the op consuming them stays unconverted.
 * - an `amp_multicast` already in the graph whose inputs went to low precision is known to give
 *   low precision, so its consumers (and the graph outputs) get casts back; MXNet keeps the old
 *   dtype on record and can change an output's dtype.
 * - a parameter that is also a graph output is never cast offline (MXNet would change the
 *   output's dtype), and a parameter cast offline gets `__dtype__` updated, since sigil's type
 *   inference reads it (MXNet's conversion ignores it and leaves it stale).
 * - `_CachedOp` subgraph calls are left in float32: inline them first.
 * - sigil folds some MXNet ops into one (`_npi_add` is `broadcast_add`); a list entry naming the
 *   canonical op decides, alias entries only when the canonical name is on no list.
 * - list names sigil does not register are ignored (MXNet asserts they are on its lists), and
 *   MXNet's warnings (missing excluded names, failed conversions) are not printed.
 *
 * @module
 */
import { applyTypeRule } from "../../ops/call.ts";
import type { AnyOpDef } from "../../ops/op.ts";
import { getOp, hasOp } from "../../ops/registry.ts";
import { type DType, dtypeInfo } from "../../runtime/dtype.ts";
import { DTypeError, SigilError } from "../../runtime/errors.ts";
import { type Tensor, tensorFromValues, tensorValues } from "../../runtime/tensor.ts";
import { declaredType, nodeWhere, typeFacts } from "../infer.ts";
import { type Entry, makeNode, type Node, Symbol } from "../symbol.ts";
import { definePass, type Graph, graphOf, type Pass } from "./pass.ts";
import { removeAmpCast } from "./remove_amp_cast.ts";
import { emptyRecord } from "../../runtime/record.ts";

/** The low-precision dtypes AMP converts to. */
export type AmpDType = "float16" | "bfloat16";

/**
 * A conditional fp32 rule: `[op, attribute, values]`; a node of `op` whose attribute has one
 * of `values` (as its MXNet string) keeps float32.
 */
export type ConditionalFp32Op = readonly [op: string, attr: string, values: readonly string[]];

/** MXNet's AMP op lists for one target dtype (`python/mxnet/amp/lists/symbol_*.py`). */
export interface AmpOpLists {
  /** Ops run in the target dtype (`FP16_FUNCS` / `BF16_FUNCS`). */
  readonly targetDtypeOps: readonly string[];
  /** Ops that run in either precision, following their inputs (`*_FP32_FUNCS`). */
  readonly lp16Fp32Ops: readonly string[];
  /** Ops kept in float32 (`FP32_FUNCS`). */
  readonly fp32Ops: readonly string[];
  /** Ops kept in float32 for some attribute values (`CONDITIONAL_FP32_FUNCS`). */
  readonly conditionalFp32Ops: readonly ConditionalFp32Op[];
  /** Multi-input ops run in low precision only when all inputs are (`WIDEST_TYPE_CASTS`). */
  readonly widestTypeCasts: readonly string[];
}

/**
 * The attribute MXNet marks parameters cast offline with (`OFFLINE_CAST_DTYPE_ATTR`).
 *
 * @example Reading the mark
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { convertSymbol, OFFLINE_CAST_DTYPE_ATTR } from "./amp.ts";
 * const fc = sym.FullyConnected(sym.var("x"), { num_hidden: 2, name: "fc" });
 * const lp = convertSymbol(fc, { targetDtype: "float16", castParamsOffline: true, inputTypes: { x: "float32" } });
 * const w = lp.nodes().find((n) => n.name === "fc_weight")!;
 * assert(w.attrs[OFFLINE_CAST_DTYPE_ATTR] === "float16");
 * ```
 */
export const OFFLINE_CAST_DTYPE_ATTR = "__amp_dtype__";

/**
 * The node attribute holding optimization constraints (`OPT_CONSTRAINT_ATTR`).
 *
 * @example Keeping a node out of AMP
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { convertSymbol, DISABLE_AMP_FLAG, OPT_CONSTRAINT_ATTR } from "./amp.ts";
 * const attr = { [OPT_CONSTRAINT_ATTR]: String(DISABLE_AMP_FLAG) };
 * const fc = sym.FullyConnected(sym.var("x"), { num_hidden: 2, name: "fc", attr });
 * assert(convertSymbol(fc, { targetDtype: "float16" }).outputs[0] === fc.outputs[0]);
 * ```
 */
export const OPT_CONSTRAINT_ATTR = "__opt_constraint__";

/**
 * The `__opt_constraint__` bit that keeps a node out of AMP (`OptConstraint.Flag.DisableAMP`).
 *
 * @example The flag's value
 * ```ts
 * import assert from "node:assert";
 * import { DISABLE_AMP_FLAG } from "./amp.ts";
 * assert(DISABLE_AMP_FLAG === 1);
 * ```
 */
export const DISABLE_AMP_FLAG = 1;

// The lists below hold MXNet's names (its full lists, less families sigil will not have:
// optimizer updates, image/cv, random sampling, quantization, DGL, oneDNN subgraph ops). Only
// names sigil registers are kept, so a newly added op picks up MXNet's classification.

const FP16_TARGET = [
  "Convolution",
  "Deconvolution",
  "FullyConnected",
  "RNN",
  "_linalg_gemm",
  "_linalg_gemm2",
  "_npi_einsum",
  "_npi_matmul",
];

const FP16_NEUTRAL = [
  "BatchNorm",
  "BilinearSampler",
  "BlockGrad",
  "Cast",
  "Crop",
  "Dropout",
  "Embedding",
  "Flatten",
  "GridGenerator",
  "Pad",
  "Pooling",
  "ROIPooling",
  "Reshape",
  "SequenceLast",
  "SequenceMask",
  "SequenceReverse",
  "SliceChannel",
  "SpatialTransformer",
  "SwapAxis",
  "UpSampling",
  "_CachedOp",
  "_contrib_AdaptiveAvgPooling2D",
  "_contrib_BilinearResize2D",
  "_copy",
  "_div_scalar",
  "_equal_scalar",
  "_grad_add",
  "_greater_equal_scalar",
  "_greater_scalar",
  "_hypot_scalar",
  "_lesser_equal_scalar",
  "_lesser_scalar",
  "_logical_and_scalar",
  "_logical_or_scalar",
  "_logical_xor_scalar",
  "_maximum_scalar",
  "_minimum_scalar",
  "_minus_scalar",
  "_mod_scalar",
  "_mul_scalar",
  "_not_equal_scalar",
  "_np_reshape",
  "_npi_absolute",
  "_npi_add",
  "_npi_add_scalar",
  "_npi_copy",
  "_npi_multiply",
  "_npi_multiply_scalar",
  "_npi_negative",
  "_npi_rsubtract_scalar",
  "_npi_rtrue_divide_scalar",
  "_npi_sqrt",
  "_npi_squeeze",
  "_npi_subtract",
  "_npi_subtract_scalar",
  "_npi_tanh",
  "_npi_transpose",
  "_npi_true_divide",
  "_npi_true_divide_scalar",
  "_npx_relu",
  "_npx_reshape",
  "_npx_sigmoid",
  "_ones",
  "_plus_scalar",
  "_rminus_scalar",
  "_zeros",
  "abs",
  "amp_cast",
  "amp_multicast",
  "arccosh",
  "arcsinh",
  "arctan",
  "argmax",
  "argmin",
  "broadcast_axis",
  "broadcast_like",
  "broadcast_to",
  "cbrt",
  "ceil",
  "clip",
  "cos",
  "degrees",
  "depth_to_space",
  "diag",
  "erf",
  "expand_dims",
  "fix",
  "floor",
  "hard_sigmoid",
  "log_sigmoid",
  "logical_not",
  "max",
  "min",
  "mish",
  "negative",
  "one_hot",
  "ones_like",
  "pick",
  "radians",
  "relu",
  "repeat",
  "reshape_like",
  "reverse",
  "rint",
  "round",
  "shape_array",
  "sigmoid",
  "sign",
  "sin",
  "size_array",
  "slice",
  "slice_axis",
  "slice_like",
  "softsign",
  "sort",
  "space_to_depth",
  "sqrt",
  "squeeze",
  "take",
  "tanh",
  "tile",
  "transpose",
  "trunc",
  "zeros_like",
];

const FP16_FP32 = [
  "CTCLoss",
  "Custom",
  "GroupNorm",
  "IdentityAttachKLSparseReg",
  "InstanceNorm",
  "L2Normalization",
  "LRN",
  "LayerNorm",
  "LinearRegressionOutput",
  "LogisticRegressionOutput",
  "MAERegressionOutput",
  "MakeLoss",
  "SVMOutput",
  "SoftmaxActivation",
  "SoftmaxOutput",
  "_NDArray",
  "_Native",
  "_contrib_SyncBatchNorm",
  "_contrib_fft",
  "_contrib_count_sketch",
  "_linalg_det",
  "_linalg_extractdiag",
  "_linalg_extracttrian",
  "_linalg_gelqf",
  "_linalg_inverse",
  "_linalg_makediag",
  "_linalg_maketrian",
  "_linalg_potrf",
  "_linalg_potri",
  "_linalg_slogdet",
  "_linalg_sumlogdiag",
  "_linalg_syevd",
  "_linalg_syrk",
  "_linalg_trmm",
  "_linalg_trsm",
  "_npi_arccos",
  "_npi_arcsin",
  "_npi_arctanh",
  "_npi_average",
  "_npi_cosh",
  "_npi_cumsum",
  "_npi_exp",
  "_npi_expm1",
  "_npi_ldexp",
  "_npi_ldexp_scalar",
  "_npi_log",
  "_npi_log10",
  "_npi_log1p",
  "_npi_log2",
  "_npi_logaddexp",
  "_npi_logaddexp_scalar",
  "_npi_mean",
  "_npi_norm",
  "_npi_power",
  "_npi_power_scalar",
  "_npi_prod",
  "_npi_reciprocal",
  "_npi_rldexp_scalar",
  "_npi_rpower_scalar",
  "_npi_sinh",
  "_npi_square",
  "_npi_std",
  "_npi_sum",
  "_npi_tan",
  "_npi_trace",
  "_npi_var",
  "_npx_deformable_convolution",
  "_npx_modulated_deformable_convolution",
  "_power",
  "_power_scalar",
  "_rdiv_scalar",
  "_rpower_scalar",
  "_square_sum",
  "arccos",
  "arcsin",
  "arctanh",
  "argsort",
  "broadcast_power",
  "cosh",
  "digamma",
  "erfinv",
  "exp",
  "expm1",
  "gamma",
  "gammaln",
  "khatri_rao",
  "log",
  "log10",
  "log1p",
  "log2",
  "log_softmax",
  "make_loss",
  "masked_log_softmax",
  "masked_softmax",
  "mean",
  "moments",
  "nanprod",
  "nansum",
  "norm",
  "prod",
  "rcbrt",
  "reciprocal",
  "rsqrt",
  "sinh",
  "smooth_l1",
  "softmax",
  "softmax_cross_entropy",
  "softmin",
  "square",
  "sum",
  "tan",
  "topk",
];

const FP16_CONDITIONAL: readonly ConditionalFp32Op[] = [
  ["Activation", "act_type", ["softrelu"]],
  ["LeakyReLU", "act_type", ["elu", "selu"]],
];

const FP16_WIDEST = [
  "Concat",
  "Correlation",
  "_equal",
  "_greater",
  "_greater_equal",
  "_hypot",
  "_lesser",
  "_lesser_equal",
  "_logical_and",
  "_logical_or",
  "_logical_xor",
  "_maximum",
  "_minimum",
  "_mod",
  "_not_equal",
  "_npi_column_stack",
  "_npi_copysign",
  "_npi_cross",
  "_npi_dot",
  "_npi_dstack",
  "_npi_ediff1d",
  "_npi_equal",
  "_npi_fmax",
  "_npi_fmin",
  "_npi_fmod",
  "_npi_greater",
  "_npi_greater_equal",
  "_npi_hstack",
  "_npi_hypot",
  "_npi_kron",
  "_npi_less",
  "_npi_less_equal",
  "_npi_logical_and",
  "_npi_logical_or",
  "_npi_logical_xor",
  "_npi_not_equal",
  "_npi_tensordot",
  "_npi_tensordot_int_axes",
  "_npi_vstack",
  "_npi_where",
  "_npx_index_add",
  "_npx_index_update",
  "add_n",
  "batch_dot",
  "broadcast_add",
  "broadcast_div",
  "broadcast_equal",
  "broadcast_greater",
  "broadcast_greater_equal",
  "broadcast_hypot",
  "broadcast_lesser",
  "broadcast_lesser_equal",
  "broadcast_logical_and",
  "broadcast_logical_or",
  "broadcast_logical_xor",
  "broadcast_maximum",
  "broadcast_minimum",
  "broadcast_mod",
  "broadcast_mul",
  "broadcast_not_equal",
  "broadcast_sub",
  "dot",
  "elemwise_add",
  "elemwise_div",
  "elemwise_mul",
  "elemwise_sub",
  "stack",
  "where",
];

const BF16_TARGET = ["Convolution", "Deconvolution", "FullyConnected"];

const BF16_NEUTRAL = [
  "Activation",
  "BatchNorm",
  "Cast",
  "Flatten",
  "LRN",
  "LayerNorm",
  "Pooling",
  "Reshape",
  "_contrib_AdaptiveAvgPooling2D",
  "_copy",
  "_npi_exp",
  "_npi_mean",
  "_npi_sqrt",
  "_npi_square",
  "_npi_sum",
  "_npi_tanh",
  "_npi_transpose",
  "_npi_where",
  "_npx_reshape",
  "_split_v2",
  "expand_dims",
  "log_softmax",
  "mean",
  "slice",
  "softmax",
  "space_to_depth",
  "stack",
  "sum",
  "take",
  "transpose",
  "where",
];

const BF16_WIDEST = [
  "Concat",
  "_npi_add",
  "_npi_dot",
  "_npi_multiply",
  "_npi_subtract",
  "_npi_true_divide",
  "add_n",
  "batch_dot",
  "broadcast_add",
  "broadcast_div",
  "broadcast_mul",
  "broadcast_sub",
  "dot",
  "elemwise_add",
];

// MXNet's bfloat16 fp32 list is "everything else"; the entries for ops sigil may plausibly have.
const BF16_FP32 = [
  "BlockGrad",
  "CTCLoss",
  "Correlation",
  "Crop",
  "Custom",
  "Dropout",
  "Embedding",
  "GroupNorm",
  "InstanceNorm",
  "L2Normalization",
  "LinearRegressionOutput",
  "LogisticRegressionOutput",
  "MAERegressionOutput",
  "MakeLoss",
  "Pad",
  "RNN",
  "SVMOutput",
  "SequenceLast",
  "SequenceMask",
  "SequenceReverse",
  "SliceChannel",
  "SoftmaxActivation",
  "SoftmaxOutput",
  "SwapAxis",
  "UpSampling",
  "_CachedOp",
  "_div_scalar",
  "_equal",
  "_equal_scalar",
  "_grad_add",
  "_greater",
  "_greater_equal",
  "_greater_equal_scalar",
  "_greater_scalar",
  "_hypot",
  "_hypot_scalar",
  "_lesser",
  "_lesser_equal",
  "_lesser_equal_scalar",
  "_lesser_scalar",
  "_logical_and",
  "_logical_and_scalar",
  "_logical_or",
  "_logical_or_scalar",
  "_logical_xor",
  "_logical_xor_scalar",
  "_maximum",
  "_maximum_scalar",
  "_minimum",
  "_minimum_scalar",
  "_minus_scalar",
  "_mod",
  "_mod_scalar",
  "_mul_scalar",
  "_not_equal",
  "_not_equal_scalar",
  "_np_reshape",
  "_npi_absolute",
  "_npi_add_scalar",
  "_npi_copy",
  "_npi_log",
  "_npi_max",
  "_npi_min",
  "_npi_multiply_scalar",
  "_npi_negative",
  "_npi_rsubtract_scalar",
  "_npi_rtrue_divide_scalar",
  "_npi_subtract_scalar",
  "_npi_true_divide_scalar",
  "_npx_relu",
  "_npx_sigmoid",
  "_ones",
  "_plus_scalar",
  "_power",
  "_power_scalar",
  "_rdiv_scalar",
  "_rminus_scalar",
  "_rpower_scalar",
  "_square_sum",
  "_zeros",
  "abs",
  "amp_cast",
  "amp_multicast",
  "arccos",
  "arccosh",
  "arcsin",
  "arcsinh",
  "arctan",
  "arctanh",
  "argmax",
  "argmin",
  "argsort",
  "broadcast_axis",
  "broadcast_equal",
  "broadcast_greater",
  "broadcast_greater_equal",
  "broadcast_hypot",
  "broadcast_lesser",
  "broadcast_lesser_equal",
  "broadcast_like",
  "broadcast_logical_and",
  "broadcast_logical_or",
  "broadcast_logical_xor",
  "broadcast_maximum",
  "broadcast_minimum",
  "broadcast_mod",
  "broadcast_not_equal",
  "broadcast_power",
  "broadcast_to",
  "cbrt",
  "ceil",
  "clip",
  "cos",
  "cosh",
  "degrees",
  "depth_to_space",
  "diag",
  "digamma",
  "elemwise_div",
  "elemwise_mul",
  "elemwise_sub",
  "erf",
  "erfinv",
  "exp",
  "expm1",
  "fix",
  "floor",
  "gamma",
  "gammaln",
  "hard_sigmoid",
  "log",
  "log10",
  "log1p",
  "log2",
  "log_sigmoid",
  "logical_not",
  "make_loss",
  "masked_log_softmax",
  "masked_softmax",
  "max",
  "min",
  "mish",
  "moments",
  "nanprod",
  "nansum",
  "negative",
  "norm",
  "one_hot",
  "ones_like",
  "pick",
  "prod",
  "radians",
  "rcbrt",
  "reciprocal",
  "relu",
  "repeat",
  "reshape_like",
  "reverse",
  "rint",
  "round",
  "rsqrt",
  "sigmoid",
  "sign",
  "sin",
  "sinh",
  "slice_axis",
  "slice_like",
  "smooth_l1",
  "softmax_cross_entropy",
  "softmin",
  "softsign",
  "sort",
  "sqrt",
  "square",
  "squeeze",
  "tan",
  "tanh",
  "tile",
  "topk",
  "trunc",
  "zeros_like",
];

const BF16_CONDITIONAL: readonly ConditionalFp32Op[] = [["LeakyReLU", "act_type", ["selu"]]];

function registered(names: readonly string[]): readonly string[] {
  return Object.freeze(names.filter(hasOp));
}

function freezeLists(
  target: readonly string[],
  neutral: readonly string[],
  fp32: readonly string[],
  conditional: readonly ConditionalFp32Op[],
  widest: readonly string[],
): AmpOpLists {
  return Object.freeze({
    targetDtypeOps: registered(target),
    lp16Fp32Ops: registered(neutral),
    fp32Ops: registered(fp32),
    conditionalFp32Ops: Object.freeze(
      conditional.filter(([op]) => hasOp(op)).map((c) =>
        Object.freeze([...c]) as ConditionalFp32Op
      ),
    ),
    widestTypeCasts: registered(widest),
  });
}

/**
 * MXNet's float16 lists (`symbol_fp16.py`), restricted to the ops sigil registers.
 *
 * @example Convolution runs in float16, softmax in float32
 * ```ts
 * import assert from "node:assert";
 * import { FP16_LISTS } from "./amp.ts";
 * assert(FP16_LISTS.targetDtypeOps.includes("Convolution"));
 * assert(FP16_LISTS.fp32Ops.includes("softmax"));
 * assert(FP16_LISTS.widestTypeCasts.includes("elemwise_add"));
 * ```
 */
export const FP16_LISTS: AmpOpLists = freezeLists(
  FP16_TARGET,
  FP16_NEUTRAL,
  FP16_FP32,
  FP16_CONDITIONAL,
  FP16_WIDEST,
);

/**
 * MXNet's bfloat16 lists (`symbol_bf16.py`), restricted to the ops sigil registers.
 *
 * @example softmax may run in bfloat16
 * ```ts
 * import assert from "node:assert";
 * import { BF16_LISTS } from "./amp.ts";
 * assert(BF16_LISTS.lp16Fp32Ops.includes("softmax"));
 * assert(BF16_LISTS.conditionalFp32Ops[0][0] === "LeakyReLU");
 * ```
 */
export const BF16_LISTS: AmpOpLists = freezeLists(
  BF16_TARGET,
  BF16_NEUTRAL,
  BF16_FP32,
  BF16_CONDITIONAL,
  BF16_WIDEST,
);

function checkTarget(targetDtype: unknown, where: string): AmpDType {
  if (targetDtype !== "float16" && targetDtype !== "bfloat16") {
    throw new SigilError(
      `${where}: only float16 and bfloat16 are supported as targetDtype, got ${
        JSON.stringify(targetDtype)
      }`,
    );
  }
  return targetDtype;
}

/**
 * The default lists for a target dtype (MXNet's `list_lp16_ops`, `list_fp32_ops`, ...).
 *
 * @example Lists by dtype
 * ```ts
 * import assert from "node:assert";
 * import { ampLists } from "./amp.ts";
 * assert(ampLists("bfloat16").targetDtypeOps.join() === "Convolution,Deconvolution,FullyConnected");
 * ```
 */
export function ampLists(targetDtype: AmpDType): AmpOpLists {
  return checkTarget(targetDtype, "ampLists") === "float16" ? FP16_LISTS : BF16_LISTS;
}

/** Options of {@link convertSymbol} (MXNet's `convert_symbol` arguments in camelCase). */
export interface ConvertSymbolOptions {
  /** The low-precision dtype (`float16` or `bfloat16`). */
  targetDtype: AmpDType;
  /** Ops run in the target dtype; default {@link AmpOpLists.targetDtypeOps}. */
  targetDtypeOps?: readonly string[];
  /** Ops kept in float32; default {@link AmpOpLists.fp32Ops}. */
  fp32Ops?: readonly string[];
  /** Conditional fp32 rules; default {@link AmpOpLists.conditionalFp32Ops}. */
  conditionalFp32Ops?: readonly ConditionalFp32Op[];
  /** Names of nodes to leave unconverted (they gain `__opt_constraint__`). */
  excludedSymNames?: readonly string[];
  /**
   * Drop the casts of parameters whose every use is cast to the target dtype, and mark those
   * variables `__amp_dtype__` so their values get cast once, ahead of time. Needs `inputTypes`
   * to tell data inputs from parameters.
   */
  castParamsOffline?: boolean;
  /**
   * Dtypes of the data inputs, by name (MXNet's `input_dtypes`); the variables not named here
   * are parameters. Variables whose dtype is neither given, declared (`__dtype__`) nor
   * inferable from the others are float32.
   */
  inputTypes?: Readonly<Record<string, DType>>;
  /** Dtypes of parameters, by name (MXNet's `param_dtypes`). */
  paramTypes?: Readonly<Record<string, DType>>;
}

type Category = "fp32" | "target" | "widest" | "neutral";

/**
 * How a node's op is classified. sigil folds MXNet's aliases into one op (`_npi_add` is
 * `broadcast_add`), so a list entry naming the canonical op decides; an alias entry decides
 * only when the canonical name is on no list (the neutral list included).
 */
function classifier(
  lists: { fp32: readonly string[]; target: readonly string[]; widest: readonly string[] },
  neutral: readonly string[],
): (op: AnyOpDef) => Category {
  const direct = new Map<string, Category>();
  const viaAlias = new Map<string, Category>();
  const order: [Category, readonly string[]][] = [
    ["fp32", lists.fp32],
    ["target", lists.target],
    ["widest", lists.widest],
  ];
  for (const [cat, names] of order) {
    for (const n of names) {
      if (!hasOp(n)) continue;
      const canonical = getOp(n).name;
      const table = canonical === n ? direct : viaAlias;
      if (!table.has(canonical)) table.set(canonical, cat);
    }
  }
  const neutralDirect = new Set(neutral.filter((n) => hasOp(n) && getOp(n).name === n));
  return (op) =>
    direct.get(op.name) ?? (neutralDirect.has(op.name) ? "neutral" : viaAlias.get(op.name)) ??
      "neutral";
}

function opMatches(op: AnyOpDef, name: string): boolean {
  return op.name === name || (hasOp(name) && getOp(name) === op);
}

function checkDisjoint(a: readonly string[], b: readonly string[], what: string): void {
  const bs = new Set(b);
  const common = [...new Set(a.filter((n) => bs.has(n)))];
  if (common.length) throw new SigilError(`AMP: common ops in ${what}: ${common.join(", ")}`);
}

function constraintFlags(attrs: Readonly<Record<string, string>>): number {
  const v = parseInt(attrs[OPT_CONSTRAINT_ATTR] ?? "0", 10);
  return Number.isFinite(v) ? v : 0;
}

/** A reference to an output of a node of the graph being built. */
interface Ref {
  readonly draft: Draft;
  readonly index: number;
  readonly version: number;
}

/** A node of the graph being built: a copy of an original node, or an inserted cast. */
interface Draft {
  readonly old: Node | null;
  readonly op: AnyOpDef | null;
  readonly name: string;
  attrs: Record<string, string>;
  attrsChanged: boolean;
  inputs: Ref[];
}

/** An original entry's counterpart: its current dtype and the casts made of it (MXNet's `MappedNodeEntry`). */
class Mapped {
  dtype: DType;
  readonly casts: Map<DType, Ref> = new Map();
  readonly ref: Ref;
  readonly original: DType;
  readonly makeCast: (m: Mapped, t: DType) => Ref;
  constructor(ref: Ref, original: DType, makeCast: (m: Mapped, t: DType) => Ref) {
    this.ref = ref;
    this.original = original;
    this.makeCast = makeCast;
    this.dtype = original;
  }
  has(t: DType): boolean {
    return this.dtype === t || this.casts.has(t);
  }
  /**
   * Whether an `amp_cast` to `t` gives `t`. MXNet only asks that the dtype be known, which lets
   * it "cast" float64 or integer entries that `amp_cast` then passes through unchanged; sigil
   * declines those, so the consuming op stays unconverted and the graph stays well typed.
   */
  canCastTo(_t: DType): boolean {
    return this.dtype === "float32" || this.dtype === "float16" || this.dtype === "bfloat16";
  }
  asType(t: DType | undefined): Ref {
    if (t === undefined || this.dtype === t) return this.ref;
    let c = this.casts.get(t);
    if (!c) {
      c = this.makeCast(this, t);
      this.casts.set(t, c);
    }
    return c;
  }
  asOriginal(): Ref {
    return this.asType(this.original);
  }
}

/** What the conversion needs besides the symbol. */
interface ReduceOptions {
  readonly target: AmpDType;
  readonly classify: (op: AnyOpDef) => Category;
  readonly excluded: ReadonlySet<string>;
  readonly castParamsOffline: boolean;
  readonly inputNames: ReadonlySet<string>;
  readonly types: Readonly<Record<string, DType>>;
}

function entryKey(e: Entry): string {
  return `${e.node.id}:${e.index}:${e.version}`;
}

/**
 * Dtypes of every entry, from the given and declared (`__dtype__`) variable dtypes. MXNet's
 * pass is handed every argument's dtype; here a variable neither given, declared nor inferable
 * from the others is float32 (and when inference from the given ones alone fails, every such
 * variable is).
 */
function entryTypes(symbol: Symbol, given: Readonly<Record<string, DType>>) {
  const known = emptyRecord<DType>();
  const vars = symbol.nodes().filter((n) => n.isVariable);
  for (const n of vars) {
    const t = Object.hasOwn(given, n.name) ? given[n.name] : declaredType(n);
    if (t !== undefined) known[n.name] = t;
  }
  let facts;
  try {
    facts = typeFacts(symbol, known);
  } catch (e) {
    if (!(e instanceof SigilError)) throw e;
  }
  for (const n of vars) {
    if (!Object.hasOwn(known, n.name) && (!facts || facts.get(n)![0] === undefined)) {
      known[n.name] = "float32";
    }
  }
  return typeFacts(symbol, known);
}

/** The conversion proper; returns the new symbol and the parameters to cast offline. */
function reducePrecision(
  symbol: Symbol,
  o: ReduceOptions,
): { symbol: Symbol; offline: Map<string, DType> } {
  const facts = entryTypes(symbol, o.types);
  const nodes = symbol.nodes();
  const drafts = new Map<Node, Draft>();
  for (const n of nodes) {
    const attrs: Record<string, string> = { ...n.attrs };
    let changed = false;
    if (o.excluded.has(n.name)) {
      attrs[OPT_CONSTRAINT_ATTR] = String(constraintFlags(attrs) | DISABLE_AMP_FLAG);
      changed = attrs[OPT_CONSTRAINT_ATTR] !== n.attrs[OPT_CONSTRAINT_ATTR];
    }
    drafts.set(n, { old: n, op: n.op, name: n.name, attrs, attrsChanged: changed, inputs: [] });
  }
  const makeCast = (m: Mapped, t: DType): Ref => {
    const src = m.ref.draft;
    const draft: Draft = {
      old: null,
      op: getOp("amp_cast"),
      name: `${src.name}_${m.ref.index}_amp_cast_${t}`,
      attrs: { dtype: t },
      attrsChanged: true,
      inputs: [m.ref],
    };
    return { draft, index: 0, version: 0 };
  };
  const mapped = new Map<string, Mapped>();
  const entriesOf = new Map<Node, Map<string, Entry>>();
  const paramDsts = new Map<Node, Map<Node, Entry>>();
  const register = (e: Entry, dst: Node | null) => {
    const key = entryKey(e);
    if (!mapped.has(key)) {
      const t = facts.get(e.node)?.[e.index];
      if (t === undefined) {
        throw new DTypeError(
          `AMP: cannot infer the dtype of output ${e.index} of ${
            nodeWhere(e.node)
          }; give inputTypes`,
        );
      }
      const ref = { draft: drafts.get(e.node)!, index: e.index, version: e.version };
      mapped.set(key, new Mapped(ref, t, makeCast));
    }
    let set = entriesOf.get(e.node);
    if (!set) entriesOf.set(e.node, set = new Map());
    set.set(key, e);
    if (dst && e.node.isVariable && !o.inputNames.has(e.node.name)) {
      let dsts = paramDsts.get(e.node);
      if (!dsts) paramDsts.set(e.node, dsts = new Map());
      dsts.set(dst, e);
    }
  };
  for (const n of nodes) for (const e of n.inputs) register(e, n);
  for (const e of symbol.outputs) register(e, null);
  const at = (e: Entry) => mapped.get(entryKey(e))!;
  const target = o.target;

  const keepOriginal = (n: Node) => {
    drafts.get(n)!.inputs = n.inputs.map((e) => at(e).asOriginal());
  };
  /** The op's dtype rule on partly known inputs; undefined where MXNet's FInferType fails. */
  const inferOp = (n: Node, ins: (DType | undefined)[]) => {
    try {
      const r = applyTypeRule(n.op!, n.parsed, ins, new Array(n.numOutputs).fill(undefined), "");
      return r.outputs.every((t) => t !== undefined) ? r : undefined;
    } catch (e) {
      if (e instanceof SigilError) return undefined;
      throw e;
    }
  };
  const tryLowPrecision = (n: Node): boolean => {
    if (n.inputs.length === 0) return false;
    const ins = n.inputs.map(at);
    const inTypes: (DType | undefined)[] = ins.map((m) => (m.has(target) ? target : undefined));
    // With no low-precision input yet, MXNet assumes the first input should become one.
    if (!inTypes.some((t) => t !== undefined)) inTypes[0] = target;
    const r = inferOp(n, inTypes);
    if (!r) return false;
    if (n.op!.auxInputs.some((i) => r.inputs[i] === target)) return false;
    for (let i = 0; i < ins.length; i++) {
      const t = r.inputs[i];
      if (t !== undefined && !ins[i].has(t) && !ins[i].canCastTo(t)) return false;
    }
    drafts.get(n)!.inputs = ins.map((m, i) => m.asType(r.inputs[i]));
    for (const e of entriesOf.get(n)?.values() ?? []) at(e).dtype = r.outputs[e.index]!;
    return true;
  };
  const handleWidest = (n: Node) => {
    const ins = n.inputs.map(at);
    const inTypes = ins.map((m) => (m.has(target) ? target : undefined));
    if (inTypes.some((t) => t !== undefined)) {
      const r = inferOp(n, inTypes);
      // Runs in low precision only when no input needs a new cast.
      if (
        r && r.inputs.every((t, i) => t === undefined || ins[i].has(t)) && tryLowPrecision(n)
      ) return;
    }
    keepOriginal(n);
  };
  const convert = (n: Node) => {
    const draft = drafts.get(n)!;
    if (n.isVariable) return;
    const name = n.op!.name;
    if (name === "amp_cast" || name === "amp_multicast" || name === "Cast") {
      draft.inputs = n.inputs.map((e) => ({
        draft: drafts.get(e.node)!,
        index: e.index,
        version: e.version,
      }));
      // MXNet keeps such a node's output dtype as it was; but an amp_multicast whose inputs
      // went to low precision now gives low precision, so sigil follows its dtype rule (and a
      // consumer that needs the old dtype gets a cast back).
      const r = inferOp(n, n.inputs.map((e) => at(e).dtype));
      if (r) {
        for (const e of entriesOf.get(n)?.values() ?? []) at(e).dtype = r.outputs[e.index]!;
      }
      return;
    }
    const disabled = (constraintFlags(draft.attrs) & DISABLE_AMP_FLAG) !== 0;
    const cat = o.classify(n.op!);
    // Subgraph calls keep float32: their insides are not converted (inline them first).
    if (disabled || n.calledGraph || cat === "fp32") keepOriginal(n);
    else if (cat === "target") {
      if (!tryLowPrecision(n)) keepOriginal(n);
    } else if (cat === "widest") handleWidest(n);
    else if (!n.inputs.some((e) => at(e).has(target)) || !tryLowPrecision(n)) keepOriginal(n);
  };
  // The virtual sweep makes every cast a node would want, then the real one decides.
  for (const n of nodes) {
    convert(n);
    drafts.get(n)!.inputs = [];
  }
  for (const n of nodes) convert(n);
  const outputs = symbol.outputs.map((e) => at(e).asOriginal());

  const offline = new Map<string, DType>();
  if (o.castParamsOffline) {
    const heads = new Set(symbol.outputs.map((e) => e.node));
    for (const [param, dsts] of paramDsts) {
      const paramDraft = drafts.get(param)!;
      // A parameter that is also a graph output must keep its dtype (MXNet casts it anyway).
      if (heads.has(param)) continue;
      const ok = [...dsts].every(([dst, e]) =>
        !drafts.get(dst)!.inputs.some((r) => r.draft === paramDraft) && at(e).casts.has(target)
      );
      if (!ok) continue;
      for (const [dst, e] of dsts) {
        const m = at(e);
        const skip = m.casts.get(target)!;
        const inputs = drafts.get(dst)!.inputs;
        const i = inputs.findIndex((r) =>
          r.draft === skip.draft && r.index === skip.index && r.version === skip.version
        );
        inputs[i] = m.ref;
      }
      paramDraft.attrs[OFFLINE_CAST_DTYPE_ATTR] = target;
      // MXNet leaves a stale `__dtype__` (its conversion ignores it); sigil's inference reads
      // it, so it follows the offline cast.
      if (paramDraft.attrs.__dtype__ !== undefined) {
        paramDraft.attrs.__dtype__ = String(dtypeInfo(target).flag);
      }
      paramDraft.attrsChanged = true;
      offline.set(param.name, target);
    }
  }
  return { symbol: materialize(outputs, drafts, symbol), offline };
}

/** Builds hash-consed nodes for the drafts reachable from `outputs`. */
function materialize(outputs: readonly Ref[], drafts: Map<Node, Draft>, original: Symbol): Symbol {
  const made = new Map<Draft, Node>();
  const depsOf = (d: Draft): Draft[] => [
    ...d.inputs.map((r) => r.draft),
    ...(d.old?.controlDeps.map((n) => drafts.get(n)!) ?? []),
  ];
  for (const head of outputs) {
    const stack: [Draft, number][] = [[head.draft, 0]];
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [d, i] = top;
      if (made.has(d)) {
        stack.pop();
        continue;
      }
      const deps = depsOf(d);
      if (i < deps.length) {
        top[1]++;
        if (!made.has(deps[i])) stack.push([deps[i], 0]);
        continue;
      }
      stack.pop();
      const old = d.old;
      made.set(
        d,
        makeNode({
          op: d.op,
          name: d.name,
          attrs: d.attrs,
          inputs: d.inputs.map((r) => made.get(r.draft)!.entry(r.index, r.version)),
          controlDeps: old?.controlDeps.map((n) => made.get(drafts.get(n)!)!) ?? [],
          subgraphs: old?.subgraphs ?? [],
          rowOutputs: old?.rowOutputs,
          parsed: old && !d.attrsChanged ? old.parsed : undefined,
        }),
      );
    }
  }
  return new Symbol(
    outputs.map((r) => made.get(r.draft)!.entry(r.index, r.version)),
    original.graphAttrs,
  );
}

/** Resolves the options into what {@link reducePrecision} needs. */
function resolve(
  symbol: Symbol,
  options: Omit<ConvertSymbolOptions, "inputTypes" | "paramTypes">,
  inputNames: ReadonlySet<string>,
  types: Readonly<Record<string, DType>>,
  where: string,
): ReduceOptions {
  if (!(symbol instanceof Symbol)) {
    throw new SigilError(`${where}: the first argument must be a Symbol`);
  }
  const target = checkTarget(options?.targetDtype, where);
  const defaults = ampLists(target);
  const targetOps = options.targetDtypeOps ?? defaults.targetDtypeOps;
  const fp32Ops = options.fp32Ops ?? defaults.fp32Ops;
  const conditional = options.conditionalFp32Ops ?? defaults.conditionalFp32Ops;
  for (const c of conditional) {
    if (
      !Array.isArray(c) || typeof c[0] !== "string" || typeof c[1] !== "string" ||
      !Array.isArray(c[2])
    ) {
      throw new SigilError(`${where}: conditionalFp32Ops must be [op, attribute, values] triples`);
    }
  }
  const condOps = conditional.map((c) => c[0]);
  checkDisjoint(targetOps, fp32Ops, "targetDtypeOps and fp32Ops");
  checkDisjoint(targetOps, condOps, "targetDtypeOps and conditionalFp32Ops");
  checkDisjoint(condOps, fp32Ops, "fp32Ops and conditionalFp32Ops");
  // As MXNet's convert_symbol: custom lists may only move ops between the default lists.
  const known = new Set([
    ...defaults.targetDtypeOps,
    ...defaults.fp32Ops,
    ...defaults.lp16Fp32Ops,
    ...defaults.conditionalFp32Ops.map((c) => c[0]),
  ]);
  const illegal = [...new Set([...targetOps, ...fp32Ops, ...condOps])].filter((n) => !known.has(n));
  if (illegal.length) {
    throw new SigilError(
      `${where}: ops can only be chosen from the default lp16, fp32, lp16_fp32 and conditional fp32 lists; not in any of them: ${
        illegal.join(", ")
      }`,
    );
  }
  const excluded = new Set(options.excludedSymNames ?? []);
  // MXNet turns conditional matches into excluded names before the graph pass runs.
  for (const n of symbol.nodes()) {
    if (n.isVariable) continue;
    const hit = conditional.some(([op, key, values]) => {
      if (!opMatches(n.op!, op)) return false;
      const raw = n.attrs[key] ?? n.parsed[key];
      return raw !== undefined && values.includes(String(raw));
    });
    if (hit) excluded.add(n.name);
  }
  return {
    target,
    classify: classifier(
      { fp32: fp32Ops, target: targetOps, widest: defaults.widestTypeCasts },
      defaults.lp16Fp32Ops,
    ),
    excluded,
    castParamsOffline: options.castParamsOffline ?? false,
    inputNames,
    types,
  };
}

/**
 * Converts a float32 graph to mixed precision, as MXNet 2.x's `amp.convert_symbol`.
 *
 * @example A dense layer runs in float16, its output is cast back
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { convertSymbol } from "./amp.ts";
 * const fc = sym.FullyConnected(sym.var("data"), { num_hidden: 4, name: "fc" });
 * const lp = convertSymbol(fc, { targetDtype: "float16" });
 * assert(lp.name === "fc_0_amp_cast_float32");
 * const names = lp.nodes().map((n) => n.name);
 * assert(names.includes("data_0_amp_cast_float16") && names.includes("fc_weight_0_amp_cast_float16"));
 * assert(lp.inferTypePartial({ data: "float32" }).outTypes[0] === "float32");
 * ```
 */
export function convertSymbol(symbol: Symbol, options: ConvertSymbolOptions): Symbol {
  const where = "convertSymbol";
  if (options?.castParamsOffline && options.inputTypes === undefined) {
    throw new SigilError(
      `${where}: castParamsOffline needs inputTypes to tell data inputs from parameters`,
    );
  }
  const inputNames = new Set(Object.keys(options?.inputTypes ?? {}));
  const types = { ...(options?.paramTypes ?? {}), ...(options?.inputTypes ?? {}) };
  return reducePrecision(symbol, resolve(symbol, options, inputNames, types, where)).symbol;
}

/** Options of {@link ampConvert} (its graph's bound values are the parameters). */
export interface AmpConvertOptions
  extends Omit<ConvertSymbolOptions, "targetDtype" | "paramTypes"> {
  /** The low-precision dtype (default `float16`). */
  targetDtype?: AmpDType;
}

function castTo(t: Tensor, dtype: DType): Tensor {
  return t.dtype === dtype ? t : tensorFromValues(tensorValues(t), t.shape, dtype, t.device);
}

/**
 * The AMP conversion as a pass over a {@link Graph}: bound values are the parameters (their
 * dtypes feed type inference), unbound variables the data inputs (`inputTypes`, else
 * float32). With `castParamsOffline`, the bound values of parameters marked `__amp_dtype__`
 * are cast, as MXNet's `convert_model` does.
 *
 * @example Converting a graph with bound weights
 * ```ts
 * import assert from "node:assert";
 * import { nd, sym } from "../../mod.ts";
 * import { ampConvert } from "./amp.ts";
 * import { graphOf } from "./pass.ts";
 * const fc = sym.FullyConnected(sym.var("data"), { num_hidden: 2, no_bias: true, name: "fc" });
 * const g = graphOf(fc, { fc_weight: nd.ones([2, 3]) });
 * const lp = ampConvert.run(g, { castParamsOffline: true });
 * assert(lp.params.fc_weight.dtype === "float16");
 * assert(!lp.symbol.nodes().some((n) => n.name === "fc_weight_0_amp_cast_float16"));
 * ```
 */
export const ampConvert: Pass<AmpConvertOptions> = definePass<AmpConvertOptions>({
  name: "amp-convert",
  doc: "Inserts amp_cast nodes so that MXNet's low-precision ops run in float16/bfloat16 " +
    "(MXNet 2.x ReducePrecision). Preserves inputs, output dtypes and values up to low-" +
    "precision rounding; with castParamsOffline, casts marked parameters' bound values.",
  idempotent: true,
  run(graph: Graph, options: AmpConvertOptions = {}): Graph {
    const where = "amp-convert";
    const params = graph.params;
    const inputNames = new Set(
      graph.symbol.listInputs().filter((n) => !Object.hasOwn(params, n)),
    );
    const types = emptyRecord<DType>();
    for (const [k, t] of Object.entries(params)) types[k] = t.dtype;
    for (const [k, t] of Object.entries(options.inputTypes ?? {})) {
      if (inputNames.has(k)) types[k] = t;
    }
    const resolved = resolve(
      graph.symbol,
      { ...options, targetDtype: options.targetDtype ?? "float16" },
      inputNames,
      types,
      where,
    );
    const { symbol, offline } = reducePrecision(graph.symbol, resolved);
    const out = Object.assign(emptyRecord<Tensor>(), params);
    for (const [name, dtype] of offline) {
      if (Object.hasOwn(out, name)) out[name] = castTo(out[name], dtype);
    }
    return graphOf(symbol, out);
  },
});

/**
 * MXNet's `RemoveAmpCast` as a pass (see `removeAmpCast`): casts feeding other nodes are
 * bypassed; casts that are graph outputs stay. Bound values are kept.
 *
 * @example Undoing a conversion
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { convertSymbol, removeAmpCastPass } from "./amp.ts";
 * import { graphOf } from "./pass.ts";
 * const net = sym.softmax(sym.FullyConnected(sym.var("data"), { num_hidden: 3, name: "fc" }), {
 *   name: "sm",
 * });
 * const back = removeAmpCastPass.run(graphOf(convertSymbol(net, { targetDtype: "float16" })));
 * assert(back.symbol.outputs[0] === net.outputs[0]);
 * ```
 */
export const removeAmpCastPass: Pass = definePass({
  name: "remove-amp-cast",
  doc: "Rewires inputs fed by amp_cast/amp_multicast to the casts' inputs (MXNet's " +
    "RemoveAmpCast); casts that are graph outputs stay. Preserves inputs and outputs; values " +
    "up to the removed precision casts.",
  idempotent: true,
  run: (graph: Graph): Graph => graphOf(removeAmpCast(graph.symbol), graph.params),
});
