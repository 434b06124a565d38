// What a page does with sigil, run by tests/platforms/platforms_test.ts in headless Chromium.
// The page imports the ES bundle of mod.ts, builds and runs a model, loads an exported model
// from URLs served next to it (a relative path string and a URL object), runs a threaded
// program where the page is cross-origin isolated, and posts a JSON report to ./result.
import * as sigil from "./sigil.js";

const { compileWasm, getDefaultThreads, IOError, nd, nn, SymbolBlock, sym } = sigil;
const report = { isolated: globalThis.crossOriginIsolated === true };

function check(cond, message) {
  if (!cond) throw new Error(message);
}

function close(a, b, what) {
  check(a.length === b.length, `${what}: ${a.length} values, expected ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    const tol = 1e-5 + 1e-4 * Math.abs(b[i]);
    check(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]}, expected ${b[i]}`);
  }
}

try {
  // Build, hybridize, run; export to memory and import back from the bytes.
  const net = new nn.HybridSequential().add(new nn.Dense(8), new nn.Activation("relu"));
  net.add(new nn.Dense(2));
  net.initialize({ seed: 1 });
  net.hybridize();
  const x = nd.random.uniform(-1, 1, [3, 5], { seed: 2 });
  const y = Array.from(await net.call(x).data());
  const { symbol, params } = net.exportBytes();
  const fromBytes = await SymbolBlock.imports(new TextEncoder().encode(symbol), "data", params);
  close(Array.from(await fromBytes.call(x).data()), y, "model from bytes");

  // A model exported by Deno, loaded from URLs; the expected output was computed there.
  const expected = await (await fetch("./model/expected.json")).json();
  const imported = await SymbolBlock.imports(
    "model/net-symbol.json",
    ["data"],
    new URL("model/net-0000.params", location.href),
  );
  const input = nd.array(expected.x, { shape: expected.shape });
  close(Array.from(await imported.call(input).data()), expected.y, "model from URLs");
  const npz = await sigil.loadParams("model/compressed.npz");
  check(npz.arrays[0].shape.join() === expected.npz.shape.join(), "compressed npz shape");
  close(Array.from(await npz.arrays[0].data()), expected.npz.values, "compressed npz");
  let missing;
  try {
    await sym.load("model/missing-symbol.json");
  } catch (e) {
    missing = e;
  }
  check(missing instanceof IOError && /404/.test(missing.message), `missing file: ${missing}`);

  // Threads: the default is every core when isolated, one otherwise; a two-thread program
  // uses its workers only when isolated, and agrees with one thread either way.
  report.defaultThreads = getDefaultThreads();
  report.cores = navigator.hardwareConcurrency;
  const f = sym.FullyConnected(sym.var("x"), { num_hidden: 64, name: "fc" });
  const w = {
    fc_weight: nd.random.uniform(-1, 1, [64, 256], { seed: 7 }),
    fc_bias: nd.zeros([64]),
  };
  const a = nd.random.uniform(-1, 1, [32, 256], { seed: 8 });
  const one = compileWasm(f, w, { x: [32, 256] }, { threads: 1 });
  const two = compileWasm(f, w, { x: [32, 256] }, { threads: 2, forceSplit: true });
  await two.ready();
  report.programThreads = two.threads;
  report.threadsReady = two.threadsReady;
  close(
    Array.from(await two.run({ x: a })[0].data()),
    Array.from(await one.run({ x: a })[0].data()),
    "threaded program",
  );
  two.dispose();
  // A compile helper where the page may use one (isolated, two cores or more): the same bits
  // as without it; elsewhere the option is ignored.
  const conv = sym.Convolution(sym.var("x"), {
    kernel: [3, 3],
    pad: [1, 1],
    num_filter: 16,
    no_bias: true,
    name: "wc",
  });
  const cw = { wc_weight: nd.random.uniform(-1, 1, [16, 8, 3, 3], { seed: 9 }) };
  const cx = nd.random.uniform(-1, 1, [1, 8, 12, 12], { seed: 10 });
  const helped = compileWasm(conv, cw, { x: cx.shape }, { threads: 1, compileHelper: true });
  const alone = compileWasm(conv, cw, { x: cx.shape }, { threads: 1, compileHelper: false });
  report.compileHelper = helped.program.shared;
  const want = await alone.run({ x: cx })[0].data();
  const got = await helped.run({ x: cx })[0].data();
  check(got.every((v, i) => Object.is(v, want[i])), "compile helper bits");
  await sigil.startThreads(2);
  await sigil.terminateThreads();
  report.ok = true;
} catch (e) {
  report.error = String(e?.stack ?? e);
}
await fetch("./result", { method: "POST", body: JSON.stringify(report) });
