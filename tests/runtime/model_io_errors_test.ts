/**
 * Every model reader and writer turns the file system's runtime errors (a missing file or
 * directory, a directory where a file should be, a NUL byte in a path) into an IOError naming
 * the path, and leaves no partial file behind; misused arguments are ArgumentErrors.
 */
import { ArgumentError, IOError, nd, nn, sym, SymbolBlock, type Tensor } from "../../mod.ts";
import { assert } from "../util.ts";

async function ioError(f: () => Promise<unknown>, path: string, pattern: RegExp): Promise<void> {
  try {
    await f();
  } catch (e) {
    assert.ok(e instanceof IOError, `expected an IOError, got ${e}`);
    assert.equal(e.path, path);
    assert.match(e.message, pattern);
    return;
  }
  throw new assert.AssertionError({ message: `no error for ${path}` });
}

function trainedNet(): nn.HybridSequential {
  const net = new nn.HybridSequential().add(new nn.Dense(2));
  net.initialize();
  net.hybridize();
  net.call(nd.ones([1, 3]));
  return net;
}

Deno.test("readers: sym.load, SymbolBlock.imports (symbol and parameter file), load", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const net = trainedNet();
    const [symbolFile, paramsFile] = await net.export(`${dir}/ok`);
    const nul = `${dir}/a\0b-symbol.json`;
    const cases: [() => Promise<unknown>, string, RegExp][] = [
      [() => sym.load(`${dir}/none-symbol.json`), `${dir}/none-symbol.json`, /no such file/],
      [() => sym.load(dir), dir, /is a directory/],
      [() => sym.load(nul), nul, /NUL byte/],
      [() => sym.load(`${symbolFile}/x`), `${symbolFile}/x`, /not a directory|no such file/],
      [() => SymbolBlock.imports(`${dir}/none`, ["data"]), `${dir}/none`, /no such file/],
      [() => SymbolBlock.imports(dir, "data"), dir, /is a directory/],
      [() => SymbolBlock.imports(nul, ["data"]), nul, /NUL byte/],
      [() => SymbolBlock.imports(symbolFile, ["data"], dir), dir, /is a directory/],
      [
        () => SymbolBlock.imports(symbolFile, ["data"], `${dir}/n.params`),
        `${dir}/n.params`,
        /no such/,
      ],
      [() => SymbolBlock.imports(symbolFile, ["data"], `${dir}/\0`), `${dir}/\0`, /NUL byte/],
      [() => net.load(`${dir}/none`), `${dir}/none-model.json`, /no such file/],
      [() => net.load(`${dir}/\0`), `${dir}/\0-model.json`, /NUL byte/],
      [() => net.loadParameters(dir), dir, /is a directory/],
    ];
    for (const [f, path, pattern] of cases) await ioError(f, path, pattern);
    // The files that exist still load.
    const back = await SymbolBlock.imports(symbolFile, ["data"], paramsFile);
    assert.deepEqual((back.call(nd.ones([1, 3])) as Tensor).shape, [1, 2]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writers: symbol.save, export, save and saveParameters leave nothing behind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const net = trainedNet();
    const s = sym.exp(sym.var("data"));
    await Deno.mkdir(`${dir}/taken-symbol.json`);
    await Deno.mkdir(`${dir}/taken-model.json`);
    await Deno.mkdir(`${dir}/taken.params`);
    const cases: [() => Promise<unknown>, string, RegExp][] = [
      [() => s.save(`${dir}/no/dir/a.json`), `${dir}/no/dir/a.json`, /no such file/],
      [() => s.save(`${dir}/taken-symbol.json`), `${dir}/taken-symbol.json`, /is a directory/],
      [() => s.save(`${dir}/a\0.json`), `${dir}/a\0.json`, /NUL byte/],
      [() => net.export(`${dir}/no/m`), `${dir}/no/m-symbol.json`, /no such file/],
      [() => net.export(`${dir}/taken`), `${dir}/taken-symbol.json`, /is a directory/],
      [() => net.export(`${dir}/m\0`), `${dir}/m\0-symbol.json`, /NUL byte/],
      [() => net.save(`${dir}/no/m`), `${dir}/no/m-model.json`, /no such file/],
      [() => net.save(`${dir}/taken`), `${dir}/taken-model.json`, /is a directory/],
      [() => net.save(`${dir}/m\0`), `${dir}/m\0-model.json`, /NUL byte/],
      [() => net.saveParameters(`${dir}/taken.params`), `${dir}/taken.params`, /is a directory/],
      [() => net.saveParameters(`${dir}/no/p.params`), `${dir}/no/p.params`, /no such file/],
    ];
    for (const [f, path, pattern] of cases) await ioError(f, path, pattern);
    const left = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
    assert.deepEqual(left, ["taken-model.json", "taken-symbol.json", "taken.params"]);
    for (const name of left) {
      assert.deepEqual(await Array.fromAsync(Deno.readDir(`${dir}/${name}`)), [], name);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("misused arguments of export, imports and a block call are ArgumentErrors", async () => {
  const net = trainedNet();
  const dir = await Deno.makeTempDir();
  try {
    const cases: [() => unknown, string, RegExp][] = [
      [() => net.export(new URL(`file://${dir}/m`) as never), "path", /got a URL/],
      [() => net.export(`${dir}/m`, { epoch: 1n as never }), "epoch", /got 1n/],
      [() => net.export(`${dir}/m`, { epoch: 1.5 }), "epoch", /from 0 to 9999, got 1\.5/],
      [
        () => SymbolBlock.imports(new TextEncoder().encode("{}"), 3 as never),
        "inputNames",
        /inputNames must be a name or an array of names, got 3/,
      ],
      [
        () => SymbolBlock.imports(new TextEncoder().encode("{}"), [1] as never),
        "inputNames",
        /got \[1\]/,
      ],
      [() => net.call(null as never), "inputs[0]", /input 0 must be a Tensor or Symbol, got null/],
      [() => net.call([1, 2] as never), "inputs[0]", /got an array/],
    ];
    for (const [f, argument, pattern] of cases) {
      try {
        await f();
        throw new assert.AssertionError({ message: `no error about ${argument}` });
      } catch (e) {
        assert.ok(e instanceof ArgumentError, `expected an ArgumentError, got ${e}`);
        assert.equal(e.argument, argument);
        assert.match(e.message, pattern);
      }
    }
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
