/** Static memory planning: exact plans of small graphs and invariants on random graphs. */
import fc from "npm:fast-check@^4";
import { sym } from "../../mod.ts";
import { evaluate } from "../../compiler/interpreter.ts";
import { type MemoryPlan, planMemory } from "../../compiler/passes/memory_plan.ts";
import type { Symbol } from "../../compiler/symbol.ts";
import { dtypeInfo } from "../../runtime/dtype.ts";
import { ShapeError } from "../../runtime/errors.ts";
import { arbGraph, arbGraphInputs } from "../../testing/mod.ts";
import { assert, assertThrowsError } from "../util.ts";

/** `buffer: value, value` lines, for exact comparisons. */
function layout(plan: MemoryPlan): string[] {
  return plan.buffers.map((b) =>
    `${b.id}${b.output ? "*" : ""} ${b.bytes}: ${b.values.map((v) => v.node.name).join(",")}`
  );
}

const dense = (x: Symbol, h: number, name: string) =>
  sym.FullyConnected(x, { num_hidden: h, no_bias: true, name });

Deno.test("planMemory: an MLP reuses the first layer's buffer", () => {
  const x = sym.var("x");
  const r1 = sym.Activation(dense(x, 4, "fc1"), { act_type: "relu", name: "r1" });
  const net = sym.Activation(dense(r1, 4, "fc2"), { act_type: "relu", name: "r2" });
  const plan = planMemory(net, { x: [2, 3] });
  assert.deepEqual(plan.steps.map((n) => n.name), ["fc1", "r1", "fc2", "r2"]);
  assert.deepEqual(layout(plan), ["0 32: fc1,fc2", "1 32: r1", "2* 32: r2"]);
  assert.equal(plan.peakBytes, 96);
  assert.equal(plan.naiveBytes, 128);
  assert.equal(plan.savedBytes, 32);
  assert.deepEqual(plan.values.map((v) => [v.name, v.start, v.end]), [
    ["fc1_output", 0, 1],
    ["r1_output", 1, 2],
    ["fc2_output", 2, 3],
    ["r2_output", 3, 4],
  ]);
  assert.equal(plan.valueOf(net.outputs[0])!.buffer, 2);
  assert.equal(plan.valueOf(x.outputs[0]), undefined);
  // In place: relu writes over the dense output it is the last reader of.
  const ip = planMemory(net, { x: [2, 3] }, {}, { inPlace: true });
  assert.deepEqual(layout(ip), ["0 32: fc1,r1", "1 32: fc2", "2* 32: r2"]);
  assert.equal(ip.values[1].inPlaceOf, ip.values[0]);
  const text = ip.describe();
  assert.match(text, /^memory plan: 4 values in 3 buffers over 4 steps; peak 96 B, naive 128 B/);
  assert.match(text, /r1_output float32 \(2, 4\) \[1-2, in place of fc1_output\]/);
  assert.match(text, /buffer 2 \(output\): 32 B: r2_output float32 \(2, 4\) \[3-end\]/);
});

Deno.test("planMemory: best fit, growing the biggest free buffer, and dtypes", () => {
  const x = sym.var("x");
  // 64 B, 8 B, 16 B, then the 16 B output: the 16 B value fits the freed 64 B buffer.
  const a = dense(dense(dense(dense(x, 16, "a"), 2, "b"), 4, "c"), 4, "d");
  const p1 = planMemory(a, { x: [1, 3] });
  assert.deepEqual(layout(p1), ["0 64: a,c", "1 8: b", "2* 16: d"]);
  assert.equal(p1.peakBytes, 88);
  assert.equal(p1.naiveBytes, 104);
  // 8 B, 64 B, then 128 B: nothing free fits, so the free 8 B buffer grows.
  const g = dense(dense(dense(dense(x, 2, "a"), 16, "b"), 32, "c"), 1, "d");
  assert.deepEqual(layout(planMemory(g, { x: [1, 3] })), ["0 128: a,c", "1 64: b", "2* 4: d"]);
  // Two free buffers both fit: the smaller one is taken.
  const y = sym.var("y");
  const w = sym.var("w");
  const prod = sym.dot(sym.exp(y, { name: "A" }), sym.exp(w, { name: "B" }), { name: "C" });
  const tail = sym.exp(sym.sum(prod, { name: "S" }), { name: "T" });
  const p2 = planMemory(tail, { y: [25, 4], w: [4, 3] });
  assert.deepEqual(p2.steps.map((n) => n.name), ["A", "B", "C", "S", "T"]);
  assert.deepEqual(layout(p2), ["0 400: A", "1 48: B,S", "2 300: C", "3* 4: T"]);
  // float16 values take 2 bytes an element.
  const half = planMemory(sym.exp(sym.exp(x)), { x: [5] }, { x: "float16" });
  assert.deepEqual(half.values.map((v) => v.bytes), [10, 10]);
});

Deno.test("planMemory: outputs keep their buffers; hidden outputs still get one", () => {
  const x = sym.var("x");
  const e = sym.exp(x, { name: "e" });
  const n = sym.negative(e, { name: "n" });
  const both = sym.group([sym.exp(n, { name: "m" }), e]);
  const plan = planMemory(both, { x: [4] }, {}, { inPlace: true });
  // e is an output: its buffer is its own, and n cannot write over it.
  assert.deepEqual(layout(plan), ["0* 16: e", "1 16: n", "2* 16: m"]);
  const bn = sym.BatchNorm(x, { name: "bn" });
  const p = planMemory(sym.exp(bn, { name: "after" }), {
    x: [2, 3],
    bn_gamma: [3],
    bn_beta: [3],
    bn_moving_mean: [3],
    bn_moving_var: [3],
  });
  // The unread mean and var outputs die at once; their buffers serve the next value.
  assert.deepEqual(layout(p), ["0 24: bn", "1 12: bn", "2 12: bn", "3* 24: after"]);
  assertThrowsError(() => planMemory(sym.exp(x), {}), ShapeError, /shape of output 0/);
});

/** Checks a plan's invariants against the graph, simulating which value each buffer holds. */
function checkPlan(symbol: Symbol, plan: MemoryPlan): void {
  assert.ok(plan.peakBytes <= plan.naiveBytes);
  assert.equal(plan.savedBytes, plan.naiveBytes - plan.peakBytes);
  assert.equal(plan.peakBytes, plan.buffers.reduce((t, b) => t + b.bytes, 0));
  // Values sharing a buffer never overlap in time (in place: they meet at one step).
  for (const b of plan.buffers) {
    if (b.output) assert.equal(b.values.length, 1, `output buffer ${b.id} is shared`);
    b.values.forEach((v, i) => {
      assert.ok(v.bytes <= b.bytes, `${v.name} does not fit buffer ${b.id}`);
      assert.equal(v.buffer, b.id);
      if (i === 0) return;
      const prev = b.values[i - 1];
      const ok = v.start > prev.end || (v.start === prev.end && v.inPlaceOf === prev);
      assert.ok(ok, `${prev.name} [${prev.start}-${prev.end}] and ${v.name} share ${b.id}`);
    });
  }
  // Simulate: every read finds its value in its buffer; outputs survive to the end.
  const holder = new Map<number, string>();
  plan.steps.forEach((n) => {
    for (const e of n.inputs) {
      const v = plan.valueOf(e);
      if (v) assert.equal(holder.get(v.buffer), v.name, `${n.name} reads a clobbered ${v.name}`);
    }
    for (let i = 0; i < n.numOutputs; i++) {
      const v = plan.valueOf(n.entry(i))!;
      holder.set(v.buffer, v.name);
    }
  });
  for (const e of symbol.outputs) {
    const v = plan.valueOf(e);
    if (v) assert.equal(holder.get(v.buffer), v.name, `output ${v.name} was overwritten`);
  }
}

Deno.test("property: no two live values share a buffer, outputs survive, peak <= naive", () => {
  fc.assert(
    fc.property(arbGraph({ maxNodes: 12 }), fc.boolean(), (g, inPlace) => {
      const plan = planMemory(g.symbol, g.inputShapes, g.inputTypes, { inPlace });
      checkPlan(g.symbol, plan);
      const count = g.symbol.nodes().reduce((t, n) => t + (n.isVariable ? 0 : n.numOutputs), 0);
      assert.equal(plan.values.length, count);
      assert.ok(plan.describe().startsWith("memory plan:"));
    }),
    { numRuns: 500 },
  );
});

Deno.test("property: planned sizes and dtypes are what the interpreter produces", () => {
  const arb = arbGraph({ maxNodes: 8, dtypes: ["float32", "float16", "int32"] }).chain((g) =>
    arbGraphInputs(g).map((inputs) => ({ g, inputs }))
  );
  fc.assert(
    fc.property(arb, ({ g, inputs }) => {
      const plan = planMemory(g.symbol, g.inputShapes, g.inputTypes, { inPlace: true });
      evaluate(g.symbol, inputs, {
        onNode: (node, outs) => {
          outs.forEach((t, i) => {
            const v = plan.valueOf(node.entry(i))!;
            assert.equal(v.dtype, t.dtype, v.name);
            assert.equal(v.bytes, t.size * dtypeInfo(t.dtype).bytes, v.name);
          });
        },
      });
    }),
    { numRuns: 150 },
  );
});
