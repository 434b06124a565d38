/**
 * An imported SymbolBlock in training mode runs its graph's training-mode form, as MXNet does
 * under `autograd.record()`: BatchNorm with batch statistics and moving averages, Dropout masks
 * from the training stream; the same numbers as the hybridized block it was exported from.
 */
import {
  autograd,
  loss,
  nd,
  nn,
  type Parameter,
  referenceEngine,
  sym,
  SymbolBlock,
  type Tensor,
  Trainer,
  withEngine,
} from "../../mod.ts";
import { assert, assertClose } from "../util.ts";

const values = (t: Tensor | undefined) => Array.from(t!.dataSync(), Number);

/** A small model-zoo-like network: conv, BatchNorm, relu, pooling, Dropout, dense. */
function build() {
  const net = new nn.HybridSequential().add(
    new nn.Conv2D(4, 3, { inChannels: 2, padding: 1 }),
    new nn.BatchNorm({ inChannels: 4, momentum: 0.8 }),
    new nn.Activation("relu"),
    new nn.MaxPool2D(2),
    new nn.Flatten(),
    new nn.Dropout(0.25),
    new nn.Dense(6, { inUnits: 36 }),
    new nn.BatchNorm({ axis: 1, inChannels: 6 }),
    new nn.Dense(3, { inUnits: 6 }),
  );
  net.initialize({ seed: 3 });
  return net;
}

const x = nd.random.uniform(-1, 1, [4, 2, 6, 6], { seed: 11 });
const label = nd.array([0, 2, 1, 2]);

async function exported(net: nn.HybridSequential): Promise<SymbolBlock> {
  net.hybridize();
  net.call(x);
  const { symbol, params } = net.exportBytes();
  return await SymbolBlock.imports(new TextEncoder().encode(symbol), ["data"], params!);
}

/** Two SGD steps under record: losses, first-step gradients, parameters after. */
function train(
  block: { call(x: Tensor): unknown; collectParams(): Record<string, Parameter> },
  order: Parameter[],
) {
  nd.random.seed(7);
  const trainer = new Trainer(block.collectParams(), "sgd", { learningRate: 0.1 });
  const ce = new loss.SoftmaxCrossEntropyLoss();
  const losses: number[] = [];
  let grads: number[][] = [];
  for (let i = 0; i < 2; i++) {
    const l = autograd.record(() => ce.call(block.call(x) as Tensor, label));
    autograd.backward(l);
    if (i === 0) {
      grads = order.filter((p) => p.gradReq !== "null").map((p) => values(p.grad()));
    }
    trainer.step(4);
    losses.push(...values(l as Tensor));
  }
  return { losses, grads, params: order.map((p) => values(p.data())) };
}

Deno.test("an imported SymbolBlock trains as the hybridized block it came from, bit for bit on the reference engine", async () => {
  const hybrid = build();
  const imported = await exported(build());
  hybrid.hybridize({ engine: referenceEngine });
  imported.hybridize({ engine: referenceEngine });
  const names = [...imported.symbol.listArguments(), ...imported.symbol.listAuxiliaryStates()]
    .filter((n) => n !== "data");
  // The export names parameters structurally, as the hybridized block does.
  const importedOrder = names.map((n) => imported.collectParams()[n]);
  const hybridOrder = names.map((n) => hybrid.collectParams()[n]);
  assert.ok(hybridOrder.every((p) => p !== undefined));
  assert.ok(imported.trainsDifferently());
  const [a, b] = withEngine(referenceEngine, () => [
    train(hybrid, hybridOrder),
    train(imported, importedOrder),
  ]);
  assert.deepEqual(b.losses, a.losses);
  assert.deepEqual(b.grads, a.grads);
  assert.deepEqual(b.params, a.params);
  // The moving statistics moved.
  const mean = names.findIndex((n) => n.endsWith("running_mean") || n.endsWith("moving_mean"));
  assert.ok(mean >= 0 && b.params[mean].some((v) => v !== 0));
});

Deno.test("an imported SymbolBlock trains within 1e-5 of the hybridized block on the default engine", async () => {
  const hybrid = build();
  const imported = await exported(build());
  hybrid.hybridize({});
  const names = [...imported.symbol.listArguments(), ...imported.symbol.listAuxiliaryStates()]
    .filter((n) => n !== "data");
  const hybridOrder = names.map((n) => hybrid.collectParams()[n]);
  const a = train(hybrid, hybridOrder);
  const b = train(imported, names.map((n) => imported.collectParams()[n]));
  assertClose(nd.array(b.losses), a.losses, { rtol: 1e-5, atol: 1e-6 });
  b.params.forEach((v, i) =>
    assertClose(nd.array(v), a.params[i], { rtol: 1e-5, atol: 1e-6, what: names[i] })
  );
});

Deno.test("outside record an imported SymbolBlock uses its moving statistics and changes nothing", async () => {
  const net = build();
  const imported = await exported(net);
  const before = Object.values(imported.collectParams()).map((p) => values(p.data()));
  const y = imported.call(x) as Tensor;
  const want = net.call(x) as Tensor; // the hybridized net, inference mode
  assert.deepEqual(values(y), values(want));
  // Under record with trainMode false, too.
  autograd.record(() => imported.call(x), { trainMode: false });
  assert.deepEqual(Object.values(imported.collectParams()).map((p) => values(p.data())), before);
  // In training mode the output differs (batch statistics) and the statistics move.
  const trained = autograd.record(() => imported.call(x) as Tensor);
  assert.notDeepEqual(values(trained), values(y));
  assert.notDeepEqual(Object.values(imported.collectParams()).map((p) => values(p.data())), before);
});

Deno.test("frozen parameters of a training SymbolBlock stay frozen; use_global_stats keeps the statistics", async () => {
  const imported = await exported(build());
  const ps = imported.collectParams();
  // The backbone: the convolution and the first BatchNorm's gamma and beta.
  const frozen = Object.entries(ps).filter(([n]) => /^[01]\.(weight|bias|gamma|beta)$/.test(n));
  assert.ok(frozen.length > 0);
  for (const [, p] of frozen) p.gradReq = "null";
  const was = frozen.map(([, p]) => values(p.data()));
  const trainer = new Trainer(ps, "sgd", { learningRate: 0.5 });
  for (let i = 0; i < 2; i++) {
    const l = autograd.record(() => nd.sum(imported.call(x) as Tensor));
    autograd.backward(l);
    trainer.step(4);
  }
  frozen.forEach(([n, p], i) => assert.deepEqual(values(p.data()), was[i], n));
  frozen.forEach(([, p]) => assert.throws(() => p.grad(), /gradReq 'null'/));
  // The head trained; the frozen BatchNorm's moving statistics still follow the batches.
  assert.notDeepEqual(
    values(ps["6.weight"].data()),
    values(build().collectParams()["6.weight"].data()),
  );
  assert.notDeepEqual(values(ps["1.running_mean"].data()), [0, 0, 0, 0]);

  const data = sym.var("data");
  const g = sym.BatchNorm(data, sym.var("g"), sym.var("b"), sym.var("m"), sym.var("v"), {
    use_global_stats: true,
    fix_gamma: false,
    name: "bn",
  });
  const block = new SymbolBlock(g, data);
  assert.ok(!block.trainsDifferently());
  block.initialize();
  const inputs = nd.random.uniform(-1, 1, [3, 2], { seed: 1 });
  block.inferShape(inputs);
  const m = values(block.collectParams()["m"].data());
  const out = autograd.record(() => block.call(inputs) as Tensor);
  assert.deepEqual(values(out), values(block.call(inputs) as Tensor));
  assert.deepEqual(values(block.collectParams()["m"].data()), m);
});
