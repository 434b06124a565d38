/**
 * Whole networks end to end on the WebGPU engine, with every node a kernel or a copy (no
 * fallback), against the WASM engine: one model of most model zoo families (the others
 * compiled only), and the real MXNet fixture models (../shared/reference/fixtures, read in place: the four with their trained
 * parameters, the others with seeded random ones).
 *
 * Inputs are shrunk where the architecture allows (32×32, or the smallest size a family's
 * fixed windows take): the CPU adapter CI has is slow, and the kernels per layer kind are the
 * same at any size. Tolerance against WASM: rtol 1e-3, atol 1e-4 (two float32 engines summing
 * in other orders through many layers).
 */
import { modelZoo, nd, sym, type Symbol, type Tensor, wasmEngine } from "../../../mod.ts";
import type { HybridBlock } from "../../../gluon/block.ts";
import type { WebGPUCompiled } from "../../../compiler/lower/webgpu/lower.ts";
import { graphOf } from "../../../compiler/passes/pass.ts";
import { loadParams } from "../../../runtime/params.ts";
import { tensorValues } from "../../../runtime/tensor.ts";
import { assert, assertClose } from "../../util.ts";
import { engine, GPU_TEST } from "./gpu_harness.ts";

const TOL = { rtol: 1e-3, atol: 1e-4 };

/** Compiles on both engines; WebGPU must have no fallback; outputs must agree. */
async function agree(
  symbol: Symbol,
  params: Record<string, Tensor>,
  inputs: Record<string, Tensor>,
  what: string,
) {
  const signature = {
    inputs: Object.fromEntries(
      Object.entries(inputs).map(([n, x]) => [n, { shape: x.shape, dtype: x.dtype }]),
    ),
  };
  const program = engine().compile(graphOf(symbol, params), signature) as WebGPUCompiled;
  assert.deepEqual(program.fallbacks.map((f) => `${f.op}: ${f.reason}`), [], what);
  const got = await program.runAsync(inputs);
  program.dispose();
  const cpu = wasmEngine({ threads: 1 }).compile(graphOf(symbol, params), signature);
  const want = cpu.run(inputs);
  cpu.dispose();
  assert.equal(got.length, want.length);
  got.forEach((g, i) => {
    assert.deepEqual(g.shape, want[i].shape);
    assertClose(g, tensorValues(want[i]), { ...TOL, what: `${what} output ${i}` });
  });
}

/** One network per model zoo family, run end to end at the input size it runs on here. */
const ZOO_RUN: [string, number][] = [
  ["alexnet", 64],
  ["resnet18_v2", 32],
  ["mobilenet0.25", 32],
  ["squeezenet1.1", 224],
];

/**
 * Families too slow to run on the CPU adapter at the smallest input their fixed windows take
 * (DenseNet's and Inception's final pools; VGG's 4096-wide dense layers): compiled only, every
 * node a kernel or a copy.
 */
const ZOO_COMPILE: [string, number][] = [
  ["vgg11_bn", 32],
  ["densenet121", 224],
  ["inceptionv3", 299],
];

function traced(name: string, size: number) {
  const net = modelZoo.vision.getModel(name, { classes: 10 }) as HybridBlock;
  net.initialize({ seed: 3 });
  net.inferShape(nd.zeros([1, 3, size, size]));
  const t = net.trace([sym.var("data")]);
  return {
    symbol: t.symbol,
    params: Object.fromEntries([...t.params].map(([n, p]) => [n, p.data()])),
  };
}

for (const [name, size] of ZOO_RUN) {
  Deno.test({
    name: `model zoo ${name} (${size}×${size}) runs on WebGPU with no fallback, as on WASM`,
    ...GPU_TEST,
    fn: async () => {
      const { symbol, params } = traced(name, size);
      const data = nd.random.uniform(-1, 1, [1, 3, size, size], { seed: 4 });
      await agree(symbol, params, { data }, name);
    },
  });
}

for (const [name, size] of ZOO_COMPILE) {
  Deno.test({
    name: `model zoo ${name} (${size}×${size}) compiles for WebGPU with no fallback`,
    ...GPU_TEST,
    fn: async () => {
      const { symbol, params } = traced(name, size);
      const program = engine().compile(graphOf(symbol, params), {
        inputs: { data: { shape: [1, 3, size, size], dtype: "float32" } },
      }) as WebGPUCompiled;
      assert.deepEqual(program.fallbacks, []);
      await program.ready();
      program.dispose();
    },
  });
}

const ROOT = new URL("../../../../shared/reference/fixtures/", import.meta.url);
const HAVE = (() => {
  try {
    return Deno.statSync(ROOT).isDirectory;
  } catch {
    return false;
  }
})();

/** Parameters by argument name from an MXNet params file (`arg:`/`aux:` prefixes dropped). */
async function fixtureParams(file: string): Promise<Record<string, Tensor>> {
  const loaded = await loadParams(new URL(`params/${file}`, ROOT));
  const out: Record<string, Tensor> = {};
  loaded.names!.forEach((n, i) => (out[n.replace(/^(arg|aux):/, "")] = loaded.arrays[i]));
  return out;
}

/**
 * Seeded random parameters for every argument but the inputs, scaled as an initializer would
 * (weights by fan-in, BatchNorm statistics near identity) so 50 layers keep values moderate.
 */
function randomParams(symbol: Symbol, inputs: Record<string, number[]>): Record<string, Tensor> {
  const { argShapes, auxShapes } = symbol.inferShape(inputs);
  const names = [...symbol.listArguments(), ...symbol.listAuxiliaryStates()];
  const shapes = [...argShapes, ...auxShapes];
  const out: Record<string, Tensor> = {};
  names.forEach((n, i) => {
    if (Object.hasOwn(inputs, n)) return;
    const shape = shapes[i]!;
    const fanIn = shape.slice(1).reduce((p, d) => p * d, 1);
    const [lo, hi] = /var$/.test(n)
      ? [0.5, 1.5]
      : /gamma$/.test(n)
      ? [0.8, 1.2]
      : shape.length < 2
      ? [-0.1, 0.1]
      : [-Math.sqrt(3 / fanIn), Math.sqrt(3 / fanIn)];
    out[n] = nd.random.uniform(lo, hi, shape, { seed: 50 + i });
  });
  return out;
}

const FIXTURES: {
  symbol: string;
  params?: string;
  inputs: Record<string, number[]>;
  labels?: string[];
}[] = [
  {
    symbol: "symbol-json/gluon130-mlp-taxi-symbol.json",
    params: "gluon130-mlp-taxi-0004.params",
    inputs: { data: [5, 4] },
  },
  {
    symbol: "symbol-json/gluon160-mnist-cnn-symbol.json",
    params: "gluon160-mnist-cnn-0035.params",
    inputs: { data: [2, 1, 28, 28] },
  },
  {
    symbol: "symbol-json/legacy-mtcnn-det1-symbol.json",
    params: "legacy-mtcnn-det1-0001.params",
    inputs: { data: [1, 3, 12, 12] },
  },
  {
    symbol: "symbol-json/legacy-mtcnn-det2-symbol.json",
    params: "legacy-mtcnn-det2-0001.params",
    inputs: { data: [2, 3, 24, 24], prob1_label: [2] },
    labels: ["prob1_label"],
  },
  { symbol: "symbol-json/gluon191-resnet50_v1-symbol.json", inputs: { data: [1, 3, 32, 32] } },
  {
    symbol: "mxnet-repo/clojure-imclassification-test-symbol.json",
    inputs: { data: [2, 784], softmax_label: [2] },
    labels: ["softmax_label"],
  },
  {
    symbol: "mxnet-repo/save_000800.json",
    inputs: { data: [1, 200], softmax_label: [1] },
    labels: ["softmax_label"],
  },
  {
    symbol: "mxnet-repo/test_dnnl_test_dnnl_model_model1.json",
    inputs: { data: [1, 3, 32, 32], softmax_label: [1] },
    labels: ["softmax_label"],
  },
];

for (const c of FIXTURES) {
  Deno.test({
    name: `fixture ${c.symbol} runs on WebGPU with no fallback, as on WASM`,
    ...GPU_TEST,
    ignore: GPU_TEST.ignore || !HAVE,
    fn: async () => {
      const symbol = await sym.load(new URL(c.symbol, ROOT));
      const shapes = Object.fromEntries(
        Object.entries(c.inputs).filter(([n]) => symbol.listInputs().includes(n)),
      );
      const params = c.params ? await fixtureParams(c.params) : randomParams(symbol, shapes);
      const inputs = Object.fromEntries(
        Object.entries(shapes).map(([n, s], i) => [
          n,
          c.labels?.includes(n)
            ? nd.array(Array.from({ length: s[0] }, (_, k) => k % 2), { shape: s })
            : nd.random.uniform(0, 1, s, { seed: 10 + i }),
        ]),
      );
      await agree(symbol, params, inputs, c.symbol);
    },
  });
}
