/**
 * sigil's generated WASM Pooling kernels on ResNet-18's two pools: the stem's 3×3 stride-2 max
 * pool (1x64x112x112, pad 1) and the global average pool (1x512x7x7), one thread.
 *
 * Run: `deno bench -A bench/pool_bench.ts`. Each kernel is spot-checked against a naive
 * JavaScript pool before timing, so a broken kernel cannot post a figure.
 *
 * @module
 */
import { sym } from "../mod.ts";
import { poolingKernel } from "../compiler/lower/wasm/pool.ts";
import type { Shape } from "../runtime/shape.ts";

interface Case {
  name: string;
  x: Shape;
  y: Shape;
  attrs: Record<string, unknown>;
  naive: (x: Float32Array, c: number, oy: number, ox: number) => number;
}

const CASES: Case[] = [
  {
    name: "max 1x64x112x112 k3 s2 p1",
    x: [1, 64, 112, 112],
    y: [1, 64, 56, 56],
    attrs: { kernel: [3, 3], stride: [2, 2], pad: [1, 1], pool_type: "max" },
    naive: (x, c, oy, ox) => {
      let m = -Infinity;
      for (let i = oy * 2 - 1; i < oy * 2 + 2; i++) {
        for (let j = ox * 2 - 1; j < ox * 2 + 2; j++) {
          if (i >= 0 && i < 112 && j >= 0 && j < 112) m = Math.max(m, x[(c * 112 + i) * 112 + j]);
        }
      }
      return m;
    },
  },
  {
    name: "global avg 1x512x7x7",
    x: [1, 512, 7, 7],
    y: [1, 512, 1, 1],
    attrs: { kernel: [1, 1], global_pool: true, pool_type: "avg" },
    naive: (x, c) => {
      let s = 0;
      for (let i = 0; i < 49; i++) s += x[c * 49 + i];
      return s / 49;
    },
  },
];

for (const c of CASES) {
  const s = sym.Pooling(sym.Variable("x"), c.attrs);
  const k = poolingKernel({
    node: s.outputs[0].node,
    inputs: [c.x],
    outputs: [c.y],
    relaxed: false,
  });
  if (k === undefined) throw new Error(`no kernel for ${c.name}`);
  const nx = c.x.reduce((a, b) => a * b, 1);
  const ny = c.y.reduce((a, b) => a * b, 1);
  const outAt = Math.ceil((nx * 4) / 16) * 16;
  const memory = new WebAssembly.Memory({ initial: Math.ceil((outAt + ny * 4) / 65536) + 1 });
  const f = new Float32Array(memory.buffer);
  for (let i = 0; i < nx; i++) f[i] = Math.sin(i * 0.37) * 3;
  const inst = new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } });
  const run = inst.exports.run as (x: number, y: number) => void;
  run(0, outAt);
  const x = f.subarray(0, nx);
  const [oh, ow] = [c.y[2], c.y[3]];
  for (let i = 0; i < ny; i++) {
    const [ch, oy, ox] = [Math.floor(i / (oh * ow)), Math.floor(i / ow) % oh, i % ow];
    const want = c.naive(x, ch, oy, ox);
    if (Math.abs(f[outAt / 4 + i] - want) > 1e-5 * (1 + Math.abs(want))) {
      throw new Error(`${c.name}: [${i}] ${f[outAt / 4 + i]} != ${want}`);
    }
  }
  Deno.bench(c.name, { group: "pool" }, () => run(0, outAt));
}
