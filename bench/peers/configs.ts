/**
 * The benchmark configurations of the WASM backend issue, described once so every peer (and
 * later sigil) runs exactly the same work: the data, the ONNX graph, the FLOP or byte count, and
 * a naive reference used to check each peer's answer once.
 *
 * Layout: the canonical tensors are NCHW / OIHW (ONNX's layout); peers that want NHWC transpose
 * with {@link nchwToNhwc} and {@link oihwToHwio}.
 *
 * @module
 */

import { encodeModel, type OnnxGraph, type OnnxInitializer, type OnnxNode } from "./onnx_model.ts";

/** A named runtime input. */
export interface Feed {
  readonly name: string;
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

/** One benchmark configuration. */
export interface BenchConfig {
  /** Group name shared by every implementation of this config in `deno bench`. */
  readonly group: string;
  /** Work per call: FLOP for compute configs, bytes moved for the elementwise one. */
  readonly work: number;
  readonly unit: "GFLOP/s" | "GB/s";
  /** Runtime inputs (fresh copies go in on every call). */
  readonly feeds: readonly Feed[];
  readonly outputDims: readonly number[];
  /** The same computation as an ONNX graph whose inputs are {@link feeds}. */
  onnx(): OnnxGraph;
}

const modelCache = new WeakMap<BenchConfig, Uint8Array>();

/** `cfg.onnx()` serialized, encoded once per config (callers must not modify or transfer it). */
export function onnxBytes(cfg: BenchConfig): Uint8Array {
  let bytes = modelCache.get(cfg);
  if (!bytes) {
    bytes = encodeModel(cfg.onnx());
    modelCache.set(cfg, bytes);
  }
  return bytes;
}

/** Deterministic uniform values in [lo, hi) (mulberry32). */
export function randomFloats(count: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  const span = hi - lo;
  for (let i = 0; i < count; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + span * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// sgemm

/** C = A·B with n×n matrices, both runtime inputs (2n³ FLOP). */
export function sgemm(n: number): BenchConfig {
  const feeds = [
    { name: "A", dims: [n, n], data: randomFloats(n * n, 11 + n) },
    { name: "B", dims: [n, n], data: randomFloats(n * n, 23 + n) },
  ];
  return {
    group: `sgemm${n}`,
    work: 2 * n * n * n,
    unit: "GFLOP/s",
    feeds,
    outputDims: [n, n],
    onnx: () => ({
      name: `sgemm${n}`,
      nodes: [{ op: "MatMul", inputs: ["A", "B"], outputs: ["C"] }],
      inputs: feeds.map(({ name, dims }) => ({ name, dims })),
      outputs: [{ name: "C", dims: [n, n] }],
    }),
  };
}

/**
 * Checks C = A·B against a float64 dot product on `samples` entries spread over the whole
 * matrix (every entry when `samples` >= n²). Returns the worst error relative to Σ|a·b|.
 */
export function checkSgemm(
  n: number,
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  samples = 4096,
): number {
  const total = n * n;
  const step = samples >= total ? 1 : Math.floor(total / samples);
  let worst = 0;
  for (let idx = 0; idx < total; idx += step) {
    const i = Math.floor(idx / n), j = idx % n;
    let dot = 0, mag = 0;
    for (let k = 0; k < n; k++) {
      const p = a[i * n + k] * b[k * n + j];
      dot += p;
      mag += Math.abs(p);
    }
    worst = Math.max(worst, Math.abs(c[idx] - dot) / (mag || 1));
  }
  return worst;
}

// ---------------------------------------------------------------------------------------------
// conv

/** Parameters of one convolution (+ bias) with square kernel, stride and padding. */
export interface ConvParams {
  readonly cin: number;
  readonly cout: number;
  readonly k: number;
  readonly stride: number;
  readonly pad: number;
  /** OIHW weights. */
  readonly w: Float32Array;
  readonly b: Float32Array;
}

function convOut(size: number, p: ConvParams): number {
  return Math.floor((size + 2 * p.pad - p.k) / p.stride) + 1;
}

function convFlops(p: ConvParams, ho: number, wo: number): number {
  return 2 * p.cout * p.cin * p.k * p.k * ho * wo;
}

function convNode(x: string, y: string, name: string, p: ConvParams): OnnxNode {
  return {
    op: "Conv",
    inputs: [x, `${name}.w`, `${name}.b`],
    outputs: [y],
    attrs: {
      kernel_shape: { ints: [p.k, p.k] },
      strides: { ints: [p.stride, p.stride] },
      pads: { ints: [p.pad, p.pad, p.pad, p.pad] },
    },
  };
}

function convInits(name: string, p: ConvParams): OnnxInitializer[] {
  return [
    { name: `${name}.w`, dims: [p.cout, p.cin, p.k, p.k], data: p.w },
    { name: `${name}.b`, dims: [p.cout], data: p.b },
  ];
}

/** Random conv parameters with He-uniform weights, so activations keep their scale. */
export function randomConv(
  cin: number,
  cout: number,
  k: number,
  stride: number,
  pad: number,
  seed: number,
): ConvParams {
  const s = Math.sqrt(6 / (cin * k * k));
  return {
    cin,
    cout,
    k,
    stride,
    pad,
    w: randomFloats(cout * cin * k * k, seed, -s, s),
    b: randomFloats(cout, seed + 1, -0.1, 0.1),
  };
}

/** The conv: 1×64×56×56 input, 64 filters 3×3, pad 1, stride 1, with bias. */
export const CONV_SHAPE = { n: 1, c: 64, h: 56, w: 56 } as const;
export const CONV_PARAMS: ConvParams = randomConv(64, 64, 3, 1, 1, 101);

export function conv(): BenchConfig {
  const { n, c, h, w } = CONV_SHAPE;
  const p = CONV_PARAMS;
  const feeds = [{ name: "x", dims: [n, c, h, w], data: randomFloats(n * c * h * w, 7) }];
  const ho = convOut(h, p), wo = convOut(w, p);
  return {
    group: "conv 1x64x56x56 k3 pad1",
    work: convFlops(p, ho, wo),
    unit: "GFLOP/s",
    feeds,
    outputDims: [n, p.cout, ho, wo],
    onnx: () => ({
      name: "conv",
      nodes: [convNode("x", "y", "conv", p)],
      inputs: [{ name: "x", dims: [n, c, h, w] }],
      outputs: [{ name: "y", dims: [n, p.cout, ho, wo] }],
      initializers: convInits("conv", p),
    }),
  };
}

/** Naive NCHW convolution (batch 1) in float64, the conv config's reference. */
export function naiveConv(x: Float32Array, h: number, w: number, p: ConvParams): Float32Array {
  const ho = convOut(h, p), wo = convOut(w, p);
  const y = new Float32Array(p.cout * ho * wo);
  const acc = new Float64Array(ho * wo);
  for (let o = 0; o < p.cout; o++) {
    acc.fill(p.b[o]);
    for (let i = 0; i < p.cin; i++) {
      for (let ky = 0; ky < p.k; ky++) {
        for (let kx = 0; kx < p.k; kx++) {
          const wt = p.w[((o * p.cin + i) * p.k + ky) * p.k + kx];
          for (let oy = 0; oy < ho; oy++) {
            const iy = oy * p.stride - p.pad + ky;
            if (iy < 0 || iy >= h) continue;
            const row = (i * h + iy) * w;
            for (let ox = 0; ox < wo; ox++) {
              const ix = ox * p.stride - p.pad + kx;
              if (ix >= 0 && ix < w) acc[oy * wo + ox] += wt * x[row + ix];
            }
          }
        }
      }
    }
    y.set(acc, o * ho * wo);
  }
  return y;
}

// ---------------------------------------------------------------------------------------------
// eltwise

/** The scalars of y = relu(x·a + b). */
export const ELTWISE_A = 1.5;
export const ELTWISE_B = -0.25;

/** y = relu(x·a + b) over 2^20 float32 (8 bytes per element: read x, write y). */
export function eltwise(): BenchConfig {
  const n = 1 << 20;
  const feeds = [{ name: "x", dims: [n], data: randomFloats(n, 5) }];
  return {
    group: "eltwise relu(x*a+b) 1M",
    work: 8 * n,
    unit: "GB/s",
    feeds,
    outputDims: [n],
    onnx: () => ({
      name: "eltwise",
      nodes: [
        { op: "Mul", inputs: ["x", "a"], outputs: ["xa"] },
        { op: "Add", inputs: ["xa", "b"], outputs: ["xab"] },
        { op: "Relu", inputs: ["xab"], outputs: ["y"] },
      ],
      inputs: [{ name: "x", dims: [n] }],
      outputs: [{ name: "y", dims: [n] }],
      initializers: [
        { name: "a", dims: [], data: new Float32Array([ELTWISE_A]) },
        { name: "b", dims: [], data: new Float32Array([ELTWISE_B]) },
      ],
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// ResNet-18

/** One BasicBlock: conv-relu-conv, plus a 1×1 strided projection when the shape changes. */
export interface ResBlock {
  readonly conv1: ConvParams;
  readonly conv2: ConvParams;
  readonly down?: ConvParams;
}

/** ResNet-18 (torchvision topology) with BatchNorm folded into the conv biases. */
export interface ResNet18 {
  readonly stem: ConvParams;
  readonly blocks: readonly ResBlock[];
  /** [1000, 512] (out, in), as Gemm with transB = 1. */
  readonly fcW: Float32Array;
  readonly fcB: Float32Array;
  readonly flops: number;
}

/** ResNet-18 with deterministic random weights (11.7M parameters). */
export function resnet18Weights(): ResNet18 {
  let seed = 1000;
  const rc = (cin: number, cout: number, k: number, stride: number, pad: number) =>
    randomConv(cin, cout, k, stride, pad, seed += 2);
  const stem = rc(3, 64, 7, 2, 3);
  let size = convOut(224, stem);
  let flops = convFlops(stem, size, size);
  size = Math.floor((size + 2 - 3) / 2) + 1; // max pool 3×3 stride 2 pad 1: 112 → 56
  const blocks: ResBlock[] = [];
  let cin = 64;
  for (const [cout, stride] of [[64, 1], [128, 2], [256, 2], [512, 2]]) {
    for (let i = 0; i < 2; i++) {
      const s = i === 0 ? stride : 1;
      const conv1 = rc(cin, cout, 3, s, 1);
      const conv2 = rc(cout, cout, 3, 1, 1);
      const down = s !== 1 || cin !== cout ? rc(cin, cout, 1, s, 0) : undefined;
      const out = convOut(size, conv1);
      flops += convFlops(conv1, out, out) + convFlops(conv2, out, out);
      if (down) flops += convFlops(down, out, out);
      blocks.push(down ? { conv1, conv2, down } : { conv1, conv2 });
      size = out;
      cin = cout;
    }
  }
  const fs = Math.sqrt(1 / 512);
  flops += 2 * 512 * 1000;
  return {
    stem,
    blocks,
    fcW: randomFloats(1000 * 512, seed += 2, -fs, fs),
    fcB: randomFloats(1000, seed += 2, -0.1, 0.1),
    flops,
  };
}

/** FLOP of one batch-1 ResNet-18 inference at `size`×`size` ({@link ResNet18.flops} at 224). */
export function resnet18Flops(net: ResNet18, size: number): number {
  let s = convOut(size, net.stem);
  let flops = convFlops(net.stem, s, s);
  s = Math.floor((s + 2 - 3) / 2) + 1;
  for (const b of net.blocks) {
    s = convOut(s, b.conv1);
    flops += convFlops(b.conv1, s, s) + convFlops(b.conv2, s, s);
    if (b.down) flops += convFlops(b.down, s, s);
  }
  return flops + 2 * 512 * 1000;
}

/**
 * ResNet-18 batch 1 at `size`×`size` (input NCHW [1, 3, size, size], output logits [1, 1000];
 * default 224, the size).
 */
export function resnet18(net: ResNet18, size = 224): BenchConfig {
  const feeds = [{
    name: "data",
    dims: [1, 3, size, size],
    data: randomFloats(3 * size * size, 3),
  }];
  return {
    group: `resnet18 b1 ${size}`,
    work: resnet18Flops(net, size),
    unit: "GFLOP/s",
    feeds,
    outputDims: [1, 1000],
    onnx: () => {
      const nodes: OnnxNode[] = [];
      const inits: OnnxInitializer[] = [];
      const convRelu = (x: string, name: string, p: ConvParams, relu: boolean) => {
        nodes.push(convNode(x, relu ? `${name}.pre` : name, name, p));
        inits.push(...convInits(name, p));
        if (relu) nodes.push({ op: "Relu", inputs: [`${name}.pre`], outputs: [name] });
        return name;
      };
      let x = convRelu("data", "stem", net.stem, true);
      nodes.push({
        op: "MaxPool",
        inputs: [x],
        outputs: ["pool"],
        attrs: {
          kernel_shape: { ints: [3, 3] },
          strides: { ints: [2, 2] },
          pads: { ints: [1, 1, 1, 1] },
        },
      });
      x = "pool";
      net.blocks.forEach((blk, i) => {
        const h = convRelu(x, `b${i}.c1`, blk.conv1, true);
        const y = convRelu(h, `b${i}.c2`, blk.conv2, false);
        const skip = blk.down ? convRelu(x, `b${i}.down`, blk.down, false) : x;
        nodes.push({ op: "Add", inputs: [y, skip], outputs: [`b${i}.sum`] });
        nodes.push({ op: "Relu", inputs: [`b${i}.sum`], outputs: [`b${i}.out`] });
        x = `b${i}.out`;
      });
      nodes.push({ op: "GlobalAveragePool", inputs: [x], outputs: ["gap"] });
      nodes.push({
        op: "Flatten",
        inputs: ["gap"],
        outputs: ["flat"],
        attrs: { axis: { int: 1 } },
      });
      nodes.push({
        op: "Gemm",
        inputs: ["flat", "fc.w", "fc.b"],
        outputs: ["logits"],
        attrs: { transB: { int: 1 } },
      });
      inits.push(
        { name: "fc.w", dims: [1000, 512], data: net.fcW },
        { name: "fc.b", dims: [1000], data: net.fcB },
      );
      return {
        name: "resnet18",
        nodes,
        inputs: [{ name: "data", dims: [1, 3, size, size] }],
        outputs: [{ name: "logits", dims: [1, 1000] }],
        initializers: inits,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// helpers

/** [C, H, W] (batch 1) → [H, W, C]. */
export function nchwToNhwc(x: Float32Array, c: number, h: number, w: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < c; i++) {
    for (let p = 0; p < h * w; p++) y[p * c + i] = x[i * h * w + p];
  }
  return y;
}

/** [H, W, C] (batch 1) → [C, H, W]. */
export function nhwcToNchw(x: Float32Array, c: number, h: number, w: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < c; i++) {
    for (let p = 0; p < h * w; p++) y[i * h * w + p] = x[p * c + i];
  }
  return y;
}

/** OIHW weights → HWIO (TensorFlow's filter layout). */
export function oihwToHwio(p: ConvParams): Float32Array {
  const { cin, cout, k } = p;
  const y = new Float32Array(p.w.length);
  for (let o = 0; o < cout; o++) {
    for (let i = 0; i < cin; i++) {
      for (let s = 0; s < k * k; s++) y[(s * cin + i) * cout + o] = p.w[(o * cin + i) * k * k + s];
    }
  }
  return y;
}

/** Largest |a - b| divided by the largest |b| (a scale-free mismatch measure). */
export function relError(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0, mag = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    mag = Math.max(mag, Math.abs(b[i]));
  }
  return diff / (mag || 1);
}
