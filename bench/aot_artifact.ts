/**
 * Writes the ResNet-18 v1 artifact `bench/aot.ts` measures (zoo, random weights, input
 * 1×3×224×224, both SIMD variants, weights beside the module) into a directory, for cold starts
 * of artifacts from different commits side by side (`bench/aot_cold.mjs`; the runtime travels
 * inside each artifact): `deno run -A bench/aot_artifact.ts <dir> [threads]`.
 *
 * @module
 */
import { compile } from "../compiler/aot/mod.ts";
import { modelZoo, nd } from "../mod.ts";

const [dir, threads] = [Deno.args[0], Number(Deno.args[1] ?? 1)];
if (!dir) throw new Error("usage: deno run -A bench/aot_artifact.ts <dir> [threads]");
const net = modelZoo.vision.getModel("resnet18_v1");
net.initialize();
net.inferShape(nd.zeros([1, 3, 224, 224]));
const artifact = await compile(net, { inputs: { data: [1, 3, 224, 224] }, threads });
await artifact.write(dir);
console.log(`wrote ${artifact.files.map((f) => f.path).join(", ")} to ${dir}`);
