// Names that are keys of Object.prototype (__proto__, constructor, hasOwnProperty, toString),
// from files and from code, where `obj["__proto__"] = v` sets a prototype instead of a key:
// Node (tests/platforms/platforms_test.ts runs this on the bundle) and Deno with --unsafe-proto
// (tests/compiler/hostile_names_test.ts). Usage:
//   node proto_names_check.mjs <mod.ts or bundle path>
//   deno run -A --unsafe-proto proto_names_check.mjs <mod.ts path>
// Prints one JSON line; exits non-zero on the first failure.
import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";

const arg = process.argv[2] ?? globalThis.Deno?.args?.[0];
const sigil = await import(pathToFileURL(arg).href);
const { loadParamsBytes, nd, paramsToRecord, saveNpz, saveParamsV2, sym, SymbolBlock } = sigil;

const NAMES = ["__proto__", "constructor", "hasOwnProperty", "toString"];
/** A record keyed by `names` (fromEntries defines keys, so __proto__ stays a key). */
const record = (names, f) => Object.fromEntries(names.map((n, i) => [n, f(n, i)]));

const report = {
  runtime: globalThis.Deno ? `deno ${Deno.version.deno}` : `node ${process.version}`,
};
try {
  // The accessor this check is about must be there (Deno has it only with --unsafe-proto).
  const probe = {};
  probe["__proto__"] = {};
  assert.equal(Object.hasOwn(probe, "__proto__"), false, "no Object.prototype.__proto__ setter");

  // A symbol file whose variables, attributes, graph attributes and op node use those names.
  const nodes = NAMES.map((name) => ({
    op: "null",
    name,
    attrs: Object.fromEntries([["__proto__", "p"], ["constructor", "c"], ["__shape__", "(2,)"]]),
    inputs: [],
  }));
  nodes.push({
    op: "Concat",
    name: "toString",
    attrs: { num_args: "4", dim: "0" },
    inputs: NAMES.map((_, i) => [i, 0, 0]),
  });
  const graphAttrs = Object.fromEntries([
    ["mxnet_version", ["int", 10901]],
    ["__proto__", ["str", "g"]],
    ["hasOwnProperty", ["int", 1]],
  ]);
  const text = JSON.stringify({
    nodes,
    arg_nodes: [0, 1, 2, 3],
    heads: [[4, 0, 0]],
    attrs: graphAttrs,
  });
  assert(text.includes('"__proto__":"p"'));
  const s = sym.loadJSON(text);
  assert.deepEqual(s.listArguments(), NAMES);
  assert.equal(Object.hasOwn(s.graphAttrs, "__proto__"), true);
  assert.deepEqual(s.graphAttrs["__proto__"], ["str", "g"]);
  const v = s.getChildren().get(0);
  assert.equal(v.attr("__proto__"), "p");
  assert.equal(v.attr("constructor"), "c");
  assert.equal(v.attr("toString"), undefined);
  const dict = s.attrDict();
  assert.deepEqual(Object.keys(dict).sort(), [...NAMES].sort());
  assert.equal(dict["__proto__"]["__proto__"], "p");
  assert.equal(sym.loadJSON(s.toJSON()).toJSON(), s.toJSON());

  // Shapes, dtypes and values keyed by those names reach their variables.
  assert.deepEqual(s.inferShape(record(NAMES, () => [2])).outShapes, [[8]]);
  assert.deepEqual(s.inferType(record(NAMES, () => "float64")).outTypes, ["float64"]);
  const bindings = record(NAMES, (_, i) => nd.array([i, 1]));
  const want = [0, 1, 1, 1, 2, 1, 3, 1];
  const [ref] = await s.eval(bindings, { engine: sigil.referenceEngine });
  assert.deepEqual([...(await ref.data())], want);
  const [wasm] = await s.eval(bindings);
  assert.deepEqual([...(await wasm.data())], want);
  report.symbol = true;

  // Parameter files keyed by those names, with and without arg:/aux: prefixes.
  const names = [...NAMES, "arg:w", "aux:b"];
  const entries = names.map((n, i) => [n, nd.full([1], i)]);
  for (const bytes of [saveParamsV2(entries), saveNpz(entries)]) {
    const rec = paramsToRecord(loadParamsBytes(bytes));
    assert.deepEqual(Object.keys(rec), names);
    names.forEach((n, i) => assert.equal(rec[n].toArray()[0], i));
  }
  report.params = true;

  // A SymbolBlock whose parameters carry those names: collect, set, save, load.
  const x = sym.var("data");
  let y;
  for (const n of NAMES) {
    const t = sym.broadcast_mul(x, sym.var(n, { shape: [1] }));
    y = y === undefined ? t : sym.broadcast_add(y, t);
  }
  const net = new SymbolBlock(y, x);
  net.initialize();
  const params = net.collectParams();
  assert.deepEqual(Object.keys(params), NAMES);
  NAMES.forEach((n, i) => params[n].setData(nd.full([1], i + 1)));
  assert.deepEqual([...(await net.call(nd.ones([2])).data())], [10, 10]);
  const back = new SymbolBlock(y, x);
  back.initialize();
  await back.loadParameters(net.parametersBytes());
  assert.deepEqual([...(await back.call(nd.ones([2])).data())], [10, 10]);
  report.block = true;
  report.ok = true;
} catch (e) {
  report.error = String(e?.stack ?? e);
  console.log(JSON.stringify(report));
  process.exit(1);
}
console.log(JSON.stringify(report));
process.exit(0);
