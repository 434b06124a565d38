/**
 * Hostile symbol JSON: random structural mutations of valid documents must only ever produce a
 * loaded symbol or a typed SigilError, never a TypeError from deep inside or a hang. Loaded
 * mutants must also infer shapes with typed errors only.
 */
import fc from "npm:fast-check@^4";
import { sym } from "../../mod.ts";
import { SigilError } from "../../runtime/errors.ts";
import { assert } from "../util.ts";

function seedDoc(): unknown {
  return sym.nameScope(() => {
    const x = sym.var("data");
    const c = sym.Convolution(x, { kernel: [3, 3], num_filter: 2, pad: [1, 1] });
    const b = sym.BatchNorm(c, { fix_gamma: false });
    const p = sym.Pooling(sym.Activation(b, { act_type: "relu" }), {
      kernel: [2, 2],
      stride: [2, 2],
    });
    const parts = sym.SliceChannel(p, { num_outputs: 2, axis: 1 });
    const cat = sym.Concat(parts.get(1), parts.get(0), { dim: 1 });
    const r = sym.Reshape(cat, { shape: [0, -1] });
    return JSON.parse(sym.FullyConnected(r, { num_hidden: 3 }).toJSON());
  });
}

const anyJson = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -3, max: 40 }),
  fc.double(),
  fc.string({ maxLength: 6 }),
  fc.constantFrom("(3, 3)", "[]", "None", "True", "-1", "null", "Convolution", "exp", "1e999"),
  fc.array(fc.integer({ min: -2, max: 30 }), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
);

type Path = (string | number)[];

function paths(v: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...prefix, i], out));
  else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) paths(x, [...prefix, k], out);
  }
  return out;
}

function mutate(doc: unknown, path: Path, kind: number, value: unknown): unknown {
  const copy = structuredClone(doc);
  if (path.length === 0) return value;
  let parent = copy as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (kind === 0) parent[last] = value;
  else if (kind === 1) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else if (kind === 2 && Array.isArray(parent[last])) (parent[last] as unknown[]).push(value);
  else if (kind === 3 && typeof parent[last] === "number") {
    parent[last] = (parent[last] as number) + 1;
  } else parent[last] = value;
  return copy;
}

Deno.test("property: mutated symbol JSON gives a symbol or a typed error", () => {
  const base = seedDoc();
  const all = paths(base);
  let loaded = 0;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(all.length - 1), fc.nat(3), anyJson), {
        minLength: 1,
        maxLength: 3,
      }),
      (muts) => {
        let doc = base;
        for (const [p, kind, value] of muts) {
          const ps = paths(doc);
          doc = mutate(doc, ps[p % ps.length], kind, value);
        }
        const text = JSON.stringify(doc);
        try {
          const s = sym.loadJSON(text);
          loaded++;
          s.toJSON();
          try {
            s.inferShapePartial({ data: [1, 2, 6, 6] });
          } catch (e) {
            if (!(e instanceof SigilError)) throw e;
          }
        } catch (e) {
          if (!(e instanceof SigilError)) {
            throw new Error(`untyped error ${String(e)} for ${text}`);
          }
        }
      },
    ),
    { numRuns: 600, seed: 42 },
  );
  assert.ok(loaded > 0, "some mutants should still load");
});

Deno.test("property: arbitrary text gives a typed error", () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
      try {
        sym.loadJSON(text);
      } catch (e) {
        if (!(e instanceof SigilError)) throw e;
      }
    }),
    { numRuns: 500 },
  );
});

Deno.test("output sizes from attributes are checked before anything is allocated", async () => {
  const { nd } = await import("../../mod.ts");
  const { ShapeError } = await import("../../runtime/errors.ts");
  const big = sym.Reshape(sym.var("x"), { shape: [1, 100000, 100000], name: "r" });
  const bcast = sym.broadcast_add(sym.var("a"), sym.var("b"), { name: "add" });
  await assert.rejects(() => big.eval({ x: nd.zeros([1]) }), SigilError);
  await assert.rejects(
    () => bcast.eval({ a: nd.zeros([70000, 1]), b: nd.zeros([1, 70000]) }),
    (e: Error) => e instanceof ShapeError && /too many/.test(e.message),
  );
  assert.throws(() => nd.broadcast_add(nd.zeros([70000, 1]), nd.zeros([1, 70000])), ShapeError);
});
