/**
 * AMP conversion (MXNet 2.x ReducePrecision): known graphs node by node, exclusions, the
 * widest-type rule, offline parameter casts, round trips through removeAmpCast, idempotence,
 * type inference, random graphs against the float32 originals, and convertHybridBlock.
 */
import fc from "npm:fast-check@^4";
import { amp, nd, nn, sym, type Symbol, type Tensor } from "../../mod.ts";
import { evaluate } from "../../compiler/interpreter.ts";
import { inlineSubgraphs } from "../../compiler/passes/inline.ts";
import { graphOf } from "../../compiler/passes/pass.ts";
import { removeAmpCast } from "../../compiler/passes/remove_amp_cast.ts";
import type { Node } from "../../compiler/symbol.ts";
import type { DType } from "../../runtime/dtype.ts";
import { SigilError } from "../../runtime/errors.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { arbGraph, bindRandomly, evaluateGraph } from "../../testing/mod.ts";
import { assert, assertClose, assertThrowsError } from "../util.ts";

const { convertSymbol, ampConvert, removeAmpCastPass } = amp;

/** `name<-input,input` for every op node, in graph order (variables left out). */
function describe(s: Symbol): string[] {
  return s.nodes().filter((n) => !n.isVariable).map((n) =>
    `${n.name}<-${n.inputs.map((e) => e.node.name).join(",")}`
  );
}

function byName(s: Symbol, name: string): Node {
  const n = s.nodes().find((x) => x.name === name);
  if (!n) throw new Error(`no node '${name}'`);
  return n;
}

/** The dtype of every op node's first output, with every variable given as float32. */
function nodeTypes(s: Symbol, types: Record<string, DType> = {}): Map<string, DType | undefined> {
  const all: Record<string, DType> = {};
  for (const n of s.listInputs()) all[n] = types[n] ?? "float32";
  const internals = s.getInternals();
  const { outTypes } = internals.inferTypePartial(all);
  const out = new Map<string, DType | undefined>();
  internals.outputs.forEach((e, i) => {
    if (e.index === 0 && !e.node.isVariable) out.set(e.node.name, outTypes[i]);
  });
  return out;
}

/** conv -> BatchNorm -> relu -> FullyConnected -> softmax. */
function convNet(): Symbol {
  const data = sym.var("data");
  const conv = sym.Convolution(data, { kernel: [3, 3], num_filter: 4, name: "conv" });
  const bn = sym.BatchNorm(conv, { name: "bn" });
  const relu = sym.Activation(bn, { act_type: "relu", name: "relu" });
  const fcl = sym.FullyConnected(relu, { num_hidden: 3, name: "fc" });
  return sym.softmax(fcl, { name: "sm" });
}

Deno.test("float16: conv-bn-relu-fc-softmax gets MXNet's casts, names and dtypes", () => {
  const net = convNet();
  const lp = convertSymbol(net, { targetDtype: "float16" });
  assert.deepEqual(describe(lp), [
    "data_0_amp_cast_float16<-data",
    "conv_weight_0_amp_cast_float16<-conv_weight",
    "conv_bias_0_amp_cast_float16<-conv_bias",
    "conv<-data_0_amp_cast_float16,conv_weight_0_amp_cast_float16,conv_bias_0_amp_cast_float16",
    // BatchNorm follows its data into float16; its parameters and statistics stay float32.
    "bn<-conv,bn_gamma,bn_beta,bn_moving_mean,bn_moving_var",
    "relu<-bn",
    "fc_weight_0_amp_cast_float16<-fc_weight",
    "fc_bias_0_amp_cast_float16<-fc_bias",
    "fc<-relu,fc_weight_0_amp_cast_float16,fc_bias_0_amp_cast_float16",
    "fc_0_amp_cast_float32<-fc",
    "sm<-fc_0_amp_cast_float32",
  ]);
  assert.equal(byName(lp, "data_0_amp_cast_float16").attrs.dtype, "float16");
  assert.ok(!lp.nodes().some((n) => n.opName === "amp_multicast"));
  // Inputs, outputs and untouched nodes are the very same objects.
  assert.deepEqual(lp.listInputs(), net.listInputs());
  assert.equal(byName(lp, "bn_gamma"), byName(net, "bn_gamma"));
  const types = nodeTypes(lp);
  for (const n of ["conv", "bn", "relu", "fc"]) assert.equal(types.get(n), "float16", n);
  assert.equal(types.get("sm"), "float32");
  assert.equal(
    lp.inferType(Object.fromEntries(lp.listInputs().map((n) => [n, "float32"])))
      .outTypes[0],
    "float32",
  );
});

Deno.test("bfloat16: softmax follows its input, so the output is cast back after it", () => {
  const lp = convertSymbol(convNet(), { targetDtype: "bfloat16" });
  const ops = describe(lp);
  assert.ok(ops.includes("sm<-fc"));
  assert.equal(ops.at(-1), "sm_0_amp_cast_float32<-sm");
  assert.equal(lp.name, "sm_0_amp_cast_float32");
  const types = nodeTypes(lp);
  for (const n of ["conv", "bn", "relu", "fc", "sm"]) assert.equal(types.get(n), "bfloat16", n);
});

Deno.test("excludedSymNames and __opt_constraint__ keep nodes in float32", () => {
  const lp = convertSymbol(convNet(), { targetDtype: "float16", excludedSymNames: ["conv"] });
  assert.deepEqual(describe(lp), [
    "conv<-data,conv_weight,conv_bias",
    "bn<-conv,bn_gamma,bn_beta,bn_moving_mean,bn_moving_var",
    "relu<-bn",
    "relu_0_amp_cast_float16<-relu",
    "fc_weight_0_amp_cast_float16<-fc_weight",
    "fc_bias_0_amp_cast_float16<-fc_bias",
    "fc<-relu_0_amp_cast_float16,fc_weight_0_amp_cast_float16,fc_bias_0_amp_cast_float16",
    "fc_0_amp_cast_float32<-fc",
    "sm<-fc_0_amp_cast_float32",
  ]);
  // As MXNet, the exclusion is written into the node, so it sticks.
  assert.equal(byName(lp, "conv").attrs.__opt_constraint__, "1");
  assert.equal(convertSymbol(lp, { targetDtype: "float16" }).outputs[0], lp.outputs[0]);
  // A node that already carries the flag (nn.HybridBlock.OptConstraint.disable_amp()).
  const x = sym.var("x");
  const fcl = sym.FullyConnected(x, {
    num_hidden: 2,
    name: "fc",
    attr: { __opt_constraint__: "1" },
  });
  const kept = convertSymbol(fcl, { targetDtype: "float16" });
  assert.equal(kept.outputs[0], fcl.outputs[0]);
});

Deno.test("conditional fp32: softrelu and elu keep float32; custom rules replace the defaults", () => {
  const data = sym.var("data");
  const conv = sym.Convolution(data, { kernel: [1, 1], num_filter: 2, name: "conv" });
  const soft = sym.Activation(conv, { act_type: "softrelu", name: "soft" });
  const elu = sym.LeakyReLU(conv, { act_type: "elu", name: "elu" });
  const leaky = sym.LeakyReLU(conv, { act_type: "leaky", name: "leaky" });
  const net = sym.group([soft, elu, leaky]);
  const lp = convertSymbol(net, { targetDtype: "float16" });
  const ops = describe(lp);
  assert.ok(ops.includes("soft<-conv_0_amp_cast_float32"));
  assert.ok(ops.includes("elu<-conv_0_amp_cast_float32"));
  assert.ok(ops.includes("leaky<-conv"));
  assert.equal(byName(lp, "soft").attrs.__opt_constraint__, "1");
  assert.equal(byName(lp, "leaky").attrs.__opt_constraint__, undefined);
  assert.deepEqual(lp.listOutputs(), [
    "soft_output",
    "elu_output",
    "leaky_0_amp_cast_float32_output",
  ]);
  // bfloat16's default list names only selu.
  const bf = describe(convertSymbol(net, { targetDtype: "bfloat16" }));
  assert.ok(bf.includes("elu<-conv") && bf.includes("soft<-conv"));
  const custom = describe(
    convertSymbol(net, {
      targetDtype: "float16",
      conditionalFp32Ops: [["LeakyReLU", "act_type", ["leaky"]]],
    }),
  );
  assert.ok(custom.includes("leaky<-conv_0_amp_cast_float32") && custom.includes("soft<-conv"));
});

Deno.test("widest-type ops: low precision only when every input already is (no amp_multicast in 2.x)", () => {
  const x = sym.var("x");
  const y = sym.var("y");
  const c1 = sym.Convolution(x, { kernel: [1, 1], num_filter: 2, no_bias: true, name: "c1" });
  const c2 = sym.Convolution(x, { kernel: [1, 1], num_filter: 2, no_bias: true, name: "c2" });
  // Mixed: the float16 input is cast back and the add runs in float32.
  const mixed = convertSymbol(sym.elemwise_add(c1, y, { name: "add" }), { targetDtype: "float16" });
  assert.deepEqual(describe(mixed).slice(-2), [
    "c1_0_amp_cast_float32<-c1",
    "add<-c1_0_amp_cast_float32,y",
  ]);
  assert.equal(nodeTypes(mixed).get("add"), "float32");
  // Both float16: the add runs in float16 and its output is cast back.
  const both = convertSymbol(sym.elemwise_add(c1, c2, { name: "add" }), {
    targetDtype: "float16",
  });
  assert.deepEqual(describe(both).slice(-2), ["add<-c1,c2", "add_0_amp_cast_float32<-add"]);
  assert.equal(nodeTypes(both).get("add"), "float16");
  // A float32 input that some other node already casts counts as float16 (the virtual sweep),
  // whichever order the inputs come in.
  for (const [a, b] of [[c1, x], [x, c1]]) {
    const lp = convertSymbol(sym.elemwise_add(a, b, { name: "add" }), { targetDtype: "float16" });
    const add = byName(lp, "add");
    assert.deepEqual(
      add.inputs.map((e) => e.node.name).sort(),
      ["c1", "x_0_amp_cast_float16"],
    );
    assert.equal(
      lp.nodes().filter((n) => n.name === "x_0_amp_cast_float16").length,
      1,
      "one shared cast",
    );
  }
  assert.ok(!both.nodes().some((n) => n.opName === "amp_multicast"));
});

Deno.test("casts are shared per (source output, dtype); neutral ops after float32 inputs stay float32", () => {
  const data = sym.var("data");
  const a = sym.FullyConnected(data, { num_hidden: 2, name: "a" });
  const b = sym.FullyConnected(data, { num_hidden: 2, name: "b" });
  const e = sym.exp(data, { name: "e" });
  const lp = convertSymbol(sym.group([a, b, e]), { targetDtype: "float16" });
  assert.equal(lp.nodes().filter((n) => n.name === "data_0_amp_cast_float16").length, 1);
  assert.ok(describe(lp).includes("e<-data"));
  assert.deepEqual(lp.listOutputs(), [
    "a_0_amp_cast_float32_output",
    "b_0_amp_cast_float32_output",
    "e_output",
  ]);
});

Deno.test("castParamsOffline drops parameter casts and marks the variables, as MXNet", () => {
  const net = convNet();
  const lp = convertSymbol(net, {
    targetDtype: "float16",
    castParamsOffline: true,
    inputTypes: { data: "float32" },
  });
  assert.deepEqual(describe(lp), [
    "data_0_amp_cast_float16<-data",
    "conv<-data_0_amp_cast_float16,conv_weight,conv_bias",
    "bn<-conv,bn_gamma,bn_beta,bn_moving_mean,bn_moving_var",
    "relu<-bn",
    "fc<-relu,fc_weight,fc_bias",
    "fc_0_amp_cast_float32<-fc",
    "sm<-fc_0_amp_cast_float32",
  ]);
  for (const p of ["conv_weight", "conv_bias", "fc_weight", "fc_bias"]) {
    assert.equal(byName(lp, p).attrs.__amp_dtype__, "float16", p);
  }
  assert.equal(byName(lp, "bn_gamma").attrs.__amp_dtype__, undefined);
  // A parameter also used in float32 keeps its cast.
  const w = sym.var("w");
  const x = sym.var("x");
  const shared = sym.group([
    sym.FullyConnected(x, w, { num_hidden: 2, no_bias: true, name: "fc" }),
    sym.exp(w, { name: "e" }),
  ]);
  const kept = convertSymbol(shared, {
    targetDtype: "float16",
    castParamsOffline: true,
    inputTypes: { x: "float32" },
  });
  assert.ok(describe(kept).includes("fc<-x_0_amp_cast_float16,w_0_amp_cast_float16"));
  assert.equal(byName(kept, "w").attrs.__amp_dtype__, undefined);
  assertThrowsError(
    () => convertSymbol(net, { targetDtype: "float16", castParamsOffline: true }),
    SigilError,
    /inputTypes/,
  );
});

Deno.test("the amp-convert pass casts bound parameters offline; outputs stay close", () => {
  const net = convNet();
  const shapes = net.inferShape({ data: [2, 3, 5, 5] });
  const params: Record<string, Tensor> = {};
  const names = [...net.listArguments(), ...net.listAuxiliaryStates()];
  const all = [...shapes.argShapes, ...shapes.auxShapes];
  names.forEach((n, i) => {
    if (n === "data") return;
    const lo = n.endsWith("moving_var") ? 0.5 : -0.5;
    params[n] = nd.random.uniform(lo, lo + 1, all[i], { seed: i + 1 });
  });
  const g = graphOf(net, params);
  const lp = ampConvert.run(g, { castParamsOffline: true });
  assert.equal(ampConvert.name, "amp-convert");
  assert.equal(lp.params.conv_weight.dtype, "float16");
  assert.equal(lp.params.fc_bias.dtype, "float16");
  assert.equal(lp.params.bn_gamma.dtype, "float32");
  assert.equal(g.params.conv_weight.dtype, "float32", "input graph untouched");
  const x = nd.random.uniform(-1, 1, [2, 3, 5, 5], { seed: 9 });
  const [want] = evaluateGraph(g, { data: x });
  const [got] = evaluateGraph(lp, { data: x });
  assert.equal(got.dtype, "float32");
  assertClose(got, tensorValues(want), { rtol: 1e-2, atol: 1e-3 });
  // Running it again changes nothing.
  const again = ampConvert.run(lp, { castParamsOffline: true });
  assert.equal(again.symbol.outputs[0], lp.symbol.outputs[0]);
  assert.equal(again.params.conv_weight, lp.params.conv_weight);
});

Deno.test("removeAmpCast undoes the conversion exactly where MXNet's does", () => {
  const net = convNet();
  // The output is a float32 op: every cast feeds a node, so all go.
  const back = removeAmpCast(convertSymbol(net, { targetDtype: "float16" }));
  assert.equal(back.outputs[0], net.outputs[0], "the very same hash-consed node");
  assert.equal(removeAmpCastPass.run(graphOf(back)).symbol.outputs[0], net.outputs[0]);
  // An output cast stays (MXNet rewires only node inputs).
  const fcl = sym.FullyConnected(sym.var("data"), { num_hidden: 2, name: "fc" });
  const left = removeAmpCast(convertSymbol(fcl, { targetDtype: "float16" }));
  assert.equal(left.name, "fc_0_amp_cast_float32");
  assert.equal(left.outputs[0].node.inputs[0].node, fcl.outputs[0].node);
  // Exclusions and offline casts leave attributes behind.
  const excluded = removeAmpCast(
    convertSymbol(net, { targetDtype: "float16", excludedSymNames: ["bn"] }),
  );
  assert.notEqual(excluded.outputs[0], net.outputs[0]);
  const offline = removeAmpCast(
    convertSymbol(net, {
      targetDtype: "float16",
      castParamsOffline: true,
      inputTypes: { data: "float32" },
    }),
  );
  assert.equal(byName(offline, "conv_weight").attrs.__amp_dtype__, "float16");
});

Deno.test("converting twice gives the same graph", () => {
  const net = convNet();
  for (const targetDtype of ["float16", "bfloat16"] as const) {
    const once = convertSymbol(net, { targetDtype });
    const twice = convertSymbol(once, { targetDtype });
    assert.equal(twice.outputs[0], once.outputs[0], targetDtype);
  }
});

Deno.test("op lists: MXNet's, limited to registered ops, disjoint; bad options are refused", () => {
  for (const t of ["float16", "bfloat16"] as const) {
    const l = amp.ampLists(t);
    const seen = new Map<string, string>();
    for (
      const [what, names] of [
        ["target", l.targetDtypeOps],
        ["neutral", l.lp16Fp32Ops],
        ["fp32", l.fp32Ops],
        ["widest", l.widestTypeCasts],
        ["conditional", l.conditionalFp32Ops.map((c) => c[0])],
      ] as const
    ) {
      for (const n of names) {
        assert.ok(!seen.has(n), `${t}: ${n} is in ${seen.get(n)} and ${what}`);
        seen.set(n, what);
      }
    }
  }
  assert.deepEqual(amp.listLp16Ops("float16"), ["Convolution", "Deconvolution", "FullyConnected"]);
  assert.ok(amp.listFp32Ops("float16").includes("softmax"));
  assert.ok(amp.listLp16Fp32Ops("bfloat16").includes("softmax"));
  assert.ok(amp.listWidestTypeCast("float16").includes("broadcast_add"));
  assert.equal(amp.listConditionalFp32Ops("bfloat16").length, 1);
  const net = convNet();
  assertThrowsError(
    () => convertSymbol(net, { targetDtype: "float64" as "float16" }),
    SigilError,
    /float16 and bfloat16/,
  );
  assertThrowsError(
    () => convertSymbol(net, { targetDtype: "float16", targetDtypeOps: ["exp"], fp32Ops: ["exp"] }),
    SigilError,
    /common ops/,
  );
  // Custom lists: exp in low precision, FullyConnected in float32.
  const lp = convertSymbol(
    sym.exp(sym.FullyConnected(sym.var("x"), { num_hidden: 2, name: "fc" }), { name: "e" }),
    {
      targetDtype: "float16",
      targetDtypeOps: ["exp"],
      fp32Ops: ["FullyConnected"],
    },
  );
  assert.deepEqual(describe(lp), [
    "fc<-x,fc_weight,fc_bias",
    "fc_0_amp_cast_float16<-fc",
    "e<-fc_0_amp_cast_float16",
    "e_0_amp_cast_float32<-e",
  ]);
});

Deno.test("where sigil departs from MXNet: multicast outputs and parameters that are outputs", () => {
  // x is cast for the dense layer, so relu follows it into float16; the existing
  // amp_multicast then gives float16, and sigil casts its output back to keep the dtype.
  const x = sym.var("x");
  const mc = sym.amp_multicast(sym.Activation(x, { act_type: "relu", name: "relu" }), {
    num_outputs: 1,
    name: "mc",
  });
  const net = sym.group([mc, sym.FullyConnected(x, { num_hidden: 1, name: "fc" })]);
  const lp = convertSymbol(net, { targetDtype: "float16" });
  assert.equal(lp.listOutputs()[0], "mc_0_amp_cast_float32_output");
  const types = Object.fromEntries(lp.listInputs().map((n) => [n, "float32" as DType]));
  assert.deepEqual(lp.inferType(types).outTypes, ["float32", "float32"]);
  // A parameter that is also an output keeps its dtype: it is not cast offline.
  const w = sym.var("w");
  const both = sym.group([
    w,
    sym.FullyConnected(x, w, { num_hidden: 1, no_bias: true, name: "d" }),
  ]);
  const off = convertSymbol(both, {
    targetDtype: "float16",
    castParamsOffline: true,
    inputTypes: { x: "float32" },
  });
  assert.equal(byName(off, "w").attrs.__amp_dtype__, undefined);
  assert.ok(describe(off).includes("d<-x_0_amp_cast_float16,w_0_amp_cast_float16"));
});

Deno.test("float64 and integer graphs are left alone", () => {
  const x = sym.var("x");
  const net = sym.FullyConnected(x, { num_hidden: 2, name: "fc" });
  const lp = convertSymbol(net, {
    targetDtype: "float16",
    inputTypes: { x: "float64" },
    paramTypes: { fc_weight: "float64", fc_bias: "float64" },
  });
  assert.equal(lp.outputs[0], net.outputs[0]);
});

/** Whether any value the graph computes (intermediates included) leaves float16's range. */
function overflowsHalf(s: Symbol, bindings: Record<string, Tensor>): boolean {
  let bad = false;
  try {
    evaluate(s, bindings, {
      onNode: (_n, outs) => {
        for (const t of outs) {
          if (!t.dtype.startsWith("float")) continue;
          for (const v of tensorValues(t)) if (!(Math.abs(v) < 6e4)) bad = true;
        }
      },
    });
  } catch {
    return true;
  }
  return bad;
}

Deno.test("property: converted random graphs compute the float32 results within float16 tolerance", () => {
  let compared = 0;
  fc.assert(
    fc.property(
      arbGraph({ maxNodes: 5, dtypes: ["float32"], maxDim: 4 }),
      fc.integer({ min: 0, max: 1 << 30 }),
      fc.constantFrom<"float16" | "bfloat16">("float16", "bfloat16"),
      (g, seed, targetDtype) => {
        const { graph, inputs } = bindRandomly(g, seed);
        const all = { ...graph.params, ...inputs };
        fc.pre(!overflowsHalf(g.symbol, all));
        const inputTypes = g.inputTypes;
        const lpGraph = ampConvert.run(graph, { targetDtype, inputTypes });
        const lp = lpGraph.symbol;
        assert.deepEqual(lp.listInputs(), g.symbol.listInputs());
        const want = evaluateGraph(graph, inputs);
        const got = evaluateGraph(lpGraph, inputs);
        const tol = targetDtype === "float16" ? 2e-2 : 1e-1;
        want.forEach((w, i) => {
          assert.equal(got[i].dtype, w.dtype, `output ${i} keeps its dtype`);
          const wv = tensorValues(w);
          const scale = Math.max(1, ...Array.from(wv, Math.abs));
          assertClose(got[i], wv, { rtol: tol, atol: tol * scale, what: `output ${i}` });
        });
        // Stable under a second run, and removeAmpCast gives the float32 graph's values back.
        const again = ampConvert.run(lpGraph, { targetDtype, inputTypes });
        assert.ok(again.symbol.outputs.every((e, i) => e === lp.outputs[i]), "idempotent");
        // Without casts of its own, the graph comes back from removeAmpCast: the very same
        // nodes, but for output casts (which stay) and conditional fp32 matches (which keep
        // their __opt_constraint__ mark), and bit-identical values.
        const amped = (s: Symbol) => s.nodes().some((n) => n.opName.startsWith("amp_"));
        if (!amped(g.symbol)) {
          const stripped = removeAmpCast(lp);
          const back = evaluate(stripped, all);
          back.forEach((b, i) => assert.deepEqual(tensorValues(b), tensorValues(want[i])));
          if (!lp.nodes().some((n) => n.attrs.__opt_constraint__ !== undefined)) {
            stripped.outputs.forEach((e, i) => {
              const head = e.node.opName === "amp_cast" ? e.node.inputs[0] : e;
              assert.ok(head === g.symbol.outputs[i], `output ${i}`);
            });
          }
        }
        compared++;
      },
    ),
    { numRuns: 300, seed: 4242 },
  );
  assert.ok(compared > 100, `only ${compared} graphs compared`);
});

Deno.test("property: castParamsOffline on random graphs keeps outputs close and params consistent", () => {
  fc.assert(
    fc.property(
      arbGraph({
        maxNodes: 4,
        dtypes: ["float32"],
        maxDim: 4,
        ops: [
          "FullyConnected",
          "Convolution",
          "Activation",
          "BatchNorm",
          "elemwise_add",
          "exp",
          "softmax",
          "Pooling",
          "Flatten",
        ],
      }),
      fc.integer({ min: 0, max: 1 << 30 }),
      (g, seed) => {
        const { graph, inputs } = bindRandomly(g, seed, 0.7);
        fc.pre(!overflowsHalf(g.symbol, { ...graph.params, ...inputs }));
        const lp = ampConvert.run(graph, { castParamsOffline: true, inputTypes: g.inputTypes });
        for (const n of lp.symbol.nodes()) {
          if (!n.isVariable) continue;
          const marked = n.attrs.__amp_dtype__;
          if (Object.hasOwn(lp.params, n.name)) {
            assert.equal(lp.params[n.name].dtype, marked ?? graph.params[n.name].dtype);
          } else {
            assert.equal(marked, undefined, "data inputs are never cast offline");
          }
        }
        const want = evaluateGraph(graph, inputs);
        const got = evaluateGraph(lp, inputs);
        want.forEach((w, i) => {
          const wv = tensorValues(w);
          const scale = Math.max(1, ...Array.from(wv, Math.abs));
          assertClose(got[i], wv, { rtol: 2e-2, atol: 2e-2 * scale, what: `output ${i}` });
        });
      },
    ),
    { numRuns: 150, seed: 7 },
  );
});

function smallNet(): nn.HybridSequential {
  const net = new nn.HybridSequential().add(
    new nn.Conv2D(4, 3, { inChannels: 3, padding: 1 }),
    new nn.BatchNorm(),
    new nn.Activation("relu"),
    new nn.Dense(5),
  );
  net.initialize({ seed: 3 });
  return net;
}

Deno.test("convertHybridBlock: Conv2D, BatchNorm, Dense in float16 stay close to float32", () => {
  const x = nd.random.uniform(-1, 1, [2, 3, 6, 6], { seed: 5 });
  for (const castParamsOffline of [false, true]) {
    const net = smallNet();
    const want = tensorValues(net.call(x) as Tensor);
    const lp = amp.convertHybridBlock(net, {
      targetDtype: "float16",
      dataExample: [x],
      castParamsOffline,
    });
    assert.ok(net.isHybridized);
    const y = lp.call(x) as Tensor;
    assert.equal(y.dtype, "float32");
    assertClose(y, want, { rtol: 1e-2, atol: 1e-2 });
    const params = lp.collectParams();
    assert.equal(params["0.weight"].dtype, castParamsOffline ? "float16" : "float32");
    assert.equal(params["1.gamma"].dtype, "float32");
    assert.equal(params["3.weight"].dtype, castParamsOffline ? "float16" : "float32");
    // The original block still holds float32 parameters.
    assert.equal(net.collectParams()["0.weight"].dtype, "float32");
    const names = lp.symbol.nodes().map((n) => n.name);
    assert.ok(names.includes("data_0_amp_cast_float16"));
    assert.ok(names.includes("3_fwd_0_amp_cast_float32"));
    assert.equal(names.includes("0.weight_0_amp_cast_float16"), !castParamsOffline);
  }
});

Deno.test("convertHybridBlock inlines nested hybridized blocks and counts casts with an op hook", () => {
  const inner = new nn.HybridSequential().add(new nn.Dense(6, { activation: "relu" }));
  const net = new nn.HybridSequential().add(inner, new nn.Dense(3));
  net.initialize({ seed: 1 });
  net.hybridize({ inlineLimit: 0 });
  const x = nd.random.uniform(-1, 1, [2, 4], { seed: 2 });
  const want = net.call(x) as Tensor;
  assert.ok(net.cachedGraph()!.symbol.nodes().some((n) => n.opName === "_CachedOp"));
  const lp = amp.convertHybridBlock(net, { targetDtype: "float16", dataExample: x });
  assert.ok(!lp.symbol.nodes().some((n) => n.opName === "_CachedOp"));
  assertClose(lp.call(x) as Tensor, tensorValues(want), { rtol: 1e-2, atol: 1e-2 });
  // MXNet's basic_use idea: an op hook on amp_cast outputs counts casts by dtype. (SymbolBlock
  // does not report op hooks, so the interpreter's node callback stands in.)
  const counts: Record<string, number> = {};
  const bindings: Record<string, Tensor> = { data: x };
  for (const [k, p] of Object.entries(lp.collectParams())) bindings[k] = p.data();
  evaluate(lp.symbol, bindings, {
    onNode: (node, outs) => {
      if (node.opName !== "amp_cast") return;
      counts[outs[0].dtype] = (counts[outs[0].dtype] ?? 0) + 1;
    },
  });
  // data, 0.weight, 0.bias, 1.weight, 1.bias to float16; the output back to float32.
  assert.deepEqual(counts, { float16: 5, float32: 1 });
  // Without dataExample, the last hybridized call is used.
  const again = amp.convertHybridBlock(net, { targetDtype: "float16" });
  assert.equal(again.symbol.toJSON(), lp.symbol.toJSON());
  assertThrowsError(
    () => amp.convertHybridBlock(smallNet(), { targetDtype: "float16" }),
    SigilError,
    /dataExample/,
  );
});

Deno.test("convertHybridBlock honours excludedSymNames and bfloat16", () => {
  const x = nd.random.uniform(-1, 1, [1, 3, 5, 5], { seed: 8 });
  const net = smallNet();
  const want = tensorValues(net.call(x) as Tensor);
  const lp = amp.convertHybridBlock(net, {
    targetDtype: "bfloat16",
    dataExample: [x],
    excludedSymNames: ["0_fwd"],
  });
  const conv = lp.symbol.nodes().find((n) => n.name === "0_fwd")!;
  assert.deepEqual(conv.inputs.map((e) => e.node.name), ["data", "0.weight", "0.bias"]);
  assertClose(lp.call(x) as Tensor, want, { rtol: 5e-2, atol: 5e-2 });
  const inlined = inlineSubgraphs(net.cachedGraph()!.symbol);
  assert.deepEqual(lp.symbol.listInputs(), inlined.listInputs());
});
