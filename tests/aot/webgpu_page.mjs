// WebGPU artifacts in a page, run by tests/aot/aot_browser_webgpu_test.ts in headless
// Chromium. For each model in ./model/models.json it loads the `webgpu` artifact and the
// `both` (wasm + webgpu) artifact, runs the input it was given and posts what each load chose
// and computed to ./result (the test compares). `?hide=gpu` takes navigator.gpu away first, as
// a browser without WebGPU has it.
const report = { models: {} };
try {
  if (new URLSearchParams(location.search).get("hide") === "gpu") {
    Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined, configurable: true });
  }
  report.navigatorGpu = navigator.gpu !== undefined;
  if (navigator.gpu) {
    const adapter = await navigator.gpu.requestAdapter();
    report.adapter = adapter ? (adapter.info?.architecture || adapter.info?.vendor || "yes") : null;
  }
  const models = await (await fetch("./model/models.json")).json();
  for (const name of models) {
    const got = (report.models[name] = {});
    const { x } = await (await fetch(`./model/${name}/input.json`)).json();
    const data = new Float32Array(x);
    const run = async (model) => Array.from(Object.values(await model.run({ data }))[0]);
    for (const kind of ["webgpu", "both"]) {
      const { load } = await import(`./model/${name}/${kind}/model.js`);
      const r = (got[kind] = {});
      try {
        const model = await load();
        r.backend = model.metadata.backend;
        r.note = model.metadata.backendNote;
        r.out = await run(model);
        r.again = await run(model);
        model.dispose();
      } catch (e) {
        r.error = { code: e?.code, message: String(e?.message ?? e) };
      }
      if (kind === "both") {
        const model = await load({ backend: "wasm" });
        r.wasm = await run(model);
        model.dispose();
      }
    }
  }
  report.ok = true;
} catch (e) {
  report.error = String(e?.stack ?? e);
}
await fetch("./result", { method: "POST", body: JSON.stringify(report) });
