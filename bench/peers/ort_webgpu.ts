/**
 * onnxruntime-web's WebGPU execution provider as a peer (the `onnxruntime-web/webgpu` bundle:
 * the runtime compiled to WebAssembly with its WebGPU provider). Sessions are made with
 * `executionProviders: ["webgpu"]` only, so a provider that cannot start is an error, not a
 * silent run on the CPU. Inputs are host tensors and outputs come back to the host
 * (ORT's default `preferredOutputLocation: "cpu"`), so every call uploads and reads back.
 *
 * @module
 */

import * as ort from "npm:onnxruntime-web@1.30.0/webgpu";
import { type BenchConfig, onnxBytes } from "./configs.ts";
import type { Peer, Runner } from "./peer.ts";

/** Creates a session for `model` on the WebGPU provider with the benchmark's options. */
function createSession(model: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, {
    executionProviders: ["webgpu"],
    graphOptimizationLevel: "all",
    executionMode: "sequential",
  });
}

/**
 * ORT-web on WebGPU in the calling thread. Its WebAssembly part runs one thread: the provider
 * does the work, and more threads would make ORT-web replace Deno's `Worker`.
 */
export async function ortWebGPU(): Promise<Peer> {
  const worker = globalThis.Worker;
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = "error";
  ort.env.webgpu.powerPreference = "high-performance";
  const sessions: ort.InferenceSession[] = [];
  try {
    // A session of a one-node model starts the WebAssembly module and the WebGPU device.
    const { encodeModel } = await import("./onnx_model.ts");
    sessions.push(
      await createSession(encodeModel({
        name: "start",
        nodes: [{ op: "Relu", inputs: ["x"], outputs: ["y"] }],
        inputs: [{ name: "x", dims: [4] }],
        outputs: [{ name: "y", dims: [4] }],
      })),
    );
  } finally {
    globalThis.Worker = worker;
  }
  return {
    name: "ort-web webgpu",
    version: `onnxruntime-web ${ort.env.versions.web ?? "?"} (webgpu bundle)`,
    async prepare(cfg: BenchConfig): Promise<Runner> {
      const session = await createSession(onnxBytes(cfg));
      sessions.push(session);
      const feeds: Record<string, ort.Tensor> = {};
      for (const f of cfg.feeds) feeds[f.name] = new ort.Tensor("float32", f.data, f.dims);
      const out = session.outputNames[0];
      return {
        async run() {
          const result = await session.run(feeds);
          const data = await result[out].getData() as Float32Array;
          result[out].dispose();
          return data;
        },
      };
    },
    close() {
      for (const s of sessions) void s.release();
    },
  };
}
