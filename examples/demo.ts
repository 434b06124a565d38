/**
 * The foundation demo: build a small symbol, print its MXNet JSON, infer shapes and evaluate
 * it with the reference interpreter.
 *
 * Run: `deno task demo`
 */
import { nd, sym } from "../mod.ts";

const data = sym.var("data");
const conv = sym.Convolution(data, { kernel: [3, 3], num_filter: 4, pad: [1, 1], name: "conv1" });
const bn = sym.BatchNorm(conv, { fix_gamma: false, eps: 1e-5, name: "bn1" });
const act = sym.Activation(bn, { act_type: "relu", name: "relu1" });
const pool = sym.Pooling(act, { kernel: [2, 2], stride: [2, 2], pool_type: "max", name: "pool1" });
const fc = sym.FullyConnected(pool, { num_hidden: 3, name: "fc1" });
const net = sym.softmax(fc, { name: "prob" });

console.log("== symbol JSON (MXNet 1.x format)");
console.log(net.toJSON());

const shapes = net.inferShape({ data: [2, 1, 8, 8] });
console.log("\n== inferred shapes");
net.listArguments().forEach((n, i) => console.log(`  arg ${n}: [${shapes.argShapes[i]}]`));
net.listAuxiliaryStates().forEach((n, i) => console.log(`  aux ${n}: [${shapes.auxShapes[i]}]`));
net.listOutputs().forEach((n, i) => console.log(`  out ${n}: [${shapes.outShapes[i]}]`));

// Bind seeded random weights (moving variances must be positive) and evaluate.
const bindings: Record<string, ReturnType<typeof nd.zeros>> = {};
const names = [...net.listArguments(), ...net.listAuxiliaryStates()];
const all = [...shapes.argShapes, ...shapes.auxShapes];
names.forEach((name, i) => {
  bindings[name] = name.endsWith("moving_var")
    ? nd.random.uniform(0.5, 1.5, all[i], { seed: i })
    : nd.random.uniform(-1, 1, all[i], { seed: i });
});
const [out] = await net.eval(bindings);
console.log("\n== output (softmax over 3 classes, 2 samples)");
console.log(out.toArray());
