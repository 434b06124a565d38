/**
 * The thread pool's failure modes: a worker that stalls a run (its part never finishes) is
 * replaced and no later run reads what it keeps writing; the programs workers hold stay
 * bounded however many graphs are compiled and dropped; a worker that dies is replaced; and a
 * process that used threads exits by itself.
 */
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { nd, sym } from "../../mod.ts";
import { WasmExecutor, type WasmProgram } from "../../runtime/backends/wasm/executor.ts";
import { hardwareThreads, poolFor, ThreadPool } from "../../runtime/backends/wasm/threads.ts";
import { assert } from "../util.ts";
import { checkDoubled, doublingBytes, N, scribblingBytes, until, Y } from "./stall_harness.ts";

/** `run()`: y[i] = 2·x[i] for i in [lo, hi). */
const doubling = (lo: number, hi: number) => new WebAssembly.Module(doublingBytes(lo, hi));
/** `run()`: writes -1 over y[lo, hi) again and again, for far longer than any test runs. */
const scribbling = (lo: number, hi: number) => new WebAssembly.Module(scribblingBytes(lo, hi));

/** y = 2·x in one split step whose worker part never finishes (it scribbles over y instead). */
function stallingProgram(): WasmProgram {
  return {
    memoryBytes: 2 * N * 4,
    shared: true,
    inputs: { x: { ptr: 0, shape: [N] } },
    outputs: [{ ptr: Y, shape: [N] }],
    constants: [],
    steps: [{
      kind: "split",
      modules: [doubling(0, N / 2), scribbling(N / 2, N)],
      args: [[], []],
      whole: { module: doubling(0, N), args: [] },
      label: "y = 2x, stalling",
    }],
  };
}

Deno.test("a stalled worker is replaced and no later run reads the memory it writes", async () => {
  const pool = new ThreadPool(2, { stallMs: 150 });
  try {
    const exec = new WasmExecutor(stallingProgram(), { pool });
    await exec.ready();
    assert.ok(exec.threaded);
    const x = new Float32Array(N).map((_, i) => i % 97);
    // The worker never finishes its part: the run gives up on it after the stall limit,
    // replaces the workers and repeats on this thread.
    checkDoubled(exec.run({ x })[0], x, "the stalled run");
    assert.equal(pool.restarts, 1);
    // The old worker may still be scribbling over the old memory; runs with no turn of the
    // event loop in between must not see it (on this thread, or on the new workers once they
    // hold the program, which stall again and are again replaced).
    for (let r = 0; r < 300; r++) {
      const xr = new Float32Array(N).map((_, i) => (i * (r + 3)) % 101 - 50);
      checkDoubled(exec.run({ x: xr })[0], xr, `run ${r} after the stall`);
    }
    // The new workers take the program again; it stalls again, and is again repaired.
    await exec.ready();
    assert.ok(exec.threaded, "the replaced workers hold the program");
    const restarts = pool.restarts;
    checkDoubled(exec.run({ x })[0], x, "the second stalled run");
    assert.equal(pool.restarts, restarts + 1);
    for (let r = 0; r < 50; r++) checkDoubled(exec.run({ x })[0], x, `run ${r}`);
    exec.dispose();
  } finally {
    await pool.terminate();
  }
});

Deno.test("a worker that dies is replaced, and programs get their threads back", async () => {
  const pool = new ThreadPool(2);
  try {
    const a = nd.random.uniform(-1, 1, [64, 96], { seed: 4 });
    const b = nd.random.uniform(-1, 1, [96, 80], { seed: 5 });
    const y = sym.dot(sym.var("a"), sym.var("b"));
    const shapes = { a: a.shape, b: b.shape };
    const one = compileWasm(y, {}, shapes, { threads: 1 });
    const two = compileWasm(y, {}, shapes, { threads: 2, forceSplit: true });
    const exec = new WasmExecutor(two.program, { pool });
    await exec.ready();
    const inputs = {
      a: new Float32Array(a.dataSync() as Float32Array),
      b: new Float32Array(b.dataSync() as Float32Array),
    };
    const want = one.runRaw(inputs)[0];
    assert.deepEqual(exec.run(inputs)[0], want);
    await pool.crashWorker(0);
    await until(() => pool.restarts === 1, "the pool noticed the dead worker");
    assert.deepEqual(exec.run(inputs)[0], want); // on this thread, or on the new worker
    await exec.ready();
    assert.ok(exec.threaded, "the new worker holds the program");
    for (let i = 0; i < 20; i++) assert.deepEqual(exec.run(inputs)[0], want);
    exec.dispose();
    two.dispose();
  } finally {
    await pool.terminate();
  }
});

Deno.test("programs the workers hold stay bounded when hundreds of graphs are dropped", async () => {
  const pool = poolFor(2)!;
  await pool.started;
  const before = pool.programCount;
  const graphs = 200;
  for (let k = 0; k < graphs; k++) {
    // Distinct graphs, each split across the worker, none kept nor disposed.
    const y = sym.FullyConnected(sym.var("x"), { num_hidden: 8 + k, name: "fc" });
    const params = { fc_weight: nd.ones([8 + k, 16]), fc_bias: nd.zeros([8 + k]) };
    const c = compileWasm(y, params, { x: [4, 16] }, { threads: 2, forceSplit: true });
    assert.ok(c.program.steps.some((s) => s.kind === "split"));
    c.runRaw({ x: new Float32Array(64) });
  }
  assert.ok(pool.programCount <= 64, `${pool.programCount} programs registered`);
  await until(
    () => pool.workerProgramCounts().every((n) => n === pool.programCount),
    () => `workers hold ${pool.workerProgramCounts()}, pool ${pool.programCount}`,
  );
  // Disposing gives the workers' copies back at once, whatever the pool's bound.
  const kept = Array.from({ length: 40 }, (_, k) => {
    const y = sym.FullyConnected(sym.var("x"), { num_hidden: 400 + k, name: "fc" });
    const params = { fc_weight: nd.ones([400 + k, 16]), fc_bias: nd.zeros([400 + k]) };
    return compileWasm(y, params, { x: [4, 16] }, { threads: 2, forceSplit: true });
  });
  const held = pool.programCount;
  for (const c of kept) c.dispose();
  assert.equal(pool.programCount, held - 40);
  // The workers follow the pool, which may drop more meanwhile: the 200 programs above are
  // garbage, and a collection's finalizers drop whichever of them are still registered (a
  // test that waited for exactly held - 40 failed whenever one ran here).
  await until(
    () => pool.workerProgramCounts().every((n) => n === pool.programCount),
    () => `workers hold ${pool.workerProgramCounts()} after disposing, pool ${pool.programCount}`,
  );
  assert.ok(pool.programCount <= held - 40);
  assert.ok(before <= 64);
});

Deno.test("a process that used threads, with a worker replaced, exits by itself", async () => {
  const script = new URL("./thread_pool_exit_script.ts", import.meta.url);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script.href],
    stdout: "piped",
    stderr: "piped",
    // Far above the seconds it takes: a hung process fails the test instead of hanging it.
    signal: AbortSignal.timeout(120_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(text, /threaded true, restarts 1, outputs equal/);
  // Where the runtime has two cores or more, the helper ran (else no helper: not shared).
  assert.match(
    text,
    hardwareThreads() >= 2 ? /helped shared, outputs equal/ : /helped unshared, outputs equal/,
  );
});

Deno.test("a pool takes compile jobs only once a worker exists", async () => {
  const pool = new ThreadPool(2);
  try {
    // In Deno the workers start on later event-loop turns: none exists yet, and a compile
    // computes its constants itself rather than lowering for workers that are not there.
    assert.equal(pool.deriving, false);
    assert.equal(pool.postDerive(0, {}), false);
    await pool.started;
    assert.equal(pool.deriving, true);
  } finally {
    await pool.terminate();
  }
  assert.equal(pool.deriving, false);
});
