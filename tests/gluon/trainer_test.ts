/**
 * Trainer (rescaling by batch size, gradReq null and add, learning rate, state round trip), the
 * data loader (stacking, seeded shuffles, last-batch policies) and a whole training run that
 * repeats bit for bit.
 */
import {
  autograd,
  data,
  loss,
  nd,
  nn,
  optimizer,
  type Parameter,
  type Tensor,
  Trainer,
} from "../../mod.ts";
import { assert, assertClose } from "../util.ts";

const vals = (t: Tensor) => Array.from(t.dataSync(), Number);

function dense(): nn.Dense {
  const net = new nn.Dense(2, { inUnits: 3 });
  net.initialize({ seed: 1 });
  return net;
}

function backwardOnce(net: nn.Dense, x = nd.array([[1, 2, 3], [-1, 0, 2]])) {
  const l = autograd.record(() => nd.sum(nd.square(net.call(x) as Tensor)));
  autograd.backward(l);
}

Deno.test("step rescales by the batch size; lrMult and learningRate as MXNet", () => {
  const net = dense();
  const { weight, bias } = net.collectParams();
  weight.lrMult = 2;
  const trainer = new Trainer(net.collectParams(), "sgd", { learningRate: 0.1, wd: 0.01 });
  const w0 = vals(weight.data()), b0 = vals(bias.data());
  backwardOnce(net);
  const gw = vals(weight.grad()), gb = vals(bias.grad());
  trainer.step(4);
  assertClose(weight.data(), w0.map((w, i) => w - 0.2 * (gw[i] / 4 + 0.01 * w)));
  assertClose(bias.data(), b0.map((b, i) => b - 0.1 * (gb[i] / 4 + 0.01 * b)));
  assert.equal(trainer.learningRate, 0.1);
  trainer.setLearningRate(0.05);
  assert.equal(trainer.optimizer.learningRate, 0.05);
  // allreduceGrads + update is step.
  const w1 = vals(weight.data());
  backwardOnce(net);
  const g1 = vals(weight.grad());
  trainer.allreduceGrads();
  trainer.update(1);
  assertClose(weight.data(), w1.map((w, i) => w - 0.1 * (g1[i] + 0.01 * w)));
});

Deno.test("gradReq null is skipped, add accumulates until zeroed", () => {
  const net = dense();
  const { weight, bias } = net.collectParams();
  bias.gradReq = "null";
  weight.gradReq = "add";
  const trainer = new Trainer(net.collectParams(), new optimizer.SGD({ learningRate: 1 }));
  const b0 = vals(bias.data());
  const w0 = vals(weight.data());
  backwardOnce(net);
  const g1 = vals(weight.grad());
  trainer.step(1);
  assert.deepEqual(vals(bias.data()), b0);
  const w1 = vals(weight.data());
  assertClose(w1, w0.map((w, i) => w - g1[i]));
  backwardOnce(net); // accumulates onto g1: the trainer does not zero
  const g2 = vals(weight.grad());
  trainer.step(1);
  assertClose(weight.data(), w1.map((w, i) => w - g2[i]));
  net.zeroGrad();
  assert.ok(vals(weight.grad()).every((v) => v === 0));
});

Deno.test("saveStates / loadStates: a resumed run matches an uninterrupted one", () => {
  const run = (resumeAt: number | undefined) => {
    const net = dense();
    let trainer = new Trainer(net.collectParams(), "adam", { learningRate: 0.05 });
    for (let i = 0; i < 4; i++) {
      if (i === resumeAt) {
        const bytes = trainer.saveStates();
        const params: Parameter[] = [...trainer.params];
        trainer = new Trainer(params, "adam", { learningRate: 0.05 });
        trainer.loadStates(bytes);
        assert.equal(trainer.optimizer.numUpdate, resumeAt);
      }
      backwardOnce(net);
      trainer.step(2);
    }
    return vals(net.collectParams().weight.data());
  };
  assert.deepEqual(run(2), run(undefined));
  const t = new Trainer(dense().collectParams(), "sgd", { momentum: 0.9 });
  assert.throws(() => t.loadStates(new Trainer([], "adam").saveStates().subarray(0, 10)));
});

Deno.test("DataLoader: stacked batches, seeded shuffles, keep/discard/rollover", () => {
  const xs = nd.array([[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]]);
  const ds = new data.ArrayDataset(xs, [0, 1, 2, 3, 4]);
  const firsts = (l: data.DataLoader) => [...l].map(([, y]) => vals(y));
  const keep = new data.DataLoader(ds, { batchSize: 2 });
  assert.deepEqual(firsts(keep), [[0, 1], [2, 3], [4]]);
  assert.equal(keep.length, 3);
  const [[x0]] = [...keep];
  assert.deepEqual(x0.shape, [2, 2]);
  assert.deepEqual(firsts(new data.DataLoader(ds, { batchSize: 2, lastBatch: "discard" })), [
    [0, 1],
    [2, 3],
  ]);
  const roll = new data.DataLoader(ds, { batchSize: 2, lastBatch: "rollover" });
  assert.deepEqual(firsts(roll), [[0, 1], [2, 3]]);
  assert.deepEqual(firsts(roll), [[4, 0], [1, 2], [3, 4]]); // the rolled-over sample leads
  const a = new data.DataLoader(ds, { batchSize: 5, shuffle: true, seed: 7 });
  const b = new data.DataLoader(ds, { batchSize: 5, shuffle: true, seed: 7 });
  const e1 = firsts(a), e2 = firsts(a);
  assert.deepEqual(e1, firsts(b));
  assert.deepEqual(e2, firsts(b));
  assert.notDeepEqual(e1, e2);
  assert.deepEqual([...e1[0]].sort(), [0, 1, 2, 3, 4]);
  assert.throws(() => new data.ArrayDataset(xs, [1, 2]), /samples/);
});

Deno.test("a training run (dropout, shuffled batches, Adam) is bit-identical given the seed", () => {
  const run = () => {
    nd.random.seed(3);
    const net = new nn.HybridSequential().add(
      new nn.Dense(8, { activation: "relu", inUnits: 4 }),
      new nn.Dropout(0.3),
      new nn.Dense(3, { inUnits: 8 }),
    );
    net.initialize({ seed: 5 });
    net.hybridize();
    const x = nd.random.uniform(-1, 1, [12, 4], { seed: 11 });
    const y = nd.array(Array.from({ length: 12 }, (_, i) => i % 3));
    const loader = new data.DataLoader(new data.ArrayDataset(x, y), {
      batchSize: 4,
      shuffle: true,
      seed: 2,
    });
    const trainer = new Trainer(net.collectParams(), "adam", { learningRate: 0.01 });
    const ce = new loss.SoftmaxCrossEntropyLoss();
    for (let epoch = 0; epoch < 2; epoch++) {
      for (const [xb, yb] of loader) {
        const l = autograd.record(() => ce.call(net.call(xb), yb));
        autograd.backward(l);
        trainer.step(xb.shape[0]);
      }
    }
    return Object.values(net.collectParams()).flatMap((p) => vals(p.data()));
  };
  const a = run();
  assert.deepEqual(run(), a);
  assert.ok(a.every(Number.isFinite));
});
