/**
 * Hostile files that name the internal op `_sigil_fused_conv` (a convolution with an elementwise
 * `epilogue` expression): the expression text is parsed with its own grammar, so each way it can
 * be wrong ends in a typed error that names the file's node and attribute (and the offset where
 * the text is bad), never a crash in a kernel generator; a valid one runs on the WASM engine with
 * the reference engine's values, whatever the names in the file.
 */
import { loadJSON, nd, referenceEngine, wasmEngine } from "../../mod.ts";
import { MAX_SCALAR_DEPTH } from "../../ops/scalar.ts";
import { AttributeError } from "../../runtime/errors.ts";
import { assert, assertThrowsError, PROTO_NAMES } from "../util.ts";

/** A file with one fused convolution reading `x` and the weight `w` (2 → 4 channels, 3×3). */
function file(epilogue: string, names: { x?: string; w?: string; node?: string } = {}): string {
  return JSON.stringify({
    nodes: [
      { op: "null", name: names.x ?? "x", inputs: [] },
      { op: "null", name: names.w ?? "w", inputs: [] },
      {
        op: "_sigil_fused_conv",
        name: names.node ?? "r_fused",
        attrs: { epilogue, kernel: "(3, 3)", no_bias: "True", num_filter: "4", pad: "(1, 1)" },
        inputs: [[0, 0, 0], [1, 0, 0]],
      },
    ],
    arg_nodes: [0, 1],
    node_row_ptr: [0, 1, 2, 3],
    heads: [[2, 0, 0]],
    attrs: { mxnet_version: ["int", 10901] },
  });
}

Deno.test("a fused convolution's epilogue text: every malformed kind is an AttributeError at load", () => {
  const bad: [string, RegExp][] = [
    ["(max (in 0) (const 0)", /expected '\)' at offset 21/],
    ["(frobnicate (in 0))", /unknown function 'frobnicate' at offset 1/],
    ["", /expected '\(' at offset 0/],
    ["(max (in 0) (const NaN))", /bad number 'NaN' at offset 19/],
    ["(max (in 0) (const 0)) trailing", /offset/],
    [
      "(neg ".repeat(MAX_SCALAR_DEPTH + 5) + "(in 0)" + ")".repeat(MAX_SCALAR_DEPTH + 5),
      /deeper than/,
    ],
  ];
  for (const [text, why] of bad) {
    const e = assertThrowsError(() => loadJSON(file(text)), AttributeError, why);
    assert.match(e.message, /node 2 'r_fused' \(_sigil_fused_conv\): attribute 'epilogue'/);
  }
});

Deno.test("a fused convolution's epilogue may read only its convolution: a typed error names the node", async () => {
  const x = nd.ones([1, 2, 5, 5]);
  const w = nd.ones([4, 2, 3, 3]);
  const s = loadJSON(file("(max (in 3) (const 0))"));
  for (const engine of [wasmEngine({ threads: 1 }), referenceEngine]) {
    let err: unknown;
    try {
      await s.eval({ x, w }, { engine });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof AttributeError, `${engine.name}: ${err}`);
    assert.match((err as Error).message, /'r_fused'.*reads input 3; it may read only \(in 0\)/);
  }
});

Deno.test("a valid fused convolution from a file runs on the WASM engine as on the reference, whatever its names", async () => {
  const xs = new Float32Array(2 * 5 * 5).map((_, i) => Math.sin(i) * 3);
  const ws = new Float32Array(4 * 2 * 9).map((_, i) => Math.cos(i));
  const hostile = ['"); throw 1; //', "*/ }", "`${x}`", "\u2028", ...PROTO_NAMES];
  const epilogues = [
    "(max (in 0) (const 0))",
    "(min (max (in 0) (const 0)) (const 6))",
    "(select (gt (in 0) (const 1)) (mul (in 0) (const 0.5)) (const inf))",
  ];
  let compared = 0;
  for (const epilogue of epilogues) {
    for (const name of ["plain", ...hostile]) {
      const s = loadJSON(file(epilogue, { x: name + "x", w: name, node: name + "conv" }));
      const feed = {
        [name + "x"]: nd.array(Array.from(xs), { shape: [1, 2, 5, 5] }),
        [name]: nd.array(Array.from(ws), { shape: [4, 2, 3, 3] }),
      };
      const engine = wasmEngine({ threads: 1 });
      const [got] = await s.eval(feed, { engine });
      const [ref] = await s.eval(feed, { engine: referenceEngine });
      const g = (await got.data()) as Float32Array;
      const r = (await ref.data()) as Float32Array;
      assert.deepStrictEqual(got.shape, [1, 4, 5, 5]);
      for (let i = 0; i < r.length; i++) {
        assert.ok(
          Object.is(g[i], r[i]) || Math.abs(g[i] - r[i]) <= 1e-5 * (1 + Math.abs(r[i])),
          `${epilogue} ${JSON.stringify(name)} [${i}]: ${g[i]} vs ${r[i]}`,
        );
      }
      compared++;
    }
  }
  assert.equal(compared, epilogues.length * (hostile.length + 1));
});
