/**
 * A convolutional training step (strided convolutions with BatchNorm on batch statistics, ReLU,
 * window max pooling, a residual add, global average pooling, a classifier and softmax
 * cross-entropy) differentiated with `grad` and compiled for the WASM backend: every node runs as
 * a kernel or a copy (no fallback), and the gradients match the float64 reference.
 *
 * Tolerance: |g - ref| <= 2e-3 · max|ref| + 1e-5 per parameter (float32 against float64 through
 * a few hundred ops).
 */
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { convWeightGrad2d } from "../../compiler/autodiff/conv_weight_grad.ts";
import { grad, nd, referenceEngine, sym, type Symbol, type Tensor } from "../../mod.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { assert } from "../util.ts";

function convBn(
  x: Symbol,
  name: string,
  cin: number,
  cout: number,
  k: number,
  s: number,
  p: number,
) {
  const y = sym.Convolution(x, sym.var(`${name}_w`), {
    kernel: [k, k],
    stride: [s, s],
    pad: [p, p],
    num_filter: cout,
    no_bias: true,
  });
  const mean = sym.mean(y, { axis: [0, 2, 3], keepdims: true });
  const c = sym.broadcast_sub(y, mean);
  const v = sym.mean(sym.square(c), { axis: [0, 2, 3], keepdims: true });
  const n = sym.broadcast_mul(c, sym.rsqrt(sym._plus_scalar(v, { scalar: 1e-5 })));
  const gamma = sym.Reshape(sym.var(`${name}_g`), { shape: [1, cout, 1, 1] });
  const shapes = { [`${name}_w`]: [cout, cin, k, k], [`${name}_g`]: [cout] };
  return { y: sym.broadcast_mul(n, gamma), shapes };
}

function values(n: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * 0.5);
}

Deno.test("a training step's gradients compile with no fallback and match the reference", async () => {
  const a = convBn(sym.var("data"), "a", 3, 4, 3, 2, 1);
  let x = sym.relu(a.y);
  x = sym.Pooling(x, { kernel: [3, 3], stride: [2, 2], pad: [1, 1], pool_type: "max" });
  const b = convBn(x, "b", 4, 4, 3, 1, 1);
  const d = convBn(x, "d", 4, 4, 1, 1, 0);
  x = sym.relu(sym.elemwise_add(sym.relu(b.y), d.y));
  x = sym.Pooling(x, { kernel: [1, 1], global_pool: true, pool_type: "avg" });
  const logits = sym.FullyConnected(x, sym.var("fc_w"), sym.var("fc_b"), { num_hidden: 5 });
  const loss = sym.sum(sym.elemwise_mul(sym.var("label"), sym.log_softmax(logits)));
  const shapes: Record<string, number[]> = {
    data: [2, 3, 15, 15],
    label: [2, 5],
    fc_w: [5, 4],
    fc_b: [5],
    ...a.shapes,
    ...b.shapes,
    ...d.shapes,
  };
  const wrt = Object.keys(shapes).filter((n) => n !== "data" && n !== "label");
  const g = grad(loss, wrt, shapes);
  const bindings: Record<string, Tensor> = {};
  Object.entries(shapes).forEach(([name, shape], i) => {
    const size = shape.reduce((p, q) => p * q, 1);
    const v = name === "label"
      ? Array.from({ length: size }, (_, j) => (j % 5 === (j / 5 | 0) + 1 ? 1 : 0))
      : name.endsWith("_g")
      ? values(size, i).map((t) => 1 + t)
      : values(size, i);
    bindings[name] = nd.array(v, { shape });
  });
  const compiled = compileWasm(g, {}, shapes, { threads: 1 });
  assert.deepEqual(compiled.fallbacks, []);
  assert.ok(compiled.placement.every((p) => p.how !== "fallback"));
  const fast = compiled.run(bindings);
  const f64: Record<string, Tensor> = {};
  for (const [n, t] of Object.entries(bindings)) f64[n] = nd.Cast(t, { dtype: "float64" });
  const types = Object.fromEntries(Object.keys(shapes).map((n) => [n, "float64" as const]));
  const ref = await grad(loss, wrt, shapes, { types }).eval(f64, { engine: referenceEngine });
  wrt.forEach((name, i) => {
    const want = tensorValues(ref[i]);
    const got = tensorValues(fast[i]);
    const scale = Math.max(...Array.from(want, Math.abs));
    for (let j = 0; j < want.length; j++) {
      const tol = 2e-3 * scale + 1e-5;
      assert.ok(Math.abs(got[j] - want[j]) <= tol, `${name}[${j}]: ${got[j]} vs ${want[j]}`);
    }
  });
});

Deno.test("convolution weight gradient as im2col and batch_dot equals the direct sum", async () => {
  // Strides, dilation, asymmetric kernels and padding that leaves the last rows unread.
  const cases: [
    number[],
    number[],
    { kernel: number[]; stride: number[]; dilate: number[]; pad: number[] },
  ][] = [
    [[2, 3, 9, 8], [4, 3, 3, 2], { kernel: [3, 2], stride: [2, 1], dilate: [1, 2], pad: [1, 0] }],
    [[1, 2, 7, 7], [3, 2, 3, 3], { kernel: [3, 3], stride: [2, 2], dilate: [1, 1], pad: [0, 0] }],
    [[3, 2, 6, 5], [2, 2, 1, 1], { kernel: [1, 1], stride: [2, 2], dilate: [1, 1], pad: [0, 0] }],
  ];
  for (const [xs, ws, geo] of cases) {
    const x = sym.var("x");
    const w = sym.var("w");
    const y = sym.Convolution(x, w, { ...geo, num_filter: ws[0], no_bias: true });
    const [, ys] = (() => {
      const r = y.inferShape({ x: xs, w: ws });
      return [r.argShapes, r.outShapes[0]!] as const;
    })();
    const h = sym.var("h");
    const dw = convWeightGrad2d(x, h, xs, ys, geo, "float64");
    const xv = nd.array(values(xs.reduce((p, q) => p * q, 1), 1), { shape: xs, dtype: "float64" });
    const hv = nd.array(values(ys.reduce((p, q) => p * q, 1), 2), { shape: ys, dtype: "float64" });
    const [got] = await dw.eval({ x: xv, h: hv }, { engine: referenceEngine });
    const want = new Float64Array(ws.reduce((p, q) => p * q, 1));
    const X = tensorValues(xv);
    const H = tensorValues(hv);
    const [n, c, ih, iw] = xs;
    const [, o, oh, ow] = ys;
    for (let b = 0; b < n; b++) {
      for (let f = 0; f < o; f++) {
        for (let ch = 0; ch < c; ch++) {
          for (let i = 0; i < ws[2]; i++) {
            for (let j = 0; j < ws[3]; j++) {
              let acc = 0;
              for (let yy = 0; yy < oh; yy++) {
                for (let xx = 0; xx < ow; xx++) {
                  const r = yy * geo.stride[0] + i * geo.dilate[0] - geo.pad[0];
                  const q = xx * geo.stride[1] + j * geo.dilate[1] - geo.pad[1];
                  if (r < 0 || r >= ih || q < 0 || q >= iw) continue;
                  acc += H[((b * o + f) * oh + yy) * ow + xx] * X[((b * c + ch) * ih + r) * iw + q];
                }
              }
              want[((f * c + ch) * ws[2] + i) * ws[3] + j] += acc;
            }
          }
        }
      }
    }
    const g = tensorValues(got);
    for (let k = 0; k < want.length; k++) {
      assert.ok(
        Math.abs(g[k] - want[k]) <= 1e-12 + 1e-12 * Math.abs(want[k]),
        `[${k}] ${g[k]} vs ${want[k]}`,
      );
    }
  }
});
