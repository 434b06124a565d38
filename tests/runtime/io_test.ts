/**
 * Model IO from every kind of source: paths, `file:` and `http:` URLs, and bytes in every
 * view (a Node Buffer, a Uint8Array at a byte offset, a DataView, an ArrayBuffer); typed errors
 * naming the path; saves that never leave partial files.
 */
import { Buffer } from "node:buffer";
import { IOError, nd, nn, SigilError, sym, SymbolBlock, type Tensor } from "../../mod.ts";
import { readBytes, readText, toUint8Array, writeFiles } from "../../runtime/io.ts";
import {
  loadParams,
  loadParamsBytes,
  paramsToRecord,
  saveNpz,
  saveParamsV2,
} from "../../runtime/params.ts";
import { Tensor as TensorClass } from "../../runtime/tensor.ts";
import { assert } from "../util.ts";

function vals(t: Tensor): number[] {
  return Array.from(t.dataSync() as Float32Array);
}

/** Two arrays with different values, so reading from the wrong offset shows. */
function twoArrays() {
  return {
    "arg:a": nd.array([1, 2, 3, 4, 5, 6], { shape: [2, 3] }),
    "arg:b": nd.array([-7.5, 8.25, 9], { shape: [3] }),
  };
}

function assertSameValues(file: ReturnType<typeof loadParamsBytes>) {
  const rec = paramsToRecord(file);
  assert.deepStrictEqual(vals(rec["arg:a"]), [1, 2, 3, 4, 5, 6]);
  assert.deepStrictEqual(vals(rec["arg:b"]), [-7.5, 8.25, 9]);
}

/** `bytes` placed at `offset` inside a larger buffer filled with junk. */
function atOffset(bytes: Uint8Array, offset: number): Uint8Array {
  const big = new Uint8Array(offset + bytes.length + 13).fill(0xab);
  big.set(bytes, offset);
  return big.subarray(offset, offset + bytes.length);
}

for (const [format, save] of [["v2", saveParamsV2], ["npz", saveNpz]] as const) {
  Deno.test(`${format}: bytes in any view load the right values`, async () => {
    const bytes = save(twoArrays());
    // A Node Buffer: its slice is a view, and small ones share a pooled ArrayBuffer.
    const pooled = Buffer.from(bytes);
    assertSameValues(loadParamsBytes(pooled));
    // A Buffer cut out of a larger file read (as readFileSync then subarray gives).
    const inFile = Buffer.from(atOffset(bytes, 40).buffer).subarray(40, 40 + bytes.length);
    assert(inFile.byteOffset === 40);
    assertSameValues(loadParamsBytes(inFile));
    // A Uint8Array at a non-zero, unaligned byte offset.
    assertSameValues(loadParamsBytes(atOffset(bytes, 3)));
    // A DataView and an ArrayBuffer.
    const view = atOffset(bytes, 5);
    assertSameValues(loadParamsBytes(new DataView(view.buffer, 5, bytes.length)));
    assertSameValues(loadParamsBytes(bytes.slice().buffer));
    // Through the async loader and into a block.
    assertSameValues(await loadParams(inFile));
  });
}

Deno.test("a tensor over a Buffer keeps copies independent", () => {
  const buf = Buffer.from([1, 2, 3, 4]);
  const t = new TensorClass(buf.subarray(1, 3), [2], "uint8");
  const copy = t.dataSync();
  copy[0] = 99;
  assert.deepStrictEqual(Array.from(t.dataSync() as Uint8Array), [2, 3]);
});

Deno.test("toUint8Array covers exactly the view's bytes and rejects non-bytes", () => {
  const f = new Float32Array([1, 2, 3]).subarray(1);
  const u = toUint8Array(f);
  assert(u.constructor === Uint8Array && u.byteOffset === 4 && u.length === 8);
  assert.throws(() => toUint8Array("x" as unknown as Uint8Array), IOError);
  assert.throws(() => loadParamsBytes([1, 2] as unknown as Uint8Array), SigilError);
});

Deno.test("readers: missing file, directory and NUL byte are IOErrors naming the path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = `${dir}/missing-symbol.json`;
    const cases: [() => Promise<unknown>, string, RegExp][] = [
      [() => sym.load(missing), missing, /no such file/],
      [() => SymbolBlock.imports(missing, ["data"]), missing, /no such file/],
      [() => loadParams(`${dir}/none.params`), `${dir}/none.params`, /no such file/],
      [() => sym.load(dir), dir, /directory/],
      [() => loadParams(dir), dir, /directory/],
      [() => sym.load(`${dir}/a\0b`), `${dir}/a\0b`, /NUL/],
      [() => new nn.Dense(1).load(`${dir}/nothing`), `${dir}/nothing-model.json`, /no such/],
    ];
    for (const [f, path, pattern] of cases) {
      await assert.rejects(f, (e: unknown) => {
        assert(e instanceof IOError, `${e}`);
        assert.equal(e.path, path);
        assert.match(e.message, pattern);
        return true;
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writers: a missing directory or NUL byte is an IOError; no file is left", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = sym.Activation(sym.var("data"), { act_type: "relu" });
    await assert.rejects(() => s.save(`${dir}/no/dir/a.json`), IOError);
    await assert.rejects(() => s.save(`${dir}/a\0.json`), /NUL/);
    await assert.rejects(() => s.save(new URL("https://example.com/a.json")), IOError);
    // A pair where the second file cannot be written leaves neither file.
    await assert.rejects(
      () =>
        writeFiles([
          { target: `${dir}/first.json`, data: "{}" },
          { target: `${dir}/no/dir/second.params`, data: new Uint8Array(1) },
        ]),
      (e: unknown) => e instanceof IOError && e.path === `${dir}/no/dir/second.params`,
    );
    assert.deepStrictEqual(await Array.fromAsync(Deno.readDir(dir)), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("export validates the epoch before writing anything", async () => {
  const net = new nn.HybridSequential().add(new nn.Dense(2));
  net.initialize();
  net.hybridize();
  net.call(nd.ones([1, 3]));
  const dir = await Deno.makeTempDir();
  try {
    for (const epoch of [1e21, -1, 1.5, 10000, NaN]) {
      await assert.rejects(() => net.export(`${dir}/m`, { epoch }), /epoch/);
    }
    assert.deepStrictEqual(await Array.fromAsync(Deno.readDir(dir)), []);
    const [s, p] = await net.export(`${dir}/m`, { epoch: 9999 });
    assert.equal(s, `${dir}/m-symbol.json`);
    assert.equal(p, `${dir}/m-9999.params`);
    const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
    assert.deepStrictEqual(names, ["m-9999.params", "m-symbol.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every loader takes a path, a file: URL, an http: URL and bytes", async () => {
  const net = new nn.HybridSequential().add(new nn.Dense(3), new nn.Dense(2));
  net.initialize();
  net.hybridize();
  const x = nd.array([0.5, -1, 2, 0.25], { shape: [1, 4] });
  const want = vals(net.call(x));
  const dir = await Deno.makeTempDir();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const name = new URL(req.url).pathname.slice(1);
    try {
      return new Response(await Deno.readFile(`${dir}/${name}`));
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  try {
    const [symbolFile, paramsFile] = await net.export(`${dir}/net`);
    const http = `http://127.0.0.1:${server.addr.port}`;
    const { symbol, params } = net.exportBytes();
    const sources: [
      string,
      Parameters<typeof SymbolBlock.imports>[0],
      Uint8Array | string | URL,
    ][] = [
      ["paths", symbolFile, paramsFile!],
      ["file: URLs", new URL(`file://${symbolFile}`), new URL(`file://${paramsFile}`)],
      ["file: URL strings", `file://${symbolFile}`, `file://${paramsFile}`],
      ["http: URLs", new URL(`${http}/net-symbol.json`), new URL(`${http}/net-0000.params`)],
      ["http: URL strings", `${http}/net-symbol.json`, `${http}/net-0000.params`],
      ["bytes", new TextEncoder().encode(symbol), params!],
      ["Buffers", Buffer.from(symbol), Buffer.from(params!)],
    ];
    for (const [what, s, p] of sources) {
      const back = await SymbolBlock.imports(s, ["data"], p);
      const got = vals(back.call(x) as Tensor);
      assert.deepStrictEqual(got, want, what);
    }
    await assert.rejects(
      () => sym.load(`${http}/gone-symbol.json`),
      (e: unknown) =>
        e instanceof IOError && /404/.test(e.message) && e.path.endsWith("gone-symbol.json"),
    );
    assert.equal((await readText(`${http}/net-symbol.json`)).length, symbol.length);
    assert.equal((await readBytes(new URL(`file://${paramsFile}`))).length, params!.length);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("block save/load and saveParameters/loadParameters through bytes and URLs", async () => {
  const net = new nn.Dense(2, { inUnits: 3 });
  net.initialize();
  const x = nd.ones([2, 3]);
  const want = await net.call(x).data();
  const dir = await Deno.makeTempDir();
  try {
    await net.save(new URL(`file://${dir}/blk`));
    const back = new nn.Dense(2, { inUnits: 3 });
    back.initialize();
    await back.load(`${dir}/blk`);
    assert.deepStrictEqual(await back.call(x).data(), want);
    const again = new nn.Dense(2, { inUnits: 3 });
    again.initialize();
    await again.loadParameters(Buffer.from(net.parametersBytes({ format: "npz" })));
    assert.deepStrictEqual(await again.call(x).data(), want);
    await assert.rejects(
      () => again.loadParameters(new Uint8Array(3)),
      (e: unknown) => e instanceof SigilError && /given bytes/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
