/**
 * Real MXNet symbol files from ../shared/reference/fixtures (third-party data, read in place,
 * never copied): each loads, infers its stated output shapes, and (for MXNet >= 1.0 files)
 * re-serializes byte-for-byte.
 */
import { sym } from "../../mod.ts";
import { assert } from "../util.ts";

const ROOT = new URL("../../../shared/reference/fixtures/", import.meta.url);

function available(): boolean {
  try {
    return Deno.statSync(ROOT).isDirectory;
  } catch {
    return false;
  }
}

const HAVE = available();
if (!HAVE) {
  console.warn(`fixtures_test: ${ROOT.pathname} is absent; the real-file tests are skipped`);
}

interface Case {
  file: string;
  inputs: Record<string, number[]>;
  outputs: number[][];
  /** Whether the file was written by MXNet >= 1.0 (so it must re-serialize exactly). */
  exact: boolean;
  /** A newline the repository added after MXNet wrote the file. */
  trailingNewline?: boolean;
}

const CASES: Case[] = [
  {
    file: "symbol-json/gluon191-resnet50_v1-symbol.json",
    inputs: { data: [1, 3, 224, 224] },
    outputs: [[1, 1000]],
    exact: true,
  },
  {
    file: "symbol-json/gluon130-mlp-taxi-symbol.json",
    inputs: { data: [5, 4] },
    outputs: [[5, 1]],
    exact: true,
  },
  {
    file: "symbol-json/gluon160-mnist-cnn-symbol.json",
    inputs: { data: [2, 1, 28, 28] },
    outputs: [[2, 10]],
    exact: true,
  },
  {
    file: "symbol-json/legacy-mtcnn-det1-symbol.json",
    inputs: { data: [1, 3, 12, 12] },
    outputs: [[1, 4, 1, 1], [1, 2, 1, 1]],
    exact: false,
  },
  {
    file: "symbol-json/legacy-mtcnn-det2-symbol.json",
    inputs: { data: [3, 3, 24, 24] },
    outputs: [[3, 4], [3, 2]],
    exact: false,
  },
  {
    file: "mxnet-repo/clojure-imclassification-test-symbol.json",
    inputs: { data: [2, 784] },
    outputs: [[2, 10]],
    exact: true,
  },
  {
    file: "mxnet-repo/save_000800.json",
    inputs: { data: [1, 200] },
    outputs: [[1, 10]],
    exact: false,
  },
  {
    file: "mxnet-repo/test_dnnl_test_dnnl_model_model1.json",
    inputs: { data: [32, 3, 300, 300] },
    outputs: [[32, 1000]],
    exact: true,
    trailingNewline: true,
  },
];

for (const c of CASES) {
  Deno.test({
    name: `fixture ${c.file}: loads and infers ${JSON.stringify(c.outputs)}`,
    ignore: !HAVE,
    fn: async () => {
      const net = await sym.load(new URL(c.file, ROOT));
      const { outShapes, argShapes } = net.inferShape(c.inputs);
      assert.deepEqual(outShapes, c.outputs);
      assert.equal(argShapes.length, net.listArguments().length);
    },
  });
  if (c.exact) {
    Deno.test({
      name: `fixture ${c.file}: re-serializes byte-for-byte`,
      ignore: !HAVE,
      fn: async () => {
        let text = await Deno.readTextFile(new URL(c.file, ROOT));
        if (c.trailingNewline) text = text.replace(/\n$/, "");
        const net = sym.loadJSON(text);
        assert.equal(net.toJSON(), text);
        // Loading what we wrote gives the very same nodes (hash-consing).
        const again = sym.loadJSON(net.toJSON());
        assert.ok(again.outputs.every((e, i) => e.node === net.outputs[i].node));
      },
    });
  }
}

Deno.test({
  name: "fixture save_000800.json: 0.8 upgrade adds BatchNorm aux states and hidden keys",
  ignore: !HAVE,
  fn: async () => {
    const net = await sym.load(new URL("mxnet-repo/save_000800.json", ROOT));
    const aux = net.listAuxiliaryStates();
    assert.equal(aux.length, 2);
    assert.ok(aux.every((n) => /_moving_(mean|var)$/.test(n)), aux.join());
    const attrs = net.attrDict();
    // 0.8 `lr_mult`-style keys become hidden `__lr_mult__` keys.
    const all = Object.values(attrs).flatMap((a) => Object.keys(a));
    assert.ok(
      all.some((k) => k === "__lr_mult__" || k === "__wd_mult__" || k === "__ctx_group__"),
      all.join(),
    );
    assert.ok(!all.some((k) => /^(lr_mult|wd_mult|ctx_group)$/.test(k)));
    // The stats variables get MXNet's initializers.
    const mean = aux.find((n) => n.endsWith("moving_mean"))!;
    assert.equal(attrs[mean].__init__, '["zero", {}]');
  },
});
