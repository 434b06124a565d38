/**
 * Kernels and checks shared by the worker-pool failure tests of the JIT pool
 * (tests/lower/thread_pool_test.ts) and of an artifact's own pool (tests/aot/
 * aot_threads_test.ts): a kernel that doubles part of x into y, one that never finishes (it
 * scribbles over y for far longer than any test runs), and a bounded wait.
 */
import { ModuleBuilder } from "../../compiler/lower/wasm/encoder.ts";
import { importKernelMemory } from "../../compiler/lower/wasm/kernel.ts";
import { assert } from "../util.ts";

/** Floats in x and in y. */
export const N = 4096;
/** y's byte offset (x is at 0). */
export const Y = N * 4;

/** The bytes of a shared-memory kernel whose `run()` sets y[i] = 2·x[i] for i in [lo, hi). */
export function doublingBytes(lo: number, hi: number): Uint8Array<ArrayBuffer> {
  const mb = new ModuleBuilder();
  importKernelMemory(mb, true);
  const f = mb.addFunction([], [], { export: "run" });
  const i = f.local("i32");
  f.i32Const(lo * 4).localSet(i);
  const done = f.block();
  const top = f.loop();
  f.localGet(i).i32Const(hi * 4).op("i32.ge_u").brIf(done);
  f.localGet(i).localGet(i).load("f32.load").f32Const(2).op("f32.mul").store("f32.store", {
    offset: Y,
  });
  f.localGet(i).i32Const(4).op("i32.add").localSet(i);
  f.br(top).end().end().end();
  return mb.build();
}

/** The bytes of a kernel whose `run()` writes -1 over y[lo, hi) again and again (2³⁰ times). */
export function scribblingBytes(lo: number, hi: number): Uint8Array<ArrayBuffer> {
  const mb = new ModuleBuilder();
  importKernelMemory(mb, true);
  const f = mb.addFunction([], [], { export: "run" });
  const [i, round] = [f.local("i32"), f.local("i32")];
  const outer = f.loop();
  f.i32Const(lo * 4).localSet(i);
  const inner = f.loop();
  f.localGet(i).f32Const(-1).store("f32.store", { offset: Y });
  f.localGet(i).i32Const(4).op("i32.add").localTee(i).i32Const(hi * 4).op("i32.lt_u").brIf(inner);
  f.end();
  f.localGet(round).i32Const(1).op("i32.add").localTee(round).i32Const(1 << 30).op("i32.lt_u");
  f.brIf(outer).end().end();
  return mb.build();
}

/** Fails unless y = 2·x everywhere. */
export function checkDoubled(y: Float32Array, x: Float32Array, what: string): void {
  for (let i = 0; i < N; i++) {
    if (y[i] !== 2 * x[i]) assert.fail(`${what}: y[${i}] = ${y[i]}, want ${2 * x[i]}`);
  }
}

/**
 * Waits until `cond()` holds; fails after about a minute, with `what` (a function: its message
 * is made at the failure, from the state then).
 */
export async function until(cond: () => boolean, what: string | (() => string)): Promise<void> {
  // Not a timing assertion: a generous bound so that a broken pool fails instead of hanging.
  for (let i = 0; i < 6000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), typeof what === "function" ? what() : what);
}
