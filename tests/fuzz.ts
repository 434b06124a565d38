/**
 * The differential graph fuzzer: every pass and the default pipeline, on random valid graphs
 * over every registered op, must keep the reference interpreter's outputs (and be idempotent
 * where it says so). Shrunk failures print as MXNet JSON.
 *
 * Run: `deno task fuzz --runs 10000 --seed 1` (CI runs a bounded number with a fixed seed in
 * tests/compiler/fuzz_test.ts).
 */
import { allPasses, inferencePipeline } from "../compiler/passes/pipeline.ts";
import { checkPassPreservesSemantics } from "../testing/mod.ts";

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(Deno.args[i + 1]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} needs a non-negative integer`);
  return v;
}

const runs = flag("runs", 1000);
const seed = flag("seed", Date.now() % 1_000_000);
const maxNodes = flag("max-nodes", 8);
console.log(
  `fuzzing ${allPasses().length} passes, ${runs} graphs each, seed ${seed}, up to ${maxNodes} ops`,
);
let failed = 0;
for (const pass of [...allPasses(), inferencePipeline()]) {
  const t0 = performance.now();
  try {
    checkPassPreservesSemantics(pass, { numRuns: runs, seed, maxNodes });
    console.log(
      `ok    ${pass.name.padEnd(40)} ${runs} graphs in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
    );
  } catch (e) {
    failed++;
    console.log(`FAIL  ${pass.name}\n${(e as Error).message}`);
  }
}
console.log(failed ? `${failed} passes failed` : "all passes preserved semantics");
if (failed) Deno.exit(1);
