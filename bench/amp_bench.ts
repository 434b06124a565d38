/**
 * AMP on the WASM engine: model zoo ResNet-18 (bs1, 224x224) converted to float16 by
 * `amp.convertHybridBlock` (parameters cast offline) against the same network in float32,
 * both compiled by `compileWasm` (one thread, then two), in the same run so the ratio holds
 * on a noisy machine. Inputs are written and outputs read on every call.
 * Run: `deno bench -A bench/amp_bench.ts` (figures go in bench/README.md).
 */
import { amp, type HybridBlock, modelZoo, nd, type Tensor } from "../mod.ts";
import { compileWasm, type WasmCompiled } from "../compiler/lower/wasm/lower.ts";
import { tensorStorage } from "../runtime/tensor.ts";

const net = modelZoo.vision.resnet18_v1();
net.initialize({ seed: 0 });
const x = nd.random.uniform(-1, 1, [1, 3, 224, 224], { seed: 1 });
const lp = amp.convertHybridBlock(net, {
  targetDtype: "float16",
  dataExample: [x],
  castParamsOffline: true,
});
lp.hybridize();
lp.call(x);

function graphOf(block: HybridBlock) {
  const g = block.cachedGraph()!;
  const params: Record<string, Tensor> = {};
  for (const n of g.symbol.listInputs()) {
    const p = g.params.get(n);
    if (p) params[n] = p.data();
  }
  const input = g.symbol.listInputs().find((n) => !Object.hasOwn(params, n))!;
  return { symbol: g.symbol, params, input };
}

const feeds = { data: tensorStorage(x) as Float32Array };
const programs: WasmCompiled[] = [];
for (const threads of [1, 2]) {
  for (const [label, block] of [["float32", net], ["AMP float16", lp]] as const) {
    const { symbol, params, input } = graphOf(block);
    const c = compileWasm(symbol, params, { [input]: [1, 3, 224, 224] }, { threads });
    await c.ready();
    programs.push(c);
    const inputs = { [input]: feeds.data };
    Deno.bench(
      {
        name: `resnet18 b1 224 ${label} t${threads}`,
        group: `amp t${threads}`,
        baseline: label === "float32",
      },
      () => {
        c.runRaw(inputs);
      },
    );
  }
}

globalThis.addEventListener("unload", () => {
  for (const c of programs) c.dispose();
});
