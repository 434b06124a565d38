/**
 * Fine-tuning example: export a small trained-from-scratch backbone as MXNet files, load it
 * back with `SymbolBlock.imports`, freeze it (`gradReq "null"`) and train a new head on top for
 * a new task. The backbone's weights stay bit for bit what was exported.
 *
 * Run: `deno run -A examples/finetune.ts` (also part of `deno task demo`).
 */
import { autograd, loss, nd, nn, SymbolBlock, type Tensor, Trainer } from "../mod.ts";

/** Exports a backbone, fine-tunes a head on it; returns the head's loss before and after. */
export async function finetune(dir: string): Promise<{ before: number; after: number }> {
  const backbone = new nn.HybridSequential().add(
    new nn.Dense(16, { activation: "tanh", inUnits: 4 }),
    new nn.Dense(8, { activation: "tanh", inUnits: 16 }),
  );
  backbone.initialize({ seed: 0 });
  backbone.hybridize();
  const x = nd.random.uniform(-1, 1, [64, 4], { seed: 1 });
  backbone.call(x);
  const [symbolFile, paramFile] = await backbone.export(`${dir}/backbone`);

  const features = await SymbolBlock.imports(symbolFile, "data", paramFile!);
  for (const p of Object.values(features.collectParams())) p.gradReq = "null";
  const frozen = Object.values(features.collectParams()).map((p) => p.data());
  const head = new nn.Dense(1, { inUnits: 8 });
  head.initialize({ seed: 2 });
  // The new task: a fixed function of the inputs.
  const target = nd.sum(nd.sin(x), { axis: [1], keepdims: true });
  const l2 = new loss.L2Loss();
  const trainer = new Trainer(
    [...Object.values(features.collectParams()), ...Object.values(head.collectParams())],
    "adam",
    { learningRate: 0.05 },
  );
  const meanLoss = () =>
    nd.mean(l2.call(head.call(features.call(x) as Tensor), target) as Tensor).dataSync()[0];
  const before = Number(meanLoss());
  for (let i = 0; i < 100; i++) {
    const l = autograd.record(() => l2.call(head.call(features.call(x) as Tensor), target));
    autograd.backward(l);
    trainer.step(x.shape[0]);
  }
  const after = Number(meanLoss());
  const same = Object.values(features.collectParams()).every((p, i) =>
    p.data().dataSync().every((v, j) => v === frozen[i].dataSync()[j])
  );
  if (!same) throw new Error("the frozen backbone changed");
  return { before, after };
}

if (import.meta.main) {
  const dir = await Deno.makeTempDir();
  const { before, after } = await finetune(dir);
  console.log(
    `fine-tuned head on a frozen imported backbone: loss ${before.toFixed(4)} -> ${
      after.toFixed(4)
    }`,
  );
  await Deno.remove(dir, { recursive: true });
  if (!(after < 0.85 * before)) throw new Error("the head did not learn");
}
