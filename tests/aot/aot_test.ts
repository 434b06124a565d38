/**
 * Ahead-of-time artifacts in Deno: the same bits as the JIT WASM engine for the same SIMD
 * variant and thread count (small zoo-like nets, every batch size, and real MXNet files read
 * in place from ../shared/reference/fixtures), every weights mode, typed errors, and names
 * from model files that try to break out of the generated code.
 */
import { AotUnsupportedError, compile } from "../../compiler/aot/mod.ts";
import type { Artifact } from "../../compiler/aot/mod.ts";
import { SIGIL_VERSION } from "../../compiler/aot/version.ts";
import { ArgumentError, nd, nn, sym, SymbolBlock, type Tensor, wasmEngine } from "../../mod.ts";
import { assert } from "../util.ts";

const FIXTURES = new URL("../../../shared/reference/fixtures/", import.meta.url);
const HAVE_FIXTURES = (() => {
  try {
    return Deno.statSync(FIXTURES).isDirectory;
  } catch {
    return false;
  }
})();
if (!HAVE_FIXTURES) {
  console.warn(`aot_test: ${FIXTURES.pathname} is absent; the real-file tests are skipped`);
}

interface Loaded {
  // deno-lint-ignore no-explicit-any
  mod: any;
  dir: string;
}

async function written(artifact: Artifact): Promise<Loaded> {
  const dir = await Deno.makeTempDir({ prefix: "sigil-aot-" });
  await artifact.write(dir);
  const mod = await import(`file://${dir}/${artifact.files[0].path}`);
  return { mod, dir };
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i]) assert.fail(`${what}[${i}]: ${a[i]} (artifact) != ${b[i]} (JIT)`);
  }
}

/** A small ResNet-like net: Winograd and im2col convolutions, BatchNorm, pooling, dense. */
function smallNet(): nn.HybridSequential {
  const net = new nn.HybridSequential().add(
    new nn.Conv2D(16, 3, { padding: 1, activation: "relu" }),
    new nn.Conv2D(32, 3, { padding: 1, strides: 2 }),
    new nn.BatchNorm(),
    new nn.Activation("relu"),
    new nn.Conv2D(32, 3, { padding: 1 }),
    new nn.MaxPool2D(),
    new nn.Conv2D(16, 1),
    new nn.GlobalAvgPool2D(),
    new nn.Flatten(),
    new nn.Dense(10),
  );
  net.initialize({ seed: 21 });
  return net;
}

Deno.test("an artifact warmed while it loads gives the bits of one that is not", async () => {
  const net = smallNet();
  const x = nd.random.uniform(-1, 1, [1, 3, 32, 32], { seed: 5 }).dataSync() as Float32Array;
  for (const threads of [1, 2]) {
    const artifact = await compile(net, {
      inputs: { data: [1, 3, 32, 32] },
      threads,
      minify: false,
    });
    const { mod, dir } = await written(artifact);
    try {
      const cold = await mod.load({ warm: false });
      const want = Object.values(cold.run({ data: x }))[0] as Float32Array;
      cold.dispose();
      // Run at once after loading: the first run meets kernels still queued on the warmer.
      const warmed = await mod.load({ warm: true });
      for (let i = 0; i < 3; i++) {
        sameBits(Object.values(warmed.run({ data: x }))[0] as Float32Array, want, `t${threads}`);
      }
      warmed.dispose();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("artifacts give the JIT engine's bits per SIMD variant, thread count and batch size", async () => {
  const net = smallNet();
  const inputs = [1, 3].map((b) => nd.random.uniform(-1, 1, [b, 3, 32, 32], { seed: b }));
  for (const threads of [1, 2]) {
    const artifact = await compile(net, {
      inputs: { data: [1, 3, 32, 32] },
      batchSizes: [1, 3],
      threads,
      minify: false,
    });
    assert.deepStrictEqual(artifact.manifest.variants.map((v) => v.simd), ["relaxed", "baseline"]);
    const { mod, dir } = await written(artifact);
    try {
      assert.equal(mod.metadata.compiledThreads, threads);
      assert.deepStrictEqual(mod.metadata.batchSizes, [1, 3]);
      for (const simd of ["relaxed", "baseline"] as const) {
        const model = await mod.load({ simd });
        assert.equal(model.metadata.simd, simd);
        assert.equal(model.metadata.threads, threads);
        net.hybridize({ engine: wasmEngine({ threads, relaxedSimd: simd === "relaxed" }) });
        for (const x of inputs) {
          const want = (net.call(x) as Tensor).dataSync() as Float32Array;
          const out = model.run({ data: x.dataSync() as Float32Array });
          assert.deepStrictEqual(Object.keys(out), [mod.metadata.outputs[0].name]);
          sameBits(
            Object.values(out)[0] as Float32Array,
            want,
            `${simd} t${threads} b${x.shape[0]}`,
          );
        }
        model.dispose();
        // After dispose the calling thread runs everything: the same bits.
        const again = model.run({ data: inputs[0].dataSync() as Float32Array });
        net.hybridize({ engine: wasmEngine({ threads: 1, relaxedSimd: simd === "relaxed" }) });
        const one = (net.call(inputs[0]) as Tensor).dataSync() as Float32Array;
        sameBits(Object.values(again)[0] as Float32Array, one, `${simd} after dispose`);
      }
      if (threads === 2) {
        const split = artifact.manifest.variants[0].programs[0].steps.filter((s) => s[0] === 1);
        assert(split.length > 0, "some step runs split across threads");
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("weights: embedded, beside the module, passed as bytes, fetched from a URL", async () => {
  const y = sym.FullyConnected(sym.var("x"), { num_hidden: 3, name: "fc" });
  const params = {
    fc_weight: nd.random.uniform(-1, 1, [3, 5], { seed: 1 }),
    fc_bias: nd.random.uniform(-1, 1, [3], { seed: 2 }),
  };
  const x = nd.random.uniform(-1, 1, [2, 5], { seed: 3 });
  const [want] = await y.eval({ x, ...params }, {
    engine: wasmEngine({ threads: 1, relaxedSimd: false }),
  });
  const check = (model: { run(i: unknown): Record<string, Float32Array> }, what: string) =>
    sameBits(model.run({ x: x.dataSync() })["fc_output"], want.dataSync() as Float32Array, what);
  const options = { inputs: { x: [2, 5] }, simd: "baseline" as const, minify: false };

  const embedded = await compile({ symbol: y, params }, { ...options, weights: "embed" });
  assert.deepStrictEqual(embedded.files.map((f) => f.path), ["model.js", "model.d.ts"]);
  const e = await written(embedded);
  await check(await e.mod.load(), "embed");

  const external = await compile({ symbol: y, params }, { ...options, name: "fc-net" });
  assert.deepStrictEqual(external.files.map((f) => f.path), [
    "fc-net.js",
    "fc-net.d.ts",
    "fc-net.bin",
  ]);
  const ex = await written(external);
  await check(await ex.mod.load(), "external");
  const bytes = await Deno.readFile(`${ex.dir}/fc-net.bin`);
  await check(await ex.mod.load({ weights: bytes }), "bytes");
  await check(await ex.mod.load({ weights: `${ex.dir}/fc-net.bin` }), "path");
  await assert.rejects(
    ex.mod.load({ weights: bytes.subarray(4) }),
    (err: Error & { code?: string }) => err.name === "ModelError" && err.code === "weights",
  );

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path !== "/w/fc-net.bin") return new Response("no", { status: 404 });
    return new Response(await Deno.readFile(`${ex.dir}/fc-net.bin`));
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const fetched = await compile({ symbol: y, params }, {
      ...options,
      name: "fc-net",
      weights: "fetch",
      weightsUrl: `${base}/w/`,
    });
    assert.deepStrictEqual(fetched.files.map((f) => f.path), ["fc-net.js", "fc-net.d.ts"]);
    const f = await written(fetched);
    await check(await f.mod.load(), "fetch");
    const missing = await compile({ symbol: y, params }, {
      ...options,
      weights: "fetch",
      weightsUrl: `${base}/gone.bin`,
    });
    const m = await written(missing);
    await assert.rejects(m.mod.load(), /HTTP 404/);
    for (const d of [f.dir, m.dir]) await Deno.remove(d, { recursive: true });
  } finally {
    await server.shutdown();
  }
  for (const d of [e.dir, ex.dir]) await Deno.remove(d, { recursive: true });
});

Deno.test("weights go straight into the program memories: files, bytes, streamed bodies, bad sizes", async () => {
  const net = smallNet();
  // Two batch sizes: two memories that hold the same constants (one range of the file each).
  const artifact = await compile(net, {
    inputs: { data: [1, 3, 32, 32] },
    batchSizes: [1, 3],
    simd: "baseline",
    minify: false,
  });
  const { mod, dir } = await written(artifact);
  const file = `${dir}/model.bin`;
  const bytes = await Deno.readFile(file);
  net.hybridize({ engine: wasmEngine({ threads: 1, relaxedSimd: false }) });
  const xs = [1, 3].map((b) => nd.random.uniform(-1, 1, [b, 3, 32, 32], { seed: 40 + b }));
  const wants = xs.map((x) => (net.call(x) as Tensor).dataSync() as Float32Array);
  const check = async (weights: unknown, what: string) => {
    const model = await mod.load(weights === undefined ? {} : { weights });
    xs.forEach((x, i) => {
      const out = Object.values(model.run({ data: x.dataSync() }))[0] as Float32Array;
      sameBits(out, wants[i], `${what}, batch ${x.shape[0]}`);
    });
    model.dispose();
  };
  const isWeightsError = (pattern: RegExp) => (e: Error & { code?: string }) =>
    e instanceof mod.ModelError && e.code === "weights" && pattern.test(e.message);
  // A body sent in chunks of `size` bytes (no Content-Length: chunked), cut short or too long.
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const [, mode, size] = new URL(req.url).pathname.split("/");
    const body = mode === "short"
      ? bytes.subarray(0, bytes.length - 5)
      : mode === "long"
      ? new Uint8Array([...bytes, 1, 2, 3])
      : bytes;
    const step = Number(size);
    let at = 0;
    return new Response(
      new ReadableStream<Uint8Array>({
        pull(c) {
          if (at >= body.length) return c.close();
          c.enqueue(body.slice(at, at + step));
          at += step;
        },
      }),
    );
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    await check(undefined, "beside the module");
    await check(file, "path");
    await check(bytes, "bytes");
    await check(new Uint8Array([7, ...bytes]).subarray(1), "bytes at an odd offset");
    for (const size of [1, 4093, 1 << 20]) await check(`${base}/ok/${size}`, `chunks of ${size}`);
    await assert.rejects(
      () => mod.load({ weights: `${base}/short/4093` }),
      isWeightsError(new RegExp(`have ${bytes.length - 5} bytes`)),
    );
    await assert.rejects(
      () => mod.load({ weights: `${base}/long/4093` }),
      isWeightsError(new RegExp(`more than ${bytes.length} bytes`)),
    );
    // A connection that closes half way through a chunked body.
    const raw = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const served = (async () => {
      const conn = await raw.accept();
      await conn.read(new Uint8Array(4096));
      const half = bytes.subarray(0, bytes.length >> 1);
      const head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" +
        `${half.length.toString(16)}\r\n`;
      await conn.write(new TextEncoder().encode(head));
      await conn.write(half);
      conn.close();
    })();
    await assert.rejects(
      () => mod.load({ weights: `http://127.0.0.1:${raw.addr.port}/model.bin` }),
      isWeightsError(/stopped arriving/),
    );
    await served;
    raw.close();
    // Files of the wrong size are refused before anything is read from them.
    await Deno.writeFile(`${dir}/short.bin`, bytes.subarray(0, bytes.length - 1));
    await Deno.writeFile(`${dir}/long.bin`, new Uint8Array([...bytes, 0]));
    await Deno.writeFile(`${dir}/empty.bin`, new Uint8Array(0));
    for (const [name, size] of [["short", bytes.length - 1], ["long", bytes.length + 1]]) {
      await assert.rejects(
        () => mod.load({ weights: `${dir}/${name}.bin` }),
        isWeightsError(
          new RegExp(`have ${size} bytes; the baseline variant needs ${bytes.length}`),
        ),
      );
    }
    await assert.rejects(() => mod.load({ weights: `${dir}/empty.bin` }), isWeightsError(/have 0/));
    await assert.rejects(() => mod.load({ weights: `${dir}/gone.bin` }), isWeightsError(/gone/));
    await assert.rejects(() => mod.load({ weights: bytes.subarray(1) }), isWeightsError(/bytes/));
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "real MXNet files compile from paths and give the JIT's bits; PReLU is refused",
  ignore: !HAVE_FIXTURES,
}, async () => {
  const cases = [
    ["gluon160-mnist-cnn", "gluon160-mnist-cnn-0035", [2, 1, 28, 28]],
    ["gluon130-mlp-taxi", "gluon130-mlp-taxi-0004", [5, 4]],
  ] as const;
  for (const [name, params, shape] of cases) {
    const symbolFile = new URL(`symbol-json/${name}-symbol.json`, FIXTURES);
    const paramsFile = new URL(`params/${params}.params`, FIXTURES).pathname;
    const artifact = await compile({ symbol: symbolFile, params: paramsFile }, {
      inputs: { data: [...shape] },
      simd: "relaxed",
      minify: false,
    });
    const { mod, dir } = await written(artifact);
    const model = await mod.load();
    const block = await SymbolBlock.imports(symbolFile, ["data"], paramsFile);
    block.hybridize({ engine: wasmEngine({ threads: 1, relaxedSimd: true }) });
    const x = nd.random.uniform(0, 1, [...shape], { seed: 4 });
    const want = (block.call(x) as Tensor).dataSync() as Float32Array;
    sameBits(model.run({ data: x.dataSync() })[mod.metadata.outputs[0].name], want, name);
    await Deno.remove(dir, { recursive: true });
  }
  await assert.rejects(
    compile({
      symbol: new URL("symbol-json/legacy-mtcnn-det1-symbol.json", FIXTURES),
      params: new URL("params/legacy-mtcnn-det1-0001.params", FIXTURES),
    }, { inputs: { data: [1, 3, 12, 12] }, minify: false }),
    (e) =>
      e instanceof AotUnsupportedError &&
      e.nodes.map((n) => n.node).join() === "prelu1,prelu2,prelu3" &&
      e.nodes.every((n) => n.op === "LeakyReLU") && /LeakyReLU/.test(e.message),
  );
});

Deno.test("names from model files stay data: hostile input, output and file names", async () => {
  const evil = [
    '"); process.exit(1); ("',
    "</script><script>globalThis.pwned = 1</script>",
    "${globalThis.pwned = 2}",
    "__proto__",
    "../../x\u2028*/ globalThis.pwned = 3 /*",
  ];
  const a = sym.var(evil[0]);
  const b = sym.var(evil[3]);
  const fc = sym.FullyConnected(a, { num_hidden: 4, name: evil[1] });
  const sum = sym.broadcast_add(fc, b, { name: evil[2] });
  const ex = sym.exp(fc, { name: evil[4] });
  const net = sym.group([sum, ex]);
  const params = {
    [`${evil[1]}_weight`]: nd.random.uniform(-1, 1, [4, 3], { seed: 1 }),
    [`${evil[1]}_bias`]: nd.zeros([4]),
  };
  const artifact = await compile({ symbol: net, params }, {
    inputs: { [evil[0]]: [2, 3], [evil[3]]: [2, 4] },
    weights: "embed",
    minify: true,
  });
  for (const text of [artifact.js, artifact.dts]) {
    assert(!/<\/script/i.test(text), "no closing script tag");
    assert(!/[\u2028\u2029]/.test(text), "no raw line separators");
  }
  const { mod, dir } = await written(artifact);
  try {
    assert.equal((globalThis as { pwned?: number }).pwned, undefined);
    assert.deepStrictEqual(mod.metadata.inputs.map((t: { name: string }) => t.name), [
      evil[0],
      evil[3],
    ]);
    const outNames = mod.metadata.outputs.map((t: { name: string }) => t.name);
    assert.deepStrictEqual(outNames, [`${evil[2]}_output`, `${evil[4]}_output`]);
    const model = await mod.load();
    const x = nd.random.uniform(-1, 1, [2, 3], { seed: 5 });
    const y = nd.random.uniform(-1, 1, [2, 4], { seed: 6 });
    const given: Record<string, Float32Array> = {};
    Object.defineProperty(given, evil[0], { value: x.dataSync(), enumerable: true });
    Object.defineProperty(given, evil[3], { value: y.dataSync(), enumerable: true });
    const out = model.run(given);
    assert.deepStrictEqual(Object.keys(out), outNames);
    const [want] = await net.eval({ [evil[0]]: x, [evil[3]]: y, ...params }, {
      engine: wasmEngine({ threads: 1 }),
    });
    sameBits(out[outNames[0]], want.dataSync() as Float32Array, "hostile names");
    assert.equal((globalThis as { pwned?: number }).pwned, undefined);
    // The .d.ts parses and types the hostile names.
    await Deno.writeTextFile(
      `${dir}/consumer.ts`,
      `import type { Inputs, Outputs } from "./model.d.ts";\n` +
        `export const pick = (o: Outputs): Float32Array => o[${JSON.stringify(outNames[1])}];\n` +
        `export type I = Inputs[${JSON.stringify(evil[0])}];\n`,
    );
    const check = await new Deno.Command(Deno.execPath(), {
      args: ["check", `${dir}/consumer.ts`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(check.code, 0, new TextDecoder().decode(check.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await assert.rejects(
    compile({ symbol: net, params }, {
      inputs: { [evil[0]]: [2, 3], [evil[3]]: [2, 4] },
      name: "../evil",
    }),
    (e) => e instanceof ArgumentError && e.argument === "name",
  );
});

Deno.test("typed errors: options, inputs of the wrong size, runRaw into caller buffers", async () => {
  const y = sym.Activation(sym.var("data"), { act_type: "relu" });
  await assert.rejects(
    compile({ symbol: y }, { inputs: { data: [1, 4] }, target: "webgl" }),
    (e) =>
      e instanceof ArgumentError && e.argument === "target" &&
      /available: wasm, webgpu/.test(e.message),
  );
  await assert.rejects(
    compile({ symbol: y }, { inputs: { dta: [1, 4] } }),
    (e) =>
      e instanceof ArgumentError &&
      /'?"data"'? is neither a parameter nor in inputs/.test(e.message),
  );
  await assert.rejects(
    compile({ symbol: y }, { inputs: { data: [1, -4] } }),
    (e) => e instanceof ArgumentError && e.argument === "data",
  );
  await assert.rejects(
    compile({ symbol: y }, { inputs: { data: [1, 4] }, weights: "fetch" }),
    (e) => e instanceof ArgumentError && e.argument === "weightsUrl",
  );
  const artifact = await compile({ symbol: y }, { inputs: { data: [2, 4] }, minify: false });
  const { mod, dir } = await written(artifact);
  try {
    const model = await mod.load();
    const isInputError = (e: Error & { code?: string }) =>
      e instanceof mod.ModelError && e.code === "input";
    assert.throws(() => model.run({ data: new Float32Array(7) }), isInputError);
    assert.throws(() => model.run({ other: new Float32Array(8) }), isInputError);
    assert.throws(() => model.run({ data: new Float64Array(8) }), isInputError);
    const name = mod.metadata.outputs[0].name;
    const into = { [name]: new Float32Array(8) };
    model.runRaw({ data: new Float32Array([-1, 1, -2, 2, -3, 3, -4, 4]) }, into);
    assert.deepStrictEqual(into[name], new Float32Array([0, 1, 0, 2, 0, 3, 0, 4]));
    assert.throws(
      () => model.runRaw({ data: new Float32Array(8) }, { [name]: new Float32Array(3) }),
      (e: Error & { code?: string }) => e.code === "output",
    );
    await assert.rejects(
      mod.load({ simd: "other" }),
      (e: Error & { code?: string }) => e.code === "options",
    );
    await assert.rejects(
      mod.load({ threads: 0 }),
      (e: Error & { code?: string }) => e.code === "options",
    );
    await assert.rejects(
      mod.load({ warm: "yes" }),
      (e: Error & { code?: string }) => e.code === "options" && /warm/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("metadata: sigil version, a stable graph hash, types for the inputs and outputs", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  assert.equal(SIGIL_VERSION, config.version);
  const y = sym.softmax(sym.var("data"), { name: "prob" });
  const one = await compile({ symbol: y }, { inputs: { data: [1, 10] }, minify: false });
  const two = await compile({ symbol: y }, { inputs: { data: [1, 10] }, minify: false });
  const other = await compile({ symbol: y }, { inputs: { data: [2, 10] }, minify: false });
  // Compiled for two threads, but nothing this small splits: one thread, and the reason.
  const tiny = await compile({ symbol: y }, {
    inputs: { data: [1, 10] },
    threads: 2,
    minify: false,
  });
  const t = await written(tiny);
  const model = await t.mod.load();
  assert.equal(model.metadata.threads, 1);
  assert.match(model.metadata.threadsNote, /no step of this model splits/);
  await Deno.remove(t.dir, { recursive: true });
  assert.match(one.manifest.graphHash, /^[0-9a-f]{64}$/);
  assert.equal(one.manifest.graphHash, two.manifest.graphHash);
  assert.notEqual(one.manifest.graphHash, other.manifest.graphHash);
  assert.equal(one.manifest.sigil, SIGIL_VERSION);
  assert.match(one.dts, /readonly "data": Float32Array;/);
  assert.match(one.dts, /"prob_output": Float32Array;/);
  // No static import, no import of a fixed specifier (the runtime's `import(spec)` reaches
  // node: builtins only, and only where `process.getBuiltinModule` is missing).
  assert(!/^\s*import\s*[\w{*"']/m.test(one.js), "no import statement");
  assert(!/\bimport\s*\(\s*["'`]/.test(one.js), "no import of a fixed specifier");
});
