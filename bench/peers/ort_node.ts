/**
 * onnxruntime-node (native MLAS kernels) as a peer.
 *
 * Deno runs no npm lifecycle scripts with its global cache, so the package's postinstall (which
 * tries to download GPU binaries) never runs; the CPU binding ships inside the package.
 *
 * @module
 */

import * as ort from "npm:onnxruntime-node@1.30.0";
import { type BenchConfig, onnxBytes } from "./configs.ts";
import type { Peer, Runner } from "./peer.ts";

/** A native CPU session per config with `threads` intra-op threads. */
export function ortNode(threads: number): Peer {
  return {
    name: `ort-node native t${threads}`,
    version: `onnxruntime-node ${ort.env.versions.node ?? "?"}`,
    async prepare(cfg: BenchConfig): Promise<Runner> {
      const session = await ort.InferenceSession.create(onnxBytes(cfg), {
        executionProviders: ["cpu"],
        graphOptimizationLevel: "all",
        executionMode: "sequential",
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
      });
      const feeds: Record<string, ort.Tensor> = {};
      for (const f of cfg.feeds) feeds[f.name] = new ort.Tensor("float32", f.data, f.dims);
      const out = session.outputNames[0];
      return {
        async run() {
          const result = await session.run(feeds);
          return result[out].data as Float32Array;
        },
      };
    },
  };
}
