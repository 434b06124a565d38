/**
 * Names in messages: close matches of a misspelled name, and lists that stay short however many
 * names a graph or file has.
 */
import {
  ArgumentError,
  modelZoo,
  nd,
  nn,
  SigilError,
  sym,
  SymbolBlock,
  type Tensor,
} from "../../mod.ts";
import type { Symbol } from "../../compiler/symbol.ts";
import { closeMatches, didYouMean, editDistance, listNames, orList } from "../../runtime/names.ts";
import { assert, assertThrowsError } from "../util.ts";

Deno.test("names: edit distance, close matches and short lists", () => {
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("abc", "abc"), 0);
  assert.equal(editDistance("abcdef", "uvwxyz", 2), 3);
  assert.deepEqual(closeMatches("conv0_wieght", ["conv0_weight", "conv0_bias", "conv1_weight"]), [
    "conv0_weight",
    "conv1_weight",
  ]);
  assert.deepEqual(closeMatches("DATA", ["data"]), ["data"]);
  assert.deepEqual(closeMatches("x", ["label", "weight"]), []);
  assert.deepEqual(closeMatches("resnet50", ["resnet50_v1", "resnet50_v2", "vgg16"]), [
    "resnet50_v1",
    "resnet50_v2",
  ]);
  assert.equal(didYouMean("dat", ["data", "date"]), "; did you mean 'data' or 'date'?");
  assert.equal(didYouMean("q", ["data"]), "");
  assert.equal(orList(["a", "b", "c"]), "'a', 'b' or 'c'");
  assert.equal(listNames(["a", "b"]), "'a', 'b'");
  assert.equal(
    listNames(Array.from({ length: 10 }, (_, i) => `n${i}`), 3),
    "'n0', 'n1', 'n2' and 7 more",
  );
  assert.equal(listNames(["a b"], 6, false), "a b");
  assert.equal(listNames([]), "none");
});

function resnet50(): Symbol {
  return modelZoo.vision.resnet50_v1({ classes: 10 }).call(sym.var("data")) as unknown as Symbol;
}

Deno.test("inferShape refuses an unknown name with close matches, in a short message", () => {
  const y = resnet50();
  assert.ok(y.listInputs().length > 200);
  let e: unknown;
  try {
    y.inferShape({ dta: [1, 3, 32, 32] });
  } catch (err) {
    e = err;
  }
  assert.ok(e instanceof ArgumentError && e.argument === "dta", String(e));
  assert.match(e.message, /'dta' is not an input of the symbol; did you mean 'data'\?/);
  assert.match(e.message, /and \d+ more$/);
  assert.ok(e.message.length < 400, `${e.message.length} characters`);
  // What stays unknown is listed short too (it was every name that stayed unknown).
  const wide = sym.group(Array.from({ length: 100 }, (_, i) => sym.exp(sym.var(`x${i}`))));
  try {
    wide.inferShape({});
  } catch (err) {
    e = err;
  }
  assert.ok(e instanceof SigilError);
  assert.match(
    e.message,
    /cannot infer the shapes of x0 unknown, x1 unknown, .*x5 unknown and 194 more; give more/,
  );
  assert.ok(e.message.length < 400, `${e.message.length} characters`);
});

Deno.test("loading parameters names the close matches of a missing or extra name", async () => {
  const net = new nn.Dense(2, { inUnits: 3 });
  net.initialize();
  const bytes = net.parametersBytes();
  const other = new nn.HybridSequential().add(new nn.Dense(2, { inUnits: 3 }));
  await assertRejects(
    () => other.loadParameters(bytes),
    /Parameter '0.weight' is missing in .*; did you mean 'weight'\?/,
  );
  await assertRejects(
    () => other.loadParameters(bytes, { allowMissing: true }),
    /Parameter 'weight' loaded from .* is not present in the block; did you mean '0.weight'\?/,
  );
});

Deno.test("SymbolBlock.imports names the close matches of a wrong input name", async () => {
  const y = resnet50();
  const json = new TextEncoder().encode(y.toJSON());
  const e = await assertRejects(() => SymbolBlock.imports(json, ["Data"]), /has no input named/);
  assert.match(e.message, /'Data'; did you mean 'data'\?; its inputs are 'data', .* and \d+ more$/);
  assert.ok(e.message.length < 400, `${e.message.length} characters`);
  const ok = await SymbolBlock.imports(
    new TextEncoder().encode(sym.exp(sym.var("data")).toJSON()),
    ["data"],
  );
  assert.deepEqual((ok.call(nd.zeros([1])) as Tensor).toArray(), [1]);
});

Deno.test("getModel suggests the zoo's close names", () => {
  assertThrowsError(
    () => modelZoo.vision.getModel("resnet50"),
    modelZoo.vision.UnknownModelError,
    /Model resnet50 is not supported \(did you mean 'resnet50_v1' or 'resnet50_v2'\?\)\. Available/,
  );
});

async function assertRejects(f: () => Promise<unknown>, pattern: RegExp): Promise<Error> {
  try {
    await f();
  } catch (e) {
    assert.ok(e instanceof SigilError, String(e));
    assert.match(e.message, pattern);
    return e;
  }
  throw new assert.AssertionError({ message: "did not reject" });
}
