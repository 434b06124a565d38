/**
 * Hostile and awkward parameter files and names: a legacy list of millions of tiny records
 * (validated while streaming), names that would not survive a save and load (lone surrogates,
 * `arg:`/`aux:` prefixes), `.npz` member names that would escape their folder, and names that
 * are keys of `Object.prototype`. Each ends in a typed error or in what was saved.
 */
import fc from "npm:fast-check@^4";
import { nd, sym, SymbolBlock, type Tensor } from "../../mod.ts";
import { FormatError } from "../../runtime/errors.ts";
import {
  loadParamsBytes,
  MAX_PARAM_ARRAYS,
  paramsToRecord,
  saveNpz,
  saveParamsV2,
} from "../../runtime/params.ts";
import { assert, assertThrowsError, PROTO_NAMES, withProtoAccessor } from "../util.ts";

/** A legacy list of `count` pre-V1 none records (4 bytes each), keyed `k<i>` when `keyed`. */
export function noneRecords(count: number, keyed: boolean): Uint8Array {
  const keys = keyed ? Array.from({ length: count }, (_, i) => `k${i}`) : [];
  const keyBytes = keys.reduce((n, k) => n + 8 + k.length, 0);
  const out = new Uint8Array(24 + 4 * count + 8 + keyBytes);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, 0x112n, true);
  v.setBigUint64(16, BigInt(count), true);
  let pos = 24 + 4 * count; // the records are u32 ndim 0: zeros already
  v.setBigUint64(pos, BigInt(keys.length), true);
  pos += 8;
  for (const k of keys) {
    v.setBigUint64(pos, BigInt(k.length), true);
    pos += 8;
    for (let i = 0; i < k.length; i++) out[pos++] = k.charCodeAt(i);
  }
  return out;
}

Deno.test("a legacy list of many none records fails naming the first, without per-record objects", () => {
  const e = assertThrowsError(
    () => loadParamsBytes(noneRecords(MAX_PARAM_ARRAYS, true)),
    FormatError,
    /array 0 \("k0"\) is a none NDArray/,
  );
  assert.equal((e as FormatError).offset, 24);
  assertThrowsError(
    () => loadParamsBytes(noneRecords(MAX_PARAM_ARRAYS, false)),
    FormatError,
    /array 0 is/,
  );
  // More arrays than any checkpoint holds: refused at the count, before reading a record.
  const many = assertThrowsError(
    () => loadParamsBytes(noneRecords(MAX_PARAM_ARRAYS + 1, false)),
    FormatError,
    /array count 65537 is over the limit of 65536/,
  );
  assert.equal((many as FormatError).offset, 16);
  // A good array first, then a none one: the error names the second, by its key.
  const good = saveParamsV2([["a", nd.ones([2])]]);
  const mixed = new Uint8Array(good.length + 4 + 9);
  mixed.set(good.subarray(0, good.length - 8 - 9)); // records, without the key section
  const view = new DataView(mixed.buffer);
  view.setBigUint64(16, 2n, true);
  let pos = good.length - 8 - 9 + 4; // one pre-V1 none record (u32 0)
  view.setBigUint64(pos, 2n, true);
  pos += 8;
  for (const k of ["a", "b"]) {
    view.setBigUint64(pos, 1n, true);
    mixed[pos + 8] = k.charCodeAt(0);
    pos += 9;
  }
  assertThrowsError(
    () => loadParamsBytes(mixed.subarray(0, pos)),
    FormatError,
    /array 1 \("b"\) is a none NDArray/,
  );
});

Deno.test("names with lone surrogates are refused when saving: UTF-8 cannot carry them", () => {
  for (const name of ["w\ud800", "\udc00", "a\udbffb"]) {
    assertThrowsError(() => saveParamsV2([[name, nd.ones([1])]]), FormatError, /lone UTF-16/);
    assertThrowsError(() => saveNpz([[name, nd.ones([1])]]), FormatError, /lone UTF-16/);
  }
});

Deno.test("npz member names that an extractor would place outside its folder are refused", () => {
  for (const name of ["../x", "a/../../b", "/abs", "C:x", "a\\b", "./a", "a/.", "n\u0000ul"]) {
    assertThrowsError(() => saveNpz({ [name]: nd.ones([1]) }), FormatError, /outside/);
  }
  // Ordinary folders inside the archive are fine and load back as saved.
  const file = loadParamsBytes(saveNpz({ "a/b.c": nd.ones([1]), "..x": nd.ones([1]) }));
  assert.deepEqual(file.names, ["a/b.c", "..x"]);
});

const wellFormedName = fc.string({ unit: "grapheme", maxLength: 8 }).filter((n) =>
  !/^[A-Za-z]:/.test(n) && !n.includes("\\") && !n.includes("\u0000") && !n.startsWith("/") &&
  !n.split("/").some((p) => p === "." || p === "..")
);

Deno.test("property: any well-formed name round-trips through V2 and npz", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.oneof(wellFormedName, fc.constantFrom(...PROTO_NAMES, "arg:w")), {
        minLength: 1,
        maxLength: 4,
      }),
      (names) => {
        const entries = names.map((n, i): [string, Tensor] => [
          n,
          nd.full([1], i),
        ]);
        for (const bytes of [saveParamsV2(entries), saveNpz(entries)]) {
          const rec: Record<string, Tensor> = paramsToRecord(loadParamsBytes(bytes));
          assert.deepEqual(Object.keys(rec), names);
          names.forEach((n, i) => assert.equal((rec[n].toArray() as number[])[0], i));
        }
      },
    ),
    { numRuns: 100 },
  );
});

Deno.test("SymbolBlock: arg:/aux: and Object.prototype names survive saveParameters (Node semantics)", async () => {
  await withProtoAccessor(async () => {
    const names = ["arg:w", "aux:b", ...PROTO_NAMES];
    const x = sym.var("data");
    const terms = names.map((n) => sym.broadcast_mul(x, sym.var(n, { shape: [1] })));
    let y = terms[0];
    for (const t of terms.slice(1)) y = sym.broadcast_add(y, t);
    const net = new SymbolBlock(y, x);
    net.initialize();
    const params = net.collectParams();
    assert.deepEqual(Object.keys(params), names);
    names.forEach((n, i) => params[n].setData(nd.full([1], i + 1)));
    const out = await (net.call(nd.ones([2])) as Tensor).data();
    assert.deepEqual([...out], [21, 21]);
    const bytes = net.parametersBytes();
    const back = new SymbolBlock(y, x);
    back.initialize();
    await back.loadParameters(bytes);
    names.forEach((n, i) =>
      assert.equal((back.collectParams()[n].data().toArray() as number[])[0], i + 1)
    );
    // And through export / imports, as MXNet names them (arg: in front of every name).
    const again = await SymbolBlock.imports(
      new TextEncoder().encode(y.toJSON()),
      "data",
      paramsBytesOf(back),
    );
    assert.deepEqual([...await (again.call(nd.ones([2])) as Tensor).data()], [21, 21]);
  });
});

function paramsBytesOf(b: SymbolBlock): Uint8Array {
  const entries: [string, Tensor][] = Object.entries(b.collectParams()).map((
    [n, p],
  ) => [`arg:${n}`, p.data()]);
  return saveParamsV2(entries);
}
