import { sym } from "../../mod.ts";
import {
  AttributeError,
  FormatError,
  GraphError,
  SigilError,
  UnknownOpError,
} from "../../runtime/errors.ts";
import { assert, assertThrowsError } from "../util.ts";

const v = (name: string) => ({ op: "null", name, inputs: [] });
const doc = (nodes: unknown[], heads: unknown[] = [[nodes.length - 1, 0, 0]], extra = {}) =>
  JSON.stringify({ nodes, arg_nodes: [0], heads, ...extra });

Deno.test("writer follows dmlc JSONWriter whitespace exactly", () => {
  const x = sym.var("x");
  const y = sym.Activation(sym.exp(x, { name: "e" }), { act_type: "relu", name: "r" });
  assert.equal(
    y.toJSON(),
    `{
  "nodes": [
    {
      "op": "null", 
      "name": "x", 
      "inputs": []
    }, 
    {
      "op": "exp", 
      "name": "e", 
      "inputs": [[0, 0, 0]]
    }, 
    {
      "op": "Activation", 
      "name": "r", 
      "attrs": {"act_type": "relu"}, 
      "inputs": [[1, 0, 0]]
    }
  ], 
  "arg_nodes": [0], 
  "node_row_ptr": [0, 1, 2, 3], 
  "heads": [[2, 0, 0]], 
  "attrs": {"mxnet_version": ["int", 10901]}
}`,
  );
});

Deno.test("more than 10 entries make a vector multi-line; hidden outputs count in node_row_ptr", () => {
  const xs = Array.from({ length: 11 }, (_, i) => sym.var(`x${i}`));
  const cat = sym.Concat(...xs, { dim: 0, name: "c" });
  const text = cat.toJSON();
  assert.ok(text.includes('"arg_nodes": [\n    0, \n    1, '));
  assert.ok(text.includes('"inputs": [\n        [0, 0, 0], \n'));
  const bn = sym.BatchNorm(sym.var("d"), { name: "bn" });
  assert.match(bn.toJSON(), /"node_row_ptr": \[0, 1, 2, 3, 4, 5, 8\]/);
});

Deno.test("names with quotes, backslashes and newlines round-trip escaped", () => {
  const name = 'we"ird\\na\nme\t';
  const s = sym.exp(sym.var(name), { name: "e" });
  const text = s.toJSON();
  assert.ok(text.includes('"we\\"ird\\\\na\\nme\\t"'));
  assert.equal(sym.loadJSON(text).listArguments()[0], name);
});

Deno.test("reads 0.8 (param, 2-element entries), 0.9 (attr) and 1.x (attrs) nodes alike", () => {
  const old = JSON.stringify({
    nodes: [v("data"), {
      op: "Activation",
      name: "a",
      param: { act_type: "relu" },
      backward_source_id: -1,
      inputs: [[0, 0]],
    }],
    arg_nodes: [0],
    heads: [[1, 0]],
  });
  const nine = JSON.stringify({
    nodes: [v("data"), {
      op: "Activation",
      name: "a",
      attr: { act_type: "relu" },
      inputs: [[0, 0, 0]],
    }],
    arg_nodes: [0],
    node_row_ptr: [0, 1, 2],
    heads: [[1, 0, 0]],
    attrs: { mxnet_version: ["int", 903] },
  });
  const a = sym.loadJSON(old);
  const b = sym.loadJSON(nine);
  assert.equal(a.outputs[0].node, b.outputs[0].node);
  // Files older than 1.0 are written back with the current version stamp.
  assert.match(a.toJSON(), /"mxnet_version": \["int", 10901\]/);
});

Deno.test("0.8 op-level lr_mult keys move onto the input variable", () => {
  const text = JSON.stringify({
    nodes: [v("data"), v("fc_weight"), v("fc_bias"), {
      op: "FullyConnected",
      name: "fc",
      param: { num_hidden: "2", no_bias: "False" },
      attr: { weight_lr_mult: "0.5", ctx_group: "dev1" },
      inputs: [[0, 0], [1, 0], [2, 0]],
    }],
    arg_nodes: [0, 1, 2],
    heads: [[3, 0]],
  });
  const s = sym.loadJSON(text);
  const attrs = s.attrDict();
  assert.equal(attrs.fc_weight.__lr_mult__, "0.5");
  assert.equal(attrs.fc.__ctx_group__, "dev1");
  assert.equal(attrs.fc.weight_lr_mult, undefined);
});

Deno.test("graph attributes and entry versions are preserved", () => {
  const text = JSON.stringify({
    nodes: [v("x"), v("g"), v("b"), v("m"), v("s"), {
      op: "BatchNorm",
      name: "bn",
      inputs: [[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 2], [4, 0, 2]],
    }],
    arg_nodes: [0, 1, 2, 3, 4],
    node_row_ptr: [0, 1, 2, 3, 4, 5, 8],
    heads: [[5, 0, 0]],
    attrs: { mxnet_version: ["int", 20000], is_np_shape: ["int", 1] },
  });
  const s = sym.loadJSON(text);
  assert.deepEqual(s.listAuxiliaryStates(), ["m", "s"]);
  assert.equal(s.outputs[0].node.inputs[3].version, 2);
  const out = s.toJSON();
  assert.match(out, /\[3, 0, 2\]/);
  assert.match(
    out,
    /"attrs": \{\n {4}"mxnet_version": \["int", 20000\], \n {4}"is_np_shape": \["int", 1\]\n {2}\}/,
  );
});

Deno.test("malformed documents raise FormatError", () => {
  const e = assertThrowsError(() => sym.loadJSON('{"nodes": ['), FormatError, /malformed JSON/);
  assert.ok(e instanceof SigilError);
  assertThrowsError(() => sym.loadJSON("[]"), FormatError, /JSON object/);
  assertThrowsError(() => sym.loadJSON('{"heads": []}'), FormatError, /'nodes'/);
  assertThrowsError(() => sym.loadJSON('{"nodes": []}'), FormatError, /'heads'/);
  assertThrowsError(() => sym.loadJSON(doc([v("x")], [])), FormatError, /no heads/);
  assertThrowsError(
    () => sym.loadJSON(doc([{ op: "null", inputs: [] }])),
    FormatError,
    /node 0: 'name'/,
  );
  assertThrowsError(
    () => sym.loadJSON(doc([{ op: 3, name: "x", inputs: [] }])),
    FormatError,
    /'op' must be/,
  );
  assertThrowsError(
    () => sym.loadJSON(doc([{ op: "null", name: "x" }])),
    FormatError,
    /node 0 'x': 'inputs'/,
  );
  assertThrowsError(
    () => sym.loadJSON(doc([v("x"), { op: "exp", name: "e", inputs: [[0]] }])),
    FormatError,
    /node 1 'e': input 0: an entry must be/,
  );
  assertThrowsError(
    () => sym.loadJSON(doc([v("x"), { op: "exp", name: "e", inputs: [[0, -1, 0]] }])),
    FormatError,
    /an entry must be/,
  );
  assertThrowsError(
    () =>
      sym.loadJSON(
        doc([v("x"), { op: "Activation", name: "a", attrs: { act_type: 3 }, inputs: [[0, 0]] }]),
      ),
    FormatError,
    /'act_type'.*must be a string/,
  );
  assertThrowsError(
    () =>
      sym.loadJSON(
        JSON.stringify({
          nodes: [v("x"), { op: "exp", name: "e", inputs: [[0, 0]] }],
          arg_nodes: [1],
          heads: [[1, 0]],
        }),
      ),
    FormatError,
    /arg_nodes entry 1 is not a variable/,
  );
  assertThrowsError(
    () => sym.loadJSON(doc([v("x")], [], { attrs: { mxnet_version: 3 } })),
    FormatError,
    /\[type, value\]/,
  );
});

Deno.test("forward references, cycles and bad output indices raise GraphError naming the node", () => {
  assertThrowsError(
    () => sym.loadJSON(doc([v("x"), { op: "exp", name: "e", inputs: [[1, 0, 0]] }])),
    GraphError,
    /node 1 'e': input refers to node 1, which does not come before it/,
  );
  assertThrowsError(
    () => sym.loadJSON(doc([v("x"), { op: "exp", name: "e", inputs: [[7, 0, 0]] }])),
    GraphError,
    /node 1 'e'.*node 7/,
  );
  assertThrowsError(
    () => sym.loadJSON(doc([v("x"), { op: "exp", name: "e", inputs: [[0, 1, 0]] }])),
    GraphError,
    /'e'.*output 1 of 'x', which has 1/,
  );
  assertThrowsError(
    () => sym.loadJSON(doc([v("x")], [[0, 3, 0]])),
    GraphError,
    /head 0 refers to output 3/,
  );
  assertThrowsError(() => sym.loadJSON(doc([v("x")], [[4, 0, 0]])), GraphError, /missing node 4/);
  assertThrowsError(
    () =>
      sym.loadJSON(
        doc([v("x"), { op: "elemwise_add", name: "a", inputs: [[0, 0, 0]] }], undefined, {
          attrs: { mxnet_version: ["int", 10901] },
        }),
      ),
    GraphError,
    /'a'.*takes 2 inputs/,
  );
  // Before 0.9, missing inputs were not stored: the upgrader adds them as variables.
  const old = sym.loadJSON(doc([v("x"), { op: "elemwise_add", name: "a", inputs: [[0, 0, 0]] }]));
  assert.deepEqual(old.listArguments(), ["x", "a_rhs"]);
});

Deno.test("unknown ops and bad attributes raise typed errors naming the node", () => {
  assertThrowsError(
    () => sym.loadJSON(doc([v("x"), { op: "FancyOp", name: "f", inputs: [[0, 0, 0]] }])),
    UnknownOpError,
    /node 1 'f'.*unknown op 'FancyOp'/,
  );
  assertThrowsError(
    () =>
      sym.loadJSON(
        doc([v("x"), {
          op: "Activation",
          name: "a",
          attrs: { act_type: "nope" },
          inputs: [[0, 0, 0]],
        }]),
      ),
    AttributeError,
    /'a'.*act_type/,
  );
  assertThrowsError(
    () => sym.loadJSON(doc([v("x"), { op: "Activation", name: "a", inputs: [[0, 0, 0]] }])),
    AttributeError,
    /'a'.*needs attribute 'act_type'/,
  );
  assertThrowsError(
    () =>
      sym.loadJSON(
        doc([v("x"), { op: "exp", name: "e", attrs: { colour: "red" }, inputs: [[0, 0, 0]] }]),
      ),
    AttributeError,
    /'e'.*unknown attribute 'colour'/,
  );
});

Deno.test("hostile nesting does not exhaust the stack", () => {
  let g: unknown = { nodes: [v("x")], heads: [[0, 0, 0]] };
  for (let i = 0; i < 40; i++) {
    g = {
      nodes: [v("x"), { op: "_copy", name: `c${i}`, inputs: [[0, 0, 0]], subgraphs: [g] }],
      heads: [[1, 0, 0]],
    };
  }
  assertThrowsError(() => sym.loadJSON(JSON.stringify(g)), FormatError, /nested too deeply/);
  const deep = "[".repeat(100000) + "]".repeat(100000);
  assertThrowsError(() => sym.loadJSON(deep), FormatError);
});

Deno.test("a long chain loads, infers and serializes without recursion limits", () => {
  let s = sym.var("x");
  for (let i = 0; i < 20000; i++) s = sym.exp(s, { name: `e${i}` });
  const back = sym.loadJSON(s.toJSON());
  assert.equal(back.outputs[0].node, s.outputs[0].node);
  assert.deepEqual(back.inferShape({ x: [2] }).outShapes, [[2]]);
});
