/**
 * sigil where users run it, outside Deno: an ES bundle of mod.ts built for browsers with
 * esbuild-wasm (no externals), Node 20 on that bundle, Node 22 on the TypeScript sources with
 * type stripping, and headless Chromium (Debian's `chromium`; .ci/run installs it) loading the
 * bundle from a local server, with and without cross-origin isolation. Every child process is
 * bounded in time. Node 22 and, where the `node` on PATH is not Node 20, Node 20 come from npm
 * through `npx`.
 */
import * as esbuild from "npm:esbuild-wasm@0.25.0";
import { nd, nn } from "../../mod.ts";
import { saveNpy } from "../../runtime/params.ts";
import { zip } from "../runtime/zip.ts";
import { assert } from "../util.ts";
import { chromiumReport } from "./chromium.ts";

const ROOT = new URL("../../", import.meta.url);
const HERE = new URL("./", import.meta.url);
/** Longest a child process (Node, Chromium) may run. */
const CHILD_MS = 240_000;

interface Run {
  code: number;
  out: string;
}

async function run(cmd: string, args: string[], cwd = ROOT): Promise<Run> {
  const child = new Deno.Command(cmd, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(CHILD_MS),
  }).spawn();
  const { code, stdout, stderr } = await child.output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout) + dec.decode(stderr) };
}

/** The last line of a check's output, parsed, after asserting a clean exit. */
function lastJson(r: Run, what: string): Record<string, unknown> {
  assert.equal(r.code, 0, `${what} failed:\n${r.out}`);
  const line = r.out.trim().split("\n").filter((l) => l.startsWith("{")).pop();
  assert(line, `${what} printed no report:\n${r.out}`);
  return JSON.parse(line);
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

/** A model exported to `dir`, with an input and the output Deno computes for it. */
async function exportModel(dir: string): Promise<void> {
  const net = new nn.HybridSequential().add(new nn.Conv2D(3, 3), new nn.Dense(4));
  net.initialize({ seed: 11 });
  net.hybridize();
  const x = nd.random.uniform(-1, 1, [2, 2, 6, 6], { seed: 12 });
  const y = net.call(x);
  await net.export(`${dir}/net`);
  const expected = {
    shape: x.shape,
    x: Array.from(x.dataSync() as Float32Array),
    y: Array.from(y.dataSync() as Float32Array),
  };
  // A compressed .npz (as numpy.savez_compressed writes): the platform must inflate it.
  const w = nd.random.uniform(-1, 1, [40, 30], { seed: 13 });
  await Deno.writeFile(
    `${dir}/compressed.npz`,
    await zip([{ name: "w.npy", data: saveNpy(w), deflate: true }]),
  );
  const npz = { shape: w.shape, values: Array.from(w.dataSync() as Float32Array) };
  await Deno.writeTextFile(`${dir}/expected.json`, JSON.stringify({ ...expected, npz }));
}

/**
 * Serves the page, the bundle and the model; `/iso/...` with COOP/COEP headers (cross-origin
 * isolated), `/plain/...` without. Resolves each mode's report when the page posts it.
 */
function servePages(bundle: string, modelDir: string) {
  const reports = new Map<string, PromiseWithResolvers<Record<string, unknown>>>();
  for (const mode of ["iso", "plain"]) reports.set(mode, Promise.withResolvers());
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const m = /^\/(iso|plain)\/(.*)$/.exec(path);
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
    const file = async (p: string | URL, type: string) => {
      try {
        headers.set("content-type", type);
        return new Response(await Deno.readFile(p), { headers });
      } catch {
        return new Response("not found", { status: 404, headers });
      }
    };
    if (rest === "result" && req.method === "POST") {
      reports.get(mode)!.resolve(await req.json());
      return new Response("ok", { headers });
    }
    if (rest === "index.html") {
      headers.set("content-type", "text/html");
      const html = '<!doctype html><script type="module" src="./page.mjs"></script>';
      return new Response(html, { headers });
    }
    if (rest === "page.mjs") return await file(new URL("page.mjs", HERE), "text/javascript");
    if (rest === "sigil.js") return await file(bundle, "text/javascript");
    if (rest.startsWith("model/") && !rest.includes("..")) {
      return await file(`${modelDir}/${rest.slice(6)}`, "application/octet-stream");
    }
    return new Response("not found", { status: 404, headers });
  });
  return { server, reports };
}

Deno.test("sigil runs in Node 20, Node 22 (type stripping) and headless Chromium", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "sigil-platforms-" });
  const bundle = `${dir}/sigil.js`;
  const modelDir = `${dir}/model`;
  try {
    await Deno.mkdir(modelDir);
    await exportModel(modelDir);
    await t.step("mod.ts bundles for browsers with esbuild, no externals", async () => {
      try {
        const result = await esbuild.build({
          entryPoints: [new URL("mod.ts", ROOT).pathname],
          bundle: true,
          format: "esm",
          platform: "browser",
          outfile: bundle,
          logLevel: "silent",
        });
        assert.deepStrictEqual(result.errors, []);
      } finally {
        await esbuild.stop();
      }
      const text = await Deno.readTextFile(bundle);
      // node: modules stay behind runtime checks, as dynamic imports only.
      assert(!/^import .* from "node:/m.test(text), "a static node: import in the bundle");
    });

    await t.step("Node 20 runs the bundle", async () => {
      const [cmd, pre] = await node20();
      const script = new URL("node_check.mjs", HERE).pathname;
      const report = lastJson(await run(cmd, [...pre, script, bundle, modelDir]), "Node 20");
      assert(String(report.node).startsWith("20."), `ran on Node ${report.node}`);
      assert.equal(report.ok, true);
    });

    await t.step("Node 20: Object.prototype names behave as any name", async () => {
      const [cmd, pre] = await node20();
      const script = new URL("proto_names_check.mjs", HERE).pathname;
      const report = lastJson(await run(cmd, [...pre, script, bundle]), "Node 20 names");
      assert.equal(report.ok, true);
    });

    await t.step("Node 22 runs the TypeScript sources with type stripping", async () => {
      const script = new URL("node_check.mjs", HERE).pathname;
      const args = ["-y", "node@22", "--experimental-strip-types", "--no-warnings", script];
      const report = lastJson(await run("npx", [...args, "mod.ts", modelDir]), "Node 22");
      assert(String(report.node).startsWith("22."), `ran on Node ${report.node}`);
      assert.equal(report.ok, true);
    });

    const { server, reports } = servePages(bundle, modelDir);
    const base = `http://127.0.0.1:${server.addr.port}`;
    try {
      await t.step("Chromium, cross-origin isolated: threads", async () => {
        const r = await chromiumReport(
          `${base}/iso/index.html`,
          reports.get("iso")!.promise,
          `${dir}/profile-iso`,
        );
        assert.equal(r.error, undefined, String(r.error));
        assert.equal(r.isolated, true);
        assert.equal(r.programThreads, 2);
        assert.equal(r.threadsReady, true);
        assert.equal(r.defaultThreads, Math.min(16, Number(r.cores)));
        assert.equal(r.compileHelper, Number(r.cores) >= 2, "the compile helper where forced");
        assert.equal(r.ok, true);
      });
      await t.step("Chromium, not isolated: one thread", async () => {
        const r = await chromiumReport(
          `${base}/plain/index.html`,
          reports.get("plain")!.promise,
          `${dir}/profile-plain`,
        );
        assert.equal(r.error, undefined, String(r.error));
        assert.equal(r.isolated, false);
        assert.equal(r.programThreads, 1);
        assert.equal(r.compileHelper, false, "no shared memory: no compile helper");
        assert.equal(r.defaultThreads, 1);
        assert.equal(r.ok, true);
      });
    } finally {
      await server.shutdown();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
