/**
 * The differential graph fuzzer: every pass and the default pipeline, on random valid graphs
 * over every registered op, must keep the reference interpreter's outputs (and be idempotent
 * where it says so). Shrunk failures print as MXNet JSON.
 *
 * Run: `deno task fuzz --runs 10000 --seed 1` (CI runs a bounded number with a fixed seed in
 * tests/compiler/fuzz_test.ts); `deno task fuzz --help` prints the flags.
 */
import { allPasses, inferencePipeline } from "../compiler/passes/pipeline.ts";
import { checkPassPreservesSemantics } from "../testing/mod.ts";

/** What `deno task fuzz --help` prints. */
export const USAGE = `Usage: deno task fuzz [--runs N] [--seed N] [--max-nodes N] [--max-dim N]

Runs every graph pass and the inference pipeline on random valid graphs and checks that the
reference interpreter's outputs do not change. Failures shrink and print as MXNet JSON.

  --runs N       graphs per pass (default 1000)
  --seed N       fast-check seed (default: from the clock; printed, so a run can be replayed)
  --max-nodes N  the most ops per graph (default 8)
  --max-dim N    the largest dimension of a graph input (default 6; sizes stay <= 65536)
  -h, --help     print this and exit
`;

/** Parsed fuzzer flags, or `help` when usage was asked for. */
export type FuzzArgs =
  | { help: true }
  | { help: false; runs: number; seed: number; maxNodes: number; maxDim: number };

const FLAGS: Readonly<Record<string, "runs" | "seed" | "maxNodes" | "maxDim">> = {
  "--runs": "runs",
  "--seed": "seed",
  "--max-nodes": "maxNodes",
  "--max-dim": "maxDim",
};

/** Parses the fuzzer's command line; throws a RangeError naming a bad or unknown flag. */
export function parseFuzzArgs(args: readonly string[], now = Date.now()): FuzzArgs {
  const out = { runs: 1000, seed: now % 1_000_000, maxNodes: 8, maxDim: 6 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--help" || a === "-h") return { help: true };
    const key = FLAGS[a];
    if (key === undefined) throw new RangeError(`unknown flag '${a}'\n\n${USAGE}`);
    const v = Number(args[i + 1]);
    if (i + 1 >= args.length || !Number.isSafeInteger(v) || v < 0) {
      throw new RangeError(`${a} needs a non-negative integer, got '${args[i + 1] ?? ""}'`);
    }
    out[key] = v;
    i++;
  }
  if (out.maxNodes < 1 || out.maxDim < 1) {
    throw new RangeError("--max-nodes and --max-dim must be at least 1");
  }
  return { help: false, ...out };
}

function main(): void {
  let parsed: FuzzArgs;
  try {
    parsed = parseFuzzArgs(Deno.args);
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(2);
  }
  if (parsed.help) {
    console.log(USAGE);
    return;
  }
  const { runs, seed, maxNodes, maxDim } = parsed;
  console.log(
    `fuzzing ${allPasses().length} passes, ${runs} graphs each, seed ${seed}, up to ${maxNodes} ops, dims <= ${maxDim}`,
  );
  let failed = 0;
  for (const pass of [...allPasses(), inferencePipeline()]) {
    const t0 = performance.now();
    try {
      checkPassPreservesSemantics(pass, { numRuns: runs, seed, maxNodes, maxDim, maxSize: 65536 });
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
}

if (import.meta.main) main();
