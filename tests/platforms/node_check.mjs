// What a user does with sigil in Node, run by tests/platforms/platforms_test.ts under Node 20
// (on a bundle of mod.ts) and Node 22 (on the .ts sources with type stripping):
//   node node_check.mjs <mod.ts or bundle path> <model dir>
// Builds and runs a model, exports it, loads it back from a path, a file: URL, an http: URL
// and from the Buffers readFileSync returns, loads a compressed .npz from the model directory
// (platforms_test.ts writes it), checks IO errors and the default thread count.
// Prints one JSON line with the results; exits non-zero on the first failure.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const sigil = await import(pathToFileURL(process.argv[2]).href);
const { compileWasm, getDefaultThreads, IOError, loadParamsBytes, nd, nn, paramsToRecord } = sigil;
const { SymbolBlock, sym } = sigil;

const report = { node: process.versions.node };
const dir = await mkdtemp(join(tmpdir(), "sigil-node-"));
const server = createServer((req, res) => {
  try {
    const body = readFileSync(join(dir, decodeURIComponent(req.url.slice(1))));
    res.writeHead(200, { "content-type": "application/octet-stream" }).end(body);
  } catch {
    res.writeHead(404).end("not found");
  }
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const http = `http://127.0.0.1:${server.address().port}`;

try {
  // Build, hybridize and run a small convolutional net.
  const net = new nn.HybridSequential().add(
    new nn.Conv2D(4, 3, { padding: 1 }),
    new nn.Activation("relu"),
    new nn.Dense(3),
  );
  net.initialize({ seed: 3 });
  net.hybridize();
  const x = nd.random.uniform(-1, 1, [2, 3, 8, 8], { seed: 5 });
  const want = Array.from(await net.call(x).data());
  assert.equal(want.length, 6);

  // Export, then import from every kind of source.
  const [symbolFile, paramsFile] = await net.export(join(dir, "net"), { epoch: 3 });
  assert.deepEqual((await readdir(dir)).sort(), ["net-0003.params", "net-symbol.json"]);
  const sources = {
    path: [symbolFile, paramsFile],
    fileUrl: [pathToFileURL(symbolFile), pathToFileURL(paramsFile)],
    httpUrl: [new URL(`${http}/net-symbol.json`), `${http}/net-0003.params`],
    buffers: [readFileSync(symbolFile), readFileSync(paramsFile)],
  };
  for (const [what, [s, p]] of Object.entries(sources)) {
    const back = await SymbolBlock.imports(s, ["data"], p);
    assert.deepEqual(Array.from(await back.call(x).data()), want, what);
  }
  report.sources = Object.keys(sources);

  // The Buffer readFileSync returns: every array read at its own offset.
  const rec = paramsToRecord(loadParamsBytes(readFileSync(paramsFile)));
  const params = net.collectParams();
  for (const [key, t] of Object.entries(rec)) {
    const p = params[key.slice(4)];
    assert.deepEqual(Array.from(await t.data()), Array.from(await p.data().data()), key);
  }
  // A small Buffer from the shared pool (non-zero byteOffset).
  const small = new nn.Dense(2, { inUnits: 2 });
  small.initialize({ seed: 1 });
  const pooled = Buffer.from(small.parametersBytes());
  const small2 = new nn.Dense(2, { inUnits: 2 });
  small2.initialize({ seed: 2 });
  await small2.loadParameters(pooled);
  const probe = nd.ones([1, 2]);
  assert.deepEqual(
    Array.from(await small2.call(probe).data()),
    Array.from(await small.call(probe).data()),
  );
  report.pooledBufferOffset = pooled.byteOffset;

  // A compressed .npz (numpy.savez_compressed): inflated with DecompressionStream.
  const modelDir = process.argv[3];
  const expected = JSON.parse(readFileSync(join(modelDir, "expected.json"), "utf8"));
  const npz = await sigil.loadParams(join(modelDir, "compressed.npz"));
  assert.deepEqual(npz.arrays[0].shape, expected.npz.shape);
  assert.deepEqual(Array.from(await npz.arrays[0].data()), expected.npz.values);

  // Symbol files and block save/load.
  await net.save(join(dir, "blk"));
  const again = new nn.HybridSequential().add(
    new nn.Conv2D(4, 3, { padding: 1 }),
    new nn.Activation("relu"),
    new nn.Dense(3),
  );
  again.initialize({ seed: 9 });
  await again.load(join(dir, "blk"));
  assert.deepEqual(Array.from(await again.call(x).data()), want);
  const loaded = await sym.load(symbolFile);
  await loaded.save(join(dir, "copy-symbol.json"));
  assert.equal(readFileSync(join(dir, "copy-symbol.json"), "utf8"), loaded.toJSON());

  // Errors name the path.
  const missing = join(dir, "missing-symbol.json");
  await assert.rejects(
    SymbolBlock.imports(missing, ["data"]),
    (e) => e instanceof IOError && e.path === missing && /no such file/.test(e.message),
  );
  await assert.rejects(sym.load(dir), (e) => e instanceof IOError && /directory/.test(e.message));
  await assert.rejects(
    sym.load(`${http}/gone.json`),
    (e) => e instanceof IOError && /404/.test(e.message),
  );
  await assert.rejects(
    net.export(join(dir, "bad"), { epoch: 1e21 }),
    /epoch/,
  );
  assert(!(await readdir(dir)).some((n) => n.startsWith("bad")));

  // Threads: every core by default (Node 20 has no navigator.hardwareConcurrency), and a
  // threaded program agrees with a one-thread one.
  assert.equal(getDefaultThreads(), Math.min(16, availableParallelism()));
  report.defaultThreads = getDefaultThreads();
  const y = sym.FullyConnected(sym.var("x"), { num_hidden: 64, name: "fc" });
  const w = {
    fc_weight: nd.random.uniform(-1, 1, [64, 256], { seed: 7 }),
    fc_bias: nd.zeros([64]),
  };
  const input = nd.random.uniform(-1, 1, [32, 256], { seed: 8 });
  const one = compileWasm(y, w, { x: [32, 256] }, { threads: 1 });
  const two = compileWasm(y, w, { x: [32, 256] }, { threads: 2, forceSplit: true });
  await two.ready();
  assert.equal(two.threads, 2);
  assert(two.threadsReady, "the worker threads hold the program");
  const a = await one.run({ x: input })[0].data();
  const b = await two.run({ x: input })[0].data();
  assert.deepEqual(Array.from(b), Array.from(a));
  two.dispose();
  // A one-thread program compiled with a compile helper (a worker computing its Winograd
  // weights into a shared memory) gives the bits of one compiled without it; startThreads
  // resolves with the workers up.
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
  assert.equal(helped.program.shared, availableParallelism() >= 2);
  assert.deepEqual(
    Array.from(await helped.run({ x: cx })[0].data()),
    Array.from(await alone.run({ x: cx })[0].data()),
  );
  report.compileHelper = helped.program.shared;
  await sigil.startThreads(2);
  await sigil.terminateThreads();
  report.ok = true;
} finally {
  server.close();
  await rm(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(report));
