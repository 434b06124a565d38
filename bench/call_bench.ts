/**
 * The per-call cost of a hybridized block: a 9-layer MLP (64 units, batch 1) whose compiled
 * program runs in microseconds, so what a call adds around it (walking the block tree for the
 * cached graph's key and for deferred shapes, binding, wrapping outputs) shows. Set
 * `SIGIL_BEFORE` to another checkout's mod.ts (a path or URL) to bench it in the same run:
 *
 *   git worktree add --detach /tmp/before <commit>
 *   SIGIL_BEFORE=/tmp/before/mod.ts deno bench -A bench/call_bench.ts
 */
import * as current from "../mod.ts";
import { buildsToCompare } from "./before.ts";

const apis = await buildsToCompare(current);

for (const [label, { nd, nn, setDefaultThreads }] of apis) {
  setDefaultThreads(1);
  const net = new nn.HybridSequential();
  for (let i = 0; i < 8; i++) net.add(new nn.Dense(64, { activation: "relu" }));
  net.add(new nn.Dense(10));
  net.initialize({ seed: 1 });
  const x = nd.ones([1, 32]);
  net.hybridize();
  net.call(x);
  Deno.bench(
    { name: `${label}: hybridized MLP call`, group: "call", baseline: label === "current" },
    () => {
      net.call(x);
    },
  );
}
