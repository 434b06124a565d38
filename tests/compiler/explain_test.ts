/**
 * Shape and dtype conflicts blame the graph input and dimension to change (not the first weight
 * that disagrees), with the value the op wants and where each input comes from.
 */
import { DTypeError, nd, nn, referenceEngine, ShapeError, sym, wasmEngine } from "../../mod.ts";
import type { Symbol } from "../../compiler/symbol.ts";
import { assert, assertThrowsError } from "../util.ts";

function convNet(): { y: Symbol; params: Record<string, ReturnType<typeof nd.zeros>> } {
  const c = sym.Convolution(sym.var("data"), { kernel: [5, 5], num_filter: 10, name: "conv0" });
  const y = sym.FullyConnected(sym.Activation(c, { act_type: "relu", name: "relu0" }), {
    num_hidden: 4,
    name: "fc",
  });
  const params = {
    conv0_weight: nd.zeros([10, 3, 5, 5]),
    conv0_bias: nd.zeros([10]),
    fc_weight: nd.zeros([4, 10 * 24 * 24]),
    fc_bias: nd.zeros([4]),
  };
  return { y, params };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("did not reject");
}

Deno.test("a wrong input channel count names the graph input, the dimension and the expected value", async () => {
  const { y, params } = convNet();
  for (const engine of [wasmEngine(), referenceEngine]) {
    const e = await rejection(y.eval({ data: nd.zeros([1, 1, 28, 28]), ...params }, { engine }));
    assert.ok(e instanceof ShapeError, String(e));
    assert.match(
      e.message,
      /input 'data' \(graph input 'data'\) has shape \(1, 1, 28, 28\), but Convolution needs dimension 1 to be 3, not 1, to match 'weight' \(10, 3, 5, 5\)/,
    );
  }
  // inferShape says the same.
  assertThrowsError(
    () => y.inferShape({ data: [2, 4, 28, 28], conv0_weight: [10, 3, 5, 5] }),
    ShapeError,
    /graph input 'data'.*dimension 1 to be 3, not 4/,
  );
  // A later mismatch says where its data comes from.
  const e = await rejection(y.eval({ data: nd.zeros([1, 3, 30, 30]), ...params }));
  assert.match(e.message, /node 'fc'.*needs dimension 1 to be 6760, not 5760/);
  assert.match(
    e.message,
    /the output of node 'relu0' \(Activation\), computed from graph input 'data'/,
  );
});

Deno.test("a wrong input dtype names every input's dtype and source", async () => {
  const { y, params } = convNet();
  const e = await rejection(
    y.eval({ data: nd.zeros([1, 3, 28, 28], { dtype: "float64" }), ...params }),
  );
  assert.ok(e instanceof DTypeError, String(e));
  assert.match(
    e.message,
    /'data' float64 \(graph input 'data'\), 'weight' float32 \(graph input 'conv0_weight'\)/,
  );
});

Deno.test("a hybridized block called on a wrong input names the input, not a weight", () => {
  const net = new nn.HybridSequential().add(
    new nn.Conv2D(4, 3, { inChannels: 3 }),
    new nn.Dense(2),
  );
  net.initialize({ seed: 1 });
  net.hybridize();
  net.call(nd.zeros([1, 3, 8, 8]));
  assertThrowsError(
    () => net.call(nd.zeros([1, 1, 8, 8])),
    ShapeError,
    /input 'data' \(graph input 'data'\) has shape \(1, 1, 8, 8\), but Convolution needs dimension 1 to be 3, not 1/,
  );
  // A weight of the wrong shape (two dimensions off) is blamed with the shape it needs.
  const c = sym.Convolution(sym.var("data"), { kernel: [5, 5], num_filter: 2, name: "c" });
  assertThrowsError(
    () => c.inferShape({ data: [1, 3, 8, 8], c_weight: [2, 3, 3, 3] }),
    ShapeError,
    /node 'c' \(Convolution\): input 'weight' has shape \(2, 3, 3, 3\) but Convolution expects \(2, 3, 5, 5\)/,
  );
});

Deno.test("an eager call's shape conflict shows the other inputs' shapes", () => {
  assertThrowsError(
    () => nd.FullyConnected(nd.zeros([2, 3]), nd.zeros([4, 5]), nd.zeros([4]), { num_hidden: 4 }),
    ShapeError,
    /input 'weight' has shape \(4, 5\) but FullyConnected expects \(4, 3\) with 'data' \(2, 3\), 'bias' \(4,\)/,
  );
});
