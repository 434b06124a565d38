/** Every op's sampler, for every rank from 0 to 5, draws calls its own shape rule accepts. */
import { applyShapeRule, normalizeAttrs } from "../../ops/call.ts";
import type { Sample } from "../../ops/op.ts";
import { listOps } from "../../ops/registry.ts";
import { assert, seededDraw } from "../util.ts";

/**
 * Ops without a sampler: constant creation (no input to start from), and ROIPooling, whose
 * validity depends on input values (batch indices in the ROIs); their own tests cover them.
 */
const INPUTLESS = new Set(["_zeros", "_ones", "_full", "ROIPooling"]);

Deno.test("samplers draw only calls the op's rules accept, or decline", () => {
  for (const op of listOps()) {
    // Subgraph calls take their rules from the subgraph; they have no sampler of their own.
    if (op.subgraph) continue;
    // Constant creation (`_zeros`, `_ones`, `_full`) takes no input for a sampler to start from;
    // tests/ops/init_test.ts covers it.
    if (INPUTLESS.has(op.name)) continue;
    assert.ok(op.sample, `${op.name} has no sampler`);
    const draw = seededDraw(op.name.length * 7919);
    let accepted = 0;
    for (let i = 0; i < 120; i++) {
      const rank = i % 6;
      const x = Array.from({ length: rank }, () => draw.int(1, 4));
      const sample: Sample | undefined = op.sample!(draw, x);
      if (sample === undefined) continue;
      accepted++;
      const where: string = `${op.name} ${JSON.stringify(sample)}`;
      assert.deepEqual(sample.inputs[0], x, where);
      const { attrs } = normalizeAttrs(op, sample.attrs, where);
      assert.equal(op.inputNames(attrs).length, sample.inputs.length, where);
      const n: number = op.outputNames(attrs).length;
      const r = applyShapeRule(op, attrs, sample.inputs, new Array(n).fill(undefined), where);
      assert.ok(r.outputs.every((s) => s !== undefined && s.every((d) => d >= 0)), where);
    }
    assert.ok(accepted > 10, `${op.name} accepted only ${accepted} of 120 draws`);
  }
});
