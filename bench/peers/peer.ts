/**
 * What a benchmarked implementation provides: a prepared runner per configuration.
 *
 * @module
 */

import type { BenchConfig } from "./configs.ts";

/** A prepared computation for one config: every call feeds fresh inputs and reads the output. */
export interface Runner {
  /** One inference; resolves to the output in the peer's own layout. */
  run(): Float32Array | Promise<Float32Array>;
  /** One inference that returns the output (default: {@link run}), for checking. */
  output?(): Promise<Float32Array>;
  /** Converts {@link run}'s output to the config's canonical (NCHW) layout, for checking. */
  canonical?(y: Float32Array): Float32Array;
}

/** A peer runtime (or sigil) with a fixed thread count. */
export interface Peer {
  /** Bench entry name, e.g. `ort-web wasm t1`. */
  readonly name: string;
  /** Package and version, for the record. */
  readonly version?: string;
  /** Configs this peer cannot run, with the reason. */
  unsupported?(cfg: BenchConfig): string | undefined;
  prepare(cfg: BenchConfig): Promise<Runner>;
  /** Frees workers and sessions at exit. */
  close?(): void;
}
