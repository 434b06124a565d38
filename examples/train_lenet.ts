/**
 * Training example: a LeNet (convolution, max pooling, convolution, max pooling, two dense
 * layers) learns to read digits. The data set is generated here, deterministically: the ten
 * digits of a 5×7 bitmap font, drawn at twice the size into 16×16 images at a random offset,
 * with strokes randomly thinned, brightness varied and noise added, from a seeded generator (no
 * download). With 1000 training images and 4 epochs of Adam it reaches at least 95% accuracy
 * on 300 held-out images, and the same seeds give the same weights on every run.
 *
 * Run: `deno run -A examples/train_lenet.ts` (also part of `deno task demo`).
 */
import { autograd, data, loss, nd, nn, type Tensor, Trainer } from "../mod.ts";

/** The digits 0–9 in a 5×7 bitmap font, one string of 7 rows each. */
const FONT = [
  "01110 10001 10011 10101 11001 10001 01110",
  "00100 01100 00100 00100 00100 00100 01110",
  "01110 10001 00001 00010 00100 01000 11111",
  "11111 00010 00100 00010 00001 10001 01110",
  "00010 00110 01010 10010 11111 00010 00010",
  "11111 10000 11110 00001 00001 10001 01110",
  "00110 01000 10000 11110 10001 10001 01110",
  "11111 00001 00010 00100 01000 01000 01000",
  "01110 10001 10001 01110 10001 10001 01110",
  "01110 10001 10001 01111 00001 00010 01100",
].map((g) => g.split(" ").map((row) => [...row].map(Number)));

/** A small seeded generator (mulberry32): the same seed, the same images. */
function generator(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The image size (square). */
export const SIZE = 16;

/**
 * `count` digit images `[count, 1, 16, 16]` with labels `[count]`, cycling through the digits,
 * drawn with the generator seeded by `seed`.
 */
export function digits(count: number, seed: number): { x: Tensor; y: Tensor } {
  const rand = generator(seed);
  const pixels = new Float32Array(count * SIZE * SIZE);
  const labels = new Float32Array(count);
  for (let n = 0; n < count; n++) {
    const d = n % 10;
    labels[n] = d;
    const dx = Math.floor(rand() * (SIZE - 10 + 1));
    const dy = Math.floor(rand() * (SIZE - 14 + 1));
    const ink = 0.6 + 0.4 * rand();
    const image = pixels.subarray(n * SIZE * SIZE, (n + 1) * SIZE * SIZE);
    FONT[d].forEach((row, r) =>
      row.forEach((on, c) => {
        if (!on) return;
        // Each font pixel is a 2×2 block; some of the block's pixels may be left out.
        for (const [i, j] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
          if (rand() < 0.15) continue;
          image[(dy + 2 * r + i) * SIZE + dx + 2 * c + j] = ink;
        }
      })
    );
    for (let i = 0; i < image.length; i++) image[i] += 0.3 * (rand() - 0.5);
  }
  return {
    x: nd.array(pixels, { shape: [count, 1, SIZE, SIZE] }),
    y: nd.array(Array.from(labels)),
  };
}

/** The LeNet: two convolution and max-pooling stages, then two dense layers. */
export function lenet(): nn.HybridSequential {
  return new nn.HybridSequential().add(
    new nn.Conv2D(8, 3, { activation: "relu", inChannels: 1 }),
    new nn.MaxPool2D(2),
    new nn.Conv2D(16, 3, { activation: "relu", inChannels: 8 }),
    new nn.MaxPool2D(2),
    new nn.Flatten(),
    new nn.Dense(32, { activation: "relu", inUnits: 16 * 2 * 2 }),
    new nn.Dense(10, { inUnits: 32 }),
  );
}

/** The fraction of `x` the network labels as `y`. */
function accuracy(net: nn.HybridSequential, x: Tensor, y: Tensor): number {
  const pred = nd.argmax(net.call(x) as Tensor, { axis: 1 }).dataSync();
  const labels = y.dataSync();
  let right = 0;
  for (let i = 0; i < labels.length; i++) if (Number(pred[i]) === Number(labels[i])) right++;
  return right / labels.length;
}

/** Trains the LeNet for `epochs` epochs; returns its accuracy on the held-out images. */
export function trainLenet(epochs = 4): { train: number; test: number } {
  nd.random.seed(0);
  const train = digits(1000, 1);
  const test = digits(300, 2);
  const net = lenet();
  net.initialize({ init: "xavier", seed: 3 });
  net.hybridize();
  const loader = new data.DataLoader(new data.ArrayDataset(train.x, train.y), {
    batchSize: 50,
    shuffle: true,
    seed: 4,
  });
  const trainer = new Trainer(net.collectParams(), "adam", { learningRate: 0.01 });
  const ce = new loss.SoftmaxCrossEntropyLoss();
  for (let epoch = 0; epoch < epochs; epoch++) {
    for (const [xb, yb] of loader) {
      const l = autograd.record(() => ce.call(net.call(xb), yb));
      autograd.backward(l);
      trainer.step(xb.shape[0]);
    }
  }
  return { train: accuracy(net, train.x, train.y), test: accuracy(net, test.x, test.y) };
}

if (import.meta.main) {
  const t0 = performance.now();
  const { train, test } = trainLenet();
  console.log(
    `LeNet on generated digits: test accuracy ${(test * 100).toFixed(1)}% ` +
      `(training ${(train * 100).toFixed(1)}%) after 4 epochs ` +
      `(${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  if (test < 0.95) throw new Error(`test accuracy ${test} is under the stated 95%`);
}
