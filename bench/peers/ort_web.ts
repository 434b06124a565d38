/**
 * onnxruntime-web (WebAssembly SIMD, the `wasm` execution provider) as a peer.
 *
 * ORT-web fixes its thread count once per process (`env.wasm.numThreads` is read when the
 * WebAssembly module starts), so the main thread hosts one thread count ({@link ortWeb}) and any
 * other count runs in its own Deno Worker ({@link ortWebInWorker}); there each call costs one
 * message round trip more, which {@link OrtWebWorkerPeer.roundTripMs} measures.
 *
 * @module
 */

import * as ort from "npm:onnxruntime-web@1.30.0";
import { type BenchConfig, onnxBytes } from "./configs.ts";
import { encodeModel } from "./onnx_model.ts";
import type { Peer, Runner } from "./peer.ts";
import type { WorkerReply, WorkerRequest } from "./ort_web_worker.ts";

/** Creates a wasm session for `model` with the benchmark's session options. */
export function createWebSession(model: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
    executionMode: "sequential",
  });
}

/**
 * Deno's Web Worker constructor, taken before ORT-web starts: under Node-like runtimes ORT-web's
 * Emscripten loader sets `globalThis.Worker = require("worker_threads").Worker`.
 */
const WebWorker: typeof Worker = globalThis.Worker;

/**
 * Starts ORT-web in this thread with `threads` threads (only the first call may choose).
 *
 * With one thread no pthread is ever spawned, so the global `Worker` that ORT-web's loader
 * replaced is put back (sigil's own bench entries in the same process need Deno's). With more
 * threads ORT-web spawns its pthreads through it, so it stays replaced.
 */
export async function initOrtWeb(threads: number): Promise<number> {
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = "error";
  // A one-node model forces the WebAssembly start-up, after which numThreads is what runs.
  await createWebSession(encodeModel({
    name: "warm",
    nodes: [{ op: "Relu", inputs: ["x"], outputs: ["y"] }],
    inputs: [{ name: "x", dims: [1] }],
    outputs: [{ name: "y", dims: [1] }],
  }));
  if (threads === 1) globalThis.Worker = WebWorker;
  return ort.env.wasm.numThreads ?? threads;
}

/** Feeds for `cfg` as ORT-web tensors (ORT copies them into its heap on every run). */
export function webFeeds(
  feeds: BenchConfig["feeds"],
): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const f of feeds) out[f.name] = new ort.Tensor("float32", f.data, f.dims);
  return out;
}

/** ORT-web in the calling thread; call once per process. */
export async function ortWeb(threads: number): Promise<Peer> {
  const actual = await initOrtWeb(threads);
  if (actual !== threads) {
    throw new Error(`asked for ${threads} threads, ORT-web runs ${actual}`);
  }
  return {
    name: `ort-web wasm t${threads}`,
    version: `onnxruntime-web ${ort.env.versions.web ?? "?"}`,
    async prepare(cfg: BenchConfig): Promise<Runner> {
      const session = await createWebSession(onnxBytes(cfg));
      const feeds = webFeeds(cfg.feeds);
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

/** ORT-web hosted by a Deno Worker. */
export interface OrtWebWorkerPeer extends Peer {
  /** Median time of an empty request/reply to the worker, in ms. */
  readonly roundTripMs: number;
}

/** ORT-web with `threads` threads inside a dedicated Deno Worker. */
export async function ortWebInWorker(threads: number): Promise<OrtWebWorkerPeer> {
  const worker = new WebWorker(new URL("./ort_web_worker.ts", import.meta.url), { type: "module" });
  let pending: ((r: WorkerReply) => void) | undefined;
  let failure: string | undefined;
  worker.onmessage = (e: MessageEvent<WorkerReply>) => {
    const resolve = pending;
    pending = undefined;
    resolve?.(e.data);
  };
  worker.onerror = (e: ErrorEvent) => {
    e.preventDefault();
    failure = e.message;
    const resolve = pending;
    pending = undefined;
    resolve?.({ error: `worker error: ${e.message}` });
  };
  const call = (req: WorkerRequest, transfer: Transferable[] = []): Promise<WorkerReply> => {
    if (failure) return Promise.resolve({ error: `worker error: ${failure}` });
    if (pending) throw new Error("ort-web worker: overlapping requests");
    return new Promise((resolve) => {
      pending = resolve;
      worker.postMessage(req, transfer);
    });
  };
  const checked = async (req: WorkerRequest, transfer?: Transferable[]) => {
    const reply = await call(req, transfer);
    if ("error" in reply) throw new Error(reply.error);
    return reply;
  };

  try {
    const init = await checked({ op: "init", threads });
    if (!("threads" in init) || init.threads !== threads) {
      throw new Error(
        `asked for ${threads} threads, the worker's ORT-web runs ${
          "threads" in init ? init.threads : "?"
        }`,
      );
    }
  } catch (e) {
    worker.terminate();
    throw e;
  }

  const pings: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    await checked({ op: "ping" });
    pings.push(performance.now() - t);
  }
  pings.sort((a, b) => a - b);

  let nextId = 0;
  return {
    name: `ort-web wasm t${threads}`,
    version: `onnxruntime-web ${ort.env.versions.web ?? "?"}`,
    roundTripMs: pings[pings.length >> 1],
    async prepare(cfg: BenchConfig): Promise<Runner> {
      const id = nextId++;
      const model = onnxBytes(cfg).slice();
      const feeds = cfg.feeds.map((f) => ({
        name: f.name,
        dims: [...f.dims],
        data: f.data.slice(),
      }));
      await checked({ op: "prepare", id, model, feeds }, [
        model.buffer as ArrayBuffer,
        ...feeds.map((f) => f.data.buffer as ArrayBuffer),
      ]);
      const runOnce = async (returnOutput: boolean) => {
        const reply = await checked({ op: "run", id, returnOutput });
        return "output" in reply ? reply.output : new Float32Array(0);
      };
      return {
        // The timed path leaves the output in the worker: posting it back would add a copy
        // that the in-thread peers do not pay.
        run: () => runOnce(false),
        output: () => runOnce(true),
      };
    },
    close() {
      worker.terminate();
    },
  } satisfies OrtWebWorkerPeer;
}
