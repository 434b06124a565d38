/**
 * Names that are keys of `Object.prototype` with the `__proto__` accessor Node and browsers
 * have: Deno removes it unless run with `--unsafe-proto`, so tests/platforms/proto_names_check.mjs
 * runs in a child Deno with that flag (platforms_test.ts runs it in Node on the bundle).
 */
import { assert } from "../util.ts";

Deno.test("Object.prototype names survive files, inference, engines and params under --unsafe-proto", async () => {
  const script = new URL("../platforms/proto_names_check.mjs", import.meta.url).pathname;
  const mod = new URL("../../mod.ts", import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unsafe-proto", "--no-lock", script, mod],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(240_000),
  }).output();
  const out = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, out);
  const report = JSON.parse(out.trim().split("\n").filter((l) => l.startsWith("{")).pop()!);
  assert.deepEqual(
    [report.symbol, report.params, report.block, report.ok],
    [true, true, true, true],
  );
});
