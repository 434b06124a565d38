/**
 * The ResNet-18 training step (see train_resnet.ts) in TensorFlow.js on its WebAssembly backend:
 * NHWC activations and HWIO filters, `tf.moments` and `tf.batchNorm` for BatchNorm in training
 * mode, `tf.losses.softmaxCrossEntropy`, and `tf.train.sgd(lr).minimize` for backward and update.
 *
 * tfjs-backend-wasm 4.22.0 registers no `Conv2DBackpropFilter` kernel, so tfjs's own conv2d
 * gradient cannot run there; each convolution is a `tf.customGrad` whose input gradient is
 * `conv2dTranspose` (the backend's `Conv2DBackpropInput`) and whose filter gradient is a
 * `conv2d` of the transposed input with the transposed output gradient as filters (strides and
 * dilations exchanged), the standard identity, cropped to the kernel. The gradients are
 * registered by importing the `@tensorflow/tfjs` union package, which tfjs-core alone does not do.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { setThreadsCount } from "npm:@tensorflow/tfjs-backend-wasm@4.22.0";
import { oihwToHwio, type ResNet18 } from "./configs.ts";
import { EPS, LR, trainBatch, trainConvs } from "./train_resnet.ts";

/** Starts the WASM backend with `threads` threads (once per process: tfjs fixes it at start). */
export async function startTfjsWasm(threads: number): Promise<string> {
  setThreadsCount(threads);
  if (!(await tf.setBackend("wasm"))) throw new Error("tfjs: the wasm backend did not start");
  await tf.ready();
  if (!tf.env().getBool("WASM_HAS_SIMD_SUPPORT")) throw new Error("tfjs-backend-wasm: no SIMD");
  return `@tensorflow/tfjs ${tf.version.tfjs}, tfjs-backend-wasm (SIMD, ${threads} thread${
    threads > 1 ? "s" : ""
  })`;
}

type Conv = (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D;

/** A stride-`s`, pad-`p` NHWC convolution whose gradients run on the WASM backend's kernels. */
function trainableConv(s: number, p: number): Conv {
  // customGrad's typing takes the save function among the inputs.
  const f = (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x4 = args[0] as tf.Tensor4D;
    const w4 = args[1] as tf.Tensor4D;
    const save = args[2] as tf.GradSaveFunc;
    save([x4, w4]);
    return {
      value: tf.conv2d(x4, w4, s, p),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
        const dy4 = dy as tf.Tensor4D;
        const [kh, kw, cin] = ws.shape;
        const dx = tf.conv2dTranspose(dy4, ws, xs.shape, s, p);
        // dW[i, j, c, o] = Σ_n,y,x x[n, y·s + i - p, x·s + j - p, c] · dy[n, y, x, o]: the
        // input with channels as the batch, convolved with dy as [y, x, n, o] filters.
        const full = tf.conv2d(
          tf.transpose(xs, [3, 1, 2, 0]) as tf.Tensor4D,
          tf.transpose(dy4, [1, 2, 0, 3]) as tf.Tensor4D,
          1,
          p,
          "NHWC",
          s,
        );
        const dw = tf.slice(tf.transpose(full, [1, 2, 0, 3]), [0, 0, 0, 0], [kh, kw, cin, -1]);
        return [dx, dw];
      },
    };
  };
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as Conv;
}

/** A tfjs training step holding its variables. */
export interface TfjsTrainer {
  /** Runs one step; returns the loss before the update. */
  step(): number;
  dispose(): void;
}

/** Builds the step with the net's weights; {@link startTfjsWasm} must have run. */
export function tfjsTrainer(net: ResNet18, batch: number): TfjsTrainer {
  const convs = trainConvs(net).map(({ name, p }) => ({
    name,
    p,
    fn: trainableConv(p.stride, p.pad),
    w: tf.variable(tf.tensor4d(oihwToHwio(p), [p.k, p.k, p.cin, p.cout]), true, `${name}_w`),
    gamma: tf.variable(tf.ones([p.cout]), true, `${name}_g`),
    beta: tf.variable(tf.zeros([p.cout]), true, `${name}_b`),
  }));
  const byName = new Map(convs.map((c) => [c.name, c]));
  // Dense kernel [in, out] (see tfjs_resnet.ts for why not transposeB).
  const fcW = tf.variable(tf.tidy(() => tf.transpose(tf.tensor2d(net.fcW, [1000, 512]))), true);
  const fcB = tf.variable(tf.tensor1d(net.fcB), true);
  const { x: xNchw, oneHot } = trainBatch(batch);
  const x = tf.tidy(() => tf.transpose(tf.tensor4d(xNchw, [batch, 3, 224, 224]), [0, 2, 3, 1]));
  const labels = tf.tensor2d(oneHot, [batch, 1000]);
  const optimizer = tf.train.sgd(LR);

  const convBn = (input: tf.Tensor4D, name: string, relu: boolean): tf.Tensor4D => {
    const c = byName.get(name)!;
    const y = c.fn(input, c.w as unknown as tf.Tensor4D);
    const { mean, variance } = tf.moments(y, [0, 1, 2]);
    const out = tf.batchNorm(y, mean, variance, c.beta, c.gamma, EPS) as tf.Tensor4D;
    return relu ? tf.relu(out) as tf.Tensor4D : out;
  };
  const loss = (): tf.Scalar => {
    let h = convBn(x as tf.Tensor4D, "stem", true);
    h = tf.maxPool(h, 3, 2, 1);
    net.blocks.forEach((b, i) => {
      const a = convBn(h, `b${i}_c1`, true);
      const y = convBn(a, `b${i}_c2`, false);
      const skip = b.down ? convBn(h, `b${i}_down`, false) : h;
      h = tf.relu(tf.add(y, skip));
    });
    const pooled = tf.mean(h, [1, 2]) as tf.Tensor2D;
    const logits = tf.add(tf.matMul(pooled, fcW), fcB);
    return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
  };
  return {
    step() {
      const l = optimizer.minimize(loss, true)!;
      const v = l.dataSync()[0];
      l.dispose();
      return v;
    },
    dispose() {
      for (const c of convs) [c.w, c.gamma, c.beta].forEach((t) => t.dispose());
      [fcW, fcB, x, labels].forEach((t) => t.dispose());
      optimizer.dispose();
    },
  };
}
