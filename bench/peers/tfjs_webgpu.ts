/**
 * TensorFlow.js with its WebGPU backend as a peer: ResNet-18 built as for the WASM backend
 * (bench/peers/tfjs_resnet.ts: NHWC, `fused.conv2d`, the input transposed once outside the timed
 * calls) and `tf.matMul`. Each call uploads the input, runs, and awaits `data()` (the read-back;
 * the WebGPU backend has no synchronous read of GPU tensors).
 *
 * @module
 */

import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import "npm:@tensorflow/tfjs-backend-webgpu@4.22.0";
import { type BenchConfig, nchwToNhwc, type ResNet18 } from "./configs.ts";
import type { Peer, Runner } from "./peer.ts";
import { buildResNet } from "./tfjs_resnet.ts";

/** Runs `body` on fresh input tensors, awaits the result on the host and frees the rest. */
function runner(inputs: () => tf.Tensor[], body: (xs: tf.Tensor[]) => tf.Tensor): Runner {
  return {
    async run() {
      const y = tf.tidy(() => body(inputs()));
      const data = await y.data() as Float32Array;
      y.dispose();
      return data;
    },
  };
}

/** The tfjs WebGPU peer; throws (with tfjs's reason where it gives one) when the backend fails. */
export async function tfjsWebGPU(net: ResNet18): Promise<Peer> {
  if (!(await tf.setBackend("webgpu"))) {
    throw new Error("tfjs: the webgpu backend did not start (no adapter, or no navigator.gpu)");
  }
  await tf.ready();
  const backend = tf.backend() as unknown as { adapterInfo?: { vendor?: string } };
  return {
    name: "tfjs webgpu",
    version: `@tensorflow/tfjs-core ${tf.version_core}, tfjs-backend-webgpu 4.22.0${
      backend.adapterInfo?.vendor ? `; adapter vendor ${backend.adapterInfo.vendor}` : ""
    }`,
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
      if (cfg.group.startsWith("resnet18")) {
        const [, c, h, w] = f[0].dims;
        const forward = buildResNet(net);
        const x = nchwToNhwc(f[0].data, c, h, w);
        return Promise.resolve(runner(
          () => [tf.tensor4d(x, [1, h, w, c])],
          ([t]) => forward(t as tf.Tensor4D),
        ));
      }
      return Promise.reject(new Error(`tfjs webgpu peer: no implementation for ${cfg.group}`));
    },
  };
}
