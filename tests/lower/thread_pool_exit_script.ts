/**
 * Run as a subprocess by thread_pool_test.ts: uses two threads, has the worker die and be
 * replaced, runs again, and then simply ends, without terminating the pool. The process must
 * exit by itself.
 */
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { nd, sym } from "../../mod.ts";
import { poolFor } from "../../runtime/backends/wasm/threads.ts";

const a = nd.random.uniform(-1, 1, [48, 64], { seed: 1 });
const b = nd.random.uniform(-1, 1, [64, 40], { seed: 2 });
const y = sym.dot(sym.var("a"), sym.var("b"));
const shapes = { a: a.shape, b: b.shape };
const inputs = {
  a: new Float32Array(a.dataSync() as Float32Array),
  b: new Float32Array(b.dataSync() as Float32Array),
};
const one = compileWasm(y, {}, shapes, { threads: 1 });
const two = compileWasm(y, {}, shapes, { threads: 2, forceSplit: true });
await two.ready();
const want = one.runRaw(inputs)[0];
const pool = poolFor(2)!;
await pool.crashWorker(0);
while (pool.restarts === 0) await new Promise((r) => setTimeout(r, 10));
await two.ready();
const got = two.runRaw(inputs)[0];
const same = got.every((v, i) => v === want[i]);
console.log(
  `threaded ${two.threadsReady}, restarts ${pool.restarts}, outputs ${same ? "equal" : "differ"}`,
);
// A program compiled and never run: its kernels are still with the kernel warmer when the
// script ends, and the warmer must not hold the process open once they are done.
compileWasm(sym.relu(sym.dot(sym.var("a"), sym.var("b"))), {}, shapes, { threads: 1 });
// A two-thread program run at once, while its kernels are still queued on the warmer (which
// then stops): the warmer must not hold the process open either.
const deep = [1, 2, 3, 4, 5, 6].reduce(
  (x: ReturnType<typeof sym.var>, i) => sym.tanh(sym.dot(x, sym.var(`w${i}`))),
  sym.var("a"),
);
const deepShapes: Record<string, number[]> = { a: [48, 64] };
for (let i = 1; i <= 6; i++) deepShapes[`w${i}`] = [64, 64];
const deepInputs: Record<string, Float32Array> = { a: inputs.a };
for (let i = 1; i <= 6; i++) deepInputs[`w${i}`] = new Float32Array(64 * 64).fill(0.01);
compileWasm(deep, {}, deepShapes, { threads: 2, forceSplit: true }).runRaw(deepInputs);
// A one-thread program compiled with a compile helper (a worker that computes its Winograd
// weights): the helper goes when the compile ends, and must not hold the process open.
const wx = nd.random.uniform(-1, 1, [1, 8, 12, 12], { seed: 3 });
const wconv = sym.Convolution(sym.var("x"), {
  kernel: [3, 3],
  pad: [1, 1],
  num_filter: 16,
  no_bias: true,
  name: "wc",
});
const wparams = { wc_weight: nd.random.uniform(-1, 1, [16, 8, 3, 3], { seed: 4 }) };
const helped = compileWasm(wconv, wparams, { x: wx.shape }, { threads: 1, compileHelper: true });
const alone = compileWasm(wconv, wparams, { x: wx.shape }, { threads: 1, compileHelper: false });
const helpedOut = helped.run({ x: wx })[0].dataSync() as Float32Array;
const aloneOut = alone.run({ x: wx })[0].dataSync() as Float32Array;
console.log(
  `helped ${helped.program.shared ? "shared" : "unshared"}, outputs ${
    helpedOut.every((v, i) => v === aloneOut[i]) ? "equal" : "differ"
  }`,
);
