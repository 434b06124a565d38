/** The WebAssembly encoder: LEB128, modules that validate and run, and clear misuse errors. */
import fc from "npm:fast-check@^4";
import {
  type FunctionBuilder,
  ModuleBuilder,
  opSignature,
  relaxedSimdSupported,
  simdSupported,
  SIMPLE_OP_NAMES,
  sleb128,
  uleb128,
  type ValType,
  WasmEncodeError,
} from "../../compiler/lower/wasm/encoder.ts";
import { assert, assertThrowsError } from "../util.ts";

// deno-lint-ignore no-explicit-any
type AnyFn = (...args: any[]) => any;

async function instantiate(
  mb: ModuleBuilder,
  imports: WebAssembly.Imports = {},
): Promise<Record<string, AnyFn | WebAssembly.Memory | WebAssembly.Global>> {
  const bytes = mb.build();
  assert(WebAssembly.validate(bytes), "module must validate");
  const { instance } = await WebAssembly.instantiate(bytes, imports);
  return instance.exports as Record<string, AnyFn | WebAssembly.Memory | WebAssembly.Global>;
}

/** Decodes LEB128 back (test oracle). */
function decode(bytes: Uint8Array, signed: boolean): bigint {
  let result = 0n;
  let shift = 0n;
  let byte = 0;
  for (const b of bytes) {
    byte = b;
    result |= BigInt(b & 0x7f) << shift;
    shift += 7n;
  }
  if (signed && (byte & 0x40) !== 0) result -= 1n << shift;
  return result;
}

Deno.test("uleb128 known vectors", () => {
  const cases: [number | bigint, number[]][] = [
    [0, [0x00]],
    [1, [0x01]],
    [127, [0x7f]],
    [128, [0x80, 0x01]],
    [300, [0xac, 0x02]],
    [624485, [0xe5, 0x8e, 0x26]],
    [0xffffffff, [0xff, 0xff, 0xff, 0xff, 0x0f]],
    [2 ** 32, [0x80, 0x80, 0x80, 0x80, 0x10]],
    [2n ** 64n - 1n, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
  ];
  for (const [v, bytes] of cases) assert.deepStrictEqual([...uleb128(v)], bytes, `uleb128(${v})`);
});

Deno.test("sleb128 known vectors", () => {
  const cases: [number | bigint, number[]][] = [
    [0, [0x00]],
    [-1, [0x7f]],
    [63, [0x3f]],
    [64, [0xc0, 0x00]],
    [-64, [0x40]],
    [-65, [0xbf, 0x7f]],
    [-123456, [0xc0, 0xbb, 0x78]],
    [2147483647, [0xff, 0xff, 0xff, 0xff, 0x07]],
    [-2147483648, [0x80, 0x80, 0x80, 0x80, 0x78]],
    [-(2n ** 63n), [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f]],
    [2n ** 63n - 1n, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]],
  ];
  for (const [v, bytes] of cases) assert.deepStrictEqual([...sleb128(v)], bytes, `sleb128(${v})`);
});

Deno.test("LEB128 round-trips (property)", () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (v) => {
      assert.deepStrictEqual(decode(uleb128(v), false), v);
      if (v <= BigInt(Number.MAX_SAFE_INTEGER)) {
        assert.deepStrictEqual([...uleb128(Number(v))], [...uleb128(v)]);
      }
    }),
  );
  fc.assert(
    fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (v) => {
      assert.deepStrictEqual(decode(sleb128(v), true), v);
      if (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) {
        assert.deepStrictEqual([...sleb128(Number(v))], [...sleb128(v)]);
      }
    }),
  );
});

Deno.test("LEB128 rejects bad input", () => {
  assertThrowsError(() => uleb128(-1), WasmEncodeError);
  assertThrowsError(() => uleb128(1.5), WasmEncodeError);
  assertThrowsError(() => uleb128(-1n), WasmEncodeError);
  assertThrowsError(() => sleb128(2 ** 60), WasmEncodeError);
});

Deno.test("i32 add, i64 and f32 arithmetic run", async () => {
  const mb = new ModuleBuilder();
  mb.addFunction(["i32", "i32"], ["i32"], { export: "add" })
    .localGet(0).localGet(1).op("i32.add").end();
  mb.addFunction(["i64"], ["i64"], { export: "mul64" })
    .localGet(0).i64Const(2n ** 40n).op("i64.mul").end();
  mb.addFunction(["f32", "f32"], ["f32"], { export: "fma" })
    .localGet(0).localGet(1).op("f32.mul").f32Const(0.5).op("f32.add").end();
  mb.addFunction([], ["i32"], { export: "big" }).i32Const(0xffffffff).end();
  const ex = await instantiate(mb);
  assert.deepStrictEqual((ex.add as AnyFn)(2, 40), 42);
  assert.deepStrictEqual((ex.add as AnyFn)(0x7fffffff, 1), -0x80000000);
  assert.deepStrictEqual((ex.mul64 as AnyFn)(3n), 3n * 2n ** 40n);
  assert.deepStrictEqual((ex.fma as AnyFn)(1.5, 2), 3.5);
  assert.deepStrictEqual((ex.big as AnyFn)(), -1);
});

Deno.test("a loop sums 1..n; if/else and br_table pick values", async () => {
  const mb = new ModuleBuilder();
  const sum = mb.addFunction(["i32"], ["i32"], { export: "sum" });
  const acc = sum.local("i32");
  const i = sum.local("i32");
  sum.i32Const(1).localSet(i);
  const exit = sum.block();
  sum.localGet(i).localGet(0).op("i32.gt_s").brIf(exit);
  const top = sum.loop();
  sum.localGet(acc).localGet(i).op("i32.add").localSet(acc);
  sum.localGet(i).i32Const(1).op("i32.add").localTee(i);
  sum.localGet(0).op("i32.le_s").brIf(top);
  sum.end().end();
  sum.localGet(acc).end();

  const sign = mb.addFunction(["f32"], ["i32"], { export: "sign" });
  sign.localGet(0).f32Const(0).op("f32.lt");
  sign.if("i32");
  sign.i32Const(-1).else().i32Const(1).end().end();

  const pick = mb.addFunction(["i32"], ["i32"], { export: "pick" });
  const b2 = pick.block();
  const b1 = pick.block();
  const b0 = pick.block();
  pick.localGet(0).brTable([b0, b1], b2);
  pick.end().i32Const(100).return();
  pick.end().i32Const(200).return();
  pick.end().i32Const(300).end();

  const twice = mb.addFunction(["i32"], ["i32"], { export: "twice" });
  twice.localGet(0).call(sum).localGet(0).call(sum.index).op("i32.add").end();

  const ex = await instantiate(mb);
  assert.deepStrictEqual((ex.sum as AnyFn)(100), 5050);
  assert.deepStrictEqual((ex.sum as AnyFn)(0), 0);
  assert.deepStrictEqual((ex.sign as AnyFn)(-3), -1);
  assert.deepStrictEqual((ex.sign as AnyFn)(2), 1);
  assert.deepStrictEqual([0, 1, 2, 7].map((x) => (ex.pick as AnyFn)(x)), [100, 200, 300, 300]);
  assert.deepStrictEqual((ex.twice as AnyFn)(10), 110);
});

Deno.test("multi-value blocks, select, globals, data segments, start", async () => {
  const mb = new ModuleBuilder();
  mb.memory({ min: 1, max: 2 }, "memory");
  const g = mb.global("i32", 7, { mutable: true, export: "g" });
  const f = mb.addFunction([], ["i32"], { export: "f" });
  f.block(["i32", "i32"]);
  f.i32Const(3).i32Const(4).end().op("i32.mul");
  f.globalGet(g).op("i32.add").end();
  const sel = mb.addFunction(["i32"], ["f64"], { export: "sel" });
  sel.f64Const(1.25).f64Const(-2).localGet(0).select().end();
  const init = mb.addFunction([], []);
  init.i32Const(5).globalSet(g).end();
  mb.start(init);
  mb.data(8, new Uint8Array([1, 2, 3, 4]));
  const rd = mb.addFunction([], ["i32"], { export: "rd" });
  rd.i32Const(0).load("i32.load", { offset: 8 }).end();
  const ex = await instantiate(mb);
  assert.deepStrictEqual((ex.f as AnyFn)(), 17);
  assert.deepStrictEqual((ex.g as WebAssembly.Global).value, 5);
  assert.deepStrictEqual((ex.sel as AnyFn)(1), 1.25);
  assert.deepStrictEqual((ex.sel as AnyFn)(0), -2);
  assert.deepStrictEqual((ex.rd as AnyFn)(), 0x04030201);
});

Deno.test("imported memory and function", async () => {
  const mb = new ModuleBuilder();
  const log = mb.importFunction("env", "log", ["f32"], []);
  mb.importMemory("env", "memory", { min: 1 });
  const f = mb.addFunction(["i32"], [], { export: "f" });
  f.localGet(0).load("f32.load").call(log);
  f.i32Const(0).f32Const(9).store("f32.store", { offset: 4 }).end();
  const memory = new WebAssembly.Memory({ initial: 1 });
  const seen: number[] = [];
  new Float32Array(memory.buffer)[3] = 2.5;
  const ex = await instantiate(mb, { env: { memory, log: (x: number) => seen.push(x) } });
  (ex.f as AnyFn)(12);
  assert.deepStrictEqual(seen, [2.5]);
  assert.deepStrictEqual(new Float32Array(memory.buffer)[1], 9);
});

Deno.test("shared memory with atomics validates and runs", async () => {
  if (typeof SharedArrayBuffer === "undefined") {
    console.log("skipped: no SharedArrayBuffer");
    return;
  }
  const mb = new ModuleBuilder();
  mb.importMemory("env", "memory", { min: 1, max: 4, shared: true });
  const f = mb.addFunction(["i32"], ["i32"], { export: "bump" });
  f.i32Const(0).localGet(0).atomic("i32.atomic.rmw.add").atomicFence().end();
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
  const ex = await instantiate(mb, { env: { memory } });
  assert.deepStrictEqual((ex.bump as AnyFn)(3), 0);
  assert.deepStrictEqual((ex.bump as AnyFn)(4), 3);
  assert.deepStrictEqual(new Int32Array(memory.buffer)[0], 7);
});

Deno.test("SIMD f32x4 arithmetic over memory matches JS", async () => {
  if (!simdSupported()) {
    console.log("skipped: no SIMD");
    return;
  }
  const unary = ["f32x4.neg", "f32x4.abs", "f32x4.sqrt"] as const;
  const binary = [
    "f32x4.add",
    "f32x4.sub",
    "f32x4.mul",
    "f32x4.div",
    "f32x4.min",
    "f32x4.max",
  ] as const;
  const mb = new ModuleBuilder();
  mb.memory({ min: 1 }, "memory");
  // a at 0, b at 16, outputs from 32 on, one v128 each
  [...unary, ...binary].forEach((name, i) => {
    const f = mb.addFunction([], [], { export: name });
    f.i32Const(32 + 16 * i).i32Const(0).load("v128.load");
    if ((binary as readonly string[]).includes(name)) {
      f.i32Const(0).load("v128.load", { offset: 16, align: 2 });
    }
    f.op(name).store("v128.store").end();
  });
  const ex = await instantiate(mb);
  const mem = new Float32Array((ex.memory as WebAssembly.Memory).buffer);
  const a = [1.5, -2, 9, 0.25];
  const b = [0.5, 4, -3, 8];
  mem.set([...a, ...b]);
  const js: Record<string, (x: number, y: number) => number> = {
    "f32x4.neg": (x) => -x,
    "f32x4.abs": (x) => Math.abs(x),
    "f32x4.sqrt": (x) => Math.sqrt(x),
    "f32x4.add": (x, y) => x + y,
    "f32x4.sub": (x, y) => x - y,
    "f32x4.mul": (x, y) => x * y,
    "f32x4.div": (x, y) => x / y,
    "f32x4.min": (x, y) => Math.min(x, y),
    "f32x4.max": (x, y) => Math.max(x, y),
  };
  [...unary, ...binary].forEach((name, i) => {
    (ex[name] as AnyFn)();
    const got = [...mem.subarray(8 + 4 * i, 12 + 4 * i)];
    const want = a.map((x, j) => Math.fround(js[name](x, b[j])));
    assert.deepStrictEqual(got, want, name);
  });
});

Deno.test("SIMD lanes, splats, constants, bitselect, i32x4", async () => {
  const mb = new ModuleBuilder();
  mb.memory({ min: 1 }, "memory");
  const f = mb.addFunction([], [], { export: "run" });
  // out0 = splat(mem[0]) with lane 2 replaced by 7, at 16
  f.i32Const(16).i32Const(0).load("v128.load32_splat").f32Const(7).lane("f32x4.replace_lane", 2);
  f.store("v128.store");
  // out1 = bitselect(const A, f32x4.splat(-1), mask) at 32
  f.i32Const(32).f32x4Const(1, 2, 3, 4).f32Const(-1).op("f32x4.splat");
  f.i32x4Const(-1, 0, -1, 0).op("v128.bitselect").store("v128.store");
  // out2 = (i32x4 [1,2,3,4] * splat 3 + [10..]) << 1 at 48
  f.i32Const(48).i32x4Const(1, 2, 3, 4).i32Const(3).op("i32x4.splat").op("i32x4.mul");
  f.i32x4Const(10, 20, 30, 40).op("i32x4.add").i32Const(1).op("i32x4.shl");
  f.store("v128.store");
  // out3 (scalar at 64) = extract lane 3 of f32x4 const
  f.i32Const(64).f32x4Const(0, 0, 0, 6.5).lane("f32x4.extract_lane", 3).store("f32.store");
  f.end();
  const ex = await instantiate(mb);
  const buf = (ex.memory as WebAssembly.Memory).buffer;
  new Float32Array(buf)[0] = 3.25;
  (ex.run as AnyFn)();
  assert.deepStrictEqual([...new Float32Array(buf, 16, 4)], [3.25, 3.25, 7, 3.25]);
  assert.deepStrictEqual([...new Float32Array(buf, 32, 4)], [1, -1, 3, -1]);
  assert.deepStrictEqual([...new Int32Array(buf, 48, 4)], [26, 52, 78, 104]);
  assert.deepStrictEqual(new Float32Array(buf, 64, 1)[0], 6.5);
});

Deno.test("relaxed madd/nmadd compute a*b+c and -(a*b)+c", async () => {
  if (!relaxedSimdSupported()) {
    console.log("skipped: this runtime has no relaxed SIMD (WebAssembly.validate said no)");
    return;
  }
  const mb = new ModuleBuilder();
  mb.memory({ min: 1 }, "memory");
  for (const name of ["f32x4.relaxed_madd", "f32x4.relaxed_nmadd"] as const) {
    const f = mb.addFunction([], [], { export: name });
    f.i32Const(name.endsWith("nmadd") ? 64 : 48);
    f.i32Const(0).load("v128.load").i32Const(16).load("v128.load").i32Const(32).load("v128.load");
    f.op(name).store("v128.store").end();
  }
  const ex = await instantiate(mb);
  const mem = new Float32Array((ex.memory as WebAssembly.Memory).buffer);
  mem.set([1, 2, 3, 4, 5, 6, 7, 8, 0.5, -1, 2, 10]);
  (ex["f32x4.relaxed_madd"] as AnyFn)();
  (ex["f32x4.relaxed_nmadd"] as AnyFn)();
  assert.deepStrictEqual([...mem.subarray(12, 16)], [5.5, 11, 23, 42]);
  assert.deepStrictEqual([...mem.subarray(16, 20)], [-4.5, -13, -19, -22]);
});

Deno.test("every simple instruction validates with its declared signature", () => {
  const relaxed = relaxedSimdSupported();
  const simd = simdSupported();
  let checked = 0;
  for (const name of SIMPLE_OP_NAMES) {
    if (name.includes("relaxed") && !relaxed) continue;
    if (/x(16|8|4|2)\.|^v128/.test(name) && !simd) continue;
    const { params, results } = opSignature(name);
    const mb = new ModuleBuilder();
    const f = mb.addFunction(params, results);
    params.forEach((_, i) => f.localGet(i));
    f.op(name).end();
    assert(WebAssembly.validate(mb.build()), `${name} must validate`);
    checked++;
  }
  assert(checked > 200, `checked ${checked}`);
});

Deno.test("every load and store validates with offsets and lower alignment", () => {
  const mb = new ModuleBuilder();
  mb.memory({ min: 1 });
  const f = mb.addFunction([], []);
  f.i32Const(0).load("v128.load", { offset: 1 << 20, align: 0 }).drop();
  f.i32Const(0).load("f64.load", { offset: 0xffffffff }).drop();
  f.i32Const(0).load("i64.load32_u").drop();
  f.i32Const(0).load("v128.load64_zero").drop();
  f.i32Const(0).i64Const(-1).store("i64.store16").end();
  assert(WebAssembly.validate(mb.build()));
});

function expectError(build: (fb: FunctionBuilder, mb: ModuleBuilder) => void, text: RegExp) {
  const mb = new ModuleBuilder();
  const fb = mb.addFunction(["i32"], ["i32"], { name: "victim" });
  const err = assertThrowsError(() => build(fb, mb), WasmEncodeError);
  assert(text.test(err.message), `message "${err.message}" should match ${text}`);
}

Deno.test("misuse gives clear errors", () => {
  expectError(
    (f) => f.f32Const(1).op("i32.eqz"),
    /victim.*#2 \(i32.eqz\).*expects i32 but found f32/,
  );
  expectError((f) => f.op("i32.add"), /expects i32 but the stack is empty/);
  expectError((f) => f.localGet(0).localGet(0).end(), /extra values on the stack: \[i32\]/);
  expectError((f) => f.end(), /stack is empty/);
  expectError((f) => f.else(), /else without a matching if/);
  expectError((f) => {
    const b = f.block();
    f.end();
    f.br(b);
  }, /closed/);
  expectError((f) => f.br(3), /out of range/);
  expectError((f) => f.localGet(0).end().i32Const(1), /after the function's final end/);
  expectError((f) => f.localGet(5), /local 5 is not declared/);
  expectError((f) => {
    f.localGet(0).if("i32");
    f.i32Const(1).end();
  }, /needs an else arm/);
  expectError((f) => f.i32Const(0).load("f32.load", { align: 3 }), /exceeds its natural/);
  expectError((f) => f.i32Const(0).load("f32.load", { offset: -4 }), /offset must be/);
  expectError((f) => f.i32Const(0).lane("f32x4.extract_lane", 4), /lane 4 is out of range/);
  expectError((f) => f.v128Const([1, 2, 3]), /16 bytes/);
  expectError((f) => f.call(99), /unknown function index 99/);
  expectError((f) => f.globalGet(0), /global 0 is not declared/);
  expectError((f, mb) => {
    const g = mb.global("f32", 1);
    f.f32Const(2).globalSet(g);
  }, /immutable/);
  expectError((f) => f.i32Const(2 ** 33), /i32.const needs/);
  // deno-lint-ignore no-explicit-any
  expectError((f) => f.op("f32x4.fma" as any), /unknown instruction/);
  expectError((f) => f.i32Const(0).i32Const(0).atomic("i32.atomic.store", { align: 0 }), /natural/);
});

Deno.test("module-level misuse gives clear errors", () => {
  const unfinished = new ModuleBuilder();
  unfinished.addFunction([], [], { name: "half" }).block();
  assertThrowsError(() => unfinished.build(), WasmEncodeError, /"half" is not finished/);

  const late = new ModuleBuilder();
  late.addFunction([], []).end();
  assertThrowsError(() => late.importFunction("env", "f", [], []), WasmEncodeError, /before\ any/);

  const dup = new ModuleBuilder();
  dup.addFunction([], [], { export: "x" }).end();
  assertThrowsError(() => dup.addFunction([], [], { export: "x" }), WasmEncodeError, /duplicate/);

  const mem = new ModuleBuilder();
  assertThrowsError(
    () => mem.memory({ min: 1, shared: true }),
    WasmEncodeError,
    /max\ page\ count/,
  );
  assertThrowsError(() => mem.memory({ min: 3, max: 2 }), WasmEncodeError, /memory\ max/);
  mem.memory({ min: 1 });
  assertThrowsError(() => mem.memory({ min: 1 }), WasmEncodeError, /already\ has\ a\ memory/);
  mem.data(65530, new Uint8Array(10));
  assertThrowsError(() => mem.build(), WasmEncodeError, /exceeds\ the\ memory/);

  const nomem = new ModuleBuilder();
  nomem.addFunction([], [], { name: "reader" }).i32Const(0).load("i32.load").drop().end();
  assertThrowsError(() => nomem.build(), WasmEncodeError, /no\ memory/);

  const badStart = new ModuleBuilder();
  const withParam = badStart.addFunction(["i32"], []).end();
  assertThrowsError(() => badStart.start(withParam), WasmEncodeError, /start\ function/);

  const badType = new ModuleBuilder();
  assertThrowsError(
    () => badType.type(["i8" as ValType], []),
    WasmEncodeError,
    /unknown\ value\ type/,
  );
});

Deno.test("unreachable code after br is stack-polymorphic", () => {
  const mb = new ModuleBuilder();
  const f = mb.addFunction([], ["f32"]);
  const b = f.block("f32");
  f.f32Const(1).br(b).op("f32x4.add").lane("f32x4.extract_lane", 0).end();
  assert(!f.finished);
  f.end();
  assert(f.finished);
  assert(WebAssembly.validate(mb.build()));
});

Deno.test("property: i32 constants and memory offsets are encoded as sleb128/uleb128 say", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.integer(), fc.integer({ min: 0, max: 0xffffffff })),
      fc.integer({ min: 0, max: 0xfffffff0 }),
      async (c, offset) => {
        const mb = new ModuleBuilder();
        mb.memory({ min: 1 });
        mb.addFunction([], ["i32"], { export: "c" }).i32Const(c).end();
        // An offset this large traps on any address: the encoding is what is checked.
        mb.addFunction(["i32"], ["i32"], { export: "load" }).localGet(0).load("i32.load", {
          offset,
        }).end();
        const bytes = mb.build();
        const want = [0x41, ...sleb128(c | 0)];
        const at = bytes.findIndex((_, i) => want.every((b, j) => bytes[i + j] === b));
        assert(at > 0, `i32.const ${c} encoded as sleb128(${c | 0})`);
        const ex = await instantiate(mb);
        assert.strictEqual((ex.c as AnyFn)(), c | 0);
        if (offset < 65532) assert.strictEqual((ex.load as AnyFn)(0), 0);
        else assert.throws(() => (ex.load as AnyFn)(0), WebAssembly.RuntimeError);
      },
    ),
    { numRuns: 60 },
  );
});
