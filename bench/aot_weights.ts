/**
 * Weight bytes of a wasm+webgpu artifact, with the parameters shipped once, against what the
 * two targets ship apart (a WASM artifact's variant files plus a WebGPU artifact's file: what
 * a both-target artifact carried before it shared them); and the WASM load's cost of deriving
 * its constants. `deno run -A bench/aot_weights.ts [--model resnet18_v1] [--loads 3]`.
 *
 * Zoo model, random weights, input 1×3×224×224, one thread, weights beside the module; for
 * `simd: "baseline"` and `simd: "auto"` (two WASM variants). Loads: `load({ backend: "wasm" })`
 * of the both-target artifact against the WASM-only one, in this process, alternated, median.
 *
 * @module
 */
import { compile } from "../compiler/aot/mod.ts";
import { modelZoo, nd } from "../mod.ts";

const arg = (name: string, dflt: string) => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : dflt;
};
const modelName = arg("model", "resnet18_v1");
const loads = Number(arg("loads", "3"));
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;

const net = modelZoo.vision.getModel(modelName);
net.initialize();
net.inferShape(nd.zeros([1, 3, 224, 224]));
const inputs = { data: [1, 3, 224, 224] };

type Files = readonly { path: string; data: Uint8Array | string }[];
const bins = (files: Files) =>
  files.filter((f) => f.path.endsWith(".bin")).map((f) => [f.path, f.data.length] as const);
const total = (files: Files) => bins(files).reduce((a, [, n]) => a + n, 0);

const rows: string[] = [];
for (const simd of ["baseline", "auto"] as const) {
  const both = await compile(net, { inputs, simd, target: ["wasm", "webgpu"], minify: false });
  const wasm = await compile(net, { inputs, simd, target: "wasm", minify: false });
  const gpu = await compile(net, { inputs, target: "webgpu", minify: false });
  const before = total(wasm.files) + total(gpu.files);
  const after = total(both.files);
  const derived = both.manifest.variants.map((v) =>
    `${v.simd}: ${v.programs[0].derived?.length ?? 0} derived, ${
      v.programs[0].constants.length
    } kept`
  );
  console.log(`simd ${simd}: ${derived.join("; ")}`);
  for (const [path, n] of bins(both.files)) console.log(`  ${path} ${mb(n)}`);
  rows.push(
    `| ${simd} | ${mb(before)} (${bins(wasm.files).map(([, n]) => mb(n)).join(" + ")} + ${
      mb(total(gpu.files))
    }) | ${mb(after)} | ${(before / after).toFixed(2)}× |`,
  );
  if (simd !== "baseline") continue;
  // The WASM load: reading its files and (both-target) deriving the constants.
  const dirs = { both: await Deno.makeTempDir(), wasm: await Deno.makeTempDir() };
  await both.write(dirs.both);
  await wasm.write(dirs.wasm);
  const times: Record<string, number[]> = { both: [], wasm: [] };
  const mods = {
    both: await import(`file://${dirs.both}/model.js`),
    wasm: await import(`file://${dirs.wasm}/model.js`),
  };
  for (let i = 0; i < loads; i++) {
    for (const k of ["wasm", "both"] as const) {
      const t0 = performance.now();
      const model = await mods[k].load({ backend: "wasm" });
      times[k].push(performance.now() - t0);
      model.dispose();
    }
  }
  console.log(
    `WASM load (baseline), median of ${loads}: WASM-only artifact ${
      median(times.wasm).toFixed(0)
    } ms, both-target artifact ${median(times.both).toFixed(0)} ms`,
  );
  for (const d of Object.values(dirs)) await Deno.remove(d, { recursive: true });
}
console.log(`\n${modelName}: weight bytes of a wasm+webgpu artifact`);
console.log("| simd | before: WASM files + WebGPU file | after (shared) | ratio |");
console.log("| ---- | -------------------------------- | -------------- | ----- |");
for (const r of rows) console.log(r);
