/**
 * sigil itself as a benchmarked implementation: each config is built as a symbol graph with the
 * same weights and compiled by the WASM backend (one or two threads; relaxed SIMD when the
 * runtime has it). Inputs are written and outputs read on every call, like the peers.
 *
 * @module
 */
import { sym, type Symbol } from "../../mod.ts";
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { array, type Tensor } from "../../mod.ts";
import {
  type BenchConfig,
  CONV_PARAMS,
  type ConvParams,
  ELTWISE_A,
  ELTWISE_B,
  type ResNet18,
} from "./configs.ts";
import type { Peer, Runner } from "./peer.ts";

function convSym(x: Symbol, name: string, p: ConvParams, params: Record<string, Tensor>): Symbol {
  params[`${name}_weight`] = array(p.w, { shape: [p.cout, p.cin, p.k, p.k] });
  params[`${name}_bias`] = array(p.b, { shape: [p.cout] });
  return sym.Convolution(x, {
    kernel: [p.k, p.k],
    stride: [p.stride, p.stride],
    pad: [p.pad, p.pad],
    num_filter: p.cout,
    name,
  });
}

/** The symbol graph and parameters sigil compiles for a bench config. */
export function graphFor(
  cfg: BenchConfig,
  net: ResNet18,
): { symbol: Symbol; params: Record<string, Tensor> } {
  const params: Record<string, Tensor> = {};
  if (cfg.group.startsWith("sgemm")) {
    return { symbol: sym.dot(sym.var("A"), sym.var("B"), { name: "C" }), params };
  }
  if (cfg.group.startsWith("conv")) {
    return { symbol: convSym(sym.var("x"), "conv", CONV_PARAMS, params), params };
  }
  if (cfg.group.startsWith("eltwise")) {
    const y = sym._plus_scalar(sym._mul_scalar(sym.var("x"), { scalar: ELTWISE_A }), {
      scalar: ELTWISE_B,
    });
    return { symbol: sym.Activation(y, { act_type: "relu", name: "y" }), params };
  }
  const relu = (x: Symbol, name: string) => sym.Activation(x, { act_type: "relu", name });
  let x = relu(convSym(sym.var("data"), "stem", net.stem, params), "stem_relu");
  x = sym.Pooling(x, {
    kernel: [3, 3],
    stride: [2, 2],
    pad: [1, 1],
    pool_type: "max",
    name: "pool",
  });
  net.blocks.forEach((blk, i) => {
    const h = relu(convSym(x, `b${i}_c1`, blk.conv1, params), `b${i}_r1`);
    const y = convSym(h, `b${i}_c2`, blk.conv2, params);
    const skip = blk.down ? convSym(x, `b${i}_down`, blk.down, params) : x;
    x = relu(sym.elemwise_add(y, skip, { name: `b${i}_sum` }), `b${i}_out`);
  });
  x = sym.Pooling(x, { kernel: [1, 1], global_pool: true, pool_type: "avg", name: "gap" });
  params.fc_weight = array(net.fcW, { shape: [1000, 512] });
  params.fc_bias = array(net.fcB, { shape: [1000] });
  return { symbol: sym.FullyConnected(x, { num_hidden: 1000, name: "fc" }), params };
}

/** The sigil WASM backend as a peer, on `threads` threads (the calling one and workers). */
export function sigilWasm(net: ResNet18, threads = 1): Peer {
  const compiled: { dispose(): void }[] = [];
  return {
    name: `sigil wasm t${threads}`,
    async prepare(cfg: BenchConfig): Promise<Runner> {
      const { symbol, params } = graphFor(cfg, net);
      const shapes = Object.fromEntries(cfg.feeds.map((f) => [f.name, [...f.dims]]));
      const c = compileWasm(symbol, params, shapes, { threads });
      compiled.push(c);
      await c.ready();
      const inputs = Object.fromEntries(cfg.feeds.map((f) => [f.name, f.data]));
      return { run: () => c.runRaw(inputs)[0] };
    },
    close() {
      for (const c of compiled) c.dispose();
    },
  };
}
