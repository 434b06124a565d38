/**
 * An ahead-of-time artifact where users run it: plain Node 20 (no flags) and headless
 * Chromium (Debian's `chromium`; .ci/run installs it), from a local server with and without
 * cross-origin isolation. The artifact (two threads, both SIMD variants, minified, weights
 * beside it) must give the bits Deno's JIT engine gives for the variant it picks; isolated
 * pages and Node run on two threads, a page that is not isolated on one. Every child process
 * is bounded in time.
 */
import { compile } from "../../compiler/aot/mod.ts";
import { nd, nn, type Tensor, wasmEngine } from "../../mod.ts";
import { assert } from "../util.ts";
import { chromiumReport } from "../platforms/chromium.ts";

const HERE = new URL("./", import.meta.url);
const CHILD_MS = 240_000;

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const child = new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(CHILD_MS),
  }).spawn();
  const { code, stdout, stderr } = await child.output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout) + dec.decode(stderr) };
}

async function node20(): Promise<[string, string[]]> {
  try {
    const r = await run("node", ["--version"]);
    if (r.code === 0 && r.out.startsWith("v20.")) return ["node", []];
  } catch {
    // no node on PATH: fetch one
  }
  return ["npx", ["-y", "node@20"]];
}

/** The artifact and the JIT's output bits for each variant, written to `dir`. */
async function makeArtifact(dir: string): Promise<void> {
  const net = new nn.HybridSequential().add(
    new nn.Conv2D(16, 3, { padding: 1, activation: "relu" }),
    new nn.Conv2D(32, 3, { padding: 1 }),
    new nn.MaxPool2D(),
    new nn.Conv2D(16, 1, { activation: "relu" }),
    new nn.Flatten(),
    new nn.Dense(10),
  );
  net.initialize({ seed: 31 });
  const x = nd.random.uniform(-1, 1, [2, 3, 24, 24], { seed: 32 });
  const artifact = await compile(net, { inputs: { data: [2, 3, 24, 24] }, threads: 2 });
  assert(artifact.manifest.variants[0].programs[0].steps.some((s) => s[0] === 1), "a split step");
  await artifact.write(dir);
  const bits = (t: Tensor) =>
    Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));
  const expected: Record<string, number[]> = { x: bits(x) };
  for (const simd of ["relaxed", "baseline"]) {
    net.hybridize({ engine: wasmEngine({ threads: 2, relaxedSimd: simd === "relaxed" }) });
    expected[simd] = bits(net.call(x) as Tensor);
  }
  await Deno.writeTextFile(`${dir}/expected.json`, JSON.stringify(expected));
}

function serve(dir: string) {
  const reports = new Map<string, PromiseWithResolvers<Record<string, unknown>>>();
  for (const mode of ["iso", "plain"]) reports.set(mode, Promise.withResolvers());
  const types: Record<string, string> = { js: "text/javascript", mjs: "text/javascript" };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const m = /^\/(iso|plain)\/(.*)$/.exec(new URL(req.url).pathname);
    if (!m) return new Response("not found", { status: 404 });
    const [, mode, rest] = m;
    const headers = new Headers(
      mode === "iso"
        ? {
          "cross-origin-opener-policy": "same-origin",
          "cross-origin-embedder-policy": "require-corp",
        }
        : {},
    );
    if (rest === "result" && req.method === "POST") {
      reports.get(mode)!.resolve(await req.json());
      return new Response("ok", { headers });
    }
    let path: string | URL | undefined;
    if (rest === "index.html") {
      headers.set("content-type", "text/html");
      return new Response('<!doctype html><script type="module" src="./page.mjs"></script>', {
        headers,
      });
    }
    if (rest === "page.mjs") path = new URL("page.mjs", HERE);
    else if (/^model\/[\w.-]+$/.test(rest)) path = `${dir}/${rest.slice(6)}`;
    if (!path) return new Response("not found", { status: 404, headers });
    headers.set("content-type", types[rest.split(".").pop()!] ?? "application/octet-stream");
    try {
      return new Response(await Deno.readFile(path), { headers });
    } catch {
      return new Response("not found", { status: 404, headers });
    }
  });
  return { server, reports };
}

Deno.test("an AOT artifact gives the JIT's bits in Node 20 and headless Chromium", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "sigil-aot-platforms-" });
  try {
    await makeArtifact(dir);
    await t.step("Node 20, no flags: two threads, then one", async () => {
      const [cmd, pre] = await node20();
      const r = await run(cmd, [...pre, new URL("node_check.mjs", HERE).pathname, dir]);
      assert.equal(r.code, 0, `Node 20 failed:\n${r.out}`);
      const line = r.out.trim().split("\n").filter((l) => l.startsWith("{")).pop();
      assert(line, `no report:\n${r.out}`);
      const report = JSON.parse(line);
      assert(String(report.node).startsWith("20."), `ran on Node ${report.node}`);
      assert.equal(report.threads, 2);
      assert.equal(report.ok, true);
    });
    const { server, reports } = serve(dir);
    const base = `http://127.0.0.1:${server.addr.port}`;
    try {
      await t.step("Chromium, cross-origin isolated: two threads", async () => {
        const r = await chromiumReport(
          `${base}/iso/index.html`,
          reports.get("iso")!.promise,
          `${dir}/profile-iso`,
        );
        assert.equal(r.error, undefined, String(r.error));
        assert.equal(r.isolated, true);
        assert.equal(r.threads, 2);
        assert.equal(r.ok, true);
      });
      await t.step("Chromium, not isolated: one thread, noted", async () => {
        const r = await chromiumReport(
          `${base}/plain/index.html`,
          reports.get("plain")!.promise,
          `${dir}/profile-plain`,
        );
        assert.equal(r.error, undefined, String(r.error));
        assert.equal(r.isolated, false);
        assert.equal(r.threads, 1);
        assert.match(String(r.threadsNote), /^one thread: /);
        assert.equal(r.ok, true);
      });
    } finally {
      await server.shutdown();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
