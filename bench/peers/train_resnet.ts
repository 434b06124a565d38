/**
 * The ResNet-18 training step both sides run: forward in training mode (BatchNorm with the
 * batch's statistics after every convolution, no conv biases), softmax cross-entropy against
 * one-hot labels averaged over the batch, backward, and a plain SGD update of every parameter.
 * The weights are the inference bench's (`resnet18Weights`, conv weights He-uniform), with
 * BatchNorm's gamma 1 and beta 0.
 *
 * sigil's step is one graph: the loss, the gradient of the loss (`grad`, the pure transform)
 * and `p - lr · dp` for every parameter, compiled once by the WASM backend; each step feeds the
 * updated parameters back in.
 *
 * @module
 */
import { grad, sym, type Symbol } from "../../mod.ts";
import { compileWasm, type WasmCompiled } from "../../compiler/lower/wasm/lower.ts";
import { type ConvParams, randomFloats, type ResNet18 } from "./configs.ts";

/** The learning rate of the bench's SGD step. */
export const LR = 0.01;
/** BatchNorm's epsilon. */
export const EPS = 1e-5;

/** One convolution followed by BatchNorm, as the training graph names its parameters. */
export interface TrainConv {
  readonly name: string;
  readonly p: ConvParams;
}

/** The parameters of the training step by name (conv weights OIHW, gamma, beta, fc). */
export function trainParams(net: ResNet18): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const { name, p } of trainConvs(net)) {
    out.set(`${name}_weight`, { shape: [p.cout, p.cin, p.k, p.k], data: p.w });
    out.set(`${name}_gamma`, { shape: [p.cout], data: new Float32Array(p.cout).fill(1) });
    out.set(`${name}_beta`, { shape: [p.cout], data: new Float32Array(p.cout) });
  }
  out.set("fc_weight", { shape: [1000, 512], data: net.fcW });
  out.set("fc_bias", { shape: [1000], data: net.fcB });
  return out;
}

/** Every convolution of the net in graph order, with its parameter-name prefix. */
export function trainConvs(net: ResNet18): TrainConv[] {
  const out: TrainConv[] = [{ name: "stem", p: net.stem }];
  net.blocks.forEach((b, i) => {
    out.push({ name: `b${i}_c1`, p: b.conv1 }, { name: `b${i}_c2`, p: b.conv2 });
    if (b.down) out.push({ name: `b${i}_down`, p: b.down });
  });
  return out;
}

/** A batch of inputs (NCHW) and one-hot labels, deterministic. */
export function trainBatch(
  batch: number,
): { x: Float32Array; labels: number[]; oneHot: Float32Array } {
  const x = randomFloats(batch * 3 * 224 * 224, 77);
  const labels = Array.from({ length: batch }, (_, i) => (i * 397 + 11) % 1000);
  const oneHot = new Float32Array(batch * 1000);
  labels.forEach((l, i) => oneHot[i * 1000 + l] = 1);
  return { x, labels, oneHot };
}

function convBn(x: Symbol, { name, p }: TrainConv, relu: boolean): Symbol {
  const y = sym.Convolution(x, sym.var(`${name}_weight`), {
    kernel: [p.k, p.k],
    stride: [p.stride, p.stride],
    pad: [p.pad, p.pad],
    num_filter: p.cout,
    no_bias: true,
  });
  // BatchNorm in training mode: the batch's mean and biased variance per channel.
  const axis = [0, 2, 3];
  const mean = sym.mean(y, { axis, keepdims: true });
  const centered = sym.broadcast_sub(y, mean);
  const variance = sym.mean(sym.square(centered), { axis, keepdims: true });
  const normed = sym.broadcast_mul(
    centered,
    sym.rsqrt(sym._plus_scalar(variance, { scalar: EPS })),
  );
  const along = [1, p.cout, 1, 1];
  const gamma = sym.Reshape(sym.var(`${name}_gamma`), { shape: along });
  const beta = sym.Reshape(sym.var(`${name}_beta`), { shape: along });
  const out = sym.broadcast_add(sym.broadcast_mul(normed, gamma), beta);
  return relu ? sym.relu(out) : out;
}

/** The loss of one batch (mean softmax cross-entropy) as a symbol over `data`, `label` and the parameters. */
export function trainLoss(net: ResNet18, batch: number): Symbol {
  const convs = trainConvs(net);
  let k = 0;
  let x = convBn(sym.var("data"), convs[k++], true);
  x = sym.Pooling(x, { kernel: [3, 3], stride: [2, 2], pad: [1, 1], pool_type: "max" });
  for (const b of net.blocks) {
    const h = convBn(x, convs[k++], true);
    const y = convBn(h, convs[k++], false);
    const skip = b.down ? convBn(x, convs[k++], false) : x;
    x = sym.relu(sym.elemwise_add(y, skip));
  }
  x = sym.Pooling(x, { kernel: [1, 1], global_pool: true, pool_type: "avg" });
  const logits = sym.FullyConnected(x, sym.var("fc_weight"), sym.var("fc_bias"), {
    num_hidden: 1000,
  });
  const ce = sym.sum(sym.elemwise_mul(sym.var("label"), sym.log_softmax(logits)));
  return sym._mul_scalar(ce, { scalar: -1 / batch, name: "loss" });
}

/** The whole step as one graph: outputs the loss, then every updated parameter in `names` order. */
export function trainStepSymbol(net: ResNet18, batch: number): { symbol: Symbol; names: string[] } {
  const loss = trainLoss(net, batch);
  const params = trainParams(net);
  const names = [...params.keys()];
  const shapes: Record<string, number[]> = {
    data: [batch, 3, 224, 224],
    label: [batch, 1000],
  };
  for (const [n, v] of params) shapes[n] = v.shape;
  const g = grad(loss, names, shapes);
  const updated = names.map((n, i) =>
    sym.elemwise_sub(sym.var(n), sym._mul_scalar(g.get(i), { scalar: LR }))
  );
  return { symbol: sym.group([loss, ...updated]), names };
}

/** A compiled sigil training step that keeps its parameters between calls. */
export interface SigilTrainer {
  readonly compiled: WasmCompiled;
  /** Runs one step on the batch; returns the loss before the update. */
  step(): number;
  /** The feeds of the next step (data, label, the current parameters). */
  feeds(): Record<string, Float32Array>;
  dispose(): void;
}

/** Compiles the step for `threads` threads and holds the parameters. */
export async function sigilTrainer(
  net: ResNet18,
  batch: number,
  threads: number,
): Promise<SigilTrainer> {
  const { symbol, names } = trainStepSymbol(net, batch);
  const params = trainParams(net);
  const shapes: Record<string, number[]> = {
    data: [batch, 3, 224, 224],
    label: [batch, 1000],
  };
  for (const [n, v] of params) shapes[n] = v.shape;
  const compiled = compileWasm(symbol, {}, shapes, { threads });
  await compiled.ready();
  const { x, oneHot } = trainBatch(batch);
  let current: Float32Array[] = names.map((n) => params.get(n)!.data.slice());
  let spare: Float32Array[] = current.map((a) => new Float32Array(a.length));
  const lossOut = new Float32Array(1);
  const feeds = () => {
    const f: Record<string, Float32Array> = { data: x, label: oneHot };
    names.forEach((n, i) => f[n] = current[i]);
    return f;
  };
  return {
    compiled,
    feeds,
    step() {
      compiled.runRaw(feeds(), [lossOut, ...spare]);
      [current, spare] = [spare, current];
      return lossOut[0];
    },
    dispose: () => compiled.dispose(),
  };
}
