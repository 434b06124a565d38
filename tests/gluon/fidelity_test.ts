// MXNet Gluon behaviour the API follows, each case stating what MXNet does.
import { Block, loadParams, nd, nn, Parameter, SigilError, type Value } from "../../mod.ts";
import { FormatError } from "../../runtime/errors.ts";
import { assert, assertThrowsError } from "../util.ts";

/** Silences console.warn while `fn` runs and returns what it would have printed. */
export function captureWarnings<T>(fn: () => T): { result: T; warnings: string[] } {
  const saved = console.warn;
  const warnings: string[] = [];
  console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(" "));
  try {
    return { result: fn(), warnings };
  } finally {
    console.warn = saved;
  }
}

class Scaled extends Block {
  scale = new Parameter("scale", { shape: [], init: "ones" });
  dense = new nn.Dense(2, { inUnits: 3 });
  forward(x: Value): Value {
    return nd.broadcast_mul(this.dense.call(x) as never, this.scale.value() as never);
  }
}

Deno.test("0-d parameters: saveParameters writes V3 records (MXNet's np-shape nd.save) and they load back", async () => {
  const net = new Scaled();
  net.initialize({ seed: 1 });
  // V2 cannot hold them: ndim 0 means "none" there, as in MXNet without np shape.
  assertThrowsError(() => net.parametersBytes(), FormatError, /0-d.*"v3" or "npz"/);
  const bytes = net.parametersBytes({ format: "v3" });
  const file = await loadParams(bytes);
  assert.equal(file.arrayFormat, "v3");
  assert.deepEqual(file.names, ["scale", "dense.weight", "dense.bias"]);
  assert.deepEqual(file.arrays[0].shape, []);
  const back = new Scaled();
  back.initialize({ seed: 2 });
  await back.loadParameters(bytes);
  assert.equal(back.scale.data().toArray(), 1);
  assert.deepEqual(back.dense.weight.data().toArray(), net.dense.weight.data().toArray());
  assertThrowsError(
    () => net.parametersBytes({ format: "v4" as never }),
    SigilError,
    /"v2", "v3" or "npz"/,
  );
});
