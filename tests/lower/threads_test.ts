/**
 * Worker threads for the WASM executor: programs compiled for 2 threads run their split
 * steps across a worker over shared memory and give the one-thread program's outputs bit for
 * bit (random graphs from the testing module's arbitraries, and a large product); runs before
 * the workers are ready, and after the pool is gone, fall back to the calling thread.
 */
import fc from "npm:fast-check@^4";
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { nd, sym } from "../../mod.ts";
import { BackendError } from "../../runtime/errors.ts";
import {
  compileHelper,
  ConstantJobs,
  getDefaultThreads,
  hardwareThreads,
  KernelWarmer,
  kernelWarmer,
  poolFor,
  runDeriveOps,
  setDefaultThreads,
  setKernelWarming,
  startThreads,
  ThreadPool,
  threadsSupported,
} from "../../runtime/backends/wasm/threads.ts";
import { wasmEngine } from "../../compiler/lower/wasm/engine.ts";
import type { Symbol } from "../../compiler/symbol.ts";
import {
  winogradWeightKernel,
  winogradWeightModule,
} from "../../compiler/lower/wasm/winograd_weights.ts";
import { graphOf } from "../../compiler/passes/pass.ts";
import { doublingBytes, N, scribblingBytes, until } from "./stall_harness.ts";
import { WasmExecutor } from "../../runtime/backends/wasm/executor.ts";
import { arbGraph, bindRandomly, evaluateGraph } from "../../testing/mod.ts";
import { assert, assertClose } from "../util.ts";

Deno.test("this runtime supports threads; the default is every core", () => {
  assert.ok(threadsSupported());
  assert.ok(hardwareThreads() >= 1);
  assert.equal(getDefaultThreads(), Math.min(16, hardwareThreads()));
  setDefaultThreads(3);
  assert.equal(getDefaultThreads(), 3);
  setDefaultThreads(Math.min(16, hardwareThreads()));
  assert.throws(() => setDefaultThreads(0), BackendError);
  assert.throws(() => new ThreadPool(1.5), BackendError);
  assert.throws(
    () => compileWasm(sym.var("x"), {}, { x: [2] }, { threads: 0 }),
    /compileWasm: threads must be an integer/,
  );
});

Deno.test("a 2-thread product: split across the worker, same bits as one thread", async () => {
  const a = nd.random.uniform(-1, 1, [96, 200], { seed: 1 });
  const b = nd.random.uniform(-1, 1, [200, 130], { seed: 2 });
  const y = sym.dot(sym.var("a"), sym.var("b"), { name: "d" });
  const one = compileWasm(y, {}, { a: a.shape, b: b.shape }, { threads: 1 });
  const two = compileWasm(y, {}, { a: a.shape, b: b.shape }, { threads: 2 });
  assert.equal(one.threads, 1);
  assert.equal(two.threads, 2);
  const step = two.program.steps.find((s) => s.kind === "split");
  assert.ok(step && step.kind === "split" && step.modules.length === 2);
  // Before the worker holds the program, the calling thread runs both parts.
  const early = two.run({ a, b })[0].dataSync();
  await two.ready();
  const [got] = two.run({ a, b });
  const [want] = one.run({ a, b });
  assert.deepEqual(got.dataSync(), want.dataSync());
  assert.deepEqual(early, want.dataSync());
  const [ref] = await y.eval({ a, b });
  assertClose(got, Array.from(ref.dataSync() as Float32Array), { rtol: 1e-4, atol: 1e-5 });
  two.dispose();
  assert.deepEqual(two.run({ a, b })[0].dataSync(), want.dataSync());
});

Deno.test("an executor over a terminated pool runs on the calling thread", async () => {
  const pool = new ThreadPool(2);
  const x = nd.random.uniform(-1, 1, [64, 300], { seed: 3 });
  const y = sym.Activation(sym.broadcast_mul(sym.var("x"), sym.var("x")), { act_type: "relu" });
  const compiled = compileWasm(y, {}, { x: x.shape }, { threads: 2, forceSplit: true });
  const exec = new WasmExecutor(compiled.program, { pool });
  await exec.ready();
  assert.ok(exec.threaded);
  const input = { x: new Float32Array(x.dataSync() as Float32Array) };
  const first = exec.run(input)[0];
  await pool.terminate();
  assert.ok(!exec.threaded);
  assert.deepEqual(exec.run(input)[0], first);
  assert.throws(() => new WasmExecutor({ ...compiled.program, shared: false }, { pool }));
  compiled.dispose();
});

Deno.test("property: random graphs on 2 threads give the 1-thread bits and the interpreter's values", async () => {
  let split = 0;
  await fc.assert(
    fc.asyncProperty(
      arbGraph({ maxNodes: 6 }),
      fc.integer({ min: 0, max: 1 << 30 }),
      async (g, seed) => {
        if (Object.values(g.inputTypes).some((t) => t !== "float32")) return;
        const { graph, inputs } = bindRandomly(g, seed);
        let one, two;
        try {
          one = compileWasm(graph.symbol, graph.params, g.inputShapes, { threads: 1 });
          two = compileWasm(graph.symbol, graph.params, g.inputShapes, {
            threads: 2,
            forceSplit: true,
          });
        } catch (e) {
          if (e instanceof BackendError) return; // a non-float32 value inside the graph
          throw e;
        }
        await two.ready();
        split += two.program.steps.filter((s) => s.kind === "split").length;
        const a = one.run(inputs);
        const b = two.run(inputs);
        const expected = evaluateGraph(graph, inputs);
        b.forEach((t, i) => {
          assert.deepEqual(t.dataSync(), a[i].dataSync());
          assertClose(t, Array.from(expected[i].dataSync() as Float32Array), {
            rtol: 1e-4,
            atol: 1e-5,
          });
        });
        two.dispose();
      },
    ),
    { numRuns: 60, seed: 20261128 },
  );
  console.log(`${split} split steps ran on 2 threads`);
  assert.ok(split > 30, `only ${split} split steps`);
});

Deno.test("property: random graphs with large shapes split across 2 threads give the 1-thread bits", async () => {
  // Each part of a split large kernel still runs its vector main loop (small shapes split
  // into parts of a few elements, all remainder).
  let split = 0;
  await fc.assert(
    fc.asyncProperty(
      arbGraph({ maxNodes: 3, maxDim: 64, maxSize: 1 << 14 }),
      fc.integer({ min: 0, max: 1 << 30 }),
      async (g, seed) => {
        if (Object.values(g.inputTypes).some((t) => t !== "float32")) return;
        const { graph, inputs } = bindRandomly(g, seed);
        let one, two;
        try {
          one = compileWasm(graph.symbol, graph.params, g.inputShapes, { threads: 1 });
          two = compileWasm(graph.symbol, graph.params, g.inputShapes, {
            threads: 2,
            forceSplit: true,
          });
        } catch (e) {
          if (e instanceof BackendError) return; // a non-float32 value inside the graph
          throw e;
        }
        await two.ready();
        split += two.program.steps.filter((s) => s.kind === "split").length;
        const a = one.run(inputs);
        two.run(inputs).forEach((t, i) => assert.deepEqual(t.dataSync(), a[i].dataSync()));
        two.dispose();
      },
    ),
    { numRuns: 25, seed: 20261204 },
  );
  assert.ok(split >= 5, `only ${split} steps were split`);
});

Deno.test("stress: thousands of runs of two programs sharing the pool keep their bits", async () => {
  // 1x1 convolutions of ~0.2 ms: the size at which a protocol race (a worker counting a part
  // twice, then the caller waiting forever) showed up about once in 2000 runs.
  const x = nd.random.uniform(-1, 1, [1, 48, 28, 28], { seed: 9 });
  const build = (k: number) =>
    sym.Convolution(sym.var("x"), { kernel: [1, 1], num_filter: k, name: `c${k}` });
  const params = (k: number) => ({
    [`c${k}_weight`]: nd.random.uniform(-1, 1, [k, 48, 1, 1], { seed: k }),
    [`c${k}_bias`]: nd.zeros([k]),
  });
  const opts = { threads: 2, forceSplit: true } as const;
  const a = compileWasm(build(24), params(24), { x: x.shape }, opts);
  const b = compileWasm(build(40), params(40), { x: x.shape }, opts);
  const one = compileWasm(build(24), params(24), { x: x.shape }, { threads: 1 });
  await Promise.all([a.ready(), b.ready()]);
  const input = { x: new Float32Array(x.dataSync() as Float32Array) };
  const wantA = one.runRaw(input)[0];
  const wantB = b.runRaw(input)[0];
  for (let i = 0; i < 3000; i++) {
    // Now and then a pause longer than the workers' linger, so they go back to their event
    // loop between runs and must pick the next command up from there.
    if (i % 97 === 0) await new Promise((r) => setTimeout(r, 8));
    if (i % 5 === 0) one.runRaw(input);
    const got = (i % 2 ? a : b).runRaw(input)[0];
    if (i % 500 === 0 || i === 2999) assert.deepEqual(got, i % 2 ? wantA : wantB);
  }
  a.dispose();
  b.dispose();
});

Deno.test("once the pool is up, a new program gets threads without the caller yielding", async () => {
  const y = sym.dot(sym.var("a"), sym.var("b"), { name: "d" });
  const shapes = { a: [64, 64], b: [64, 64] };
  const first = compileWasm(y, {}, shapes, { threads: 2, forceSplit: true });
  await first.ready();
  const second = compileWasm(y, {}, shapes, { threads: 2, forceSplit: true });
  // Block this thread (no event-loop turn) until the worker has registered the program.
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const t0 = performance.now();
  while (!second.threadsReady && performance.now() - t0 < 5000) Atomics.wait(flag, 0, 0, 5);
  assert.ok(second.threadsReady, "the worker took the program while the caller was busy");
  first.dispose();
  second.dispose();
});

Deno.test("warming kernels ahead of the first run leaves every run's bits as they were", async () => {
  const a = nd.random.uniform(-1, 1, [48, 80], { seed: 7 });
  const b = nd.random.uniform(-1, 1, [80, 56], { seed: 8 });
  const y = sym.relu(sym.dot(sym.var("a"), sym.var("b")));
  const shapes = { a: a.shape, b: b.shape };
  setKernelWarming(false);
  let want: Float32Array;
  try {
    want = compileWasm(y, {}, shapes, { threads: 1 }).run({ a, b })[0].dataSync() as Float32Array;
  } finally {
    setKernelWarming(true);
  }
  // Warmed (asked for: by default a 2-core machine does not warm): each kernel (and each part
  // of a split one) runs on the warmer with the program's arguments over a memory of its own
  // while the compile goes on.
  const warmer = kernelWarmer();
  assert.ok(warmer, "a 2-core machine with SharedArrayBuffer warms when asked");
  const before = warmer.posted;
  let one, two;
  try {
    one = compileWasm(y, {}, shapes, { threads: 1 });
    two = compileWasm(y, {}, shapes, { threads: 2, forceSplit: true });
  } finally {
    setKernelWarming("auto");
  }
  await until(() => warmer.finished >= warmer.posted, "the warmer ran what it was given");
  assert.ok(warmer.posted > before || warmer.finished > 0, "kernels were handed to the warmer");
  await two.ready();
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(one.run({ a, b })[0].dataSync(), want);
    assert.deepEqual(two.run({ a, b })[0].dataSync(), want);
  }
  two.dispose();
});

Deno.test("a shared program memory faulted in by the warmer keeps every constant written", () => {
  // Winograd and packed weights are written into the program's memory while the warmer faults
  // the same pages in from its thread: the outputs must be those of a compile without it.
  const x = nd.random.uniform(-1, 1, [1, 8, 12, 12], { seed: 11 });
  const w = nd.random.uniform(-1, 1, [16, 8, 3, 3], { seed: 12 });
  const w2 = nd.random.uniform(-1, 1, [8, 16, 1, 1], { seed: 13 });
  const y = sym.Convolution(
    sym.relu(
      sym.Convolution(sym.var("x"), {
        kernel: [3, 3],
        pad: [1, 1],
        num_filter: 16,
        no_bias: true,
        name: "c1",
      }),
    ),
    { kernel: [1, 1], num_filter: 8, no_bias: true, name: "c2" },
  );
  const params = { c1_weight: w, c2_weight: w2 };
  setKernelWarming(false);
  let want: Float32Array;
  try {
    want = compileWasm(y, params, { x: x.shape }, { threads: 2, forceSplit: true }).run({ x })[0]
      .dataSync() as Float32Array;
  } finally {
    setKernelWarming(true);
  }
  try {
    for (let i = 0; i < 3; i++) {
      const c = compileWasm(y, params, { x: x.shape }, { threads: 2, forceSplit: true });
      assert.deepEqual(c.run({ x })[0].dataSync(), want);
      c.dispose();
    }
  } finally {
    setKernelWarming("auto");
  }
});

Deno.test("a warmer stuck in a kernel is replaced, and the next kernels still run", async () => {
  const warmer = new KernelWarmer({ stallMs: 500 });
  try {
    // A kernel that does not end (it scribbles for far longer than any test runs).
    warmer.warm([{
      module: new WebAssembly.Module(scribblingBytes(0, N)),
      args: [],
      bytes: 2 * N * 4,
      shared: true,
    }]);
    await until(() => warmer.restarts >= 1, "the stuck worker was replaced");
    assert.strictEqual(warmer.posted, 0, "what was queued there went with it");
    const doubling = new WebAssembly.Module(doublingBytes(0, N));
    // On a loaded machine a new worker may itself look stuck (off the CPU for longer than
    // the stall limit) and be replaced, its kernel dropped: hand the kernel over until one
    // runs it.
    const task = { module: doubling, args: [], bytes: 2 * N * 4, shared: true };
    let given = 0;
    await until(() => {
      if (warmer.finished >= 1) return true;
      if (warmer.posted === 0 && given++ < 100) warmer.warm([task]);
      return false;
    }, "a new worker ran the next kernel");
  } finally {
    await warmer.terminate();
  }
});

Deno.test("warming is off where asked: nothing is handed to the warmer", () => {
  const y = sym.relu(sym.var("x"));
  const warmer = kernelWarmer()!;
  setKernelWarming(false);
  try {
    assert.strictEqual(kernelWarmer(), undefined);
    const before = warmer.posted;
    compileWasm(y, {}, { x: [64, 64] }, { threads: 1 }).dispose();
    assert.strictEqual(warmer.posted, before);
  } finally {
    setKernelWarming(true);
  }
  try {
    const engine = wasmEngine({ threads: 1, warm: false });
    const before = warmer.posted;
    engine.compile(graphOf(sym.sigmoid(sym.var("x"))), {
      inputs: { x: { shape: [32, 32], dtype: "float32" } },
    });
    assert.strictEqual(warmer.posted, before);
  } finally {
    setKernelWarming("auto");
  }
});

Deno.test("by default kernels are warmed only where a core is spare beyond the program's threads and the warmer", () => {
  const cores = hardwareThreads();
  for (const threads of [1, 2, 3]) {
    const warmer = kernelWarmer(threads);
    assert.strictEqual(
      warmer !== undefined,
      cores >= threads + 2,
      `${threads} threads, ${cores} cores`,
    );
  }
  setKernelWarming(true);
  try {
    assert.ok(kernelWarmer(cores), "asked for, it warms with every core busy");
  } finally {
    setKernelWarming("auto");
  }
  if (cores !== 2) return;
  const warmer = kernelWarmer()!;
  const before = warmer.posted;
  compileWasm(sym.relu(sym.var("x")), {}, { x: [64, 64] }, { threads: 1 }).dispose();
  assert.strictEqual(warmer.posted, before, "no spare core: nothing handed to the warmer");
});

Deno.test("a pool started by a compile leaves the first run to the calling thread and starts its workers at the second, with no event-loop turn", async () => {
  // Three threads: a pool nothing else in this file starts, so it is created by this compile.
  // In Deno creating a worker holds the calling thread until it is up, so the pool's workers
  // start on a later event-loop turn, or when a program that ran before runs again.
  const a = nd.random.uniform(-1, 1, [96, 120], { seed: 9 });
  const b = nd.random.uniform(-1, 1, [120, 72], { seed: 10 });
  const y = sym.dot(sym.var("a"), sym.var("b"));
  const shapes = { a: a.shape, b: b.shape };
  const inputs = {
    a: new Float32Array(a.dataSync() as Float32Array),
    b: new Float32Array(b.dataSync() as Float32Array),
  };
  const want = compileWasm(y, {}, shapes, { threads: 1 }).runRaw(inputs)[0];
  const three = compileWasm(y, {}, shapes, { threads: 3, forceSplit: true });
  const pool = poolFor(3)!;
  assert.strictEqual(pool.workerProgramCounts().length, 0, "no worker started during the compile");
  assert.deepEqual(three.runRaw(inputs)[0], want);
  assert.strictEqual(pool.workerProgramCounts().length, 0, "nor during the first run");
  assert.deepEqual(three.runRaw(inputs)[0], want);
  assert.strictEqual(pool.workerProgramCounts().length, 2, "the second run started both");
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const t0 = performance.now();
  while (!three.threadsReady && performance.now() - t0 < 10000) Atomics.wait(flag, 0, 0, 5);
  assert.ok(three.threadsReady, "the new workers took the program while the caller was busy");
  assert.deepEqual(three.runRaw(inputs)[0], want);
  three.dispose();
  await pool.terminate();
});

Deno.test("startThreads: every worker up when it resolves; nothing to start for one thread", async () => {
  await startThreads(1);
  await assert.rejects(() => startThreads(0), BackendError);
  await startThreads(4);
  const pool = poolFor(4)!;
  assert.ok(pool.running, "the workers are up");
  assert.strictEqual(pool.workerProgramCounts().length, 3);
  // A program compiled now gets its threads at its first run once the workers hold it.
  const y = sym.dot(sym.var("a"), sym.var("b"));
  const c = compileWasm(y, {}, { a: [32, 32], b: [32, 32] }, { threads: 4, forceSplit: true });
  await c.ready();
  assert.ok(c.threadsReady);
  c.dispose();
  await pool.terminate();
});

Deno.test("a pool's deferred workers start on later event-loop turns by themselves", async () => {
  const pool = new ThreadPool(3);
  assert.strictEqual(pool.workerProgramCounts().length, 0);
  await pool.started;
  assert.strictEqual(pool.workerProgramCounts().length, 2);
  assert.ok(pool.running);
  await pool.terminate();
});

Deno.test("Winograd weights computed on the pool's worker during the compile give the one-thread program's bits", async () => {
  // F(4×4) on the 14×14 maps, F(2×2) on the 7×7 ones, a BatchNorm folded into the first.
  const x = nd.random.uniform(-1, 1, [1, 16, 14, 14], { seed: 21 });
  const conv = (data: Symbol, name: string, filters: number) =>
    sym.Convolution(data, {
      kernel: [3, 3],
      pad: [1, 1],
      num_filter: filters,
      no_bias: true,
      name,
    });
  const bn = sym.BatchNorm(conv(sym.var("x"), "c1", 24), { fix_gamma: false, name: "bn" });
  const pooled = sym.Pooling(sym.relu(bn), { kernel: [2, 2], stride: [2, 2], pool_type: "max" });
  const y = conv(sym.relu(conv(pooled, "c2", 40)), "c3", 40);
  const params = {
    c1_weight: nd.random.uniform(-1, 1, [24, 16, 3, 3], { seed: 22 }),
    bn_gamma: nd.random.uniform(0.5, 1.5, [24], { seed: 23 }),
    bn_beta: nd.random.uniform(-1, 1, [24], { seed: 24 }),
    bn_moving_mean: nd.random.uniform(-1, 1, [24], { seed: 25 }),
    bn_moving_var: nd.random.uniform(0.5, 2, [24], { seed: 26 }),
    c2_weight: nd.random.uniform(-1, 1, [40, 24, 3, 3], { seed: 27 }),
    c3_weight: nd.random.uniform(-1, 1, [40, 40, 3, 3], { seed: 28 }),
  };
  const one = compileWasm(y, params, { x: x.shape }, { threads: 1 });
  const winograd = one.placement.filter((p) => p.label.includes("winograd F("));
  assert.ok(winograd.some((p) => p.label.includes("F(4x4")), "F(4×4) is taken");
  assert.ok(winograd.some((p) => p.label.includes("F(2x2")), "F(2×2) is taken");
  const want = one.run({ x })[0].dataSync() as Float32Array;
  for (const forceSplit of [false, true]) {
    const two = compileWasm(y, params, { x: x.shape }, { threads: 2, forceSplit });
    await two.ready();
    for (let i = 0; i < 2; i++) assert.deepEqual(two.run({ x })[0].dataSync(), want);
    two.dispose();
  }
  // A one-thread program whose compile hands the transforms to a compile helper.
  assert.strictEqual(one.program.shared, false, "no helper by default on this many cores");
  const helped = compileWasm(y, params, { x: x.shape }, { threads: 1, compileHelper: true });
  assert.strictEqual(helped.program.shared, hardwareThreads() >= 2);
  assert.strictEqual(helped.threads, 1);
  for (let i = 0; i < 2; i++) assert.deepEqual(helped.run({ x })[0].dataSync(), want);
});

Deno.test("a compile helper: only for one-thread programs, from three cores unless asked for, and it goes when retired", async () => {
  const cores = hardwareThreads();
  assert.strictEqual(compileHelper(2, true), undefined);
  assert.strictEqual(compileHelper(1, false), undefined);
  const auto = compileHelper(1);
  assert.strictEqual(auto !== undefined, cores >= 3);
  await auto?.retire();
  const helper = compileHelper(1, true);
  assert.strictEqual(helper !== undefined, cores >= 2);
  if (!helper) return;
  const memory = new WebAssembly.Memory({ initial: 4, maximum: 4, shared: true });
  new Int32Array(memory.buffer)[5000] = 7;
  helper.touch(memory, 0, 4 * 65536);
  await helper.retire();
  assert.ok(helper.retired);
  assert.strictEqual(new Int32Array(memory.buffer)[5000], 7, "touching changes no value");
  assert.strictEqual(helper.postDerive(0, {}), false, "a retired helper takes no job");
});

Deno.test("constant jobs: a pool's worker computes a job into the shared memory; finish() waits for it", async () => {
  const pool = new ThreadPool(2);
  try {
    await pool.started;
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
    // One 3×3 filter with only its centre tap to its F(2×2) tile (16 floats at byte 4096):
    // stage the 9 weights and 1 factor at the scratch (byte 0), then one run of the kernel.
    const values = Float32Array.of(0, 0, 0, 0, 1, 0, 0, 0, 0);
    const factors = Float64Array.of(1);
    const ops = Int32Array.of(0, 0, 9, 0, 1, 1, 0, 36, 48, 64, 64, 4096, 4, 1, 1);
    const want = [0, 0, 0, 0, 0, 0.25, -0.25, 0, 0, -0.25, 0.25, 0, 0, 0, 0, 0];
    const out = new Float32Array(memory.buffer, 4096, 16);
    let local = 0;
    const jobs = new ConstantJobs(pool, memory);
    const module = winogradWeightModule(2, true);
    assert.ok(jobs.post(0, { module, scratch: 0, values, factors, ops }, () => local++));
    await until(() => out[5] !== 0, "the worker computed the job");
    jobs.finish();
    assert.strictEqual(local, 0, "nothing left for the calling thread");
    assert.deepEqual([...out], want);
    // What no worker started runs on the calling thread, with the same result.
    out.fill(0);
    const run = () =>
      runDeriveOps(winogradWeightKernel(memory, 2), memory, 1024, values, factors, ops);
    const mine = new ConstantJobs(pool, memory);
    mine.post(0, { module, scratch: 0, values, factors, ops }, () => (local++, run()));
    mine.finish();
    assert.deepEqual([...out], want);
    await pool.terminate();
    assert.ok(
      !mine.post(0, { module, scratch: 0, values, factors, ops }, run),
      "no workers: no job",
    );
  } finally {
    await pool.terminate();
  }
});
