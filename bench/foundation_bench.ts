/**
 * Foundation benchmarks: symbol JSON read/write, shape inference and the reference
 * interpreter. Run: `deno task bench` (figures go in bench/README.md).
 */
import { nd, referenceEngine, sym } from "../mod.ts";
import type { Symbol } from "../mod.ts";

const FIXTURE = new URL(
  "../../shared/reference/fixtures/symbol-json/gluon191-resnet50_v1-symbol.json",
  import.meta.url,
);

let resnetText: string | undefined;
try {
  resnetText = Deno.readTextFileSync(FIXTURE);
} catch {
  console.warn("bench: ../shared fixtures absent; ResNet-50 JSON benches skipped");
}

/** A VGG-style stack built in code, so the bench runs without fixtures. */
function convStack(depth: number): Symbol {
  return sym.nameScope(() => {
    let x = sym.var("data");
    for (let i = 0; i < depth; i++) {
      x = sym.Convolution(x, { kernel: [3, 3], pad: [1, 1], num_filter: 16 });
      x = sym.BatchNorm(x, { fix_gamma: false });
      x = sym.Activation(x, { act_type: "relu" });
    }
    x = sym.Pooling(x, { global_pool: true, kernel: [1, 1], pool_type: "avg" });
    return sym.FullyConnected(x, { num_hidden: 10 });
  });
}

if (resnetText) {
  const text = resnetText;
  const net = sym.loadJSON(text);
  Deno.bench({ name: "loadJSON ResNet-50 (474 nodes)", group: "json", baseline: true }, () => {
    sym.loadJSON(text);
  });
  Deno.bench({ name: "toJSON ResNet-50", group: "json" }, () => {
    net.toJSON();
  });
  Deno.bench({ name: "JSON.parse alone (ResNet-50 text)", group: "json" }, () => {
    JSON.parse(text);
  });
  Deno.bench({ name: "inferShape ResNet-50 (1,3,224,224)", group: "infer" }, () => {
    net.inferShape({ data: [1, 3, 224, 224] });
  });
}

const stack = convStack(4);
const shapes = stack.inferShape({ data: [1, 16, 16, 16] });
const bindings: Record<string, ReturnType<typeof nd.zeros>> = {};
[...stack.listArguments(), ...stack.listAuxiliaryStates()].forEach((name, i) => {
  const shape = [...shapes.argShapes, ...shapes.auxShapes][i];
  bindings[name] = nd.random.uniform(0.5, 1, shape, { seed: i });
});
Deno.bench(
  { name: "reference eval: 4x(conv3x3-bn-relu) 16ch 16x16", group: "interp", baseline: true },
  async () => {
    await stack.eval(bindings, { engine: referenceEngine });
  },
);
Deno.bench(
  { name: "default eval (WASM, cached program): same stack", group: "interp" },
  async () => {
    await stack.eval(bindings);
  },
);

const big = nd.random.uniform(-1, 1, [1 << 20], { seed: 1 });
Deno.bench(
  { name: "eager exp on 1M float32 (reference)", group: "eager", baseline: true },
  () => {
    nd.exp(big, { engine: referenceEngine });
  },
);
Deno.bench({ name: "eager exp on 1M float32 (WASM one-op program)", group: "eager" }, () => {
  nd.exp(big);
});
Deno.bench({ name: "eager broadcast_add (1024x1024 + 1024, WASM)", group: "eager" }, () => {
  nd.broadcast_add(nd.zeros([1024, 1024]), nd.ones([1024]));
});

// Small eager calls: the per-call overhead of validation, engine resolution and dispatch.
const small = nd.random.uniform(-1, 1, [8, 8], { seed: 2 });
const smallW = nd.random.uniform(-1, 1, [16, 64], { seed: 3 });
const smallB = nd.zeros([16]);
const row = nd.random.uniform(-1, 1, [1, 64], { seed: 4 });
Deno.bench({ name: "eager exp on 8x8 float32", group: "eager-small", baseline: true }, () => {
  nd.exp(small);
});
Deno.bench({ name: "eager broadcast_add 8x8 + 8x8", group: "eager-small" }, () => {
  nd.broadcast_add(small, small);
});
Deno.bench({ name: "eager FullyConnected 1x64 -> 16", group: "eager-small" }, () => {
  nd.FullyConnected(row, smallW, smallB, { num_hidden: 16 });
});
