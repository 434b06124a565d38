/**
 * gluon.loss: values written out by hand from MXNet's definitions, weighting and sample weights,
 * the per-sample mean over non-batch axes, gradients through autograd against hand-derived
 * formulas, and hybridized losses giving the eager values.
 */
import { autograd, loss, nd, type Tensor } from "../../mod.ts";
import { assert, assertClose } from "../util.ts";

const vals = (t: unknown) => Array.from((t as Tensor).dataSync(), Number);
const softmax = (row: number[]) => {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

Deno.test("L2Loss and L1Loss: per-sample means, weight and sampleWeight", () => {
  const pred = nd.array([[1, 2], [3, 5]]);
  const label = nd.array([[0, 0], [3, 3]]);
  assertClose(vals(new loss.L2Loss().call(pred, label)), [(1 + 4) / 4, 4 / 4]);
  assertClose(vals(new loss.L2Loss({ weight: 4 }).call(pred, label)), [5, 4]);
  assertClose(vals(new loss.L1Loss().call(pred, label)), [1.5, 1]);
  const sw = nd.array([[2], [0.5]]);
  assertClose(vals(new loss.L1Loss({ weight: 3 }).call(pred, label, sw)), [9, 1.5]);
  // A label of pred's size but another shape is reshaped like pred (MXNet's reshape_like).
  assertClose(vals(new loss.L1Loss().call(nd.array([[1], [2]]), nd.array([0, 0]))), [1, 2]);
  // batchAxis 1: one loss per column.
  assertClose(vals(new loss.L1Loss({ batchAxis: 1 }).call(pred, label)), [0.5, 2]);
});

Deno.test("SoftmaxCrossEntropyLoss: sparse and dense labels, fromLogits, axis", () => {
  const rows = [[1, 2, 3], [0, 0, 0]];
  const pred = nd.array(rows);
  const want = [-Math.log(softmax(rows[0])[2]), Math.log(3)];
  assertClose(vals(new loss.SoftmaxCrossEntropyLoss().call(pred, nd.array([2, 0]))), want);
  assertClose(vals(new loss.SoftmaxCELoss().call(pred, nd.array([[2], [0]]))), want);
  const dense = nd.array([[0, 0.5, 0.5], [1, 0, 0]]);
  const p0 = softmax(rows[0]);
  assertClose(
    vals(new loss.SoftmaxCrossEntropyLoss({ sparseLabel: false }).call(pred, dense)),
    [-(0.5 * Math.log(p0[1]) + 0.5 * Math.log(p0[2])), Math.log(3)],
  );
  const logp = nd.log_softmax(pred);
  assertClose(
    vals(new loss.SoftmaxCrossEntropyLoss({ fromLogits: true }).call(logp, nd.array([2, 0]))),
    want,
  );
  // Classes on axis 1 of (N, C, W): the per-sample loss is the mean over W.
  const p3 = nd.array([[[1, 0], [2, 0], [3, 0]]]); // N=1, C=3, W=2
  const l3 = new loss.SoftmaxCrossEntropyLoss({ axis: 1 }).call(p3, nd.array([[2, 1]]));
  assertClose(vals(l3), [(-Math.log(p0[2]) + Math.log(3)) / 2]);
  // Weighted by sample.
  const sw = nd.array([[2], [0]]);
  assertClose(
    vals(new loss.SoftmaxCrossEntropyLoss({ weight: 0.5 }).call(pred, nd.array([2, 0]), sw)),
    [want[0], 0],
  );
});

Deno.test("SigmoidBinaryCrossEntropyLoss: logits, probabilities, posWeight", () => {
  const x = [-2, 0, 3];
  const y = [1, 0, 1];
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const bce = (p: number, t: number, w = 1) => -(w * t * Math.log(p) + (1 - t) * Math.log(1 - p));
  const per = x.map((v, i) => bce(sig(v), y[i]));
  const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
  const l = new loss.SigmoidBinaryCrossEntropyLoss();
  assertClose(vals(l.call(nd.array([x]), nd.array([y]))), [mean(per)], { rtol: 1e-5 });
  const probs = nd.array([x.map(sig)]);
  const lp = new loss.SigmoidBCELoss({ fromSigmoid: true }).call(probs, nd.array([y]));
  assertClose(vals(lp), [mean(per)], { rtol: 1e-5 });
  const withPos = x.map((v, i) => bce(sig(v), y[i], 3));
  const pw = nd.array([3]);
  assertClose(vals(l.call(nd.array([x]), nd.array([y]), nd.ones([1, 1]), pw)), [mean(withPos)], {
    rtol: 1e-5,
  });
  const lpw = new loss.SigmoidBCELoss({ fromSigmoid: true }).call(
    probs,
    nd.array([y]),
    nd.ones([1, 1]),
    pw,
  );
  assertClose(vals(lpw), [mean(withPos)], { rtol: 1e-5 });
});

Deno.test("HuberLoss and KLDivLoss", () => {
  const h = new loss.HuberLoss({ rho: 2 }).call(nd.array([[1, 5]]), nd.array([[0, 0]]));
  assertClose(vals(h), [(1 / 4 + (5 - 1)) / 2]);
  const label = [0.25, 0.75];
  const logits = [1, -1];
  const lp = softmax(logits).map(Math.log);
  const kl = label.map((t, i) => t * (Math.log(t + 1e-12) - lp[i]));
  const want = [(kl[0] + kl[1]) / 2];
  assertClose(vals(new loss.KLDivLoss().call(nd.array([lp]), nd.array([label]))), want);
  assertClose(
    vals(new loss.KLDivLoss({ fromLogits: false }).call(nd.array([logits]), nd.array([label]))),
    want,
    { rtol: 1e-5 },
  );
});

Deno.test("gradients: softmax CE is softmax - onehot, L2 is (pred - label) / elements", () => {
  const rows = [[0.5, -1, 2], [1, 1, 0]];
  const labels = [1, 2];
  for (const hybrid of [false, true]) {
    const ce = new loss.SoftmaxCrossEntropyLoss();
    if (hybrid) ce.hybridize();
    const x = nd.array(rows);
    x.attachGrad();
    const l = autograd.record(() => ce.call(x, nd.array(labels)));
    autograd.backward(l);
    const want = rows.flatMap((r, i) => softmax(r).map((p, j) => p - (j === labels[i] ? 1 : 0)));
    assertClose(x.grad!, want, { rtol: 1e-5, atol: 1e-6 });

    const l2 = new loss.L2Loss();
    if (hybrid) l2.hybridize();
    const p = nd.array([[1, 2], [3, 4]]);
    p.attachGrad();
    const out = autograd.record(() => l2.call(p, nd.array([[0, 0], [1, 1]])));
    autograd.backward(out);
    // d/dp mean_j ½(p - y)² = (p - y) / 2 (two elements per sample).
    assertClose(p.grad!, [0.5, 1, 1, 1.5]);
  }
});

Deno.test("hybridized losses give the eager values", () => {
  const pred = nd.random.uniform(-2, 2, [4, 3], { seed: 5 });
  const probs = nd.sigmoid(pred);
  const label = nd.random.uniform(0, 1, [4, 3], { seed: 6 });
  const sparse = nd.array([0, 2, 1, 2]);
  const sw = nd.array([[1], [2], [0.5], [0]]);
  const cases: [loss.Loss, Tensor, Tensor][] = [
    [new loss.L2Loss({ weight: 2 }), pred, label],
    [new loss.L1Loss(), pred, label],
    [new loss.SoftmaxCrossEntropyLoss(), pred, sparse],
    [new loss.SoftmaxCrossEntropyLoss({ sparseLabel: false }), pred, label],
    [new loss.SigmoidBCELoss(), pred, label],
    [new loss.SigmoidBCELoss({ fromSigmoid: true }), probs, label],
    [new loss.HuberLoss({ rho: 0.5 }), pred, label],
    [new loss.KLDivLoss({ fromLogits: false }), pred, label],
  ];
  for (const [l, p, y] of cases) {
    const eager = vals(l.call(p, y, sw));
    l.hybridize();
    assertClose(vals(l.call(p, y, sw)), eager, { rtol: 1e-5, atol: 1e-6, what: String(l) });
    assert.equal(eager.length, 4);
  }
});
