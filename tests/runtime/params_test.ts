/**
 * MXNet parameter files: real fixtures from ../shared/reference/fixtures (third-party data,
 * read in place, never copied), round-trip properties, and hostile input.
 */
import fc from "npm:fast-check@^4";
import { sym } from "../../mod.ts";
import { arange } from "../../runtime/creation.ts";
import { type DType, dtypeInfo, DTYPES } from "../../runtime/dtype.ts";
import { FormatError, SigilError } from "../../runtime/errors.ts";
import {
  crc32,
  loadParams,
  loadParamsBytes,
  type ParamFile,
  paramsToRecord,
  saveNpy,
  saveNpz,
  saveParams,
  saveParamsV2,
} from "../../runtime/params.ts";
import { Tensor, tensorStorage } from "../../runtime/tensor.ts";
import { assert, assertThrowsError } from "../util.ts";

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
  console.warn(`params_test: ${ROOT.pathname} is absent; the real-file tests are skipped`);
}

// ---------------------------------------------------------------------------------------------
// Helpers

function bytesOf(t: Tensor): Uint8Array {
  const s = tensorStorage(t);
  return new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Asserts that `fn` throws a FormatError with a numeric offset, returning it. */
function assertFormatError(fn: () => unknown, pattern?: RegExp): FormatError {
  const e = assertThrowsError(fn, FormatError, pattern) as FormatError;
  assert.equal(typeof e.offset, "number", `no offset in: ${e.message}`);
  return e;
}

/** A little-endian byte builder for hand-made files. */
class Bytes {
  parts: number[] = [];
  u8(...v: number[]): this {
    this.parts.push(...v.map((x) => x & 0xff));
    return this;
  }
  u32(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    return this.u8(...b);
  }
  i32(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, true);
    return this.u8(...b);
  }
  u64(v: number | bigint): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    return this.u8(...b);
  }
  i64(v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, BigInt(v), true);
    return this.u8(...b);
  }
  f32(...v: number[]): this {
    for (const x of v) {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setFloat32(0, x, true);
      this.u8(...b);
    }
    return this;
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.u64(b.length).u8(...b);
  }
  get(): Uint8Array {
    return new Uint8Array(this.parts);
  }
}

const listHeader = (count: number | bigint) => new Bytes().u64(0x112).u64(0).u64(count);

/** A V2 record header up to and including the type flag (cpu context). */
function v2Record(b: Bytes, shape: number[], flag = 0, stype = 0): Bytes {
  b.u32(0xf993fac9).i32(stype).i32(shape.length);
  for (const d of shape) b.i64(d);
  return b.i32(1).i32(0).i32(flag);
}

/** A tensor whose storage is exactly `raw` (bool bytes must be 0/1). */
function tensorFromRaw(dtype: DType, shape: number[], raw: Uint8Array): Tensor {
  const buf = raw.slice().buffer;
  const n = raw.length / dtypeInfo(dtype).bytes;
  const storage = dtype === "float32"
    ? new Float32Array(buf, 0, n)
    : dtype === "float64"
    ? new Float64Array(buf, 0, n)
    : dtype === "float16" || dtype === "bfloat16"
    ? new Uint16Array(buf, 0, n)
    : dtype === "int8"
    ? new Int8Array(buf, 0, n)
    : dtype === "uint8" || dtype === "bool"
    ? new Uint8Array(buf, 0, n)
    : dtype === "int32"
    ? new Int32Array(buf, 0, n)
    : new BigInt64Array(buf, 0, n);
  return new Tensor(storage, shape, dtype);
}

function fixture(name: string): Promise<Uint8Array> {
  return Deno.readFile(new URL(name, ROOT));
}

// ---------------------------------------------------------------------------------------------
// Real files

const V2_FIXTURES = [
  {
    file: "params/gluon130-mlp-taxi-0004.params",
    count: 6,
    key: "arg:hybridsequential0_dense0_weight",
    shape: [9, 4],
  },
  {
    file: "params/gluon160-mnist-cnn-0035.params",
    count: 8,
    key: "arg:hybridsequential9_conv0_weight",
    shape: [10, 1, 5, 5],
  },
];

for (const { file, count, key, shape } of V2_FIXTURES) {
  Deno.test({
    name: `fixture ${file}: V2, loads and re-serializes byte-for-byte`,
    ignore: !HAVE,
    fn: async () => {
      const bytes = await fixture(file);
      const pf = loadParamsBytes(bytes, file);
      assert.equal(pf.format, "legacy");
      assert.equal(pf.arrayFormat, "v2");
      assert.equal(pf.arrays.length, count);
      assert.ok(pf.names);
      const rec = paramsToRecord(pf);
      assert.deepEqual(rec[key].shape, shape);
      assert.ok(pf.names.every((n) => /^(arg|aux):/.test(n)));
      const again = saveParamsV2(pf.names.map((n, i) => [n, pf.arrays[i]] as const));
      assert.ok(sameBytes(again, bytes), "re-serialized bytes differ");
    },
  });
}

for (
  const [name, count, inputs] of [
    ["det1", 13, { data: [1, 3, 12, 12] }],
    ["det2", 16, { data: [1, 3, 24, 24] }],
  ] as const
) {
  Deno.test({
    name: `fixture legacy-mtcnn-${name}: pre-V1, every array matches the symbol's shapes`,
    ignore: !HAVE,
    fn: async () => {
      const pf = loadParamsBytes(await fixture(`params/legacy-mtcnn-${name}-0001.params`));
      assert.equal(pf.arrayFormat, "pre-v1");
      assert.equal(pf.arrays.length, count);
      assert.ok(pf.names?.includes("arg:conv1_weight"));
      const net = await sym.load(new URL(`symbol-json/legacy-mtcnn-${name}-symbol.json`, ROOT));
      const { argShapes, auxShapes } = net.inferShape({ ...inputs });
      const args = new Map(net.listArguments().map((n, i) => [n, argShapes[i]]));
      const aux = new Map(net.listAuxiliaryStates().map((n, i) => [n, auxShapes[i]]));
      for (const [key, t] of Object.entries(paramsToRecord(pf))) {
        const m = /^(arg|aux):(.*)$/.exec(key);
        assert.ok(m, key);
        const expected = (m[1] === "arg" ? args : aux).get(m[2]);
        assert.ok(expected, `${key} is not in the symbol`);
        assert.deepEqual(t.shape, expected, key);
        assert.equal(t.dtype, "float32");
      }
    },
  });
}

Deno.test({
  name: "fixture legacy_ndarray.v0: six keyless float32 arange(128) arrays",
  ignore: !HAVE,
  fn: async () => {
    const pf = loadParamsBytes(await fixture("mxnet-repo/legacy_ndarray.v0"));
    assert.equal(pf.format, "legacy");
    assert.equal(pf.arrayFormat, "pre-v1");
    assert.equal(pf.names, null);
    assert.equal(pf.arrays.length, 6);
    const expected = bytesOf(arange(128));
    for (const t of pf.arrays) {
      assert.deepEqual(t.shape, [128]);
      assert.equal(t.dtype, "float32");
      assert.ok(sameBytes(bytesOf(t), expected));
    }
    assert.deepEqual(Object.keys(paramsToRecord(pf)), ["0", "1", "2", "3", "4", "5"]);
  },
});

Deno.test("MXNet's own V2 test record (gpu context) loads on the CPU", () => {
  const record = [
    "c9fa93f9",
    "00000000",
    "01000000",
    "0100000000000000",
    "02000000",
    "00000000",
    "00000000",
    "00000000",
  ].join("");
  const bytes = listHeader(1).u8(...record.match(/../g)!.map((h) => parseInt(h, 16))).u64(0)
    .get();
  const pf = loadParamsBytes(bytes);
  assert.equal(pf.arrays[0].device.toString(), "cpu(0)");
  assert.deepEqual(pf.arrays[0].toArray(), [0]);
});

// ---------------------------------------------------------------------------------------------
// Record layouts

Deno.test("V1, V3 (incl. a 0-d scalar) and pre-V1 records load; mixed files report each", () => {
  const b = listHeader(3);
  b.u32(0xf993fac8).u32(2).i64(1).i64(2).i32(1).i32(0).i32(0).f32(1, 2); // V1
  b.u32(0xf993faca).i32(0).i32(0).i32(1).i32(0).i32(0).f32(7); // V3 scalar
  b.u32(1).u32(3).i32(1).i32(0).i32(4).i32(5).i32(6).i32(-7); // pre-V1 int32
  b.u64(3).str("a").str("b").str("c");
  const pf = loadParamsBytes(b.get());
  assert.deepEqual(pf.arrayFormats, ["v1", "v3", "pre-v1"]);
  assert.equal(pf.arrayFormat, undefined);
  assert.deepEqual(pf.arrays.map((t) => t.shape), [[1, 2], [], [3]]);
  assert.deepEqual(pf.arrays.map((t) => t.toArray()), [[[1, 2]], 7, [5, 6, -7]]);
  assert.equal(pf.arrays[2].dtype, "int32");
});

Deno.test("none arrays (V2 ndim 0, V3 ndim -1 or an unknown dim, pre-V1 ndim 0) are rejected", () => {
  const cases = [
    listHeader(1).u32(0xf993fac9).i32(0).i32(0).u64(1).str("arg:none"),
    listHeader(1).u32(0xf993faca).i32(0).i32(-1).u64(1).str("arg:none"),
    listHeader(1).u32(0xf993faca).i32(0).i32(2).i64(3).i64(-1).u64(1).str("arg:none"),
    listHeader(1).u32(0).u64(1).str("arg:none"),
  ];
  for (const c of cases) {
    const e = assertFormatError(() => loadParamsBytes(c.get()), /none NDArray/);
    assert.match(e.message, /arg:none/);
    assert.equal(e.offset, 24);
  }
});

Deno.test("every sigil dtype round-trips through V2 and npz with MXNet's flags and descrs", () => {
  const descr: Record<DType, string> = {
    float32: "<f4",
    float64: "<f8",
    float16: "<f2",
    bfloat16: "<b2",
    int8: "|i1",
    uint8: "|u1",
    bool: "|b1",
    int32: "<i4",
    int64: "<i8",
  };
  for (const d of DTYPES) {
    const raw = new Uint8Array(6 * dtypeInfo(d).bytes).map((_, i) =>
      d === "bool" ? i % 2 : (i * 37 + 11) & 0xff
    );
    const src = tensorFromRaw(d, [2, 3], raw);
    const v2 = saveParamsV2({ x: src });
    // header 24, magic/stype/ndim 12, dims 16, context 8: then the type flag.
    assert.equal(new DataView(v2.buffer).getInt32(24 + 12 + 16 + 8, true), dtypeInfo(d).flag);
    const a = loadParamsBytes(v2).arrays[0];
    assert.equal(a.dtype, d);
    assert.ok(sameBytes(bytesOf(a), raw), d);
    const npy = saveNpy(src);
    const len = npy[8] | (npy[9] << 8);
    const header = new TextDecoder().decode(npy.subarray(10, 10 + len));
    const dict = `{'descr': '${descr[d]}', 'fortran_order': False, 'shape': (2, 3), }`;
    assert.equal(header, dict.padEnd(len - 1, " ") + "\n");
    assert.equal((10 + len) % 64, 0);
    const b = loadParamsBytes(saveNpz({ x: src })).arrays[0];
    assert.equal(b.dtype, d);
    assert.ok(sameBytes(bytesOf(b), raw), d);
  }
});

Deno.test(".npy headers: 1-d and 0-d shapes, exact 64-byte padding quirk", () => {
  const one = saveNpy(arange(3));
  assert.match(new TextDecoder().decode(one.subarray(10, 80)), /'shape': \(3,\), }/);
  const scalar = loadParamsBytes(saveNpy(tensorFromRaw("int32", [], new Uint8Array([5, 0, 0, 0]))));
  assert.equal(scalar.format, "npy");
  assert.equal(scalar.names, null);
  assert.deepEqual(scalar.arrays[0].shape, []);
  assert.equal(scalar.arrays[0].toArray(), 5);
  // Every header (whatever its shape text) pads to a multiple of 64 and ends in a newline.
  for (let n = 1; n < 200; n += 7) {
    const npy = saveNpy(arange(n));
    const len = npy[8] | (npy[9] << 8);
    assert.equal((10 + len) % 64, 0);
    assert.equal(npy[10 + len - 1], 0x0a);
  }
});

/** Builds a .npy by hand (version 1.0) from header text and data bytes. */
function npyBytes(header: string, data: Uint8Array, version = 1): Uint8Array {
  const h = new TextEncoder().encode(header);
  const pre = version === 1 ? 10 : 12;
  const out = new Uint8Array(pre + h.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const v = new DataView(out.buffer);
  if (version === 1) v.setUint16(8, h.length, true);
  else v.setUint32(8, h.length, true);
  out.set(h, pre);
  out.set(data, pre + h.length);
  return out;
}

Deno.test(".npy reading: Fortran order, big-endian, versions 2/3, structured bfloat16, py2 longs", () => {
  // Column-major (2, 3): memory 0 3 1 4 2 5 holds [[0, 1, 2], [3, 4, 5]].
  const f = new Uint8Array(new Int32Array([0, 3, 1, 4, 2, 5]).buffer);
  const t = loadParamsBytes(
    npyBytes("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }\n", f),
  ).arrays[0];
  assert.deepEqual(t.toArray(), [[0, 1, 2], [3, 4, 5]]);
  // 3-d Fortran order against a direct index computation.
  const fdata = new Float64Array(24);
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 3; j++) {
      for (let k = 0; k < 4; k++) fdata[i + 2 * j + 6 * k] = 100 * i + 10 * j + k;
    }
  }
  const t3 = loadParamsBytes(
    npyBytes(
      '{"descr": "<f8", "fortran_order": True, "shape": (2, 3, 4)}',
      new Uint8Array(fdata.buffer),
      2,
    ),
  ).arrays[0];
  const flat = (t3.toArray() as number[][][]).flat(2);
  assert.deepEqual(
    flat,
    Array.from({ length: 24 }, (_, c) => {
      const i = Math.floor(c / 12), j = Math.floor(c / 4) % 3, k = c % 4;
      return 100 * i + 10 * j + k;
    }),
  );
  // Big-endian float32 and int64.
  const be = new Uint8Array(8);
  new DataView(be.buffer).setFloat32(0, 1.5, false);
  new DataView(be.buffer).setFloat32(4, -2, false);
  assert.deepEqual(
    loadParamsBytes(npyBytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", be))
      .arrays[0].toArray(),
    [1.5, -2],
  );
  const be64 = new Uint8Array(8);
  new DataView(be64.buffer).setBigInt64(0, -(2n ** 62n), false);
  const i64 = loadParamsBytes(
    npyBytes("{'descr': '>i8', 'fortran_order': False, 'shape': (1L,), }", be64, 3),
  ).arrays[0];
  assert.equal((tensorStorage(i64) as BigInt64Array)[0], -(2n ** 62n));
  // MXNet's libzip-era bfloat16 descr.
  const bf = loadParamsBytes(
    npyBytes(
      "{'descr': [('bfloat16', '<u2')], 'fortran_order': False, 'shape': (1,), }",
      new Uint8Array([0x80, 0x3f]),
    ),
  ).arrays[0];
  assert.equal(bf.dtype, "bfloat16");
  assert.deepEqual(bf.toArray(), [1]);
});

// ---------------------------------------------------------------------------------------------
// Round-trip properties

const FLOAT32_SPECIAL = [0x7fc00000, 0x80000000, 0x7f800000, 0xff800000, 0, 0x00000001, 0x7fbfffff];
const FLOAT64_SPECIAL = [
  0x7ff8000000000000n,
  0x8000000000000000n,
  0x7ff0000000000000n,
  0xfff0000000000000n,
  0n,
  1n,
];
const HALF_SPECIAL = [0x7e00, 0x8000, 0x7c00, 0xfc00, 0, 1, 0x7f80, 0xff80, 0x7fc0];

/** Raw little-endian bytes of `n` elements of `dtype`, biased to special values. */
function rawArb(dtype: DType, n: number): fc.Arbitrary<Uint8Array> {
  const elem = (): fc.Arbitrary<Uint8Array> => {
    const b = (bytes: number, set: (v: DataView, x: never) => void) => (x: unknown) => {
      const out = new Uint8Array(bytes);
      set(new DataView(out.buffer), x as never);
      return out;
    };
    switch (dtype) {
      case "float32":
        return fc.oneof(
          fc.integer({ min: 0, max: 2 ** 32 - 1 }),
          fc.constantFrom(...FLOAT32_SPECIAL),
        )
          .map(b(4, (v, x: number) => v.setUint32(0, x, true)));
      case "float64":
        return fc.oneof(
          fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          fc.constantFrom(...FLOAT64_SPECIAL),
          fc.double().map((x) => {
            const d = new DataView(new ArrayBuffer(8));
            d.setFloat64(0, x, true);
            return d.getBigUint64(0, true);
          }),
        ).map(b(8, (v, x: bigint) => v.setBigUint64(0, x, true)));
      case "float16":
      case "bfloat16":
        return fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(...HALF_SPECIAL))
          .map(b(2, (v, x: number) => v.setUint16(0, x, true)));
      case "int8":
      case "uint8":
        return fc.integer({ min: 0, max: 255 }).map((x) => new Uint8Array([x]));
      case "bool":
        return fc.integer({ min: 0, max: 1 }).map((x) => new Uint8Array([x]));
      case "int32":
        return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })
          .map(b(4, (v, x: number) => v.setInt32(0, x, true)));
      case "int64":
        return fc.oneof(
          fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
          fc.constantFrom(-(2n ** 63n), 2n ** 63n - 1n, -1n, 0n),
        ).map(b(8, (v, x: bigint) => v.setBigInt64(0, x, true)));
    }
  };
  return fc.array(elem(), { minLength: n, maxLength: n }).map((parts) => {
    const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  });
}

function tensorArb(minRank: number): fc.Arbitrary<Tensor> {
  return fc.tuple(
    fc.constantFrom(...DTYPES),
    fc.array(fc.integer({ min: 0, max: 5 }), { minLength: minRank, maxLength: 4 }),
  ).chain(([dtype, shape]) =>
    rawArb(dtype, shape.reduce((a, d) => a * d, 1)).map((raw) => tensorFromRaw(dtype, shape, raw))
  );
}

const nameArb = fc.oneof(
  fc.string({ unit: "grapheme", minLength: 0, maxLength: 12 }),
  fc.constantFrom("arg:fc1_weight", "aux:bn.running_mean", "features.0.weight", "ünï:cödé.λ"),
);

function assertSameFile(pf: ParamFile, names: string[], tensors: Tensor[]): void {
  assert.deepEqual(pf.names, names);
  assert.equal(pf.arrays.length, tensors.length);
  pf.arrays.forEach((a, i) => {
    assert.equal(a.dtype, tensors[i].dtype);
    assert.deepEqual(a.shape, tensors[i].shape);
    assert.ok(sameBytes(bytesOf(a), bytesOf(tensors[i])), `array ${i} storage differs`);
  });
}

Deno.test("property: saveParamsV2 → load is identity (names, shapes, dtypes, bits)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(nameArb, tensorArb(1)), { minLength: 1, maxLength: 5 }),
      (entries) => {
        const pf = loadParamsBytes(saveParamsV2(entries));
        assert.equal(pf.arrayFormat, "v2");
        assertSameFile(pf, entries.map((e) => e[0]), entries.map((e) => e[1]));
      },
    ),
    { numRuns: 200 },
  );
});

/** Names saveNpz accepts: members an extractor keeps inside its folder (see hostile tests). */
const npzSafe = (n: string) =>
  !n.startsWith("/") && !n.includes("\\") && !n.includes("\u0000") && !/^[A-Za-z]:/.test(n) &&
  !n.split("/").some((part) => part === "." || part === "..");

Deno.test("property: saveNpz → load is identity, 0-d arrays included", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(
        fc.tuple(nameArb.filter(npzSafe), tensorArb(0)),
        { minLength: 1, maxLength: 5, selector: (e) => e[0] },
      ),
      fc.constantFrom(...DTYPES).chain((d) => rawArb(d, 1).map((raw) => tensorFromRaw(d, [], raw))),
      (entries, scalar) => {
        const all = [
          ...entries.filter((e) => e[0] !== "__scalar__"),
          ["__scalar__", scalar] as const,
        ];
        const pf = loadParamsBytes(saveNpz(all));
        assert.equal(pf.format, "npz");
        assertSameFile(pf, all.map((e) => e[0]), all.map((e) => e[1]));
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("keyless lists: V2 writes no keys, npz names members arr_<i>", () => {
  const ts = [arange(2), arange(3)];
  const v2 = loadParamsBytes(saveParamsV2(ts));
  assert.equal(v2.names, null);
  assert.deepEqual(Object.keys(paramsToRecord(v2)), ["0", "1"]);
  assert.deepEqual(loadParamsBytes(saveNpz(ts)).names, ["arr_0", "arr_1"]);
  assert.equal(loadParamsBytes(saveNpz([])).arrays.length, 0);
  assert.equal(loadParamsBytes(saveParamsV2([])).arrays.length, 0);
});

Deno.test("paramsToRecord: null prototype, duplicate names rejected", () => {
  const rec = paramsToRecord(loadParamsBytes(saveParamsV2([["__proto__", arange(1)]])));
  assert.equal(Object.getPrototypeOf(rec), null);
  assert.ok(rec["__proto__"] instanceof Tensor);
  const dup = loadParamsBytes(saveParamsV2([["a", arange(1)], ["a", arange(2)]]));
  assert.deepEqual(dup.names, ["a", "a"]);
  assertThrowsError(() => paramsToRecord(dup), SigilError, /"a" repeats/);
});

Deno.test("writers reject 0-d in V2, duplicate npz names and non-tensors", () => {
  const scalar = tensorFromRaw("float32", [], new Uint8Array(4));
  assertThrowsError(() => saveParamsV2({ s: scalar }), FormatError, /0-d.*saveNpz/);
  assertThrowsError(() => saveNpz([["a", arange(1)], ["a", arange(1)]]), SigilError, /repeats/);
  assertThrowsError(() => saveParamsV2({ a: 3 as unknown as Tensor }), SigilError, /not a Tensor/);
  assertThrowsError(
    () => saveNpz([["a"]] as unknown as [string, Tensor][]),
    SigilError,
    /not a \[name, Tensor\] pair/,
  );
});

Deno.test("npz layout: MXNet/miniz fields (flags 0x0808, zero times, data descriptors)", () => {
  const bytes = saveNpz({ w: arange(3) });
  const v = new DataView(bytes.buffer);
  assert.equal(v.getUint32(0, true), 0x04034b50);
  assert.equal(v.getUint16(4, true), 0); // version needed
  assert.equal(v.getUint16(6, true), 0x0808);
  assert.equal(v.getUint16(8, true), 0); // stored
  assert.equal(v.getUint32(10, true), 0); // time + date
  assert.equal(v.getUint32(14, true), 0); // crc deferred to the descriptor
  const nameLen = v.getUint16(26, true);
  assert.equal(new TextDecoder().decode(bytes.subarray(30, 30 + nameLen)), "w.npy");
  const size = 128 + 12;
  const desc = 30 + nameLen + size;
  assert.equal(v.getUint32(desc, true), 0x08074b50);
  assert.equal(v.getUint32(desc + 4, true), crc32(bytes.subarray(30 + nameLen, desc)));
  assert.equal(v.getUint32(desc + 8, true), size);
  const eocd = bytes.length - 22;
  assert.equal(v.getUint32(eocd, true), 0x06054b50);
  assert.equal(v.getUint32(eocd + 16, true), desc + 16);
});

// ---------------------------------------------------------------------------------------------
// Files

Deno.test("loadParams/saveParams: files, and IO errors name the path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await saveParams(`${dir}/a.params`, { "arg:w": arange(4) });
    await saveParams(`${dir}/a.npz`, { w: arange(4) }, { format: "npz" });
    assert.equal((await loadParams(`${dir}/a.params`)).format, "legacy");
    assert.equal((await loadParams(new URL(`file://${dir}/a.npz`))).format, "npz");
    await assert.rejects(
      () => loadParams(`${dir}/missing.params`),
      (e: unknown) => e instanceof SigilError && e.message.includes("missing.params"),
    );
    await assert.rejects(
      () => saveParams(`${dir}/no/such/dir.params`, {}),
      (e: unknown) => e instanceof SigilError && e.message.includes("dir.params"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Hostile input

const SMALL_V2 = saveParamsV2([
  ["arg:w", arange(3)],
  ["aux:m", tensorFromRaw("int64", [1], new Uint8Array(8))],
]);
const SMALL_PRE_V1 = listHeader(2).u32(2).u32(1).u32(2).i32(1).i32(0).i32(0).f32(1, 2)
  .u32(1).u32(1).i32(1).i32(0).i32(3).u8(9).u64(2).str("arg:a").str("aux:b").get();
const SMALL_NPZ = saveNpz({
  "arg:w": arange(3),
  s: tensorFromRaw("uint8", [], new Uint8Array([7])),
});

Deno.test("the small hand-made files load", () => {
  assert.equal(loadParamsBytes(SMALL_V2).arrays.length, 2);
  const pre = loadParamsBytes(SMALL_PRE_V1);
  assert.deepEqual(pre.arrays.map((t) => t.toArray()), [[[1, 2]], [9]]);
  assert.equal(loadParamsBytes(SMALL_NPZ).arrays.length, 2);
});

Deno.test("garbage and wrong magic", () => {
  const e = assertFormatError(
    () => loadParamsBytes(new TextEncoder().encode("hello, this is not a params file")),
    /not an MXNet parameter file/,
  );
  assert.equal(e.offset, 0);
  assertFormatError(() => loadParamsBytes(new Uint8Array(0)), /truncated/);
  assertFormatError(() => loadParamsBytes(new TextEncoder().encode("PK\x03\x04 not really")));
  assertFormatError(() => loadParamsBytes(new Uint8Array([0x93, 0x4e, 0x55, 0x4d])));
});

Deno.test("truncation at every byte of small V2, pre-V1 and npz files", () => {
  for (const file of [SMALL_V2, SMALL_PRE_V1, SMALL_NPZ]) {
    for (let n = 0; n < file.length; n++) {
      assertFormatError(() => loadParamsBytes(file.slice(0, n)));
    }
  }
});

Deno.test("trailing bytes after the keys are an error", () => {
  const bytes = new Uint8Array(SMALL_V2.length + 1);
  bytes.set(SMALL_V2);
  const e = assertFormatError(() => loadParamsBytes(bytes), /unexpected bytes/);
  assert.equal(e.offset, SMALL_V2.length);
});

Deno.test("ndim 33, negative and huge dims", () => {
  const shape33 = new Array(33).fill(1);
  let e = assertFormatError(
    () => loadParamsBytes(v2Record(listHeader(1), shape33).get()),
    /ndim 33 exceeds/,
  );
  assert.equal(e.offset, 32);
  assertFormatError(() => loadParamsBytes(listHeader(1).u32(33).u64(0).get()), /pre-V1 ndim/);
  e = assertFormatError(
    () => loadParamsBytes(v2Record(listHeader(1), [2, -3]).get()),
    /dimension 1 is negative/,
  );
  assert.equal(e.offset, 44);
  assertFormatError(() => loadParamsBytes(v2Record(listHeader(1), [2 ** 40]).get()), /too large/);
});

Deno.test("a dim whose byte size exceeds the file (nothing allocated)", () => {
  const bytes = v2Record(listHeader(1), [1_000_000, 1_000_000]).f32(1, 2, 3).u64(0).get();
  const e = assertFormatError(
    () => loadParamsBytes(bytes),
    /needs 4000000000000 bytes but only 20 remain/,
  );
  assert.equal(e.offset, 24 + 12 + 16 + 12);
  assertFormatError(
    () => loadParamsBytes(v2Record(listHeader(1), [4]).f32(1, 2, 3).get()),
    /array 0/,
  );
});

Deno.test("count 2^40 and 2^64-1 fail before allocating", () => {
  for (const c of [2n ** 40n, 2n ** 64n - 1n]) {
    const e = assertFormatError(() => loadParamsBytes(listHeader(c).u64(0).get()), /array count/);
    assert.equal(e.offset, 16);
  }
});

Deno.test("key count mismatch, key length past the end, invalid UTF-8 key", () => {
  const one = () => v2Record(listHeader(1), [1]).f32(1);
  let e = assertFormatError(
    () => loadParamsBytes(one().u64(2).str("a").str("b").get()),
    /key count 2/,
  );
  assert.equal(e.offset, 24 + 36);
  e = assertFormatError(
    () => loadParamsBytes(one().u64(1).u64(1000).u8(65).get()),
    /key 0: length 1000/,
  );
  assert.equal(e.offset, 24 + 36 + 8);
  assertFormatError(() => loadParamsBytes(one().u64(1).u64(2n ** 63n).get()), /past the end/);
  e = assertFormatError(() => loadParamsBytes(one().u64(1).u64(2).u8(0xff, 0xfe).get()), /UTF-8/);
  assert.equal(e.offset, 24 + 36 + 16);
});

Deno.test("unsupported dtype flags name the key; unknown flags fail at once", () => {
  const e = assertFormatError(
    () =>
      loadParamsBytes(v2Record(listHeader(1), [2], 8).u8(1, 2, 3, 4).u64(1).str("arg:short").get()),
    /"arg:short".*int16 \(type flag 8\)/,
  );
  assert.equal(e.offset, 24 + 12 + 8 + 8);
  for (
    const [flag, name, bytes] of [[9, "uint16", 2], [10, "uint32", 4], [11, "uint64", 8]] as const
  ) {
    const file = v2Record(listHeader(1), [1], flag).u8(...new Array(bytes).fill(0)).u64(
      0,
    );
    assertFormatError(() => loadParamsBytes(file.get()), new RegExp(`array 0 has dtype ${name}`));
  }
  assertFormatError(
    () => loadParamsBytes(v2Record(listHeader(1), [1], 99).u64(0).get()),
    /unknown type flag 99/,
  );
});

Deno.test("sparse storage types are rejected", () => {
  for (const stype of [1, 2]) {
    const e = assertFormatError(
      () => loadParamsBytes(v2Record(listHeader(1), [2], 0, stype).get()),
      /storage type \d.*only dense/,
    );
    assert.equal(e.offset, 28);
  }
});

function zipCentral(bytes: Uint8Array): number {
  return new DataView(bytes.buffer).getUint32(bytes.length - 22 + 16, true);
}

Deno.test("npz: compressed member, bad CRC, header that is not a dict, sparse dirs", () => {
  const deflated = SMALL_NPZ.slice();
  new DataView(deflated.buffer).setUint16(zipCentral(deflated) + 10, 8, true);
  assertFormatError(() => loadParamsBytes(deflated), /deflate.*savez_compressed/);
  const corrupt = SMALL_NPZ.slice();
  corrupt[30 + 9 + 128] ^= 1; // first data byte of "arg:w.npy"
  const e = assertFormatError(() => loadParamsBytes(corrupt), /CRC-32/);
  assert.equal(e.offset, 30 + 9);
  assertFormatError(
    () => loadParamsBytes(npyBytes("['descr', '<f4']", new Uint8Array())),
    /not a dict/,
  );
  assertFormatError(
    () => loadParamsBytes(npyBytes("{'descr': '<f4', 'fortran_order': False}", new Uint8Array())),
    /keys/,
  );
  assertFormatError(
    () =>
      loadParamsBytes(
        npyBytes("{'descr': '<i2', 'fortran_order': False, 'shape': ()}", new Uint8Array(2)),
      ),
    /'<i2' is not supported/,
  );
  assertFormatError(
    () => loadParamsBytes(npyBytes("[".repeat(5000), new Uint8Array())),
    /nests too deeply/,
  );
  assertFormatError(
    () =>
      loadParamsBytes(
        npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", new Uint8Array(8)),
      ),
    /needs 12 bytes/,
  );
  const sparse = saveNpz({
    "w/data": arange(2),
    "w/indices": arange(2),
    "w/shape": arange(2),
    "w/format": arange(1),
  });
  assertFormatError(() => loadParamsBytes(sparse), /sparse/);
});

interface ZipSpec {
  name: string;
  data: Uint8Array;
  /** Write the local header the way Python's zipfile does with force_zip64 (numpy.savez). */
  zip64Local?: boolean;
  /** Put the sizes and offset in a ZIP64 extra field of the central directory entry. */
  zip64Central?: boolean;
  /** Point the central entry at this local header (and write no local entry of its own). */
  localOffset?: number;
}

/** A hand-built ZIP of stored members (optionally with ZIP64 records), for reader tests. */
function buildZip(members: ZipSpec[], zip64End = false): Uint8Array {
  const b = new Bytes();
  const offsets: number[] = [];
  const u16 = (v: number) => b.u8(v & 0xff, v >> 8);
  for (const m of members) {
    offsets.push(b.parts.length);
    if (m.localOffset !== undefined) continue;
    const name = new TextEncoder().encode(m.name);
    b.u32(0x04034b50);
    u16(45);
    u16(0);
    u16(0);
    u16(0);
    u16(0x21);
    b.u32(crc32(m.data));
    b.u32(m.zip64Local ? 0xffffffff : m.data.length);
    b.u32(m.zip64Local ? 0xffffffff : m.data.length);
    u16(name.length);
    u16(m.zip64Local ? 20 : 0);
    b.u8(...name);
    if (m.zip64Local) {
      u16(1);
      u16(16);
      b.u64(m.data.length).u64(m.data.length);
    }
    b.u8(...m.data);
  }
  const cd = b.parts.length;
  members.forEach((m, i) => {
    const name = new TextEncoder().encode(m.name);
    b.u32(0x02014b50);
    u16(45);
    u16(45);
    u16(0);
    u16(0);
    u16(0);
    u16(0x21);
    b.u32(crc32(m.data));
    b.u32(m.zip64Central ? 0xffffffff : m.data.length);
    b.u32(m.zip64Central ? 0xffffffff : m.data.length);
    u16(name.length);
    u16(m.zip64Central ? 28 : 0);
    u16(0);
    u16(0);
    u16(0);
    b.u32(0);
    b.u32(m.zip64Central ? 0xffffffff : m.localOffset ?? offsets[i]);
    b.u8(...name);
    if (m.zip64Central) {
      u16(1);
      u16(24);
      b.u64(m.data.length).u64(m.data.length).u64(m.localOffset ?? offsets[i]);
    }
  });
  const cdSize = b.parts.length - cd;
  if (zip64End) {
    const rec = b.parts.length;
    b.u32(0x06064b50).u64(44);
    u16(45);
    u16(45);
    b.u32(0).u32(0).u64(members.length).u64(members.length).u64(cdSize).u64(cd);
    b.u32(0x07064b50).u32(0).u64(rec).u32(1);
  }
  b.u32(0x06054b50);
  u16(0);
  u16(0);
  u16(zip64End ? 0xffff : members.length);
  u16(zip64End ? 0xffff : members.length);
  b.u32(zip64End ? 0xffffffff : cdSize);
  b.u32(zip64End ? 0xffffffff : cd);
  u16(0);
  return b.get();
}

Deno.test("npz written like numpy.savez (ZIP64 extras and end records) loads", () => {
  const w = saveNpy(arange(4));
  const s = saveNpy(tensorFromRaw("int64", [], new Uint8Array(8).fill(0xff)));
  for (const zip64End of [false, true]) {
    const bytes = buildZip([
      { name: "w.npy", data: w, zip64Local: true },
      { name: "s.npy", data: s, zip64Central: true },
      { name: "readme.txt", data: new Uint8Array([1, 2]) },
    ], zip64End);
    const pf = loadParamsBytes(bytes);
    assert.deepEqual(pf.names, ["w", "s"]);
    assert.deepEqual(pf.arrays[0].toArray(), [0, 1, 2, 3]);
    assert.equal(pf.arrays[1].toArray(), -1);
  }
  // Members that overlap so as to claim more data than the file holds are refused.
  const big = saveNpy(arange(1000));
  const overlapping = buildZip([
    { name: "a.npy", data: big },
    { name: "b.npy", data: big, localOffset: 0 },
    { name: "c.npy", data: big, localOffset: 0 },
  ]);
  assertFormatError(() => loadParamsBytes(overlapping), /overlapping/);
});

// ---------------------------------------------------------------------------------------------
// Fuzz: truncations and byte flips give a load or a SigilError, nothing else.

function mutationArb(file: Uint8Array) {
  return fc.oneof(
    fc.integer({ min: 0, max: file.length }).map((n) => file.slice(0, n)),
    fc.array(
      fc.tuple(fc.integer({ min: 0, max: file.length - 1 }), fc.integer({ min: 1, max: 255 })),
      { minLength: 1, maxLength: 8 },
    ).map((flips) => {
      const out = file.slice();
      for (const [at, x] of flips) out[at] ^= x;
      return out;
    }),
  );
}

const FUZZ_FILES: [string, Uint8Array][] = [
  [
    "V2",
    saveParamsV2([
      ["arg:w", arange(6)],
      ["aux:b", tensorFromRaw("int64", [2, 1], new Uint8Array(16))],
      ["x", tensorFromRaw("float16", [3], new Uint8Array(6))],
    ]),
  ],
  ["pre-V1", SMALL_PRE_V1],
  [
    "npz",
    saveNpz({
      "arg:w": arange(6),
      "aux:b": tensorFromRaw("bool", [2, 2], new Uint8Array(4)),
      s: tensorFromRaw("float64", [], new Uint8Array(8)),
    }),
  ],
];

for (const [label, file] of FUZZ_FILES) {
  Deno.test(`property: mutated ${label} files load or raise a SigilError`, () => {
    fc.assert(
      fc.property(mutationArb(file), (bytes) => {
        try {
          loadParamsBytes(bytes);
        } catch (e) {
          if (!(e instanceof SigilError)) throw e;
          if (e instanceof FormatError) assert.equal(typeof e.offset, "number", e.message);
        }
      }),
      { numRuns: 400 },
    );
  });
}
