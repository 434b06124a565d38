// An ahead-of-time artifact in a page, run by tests/aot/aot_platforms_test.ts in headless
// Chromium: imports ./model/model.js (its weight files beside it), runs the input in
// expected.json and compares the bits with Deno's JIT engine for the variant the artifact
// chose; posts a JSON report to ./result. Cross-origin isolated pages use the worker threads.
const report = { isolated: globalThis.crossOriginIsolated === true };
try {
  const expected = await (await fetch("./model/expected.json")).json();
  const { load, metadata } = await import("./model/model.js");
  const model = await load();
  report.simd = model.metadata.simd;
  report.threads = model.metadata.threads;
  report.threadsNote = model.metadata.threadsNote;
  const input = new Float32Array(new Uint32Array(expected.x).buffer);
  const name = metadata.outputs[0].name;
  for (let i = 0; i < 3; i++) {
    const out = model.run({ data: input })[name];
    const got = Array.from(new Uint32Array(out.buffer, out.byteOffset, out.length));
    const want = expected[model.metadata.simd];
    if (got.length !== want.length || got.some((b, j) => b !== want[j])) {
      throw new Error(`run ${i}: the bits differ from the JIT's`);
    }
  }
  model.dispose();
  report.ok = true;
} catch (e) {
  report.error = String(e?.stack ?? e);
}
await fetch("./result", { method: "POST", body: JSON.stringify(report) });
