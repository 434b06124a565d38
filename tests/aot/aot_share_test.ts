/**
 * Artifacts with both targets ship the parameters once: the WebGPU programs upload them as
 * they are, and the WASM constants made of them (packed for the sgemm, Winograd-transformed)
 * are derived at load from a small table of runs. The derivation is checked bit for bit at
 * compile time; here the artifact's WASM outputs are the JIT engine's bits for every variant,
 * its weight files are smaller than the two targets' apart, and damaged tables or files are
 * typed errors.
 */
import fc from "npm:fast-check@^4";
import { compile } from "../../compiler/aot/mod.ts";
import { deriveConstant } from "../../compiler/aot/runtime.ts";
import { compressRuns } from "../../compiler/aot/wasm_target.ts";
import { nd, nn, type Tensor, wasmEngine } from "../../mod.ts";
import { assert } from "../util.ts";

Deno.test("derive: runs compressed from any map give that map back", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 300 }),
      fc.oneof(
        fc.array(fc.integer({ min: -1, max: 299 }), { maxLength: 400 }),
        // Strided pieces with gaps, as packings are.
        fc.array(
          fc.record({
            gap: fc.integer({ min: 0, max: 3 }),
            len: fc.integer({ min: 1, max: 24 }),
            start: fc.integer({ min: 0, max: 299 }),
            stride: fc.integer({ min: -3, max: 40 }),
          }),
          { maxLength: 30 },
        ).map((pieces) =>
          pieces.flatMap(({ gap, len, start, stride }) => [
            ...Array(gap).fill(-1),
            ...Array.from({ length: len }, (_, i) => Math.abs(start + i * stride)),
          ])
        ),
      ),
      (size, raw) => {
        const map = Int32Array.from(raw, (v) => (v < 0 ? -1 : v % size));
        const src = Float32Array.from({ length: size }, (_, i) => i + 1);
        const out = new Float32Array(map.length);
        deriveConstant(0, src, compressRuns(map), out, 0);
        map.forEach((m, p) => assert.equal(out[p], m < 0 ? 0 : src[m], `position ${p}`));
      },
    ),
    { numRuns: 500 },
  );
  // A packing (panels of 4 rows, each column's rows in turn) is a few runs, not one a float.
  const m = 64, k = 48;
  const map = new Int32Array(m * k);
  let o = 0;
  for (let i0 = 0; i0 < m; i0 += 4) {
    for (let c = 0; c < k; c++) for (let r = 0; r < 4; r++) map[o++] = (i0 + r) * k + c;
  }
  assert.equal(compressRuns(map).length / 7, m / 4);
  assert.throws(
    () =>
      deriveConstant(
        0,
        new Float32Array(4),
        new Int32Array([0, 2, 3, 1, 1, 0, 3]),
        new Float32Array(4),
        0,
      ),
    RangeError,
  );
});

function net(): nn.HybridSequential {
  const n = new nn.HybridSequential().add(
    new nn.Conv2D(16, 3, { padding: 1, activation: "relu" }), // im2col (3 channels)
    new nn.BatchNorm(),
    new nn.Conv2D(16, 3, { padding: 1 }), // Winograd F(4×4)
    new nn.Conv2D(16, 3, { padding: 1, strides: 2 }), // packed for the sgemm
    new nn.Conv2D(24, 1), // a 1×1 convolution
    new nn.Conv2D(24, 3, { padding: 1, groups: 24 }), // depthwise
    new nn.Conv2D(32, 3, { padding: 1, activation: "relu" }), // Winograd F(2×2) (small map)
    new nn.Flatten(),
    new nn.Dense(10),
  );
  n.initialize({ seed: 21 });
  return n;
}

const weightBytes = (files: readonly { path: string; data: Uint8Array | string }[]) =>
  files.filter((f) => f.path.endsWith(".bin")).reduce((a, f) => a + f.data.length, 0);

Deno.test("wasm+webgpu artifact: parameters shipped once, WASM constants derived with the JIT's bits", async () => {
  const model = net();
  const shape = [1, 3, 16, 16];
  const options = { inputs: { data: shape }, threads: 2, minify: false } as const;
  const both = await compile(model, { ...options, target: ["wasm", "webgpu"] });
  const wasmOnly = await compile(model, { ...options, target: "wasm" });
  const gpuOnly = await compile(model, { ...options, target: "webgpu" });
  const m = both.manifest;
  assert.ok(m.shared && m.shared.weightsBytes > 0);
  assert.equal(weightBytes(gpuOnly.files), m.shared.weightsBytes + m.webgpu!.weightsBytes);
  assert.ok(
    weightBytes(both.files) < weightBytes(wasmOnly.files) / 2,
    `${weightBytes(both.files)} bytes against ${weightBytes(wasmOnly.files)} for WASM alone`,
  );
  for (const v of m.variants) {
    const kinds = new Set(v.programs[0].derived!.map((d) => d[2]));
    assert.deepEqual([...kinds].sort(), [0, 1, 2], `${v.simd}: gathers and both Winograd tiles`);
  }

  const x = nd.random.uniform(-1, 1, shape, { seed: 22 });
  const data = x.dataSync() as Float32Array;
  const dir = await Deno.makeTempDir({ prefix: "sigil-aot-share-" });
  try {
    await both.write(dir);
    const mod = await import(`file://${dir}/model.js`);
    for (const simd of ["relaxed", "baseline"] as const) {
      model.hybridize({ engine: wasmEngine({ threads: 2, relaxedSimd: simd === "relaxed" }) });
      const want = (model.call(x) as Tensor).dataSync() as Float32Array;
      const loaded = await mod.load({ backend: "wasm", simd });
      assert.equal(loaded.metadata.simd, simd);
      assert.deepStrictEqual(Object.values(await loaded.run({ data }))[0], want, simd);
      loaded.dispose();
    }
    // Weight files given by name (bytes), and a single source meaning the variant's own file.
    model.hybridize({ engine: wasmEngine({ threads: 2, relaxedSimd: false }) });
    const want = (model.call(x) as Tensor).dataSync() as Float32Array;
    const read = (f: string) => Deno.readFile(`${dir}/${f}`);
    const byName = await mod.load({
      backend: "wasm",
      simd: "baseline",
      weights: {
        "model.shared.bin": await read("model.shared.bin"),
        "model.baseline.bin": await read("model.baseline.bin"),
      },
    });
    assert.deepStrictEqual(Object.values(await byName.run({ data }))[0], want);
    byName.dispose();
    const own = await mod.load({
      backend: "wasm",
      simd: "baseline",
      weights: await read("model.baseline.bin"),
    });
    assert.deepStrictEqual(Object.values(await own.run({ data }))[0], want);
    own.dispose();

    // Both files streamed in odd chunks (the tables and sources arrive across chunk ends).
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const body = await read(new URL(req.url).pathname.slice(1));
      let at = 0;
      return new Response(
        new ReadableStream<Uint8Array>({
          pull(c) {
            if (at >= body.length) return c.close();
            c.enqueue(body.slice(at, at + 999));
            at += 999;
          },
        }),
      );
    });
    try {
      const url = (f: string) => `http://127.0.0.1:${server.addr.port}/${f}`;
      const streamed = await mod.load({
        backend: "wasm",
        simd: "baseline",
        weights: {
          "model.shared.bin": url("model.shared.bin"),
          "model.baseline.bin": url("model.baseline.bin"),
        },
      });
      assert.deepStrictEqual(Object.values(await streamed.run({ data }))[0], want);
      streamed.dispose();
    } finally {
      await server.shutdown();
    }
    // A truncated shared file is refused by its size.
    const shared = await read("model.shared.bin");
    await Deno.writeFile(`${dir}/cut.bin`, shared.subarray(0, shared.length - 4));
    await assert.rejects(
      () =>
        mod.load({
          backend: "wasm",
          simd: "baseline",
          weights: { "model.shared.bin": `${dir}/cut.bin` },
        }),
      (e: Error & { code?: string }) =>
        e.code === "weights" && e.message.includes(`have ${shared.length - 4} bytes`),
    );

    // A shared file of the wrong size, and a run table pointing outside its parameter.
    await assert.rejects(
      () =>
        mod.load({
          backend: "wasm",
          weights: { "model.shared.bin": new Uint8Array(8) },
        }),
      (e: Error & { code?: string }) => e.code === "weights" && /shared weights/.test(e.message),
    );
    const v = m.variants.find((v) => v.simd === "baseline")!;
    const runsAt = v.programs[0].derived![0][5];
    const damaged = (await read("model.baseline.bin")).slice();
    new DataView(damaged.buffer).setInt32(runsAt + 8, 1 << 28, true); // n1 of the first run
    await assert.rejects(
      () => mod.load({ backend: "wasm", simd: "baseline", weights: damaged }),
      (e: Error & { code?: string }) => e.code === "weights" && /damaged/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
