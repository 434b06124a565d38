/**
 * The runtime an ahead-of-time artifact carries: {@link artifactRuntime} is written into the
 * generated module as source text (`String(artifactRuntime)`), so it must stay one
 * self-contained function: it refers to nothing outside its own body but the JavaScript
 * globals every platform has (WebAssembly, Atomics, fetch, atob, DecompressionStream), and it
 * imports nothing. It owns the linear memory, the dispatch of steps, and a small worker pool.
 *
 * Threads: where `SharedArrayBuffer` exists and the page (if any) is cross-origin isolated,
 * split steps run their parts on workers (`node:worker_threads` in Node and Deno, a Blob-URL
 * `Worker` in browsers) that wait on a shared control block; elsewhere every step runs on the
 * calling thread. Splits never change the arithmetic: one thread gives the same bits. A worker
 * that dies is replaced between runs; one that does not finish its part within `stallMs` is
 * given up: the workers are replaced, and the run is repeated on the calling thread over a
 * fresh memory, so nothing the late worker still writes reaches a later run.
 *
 * WebGPU: {@link webgpuRuntime} is the loader artifacts with WebGPU programs pass in; `load`
 * tries it first (unless `backend: "wasm"`) and falls back to WASM where it cannot run.
 *
 * @module
 */
import type { Manifest, ProgramSpec, StepSpec } from "./manifest.ts";

/** Options of an artifact's `load`. */
export interface ArtifactLoadOptions {
  /**
   * Weight files that are not where the artifact says: a path (Node, Deno), a URL or the bytes
   * of the chosen backend's own file (the SIMD variant's, or the WebGPU one), or such sources
   * by file name (`{ "model.shared.bin": ..., "model.bin": ... }`) for an artifact with both
   * targets, whose loads also read the shared file.
   */
  readonly weights?: WeightSource | Readonly<Record<string, WeightSource>>;
  /** Threads to use, at most what the artifact was compiled for (default: that many). */
  readonly threads?: number;
  /** `relaxed`, `baseline`, or `auto` (default: relaxed SIMD where the runtime validates it). */
  readonly simd?: "auto" | "relaxed" | "baseline";
  /**
   * Milliseconds a run waits for a worker thread's part before it gives the workers up
   * (default 10000): they are replaced and the run is repeated on the calling thread.
   */
  readonly stallMs?: number;
  /**
   * `auto` (default): WebGPU where the artifact has WebGPU programs and the platform gives an
   * adapter, else WASM; `wasm` or `webgpu`: that one (an error where it cannot run).
   */
  readonly backend?: "auto" | "wasm" | "webgpu";
  /**
   * Run every WASM kernel once on a background worker while the model loads. V8 compiles
   * WebAssembly functions first with a baseline compiler and optimizes them only after they
   * have run a while, so the first run executes mostly baseline code; the worker runs each
   * kernel ahead with the arguments the model will pass, over a memory of its own (never the
   * model's), stops when the first run starts (with threads; after it with one thread) and
   * exits when done. `"auto"` (default): only where the runtime reports at least two cores
   * more than the threads this load runs on. With fewer, the worker and V8's optimizing
   * threads take the cores the load and the first run need, and the first output comes later
   * than without it (2 cores, one thread: bench/README.md). `true`: wherever there is more
   * than one core; `false`: never. The outputs are the same bits either way.
   */
  readonly warm?: boolean | "auto";
}

/** Where a weight file is: a path (Node, Deno), a URL, or its bytes. */
export type WeightSource = string | URL | ArrayBuffer | ArrayBufferView;

/** What a loaded artifact reports about itself. */
export interface ArtifactModelInfo {
  /** The sigil version that compiled it. */
  readonly sigil: string;
  /** The target (`wasm`). */
  readonly target: string;
  /** SHA-256 of the model's symbol JSON and input signature. */
  readonly graphHash: string;
  /** Inputs (shapes at the first batch size). */
  readonly inputs: Manifest["inputs"];
  /** Outputs (shapes at the first batch size). */
  readonly outputs: Manifest["outputs"];
  /** Batch sizes with a program. */
  readonly batchSizes: readonly number[];
  /** Threads the artifact was compiled for. */
  readonly compiledThreads: number;
  /** SIMD variants it holds. */
  readonly variants: readonly string[];
  /** The backends it has programs for, the preferred first (`wasm`, `webgpu`). */
  readonly targets: readonly string[];
}

/** A loaded artifact model. */
export interface ArtifactModel {
  /** What the artifact is, plus what this load chose. */
  readonly metadata: ArtifactModelInfo & {
    /** Threads this load runs on (1 where the runtime cannot share memory). */
    readonly threads: number;
    /** Why it runs on fewer threads than compiled for, if it does. */
    readonly threadsNote: string;
    /** The SIMD variant this load runs (`webgpu` on WebGPU). */
    readonly simd: string;
    /** The backend this load runs on. */
    readonly backend: "wasm" | "webgpu";
    /** Why it runs on WASM though the artifact has WebGPU programs, or "". */
    readonly backendNote: string;
  };
  /**
   * Runs on inputs by name; returns fresh output arrays by name (on WebGPU, a Promise of
   * them: `await model.run(...)` works on either backend).
   */
  run(
    inputs: Readonly<Record<string, Float32Array>>,
  ): Record<string, Float32Array> | Promise<Record<string, Float32Array>>;
  /**
   * Runs on inputs by name, writing every output into the caller's array of that name (on
   * WebGPU, returns a Promise that resolves once they are written).
   */
  runRaw(
    inputs: Readonly<Record<string, Float32Array>>,
    outputs: Readonly<Record<string, Float32Array>>,
  ): void | Promise<void>;
  /** Stops the worker threads; later runs use the calling thread. */
  dispose(): void;
  /** How many times the worker threads were replaced (one died or stalled a run). */
  readonly restarts: number;
  /** Whether runs use the worker threads now (false while replaced ones start). */
  readonly threaded: boolean;
}

/** What the artifact module exports. */
export interface ArtifactExports {
  /** Loads the model. */
  load(options?: ArtifactLoadOptions): Promise<ArtifactModel>;
  /** The artifact's description (before any load). */
  metadata: ArtifactModelInfo;
  /** The error class every failure of the artifact throws. */
  ModelError: new (message: string, code: string) => Error & { code: string };
}

/**
 * The artifact runtime. `manifest` is the compiled plan, `code` the base64 of the deflated
 * kernel modules, `embedded` the base64 weight files by name (null when they live outside),
 * `base` the URL of the artifact module (weight files are resolved against it).
 *
 * @example Running in place (the artifact does the same from its own text)
 * ```ts
 * import assert from "node:assert";
 * import { artifactRuntime } from "./runtime.ts";
 * assert.strictEqual(typeof artifactRuntime, "function");
 * ```
 */
export function artifactRuntime(
  manifest: Manifest,
  code: string,
  embedded: Readonly<Record<string, string>> | null,
  base: string,
  gpuLoader?: typeof webgpuRuntime,
  derive?: typeof deriveConstant,
): ArtifactExports {
  /** Every failure of the artifact: `code` says which (`input`, `weights`, `threads`, ...). */
  class ModelError extends Error {
    code: string;
    constructor(message: string, code: string) {
      super(message);
      this.name = "ModelError";
      this.code = code;
    }
  }
  type Any = Record<string, unknown>;
  const g = globalThis as unknown as Any & {
    process?: { versions?: { node?: string }; getBuiltinModule?: (id: string) => unknown };
    crossOriginIsolated?: boolean;
  };
  // Control block slots shared with the workers (workerMain repeats them as literals: it is
  // sent as source text and sees nothing of this scope). Workers spin 2 ms for the next step
  // of a run before they block, since waking a blocked thread costs tens of microseconds.
  const GEN = 0, PROG = 1, STEP = 2, PENDING = 3, FAILED = 4;
  const WAKE = -1, END = -2, QUIT = -3;

  /** A Node builtin without a dynamic import, where the runtime lends them (Node, Deno). */
  const builtin = <T>(id: string): T | undefined => g.process?.getBuiltinModule?.(id) as T;
  const fromBase64 = (s: string): Uint8Array => {
    const native = (Uint8Array as { fromBase64?: (s: string) => Uint8Array }).fromBase64;
    if (typeof native === "function") return native(s);
    // Node 20's atob decodes in JavaScript, a character at a time.
    const nodeBuffer = builtin<{ Buffer: { from(s: string, e: string): Uint8Array } }>(
      "node:buffer",
    );
    if (nodeBuffer) {
      const b = nodeBuffer.Buffer.from(s, "base64");
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    }
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  };
  const inflate = async (bytes: Uint8Array): Promise<Uint8Array> => {
    // Node's first DecompressionStream loads its web streams, 80-200 ms; zlib is at hand.
    const zlib = builtin<{ inflateSync(b: Uint8Array): Uint8Array }>("node:zlib");
    if (zlib) {
      const b = zlib.inflateSync(bytes);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    }
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
      new DecompressionStream("deflate"),
    );
    return new Uint8Array(await new Response(stream).arrayBuffer());
  };
  let codeBytes: Promise<Uint8Array> | undefined;
  const kernelCode = () =>
    codeBytes ??= (async () => {
      let b: Uint8Array | undefined;
      try {
        b = await inflate(fromBase64(code));
      } catch {
        b = undefined;
      }
      if (b?.length !== manifest.codeBytes) {
        throw new ModelError("the artifact's code is damaged", "code");
      }
      return b;
    })();

  /** A copy of a module whose shared memory import is made unshared (one thread, no SAB). */
  const unshare = (bytes: Uint8Array): Uint8Array => {
    const b = bytes.slice();
    let p = 8;
    const leb = () => {
      let r = 0, s = 0, x = 0;
      do {
        x = b[p++];
        r |= (x & 0x7f) << s;
        s += 7;
      } while (x & 0x80);
      return r >>> 0;
    };
    while (p < b.length) {
      const id = b[p++];
      const size = leb();
      const end = p + size;
      if (id === 2) {
        for (let n = leb(); n > 0; n--) {
          // (`p += leb()` would add to p as it was before leb moved it.)
          const moduleName = leb();
          p += moduleName;
          const fieldName = leb();
          p += fieldName;
          const kind = b[p++];
          if (kind === 0) leb();
          else if (kind === 1 || kind === 2) {
            if (kind === 1) p++;
            if (kind === 2) b[p] &= ~2;
            const flags = b[p++];
            leb();
            if (flags & 1) leb();
          } else if (kind === 3) p += 2;
          else leb();
        }
      }
      p = end;
    }
    return b;
  };

  const threadsPossible = (): string => {
    if (typeof SharedArrayBuffer !== "function") return "SharedArrayBuffer is not available";
    if (g.crossOriginIsolated === false) return "the page is not cross-origin isolated";
    return "";
  };

  /**
   * A weight file opened for reading: its size where known before reading, and either
   * positional reads (bytes, files) or its body chunk by chunk (fetch).
   */
  interface WeightFile {
    readonly size: number | undefined;
    /** Fills `into` from file offset `at`; false where the file ends first. */
    readonly read?: (at: number, into: Uint8Array) => boolean;
    readonly body?: ReadableStreamDefaultReader<Uint8Array>;
    /** The whole file, where it is in memory already. */
    readonly bytes?: Uint8Array;
    close(): void;
  }
  /** Where `n` bytes at offset `at` of a weight file go: `to` from byte `ptr` on. */
  interface Want {
    readonly at: number;
    readonly n: number;
    readonly to: Uint8Array;
    readonly ptr: number;
  }

  const openWeights = async (source: WeightSource): Promise<WeightFile> => {
    if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
      const b = source instanceof ArrayBuffer
        ? new Uint8Array(source)
        : new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
      return {
        size: b.length,
        bytes: b,
        read: (at, into) => {
          into.set(b.subarray(at, at + into.length));
          return at + into.length <= b.length;
        },
        close() {},
      };
    }
    let url: URL | undefined;
    try {
      url = new URL(String(source));
    } catch {
      url = undefined;
    }
    if (g.process?.versions?.node !== undefined && (!url || url.protocol === "file:")) {
      type Fs = {
        openSync(p: string | URL, flags: string): number;
        fstatSync(fd: number): { size: number };
        readSync(fd: number, b: Uint8Array, off: number, n: number, at: number): number;
        closeSync(fd: number): void;
      };
      const spec = "node:fs";
      const fs = builtin<Fs>(spec) ?? await import(spec) as Fs;
      const where = url ?? String(source);
      const failed = (e: unknown) =>
        new ModelError(
          `cannot read the weights ${JSON.stringify(String(where))}: ${
            e instanceof Error ? e.message : String(e)
          }`,
          "weights",
        );
      let fd: number;
      let size: number;
      try {
        fd = fs.openSync(where, "r");
      } catch (e) {
        throw failed(e);
      }
      try {
        size = fs.fstatSync(fd).size;
      } catch (e) {
        fs.closeSync(fd);
        throw failed(e);
      }
      return {
        size,
        read: (at, into) => {
          // Straight into `into` (the program's memory): no buffer of the whole file.
          for (let done = 0; done < into.length;) {
            let got: number;
            try {
              got = fs.readSync(fd, into, done, into.length - done, at + done);
            } catch (e) {
              throw failed(e);
            }
            if (!(got > 0)) return false;
            done += got;
          }
          return true;
        },
        close: () => fs.closeSync(fd),
      };
    }
    const response = await fetch(url ?? new URL(String(source), base));
    if (!response.ok) {
      throw new ModelError(
        `cannot fetch the weights ${JSON.stringify(response.url)}: HTTP ${response.status}`,
        "weights",
      );
    }
    // No size up front: a Content-Length may count the bytes before a content encoding that
    // the page cannot see. The body is counted as it arrives instead.
    const body = response.body?.getReader();
    return {
      size: body ? undefined : 0,
      body,
      close: () => void body?.cancel().catch(() => {}),
    };
  };

  /**
   * Reads what `wants` asks of a weight file that must have `bytes` bytes: a file of another
   * size, or a range beyond `bytes`, is refused before anything is read; a stream is counted
   * as it arrives and stopped at its first byte beyond `bytes`. Runs that follow each other
   * both in the file and in one destination are read at once; a range already read (the same
   * constant in several places) is copied.
   */
  const fill = async (file: WeightFile, bytes: number, wants: readonly Want[], what: string) => {
    const wrongSize = (got: string) =>
      new ModelError(`the weights have ${got} bytes; the ${what} needs ${bytes}`, "weights");
    try {
      if (file.size !== undefined && file.size !== bytes) throw wrongSize(String(file.size));
      for (const w of wants) {
        if (!(w.at >= 0 && w.n >= 0 && w.at + w.n <= bytes)) {
          throw new ModelError("the weights are damaged: a constant's range", "weights");
        }
      }
      const order = [...wants].sort((x, y) => x.at - y.at || y.n - x.n);
      if (file.read) {
        const done = new Map<string, Want>();
        for (let i = 0; i < order.length;) {
          const first = order[i];
          const same = done.get(`${first.at},${first.n}`);
          if (same) {
            first.to.set(same.to.subarray(same.ptr, same.ptr + same.n), first.ptr);
            i++;
            continue;
          }
          let j = i + 1;
          let end = first.at + first.n;
          while (
            j < order.length && order[j].at === end && order[j].to === first.to &&
            order[j].ptr === first.ptr + (end - first.at) && !done.has(`${end},${order[j].n}`)
          ) end += order[j++].n;
          if (!file.read(first.at, first.to.subarray(first.ptr, first.ptr + end - first.at))) {
            throw new ModelError(
              `the weights end before byte ${end} (the ${what} needs ${bytes}): the file changed?`,
              "weights",
            );
          }
          for (; i < j; i++) done.set(`${order[i].at},${order[i].n}`, order[i]);
        }
      } else if (file.body) {
        let pos = 0, lo = 0;
        for (;;) {
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await file.body.read();
          } catch (e) {
            throw new ModelError(
              `the weights stopped arriving after ${pos} bytes (${
                e instanceof Error ? e.message : String(e)
              })`,
              "weights",
            );
          }
          const { done, value } = chunk;
          if (done) break;
          const end = pos + value.length;
          if (end > bytes) throw wrongSize(`more than ${bytes}`);
          while (lo < order.length && order[lo].at + order[lo].n <= pos) lo++;
          for (let k = lo; k < order.length && order[k].at < end; k++) {
            const w = order[k];
            const from = Math.max(w.at, pos), to = Math.min(w.at + w.n, end);
            if (from < to) w.to.set(value.subarray(from - pos, to - pos), w.ptr + from - w.at);
          }
          pos = end;
        }
        if (pos !== bytes) throw wrongSize(String(pos));
      }
    } finally {
      file.close();
    }
  };

  /** A worker's port to its parent (Web Worker or `node:worker_threads`), given to `start`. */
  interface Port {
    on(f: (m: Any) => void): void;
    post(m: unknown): void;
  }

  /**
   * Runs in a worker (as source text: self-contained): hands `start` its port to the parent.
   * `once`: the worker takes one message there (`node:worker_threads`), all of them otherwise.
   */
  function connect(start: (port: Port) => void, once: boolean) {
    const scope = globalThis as unknown as {
      WorkerGlobalScope?: unknown;
      postMessage(m: unknown): void;
      onmessage: ((e: { data: Any }) => void) | null;
    };
    if (scope.WorkerGlobalScope !== undefined) {
      start({ on: (f) => scope.onmessage = (e) => f(e.data), post: (m) => scope.postMessage(m) });
    } else {
      const spec = "node:worker_threads";
      import(spec).then((wt) =>
        start({
          on: (f) => once ? wt.parentPort.once("message", f) : wt.parentPort.on("message", f),
          post: (m) => wt.parentPort.postMessage(m),
        })
      );
    }
  }

  /** The pool worker's body (source text, self-contained): returns its `start`. */
  function workerMain() {
    type Ctrl = Int32Array;
    const start = (port: Port) => {
      port.on((m) => {
        const ctrl = m.ctrl as Ctrl;
        const programs = (m.programs as {
          memory: WebAssembly.Memory;
          parts: ({ module: WebAssembly.Module; args: number[] } | null)[];
        }[]).map(({ memory, parts }) =>
          parts.map((part) => {
            if (!part) return null;
            const instance = new WebAssembly.Instance(part.module, { env: { memory } });
            const run = instance.exports.run as (...a: number[]) => void;
            const args = part.args;
            return () => run(...args);
          })
        );
        // Read the generation before saying ready: the first command may follow at once.
        let seen = Atomics.load(ctrl, 0);
        port.post("ready");
        let inRun = false;
        for (;;) {
          if (inRun) {
            const t0 = performance.now();
            let spins = 0;
            while (Atomics.load(ctrl, 0) === seen) {
              if ((++spins & 1023) === 0 && performance.now() - t0 > 2) break;
            }
          }
          while (Atomics.load(ctrl, 0) === seen) Atomics.wait(ctrl, 0, seen);
          seen = Atomics.load(ctrl, 0);
          const step = Atomics.load(ctrl, 2);
          if (step === -3) return;
          if (step >= 0) {
            try {
              const f = programs[Atomics.load(ctrl, 1)]?.[step];
              if (f) f();
            } catch {
              Atomics.store(ctrl, 4, 1);
            }
          } else inRun = step === -1;
          if (Atomics.sub(ctrl, 3, 1) === 1) Atomics.notify(ctrl, 3);
        }
      });
    };
    return start;
  }

  /**
   * The warming worker's body (source text, self-contained; returns its `start`): runs each
   * kernel it is sent
   * once, one per event-loop turn (so that "stop" is taken between kernels), over a memory of
   * its own; says "idle" when it has nothing left.
   */
  function warmMain() {
    type Task = { module: WebAssembly.Module; args: number[]; bytes: number; shared: boolean };
    const start = (port: Port) => {
      const queue: Task[] = [];
      let memory: WebAssembly.Memory | undefined;
      let shared = false;
      const next = () => {
        const t = queue.shift();
        if (t === undefined) {
          memory = undefined;
          port.post("idle");
          return;
        }
        try {
          const pages = Math.ceil(t.bytes / 65536);
          if (memory === undefined || shared !== t.shared || memory.buffer.byteLength < t.bytes) {
            shared = t.shared;
            memory = new WebAssembly.Memory(
              t.shared ? { initial: pages, maximum: pages, shared: true } : { initial: pages },
            );
          }
          const run = new WebAssembly.Instance(t.module, { env: { memory } }).exports.run as (
            ...a: number[]
          ) => void;
          run(...t.args);
        } catch {
          // a kernel that traps has run as far as it could
        }
        setTimeout(next, 0);
      };
      port.on((m) => {
        if ((m as unknown) === "stop") {
          queue.length = 0;
          return;
        }
        const more = m as unknown as Task[];
        queue.push(...more);
        if (queue.length === more.length) setTimeout(next, 0);
      });
      port.post("up");
    };
    return start;
  }

  interface WorkerHandle {
    post(m: unknown): void;
    ready: Promise<void>;
    /** Lets the process exit while the worker waits (Node, Deno). */
    unref(): void;
    stop(): void;
    /** Ends the worker as a crash would (for tests). */
    crash(): void;
  }

  /**
   * Starts a worker running `main` (the pool's by default); `gone` is called if it exits or
   * fails on its own; `onMessage` gets its messages. `web`: in Deno, a Web Worker (it starts
   * without loading Deno's Node layer, but keeps the process alive until stopped).
   */
  const spawn = async (
    gone: () => void,
    main: () => (port: Port) => void = workerMain,
    onMessage?: (m: unknown) => void,
    web = false,
  ): Promise<WorkerHandle> => {
    // The pool worker takes its one message through `once`, the warmer all of its messages.
    const source = `(${String(connect)})((${String(main)})(), ${main === workerMain});`;
    let up!: () => void, fail!: (e: unknown) => void;
    const ready = new Promise<void>((res, rej) => (up = res, fail = rej));
    ready.catch(() => {});
    let stopped = false;
    const lost = (e: unknown) => {
      fail(e);
      if (!stopped) gone();
    };
    const deno = web && g.Deno !== undefined && typeof g.Worker === "function";
    if (g.process?.versions?.node !== undefined && !deno) {
      const spec = "node:worker_threads";
      const wt = (g.process?.getBuiltinModule?.(spec) ?? await import(spec)) as {
        Worker: new (s: string, o: { eval: boolean }) => {
          on(e: string, f: (x: unknown) => void): void;
          postMessage(m: unknown): void;
          terminate(): unknown;
          unref(): void;
        };
      };
      const w = new wt.Worker(source, { eval: true });
      w.on("message", (m) => {
        up();
        onMessage?.(m);
      });
      w.on("error", (e) => lost(e));
      w.on("exit", () => lost(new Error("the worker exited")));
      return {
        post: (m) => w.postMessage(m),
        ready,
        unref: () => w.unref(),
        stop: () => {
          stopped = true;
          void w.terminate();
        },
        crash: () => void w.terminate(),
      };
    }
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    // Deno has module workers only.
    const w = deno ? new Worker(url, { type: "module" }) : new Worker(url);
    URL.revokeObjectURL(url);
    w.onmessage = (e) => {
      up();
      onMessage?.(e.data);
    };
    w.onerror = (e) => lost(e);
    return {
      post: (m) => w.postMessage(m),
      ready,
      unref: () => {},
      stop: () => {
        stopped = true;
        w.terminate();
      },
      crash: () => {
        w.terminate();
        lost(new Error("the worker was terminated"));
      },
    };
  };

  /** Whether this thread may block in Atomics.wait (not a browser page's main thread). */
  let mayBlock: boolean | undefined;
  const blockOnce = (ctrl: Int32Array, left: number) => {
    if (mayBlock === false) return;
    try {
      Atomics.wait(ctrl, PENDING, left, 20);
      mayBlock = true;
    } catch {
      mayBlock = false;
    }
  };

  interface Pool {
    readonly ctrl: Int32Array;
    readonly workers: WorkerHandle[];
    readonly stallMs: number;
    outstanding: boolean;
  }
  /** A worker did not finish its part in time: the pool was given up (see `execute`). */
  class Stall extends Error {}
  const publish = (pool: Pool, prog: number, step: number) => {
    if (pool.outstanding) settle(pool);
    const c = pool.ctrl;
    Atomics.store(c, PROG, prog);
    Atomics.store(c, STEP, step);
    Atomics.store(c, PENDING, pool.workers.length);
    pool.outstanding = true;
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
  };
  const settle = (pool: Pool) => {
    const c = pool.ctrl;
    let spins = 0;
    let since = 0;
    for (;;) {
      const left = Atomics.load(c, PENDING);
      if (left === 0) break;
      if (++spins < 100000) continue;
      const now = performance.now();
      if (since === 0) since = now;
      else if (now - since > pool.stallMs) {
        throw new Stall(`a worker thread stopped answering (state ${Array.from(c).join(",")})`);
      }
      blockOnce(c, left);
    }
    pool.outstanding = false;
    if (Atomics.exchange(c, FAILED, 0) !== 0) {
      throw new ModelError("a kernel failed on a worker thread", "threads");
    }
  };

  /**
   * The program of the batch size the inputs have, after checking every input it reads: the
   * one check of `run` and `runRaw` on either backend.
   */
  const pickProgram = <P extends RunnableProgram>(
    programs: readonly P[],
    given: Readonly<Record<string, Float32Array>>,
  ): P => {
    if (given === null || typeof given !== "object") {
      throw new ModelError("run: inputs must be an object of Float32Arrays by name", "input");
    }
    const inputs = manifest.inputs;
    const first = inputs[0];
    const data = Object.hasOwn(given, first.name) ? given[first.name] : undefined;
    if (!(data instanceof Float32Array)) {
      throw new ModelError(`run: no Float32Array for input ${JSON.stringify(first.name)}`, "input");
    }
    const per = first.shape.slice(1).reduce((a, b) => a * b, 1);
    const found = programs.find((p) => p.spec.batch * per === data.length);
    if (!found) {
      throw new ModelError(
        `run: input ${JSON.stringify(first.name)} has ${data.length} values; the artifact takes ${
          manifest.batchSizes.map((b) => b * per).join(" or ")
        } (batch ${manifest.batchSizes.join(", ")})`,
        "input",
      );
    }
    for (const [index, , n] of found.spec.inputs) {
      const name = inputs[index].name;
      const x = Object.hasOwn(given, name) ? given[name] : undefined;
      if (!(x instanceof Float32Array) || x.length !== n) {
        throw new ModelError(
          `run: input ${JSON.stringify(name)} must be a Float32Array of ${n} values`,
          "input",
        );
      }
    }
    return found;
  };
  /** `runRaw`'s output arrays in order, checked: one of `counts[i]` floats per output. */
  const outputArrays = (
    counts: readonly number[],
    into: Readonly<Record<string, Float32Array>>,
  ): Float32Array[] =>
    counts.map((n, i) => {
      const name = manifest.outputs[i].name;
      const t = into !== null && typeof into === "object" && Object.hasOwn(into, name)
        ? into[name]
        : undefined;
      if (!(t instanceof Float32Array) || t.length !== n) {
        throw new ModelError(
          `runRaw: output ${JSON.stringify(name)} needs a Float32Array of ${n} values`,
          "output",
        );
      }
      return t;
    });

  const metadata: ArtifactModelInfo = Object.freeze({
    sigil: manifest.sigil,
    target: manifest.target,
    graphHash: manifest.graphHash,
    inputs: manifest.inputs,
    outputs: manifest.outputs,
    batchSizes: manifest.batchSizes,
    compiledThreads: manifest.threads,
    variants: manifest.variants.map((v) => v.simd),
    targets: manifest.target.split(","),
  });

  /**
   * The weight file `file`, opened: given (a single source only for the backend's `own` file,
   * else by name), embedded, fetched or beside the module.
   */
  const openWeightFile = (
    file: string,
    bytes: number,
    given: ArtifactLoadOptions["weights"],
    own: boolean,
  ): Promise<WeightFile> => {
    const byName = given !== undefined && typeof given === "object" &&
      !(given instanceof URL) && !(given instanceof ArrayBuffer) && !ArrayBuffer.isView(given);
    const source = byName
      ? (Object.hasOwn(given, file) ? (given as Record<string, WeightSource>)[file] : undefined)
      : own
      ? given as WeightSource | undefined
      : undefined;
    if (source !== undefined) return openWeights(source);
    if (bytes === 0) return openWeights(new Uint8Array(0));
    if (embedded) return openWeights(fromBase64(embedded[file] ?? ""));
    if (manifest.weights === "fetch") {
      const at = manifest.weightsUrl ?? "";
      return openWeights(at.endsWith("/") ? new URL(file, new URL(at, base)) : new URL(at, base));
    }
    return openWeights(new URL(file, base));
  };

  /**
   * The weight file `file` of `bytes` bytes as one array (the WebGPU programs upload from it):
   * given bytes as they are, anything else read into an array of `bytes` once its size is
   * known to be right.
   */
  const weightsOf = async (
    file: string,
    bytes: number,
    given: ArtifactLoadOptions["weights"],
    what: string,
    own = true,
  ): Promise<Uint8Array> => {
    const opened = await openWeightFile(file, bytes, given, own);
    if (opened.bytes && opened.size === bytes) return opened.bytes;
    if (opened.size !== undefined && opened.size !== bytes) {
      // (fill refuses it, reading nothing)
      await fill(opened, bytes, [], what);
    }
    const out = new Uint8Array(bytes);
    await fill(opened, bytes, [{ at: 0, n: bytes, to: out, ptr: 0 }], what);
    return out;
  };

  /** A started warming worker: `stop` drops what it has not run and lets it exit. */
  interface Warmer {
    stop(): void;
  }

  /**
   * Whether a warming worker can help a load on `threads` threads: more than one core and
   * workers, and unless `force`, at least two cores more than `threads` (see
   * ArtifactLoadOptions.warm).
   */
  const warmingHelps = (threads: number, force: boolean): boolean => {
    const h = globalThis as { navigator?: { hardwareConcurrency?: number } };
    const os = h.navigator?.hardwareConcurrency === undefined
      ? builtin<{ availableParallelism?: () => number }>("node:os")
      : undefined;
    const cores = h.navigator?.hardwareConcurrency ?? os?.availableParallelism?.() ?? 1;
    return cores > 1 && (force || cores >= threads + 2) &&
      (typeof Worker === "function" || g.process?.versions?.node !== undefined);
  };

  /**
   * Hands every kernel of `programs` to a new warming worker (each distinct module and
   * arguments once), or returns undefined where there is nothing to warm.
   */
  function startWarming(
    programs: readonly ProgramSpec[],
    compiled: ReadonlyMap<number, WebAssembly.Module>,
    threads: number,
  ): Warmer | undefined {
    const useShared = typeof SharedArrayBuffer === "function";
    const tasks: {
      module: WebAssembly.Module;
      args: readonly number[];
      bytes: number;
      shared: boolean;
    }[] = [];
    const seen = new Set<string>();
    for (const spec of programs) {
      const shared = spec.shared && useShared;
      const add = (m: number, args: readonly number[]) => {
        const key = `${m}:${args.join(",")}:${spec.memoryBytes}`;
        if (m < 0 || seen.has(key) || !compiled.has(m)) return;
        seen.add(key);
        tasks.push({ module: compiled.get(m)!, args, bytes: spec.memoryBytes, shared });
      };
      for (const s of spec.steps) {
        if (s[0] === 0) add(s[1], s[2]);
        else if (s[0] === 1) {
          // The parts when the run splits the step, else the whole kernel.
          if (threads > 1 && s[1].length > 1 && s[1].length <= threads) {
            s[1].forEach((m, i) => add(m, s[2][i]));
          } else if (s[3] >= 0) add(s[3], s[4]);
          else s[1].forEach((m, i) => add(m, s[2][i]));
        }
      }
    }
    if (!tasks.length) return undefined;
    let handle: WorkerHandle | undefined;
    let stopped = false;
    const started = spawn(() => {}, warmMain, (m) => {
      if (m === "idle") handle?.stop();
    }, true).then((h) => {
      handle = h;
      h.unref();
      if (stopped) h.stop();
      else h.post(tasks);
    }, () => {});
    void started;
    return {
      stop() {
        if (stopped) return;
        stopped = true;
        // The kernel running finishes; the worker then says "idle" and is stopped.
        handle?.post("stop");
      },
    };
  }

  async function load(options: ArtifactLoadOptions = {}): Promise<ArtifactModel> {
    const backend = options.backend ?? "auto";
    if (!["auto", "wasm", "webgpu"].includes(backend)) {
      throw new ModelError(`backend must be auto, wasm or webgpu, got ${backend}`, "options");
    }
    let backendNote = "";
    if (backend !== "wasm" && manifest.webgpu && gpuLoader) {
      const got = await gpuLoader(manifest, options, {
        ModelError,
        kernelCode,
        weightsOf,
        metadata,
        pickProgram,
        outputArrays,
      });
      if (typeof got !== "string") return got;
      if (backend === "webgpu" || !manifest.variants.length) {
        throw new ModelError(`cannot run on WebGPU: ${got}`, "webgpu");
      }
      backendNote = `WebGPU: ${got}`;
    } else if (backend === "webgpu") {
      throw new ModelError("the artifact has no WebGPU programs", "options");
    }
    if (!manifest.variants.length) {
      throw new ModelError("the artifact has no WASM programs", "options");
    }
    const wanted = options.threads ?? manifest.threads;
    if (!Number.isInteger(wanted) || wanted < 1) {
      throw new ModelError(`threads must be a positive integer, got ${wanted}`, "options");
    }
    const warm = options.warm ?? "auto";
    if (warm !== true && warm !== false && warm !== "auto") {
      throw new ModelError(`warm must be true, false or "auto", got ${String(warm)}`, "options");
    }
    const blocker = wanted > 1 ? threadsPossible() : "";
    let threads = Math.min(wanted, manifest.threads);
    if (blocker) threads = 1;
    const threadsNote = blocker
      ? `one thread: ${blocker}`
      : wanted > manifest.threads
      ? `compiled for ${manifest.threads} thread(s)`
      : "";
    const useShared = typeof SharedArrayBuffer === "function";
    const all = await kernelCode();
    const moduleBytes = (i: number, shared: boolean) => {
      const [at, n] = manifest.modules[i];
      const b = all.subarray(at, at + n);
      return shared && !useShared ? unshare(b) : b;
    };
    const modulesOf = (v: Manifest["variants"][number]) => {
      const used = new Set<number>();
      for (const p of v.programs) {
        for (const s of p.steps) {
          if (s[0] === 0) used.add(s[1]);
          else if (s[0] === 1) {
            s[1].forEach((m) => used.add(m));
            if (s[3] >= 0) used.add(s[3]);
          }
        }
      }
      return [...used];
    };
    const simd = options.simd ?? "auto";
    let variant = manifest.variants.find((v) => v.simd === simd);
    if (simd === "auto") {
      variant = manifest.variants.find((v) => {
        const shared = v.programs.some((p) => p.shared);
        return modulesOf(v).every((i) =>
          WebAssembly.validate(moduleBytes(i, shared) as Uint8Array<ArrayBuffer>)
        );
      });
      if (!variant) {
        throw new ModelError("this runtime validates none of the artifact's kernels", "simd");
      }
    } else if (!variant) {
      throw new ModelError(
        `the artifact has no ${JSON.stringify(simd)} variant (it has ${
          manifest.variants.map((v) => v.simd).join(", ")
        })`,
        "options",
      );
    }
    const v = variant;
    const shared = v.programs.some((p) => p.shared);
    const compiled = new Map<number, WebAssembly.Module>();
    const compiling = Promise.all(
      modulesOf(v).map(async (i) => {
        compiled.set(
          i,
          await WebAssembly.compile(moduleBytes(i, shared) as Uint8Array<ArrayBuffer>),
        );
      }),
    );
    compiling.catch(() => {});
    // Kernels run ahead on a worker while the weights load (see ArtifactLoadOptions.warm),
    // once they are compiled; without it the weights are read while they compile.
    let warmer: Warmer | undefined;
    if (warm !== false && warmingHelps(threads, warm === true)) {
      await compiling;
      warmer = startWarming(v.programs, compiled, threads);
    }

    const newMemory = (spec: ProgramSpec) => {
      const pages = Math.ceil(spec.memoryBytes / 65536);
      return new WebAssembly.Memory({
        initial: pages,
        maximum: pages,
        shared: spec.shared && useShared,
      });
    };
    // The program memories first: the weights are read straight into them.
    const memories = v.programs.map(newMemory);
    const wants: Want[] = [];
    v.programs.forEach((spec, i) => {
      const to = new Uint8Array(memories[i].buffer);
      for (const [ptr, at, n] of spec.constants) wants.push({ at, n, to, ptr });
    });
    // Constants derived from the shared parameters: their run tables (in the variant's file)
    // and sources (in the shared file) are read apart, then derived into the memories.
    const derivedOf = v.programs.flatMap((spec, i) => (spec.derived ?? []).map((d) => ({ d, i })));
    const tables = new Map<string, Uint8Array>();
    for (const { d: [, , , , , runsAt, runs] } of derivedOf) {
      const key = `${runsAt},${runs}`;
      if (tables.has(key)) continue;
      const to = new Uint8Array(runs * 28);
      tables.set(key, to);
      wants.push({ at: runsAt, n: to.length, to, ptr: 0 });
    }
    await fill(
      await openWeightFile(v.weightsFile, v.weightsBytes, options.weights, true),
      v.weightsBytes,
      wants,
      `${v.simd} variant`,
    );
    if (derivedOf.length) {
      const sharedSpec = manifest.shared;
      if (!sharedSpec || !derive) {
        throw new ModelError("the artifact derives constants but has no shared weights", "code");
      }
      const sources = new Map<string, Uint8Array>();
      const sourceWants: Want[] = [];
      for (const { d: [, , , srcAt, srcBytes] } of derivedOf) {
        const key = `${srcAt},${srcBytes}`;
        if (sources.has(key)) continue;
        const to = new Uint8Array(srcBytes);
        sources.set(key, to);
        sourceWants.push({ at: srcAt, n: srcBytes, to, ptr: 0 });
      }
      await fill(
        await openWeightFile(
          sharedSpec.weightsFile,
          sharedSpec.weightsBytes,
          options.weights,
          false,
        ),
        sharedSpec.weightsBytes,
        sourceWants,
        "shared weights",
      );
      // Each distinct constant is derived once, into the first memory that holds it.
      const made = new Map<string, { to: Uint8Array; ptr: number }>();
      for (const { d: [ptr, n, kind, srcAt, srcBytes, runsAt, runs, plane], i } of derivedOf) {
        const to = new Uint8Array(memories[i].buffer);
        const key = `${n},${kind},${srcAt},${srcBytes},${runsAt},${runs},${plane}`;
        const there = made.get(key);
        if (there) {
          to.set(there.to.subarray(there.ptr, there.ptr + n), ptr);
          continue;
        }
        const src = sources.get(`${srcAt},${srcBytes}`)!;
        const table = tables.get(`${runsAt},${runs}`)!;
        const out = ptr % 4 === 0
          ? new Float32Array(to.buffer, ptr, n >>> 2)
          : new Float32Array(n >>> 2);
        try {
          derive(
            kind,
            new Float32Array(src.buffer, 0, srcBytes >>> 2),
            new Int32Array(table.buffer, 0, runs * 7),
            out,
            plane,
          );
        } catch (e) {
          throw new ModelError(
            `the weights are damaged: ${e instanceof Error ? e.message : String(e)}`,
            "weights",
          );
        }
        if (out.buffer !== to.buffer) to.set(new Uint8Array(out.buffer), ptr);
        made.set(key, { to, ptr });
      }
    }

    await compiling;

    interface State {
      readonly memory: WebAssembly.Memory;
      readonly runs: ((threaded: boolean) => void)[];
    }
    interface Loaded {
      readonly spec: ProgramSpec;
      readonly index: number;
      /** Its memory and steps; replaced when a stalled worker may still write the memory. */
      state: State;
      /** Per worker, per step: the part it runs (the same modules whatever the memory). */
      readonly parts: ({ module: WebAssembly.Module; args: readonly number[] } | null)[][];
    }
    const parts = (spec: ProgramSpec) => {
      const out: Loaded["parts"] = Array.from({ length: Math.max(0, threads - 1) }, () => []);
      spec.steps.forEach((s: StepSpec, index) => {
        if (s[0] !== 1 || threads < 2 || s[1].length < 2 || s[1].length > threads) return;
        s[1].forEach((m, i) => {
          if (i > 0) out[i - 1][index] = { module: compiled.get(m)!, args: s[2][i] };
        });
      });
      return out;
    };
    /** Byte ranges of a program's constants, merged where they touch. */
    const constantRanges = (spec: ProgramSpec) => {
      const all = [
        ...spec.constants.map(([ptr, , n]) => [ptr, n]),
        ...(spec.derived ?? []).map(([ptr, n]) => [ptr, n]),
      ].sort((x, y) => x[0] - y[0]);
      const out: number[][] = [];
      for (const [ptr, n] of all) {
        const last = out[out.length - 1];
        if (last && last[0] + last[1] === ptr) last[1] += n;
        else out.push([ptr, n]);
      }
      return out;
    };
    /**
     * Every kernel instantiated over `memory`, or over a fresh memory with the constants
     * copied from `from` (kernels never write their constants, so a memory a late worker
     * still writes holds them intact).
     */
    const instantiate = (
      spec: ProgramSpec,
      programIndex: number,
      held: Loaded["parts"],
      given: WebAssembly.Memory | { from: WebAssembly.Memory },
    ) => {
      let memory: WebAssembly.Memory;
      if (given instanceof WebAssembly.Memory) memory = given;
      else {
        memory = newMemory(spec);
        const to = new Uint8Array(memory.buffer), from = new Uint8Array(given.from.buffer);
        for (const [ptr, n] of constantRanges(spec)) to.set(from.subarray(ptr, ptr + n), ptr);
      }
      const bytes = new Uint8Array(memory.buffer);
      const imports = { env: { memory } };
      const call = (m: number, args: readonly number[]) => {
        const run = new WebAssembly.Instance(compiled.get(m)!, imports).exports.run as (
          ...a: number[]
        ) => void;
        const a = [...args];
        return () => run(...a);
      };
      const runs = spec.steps.map((s: StepSpec, index): (threaded: boolean) => void => {
        if (s[0] === 0) return call(s[1], s[2]);
        if (s[0] === 2) {
          const c = s[1];
          return () => {
            for (let i = 0; i < c.length; i += 3) {
              bytes.copyWithin(c[i], c[i + 1], c[i + 1] + c[i + 2]);
            }
          };
        }
        const each = s[1].map((m, i) => call(m, s[2][i]));
        const whole = s[3] >= 0 ? call(s[3], s[4]) : () => each.forEach((f) => f());
        if (!held.some((w) => w[index])) return whole;
        const own = each[0];
        return (threaded) => {
          if (!threaded || !pool) return whole();
          publish(pool, programIndex, index);
          own();
          settle(pool);
        };
      });
      return { memory, runs };
    };
    const programs: Loaded[] = v.programs.map((spec, index) => {
      const held = parts(spec);
      return { spec, index, parts: held, state: instantiate(spec, index, held, memories[index]) };
    });

    // The worker pool. It is replaced when a worker dies (between runs) or stalls (a run
    // waited longer than `stallMs` for its part): the old workers are stopped, the run is
    // repeated on this thread over a fresh memory (the late worker may still write the old
    // one, which nothing reads again), and runs stay on this thread until new workers are up.
    const stallMs = options.stallMs ?? 10000;
    if (!(stallMs > 0)) {
      throw new ModelError(`stallMs must be a positive number, got ${stallMs}`, "options");
    }
    let pool: Pool | undefined;
    let generation = 0;
    let restarts = 0;
    let disposed = false;
    let note = threadsNote;
    const splits = programs.some((p) => p.parts.some((w) => w.some((x) => x)));
    if (threads > 1 && !splits) note = "one thread: no step of this model splits across threads";
    const startPool = async (): Promise<string> => {
      const gen = ++generation;
      const ctrl = new Int32Array(new SharedArrayBuffer(8 * 4));
      const workers: WorkerHandle[] = [];
      const stopAll = () => workers.forEach((w) => w.stop());
      try {
        for (let i = 1; i < threads; i++) {
          workers.push(
            await spawn(() => {
              if (pool && pool.workers === workers) restart();
            }),
          );
          if (gen !== generation || disposed) {
            stopAll();
            return "";
          }
        }
        workers.forEach((w, i) =>
          w.post({
            ctrl,
            programs: programs.map((p) => ({
              memory: p.state.memory,
              parts: Array.from({ length: p.spec.steps.length }, (_, s) => p.parts[i][s] ?? null),
            })),
          })
        );
        await Promise.all(workers.map((w) => w.ready));
        if (gen !== generation || disposed) {
          stopAll();
          return "";
        }
        for (const w of workers) w.unref();
        pool = { ctrl, workers, stallMs, outstanding: false };
        return "";
      } catch (e) {
        // Workers that cannot start (a policy forbids Blob workers, a sandbox): one thread.
        stopAll();
        return `one thread: worker threads could not start (${
          e instanceof Error ? e.message : String(e)
        })`;
      }
    };
    /** Stops the workers and starts new ones (runs use this thread until they are up). */
    const restart = () => {
      const old = pool;
      pool = undefined;
      restarts++;
      old?.workers.forEach((w) => w.stop());
      if (!disposed) void startPool();
    };
    if (threads > 1 && splits) {
      const why = await startPool();
      if (why) note = why;
    }
    const inputs = manifest.inputs;
    const outputs = manifest.outputs;
    const pick = (given: Readonly<Record<string, Float32Array>>): Loaded =>
      pickProgram(programs, given);
    let warming = warmer !== undefined;
    const execute = (p: Loaded, given: Readonly<Record<string, Float32Array>>) => {
      if (!warming) return executeNow(p, given);
      // With threads the warmer would take a core from the run: it stops now; with one
      // thread it goes on ahead of the run until the run ends.
      warming = false;
      if (pool) warmer!.stop();
      try {
        return executeNow(p, given);
      } finally {
        warmer!.stop();
      }
    };
    const executeNow = (p: Loaded, given: Readonly<Record<string, Float32Array>>) => {
      const write = () => {
        const buffer = p.state.memory.buffer;
        for (const [index, ptr, n] of p.spec.inputs) {
          new Float32Array(buffer, ptr, n).set(given[inputs[index].name]);
        }
      };
      const current = pool;
      if (!current || disposed) {
        write();
        for (const r of p.state.runs) r(false);
        return;
      }
      try {
        publish(current, p.index, WAKE);
        write();
        for (const r of p.state.runs) r(true);
        publish(current, p.index, END);
        settle(current);
        return;
      } catch (e) {
        if (!(e instanceof Stall)) {
          if (pool === current) {
            // Leave the workers idle for the next run.
            try {
              publish(current, p.index, END);
              settle(current);
            } catch (again) {
              if (!(again instanceof Stall)) throw again;
              restart();
              p.state = instantiate(p.spec, p.index, p.parts, { from: p.state.memory });
            }
          }
          throw e;
        }
      }
      restart();
      p.state = instantiate(p.spec, p.index, p.parts, { from: p.state.memory });
      write();
      for (const r of p.state.runs) r(false);
    };
    const model: ArtifactModel = {
      metadata: Object.freeze({
        ...metadata,
        threads: pool ? threads : 1,
        threadsNote: note,
        simd: v.simd,
        backend: "wasm",
        backendNote,
      }),
      run(given) {
        const p = pick(given);
        execute(p, given);
        const out: Record<string, Float32Array> = {};
        p.spec.outputs.forEach(([ptr, n], i) => {
          Object.defineProperty(out, outputs[i].name, {
            value: new Float32Array(p.state.memory.buffer, ptr, n).slice(),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        });
        return out;
      },
      runRaw(given, into) {
        const p = pick(given);
        const targets = outputArrays(p.spec.outputs.map((o) => o[1]), into);
        execute(p, given);
        p.spec.outputs.forEach(([ptr, n], i) => {
          targets[i].set(new Float32Array(p.state.memory.buffer, ptr, n));
        });
      },
      dispose() {
        if (disposed) return;
        disposed = true;
        warmer?.stop();
        generation++;
        const current = pool;
        pool = undefined;
        if (!current) return;
        const c = current.ctrl;
        Atomics.store(c, STEP, QUIT);
        Atomics.add(c, GEN, 1);
        Atomics.notify(c, GEN);
        for (const w of current.workers) w.stop();
      },
      get restarts() {
        return restarts;
      },
      get threaded() {
        return pool !== undefined;
      },
    };
    // For tests: stops worker `i` as if it had crashed (the model notices and replaces it).
    Object.defineProperty(model, Symbol.for("sigil.artifact.crashWorker"), {
      value: (i: number) => {
        const w = pool?.workers[i];
        if (!w) throw new ModelError(`no worker ${i}`, "threads");
        w.crash();
      },
    });
    return Object.freeze(model);
  }

  return { load, metadata, ModelError };
}

/** What {@link artifactRuntime} lends the WebGPU loader. */
export interface GpuHelpers {
  /** The artifact's error class. */
  readonly ModelError: new (message: string, code: string) => Error & { code: string };
  /** The inflated code blob. */
  readonly kernelCode: () => Promise<Uint8Array>;
  /** A weight file, checked for its size (`own`: a single given source is this file). */
  readonly weightsOf: (
    file: string,
    bytes: number,
    given: ArtifactLoadOptions["weights"],
    what: string,
    own?: boolean,
  ) => Promise<Uint8Array>;
  /** The artifact's metadata. */
  readonly metadata: ArtifactModelInfo;
  /** The program of the inputs' batch size, every input checked (as on WASM). */
  readonly pickProgram: <P extends RunnableProgram>(
    programs: readonly P[],
    given: Readonly<Record<string, Float32Array>>,
  ) => P;
  /** `runRaw`'s output arrays, checked (as on WASM). */
  readonly outputArrays: (
    counts: readonly number[],
    into: Readonly<Record<string, Float32Array>>,
  ) => Float32Array[];
}

/** What {@link GpuHelpers.pickProgram} needs of a loaded program: its batch and inputs. */
export interface RunnableProgram {
  /** The program's spec (WASM or WebGPU). */
  readonly spec: {
    readonly batch: number;
    readonly inputs: readonly (readonly [number, number, number])[];
  };
}

/**
 * The WebGPU part of the artifact runtime (written into artifacts with WebGPU programs as
 * source text, so self-contained like {@link artifactRuntime}): an adapter and device with
 * the limits the programs need, every pipeline made once at load (and checked), every bind
 * group made once, and per run one command buffer (input uploads, the dispatches and copies,
 * the output copies to a readback buffer) with the outputs read back asynchronously. Runs of
 * one model are queued one after another, since they share its buffers. Resolves with the
 * model, or with the reason WebGPU cannot be used here (no `navigator.gpu`, no adapter,
 * limits too small) so that the caller can fall back to WASM.
 *
 * @example It is a function the artifact calls
 * ```ts
 * import assert from "node:assert";
 * import { webgpuRuntime } from "./runtime.ts";
 * assert.strictEqual(typeof webgpuRuntime, "function");
 * ```
 */
export async function webgpuRuntime(
  manifest: Manifest,
  options: ArtifactLoadOptions,
  h: GpuHelpers,
): Promise<ArtifactModel | string> {
  const ModelError = h.ModelError;
  const spec = manifest.webgpu!;
  const STORAGE = 0x80, COPY_SRC = 0x4, COPY_DST = 0x8, MAP_READ = 0x1;
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu || typeof gpu.requestAdapter !== "function") return "no navigator.gpu here";
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return `requestAdapter failed (${e instanceof Error ? e.message : String(e)})`;
  }
  if (!adapter) return "no WebGPU adapter";
  let buffer = 0, binding = 0;
  for (const p of spec.programs) {
    for (const b of p.buffers) buffer = Math.max(buffer, b);
    for (const s of p.steps) {
      if (s[0] === 0) {
        for (let i = 2; i < s[2].length; i += 3) binding = Math.max(binding, s[2][i]);
      }
    }
  }
  const al = adapter.limits;
  if (buffer > al.maxBufferSize || binding > al.maxStorageBufferBindingSize) {
    return `the adapter's buffers are too small (the model needs ${buffer} bytes)`;
  }
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      requiredLimits: {
        maxBufferSize: Math.max(buffer, Math.min(al.maxBufferSize, 268435456)),
        maxStorageBufferBindingSize: Math.max(
          binding,
          Math.min(al.maxStorageBufferBindingSize, 134217728),
        ),
      },
    });
  } catch (e) {
    return `requestDevice failed (${e instanceof Error ? e.message : String(e)})`;
  }
  const owned: GPUBuffer[] = [];
  const make = (size: number, usage: number) => {
    const b = device.createBuffer({ size: Math.max(16, Math.ceil(size / 16) * 16), usage });
    owned.push(b);
    return b;
  };
  const destroy = () => owned.forEach((b) => b.destroy());
  try {
    const all = await h.kernelCode();
    const weights = await h.weightsOf(
      spec.weightsFile,
      spec.weightsBytes,
      options.weights,
      "WebGPU",
    );
    const shared = manifest.shared && spec.programs.some((p) => p.constants.some((c) => c[4]))
      ? await h.weightsOf(
        manifest.shared.weightsFile,
        manifest.shared.weightsBytes,
        options.weights,
        "shared weights",
        false,
      )
      : weights;
    device.pushErrorScope("validation");
    const text = new TextDecoder();
    const pipelines = new Map<number, Promise<GPUComputePipeline>>();
    const pipeline = (i: number) => {
      let got = pipelines.get(i);
      if (!got) {
        const [at, n] = manifest.modules[i];
        const module = device.createShaderModule({ code: text.decode(all.subarray(at, at + n)) });
        got = device.createComputePipelineAsync({
          layout: "auto",
          compute: { module, entryPoint: "main" },
        });
        pipelines.set(i, got);
      }
      return got;
    };
    const programs = await Promise.all(spec.programs.map(async (p) => {
      const buffers = p.buffers.map((size) => make(size, STORAGE | COPY_SRC | COPY_DST));
      for (const [b, offset, at, n, inShared] of p.constants) {
        const from = inShared ? shared : weights;
        if (at + n > from.length) {
          throw new ModelError("the weights are damaged: a constant's range", "weights");
        }
        device.queue.writeBuffer(buffers[b], offset, from as Uint8Array<ArrayBuffer>, at, n);
      }
      const outOffsets: number[] = [];
      let readBytes = 0;
      for (const [, , n] of p.outputs) {
        outOffsets.push(readBytes);
        readBytes += Math.ceil(n * 4 / 4) * 4;
      }
      const readback = make(readBytes, MAP_READ | COPY_DST);
      const steps = await Promise.all(p.steps.map(async (s) => {
        if (s[0] === 1) return null;
        const pl = await pipeline(s[1]);
        const entries: GPUBindGroupEntry[] = [];
        for (let i = 0; i < s[2].length; i += 3) {
          entries.push({
            binding: i / 3,
            resource: { buffer: buffers[s[2][i]], offset: s[2][i + 1], size: s[2][i + 2] },
          });
        }
        return {
          pipeline: pl,
          group: device.createBindGroup({ layout: pl.getBindGroupLayout(0), entries }),
          size: s[3],
        };
      }));
      return { spec: p, buffers, readback, readBytes, outOffsets, steps };
    }));
    const error = await device.popErrorScope();
    if (error) throw new ModelError(`WebGPU: the kernels did not load: ${error.message}`, "webgpu");

    const inputs = manifest.inputs;
    const outputs = manifest.outputs;
    type Loaded = (typeof programs)[number];
    const pick = (given: Readonly<Record<string, Float32Array>>): Loaded =>
      h.pickProgram(programs, given);
    let queue: Promise<unknown> = Promise.resolve();
    let disposed = false;
    const execute = async (
      p: Loaded,
      given: Readonly<Record<string, Float32Array>>,
      into: Float32Array[],
    ) => {
      if (disposed) throw new ModelError("the model was disposed", "options");
      for (const [index, b, n] of p.spec.inputs) {
        const x = given[inputs[index].name];
        // WebGPU takes no shared memory: such inputs are copied first.
        const data = x.buffer instanceof ArrayBuffer ? x : new Float32Array(x);
        if (n > 0) device.queue.writeBuffer(p.buffers[b], 0, data as Float32Array<ArrayBuffer>);
      }
      const encoder = device.createCommandEncoder();
      let pass: GPUComputePassEncoder | undefined;
      p.spec.steps.forEach((s, i) => {
        const step = p.steps[i];
        if (s[0] === 1) {
          pass?.end();
          pass = undefined;
          encoder.copyBufferToBuffer(p.buffers[s[1]], s[2], p.buffers[s[3]], s[4], s[5]);
          return;
        }
        const d = step!;
        pass ??= encoder.beginComputePass();
        pass.setPipeline(d.pipeline);
        pass.setBindGroup(0, d.group);
        pass.dispatchWorkgroups(d.size[0], d.size[1], d.size[2]);
      });
      pass?.end();
      p.spec.outputs.forEach(([b, offset, n], i) => {
        if (n > 0) {
          encoder.copyBufferToBuffer(p.buffers[b], offset, p.readback, p.outOffsets[i], n * 4);
        }
      });
      device.queue.submit([encoder.finish()]);
      await p.readback.mapAsync(MAP_READ, 0, Math.max(16, Math.ceil(p.readBytes / 16) * 16));
      const mapped = p.readback.getMappedRange();
      p.spec.outputs.forEach(([, , n], i) => {
        into[i].set(new Float32Array(mapped, p.outOffsets[i], n));
      });
      p.readback.unmap();
    };
    const serialized = (f: () => Promise<void>): Promise<void> => {
      const run = queue.then(f, f);
      queue = run.catch(() => {});
      return run;
    };
    const model: ArtifactModel = {
      metadata: Object.freeze({
        ...h.metadata,
        threads: 1,
        threadsNote: "",
        simd: "webgpu",
        backend: "webgpu",
        backendNote: "",
      }),
      run(given) {
        let p: Loaded;
        try {
          p = pick(given);
        } catch (e) {
          return Promise.reject(e);
        }
        const into = p.spec.outputs.map(([, , n]) => new Float32Array(n));
        return serialized(() => execute(p, given, into)).then(() => {
          const out: Record<string, Float32Array> = {};
          into.forEach((value, i) => {
            Object.defineProperty(out, outputs[i].name, {
              value,
              enumerable: true,
              writable: true,
              configurable: true,
            });
          });
          return out;
        });
      },
      runRaw(given, into) {
        let p: Loaded;
        let targets: Float32Array[];
        try {
          p = pick(given);
          targets = h.outputArrays(p.spec.outputs.map((o) => o[2]), into);
        } catch (e) {
          return Promise.reject(e);
        }
        return serialized(() => execute(p, given, targets));
      },
      dispose() {
        if (disposed) return;
        disposed = true;
        // Runs in flight finish first: their buffers stay until then.
        void queue.then(destroy);
      },
      restarts: 0,
      threaded: false,
    };
    return Object.freeze(model);
  } catch (e) {
    destroy();
    throw e;
  }
}

/**
 * Writes a constant the artifact derives at load from a parameter it ships once (artifacts
 * with both targets: the WebGPU programs upload parameters as they are, the WASM kernels read
 * them packed or Winograd-transformed). Written into artifacts as source text, so
 * self-contained. `runs` holds seven integers per run, `[dst, src, n1, s1, n2, s2, d2]`: for
 * `j < n2`, `i < n1`, position `dst + j·d2 + i` of `out` takes source element
 * `src + j·s2 + i·s1` (positions between are left as they are: zero in a fresh memory). `kind` 0 copies that element; 1 and 2 read the 3×3 filter starting
 * there and write its F(4×4, 3×3) (36 entries) or F(2×2, 3×3) (16 entries) Winograd tile
 * `G·g·Gᵀ` at the position and every `plane` floats after it, with the float64 operations of
 * the WASM engine's transform in the same order (the compile checks every derived constant
 * against the engine's bytes and ships the bytes where they differ). Throws a RangeError for
 * a run outside `src` or `out`.
 *
 * @example A transpose as one run
 * ```ts
 * import assert from "node:assert";
 * import { deriveConstant } from "./runtime.ts";
 * const out = new Float32Array(6);
 * // out = the 2×3 source [[1, 2, 3], [4, 5, 6]] transposed.
 * deriveConstant(0, new Float32Array([1, 2, 3, 4, 5, 6]), new Int32Array([0, 0, 2, 3, 3, 1, 2]), out, 0);
 * assert.deepStrictEqual(out, new Float32Array([1, 4, 2, 5, 3, 6]));
 * ```
 */
export function deriveConstant(
  kind: number,
  src: Float32Array,
  runs: Int32Array,
  out: Float32Array,
  plane: number,
): void {
  const span = kind === 1 ? 36 : kind === 2 ? 16 : 1;
  const reach = kind === 0 ? 1 : 9;
  for (let r = 0; r + 6 < runs.length; r += 7) {
    const dst = runs[r], s = runs[r + 1], n1 = runs[r + 2], s1 = runs[r + 3];
    const n2 = runs[r + 4], s2 = runs[r + 5], d2 = runs[r + 6];
    const lo = s + Math.min(0, (n1 - 1) * s1) + Math.min(0, (n2 - 1) * s2);
    const hi = s + Math.max(0, (n1 - 1) * s1) + Math.max(0, (n2 - 1) * s2) + reach;
    if (
      n1 < 1 || n2 < 1 || d2 < n1 || dst < 0 || lo < 0 || hi > src.length ||
      dst + (n2 - 1) * d2 + n1 + (span - 1) * plane > out.length
    ) {
      throw new RangeError(`derived constant: run ${r / 7} is out of range`);
    }
  }
  // G's fractions as the engine's transform has them: multiplications by float64 reciprocals.
  const sixth = 1 / 6, twelfth = 1 / 12, twentyfourth = 1 / 24;
  const f4Row = (a: number, b: number, c: number, o: number) => {
    const s = -(a + c) * sixth;
    const d = b * sixth;
    const p = a * twentyfourth + c * sixth;
    const q = b * twelfth;
    out[o] = a * 0.25;
    out[o + plane] = s - d;
    out[o + 2 * plane] = s + d;
    out[o + 3 * plane] = p + q;
    out[o + 4 * plane] = p - q;
    out[o + 5 * plane] = c;
  };
  const f4 = (at: number, o: number) => {
    const a0 = src[at], a1 = src[at + 1], a2 = src[at + 2];
    const b0 = src[at + 3], b1 = src[at + 4], b2 = src[at + 5];
    const c0 = src[at + 6], c1 = src[at + 7], c2 = src[at + 8];
    const s0 = -(a0 + c0) * sixth, d0 = b0 * sixth;
    const p0 = a0 * twentyfourth + c0 * sixth, q0 = b0 * twelfth;
    const s1 = -(a1 + c1) * sixth, d1 = b1 * sixth;
    const p1 = a1 * twentyfourth + c1 * sixth, q1 = b1 * twelfth;
    const s2 = -(a2 + c2) * sixth, d2 = b2 * sixth;
    const p2 = a2 * twentyfourth + c2 * sixth, q2 = b2 * twelfth;
    const row = 6 * plane;
    f4Row(a0 * 0.25, a1 * 0.25, a2 * 0.25, o);
    f4Row(s0 - d0, s1 - d1, s2 - d2, o + row);
    f4Row(s0 + d0, s1 + d1, s2 + d2, o + 2 * row);
    f4Row(p0 + q0, p1 + q1, p2 + q2, o + 3 * row);
    f4Row(p0 - q0, p1 - q1, p2 - q2, o + 4 * row);
    f4Row(c0, c1, c2, o + 5 * row);
  };
  const f2Row = (a: number, b: number, c: number, o: number) => {
    const s = (a + c) * 0.5;
    const d = b * 0.5;
    out[o] = a;
    out[o + plane] = s + d;
    out[o + 2 * plane] = s - d;
    out[o + 3 * plane] = c;
  };
  const f2 = (at: number, o: number) => {
    const a0 = src[at], a1 = src[at + 1], a2 = src[at + 2];
    const b0 = src[at + 3], b1 = src[at + 4], b2 = src[at + 5];
    const c0 = src[at + 6], c1 = src[at + 7], c2 = src[at + 8];
    const s0 = (a0 + c0) * 0.5, d0 = b0 * 0.5;
    const s1 = (a1 + c1) * 0.5, d1 = b1 * 0.5;
    const s2 = (a2 + c2) * 0.5, d2 = b2 * 0.5;
    const row = 4 * plane;
    f2Row(a0, a1, a2, o);
    f2Row(s0 + d0, s1 + d1, s2 + d2, o + row);
    f2Row(s0 - d0, s1 - d1, s2 - d2, o + 2 * row);
    f2Row(c0, c1, c2, o + 3 * row);
  };
  for (let r = 0; r + 6 < runs.length; r += 7) {
    const s = runs[r + 1], n1 = runs[r + 2], s1 = runs[r + 3], n2 = runs[r + 4], s2 = runs[r + 5];
    const d2 = runs[r + 6];
    for (let j = 0; j < n2; j++) {
      let at = s + j * s2;
      let o = runs[r] + j * d2;
      if (kind === 0) {
        if (s1 === 1) {
          out.set(src.subarray(at, at + n1), o);
          o += n1;
        } else for (let i = 0; i < n1; i++, at += s1) out[o++] = src[at];
      } else if (kind === 1) { for (let i = 0; i < n1; i++, at += s1) f4(at, o++); }
      else for (let i = 0; i < n1; i++, at += s1) f2(at, o++);
    }
  }
}
