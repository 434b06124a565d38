/**
 * WebGPU artifacts in headless Chromium (Debian's `chromium`; .ci/run installs it). Chromium
 * with `--enable-unsafe-webgpu` gives a page an adapter even on a machine with no GPU (Dawn on
 * SwiftShader's Vulkan, a CPU device); without the flag `navigator.gpu` is there but
 * `requestAdapter()` resolves to null. A small CNN (convolution, BatchNorm, pooling, dense)
 * and the zoo's MobileNet v2 (0.25, 32×32) are compiled to a `webgpu` artifact and to a `both` (wasm + webgpu) one;
 * the page loads and runs them:
 *
 * - with an adapter, both artifacts run on WebGPU and agree with Deno's JIT WebGPU engine
 *   within float32 tolerance (rtol 1e-4, atol 1e-5: the same WGSL on another device);
 * - with no adapter, and with `navigator.gpu` taken away, the `both` artifact runs on WASM,
 *   says why in `metadata.backendNote`, and gives the JIT WASM engine's bits, while the
 *   `webgpu` artifact refuses to load (`ModelError` code `webgpu`).
 *
 * Flags tried on a machine without a GPU (Chromium 156): none, `--disable-gpu`, or
 * `--disable-blink-features=WebGPU`: `navigator.gpu` exists, `requestAdapter()` gives null;
 * `--enable-unsafe-webgpu` (alone, with `--disable-gpu`, with `--use-webgpu-adapter=swiftshader`
 * or with `--enable-features=Vulkan --use-vulkan=swiftshader`): a SwiftShader adapter
 * (`isFallbackAdapter`) whose device works; `--use-vulkan=native --use-angle=vulkan` (Mesa's
 * lavapipe) breaks the GPU process (Skia finds no `samplerYcbcrConversion`) and the page never
 * loads. SqueezeNet 1.1 (224×224, its last pooling needs that size) took about 50 s on
 * SwiftShader for the two artifacts, so the zoo model here is the smaller MobileNet.
 *
 * Ignored where there is no Chromium, or no WebGPU adapter in Deno and SIGIL_NO_WEBGPU=1.
 */
import { compile } from "../../compiler/aot/mod.ts";
import { modelZoo, nd, nn, type Tensor, wasmEngine } from "../../mod.ts";
import type { HybridBlock } from "../../gluon/block.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { assert, assertClose, BACKEND_TOL } from "../util.ts";
import { engine, noGpu } from "../lower/webgpu/gpu_harness.ts";
import { chromiumPath, chromiumReport } from "../platforms/chromium.ts";

const HERE = new URL("./", import.meta.url);
/** Longest one browser may take to report (the whole test takes well under a minute). */
const BROWSER_MS = 90_000;

interface Expected {
  /** Deno's JIT WebGPU engine. */
  gpu: Float64Array | Float32Array;
  /** Deno's JIT WASM engine (baseline SIMD, one thread): the bits WASM must give. */
  wasm: Float32Array;
}

function smallCnn(): HybridBlock {
  const net = new nn.HybridSequential().add(
    new nn.Conv2D(8, 3, { padding: 1, activation: "relu" }),
    new nn.BatchNorm(),
    new nn.MaxPool2D(),
    new nn.Conv2D(16, 3, { padding: 1, strides: 2 }),
    new nn.GlobalAvgPool2D(),
    new nn.Flatten(),
    new nn.Dense(10),
  );
  net.initialize({ seed: 41 });
  return net;
}

function mobilenet(): HybridBlock {
  const net = modelZoo.vision.getModel("mobilenetv2_0.25", { classes: 10 }) as HybridBlock;
  net.initialize({ seed: 42 });
  return net;
}

/** Writes `<dir>/<name>/{webgpu,both}/` and the input; returns what Deno's engines compute. */
async function prepare(
  dir: string,
  name: string,
  net: HybridBlock,
  shape: number[],
): Promise<Expected> {
  const x = nd.random.uniform(-1, 1, shape, { seed: 43 });
  for (const [kind, target] of [["webgpu", "webgpu"], ["both", ["wasm", "webgpu"]]] as const) {
    const artifact = await compile(net, {
      inputs: { data: shape },
      target,
      simd: "baseline",
      minify: false,
    });
    await artifact.write(`${dir}/${name}/${kind}`);
  }
  const data = x.dataSync() as Float32Array;
  await Deno.writeTextFile(`${dir}/${name}/input.json`, JSON.stringify({ x: Array.from(data) }));
  net.hybridize({ engine: engine() });
  const gpu = tensorValues(await net.callAsync(x) as Tensor);
  net.hybridize({ engine: wasmEngine({ threads: 1, relaxedSimd: false }) });
  const wasm = (net.call(x) as Tensor).dataSync() as Float32Array;
  return { gpu, wasm: new Float32Array(wasm) };
}

function serve(dir: string, modes: readonly string[]) {
  const reports = new Map(modes.map((m) => [m, Promise.withResolvers<Record<string, unknown>>()]));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const m = /^\/(\w+)\/(.*)$/.exec(new URL(req.url).pathname);
    const report = m && reports.get(m[1]);
    if (!m || !report) return new Response("not found", { status: 404 });
    const rest = m[2];
    if (rest === "result" && req.method === "POST") {
      report.resolve(await req.json());
      return new Response("ok");
    }
    if (rest === "index.html") {
      const html = '<!doctype html><script type="module" src="./webgpu_page.mjs"></script>';
      return new Response(html, { headers: { "content-type": "text/html" } });
    }
    let path: string | URL | undefined;
    if (rest === "webgpu_page.mjs") path = new URL("webgpu_page.mjs", HERE);
    else if (/^model\/[\w.\/-]+$/.test(rest) && !rest.includes("..")) {
      path = `${dir}/${rest.slice(6)}`;
    }
    if (!path) return new Response("not found", { status: 404 });
    const type = /\.m?js$/.test(rest) ? "text/javascript" : "application/octet-stream";
    try {
      return new Response(await Deno.readFile(path), { headers: { "content-type": type } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return { server, reports };
}

type Loaded = {
  backend?: string;
  note?: string;
  out?: number[];
  again?: number[];
  wasm?: number[];
  error?: { code?: string; message: string };
};

function modelReport(r: Record<string, unknown>, name: string): Record<string, Loaded> {
  assert.equal(r.error, undefined, String(r.error));
  assert.equal(r.ok, true);
  const got = (r.models as Record<string, Record<string, Loaded>>)[name];
  assert(got, `no report for ${name}`);
  return got;
}

Deno.test({
  name:
    "webgpu and wasm+webgpu artifacts in headless Chromium: WebGPU with an adapter, WASM without",
  ignore: chromiumPath() === undefined || noGpu,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "sigil-aot-browser-gpu-" });
    const models: [string, () => HybridBlock, number[]][] = [
      ["cnn", smallCnn, [1, 3, 16, 16]],
      ["mobilenet", mobilenet, [1, 3, 32, 32]],
    ];
    const expected = new Map<string, Expected>();
    try {
      for (const [name, make, shape] of models) {
        expected.set(name, await prepare(dir, name, make(), shape));
      }
      await Deno.writeTextFile(`${dir}/models.json`, JSON.stringify(models.map((m) => m[0])));
      const modes = ["gpu", "noadapter", "nogpu"];
      const { server, reports } = serve(dir, modes);
      const page = (mode: string, query = "") =>
        `http://127.0.0.1:${server.addr.port}/${mode}/index.html${query}`;
      const open = (mode: string, flags: string[], query = "") =>
        chromiumReport(page(mode, query), reports.get(mode)!.promise, `${dir}/profile-${mode}`, {
          flags,
          limitMs: BROWSER_MS,
        });
      try {
        await t.step(
          "--enable-unsafe-webgpu: an adapter; both artifacts run on WebGPU",
          async () => {
            const r = await open("gpu", ["--enable-unsafe-webgpu"]);
            assert.equal(r.navigatorGpu, true);
            assert.ok(r.adapter, "Chromium gave no WebGPU adapter");
            for (const [name, want] of expected) {
              const got = modelReport(r, name);
              for (const kind of ["webgpu", "both"]) {
                const l = got[kind];
                assert.equal(l.error, undefined, `${name} ${kind}: ${l.error?.message}`);
                assert.equal(l.backend, "webgpu", `${name} ${kind}`);
                assert.equal(l.note, "");
                assertClose(new Float32Array(l.out!), want.gpu, BACKEND_TOL);
                assert.deepStrictEqual(l.again, l.out, `${name} ${kind}: a second run differs`);
              }
              assert.deepStrictEqual(new Float32Array(got.both.wasm!), want.wasm);
            }
          },
        );
        for (
          const [mode, flags, query, why] of [
            ["noadapter", ["--disable-gpu"], "", /^WebGPU: no WebGPU adapter$/],
            ["nogpu", ["--enable-unsafe-webgpu"], "?hide=gpu", /^WebGPU: no navigator\.gpu here$/],
          ] as const
        ) {
          await t.step(`${mode}: the wasm+webgpu artifact runs on WASM and says why`, async () => {
            const r = await open(mode, [...flags], query);
            if (mode === "noadapter") assert.equal(r.adapter, null);
            else assert.equal(r.navigatorGpu, false);
            for (const [name, want] of expected) {
              const got = modelReport(r, name);
              assert.equal(got.both.error, undefined, got.both.error?.message);
              assert.equal(got.both.backend, "wasm");
              assert.match(String(got.both.note), why);
              assert.deepStrictEqual(new Float32Array(got.both.out!), want.wasm);
              assert.deepStrictEqual(new Float32Array(got.both.wasm!), want.wasm);
              assert.equal(got.webgpu.error?.code, "webgpu", `${name}: ${got.webgpu.error}`);
            }
          });
        }
      } finally {
        await server.shutdown();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
