/**
 * Compressed `.npz` files (numpy.savez_compressed): archives built here with the platform's
 * CompressionStream("deflate-raw") load through `loadParams`, mixed with stored members; data
 * that inflates past its declared size, corrupt streams and bad CRCs are FormatErrors.
 */
import fc from "npm:fast-check@^4";
import { nd } from "../../mod.ts";
import { FormatError } from "../../runtime/errors.ts";
import { loadParams, loadParamsBytes, saveNpy } from "../../runtime/params.ts";
import { type Member, zip } from "./zip.ts";
import type { Tensor } from "../../runtime/tensor.ts";
import { assert } from "../util.ts";

function values(t: Tensor): number[] {
  return Array.from(t.dataSync() as ArrayLike<number>, Number);
}

Deno.test("deflated npz members load through loadParams; stored ones alongside", async () => {
  const a = nd.array([1, 2, 3, 4, 5, 6], { shape: [2, 3] });
  const b = nd.array(Array.from({ length: 1000 }, (_, i) => i), { dtype: "int32" });
  const bytes = await zip([
    { name: "a.npy", data: saveNpy(a), deflate: true },
    { name: "b.npy", data: saveNpy(b), deflate: false },
    { name: "arg:c.npy", data: saveNpy(nd.zeros([300])), deflate: true },
  ]);
  const file = await loadParams(bytes);
  assert.equal(file.format, "npz");
  assert.deepStrictEqual(file.names, ["a", "b", "arg:c"]);
  assert.deepStrictEqual(file.arrays[0].shape, [2, 3]);
  assert.deepStrictEqual(values(file.arrays[0]), [1, 2, 3, 4, 5, 6]);
  assert.deepStrictEqual(values(file.arrays[1]), values(b));
  assert.deepStrictEqual(values(file.arrays[2]), new Array(300).fill(0));
  // The synchronous reader names the async one.
  assert.throws(
    () => loadParamsBytes(bytes),
    (e: unknown) =>
      e instanceof FormatError && /savez_compressed/.test(e.message) &&
      /await loadParams/.test(e.message),
  );
});

Deno.test("property: any float32 array survives a deflated npz", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.float({ noNaN: true }), { minLength: 0, maxLength: 3000 }),
      fc.boolean(),
      async (xs, deflate) => {
        const t = nd.array(xs, { shape: [xs.length] });
        const file = await loadParams(await zip([{ name: "x.npy", data: saveNpy(t), deflate }]));
        assert.deepStrictEqual(values(file.arrays[0]), values(t));
      },
    ),
    { numRuns: 30 },
  );
});

Deno.test("deflated members: declared size, corrupt data and CRC are checked", async () => {
  const npy = saveNpy(nd.zeros([4096]));
  const cases: [Member, RegExp][] = [
    // Declares fewer bytes than the data inflates to: stopped at the declared size.
    [{ name: "x.npy", data: npy, deflate: true, size: 100 }, /more than its declared 100/],
    // Declares more than the data holds.
    [{ name: "x.npy", data: npy, deflate: true, size: npy.length + 5 }, /declares/],
    [{ name: "x.npy", data: npy, deflate: true, crc: 1234 }, /CRC-32/],
    [
      { name: "x.npy", data: npy, deflate: true, raw: new Uint8Array([0xff, 0xff, 0xff, 0xff]) },
      /corrupt deflate data|inflates to/,
    ],
    [
      { name: "x.npy", data: npy, deflate: true, size: 2 ** 31 },
      /exceeds the limit/,
    ],
  ];
  for (const [member, pattern] of cases) {
    const bytes = await zip([member]);
    await assert.rejects(
      () => loadParams(bytes),
      (e: unknown) => e instanceof FormatError && pattern.test(e.message) && e.offset !== undefined,
      String(pattern),
    );
  }
});

Deno.test("a deflate bomb stops at the declared size", async () => {
  // 16 MB of zeros deflates to about 16 KB; the header declares 1 KB.
  const zeros = new Uint8Array(16 * 1024 * 1024);
  const bytes = await zip([{ name: "x.npy", data: zeros, deflate: true, size: 1024 }]);
  assert(bytes.length < 100_000);
  await assert.rejects(() => loadParams(bytes), /more than its declared 1024/);
});
