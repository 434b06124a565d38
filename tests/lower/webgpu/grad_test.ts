/**
 * Gradient graphs (compiler/autodiff) on the WebGPU engine: training-step gradients of an MLP,
 * a small CNN with the layers gradients decompose (max pooling, BatchNorm, LayerNorm, Dropout,
 * Embedding, softmax cross-entropy) and a narrow ResNet-18 compile with every node a kernel or
 * a copy (no fallback), and their values and gradients match the reference interpreter.
 *
 * Tolerance: rtol 1e-3, atol 1e-4 (float32 sums in other orders through a forward and a
 * backward sweep; the reference sums in float64). The ResNet-18 layout runs at an eighth of its
 * widths on a 1×3×16×16 input with 10 classes: the CPU adapter CI has is slow, and the kernels
 * per layer kind are the same at any size.
 */
import {
  grad,
  modelZoo,
  nd,
  nn,
  referenceEngine,
  sym,
  type Symbol,
  type Tensor,
  valueAndGrad,
} from "../../../mod.ts";
import type { WebGPUCompiled } from "../../../compiler/lower/webgpu/lower.ts";
import { graphOf } from "../../../compiler/passes/pass.ts";
import { tensorValues } from "../../../runtime/tensor.ts";
import { assert, assertClose } from "../../util.ts";
import { engine, GPU_TEST } from "./gpu_harness.ts";

const TOL = { rtol: 1e-3, atol: 1e-4 };

/** Compiles `graph` for WebGPU (no fallbacks allowed), runs it, and compares with the reference. */
async function matches(graph: Symbol, bindings: Record<string, Tensor>, what: string) {
  const inputs = Object.fromEntries(
    Object.entries(bindings).map(([n, x]) => [n, { shape: x.shape, dtype: x.dtype }]),
  );
  const program = engine().compile(graphOf(graph), { inputs }) as WebGPUCompiled;
  assert.deepEqual(
    program.fallbacks.map((f) => `${f.op}: ${f.reason}`),
    [],
    `${what}: every node runs on the device`,
  );
  const got = await program.runAsync(bindings);
  program.dispose();
  const want = await graph.eval(bindings, { engine: referenceEngine });
  got.forEach((g, i) => assertClose(g, tensorValues(want[i]), { ...TOL, what: `${what} #${i}` }));
}

/** A softmax cross-entropy loss over `logits` and integer-valued `label`. */
const crossEntropy = (logits: Symbol) =>
  sym.negative(sym.sum(sym.pick(sym.log_softmax(logits), sym.var("label"), { axis: 1 })));

Deno.test({
  name: "an MLP's valueAndGrad runs on the WebGPU engine with no fallback",
  ...GPU_TEST,
  fn: async () => {
    const net = new nn.HybridSequential().add(
      new nn.Dense(16, { activation: "relu" }),
      new nn.Dropout(0.5),
      new nn.Dense(8, { activation: "tanh" }),
      new nn.Dense(4),
    );
    net.initialize({ seed: 5 });
    net.call(nd.ones([3, 6]));
    const traced = net.trace([sym.var("data")]);
    const loss = crossEntropy(traced.symbol);
    const bindings: Record<string, Tensor> = {
      data: nd.random.uniform(-1, 1, [3, 6], { seed: 6 }),
      label: nd.array([0, 3, 1]),
    };
    for (const [n, p] of traced.params) bindings[n] = p.data();
    const wrt = [...traced.params.keys()];
    const f = valueAndGrad(loss, wrt);
    const want = await f(bindings, { engine: referenceEngine });
    const got = await f(bindings, { engine: engine() });
    assertClose(got.values[0], tensorValues(want.values[0]), { ...TOL, what: "loss" });
    for (const name of wrt) {
      assertClose(got.grads[name], tensorValues(want.grads[name]), { ...TOL, what: name });
    }
    const shapes = Object.fromEntries(Object.entries(bindings).map(([n, t]) => [n, t.shape]));
    await matches(sym.group([loss, grad(loss, wrt, shapes)]), bindings, "MLP");
  },
});

Deno.test({
  name: "a CNN gradient with max pooling, BatchNorm, LayerNorm and Embedding runs as kernels",
  ...GPU_TEST,
  fn: async () => {
    const x = sym.var("x");
    let h = sym.Convolution(x, sym.var("w"), sym.var("b"), {
      kernel: [3, 3],
      num_filter: 4,
      pad: [1, 1],
    });
    h = sym.BatchNorm(h, sym.var("g"), sym.var("be"), sym.var("mm"), sym.var("mv"), {});
    h = sym.Activation(h, { act_type: "relu" });
    h = sym.Pooling(h, { kernel: [2, 2], stride: [2, 2], pool_type: "max" });
    h = sym.Flatten(h);
    h = sym.LayerNorm(h, sym.var("lg"), sym.var("lb"), {});
    const emb = sym.Embedding(sym.var("ids"), sym.var("table"), { input_dim: 5, output_dim: 16 });
    h = sym.elemwise_add(h, sym.sum(emb, { axis: [1] }));
    const out = sym.FullyConnected(h, sym.var("fw"), sym.var("fb"), { num_hidden: 3 });
    const loss = crossEntropy(out);
    let seed = 20;
    const u = (shape: number[]) => nd.random.uniform(-1, 1, shape, { seed: seed++ });
    const bindings: Record<string, Tensor> = {
      x: u([2, 3, 4, 4]),
      w: u([4, 3, 3, 3]),
      b: u([4]),
      g: u([4]),
      be: u([4]),
      mm: u([4]),
      mv: nd.random.uniform(0.5, 1.5, [4], { seed: 9 }),
      lg: u([16]),
      lb: u([16]),
      ids: nd.array([[1, 4], [0, 2]]),
      table: u([5, 16]),
      fw: u([3, 16]),
      fb: u([3]),
      label: nd.array([2, 0]),
    };
    const wrt = ["x", "w", "b", "g", "be", "lg", "lb", "table", "fw", "fb"];
    const shapes = Object.fromEntries(Object.entries(bindings).map(([n, t]) => [n, t.shape]));
    await matches(sym.group([loss, grad(loss, wrt, shapes)]), bindings, "CNN");
  },
});

Deno.test({
  name: "a ResNet-18-shaped training-step gradient runs on the WebGPU engine with no fallback",
  ...GPU_TEST,
  fn: async () => {
    // ResNet-18 v1's layout (7x7/2 stem, BN, ReLU, 3x3/2 max pooling, four stages of two basic
    // blocks with 1x1 strided projections, global average pooling, dense) at an eighth of its
    // widths: every layer kind and every node of the step graph, at a cost the CPU adapter
    // runs in seconds. The zoo's full-width ResNet-18 forward compiles for WebGPU in
    // model_zoo_test.ts.
    const { ResNetV1, BasicBlockV1 } = modelZoo.vision;
    const net = new ResNetV1(BasicBlockV1, [2, 2, 2, 2], [16, 16, 32, 64, 128], {
      classes: 10,
    });
    net.initialize({ seed: 1 });
    net.inferShape(nd.zeros([1, 3, 16, 16]));
    const traced = net.trace([sym.var("data")]);
    const loss = crossEntropy(traced.symbol);
    const bindings: Record<string, Tensor> = {
      data: nd.random.uniform(-1, 1, [1, 3, 16, 16], { seed: 4 }),
      label: nd.array([7]),
    };
    for (const [n, p] of traced.params) bindings[n] = p.data();
    const wrt = [...traced.params.keys()].filter((n) => !/running_|moving_/.test(n));
    const shapes = Object.fromEntries(Object.entries(bindings).map(([n, t]) => [n, t.shape]));
    await matches(sym.group([loss, grad(loss, wrt, shapes)]), bindings, "ResNet-18 layout");
  },
});
