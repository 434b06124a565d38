/** The bounded CI run of the differential fuzzer (`deno task fuzz` runs long ones). */
import { allPasses, inferencePipeline } from "../../compiler/passes/pipeline.ts";
import { checkPassPreservesSemantics } from "../../testing/mod.ts";
import { assert } from "../util.ts";

for (const pass of [...allPasses(), inferencePipeline()]) {
  Deno.test(`fuzz: ${pass.name} keeps the interpreter's outputs on 300 random graphs`, () => {
    checkPassPreservesSemantics(pass, { numRuns: 300, seed: 20261127 });
  });
}

Deno.test("fuzz --help prints usage and starts no run; bad flags are named", async () => {
  const { parseFuzzArgs, USAGE } = await import("../fuzz.ts");
  assert.deepEqual(parseFuzzArgs(["--help"]), { help: true });
  assert.deepEqual(parseFuzzArgs(["--runs", "5", "-h"]), { help: true });
  assert.deepEqual(parseFuzzArgs(["--runs", "5", "--max-dim", "40"], 7), {
    help: false,
    runs: 5,
    seed: 7,
    maxNodes: 8,
    maxDim: 40,
  });
  assert.throws(() => parseFuzzArgs(["--rusn", "5"]), /unknown flag '--rusn'/);
  assert.throws(() => parseFuzzArgs(["--runs"]), /--runs needs a non-negative integer/);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../fuzz.ts", import.meta.url).pathname, "--help"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0);
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(text.startsWith("Usage: deno task fuzz"), text);
  assert.ok(!text.includes("fuzzing"), "a run started");
  assert.ok(USAGE.includes("--max-dim"));
});
