/**
 * Eager `nd.*` calls on small tensors: the per-call cost of validating, choosing the engine and
 * running the reference kernel. Set `SIGIL_BEFORE` to another checkout's mod.ts (a path or URL)
 * to bench it in the same run, e.g. the commit before a change:
 *
 *   git worktree add --detach /tmp/before <commit>
 *   SIGIL_BEFORE=/tmp/before/mod.ts deno bench -A bench/eager_bench.ts
 */
import * as current from "../mod.ts";
import { buildsToCompare } from "./before.ts";

const apis = await buildsToCompare(current);

for (const [label, { nd }] of apis) {
  const small = nd.random.uniform(-1, 1, [8, 8], { seed: 1 });
  const row = nd.random.uniform(-1, 1, [1, 64], { seed: 2 });
  const w = nd.random.uniform(-1, 1, [16, 64], { seed: 3 });
  const b = nd.zeros([16]);
  const vec = nd.random.uniform(-1, 1, [256], { seed: 4 });
  Deno.bench({ name: `${label}: exp 8x8`, group: "exp", baseline: label === "current" }, () => {
    nd.exp(small);
  });
  Deno.bench(
    { name: `${label}: broadcast_add 8x8`, group: "add", baseline: label === "current" },
    () => {
      nd.broadcast_add(small, small);
    },
  );
  Deno.bench({
    name: `${label}: FullyConnected 1x64->16`,
    group: "fc",
    baseline: label === "current",
  }, () => {
    nd.FullyConnected(row, w, b, { num_hidden: 16 });
  });
  Deno.bench(
    { name: `${label}: relu+sum 256`, group: "chain", baseline: label === "current" },
    () => {
      nd.sum(nd.relu(vec));
    },
  );
}
