/**
 * Combining one value per invocation across a workgroup, in WGSL: the step that reductions,
 * softmax and the split-K products end with. Two forms compute the same value (up to the
 * order of float additions):
 *
 * - a tree in workgroup memory: each invocation writes its value, then `log2(size)` rounds
 *   halve the live part, a barrier after each;
 * - with subgroups (a device with the `subgroups` feature, `GpuContext.subgroups`): each
 *   subgroup combines its values with `subgroupAdd`/`subgroupMax`/`subgroupMin`, its first
 *   invocation writes the subgroup's result into workgroup memory (the others the identity),
 *   and after one barrier every subgroup combines those entries, each invocation striding by
 *   the subgroup size from its index in the subgroup, with one more subgroup operation. Nothing
 *   assumes how subgroups are laid out over the workgroup: with the workgroup size a power of
 *   two, each subgroup either is full or is the whole workgroup, so each one's strided walk
 *   reads every entry once, and every invocation ends with the result.
 *
 * Both forms call their barriers and subgroup operations in uniform control flow only, so the
 * code around them must too (no early return before them).
 *
 * @module
 */
import type { GpuSubgroups } from "./gpu.ts";
import { u32 } from "./wgsl.ts";

/** How values combine: sum, maximum or minimum. */
export type CombineOp = "add" | "max" | "min";

/** The WGSL of a workgroup combine for one kernel (see the module doc). */
export interface WorkgroupCombine {
  /** The workgroup size it was made for (a power of two). */
  readonly size: number;
  /** Whether it uses subgroup operations. */
  readonly subgroups: boolean;
  /** The module's first line(s): `enable subgroups;` where the implementation needs it. */
  readonly directive: string;
  /**
   * Module-scope declarations: the workgroup array `wr_part`, and the special floats'
   * variables the identities of `max` and `min` read (`SPECIAL_FLOATS`, which a module that
   * declares them already has: pass `special: false`).
   */
  readonly decls: string;
  /**
   * Parameters to add to `main`'s (after a comma): the local invocation index as `lid`, and
   * with subgroups the subgroup size and invocation index.
   */
  readonly params: string;
  /**
   * Statements that combine the f32 expression `value` (each invocation's own) with `op` and
   * declare `let <result>` holding the workgroup's result in every invocation. They end with
   * a barrier, so the workgroup array may be used again by the next call.
   */
  combine(op: CombineOp, value: string, result: string): string;
}

/** `op`'s identity as a WGSL f32 expression (infinities read from the special floats). */
function identity(op: CombineOp): string {
  return op === "add" ? "0.0f" : op === "max" ? "bitcast<f32>(sg_ninf)" : "bitcast<f32>(sg_pinf)";
}

const SUBGROUP_OP: Readonly<Record<CombineOp, string>> = {
  add: "subgroupAdd",
  max: "subgroupMax",
  min: "subgroupMin",
};

function both(op: CombineOp, a: string, b: string): string {
  return op === "add" ? `${a} + ${b}` : `${op}(${a}, ${b})`;
}

/**
 * The combine for workgroups of `size` invocations (a power of two, at least 2), with
 * subgroup operations where `subgroups` is given; `special: false` where the module already
 * declares `SPECIAL_FLOATS`.
 *
 * @example The tree form, and the subgroup form of the same sum
 * ```ts
 * import assert from "node:assert";
 * import { workgroupCombine } from "./wg_reduce.ts";
 * const tree = workgroupCombine(64);
 * assert(tree.combine("add", "acc", "total").includes("workgroupBarrier()"));
 * const sub = workgroupCombine(64, { directive: false });
 * assert(sub.subgroups && sub.combine("add", "acc", "total").includes("subgroupAdd("));
 * assert.strictEqual(sub.directive, "");
 * ```
 */
export function workgroupCombine(
  size: number,
  subgroups?: GpuSubgroups,
  special = true,
): WorkgroupCombine {
  if (!Number.isInteger(Math.log2(size)) || size < 2) {
    throw new RangeError(`a workgroup combine needs a power-of-two size, not ${size}`);
  }
  const specials = special
    ? `var<private> sg_ninf: u32 = 0xff800000u;
var<private> sg_pinf: u32 = 0x7f800000u;`
    : "";
  const decls = `${specials}\nvar<workgroup> wr_part: array<f32, ${size}>;`;
  let uses = 0;
  if (!subgroups) {
    return {
      size,
      subgroups: false,
      directive: "",
      decls,
      params: "@builtin(local_invocation_index) lid: u32",
      combine(op, value, result) {
        const s = `wr_s${uses++}`;
        return `  wr_part[lid] = ${value};
  workgroupBarrier();
  for (var ${s} = ${u32(size / 2)}; ${s} > 0u; ${s} = ${s} >> 1u) {
    if (lid < ${s}) { wr_part[lid] = ${both(op, "wr_part[lid]", `wr_part[lid + ${s}]`)}; }
    workgroupBarrier();
  }
  let ${result} = wr_part[0];
  workgroupBarrier();`;
      },
    };
  }
  return {
    size,
    subgroups: true,
    directive: subgroups.directive ? "enable subgroups;\n" : "",
    decls,
    params:
      "@builtin(local_invocation_index) lid: u32, @builtin(subgroup_size) wr_sg_size: u32, @builtin(subgroup_invocation_id) wr_sg_lane: u32",
    combine(op, value, result) {
      const k = uses++;
      const f = SUBGROUP_OP[op];
      return `  let wr_own${k} = ${f}(${value});
  wr_part[lid] = select(${identity(op)}, wr_own${k}, wr_sg_lane == 0u);
  workgroupBarrier();
  var wr_acc${k} = ${identity(op)};
  for (var wr_j${k} = wr_sg_lane; wr_j${k} < ${u32(size)}; wr_j${k} = wr_j${k} + wr_sg_size) {
    wr_acc${k} = ${both(op, `wr_acc${k}`, `wr_part[wr_j${k}]`)};
  }
  let ${result} = ${f}(wr_acc${k});
  workgroupBarrier();`;
    },
  };
}
