/**
 * The Gluon demo: AlexNet feature extraction with a SymbolBlock that shares AlexNet's
 * parameters (random weights), ResNet-18 export and re-import with identical outputs, and a
 * summary table. Everything runs in the reference interpreter, so it takes a little while.
 *
 * Run: `deno task demo` (after the foundation demo) or `deno run -A examples/gluon_demo.ts`.
 */
import { modelZoo, nd, sym, type Symbol, SymbolBlock, type Tensor } from "../mod.ts";

const time = async <T>(label: string, fn: () => T | Promise<T>): Promise<T> => {
  const t0 = performance.now();
  const out = await fn();
  console.log(`   (${label}: ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return out;
};

console.log("== AlexNet feature extraction (random weights, seed 0)");
const alexnet = modelZoo.vision.alexnet();
alexnet.initialize({ seed: 0 });
const image = nd.random.uniform(0, 1, [1, 3, 224, 224], { seed: 1 });
await time("first forward, eager, infers deferred shapes", () => alexnet.call(image));
const data = sym.var("data");
const internals = (alexnet.call(data) as unknown as Symbol).getInternals();
const layer = "features_9_act_fwd_output";
console.log(`   internal outputs include ${layer}: ${internals.listOutputs().includes(layer)}`);
const features = new SymbolBlock(internals.get(layer), data, alexnet.collectParams());
const feat = await time("feature extractor", () => features.call(image) as Tensor);
console.log(`   features shape: [${feat.shape}]`);
console.log(
  `   shares AlexNet's parameters: ${
    features.collectParams()["features.0.weight"] === alexnet.collectParams()["features.0.weight"]
  }`,
);

console.log("\n== ResNet-18 v1: hybridize, export, SymbolBlock.imports");
const resnet = modelZoo.vision.resnet18_v1();
resnet.initialize({ seed: 0 });
resnet.hybridize();
const x = nd.random.uniform(0, 1, [1, 3, 224, 224], { seed: 2 });
const y = await time("hybridized forward", () => resnet.call(x));
const dir = await Deno.makeTempDir();
const [symbolFile, paramsFile] = await resnet.export(`${dir}/resnet18_v1`);
console.log(
  `   wrote ${symbolFile.slice(dir.length + 1)} and ${paramsFile?.slice(dir.length + 1)}`,
);
const imported = await SymbolBlock.imports(symbolFile, ["data"], paramsFile);
const y2 = await time("imported forward", () => imported.call(x) as Tensor);
const a = await y.data();
const b = await y2.data();
const same = a.length === b.length && a.every((v, i) => v === b[i]);
console.log(`   output shape [${y.shape}], identical after export/import: ${same}`);
console.log(
  `   top-3 logits: ${
    Array.from(a as Float32Array).sort((p, q) => q - p).slice(0, 3).map((v) => v.toFixed(5))
  }`,
);
await Deno.remove(dir, { recursive: true });
if (!same) throw new Error("exported and imported ResNet-18 disagree");

console.log("\n== summary of a small MobileNet v2 (0.25) at 64x64");
const mobile = modelZoo.vision.mobilenet_v2_0_25({ classes: 10 });
mobile.initialize({ seed: 0 });
mobile.summary(nd.random.uniform(0, 1, [1, 3, 64, 64], { seed: 3 }));
