/**
 * Peer comparison for the WASM backend (issue 5): onnxruntime-web (wasm, 1 and 2 threads),
 * TensorFlow.js's wasm backend (1 thread) and onnxruntime-node (native, 1 and 2 threads) on
 * sgemm 256/512/1024, conv 1×64×56×56 k3 pad 1, relu(x·a+b) over 1M floats and ResNet-18
 * batch 1 at 224×224. One `deno bench` group per config, one entry per peer, so sigil's entries
 * can join the same groups (see bench/peers/harness.ts).
 *
 * Run: `deno bench -A bench/peers_bench.ts` (part of `deno task bench`). Every peer's answer is
 * checked once before timing; a peer that cannot load is skipped with the reason printed. At exit
 * the harness prints a min/median/max table of its own per-call timings.
 *
 * Environment: `PEERS_BENCH_MS` (measuring time per entry, default 2000) and
 * `PEERS_BENCH_ONLY` (comma-separated substrings of `group / entry` to keep, e.g.
 * `sgemm1024,/ tfjs`).
 */

import { conv, eltwise, resnet18, resnet18Weights, sgemm } from "./peers/configs.ts";
import { type Entry, prepareEntry, registerEntry, summaryTable } from "./peers/harness.ts";
import type { Peer } from "./peers/peer.ts";

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

const targetMs = Number(env("PEERS_BENCH_MS") ?? "2000");
const only = env("PEERS_BENCH_ONLY")?.split(",").filter((s) => s.length > 0);
const wanted = (text: string) => !only || only.some((s) => text.includes(s));

const net = resnet18Weights();
const configs = [sgemm(256), sgemm(512), sgemm(1024), conv(), eltwise(), resnet18(net)];

const notes: string[] = [];
const peers: Peer[] = [];

async function load(label: string, make: () => Promise<Peer>): Promise<void> {
  if (!configs.some((c) => wanted(`${c.group} / ${label}`))) return;
  try {
    const peer = await make();
    peers.push(peer);
    console.log(`peers: loaded ${peer.name}${peer.version ? ` (${peer.version})` : ""}`);
  } catch (e) {
    const msg = `skipped ${label}: ${e instanceof Error ? e.message : String(e)}`;
    notes.push(msg);
    console.warn(`peers: ${msg}`);
  }
}

await load("sigil wasm t1", async () => (await import("./peers/sigil.ts")).sigilWasm(net, 1));
await load("sigil wasm t2", async () => (await import("./peers/sigil.ts")).sigilWasm(net, 2));
await load("ort-web wasm t1", async () => (await import("./peers/ort_web.ts")).ortWeb(1));
await load("ort-web wasm t2", async () => {
  const peer = await (await import("./peers/ort_web.ts")).ortWebInWorker(2);
  notes.push(
    `ort-web wasm t2 runs in a Deno Worker: one request/reply round trip costs ${
      (peer.roundTripMs * 1000).toFixed(0)
    } µs (median), included in its times`,
  );
  return peer;
});
await load("tfjs wasm t1", async () => (await import("./peers/tfjs_wasm.ts")).tfjsWasm(net));
await load("ort-node native t1", async () => (await import("./peers/ort_node.ts")).ortNode(1));
await load("ort-node native t2", async () => (await import("./peers/ort_node.ts")).ortNode(2));

const entries: Entry[] = [];
for (const cfg of configs) {
  for (const peer of peers) {
    if (!wanted(`${cfg.group} / ${peer.name}`)) continue;
    const reason = peer.unsupported?.(cfg);
    if (reason) {
      notes.push(`${peer.name} / ${cfg.group}: not run (${reason})`);
      continue;
    }
    try {
      const entry = await prepareEntry(cfg, peer.name, await peer.prepare(cfg), targetMs);
      console.log(`peers: ${cfg.group} / ${peer.name}: ${entry.check}`);
      registerEntry(entry, entries.every((e) => e.cfg !== cfg));
      entries.push(entry);
    } catch (e) {
      const msg = `${peer.name} / ${cfg.group}: ${e instanceof Error ? e.message : String(e)}`;
      notes.push(`failed ${msg}`);
      console.warn(`peers: failed ${msg}`);
    }
  }
}

globalThis.addEventListener("unload", () => {
  for (const p of peers) p.close?.();
  if (!entries.some((e) => e.samples.length > 0)) return;
  console.log(
    `\npeers: per-call times recorded by the harness (warm-up dropped); throughput = work / time` +
      `\n\n${summaryTable(entries)}\n`,
  );
  for (const n of notes) console.log(`peers: ${n}`);
});
