// One cold start of an AOT artifact, in a fresh process (Node or Deno):
//   node bench/aot_cold.mjs <model.js> [threads] [warm|nowarm|default]
// Prints one JSON line: milliseconds from process start (performance.timeOrigin) to the
// first output read, split into the runtime's own start (to this script's first line), the
// module's import, its load() and the first run; and the median of 20 steady runs after it.
const [file, threads, warm] = [process.argv[2], process.argv[3], process.argv[4]];
const t0 = performance.now();
const { load, metadata } = await import(new URL(file, `file://${process.cwd()}/`).href);
const imported = performance.now();
const model = await load({
  ...(threads ? { threads: Number(threads) } : {}),
  ...(warm === "nowarm" ? { warm: false } : warm === "warm" ? { warm: true } : {}),
});
const loaded = performance.now();
const inputs = {};
for (const t of metadata.inputs) {
  const v = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < v.length; i++) v[i] = ((i * 2654435761) % 1000) / 1000;
  Object.defineProperty(inputs, t.name, { value: v, enumerable: true });
}
const first = Object.values(model.run(inputs))[0][0];
const firstAt = performance.now();
const times = [];
for (let i = 0; i < 20; i++) {
  const s = performance.now();
  model.run(inputs);
  times.push(performance.now() - s);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({
  processToFirstMs: firstAt,
  startMs: t0,
  importMs: imported - t0,
  loadMs: loaded - imported,
  firstRunMs: firstAt - loaded,
  steadyMs: times[10],
  threads: model.metadata.threads,
  simd: model.metadata.simd,
  check: first,
}));
