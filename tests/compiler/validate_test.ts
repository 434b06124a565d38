/**
 * What users hand a graph is checked in one place before it runs: eval's bindings (unknown
 * names refused with close matches, every input bound to a tensor), compileWasm's input shapes
 * and a compiled program's inputs, each a typed error naming the argument; messages about a
 * large graph stay short.
 */
import {
  ArgumentError,
  compileWasm,
  modelZoo,
  nd,
  referenceEngine,
  ShapeError,
  sym,
  wasmEngine,
} from "../../mod.ts";
import type { Symbol } from "../../compiler/symbol.ts";
import { graphOf } from "../../compiler/passes/pass.ts";
import type { Program } from "../../compiler/engine.ts";
import { engine as gpuEngine, GPU_TEST } from "../lower/webgpu/gpu_harness.ts";
import type { Tensor } from "../../runtime/tensor.ts";
import { assert } from "../util.ts";

function convNet(): { y: Symbol; params: Record<string, Tensor> } {
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

async function rejection(f: () => unknown): Promise<Error> {
  try {
    await f();
  } catch (e) {
    return e as Error;
  }
  throw new assert.AssertionError({ message: "did not throw" });
}

function argumentError(e: Error, argument: string, pattern: RegExp): void {
  assert.ok(e instanceof ArgumentError, `expected an ArgumentError, got ${e}`);
  assert.equal(e.argument, argument, e.message);
  assert.match(e.message, pattern);
}

Deno.test("eval refuses a name that is not an input, listing close matches", async () => {
  const { y, params } = convNet();
  const data = nd.zeros([1, 3, 28, 28]);
  for (const engine of [wasmEngine(), referenceEngine]) {
    const run = (b: Record<string, Tensor>) => () => y.eval(b, { engine });
    argumentError(
      await rejection(run({ dta: data, ...params })),
      "dta",
      /'dta' is not an input of the graph; did you mean 'data'\?/,
    );
    argumentError(
      await rejection(run({ data, ...params, conv0_wieght: params.conv0_weight })),
      "conv0_wieght",
      /did you mean 'conv0_weight'\?/,
    );
    // Nothing close: no suggestion, but the inputs. (An extra name used to be ignored.)
    argumentError(
      await rejection(run({ data, ...params, zzzzzz: data })),
      "zzzzzz",
      /'zzzzzz' is not an input of the graph \(inputs: 'data', 'conv0_weight'/,
    );
  }
});

Deno.test("eval refuses bindings that are not a record of tensors, naming the argument", async () => {
  const y = sym.exp(sym.var("x"));
  for (
    const bad of [null, undefined, 3, "x", [nd.zeros([1])], nd.zeros([1]), new Float32Array(1)]
  ) {
    argumentError(
      await rejection(() => y.eval(bad as never)),
      "bindings",
      /eval: bindings must be a record of tensors by input name \(inputs: 'x'\), got/,
    );
  }
  for (const [bad, what] of [[new Float32Array(2), "a Float32Array"], [[1, 2], "an array"]]) {
    argumentError(
      await rejection(() => y.eval({ x: bad as never })),
      "x",
      new RegExp(`input 'x' must be a Tensor, got ${what}`),
    );
  }
});

Deno.test("messages about a large graph list a handful of names and count the rest", async () => {
  const net = modelZoo.vision.resnet50_v1({ classes: 10 });
  const y = net.call(sym.var("data")) as unknown as Symbol;
  const inputs = y.listInputs();
  assert.ok(inputs.length > 200);
  const e = await rejection(() => y.eval({ data: nd.zeros([1, 3, 32, 32]) }));
  assert.ok(e instanceof ArgumentError, String(e));
  assert.ok(e.message.length < 400, `${e.message.length} characters: ${e.message}`);
  assert.match(
    e.message,
    new RegExp(`${inputs.length - 1} inputs unbound: .* and ${inputs.length - 7} more`),
  );
  const typo = await rejection(() => y.eval({ dta: nd.zeros([1]) }));
  assert.ok(typo.message.length < 400, typo.message);
  assert.match(typo.message, /did you mean 'data'\?.* and \d+ more\)/);
});

Deno.test("compileWasm refuses names that are not inputs, values that are not tensors, bad shapes", async () => {
  const y = sym.exp(sym.var("data"));
  argumentError(
    await rejection(() => compileWasm(y, {}, { data: [2], dta: [3] })),
    "dta",
    /compileWasm: the input shapes name 'dta', which is not an input of the graph; did you mean 'data'\?/,
  );
  argumentError(
    await rejection(() => compileWasm(y, {}, null as never)),
    "inputShapes",
    /the input shapes must be a record by input name, got null/,
  );
  argumentError(
    await rejection(() => compileWasm(y, { dat: nd.zeros([2]) }, {})),
    "dat",
    /the parameters name 'dat', which is not an input of the graph; did you mean 'data'\?/,
  );
  argumentError(
    await rejection(() => compileWasm(y, null as never, { data: [2] })),
    "params",
    /the parameters must be a record by input name, got null/,
  );
  argumentError(
    await rejection(() => compileWasm(y, { data: new Float32Array(2) as never }, {})),
    "data",
    /parameter 'data' must be a Tensor, got a Float32Array/,
  );
  argumentError(
    await rejection(() => compileWasm(null as never, {}, {})),
    "symbol",
    /expected a Symbol, got null/,
  );
  for (
    const [shape, pattern] of [
      [[2n], /the shape of 'data' has an invalid dimension 0: the bigint 2n/],
      [[-1], /invalid dimension 0: -1/],
      [4, /must be an array of dimensions, got the number 4/],
    ] as const
  ) {
    const e = await rejection(() => compileWasm(y, {}, { data: shape as never }));
    assert.ok(e instanceof ShapeError, String(e));
    assert.match(e.message, pattern);
  }
});

Deno.test("a compiled program's run takes tensors of the compiled shapes by name", async () => {
  const y = sym.exp(sym.var("data"));
  const compiled = compileWasm(y, {}, { data: [2, 3] }, { threads: 1 });
  try {
    argumentError(
      await rejection(() => compiled.run(new Float32Array(6) as never)),
      "inputs",
      /inputs must be a record of tensors by input name \('data'\), got a Float32Array; runRaw takes float32 arrays by name/,
    );
    argumentError(
      await rejection(() => compiled.run({ data: new Float32Array(6) } as never)),
      "data",
      /input 'data' must be a Tensor, got a Float32Array \(runRaw takes float32 arrays\)/,
    );
    argumentError(
      await rejection(() => compiled.run({ dat: nd.zeros([2, 3]) })),
      "dat",
      /'dat' is not an input of the graph; did you mean 'data'\?/,
    );
    argumentError(await rejection(() => compiled.run({})), "data", /no tensor for input 'data'/);
    // The right size but another shape used to be read as the compiled shape.
    const e = await rejection(() => compiled.run({ data: nd.zeros([3, 2]) }));
    assert.ok(e instanceof ShapeError, String(e));
    assert.match(
      e.message,
      /input 'data' has shape \(3, 2\), but the program was compiled for \(2, 3\)/,
    );
    const [out] = compiled.run({ data: nd.zeros([2, 3]) });
    assert.deepEqual(out.toArray(), [[1, 1, 1], [1, 1, 1]]);
  } finally {
    compiled.dispose();
  }
});

Deno.test("every engine's program checks what its run is given", async () => {
  const y = sym.exp(sym.var("data"));
  for (const engine of [referenceEngine, wasmEngine({ threads: 1 })]) {
    const program = engine.compile(graphOf(y), {
      inputs: { data: { shape: [2, 3], dtype: "float32" } },
    });
    try {
      argumentError(
        await rejection(() => program.run(new Float32Array(6) as never)),
        "inputs",
        /inputs must be a record of tensors by input name/,
      );
      argumentError(await rejection(() => program.run({})), "data", /no tensor for input 'data'/);
      const e = await rejection(() => program.run({ data: nd.zeros([6]) }));
      assert.ok(e instanceof ShapeError, `${engine.name}: ${e}`);
      assert.match(e.message, /has shape \(6,\), but the program was compiled for \(2, 3\)/);
      assert.deepEqual(program.run({ data: nd.zeros([2, 3]) })[0].shape, [2, 3]);
    } finally {
      program.dispose();
    }
  }
});

Deno.test("a group of many outputs prints a handful of names", () => {
  const g = sym.group(Array.from({ length: 50 }, (_, i) => sym.exp(sym.var(`x${i}`))));
  assert.match(String(g), /^Symbol<group \(exp\d+_output, .* and 44 more\)>$/);
});

Deno.test("eval takes null options as none", async () => {
  const [y] = await sym.exp(sym.var("x")).eval({ x: nd.zeros([2]) }, null as never);
  assert.deepEqual(y.toArray(), [1, 1]);
});

Deno.test("a WebGPU program checks what its runAsync is given", GPU_TEST, async () => {
  const y = sym.exp(sym.var("data"));
  const program = gpuEngine().compile(graphOf(y), {
    inputs: { data: { shape: [2, 3], dtype: "float32" } },
  }) as Program & { runAsync: NonNullable<Program["runAsync"]> };
  try {
    argumentError(
      await rejection(() => program.runAsync(new Float32Array(6) as never)),
      "inputs",
      /WebGPU run: inputs must be a record of tensors by input name/,
    );
    const e = await rejection(() => program.runAsync({ data: nd.zeros([3, 2]) }));
    assert.ok(e instanceof ShapeError, String(e));
    assert.match(e.message, /has shape \(3, 2\), but the program was compiled for \(2, 3\)/);
    const [out] = await program.runAsync({ data: nd.zeros([2, 3]) });
    assert.deepEqual(out.shape, [2, 3]);
  } finally {
    program.dispose();
  }
});
