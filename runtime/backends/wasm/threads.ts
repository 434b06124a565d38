/**
 * A pool of worker threads for the WASM executor. Each worker instantiates, over the same
 * shared `WebAssembly.Memory`, the kernel parts assigned to it and runs them when told. The
 * main thread drives a run: for a split step it publishes the step, runs part 0 itself, and
 * waits until every worker has finished its part.
 *
 * Signalling goes through a small shared `Int32Array` (no message per step): a generation
 * counter the workers wait on, the program and step to run, and a count of parts still
 * running. Between runs a worker waits asynchronously, so its event loop stays free to take
 * new programs; during a run it spins briefly and then blocks on `Atomics.wait`, which wakes it
 * within microseconds.
 *
 * Workers come from `node:worker_threads` where it exists (Deno, Node; unreferenced, so an idle
 * pool never keeps a process alive) and from a Blob-URL Web Worker elsewhere (browsers; there
 * the page must be cross-origin isolated for `SharedArrayBuffer`).
 *
 * @module
 */
import { BackendError } from "../../errors.ts";

/** The slots of the control array. */
const GEN = 0; // bumped for every command
const PROG = 1; // program id of the command
const STEP = 2; // step index, or -1: the run is over
const PENDING = 3; // parts still running
const FAILED = 4; // set when a worker's part threw
const CTRL_INTS = 8;
/** How long the main thread waits for a worker's part before giving up on threads. */
const STALL_MS = 3_000;
/** How long a worker blocks waiting for the next run before returning to its event loop. */
const LINGER_MS = 5;

/** Source of a worker (plain JavaScript, no imports, so it runs from a Blob URL or `eval`). */
const WORKER_SOURCE = `(async () => {
  let port;
  if (typeof self !== "undefined" && typeof self.postMessage === "function" && typeof WorkerGlobalScope !== "undefined") {
    port = { on: (f) => { self.onmessage = (e) => f(e.data); }, post: (m) => self.postMessage(m) };
  } else {
    const wt = await import("node:worker_threads");
    port = { on: (f) => wt.parentPort.on("message", f), post: (m) => wt.parentPort.postMessage(m) };
  }
  const programs = new Map();
  let ctrl;
  let seen = 0;
  const runStep = () => {
    const prog = programs.get(Atomics.load(ctrl, ${PROG}));
    const step = Atomics.load(ctrl, ${STEP});
    try {
      const f = prog && prog.runs[step];
      if (f) f();
    } catch (e) {
      Atomics.store(ctrl, ${FAILED}, 1);
    }
    if (Atomics.sub(ctrl, ${PENDING}, 1) === 1) Atomics.notify(ctrl, ${PENDING});
  };
  // Each command (a generation of GEN) is handled exactly once, however the waits wake up:
  // a step runs its part, "the run is over" is acknowledged; both then count down PENDING.
  // Inside a run steps follow each other quickly, so spin, then block; after a run, block a
  // little longer (runs often follow each other), then go back to the event loop.
  let handled = 0;
  const session = () => {
    let ended = true; // a wake-up without a new command just lingers and returns
    for (;;) {
      if (seen !== handled) {
        handled = seen;
        ended = Atomics.load(ctrl, ${STEP}) < 0;
        if (ended) {
          if (Atomics.sub(ctrl, ${PENDING}, 1) === 1) Atomics.notify(ctrl, ${PENDING});
        } else {
          runStep();
        }
      }
      if (ended) {
        if (Atomics.wait(ctrl, ${GEN}, seen, ${LINGER_MS}) === "timed-out") return;
      } else {
        let spins = 0;
        while (Atomics.load(ctrl, ${GEN}) === seen && spins < 20000) spins++;
        while (Atomics.load(ctrl, ${GEN}) === seen) Atomics.wait(ctrl, ${GEN}, seen, 1000);
      }
      seen = Atomics.load(ctrl, ${GEN});
    }
  };
  const idle = () => {
    const r = Atomics.waitAsync(ctrl, ${GEN}, seen);
    const wake = () => {
      seen = Atomics.load(ctrl, ${GEN});
      session();
      idle();
    };
    if (r.async) r.value.then(wake);
    else wake();
  };
  port.on((m) => {
    if (m.type === "init") {
      ctrl = m.ctrl;
      seen = handled = Atomics.load(ctrl, ${GEN});
      idle();
    } else if (m.type === "program") {
      try {
        const imports = { env: { memory: m.memory } };
        const runs = m.steps.map((s) => {
          if (!s) return undefined;
          const inst = new WebAssembly.Instance(s.module, imports);
          const f = inst.exports.run;
          const args = s.args;
          return () => f(...args);
        });
        programs.set(m.id, { runs });
        Atomics.add(m.ready, 0, 1);
      } catch (e) {
        Atomics.store(m.ready, 1, 1);
        port.post({ type: "error", id: m.id, message: String(e && e.message || e) });
      }
      Atomics.notify(m.ready, 0);
    } else if (m.type === "drop") {
      programs.delete(m.id);
    }
  });
  port.post({ type: "up" });
})();`;

interface WorkerHandle {
  post(message: unknown): void;
  terminate(): void | Promise<unknown>;
  /** Keeps the process alive for this worker (node:worker_threads only). */
  ref(): void;
  /** Lets the process exit while this worker is idle. */
  unref(): void;
}

/** A step's part for one worker: the module and its arguments (undefined: nothing to do). */
export type WorkerPart = { readonly module: WebAssembly.Module; readonly args: readonly number[] };

/** Throws a typed error unless `threads` is an integer in [1, 64]; returns it. */
export function checkThreads(threads: number, where = "threads"): number {
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
    throw new BackendError(`${where}: threads must be an integer in [1, 64], got ${threads}`);
  }
  return threads;
}

/** Whether this runtime can share memory between threads. */
export function threadsSupported(): boolean {
  const g = globalThis as { crossOriginIsolated?: boolean };
  return typeof SharedArrayBuffer === "function" && typeof Atomics.waitAsync === "function" &&
    g.crossOriginIsolated !== false;
}

/** Logical cores reported by the runtime (1 when unknown). */
export function hardwareThreads(): number {
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
    ?.hardwareConcurrency;
  return typeof n === "number" && Number.isInteger(n) && n > 0 ? n : 1;
}

async function spawn(
  onMessage: (m: { type: string; id?: number; message?: string }) => void,
) {
  const g = globalThis as { Deno?: unknown; process?: { versions?: { node?: string } } };
  if (g.Deno !== undefined || g.process?.versions?.node !== undefined) {
    const wt = await import("node:worker_threads");
    const w = new wt.Worker(WORKER_SOURCE, { eval: true });
    w.on("message", onMessage);
    return {
      post: (m: unknown) => w.postMessage(m),
      terminate: () => w.terminate(),
      ref: () => w.ref(),
      unref: () => w.unref(),
    };
  }
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  const w = new Worker(url, { type: "module" });
  w.onmessage = (e) => onMessage(e.data);
  return {
    post: (m: unknown) => w.postMessage(m),
    terminate: () => w.terminate(),
    ref: () => {},
    unref: () => {},
  };
}

/** A program registered with a pool: run its split steps across the pool's threads. */
export class PoolProgram {
  readonly #pool: ThreadPool;
  readonly #id: number;
  readonly #ready: Int32Array;
  readonly #workers: number;

  /** @internal */
  constructor(pool: ThreadPool, id: number, ready: Int32Array, workers: number) {
    this.#pool = pool;
    this.#id = id;
    this.#ready = ready;
    this.#workers = workers;
  }

  /** Whether every worker has instantiated this program's parts. */
  get ready(): boolean {
    return !this.#pool.closed && Atomics.load(this.#ready, 0) === this.#workers &&
      this.#pool.running;
  }

  /** Resolves once every worker holds this program (rejects if one failed to). */
  async whenReady(): Promise<void> {
    await this.#pool.started;
    this.#pool.hold(1);
    try {
      for (;;) {
        if (this.#pool.closed) return;
        if (Atomics.load(this.#ready, 1) !== 0) {
          throw new BackendError(
            `a worker could not instantiate the program: ${
              this.#pool.errorOf(this.#id) ?? "(its message has not arrived yet)"
            }`,
          );
        }
        const n = Atomics.load(this.#ready, 0);
        if (n === this.#workers) return;
        const r = Atomics.waitAsync(this.#ready, 0, n, 50);
        if (r.async) await r.value;
      }
    } finally {
      this.#pool.hold(-1);
    }
  }

  /** Starts a run (call before the first {@link step}). */
  begin(): void {
    this.#pool.begin();
  }

  /** Runs split step `index`: workers take parts 1.., `own` runs part 0 here. */
  step(index: number, own: () => void): void {
    this.#pool.step(this.#id, index, own);
  }

  /** Ends a run, letting the workers go idle. */
  end(): void {
    this.#pool.end();
  }

  /** Forgets the program in the workers. */
  drop(): void {
    this.#pool.drop(this.#id);
  }
}

/**
 * Worker threads sharing WASM memories with the main thread.
 *
 * @example Two threads (one worker besides the main thread)
 * ```ts
 * import assert from "node:assert";
 * import { ThreadPool } from "./threads.ts";
 * const pool = new ThreadPool(2);
 * assert.strictEqual(pool.threads, 2);
 * await pool.started;
 * await pool.terminate();
 * ```
 */
export class ThreadPool {
  /** Threads including the main one. */
  readonly threads: number;
  /** Resolves when every worker is up. */
  readonly started: Promise<void>;
  readonly #ctrl: Int32Array;
  #workers: WorkerHandle[] = [];
  #nextId = 1;
  #closed = false;
  #up = false;
  #inRun = false;
  #stepped = false;
  #holds = 0;
  readonly #errors = new Map<number, string>();

  /** Starts `threads - 1` workers (threads counts the calling thread). */
  constructor(threads: number) {
    checkThreads(threads, "ThreadPool");
    if (threads > 1 && !threadsSupported()) {
      throw new BackendError(
        "threads need SharedArrayBuffer and Atomics.waitAsync (in browsers, a cross-origin isolated page)",
      );
    }
    this.threads = threads;
    this.#ctrl = new Int32Array(new SharedArrayBuffer(CTRL_INTS * 4));
    this.#ctrl[STEP] = -1;
    this.started = this.#start(threads - 1);
    this.started.catch(() => {});
  }

  /**
   * @internal Counts waiters that need the workers' replies: while any wait, the workers keep
   * the process alive; otherwise an idle pool lets it exit.
   */
  hold(delta: number): void {
    const before = this.#holds;
    this.#holds += delta;
    if (before === 0 && this.#holds > 0) { for (const w of this.#workers) w.ref(); }
    if (before > 0 && this.#holds === 0) { for (const w of this.#workers) w.unref(); }
  }

  async #start(count: number): Promise<void> {
    this.#holds++;
    try {
      await this.#spawnAll(count);
    } finally {
      this.hold(-1);
    }
  }

  async #spawnAll(count: number): Promise<void> {
    const ups: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      let up!: () => void;
      ups.push(new Promise<void>((res) => up = res));
      const w = await spawn((m) => {
        if (m.type === "up") up();
        else if (m.type === "error") this.#errors.set(m.id ?? 0, m.message ?? "unknown error");
      });
      if (this.#closed) {
        await w.terminate();
        return;
      }
      this.#workers.push(w);
      w.post({ type: "init", ctrl: this.#ctrl });
    }
    await Promise.all(ups);
    this.#up = true;
  }

  /** @internal The message of a worker that failed to instantiate program `id`. */
  errorOf(id: number): string | undefined {
    return this.#errors.get(id);
  }

  /** Whether the pool was terminated. */
  get closed(): boolean {
    return this.#closed;
  }

  /** @internal Whether every worker is up and the pool is open. */
  get running(): boolean {
    return this.#up && !this.#closed;
  }

  /**
   * Registers a program: `parts[w][s]` is worker `w`'s part of step `s` (index 0 is the first
   * worker, i.e. thread 1). Workers instantiate their parts asynchronously; use the program
   * once {@link PoolProgram.ready}.
   */
  register(
    memory: WebAssembly.Memory,
    parts: readonly (readonly (WorkerPart | undefined)[])[],
  ): PoolProgram {
    if (this.#closed) throw new BackendError("the thread pool was terminated");
    const id = this.#nextId++;
    const ready = new Int32Array(new SharedArrayBuffer(8));
    const workers = this.threads - 1;
    const send = () => {
      this.#workers.forEach((w, i) =>
        w.post({ type: "program", id, memory, ready, steps: parts[i] ?? [] })
      );
    };
    // Workers that exist take the program now (a caller that never yields to the event loop
    // still gets threads); the ones still starting take it once the pool is up.
    if (this.#workers.length === workers) send();
    else this.started.then(send, () => {});
    return new PoolProgram(this, id, ready, workers);
  }

  /** @internal */
  begin(): void {
    if (this.#inRun) throw new BackendError("a run on this thread pool is already going");
    this.#inRun = true;
    this.#stepped = false;
  }

  /** @internal */
  step(prog: number, index: number, own: () => void): void {
    const c = this.#ctrl;
    this.#stepped = true;
    Atomics.store(c, PROG, prog);
    Atomics.store(c, STEP, index);
    Atomics.store(c, PENDING, this.threads - 1);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    let error: unknown;
    try {
      own();
    } catch (e) {
      error = e;
    }
    this.#waitIdle();
    if (error !== undefined) throw error;
    if (Atomics.exchange(c, FAILED, 0) !== 0) {
      throw new BackendError(`a worker thread failed while running step ${index}`);
    }
  }

  #waitIdle(): void {
    const c = this.#ctrl;
    let spins = 0;
    let since = 0;
    for (;;) {
      const left = Atomics.load(c, PENDING);
      if (left === 0) return;
      if (spins < 100000) {
        spins++;
        continue;
      }
      // A worker that never answers (killed, or its thread starved for a minute) must not hang
      // the caller: give up with an error, and run later steps on this thread.
      const now = performance.now();
      if (since === 0) since = now;
      else if (now - since > STALL_MS) {
        void this.terminate(); // marks the pool closed at once
        throw new BackendError(
          `a worker thread did not finish its part within ${STALL_MS / 1000} s; threads are off ` +
            `(state ${Array.from(c.subarray(0, 5)).join(",")})`,
        );
      }
      try {
        Atomics.wait(c, PENDING, left, 1000);
      } catch {
        // Atomics.wait is not allowed on this thread (a browser's main thread): keep spinning.
        spins = 0;
      }
    }
  }

  /**
   * @internal Ends a run. Like every command, "the run is over" is acknowledged by every
   * worker before this returns, so a worker never reads a command's fields while the next
   * command overwrites them (it would run a part twice, or count a part it has not run).
   */
  end(): void {
    if (!this.#inRun) return;
    this.#inRun = false;
    if (!this.#stepped) return; // the workers never left their idle wait
    const c = this.#ctrl;
    Atomics.store(c, STEP, -1);
    Atomics.store(c, PENDING, this.threads - 1);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    this.#waitIdle();
  }

  /** @internal */
  drop(id: number): void {
    for (const w of this.#workers) w.post({ type: "drop", id });
  }

  /** Stops the workers. Programs registered here then run on the calling thread only. */
  async terminate(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.started.catch(() => {});
    await Promise.all(this.#workers.map((w) => w.terminate()));
    this.#workers = [];
  }
}

const pools = new Map<number, ThreadPool>();
let defaultThreads: number | undefined;

/**
 * Sets how many threads compiled WASM programs use by default (1: no workers). Takes effect
 * for programs compiled afterwards.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { getDefaultThreads, setDefaultThreads } from "./threads.ts";
 * setDefaultThreads(1);
 * assert.strictEqual(getDefaultThreads(), 1);
 * ```
 */
export function setDefaultThreads(threads: number): void {
  defaultThreads = checkThreads(threads, "setDefaultThreads");
}

/** The default thread count: as set, else every core the runtime reports (at most 16). */
export function getDefaultThreads(): number {
  if (defaultThreads !== undefined) return defaultThreads;
  return threadsSupported() ? Math.min(16, hardwareThreads()) : 1;
}

/** The shared pool of `threads` threads (started on first use), or undefined for one thread. */
export function poolFor(threads: number): ThreadPool | undefined {
  if (threads <= 1) return undefined;
  let pool = pools.get(threads);
  if (!pool || pool.closed) pools.set(threads, pool = new ThreadPool(threads));
  return pool;
}

/**
 * Starts the default pool's workers now (they come up in the background), so that programs
 * compiled later find them ready. Hybridizing a block calls this.
 */
export function startDefaultThreads(): void {
  const n = getDefaultThreads();
  if (n > 1 && threadsSupported()) poolFor(n);
}

/**
 * Terminates every shared pool (programs compiled earlier then run on the calling thread).
 * Idle pools never keep a process alive; call this to free the workers early.
 */
export async function terminateThreads(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map((p) => p.terminate()));
}
