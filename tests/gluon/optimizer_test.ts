/**
 * Optimizers against MXNet's update formulas written out here in float64 for three steps
 * (rescaleGrad, clipGradient, wd, lrMult/wdMult included), compiled updates that schedules do
 * not recompile, and the learning-rate schedules.
 */
import { lrScheduler, nd, optimizer, programCacheStats, type Tensor } from "../../mod.ts";
import { assert, assertClose } from "../util.ts";

const W0 = [0.5, -1.5, 2, 0.25];
const GRADS = [[4, -8, 0.5, 2], [-2, 6, 1, -3], [1, 1, -9, 0.5]];
const vals = (t: Tensor) => Array.from(t.dataSync(), Number);
const clip = (x: number, c: number | undefined) =>
  c === undefined ? x : Math.max(-c, Math.min(c, x));

/** Runs three updates of `opt` and of `ref` (per element: weight, grad, state, t) side by side. */
function check(
  opt: optimizer.Optimizer,
  ref: (w: number, g: number, s: number[], t: number) => number,
  mults: optimizer.UpdateMults = {},
  rtol = 1e-5,
) {
  let w: Tensor = nd.array(W0);
  let states = opt.createState(w);
  const refW = [...W0];
  const refS = W0.map(() => opt.stateNames.map(() => 0));
  GRADS.forEach((g, step) => {
    ({ weight: w, states } = opt.update(3, w, nd.array(g), states, mults));
    for (let i = 0; i < W0.length; i++) refW[i] = ref(refW[i], g[i], refS[i], step + 1);
    assertClose(w, refW, { rtol, atol: 1e-6, what: `${opt.constructor.name} step ${step + 1}` });
  });
  assert.equal(opt.numUpdate, 3);
}

Deno.test("SGD: plain, momentum and Nesterov, with rescale, clip, wd and multipliers", () => {
  const [lr, wd, rs, c, mom] = [0.1, 0.01, 0.5, 1.5, 0.9];
  const mults = { lrMult: 2, wdMult: 3 };
  check(new optimizer.SGD({ learningRate: lr, wd, rescaleGrad: rs, clipGradient: c }), (w, g) => {
    const gg = clip(rs * g, c);
    return w - lr * 2 * (gg + wd * 3 * w);
  }, mults);
  check(
    new optimizer.SGD({ learningRate: lr, wd, rescaleGrad: rs, momentum: mom }),
    (w, g, s) => {
      s[0] = mom * s[0] - lr * (rs * g + wd * w);
      return w + s[0];
    },
  );
  check(
    new optimizer.SGD({ learningRate: lr, wd, momentum: mom, nesterov: true, clipGradient: c }),
    (w, g, s) => {
      const gg = clip(g, c) + wd * w;
      s[0] = mom * s[0] + gg;
      return w - lr * (gg + mom * s[0]);
    },
  );
});

Deno.test("Adam and AdamW: moments, bias correction, coupled and decoupled decay", () => {
  const [lr, wd, b1, b2] = [0.01, 0.1, 0.8, 0.99];
  check(
    new optimizer.Adam({ learningRate: lr, wd, beta1: b1, beta2: b2, clipGradient: 3 }),
    (w, g, s, t) => {
      const gg = clip(g + wd * w, 3); // adam_update: wd joins before clipping
      s[0] = b1 * s[0] + (1 - b1) * gg;
      s[1] = b2 * s[1] + (1 - b2) * gg * gg;
      const lrt = lr * Math.sqrt(1 - b2 ** t) / (1 - b1 ** t);
      return w - lrt * s[0] / (Math.sqrt(s[1]) + 1e-8);
    },
    { lrMult: 1, wdMult: 1 },
  );
  check(
    new optimizer.AdamW({ learningRate: lr, wd, rescaleGrad: 0.25 }),
    (w, g, s, t) => {
      const gg = 0.25 * g;
      s[0] = 0.9 * s[0] + 0.1 * gg;
      s[1] = 0.999 * s[1] + 0.001 * gg * gg;
      const eta = lr * Math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t);
      return w - eta * (s[0] / (Math.sqrt(s[1]) + 1e-6) + wd * w);
    },
  );
});

Deno.test("RMSProp (plain and centered) and AdaGrad", () => {
  const [lr, wd] = [0.01, 0.05];
  check(new optimizer.RMSProp({ learningRate: lr, wd, gamma1: 0.8 }), (w, g, s) => {
    const gg = g + wd * w;
    s[0] = 0.2 * gg * gg + 0.8 * s[0];
    return w - lr * gg / Math.sqrt(s[0] + 1e-8);
  });
  check(
    new optimizer.RMSProp({ learningRate: lr, wd, centered: true, gamma2: 0.7, clipGradient: 2 }),
    (w, g, s) => {
      const gg = clip(g + wd * w, 2);
      s[0] = 0.1 * gg * gg + 0.9 * s[0];
      s[1] = 0.1 * gg + 0.9 * s[1];
      s[2] = 0.7 * s[2] - lr * gg / Math.sqrt(s[0] - s[1] * s[1] + 1e-8);
      return w + s[2];
    },
    {},
    1e-4,
  );
  check(new optimizer.AdaGrad({ learningRate: 0.1, wd, rescaleGrad: 2 }), (w, g, s) => {
    const gg = 2 * g;
    s[0] += gg * gg;
    return w - 0.1 * 0.5 * (gg / Math.sqrt(s[0] + 1e-7) + wd * 0 * w);
  }, { lrMult: 0.5, wdMult: 0 });
});

Deno.test("a schedule changes the rate without compiling another update program", () => {
  const sched = new lrScheduler.FactorScheduler(1, { factor: 0.5 });
  const opt = new optimizer.SGD({ learningRate: 1, lrScheduler: sched });
  assert.equal(sched.baseLr, 1);
  let w: Tensor = nd.array([0, 0]);
  const g = nd.array([1, 2]);
  w = opt.update(0, w, g, []).weight; // lr 1
  const compiled = programCacheStats().misses;
  w = opt.update(0, w, g, []).weight; // lr 0.5 (counted first, as MXNet: update 2 is past 1)
  w = opt.update(0, w, g, []).weight; // lr 0.25
  assert.equal(programCacheStats().misses, compiled);
  assertClose(vals(w), [-1.75, -3.5]);
  assert.throws(() => opt.setLearningRate(0.1), /schedule/);
  const plain = new optimizer.SGD();
  plain.setLearningRate(0.2);
  assert.equal(plain.learningRate, 0.2);
});

Deno.test("schedules: factor floor, multi-factor, cosine with warmup", () => {
  const f = new lrScheduler.FactorScheduler(1, { factor: 0.1, baseLr: 1, stopFactorLr: 0.005 });
  assertClose([1, 2, 3, 4].map((n) => f.call(n)), [1, 0.1, 0.01, 0.005]);
  const m = new lrScheduler.MultiFactorScheduler([3, 6], {
    factor: 0.1,
    baseLr: 1,
    warmupSteps: 2,
    warmupBeginLr: 0.5,
  });
  assertClose([0, 1, 2, 3, 4, 7].map((n) => m.call(n)), [0.5, 0.75, 1, 1, 0.1, 0.01]);
  const c = new lrScheduler.CosineScheduler(4, { baseLr: 2, finalLr: 1 });
  assertClose([0, 1, 2, 3, 4, 9].map((n) => c.call(n)), [
    2,
    1 + (1 + Math.cos(Math.PI / 4)) / 2,
    1.5,
    1 + (1 + Math.cos(3 * Math.PI / 4)) / 2,
    1,
    1,
  ]);
  assert.throws(() => new lrScheduler.CosineScheduler(2, { warmupSteps: 2 }));
  assert.throws(() => optimizer.create("lamb"), /unknown optimizer/);
});
