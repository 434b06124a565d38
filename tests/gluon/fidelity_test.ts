// MXNet Gluon behaviour the API follows, each case stating what MXNet does.
import {
  amp,
  Block,
  Constant,
  ConstantInitializer,
  F,
  HybridBlock,
  loadParams,
  nd,
  nn,
  OptConstraint,
  Parameter,
  ShapeError,
  SigilError,
  sym,
  SymbolBlock,
  type Tensor,
  type Value,
  Xavier,
} from "../../mod.ts";
import * as initializers from "../../gluon/initializer.ts";
import { FormatError } from "../../runtime/errors.ts";
import { assert, assertNear, assertThrowsError } from "../util.ts";

/** Silences console.warn while `fn` runs and returns what it would have printed. */
export function captureWarnings<T>(fn: () => T): { result: T; warnings: string[] } {
  const saved = console.warn;
  const warnings: string[] = [];
  console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(" "));
  try {
    return { result: fn(), warnings };
  } finally {
    console.warn = saved;
  }
}

class Scaled extends Block {
  scale = new Parameter("scale", { shape: [], init: "ones" });
  dense = new nn.Dense(2, { inUnits: 3 });
  forward(x: Value): Value {
    return nd.broadcast_mul(this.dense.call(x) as never, this.scale.value() as never);
  }
}

Deno.test("0-d parameters: saveParameters writes V3 records (MXNet's np-shape nd.save) and they load back", async () => {
  const net = new Scaled();
  net.initialize({ seed: 1 });
  // V2 cannot hold them: ndim 0 means "none" there, as in MXNet without np shape.
  assertThrowsError(() => net.parametersBytes(), FormatError, /0-d.*"v3" or "npz"/);
  const bytes = net.parametersBytes({ format: "v3" });
  const file = await loadParams(bytes);
  assert.equal(file.arrayFormat, "v3");
  assert.deepEqual(file.names, ["scale", "dense.weight", "dense.bias"]);
  assert.deepEqual(file.arrays[0].shape, []);
  const back = new Scaled();
  back.initialize({ seed: 2 });
  await back.loadParameters(bytes);
  assert.equal(back.scale.data().toArray(), 1);
  assert.deepEqual(back.dense.weight.data().toArray(), net.dense.weight.data().toArray());
  assertThrowsError(
    () => net.parametersBytes({ format: "v4" as never }),
    SigilError,
    /"v2", "v3" or "npz"/,
  );
});

Deno.test("Sequential and HybridSequential: negative indices and slices give a new container, as MXNet's net[i] / net[a:b:c]", () => {
  for (const Container of [nn.Sequential, nn.HybridSequential]) {
    const layers = [0, 1, 2, 3, 4].map((i) => new nn.Dense(i + 1));
    const net = new Container().add(...layers);
    assert.equal(net.get(-1), layers[4]);
    assert.equal(net.get(-5), layers[0]);
    assertThrowsError(() => net.get(-6), SigilError, /no child -6/);
    assertThrowsError(() => net.get(5), SigilError, /no child 5/);
    // Python's slice semantics: clamped bounds, negative starts and steps, empty results.
    const cases: [number | undefined, number | undefined, number | undefined, number[]][] = [
      [1, 3, undefined, [1, 2]],
      [undefined, -2, undefined, [0, 1, 2]],
      [-2, undefined, undefined, [3, 4]],
      [undefined, undefined, 2, [0, 2, 4]],
      [undefined, undefined, -1, [4, 3, 2, 1, 0]],
      [3, 0, -2, [3, 1]],
      [-100, 100, undefined, [0, 1, 2, 3, 4]],
      [4, 1, undefined, []],
    ];
    for (const [start, stop, step, want] of cases) {
      const part = net.slice(start, stop, step);
      assert.ok(part instanceof Container && part !== net);
      assert.deepEqual(
        part.children().map(([k, c]) => [k, c]),
        want.map((i, k) => [String(k), layers[i]]),
      );
    }
    assertThrowsError(() => net.slice(0, 2, 0), SigilError, /step cannot be zero/);
    // The slice shares the blocks, so their parameters.
    net.initialize();
    const head = net.slice(0, 2);
    assert.equal(head.collectParams()["1.weight"], net.collectParams()["1.weight"]);
  }
  // The concatenating containers keep their axis in a slice.
  const cat = new nn.HybridConcatenate(1).add(new nn.Dense(2), new nn.Dense(3), new nn.Dense(4));
  const two = cat.slice(1);
  assert.ok(two instanceof nn.HybridConcatenate && two.axis === 1 && two.length === 2);
  assert.equal(new nn.Concatenate(0).add(new nn.Identity()).slice(0, 1).axis, 0);
});

Deno.test("hybridizing a Sequential of HybridBlocks warns once to use HybridSequential, as MXNet", () => {
  const net = new nn.Sequential().add(new nn.Dense(2), new nn.Activation("relu"));
  const { warnings } = captureWarnings(() => {
    net.hybridize();
    net.hybridize({ active: false });
  });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /^All children of this Sequential layer 'Sequential\(\n/);
  assert.match(
    warnings[0],
    /are HybridBlocks\. Consider using HybridSequential for the best performance\.$/,
  );
  // Another such container warns too; one with a plain Block child, or none, does not.
  const other = new nn.Sequential().add(new nn.Dense(1));
  assert.equal(captureWarnings(() => other.hybridize()).warnings.length, 1);
  const mixed = new nn.Sequential().add(new nn.Dense(2), new nn.Lambda("relu"));
  assert.deepEqual(captureWarnings(() => mixed.hybridize()).warnings, []);
  assert.deepEqual(captureWarnings(() => new nn.Sequential().hybridize()).warnings, []);
  // HybridSequential itself never warns.
  const hs = new nn.HybridSequential().add(new nn.Dense(2));
  assert.deepEqual(captureWarnings(() => hs.hybridize()).warnings, []);
});

class Stack extends Block {
  layers = [new nn.Dense(2), new nn.Dense(3)];
  byName = { head: new nn.Dense(1) };
  numbers = [1, 2, 3];
  forward(x: Value): Value {
    return x;
  }
}

Deno.test("blocks kept in arrays or objects are not children: MXNet's unregistered-container warning, once per property", () => {
  const net = new Stack();
  const { result, warnings } = captureWarnings(() => {
    const params = net.collectParams();
    net.initialize();
    net.collectParams();
    return params;
  });
  assert.deepEqual(Object.keys(result), []); // their parameters are not collected
  assert.deepEqual(warnings, [
    '"Stack.layers" is an unregistered container with Blocks. Note that Blocks inside the array, object or Map will not be registered automatically. Make sure to register them using registerChild() or switching to nn.Sequential/nn.HybridSequential instead.',
    '"Stack.byName" is an unregistered container with Blocks. Note that Blocks inside the array, object or Map will not be registered automatically. Make sure to register them using registerChild() or switching to nn.Sequential/nn.HybridSequential instead.',
  ]);
  // Registered with registerChild, the same blocks are children: no warning, parameters found.
  const ok = new Stack();
  ok.layers.forEach((b, i) => ok.registerChild(b, `layers${i}`));
  ok.registerChild(ok.byName.head, "head");
  const checked = captureWarnings(() => ok.collectParams());
  assert.deepEqual(checked.warnings, []);
  assert.deepEqual(Object.keys(checked.result), [
    "layers0.weight",
    "layers0.bias",
    "layers1.weight",
    "layers1.bias",
    "head.weight",
    "head.bias",
  ]);
  // Nested children are checked too, and a Map counts as a container.
  const outer = new nn.HybridSequential().add(new Stack());
  assert.equal(captureWarnings(() => outer.collectParams()).warnings.length, 2);
  class WithMap extends Block {
    table = new Map([["a", new nn.Dense(1)]]);
    forward(x: Value): Value {
      return x;
    }
  }
  assert.match(
    captureWarnings(() => new WithMap().collectParams()).warnings[0],
    /"WithMap\.table"/,
  );
});

class WithConstants extends HybridBlock {
  dense = new nn.Dense(2, { inUnits: 2 });
  table = new Constant("table", [[1, 2], [3, 4]]);
  offset = new Constant("offset", 0.5);
  forward(x: Value): Value {
    const y = F.dot(this.dense.call(x), this.table.value());
    return F.broadcast_add(y, this.offset.value());
  }
}

Deno.test("gluon.Constant: a parameter fixed to its value, gradReq always null, as MXNet's", async () => {
  // MXNet: Constant(value) takes the value's shape and dtype (lists become float32 arrays) and
  // the name 'const'; grad_req is 'null' and other values warn and are ignored.
  const c = new Constant([[1, 2], [3, 4]]);
  assert.equal(c.name, "const");
  assert.deepEqual(c.shape, [2, 2]);
  assert.equal(c.dtype, "float32");
  assert.equal(c.gradReq, "null");
  assert.equal(String(c), "Constant (shape=(2, 2), dtype=float32)");
  assert.deepEqual(new Constant(3).shape, []);
  const ints = new Constant("ids", nd.array([1, 2, 3], { dtype: "int32" }));
  assert.equal(ints.dtype, "int32");
  const { warnings } = captureWarnings(() => {
    c.gradReq = "write";
    c.gradReq = "write";
    c.gradReq = "add";
  });
  assert.equal(c.gradReq, "null");
  assert.deepEqual(warnings, [
    'Constant parameter "const" does not support grad_req other than "null", and new value "write" is ignored.',
    'Constant parameter "const" does not support grad_req other than "null", and new value "add" is ignored.',
  ]);
  assertThrowsError(() => (c.gradReq = "bad" as never), SigilError, /gradReq must be/);
  assertThrowsError(() => new Constant([[1, 2], [3]]), ShapeError, /rectangular/);
  assertThrowsError(() => new Constant("x", undefined as never), SigilError, /needs a value/);

  // In a block: initialize sets the value whatever the global initializer; the block's own
  // weights follow it. Freezing the block (setattr grad_req write) leaves constants null.
  const net = new WithConstants();
  net.initialize({ init: new Xavier(), seed: 3 });
  assert.deepEqual(net.table.data().toArray(), [[1, 2], [3, 4]]);
  assert.equal(net.offset.data().toArray(), 0.5);
  assert.deepEqual(Object.keys(net.collectParams()), [
    "table",
    "offset",
    "dense.weight",
    "dense.bias",
  ]);
  assert.match(
    captureWarnings(() => net.setattr("grad_req", "write")).warnings.join(),
    /Constant parameter "table"/,
  );
  assert.equal(net.table.gradReq, "null");
  assertThrowsError(() => net.table.grad(), SigilError, /gradReq 'null'/);

  // Eager and hybridized calls agree; export keeps the constants as parameters (0-d in V3).
  const x = nd.array([[1, -1]]);
  const eager = net.call(x) as Tensor;
  net.hybridize();
  const hybrid = net.call(x) as Tensor;
  assert.deepEqual(hybrid.toArray(), eager.toArray());
  const { symbol, params } = net.exportBytes({ format: "v3" });
  assert.ok(symbol.includes('"__init__": "Constant_table"'));
  const file = await loadParams(params!);
  assert.deepEqual(file.names?.slice().sort(), [
    "arg:dense.bias",
    "arg:dense.weight",
    "arg:offset",
    "arg:table",
  ]);
  const back = await SymbolBlock.imports(new TextEncoder().encode(symbol), ["data"], params);
  assert.deepEqual((back.call(x) as Tensor).toArray(), eager.toArray());

  // setData replaces the value, as MXNet's set_data does.
  net.table.setData(nd.array([[0, 0], [0, 1]]));
  assert.deepEqual(net.table.data().toArray(), [[0, 0], [0, 1]]);
});

Deno.test("the constant initializer is ConstantInitializer; its old name stays as a deprecated alias", () => {
  assert.equal(initializers.Constant, ConstantInitializer);
  const p = new Parameter("w", { shape: [2], init: new initializers.Constant(7) });
  p.initialize();
  assert.deepEqual(p.data().toArray(), [7, 7]);
  // A Constant parameter given where an initializer goes is a typed error that says so.
  const q = new Parameter("q", { shape: [2], init: new Constant(1) as never });
  assertThrowsError(
    () => q.initialize(),
    SigilError,
    /constant parameter; use ConstantInitializer/,
  );
});

class OffloadNet extends HybridBlock {
  lp16a = new nn.Conv2D(4, 3);
  lp16b = new nn.Conv2D(4, 3);
  fp32 = new nn.Dense(4);
  forward(x: Value): Value {
    const y = F.Reshape(this.lp16b.call(this.lp16a.call(x)), { shape: [0, -1] });
    return HybridBlock.OptConstraint.disableAmp(() => this.fp32.call(y));
  }
}

Deno.test("OptConstraint.disableAmp: ops built in the scope carry __opt_constraint__ and AMP keeps them in float32 (MXNet's test_amp_offline_casting)", () => {
  assert.equal(HybridBlock.OptConstraint, OptConstraint);
  assert.equal(OptConstraint.Flag.DisableAMP, 1);
  const net = new OffloadNet();
  net.initialize({ seed: 1 });
  const x = nd.random.uniform(-1, 1, [2, 3, 8, 8], { seed: 2 });
  const want = net.call(x) as Tensor; // eager calls are unaffected
  // The traced graph marks the Dense layer's node (and only it) as MXNet's deferred compute does.
  net.hybridize();
  net.call(x);
  const marked = net.cachedGraph()!.symbol.nodes().filter((n) => n.attrs.__opt_constraint__);
  assert.deepEqual(marked.map((n) => [n.opName, n.attrs.__opt_constraint__]), [[
    "FullyConnected",
    "1",
  ]]);
  assert.ok(net.exportBytes().symbol.includes('"__opt_constraint__": "1"'));
  // AMP with offline casting: the constrained layer's parameters stay float32.
  const lp = amp.convertHybridBlock(net, {
    targetDtype: "float16",
    dataExample: [x],
    castParamsOffline: true,
  });
  const dtypes = Object.entries(lp.collectParams()).map(([k, p]) => [k, p.dtype]);
  for (const [k, d] of dtypes) assert.equal(d, k.startsWith("fp32") ? "float32" : "float16", k);
  const fc = lp.symbol.nodes().find((n) => n.opName === "FullyConnected")!;
  const inputs = fc.inputs.map((e) => e.node.opName);
  assert.deepEqual(inputs, ["amp_cast", "null", "null"]); // its data input is cast back to float32
  const y = lp.call(x) as Tensor;
  assert.equal(y.dtype, "float32");
  assert.deepEqual(y.shape, want.shape);
});

Deno.test("OptConstraint scopes nest (bits unite), restore on return and throw, and reach sym builders", () => {
  const x = sym.var("x");
  const both = new OptConstraint(2).run(() =>
    OptConstraint.disableAmp(() => sym.exp(x, { name: "e" }))
  );
  assert.equal(both.attr("__opt_constraint__"), "3");
  // An op's own attribute unites with the scope's.
  const own = OptConstraint.disableAmp(() => sym.exp(x, { attr: { __opt_constraint__: "4" } }));
  assert.equal(own.attr("__opt_constraint__"), "5");
  assert.equal(sym.exp(x).attr("__opt_constraint__"), undefined);
  assertThrowsError(
    () =>
      OptConstraint.disableAmp(() => {
        throw new SigilError("inside");
      }),
    SigilError,
    /inside/,
  );
  assert.equal(sym.exp(x).attr("__opt_constraint__"), undefined);
  // The scope object form (MXNet's `with OptConstraint.disable_amp():`) and disableAll.
  const scope = OptConstraint.disableAmp();
  assert.ok(scope instanceof OptConstraint && scope.flag === 1);
  assert.equal(scope.run(() => sym.exp(x)).attr("__opt_constraint__"), "1");
  assert.equal(OptConstraint.disableAll().flag, 1);
  // Variables the op creates for its missing inputs are not marked.
  const fc = OptConstraint.disableAmp(() => sym.FullyConnected(x, { num_hidden: 2, name: "fc" }));
  const weight = fc.outputs[0].node.inputs[1].node;
  assert.equal(weight.attrs.__opt_constraint__, undefined);
  assertThrowsError(() => new OptConstraint(-1), SigilError, /non-negative integer/);
});

// The standalone elementwise ops (ops/math.ts), by their MXNet names.
const UNARY = [
  "relu",
  "sigmoid",
  "tanh",
  "softsign",
  "hard_sigmoid",
  "sin",
  "cos",
  "tan",
  "arcsin",
  "arccos",
  "arctan",
  "sinh",
  "cosh",
  "degrees",
  "radians",
  "floor",
  "ceil",
  "round",
  "rint",
  "fix",
  "trunc",
  "sign",
  "reciprocal",
  "log2",
  "log10",
  "log1p",
  "expm1",
  "erf",
  "logical_not",
] as const;

Deno.test("nn.Lambda / nn.HybridLambda take the standalone ops by name, as MXNet's Lambda('tanh'): eager, hybridized, exported and imported", async () => {
  const x = nd.random.uniform(-0.9, 0.9, [2, 8], { seed: 5 });
  for (const name of UNARY) {
    const want = (nd as unknown as Record<string, (t: Tensor) => Tensor>)[name](x);
    assertNear(new nn.Lambda(name).call(x) as Tensor, want, `Lambda(${name})`);
    assertNear(new nn.HybridLambda(name).call(x) as Tensor, want, `HybridLambda(${name})`);
    const net = new nn.HybridSequential().add(new nn.HybridLambda(name));
    net.hybridize();
    assertNear(net.call(x) as Tensor, want, `hybridized HybridLambda(${name})`);
    // The traced node is the op itself, under MXNet's name, and the file loads back.
    const { symbol } = net.exportBytes();
    const op = JSON.parse(symbol).nodes[1].op;
    assert.ok(op === name || (name === "trunc" && op === "fix"), `${name} exported as ${op}`);
    const back = await SymbolBlock.imports(new TextEncoder().encode(symbol), ["data"]);
    assertNear(back.call(x) as Tensor, want, `imported HybridLambda(${name})`);
    assert.equal(String(new nn.Lambda(name)), `Lambda(${name})`);
  }
});

Deno.test("Lambda / HybridLambda take functions of F ops; names print as MXNet prints them", () => {
  const x = nd.random.uniform(-2, 2, [3, 4], { seed: 6 });
  const fn = (v: Value) => F.tanh(F.relu(v));
  const want = nd.tanh(nd.relu(x));
  const net = new nn.HybridSequential().add(new nn.HybridLambda(fn), new nn.Lambda("identity"));
  assertNear(net.call(x) as Tensor, want);
  const hybrid = new nn.HybridSequential().add(new nn.HybridLambda(fn));
  hybrid.hybridize();
  assertNear(hybrid.call(x) as Tensor, want);
  assert.deepEqual(
    hybrid.cachedGraph()!.symbol.nodes().filter((n) => !n.isVariable).map((n) => n.opName),
    ["relu", "tanh"],
  );
  // MXNet prints function.__name__: "<lambda>" for an anonymous function.
  assert.equal(String(new nn.HybridLambda((v: Value) => v)), "HybridLambda(<lambda>)");
  assert.equal(String(new nn.Lambda(fn)), "Lambda(fn)");
  assertThrowsError(() => new nn.HybridLambda("no_such_op"), SigilError, /not an F op/);
  assertThrowsError(() => new nn.Lambda(3 as never), SigilError, /a function or an op name/);
});
