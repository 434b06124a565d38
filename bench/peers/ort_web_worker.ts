/**
 * Deno Worker hosting onnxruntime-web with its own thread count (see ort_web.ts). Requests are
 * answered one at a time, in order.
 *
 * @module
 */

import type { InferenceSession, Tensor } from "npm:onnxruntime-web@1.30.0";
import { createWebSession, initOrtWeb, webFeeds } from "./ort_web.ts";

/** Main thread → worker. */
export type WorkerRequest =
  | { readonly op: "init"; readonly threads: number }
  | { readonly op: "ping" }
  | {
    readonly op: "prepare";
    readonly id: number;
    readonly model: Uint8Array;
    readonly feeds: readonly { name: string; dims: number[]; data: Float32Array }[];
  }
  | { readonly op: "run"; readonly id: number; readonly returnOutput: boolean };

/** Worker → main thread. */
export type WorkerReply =
  | { readonly error: string }
  | { readonly threads: number }
  | { readonly output: Float32Array }
  | { readonly ok: true };

/** The parts of the worker global scope used here. */
interface WorkerScope {
  onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerReply): void;
}

const scope = globalThis as unknown as WorkerScope;
const sessions = new Map<
  number,
  { session: InferenceSession; feeds: Record<string, Tensor>; out: string }
>();
let queue: Promise<void> = Promise.resolve();

async function handle(req: WorkerRequest): Promise<WorkerReply> {
  switch (req.op) {
    case "init":
      return { threads: await initOrtWeb(req.threads) };
    case "ping":
      return { ok: true };
    case "prepare": {
      const session = await createWebSession(req.model);
      sessions.set(req.id, { session, feeds: webFeeds(req.feeds), out: session.outputNames[0] });
      return { ok: true };
    }
    case "run": {
      const s = sessions.get(req.id);
      if (!s) return { error: `no session ${req.id}` };
      const result = await s.session.run(s.feeds);
      return req.returnOutput ? { output: result[s.out].data as Float32Array } : { ok: true };
    }
  }
}

scope.onmessage = (e) => {
  queue = queue.then(async () => {
    try {
      scope.postMessage(await handle(e.data));
    } catch (err) {
      scope.postMessage({ error: err instanceof Error ? err.message : String(err) });
    }
  });
};
