/**
 * V3 NDArray records (MXNet's `nd.save` under NumPy shape semantics): written byte for byte as
 * MXNet's `NDArray::Save` lays them out, 0-d arrays included, and read back.
 */
import fc from "npm:fast-check@^4";
import { nd } from "../../mod.ts";
import type { DType } from "../../runtime/dtype.ts";
import { FormatError } from "../../runtime/errors.ts";
import {
  loadParams,
  loadParamsBytes,
  paramsBytes,
  saveParams,
  saveParamsV2,
  saveParamsV3,
} from "../../runtime/params.ts";
import type { Tensor } from "../../runtime/tensor.ts";
import { assert, assertThrowsError } from "../util.ts";

/** Little-endian bytes, built by hand from MXNet's layout. */
class LE {
  readonly parts: number[] = [];
  #put(n: number, set: (v: DataView) => void): this {
    const b = new Uint8Array(n);
    set(new DataView(b.buffer));
    this.parts.push(...b);
    return this;
  }
  u32 = (v: number) => this.#put(4, (d) => d.setUint32(0, v, true));
  i32 = (v: number) => this.#put(4, (d) => d.setInt32(0, v, true));
  u64 = (v: number) => this.#put(8, (d) => d.setBigUint64(0, BigInt(v), true));
  i64 = (v: number) => this.#put(8, (d) => d.setBigInt64(0, BigInt(v), true));
  f32 = (v: number) => this.#put(4, (d) => d.setFloat32(0, v, true));
  i8 = (v: number) => this.#put(1, (d) => d.setInt8(0, v));
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.parts.push(...b);
    return this;
  }
  bytes(): Uint8Array {
    return new Uint8Array(this.parts);
  }
}

Deno.test("saveParamsV3 writes MXNet's V3 records byte for byte, a 0-d scalar included", () => {
  // NDArray::Save with is_np_shape: magic 0xF993FACA, i32 stype 0, TShape::Save (i32 ndim, then
  // i64 dims; none for ndim 0), Context::Save (i32 dev_type 1 = cpu, i32 dev_id 0), i32 type
  // flag, raw data. The list: u64 0x112, u64 0, u64 count, records, u64 key count, keys.
  const want = new LE().u64(0x112).u64(0).u64(3);
  want.u32(0xf993faca).i32(0).i32(0).i32(1).i32(0).i32(0).f32(2.5); // float32 scalar
  want.u32(0xf993faca).i32(0).i32(2).i64(2).i64(1).i32(1).i32(0).i32(0).f32(1).f32(-2);
  want.u32(0xf993faca).i32(0).i32(0).i32(1).i32(0).i32(5).i8(-3); // int8 scalar
  want.u64(3).str("arg:scale").str("arg:w").str("aux:count");
  const got = saveParamsV3([
    ["arg:scale", nd.array(2.5)],
    ["arg:w", nd.array([[1], [-2]])],
    ["aux:count", nd.array(-3, { dtype: "int8" })],
  ]);
  assert.deepEqual(got, want.bytes());
  // Read back: shapes (the scalar as shape []), dtypes, values, the record layout.
  const file = loadParamsBytes(got);
  assert.equal(file.arrayFormat, "v3");
  assert.deepEqual(file.names, ["arg:scale", "arg:w", "aux:count"]);
  assert.deepEqual(file.arrays.map((t) => t.shape), [[], [2, 1], []]);
  assert.deepEqual(file.arrays.map((t) => t.dtype), ["float32", "float32", "int8"]);
  assert.deepEqual(file.arrays.map((t) => t.toArray()), [2.5, [[1], [-2]], -3]);
});

Deno.test("V3 and V2 records differ only in the magic when no array is 0-d", () => {
  const entries = {
    "arg:a": nd.array([0, 1, 2, 3, 4, 5], { shape: [2, 3] }),
    "arg:b": nd.ones([4]),
  };
  const v2 = saveParamsV2(entries), v3 = saveParamsV3(entries);
  assert.equal(v2.length, v3.length);
  const differ = [...v2.keys()].filter((i) => v2[i] !== v3[i]);
  // The first byte of each record's magic: 0xC9 (V2) against 0xCA (V3).
  assert.deepEqual(differ.map((i) => [v2[i], v3[i]]), [[0xc9, 0xca], [0xc9, 0xca]]);
});

Deno.test("V2 refuses 0-d arrays (ndim 0 is a none array there) and names the ways out", () => {
  assertThrowsError(
    () => saveParamsV2({ "arg:s": nd.array(1) }),
    FormatError,
    /'arg:s'|"arg:s".*0-d.*"v3" or "npz"/,
  );
  assertThrowsError(() => paramsBytes({ s: nd.array(1) }), FormatError, /0-d/);
  const v3 = loadParamsBytes(paramsBytes({ s: nd.array(1) }, { format: "v3" }));
  assert.equal(v3.arrays[0].ndim, 0);
});

const DTYPES_V3: readonly DType[] = ["float32", "float64", "float16", "int8", "uint8", "int32"];

Deno.test("property: saveParamsV3 → load is identity, 0-d arrays of every dtype included", () => {
  const tensor = fc.tuple(
    fc.constantFrom(...DTYPES_V3),
    fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 3 }),
  ).chain(([dtype, shape]) =>
    fc.array(fc.integer({ min: -100, max: 100 }), {
      minLength: shape.reduce((a, d) => a * d, 1),
      maxLength: shape.reduce((a, d) => a * d, 1),
    }).map((values) =>
      nd.array(values.map((v) => (dtype === "uint8" ? Math.abs(v) : v)), { shape, dtype })
    )
  );
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.tuple(fc.string({ maxLength: 8 }), tensor), {
        minLength: 1,
        maxLength: 5,
        selector: (e) => e[0],
      }),
      (entries) => {
        const file = loadParamsBytes(saveParamsV3(entries));
        assert.equal(file.arrayFormat, "v3");
        assert.deepEqual(file.names, entries.map((e) => e[0]));
        file.arrays.forEach((t: Tensor, i) => {
          const src = entries[i][1];
          assert.equal(t.dtype, src.dtype);
          assert.deepEqual(t.shape, src.shape);
          assert.deepEqual(t.toArray(), src.toArray());
        });
      },
    ),
    { numRuns: 100, seed: 7 },
  );
});

Deno.test("saveParams writes V3 files that loadParams reads", async () => {
  const path = await Deno.makeTempFile({ suffix: ".params" });
  try {
    await saveParams(path, { "arg:bias": nd.array(0.5, { dtype: "float64" }) }, { format: "v3" });
    const file = await loadParams(path);
    assert.equal(file.arrayFormat, "v3");
    assert.equal(file.arrays[0].dtype, "float64");
    assert.equal(file.arrays[0].toArray(), 0.5);
  } finally {
    await Deno.remove(path);
  }
});
