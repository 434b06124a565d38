/**
 * ResNet-18 written with the ops a converted TensorFlow.js graph model would use (`fused.conv2d`:
 * conv + bias + relu in one kernel; `fused.matMul` for the classifier), in NHWC with HWIO
 * filters. It only calls tfjs-core, so it runs on whichever backend is active (wasm, webgpu).
 *
 * @module
 */

import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { type ConvParams, oihwToHwio, type ResNet18 } from "./configs.ts";

/** One convolution's filters (HWIO) and bias on the active backend. */
export interface TfConv {
  readonly filter: tf.Tensor4D;
  readonly bias: tf.Tensor1D;
  readonly stride: number;
  readonly pad: number;
}

/** Uploads `p`'s weights (OIHW → HWIO) to the active backend. */
export function tfConv(p: ConvParams): TfConv {
  return {
    filter: tf.tensor4d(oihwToHwio(p), [p.k, p.k, p.cin, p.cout]),
    bias: tf.tensor1d(p.b),
    stride: p.stride,
    pad: p.pad,
  };
}

/** Convolution + bias (+ relu) as one fused op, NHWC. */
export function applyConv(x: tf.Tensor4D, c: TfConv, relu: boolean): tf.Tensor4D {
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

/**
 * Uploads `net`'s weights to the active backend and returns the forward pass: NHWC input
 * [1, H, W, 3] to logits [1, 1000].
 */
export function buildResNet(net: ResNet18): (x: tf.Tensor4D) => tf.Tensor {
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
