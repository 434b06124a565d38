/**
 * WebGPU artifacts (`target: "webgpu"` and `["wasm", "webgpu"]`): on the CPU adapter Deno has
 * here, the artifact's outputs match the JIT WebGPU engine's within float32 tolerance (the same
 * WGSL; the artifact was lowered for the default limits, the JIT for the adapter's); runs are
 * asynchronous; an artifact with both picks WebGPU where `navigator.gpu` gives an adapter and
 * WASM where there is none (plain Node), with the JIT WASM engine's bits. SIGIL_NO_WEBGPU=1
 * ignores the tests that need an adapter.
 */
import { compile } from "../../compiler/aot/mod.ts";
import { modelZoo, nd, nn, sym, type Tensor, wasmEngine } from "../../mod.ts";
import type { HybridBlock } from "../../gluon/block.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { assert, assertClose } from "../util.ts";
import { engine, GPU_TEST } from "../lower/webgpu/gpu_harness.ts";

function convNet(): nn.HybridSequential {
  const net = new nn.HybridSequential().add(
    new nn.Conv2D(8, 3, { padding: 1, activation: "relu" }),
    new nn.BatchNorm(),
    new nn.MaxPool2D(),
    new nn.Conv2D(16, 3, { padding: 1, strides: 2 }),
    new nn.GlobalAvgPool2D(),
    new nn.Flatten(),
    new nn.Dense(10),
  );
  net.initialize({ seed: 5 });
  return net;
}

async function writtenModule(artifact: { write(dir: string): Promise<string[]> }) {
  const dir = await Deno.makeTempDir({ prefix: "sigil-aot-gpu-" });
  await artifact.write(dir);
  // deno-lint-ignore no-explicit-any
  const mod: any = await import(`file://${dir}/model.js`);
  return { dir, mod };
}

Deno.test({
  name: "webgpu artifact: outputs match the JIT WebGPU engine at every batch size; runs are async",
  ...GPU_TEST,
  fn: async () => {
    const net = convNet();
    const artifact = await compile(net, {
      inputs: { data: [1, 3, 16, 16] },
      batchSizes: [1, 2],
      target: "webgpu",
      minify: false,
    });
    assert.equal(artifact.manifest.target, "webgpu");
    assert.deepEqual(artifact.manifest.variants, []);
    assert.ok(artifact.manifest.webgpu!.programs.every((p) => p.steps.length > 0));
    assert.deepEqual(artifact.files.map((f) => f.path), [
      "model.js",
      "model.d.ts",
      "model.webgpu.bin",
    ]);
    assert.match(artifact.dts, /run\(inputs: Inputs\): Promise<Outputs>;/);
    const { dir, mod } = await writtenModule(artifact);
    try {
      assert.deepEqual(mod.metadata.targets, ["webgpu"]);
      const model = await mod.load();
      assert.equal(model.metadata.backend, "webgpu");
      net.hybridize({ engine: engine() });
      for (const b of [1, 2]) {
        const x = nd.random.uniform(-1, 1, [b, 3, 16, 16], { seed: b });
        const want = tensorValues(await net.callAsync(x) as Tensor);
        const pending = model.run({ data: x.dataSync() as Float32Array });
        assert.ok(pending instanceof Promise);
        const out = await pending;
        assertClose(Object.values(out)[0] as Float32Array, want, { rtol: 1e-4, atol: 1e-5 });
        const into = { [mod.metadata.outputs[0].name]: new Float32Array(b * 10) };
        await model.runRaw({ data: x.dataSync() as Float32Array }, into);
        assertClose(Object.values(into)[0], want, { rtol: 1e-4, atol: 1e-5 });
      }
      // Runs queued together share the buffers one after another: each gets its own answer.
      const xs = [3, 4, 5].map((s) => nd.random.uniform(-1, 1, [1, 3, 16, 16], { seed: s }));
      const outs = await Promise.all(xs.map((x) => model.run({ data: x.dataSync() })));
      for (const [i, x] of xs.entries()) {
        const want = tensorValues(await net.callAsync(x) as Tensor);
        assertClose(Object.values(outs[i])[0] as Float32Array, want, { rtol: 1e-4, atol: 1e-5 });
      }
      await assert.rejects(
        () => model.run({ data: new Float32Array(5) }),
        (e: Error & { code?: string }) => e instanceof mod.ModelError && e.code === "input",
      );
      await assert.rejects(
        () => mod.load({ backend: "wasm" }),
        (e: Error & { code?: string }) => e.code === "options",
      );
      model.dispose();
      await assert.rejects(() => model.run({ data: xs[0].dataSync() }), /disposed/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "webgpu artifact: MobileNet v2 (0.25) matches the JIT WebGPU engine",
  ...GPU_TEST,
  fn: async () => {
    const net = modelZoo.vision.getModel("mobilenetv2_0.25", { classes: 10 }) as HybridBlock;
    net.initialize({ seed: 2 });
    const x = nd.random.uniform(-1, 1, [1, 3, 32, 32], { seed: 3 });
    const artifact = await compile(net, {
      inputs: { data: [1, 3, 32, 32] },
      target: "webgpu",
      weights: "embed",
    });
    const { dir, mod } = await writtenModule(artifact);
    try {
      const model = await mod.load();
      net.hybridize({ engine: engine() });
      const want = tensorValues(await net.callAsync(x) as Tensor);
      const out = await model.run({ data: x.dataSync() as Float32Array });
      assertClose(Object.values(out)[0] as Float32Array, want, { rtol: 1e-4, atol: 1e-5 });
      model.dispose();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "wasm+webgpu artifact: WebGPU where there is an adapter, WASM on request and in Node",
  ...GPU_TEST,
  fn: async () => {
    const net = convNet();
    const artifact = await compile(net, {
      inputs: { data: [1, 3, 16, 16] },
      target: ["wasm", "webgpu"],
      simd: "baseline",
    });
    assert.equal(artifact.manifest.target, "wasm,webgpu");
    // The weights are shared: WebGPU reads them as they are, WASM derives its constants from
    // them; only constants too small to be worth a table are in each target's own file.
    assert.deepEqual(artifact.files.map((f) => f.path).sort(), [
      "model.bin",
      "model.d.ts",
      "model.js",
      "model.shared.bin",
      "model.webgpu.bin",
    ]);
    const { shared, webgpu, variants } = artifact.manifest;
    assert.ok(webgpu!.weightsBytes < shared!.weightsBytes / 4);
    assert.ok(variants[0].weightsBytes < shared!.weightsBytes / 4);
    assert.match(artifact.dts, /run\(inputs: Inputs\): Outputs \| Promise<Outputs>;/);
    const x = nd.random.uniform(-1, 1, [1, 3, 16, 16], { seed: 7 });
    const data = x.dataSync() as Float32Array;
    const { dir, mod } = await writtenModule(artifact);
    try {
      const gpu = await mod.load();
      assert.equal(gpu.metadata.backend, "webgpu");
      net.hybridize({ engine: engine() });
      const wantGpu = tensorValues(await net.callAsync(x) as Tensor);
      assertClose(Object.values(await gpu.run({ data }))[0] as Float32Array, wantGpu, {
        rtol: 1e-4,
        atol: 1e-5,
      });
      gpu.dispose();
      const cpu = await mod.load({ backend: "wasm" });
      assert.equal(cpu.metadata.backend, "wasm");
      net.hybridize({ engine: wasmEngine({ threads: 1, relaxedSimd: false }) });
      const wantCpu = (net.call(x) as Tensor).dataSync() as Float32Array;
      assert.deepStrictEqual(Object.values(cpu.run({ data }))[0], wantCpu);

      // Plain Node has no navigator.gpu: the artifact runs on WASM, with the same bits.
      await Deno.writeTextFile(`${dir}/x.json`, JSON.stringify(Array.from(data)));
      const script = `
        const { readFileSync } = await import("node:fs");
        const { load } = await import(${JSON.stringify(`file://${dir}/model.js`)});
        const model = await load();
        const data = new Float32Array(JSON.parse(readFileSync(${
        JSON.stringify(`${dir}/x.json`)
      }, "utf8")));
        const out = await model.run({ data });
        console.log(JSON.stringify({
          backend: model.metadata.backend,
          note: model.metadata.backendNote,
          out: Array.from(Object.values(out)[0]),
        }));`;
      const node = await new Deno.Command("node", {
        args: ["--input-type=module", "-e", script],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(node.code, 0, new TextDecoder().decode(node.stderr));
      const got = JSON.parse(new TextDecoder().decode(node.stdout));
      assert.equal(got.backend, "wasm");
      assert.match(got.note, /navigator\.gpu/);
      assert.deepStrictEqual(new Float32Array(got.out), wantCpu);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("webgpu artifact: names from the model stay data; bad targets are typed errors", async () => {
  const hostile = '"); process.exit(1); ("</script>${}';
  const y = sym.relu(sym.var(hostile), { name: "__proto__" });
  const artifact = await compile({ symbol: y }, {
    inputs: { [hostile]: [2, 3] },
    target: "webgpu",
    minify: false,
  });
  assert.ok(!artifact.js.includes(hostile) && !artifact.js.includes("</script>"));
  assert.ok(!artifact.dts.includes("</script>"));
  await assert.rejects(
    () => compile({ symbol: y }, { inputs: { [hostile]: [2, 3] }, target: "cuda" }),
    /unknown target "cuda"/,
  );
  await assert.rejects(
    () => compile({ symbol: y }, { inputs: { [hostile]: [2, 3] }, target: ["wasm", "wasm"] }),
    /distinct targets/,
  );
});
