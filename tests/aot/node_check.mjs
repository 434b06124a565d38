// An ahead-of-time artifact in plain Node (no flags), run by tests/aot/aot_platforms_test.ts:
//   node node_check.mjs <artifact dir>
// Loads <dir>/model.js with its default threads and again on one thread, runs the input in
// <dir>/expected.json and compares the bits with what Deno's JIT engine gave for the variant
// the artifact chose; then with the weights given as bytes, and refused from files of the
// wrong size. Prints one JSON line; exits non-zero on the first failure. The process
// must also end by itself (idle worker threads never keep it alive).
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const dir = process.argv[2];
const expected = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8"));
const { load, metadata, ModelError } = await import(pathToFileURL(join(dir, "model.js")).href);
const bits = (a) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const input = new Float32Array(new Uint32Array(expected.x).buffer);
const report = { node: process.versions.node, compiledThreads: metadata.compiledThreads };

const model = await load();
report.simd = model.metadata.simd;
report.threads = model.metadata.threads;
const name = metadata.outputs[0].name;
for (let i = 0; i < 3; i++) {
  assert.deepEqual(
    bits(model.run({ data: input })[name]),
    expected[model.metadata.simd],
    `run ${i}`,
  );
}
const one = await load({ threads: 1 });
assert.equal(one.metadata.threads, 1);
assert.deepEqual(bits(one.run({ data: input })[name]), expected[one.metadata.simd], "one thread");
assert.throws(
  () => model.run({ data: new Float32Array(3) }),
  (e) => e instanceof ModelError && e.code === "input",
);
// The weights as bytes, and files of the wrong size (refused by their size, read no further).
const weightFile = join(dir, `model.${one.metadata.simd}.bin`);
const weights = readFileSync(weightFile);
const given = await load({ threads: 1, simd: one.metadata.simd, weights });
assert.deepEqual(bits(given.run({ data: input })[name]), expected[one.metadata.simd], "bytes");
for (
  const [file, data] of [
    ["cut.bin", weights.subarray(0, weights.length - 8)],
    ["long.bin", Buffer.concat([weights, Buffer.alloc(1)])],
  ]
) {
  writeFileSync(join(dir, file), data);
  await assert.rejects(
    load({ simd: one.metadata.simd, weights: join(dir, file) }),
    (e) =>
      e instanceof ModelError && e.code === "weights" &&
      e.message.includes(`have ${data.length} bytes`),
  );
}
await assert.rejects(
  load({ weights: join(dir, "gone.bin") }),
  (e) => e instanceof ModelError && e.code === "weights",
);
report.ok = true;
console.log(JSON.stringify(report));
