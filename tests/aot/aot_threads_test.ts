/**
 * The artifact runtime's worker pool under failure, as the JIT pool (tests/lower/
 * thread_pool_test.ts): a worker that stalls a run is replaced and never writes into memory a
 * later run reads; a worker that dies is replaced; either way the answers stay right, and the
 * model gets its threads back once new workers are up.
 */
import { compile, type Manifest } from "../../compiler/aot/mod.ts";
import { deflate, toBase64 } from "../../compiler/aot/emit.ts";
import { artifactRuntime } from "../../compiler/aot/runtime.ts";
import { SIGIL_VERSION } from "../../compiler/aot/version.ts";
import { nd, nn, type Tensor, wasmEngine } from "../../mod.ts";
import { assert } from "../util.ts";
import {
  checkDoubled,
  doublingBytes,
  N,
  scribblingBytes,
  until,
  Y,
} from "../lower/stall_harness.ts";

/** A constant after x and y, returned as output `c` (the memory read where it lies). */
const C = new Float32Array(16).map((_, i) => i * 1.5 - 7);

/**
 * An artifact runtime of y = 2·x in one split step whose worker part never finishes, with a
 * constant `c` in its memory read back as a second output.
 */
async function stallingArtifact() {
  const modules = [doublingBytes(0, N / 2), scribblingBytes(N / 2, N), doublingBytes(0, N)];
  const code = new Uint8Array(modules.reduce((a, m) => a + m.length, 0));
  const spans: [number, number][] = [];
  let at = 0;
  for (const m of modules) {
    code.set(m, at);
    spans.push([at, m.length]);
    at += m.length;
  }
  const manifest: Manifest = {
    format: 1,
    sigil: SIGIL_VERSION,
    target: "wasm",
    graphHash: "0".repeat(64),
    threads: 2,
    inputs: [{ name: "x", shape: [N], dtype: "float32" }],
    outputs: [
      { name: "y", shape: [N], dtype: "float32" },
      { name: "c", shape: [C.length], dtype: "float32" },
    ],
    batchSizes: [N],
    modules: spans,
    codeBytes: code.length,
    weights: "embed",
    variants: [{
      simd: "baseline",
      weightsFile: "model.bin",
      weightsBytes: C.byteLength,
      programs: [{
        batch: N,
        memoryBytes: 2 * N * 4 + C.byteLength,
        shared: true,
        inputs: [[0, 0, N]],
        outputs: [[Y, N], [2 * Y, C.length]],
        outputShapes: [[N], [C.length]],
        constants: [[2 * Y, 0, C.byteLength]],
        steps: [[1, [0, 1], [[], []], 2, []]],
      }],
    }],
  };
  const weights = toBase64(new Uint8Array(C.buffer));
  return artifactRuntime(
    manifest,
    toBase64(await deflate(code)),
    { "model.bin": weights },
    "file:///",
  );
}

Deno.test("artifact: a stalled worker is replaced and no later run reads the memory it writes", async () => {
  const { load } = await stallingArtifact();
  const model = await load({ stallMs: 150 });
  // A WASM model runs synchronously.
  // ... and over every fresh memory the constant is in place.
  const run = (x: Float32Array) => {
    const out = model.run({ x }) as Record<string, Float32Array>;
    assert.deepStrictEqual(out.c, C);
    return out.y;
  };
  try {
    assert.ok(model.threaded);
    assert.equal(model.metadata.threads, 2);
    const x = new Float32Array(N).map((_, i) => i % 97);
    // The worker never finishes its part: the run gives up on it after the stall limit,
    // replaces the workers and repeats on this thread over a fresh memory.
    checkDoubled(run(x), x, "the stalled run");
    assert.equal(model.restarts, 1);
    assert.ok(!model.threaded);
    // The old worker may still be scribbling over the old memory; runs on this thread, with
    // no turn of the event loop in between, must not see it.
    for (let r = 0; r < 300; r++) {
      const xr = new Float32Array(N).map((_, i) => (i * (r + 3)) % 101 - 50);
      checkDoubled(run(xr), xr, `run ${r} after the stall`);
    }
    // New workers come up holding the fresh memory; the part stalls again, and is repaired
    // again.
    await until(() => model.threaded, "the replaced workers start");
    checkDoubled(run(x), x, "the second stalled run");
    assert.equal(model.restarts, 2);
    const into = { y: new Float32Array(N), c: new Float32Array(C.length) };
    for (let r = 0; r < 50; r++) {
      model.runRaw({ x }, into);
      checkDoubled(into.y, x, `runRaw ${r}`);
      assert.deepStrictEqual(into.c, C);
    }
  } finally {
    model.dispose();
  }
});

Deno.test("artifact: a worker that dies is replaced, and the model gets its threads back", async () => {
  const net = new nn.HybridSequential().add(
    new nn.Conv2D(32, 3, { padding: 1, activation: "relu" }),
    new nn.Conv2D(32, 3, { padding: 1 }),
    new nn.Dense(10),
  );
  net.initialize({ seed: 9 });
  const artifact = await compile(net, {
    inputs: { data: [1, 3, 32, 32] },
    threads: 2,
    simd: "baseline",
    weights: "embed",
    minify: false,
  });
  assert.ok(artifact.manifest.variants[0].programs[0].steps.some((s) => s[0] === 1));
  const dir = await Deno.makeTempDir({ prefix: "sigil-aot-threads-" });
  try {
    await artifact.write(dir);
    const { load } = await import(`file://${dir}/model.js`);
    const model = await load();
    assert.ok(model.threaded);
    const x = nd.random.uniform(-1, 1, [1, 3, 32, 32], { seed: 2 });
    net.hybridize({ engine: wasmEngine({ threads: 2, relaxedSimd: false }) });
    const want = (net.call(x) as Tensor).dataSync() as Float32Array;
    const data = x.dataSync() as Float32Array;
    const run = () => Object.values(model.run({ data }))[0] as Float32Array;
    assert.deepStrictEqual(run(), want);
    model[Symbol.for("sigil.artifact.crashWorker")](0);
    await until(() => model.restarts === 1, "the model noticed the dead worker");
    assert.deepStrictEqual(run(), want); // on this thread, or on the new worker
    await until(() => model.threaded, "new workers start");
    for (let i = 0; i < 20; i++) assert.deepStrictEqual(run(), want);
    assert.equal(model.restarts, 1);
    model.dispose();
    assert.ok(!model.threaded);
    assert.deepStrictEqual(run(), want);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
