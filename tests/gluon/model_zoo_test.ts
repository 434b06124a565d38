import { modelZoo, nd, SigilError, sym, type Tensor } from "../../mod.ts";
import { assert, assertClose } from "../util.ts";

const vision = modelZoo.vision;
type VisionModel = modelZoo.vision.VisionModel;

/** Parameters counted from shapes, each shared Parameter once (MXNet counts BN running stats). */
function countParams(net: VisionModel): number {
  let n = 0;
  for (const p of new Set(Object.values(net.collectParams()))) {
    assert.ok(p.shape && p.shape.every((d) => d > 0), `${p.name} has unknown shape`);
    n += p.shape.reduce((a, d) => a * d, 1);
  }
  return n;
}

/**
 * Per MXNet name: the total parameter count with 1000 classes and 224x224 inputs, and the
 * shapes of a few key parameters. Counts agree with MXNet's published ones (alexnet 61,100,840;
 * resnet50_v1 25,629,032) and with torchvision's counts plus BN running statistics (for
 * example densenet121 7,978,856 + 2 x 41,824; vgg16_bn 138,365,992 + 2 x 4,224).
 */
const EXPECTED: Record<string, [number, Record<string, number[]>]> = {
  "alexnet": [61100840, {
    "features.0.weight": [64, 3, 11, 11],
    "features.0.bias": [64],
    "features.2.weight": [192, 64, 5, 5],
    "features.9.weight": [4096, 9216],
    "features.11.weight": [4096, 4096],
    "output.weight": [1000, 4096],
    "output.bias": [1000],
  }],
  "resnet18_v1": [11699112, {
    "features.0.weight": [64, 3, 7, 7],
    "features.1.gamma": [64],
    "features.1.running_var": [64],
    "features.4.0.body.0.weight": [64, 64, 3, 3],
    "features.5.0.downsample.0.weight": [128, 64, 1, 1],
    "features.7.1.body.3.weight": [512, 512, 3, 3],
    "output.weight": [1000, 512],
    "output.bias": [1000],
  }],
  "resnet34_v1": [21814696, {
    "features.6.5.body.0.weight": [256, 256, 3, 3],
    "output.weight": [1000, 512],
  }],
  "resnet50_v1": [25629032, {
    "features.4.0.body.0.weight": [64, 64, 1, 1],
    "features.4.0.body.0.bias": [64],
    "features.4.0.downsample.0.weight": [256, 64, 1, 1],
    "features.7.2.body.6.weight": [2048, 512, 1, 1],
    "output.weight": [1000, 2048],
  }],
  "resnet101_v1": [44695144, {
    "features.6.22.body.3.weight": [256, 256, 3, 3],
    "output.weight": [1000, 2048],
  }],
  "resnet152_v1": [60404072, {
    "features.5.7.body.0.weight": [128, 512, 1, 1],
    "features.6.35.body.7.running_mean": [1024],
  }],
  "resnet18_v2": [11695796, {
    "features.0.gamma": [3],
    "features.0.running_var": [3],
    "features.1.weight": [64, 3, 7, 7],
    "features.5.0.bn1.gamma": [64],
    "features.7.0.downsample.weight": [256, 128, 1, 1],
    "features.9.gamma": [512],
    "output.weight": [1000, 512],
  }],
  "resnet34_v2": [21811380, { "features.7.2.conv2.weight": [256, 256, 3, 3] }],
  "resnet50_v2": [25595060, {
    "features.5.0.conv1.weight": [64, 64, 1, 1],
    "features.5.0.conv2.weight": [64, 64, 3, 3],
    "features.5.0.conv3.weight": [256, 64, 1, 1],
    "features.5.0.downsample.weight": [256, 64, 1, 1],
    "features.5.1.bn1.beta": [256],
    "features.9.gamma": [2048],
    "output.weight": [1000, 2048],
  }],
  "resnet101_v2": [44639412, { "features.7.22.conv3.weight": [1024, 256, 1, 1] }],
  "resnet152_v2": [60329140, { "features.6.7.bn2.running_var": [128] }],
  "vgg11": [132863336, {
    "features.0.weight": [64, 3, 3, 3],
    "features.18.weight": [512, 512, 3, 3],
    "features.21.weight": [4096, 25088],
    "features.23.weight": [4096, 4096],
    "output.weight": [1000, 4096],
  }],
  "vgg13": [133047848, { "features.25.weight": [4096, 25088] }],
  "vgg16": [138357544, {
    "features.28.weight": [512, 512, 3, 3],
    "features.31.weight": [4096, 25088],
    "output.bias": [1000],
  }],
  "vgg19": [143667240, { "features.37.weight": [4096, 25088] }],
  "vgg11_bn": [132874344, { "features.1.running_mean": [64], "features.29.weight": [4096, 25088] }],
  "vgg13_bn": [133059624, { "features.35.weight": [4096, 25088] }],
  "vgg16_bn": [138374440, {
    "features.0.weight": [64, 3, 3, 3],
    "features.1.gamma": [64],
    "features.41.running_var": [512],
    "features.44.weight": [4096, 25088],
  }],
  "vgg19_bn": [143689256, { "features.53.weight": [4096, 25088] }],
  "mobilenet1.0": [4253864, {
    "features.0.weight": [32, 3, 3, 3],
    "features.1.gamma": [32],
    "features.3.weight": [32, 1, 3, 3],
    "features.6.weight": [64, 32, 1, 1],
    "features.75.weight": [1024, 1, 3, 3],
    "features.78.weight": [1024, 1024, 1, 1],
    "output.weight": [1000, 1024],
  }],
  "mobilenet0.75": [2601976, { "output.weight": [1000, 768] }],
  "mobilenet0.5": [1342536, { "features.78.weight": [512, 512, 1, 1] }],
  "mobilenet0.25": [475544, {
    "features.0.weight": [8, 3, 3, 3],
    "features.78.weight": [256, 256, 1, 1],
    "output.weight": [1000, 256],
  }],
  "mobilenetv2_1.0": [3539136, {
    "features.0.weight": [32, 3, 3, 3],
    "features.3.out.0.weight": [32, 32, 1, 1],
    "features.3.out.3.weight": [32, 1, 3, 3],
    "features.3.out.6.weight": [16, 32, 1, 1],
    "features.4.out.0.weight": [96, 16, 1, 1],
    "features.20.weight": [1280, 320, 1, 1],
    "features.21.gamma": [1280],
    "output.0.weight": [1000, 1280, 1, 1],
  }],
  "mobilenetv2_0.75": [2653864, { "features.20.weight": [1280, 240, 1, 1] }],
  "mobilenetv2_0.5": [1983104, { "features.19.out.3.weight": [480, 1, 3, 3] }],
  "mobilenetv2_0.25": [1526856, {
    "features.0.weight": [8, 3, 3, 3],
    "features.19.out.6.weight": [80, 240, 1, 1],
    "features.20.weight": [1280, 80, 1, 1],
    "output.0.weight": [1000, 1280, 1, 1],
  }],
  "squeezenet1.0": [1248424, {
    "features.0.weight": [96, 3, 7, 7],
    "features.3.0.0.weight": [16, 96, 1, 1],
    "features.3.1.0.0.weight": [64, 16, 1, 1],
    "features.3.1.1.0.weight": [64, 16, 3, 3],
    "features.12.1.1.0.weight": [256, 64, 3, 3],
    "output.0.weight": [1000, 512, 1, 1],
    "output.0.bias": [1000],
  }],
  "squeezenet1.1": [1235496, {
    "features.0.weight": [64, 3, 3, 3],
    "features.3.0.0.weight": [16, 64, 1, 1],
    "output.0.weight": [1000, 512, 1, 1],
  }],
  "densenet121": [8062504, {
    "features.0.weight": [64, 3, 7, 7],
    "features.4.0.1.0.gamma": [64],
    "features.4.0.1.2.weight": [128, 64, 1, 1],
    "features.4.0.1.5.weight": [32, 128, 3, 3],
    "features.5.2.weight": [128, 256, 1, 1],
    "features.10.15.1.2.weight": [128, 992, 1, 1],
    "features.11.gamma": [1024],
    "output.weight": [1000, 1024],
  }],
  "densenet161": [28900936, { "features.0.weight": [96, 3, 7, 7], "output.weight": [1000, 2208] }],
  "densenet169": [14307880, { "output.weight": [1000, 1664] }],
  "densenet201": [20242984, { "output.weight": [1000, 1920] }],
  // torchvision's inception_v3 without its auxiliary head (23,834,568) plus 2 x 17,216 BN stats
  "inceptionv3": [23869000, {
    "features.0.0.weight": [32, 3, 3, 3],
    "features.0.1.gamma": [32],
    "features.7.1.1.0.weight": [64, 48, 5, 5],
    "features.10.0.0.0.weight": [384, 288, 3, 3],
    "features.11.2.4.0.weight": [192, 128, 1, 7],
    "features.15.1.3.0.weight": [192, 192, 3, 3],
    "features.16.1.1.1.0.0.weight": [384, 384, 3, 1],
    "features.17.2.0.1.0.weight": [384, 448, 3, 3],
    "features.17.3.1.1.running_var": [192],
    "output.weight": [1000, 2048],
  }],
};

/** Input sizes other than 224x224: Inception v3's 8x8 average pooling needs 299x299. */
const INPUT_SIZE: Record<string, number> = { inceptionv3: 299 };

const CLASS_OF: Record<string, string> = {
  alexnet: "AlexNet",
  resnet: "ResNetV",
  vgg: "VGG",
  mobilenetv2: "MobileNetV2",
  mobilenet: "MobileNet",
  squeezenet: "SqueezeNet",
  densenet: "DenseNet",
  inception: "Inception3",
};

Deno.test("getModel knows exactly MXNet's vision names", () => {
  assert.deepEqual(vision.modelNames(), Object.keys(EXPECTED).sort());
});

Deno.test("every model: MXNet's parameter names, shapes and total count (shapes only)", () => {
  for (const [name, [total, shapes]] of Object.entries(EXPECTED)) {
    const size = INPUT_SIZE[name] ?? 224;
    const x = nd.zeros([1, 3, size, size]);
    const net = vision.getModel(name);
    const family = Object.keys(CLASS_OF).find((k) => name.startsWith(k))!;
    assert.ok(
      net.constructor.name.startsWith(CLASS_OF[family]),
      `${name}: ${net.constructor.name}`,
    );
    // Shapes are completed symbolically; no weights are drawn for these big nets.
    net.inferShape(x);
    const params = net.collectParams();
    for (const [key, shape] of Object.entries(shapes)) {
      assert.ok(key in params, `${name}: no parameter ${key}`);
      assert.deepEqual(params[key].shape, shape, `${name}: ${key}`);
    }
    assert.equal(countParams(net), total, `${name}: parameter count`);
    // Every structural name is a path of attribute names and indices ending in a param name.
    for (const key of Object.keys(params)) {
      assert.match(
        key,
        /^(features|output)(\.([0-9]+|body|downsample|out|bn[123]|conv[123]))*\.(weight|bias|gamma|beta|running_mean|running_var)$/,
        `${name}: ${key}`,
      );
    }
  }
});

Deno.test("classes changes only the classifier", () => {
  const a = vision.resnet50_v2({ classes: 7 });
  a.inferShape(nd.zeros([1, 3, 224, 224]));
  assert.deepEqual(a.collectParams()["output.weight"].shape, [7, 2048]);
  assert.equal(countParams(a), 25595060 - 993 * 2049);
  const m = vision.mobilenet_v2_1_0({ classes: 7 });
  assert.deepEqual(m.collectParams()["output.0.weight"].shape, [7, -1, 1, 1]);
});

Deno.test("op nodes are named by structural path", () => {
  const g = vision.resnet18_v1({ classes: 10 }).trace([sym.var("data")]).symbol;
  const names = JSON.parse(g.toJSON()).nodes.filter((n: { op: string }) => n.op !== "null")
    .map((n: { name: string }) => n.name);
  for (
    const n of [
      "features_0_fwd",
      "features_1_fwd",
      "features_3_fwd",
      "features_4_0_body_0_fwd",
      "features_5_0_downsample_0_fwd",
      "output_fwd",
    ]
  ) assert.ok(names.includes(n), n);
  const m = vision.mobilenet_v2_0_25({ classes: 10 }).trace([sym.var("data")]).symbol;
  const ops = JSON.parse(m.toJSON()).nodes as { op: string; name: string }[];
  assert.ok(ops.some((n) => n.op === "clip" && n.name === "features_3_out_2_fwd"));
  assert.equal(ops.filter((n) => n.op === "elemwise_add").length, 10);
});

async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.data() as ArrayLike<number>);
}

async function eagerVsHybrid(net: VisionModel, x: Tensor, outShape: number[]): Promise<void> {
  const eager = net.call(x);
  assert.deepEqual(eager.shape, outShape);
  const expected = await values(eager);
  assert.ok(expected.every(Number.isFinite));
  net.hybridize();
  const hybrid = net.call(x);
  assert.deepEqual(hybrid.shape, outShape);
  assertClose(hybrid, expected, { rtol: 1e-4, atol: 1e-5, what: net.constructor.name });
  net.hybridize({ active: false });
}

Deno.test("resnet18_v1: forward at 32x32, eager equals hybridized", async () => {
  const net = vision.resnet18_v1({ classes: 10 });
  net.initialize({ seed: 1 });
  await eagerVsHybrid(net, nd.random.uniform(-1, 1, [1, 3, 32, 32], { seed: 2 }), [1, 10]);
});

Deno.test("mobilenet_v2_0_25: forward at 32x32, eager equals hybridized", async () => {
  const net = vision.mobilenet_v2_0_25({ classes: 10 });
  net.initialize({ seed: 1 });
  await eagerVsHybrid(net, nd.random.uniform(-1, 1, [2, 3, 32, 32], { seed: 3 }), [2, 10]);
});

Deno.test("small forwards, eager equals hybridized: mobilenet0.25, resnet18_v2, alexnet, squeezenet1.1", async () => {
  const cases: [VisionModel, number][] = [
    [vision.mobilenet0_25({ classes: 10 }), 32],
    [vision.resnet18_v2({ classes: 10 }), 32],
    [vision.alexnet({ classes: 10 }), 63],
    // AvgPool2D(13) needs the full 224x224 input.
    [vision.squeezenet1_1({ classes: 10 }), 224],
  ];
  for (const [net, size] of cases) {
    net.initialize({ seed: 4 });
    await eagerVsHybrid(net, nd.random.uniform(0, 1, [1, 3, size, size], { seed: 5 }), [1, 10]);
  }
});

Deno.test("inceptionv3: symbolic shapes at 299x299, and a forward (eager equals hybridized)", async () => {
  const net = vision.getModel("inceptionv3", { classes: 10 });
  const g = net.trace([sym.var("data")]).symbol;
  const shapes = g.inferShape({ data: [2, 3, 299, 299] });
  assert.deepEqual(shapes.outShapes, [[2, 10]]);
  const internals = g.getInternals();
  const shapeOf = (name: string) =>
    internals.get(name).inferShape({ data: [2, 3, 299, 299] }).outShapes[0];
  // the stem ends at 35x35x192, the modules at 35x35x288, 17x17x768 and 8x8x2048
  assert.deepEqual(shapeOf("features_6_fwd_output"), [2, 192, 35, 35]);
  assert.deepEqual(shapeOf("features_9_concat0_output"), [2, 288, 35, 35]);
  assert.deepEqual(shapeOf("features_14_concat0_output"), [2, 768, 17, 17]);
  assert.deepEqual(shapeOf("features_17_concat0_output"), [2, 2048, 8, 8]);
  assert.deepEqual(shapeOf("features_18_fwd_output"), [2, 2048, 1, 1]);
  net.initialize({ seed: 9 });
  await eagerVsHybrid(net, nd.random.uniform(0, 1, [1, 3, 299, 299], { seed: 10 }), [1, 10]);
});

Deno.test("bottleneck ResNets and DenseNet built from parts: eager equals hybridized", async () => {
  const x = nd.random.uniform(-1, 1, [2, 3, 8, 8], { seed: 6 });
  const v1 = new vision.ResNetV1(vision.BottleneckV1, [1, 2], [8, 16, 32], {
    classes: 4,
    thumbnail: true,
  });
  const v2 = new vision.ResNetV2(vision.BottleneckV2, [2, 1], [8, 16, 32], {
    classes: 4,
    thumbnail: true,
  });
  for (const net of [v1, v2]) {
    net.initialize({ seed: 7 });
    await eagerVsHybrid(net, x, [2, 4]);
  }
  assert.deepEqual(v1.collectParams()["features.1.0.downsample.0.weight"].shape, [16, 8, 1, 1]);
  assert.deepEqual(v2.collectParams()["features.2.1.conv1.weight"].shape, [4, 16, 1, 1]);
  // Stem /4 and one transition /2: 56x56 inputs reach the 7x7 average pooling.
  const dn = new vision.DenseNet(8, 4, [2, 2], { classes: 3, dropout: 0.1 });
  dn.initialize({ seed: 8 });
  await eagerVsHybrid(dn, nd.random.uniform(-1, 1, [1, 3, 56, 56], { seed: 9 }), [1, 3]);
  assert.deepEqual(dn.collectParams()["features.5.2.weight"].shape, [8, 16, 1, 1]);
  assert.deepEqual(dn.collectParams()["output.weight"].shape, [3, 16]);
});

Deno.test("getModel: MXNet names, case, factory aliases, unknown names", () => {
  assert.ok(vision.getModel("ResNet18_V1") instanceof vision.ResNetV1);
  assert.ok(vision.getModel("mobilenet_v2_1_0") instanceof vision.MobileNetV2);
  assert.ok(vision.getModel("squeezenet1_0") instanceof vision.SqueezeNet);
  assert.ok(vision.getModel("vgg16_bn") instanceof vision.VGG);
  assert.equal(
    (vision.getModel("densenet121", { classes: 3 }) as modelZoo.vision.DenseNet).output.units,
    3,
  );
  let err: unknown;
  try {
    vision.getModel("inceptionv4");
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof vision.UnknownModelError && err instanceof SigilError);
  assert.equal(err.model, "inceptionv4");
  assert.deepEqual(err.validNames, vision.modelNames());
  assert.match(err.message, /resnet18_v1/);
  assert.match(err.message, /mobilenetv2_0\.25/);
  assert.throws(() => vision.getModel("toString"), vision.UnknownModelError);
  assert.throws(() => vision.resnet18_v1({ classes: 0 }), SigilError);
  assert.throws(() => new vision.SqueezeNet("1.2" as "1.0"), /1\.0 or 1\.1/);
});

Deno.test("factories are synchronous: pretrained points to loadModel", () => {
  assert.ok(vision.alexnet({ pretrained: false }) instanceof vision.AlexNet);
  const opts = { pretrained: "w.params" } as unknown as { pretrained: false };
  assert.throws(() => vision.resnet18_v1(opts), /loadModel\("resnet18_v1"/);
  assert.throws(() => vision.getModel("mobilenet0.5", opts), /loadModel\("mobilenet0.5"/);
  assert.throws(() => vision.mobilenet0_5(opts), /loadModel\("mobilenet0.5"/);
});

Deno.test("loadModel: from a local file and from a cached URL", async () => {
  const src = vision.mobilenet_v2_0_25({ classes: 5 });
  src.initialize({ seed: 11 });
  const x = nd.random.uniform(-1, 1, [1, 3, 32, 32], { seed: 12 });
  const expected = await values(src.call(x));
  const dir = await Deno.makeTempDir();
  const file = `${dir}/mobilenetv2_0.25.params`;
  await src.saveParameters(file);
  try {
    const a = await vision.loadModel("mobilenetv2_0.25", { classes: 5, pretrained: file });
    assertClose(a.call(x), expected, { what: "loaded from a path" });
    const b = await vision.loadModel("mobilenetv2_0.25", {
      classes: 5,
      pretrained: new URL(`file://${file}`),
    });
    assertClose(b.call(x), expected, { what: "loaded from a file URL" });
    // Wrong class count: the file's shapes do not fit.
    await assert.rejects(
      vision.loadModel("mobilenetv2_0.25", { classes: 6, pretrained: file }),
      SigilError,
    );
    // Wrong architecture: names are missing.
    await assert.rejects(
      vision.loadModel("mobilenet0.25", { classes: 5, pretrained: file }),
      /missing/,
    );

    // A local HTTP server stands in for a model store: the download is cached by URL hash.
    const bytes = await Deno.readFile(file);
    let requests = 0;
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      requests++;
      return new URL(req.url).pathname === "/models/m.params"
        ? new Response(bytes)
        : new Response("no", { status: 404 });
    });
    try {
      const base = `http://127.0.0.1:${server.addr.port}/models`;
      const cacheDir = `${dir}/cache`;
      const digest = Array.from(
        new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
        (b) => b.toString(16).padStart(2, "0"),
      ).join("");
      const url = `${base}/m.params`;
      const c = await vision.loadModel("mobilenetv2_0.25", {
        classes: 5,
        pretrained: url,
        cacheDir,
        sha256: digest,
      });
      assertClose(c.call(x), expected, { what: "loaded from a URL" });
      assert.equal(requests, 1);
      const cached = await vision.fetchPretrained(url, { cacheDir });
      assert.equal(requests, 1, "the second fetch uses the cache");
      assert.ok(cached.startsWith(cacheDir) && cached.endsWith("-m.params"), cached);
      assert.deepEqual([...Deno.readDirSync(cacheDir)].map((e) => e.name), [
        cached.slice(cacheDir.length + 1),
      ]);
      await vision.fetchPretrained(url, { cacheDir, refresh: true });
      assert.equal(requests, 2);
      await assert.rejects(
        vision.fetchPretrained(`${base}/m.params?v=2`, { cacheDir, sha256: "00" }),
        /SHA-256/,
      );
      await assert.rejects(vision.fetchPretrained(`${base}/gone.params`, { cacheDir }), /404/);
      assert.equal([...Deno.readDirSync(cacheDir)].length, 1, "failed downloads leave nothing");
    } finally {
      await server.shutdown();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
