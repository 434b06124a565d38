/** The bounded CI run of the differential fuzzer (`deno task fuzz` runs long ones). */
import { allPasses, inferencePipeline } from "../../compiler/passes/pipeline.ts";
import { checkPassPreservesSemantics } from "../../testing/mod.ts";

for (const pass of [...allPasses(), inferencePipeline()]) {
  Deno.test(`fuzz: ${pass.name} keeps the interpreter's outputs on 300 random graphs`, () => {
    checkPassPreservesSemantics(pass, { numRuns: 300, seed: 20261127 });
  });
}
