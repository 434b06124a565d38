/**
 * `clip`: limits values to `[a_min, a_max]`, written once as a scalar expression.
 *
 * @module
 */
import { attr } from "./attrs.ts";
import { unaryOp } from "./elementwise.ts";
import { s } from "./scalar.ts";
import type { OpDef } from "./op.ts";
import type { AttrSpec } from "./attrs.ts";

const x = s.in(0);

/**
 * Clips values to an interval (`clip`, alias `_npi_clip`): `x > a_max ? a_max : x < a_min ?
 * a_min : x`, in that order as MXNet tests it (so `a_max` wins when `a_min > a_max`; NaN passes
 * through). Both bounds are required.
 */
export const clip: OpDef<
  { a_min: AttrSpec<number, true>; a_max: AttrSpec<number, true> },
  readonly ["_npi_clip"],
  "one"
> = unaryOp({
  name: "clip",
  aliases: ["_npi_clip"],
  doc: "Clips values to [a_min, a_max].",
  attrs: {
    /** Lower bound. */
    a_min: attr.floatRequired(),
    /** Upper bound. */
    a_max: attr.floatRequired(),
  },
  expr: (a) => {
    const lo = s.c(a.a_min);
    const hi = s.c(a.a_max);
    return s.select(s.binary("gt", x, hi), hi, s.select(s.binary("lt", x, lo), lo, x));
  },
  sampleAttrs: (d) => ({ a_min: d.pick([-1.5, -0.5, 0]), a_max: d.pick([0.25, 1, 6]) }),
});
