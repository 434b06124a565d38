/**
 * MXNet symbol JSON: reading every vintage (0.8 `param`/`attr`, 0.9 `attr`, 1.x and 2.x
 * `attrs`) with MXNet's upgrade steps, and writing MXNet 1.x form byte-for-byte as MXNet's own
 * writer (dmlc JSONWriter) formats it.
 *
 * @module
 */
import { isHiddenKey, MAX_ATTR_LENGTH } from "../ops/attrs.ts";
import { normalizeAttrs } from "../ops/call.ts";
import type { AnyOpDef } from "../ops/op.ts";
import { getOp } from "../ops/registry.ts";
import { FormatError, GraphError, SigilError } from "../runtime/errors.ts";
import {
  type Entry,
  type GraphAttrValue,
  makeNode,
  type Node,
  type NodeSpec,
  Symbol,
} from "./symbol.ts";

/** The MXNet version sigil's writer claims (1.9.1): files it writes need no upgrade. */
export const MXNET_VERSION = 10901;

/** MXNet's hidden keys, which old files spell without underscores (`lr_mult`). */
const HIDDEN_KEYS = [
  "ctx_group",
  "lr_mult",
  "wd_mult",
  "force_mirroring",
  "mirror_stage",
  "profiler_scope",
];

/** Deepest subgraph nesting accepted (hostile files cannot exhaust the stack). */
const MAX_SUBGRAPH_DEPTH = 16;

/**
 * The longest node name or attribute key accepted, in UTF-16 code units. Names become keys,
 * output names and `.npz` member names (whose ZIP field holds at most 65,535 bytes).
 */
export const MAX_NAME_LENGTH = 65536;

/**
 * Deepest nesting of brackets a symbol file may have. A file of 16 nested subgraphs with graph
 * attributes 8 levels deep stays under 90; JSON.parse turns each `[` into an array of a hundred
 * bytes or so, so a 2 MB file of a million nested brackets would take over 100 MB before any check.
 */
export const MAX_JSON_DEPTH = 128;

/** Refuses text nested deeper than {@link MAX_JSON_DEPTH}: one scan, before JSON.parse. */
function checkJsonDepth(text: string, source: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) {
        throw new FormatError(
          `${source}: nested too deeply (over ${MAX_JSON_DEPTH} levels of brackets)`,
          i,
        );
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}

/**
 * Deepest nesting of a graph attribute's value (`["list_shape", [[1, 2], [3]]]` is depth 2).
 * NNVM writes at most lists of lists; deeper values would only exhaust the stack of whoever
 * prints or compares them.
 */
export const MAX_GRAPH_ATTR_DEPTH = 8;

interface RawNode {
  op: string;
  name: string;
  attrs: Record<string, string>;
  inputs: [number, number, number][];
  controlDeps: number[];
  subgraphs: unknown[];
}

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isIndex(v: Json): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** Shortens text quoted in messages. */
function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** A JSON value for a message, without recursing into (possibly very deep) nesting. */
function describe(v: Json): string {
  if (Array.isArray(v)) {
    return v.every((x) => typeof x !== "object" || x === null)
      ? clip(JSON.stringify(v))
      : "an array of arrays or objects";
  }
  if (typeof v === "object" && v !== null) return "an object";
  return clip(String(JSON.stringify(v)));
}

/** Copies string attributes into `out` (a record without a prototype: any key is safe). */
function stringDict(v: Json, where: string, key: string, out: Record<string, string>): void {
  if (v === undefined) return;
  if (!isObject(v)) throw new FormatError(`${where}: '${key}' must be an object of strings`);
  for (const [k, s] of Object.entries(v)) {
    if (typeof s !== "string") {
      throw new FormatError(
        `${where}: attribute '${clip(k)}' in '${key}' must be a string, got ${describe(s)}`,
      );
    }
    if (k.length > MAX_NAME_LENGTH) {
      throw new FormatError(`${where}: an attribute key is longer than ${MAX_NAME_LENGTH}`);
    }
    if (s.length > MAX_ATTR_LENGTH) {
      throw new FormatError(
        `${where}: attribute '${clip(k)}' is ${s.length} characters long; at most ` +
          `${MAX_ATTR_LENGTH} are accepted`,
      );
    }
    out[k] = s;
  }
}

function readNode(v: Json, i: number, source: string): RawNode {
  const where = `${source}: node ${i}`;
  if (!isObject(v)) throw new FormatError(`${where} is not an object`);
  const { op, name, inputs } = v;
  if (typeof op !== "string") throw new FormatError(`${where}: 'op' must be a string`);
  if (typeof name !== "string") throw new FormatError(`${where}: 'name' must be a string`);
  if (name.length > MAX_NAME_LENGTH || op.length > MAX_NAME_LENGTH) {
    throw new FormatError(`${where}: a name longer than ${MAX_NAME_LENGTH} characters`);
  }
  const w = `${source}: node ${i} '${clip(name)}'`;
  if (!Array.isArray(inputs)) throw new FormatError(`${w}: 'inputs' must be an array`);
  // MXNet merges all three spellings into one dict.
  const attrs: Record<string, string> = Object.create(null);
  stringDict(v.param, w, "param", attrs);
  stringDict(v.attr, w, "attr", attrs);
  stringDict(v.attrs, w, "attrs", attrs);
  const entries = inputs.map((e, k) => readEntry(e, `${w}: input ${k}`));
  for (const [src] of entries) {
    if (src >= i) {
      throw new GraphError(
        `${w}: input refers to node ${src}, which does not come before it (a forward reference or cycle)`,
      );
    }
  }
  const deps = v.control_deps ?? [];
  if (!Array.isArray(deps) || !deps.every(isIndex)) {
    throw new FormatError(`${w}: 'control_deps' must be node indices`);
  }
  for (const d of deps) {
    if (d >= i) {
      throw new GraphError(`${w}: control dependency on node ${d}, which does not come before it`);
    }
  }
  const subgraphs = v.subgraphs ?? [];
  if (!Array.isArray(subgraphs)) throw new FormatError(`${w}: 'subgraphs' must be an array`);
  return { op, name, attrs, inputs: entries, controlDeps: deps as number[], subgraphs };
}

function readEntry(e: Json, where: string): [number, number, number] {
  if (!Array.isArray(e) || (e.length !== 2 && e.length !== 3) || !e.every(isIndex)) {
    throw new FormatError(
      `${where}: an entry must be [node, index] or [node, index, version], got ${describe(e)}`,
    );
  }
  return [e[0], e[1], e[2] ?? 0];
}

function readGraphAttrs(v: Json, source: string): Record<string, GraphAttrValue> {
  const out: Record<string, GraphAttrValue> = Object.create(null);
  if (v === undefined) return out;
  if (!isObject(v)) throw new FormatError(`${source}: graph 'attrs' must be an object`);
  for (const [k, a] of Object.entries(v)) {
    const where = `${source}: graph attribute '${clip(k)}'`;
    if (!Array.isArray(a) || a.length !== 2 || typeof a[0] !== "string") {
      throw new FormatError(`${where} must be a [type, value] pair`);
    }
    if (k.length > MAX_NAME_LENGTH || a[0].length > MAX_NAME_LENGTH) {
      throw new FormatError(`${where}: a name longer than ${MAX_NAME_LENGTH} characters`);
    }
    checkGraphAttrValue(a[1], where);
    out[k] = Object.freeze([a[0], a[1]]) as GraphAttrValue;
  }
  return out;
}

/**
 * Checks a graph attribute's value: strings, finite numbers, booleans, null, and arrays and
 * objects of those nested at most {@link MAX_GRAPH_ATTR_DEPTH} deep. Iterative, so hostile
 * nesting cannot exhaust the stack here; what passes can be written back and read again.
 */
export function checkGraphAttrValue(value: unknown, where: string): void {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v === "string") {
      if (v.length > MAX_ATTR_LENGTH) {
        throw new FormatError(`${where}: a string longer than ${MAX_ATTR_LENGTH} characters`);
      }
    } else if (typeof v === "number") {
      if (!Number.isFinite(v)) {
        throw new FormatError(`${where}: the number ${v} is not finite (JSON cannot hold it)`);
      }
    } else if (typeof v === "boolean" || v === null) {
      // fine
    } else if (typeof v === "object") {
      if (depth >= MAX_GRAPH_ATTR_DEPTH) {
        throw new FormatError(`${where}: nested deeper than ${MAX_GRAPH_ATTR_DEPTH} levels`);
      }
      if (Array.isArray(v)) { for (const x of v) stack.push([x, depth + 1]); }
      else {
        for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
          if (k.length > MAX_NAME_LENGTH) {
            throw new FormatError(`${where}: a key longer than ${MAX_NAME_LENGTH} characters`);
          }
          stack.push([x, depth + 1]);
        }
      }
    } else {
      throw new FormatError(`${where}: a value of type ${typeof v} cannot be written as JSON`);
    }
  }
}

function opFor(raw: RawNode, where: string): AnyOpDef | null {
  return raw.op === "null" ? null : getOp(raw.op, where);
}

/**
 * The input names of a node's op, computed once per node. A variadic op's count must equal the
 * inputs the file gives before any name list is built: a count is never trusted on its own.
 */
function inputNamesOf(op: AnyOpDef, raw: RawNode, where: string): readonly string[] {
  const attrs = normalizeAttrs(op, visibleAttrs(raw.attrs), where).attrs;
  if (op.variadic) {
    const count = attrs[op.variadic];
    if (count !== raw.inputs.length) {
      throw new GraphError(
        `${where}: ${op.variadic} is ${count} but ${raw.inputs.length} inputs are given`,
      );
    }
  }
  return op.inputNames(attrs);
}

/** MXNet's UpgradeJSON_FixParsing: bare hidden keys become `__key__`, or move to inputs. */
function fixHiddenKeys(raws: RawNode[], source: string): void {
  raws.forEach((raw, i) => {
    let names: readonly string[] | undefined;
    const hidden: [string, string][] = [];
    for (const [k, v] of Object.entries(raw.attrs)) {
      for (const key of HIDDEN_KEYS) {
        const pos = k.lastIndexOf(key);
        if (pos === 0 || (pos > 0 && pos === k.length - key.length)) {
          hidden.push([k, v]);
          delete raw.attrs[k];
          break;
        }
      }
    }
    for (const [k, v] of hidden) {
      let placed = false;
      for (const key of HIDDEN_KEYS) {
        const pos = k.lastIndexOf(key);
        if (pos === 0 && k.length === key.length) {
          raw.attrs[`__${key}__`] = v;
          placed = true;
          break;
        }
        if (pos > 1 && pos === k.length - key.length) {
          if (raw.op === "null") break;
          const op = opFor(raw, `${source}: node ${i} '${raw.name}'`)!;
          if (op.subgraph) break;
          names ??= inputNamesOf(op, raw, `${source}: node ${i} '${clip(raw.name)}'`);
          const idx = names.indexOf(k.slice(0, pos - 1));
          if (idx >= 0 && idx < raw.inputs.length && raws[raw.inputs[idx][0]].op === "null") {
            raws[raw.inputs[idx][0]].attrs[`__${key}__`] = v;
            placed = true;
          }
          break;
        }
      }
      if (!placed) raw.attrs[k] = v;
    }
  });
}

function visibleAttrs(attrs: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(attrs).filter(([k]) => !isHiddenKey(k)));
}

/** Applies an op's compose-time attributes to a variable's attrs (MXNet 0.9.4 upgrade). */
function withComposeAttrs(
  op: AnyOpDef,
  index: number,
  attrs: Record<string, string>,
): Record<string, string> {
  const extra = op.inputVarAttrs?.(index);
  if (!extra) return attrs;
  const out = { ...attrs };
  for (const [k, v] of Object.entries(extra)) if (!(k in out)) out[k] = v;
  return out;
}

function loadGraph(g: Json, source: string, depth: number, inherited?: number): Symbol {
  if (depth > MAX_SUBGRAPH_DEPTH) throw new FormatError(`${source}: subgraphs nested too deeply`);
  if (!isObject(g)) throw new FormatError(`${source}: the document must be a JSON object`);
  if (!Array.isArray(g.nodes)) throw new FormatError(`${source}: missing 'nodes' array`);
  if (!Array.isArray(g.heads)) throw new FormatError(`${source}: missing 'heads' array`);
  const graphAttrs = readGraphAttrs(g.attrs, source);
  const vAttr = graphAttrs.mxnet_version;
  // Subgraphs carry no version of their own: they are as old as the graph holding them.
  const version = vAttr && typeof vAttr[1] === "number" ? vAttr[1] : inherited ?? 800;
  const raws = g.nodes.map((n, i) => readNode(n, i, source));
  if (g.arg_nodes !== undefined) {
    if (!Array.isArray(g.arg_nodes) || !g.arg_nodes.every(isIndex)) {
      throw new FormatError(`${source}: 'arg_nodes' must be node indices`);
    }
    for (const a of g.arg_nodes) {
      if (a >= raws.length || raws[a].op !== "null") {
        throw new FormatError(`${source}: arg_nodes entry ${a} is not a variable node`);
      }
    }
  }
  if (version < MXNET_VERSION) fixHiddenKeys(raws, source);
  if (version < 904) {
    // MXNet 0.9.4 moved initializer attributes onto the inputs of some ops.
    raws.forEach((raw, i) => {
      if (raw.op === "null") return;
      const op = opFor(raw, `${source}: node ${i} '${raw.name}'`)!;
      raw.inputs.forEach(([src], k) => {
        if (raws[src].op === "null") raws[src].attrs = withComposeAttrs(op, k, raws[src].attrs);
      });
    });
  }
  const rowPtr = Array.isArray(g.node_row_ptr) && g.node_row_ptr.length === raws.length + 1 &&
      g.node_row_ptr.every(isIndex)
    ? g.node_row_ptr as number[]
    : undefined;
  const nodes: Node[] = [];
  raws.forEach((raw, i) => {
    const where = `${source}: node ${i} '${clip(raw.name)}' (${raw.op})`;
    const op = opFor(raw, where);
    const inputs: Entry[] = raw.inputs.map(([src, index, ver]) => {
      const n = nodes[src];
      if (index >= n.numOutputs) {
        throw new GraphError(
          `${where}: input refers to output ${index} of '${n.name}', which has ${n.numOutputs}`,
        );
      }
      return n.entry(index, ver);
    });
    if (op && !op.subgraph && version < 900) {
      // Before 0.9, aux states (and other defaulted inputs) were not stored: add them.
      const names = op.variadic ? [] : inputNamesOf(op, raw, where);
      for (let k = inputs.length; k < names.length; k++) {
        let attrs = { ...raw.attrs };
        if (version < 904) attrs = withComposeAttrs(op, k, attrs);
        inputs.push(makeNode({ op: null, name: `${raw.name}_${names[k]}`, attrs }).entry());
      }
    }
    const subgraphs = raw.subgraphs.map((sg, k) =>
      loadGraph(sg, `${where} subgraph ${k}`, depth + 1, version)
    );
    const spec: NodeSpec = {
      op,
      name: raw.name,
      attrs: raw.attrs,
      inputs,
      controlDeps: raw.controlDeps.map((d) => nodes[d]),
      subgraphs,
      where,
    };
    let node = makeNode(spec);
    // Builds differ in how many outputs some ops count (oneDNN max-Pooling: 2); keep the
    // file's count so the graph writes back byte-for-byte.
    const count = rowPtr ? rowPtr[i + 1] - rowPtr[i] : 0;
    if (count > 0 && count !== node.numOutputs) node = makeNode({ ...spec, rowOutputs: count });
    nodes.push(node);
  });
  const heads = g.heads.map((h, k) => {
    const [src, index, ver] = readEntry(h, `${source}: head ${k}`);
    if (src >= nodes.length) {
      throw new GraphError(`${source}: head ${k} refers to missing node ${src}`);
    }
    if (index >= nodes[src].numOutputs) {
      throw new GraphError(
        `${source}: head ${k} refers to output ${index} of '${nodes[src].name}', which has ${
          nodes[src].numOutputs
        }`,
      );
    }
    return nodes[src].entry(index, ver);
  });
  if (heads.length === 0) throw new FormatError(`${source}: the graph has no heads`);
  if (version < 10000 && depth === 0) graphAttrs.mxnet_version = ["int", MXNET_VERSION];
  return new Symbol(heads, graphAttrs);
}

/**
 * Reads MXNet symbol JSON of any vintage. Malformed input raises a typed error naming the
 * node: {@link FormatError}, {@link GraphError}, {@link UnknownOpError} or
 * {@link AttributeError}.
 *
 * @example Loading a symbol
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../mod.ts";
 * const net = sym.loadJSON(JSON.stringify({
 *   nodes: [
 *     { op: "null", name: "x", inputs: [] },
 *     { op: "exp", name: "e", inputs: [[0, 0, 0]] },
 *   ],
 *   arg_nodes: [0],
 *   heads: [[1, 0, 0]],
 * }));
 * assert(net.listOutputs()[0] === "e_output");
 * ```
 */
export function loadJSON(text: string, source = "symbol JSON"): Symbol {
  if (typeof text !== "string") throw new FormatError(`${source}: expected a string`);
  checkJsonDepth(text, source);
  let doc: Json;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    const m = /position (\d+)/.exec((e as Error).message);
    throw new FormatError(
      `${source}: malformed JSON: ${(e as Error).message}`,
      m ? Number(m[1]) : undefined,
    );
  }
  try {
    return loadGraph(doc, source, 0);
  } catch (e) {
    if (e instanceof SigilError) throw e;
    throw new FormatError(`${source}: ${(e as Error).message}`);
  }
}

// ---- writer ---------------------------------------------------------------------------------

type Out =
  | { k: "obj"; entries: [string, Out][] }
  | { k: "map"; entries: [string, Out][] }
  | { k: "arr"; items: Out[]; multi: boolean }
  | { k: "str"; v: string }
  | { k: "num"; v: number }
  | { k: "raw"; v: string };

/** Characters that need an escape: quote, backslash, controls, and any surrogate. */
// deno-lint-ignore no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * A JSON string literal. `\r`, `\n`, `\t`, `\\` and `"` are escaped as dmlc's writer does;
 * other control characters and lone surrogates (which dmlc writes raw, making JSON that strict
 * readers reject or UTF-8 cannot carry) become `\u00XX` / `\uDXXX`, so every string reads
 * back as it was. Paired surrogates stay as they are.
 */
function quote(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x0d) out += "\\r";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x09) out += "\\t";
    else if (c === 0x5c) out += "\\\\";
    else if (c === 0x22) out += '\\"';
    else if (c < 0x20) out += `\\u${c.toString(16).padStart(4, "0")}`;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) {
        out += s[i] + s[i + 1];
        i++;
      } else out += `\\u${c.toString(16)}`;
    } else if (c >= 0xdc00 && c <= 0xdfff) out += `\\u${c.toString(16)}`;
    else out += s[i];
  }
  return out + '"';
}

function emit(v: Out, level: number): string {
  const pad = (n: number) => "\n" + "  ".repeat(n);
  switch (v.k) {
    case "str":
      return quote(v.v);
    case "num":
      if (!Number.isFinite(v.v)) {
        throw new FormatError(`toJSON: the number ${v.v} is not finite (JSON cannot hold it)`);
      }
      return String(v.v);
    case "raw":
      return v.v;
    case "arr":
      if (v.items.length === 0) return "[]";
      if (!v.multi) return `[${v.items.map((x) => emit(x, level)).join(", ")}]`;
      return `[${
        v.items.map((x, i) => (i ? ", " : "") + pad(level + 1) + emit(x, level + 1)).join("")
      }${pad(level)}]`;
    case "map":
    case "obj": {
      const body = (e: [string, Out]) => `${quote(e[0])}: ${emit(e[1], level + 1)}`;
      if (v.k === "map" && v.entries.length <= 1) {
        return `{${v.entries.map((e) => `${quote(e[0])}: ${emit(e[1], level)}`).join("")}}`;
      }
      return `{${v.entries.map((e, i) => (i ? ", " : "") + pad(level + 1) + body(e)).join("")}${
        pad(level)
      }}`;
    }
  }
}

const num = (v: number): Out => ({ k: "num", v });
const str = (v: string): Out => ({ k: "str", v });
/** A vector of plain values: inline unless it has more than 10 elements (dmlc's rule). */
const podArray = (items: Out[]): Out => ({ k: "arr", items, multi: items.length > 10 });

function graphOut(symbol: Symbol, topLevel: boolean): Out {
  const nodes = symbol.nodes();
  const index = new Map<Node, number>(nodes.map((n, i) => [n, i]));
  const entry = (e: Entry): Out => ({
    k: "arr",
    items: [num(index.get(e.node)!), num(e.index), num(e.version)],
    multi: false,
  });
  const nodeOut = (n: Node): Out => {
    const entries: [string, Out][] = [["op", str(n.opName)], ["name", str(n.name)]];
    const keys = Object.keys(n.attrs);
    if (keys.length) {
      entries.push(["attrs", { k: "map", entries: keys.map((k) => [k, str(n.attrs[k])]) }]);
    }
    entries.push(["inputs", podArray(n.inputs.map(entry))]);
    if (n.controlDeps.length) {
      entries.push([
        "control_deps",
        podArray(n.controlDeps.map((d) => num(index.get(d)!))),
      ]);
    }
    if (n.subgraphs.length) {
      entries.push(["subgraphs", {
        k: "arr",
        items: n.subgraphs.map((g) => graphOut(g, false)),
        multi: true,
      }]);
    }
    return { k: "obj", entries };
  };
  const rowPtr = [0];
  for (const n of nodes) rowPtr.push(rowPtr[rowPtr.length - 1] + (n.rowOutputs ?? n.numOutputs));
  const entries: [string, Out][] = [
    ["nodes", { k: "arr", items: nodes.map(nodeOut), multi: true }],
    ["arg_nodes", podArray(nodes.flatMap((n, i) => (n.isVariable ? [num(i)] : [])))],
    ["node_row_ptr", podArray(rowPtr.map(num))],
    ["heads", podArray(symbol.outputs.map(entry))],
  ];
  const attrs: [string, Out][] = Object.entries(symbol.graphAttrs).map(([k, [t, v]]) => {
    checkGraphAttrValue(v, `toJSON: graph attribute '${clip(k)}'`);
    return [k, { k: "arr", items: [str(t), attrValueOut(v)], multi: false }];
  });
  if (topLevel && !Object.hasOwn(symbol.graphAttrs, "mxnet_version")) {
    attrs.unshift(["mxnet_version", {
      k: "arr",
      items: [str("int"), num(MXNET_VERSION)],
      multi: false,
    }]);
  }
  if (attrs.length) entries.push(["attrs", { k: "map", entries: attrs }]);
  return { k: "obj", entries };
}

/** A checked graph attribute value as compact JSON (strings quoted as {@link quote} does). */
function attrValueOut(v: unknown): Out {
  if (typeof v === "string") return str(v);
  return { k: "raw", v: compactJSON(v) };
}

function compactJSON(v: unknown): string {
  if (typeof v === "string") return quote(v);
  if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v);
  if (typeof v === "boolean" || v === null) return String(v);
  if (Array.isArray(v)) return `[${v.map(compactJSON).join(", ")}]`;
  return `{${
    Object.entries(v as Record<string, unknown>).map(([k, x]) => `${quote(k)}: ${compactJSON(x)}`)
      .join(", ")
  }}`;
}

/** Writes a symbol as MXNet 1.x JSON, byte-for-byte as MXNet's writer formats it. */
export function symbolToJSON(symbol: Symbol): string {
  return emit(graphOut(symbol, true), 0);
}
