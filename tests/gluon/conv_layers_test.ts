/** Convolution and pooling layers: ops and attributes, deferred shapes, names, hybridize. */
import { referenceEngine } from "../../compiler/reference_engine.ts";
import fc from "npm:fast-check@^4";
import { AttributeError, type HybridBlock, nd, nn, ShapeError, type Tensor } from "../../mod.ts";
import type { Draw } from "../../ops/op.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { drawFromGen } from "../../testing/mod.ts";
import { assert, assertNear, assertThrowsError, onReference } from "../util.ts";

type Kind = "conv" | "convT" | "max" | "avg" | "gmax" | "gavg";

/** A drawn layer: how to build it and what the matching op call is. */
interface LayerCase {
  kind: Kind;
  n: number;
  input: number[];
  /** Constructor arguments, for messages. */
  describe: string;
  build: () => HybridBlock;
  /** The op call the layer should make, given the layer (for its parameters). */
  expected: (layer: HybridBlock, x: Tensor) => Tensor;
}

const CONV = [nn.Conv1D, nn.Conv2D, nn.Conv3D] as const;
const CONVT = [nn.Conv1DTranspose, nn.Conv2DTranspose, nn.Conv3DTranspose] as const;
const MAX = [nn.MaxPool1D, nn.MaxPool2D, nn.MaxPool3D] as const;
const AVG = [nn.AvgPool1D, nn.AvgPool2D, nn.AvgPool3D] as const;
const GMAX = [nn.GlobalMaxPool1D, nn.GlobalMaxPool2D, nn.GlobalMaxPool3D] as const;
const GAVG = [nn.GlobalAvgPool1D, nn.GlobalAvgPool2D, nn.GlobalAvgPool3D] as const;
const LAYOUT = ["NCW", "NCHW", "NCDHW"] as const;

/** A tuple given as one number when all entries agree and the draw says so. */
function form(draw: Draw, v: number[]): number | number[] {
  return v.every((d) => d === v[0]) && draw.bool() ? v[0] : v;
}

function divisorsUpTo(n: number, max: number): number[] {
  const out: number[] = [];
  for (let i = 1; i <= Math.min(n, max); i++) if (n % i === 0) out.push(i);
  return out;
}

function drawCase(draw: Draw): LayerCase {
  const kind = draw.pick(["conv", "convT", "max", "avg", "gmax", "gavg"] as const);
  const n = draw.int(1, 3);
  const spatial = Array.from({ length: n }, () => draw.int(1, 5));
  const input = [draw.int(1, 2), draw.int(1, 4), ...spatial];
  const layout = LAYOUT[n - 1];
  if (kind === "conv" || kind === "convT") {
    const groups = draw.pick(divisorsUpTo(input[1], 4));
    const channels = groups * draw.int(1, 2);
    const kernel: number[] = [];
    const strides: number[] = [];
    const padding: number[] = [];
    const dilation: number[] = [];
    const outPad: number[] = [];
    for (const x of spatial) {
      const d = draw.int(1, 2);
      const s = draw.int(1, 2);
      let k: number;
      let p: number;
      if (kind === "conv") {
        p = draw.int(0, 1);
        k = draw.int(1, Math.min(3, Math.floor((x + 2 * p - 1) / d) + 1));
      } else {
        k = draw.int(1, 3);
        p = draw.int(0, Math.min(1, Math.floor(((x - 1) * s + d * (k - 1)) / 2)));
      }
      kernel.push(k);
      strides.push(s);
      padding.push(p);
      dilation.push(d);
      outPad.push(draw.int(0, s - 1));
    }
    const useBias = draw.bool();
    const activation = draw.pick([undefined, "relu", "tanh"] as const);
    const deferred = draw.bool();
    const options = {
      strides: form(draw, strides),
      padding: form(draw, padding),
      dilation: form(draw, dilation),
      groups,
      useBias,
      activation,
      inChannels: deferred ? 0 : input[1],
      layout,
      ...(kind === "convT" ? { outputPadding: form(draw, outPad) } : {}),
    };
    const kernelSize = form(draw, kernel);
    const Ctor = (kind === "conv" ? CONV : CONVT)[n - 1];
    return {
      kind,
      n,
      input,
      describe: `${Ctor.name}(${channels}, ${JSON.stringify(kernelSize)}, ${
        JSON.stringify(options)
      })`,
      // deno-lint-ignore no-explicit-any
      build: () => new (Ctor as any)(channels, kernelSize, options),
      expected: (layer, x) => {
        const l = layer as nn.ConvLayer;
        const params = useBias ? [l.weight.data(), l.bias!.data()] : [l.weight.data()];
        const attrs = {
          kernel,
          stride: strides,
          dilate: dilation,
          pad: padding,
          num_filter: channels,
          num_group: groups,
          no_bias: !useBias,
          layout,
        };
        const y = kind === "conv"
          ? nd.Convolution(x, ...params, attrs)
          : nd.Deconvolution(x, ...params, { ...attrs, adj: outPad });
        return activation ? nd.Activation(y, { act_type: activation }) : y;
      },
    };
  }
  if (kind === "max" || kind === "avg") {
    const pool: number[] = [];
    const strides: number[] = [];
    const padding: number[] = [];
    for (const x of spatial) {
      const k = draw.int(1, Math.min(3, x + 2));
      pool.push(k);
      // Pad below the kernel and enough that the window fits.
      padding.push(draw.int(Math.max(0, Math.ceil((k - x) / 2)), Math.min(1, k - 1)));
      strides.push(draw.int(1, 2));
    }
    const givenStrides = draw.bool();
    const stride = givenStrides ? strides : pool;
    let ceilMode = draw.bool();
    // A rounded-up window that starts past the input has nothing to pool; avoid it.
    if (
      ceilMode &&
      pool.some((k, i) =>
        Math.ceil((spatial[i] + 2 * padding[i] - k) / stride[i]) * stride[i] - padding[i] >
          spatial[i] - 1
      )
    ) {
      ceilMode = false;
    }
    const countIncludePad = draw.bool();
    const options = {
      ...(givenStrides ? { strides: form(draw, strides) } : draw.bool() ? { strides: null } : {}),
      padding: form(draw, padding),
      ceilMode,
      layout,
      ...(kind === "avg" ? { countIncludePad } : {}),
    };
    const poolSize = form(draw, pool);
    const Ctor = (kind === "max" ? MAX : AVG)[n - 1];
    return {
      kind,
      n,
      input,
      describe: `${Ctor.name}(${JSON.stringify(poolSize)}, ${JSON.stringify(options)})`,
      // deno-lint-ignore no-explicit-any
      build: () => new (Ctor as any)(poolSize, options),
      expected: (_layer, x) =>
        nd.Pooling(x, {
          kernel: pool,
          stride,
          pad: padding,
          global_pool: false,
          pool_type: kind,
          layout,
          pooling_convention: ceilMode ? "full" : "valid",
          ...(kind === "avg" ? { count_include_pad: countIncludePad } : {}),
        }),
    };
  }
  const Ctor = (kind === "gmax" ? GMAX : GAVG)[n - 1];
  const ones = new Array<number>(n).fill(1);
  return {
    kind,
    n,
    input,
    describe: `${Ctor.name}()`,
    build: () => new Ctor(),
    expected: (_layer, x) =>
      nd.Pooling(x, {
        kernel: ones,
        stride: ones,
        pad: new Array<number>(n).fill(0),
        global_pool: true,
        pool_type: kind === "gmax" ? "max" : "avg",
        layout,
        pooling_convention: "full",
      }),
  };
}

const arbCase = fc.gen().map((g) => drawCase(drawFromGen(g)));

Deno.test("property: layers equal their op on their own parameters, eager and hybridized", () => {
  let seed = 0;
  fc.assert(
    fc.property(arbCase, (c) => {
      const what = `${c.describe} on ${JSON.stringify(c.input)}`;
      const layer = c.build();
      layer.initialize({ seed: ++seed });
      const x = nd.random.uniform(-1, 1, c.input, { seed });
      const eager = layer.call(x) as Tensor;
      const expected = c.expected(layer, x);
      assert.deepEqual(eager.shape, expected.shape, what);
      assert.deepEqual(tensorValues(eager), tensorValues(expected), what);
      if (c.kind === "conv" || c.kind === "convT") {
        // The deferred input channels are known after the first call.
        const w = (layer as nn.ConvLayer).weight.shape!;
        assert.equal(c.kind === "conv" ? w[1] * (layer as nn.ConvLayer).groups : w[0], c.input[1]);
      }
      // Traced and run by the reference interpreter: the eager reference's very values (big
      // eager calls otherwise run on WASM, within float32 rounding of them).
      const eagerRef = onReference(() => layer.call(x) as Tensor);
      assertNear(eager, eagerRef, `${what}: eager on the default engine`);
      layer.hybridize({ engine: referenceEngine });
      const hybrid = layer.call(x) as Tensor;
      assert.deepEqual(hybrid.shape, eager.shape, what);
      assert.deepEqual(tensorValues(hybrid), tensorValues(eagerRef), what);
      layer.hybridize();
      assertNear(layer.call(x) as Tensor, eager, `${what} on WASM`);
      const outs = layer.cachedGraph()!.symbol.getInternals().listOutputs();
      assert.ok(outs.includes("fwd_output"), `${what}: ${outs}`);
    }),
    { numRuns: 250, seed: 42 },
  );
});

Deno.test("deferred inChannels are inferred at the first call", () => {
  const conv = new nn.Conv2D(6, [3, 1], { groups: 3 });
  assert.deepEqual(conv.weight.shape, [6, -1, 3, 1]);
  assert.deepEqual(conv.bias!.shape, [6]);
  conv.initialize();
  assert.equal(conv.weight.isDeferred, true);
  assertThrowsError(() => conv.weight.data(), Error, /has not been initialized yet/);
  const y = conv.call(nd.ones([2, 9, 5, 5]));
  assert.deepEqual(y.shape, [2, 6, 3, 5]);
  assert.deepEqual(conv.weight.shape, [6, 3, 3, 1]);
  assert.deepEqual(conv.weight.data().shape, [6, 3, 3, 1]);
  // Transposed: the weight is (inChannels, channels / groups, *kernel).
  const up = new nn.Conv3DTranspose(4, 2, { strides: 2, groups: 2 });
  assert.deepEqual(up.weight.shape, [-1, 2, 2, 2, 2]);
  up.initialize();
  up.hybridize();
  assert.deepEqual(up.call(nd.ones([1, 6, 2, 2, 2])).shape, [1, 4, 4, 4, 4]);
  assert.deepEqual(up.weight.shape, [6, 2, 2, 2, 2]);
  // Given inChannels: known at once.
  const known = new nn.Conv1D(3, 2, { inChannels: 4, useBias: false });
  assert.deepEqual(known.weight.shape, [3, 4, 2]);
  assert.equal(known.bias, undefined);
  known.initialize();
  assert.deepEqual(known.weight.data().shape, [3, 4, 2]);
  // A deferred layer inside a container.
  const net = new nn.HybridSequential().add(new nn.Conv1DTranspose(2, 3), new nn.Conv1D(5, 1));
  net.initialize();
  assert.deepEqual(net.call(nd.ones([1, 7, 4])).shape, [1, 5, 6]);
  assert.deepEqual(net.collectParams()["0.weight"].shape, [7, 2, 3]);
  assert.deepEqual(net.collectParams()["1.weight"].shape, [5, 2, 1]);
});

Deno.test("parameter names, collectParams keys and traced op names", () => {
  const conv = new nn.Conv2D(4, 3, { activation: "relu" });
  assert.deepEqual(Object.keys(conv.params), ["weight", "bias"]);
  assert.deepEqual(Object.keys(conv.collectParams()), ["weight", "bias"]);
  const net = new nn.HybridSequential().add(
    conv,
    new nn.MaxPool2D(),
    new nn.Conv2DTranspose(2, 2, { strides: 2, useBias: false }),
    new nn.GlobalAvgPool2D(),
  );
  assert.deepEqual(Object.keys(net.collectParams()), ["0.weight", "0.bias", "2.weight"]);
  net.initialize({ seed: 3 });
  net.hybridize();
  const y = net.call(nd.ones([1, 3, 10, 10]));
  assert.deepEqual(y.shape, [1, 2, 1, 1]);
  const symbol = net.cachedGraph()!.symbol;
  assert.deepEqual(symbol.getInternals().listOutputs(), [
    "data",
    "0.weight",
    "0.bias",
    "0_fwd_output",
    "0_act_fwd_output",
    "1_fwd_output",
    "2.weight",
    "2_fwd_output",
    "3_fwd_output",
  ]);
  assert.deepEqual(symbol.listArguments(), ["data", "0.weight", "0.bias", "2.weight"]);
  // The attributes Gluon passes, in MXNet's string forms.
  const attrs = symbol.attrDict();
  assert.deepEqual(attrs["0_fwd"], {
    kernel: "(3, 3)",
    stride: "(1, 1)",
    dilate: "(1, 1)",
    pad: "(0, 0)",
    num_filter: "4",
    num_group: "1",
    no_bias: "False",
    layout: "NCHW",
  });
  assert.deepEqual(attrs["0_act_fwd"], { act_type: "relu" });
  assert.deepEqual(attrs["1_fwd"], {
    kernel: "(2, 2)",
    stride: "(2, 2)",
    pad: "(0, 0)",
    global_pool: "False",
    pool_type: "max",
    layout: "NCHW",
    pooling_convention: "valid",
  });
  assert.deepEqual(attrs["2_fwd"], {
    kernel: "(2, 2)",
    stride: "(2, 2)",
    dilate: "(1, 1)",
    pad: "(0, 0)",
    adj: "(0, 0)",
    num_filter: "2",
    num_group: "1",
    no_bias: "True",
    layout: "NCHW",
  });
  assert.deepEqual(attrs["3_fwd"], {
    kernel: "(1, 1)",
    stride: "(1, 1)",
    pad: "(0, 0)",
    global_pool: "True",
    pool_type: "avg",
    layout: "NCHW",
    pooling_convention: "full",
  });
  assert.equal(
    new nn.AvgPool1D(3).toString(),
    "AvgPool1D(size=(3,), stride=(3,), padding=(0,), ceil_mode=False, global_pool=False, pool_type=avg, layout=NCW)",
  );
  const avg = new nn.HybridSequential().add(new nn.AvgPool2D(2, { countIncludePad: false }));
  avg.hybridize();
  avg.call(nd.ones([1, 1, 4, 4]));
  assert.equal(avg.cachedGraph()!.symbol.attrDict()["0_fwd"].count_include_pad, "False");
});

Deno.test("toString follows MXNet's repr", () => {
  assert.equal(
    String(new nn.Conv2D(16, 3, { inChannels: 3 })),
    "Conv2D(3 -> 16, kernel_size=(3, 3), stride=(1, 1))",
  );
  assert.equal(
    String(
      new nn.Conv1D(8, 5, {
        strides: 2,
        padding: 2,
        dilation: 2,
        groups: 2,
        useBias: false,
        activation: "tanh",
      }),
    ),
    "Conv1D(None -> 8, kernel_size=(5,), stride=(2,), padding=(2,), dilation=(2,), groups=2, bias=False, Activation(tanh))",
  );
  assert.equal(
    String(
      new nn.Conv2DTranspose(8, 4, { strides: 2, padding: 1, outputPadding: 1, inChannels: 3 }),
    ),
    "Conv2DTranspose(3 -> 8, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))",
  );
  assert.equal(
    String(new nn.MaxPool2D()),
    "MaxPool2D(size=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False, global_pool=False, pool_type=max, layout=NCHW)",
  );
  assert.equal(
    String(new nn.GlobalMaxPool3D()),
    "GlobalMaxPool3D(size=(1, 1, 1), stride=(1, 1, 1), padding=(0, 0, 0), ceil_mode=True, global_pool=True, pool_type=max, layout=NCDHW)",
  );
});

Deno.test("a wrong input rank is a ShapeError naming the input", () => {
  const x3 = nd.ones([2, 3, 8]);
  const cases: [string, () => unknown][] = [
    ["deferred conv, eager", () => {
      const c = new nn.Conv2D(4, 3);
      c.initialize();
      return c.call(x3);
    }],
    ["deferred conv, hybridized", () => {
      const c = new nn.Conv2DTranspose(4, 3);
      c.initialize();
      c.hybridize();
      return c.call(x3);
    }],
    ["known conv, eager", () => {
      const c = new nn.Conv3D(4, 3, { inChannels: 3 });
      c.initialize();
      return c.call(x3);
    }],
    ["known conv, hybridized", () => {
      const c = new nn.Conv2D(4, 3, { inChannels: 3 });
      c.initialize();
      c.hybridize();
      return c.call(x3);
    }],
    ["pool, eager", () => new nn.MaxPool2D().call(x3)],
    ["global pool, eager", () => new nn.GlobalAvgPool2D().call(x3)],
    ["global pool, hybridized", () => {
      const p = new nn.GlobalAvgPool2D();
      p.hybridize();
      return p.call(x3);
    }],
    ["inside a container", () => {
      const net = new nn.HybridSequential().add(new nn.Conv2D(4, 3));
      net.initialize();
      return net.call(x3);
    }],
  ];
  for (const [what, fn] of cases) {
    const e = assertThrowsError(fn, ShapeError);
    assert.match(e.message, /'data'|data \(2, 3, 8\)/, `${what}: ${e.message}`);
    assert.match(e.message, /\(2, 3, 8\)/, `${what}: ${e.message}`);
  }
  assertThrowsError(
    () => new nn.AvgPool3D().call(nd.ones([1, 1, 4, 4])),
    ShapeError,
    /AvgPool3D: input 'data' has shape \(1, 1, 4, 4\) but must be 5-d/,
  );
});

Deno.test("bad constructor arguments are AttributeErrors", () => {
  // deno-lint-ignore no-explicit-any
  const anyNn = nn as any;
  assertThrowsError(() => new nn.Conv2D(4, [3, 3, 3]), AttributeError, /kernelSize/);
  assertThrowsError(() => new nn.Conv2D(0, 3), AttributeError, /channels/);
  assertThrowsError(() => new nn.Conv2D(5, 3, { groups: 2 }), AttributeError, /not divisible/);
  assertThrowsError(
    () => new nn.Conv2D(4, 3, { groups: 2, inChannels: 3 }),
    AttributeError,
    /inChannels 3 is not divisible/,
  );
  assertThrowsError(() => new nn.Conv1D(4, 3, { strides: 0 }), AttributeError, /strides/);
  assertThrowsError(() => new nn.Conv1D(4, 3, { padding: -1 }), AttributeError, /padding/);
  assertThrowsError(
    () => new nn.Conv2DTranspose(4, 3, { strides: 2, outputPadding: 2 }),
    AttributeError,
    /outputPadding \(2, 2\) must be smaller than strides/,
  );
  assertThrowsError(
    () => new anyNn.Conv2D(4, 3, { layout: "NHWC" }),
    AttributeError,
    /layout NHWC is not supported/,
  );
  assertThrowsError(() => new nn.MaxPool2D([2, 2, 2]), AttributeError, /poolSize/);
  assertThrowsError(() => new anyNn.MaxPool1D(2, { layout: "NCHW" }), AttributeError, /layout/);
  assertThrowsError(() => new anyNn.AvgPool2D("2"), AttributeError, /poolSize/);
});
