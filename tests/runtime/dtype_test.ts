import fc from "npm:fast-check@^4";
import {
  bfloat16ToNumber,
  decode,
  dtypeFromFlag,
  dtypeInfo,
  DTYPES,
  encode,
  float16ToNumber,
  numberToBfloat16,
  numberToFloat16,
  roundTo,
} from "../../runtime/dtype.ts";
import { DTypeError } from "../../runtime/errors.ts";
import { assert, assertThrowsError } from "../util.ts";

Deno.test("MXNet type flags map both ways", () => {
  const flags: Record<string, number> = {
    float32: 0,
    float64: 1,
    float16: 2,
    uint8: 3,
    int32: 4,
    int8: 5,
    int64: 6,
    bool: 7,
    bfloat16: 12,
  };
  for (const d of DTYPES) {
    assert.equal(dtypeInfo(d).flag, flags[d]);
    assert.equal(dtypeFromFlag(flags[d]), d);
  }
  assertThrowsError(() => dtypeFromFlag(9), DTypeError, /flag 9/);
  assertThrowsError(() => dtypeInfo("float8"), DTypeError, /float8/);
});

Deno.test("float16 known values", () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65520, 0x7c00], // halfway to 2^16 rounds to even: infinity
    [65519.99, 0x7bff],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // halfway to the smallest subnormal rounds to even (zero)
    [3 * 2 ** -25, 0x0002],
    [2 ** -14, 0x0400], // smallest normal
    [Infinity, 0x7c00],
    [1 + 2 ** -11, 0x3c00], // tie rounds to even
    [1 + 3 * 2 ** -11, 0x3c02],
  ];
  for (const [x, bits] of cases) assert.equal(numberToFloat16(x), bits, `f16(${x})`);
  assert.ok(Number.isNaN(float16ToNumber(numberToFloat16(NaN))));
});

Deno.test("bfloat16 known values", () => {
  assert.equal(numberToBfloat16(1), 0x3f80);
  assert.equal(numberToBfloat16(-2), 0xc000);
  assert.equal(numberToBfloat16(1 + 2 ** -8), 0x3f80); // tie to even
  assert.equal(numberToBfloat16(1 + 3 * 2 ** -8), 0x3f82);
  assert.equal(bfloat16ToNumber(0x7f80), Infinity);
});

Deno.test("16-bit floats: every pattern decodes and re-encodes to itself", () => {
  for (let bits = 0; bits < 65536; bits++) {
    const h = float16ToNumber(bits);
    if (!Number.isNaN(h)) assert.equal(numberToFloat16(h), bits);
    const b = bfloat16ToNumber(bits);
    if (!Number.isNaN(b)) assert.equal(numberToBfloat16(b), bits);
  }
});

Deno.test("property: float16 rounding is to the nearest representable value", () => {
  fc.assert(
    fc.property(fc.double({ min: -70000, max: 70000, noNaN: true }), (x) => {
      const r = float16ToNumber(numberToFloat16(x));
      if (!Number.isFinite(r)) return Math.abs(x) >= 65520;
      // No float16 value is closer: check the neighbours of the result.
      const bits = numberToFloat16(r);
      for (const nb of [bits - 1, bits + 1]) {
        const v = float16ToNumber(nb & 0xffff);
        if (Number.isFinite(v) && Math.sign(v) === Math.sign(r)) {
          if (Math.abs(v - x) < Math.abs(r - x)) return false;
        }
      }
      return true;
    }),
    { numRuns: 2000 },
  );
});

Deno.test("property: float32 through bfloat16 matches truncating bits with RNE", () => {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  fc.assert(
    fc.property(fc.float({ noNaN: true, noDefaultInfinity: true }), (x) => {
      f[0] = x;
      const bits = u[0];
      const lsb = (bits >>> 16) & 1;
      const rounded = ((bits + 0x7fff + lsb) >>> 16) & 0xffff;
      return numberToBfloat16(f[0]) === rounded;
    }),
    { numRuns: 2000 },
  );
});

Deno.test("integer and bool conversions truncate and wrap as C casts do", () => {
  assert.equal(roundTo("int32", -2.7), -2);
  assert.equal(roundTo("int8", 130), -126);
  assert.equal(roundTo("uint8", 257), 1);
  assert.equal(roundTo("bool", 0.1), 1);
  assert.equal(roundTo("bool", NaN), 0);
  assert.deepEqual(Array.from(decode("int64", encode("int64", [3.9, -3.9, NaN]))), [3, -3, 0]);
  assert.deepEqual(Array.from(decode("bool", encode("bool", [0, 2, -1]))), [0, 1, 1]);
});
