/**
 * Hostile symbol files, one CI-sized case per attack class: counts that would allocate without
 * bound, text that would make a backtracking parser take exponential time, nesting that would
 * exhaust the stack, values the writer could not write back, and names that are keys of
 * `Object.prototype`. Each must end in a typed error (or a correct result); the large sizes
 * run in tests/hostile_stress.ts, outside CI.
 */
import fc from "npm:fast-check@^4";
import { nd, referenceEngine, sym, Symbol } from "../../mod.ts";
import { MAX_ARITY, MAX_ATTR_LENGTH } from "../../ops/attrs.ts";
import { getOp, listOps } from "../../ops/registry.ts";
import {
  AttributeError,
  FormatError,
  GraphError,
  ShapeError,
  SigilError,
} from "../../runtime/errors.ts";
import { MAX_GRAPH_ATTR_DEPTH } from "../../compiler/json.ts";
import { assert, assertThrowsError, PROTO_NAMES, withProtoAccessor } from "../util.ts";

type RawNode = { op: string; name: string; attrs?: Record<string, string>; inputs: number[][] };

function doc(nodes: RawNode[], heads: number[][], attrs?: Record<string, unknown>): string {
  return JSON.stringify({
    nodes,
    arg_nodes: nodes.flatMap((n, i) => (n.op === "null" ? [i] : [])),
    heads,
    attrs: attrs ?? { mxnet_version: ["int", 10901] },
  });
}

const x: RawNode = { op: "null", name: "x", inputs: [] };

Deno.test("counts from files are bounded before anything is allocated", () => {
  const huge = String(1e8);
  const split = doc([x, {
    op: "SliceChannel",
    name: "s",
    attrs: { num_outputs: huge },
    inputs: [[0, 0, 0]],
  }], [[1, 0, 0]]);
  assertThrowsError(() => sym.loadJSON(split), AttributeError, /num_outputs.*maximum 65536/);
  for (const [op, key] of [["Concat", "num_args"], ["amp_multicast", "num_outputs"]]) {
    const text = doc([x, { op, name: "c", attrs: { [key]: huge }, inputs: [[0, 0, 0]] }], [[
      1,
      0,
      0,
    ]]);
    assertThrowsError(() => sym.loadJSON(text), AttributeError, new RegExp(key));
    // Within the maximum but not what the file gives: a typed error, no name list built.
    const near = text.replace(huge, String(MAX_ARITY));
    assertThrowsError(() => sym.loadJSON(near), GraphError, /1 inputs are given/);
  }
  const fused = doc([x, {
    op: "_sigil_fused_elemwise",
    name: "f",
    attrs: { expr: "(exp (in 0))", num_args: huge },
    inputs: [[0, 0, 0]],
  }], [[1, 0, 0]]);
  assertThrowsError(() => sym.loadJSON(fused), AttributeError, /num_args/);
  // A pre-0.9 file (no version) used to get its missing inputs created: never for a count.
  const old = JSON.stringify({
    nodes: [x, { op: "Concat", name: "c", param: { num_args: "60000" }, inputs: [[0, 0]] }],
    arg_nodes: [0],
    heads: [[1, 0]],
  });
  assertThrowsError(() => sym.loadJSON(old), GraphError, /num_args=60000 but 1 inputs/);
  // The largest split allowed is fine and its names are built once.
  // (Each node's visible output count is computed once: getInternals was quadratic in it.)
  const ok = sym.loadJSON(split.replace(huge, String(MAX_ARITY))).getInternals();
  assert.equal(ok.numOutputs, MAX_ARITY + 1);
  assert.equal(ok.inferShape({ x: [1, MAX_ARITY] }).outShapes.length, MAX_ARITY + 1);
});

Deno.test("attribute text parses in linear time: the catastrophic inputs give typed errors", () => {
  const spaces = " ".repeat(50_000);
  const conv = (attrs: Record<string, string>) =>
    doc([x, {
      op: "Pooling",
      name: "p",
      attrs: { kernel: "(1, 1)", ...attrs },
      inputs: [[0, 0, 0]],
    }], [[1, 0, 0]]);
  assertThrowsError(() => sym.loadJSON(conv({ pad: "(" + spaces + "x" })), AttributeError, /pad/);
  assertThrowsError(
    () => sym.loadJSON(conv({ stride: "(1," + spaces + ",x)" })),
    AttributeError,
    /stride/,
  );
  const digits = "1".repeat(100_000);
  const lrn = doc([x, {
    op: "LeakyReLU",
    name: "l",
    attrs: { slope: digits + "x" },
    inputs: [[0, 0, 0]],
  }], [[
    1,
    0,
    0,
  ]]);
  assertThrowsError(() => sym.loadJSON(lrn), AttributeError, /slope/);
  // __shape__ is parsed when shapes are inferred.
  const shaped = sym.loadJSON(doc([{
    op: "null",
    name: "x",
    attrs: { __shape__: "(" + spaces + "x" },
    inputs: [],
  }], [[0, 0, 0]]));
  assertThrowsError(() => shaped.inferShapePartial(), ShapeError, /__shape__/);
  // Values longer than the cap are refused at load.
  const long = conv({ __note__: "a".repeat(MAX_ATTR_LENGTH + 1) });
  assertThrowsError(() => sym.loadJSON(long), FormatError, /characters long/);
});

Deno.test("graph attributes are validated on load: nesting and non-finite numbers", () => {
  let deep: unknown = 1;
  // Refused by a scan of the text, before JSON.parse builds a million arrays.
  const nested = '{"nodes": [], "heads": [], "attrs": {"junk": ["list", ' + "[".repeat(100_000) +
    "1" + "]".repeat(100_000) + "]}}";
  assertThrowsError(
    () => sym.loadJSON(nested),
    FormatError,
    /nested too deeply \(over 128 levels of brackets\)/,
  );
  // Brackets inside strings do not count.
  const quoted = doc([{ ...x, name: "[".repeat(1000) + "{" }], [[0, 0, 0]]);
  assert.deepEqual(sym.loadJSON(quoted).listArguments(), ["[".repeat(1000) + "{"]);
  for (let i = 0; i < 50; i++) deep = [deep];
  const fifty = doc([x], [[0, 0, 0]], { mxnet_version: ["int", 10901], junk: ["list", deep] });
  assertThrowsError(() => sym.loadJSON(fifty), FormatError, /nested deeper than 8 levels/);
  const inf = doc([x], [[0, 0, 0]], { mxnet_version: ["int", 10901], big: ["float", 1] })
    .replace('["float",1]', '["float",1e400]');
  assertThrowsError(() => sym.loadJSON(inf), FormatError, /not finite/);
  // What NNVM writes (lists of lists) loads and writes back as it was.
  let ok: unknown = 7;
  for (let i = 1; i < MAX_GRAPH_ATTR_DEPTH; i++) ok = [ok, "s"];
  const shapes = doc([x], [[0, 0, 0]], {
    mxnet_version: ["int", 10901],
    shape: ["list_shape", [[1, 2], [3]]],
    deep: ["list", ok],
  });
  const s = sym.loadJSON(shapes);
  assert.deepEqual(s.graphAttrs.shape, ["list_shape", [[1, 2], [3]]]);
  assert.deepEqual(sym.loadJSON(s.toJSON()).graphAttrs, s.graphAttrs);
  // A symbol built in code with a value JSON cannot hold fails to write with a typed error.
  const bad = new Symbol(s.outputs, { v: ["float", Infinity] });
  assertThrowsError(() => bad.toJSON(), FormatError, /not finite/);
});

Deno.test("control characters and lone surrogates are escaped so files read back", () => {
  const name = "a\u0000b\bc\fd\u001f\ud800e\udc00\u{1F600}";
  const v = sym.var(name, { attr: { note: "x\u0001\uDFFF" } });
  const text = sym.exp(v).toJSON();
  // Nothing raw below U+0020 and no lone surrogate, so UTF-8 carries the file unchanged.
  // deno-lint-ignore no-control-regex
  assert(!/[\u0000-\u0009\u000b-\u001f]/.test(text));
  assert.equal(new TextDecoder().decode(new TextEncoder().encode(text)), text);
  const back = sym.loadJSON(text);
  assert.deepEqual(back.listArguments(), [name]);
  assert.equal(back.getChildren()!.attr("note"), "x\u0001\uDFFF");
  // Ordinary names are written byte-for-byte as before.
  assert(sym.var("plain").toJSON().includes('"name": "plain"'));
});

/** Arbitrary Unicode text, lone surrogates and control characters included. */
const text = fc.string({ unit: "binary", maxLength: 8 });
const utf16 = fc.string({
  unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  maxLength: 6,
});
const anyName = fc.oneof(text, utf16, fc.constantFrom(...PROTO_NAMES, "arg:w", ""));
const leaf = fc.oneof(
  fc.string({ unit: "binary", maxLength: 4 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
);
const graphValue = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: "small", maxDepth: 4 }, leaf, tie("arr"), tie("obj")),
  arr: fc.array(tie("value"), { maxLength: 3 }),
  obj: fc.dictionary(anyName, tie("value"), { maxKeys: 2 }),
})).value;

const documents = fc.record({
  names: fc.uniqueArray(anyName, { minLength: 1, maxLength: 4 }),
  attrs: fc.array(fc.dictionary(anyName, fc.oneof(text, utf16), { maxKeys: 3 }), {
    minLength: 4,
    maxLength: 4,
  }),
  graph: fc.dictionary(anyName, fc.tuple(text, graphValue), { maxKeys: 3 }),
}).map(({ names, attrs, graph }) => {
  const nodes: unknown[] = names.map((name, i) => ({
    op: "null",
    name,
    attrs: attrs[i],
    inputs: [],
  }));
  nodes.push({
    op: "Concat",
    name: "sum",
    attrs: { num_args: String(names.length), dim: "0" },
    inputs: names.map((_, i) => [i, 0, 0]),
  });
  return JSON.stringify({
    nodes,
    heads: [[names.length, 0, 0]],
    attrs: { ...graph, mxnet_version: ["int", 10901] },
  });
});

Deno.test("property: loadJSON(toJSON(s)) gives s back for everything loadJSON accepts", async () => {
  for (const proto of [false, true]) {
    const check = () =>
      fc.assert(
        fc.property(documents, (d) => {
          let s;
          try {
            s = sym.loadJSON(d);
          } catch (e) {
            if (e instanceof SigilError) return;
            throw e;
          }
          const t = s.toJSON();
          // Through UTF-8, as a file would be.
          const back = sym.loadJSON(new TextDecoder().decode(new TextEncoder().encode(t)));
          // Nodes are hash-consed: equal names, attributes and inputs give the same objects.
          assert.equal(back.outputs[0].node, s.outputs[0].node);
          assert.deepStrictEqual(back.graphAttrs, s.graphAttrs);
          assert.equal(back.toJSON(), t);
        }),
        { numRuns: 150 },
      );
    if (proto) await withProtoAccessor(check);
    else check();
  }
});

/** Attribute text: arbitrary Unicode, and the forms parsers treat specially. */
const attrText = fc.oneof(
  text,
  utf16,
  fc.constantFrom(
    "1e400",
    "-1e400",
    "1e-400",
    "-0",
    "nan",
    "inf",
    " 3 ",
    "3L",
    "1.5f",
    "(1, 2)",
    "(1,)",
    "[3]",
    "()",
    "None",
    "True",
    "0",
    "1",
    "2",
    "(2, 2)",
    "float16",
    "relu",
    "avg",
  ),
);
const opDocuments = fc.constantFrom(...listOps().filter((o) => !o.subgraph).map((o) => o.name))
  .chain((op) =>
    fc.record({
      op: fc.constant(op),
      name: anyName,
      inputs: fc.integer({ min: 1, max: 3 }),
      attrs: fc.dictionary(
        fc.oneof(
          fc.constantFrom(...Object.keys(getOp(op).attrs), "__lr_mult__", "__proto__"),
          anyName,
        ),
        attrText,
        { maxKeys: 4 },
      ),
    })
  )
  .map(({ op, name, inputs, attrs }) => {
    const vars = Array.from({ length: inputs }, (_, i) => ({
      op: "null",
      name: `v${i}`,
      inputs: [],
    }));
    const node = { op, name, attrs, inputs: vars.map((_, i) => [i, 0, 0]) };
    return JSON.stringify({
      nodes: [...vars, node],
      heads: [[inputs, 0, 0]],
      attrs: { mxnet_version: ["int", 10901] },
    });
  });

Deno.test("property: op nodes with arbitrary attribute text read back as they were written", () => {
  let accepted = 0;
  fc.assert(
    fc.property(opDocuments, (d) => {
      let s;
      try {
        s = sym.loadJSON(d);
      } catch (e) {
        if (e instanceof SigilError) return;
        throw e;
      }
      accepted++;
      const t = s.toJSON();
      const back = sym.loadJSON(new TextDecoder().decode(new TextEncoder().encode(t)));
      assert.equal(back.outputs[0].node, s.outputs[0].node);
      assert.equal(back.toJSON(), t);
    }),
    { numRuns: 500, seed: 7 },
  );
  assert(accepted >= 25, `only ${accepted} documents loaded`);
});

Deno.test("names of Object.prototype keys behave as any name (Node semantics)", async () => {
  await withProtoAccessor(async () => {
    const nodes: RawNode[] = PROTO_NAMES.map((name) => ({
      op: "null",
      name,
      attrs: { ["__proto__"]: "p", constructor: "c", __shape__: "(2,)" },
      inputs: [],
    }));
    nodes.push({
      op: "Concat",
      name: "toString",
      attrs: { num_args: "4", dim: "0" },
      inputs: PROTO_NAMES.map((_, i) => [i, 0, 0]),
    });
    const text = JSON.stringify({
      nodes,
      heads: [[4, 0, 0]],
      attrs: {
        mxnet_version: ["int", 10901],
        ["__proto__"]: ["str", "g"],
        constructor: ["int", 1],
      },
    });
    const s = sym.loadJSON(text);
    assert.deepEqual(s.listArguments(), [...PROTO_NAMES]);
    assert.equal(Object.hasOwn(s.graphAttrs, "__proto__"), true);
    assert.deepEqual(s.graphAttrs["__proto__"], ["str", "g"]);
    const v = s.getChildren()!.get(0);
    assert.equal(v.attr("__proto__"), "p");
    assert.equal(v.attr("constructor"), "c");
    assert.equal(v.attr("hasOwnProperty"), undefined);
    assert.deepEqual(Object.keys(s.attrDict()).sort(), [...PROTO_NAMES].sort());
    assert.equal(s.attrDict()["__proto__"]["__proto__"], "p");
    assert.equal(sym.loadJSON(s.toJSON()).toJSON(), s.toJSON());
    // Shapes and values bound by those names reach their variables.
    const shapes = Object.fromEntries(PROTO_NAMES.map((n) => [n, [2]]));
    assert.deepEqual(s.inferShape(shapes).outShapes, [[8]]);
    const bindings = Object.fromEntries(PROTO_NAMES.map((n, i) => [n, nd.array([i, 1])]));
    const [out] = await s.eval(bindings, { engine: referenceEngine });
    assert.deepEqual([...await out.data()], [0, 1, 1, 1, 2, 1, 3, 1]);
    const [wasm] = await s.eval(bindings);
    assert.deepEqual([...await wasm.data()], [0, 1, 1, 1, 2, 1, 3, 1]);
  });
});
