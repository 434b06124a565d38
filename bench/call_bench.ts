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

type Api = typeof current;
const before = Deno.env.get("SIGIL_BEFORE");
const apis: [string, Api][] = [["current", current]];
if (before) {
  const url = before.includes("://") ? before : new URL(`file://${before}`).href;
  apis.push(["before", await import(url) as Api]);
}

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
