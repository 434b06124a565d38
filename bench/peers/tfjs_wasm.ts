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
  ELTWISE_A,
  ELTWISE_B,
  nchwToNhwc,
  nhwcToNchw,
  type ResNet18,
} from "./configs.ts";
import { applyConv, buildResNet, tfConv } from "./tfjs_resnet.ts";
import type { Peer, Runner } from "./peer.ts";

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
