import {
  DTypeError,
  loadParams,
  nd,
  nn,
  Parameter,
  saveParamsV2,
  ShapeError,
  SigilError,
  sym,
  type Symbol,
  SymbolBlock,
  type Tensor,
} from "../../mod.ts";
import { assert, assertClose } from "../util.ts";

const ROOT = new URL("../../../shared/reference/fixtures/", import.meta.url);
const HAVE = (() => {
  try {
    return Deno.statSync(ROOT).isDirectory;
  } catch {
    return false;
  }
})();
if (!HAVE) {
  console.warn(`symbol_block_test: ${ROOT.pathname} is absent; real-file tests are skipped`);
}

const REAL: { name: string; inputs: Record<string, number[]>; outputs: number[][] }[] = [
  { name: "gluon130-mlp-taxi", inputs: { data: [5, 4] }, outputs: [[5, 1]] },
  { name: "gluon160-mnist-cnn", inputs: { data: [2, 1, 28, 28] }, outputs: [[2, 10]] },
  {
    name: "legacy-mtcnn-det1",
    inputs: { data: [1, 3, 12, 12] },
    outputs: [[1, 4, 1, 1], [1, 2, 1, 1]],
  },
  {
    name: "legacy-mtcnn-det2",
    inputs: { data: [2, 3, 24, 24], prob1_label: [2] },
    outputs: [[2, 4], [2, 2]],
  },
];

for (const c of REAL) {
  Deno.test({
    name: `SymbolBlock.imports ${c.name}: runs at its stated shape`,
    ignore: !HAVE,
    fn: async () => {
      const paramFile = (await Array.fromAsync(Deno.readDir(new URL("params/", ROOT))))
        .find((e) => e.name.startsWith(c.name))!.name;
      const block = await SymbolBlock.imports(
        new URL(`symbol-json/${c.name}-symbol.json`, ROOT),
        Object.keys(c.inputs),
        new URL(`params/${paramFile}`, ROOT),
      );
      const inputs = Object.values(c.inputs).map((s, i) => nd.random.uniform(0, 1, s, { seed: i }));
      const out = block.call(...inputs);
      const outs = Array.isArray(out) ? out : [out];
      assert.deepEqual(outs.map((t) => t.shape), c.outputs);
      for (const t of outs) {
        assert.ok((t.toArray() as unknown[]).flat(4).every((v) => Number.isFinite(v)));
      }
    },
  });
}

for (const name of ["gluon130-mlp-taxi-0004", "gluon160-mnist-cnn-0035"]) {
  Deno.test({
    name: `V2 params ${name}: load through a SymbolBlock and re-serialize byte-for-byte`,
    ignore: !HAVE,
    fn: async () => {
      const bytes = await Deno.readFile(new URL(`params/${name}.params`, ROOT));
      const file = await loadParams(new URL(`params/${name}.params`, ROOT));
      const entries = file.names!.map((n, i) => [n, file.arrays[i]] as [string, Tensor]);
      assert.deepEqual(saveParamsV2(entries), bytes);
    },
  });
}

function mlp() {
  const net = new nn.HybridSequential().add(
    new nn.Dense(6, { activation: "tanh" }),
    new nn.Dense(3),
  );
  net.initialize({ seed: 3 });
  net.call(nd.ones([1, 5])); // completes the deferred input sizes
  return net;
}

Deno.test("export writes MXNet files; imports runs them with identical outputs", async () => {
  const net = mlp();
  const x = nd.random.uniform(-1, 1, [4, 5], { seed: 1 });
  await assert.rejects(() => net.export("/tmp/never"), /first call block.hybridize/);
  net.hybridize();
  const y = net.call(x);
  const dir = await Deno.makeTempDir();
  try {
    const [symbolFile, paramsFile] = await net.export(`${dir}/mlp`, { epoch: 7 });
    assert.equal(symbolFile, `${dir}/mlp-symbol.json`);
    assert.equal(paramsFile, `${dir}/mlp-0007.params`);
    const file = await loadParams(paramsFile!);
    assert.deepEqual(file.names, ["arg:0.weight", "arg:0.bias", "arg:1.weight", "arg:1.bias"]);
    const back = await SymbolBlock.imports(symbolFile, ["data"], paramsFile);
    assert.deepEqual((back.call(x) as Tensor).toArray(), y.toArray());
    assert.deepEqual(Object.keys(back.collectParams()), [
      "0.weight",
      "0.bias",
      "1.weight",
      "1.bias",
    ]);
    assert.match(String(back), /^SymbolBlock\(\n[\s\S]*: 1 -> 1\n\)$/);
    // Import without parameters, then load them.
    const bare = await SymbolBlock.imports(symbolFile, "data");
    await bare.loadParameters(paramsFile!);
    assert.deepEqual((bare.call(x) as Tensor).toArray(), y.toArray());
    await assert.rejects(
      () => SymbolBlock.imports(symbolFile, ["nope"], paramsFile),
      /no input named 'nope'/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("export keeps BatchNorm statistics as aux: entries", async () => {
  const net = new nn.HybridSequential().add(new nn.Dense(4));
  const bnLike = sym.BatchNorm(sym.var("data"), { name: "bn", fix_gamma: false });
  const block = new SymbolBlock(bnLike, sym.var("data"));
  block.initialize();
  block.call(nd.ones([2, 3]));
  const dir = await Deno.makeTempDir();
  try {
    const [, paramsFile] = await block.export(`${dir}/bn`);
    const names = (await loadParams(paramsFile!)).names;
    assert.deepEqual(names, [
      "arg:bn_gamma",
      "arg:bn_beta",
      "aux:bn_moving_mean",
      "aux:bn_moving_var",
    ]);
    assert.equal(block.collectParams()["bn_moving_var"].gradReq, "null");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.ok(net);
});

Deno.test("SymbolBlock over internals shares the source block's parameters", () => {
  const net = mlp();
  const x = nd.ones([2, 5]);
  net.call(x);
  const data = sym.var("data");
  const traced = net.call(data) as unknown as Symbol;
  const internals = traced.getInternals();
  assert.ok(internals.listOutputs().includes("0_act_fwd_output"));
  const feat = new SymbolBlock(internals.get("0_act_fwd_output"), data, net.collectParams());
  assert.equal(feat.collectParams()["0.weight"], net.collectParams()["0.weight"]);
  const expected = nd.Activation(
    nd.FullyConnected(
      x,
      net.collectParams()["0.weight"].data(),
      net.collectParams()["0.bias"].data(),
      {
        num_hidden: 6,
      },
    ),
    { act_type: "tanh" },
  );
  assertClose(feat.call(x) as Tensor, (expected.toArray() as number[][]).flat());
  // Two outputs at once.
  const both = new SymbolBlock(
    [internals.get("0_act_fwd_output"), traced],
    data,
    net.collectParams(),
  );
  const outs = both.call(x) as Tensor[];
  assert.deepEqual(outs.map((t) => t.shape), [[2, 6], [2, 3]]);
  assert.throws(() => new SymbolBlock(traced, sym.exp(data)), /must be a variable/);
  assert.throws(() => feat.call(x, x), /expects 1 inputs/);
});

Deno.test("loadParameters follows MXNet's missing/extra/dtype rules", async () => {
  const net = mlp();
  const dir = await Deno.makeTempDir();
  try {
    await net.saveParameters(`${dir}/a.params`);
    const other = new nn.HybridSequential().add(
      new nn.Dense(6, { activation: "tanh" }),
      new nn.Dense(3),
    );
    await other.loadParameters(`${dir}/a.params`);
    assert.deepEqual(
      other.collectParams()["1.weight"].data().toArray(),
      net.collectParams()["1.weight"].data().toArray(),
    );
    // Missing and extra names are listed.
    const bigger = new nn.HybridSequential().add(new nn.Dense(6), new nn.Dense(3), new nn.Dense(2));
    await assert.rejects(
      () => bigger.loadParameters(`${dir}/a.params`),
      (e: Error) =>
        e instanceof SigilError && /'2.weight' is missing/.test(e.message) &&
        /0.weight/.test(e.message),
    );
    await bigger.loadParameters(`${dir}/a.params`, { allowMissing: true });
    const smaller = new nn.HybridSequential().add(new nn.Dense(6));
    await assert.rejects(
      () => smaller.loadParameters(`${dir}/a.params`),
      /'1.weight' loaded from .* is not present/,
    );
    await smaller.loadParameters(`${dir}/a.params`, { ignoreExtra: true });
    // Shapes must agree.
    const wrong = new nn.HybridSequential().add(new nn.Dense(7), new nn.Dense(3));
    await assert.rejects(() => wrong.loadParameters(`${dir}/a.params`), ShapeError);
    // Dtypes: fail, cast to the current dtype, or take the saved one.
    const half = new nn.HybridSequential().add(
      new nn.Dense(6, { dtype: "float16" }),
      new nn.Dense(3),
    );
    await assert.rejects(() => half.loadParameters(`${dir}/a.params`), DTypeError);
    await half.loadParameters(`${dir}/a.params`, { castDtype: true });
    assert.equal(half.collectParams()["0.weight"].data().dtype, "float16");
    await half.loadParameters(`${dir}/a.params`, { castDtype: true, dtypeSource: "saved" });
    assert.equal(half.collectParams()["0.weight"].dtype, "float32");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveParameters deduplicates shared parameters on request; npz works too", async () => {
  const a = new nn.Dense(2, { inUnits: 2 });
  const net = new nn.HybridSequential().add(a, a);
  net.initialize();
  const dir = await Deno.makeTempDir();
  try {
    await net.saveParameters(`${dir}/dup.params`);
    await net.saveParameters(`${dir}/dedup.params`, { deduplicate: true });
    assert.equal((await loadParams(`${dir}/dup.params`)).arrays.length, 4);
    assert.equal((await loadParams(`${dir}/dedup.params`)).arrays.length, 2);
    const fresh = new nn.Dense(2, { inUnits: 2 });
    const net2 = new nn.HybridSequential().add(fresh, fresh);
    await net2.loadParameters(`${dir}/dedup.params`);
    await net.saveParameters(`${dir}/p.npz`);
    assert.equal((await loadParams(`${dir}/p.npz`)).format, "npz");
    await net2.loadParameters(`${dir}/p.npz`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("save/load keep the block tree, parameters and hybridization", async () => {
  const net = mlp();
  net.hybridize();
  const x = nd.ones([1, 5]);
  const y = net.call(x);
  const dir = await Deno.makeTempDir();
  try {
    await net.save(`${dir}/m`);
    const back = new nn.HybridSequential().add(
      new nn.Dense(6, { activation: "tanh" }),
      new nn.Dense(3),
    );
    await back.load(`${dir}/m`);
    assert.ok(back.isHybridized);
    assert.deepEqual(back.call(x).toArray(), y.toArray());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("summary prints MXNet's table", () => {
  const net = new nn.HybridSequential().add(
    new nn.Dense(4, { activation: "relu" }),
    new nn.Dense(2),
  );
  net.initialize();
  const orig = console.log;
  console.log = () => {};
  let table: string;
  try {
    table = net.summary(nd.ones([1, 3]));
  } finally {
    console.log = orig;
  }
  const lines = table.split("\n");
  assert.equal(lines[0], "-".repeat(80));
  assert.equal(
    lines[1],
    `${"Layer (type)".padStart(20)}  ${"Output Shape".padStart(42)} ${"Param #".padStart(15)}`,
  );
  assert.equal(lines[3], `${"Input".padStart(20)}  ${"(1, 3)".padStart(42)} ${"0".padStart(15)}`);
  assert.ok(lines.some((l) => l.trimStart().startsWith("Activation-1")));
  assert.ok(
    lines.includes(`${"Dense-1".padStart(20)}  ${"(1, 4)".padStart(42)} ${"16".padStart(15)}`),
  );
  assert.ok(lines.includes("   Total params: 26"));
  net.hybridize();
  assert.throws(() => net.summary(nd.ones([1, 3])), /not hybridized/);
});

Deno.test("a parameter record makes a block a pure function", () => {
  const net = mlp();
  const f = net.asFunction();
  const x = nd.ones([2, 5]);
  const rec = net.paramRecord();
  assert.deepEqual((f(rec, x) as Tensor).toArray(), net.call(x).toArray());
  const zero = Object.fromEntries(Object.entries(rec).map(([k, t]) => [k, nd.zeros(t.shape)]));
  assert.deepEqual((f(zero, x) as Tensor).toArray(), [[0, 0, 0], [0, 0, 0]]);
  assert.deepEqual(net.paramRecord(), rec);
  assert.throws(() => f({}, x), /no tensor for '0.weight'/);
  assert.ok(new Parameter("w").toString().startsWith("Parameter w"));
});

Deno.test("AlexNet feature extractor: features_9_act_fwd_output through a SymbolBlock sharing parameters", async () => {
  const { modelZoo } = await import("../../mod.ts");
  const net = modelZoo.vision.alexnet();
  net.initialize({ seed: 0 });
  net.inferShape(nd.zeros([1, 3, 224, 224]));
  const data = sym.var("data");
  const internals = (net.call(data) as unknown as Symbol).getInternals();
  const features = new SymbolBlock(
    internals.get("features_9_act_fwd_output"),
    data,
    net.collectParams(),
  );
  for (const [name, p] of Object.entries(features.collectParams())) {
    assert.equal(p, net.collectParams()[name], name);
  }
  assert.deepEqual(Object.keys(features.collectParams()).at(-1), "features.9.bias");
  const x = nd.random.uniform(0, 1, [1, 3, 224, 224], { seed: 4 });
  const f = features.call(x) as Tensor;
  assert.deepEqual(f.shape, [1, 4096]);
  assert.ok((f.toArray() as number[][])[0].every((v) => v >= 0)); // after ReLU
});
