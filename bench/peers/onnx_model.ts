/**
 * A minimal ONNX model encoder: just enough protobuf to describe the benchmark graphs
 * (MatMul, Conv with pads, Relu/Mul/Add, MaxPool, GlobalAveragePool, Flatten, Gemm) with
 * float32 tensors, so the peer benchmarks build their models in code and no model file is
 * downloaded or committed.
 *
 * Field numbers follow onnx/onnx.proto (IR version 8, default-domain opset 17).
 *
 * @module
 */

/** An attribute value with its ONNX type made explicit (ints and floats look alike in JS). */
export type OnnxAttr =
  | { readonly int: number }
  | { readonly ints: readonly number[] }
  | { readonly float: number }
  | { readonly floats: readonly number[] }
  | { readonly string: string };

/** One graph node. */
export interface OnnxNode {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs?: Readonly<Record<string, OnnxAttr>>;
}

/** A float32 graph input or output with a fixed shape. */
export interface OnnxValue {
  readonly name: string;
  readonly dims: readonly number[];
}

/** A float32 constant (weights); `dims` may be empty for a scalar. */
export interface OnnxInitializer extends OnnxValue {
  readonly data: Float32Array;
}

/** A whole single-graph model. */
export interface OnnxGraph {
  readonly name: string;
  readonly nodes: readonly OnnxNode[];
  readonly inputs: readonly OnnxValue[];
  readonly outputs: readonly OnnxValue[];
  readonly initializers?: readonly OnnxInitializer[];
}

const IR_VERSION = 8;
const OPSET = 17;
const FLOAT = 1; // TensorProto.DataType.FLOAT

/** AttributeProto.AttributeType values. */
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_FLOATS = 6;
const ATTR_INTS = 7;

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const utf8 = new TextEncoder();

/** Appends protobuf fields to a growable byte buffer. */
class ProtoWriter {
  #buf = new Uint8Array(256);
  #len = 0;

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.#len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  /** Unsigned varint; negative int64 values take the 10-byte two's-complement form. */
  #varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    this.#reserve(10);
    while (v >= 0x80n) {
      this.#buf[this.#len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.#buf[this.#len++] = Number(v);
  }

  #tag(field: number, wire: number): void {
    this.#varint((field << 3) | wire);
  }

  #raw(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
  }

  int(field: number, value: number): this {
    this.#tag(field, WIRE_VARINT);
    this.#varint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.#tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.#raw(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.#tag(field, WIRE_LEN);
    this.#varint(value.length);
    this.#raw(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  packedInts(field: number, values: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.#varint(v);
    return this.bytes(field, inner.finish());
  }

  packedFloats(field: number, values: readonly number[]): this {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

function writeAttr(w: ProtoWriter, name: string, a: OnnxAttr): void {
  w.string(1, name); // AttributeProto.name
  if ("int" in a) w.int(3, a.int).int(20, ATTR_INT);
  else if ("ints" in a) w.packedInts(8, a.ints).int(20, ATTR_INTS);
  else if ("float" in a) w.float(2, a.float).int(20, ATTR_FLOAT);
  else if ("floats" in a) w.packedFloats(7, a.floats).int(20, ATTR_FLOATS);
  else w.bytes(4, utf8.encode(a.string)).int(20, ATTR_STRING);
}

function writeNode(w: ProtoWriter, node: OnnxNode, index: number): void {
  for (const i of node.inputs) w.string(1, i); // NodeProto.input
  for (const o of node.outputs) w.string(2, o); // NodeProto.output
  w.string(3, `${node.op}_${index}`); // NodeProto.name
  w.string(4, node.op); // NodeProto.op_type
  for (const [name, a] of Object.entries(node.attrs ?? {})) {
    w.message(5, (aw) => writeAttr(aw, name, a)); // NodeProto.attribute
  }
}

function writeValueInfo(w: ProtoWriter, v: OnnxValue): void {
  w.string(1, v.name); // ValueInfoProto.name
  w.message(2, (tw) =>
    // ValueInfoProto.type: TypeProto
    tw.message(1, (tt) => { // TypeProto.tensor_type
      tt.int(1, FLOAT); // elem_type
      tt.message(2, (sw) => { // shape: TensorShapeProto
        for (const d of v.dims) sw.message(1, (dw) => dw.int(1, d)); // dim.dim_value
      });
    }));
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The float32 values as little-endian bytes (raw_data's byte order). */
function littleEndianBytes(data: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const raw = new Uint8Array(data.length * 4);
  const dv = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) dv.setFloat32(i * 4, data[i], true);
  return raw;
}

function writeInitializer(w: ProtoWriter, t: OnnxInitializer): void {
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (count !== t.data.length) {
    throw new Error(`initializer ${t.name}: ${t.data.length} values for dims [${t.dims}]`);
  }
  if (t.dims.length > 0) w.packedInts(1, t.dims); // TensorProto.dims
  w.int(2, FLOAT); // data_type
  w.string(8, t.name); // name
  w.bytes(9, littleEndianBytes(t.data)); // raw_data
}

/** Serializes a graph as an ONNX ModelProto. */
export function encodeModel(graph: OnnxGraph): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, IR_VERSION); // ModelProto.ir_version
  w.string(2, "sigil-bench"); // producer_name
  w.message(7, (gw) => { // graph
    graph.nodes.forEach((n, i) => gw.message(1, (nw) => writeNode(nw, n, i)));
    gw.string(2, graph.name);
    for (const t of graph.initializers ?? []) gw.message(5, (tw) => writeInitializer(tw, t));
    for (const v of graph.inputs) gw.message(11, (vw) => writeValueInfo(vw, v));
    for (const v of graph.outputs) gw.message(12, (vw) => writeValueInfo(vw, v));
  });
  w.message(8, (ow) => ow.string(1, "").int(2, OPSET)); // opset_import
  return w.finish();
}
