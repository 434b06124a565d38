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
 * calling thread. Splits never change the arithmetic: one thread gives the same bits.
 *
 * @module
 */
import type { Manifest, ProgramSpec, StepSpec } from "./manifest.ts";

/** Options of an artifact's `load`. */
export interface ArtifactLoadOptions {
  /**
   * The weight file of the chosen variant, when it is not where the artifact says: a path
   * (Node, Deno), a URL, or the bytes.
   */
  readonly weights?: string | URL | ArrayBuffer | ArrayBufferView;
  /** Threads to use, at most what the artifact was compiled for (default: that many). */
  readonly threads?: number;
  /** `relaxed`, `baseline`, or `auto` (default: relaxed SIMD where the runtime validates it). */
  readonly simd?: "auto" | "relaxed" | "baseline";
}

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
}

/** A loaded artifact model. */
export interface ArtifactModel {
  /** What the artifact is, plus what this load chose. */
  readonly metadata: ArtifactModelInfo & {
    /** Threads this load runs on (1 where the runtime cannot share memory). */
    readonly threads: number;
    /** Why it runs on fewer threads than compiled for, if it does. */
    readonly threadsNote: string;
    /** The SIMD variant this load runs. */
    readonly simd: string;
  };
  /** Runs on inputs by name; returns fresh output arrays by name. */
  run(inputs: Readonly<Record<string, Float32Array>>): Record<string, Float32Array>;
  /** Runs on inputs by name, writing every output into the caller's array of that name. */
  runRaw(
    inputs: Readonly<Record<string, Float32Array>>,
    outputs: Readonly<Record<string, Float32Array>>,
  ): void;
  /** Stops the worker threads; later runs use the calling thread. */
  dispose(): void;
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
  const STALL_MS = 10000;

  const fromBase64 = (s: string): Uint8Array => {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  };
  const inflate = async (bytes: Uint8Array): Promise<Uint8Array> => {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
      new DecompressionStream("deflate"),
    );
    return new Uint8Array(await new Response(stream).arrayBuffer());
  };
  let codeBytes: Promise<Uint8Array> | undefined;
  const kernelCode = () =>
    codeBytes ??= inflate(fromBase64(code)).then((b) => {
      if (b.length !== manifest.codeBytes) {
        throw new ModelError("the artifact's code is damaged", "code");
      }
      return b;
    });

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

  const readWeights = async (
    source: string | URL | ArrayBuffer | ArrayBufferView,
  ): Promise<Uint8Array> => {
    if (source instanceof ArrayBuffer) return new Uint8Array(source);
    if (ArrayBuffer.isView(source)) {
      return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
    }
    let url: URL | undefined;
    try {
      url = new URL(String(source));
    } catch {
      url = undefined;
    }
    const isNode = g.process?.versions?.node !== undefined;
    if (isNode && (!url || url.protocol === "file:")) {
      const spec = "node:fs/promises";
      const fs = (g.process?.getBuiltinModule?.(spec) ?? await import(spec)) as {
        readFile(p: string | URL): Promise<Uint8Array>;
      };
      const data = await fs.readFile(url ?? String(source));
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }
    const response = await fetch(url ?? new URL(String(source), base));
    if (!response.ok) {
      throw new ModelError(
        `cannot fetch the weights ${JSON.stringify(response.url)}: HTTP ${response.status}`,
        "weights",
      );
    }
    return new Uint8Array(await response.arrayBuffer());
  };

  /** The body of every worker (sent as source text: it must stay self-contained). */
  function workerMain() {
    type Ctrl = Int32Array;
    const start = (port: { on(f: (m: Any) => void): void; post(m: unknown): void }) => {
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
          on: (f) => wt.parentPort.once("message", f),
          post: (m) => wt.parentPort.postMessage(m),
        })
      );
    }
  }

  interface WorkerHandle {
    post(m: unknown): void;
    ready: Promise<void>;
    /** Lets the process exit while the worker waits (Node, Deno). */
    unref(): void;
    stop(): void;
  }

  const spawn = async (): Promise<WorkerHandle> => {
    const source = `(${String(workerMain)})()`;
    let up!: () => void, fail!: (e: unknown) => void;
    const ready = new Promise<void>((res, rej) => (up = res, fail = rej));
    if (g.process?.versions?.node !== undefined) {
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
      w.on("message", () => up());
      w.on("error", (e) => fail(e));
      return {
        post: (m) => w.postMessage(m),
        ready,
        unref: () => w.unref(),
        stop: () => void w.terminate(),
      };
    }
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    const w = new Worker(url);
    URL.revokeObjectURL(url);
    w.onmessage = () => up();
    w.onerror = (e) => fail(e);
    return { post: (m) => w.postMessage(m), ready, unref: () => {}, stop: () => w.terminate() };
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
    outstanding: boolean;
  }
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
      else if (now - since > STALL_MS) {
        throw new ModelError(
          `a worker thread stopped answering (state ${Array.from(c).join(",")})`,
          "threads",
        );
      }
      blockOnce(c, left);
    }
    pool.outstanding = false;
    if (Atomics.exchange(c, FAILED, 0) !== 0) {
      throw new ModelError("a kernel failed on a worker thread", "threads");
    }
  };

  const metadata: ArtifactModelInfo = Object.freeze({
    sigil: manifest.sigil,
    target: manifest.target,
    graphHash: manifest.graphHash,
    inputs: manifest.inputs,
    outputs: manifest.outputs,
    batchSizes: manifest.batchSizes,
    compiledThreads: manifest.threads,
    variants: manifest.variants.map((v) => v.simd),
  });

  async function load(options: ArtifactLoadOptions = {}): Promise<ArtifactModel> {
    const wanted = options.threads ?? manifest.threads;
    if (!Number.isInteger(wanted) || wanted < 1) {
      throw new ModelError(`threads must be a positive integer, got ${wanted}`, "options");
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
    await Promise.all(
      modulesOf(v).map(async (i) => {
        compiled.set(
          i,
          await WebAssembly.compile(moduleBytes(i, shared) as Uint8Array<ArrayBuffer>),
        );
      }),
    );

    let weights: Uint8Array;
    if (options.weights !== undefined) weights = await readWeights(options.weights);
    else if (embedded) weights = fromBase64(embedded[v.weightsFile]);
    else if (manifest.weights === "fetch") {
      const at = manifest.weightsUrl ?? "";
      weights = await readWeights(
        at.endsWith("/") ? new URL(v.weightsFile, new URL(at, base)) : new URL(at, base),
      );
    } else weights = await readWeights(new URL(v.weightsFile, base));
    if (weights.byteLength !== v.weightsBytes) {
      throw new ModelError(
        `the weights have ${weights.byteLength} bytes; the ${v.simd} variant needs ${v.weightsBytes}`,
        "weights",
      );
    }

    interface Loaded {
      readonly spec: ProgramSpec;
      readonly memory: WebAssembly.Memory;
      readonly runs: ((threaded: boolean) => void)[];
      readonly parts: ({ module: WebAssembly.Module; args: readonly number[] } | null)[][];
    }
    const programs: Loaded[] = v.programs.map((spec) => {
      const pages = Math.ceil(spec.memoryBytes / 65536);
      const memShared = spec.shared && useShared;
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: memShared });
      const bytes = new Uint8Array(memory.buffer);
      for (const [ptr, at, n] of spec.constants) bytes.set(weights.subarray(at, at + n), ptr);
      const imports = { env: { memory } };
      const call = (m: number, args: readonly number[]) => {
        const run = new WebAssembly.Instance(compiled.get(m)!, imports).exports.run as (
          ...a: number[]
        ) => void;
        const a = [...args];
        return () => run(...a);
      };
      const parts: Loaded["parts"] = Array.from({ length: Math.max(0, threads - 1) }, () => []);
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
        if (threads < 2 || each.length < 2 || each.length > threads) return whole;
        s[1].forEach((m, i) => {
          if (i > 0) parts[i - 1][index] = { module: compiled.get(m)!, args: s[2][i] };
        });
        const own = each[0];
        return (threaded) => {
          if (!threaded) return whole();
          publish(pool!, programIndex.get(spec)!, index);
          own();
          settle(pool!);
        };
      });
      return { spec, memory, runs, parts };
    });
    const programIndex = new Map(programs.map((p, i) => [p.spec, i]));

    let pool: Pool | undefined;
    let note = threadsNote;
    const splits = programs.some((p) => p.parts.some((w) => w.some((x) => x)));
    if (threads > 1 && !splits) note = "one thread: no step of this model splits across threads";
    if (threads > 1 && splits) {
      const ctrl = new Int32Array(new SharedArrayBuffer(8 * 4));
      const workers: WorkerHandle[] = [];
      try {
        for (let i = 1; i < threads; i++) workers.push(await spawn());
        workers.forEach((w, i) =>
          w.post({
            ctrl,
            programs: programs.map((p) => ({
              memory: p.memory,
              parts: Array.from({ length: p.spec.steps.length }, (_, s) => p.parts[i][s] ?? null),
            })),
          })
        );
        await Promise.all(workers.map((w) => w.ready));
        for (const w of workers) w.unref();
        pool = { ctrl, workers, outstanding: false };
      } catch (e) {
        // Workers that cannot start (a policy forbids Blob workers, a sandbox): one thread.
        for (const w of workers) w.stop();
        note = `one thread: worker threads could not start (${
          e instanceof Error ? e.message : String(e)
        })`;
      }
    }

    const inputs = manifest.inputs;
    const outputs = manifest.outputs;
    const pick = (given: Readonly<Record<string, Float32Array>>): Loaded => {
      if (given === null || typeof given !== "object") {
        throw new ModelError("run: inputs must be an object of Float32Arrays by name", "input");
      }
      const first = inputs[0];
      const data = Object.hasOwn(given, first.name) ? given[first.name] : undefined;
      if (!(data instanceof Float32Array)) {
        throw new ModelError(
          `run: no Float32Array for input ${JSON.stringify(first.name)}`,
          "input",
        );
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
    let disposed = false;
    const execute = (p: Loaded, given: Readonly<Record<string, Float32Array>>) => {
      const buffer = p.memory.buffer;
      const write = () => {
        for (const [index, ptr, n] of p.spec.inputs) {
          new Float32Array(buffer, ptr, n).set(given[inputs[index].name]);
        }
      };
      if (!pool || disposed) {
        write();
        for (const r of p.runs) r(false);
        return;
      }
      const at = programIndex.get(p.spec)!;
      publish(pool, at, WAKE);
      try {
        write();
        for (const r of p.runs) r(true);
      } finally {
        publish(pool, at, END);
        settle(pool);
      }
    };
    const model: ArtifactModel = {
      metadata: Object.freeze({
        ...metadata,
        threads: pool ? threads : 1,
        threadsNote: note,
        simd: v.simd,
      }),
      run(given) {
        const p = pick(given);
        execute(p, given);
        const out: Record<string, Float32Array> = {};
        p.spec.outputs.forEach(([ptr, n], i) => {
          Object.defineProperty(out, outputs[i].name, {
            value: new Float32Array(p.memory.buffer, ptr, n).slice(),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        });
        return out;
      },
      runRaw(given, into) {
        const p = pick(given);
        const targets = p.spec.outputs.map(([, n], i) => {
          const name = outputs[i].name;
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
        execute(p, given);
        p.spec.outputs.forEach(([ptr, n], i) => {
          targets[i].set(new Float32Array(p.memory.buffer, ptr, n));
        });
      },
      dispose() {
        if (disposed || !pool) return;
        disposed = true;
        const c = pool.ctrl;
        Atomics.store(c, STEP, QUIT);
        Atomics.add(c, GEN, 1);
        Atomics.notify(c, GEN);
        for (const w of pool.workers) w.stop();
      },
    };
    return Object.freeze(model);
  }

  return { load, metadata, ModelError };
}
