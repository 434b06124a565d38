/**
 * TensorFlow.js with its WebAssembly backend (SIMD, one thread) as a peer.
 *
 * tfjs runs ops eagerly, so each config is written with the ops a converted tfjs graph model
 * would use: `fused.conv2d` (conv + bias + relu in one kernel), `fused.matMul` for the classifier.
 * The WASM backend's convolution takes NHWC, so conv and ResNet-18 run in NHWC with HWIO filters
 * (transposed once, outside the timed path); the FLOP counts are the same.
 *
 * @module
 */

import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { setThreadsCount, version_wasm } from "npm:@tensorflow/tfjs-backend-wasm@4.22.0";
import {
  type BenchConfig,
  CONV_PARAMS,
  CONV_SHAPE,
  type ConvParams,
  ELTWISE_A,
  ELTWISE_B,
  nchwToNhwc,
  nhwcToNchw,
  oihwToHwio,
  type ResNet18,
} from "./configs.ts";
import type { Peer, Runner } from "./peer.ts";

interface TfConv {
  readonly filter: tf.Tensor4D;
  readonly bias: tf.Tensor1D;
  readonly stride: number;
  readonly pad: number;
}

function tfConv(p: ConvParams): TfConv {
  return {
    filter: tf.tensor4d(oihwToHwio(p), [p.k, p.k, p.cin, p.cout]),
    bias: tf.tensor1d(p.b),
    stride: p.stride,
    pad: p.pad,
  };
}

function applyConv(x: tf.Tensor4D, c: TfConv, relu: boolean): tf.Tensor4D {
  return tf.fused.conv2d({
    x,
    filter: c.filter,
    bias: c.bias,
    strides: c.stride,
    pad: c.pad,
    dataFormat: "NHWC",
    activation: relu ? "relu" : "linear",
  });
}

/** Runs `body` on fresh input tensors, reads the result back and frees every temporary. */
function runner(
  inputs: () => tf.Tensor[],
  body: (xs: tf.Tensor[]) => tf.Tensor,
  canonical?: (y: Float32Array) => Float32Array,
): Runner {
  return {
    run() {
      const y = tf.tidy(() => body(inputs()));
      const data = y.dataSync() as Float32Array;
      y.dispose();
      return data;
    },
    ...(canonical ? { canonical } : {}),
  };
}

/**
 * The tfjs WASM peer. `net` supplies the ResNet-18 weights (uploaded once) when that config is
 * run.
 */
export async function tfjsWasm(net?: ResNet18): Promise<Peer> {
  setThreadsCount(1);
  if (!(await tf.setBackend("wasm"))) throw new Error("tfjs: the wasm backend did not start");
  await tf.ready();
  const simd = tf.env().getBool("WASM_HAS_SIMD_SUPPORT");
  if (!simd) throw new Error("tfjs-backend-wasm: no SIMD support here");
  let resnet: ((x: tf.Tensor4D) => tf.Tensor) | undefined;

  return {
    name: "tfjs wasm t1",
    version: `@tensorflow/tfjs-core ${tf.version_core}, tfjs-backend-wasm ${version_wasm}`,
    prepare(cfg: BenchConfig): Promise<Runner> {
      const f = cfg.feeds;
      if (cfg.group.startsWith("sgemm")) {
        const [a, b] = f;
        return Promise.resolve(runner(
          () => [
            tf.tensor2d(a.data, [a.dims[0], a.dims[1]]),
            tf.tensor2d(b.data, [b.dims[0], b.dims[1]]),
          ],
          ([x, y]) => tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D),
        ));
      }
      if (cfg.group.startsWith("conv")) {
        const { c, h, w } = CONV_SHAPE;
        const x = nchwToNhwc(f[0].data, c, h, w);
        const conv = tfConv(CONV_PARAMS);
        return Promise.resolve(runner(
          () => [tf.tensor4d(x, [1, h, w, c])],
          ([t]) => applyConv(t as tf.Tensor4D, conv, false),
          (y) => nhwcToNchw(y, CONV_PARAMS.cout, h, w),
        ));
      }
      if (cfg.group.startsWith("eltwise")) {
        const a = tf.scalar(ELTWISE_A), b = tf.scalar(ELTWISE_B);
        return Promise.resolve(runner(
          () => [tf.tensor1d(f[0].data)],
          ([x]) => tf.relu(tf.add(tf.mul(x, a), b)),
        ));
      }
      if (cfg.group.startsWith("resnet18") && net) {
        resnet ??= buildResNet(net);
        const forward = resnet;
        const x = nchwToNhwc(f[0].data, 3, 224, 224);
        return Promise.resolve(runner(
          () => [tf.tensor4d(x, [1, 224, 224, 3])],
          ([t]) => forward(t as tf.Tensor4D),
        ));
      }
      return Promise.reject(new Error(`tfjs peer: no implementation for ${cfg.group}`));
    },
  };
}

function buildResNet(net: ResNet18): (x: tf.Tensor4D) => tf.Tensor {
  const stem = tfConv(net.stem);
  const blocks = net.blocks.map((b) => ({
    conv1: tfConv(b.conv1),
    conv2: tfConv(b.conv2),
    down: b.down ? tfConv(b.down) : undefined,
  }));
  // The classifier weight goes in as [in, out] (a converted Keras Dense kernel's layout):
  // tfjs-backend-wasm 4.22.0's fused.matMul with transposeB and a bias gives wrong results
  // (relative error ~8e-2 against a naive product; without transposeB it is exact).
  const fcW = tf.tidy(() => tf.transpose(tf.tensor2d(net.fcW, [1000, 512])));
  const fcB = tf.tensor1d(net.fcB);
  return (input) => {
    let x = applyConv(input, stem, true);
    x = tf.maxPool(x, 3, 2, 1);
    for (const b of blocks) {
      const h = applyConv(x, b.conv1, true);
      const y = applyConv(h, b.conv2, false);
      const skip = b.down ? applyConv(x, b.down, false) : x;
      x = tf.relu(tf.add(y, skip));
    }
    const pooled = tf.mean(x, [1, 2]) as tf.Tensor2D;
    return tf.fused.matMul({ a: pooled, b: fcW, bias: fcB });
  };
}
