/**
 * MXNet parameter files: reading and writing `.params` files in MXNet's legacy NDArray-list
 * format (per-array records pre-V1, V1, V2 and V3) and in the NumPy formats MXNet 2.x writes
 * (`.npz`, a ZIP of stored `.npy` members, and a bare `.npy` for one unnamed array).
 *
 * Everything here is little-endian on disk, as MXNet writes it. The readers treat their input as
 * hostile: every count, dimension, length and offset is checked against the bytes that are
 * actually there before anything is allocated, and every failure is a {@link FormatError}
 * carrying the byte `offset` (and naming the array index or key where known).
 *
 * Choices worth knowing:
 * - A "none" NDArray (a V2/V1/pre-V1 record with ndim 0, or a V3 record with ndim -1 or an
 *   unknown dimension) has no tensor representation; loading one raises a FormatError.
 * - Sparse arrays (V2 stype 1/2, or SciPy-style directories in an `.npz`) raise a FormatError.
 * - Bytes left over after the last key of a legacy file are an error (MXNet ignores them).
 * - Arrays always load onto the CPU; the stored context is read and ignored.
 * - `.npz` arrays come back in archive order (MXNet's own loader returns them sorted by name);
 *   members not ending in `.npy` are ignored, as MXNet does. Deflated members (as
 *   `numpy.savez_compressed` writes) are inflated by the async {@link loadParams} with the
 *   platform's `DecompressionStream`, never past their declared sizes; the synchronous
 *   {@link loadParamsBytes} reads stored members only.
 * - The writers produce exactly what MXNet writes: V2 records as MXNet 1.x `nd.save` (checked
 *   byte-for-byte against real files), V3 records as `nd.save` with NumPy shape semantics (the
 *   same layout under another magic, with ndim 0 a scalar; derived from `NDArray::Save`) and `.npz` archives laid out as MXNet 2.x's cnpy/miniz
 *   writer lays them out (derived from its source; no MXNet-written `.npz` was at hand).
 *
 * @example Saving and loading in memory
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * import { loadParamsBytes, paramsToRecord, saveParamsV2 } from "./params.ts";
 * const bytes = saveParamsV2({ "arg:w": nd.ones([2, 3]) });
 * const file = loadParamsBytes(bytes);
 * assert(file.format === "legacy" && file.arrayFormat === "v2");
 * assert(paramsToRecord(file)["arg:w"].shape[1] === 3);
 * ```
 *
 * @module
 */
import { type DType, dtypeInfo, type StorageArray } from "./dtype.ts";
import { FormatError, SigilError } from "./errors.ts";
import {
  type Bytes,
  type FileSource,
  type FileTarget,
  isBytes,
  readBytes,
  sourceName,
  toUint8Array,
  writeFile,
} from "./io.ts";
import { MAX_NDIM } from "./shape.ts";
import { Tensor, tensorStorage } from "./tensor.ts";

/** The container format of a parameter file. */
export type ParamFormat = "legacy" | "npz" | "npy";

/**
 * The layout of one array record in a legacy file: `pre-v1` (no magic, u32 ndim and u32 dims),
 * `v1` (magic 0xF993FAC8), `v2` (0xF993FAC9, with a storage type) or `v3` (0xF993FACA, NumPy
 * shape semantics).
 */
export type ArrayFormat = "pre-v1" | "v1" | "v2" | "v3";

/** A loaded parameter file. */
export interface ParamFile {
  /** The container format that was detected. */
  readonly format: ParamFormat;
  /**
   * For legacy files, the record layout shared by every array; `undefined` when the file has
   * no arrays, mixes layouts, or is not a legacy file (see {@link ParamFile.arrayFormats}).
   */
  readonly arrayFormat?: ArrayFormat;
  /** For legacy files, the record layout of each array (empty for other formats). */
  readonly arrayFormats: readonly ArrayFormat[];
  /**
   * The stored keys, one per array (legacy keys keep their `arg:`/`aux:` prefixes; `.npz` keys
   * are the member names without `.npy`), or `null` when the file has no keys (a legacy list
   * saved without names, or a bare `.npy`).
   */
  readonly names: readonly string[] | null;
  /** The arrays, in file order. */
  readonly arrays: readonly Tensor[];
}

/**
 * What the writers accept: `[name, tensor]` pairs (order kept, names may repeat), a record of
 * named tensors, or a plain list of tensors (a keyless file).
 */
export type ParamEntries =
  | readonly (readonly [string, Tensor])[]
  | Readonly<Record<string, Tensor>>
  | readonly Tensor[];

/** Options of {@link saveParams}. */
export interface SaveParamsOptions {
  /**
   * `"v2"` (MXNet 1.x `nd.save`, the default), `"v3"` (`nd.save` under NumPy shape semantics,
   * which holds 0-d arrays) or `"npz"` (MXNet 2.x `npx.savez`).
   */
  readonly format?: "v2" | "v3" | "npz";
}

// ---------------------------------------------------------------------------------------------
// Constants

const LIST_MAGIC = 0x112;
const V1_MAGIC = 0xf993fac8;
const V2_MAGIC = 0xf993fac9;
const V3_MAGIC = 0xf993faca;
/** Largest dimension and element count accepted (sigil's tensor size limit). */
const MAX_DIM = 2 ** 31 - 1;

/**
 * The most arrays one parameter file may hold (legacy list records or `.npz` members). Each
 * loaded array costs one to one and a half kilobytes of objects (tensor, shape, storage, name)
 * whatever its size, while a file pays as little as 20 bytes for an empty one: a file of
 * millions of empty arrays would take fifty times its size. 65,536 is far above real checkpoints
 * (ResNet-152 holds under 1,000 arrays) and keeps that overhead near 100 MiB (91 MiB measured by
 * tests/hostile_stress.ts for 65,536 empty arrays).
 */
export const MAX_PARAM_ARRAYS = 65536;

/** MXNet type flags: the sigil dtype (or an unsupported name) and the element size. */
const FLAGS: Readonly<Record<number, { name: string; dtype?: DType; bytes: number }>> = {
  0: { name: "float32", dtype: "float32", bytes: 4 },
  1: { name: "float64", dtype: "float64", bytes: 8 },
  2: { name: "float16", dtype: "float16", bytes: 2 },
  3: { name: "uint8", dtype: "uint8", bytes: 1 },
  4: { name: "int32", dtype: "int32", bytes: 4 },
  5: { name: "int8", dtype: "int8", bytes: 1 },
  6: { name: "int64", dtype: "int64", bytes: 8 },
  7: { name: "bool", dtype: "bool", bytes: 1 },
  8: { name: "int16", bytes: 2 },
  9: { name: "uint16", bytes: 2 },
  10: { name: "uint32", bytes: 4 },
  11: { name: "uint64", bytes: 8 },
  12: { name: "bfloat16", dtype: "bfloat16", bytes: 2 },
};

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const UTF8_ENCODER = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// CRC-32

let crcTable: Uint32Array | undefined;

/**
 * The CRC-32 (IEEE 802.3, as ZIP uses it) of `bytes`, continuing from `crc` when given.
 *
 * @example Checking a known value
 * ```ts
 * import assert from "node:assert";
 * import { crc32 } from "./params.ts";
 * assert(crc32(new TextEncoder().encode("123456789")) === 0xcbf43926);
 * ```
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const t = crcTable;
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Reading helpers

/** A bounds-checked little-endian cursor over a byte array. */
class Reader {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly source: string;
  pos: number;

  constructor(bytes: Uint8Array, source: string, pos = 0) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.source = source;
    this.pos = pos;
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  fail(message: string, offset = this.pos): never {
    throw new FormatError(`${this.source}: ${message}`, offset);
  }

  need(n: number, what: string): void {
    if (n > this.remaining) {
      this.fail(`truncated: ${what} needs ${n} bytes but only ${this.remaining} remain`);
    }
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  i32(what: string): number {
    this.need(4, what);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** A u64 as a number (exact below 2^53; larger values only compare as "too large"). */
  u64(what: string): number {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return Number(v);
  }

  /** An i64 as a number (exact within ±2^53). */
  i64(what: string): number {
    this.need(8, what);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return Number(v);
  }

  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

function formatDims(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}

/**
 * The byte size of `shape` × `itemBytes`, or -1 when it exceeds `limit` (never overflows: the
 * product stops growing past the limit, and a zero dimension makes it 0).
 */
function byteSize(shape: readonly number[], itemBytes: number, limit: number): number {
  if (shape.some((d) => d === 0)) return 0;
  let n = itemBytes;
  for (const d of shape) {
    n *= d;
    if (n > limit) return -1;
  }
  return n;
}

/** Copies `bytes` (little-endian, or big-endian when `bigEndian`) into fresh storage. */
function storageFromBytes(
  dtype: DType,
  bytes: Uint8Array,
  count: number,
  bigEndian = false,
): StorageArray {
  const itemBytes = dtypeInfo(dtype).bytes;
  // A fresh buffer, filled by `set`: `slice` is a view on a Node Buffer, and the typed arrays
  // below must start at offset 0 of a buffer that holds only this array.
  const copy = new Uint8Array(count * itemBytes);
  copy.set(bytes.subarray(0, count * itemBytes));
  if (itemBytes > 1 && bigEndian === LITTLE_ENDIAN_HOST) swapBytes(copy, itemBytes);
  const buf = copy.buffer;
  switch (dtype) {
    case "float32":
      return new Float32Array(buf, 0, count);
    case "float64":
      return new Float64Array(buf, 0, count);
    case "float16":
    case "bfloat16":
      return new Uint16Array(buf, 0, count);
    case "int8":
      return new Int8Array(buf, 0, count);
    case "uint8":
      return new Uint8Array(buf, 0, count);
    case "bool": {
      const b = new Uint8Array(buf, 0, count);
      for (let i = 0; i < count; i++) b[i] = b[i] ? 1 : 0;
      return b;
    }
    case "int32":
      return new Int32Array(buf, 0, count);
    case "int64":
      return new BigInt64Array(buf, 0, count);
  }
}

function swapBytes(bytes: Uint8Array, width: number): void {
  for (let i = 0; i + width <= bytes.length; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

/** The storage bytes of a tensor, little-endian (a view when the host is little-endian). */
function tensorBytes(t: Tensor): Uint8Array {
  const s = tensorStorage(t);
  const view = new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
  if (LITTLE_ENDIAN_HOST) return view;
  const copy = view.slice();
  swapBytes(copy, dtypeInfo(t.dtype).bytes);
  return copy;
}

function quote(name: string): string {
  return JSON.stringify(name);
}

// ---------------------------------------------------------------------------------------------
// Legacy NDArray list

interface LegacyRecord {
  index: number;
  offset: number;
  format: ArrayFormat;
  /** `null` for a none array. */
  shape: number[] | null;
  flag: number;
  flagOffset: number;
  dataOffset: number;
  byteLength: number;
}

function readShapeDims(
  r: Reader,
  ndim: number,
  wide: boolean,
  index: number,
  np: boolean,
): number[] | null {
  // The caller has checked ndim <= MAX_NDIM; check all the dims are present before reading.
  r.need(ndim * (wide ? 8 : 4), `array ${index}: ${ndim} dimensions`);
  const dims: number[] = [];
  let unknown = false;
  for (let k = 0; k < ndim; k++) {
    const at = r.pos;
    const d = wide ? r.i64("a dimension") : r.u32("a dimension");
    if (np && d === -1) {
      unknown = true;
      continue;
    }
    if (d < 0) r.fail(`array ${index}: dimension ${k} is negative (${d})`, at);
    if (d > MAX_DIM) r.fail(`array ${index}: dimension ${k} is too large (${d})`, at);
    dims.push(d);
  }
  return unknown ? null : dims;
}

function readLegacyRecord(r: Reader, index: number): LegacyRecord {
  const offset = r.pos;
  const magic = r.u32(`array ${index}: record header`);
  let format: ArrayFormat;
  let shape: number[] | null;
  if (magic === V2_MAGIC || magic === V3_MAGIC) {
    format = magic === V2_MAGIC ? "v2" : "v3";
    const stypeAt = r.pos;
    const stype = r.i32(`array ${index}: storage type`);
    if (stype !== 0) {
      const kind = stype === 1 ? "row_sparse" : stype === 2 ? "csr" : "unknown";
      r.fail(
        `array ${index}: storage type ${stype} (${kind}) is not supported; only dense arrays ` +
          `(storage type 0) can be loaded`,
        stypeAt,
      );
    }
    const ndimAt = r.pos;
    const ndim = r.i32(`array ${index}: ndim`);
    if (format === "v3" && ndim === -1) shape = null;
    else {
      if (ndim < 0) r.fail(`array ${index}: negative ndim ${ndim}`, ndimAt);
      if (ndim > MAX_NDIM) {
        r.fail(`array ${index}: ndim ${ndim} exceeds the limit of ${MAX_NDIM}`, ndimAt);
      }
      shape = format === "v2" && ndim === 0
        ? null
        : readShapeDims(r, ndim, true, index, format === "v3");
    }
  } else if (magic === V1_MAGIC) {
    format = "v1";
    const ndimAt = r.pos;
    const ndim = r.u32(`array ${index}: ndim`);
    if (ndim > MAX_NDIM) {
      r.fail(`array ${index}: ndim ${ndim} exceeds the limit of ${MAX_NDIM}`, ndimAt);
    }
    shape = ndim === 0 ? null : readShapeDims(r, ndim, true, index, false);
  } else {
    // Pre-V1: no magic; the u32 just read is ndim.
    format = "pre-v1";
    if (magic > MAX_NDIM) {
      r.fail(
        `array ${index}: 0x${magic.toString(16)} is neither a known record magic ` +
          `(0xf993fac8/9/a) nor a pre-V1 ndim (at most ${MAX_NDIM})`,
        offset,
      );
    }
    shape = magic === 0 ? null : readShapeDims(r, magic, false, index, false);
  }
  if (shape === null) {
    return {
      index,
      offset,
      format,
      shape,
      flag: -1,
      flagOffset: -1,
      dataOffset: r.pos,
      byteLength: 0,
    };
  }
  r.need(8, `array ${index}: context`);
  r.pos += 8; // dev_type, dev_id: ignored, arrays load on the CPU
  const flagOffset = r.pos;
  const flag = r.i32(`array ${index}: type flag`);
  const info = FLAGS[flag];
  if (!info) r.fail(`array ${index}: unknown type flag ${flag}`, flagOffset);
  const byteLength = byteSize(shape, info.bytes, Number.MAX_SAFE_INTEGER);
  if (byteLength < 0 || byteLength > r.remaining) {
    r.fail(
      `array ${index}: data of shape ${formatDims(shape)} ${info.name} needs ${
        byteLength < 0 ? "more than 2^53" : byteLength
      } bytes but only ${r.remaining} remain`,
    );
  }
  const dataOffset = r.pos;
  r.pos += byteLength;
  return { index, offset, format, shape, flag, flagOffset, dataOffset, byteLength };
}

/**
 * Reads the legacy list, validating each record as it is read: a record header becomes a few
 * numbers in flat arrays, never an object kept per record, and after the first record sigil
 * cannot load (a none array, an unsupported dtype) nothing more is kept, only parsed to find
 * the key that names it. Peak memory stays within a small constant of the file size even for
 * a file of millions of 4-byte records.
 */
function loadLegacy(r: Reader): ParamFile {
  const magic = r.u64("list header");
  if (magic !== LIST_MAGIC) {
    r.fail(
      `not an MXNet parameter file: the header is not 0x112, a ZIP (.npz) or a .npy signature`,
      0,
    );
  }
  r.u64("reserved field");
  const countAt = r.pos;
  const count = r.u64("array count");
  // Every record takes at least 4 bytes (a pre-V1 none array), and the key count 8 more.
  if (count > Math.max(0, Math.floor((r.remaining - 8) / 4))) {
    r.fail(`array count ${count} cannot fit in the ${r.remaining} bytes that remain`, countAt);
  }
  if (count > MAX_PARAM_ARRAYS) {
    r.fail(`array count ${count} is over the limit of ${MAX_PARAM_ARRAYS} arrays a file`, countAt);
  }
  const formats: ArrayFormat[] = [];
  // Per array: data offset, type flag, start of its dims in `dims`, ndim.
  const meta: number[] = [];
  const dims: number[] = [];
  let problem: LegacyRecord | undefined;
  for (let i = 0; i < count; i++) {
    const rec = readLegacyRecord(r, i);
    if (problem) continue;
    if (rec.shape === null || !FLAGS[rec.flag].dtype) {
      problem = rec;
      formats.length = meta.length = dims.length = 0;
      continue;
    }
    formats.push(rec.format);
    meta.push(rec.dataOffset, rec.flag, dims.length, rec.shape.length);
    for (const d of rec.shape) dims.push(d);
  }
  const keyCountAt = r.pos;
  const keyCount = r.u64("key count");
  if (keyCount !== 0 && keyCount !== count) {
    r.fail(`key count ${keyCount} is neither 0 nor the array count ${count}`, keyCountAt);
  }
  let names: string[] | null = null;
  let problemName: string | undefined;
  if (keyCount > 0) {
    names = [];
    for (let i = 0; i < keyCount; i++) {
      const lenAt = r.pos;
      const len = r.u64(`key ${i}: length`);
      if (len > r.remaining) {
        r.fail(`key ${i}: length ${len} runs past the end (${r.remaining} bytes remain)`, lenAt);
      }
      const at = r.pos;
      const raw = r.take(len, `key ${i}`);
      // Keys are kept only while every array loads; else only the failing array's is needed.
      if (problem && i !== problem.index) continue;
      let name = "";
      try {
        name = UTF8.decode(raw);
      } catch {
        r.fail(`key ${i} is not valid UTF-8`, at);
      }
      if (problem) problemName = name;
      else names.push(name);
    }
  }
  if (r.remaining !== 0) r.fail(`${r.remaining} unexpected bytes after the last key`);
  if (problem) {
    const what = problemName !== undefined
      ? `array ${problem.index} (${quote(problemName)})`
      : `array ${problem.index}`;
    if (problem.shape === null) {
      r.fail(
        `${what} is a none NDArray (no shape, no data); sigil cannot represent it`,
        problem.offset,
      );
    }
    const info = FLAGS[problem.flag];
    r.fail(
      `${what} has dtype ${info.name} (type flag ${problem.flag}), which sigil does not support`,
      problem.flagOffset,
    );
  }
  const arrays = formats.map((_, i) => {
    const [dataOffset, flag, start, ndim] = meta.slice(4 * i, 4 * i + 4);
    const info = FLAGS[flag];
    const shape = dims.slice(start, start + ndim);
    const n = shape.reduce((a, d) => a * d, 1);
    const data = r.bytes.subarray(dataOffset, dataOffset + n * info.bytes);
    return new Tensor(storageFromBytes(info.dtype!, data, n), shape, info.dtype!);
  });
  const common = formats.length > 0 && formats.every((f) => f === formats[0])
    ? formats[0]
    : undefined;
  return { format: "legacy", arrayFormat: common, arrayFormats: formats, names, arrays };
}

// ---------------------------------------------------------------------------------------------
// .npy

/** A Python literal as found in a `.npy` header. */
type PyValue =
  | string
  | number
  | boolean
  | null
  | { readonly tuple: readonly PyValue[] }
  | readonly PyValue[]
  | Map<string, PyValue>;

const MAX_LITERAL_DEPTH = 16;

/** Parses the Python literal in a `.npy` header (no eval; a small recursive-descent parser). */
function parsePyLiteral(text: string, fail: (message: string) => never): PyValue {
  let i = 0;
  const ws = () => {
    while (i < text.length && /[ \t\r\n]/.test(text[i])) i++;
  };
  const value = (depth: number): PyValue => {
    if (depth > MAX_LITERAL_DEPTH) fail("the header nests too deeply");
    ws();
    const c = text[i];
    if (c === undefined) fail("the header ends early");
    if (c === "{") {
      i++;
      const out = new Map<string, PyValue>();
      ws();
      while (text[i] !== "}") {
        const key = value(depth + 1);
        if (typeof key !== "string") fail("a header dict key is not a string");
        ws();
        if (text[i] !== ":") fail(`expected ':' at header character ${i}`);
        i++;
        if (out.has(key)) fail(`the header repeats the key '${key}'`);
        out.set(key, value(depth + 1));
        ws();
        if (text[i] === ",") {
          i++;
          ws();
        } else if (text[i] !== "}") fail(`expected ',' or '}' at header character ${i}`);
      }
      i++;
      return out;
    }
    if (c === "(" || c === "[") {
      const close = c === "(" ? ")" : "]";
      i++;
      const items: PyValue[] = [];
      let comma = false;
      ws();
      while (text[i] !== close) {
        items.push(value(depth + 1));
        ws();
        if (text[i] === ",") {
          comma = true;
          i++;
          ws();
        } else if (text[i] !== close) fail(`expected ',' or '${close}' at header character ${i}`);
      }
      i++;
      if (c === "[") return items;
      // `(x)` is just x in Python; `(x,)` and `()` are tuples.
      return items.length === 1 && !comma ? items[0] : { tuple: items };
    }
    if (c === "'" || c === '"') {
      i++;
      let s = "";
      while (text[i] !== c) {
        if (i >= text.length) fail("a header string is not terminated");
        if (text[i] === "\\") i++;
        if (i >= text.length) fail("a header string is not terminated");
        s += text[i++];
      }
      i++;
      return s;
    }
    const m = /^(?:[-+]?\d+L?|True|False|None)/.exec(text.slice(i, i + 40));
    if (!m) fail(`unexpected character ${JSON.stringify(c)} at header character ${i}`);
    i += m[0].length;
    if (m[0] === "True") return true;
    if (m[0] === "False") return false;
    if (m[0] === "None") return null;
    const n = Number(m[0].replace(/L$/, ""));
    if (!Number.isSafeInteger(n)) fail(`the header integer ${m[0]} is too large`);
    return n;
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail(`unexpected text after the header value at character ${i}`);
  return v;
}

const NPY_TYPES: Readonly<Record<string, DType>> = {
  f4: "float32",
  f8: "float64",
  f2: "float16",
  i1: "int8",
  u1: "uint8",
  b1: "bool",
  i4: "int32",
  i8: "int64",
  b2: "bfloat16",
};

/** The sigil dtype and byte order of a `descr`, or an error message. */
function parseDescr(descr: PyValue): { dtype: DType; bigEndian: boolean } | string {
  // MXNet builds of the libzip era wrote bfloat16 as a structured dtype.
  if (
    Array.isArray(descr) && descr.length === 1 && typeof descr[0] === "object" &&
    descr[0] !== null && "tuple" in descr[0] && descr[0].tuple.length === 2 &&
    descr[0].tuple[0] === "bfloat16" && (descr[0].tuple[1] === "<u2" || descr[0].tuple[1] === ">u2")
  ) {
    return { dtype: "bfloat16", bigEndian: descr[0].tuple[1] === ">u2" };
  }
  if (typeof descr !== "string") return `descr ${JSON.stringify(descr)} is not a dtype string`;
  const m = /^([<>|=])([a-zA-Z]\d+)$/.exec(descr);
  const dtype = m ? NPY_TYPES[m[2]] : undefined;
  if (!m || !dtype) return `dtype '${descr}' is not supported`;
  const wide = dtypeInfo(dtype).bytes > 1;
  if (wide && m[1] === "|") return `dtype '${descr}' has no byte order`;
  return { dtype, bigEndian: wide && m[1] === ">" };
}

/** Reorders column-major storage into row-major storage for `shape`. */
function fortranToC(src: StorageArray, shape: readonly number[]): StorageArray {
  const n = src.length;
  if (shape.length < 2 || n === 0) return src;
  const dst = src.slice() as StorageArray;
  const nd = shape.length;
  const fstride = new Array<number>(nd);
  let acc = 1;
  for (let k = 0; k < nd; k++) {
    fstride[k] = acc;
    acc *= shape[k];
  }
  const from = src as unknown as { readonly [i: number]: unknown };
  const to = dst as unknown as { [i: number]: unknown };
  const idx = new Array<number>(nd).fill(0);
  let f = 0;
  for (let c = 0; c < n; c++) {
    to[c] = from[f];
    for (let k = nd - 1; k >= 0; k--) {
      idx[k]++;
      f += fstride[k];
      if (idx[k] < shape[k]) break;
      f -= fstride[k] * shape[k];
      idx[k] = 0;
    }
  }
  return dst;
}

/**
 * Parses a `.npy` document occupying `bytes[start, end)`. `what` names it in messages
 * (a member of an `.npz`, or the file).
 */
function readNpy(r: Reader, start: number, end: number, what: string): Tensor {
  const fail = (message: string, at: number): never => r.fail(`${what}: ${message}`, at);
  const len = end - start;
  if (len < 10) fail(`truncated .npy: ${len} bytes`, start);
  const b = r.bytes;
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  for (let k = 0; k < 6; k++) if (b[start + k] !== magic[k]) fail("bad .npy signature", start);
  const major = b[start + 6];
  const minor = b[start + 7];
  if (major < 1 || major > 3 || minor !== 0) {
    fail(`unsupported .npy version ${major}.${minor}`, start + 6);
  }
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = r.view.getUint16(start + 8, true);
    headerStart = start + 10;
  } else {
    if (len < 12) fail(`truncated .npy: ${len} bytes`, start);
    headerLen = r.view.getUint32(start + 8, true);
    headerStart = start + 12;
  }
  if (headerLen > end - headerStart) {
    fail(`header length ${headerLen} runs past the end (${end - headerStart} bytes)`, start + 8);
  }
  const raw = b.subarray(headerStart, headerStart + headerLen);
  let text: string;
  if (major === 3) {
    try {
      text = UTF8.decode(raw);
    } catch {
      return fail("the header is not valid UTF-8", headerStart);
    }
  } else {
    text = "";
    for (let k = 0; k < raw.length; k++) text += String.fromCharCode(raw[k]);
  }
  const header = parsePyLiteral(text, (m) => fail(`bad header (${m})`, headerStart));
  if (!(header instanceof Map)) return fail("the header is not a dict", headerStart);
  const keys = [...header.keys()].sort().join(",");
  if (keys !== "descr,fortran_order,shape") {
    fail(`the header has keys {${keys}}, not {descr, fortran_order, shape}`, headerStart);
  }
  const order = header.get("fortran_order");
  if (typeof order !== "boolean") fail("fortran_order is not True or False", headerStart);
  const shapeValue = header.get("shape");
  if (typeof shapeValue !== "object" || shapeValue === null || !("tuple" in shapeValue)) {
    return fail("shape is not a tuple", headerStart);
  }
  const shape: number[] = [];
  for (const d of shapeValue.tuple) {
    if (typeof d !== "number" || d < 0 || d > MAX_DIM) {
      fail(`shape has an invalid dimension ${JSON.stringify(d)}`, headerStart);
    }
    shape.push(d as number);
  }
  if (shape.length > MAX_NDIM) {
    fail(`shape has ${shape.length} dimensions; at most ${MAX_NDIM} allowed`, headerStart);
  }
  const descr = parseDescr(header.get("descr") ?? null);
  if (typeof descr === "string") return fail(descr, headerStart);
  const dataStart = headerStart + headerLen;
  const itemBytes = dtypeInfo(descr.dtype).bytes;
  const have = end - dataStart;
  const need = byteSize(shape, itemBytes, Number.MAX_SAFE_INTEGER);
  if (need !== have) {
    fail(
      `data of shape ${formatDims(shape)} ${descr.dtype} needs ${
        need < 0 ? "more than 2^53" : need
      } bytes but the .npy holds ${have}`,
      dataStart,
    );
  }
  const count = need / itemBytes;
  if (count > MAX_DIM) fail(`${count} elements are too many`, headerStart);
  let storage = storageFromBytes(descr.dtype, b.subarray(dataStart, end), count, descr.bigEndian);
  if (order) storage = fortranToC(storage, shape);
  return new Tensor(storage, shape, descr.dtype);
}

// ---------------------------------------------------------------------------------------------
// .npz (ZIP)

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
const SIG_DESCRIPTOR = 0x08074b50;

interface ZipMember {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compSize: number;
  size: number;
  localOffset: number;
  centralOffset: number;
}

function findEocd(r: Reader): number {
  const n = r.bytes.length;
  if (n < 22) r.fail(`truncated ZIP: ${n} bytes cannot hold an end-of-directory record`, 0);
  const stop = Math.max(0, n - 22 - 0xffff);
  for (let p = n - 22; p >= stop; p--) {
    if (r.view.getUint32(p, true) === SIG_EOCD && p + 22 + r.view.getUint16(p + 20, true) === n) {
      return p;
    }
  }
  return r.fail("no ZIP end-of-central-directory record found (truncated or not a ZIP)", n);
}

function readZipDirectory(r: Reader): ZipMember[] {
  const eocd = findEocd(r);
  const v = r.view;
  const disk = v.getUint16(eocd + 4, true);
  const cdDisk = v.getUint16(eocd + 6, true);
  let entries = v.getUint16(eocd + 10, true);
  let cdSize = v.getUint32(eocd + 12, true);
  let cdOffset = v.getUint32(eocd + 16, true);
  if (disk !== 0 || cdDisk !== 0 || v.getUint16(eocd + 8, true) !== entries) {
    r.fail("multi-disk ZIP archives are not supported", eocd);
  }
  if (entries === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // ZIP64: a locator sits just before the end record and points at the ZIP64 end record.
    const loc = eocd - 20;
    if (loc < 0 || v.getUint32(loc, true) !== SIG_LOCATOR64) {
      r.fail("ZIP64 end-of-directory locator missing", Math.max(loc, 0));
    }
    const rec = Number(v.getBigUint64(loc + 8, true));
    if (rec > loc - 56 || v.getUint32(rec, true) !== SIG_EOCD64) {
      r.fail("bad ZIP64 end-of-directory record offset", loc + 8);
    }
    entries = Number(v.getBigUint64(rec + 32, true));
    cdSize = Number(v.getBigUint64(rec + 40, true));
    cdOffset = Number(v.getBigUint64(rec + 48, true));
  }
  if (cdOffset > eocd || cdSize > eocd - cdOffset) {
    r.fail(
      `central directory (offset ${cdOffset}, ${cdSize} bytes) lies outside the file`,
      eocd + 12,
    );
  }
  if (entries > Math.floor(cdSize / 46)) {
    r.fail(`${entries} ZIP entries cannot fit in a ${cdSize}-byte central directory`, eocd + 10);
  }
  if (entries > MAX_PARAM_ARRAYS) {
    r.fail(`${entries} ZIP entries are over the limit of ${MAX_PARAM_ARRAYS} arrays a file`, eocd);
  }
  const cd = new Reader(r.bytes.subarray(0, cdOffset + cdSize), r.source, cdOffset);
  const members: ZipMember[] = [];
  for (let i = 0; i < entries; i++) {
    const at = cd.pos;
    cd.need(46, `ZIP central directory entry ${i}`);
    if (v.getUint32(at, true) !== SIG_CENTRAL) cd.fail(`bad ZIP central directory entry ${i}`);
    const flags = v.getUint16(at + 8, true);
    const method = v.getUint16(at + 10, true);
    const crc = v.getUint32(at + 16, true);
    let compSize = v.getUint32(at + 20, true);
    let size = v.getUint32(at + 24, true);
    const nameLen = v.getUint16(at + 28, true);
    const extraLen = v.getUint16(at + 30, true);
    const commentLen = v.getUint16(at + 32, true);
    let localOffset = v.getUint32(at + 42, true);
    cd.pos += 46;
    const rawName = cd.take(nameLen, `ZIP entry ${i}: name`);
    let name: string;
    try {
      name = UTF8.decode(rawName);
    } catch {
      return cd.fail(`ZIP entry ${i}: the name is not valid UTF-8`, at + 46);
    }
    const extraAt = cd.pos;
    const extra = cd.take(extraLen, `ZIP entry ${i}: extra field`);
    cd.take(commentLen, `ZIP entry ${i}: comment`);
    // ZIP64 extended information: the 0xffffffff fields, in order, as u64.
    for (let p = 0; p + 4 <= extra.length;) {
      const id = v.getUint16(extraAt + p, true);
      const len = v.getUint16(extraAt + p + 2, true);
      if (p + 4 + len > extra.length) cd.fail(`ZIP entry ${i}: bad extra field`, extraAt + p);
      if (id === 0x0001) {
        let q = extraAt + p + 4;
        const qEnd = q + len;
        const next = (): number => {
          if (q + 8 > qEnd) cd.fail(`ZIP entry ${i}: short ZIP64 extra field`, extraAt + p);
          const x = Number(v.getBigUint64(q, true));
          q += 8;
          return x;
        };
        if (size === 0xffffffff) size = next();
        if (compSize === 0xffffffff) compSize = next();
        if (localOffset === 0xffffffff) localOffset = next();
      }
      p += 4 + len;
    }
    members.push({ name, method, flags, crc, compSize, size, localOffset, centralOffset: at });
  }
  return members;
}

/** Where a member's bytes lie: its data offset, checked against the file's end. */
function memberStart(r: Reader, m: ZipMember, what: string, length: number): number {
  const v = r.view;
  const lh = m.localOffset;
  if (lh > r.bytes.length - 30) {
    r.fail(`${what}: local header offset ${lh} is past the end`, m.centralOffset + 42);
  }
  if (v.getUint32(lh, true) !== SIG_LOCAL) r.fail(`${what}: bad local header`, lh);
  const start = lh + 30 + v.getUint16(lh + 26, true) + v.getUint16(lh + 28, true);
  if (start > r.bytes.length || length > r.bytes.length - start) {
    r.fail(`${what}: data (${length} bytes) runs past the end`, lh);
  }
  return start;
}

function memberData(r: Reader, m: ZipMember): { start: number; end: number } {
  const what = `ZIP member ${quote(m.name)}`;
  if (m.flags & 0x1) r.fail(`${what} is encrypted`, m.centralOffset + 8);
  if (m.method !== 0) {
    const how = m.method === 8
      ? "deflate-compressed (as numpy.savez_compressed writes); the synchronous " +
        "loadParamsBytes reads stored members only: use `await loadParams(bytes)`, which " +
        "inflates them"
      : `compressed with method ${m.method}; only stored and deflated members are supported`;
    r.fail(`${what} is ${how}`, m.centralOffset + 10);
  }
  if (m.compSize !== m.size) {
    r.fail(`${what}: stored sizes disagree (${m.compSize} vs ${m.size})`, m.centralOffset + 20);
  }
  const start = memberStart(r, m, what, m.size);
  const end = start + m.size;
  if (crc32(r.bytes.subarray(start, end)) !== m.crc) {
    r.fail(`${what}: CRC-32 mismatch (the data is corrupt)`, start);
  }
  return { start, end };
}

/** Input slices fed to the decompressor, so that output is checked against the bound often. */
const INFLATE_SLICE = 16 * 1024;

/**
 * Inflates a raw-deflate member with the platform's `DecompressionStream`, failing as soon as
 * the output passes the member's declared size (so memory stays bounded by what the file
 * declares, whatever the data expands to), and checking the exact size and CRC-32.
 */
async function inflateMember(r: Reader, m: ZipMember): Promise<Uint8Array> {
  const what = `ZIP member ${quote(m.name)}`;
  if (m.flags & 0x1) r.fail(`${what} is encrypted`, m.centralOffset + 8);
  if (m.size > MAX_DIM) {
    r.fail(`${what}: declared size ${m.size} exceeds the limit ${MAX_DIM}`, m.centralOffset + 24);
  }
  const start = memberStart(r, m, what, m.compSize);
  const input = r.bytes.subarray(start, start + m.compSize);
  if (typeof DecompressionStream !== "function") {
    r.fail(`${what} is deflate-compressed and this runtime has no DecompressionStream`, start);
  }
  let stream: DecompressionStream;
  try {
    stream = new DecompressionStream("deflate-raw");
  } catch (e) {
    return r.fail(`${what}: this runtime cannot inflate raw deflate data (${e})`, start);
  }
  const writer = stream.writable.getWriter();
  const feeding = (async () => {
    for (let p = 0; p < input.length; p += INFLATE_SLICE) {
      // A copy: the stream may transfer or keep what it is given.
      await writer.write(input.slice(p, p + INFLATE_SLICE));
    }
    await writer.close();
  })();
  feeding.catch(() => {});
  const reader = stream.readable.getReader();
  const out = new Uint8Array(m.size);
  let total = 0;
  let failure: string | undefined;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value.length > m.size - total) {
        failure = `inflates to more than its declared ${m.size} bytes`;
        break;
      }
      out.set(value, total);
      total += value.length;
    }
  } catch (e) {
    failure = `corrupt deflate data (${(e as Error)?.message ?? e})`;
  }
  if (failure !== undefined) {
    await reader.cancel().catch(() => {});
    await writer.abort().catch(() => {});
    r.fail(`${what}: ${failure}`, start);
  }
  await feeding.catch((e) => r.fail(`${what}: corrupt deflate data (${e?.message ?? e})`, start));
  if (total !== m.size) {
    r.fail(`${what}: inflates to ${total} bytes, but declares ${m.size}`, start);
  }
  if (crc32(out) !== m.crc) r.fail(`${what}: CRC-32 mismatch (the data is corrupt)`, start);
  return out;
}

/** The `.npy` members of an archive, checked for repeats and sparse directories. */
function npyMembers(r: Reader): ZipMember[] {
  const members = readZipDirectory(r).filter((m) => m.name.endsWith(".npy"));
  const seen = new Set<string>();
  for (const m of members) {
    if (seen.has(m.name)) r.fail(`ZIP member ${quote(m.name)} appears twice`, m.centralOffset);
    seen.add(m.name);
  }
  // SciPy-style sparse arrays: a directory holding format.npy, data.npy and shape.npy.
  for (const m of members) {
    const slash = m.name.lastIndexOf("/");
    if (slash >= 0 && m.name.slice(slash + 1) === "format.npy") {
      const dir = m.name.slice(0, slash + 1);
      if (seen.has(dir + "data.npy") && seen.has(dir + "shape.npy")) {
        r.fail(
          `array ${quote(dir.slice(0, -1))} is a sparse (SciPy-format) array; only dense arrays ` +
            `are supported`,
          m.centralOffset,
        );
      }
    }
  }
  // Stored members cannot hold more than the file: a larger total means overlapping members,
  // which could otherwise make a small file expand into many copies of its data. Deflated
  // members are bounded by the file the same way, through their compressed sizes.
  let total = 0;
  for (const m of members) {
    total += m.method === 0 ? m.size : m.compSize;
    if (total > r.bytes.length) {
      r.fail(
        `ZIP members claim more data than the file holds (overlapping members)`,
        m.centralOffset,
      );
    }
  }
  return members;
}

/** Reads an archive; `inflated` holds the data of deflated members, by central offset. */
function loadNpz(r: Reader, inflated?: ReadonlyMap<number, Uint8Array>): ParamFile {
  const names: string[] = [];
  const arrays: Tensor[] = [];
  for (const m of npyMembers(r)) {
    const name = m.name.slice(0, -4);
    const data = inflated?.get(m.centralOffset);
    if (data !== undefined) {
      arrays.push(readNpy(new Reader(data, r.source), 0, data.length, `array ${quote(name)}`));
    } else {
      const { start, end } = memberData(r, m);
      arrays.push(readNpy(r, start, end, `array ${quote(name)}`));
    }
    names.push(name);
  }
  return { format: "npz", arrayFormats: [], names, arrays };
}

/** Inflates the deflated `.npy` members of an archive (none: an empty map). */
async function inflateNpz(r: Reader): Promise<Map<number, Uint8Array>> {
  const out = new Map<number, Uint8Array>();
  for (const m of npyMembers(r)) {
    if (m.method === 8) out.set(m.centralOffset, await inflateMember(r, m));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Loading

function isZip(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b &&
    ((b[2] === 3 && b[3] === 4) || (b[2] === 5 && b[3] === 6));
}

/**
 * Parses a parameter file held in memory. The format is sniffed from the first bytes as MXNet
 * does: `PK\x03\x04` or `PK\x05\x06` is an `.npz`, `\x93NUMPY` a single `.npy`, anything else
 * the legacy NDArray list (u64 0x112). `source` names the file in error messages.
 *
 * Throws {@link FormatError} (with the byte `offset`) for anything malformed, truncated,
 * sparse, "none", or of a dtype sigil does not support (int16, uint16, uint32, uint64).
 *
 * @example Loading bytes
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * import { loadParamsBytes, saveNpz } from "./params.ts";
 * const file = loadParamsBytes(saveNpz({ bias: nd.zeros([4]) }), "bias.npz");
 * assert(file.format === "npz" && file.names?.[0] === "bias");
 * ```
 */
export function loadParamsBytes(bytes: Bytes, source = "params"): ParamFile {
  if (!isBytes(bytes)) {
    throw new SigilError(
      `${source}: expected bytes (an ArrayBuffer, typed array, DataView or Buffer)`,
    );
  }
  const b = toUint8Array(bytes, source);
  const r = new Reader(b, source);
  if (isZip(b)) return loadNpz(r);
  if (b.length >= 4 && b[0] === 0x93 && b[1] === 0x4e && b[2] === 0x55 && b[3] === 0x4d) {
    const t = readNpy(r, 0, b.length, "array");
    return { format: "npy", arrayFormats: [], names: null, arrays: [t] };
  }
  return loadLegacy(r);
}

/**
 * The arrays of a loaded file keyed by their stored names (`arg:`/`aux:` prefixes kept). A
 * keyless file is keyed `"0"`, `"1"`, …. The record has no prototype, so any key is safe.
 * Throws {@link SigilError} when a name repeats.
 *
 * @example Keying a keyless file by position
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * import { loadParamsBytes, paramsToRecord, saveParamsV2 } from "./params.ts";
 * const rec = paramsToRecord(loadParamsBytes(saveParamsV2([nd.ones([1])])));
 * assert(Object.keys(rec).join() === "0");
 * ```
 */
export function paramsToRecord(file: ParamFile): Record<string, Tensor> {
  const out = Object.create(null) as Record<string, Tensor>;
  file.arrays.forEach((t, i) => {
    const key = file.names ? file.names[i] : String(i);
    if (Object.hasOwn(out, key)) throw new SigilError(`parameter name ${quote(key)} repeats`);
    out[key] = t;
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Whether `name` is well-formed UTF-16 (no lone surrogate). A lone surrogate has no UTF-8
 * encoding: it would be written as U+FFFD and load back as another name.
 */
function wellFormed(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c > 0xdbff) return false;
    const d = name.charCodeAt(i + 1);
    if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
    i++;
  }
  return true;
}

function checkNames(names: readonly string[]): void {
  for (const n of names) {
    if (!wellFormed(n)) {
      throw new FormatError(
        `parameter name ${quote(n)} holds a lone UTF-16 surrogate, which UTF-8 files cannot ` +
          `store (it would load back as another name)`,
      );
    }
  }
}

/**
 * Why `key` may not name a `.npz` member, or undefined when it may: the member must stay
 * inside the folder a standard extractor unpacks into (no absolute path, drive letter,
 * backslash or `.`/`..` component) and name one file.
 */
function unsafeMemberName(key: string): string | undefined {
  if (key.startsWith("/")) return "starts with '/'";
  if (key.includes("\\")) return "contains '\\' (a path separator on Windows)";
  if (/^[A-Za-z]:/.test(key)) return "starts with a drive letter";
  if (key.includes("\u0000")) return "contains a NUL character";
  if (key.split("/").some((part) => part === ".." || part === ".")) {
    return "has a '.' or '..' path component";
  }
  return undefined;
}

function normalizeEntries(entries: ParamEntries): { names: string[] | null; tensors: Tensor[] } {
  const out = normalizeEntriesUnchecked(entries);
  if (out.names) checkNames(out.names);
  return out;
}

function normalizeEntriesUnchecked(
  entries: ParamEntries,
): { names: string[] | null; tensors: Tensor[] } {
  if (Array.isArray(entries)) {
    const list = entries as readonly unknown[];
    if (list.every((e) => e instanceof Tensor)) {
      return { names: null, tensors: [...list] as Tensor[] };
    }
    const names: string[] = [];
    const tensors: Tensor[] = [];
    list.forEach((e, i) => {
      if (
        !Array.isArray(e) || e.length !== 2 || typeof e[0] !== "string" || !(e[1] instanceof Tensor)
      ) {
        throw new SigilError(`parameter entry ${i} is not a [name, Tensor] pair`);
      }
      names.push(e[0]);
      tensors.push(e[1]);
    });
    return { names, tensors };
  }
  if (typeof entries !== "object" || entries === null) {
    throw new SigilError("parameters must be [name, Tensor] pairs, a record or a Tensor list");
  }
  const names: string[] = [];
  const tensors: Tensor[] = [];
  for (const [k, t] of Object.entries(entries)) {
    if (!(t instanceof Tensor)) throw new SigilError(`parameter ${quote(k)} is not a Tensor`);
    names.push(k);
    tensors.push(t);
  }
  return { names, tensors };
}

/** A growable little-endian byte writer. */
class Writer {
  buf: Uint8Array;
  view: DataView;
  pos = 0;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }
  u16(v: number): void {
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
  }
  u32(v: number): void {
    this.view.setUint32(this.pos, v >>> 0, true);
    this.pos += 4;
  }
  i32(v: number): void {
    this.view.setInt32(this.pos, v, true);
    this.pos += 4;
  }
  u64(v: number): void {
    this.view.setBigUint64(this.pos, BigInt(v), true);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

/**
 * Serializes tensors as MXNet 1.x `nd.save` does: the legacy list (u64 0x112, u64 0, u64 count)
 * with one V2 record per array (magic 0xF993FAC9, storage type 0, i32 ndim + i64 dims, context
 * cpu(0), i32 type flag, raw little-endian data), then the keys (none for a Tensor list).
 *
 * A 0-d tensor cannot be written (V2 reads ndim 0 as a "none" array): that throws
 * {@link FormatError}; use {@link saveParamsV3} or {@link saveNpz} for scalars.
 *
 * @example Writing a V2 file
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * import { saveParamsV2 } from "./params.ts";
 * const bytes = saveParamsV2([["arg:w", nd.ones([2])]]);
 * assert(bytes.length === 24 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 8 + 5);
 * ```
 */
export function saveParamsV2(entries: ParamEntries): Uint8Array {
  return saveLegacyList(entries, "v2");
}

/**
 * Serializes tensors as MXNet does with NumPy shape semantics on (`npx.set_np()`, the 2.x
 * default, then `mx.nd.save`): the legacy list of {@link saveParamsV2} with V3 records (magic
 * 0xF993FACA), laid out as V2 records. In V3, ndim 0 is a scalar, not a "none" array, so 0-d
 * tensors are written (i32 ndim 0, no dims, then the context, type flag and one element).
 *
 * @example A scalar in a V3 file
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * import { loadParamsBytes, saveParamsV3 } from "./params.ts";
 * const file = loadParamsBytes(saveParamsV3({ "arg:scale": nd.array(2.5) }));
 * assert(file.arrayFormat === "v3" && file.arrays[0].ndim === 0);
 * ```
 */
export function saveParamsV3(entries: ParamEntries): Uint8Array {
  return saveLegacyList(entries, "v3");
}

function saveLegacyList(entries: ParamEntries, format: "v2" | "v3"): Uint8Array {
  const { names, tensors } = normalizeEntries(entries);
  const keyBytes = (names ?? []).map((n) => UTF8_ENCODER.encode(n));
  let size = 24 + 8;
  tensors.forEach((t, i) => {
    if (t.ndim === 0 && format === "v2") {
      const what = names ? `parameter ${quote(names[i])}` : `array ${i}`;
      throw new FormatError(
        `${what} is 0-d; the V2 format reads ndim 0 as a none array, so scalars cannot be ` +
          `saved in it (use the "v3" or "npz" format: saveParamsV3 or saveNpz)`,
      );
    }
    size += 4 + 4 + 4 + 8 * t.ndim + 8 + 4 + t.size * dtypeInfo(t.dtype).bytes;
  });
  for (const k of keyBytes) size += 8 + k.length;
  const w = new Writer(size);
  w.u64(LIST_MAGIC);
  w.u64(0);
  w.u64(tensors.length);
  for (const t of tensors) {
    w.u32(format === "v2" ? V2_MAGIC : V3_MAGIC);
    w.i32(0); // dense storage
    w.i32(t.ndim);
    for (const d of t.shape) w.u64(d);
    w.i32(1); // cpu
    w.i32(0); // device id
    w.i32(dtypeInfo(t.dtype).flag);
    w.bytes(tensorBytes(t));
  }
  w.u64(keyBytes.length);
  for (const k of keyBytes) {
    w.u64(k.length);
    w.bytes(k);
  }
  return w.buf;
}

const NPY_DESCR: Readonly<Record<DType, string>> = {
  float32: "<f4",
  float64: "<f8",
  float16: "<f2",
  bfloat16: "<b2",
  int8: "|i1",
  uint8: "|u1",
  bool: "|b1",
  int32: "<i4",
  int64: "<i8",
};

function npyHeader(t: Tensor): Uint8Array {
  let shape = t.shape.join(", ");
  if (t.ndim === 1) shape += ",";
  let dict = `{'descr': '${NPY_DESCR[t.dtype]}', 'fortran_order': False, 'shape': (${shape}), }`;
  // As MXNet's cnpy: pad so that the 10-byte preamble plus the dict is a multiple of 64 and
  // ends in '\n' (a whole extra 64 spaces when it would already fit exactly).
  dict += " ".repeat(64 - (10 + dict.length + 1) % 64) + "\n";
  const head = new Uint8Array(10 + dict.length);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(head.buffer).setUint16(8, dict.length, true);
  for (let i = 0; i < dict.length; i++) head[10 + i] = dict.charCodeAt(i);
  return head;
}

/**
 * Serializes one tensor as a `.npy` (version 1.0), as MXNet's cnpy writes it; this is what
 * MXNet 2.x `npx.save` produces for a single unnamed array. 0-d tensors are fine.
 *
 * @example A scalar .npy
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * import { loadParamsBytes, saveNpy } from "./params.ts";
 * const file = loadParamsBytes(saveNpy(nd.array(7)));
 * assert(file.format === "npy" && file.arrays[0].ndim === 0);
 * ```
 */
export function saveNpy(tensor: Tensor): Uint8Array {
  if (!(tensor instanceof Tensor)) throw new SigilError("saveNpy expects a Tensor");
  const head = npyHeader(tensor);
  const data = tensorBytes(tensor);
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

/**
 * Serializes tensors as MXNet 2.x `npx.savez` does: a ZIP of stored (uncompressed) `.npy`
 * members named `<key>.npy` (`arr_<i>.npy` for a Tensor list), with the fields MXNet's miniz
 * writer produces: general-purpose flags 0x0808 (data descriptor + UTF-8), time and date 0, the
 * local header's CRC and sizes 0 with a signed data descriptor after the data, version fields
 * 0 and no extra fields. 0-d tensors are supported. Names must be unique.
 *
 * @example Writing an .npz
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * import { saveNpz } from "./params.ts";
 * const bytes = saveNpz({ w: nd.ones([2, 2]), s: nd.array(1) });
 * assert(bytes[0] === 0x50 && bytes[1] === 0x4b);
 * ```
 */
export function saveNpz(entries: ParamEntries): Uint8Array {
  const { names, tensors } = normalizeEntries(entries);
  const keys = names ?? tensors.map((_, i) => `arr_${i}`);
  const seen = new Set<string>();
  const members = tensors.map((t, i) => {
    const key = keys[i];
    if (seen.has(key)) throw new SigilError(`parameter name ${quote(key)} repeats`);
    seen.add(key);
    const name = UTF8_ENCODER.encode(key + ".npy");
    if (name.length > 0xffff) throw new SigilError(`parameter name ${quote(key)} is too long`);
    const unsafe = unsafeMemberName(key);
    if (unsafe !== undefined) {
      throw new FormatError(
        `parameter name ${quote(key)} ${unsafe}: an extractor could write the member outside ` +
          `its folder, so saveNpz refuses it`,
      );
    }
    const head = npyHeader(t);
    const data = tensorBytes(t);
    const crc = crc32(data, crc32(head));
    return { name, head, data, crc, size: head.length + data.length };
  });
  let size = 22;
  for (const m of members) size += 30 + m.name.length + m.size + 16 + 46 + m.name.length;
  if (size > 0xffffffff || members.length > 0xffff) {
    throw new SigilError("the archive would need ZIP64, which saveNpz does not write");
  }
  const w = new Writer(size);
  const offsets: number[] = [];
  for (const m of members) {
    offsets.push(w.pos);
    w.u32(SIG_LOCAL);
    w.u16(0); // version needed
    w.u16(0x0808); // data descriptor follows; UTF-8 name
    w.u16(0); // stored
    w.u16(0); // time
    w.u16(0); // date
    w.u32(0); // crc (in the descriptor)
    w.u32(0); // compressed size (in the descriptor)
    w.u32(0); // size (in the descriptor)
    w.u16(m.name.length);
    w.u16(0); // extra
    w.bytes(m.name);
    w.bytes(m.head);
    w.bytes(m.data);
    w.u32(SIG_DESCRIPTOR);
    w.u32(m.crc);
    w.u32(m.size);
    w.u32(m.size);
  }
  const cdOffset = w.pos;
  members.forEach((m, i) => {
    w.u32(SIG_CENTRAL);
    w.u16(0); // version made by
    w.u16(0); // version needed
    w.u16(0x0808);
    w.u16(0); // stored
    w.u16(0); // time
    w.u16(0); // date
    w.u32(m.crc);
    w.u32(m.size);
    w.u32(m.size);
    w.u16(m.name.length);
    w.u16(0); // extra
    w.u16(0); // comment
    w.u16(0); // disk
    w.u16(0); // internal attributes
    w.u32(0); // external attributes
    w.u32(offsets[i]);
    w.bytes(m.name);
  });
  const cdSize = w.pos - cdOffset;
  w.u32(SIG_EOCD);
  w.u16(0);
  w.u16(0);
  w.u16(members.length);
  w.u16(members.length);
  w.u32(cdSize);
  w.u32(cdOffset);
  w.u16(0); // comment length
  return w.buf;
}

// ---------------------------------------------------------------------------------------------
// Files

/**
 * Reads and parses a parameter file (see {@link loadParamsBytes}) from a path, a URL
 * (`http(s):`, `file:`) or its bytes. A file that cannot be read is an {@link IOError} naming
 * the path.
 *
 * @example Loading from disk
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * import { loadParams, saveParams } from "./params.ts";
 * const path = await Deno.makeTempFile({ suffix: ".params" });
 * await saveParams(path, { "arg:w": nd.ones([3]) });
 * const file = await loadParams(path);
 * assert(file.arrays[0].size === 3);
 * assert((await loadParams(new URL(`file://${path}`))).arrays[0].size === 3);
 * await Deno.remove(path);
 * ```
 */
export async function loadParams(source: FileSource): Promise<ParamFile> {
  const bytes = await readBytes(source, "parameter file");
  const name = sourceName(source, "the given bytes");
  if (isZip(bytes)) {
    const r = new Reader(bytes, name);
    return loadNpz(r, await inflateNpz(r));
  }
  return loadParamsBytes(bytes, name);
}

/**
 * The bytes of a parameter file: {@link saveParamsV2} (the default), {@link saveParamsV3} or
 * {@link saveNpz}.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * import { loadParamsBytes, paramsBytes } from "./params.ts";
 * const bytes = paramsBytes({ w: nd.ones([2]) }, { format: "npz" });
 * assert(loadParamsBytes(bytes).format === "npz");
 * ```
 */
export function paramsBytes(entries: ParamEntries, options: SaveParamsOptions = {}): Uint8Array {
  const format = options.format ?? "v2";
  if (format === "npz") return saveNpz(entries);
  if (format === "v2" || format === "v3") return saveLegacyList(entries, format);
  throw new SigilError(
    `unknown parameter file format '${format}'; expected "v2", "v3" or "npz"`,
  );
}

/**
 * Writes tensors to a parameter file (a path or `file:` URL), as {@link saveParamsV2} (the
 * default), {@link saveParamsV3} or {@link saveNpz}; {@link paramsBytes} gives the bytes instead. The file is written
 * under a temporary name and renamed, so a failed save leaves no partial file. A file that
 * cannot be written is an {@link IOError} naming the path.
 *
 * @example Saving an .npz
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * import { loadParams, saveParams } from "./params.ts";
 * const path = await Deno.makeTempFile({ suffix: ".npz" });
 * await saveParams(path, { b: nd.zeros([2]) }, { format: "npz" });
 * assert((await loadParams(path)).format === "npz");
 * await Deno.remove(path);
 * ```
 */
export async function saveParams(
  path: FileTarget,
  entries: ParamEntries,
  options: SaveParamsOptions = {},
): Promise<void> {
  await writeFile(path, paramsBytes(entries, options), "parameter file");
}
