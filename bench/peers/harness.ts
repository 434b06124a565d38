/**
 * The bench harness shared by the peers (and, later, sigil's own entries): checks an
 * implementation's answer once, sizes its `deno bench` entry, times every call itself and
 * prints a min/median/max table when the process ends.
 *
 * @module
 */

import {
  type BenchConfig,
  checkSgemm,
  CONV_PARAMS,
  CONV_SHAPE,
  ELTWISE_A,
  ELTWISE_B,
  naiveConv,
  relError,
} from "./configs.ts";
import type { Runner } from "./peer.ts";

/** One `deno bench` entry and the call times the harness recorded for it. */
export interface Entry {
  readonly cfg: BenchConfig;
  readonly name: string;
  readonly runner: Runner;
  /** Outcome of the one-off correctness check, e.g. `rel err 2.1e-7 vs naive`. */
  readonly check: string;
  readonly n: number;
  readonly warmup: number;
  /** Milliseconds per call, in call order (warm-up calls included; dropped when reporting). */
  readonly samples: number[];
}

/** Checks one output against the config's reference; throws on a mismatch. */
export type Checker = (y: Float32Array) => string;

const refCache = new Map<string, Float32Array>();

/**
 * The reference check for `cfg`: a float64 naive computation for sgemm (every entry up to
 * 512, 4096 spread entries at 1024), conv and eltwise; for ResNet-18 the first checked peer's
 * output becomes the reference the others must agree with.
 */
export function checkerFor(cfg: BenchConfig): Checker {
  const fail = (what: string, err: number, tol: number) => {
    if (!(err <= tol)) throw new Error(`${cfg.group}: ${what} ${err.toExponential(2)} > ${tol}`);
    return `${what} ${err.toExponential(1)}`;
  };
  if (cfg.group.startsWith("sgemm")) {
    const n = cfg.feeds[0].dims[0];
    const [a, b] = cfg.feeds;
    return (y) =>
      fail(
        n <= 512 ? "rel err vs naive (all)" : "rel err vs naive (4096 entries)",
        checkSgemm(n, a.data, b.data, y, n <= 512 ? n * n : 4096),
        1e-5,
      );
  }
  if (cfg.group.startsWith("conv")) {
    return (y) => {
      let ref = refCache.get(cfg.group);
      if (!ref) {
        ref = naiveConv(cfg.feeds[0].data, CONV_SHAPE.h, CONV_SHAPE.w, CONV_PARAMS);
        refCache.set(cfg.group, ref);
      }
      return fail("rel err vs naive", relError(y, ref), 1e-5);
    };
  }
  if (cfg.group.startsWith("eltwise")) {
    const x = cfg.feeds[0].data;
    const ref = x.map((v) => Math.max(0, Math.fround(Math.fround(v * ELTWISE_A) + ELTWISE_B)));
    return (y) => fail("rel err vs naive", relError(y, ref), 1e-6);
  }
  return (y) => {
    const ref = refCache.get(cfg.group);
    if (!ref) {
      refCache.set(cfg.group, y.slice());
      return "reference for the others";
    }
    return fail("rel err vs first peer", relError(y, ref), 1e-4);
  };
}

/** Checks `runner`'s answer, then times a few calls to size the bench entry. */
export async function prepareEntry(
  cfg: BenchConfig,
  name: string,
  runner: Runner,
  targetMs: number,
): Promise<Entry> {
  const raw = runner.output ? await runner.output() : await runner.run();
  const check = checkerFor(cfg)(runner.canonical ? runner.canonical(raw) : raw);
  // A few warm calls (at least 3 and 200 ms: heaps grow and code tiers up) size the entry.
  let best = Infinity;
  for (let i = 0, start = performance.now(); i < 3 || performance.now() - start < 200; i++) {
    const t = performance.now();
    await runner.run();
    best = Math.min(best, performance.now() - t);
    if (i >= 50) break;
  }
  const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, Math.round(v)));
  return {
    cfg,
    name,
    runner,
    check,
    n: clamp(targetMs / best, 15, 400),
    warmup: clamp(300 / best, 2, 50),
    samples: [],
  };
}

/** Registers `entry` with `deno bench`; the harness also records each call's duration. */
export function registerEntry(entry: Entry, baseline = false): void {
  Deno.bench({
    name: entry.name,
    group: entry.cfg.group,
    baseline,
    n: entry.n,
    warmup: entry.warmup,
    async fn() {
      const t = performance.now();
      await entry.runner.run();
      entry.samples.push(performance.now() - t);
    },
  });
}

function fmt(v: number): string {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

/** Timed samples of an entry: the warm-up calls (and one spare) dropped. */
export function timedSamples(e: Entry): number[] {
  return e.samples.slice(Math.min(e.warmup + 1, Math.floor(e.samples.length / 2)));
}

/** A markdown table of every entry with samples: throughput and ms at min/median/max. */
export function summaryTable(entries: readonly Entry[]): string {
  const rows = [
    "| config | implementation | unit | median | min | max | ms median | ms min | ms max | calls |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const e of entries) {
    const s = timedSamples(e).sort((a, b) => a - b);
    if (s.length === 0) continue;
    const med = s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    const rate = (ms: number) => e.cfg.work / (ms * 1e6); // GFLOP/s or GB/s
    rows.push(
      `| ${e.cfg.group} | ${e.name} | ${e.cfg.unit} | ${fmt(rate(med))} | ${
        fmt(rate(s[s.length - 1]))
      } | ${fmt(rate(s[0]))} | ${fmt(med)} | ${fmt(s[0])} | ${
        fmt(s[s.length - 1])
      } | ${s.length} |`,
    );
  }
  return rows.join("\n");
}
