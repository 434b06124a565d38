/**
 * Generator of f32 matrix-multiply kernels, `C[M,N] = alpha * A[M,K] · B[K,N] (+ bias[N])`, as
 * WebAssembly SIMD specialized to compile-time M, N and K.
 *
 * The kernel follows the GotoBLAS/BLIS structure:
 * - B is packed once into column panels NR wide (zero-padded at the right edge), grouped by
 *   K blocks of KC rows, so the micro-kernel reads it with contiguous `v128.load`s;
 * - A is packed one MC×KC block at a time into micro-panels MR rows high, k-major, so the
 *   micro-kernel broadcasts its values with `v128.load32_splat`;
 * - the micro-kernel keeps an MR × NR tile of C in MR·NR/4 `f32x4` accumulators, unrolls the K
 *   loop, and accumulates with `f32x4.relaxed_madd` (one fused multiply-add) or with
 *   `f32x4.mul` + `f32x4.add` where relaxed SIMD is missing;
 * - loops run B panels outside, A micro-panels inside, so a KC×NR panel of B stays in L1 while
 *   the packed A block streams from L2; the first K block writes C (`alpha·acc + bias`), later
 *   ones add to it.
 * Edge tiles get their own micro-kernel variants: fewer rows (MR' < MR) or fewer columns, the
 * last partial `f32x4` stored lane by lane. Every size and offset is a constant, so all pointer
 * math is i32 adds of constants and memarg offsets.
 *
 * @module
 */
import { BackendError, ShapeError } from "../../../runtime/errors.ts";
import { type FunctionBuilder, ModuleBuilder, relaxedSimdSupported } from "./encoder.ts";
import { constantArray } from "./arena.ts";
import { bump, repeat } from "./emit.ts";

/** Which multiply-add the micro-kernel uses. */
export type SgemmPath = "relaxed" | "simd";

/** Blocking and register-tile parameters; defaults depend on the path. */
export interface SgemmTile {
  /** Rows of the register tile (micro-panel height of packed A), 1..12. */
  mr: number;
  /** Columns of the register tile, a multiple of 4 in 4..16 (panel width of packed B). */
  nr: number;
  /** Largest K block (depth of a packed panel); blocks are evened out to at most this. */
  kc: number;
  /** Largest M block (rows of A packed at once); evened out and rounded to a multiple of mr. */
  mc: number;
  /** How many k steps one micro-kernel loop iteration does, 1..16. */
  unroll: number;
}

/** Options of {@link generateSgemm}. */
export interface SgemmOptions {
  /** Rows of A and C. */
  m: number;
  /** Columns of B and C. */
  n: number;
  /** Columns of A, rows of B. */
  k: number;
  /** Scale of the product (default 1). */
  alpha?: number;
  /** Add a per-column bias vector of length n (default false). */
  bias?: boolean;
  /** Multiply-add path; `"auto"` (default) takes relaxed SIMD where this runtime validates it. */
  path?: SgemmPath | "auto";
  /** `"define"` (default): the module defines and exports `memory`; `"import"`: it imports `env.memory`. */
  memory?: "define" | "import";
  /** Shared memory (for threads); then the memory's max is the module's page count. */
  shared?: boolean;
  /** Byte offset where the layout starts in the memory (a multiple of 64; default 0). */
  base?: number;
  /** Override blocking parameters (mostly for tuning and tests). */
  tile?: Partial<SgemmTile>;
}

/** Where the kernel expects its buffers, as byte offsets into its linear memory. */
export interface SgemmLayout {
  /** A, row-major M×K f32. */
  readonly a: number;
  /** B, row-major K×N f32. */
  readonly b: number;
  /** bias, N f32 (only with `bias: true`). */
  readonly bias: number | undefined;
  /** C, row-major M×N f32 (written by `compute`/`run`). */
  readonly c: number;
  /** Packed B (scratch written by `packB`, read by `compute`), `packedBBytes` long. */
  readonly packedB: number;
  /** Bytes of packed B. */
  readonly packedBBytes: number;
  /** Packed A block (scratch of `compute`), `packedABytes` long. */
  readonly packedA: number;
  /** Bytes of the packed A block. */
  readonly packedABytes: number;
  /** First byte past the layout (the kernel may read, never write, up to 16 bytes past C). */
  readonly end: number;
  /** 64 KiB pages the memory needs. */
  readonly pages: number;
}

/** A generated sgemm module and how to drive it. */
export interface SgemmKernel {
  /** The WebAssembly module. Exports `run` (= `packB` then `compute`), `packB`, `compute`, and `memory` unless imported. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Buffer offsets. */
  readonly layout: SgemmLayout;
  /** The multiply-add path compiled in. */
  readonly path: SgemmPath;
  /** The blocking actually used (after evening out the blocks). */
  readonly tile: Readonly<SgemmTile>;
  /** Rows of A and C. */
  readonly m: number;
  /** Columns of B and C. */
  readonly n: number;
  /** Inner dimension. */
  readonly k: number;
  /** Floating-point operations of one product, 2·M·N·K. */
  readonly flops: number;
  /** Whether the memory is imported as `env.memory`. */
  readonly importsMemory: boolean;
}

const PAGE = 65536;
const MAX_BYTES = 4 * 1024 * 1024 * 1024 - PAGE;

function defaultTile(path: SgemmPath): SgemmTile {
  // 6×8 needs 12 accumulators + 2 B vectors + 1 broadcast = 15 xmm registers, all V8 leaves
  // allocatable on x64 (xmm15 is its scratch); mul+add needs a product temporary as well, so it
  // takes 5 rows (6 spills and runs at about 2/3 the speed). Measured on Zen 4 at 256..1024;
  // kc, mc and unroll moved results by less than the noise.
  return path === "relaxed"
    ? { mr: 6, nr: 8, kc: 256, mc: 96, unroll: 4 }
    : { mr: 5, nr: 8, kc: 256, mc: 100, unroll: 4 };
}

function checkInt(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new ShapeError(`sgemm: ${name} must be an integer in [${min}, ${max}], got ${v}`);
  }
}

const align64 = (x: number) => Math.ceil(x / 64) * 64;

/** Splits `total` into `count` blocks of `size` and a last one of `tail` (0 when even). */
function evenBlocks(total: number, max: number, multiple: number) {
  max = Math.max(multiple, Math.floor(max / multiple) * multiple);
  const blocks = Math.ceil(total / max);
  let size = Math.ceil(total / blocks);
  size = Math.min(Math.ceil(size / multiple) * multiple, max);
  if (size > total) size = total;
  const count = Math.floor(total / size);
  return { size, count, tail: total - count * size };
}

/** `local = value`. */
function setConst(fb: FunctionBuilder, local: number, value: number): void {
  fb.i32Const(value).localSet(local);
}

interface Ctx {
  mb: ModuleBuilder;
  path: SgemmPath;
  m: number;
  n: number;
  k: number;
  alpha: number;
  bias: boolean;
  tile: SgemmTile;
  micro: Map<string, FunctionBuilder>;
  packers: Map<string, FunctionBuilder>;
  /** Byte strides of A: between rows (m) and between columns (k). */
  aRs: number;
  aCs: number;
  /** Byte strides of B: between rows (k) and between columns (n). */
  bRs: number;
  bCs: number;
  /** Byte stride between rows of C. */
  ldc: number;
  /** Never touch bytes past the last column of C or bias (partial vectors go lane by lane). */
  safeEdges: boolean;
  /** Prefix of internal function names. */
  prefix: string;
  /** A comes packed (compute walks it instead of packing blocks into scratch). */
  prepackedA?: boolean;
}

/**
 * The micro-kernel for an `mr`-row, `nv`-vector tile over `kc` k steps, storing `cols` columns.
 * Params: packed A micro-panel, packed B panel, C tile, bias slice, first-block flag.
 */
function microKernel(ctx: Ctx, mr: number, nv: number, kc: number, cols: number): FunctionBuilder {
  const key = `${mr}x${nv}:${kc}:${cols}`;
  const hit = ctx.micro.get(key);
  if (hit) return hit;
  const { mb, tile } = ctx;
  const fb = mb.addFunction(["i32", "i32", "i32", "i32", "i32"], [], {
    name: `${ctx.prefix}micro_${mr}x${nv * 4}_k${kc}_c${cols}`,
  });
  ctx.micro.set(key, fb);
  const [pa, pb, pc, pbias, first] = [0, 1, 2, 3, 4];
  const acc: number[][] = [];
  for (let r = 0; r < mr; r++) {
    acc.push([]);
    for (let v = 0; v < nv; v++) acc[r].push(fb.local("v128")); // locals start at zero
  }
  const bv = Array.from({ length: nv }, () => fb.local("v128"));
  const av = fb.local("v128");
  const bStride = nv * 16; // bytes of one k row of the packed B panel
  const aStride = mr * 4;

  const step = (u: number) => {
    for (let v = 0; v < nv; v++) {
      fb.localGet(pb).load("v128.load", { offset: u * bStride + v * 16 }).localSet(bv[v]);
    }
    for (let r = 0; r < mr; r++) {
      fb.localGet(pa).load("v128.load32_splat", { offset: u * aStride + r * 4 }).localSet(av);
      for (let v = 0; v < nv; v++) {
        if (ctx.path === "relaxed") {
          fb.localGet(av).localGet(bv[v]).localGet(acc[r][v]).op("f32x4.relaxed_madd");
        } else {
          fb.localGet(acc[r][v]).localGet(av).localGet(bv[v]).op("f32x4.mul", "f32x4.add");
        }
        fb.localSet(acc[r][v]);
      }
    }
  };

  const unroll = Math.min(tile.unroll, kc);
  const iters = Math.floor(kc / unroll);
  const rest = kc - iters * unroll;
  if (iters === 1) {
    for (let u = 0; u < unroll; u++) step(u);
    bump(fb, pa, unroll * aStride);
    bump(fb, pb, unroll * bStride);
  } else if (iters > 1) {
    const aEnd = fb.local("i32");
    fb.localGet(pa).i32Const(iters * unroll * aStride).op("i32.add").localSet(aEnd);
    const top = fb.loop();
    for (let u = 0; u < unroll; u++) step(u);
    bump(fb, pb, unroll * bStride);
    fb.localGet(pa).i32Const(unroll * aStride).op("i32.add").localTee(pa);
    fb.localGet(aEnd).op("i32.ne").brIf(top);
    fb.end();
  }
  for (let u = 0; u < rest; u++) step(u);

  // Epilogue: C = alpha·acc + bias on the first K block, C += alpha·acc on later ones.
  const alphaV = ctx.alpha === 1 ? -1 : fb.local("v128");
  if (alphaV >= 0) fb.f32Const(ctx.alpha).op("f32x4.splat").localSet(alphaV);
  const val = fb.local("v128");
  const epilogue = (isFirst: boolean) => {
    for (let r = 0; r < mr; r++) {
      for (let v = 0; v < nv; v++) {
        const lanes = Math.min(4, cols - v * 4);
        if (lanes <= 0) continue;
        const off = r * ctx.ldc + v * 16;
        fb.localGet(acc[r][v]);
        if (alphaV >= 0) fb.localGet(alphaV).op("f32x4.mul");
        if (isFirst) {
          if (ctx.bias) loadVector(fb, pbias, v * 16, lanes, ctx.safeEdges).op("f32x4.add");
        } else {
          loadVector(fb, pc, off, lanes, ctx.safeEdges).op("f32x4.add");
        }
        if (lanes === 4) {
          fb.localSet(val).localGet(pc).localGet(val).store("v128.store", { offset: off });
        } else {
          fb.localSet(val);
          for (let l = 0; l < lanes; l++) {
            fb.localGet(pc).localGet(val).lane("f32x4.extract_lane", l);
            fb.store("f32.store", { offset: off + l * 4 });
          }
        }
      }
    }
  };
  fb.localGet(first).if();
  epilogue(true);
  fb.else();
  epilogue(false);
  fb.end();
  fb.end();
  return fb;
}

/** Pushes the f32x4 at `ptr + offset`; with `safe`, a partial one is loaded lane by lane. */
function loadVector(
  fb: FunctionBuilder,
  ptr: number,
  offset: number,
  lanes: number,
  safe: boolean,
): FunctionBuilder {
  if (lanes === 4 || !safe) return fb.localGet(ptr).load("v128.load", { offset });
  fb.f32x4Const(0, 0, 0, 0);
  for (let l = 0; l < lanes; l++) {
    fb.localGet(ptr).load("f32.load", { offset: offset + l * 4 }).lane("f32x4.replace_lane", l);
  }
  return fb;
}

/** Packs `kc` columns of an `mr`-row slice of A (row stride K) into a k-major micro-panel. */
function packAFunction(ctx: Ctx, mr: number, kc: number): FunctionBuilder {
  const key = `${mr}:${kc}`;
  const hit = ctx.packers.get(key);
  if (hit) return hit;
  const fb = ctx.mb.addFunction(["i32", "i32"], [], { name: `${ctx.prefix}pack_a_${mr}_k${kc}` });
  ctx.packers.set(key, fb);
  const [src, dst] = [0, 1];
  const rowBytes = ctx.aRs;
  // Four k steps per iteration: mr·4 scalar moves with constant offsets.
  const quads = Math.floor(kc / 4);
  const moveStep = (q: number) => {
    for (let r = 0; r < mr; r++) {
      fb.localGet(dst).localGet(src).load("f32.load", { offset: r * rowBytes + q * ctx.aCs });
      fb.store("f32.store", { offset: (q * mr + r) * 4 });
    }
  };
  repeat(fb, quads, () => {
    for (let q = 0; q < 4; q++) moveStep(q);
    bump(fb, src, 4 * ctx.aCs);
    bump(fb, dst, 16 * mr);
  });
  for (let q = 0; q < kc - quads * 4; q++) moveStep(q);
  fb.end();
  return fb;
}

/**
 * Generates an sgemm module specialized to `m`, `n`, `k` and returns it with its memory layout.
 * The caller writes A, B (and bias) at the layout's offsets, calls the `run` export, and reads C.
 * When B is constant (weights), call `packB` once and then only `compute`.
 *
 * @example Multiplying 2×3 by 3×2
 * ```ts
 * import assert from "node:assert";
 * import { generateSgemm, instantiateSgemm } from "./sgemm.ts";
 * const kernel = generateSgemm({ m: 2, n: 2, k: 3 });
 * const g = instantiateSgemm(kernel);
 * g.a.set([1, 2, 3, 4, 5, 6]);
 * g.b.set([1, 0, 0, 1, 1, 1]);
 * g.run();
 * assert.deepStrictEqual([...g.c], [4, 5, 10, 11]);
 * ```
 */
export function generateSgemm(options: SgemmOptions): SgemmKernel {
  const { m, n, k } = options;
  const plan = planSgemm(options);
  const base = options.base ?? 0;
  if (!Number.isInteger(base) || base < 0 || base % 64 !== 0) {
    throw new ShapeError(`sgemm: base must be a non-negative multiple of 64, got ${base}`);
  }
  const { tile } = plan;

  // Layout.
  const aAt = base;
  const bAt = align64(aAt + m * k * 4);
  const biasAt = options.bias ? bAt + align64(k * n * 4) : undefined;
  const cAt = align64((biasAt ?? bAt + k * n * 4) + (options.bias ? n * 4 : 0));
  const packedB = align64(cAt + m * n * 4 + 16);
  const packedBBytes = k * plan.nPad * 4;
  const packedA = align64(packedB + packedBBytes);
  const packedABytes = tile.mc * tile.kc * 4;
  const end = align64(packedA + packedABytes + 16);
  if (end > MAX_BYTES) {
    throw new ShapeError(
      `sgemm ${m}x${n}x${k}: needs ${end} bytes of linear memory, more than wasm32 allows`,
    );
  }
  const pages = Math.ceil(end / PAGE);
  const layout: SgemmLayout = {
    a: aAt,
    b: bAt,
    bias: biasAt,
    c: cAt,
    packedB,
    packedBBytes,
    packedA,
    packedABytes,
    end,
    pages,
  };

  const mb = new ModuleBuilder();
  const importsMemory = options.memory === "import";
  const limits = options.shared ? { min: pages, max: pages, shared: true } : { min: pages };
  if (importsMemory) mb.importMemory("env", "memory", limits);
  else mb.memory(limits, "memory");
  const ctx = makeCtx(mb, plan, options, {
    aRs: k * 4,
    aCs: 4,
    bRs: n * 4,
    bCs: 4,
    safeEdges: false,
    prefix: "sgemm_",
  });

  const run = mb.addFunction([], [], { export: "run" });
  const packB = mb.addFunction([], [], { export: "packB" });
  const compute = mb.addFunction([], [], { export: "compute" });
  run.call(packB).call(compute).end();
  const at: Record<Buffer, number> = {
    a: aAt,
    b: bAt,
    bias: biasAt ?? 0,
    c: cAt,
    packedB,
    packedA,
  };
  emitSgemmBody(ctx, plan, packB, compute, (fb, which) => fb.i32Const(at[which]));

  return {
    bytes: mb.build(),
    layout,
    path: plan.path,
    tile,
    m,
    n,
    k,
    flops: 2 * m * n * k,
    importsMemory,
  };
}

/** The buffers an sgemm body addresses. */
type Buffer = "a" | "b" | "bias" | "c" | "packedB" | "packedA";

/** Validated options and the blocking derived from them. */
interface Plan {
  path: SgemmPath;
  alpha: number;
  tile: SgemmTile;
  kb: ReturnType<typeof evenBlocks>;
  mb: ReturnType<typeof evenBlocks>;
  nv: number;
  fullPanels: number;
  edgeCols: number;
  edgeNv: number;
  nPad: number;
}

function planSgemm(options: {
  m: number;
  n: number;
  k: number;
  alpha?: number;
  path?: SgemmPath | "auto";
  tile?: Partial<SgemmTile>;
}): Plan {
  const { m, n, k } = options;
  checkInt("m", m, 1, 2 ** 28);
  checkInt("n", n, 1, 2 ** 28);
  checkInt("k", k, 1, 2 ** 28);
  const alpha = options.alpha ?? 1;
  if (!Number.isFinite(alpha)) throw new ShapeError(`sgemm: alpha must be finite, got ${alpha}`);
  const requested = options.path ?? "auto";
  if (requested !== "auto" && requested !== "relaxed" && requested !== "simd") {
    throw new BackendError(`sgemm: unknown path ${String(requested)}`);
  }
  const path: SgemmPath = requested === "auto"
    ? (relaxedSimdSupported() ? "relaxed" : "simd")
    : requested;
  const t = { ...defaultTile(path), ...options.tile };
  checkInt("tile.mr", t.mr, 1, 12);
  checkInt("tile.nr", t.nr, 4, 16);
  if (t.nr % 4 !== 0) throw new ShapeError(`sgemm: tile.nr must be a multiple of 4, got ${t.nr}`);
  checkInt("tile.kc", t.kc, 1, 1 << 20);
  checkInt("tile.mc", t.mc, 1, 1 << 20);
  checkInt("tile.unroll", t.unroll, 1, 16);

  const kb = evenBlocks(k, t.kc, t.unroll);
  const mb = evenBlocks(m, Math.max(t.mc, t.mr), t.mr);
  const tile: SgemmTile = { mr: t.mr, nr: t.nr, kc: kb.size, mc: mb.size, unroll: t.unroll };
  const nv = t.nr / 4;
  const fullPanels = Math.floor(n / t.nr);
  const edgeCols = n - fullPanels * t.nr;
  const edgeNv = Math.ceil(edgeCols / 4);
  const nPad = fullPanels * t.nr + edgeNv * 4;
  return { path, alpha, tile, kb, mb, nv, fullPanels, edgeCols, edgeNv, nPad };
}

function makeCtx(
  mb: ModuleBuilder,
  plan: Plan,
  options: { m: number; n: number; k: number; bias?: boolean },
  extra: Pick<Ctx, "aRs" | "aCs" | "bRs" | "bCs" | "safeEdges" | "prefix">,
): Ctx {
  return {
    mb,
    path: plan.path,
    m: options.m,
    n: options.n,
    k: options.k,
    alpha: plan.alpha,
    bias: options.bias ?? false,
    tile: plan.tile,
    micro: new Map(),
    packers: new Map(),
    ldc: options.n * 4,
    ...extra,
  };
}

/**
 * Emits the bodies of `packB` and `compute` (both still open; this ends them). `addr` pushes
 * the byte address of a buffer (a constant, or a parameter plus an offset).
 */
function emitSgemmBody(
  ctx: Ctx,
  plan: Plan,
  packB: FunctionBuilder,
  compute: FunctionBuilder,
  addr: (fb: FunctionBuilder, which: Buffer) => void,
): void {
  const t = ctx.tile;
  const { kb, nv, fullPanels, edgeCols, edgeNv, nPad } = plan;
  const mb_ = plan.mb;
  const setAddr = (fb: FunctionBuilder, local: number, which: Buffer) => {
    addr(fb, which);
    fb.localSet(local);
  };

  // packB: for each K block, for each panel, kc rows of NR floats; the destination is sequential.
  {
    const fb = packB;
    const [src, dst, row] = [fb.local("i32"), fb.local("i32"), fb.local("i32")];
    setAddr(fb, dst, "packedB");
    const packBlock = (kc: number, pc: () => void) => {
      // src = B + pc·bRs is set by pc(); each panel walks kc rows.
      pc();
      repeat(fb, fullPanels, () => {
        fb.localGet(src).localSet(row);
        repeat(fb, kc, () => {
          if (ctx.bCs === 4) {
            for (let v = 0; v < nv; v++) {
              fb.localGet(dst).localGet(row).load("v128.load", { offset: v * 16, align: 2 });
              fb.store("v128.store", { offset: v * 16 });
            }
          } else {
            for (let c = 0; c < t.nr; c++) {
              fb.localGet(dst).localGet(row).load("f32.load", { offset: c * ctx.bCs });
              fb.store("f32.store", { offset: c * 4 });
            }
          }
          bump(fb, row, ctx.bRs);
          bump(fb, dst, t.nr * 4);
        });
        bump(fb, src, t.nr * ctx.bCs);
      });
      if (edgeCols > 0) {
        fb.localGet(src).localSet(row);
        repeat(fb, kc, () => {
          for (let c = 0; c < edgeNv * 4; c++) {
            fb.localGet(dst);
            if (c < edgeCols) fb.localGet(row).load("f32.load", { offset: c * ctx.bCs });
            else fb.f32Const(0);
            fb.store("f32.store", { offset: c * 4 });
          }
          bump(fb, row, ctx.bRs);
          bump(fb, dst, edgeNv * 16);
        });
      }
    };
    const blockStart = fb.local("i32");
    setAddr(fb, blockStart, "b");
    const nextBlock = (kc: number) => () => {
      fb.localGet(blockStart).localTee(src).i32Const(kc * ctx.bRs).op("i32.add").localSet(
        blockStart,
      );
    };
    repeat(fb, kb.count, () => packBlock(kb.size, nextBlock(kb.size)));
    if (kb.tail > 0) packBlock(kb.tail, nextBlock(kb.tail));
    fb.end();
  }

  // compute: K blocks outside; per K block, M blocks; per M block, pack A, then B panels
  // outside and A micro-panels inside.
  {
    const fb = compute;
    const first = fb.local("i32");
    const aCol = fb.local("i32"); // address of A[0, pc]
    const bBlock = fb.local("i32"); // packed B block of this pc
    const aRow = fb.local("i32"); // address of A[ic, pc]
    const cRow = fb.local("i32"); // address of C[ic, 0]
    const aSrc = fb.local("i32");
    const aDst = fb.local("i32");
    const bPanel = fb.local("i32");
    const cPanel = fb.local("i32");
    const biasP = fb.local("i32");
    const aPanel = fb.local("i32");
    const cTile = fb.local("i32");
    const packedA = fb.local("i32");
    const cBase = fb.local("i32");
    const mr = t.mr;
    setAddr(fb, packedA, "packedA");
    setAddr(fb, cBase, "c");

    const mBlock = (mc: number, kc: number) => {
      const fullMicro = Math.floor(mc / mr);
      const edgeMr = mc - fullMicro * mr;
      if (!ctx.prepackedA) {
        // Pack A[ic:ic+mc, pc:pc+kc] into micro-panels.
        fb.localGet(aRow).localSet(aSrc);
        fb.localGet(packedA).localSet(aDst);
        const packFull = packAFunction(ctx, mr, kc);
        repeat(fb, fullMicro, () => {
          fb.localGet(aSrc).localGet(aDst).call(packFull);
          bump(fb, aSrc, mr * ctx.aRs);
          bump(fb, aDst, mr * kc * 4);
        });
        if (edgeMr > 0) fb.localGet(aSrc).localGet(aDst).call(packAFunction(ctx, edgeMr, kc));
      }

      // Sweep B panels × A micro-panels.
      fb.localGet(bBlock).localSet(bPanel);
      fb.localGet(cRow).localSet(cPanel);
      if (ctx.bias) setAddr(fb, biasP, "bias");
      const panel = (pnv: number, cols: number) => {
        fb.localGet(packedA).localSet(aPanel);
        fb.localGet(cPanel).localSet(cTile);
        const call = (rows: number) => {
          fb.localGet(aPanel).localGet(bPanel).localGet(cTile).localGet(biasP).localGet(first);
          fb.call(microKernel(ctx, rows, pnv, kc, cols));
        };
        repeat(fb, fullMicro, () => {
          call(mr);
          bump(fb, aPanel, mr * kc * 4);
          bump(fb, cTile, mr * ctx.ldc);
        });
        if (edgeMr > 0) call(edgeMr);
        bump(fb, bPanel, kc * pnv * 16);
        bump(fb, cPanel, cols * 4);
        if (ctx.bias) bump(fb, biasP, cols * 4);
      };
      repeat(fb, fullPanels, () => panel(nv, t.nr));
      if (edgeCols > 0) panel(edgeNv, edgeCols);
    };

    const kBlock = (kc: number) => {
      fb.localGet(aCol).localSet(aRow);
      fb.localGet(cBase).localSet(cRow);
      // Prepacked A holds the blocks in this very order: walk it.
      const walk = (mc: number) => {
        if (ctx.prepackedA) bump(fb, packedA, mc * kc * 4);
      };
      repeat(fb, mb_.count, () => {
        mBlock(mb_.size, kc);
        walk(mb_.size);
        bump(fb, aRow, mb_.size * ctx.aRs);
        bump(fb, cRow, mb_.size * ctx.ldc);
      });
      if (mb_.tail > 0) {
        mBlock(mb_.tail, kc);
        walk(mb_.tail);
      }
      setConst(fb, first, 0);
      bump(fb, aCol, kc * ctx.aCs);
      bump(fb, bBlock, kc * nPad * 4);
    };

    setConst(fb, first, 1);
    setAddr(fb, aCol, "a");
    setAddr(fb, bBlock, "packedB");
    repeat(fb, kb.count, () => kBlock(kb.size));
    if (kb.tail > 0) kBlock(kb.tail);
    fb.end();
  }
}

/** Options of {@link emitSgemm}: a product inside a module the caller builds. */
export interface SgemmCallOptions {
  /** Rows of op(A) and C. */
  m: number;
  /** Columns of op(B) and C. */
  n: number;
  /** Inner dimension. */
  k: number;
  /** Scale of the product (default 1). */
  alpha?: number;
  /** Add a per-column bias vector of length n (default false). */
  bias?: boolean;
  /** A is stored K×M (op(A) = Aᵀ) instead of M×K (default false). */
  transA?: boolean;
  /** B is stored N×K (op(B) = Bᵀ) instead of K×N (default false); packed straight from it. */
  transB?: boolean;
  /** Elements between rows of A as stored (default: its column count, k or m when transposed). */
  lda?: number;
  /** Elements between rows of B as stored (default: its column count, n or k when transposed). */
  ldb?: number;
  /** Elements between rows of C (default n): C may be a block of a wider matrix. */
  ldc?: number;
  /**
   * A is passed already packed by {@link packSgemmA} with the same options (a constant
   * operand, packed once at compile time): `compute` skips packing it.
   */
  prepackedA?: boolean;
  /** B is passed already packed by {@link packSgemmB} with the same options. */
  prepackedB?: boolean;
  /** Multiply-add path; `"auto"` (default) takes relaxed SIMD where this runtime validates it. */
  path?: SgemmPath | "auto";
  /** Override blocking parameters. */
  tile?: Partial<SgemmTile>;
  /** Prefix of the internal function names (default `"sgemm_"`); distinct per call in a module. */
  prefix?: string;
}

/** A product emitted into a module by {@link emitSgemm}. */
export interface SgemmCall {
  /** `(a, b, bias, c, scratch)` byte pointers → `()`; bias is ignored without `bias`. */
  readonly fn: FunctionBuilder;
  /** Bytes of scratch the function needs at `scratch` (16-byte aligned is enough). */
  readonly scratchBytes: number;
  /** The multiply-add path compiled in. */
  readonly path: SgemmPath;
  /** The blocking used. */
  readonly tile: Readonly<SgemmTile>;
  /** Floating-point operations of one call, 2·M·N·K. */
  readonly flops: number;
}

/**
 * Emits into `mb` (whose memory the caller declares or imports) a function computing
 * `C = alpha · op(A) · op(B) (+ bias)` on row-major buffers passed as byte pointers, packing
 * into a scratch area. It never touches memory past the buffers' ends, so any placement works.
 *
 * @example A 2×2 product through a pointer entry point
 * ```ts
 * import assert from "node:assert";
 * import { ModuleBuilder } from "./encoder.ts";
 * import { emitSgemm } from "./sgemm.ts";
 * const mb = new ModuleBuilder();
 * mb.importMemory("env", "memory", { min: 1 });
 * const call = emitSgemm(mb, { m: 2, n: 2, k: 2, transB: true });
 * const run = mb.addFunction(["i32", "i32", "i32", "i32"], [], { export: "run" });
 * run.localGet(0).localGet(1).i32Const(0).localGet(2).localGet(3).call(call.fn).end();
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([1, 2, 3, 4], 0); // A
 * f.set([1, 0, 1, 1], 4); // B stored transposed: op(B) = [[1, 1], [0, 1]]
 * const { exports } = new WebAssembly.Instance(new WebAssembly.Module(mb.build()), { env: { memory } });
 * (exports.run as (a: number, b: number, c: number, s: number) => void)(0, 16, 32, 64);
 * assert.deepStrictEqual([...f.subarray(8, 12)], [1, 3, 3, 7]);
 * ```
 */
export function emitSgemm(mb: ModuleBuilder, options: SgemmCallOptions): SgemmCall {
  const { m, n, k } = options;
  const plan = planSgemm(options);
  const packedBBytes = align64(k * plan.nPad * 4);
  const lda = options.lda ?? (options.transA ? m : k);
  const ldb = options.ldb ?? (options.transB ? k : n);
  const ldc = options.ldc ?? n;
  checkInt("lda", lda, options.transA ? m : k, 2 ** 28);
  checkInt("ldb", ldb, options.transB ? k : n, 2 ** 28);
  checkInt("ldc", ldc, n, 2 ** 28);
  const ctx = makeCtx(mb, plan, options, {
    aRs: options.transA ? 4 : lda * 4,
    aCs: options.transA ? lda * 4 : 4,
    bRs: options.transB ? 4 : ldb * 4,
    bCs: options.transB ? ldb * 4 : 4,
    safeEdges: true,
    prefix: options.prefix ?? "sgemm_",
  });
  ctx.ldc = ldc * 4;
  const sig = ["i32", "i32", "i32", "i32", "i32"] as const;
  const fn = mb.addFunction(sig, [], { name: `${ctx.prefix}run` });
  const packB = mb.addFunction(sig, [], { name: `${ctx.prefix}pack_b` });
  const compute = mb.addFunction(sig, [], { name: `${ctx.prefix}compute` });
  for (const f of options.prepackedB ? [compute] : [packB, compute]) {
    for (let i = 0; i < 5; i++) fn.localGet(i);
    fn.call(f);
  }
  fn.end();
  const param: Record<Buffer, [number, number]> = {
    a: [0, 0],
    b: [1, 0],
    bias: [2, 0],
    c: [3, 0],
    packedB: options.prepackedB ? [1, 0] : [4, 0],
    packedA: options.prepackedA ? [0, 0] : [4, options.prepackedB ? 0 : packedBBytes],
  };
  ctx.prepackedA = options.prepackedA ?? false;
  emitSgemmBody(ctx, plan, packB, compute, (fb, which) => {
    const [p, off] = param[which];
    fb.localGet(p);
    if (off !== 0) fb.i32Const(off).op("i32.add");
  });
  return {
    fn,
    scratchBytes: (options.prepackedB ? 0 : packedBBytes) +
      (options.prepackedA ? 0 : plan.tile.mc * plan.tile.kc * 4),
    path: plan.path,
    tile: plan.tile,
    flops: 2 * m * n * k,
  };
}

/** A ready-to-call sgemm instance with typed views on its buffers. */
export interface SgemmInstance {
  /** The linear memory. */
  readonly memory: WebAssembly.Memory;
  /** View of A (M×K, row-major). */
  readonly a: Float32Array;
  /** View of B (K×N, row-major). */
  readonly b: Float32Array;
  /** View of bias (N), when the kernel has one. */
  readonly bias: Float32Array | undefined;
  /** View of C (M×N, row-major). */
  readonly c: Float32Array;
  /** Packs B and computes C. */
  run(): void;
  /** Packs B into its panels (once, when B is constant). */
  packB(): void;
  /** Computes C from A and the packed B. */
  compute(): void;
}

/**
 * Compiles and instantiates a kernel synchronously. With an imported memory, pass one that
 * has at least `layout.pages` pages (shared when the kernel was generated with `shared`).
 * Executors place buffers themselves; this helper serves tests, benchmarks and examples.
 *
 * @example Bias and alpha
 * ```ts
 * import assert from "node:assert";
 * import { generateSgemm, instantiateSgemm } from "./sgemm.ts";
 * const g = instantiateSgemm(generateSgemm({ m: 1, n: 2, k: 1, alpha: 2, bias: true }));
 * g.a.set([3]);
 * g.b.set([1, 10]);
 * g.bias!.set([0.5, -1]);
 * g.run();
 * assert.deepStrictEqual([...g.c], [6.5, 59]);
 * ```
 */
export function instantiateSgemm(
  kernel: SgemmKernel,
  memory?: WebAssembly.Memory,
): SgemmInstance {
  const { layout, m, n, k } = kernel;
  if (kernel.importsMemory && memory === undefined) {
    throw new BackendError("sgemm: this kernel imports its memory; pass one");
  }
  if (memory !== undefined && memory.buffer.byteLength < layout.pages * PAGE) {
    throw new BackendError(
      `sgemm: memory has ${
        memory.buffer.byteLength / PAGE
      } pages, the kernel needs ${layout.pages}`,
    );
  }
  const module = new WebAssembly.Module(kernel.bytes);
  const instance = new WebAssembly.Instance(
    module,
    kernel.importsMemory ? { env: { memory: memory! } } : {},
  );
  const ex = instance.exports as Record<string, unknown>;
  const mem = kernel.importsMemory ? memory! : ex.memory as WebAssembly.Memory;
  const view = (at: number, len: number) => new Float32Array(mem.buffer, at, len);
  return {
    memory: mem,
    a: view(layout.a, m * k),
    b: view(layout.b, k * n),
    bias: layout.bias === undefined ? undefined : view(layout.bias, n),
    c: view(layout.c, m * n),
    run: ex.run as () => void,
    packB: ex.packB as () => void,
    compute: ex.compute as () => void,
  };
}

/** Options of {@link packSgemmA} and {@link packSgemmB}: those of the product they feed. */
export type SgemmPackOptions = Pick<
  SgemmCallOptions,
  "m" | "n" | "k" | "transA" | "transB" | "lda" | "ldb" | "path" | "tile"
>;

/**
 * Packs A (stored as the product's options say) into the micro-panels `compute` reads, in its
 * order: K blocks, then M blocks, then micro-panels of `mr` rows (k-major). Pass the result
 * with `prepackedA: true` and the same options. Writes into `into` (its first m·k floats) when
 * given, else into a new array; returns what it wrote into. With `rowScale` (at least m
 * factors), row i of A is packed as `Math.fround(a · rowScale[i])`: a row-scaled copy of A
 * (a convolution's filters with a folded BatchNorm's scale) packed without making the copy.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { packSgemmA } from "./sgemm.ts";
 * // 2×2 A, one micro-panel: k-major, so column 0 then column 1.
 * assert.deepStrictEqual([...packSgemmA(new Float32Array([1, 2, 3, 4]), { m: 2, n: 1, k: 2 })], [1, 3, 2, 4]);
 * ```
 */
export function packSgemmA(
  a: Float32Array,
  options: SgemmPackOptions,
  into?: Float32Array,
  rowScale?: Float64Array,
): Float32Array {
  const { m, k } = options;
  const plan = planSgemm(options);
  const lda = options.lda ?? (options.transA ? m : k);
  if (into !== undefined && into.length < m * k) {
    throw new ShapeError(`packSgemmA: 'into' holds ${into.length} floats; needs ${m * k}`);
  }
  if (rowScale !== undefined && rowScale.length < m) {
    throw new ShapeError(`packSgemmA: 'rowScale' holds ${rowScale.length} factors; needs ${m}`);
  }
  const out = into ?? constantArray(m * k);
  const mr = plan.tile.mr;
  let o = 0;
  const blocks = (b: ReturnType<typeof evenBlocks>) => [
    ...Array.from({ length: b.count }, () => b.size),
    ...(b.tail > 0 ? [b.tail] : []),
  ];
  const transA = options.transA ?? false;
  let pc = 0;
  for (const kc of blocks(plan.kb)) {
    let ic = 0;
    for (const mc of blocks(plan.mb)) {
      for (let r0 = 0; r0 < mc; r0 += mr) {
        const rows = Math.min(mr, mc - r0);
        const i0 = ic + r0;
        const at = transA
          ? { src: pc * lda + i0, rowStride: 1, kStride: lda }
          : { src: i0 * lda + pc, rowStride: lda, kStride: 1 };
        packPanel(a, out, o, at, rows, kc, rowScale, i0);
        o += rows * kc;
      }
      ic += mc;
    }
    pc += kc;
  }
  return out;
}

/**
 * One micro-panel of A: `out[o + kk·rows + r] = a[src + r·rowStride + kk·kStride]`, times
 * `scale[i0 + r]` when given (the float64 product rounded once, by the float32 store). Rows
 * outside, k inside: A stored M×K (`kStride` 1) is read row by row in order, in a loop long
 * enough for the JIT to optimize early.
 */
function packPanel(
  a: Float32Array,
  out: Float32Array,
  o: number,
  at: { src: number; rowStride: number; kStride: number },
  rows: number,
  kc: number,
  scale: Float64Array | undefined,
  i0: number,
): void {
  const { rowStride, kStride } = at;
  for (let r = 0; r < rows; r++) {
    let from = at.src + r * rowStride;
    let to = o + r;
    if (scale !== undefined) {
      const f = scale[i0 + r];
      for (let kk = 0; kk < kc; kk++, to += rows, from += kStride) out[to] = a[from] * f;
    } else {
      for (let kk = 0; kk < kc; kk++, to += rows, from += kStride) out[to] = a[from];
    }
  }
}

/**
 * Where {@link packSgemmA} puts each element of A (rows `i` < m, columns `c` < k), as
 * per-row and per-column terms: element (i, c) lands at
 * `col[c] + rowStart[i] * colBlock[c] + colIn[c] * rowPanel[i] + rowIn[i]`. For packing
 * values that are computed rather than read (e.g. transformed weights) straight into place.
 *
 * @example Agrees with packSgemmA
 * ```ts
 * import assert from "node:assert";
 * import { packLayoutA, packSgemmA } from "./sgemm.ts";
 * const opts = { m: 3, n: 4, k: 2 };
 * const a = new Float32Array([1, 2, 3, 4, 5, 6]);
 * const l = packLayoutA(opts);
 * const at = (i: number, c: number) => l.col[c] + l.rowStart[i] * l.colBlock[c] + l.colIn[c] * l.rowPanel[i] + l.rowIn[i];
 * assert.strictEqual(packSgemmA(a, opts)[at(2, 1)], a[2 * 2 + 1]);
 * ```
 */
export function packLayoutA(options: SgemmPackOptions): {
  /** Per column: the start of its K block's share (block start · m). */
  col: Int32Array;
  /** Per column: its K block's width. */
  colBlock: Int32Array;
  /** Per column: its offset within its K block. */
  colIn: Int32Array;
  /** Per row: the first row of its micro-panel. */
  rowStart: Int32Array;
  /** Per row: its micro-panel's height. */
  rowPanel: Int32Array;
  /** Per row: its offset within its micro-panel. */
  rowIn: Int32Array;
} {
  const { m, k } = options;
  const plan = planSgemm(options);
  const col = new Int32Array(k);
  const colBlock = new Int32Array(k);
  const colIn = new Int32Array(k);
  for (let c = 0, pc = 0; pc < k;) {
    const kc = c < plan.kb.count * plan.kb.size ? plan.kb.size : plan.kb.tail;
    for (let j = 0; j < kc; j++, c++) {
      col[c] = pc * m;
      colBlock[c] = kc;
      colIn[c] = j;
    }
    pc += kc;
  }
  const rowStart = new Int32Array(m);
  const rowPanel = new Int32Array(m);
  const rowIn = new Int32Array(m);
  const mr = plan.tile.mr;
  for (let ic = 0; ic < m;) {
    const mc = ic < plan.mb.count * plan.mb.size ? plan.mb.size : plan.mb.tail;
    for (let r0 = 0; r0 < mc; r0 += mr) {
      const rows = Math.min(mr, mc - r0);
      for (let r = 0; r < rows; r++) {
        rowStart[ic + r0 + r] = ic + r0;
        rowPanel[ic + r0 + r] = rows;
        rowIn[ic + r0 + r] = r;
      }
    }
    ic += mc;
  }
  return { col, colBlock, colIn, rowStart, rowPanel, rowIn };
}

/**
 * Packs B into the panels `compute` reads: per K block, panels of `nr` columns (k-major), the
 * last one zero-padded to whole vectors. Pass the result with `prepackedB: true`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { packSgemmB } from "./sgemm.ts";
 * // 1×2 B: one edge panel of one vector, zero-padded.
 * assert.deepStrictEqual([...packSgemmB(new Float32Array([5, 6]), { m: 1, n: 2, k: 1 })], [5, 6, 0, 0]);
 * ```
 */
export function packSgemmB(b: Float32Array, options: SgemmPackOptions): Float32Array {
  const { n, k } = options;
  const plan = planSgemm(options);
  const ldb = options.ldb ?? (options.transB ? k : n);
  const nr = plan.tile.nr;
  const out = constantArray(k * plan.nPad);
  // Panel `width` floats wide (nr, or the edge's vectors) starting at column j0, k rows from
  // pc: out[o + kk·width + c] = B[pc + kk, j0 + c], zero past the last column. Written in
  // order; stored transposed (N×K), each k row gathers one float from each column's row.
  // (Two plain loops per layout: a closure per element ran 3× slower in a fresh process.)
  const panel = (o: number, pc: number, kc: number, j0: number, cols: number, width: number) => {
    if (options.transB) {
      const base = j0 * ldb + pc;
      for (let kk = 0; kk < kc; kk++) {
        let to = o + kk * width;
        for (let c = 0, from = base + kk; c < cols; c++, from += ldb) out[to++] = b[from];
      }
    } else {
      for (let kk = 0; kk < kc; kk++) {
        const from = (pc + kk) * ldb + j0;
        out.set(b.subarray(from, from + cols), o + kk * width);
      }
    }
    // constantArray's values start at zero: the padding columns need nothing.
  };
  let o = 0;
  let pc = 0;
  const kcs = [
    ...Array.from({ length: plan.kb.count }, () => plan.kb.size),
    ...(plan.kb.tail > 0 ? [plan.kb.tail] : []),
  ];
  for (const kc of kcs) {
    for (let p = 0; p < plan.fullPanels; p++) {
      panel(o, pc, kc, p * nr, nr, nr);
      o += kc * nr;
    }
    if (plan.edgeCols > 0) {
      const width = plan.edgeNv * 4;
      panel(o, pc, kc, plan.fullPanels * nr, plan.edgeCols, width);
      o += kc * width;
    }
    pc += kc;
  }
  return out;
}
