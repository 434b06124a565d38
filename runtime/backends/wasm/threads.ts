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
const STEP = 2; // step index, or RUN_OVER, or WAKE
const RUN_OVER = -1; // the run is over: go idle after a short linger
const WAKE = -2; // a run starts: get ready for its steps
const PENDING = 3; // parts still running
const FAILED = 4; // set when a worker's part threw
const COUNTS = 8; // COUNTS + i: how many programs worker i holds
const MAX_WORKERS = 63;
const CTRL_INTS = COUNTS + MAX_WORKERS;
/** How long the main thread waits for a worker's part before replacing the workers. */
const STALL_MS = 3_000;
/** How long a worker blocks waiting for the next run before returning to its event loop. */
const LINGER_MS = 5;
/**
 * How long a worker spins for the next step of a run before it blocks: the calling thread runs
 * unsplit steps between split ones, and waking a blocked thread costs tens of microseconds a
 * step, which adds up over the hundred steps of a small network.
 */
const SPIN_MS = 2;

/**
 * Runs the ops of a constant computed by a WASM kernel (see {@link ConstantJobs}) over a
 * memory: `ops` holds, in sequence, `[0, from, count, ffrom, fcount]` (copy `values[from ..
 * from + count)` to `scratch` and `factors[ffrom .. ffrom + fcount)` to the 16-byte aligned
 * bytes after them) and `[1, ...args]` (nine i32: `run` with args 0, 2 and 3 relative to
 * `scratch`, the others as they are). Self-contained (no references outside it): workers get
 * its source text.
 */
export function runDeriveOps(
  run: (...args: number[]) => void,
  memory: WebAssembly.Memory,
  scratch: number,
  values: Float32Array,
  factors: Float64Array,
  ops: Int32Array,
): void {
  for (let i = 0; i < ops.length;) {
    if (ops[i] === 0) {
      const from = ops[i + 1], count = ops[i + 2], ffrom = ops[i + 3], fcount = ops[i + 4];
      new Float32Array(memory.buffer, scratch, count).set(values.subarray(from, from + count));
      const at = scratch + Math.ceil(count / 4) * 16;
      new Float64Array(memory.buffer, at, fcount).set(factors.subarray(ffrom, ffrom + fcount));
      i += 5;
    } else {
      run(
        scratch + ops[i + 1],
        ops[i + 2],
        scratch + ops[i + 3],
        scratch + ops[i + 4],
        ops[i + 5],
        ops[i + 6],
        ops[i + 7],
        ops[i + 8],
        ops[i + 9],
      );
      i += 10;
    }
  }
}

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
  let index = 0;
  let seen = 0;
  const count = () => Atomics.store(ctrl, ${COUNTS} + index, programs.size);
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
  // a step runs its part, "a run starts" and "the run is over" are acknowledged; all then count
  // down PENDING. Inside a run steps follow each other quickly, so spin (for up to ${SPIN_MS} ms),
  // then block; after a run, block a little longer (runs often follow each other), then go back
  // to the event loop.
  let handled = 0;
  const session = () => {
    let ended = true; // a wake-up without a new command just lingers and returns
    for (;;) {
      if (seen !== handled) {
        handled = seen;
        const step = Atomics.load(ctrl, ${STEP});
        ended = step === ${RUN_OVER};
        if (step < 0) {
          if (Atomics.sub(ctrl, ${PENDING}, 1) === 1) Atomics.notify(ctrl, ${PENDING});
        } else {
          runStep();
        }
      }
      if (ended) {
        if (Atomics.wait(ctrl, ${GEN}, seen, ${LINGER_MS}) === "timed-out") return;
      } else {
        const t0 = performance.now();
        let spins = 0;
        while (Atomics.load(ctrl, ${GEN}) === seen) {
          if ((++spins & 1023) === 0 && performance.now() - t0 > ${SPIN_MS}) break;
        }
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
  const runDeriveOps = ${runDeriveOps.toString()};
  // Kernels run ahead of a program's first run (see KernelWarmer): each over a memory of the
  // program's size holding zeros, with the arguments the program will pass, so that V8 has
  // optimized their functions before the program calls them.
  const warming = [];
  let warmMemory;
  let warmShared = false;
  let beat;
  const warmOne = () => {
    const task = warming.shift();
    if (task === undefined) {
      port.post({ type: "warm-idle" });
      return;
    }
    try {
      const pages = Math.ceil(task.bytes / 65536);
      if (warmMemory === undefined || warmShared !== task.shared) {
        warmShared = task.shared;
        warmMemory = task.shared
          ? new WebAssembly.Memory({ initial: pages, maximum: 65536, shared: true })
          : new WebAssembly.Memory({ initial: pages });
      } else if (pages > warmMemory.buffer.byteLength / 65536) {
        warmMemory.grow(pages - warmMemory.buffer.byteLength / 65536);
      }
      const run = new WebAssembly.Instance(task.module, { env: { memory: warmMemory } }).exports.run;
      if (typeof run === "function") run(...task.args);
    } catch (e) {
      // a kernel that traps has run as far as it could
    }
    if (beat) Atomics.add(beat, 0, 1);
    if (warming.length) setTimeout(warmOne, 0);
    else {
      warmMemory = undefined;
      port.post({ type: "warm-idle" });
    }
  };
  port.on((m) => {
    if (m.type === "init") {
      ctrl = m.ctrl;
      index = m.index;
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
        count();
        Atomics.add(m.ready, 0, 1);
      } catch (e) {
        Atomics.store(m.ready, 1, 1);
        port.post({ type: "error", id: m.id, message: String(e && e.message || e) });
      }
      Atomics.notify(m.ready, 0);
    } else if (m.type === "warm") {
      // One kernel per task, so that a stop is taken between kernels.
      beat = m.beat;
      warming.push(...m.tasks);
      if (warming.length === m.tasks.length) setTimeout(warmOne, 0);
    } else if (m.type === "touch") {
      // Pages of a shared program memory, faulted in here before the compile writes them: a
      // compare-exchange of 0 with 0 makes the page writable and never changes a value.
      const v = new Int32Array(m.memory.buffer);
      const end = Math.min(v.length, m.to >> 2);
      for (let i = m.from >> 2; i < end; i += 1024) Atomics.compareExchange(v, i, 0, 0);
    } else if (m.type === "derive") {
      // Constants computed here while the calling thread goes on compiling (ConstantJobs):
      // unless the caller has taken the job back, run its ops and mark it done. Its ops and
      // values come in a shared memory of the jobs (typed arrays in messages are slow to
      // arrive through some worker implementations).
      if (Atomics.compareExchange(m.claims, m.index, 0, 1) !== 0) return;
      try {
        // An instance per job (a small module): one kept across jobs would keep a disposed
        // program's memory alive here.
        const run = new WebAssembly.Instance(m.module, { env: { memory: m.memory } }).exports.run;
        const b = m.staging.buffer;
        runDeriveOps(run, m.memory, m.scratch, new Float32Array(b, m.valuesAt, m.values),
          new Float64Array(b, m.factorsAt, m.factors), new Int32Array(b, m.opsAt, m.ops));
        Atomics.store(m.claims, m.index, 2);
      } catch (e) {
        Atomics.store(m.claims, m.index, 3);
      }
      Atomics.notify(m.claims, m.index);
    } else if (m.type === "retire") {
      // A compile helper's last message: everything posted before it is done.
      port.post({ type: "retired" });
    } else if (m.type === "warm-stop") {
      warming.length = 0;
      warmMemory = undefined;
      port.post({ type: "warm-idle" });
    } else if (m.type === "drop") {
      programs.delete(m.id);
      count();
    }
  });
  port.post({ type: "up" });
})();`;

interface WorkerHandle {
  post(message: unknown): void;
  /** Stops the worker; its exit is then not reported as a death. */
  kill(): Promise<unknown>;
  /** Stops the worker as if it had crashed (for tests). */
  crash(): Promise<unknown>;
  /** Keeps the process alive for this worker (node:worker_threads only). */
  ref(): void;
  /** Lets the process exit while this worker is idle. */
  unref(): void;
}

interface WorkerEvents {
  /** The worker is up and takes commands. */
  up(): void;
  /** A program could not be instantiated there. */
  error(id: number, message: string): void;
  /** The worker is gone: `killed` by the pool, or not (crashed, terminated from outside). */
  gone(killed: boolean): void;
  /** Any other message. */
  other?(message: { type: string }): void;
}

/** A step's part for one worker: the module and its arguments (undefined: nothing to do). */
export type WorkerPart = { readonly module: WebAssembly.Module; readonly args: readonly number[] };

/** Throws a typed error unless `threads` is an integer in [1, 64]; returns it. */
export function checkThreads(threads: number, where = "threads"): number {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WORKERS + 1) {
    throw new BackendError(
      `${where}: threads must be an integer in [1, ${MAX_WORKERS + 1}], got ${threads}`,
    );
  }
  return threads;
}

/** Whether this runtime can share memory between threads. */
export function threadsSupported(): boolean {
  const g = globalThis as { crossOriginIsolated?: boolean };
  return typeof SharedArrayBuffer === "function" && typeof Atomics.waitAsync === "function" &&
    g.crossOriginIsolated !== false;
}

/**
 * Logical cores reported by the runtime (1 when unknown): `navigator.hardwareConcurrency`, or
 * where there is no `navigator` (Node 20) `os.availableParallelism()`, reached through
 * `process.getBuiltinModule` so that nothing is imported in a browser.
 */
export function hardwareThreads(): number {
  const g = globalThis as {
    navigator?: { hardwareConcurrency?: number };
    process?: { getBuiltinModule?: (id: string) => unknown };
  };
  let n = g.navigator?.hardwareConcurrency;
  if (n === undefined) {
    const os = g.process?.getBuiltinModule?.("node:os") as
      | { availableParallelism?: () => number }
      | undefined;
    n = os?.availableParallelism?.();
  }
  return typeof n === "number" && Number.isInteger(n) && n > 0 ? n : 1;
}

type WorkerThreads = typeof import("node:worker_threads");

/**
 * `node:worker_threads` at once where the runtime offers `process.getBuiltinModule` (Deno,
 * Node ≥ 20.16): workers created without a trip through the event loop start while a
 * synchronous compile runs, and can take the first run's parts. Undefined elsewhere.
 */
function workerThreadsNow(): WorkerThreads | undefined {
  const g = globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } };
  try {
    return g.process?.getBuiltinModule?.("node:worker_threads") as WorkerThreads | undefined;
  } catch {
    return undefined;
  }
}

/** `node:worker_threads`, imported inside `try` so that bundlers for browsers leave it out. */
async function nodeWorkerThreads(): Promise<WorkerThreads> {
  try {
    return workerThreadsNow() ?? await import("node:worker_threads");
  } catch (e) {
    throw new BackendError(`cannot load node:worker_threads: ${(e as Error)?.message}`, {
      cause: e,
    });
  }
}

/**
 * A new worker: created synchronously where that is possible (see {@link workerThreadsNow}; in
 * browsers `new Worker` is), else after importing `node:worker_threads`.
 */
function spawn(events: WorkerEvents, web = false): WorkerHandle | Promise<WorkerHandle> {
  const g = globalThis as {
    Deno?: unknown;
    process?: { versions?: { node?: string } };
    Worker?: unknown;
  };
  // Deno's own workers start without loading its Node compatibility layer (about 40 ms of the
  // calling thread the first time), but keep the process alive while they exist.
  if (web && g.Deno !== undefined && typeof g.Worker === "function") {
    return spawnWith(events, undefined);
  }
  if (g.Deno !== undefined || g.process?.versions?.node !== undefined) {
    const now = workerThreadsNow();
    if (now !== undefined) return spawnWith(events, now);
    return nodeWorkerThreads().then((wt) => spawnWith(events, wt));
  }
  return spawnWith(events, undefined);
}

function spawnWith(events: WorkerEvents, wt: WorkerThreads | undefined): WorkerHandle {
  let killed = false;
  let gone = false;
  const onMessage = (m: { type: string; id?: number; message?: string }) => {
    if (m.type === "up") events.up();
    else if (m.type === "error") events.error(m.id ?? 0, m.message ?? "unknown error");
    else events.other?.(m);
  };
  const onGone = () => {
    if (gone) return;
    gone = true;
    events.gone(killed);
  };
  if (wt !== undefined) {
    const w = new wt.Worker(WORKER_SOURCE, { eval: true });
    w.on("message", onMessage);
    w.on("error", onGone);
    w.on("exit", onGone);
    return {
      post: (m: unknown) => w.postMessage(m),
      kill: () => {
        killed = true;
        return w.terminate();
      },
      crash: () => w.terminate(),
      ref: () => w.ref(),
      unref: () => w.unref(),
    };
  }
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  const w = new Worker(url, { type: "module" });
  w.onmessage = (e) => onMessage(e.data);
  w.onerror = onGone;
  return {
    post: (m: unknown) => w.postMessage(m),
    kill: () => {
      killed = true;
      w.terminate();
      onGone();
      return Promise.resolve();
    },
    crash: () => {
      w.terminate();
      onGone();
      return Promise.resolve();
    },
    ref: () => {},
    unref: () => {},
  };
}

/** Lets a timer not keep the process alive (Deno, Node; nothing to do in browsers). */
function unrefTimer(id: unknown): void {
  const g = globalThis as { Deno?: { unrefTimer?: (id: number) => void } };
  if (typeof id === "number") g.Deno?.unrefTimer?.(id);
  else (id as { unref?: () => void })?.unref?.();
}

/** A kernel to run ahead of its program (see {@link KernelWarmer}). */
export interface WarmTask {
  /** A kernel module importing `env.memory` and exporting `run(...i32)`. */
  readonly module: WebAssembly.Module;
  /** The arguments the program passes to `run`. */
  readonly args: readonly number[];
  /** Bytes of memory those arguments address (at least). */
  readonly bytes: number;
  /** Whether the module imports a shared memory. */
  readonly shared: boolean;
}

/** Options of a {@link KernelWarmer}. */
export interface KernelWarmerOptions {
  /**
   * Milliseconds without a finished kernel, while kernels are queued, after which the worker
   * is taken to be stuck and replaced at the next {@link KernelWarmer.warm} (default 3000).
   */
  stallMs?: number;
}

/**
 * A worker thread that runs a program's kernels once while the program is still being
 * compiled, so that its first run does not execute baseline code.
 *
 * V8 compiles WebAssembly functions lazily with its baseline compiler (Liftoff) and optimizes
 * a function (TurboFan, on background threads) only after it has executed a budget of code; a
 * call already running stays on the code it started with. Without warming, a program's first
 * run therefore executes mostly baseline code, several times slower on SIMD kernels. Compiled
 * code belongs to the module, which every thread shares: a kernel run on this worker leaves
 * the optimized code to the calling thread.
 *
 * Each kernel runs over a memory of the program's size on the worker (zeros, or what earlier
 * kernels left there), never over the program's own memory, with the arguments the program
 * passes: every access stays where the real run's does, and nothing the program reads is
 * written. A kernel that traps has simply run as far as it could. Tasks run one per event-loop
 * turn, so {@link stop} takes effect between kernels; a worker that finishes no kernel for
 * `stallMs` while kernels are queued is replaced. The worker never keeps a process alive.
 *
 * @example A kernel with an empty `run()`, run once on the warmer
 * ```ts
 * import assert from "node:assert";
 * import { KernelWarmer } from "./threads.ts";
 * // (module (func (export "run")))
 * const module = new WebAssembly.Module(new Uint8Array([
 *   0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0,
 *   7, 7, 1, 3, 114, 117, 110, 0, 0, 10, 4, 1, 2, 0, 11,
 * ]));
 * const warmer = new KernelWarmer();
 * warmer.warm([{ module, args: [], bytes: 65536, shared: false }]);
 * while (warmer.finished < warmer.posted) await new Promise((r) => setTimeout(r, 10));
 * assert.strictEqual(warmer.finished, 1);
 * await warmer.terminate();
 * ```
 */
export class KernelWarmer {
  readonly #stallMs: number;
  #worker: WorkerHandle | Promise<WorkerHandle> | undefined;
  #beat = new Int32Array(new SharedArrayBuffer(4));
  #posted = 0;
  #seen = 0;
  #seenAt = 0;
  #restarts = 0;
  #closed = false;
  #watching = false;
  #up = false;

  /** A warmer; its worker starts with the first {@link warm} (or {@link start}). */
  constructor(options: KernelWarmerOptions = {}) {
    this.#stallMs = options.stallMs ?? STALL_MS;
  }

  /** Kernels finished (run or trapped) by the current worker. */
  get finished(): number {
    return Atomics.load(this.#beat, 0);
  }

  /** Kernels handed to the current worker. */
  get posted(): number {
    return this.#posted;
  }

  /** How many times a stuck or dead worker was replaced. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Starts the worker now, if it is not running (it comes up in the background). */
  start(): void {
    if (this.#closed || this.#worker !== undefined) return;
    this.#beat = new Int32Array(new SharedArrayBuffer(4));
    this.#posted = 0;
    this.#seen = 0;
    this.#seenAt = performance.now();
    let self: WorkerHandle | undefined;
    this.#up = false;
    const made = spawn({
      up: () => {
        // The stall clock starts when the worker can take work.
        this.#up = true;
        this.#seenAt = performance.now();
      },
      error: () => {},
      gone: () => {
        // Dead (not replaced by us): the next warm starts another.
        if (this.#worker === self || this.#worker === made) this.#worker = undefined;
      },
      other: (m) => {
        // Done with everything posted: the worker goes (a worker that keeps a process alive
        // must not outlive its work); the next compile starts another.
        if (m.type === "warm-idle" && this.finished >= this.#posted && self !== undefined) {
          if (this.#worker === self) this.#worker = undefined;
          void self.kill();
        }
      },
    }, true);
    this.#worker = made;
    if (made instanceof Promise) {
      made.then((w) => {
        self = w;
        w.unref();
        if (this.#worker === made) this.#worker = w;
        else void w.kill();
      }, () => {
        if (this.#worker === made) this.#worker = undefined;
      });
    } else {
      self = made;
      made.unref();
    }
  }

  /** Queues kernels to run on the worker, replacing it first if it is stuck. */
  warm(tasks: readonly WarmTask[]): void {
    if (this.#closed || tasks.length === 0) return;
    this.#replaceIfStuck();
    this.start();
    const message = { type: "warm", tasks, beat: this.#beat };
    this.#posted += tasks.length;
    const w = this.#worker;
    if (w instanceof Promise) void w.then((h) => h.post(message), () => {});
    else w?.post(message);
    this.#watch();
  }

  /**
   * Checks for a stuck worker while kernels are queued, on a timer that does not keep the
   * process alive: a stuck worker is killed (it would otherwise hold the process open).
   */
  #watch(): void {
    if (this.#watching) return;
    this.#watching = true;
    const tick = () => {
      this.#watching = false;
      const w = this.#worker;
      if (this.#closed || w === undefined) return;
      if (this.finished >= this.#posted) {
        // Idle (its own "idle" message may not have come): it goes, so that it never holds
        // the process open.
        this.#worker = undefined;
        void Promise.resolve(w).then((h) => h.kill(), () => {});
        return;
      }
      this.#replaceIfStuck();
      if (this.#worker !== undefined) this.#watch();
    };
    unrefTimer(setTimeout(tick, Math.max(10, this.#stallMs / 2)));
  }

  /**
   * Has the worker fault in the pages of `memory` in `[from, to)` (a shared memory only; a
   * no-op otherwise), ahead of the calling thread writing there: a fresh page's first write
   * costs the kernel's page fault and zeroing, about as much as computing the values written.
   * Values already there are left as they are.
   */
  touch(memory: WebAssembly.Memory, from: number, to: number): void {
    if (this.#closed || to <= from || !(memory.buffer instanceof SharedArrayBuffer)) return;
    this.#replaceIfStuck();
    this.start();
    const message = { type: "touch", memory, from, to };
    const w = this.#worker;
    if (w instanceof Promise) void w.then((h) => h.post(message), () => {});
    else w?.post(message);
  }

  /** Drops the kernels not yet run (the one running finishes). */
  stop(): void {
    const w = this.#worker;
    if (w === undefined) return;
    const message = { type: "warm-stop" };
    if (w instanceof Promise) void w.then((h) => h.post(message), () => {});
    else w.post(message);
    this.#posted = this.finished;
  }

  /** Stops the worker for good. */
  async terminate(): Promise<void> {
    this.#closed = true;
    const w = this.#worker;
    this.#worker = undefined;
    if (w !== undefined) await (await w).kill();
  }

  #replaceIfStuck(): void {
    const done = this.finished;
    const now = performance.now();
    if (done !== this.#seen || done >= this.#posted) {
      this.#seen = done;
      this.#seenAt = now;
      return;
    }
    if (now - this.#seenAt < this.#stallMs || this.#worker === undefined || !this.#up) return;
    const w = this.#worker;
    this.#worker = undefined;
    this.#restarts++;
    // What was queued there is dropped with it: nothing is pending now.
    this.#beat = new Int32Array(new SharedArrayBuffer(4));
    this.#posted = 0;
    void Promise.resolve(w).then((h) => h.kill(), () => {});
  }
}

/**
 * A worker that lives for one compile of a one-thread program: it computes the constants
 * handed to it as {@link ConstantJobs} (the Winograd weight transforms) and faults in the
 * pages of the program's memory ahead of the calling thread, while that thread generates
 * kernels. The program's memory is then shared (the kernels import a shared memory), which
 * changes nothing else: the program still runs on the calling thread alone. After
 * {@link retire} the worker finishes what was posted and goes; it never outlives the compile
 * by more than that, so it keeps no process alive.
 *
 * {@link compileHelper} makes one where it can help: at least two cores, shared memory and
 * workers. Measured on 2 cores (bench/README.md, cold start): ResNet-18's compile spends
 * about 85 ms of the calling thread on the transforms and their page faults without one.
 *
 * @example Faulting in a shared memory's pages, then retiring
 * ```ts
 * import assert from "node:assert";
 * import { CompileHelper } from "./threads.ts";
 * const helper = new CompileHelper();
 * const memory = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true });
 * helper.touch(memory, 0, 131072);
 * await helper.retire();
 * assert.strictEqual(helper.retired, true);
 * ```
 */
export class CompileHelper {
  /** How long a job may take on the worker before the calling thread computes it itself. */
  readonly stallMs: number = STALL_MS;
  readonly #worker: WorkerHandle | Promise<WorkerHandle>;
  #done!: () => void;
  readonly #gone = new Promise<void>((resolve) => (this.#done = resolve));
  #retired = false;
  #over = false;

  /** Starts the worker (it comes up in the background). */
  constructor() {
    const made = spawn({
      up: () => {},
      error: () => {},
      gone: () => {
        this.#over = true;
        this.#done();
      },
      other: (m) => {
        if (m.type === "retired") void Promise.resolve(made).then((w) => w.kill());
      },
    }, true);
    this.#worker = made;
    if (made instanceof Promise) {
      made.then((w) => w.unref(), () => {
        this.#over = true;
        this.#done();
      });
    } else {
      made.unref();
    }
  }

  /** Whether {@link retire} was called. */
  get retired(): boolean {
    return this.#retired;
  }

  #post(message: unknown): boolean {
    if (this.#retired || this.#over) return false;
    const w = this.#worker;
    if (w instanceof Promise) void w.then((h) => h.post(message), () => {});
    else w.post(message);
    return true;
  }

  /** @internal Hands a constant job to the worker (see {@link ConstantJobs}). */
  postDerive(_index: number, message: Record<string, unknown>): boolean {
    return this.#post({ type: "derive", ...message });
  }

  /**
   * Has the worker fault in the pages of `memory` in `[from, to)` (a shared memory only),
   * leaving every value as it is (see {@link KernelWarmer.touch}).
   */
  touch(memory: WebAssembly.Memory, from: number, to: number): void {
    if (to <= from || !(memory.buffer instanceof SharedArrayBuffer)) return;
    this.#post({ type: "touch", memory, from, to });
  }

  /**
   * No more work: the worker goes once it has done what was posted (and at the latest
   * `stallMs` later). Resolves when it is gone.
   */
  retire(): Promise<void> {
    if (!this.#retired) {
      this.#post({ type: "retire" });
      this.#retired = true;
      // A worker that never answers is stopped all the same (a timer that keeps no process
      // alive: it only has to fire while the worker does).
      unrefTimer(setTimeout(() => {
        if (!this.#over) void Promise.resolve(this.#worker).then((w) => w.kill(), () => {});
      }, this.stallMs));
    }
    return this.#gone;
  }
}

/**
 * A {@link CompileHelper} for a compile of a program of `threads` threads, or undefined: only
 * one-thread programs get one, and only where the runtime has shared memory, workers and at
 * least two cores. `"auto"` (the default) also wants a third core: on two, V8's own
 * optimizing compiler already keeps the second core busy compiling the library's JavaScript
 * while a model compiles (about 100 ms of CPU for ResNet-18 in a fresh process, measured
 * with and without `--no-concurrent-recompilation`), and a helper there made the first
 * output later (bench/README.md). `true` uses one wherever it can run; `false` never.
 *
 * @example No helper for a program with workers of its own
 * ```ts
 * import assert from "node:assert";
 * import { compileHelper } from "./threads.ts";
 * assert.strictEqual(compileHelper(2), undefined);
 * assert.strictEqual(compileHelper(1, false), undefined);
 * ```
 */
export function compileHelper(
  threads: number,
  mode: boolean | "auto" = "auto",
): CompileHelper | undefined {
  if (mode === false || threads !== 1 || !threadsSupported()) return undefined;
  const cores = hardwareThreads();
  if (cores < (mode === "auto" ? 3 : 2)) return undefined;
  const g = globalThis as { Worker?: unknown; Deno?: unknown; process?: unknown };
  if (g.Worker === undefined && g.Deno === undefined && g.process === undefined) return undefined;
  return new CompileHelper();
}

/**
 * Thrown by a run's step when a worker did not finish its part within the pool's stall limit.
 * The pool has then replaced its workers; the late worker may still write into the memory of
 * the program it was running, so that program must not read that memory again (the executor
 * moves to a fresh one and repeats the run on the calling thread).
 */
export class WorkerStallError extends BackendError {}

/** A program registered with a pool: run its split steps across the pool's threads. */
export class PoolProgram {
  readonly #pool: ThreadPool;
  readonly #id: number;

  /** @internal */
  constructor(pool: ThreadPool, id: number) {
    this.#pool = pool;
    this.#id = id;
  }

  /** Whether every worker has instantiated this program's parts. */
  get ready(): boolean {
    return this.#pool.isReady(this.#id);
  }

  /**
   * Whether the workers no longer hold this program: it was dropped, evicted (the pool holds
   * a bounded number), or poisoned by a stalled worker. Register it again to get threads back.
   */
  get lost(): boolean {
    return !this.#pool.holds(this.#id);
  }

  /** Resolves once every worker holds this program (rejects if one failed to). */
  whenReady(): Promise<void> {
    return this.#pool.whenReady(this.#id);
  }

  /** Starts a run (call before the first {@link step}). */
  begin(): void {
    this.#pool.begin(this.#id);
  }

  /** Runs split step `index`: workers take parts 1.., `own` runs part 0 here. */
  step(index: number, own: () => void): void {
    this.#pool.step(this.#id, index, own);
  }

  /** Ends a run, letting the workers go idle. */
  end(): void {
    this.#pool.end();
  }

  /**
   * Starts now the workers of a pool whose start waits for an event-loop turn (see
   * {@link ThreadPool}), so that a caller that never yields still gets threads.
   */
  kick(): void {
    this.#pool.kick();
  }

  /** Forgets the program in the workers. */
  drop(): void {
    this.#pool.drop(this.#id);
  }
}

/** Options of a {@link ThreadPool}. */
export interface ThreadPoolOptions {
  /**
   * Milliseconds the calling thread waits for a worker's part before it gives up on that
   * worker: the workers are replaced and the run repeats on the calling thread (default 3000).
   */
  stallMs?: number;
  /**
   * Programs the workers hold at most (default 64): registering more makes the workers drop
   * the least recently run ones, which register again (and run on the calling thread until
   * the workers hold them again) when next run.
   */
  maxPrograms?: number;
  /** Bytes of program memories the workers hold at most, likewise (default 1 GiB). */
  maxProgramBytes?: number;
}

interface Registration {
  readonly memory: WebAssembly.Memory;
  readonly parts: readonly (readonly (WorkerPart | undefined)[])[];
  readonly bytes: number;
  /** This epoch's workers: [how many hold the program, whether one failed to]. */
  ready: Int32Array;
}

const newReady = () => new Int32Array(new SharedArrayBuffer(8));

/**
 * Whether creating a worker holds the calling thread until the worker is up. Deno's
 * `node:worker_threads` does (about 50–75 ms a worker, mostly waiting: measured on 2 cores,
 * 94 ms for a pool of 2 threads, 400 ms for 8); Node's returns in a few milliseconds, and a
 * browser's `new Worker` at once.
 */
function spawnBlocks(): boolean {
  return (globalThis as { Deno?: unknown }).Deno !== undefined;
}

/** Resolves on a later event-loop turn (a macrotask: what the caller runs now goes first). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Worker threads sharing WASM memories with the main thread. A worker that dies, or that
 * stalls a run beyond the stall limit, is replaced (with every other worker, since they share
 * one control block); the programs the workers held are sent to the new ones. The workers hold
 * a bounded number of programs (least recently run ones are dropped beyond it).
 *
 * Where creating a worker holds the calling thread until the worker is up (Deno), the workers
 * start one per event-loop turn after the pool is made, or all at once when a program that
 * has run before runs again ({@link PoolProgram.kick}): a compile and first run right after
 * the pool is made then run on the calling thread instead of waiting for the workers (on 2
 * cores, ResNet-18's first output came 230 ms sooner, bench/README.md). Elsewhere they start
 * at once and take the first run's parts.
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
  /** Resolves when the first workers are up. */
  readonly started: Promise<void>;
  /** @internal How long a run waits for a late worker (ms); see {@link ThreadPoolOptions}. */
  stallMs: number;
  readonly #maxPrograms: number;
  readonly #maxBytes: number;
  #ctrl!: Int32Array;
  #workers: WorkerHandle[] = [];
  /** The current epoch's workers' "up" signals. */
  #ups: Promise<void>[] = [];
  /** Whether workers start on later event-loop turns (see the class doc). */
  readonly #deferred = spawnBlocks();
  #epoch = 0;
  #starting: Promise<void>;
  #restarts = 0;
  #nextId = 1;
  #closed = false;
  #up = false;
  #inRun = false;
  /** Whether the last command published may not be acknowledged yet. */
  #outstanding = false;
  #holds = 0;
  /** Programs the workers hold (or will), least recently run first. */
  readonly #programs = new Map<number, Registration>();
  #programBytes = 0;
  readonly #errors = new Map<number, string>();

  /** Starts `threads - 1` workers (threads counts the calling thread). */
  constructor(threads: number, options: ThreadPoolOptions = {}) {
    checkThreads(threads, "ThreadPool");
    if (threads > 1 && !threadsSupported()) {
      throw new BackendError(
        "threads need SharedArrayBuffer and Atomics.waitAsync (in browsers, a cross-origin isolated page)",
      );
    }
    this.threads = threads;
    this.stallMs = options.stallMs ?? STALL_MS;
    this.#maxPrograms = options.maxPrograms ?? 64;
    this.#maxBytes = options.maxProgramBytes ?? 2 ** 30;
    this.#starting = this.started = this.#startEpoch();
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

  /** A fresh control block and workers; the programs held are sent to them. */
  #startEpoch(): Promise<void> {
    const epoch = ++this.#epoch;
    this.#up = false;
    this.#inRun = false;
    this.#outstanding = false;
    this.#ctrl = new Int32Array(new SharedArrayBuffer(CTRL_INTS * 4));
    this.#ctrl[STEP] = RUN_OVER;
    for (const reg of this.#programs.values()) reg.ready = newReady();
    this.hold(1);
    const done = this.#spawnAll(epoch).finally(() => this.hold(-1));
    done.catch(() => {});
    return done;
  }

  async #spawnAll(epoch: number): Promise<void> {
    this.#ups = [];
    for (let i = 0; i < this.threads - 1; i++) {
      if (this.#deferred) await nextTurn();
      if (this.#closed || epoch !== this.#epoch) return;
      if (i < this.#workers.length) continue; // started by kick()
      const made = this.#spawnOne(epoch, i);
      if (made instanceof Promise) await made;
    }
    await Promise.all(this.#ups);
    if (epoch === this.#epoch && !this.#closed) this.#up = true;
  }

  /**
   * Starts worker `i` of `epoch`: synchronously where the runtime allows (the constructor or
   * {@link kick} then leaves it created), else once `node:worker_threads` is imported.
   */
  #spawnOne(epoch: number, i: number): WorkerHandle | Promise<unknown> {
    let up!: () => void;
    this.#ups.push(new Promise<void>((res) => up = res));
    let w: WorkerHandle | undefined = undefined;
    const made = spawn({
      up,
      error: (id, message) => this.#errors.set(id, message),
      gone: (killed) => {
        up(); // nobody waits for a worker that is gone
        if (!killed && !this.#closed && w !== undefined && this.#workers.includes(w)) {
          this.#restart();
        }
      },
    });
    const adopt = (h: WorkerHandle) => {
      w = h;
      if (this.#closed || epoch !== this.#epoch) {
        up();
        return h.kill();
      }
      if (this.#holds > 0) h.ref();
      else h.unref();
      this.#workers.push(h);
      h.post({ type: "init", ctrl: this.#ctrl, index: i });
      for (const [id, reg] of this.#programs) this.#send(h, i, id, reg);
      return h;
    };
    return made instanceof Promise ? made.then(adopt) : adopt(made);
  }

  /**
   * @internal Starts now the workers a deferred start (see the class doc) has not started
   * yet; nothing to do elsewhere.
   */
  kick(): void {
    if (!this.#deferred || this.#closed) return;
    const epoch = this.#epoch;
    for (let i = this.#workers.length; i < this.threads - 1; i++) {
      if (this.#spawnOne(epoch, i) instanceof Promise) return;
    }
  }

  #send(w: WorkerHandle, index: number, id: number, reg: Registration): void {
    w.post({
      type: "program",
      id,
      memory: reg.memory,
      ready: reg.ready,
      steps: reg.parts[index] ?? [],
    });
  }

  /** Replaces every worker (the old ones are terminated) and resends the programs held. */
  #restart(): void {
    this.#restarts++;
    const old = this.#workers;
    this.#workers = [];
    for (const w of old) void w.kill();
    this.#starting = this.#startEpoch();
  }

  /** @internal The message of a worker that failed to instantiate program `id`. */
  errorOf(id: number): string | undefined {
    return this.#errors.get(id);
  }

  /** @internal Resolves when the current workers are up (after a restart: the new ones). */
  get starting(): Promise<void> {
    return this.#starting;
  }

  /** Whether the pool was terminated. */
  get closed(): boolean {
    return this.#closed;
  }

  /** @internal Whether every worker is up and the pool is open. */
  get running(): boolean {
    return this.#up && !this.#closed;
  }

  /** @internal How many times the workers were replaced (a worker died or stalled). */
  get restarts(): number {
    return this.#restarts;
  }

  /** @internal Programs registered and not dropped (what the workers hold, or will). */
  get programCount(): number {
    return this.#programs.size;
  }

  /**
   * @internal How many programs each current worker holds, as the workers report it (they
   * take programs and drops from their event loops, so this trails registrations briefly).
   */
  workerProgramCounts(): number[] {
    return this.#workers.map((_, i) => Atomics.load(this.#ctrl, COUNTS + i));
  }

  /**
   * @internal For tests: terminates worker `index` as if it had crashed (the pool notices
   * and replaces its workers).
   */
  async crashWorker(index: number): Promise<void> {
    const w = this.#workers[index];
    if (w === undefined) throw new BackendError(`no worker ${index}`);
    await w.crash();
  }

  /** @internal Whether the workers hold program `id` (registered, not dropped). */
  holds(id: number): boolean {
    return !this.#closed && this.#programs.has(id);
  }

  /**
   * @internal Whether every worker of this epoch has instantiated program `id` (read from
   * the workers' own count, so a caller that has not yielded to the event loop since the
   * workers came up sees it too).
   */
  isReady(id: number): boolean {
    const reg = this.#programs.get(id);
    return reg !== undefined && !this.#closed && this.#workers.length === this.threads - 1 &&
      Atomics.load(reg.ready, 0) === this.threads - 1;
  }

  /** @internal Resolves once every worker holds program `id` (at once if it is not held). */
  async whenReady(id: number): Promise<void> {
    this.hold(1);
    try {
      for (;;) {
        await this.#starting;
        const reg = this.#programs.get(id);
        if (this.#closed || reg === undefined) return;
        if (Atomics.load(reg.ready, 1) !== 0) {
          throw new BackendError(
            `a worker could not instantiate the program: ${
              this.#errors.get(id) ?? "(its message has not arrived yet)"
            }`,
          );
        }
        if (this.isReady(id)) return;
        const n = Atomics.load(reg.ready, 0);
        const r = Atomics.waitAsync(reg.ready, 0, n, 50);
        if (r.async) await r.value;
      }
    } finally {
      this.hold(-1);
    }
  }

  /**
   * Registers a program: `parts[w][s]` is worker `w`'s part of step `s` (index 0 is the first
   * worker, i.e. thread 1). Workers instantiate their parts asynchronously; use the program
   * once {@link PoolProgram.ready}. Beyond the pool's bounds, the least recently run programs
   * are dropped from the workers.
   */
  register(
    memory: WebAssembly.Memory,
    parts: readonly (readonly (WorkerPart | undefined)[])[],
  ): PoolProgram {
    if (this.#closed) throw new BackendError("the thread pool was terminated");
    const id = this.#nextId++;
    const reg: Registration = { memory, parts, bytes: memory.buffer.byteLength, ready: newReady() };
    this.#programs.set(id, reg);
    this.#programBytes += reg.bytes;
    for (const [oldest] of this.#programs) {
      if (this.#programs.size <= this.#maxPrograms && this.#programBytes <= this.#maxBytes) break;
      if (oldest !== id) this.drop(oldest);
    }
    // Workers that exist take the program now (a caller that never yields to the event loop
    // still gets threads); workers still starting take it when they come up.
    this.#workers.forEach((w, i) => this.#send(w, i, id, reg));
    return new PoolProgram(this, id);
  }

  /**
   * @internal Starts a run of program `id`: the workers are woken now, so that they are
   * spinning by the first split step (waking one from its event loop takes far longer).
   */
  begin(id: number): void {
    if (this.#inRun) throw new BackendError("a run on this thread pool is already going");
    this.#inRun = true;
    const reg = this.#programs.get(id);
    if (reg !== undefined) { // most recently run last
      this.#programs.delete(id);
      this.#programs.set(id, reg);
    }
    this.#publish(id, WAKE);
  }

  /**
   * Publishes a command, once every worker has acknowledged the previous one (a worker must
   * never read a command's fields while the next command overwrites them: it would run a part
   * twice, or count a part it has not run).
   */
  #publish(prog: number, step: number): void {
    if (this.#outstanding) this.#waitIdle();
    const c = this.#ctrl;
    Atomics.store(c, PROG, prog);
    Atomics.store(c, STEP, step);
    Atomics.store(c, PENDING, this.threads - 1);
    this.#outstanding = true;
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
  }

  /** @internal */
  step(prog: number, index: number, own: () => void): void {
    const c = this.#ctrl;
    this.#publish(prog, index);
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
      if (left === 0) {
        this.#outstanding = false;
        return;
      }
      if (spins < 100000) {
        spins++;
        continue;
      }
      // A worker that never answers (killed, or its thread starved) must not hang the caller,
      // and must not write into memory that later runs read: replace the workers, forget the
      // program (its memory is the late worker's to scribble on), and tell the caller.
      const now = performance.now();
      if (since === 0) since = now;
      else if (now - since > this.stallMs) {
        const prog = Atomics.load(c, PROG);
        const state = Array.from(c.subarray(0, 5)).join(",");
        this.drop(prog);
        this.#restart();
        throw new WorkerStallError(
          `a worker thread did not finish its part within ${this.stallMs} ms; the workers were ` +
            `replaced (state ${state})`,
        );
      }
      try {
        Atomics.wait(c, PENDING, left, Math.min(1000, this.stallMs));
      } catch {
        // Atomics.wait is not allowed on this thread (a browser's main thread): keep spinning.
        spins = 0;
      }
    }
  }

  /**
   * @internal Ends a run. Like every command, "the run is over" is acknowledged by every
   * worker before this returns.
   */
  end(): void {
    if (!this.#inRun) return;
    this.#inRun = false;
    this.#publish(Atomics.load(this.#ctrl, PROG), RUN_OVER);
    this.#waitIdle();
  }

  /**
   * @internal Posts a constant job to worker `index % workers` (see {@link ConstantJobs});
   * false where no worker exists yet to take it (workers created asynchronously).
   */
  /**
   * @internal Whether {@link postDerive} can hand out jobs now: some worker exists (in Deno
   * the first compile of a fresh pool finds none, see the class doc).
   */
  get deriving(): boolean {
    return !this.#closed && this.#workers.length > 0;
  }

  postDerive(index: number, message: Record<string, unknown>): boolean {
    if (this.#closed || this.#workers.length === 0) return false;
    this.#workers[index % this.#workers.length].post({ type: "derive", ...message });
    return true;
  }

  /** @internal Forgets program `id` in the workers. */
  drop(id: number): void {
    const reg = this.#programs.get(id);
    if (reg === undefined) return;
    this.#programs.delete(id);
    this.#programBytes -= reg.bytes;
    for (const w of this.#workers) w.post({ type: "drop", id });
  }

  /** Stops the workers. Programs registered here then run on the calling thread only. */
  async terminate(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#up = false;
    this.#programs.clear();
    this.#programBytes = 0;
    const old = this.#workers;
    this.#workers = [];
    await Promise.all(old.map((w) => w.kill()));
    await this.#starting.catch(() => {});
  }
}

/** What takes {@link ConstantJobs}: a {@link ThreadPool} or a {@link CompileHelper}. */
export interface DeriveTarget {
  /** Posts a job to worker `index` (modulo the workers); false when none can take it. */
  postDerive(index: number, message: Record<string, unknown>): boolean;
  /** How long a job may take before the calling thread computes it itself. */
  readonly stallMs: number;
}

/**
 * Constants that kernels compute at compile time (e.g. transformed weights), handed to a
 * pool's workers to compute into the program's shared memory while the calling thread goes on
 * compiling. Each job is a WASM module's `run` called over ops (see {@link runDeriveOps}) on
 * a copy of its source values, transferred to the worker. A job is claimed by whoever starts
 * it: {@link finish} runs the jobs no worker has started on the calling thread (as `local`
 * does), and waits for the others; a job whose worker failed or stalls beyond the pool's stall
 * limit runs here too. Both compute the same bits, so a late worker writing a job again
 * changes nothing.
 */
export class ConstantJobs {
  readonly #pool: DeriveTarget;
  readonly #memory: WebAssembly.Memory;
  readonly #jobs: { claim: Int32Array; local: () => void }[] = [];
  /** One shared memory holds every job's ops and values, one after the other. */
  #staging: WebAssembly.Memory | undefined;
  #top = 0;

  /** Jobs for `pool`'s workers (or a compile helper's) over `memory` (shared). */
  constructor(pool: DeriveTarget, memory: WebAssembly.Memory) {
    this.#pool = pool;
    this.#memory = memory;
  }

  /** Jobs posted and not yet finished. */
  get pending(): number {
    return this.#jobs.length;
  }

  /**
   * Hands a job to worker `worker` (modulo the pool's workers), its `scratch` bytes in the
   * memory its own, or returns false (no worker to take it: run it now). `ops`, `values` and
   * `factors` are copied into a shared memory of these jobs, sent with the job; `local`
   * computes the same on the calling thread.
   */
  post(
    worker: number,
    job: {
      module: WebAssembly.Module;
      scratch: number;
      values: Float32Array;
      factors: Float64Array;
      ops: Int32Array;
    },
    local: () => void,
  ): boolean {
    const claim = new Int32Array(new SharedArrayBuffer(4));
    // Ops, values and factors in the jobs' shared memory: [ops (i32) | values (f32) | factors
    // (f64)], each job after the last (one memory for all: a wasm memory reserves far more
    // address space than it holds).
    const align = (n: number) => Math.ceil(n / 16) * 16;
    const opsAt = this.#top;
    const valuesAt = opsAt + align(job.ops.length * 4);
    const factorsAt = valuesAt + align(job.values.length * 4);
    const end = factorsAt + job.factors.length * 8;
    const pages = Math.ceil(end / 65536);
    if (pages > 65536) return false;
    if (this.#staging === undefined) {
      this.#staging = new WebAssembly.Memory({ initial: pages, maximum: 65536, shared: true });
    } else if (pages > this.#staging.buffer.byteLength / 65536) {
      this.#staging.grow(pages - this.#staging.buffer.byteLength / 65536);
    }
    const staging = this.#staging;
    this.#top = align(end);
    new Int32Array(staging.buffer, opsAt, job.ops.length).set(job.ops);
    new Float32Array(staging.buffer, valuesAt, job.values.length).set(job.values);
    new Float64Array(staging.buffer, factorsAt, job.factors.length).set(job.factors);
    const posted = this.#pool.postDerive(worker, {
      module: job.module,
      memory: this.#memory,
      scratch: job.scratch,
      staging,
      opsAt,
      ops: job.ops.length,
      valuesAt,
      values: job.values.length,
      factorsAt,
      factors: job.factors.length,
      claims: claim,
      index: 0,
    });
    if (posted) this.#jobs.push({ claim, local });
    return posted;
  }

  /**
   * Runs here every job no worker has started, the last posted first (workers take them from
   * the first); waits until every other one is done.
   */
  finish(): void {
    const jobs = this.#jobs.splice(0);
    // From the last: the workers take them from the first.
    for (const j of jobs.toReversed()) {
      if (Atomics.compareExchange(j.claim, 0, 0, 1) === 0) {
        j.local();
        Atomics.store(j.claim, 0, 2);
      }
    }
    for (const j of jobs) {
      const started = performance.now();
      while (Atomics.load(j.claim, 0) === 1) {
        if (performance.now() - started > this.#pool.stallMs) break;
        try {
          Atomics.wait(j.claim, 0, 1, 50);
        } catch {
          // Atomics.wait is not allowed on this thread (a browser's main thread): spin.
        }
      }
      if (Atomics.load(j.claim, 0) !== 2) j.local();
    }
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
 * Starts the worker threads of `threads`-thread programs (default: the default thread count)
 * and resolves when every worker is up; at once for one thread, or where threads are not
 * supported. Programs compiled with that many threads then use them from their first run on
 * (once the workers have taken the program: `compiled.ready()`).
 *
 * Not needed for threads to work: the workers start by themselves when a block is hybridized
 * or a program compiled. It chooses when their start costs: in Deno creating a worker holds
 * the calling thread until the worker is up (50–75 ms each), and a pool that started by
 * itself starts its workers one per event-loop turn after the first compile, or all at once at
 * a program's second run. A server that would rather pay that at startup than in a request
 * awaits this first.
 *
 * @example Workers up before the model is loaded
 * ```ts
 * import assert from "node:assert";
 * import { startThreads, terminateThreads } from "../../../mod.ts";
 * await startThreads(2);
 * await terminateThreads();
 * assert.ok(true);
 * ```
 */
export async function startThreads(threads: number = getDefaultThreads()): Promise<void> {
  checkThreads(threads, "startThreads");
  if (threads < 2 || !threadsSupported()) return;
  const pool = poolFor(threads)!;
  pool.kick();
  await pool.starting;
}

let warmer: KernelWarmer | undefined;
let warming: boolean | "auto" = "auto";

/**
 * Whether compiled WASM programs run their kernels ahead on a {@link KernelWarmer} while they
 * compile. `"auto"` (the default) warms only where the runtime reports a core to spare beyond
 * the program's threads and the warmer's own: at least threads + 2 cores. With fewer, the
 * warmer and V8's optimizing compiler threads take the cores the compile runs on, and the
 * first output comes later than without warming (measured on 2 cores, bench/README.md: one
 * thread 534–558 ms warmed against 409–462 not). `true` warms wherever the runtime has more
 * than one core, `SharedArrayBuffer` and workers; `false` never. Takes effect for programs
 * compiled afterwards.
 *
 * @example Off, then back to the default
 * ```ts
 * import assert from "node:assert";
 * import { kernelWarmer, setKernelWarming } from "./threads.ts";
 * setKernelWarming(false);
 * assert.strictEqual(kernelWarmer(1), undefined);
 * setKernelWarming("auto");
 * ```
 */
export function setKernelWarming(enabled: boolean | "auto"): void {
  warming = enabled;
}

/**
 * The process's kernel warmer for a program of `threads` threads (any program when omitted),
 * or undefined where warming is off or cannot help (see {@link setKernelWarming}).
 */
export function kernelWarmer(threads?: number): KernelWarmer | undefined {
  const cores = hardwareThreads();
  if (!warming || cores < 2 || typeof SharedArrayBuffer !== "function") return undefined;
  if (warming === "auto" && threads !== undefined && cores < threads + 2) return undefined;
  const g = globalThis as { Worker?: unknown; Deno?: unknown; process?: unknown };
  if (g.Worker === undefined && g.Deno === undefined && g.process === undefined) return undefined;
  return warmer ??= new KernelWarmer();
}

/**
 * Terminates every shared pool (programs compiled earlier then run on the calling thread).
 * Idle pools never keep a process alive; call this to free the workers early.
 */
export async function terminateThreads(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  const w = warmer;
  warmer = undefined;
  await Promise.all([...all.map((p) => p.terminate()), w?.terminate()]);
}
