/**
 * MXNet's autograd surface: record, attachGrad, backward (with head gradients, retainGraph),
 * gradReq write/add/null, parameters of eager and hybridized blocks and of a SymbolBlock.
 */
import {
  autograd,
  nd,
  nn,
  referenceEngine,
  SigilError,
  SymbolBlock,
  type Tensor,
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
