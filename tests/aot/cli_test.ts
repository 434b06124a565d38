/**
 * The `sigil` CLI in-process: compile writes exactly its files inside the output directory,
 * summary totals, exit codes (0 done, 1 failed, 2 bad usage).
 */
import { main, parseInputSpec, summaryTable } from "../../cli.ts";
import { nd, nn, sym } from "../../mod.ts";
import { assert } from "../util.ts";

/** Runs with console.log silenced (the CLI's help and tables); errors still reach stderr. */
async function quietly<T>(f: () => Promise<T>): Promise<T> {
  const log = console.log;
  console.log = () => {};
  try {
    return await f();
  } finally {
    console.log = log;
  }
}

Deno.test("compile writes the artifact inside -o and nowhere else; bad names and usage fail", async () => {
  const root = await Deno.makeTempDir({ prefix: "sigil-cli-" });
  try {
    const net = new nn.HybridSequential().add(new nn.Dense(3, { activation: "relu" }));
    net.initialize({ seed: 1 });
    net.hybridize();
    net.call(nd.ones([1, 4]));
    const [symbolFile, paramsFile] = await net.export(`${root}/net`);
    const out = `${root}/out/dist`;
    const args = ["compile", symbolFile, paramsFile!, "--input", "data:1x4", "-o", out];
    assert.equal(await quietly(() => main([...args, "--quiet", "--no-minify"])), 0);
    const names = [...Deno.readDirSync(out)].map((e) => e.name).sort();
    assert.deepStrictEqual(names, [
      "model.baseline.bin",
      "model.d.ts",
      "model.js",
      "model.relaxed.bin",
    ]);
    assert.deepStrictEqual([...Deno.readDirSync(root)].map((e) => e.name).sort(), [
      "net-0000.params",
      "net-symbol.json",
      "out",
    ]);
    const { load } = await import(`file://${out}/model.js`);
    const model = await load();
    assert.equal(Object.values(model.run({ data: new Float32Array(4) })).length, 1);
    // A file name that climbs out of the directory is refused before anything is written.
    assert.equal(await quietly(() => main([...args, "--quiet", "--name", "../escape"])), 1);
    assert(![...Deno.readDirSync(`${root}/out`)].some((e) => e.name.includes("escape")));
    assert.equal(await quietly(() => main([...args, "--quiet", "--weights", "zip"])), 2);
    assert.equal(await quietly(() => main([...args, "--quiet", "--target", "wasm,cuda"])), 2);
    const gpuOut = `${root}/out/gpu`;
    const gpuArgs = ["compile", symbolFile, paramsFile!, "--input", "data:1x4", "-o", gpuOut];
    assert.equal(
      await quietly(() => main([...gpuArgs, "--quiet", "--no-minify", "--target", "webgpu"])),
      0,
    );
    assert.deepStrictEqual([...Deno.readDirSync(gpuOut)].map((e) => e.name).sort(), [
      "model.d.ts",
      "model.js",
      "model.webgpu.bin",
    ]);
    assert.equal(await quietly(() => main(["compile", symbolFile, "--input", "data:1xq"])), 2);
    assert.equal(
      await quietly(() =>
        main(["compile", `${root}/missing.json`, "--input", "data:1x4", "--quiet"])
      ),
      1,
    );
    assert.equal(await quietly(() => main(["frobnicate"])), 2);
    assert.equal(await quietly(() => main(["--help"])), 0);
    assert.equal(await quietly(() => main(["compile", "--help"])), 0);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("summary: a row per layer, parameters and FLOPs totals, the memory plan's peak", () => {
  const fc = sym.FullyConnected(sym.var("data"), { num_hidden: 8, name: "fc" });
  const y = sym.Activation(fc, { act_type: "relu", name: "relu" });
  const table = summaryTable(y, { data: [2, 16] });
  assert.match(table, /^data \(input\)\s+2x16\s+0\s+0$/m);
  assert.match(table, /^fc \(FullyConnected\)\s+2x8\s+136\s+528$/m); // 2·2·8·16 + 2·8
  assert.match(table, /^relu \(Activation\)\s+2x8\s+0\s+16$/m);
  assert.match(table, /^Total params: 136$/m);
  assert.match(table, /^Total FLOPs: 544 \(544\)$/m);
  assert.match(table, /^Memory plan peak: /m);
  assert.deepStrictEqual(parseInputSpec("x:1x3x2"), ["x", [1, 3, 2]]);
  assert.deepStrictEqual(parseInputSpec("4x5"), ["data", [4, 5]]);
});
