/**
 * sigil's generated WASM sgemm, C = A·B with both matrices as runtime inputs (B is packed on
 * every call, as the peers do), at 256/512/1024 on both multiply-add paths, one thread.
 *
 * Run: `deno bench -A bench/sgemm_bench.ts`. Besides deno's table, it prints GFLOP/s (2·n³ per
 * call) from the same samples at the end: min/median/max over every timed call. Two "peak"
 * cases calibrate the same run: a register-only loop of 12 independent f32x4 multiply-add
 * chains, the most this core does through V8's wasm SIMD on each path.
 */
import { ModuleBuilder, relaxedSimdSupported } from "../compiler/lower/wasm/encoder.ts";
import {
  generateSgemm,
  instantiateSgemm,
  type SgemmInstance,
  type SgemmPath,
} from "../compiler/lower/wasm/sgemm.ts";

const SIZES = [256, 512, 1024] as const;
const PATHS: SgemmPath[] = relaxedSimdSupported() ? ["simd", "relaxed"] : ["simd"];
if (!relaxedSimdSupported()) console.log("relaxed path skipped: no relaxed SIMD in this runtime");

interface Entry {
  name: string;
  flops: number;
  samples: number[];
}
const entries: Entry[] = [];

function prepare(n: number, path: SgemmPath): SgemmInstance {
  const g = instantiateSgemm(generateSgemm({ m: n, n, k: n, path }));
  let s = 12345;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  for (let i = 0; i < g.a.length; i++) g.a[i] = next();
  for (let i = 0; i < g.b.length; i++) g.b[i] = next();
  g.run();
  // A cheap spot check, so a broken kernel cannot post a figure.
  let want = 0;
  for (let p = 0; p < n; p++) want += g.a[(n - 1) * n + p] * g.b[p * n + (n - 1)];
  const got = g.c[n * n - 1];
  if (Math.abs(got - want) > 1e-3 * Math.sqrt(n)) {
    throw new Error(`sgemm ${n} ${path}: C[n-1,n-1] = ${got}, want ${want}`);
  }
  return g;
}

/**
 * A loop of 12 independent chains `acc = acc·x + y` on registers (the product depends on the
 * accumulator, so nothing can be hoisted or shared); returns the runner and its FLOP count.
 */
function peakKernel(path: SgemmPath, iters: number): { run: () => void; flops: number } {
  const mb = new ModuleBuilder();
  const fb = mb.addFunction([], ["f32"], { export: "run" });
  const acc = Array.from({ length: 12 }, () => fb.local("v128"));
  const [x, y, i] = [fb.local("v128"), fb.local("v128"), fb.local("i32")];
  fb.f32x4Const(0.9999, 0.99995, 0.99999, 0.9998).localSet(x);
  fb.f32x4Const(1e-3, 2e-3, 3e-3, 4e-3).localSet(y);
  const top = fb.loop();
  for (const a of acc) {
    if (path === "relaxed") fb.localGet(a).localGet(x).localGet(y).op("f32x4.relaxed_madd");
    else fb.localGet(a).localGet(x).op("f32x4.mul").localGet(y).op("f32x4.add");
    fb.localSet(a);
  }
  fb.localGet(i).i32Const(1).op("i32.add").localTee(i).i32Const(iters).op("i32.lt_u").brIf(top);
  fb.end();
  fb.localGet(acc[0]);
  for (const a of acc.slice(1)) fb.localGet(a).op("f32x4.add");
  fb.lane("f32x4.extract_lane", 0).end();
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(mb.build()));
  return { run: exports.run as () => void, flops: iters * 12 * 8 };
}

for (const path of PATHS) {
  const peak = peakKernel(path, 1 << 20);
  const entry: Entry = { name: `peak ${path}`, flops: peak.flops, samples: [] };
  entries.push(entry);
  Deno.bench({
    name: `peak ${path === "relaxed" ? "relaxed_madd" : "mul+add"} (registers only)`,
    group: "peak",
    fn: (b) => {
      b.start();
      const t0 = performance.now();
      peak.run();
      const t1 = performance.now();
      b.end();
      entry.samples.push(t1 - t0);
    },
  });
}

for (const n of SIZES) {
  for (const path of PATHS) {
    const g = prepare(n, path);
    const entry: Entry = { name: `sgemm${n} ${path}`, flops: 2 * n ** 3, samples: [] };
    entries.push(entry);
    Deno.bench({
      name: `sgemm${n} sigil wasm ${path === "relaxed" ? "relaxed_madd" : "mul+add"} t1`,
      group: `sgemm${n}`,
      baseline: path === "simd",
      fn: (b) => {
        b.start();
        const t0 = performance.now();
        g.run();
        const t1 = performance.now();
        b.end();
        entry.samples.push(t1 - t0);
      },
    });
  }
}

globalThis.addEventListener("unload", () => {
  const rows = entries.filter((e) => e.samples.length > 0).map((e) => {
    // Drop deno's warm-up share: keep the last 80% of the samples.
    const s = e.samples.slice(Math.floor(e.samples.length * 0.2)).sort((a, b) => a - b);
    const gf = (ms: number) => (e.flops / ms / 1e6).toFixed(1);
    return `| ${e.name.padEnd(17)} | ${gf(s[s.length >> 1]).padStart(6)} | ${
      gf(s[s.length - 1]).padStart(6)
    } | ${gf(s[0]).padStart(6)} | ${s[s.length >> 1].toFixed(2).padStart(7)} | ${
      String(s.length).padStart(5)
    } |`;
  });
  if (rows.length === 0) return;
  console.log("\n| case              | GFLOP/s median | min | max | ms median | calls |");
  console.log("|---|---|---|---|---|---|");
  for (const r of rows) console.log(r);
});
