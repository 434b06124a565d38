/**
 * The WASM executor: runs a compiled program from one linear memory. The program (made by
 * compiler/lower/wasm/lower.ts) says where every buffer lives, which kernel module runs each
 * step with which pointers, and which steps run on the host (copies, and ops without a kernel
 * yet). Parameters are uploaded once; a run writes the inputs, runs the steps and copies the
 * outputs out. Nothing is allocated per run but the output arrays.
 *
 * @module
 */
import { type DType, dtypeInfo, type StorageArray, storageMatches } from "../../dtype.ts";
import { BackendError, ShapeError } from "../../errors.ts";
import { formatShape, type Shape, shapeSize } from "../../shape.ts";
import { type PoolProgram, type ThreadPool, type WorkerPart, WorkerStallError } from "./threads.ts";

/** A step running a kernel module's `run` with byte pointers. */
export interface KernelStep {
  /** Discriminant. */
  readonly kind: "kernel";
  /** The compiled module (imports `env.memory`, exports `run`). */
  readonly module: WebAssembly.Module;
  /** The pointer arguments. */
  readonly args: readonly number[];
  /** What it computes, for profiles. */
  readonly label: string;
}

/**
 * A step split into parts that may run at the same time, one per thread: part `i` runs
 * `modules[i]`'s `run` with `args[i]`. The parts write disjoint bytes and read nothing another
 * part writes, so running them one after another gives the same result.
 */
export interface SplitStep {
  /** Discriminant. */
  readonly kind: "split";
  /** One module per part (each imports `env.memory`, exports `run`). */
  readonly modules: readonly WebAssembly.Module[];
  /** The pointer arguments of each part. */
  readonly args: readonly (readonly number[])[];
  /**
   * The unsplit kernel, run instead of every part in turn when no worker takes parts (it
   * spares the work parts repeat, e.g. packing); optional.
   */
  readonly whole?: { readonly module: WebAssembly.Module; readonly args: readonly number[] };
  /** What it computes, for profiles. */
  readonly label: string;
}

/** A step running on the host over the program's memory (copies, fallbacks). */
export interface HostStep {
  /** Discriminant. */
  readonly kind: "host";
  /** Reads and writes the memory's bytes. */
  readonly run: (memory: ArrayBufferLike) => void;
  /** What it computes, for profiles. */
  readonly label: string;
}

/** A buffer of the program: where it lives and what it holds. */
export interface ProgramBuffer {
  /** Byte offset in the memory (16-aligned). */
  readonly ptr: number;
  /** Its shape. */
  readonly shape: Shape;
  /** Its elements' dtype, stored as tensors store it (default float32). */
  readonly dtype?: DType;
}

/**
 * A view of `length` elements of `dtype` at byte `ptr` of `memory`, as the dtype's storage
 * array (16-bit floats as `Uint16Array` bit patterns, bool as `Uint8Array`).
 *
 * @example Reading a float16 buffer
 * ```ts
 * import assert from "node:assert";
 * import { storageView } from "./executor.ts";
 * const memory = new ArrayBuffer(16);
 * new Uint16Array(memory)[1] = 0x3c00;
 * assert(storageView(memory, "float16", 0, 2)[1] === 0x3c00);
 * ```
 */
export function storageView(
  memory: ArrayBufferLike,
  dtype: DType,
  ptr: number,
  length: number,
): StorageArray {
  switch (dtype) {
    case "float32":
      return new Float32Array(memory, ptr, length);
    case "float64":
      return new Float64Array(memory, ptr, length);
    case "float16":
    case "bfloat16":
      return new Uint16Array(memory, ptr, length);
    case "int8":
      return new Int8Array(memory, ptr, length);
    case "uint8":
    case "bool":
      return new Uint8Array(memory, ptr, length);
    case "int32":
      return new Int32Array(memory, ptr, length);
    case "int64":
      return new BigInt64Array(memory, ptr, length);
  }
}

function bytesOf(a: StorageArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Everything an executor needs. */
export interface WasmProgram {
  /** Total bytes of memory. */
  readonly memoryBytes: number;
  /** Steps in execution order. */
  readonly steps: readonly (KernelStep | SplitStep | HostStep)[];
  /** Whether kernels import a shared memory (required for threads). */
  readonly shared?: boolean;
  /** Graph inputs by name. */
  readonly inputs: Readonly<Record<string, ProgramBuffer>>;
  /** Graph outputs in order. */
  readonly outputs: readonly ProgramBuffer[];
  /**
   * Constants (parameters) uploaded once, as their dtype's storage. `resident` ones are
   * already in the memory the executor is given (`memory` of its options; their `values` are
   * views of it), so only a fresh memory gets a copy.
   */
  readonly constants: readonly (ProgramBuffer & {
    readonly values: StorageArray;
    readonly resident?: boolean;
  })[];
}

/** Programs collected without `dispose()` are forgotten in the workers too. */
const workerPrograms = new FinalizationRegistry<PoolProgram>((program) => program.drop());

let warnedStall = false;

/** What the executor instantiated over one memory. */
interface Instantiated {
  readonly memory: WebAssembly.Memory;
  readonly runs: readonly ((threaded: boolean) => void)[];
  /** `parts[w][s]`: worker `w`'s part of step `s` (empty when no step splits). */
  readonly workerParts: (WorkerPart | undefined)[][];
}

/**
 * Runs a {@link WasmProgram}.
 *
 * @example A program of one host step
 * ```ts
 * import assert from "node:assert";
 * import { WasmExecutor } from "./executor.ts";
 * const exec = new WasmExecutor({
 *   memoryBytes: 64,
 *   inputs: { x: { ptr: 0, shape: [2] } },
 *   outputs: [{ ptr: 16, shape: [2] }],
 *   constants: [],
 *   steps: [{ kind: "host", label: "copy", run: (m) => new Uint8Array(m).copyWithin(16, 0, 8) }],
 * });
 * assert(exec.run({ x: new Float32Array([1, 2]) })[0][1] === 2);
 * ```
 */
export class WasmExecutor {
  readonly #program: WasmProgram;
  readonly #pages: number;
  readonly #threadPool: ThreadPool | undefined;
  /** Per step: whether it has parts for the workers. */
  readonly #splitSteps: readonly boolean[];
  #state: Instantiated;
  #pool: PoolProgram | undefined;
  #disposed = false;
  /** Runs so far (the first does not wait for a pool's deferred workers). */
  #runs = 0;

  /**
   * Allocates the memory, instantiates every kernel and uploads the constants. With a pool
   * (the program must be `shared`), split steps run their parts across the pool's threads
   * once the workers hold the program; until then, and without a pool, the calling thread
   * runs every part itself.
   */
  constructor(
    program: WasmProgram,
    options: { pool?: ThreadPool; memory?: WebAssembly.Memory } = {},
  ) {
    this.#program = program;
    this.#pages = Math.max(1, Math.ceil(program.memoryBytes / 65536));
    if (this.#pages > 65536) {
      throw new BackendError(`WASM program needs ${program.memoryBytes} bytes; too many`);
    }
    const pool = options.pool !== undefined && options.pool.threads > 1 ? options.pool : undefined;
    if (pool && !program.shared) {
      throw new BackendError("WASM program: threads need a program compiled for shared memory");
    }
    this.#threadPool = pool;
    this.#splitSteps = program.steps.map((s) => s.kind === "split");
    if (options.memory !== undefined) {
      const m = options.memory;
      if (
        m.buffer.byteLength < program.memoryBytes ||
        (typeof SharedArrayBuffer === "function" && m.buffer instanceof SharedArrayBuffer) !==
          (program.shared ?? false)
      ) {
        throw new BackendError("WASM program: the memory given is too small or not as shared");
      }
    }
    this.#state = this.#instantiate(options.memory);
    this.#register();
  }

  /**
   * Every kernel instantiated over `given` (which holds the resident constants) or a fresh
   * memory, and the other constants uploaded.
   */
  #instantiate(given?: WebAssembly.Memory): Instantiated {
    const program = this.#program;
    const pages = this.#pages;
    const memory = given ??
      (program.shared
        ? new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true })
        : new WebAssembly.Memory({ initial: pages }));
    const imports = { env: { memory } };
    const call = (module: WebAssembly.Module, label: string, given: readonly number[]) => {
      const instance = new WebAssembly.Instance(module, imports);
      const run = instance.exports.run as (...args: number[]) => void;
      if (typeof run !== "function") throw new BackendError(`kernel '${label}' exports no run`);
      const args = [...given];
      return () => run(...args);
    };
    const pool = this.#threadPool;
    const workerParts: (WorkerPart | undefined)[][] = pool
      ? Array.from({ length: pool.threads - 1 }, () => [])
      : [];
    const runs = program.steps.map((step, index) => {
      if (step.kind === "host") return () => step.run(memory.buffer);
      if (step.kind === "kernel") return call(step.module, step.label, step.args);
      const parts = step.modules.map((m, i) => call(m, step.label, step.args[i]));
      const whole = step.whole ? call(step.whole.module, step.label, step.whole.args) : () => {
        for (const p of parts) p();
      };
      if (!pool || parts.length < 2 || parts.length > pool.threads) return whole;
      step.modules.forEach((module, i) => {
        if (i > 0) workerParts[i - 1][index] = { module, args: step.args[i] };
      });
      const own = parts[0];
      return (threaded: boolean) => threaded ? this.#pool!.step(index, own) : whole();
    });
    for (const c of program.constants) {
      if (c.resident && given !== undefined) continue;
      new Uint8Array(memory.buffer, c.ptr, c.values.byteLength).set(bytesOf(c.values));
    }
    return { memory, runs, workerParts };
  }

  /** Gives the workers this memory's parts (when some step has parts for them). */
  #register(): void {
    const pool = this.#threadPool;
    if (this.#pool) workerPrograms.unregister(this);
    this.#pool = undefined;
    if (!pool || pool.closed || this.#disposed) return;
    if (!this.#state.workerParts.some((parts) => parts.some((p) => p !== undefined))) return;
    this.#pool = pool.register(this.#state.memory, this.#state.workerParts);
    workerPrograms.register(this, this.#pool, this);
  }

  /** Bytes of linear memory the program uses. */
  get memoryBytes(): number {
    return this.#program.memoryBytes;
  }

  /** Whether runs use the worker threads now (false until they hold the program). */
  get threaded(): boolean {
    return this.#pool?.ready ?? false;
  }

  /** Resolves when runs will use the worker threads (at once without a pool). */
  async ready(): Promise<void> {
    if (this.#pool?.lost) this.#register();
    await this.#pool?.whenReady();
  }

  /**
   * Runs the program on inputs by name, each its dtype's storage array (`Float32Array` for
   * float32, `Uint16Array` for float16 and bfloat16, ...); returns copies of the outputs in
   * the same form (`T`), written into `into` when given (arrays of the outputs' sizes and
   * storage types, reused across runs: no allocation).
   */
  run<T extends StorageArray = Float32Array>(
    inputs: Readonly<Record<string, StorageArray>>,
    into?: readonly T[],
  ): T[] {
    if (into !== undefined) {
      const outs = this.#program.outputs;
      if (
        into.length !== outs.length ||
        into.some((a, i) =>
          a.length !== shapeSize(outs[i].shape) || !storageMatches(outs[i].dtype ?? "float32", a)
        )
      ) {
        throw new ShapeError(
          `WASM program: 'into' must hold ${outs.length} arrays of ${
            outs.map((o) => shapeSize(o.shape)).join(", ")
          } elements of the outputs' dtypes`,
        );
      }
    }
    this.#checkInputs(inputs);
    this.#execute(inputs, true);
    const buffer = this.#state.memory.buffer;
    return this.#program.outputs.map((o, i) => {
      const view = storageView(buffer, o.dtype ?? "float32", o.ptr, shapeSize(o.shape));
      if (into === undefined) return view.slice() as T;
      (into[i] as Float32Array).set(view as Float32Array);
      return into[i];
    });
  }

  #checkInputs(inputs: Readonly<Record<string, StorageArray>>): void {
    for (const [name, buf] of Object.entries(this.#program.inputs)) {
      const data = inputs[name];
      const n = shapeSize(buf.shape);
      const dtype = buf.dtype ?? "float32";
      if (!storageMatches(dtype, data)) {
        throw new BackendError(`WASM program: no ${dtype} storage array for input '${name}'`);
      }
      if (data.length !== n) {
        throw new ShapeError(
          `WASM program: input '${name}' has ${data.length} values, needs ${
            formatShape(buf.shape)
          }`,
        );
      }
    }
  }

  /**
   * Writes the inputs and runs every step (on the workers too when `threads` and they hold the
   * program), timing each step into `times` when given. When a worker stalls, the late worker
   * may still write into this memory: the program moves to a fresh memory and the run repeats
   * on this thread, so no later run reads what the late worker writes.
   */
  #execute(
    inputs: Readonly<Record<string, StorageArray>>,
    threads: boolean,
    times?: number[],
  ): void {
    if (this.#pool?.lost) this.#register(); // evicted by the pool's bound, or a new pool epoch
    const pool = this.#pool;
    // A pool whose workers start on later event-loop turns (Deno) starts them now if this
    // program ran before and the caller has not yielded since: its first output is out, and
    // from here on it wants its threads.
    if (this.#runs++ > 0) pool?.kick();
    const write = () => {
      const buffer = this.#state.memory.buffer;
      for (const [name, buf] of Object.entries(this.#program.inputs)) {
        const bytes = shapeSize(buf.shape) * dtypeInfo(buf.dtype ?? "float32").bytes;
        new Uint8Array(buffer, buf.ptr, bytes).set(bytesOf(inputs[name]));
      }
    };
    // The workers join a run at the first split step where they hold the program: a first
    // run right after compiling (the workers instantiate it meanwhile) gets them part way.
    let begun = false;
    const join = (): boolean => {
      if (!begun && threads && pool !== undefined && pool.ready) {
        pool.begin(); // wakes the workers while this thread goes on
        begun = true;
      }
      return begun;
    };
    const runAll = (on: boolean) => {
      const runs = this.#state.runs;
      const split = this.#splitSteps;
      for (let i = 0; i < runs.length; i++) {
        const threaded = on && (begun || (split[i] && join()));
        if (times === undefined) runs[i](threaded);
        else {
          const t0 = performance.now();
          runs[i](threaded);
          times[i] = performance.now() - t0;
        }
      }
    };
    let stalled = false;
    join();
    try {
      write();
      runAll(threads);
    } catch (e) {
      if (!(e instanceof WorkerStallError)) throw e;
      stalled = true;
    } finally {
      if (begun) pool!.end();
    }
    if (!stalled) return;
    if (!warnedStall) {
      warnedStall = true;
      console.warn(
        "sigil: a worker thread stalled during a run; the workers were replaced and the run " +
          "was repeated on the calling thread",
      );
    }
    this.#state = this.#instantiate();
    this.#register();
    write();
    runAll(false);
  }

  /**
   * Runs the program once, timing every step: `[label, milliseconds]` in execution order. On
   * this thread alone by default (split steps run all their parts here); with `threaded`, on
   * the worker threads when they hold the program. For finding what dominates.
   */
  profile(
    inputs: Readonly<Record<string, StorageArray>>,
    options: { threaded?: boolean } = {},
  ): [string, number][] {
    this.#checkInputs(inputs);
    const times: number[] = [];
    this.#execute(inputs, options.threaded ?? false, times);
    return this.#program.steps.map((step, i) => [step.label, times[i]]);
  }

  /** Forgets the program in the pool's workers (the executor still runs, on this thread). */
  dispose(): void {
    const pool = this.#pool;
    this.#pool = undefined;
    this.#disposed = true;
    workerPrograms.unregister(this);
    pool?.drop();
  }
}
