/**
 * Graph drawing: a model-zoo network as SVG (one drawn node per op, data input and output;
 * shapes on edges; fused groups boxed), partitions boxed, and names from a model file that
 * cannot change the DOT text's structure however hostile they are.
 */
import fc from "npm:fast-check@^4";
import { main } from "../../cli.ts";
import { nd, sym } from "../../mod.ts";
import { loadJSON } from "../../compiler/json.ts";
import type { Symbol } from "../../compiler/symbol.ts";
import { dotString, graphToDot, KIND_COLORS, renderSvg } from "../../compiler/viz.ts";
import { inlineBlockCalls } from "../../compiler/passes/partition.ts";
import { vision } from "../../gluon/model_zoo/mod.ts";
import { assert } from "../util.ts";

const count = (text: string, what: RegExp) => (text.match(what) ?? []).length;

/** The text of every `<text>` element of an SVG, entities decoded, lines joined with `\n`. */
function svgTexts(svg: string): string[] {
  const out: string[] = [];
  for (const node of svg.split(/<g id="(?:node|edge)\d+"/).slice(1)) {
    const lines = [...node.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) =>
      m[1].replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(
        /&#(\d+);/g,
        (_, d) => String.fromCharCode(Number(d)),
      ).replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCharCode(parseInt(h, 16))).replace(
        /&amp;/g,
        "&",
      )
    );
    out.push(lines.join("\n"));
  }
  return out;
}

let zoo: Symbol | undefined;
function resnet18(): Symbol {
  if (zoo) return zoo;
  const net = vision.getModel("resnet18_v1");
  net.initialize({ seed: 3 });
  net.hybridize();
  net.call(nd.ones([1, 3, 32, 32]));
  // Through MXNet JSON, as the CLI reads it.
  return zoo = loadJSON(inlineBlockCalls(net.cachedGraph()!.symbol).toJSON());
}

Deno.test("viz: ResNet-18 as SVG has a node per op, data and output, shapes on edges, fused groups boxed", async () => {
  const symbol = resnet18();
  const ops = symbol.nodes().filter((n) => !n.isVariable);
  const svg = await renderSvg(symbol, { inputs: { data: [1, 3, 224, 224] } });
  assert(svg.startsWith("<?xml") && svg.trimEnd().endsWith("</svg>"));
  assert.equal(count(svg, /class="node"/g), ops.length + 2);
  const texts = svgTexts(svg);
  for (const n of ops) {
    assert(texts.some((t) => t.startsWith(`${n.name}\n${n.opName}`)), `no node for ${n.name}`);
  }
  // The stem convolution reads 1x3x224x224; the classifier writes 1x1000.
  assert(
    texts.includes("1x3x224x224") && texts.includes("1x64x112x112") && texts.includes("1x1000"),
  );
  // Every data edge between ops, the data input's and the output's, each with its shape.
  const dataEdges = ops.reduce(
    (a, n) => a + n.inputs.filter((e) => !e.node.isVariable || e.node.name === "data").length,
    0,
  ) + 1;
  assert.equal(count(svg, /class="edge"/g), dataEdges);
  // Each residual block's add + relu is one fused group.
  assert.equal(count(svg, /<title>cluster_\d+<\/title>/g), 8);
  assert(svg.includes(KIND_COLORS.convolution) && svg.includes(KIND_COLORS.normalization));
  // Without shapes, edges carry no labels and weights can be drawn on request.
  const bare = graphToDot(symbol, { fuse: false });
  assert(!bare.includes("subgraph") && !/->[^;]*label/.test(bare));
  const withWeights = graphToDot(symbol, { hideWeights: false });
  assert.equal(
    count(withWeights, /shape=oval/g),
    symbol.nodes().filter((n) => n.isVariable).length + 1,
  );
});

Deno.test("viz: a partitioning backend's subgraphs are boxed, by backend and call name", () => {
  const conv = sym.Convolution(sym.var("data"), { kernel: [3, 3], num_filter: 4, name: "conv" });
  const y = sym.Activation(conv, { act_type: "relu", name: "relu" });
  const dot = graphToDot(y, {
    partition: { backend: "default", options: { opNames: ["Convolution"] } },
  });
  assert.match(dot, /subgraph cluster_0 \{\n\s+label="default: _CachedOp0";/);
  assert.match(dot, /subgraph cluster_0 \{[^}]*label="conv\\nConvolution/);
  assert.doesNotMatch(dot, /subgraph cluster_0 \{[^}]*label="relu/);
  assert.throws(() => graphToDot(y, { partition: "no_such_backend" }), /unknown partitioning/);
});

const HOSTILE = [
  'a"b',
  '"]; evil [label="x',
  "</text><script>alert(1)</script>",
  "{x|<p>y}",
  "line\nbreak",
  "back\\N\\G\\",
  "tab\there\u0001",
  "${}",
  "__proto__",
  "../../etc",
  "\u2028",
];

Deno.test("viz: hostile names reach the SVG as text, escaped, and add no node or edge", async () => {
  let x = sym.var(HOSTILE[0]);
  for (const name of HOSTILE.slice(1)) x = sym.exp(x, { name });
  const svg = await renderSvg(x, { inputs: { [HOSTILE[0]]: [2, 3] } });
  assert.equal(count(svg, /class="node"/g), HOSTILE.length + 1);
  assert.equal(count(svg, /class="edge"/g), HOSTILE.length);
  assert(!svg.includes("<script") && !svg.includes('evil [label="'));
  assert(svg.includes("&lt;script&gt;") && svg.includes("evil [label=&quot;x"));
  const texts = svgTexts(svg);
  assert(texts.includes(HOSTILE[0]));
  assert(texts.includes(`${HOSTILE[1]}\nexp`));
  assert(texts.includes("{x|<p>y}\nexp"));
  assert(texts.includes("line\\nbreak\nexp")); // a line break in a name is shown, not obeyed
  assert(texts.includes("back\\N\\G\\\nexp"));
  assert(texts.includes("tab\\u0009here\\u0001\nexp"));
});

Deno.test("viz: any name is one node with that label (property)", async () => {
  await fc.assert(
    fc.asyncProperty(fc.string({ unit: "binary", maxLength: 24 }), async (name) => {
      const y = sym.exp(sym.var("x"), { name: name || "e" });
      const svg = await renderSvg(y);
      if (count(svg, /class="node"/g) !== 3) return false;
      // Printable names come back as they were (control characters are written out).
      // deno-lint-ignore no-control-regex
      if (!/[\u0000-\u001f\u007f\u2028\u2029]/.test(name) && name.trim() === name && name) {
        return svgTexts(svg).some((t) => t === `${name}\nexp`);
      }
      return true;
    }),
    { numRuns: 300 },
  );
  assert.equal(dotString('\\"'), '"\\\\\\""');
});

Deno.test("viz CLI: -o writes the SVG, --format dot, bad options are usage errors", async () => {
  const root = await Deno.makeTempDir({ prefix: "sigil-viz-" });
  try {
    const file = `${root}/net-symbol.json`;
    await Deno.writeTextFile(file, resnet18().toJSON());
    const out = `${root}/graph.svg`;
    assert.equal(await main(["viz", file, "--input", "data:1x3x64x64", "-o", out]), 0);
    const svg = await Deno.readTextFile(out);
    assert(svg.includes("1x3x64x64") && svg.trimEnd().endsWith("</svg>"));
    assert.equal(await main(["viz", file, "--format", "dot", "-o", `${root}/g.dot`]), 0);
    assert((await Deno.readTextFile(`${root}/g.dot`)).startsWith("digraph sigil {"));
    assert.equal(await main(["viz", file, "--format", "png", "-o", `${root}/x`]), 2);
    assert.equal(await main(["viz", file, "--input", "data:1x7", "-o", `${root}/y.svg`]), 1);
    assert.deepStrictEqual(
      [...Deno.readDirSync(root)].map((e) => e.name).sort(),
      ["g.dot", "graph.svg", "net-symbol.json"],
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
