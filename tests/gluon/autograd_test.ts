/**
 * MXNet's autograd surface: record, attachGrad, backward (with head gradients, retainGraph),
 * gradReq write/add/null, parameters of eager and hybridized blocks and of a SymbolBlock.
 */
import {
  autograd,
  loss,
  nd,
  nn,
  programCacheStats,
  referenceEngine,
  SigilError,
  SymbolBlock,
  Tensor,
  Trainer,
  type Value,
  withEngine,
} from "../../mod.ts";
import { assert, assertClose } from "../util.ts";

const values = (t: Tensor | undefined) => Array.from(t!.dataSync(), Number);

Deno.test("attachGrad, record, backward: gradients of eager calls", () => {
  const x = nd.array([1, 2, 3]);
  x.attachGrad();
  assert.equal(x.grad, undefined);
  const y = autograd.record(() => {
    assert.ok(autograd.isRecording() && autograd.isTraining());
    return nd.sum(nd.elemwise_mul(nd.square(x), nd.array([1, 1, 2])));
  });
  assert.ok(!autograd.isRecording() && !autograd.isTraining());
  autograd.backward(y);
  assert.deepEqual(values(x.grad), [2, 4, 12]);
});

Deno.test("gradReq write replaces, add accumulates; head gradients weigh the outputs", () => {
  const w = nd.array([1, 2]);
  const a = nd.array([1, 2]);
  w.attachGrad("write");
  a.attachGrad("add");
  for (let i = 0; i < 2; i++) {
    const y = autograd.record(() => nd.elemwise_mul(w, a));
    autograd.backward(y, nd.array([10, 100]));
  }
  assert.deepEqual(values(w.grad), [10, 200]); // head · a, written
  assert.deepEqual(values(a.grad), [20, 400]); // head · w, twice
});

Deno.test("the tape is released after backward unless retainGraph", () => {
  const x = nd.array([2]);
  x.attachGrad();
  const y = autograd.record(() => nd.exp(x));
  autograd.backward(y, undefined, { retainGraph: true });
  autograd.backward(y);
  assert.throws(() => autograd.backward(y), SigilError);
  assertClose(x.grad!, [Math.exp(2)], { rtol: 1e-6 });
  // Calls made outside record (or inside pause) are not on the tape.
  const z = autograd.record(() => autograd.pause(() => nd.exp(x)));
  assert.throws(() => autograd.backward(z), /was not computed inside autograd.record/);
});

Deno.test("record refuses async functions; scopes restore their flags", () => {
  assert.throws(() => autograd.record(() => Promise.resolve(1)), /synchronous/);
  assert.ok(!autograd.isRecording());
  autograd.record(() => {
    autograd.pause(() => assert.ok(!autograd.isRecording() && !autograd.isTraining()));
    assert.ok(autograd.isRecording());
  }, { trainMode: false });
});

function mlp(): nn.HybridSequential {
  const net = new nn.HybridSequential().add(
    new nn.Dense(4, { activation: "tanh", inUnits: 3 }),
    new nn.Dense(2, { inUnits: 4 }),
  );
  net.initialize({ seed: 3 });
  return net;
}

Deno.test("parameter gradients: eager and hybridized blocks agree", () => {
  const x = nd.random.uniform(-1, 1, [5, 3], { seed: 9 });
  const grads = (hybrid: boolean) => {
    const net = mlp();
    if (hybrid) net.hybridize({ engine: referenceEngine });
    const loss = autograd.record(() => nd.sum(nd.square(net.call(x) as Tensor)));
    autograd.backward(loss);
    return Object.entries(net.collectParams()).map(([k, p]) => [k, values(p.grad())] as const);
  };
  const eager = grads(false);
  const hybrid = grads(true);
  assert.equal(eager.length, 4);
  eager.forEach(([k, g], i) => {
    assert.equal(hybrid[i][0], k);
    assert.ok(g.some((v) => v !== 0), `${k} has a gradient`);
    assertClose(nd.array(hybrid[i][1]), g, { rtol: 1e-5, atol: 1e-6, what: k });
  });
});

Deno.test("fine-tuning an imported SymbolBlock: frozen parameters get no gradient", async () => {
  const net = mlp();
  net.hybridize();
  const x = nd.random.uniform(-1, 1, [2, 3], { seed: 4 });
  net.call(x);
  const { symbol, params } = net.exportBytes();
  const back = await SymbolBlock.imports(new TextEncoder().encode(symbol), ["data"], params!);
  const ps = Object.values(back.collectParams());
  ps[0].gradReq = "null"; // frozen backbone weight
  const loss = autograd.record(() => nd.sum(back.call(x) as Tensor));
  autograd.backward(loss);
  assert.throws(() => ps[0].grad(), /gradReq 'null'/);
  // The last layer's bias gradient of sum(outputs) is the batch size for each unit.
  const last = ps[ps.length - 1];
  assert.deepEqual(values(last.grad()), [2, 2]);
});

Deno.test("training-mode BatchNorm: batch statistics, moving averages, exact gradient", () => {
  const bn = new nn.BatchNorm({ inChannels: 2, momentum: 0.8 });
  bn.initialize();
  const x = nd.array([[1, 10], [3, 20], [5, 60]]);
  const y = autograd.record(() => bn.call(x) as Tensor);
  // Each channel: zero mean, unit (biased) variance, up to eps.
  const v = values(y);
  for (const c of [0, 1]) {
    const col = [v[c], v[2 + c], v[4 + c]];
    const mean = col.reduce((a, b) => a + b) / 3;
    const variance = col.reduce((a, b) => a + (b - mean) ** 2, 0) / 3;
    assert.ok(Math.abs(mean) < 1e-6 && Math.abs(variance - 1) < 1e-4, `channel ${c}`);
  }
  // running = 0.8 · running + 0.2 · batch.
  assertClose(bn.runningMean.data(), [0.2 * 3, 0.2 * 30], { rtol: 1e-6 });
  assertClose(bn.runningVar.data(), [0.8 + 0.2 * (8 / 3), 0.8 + 0.2 * (1400 / 3)], { rtol: 1e-5 });
  // Outside training the moving statistics are used.
  const z = bn.call(x) as Tensor;
  assert.notDeepEqual(values(z), v);
  // The gradient through the batch statistics matches finite differences.
  const xs = nd.array([[0.5, -1], [2, 0.25], [-1.5, 3], [1, 1]], { dtype: "float64" });
  const bn64 = new nn.BatchNorm({ inChannels: 2, dtype: "float64" });
  bn64.initialize();
  bn64.gamma.setData(nd.array([1.5, -0.5], { dtype: "float64" }));
  const head = [0.3, -1, 2, 0.7, -0.2, 1.1, 0.4, -0.9];
  const h = nd.array(head, { shape: [4, 2], dtype: "float64" });
  xs.attachGrad();
  const out = autograd.record(() => bn64.call(xs) as Tensor);
  autograd.backward(out, h);
  const lossAt = (data: number[]) => {
    const o = autograd.trainMode(() =>
      bn64.call(nd.array(data, { shape: [4, 2], dtype: "float64" })) as Tensor
    );
    return values(o).reduce((a, b, i) => a + b * head[i], 0);
  };
  const base = values(xs);
  const g = values(xs.grad);
  for (const j of [0, 3, 6]) {
    const up = [...base];
    const down = [...base];
    up[j] += 1e-6;
    down[j] -= 1e-6;
    const fd = (lossAt(up) - lossAt(down)) / 2e-6;
    assert.ok(Math.abs(g[j] - fd) < 1e-5 * (1 + Math.abs(fd)), `d/dx[${j}]: ${g[j]} vs ${fd}`);
  }
});

Deno.test("training-mode Dropout: seeded masks scaled by 1/(1-p); identity outside training", () => {
  const drop = new nn.Dropout(0.5);
  const x = nd.ones([4, 64]);
  assert.deepEqual(values(drop.call(x) as Tensor), values(x));
  nd.random.seed(42);
  const a = values(autograd.record(() => drop.call(x) as Tensor));
  nd.random.seed(42);
  const b = values(autograd.record(() => drop.call(x) as Tensor));
  assert.deepEqual(a, b);
  assert.ok(a.every((v) => v === 0 || v === 2));
  const kept = a.filter((v) => v === 2).length;
  assert.ok(kept > 64 && kept < 192, `${kept} of 256 kept`);
  // The gradient is the mask.
  const w = nd.ones([4, 64]);
  w.attachGrad();
  nd.random.seed(42);
  const y = autograd.record(() => nd.sum(drop.call(w) as Tensor));
  autograd.backward(y);
  assert.deepEqual(values(w.grad), a);
  // Masks shared along `axes`.
  const rows = new nn.Dropout(0.5, { axes: [1] });
  const r = values(autograd.record(() => rows.call(x) as Tensor));
  for (let i = 0; i < 4; i++) assert.equal(new Set(r.slice(i * 64, i * 64 + 64)).size, 1);
});

Deno.test("a hybridized block with BatchNorm trains on its training graph and predicts on its graph", () => {
  const make = () => {
    const net = new nn.HybridSequential().add(
      new nn.Dense(3, { inUnits: 2 }),
      new nn.BatchNorm({ inChannels: 3 }),
    );
    net.initialize({ seed: 1 });
    return net;
  };
  const x = nd.array([[1, 2], [3, -1], [0.5, 0.5]]);
  const eager = make();
  const hybrid = make();
  hybrid.hybridize({ engine: referenceEngine });
  const grads = (net: nn.HybridSequential) => {
    const loss = autograd.record(() => nd.sum(nd.square(net.call(x) as Tensor)));
    autograd.backward(loss);
    return Object.values(net.collectParams()).filter((p) => p.gradReq !== "null").map((p) =>
      values(p.grad())
    );
  };
  const ge = grads(eager);
  const gh = grads(hybrid);
  ge.forEach((g, i) => assertClose(nd.array(gh[i]), g, { rtol: 1e-5, atol: 1e-6 }));
  assertClose(hybrid.call(x) as Tensor, values(eager.call(x) as Tensor), { rtol: 1e-5 });
});

Deno.test("hybridized BatchNorm and Dropout train on the compiled training-mode graph", () => {
  const build = () =>
    new nn.HybridSequential().add(
      new nn.Conv2D(4, 3, { inChannels: 2 }),
      new nn.BatchNorm({ inChannels: 4, momentum: 0.8 }),
      new nn.Activation("relu"),
      new nn.Flatten(),
      new nn.Dropout(0.3),
      new nn.Dense(3, { inUnits: 64 }),
    );
  const x = nd.random.uniform(-1, 1, [5, 2, 6, 6], { seed: 2 });
  const y = nd.array([0, 1, 2, 1, 0]);
  /** Three SGD steps; the losses, every parameter, and how often forward ran eagerly. */
  const train = (hybrid: boolean) => {
    nd.random.seed(5);
    const net = build();
    net.initialize({ seed: 1 });
    if (hybrid) net.hybridize({ engine: referenceEngine });
    let eagerCalls = 0;
    for (const [, layer] of net.children()) {
      const forward = layer.forward.bind(layer);
      layer.forward = (...xs: Value[]) => {
        if (xs[0] instanceof Tensor) eagerCalls++;
        return forward(...xs);
      };
    }
    const trainer = new Trainer(net.collectParams(), "sgd", { learningRate: 0.1 });
    const ce = new loss.SoftmaxCrossEntropyLoss();
    const losses: number[] = [];
    withEngine(referenceEngine, () => {
      for (let i = 0; i < 3; i++) {
        const l = autograd.record(() => ce.call(net.call(x), y));
        autograd.backward(l);
        trainer.step(5);
        losses.push(...values(l));
      }
    });
    const params = Object.entries(net.collectParams()).map(([k, p]) =>
      [k, values(p.data())] as const
    );
    return { losses, params, eagerCalls };
  };
  const eager = train(false);
  const hybrid = train(true);
  assert.ok(eager.eagerCalls > 0);
  assert.equal(hybrid.eagerCalls, 0, "the hybridized block ran its forward code eagerly");
  // The same ops on the same engine, the same masks from the same stream: the same numbers,
  // moving statistics included.
  assert.deepEqual(hybrid.losses, eager.losses);
  assert.deepEqual(hybrid.params, eager.params);
  assert.ok(hybrid.params.some(([k, v]) => k === "1.running_mean" && v.some((m) => m !== 0)));
  // A seeded run repeats bit for bit.
  assert.deepEqual(train(true), hybrid);
});

Deno.test("hybridized training on the default engine matches the eager path within 1e-5", () => {
  const build = () =>
    new nn.HybridSequential().add(
      new nn.Dense(8, { inUnits: 4 }),
      new nn.BatchNorm({ inChannels: 8 }),
      new nn.Activation("tanh"),
      new nn.Dropout(0.5, { axes: [0] }),
      new nn.Dense(2, { inUnits: 8 }),
    );
  const x = nd.random.uniform(-1, 1, [6, 4], { seed: 3 });
  const run = (hybrid: boolean) => {
    nd.random.seed(9);
    const net = build();
    net.initialize({ seed: 4 });
    if (hybrid) net.hybridize();
    const trainer = new Trainer(net.collectParams(), "adam", { learningRate: 0.01 });
    for (let i = 0; i < 4; i++) {
      const l = autograd.record(() => nd.sum(nd.square(net.call(x) as Tensor)));
      autograd.backward(l);
      trainer.step(6);
    }
    return Object.values(net.collectParams()).map((p) => values(p.data()));
  };
  const eager = run(false);
  const hybrid = run(true);
  eager.forEach((v, i) => assertClose(nd.array(hybrid[i]), v, { rtol: 1e-5, atol: 1e-6 }));
  assert.deepEqual(run(true), hybrid);
});

Deno.test("a training loop compiles its forward and backward once: later steps compile nothing", () => {
  for (const hybrid of [false, true]) {
    const net = new nn.HybridSequential().add(
      new nn.Dense(8, { activation: "relu", inUnits: 4 }),
      new nn.BatchNorm({ inChannels: 8 }),
      new nn.Dropout(0.2),
      new nn.Dense(3, { inUnits: 8 }),
    );
    net.initialize({ seed: 2 });
    if (hybrid) net.hybridize();
    const trainer = new Trainer(net.collectParams(), "sgd", { learningRate: 0.05 });
    const ce = new loss.SoftmaxCrossEntropyLoss();
    const x = nd.random.uniform(-1, 1, [6, 4], { seed: 1 });
    const y = nd.array([0, 1, 2, 0, 1, 2]);
    const step = () => {
      const l = autograd.record(() => ce.call(net.call(x), y));
      autograd.backward(l);
      trainer.step(6);
    };
    step();
    step();
    const compiled = programCacheStats().misses;
    for (let i = 0; i < 3; i++) step();
    assert.equal(programCacheStats().misses, compiled, hybrid ? "hybridized" : "eager");
  }
});
