/**
 * Imports each library module first in a fresh module graph (a worker), then uses the public
 * API, and prints one JSON record `{ module: result }`. Run by engine_test.ts with `--no-check`
 * (the test process checks the library's types already).
 */
const root = new URL("../../", import.meta.url);
const modules: string[] = [""];
for (const dir of ["runtime", "ops", "compiler", "gluon", "testing"]) {
  const walk = (at: URL, rel: string) => {
    for (const e of [...Deno.readDirSync(at)].sort((a, b) => a.name < b.name ? -1 : 1)) {
      if (e.isDirectory) walk(new URL(`${e.name}/`, at), `${rel}${e.name}/`);
      else if (e.name.endsWith(".ts")) modules.push(`${rel}${e.name}`);
    }
  };
  walk(new URL(`${dir}/`, root), `${dir}/`);
}
const probe = (first: string) => `
  try {
    ${first ? `await import(${JSON.stringify(new URL(first, root).href)});` : ""}
    const { nd, sym, getDefaultEngine } = await import(${
  JSON.stringify(new URL("mod.ts", root).href)
});
    const x = nd.random.uniform(-1, 1, [64, 80], { seed: 1 });
    const eager = Array.from(nd.exp(x).dataSync()).slice(0, 3);
    const [y] = await sym.exp(sym.var("x")).eval({ x });
    self.postMessage(JSON.stringify([getDefaultEngine().name, eager, Array.from(y.dataSync()).slice(0, 3)]));
  } catch (e) {
    self.postMessage("error: " + (e && e.stack || e));
  }
`;
const run = (first: string) =>
  new Promise<string>((resolve) => {
    const url = URL.createObjectURL(new Blob([probe(first)], { type: "text/javascript" }));
    const worker = new Worker(url, { type: "module" });
    worker.onmessage = (m) => {
      worker.terminate();
      URL.revokeObjectURL(url);
      resolve(String(m.data));
    };
    worker.onerror = (e) => {
      e.preventDefault();
      worker.terminate();
      resolve(`error: ${e.message}`);
    };
  });
const results: Record<string, string> = {};
// Two at a time: each worker loads the whole library.
for (let i = 0; i < modules.length; i += 2) {
  const batch = modules.slice(i, i + 2);
  const outs = await Promise.all(batch.map(run));
  batch.forEach((m, k) => results[m] = outs[k]);
}
console.log(JSON.stringify(results));
// Threads the probes started in this process stop with it.
Deno.exit(0);
