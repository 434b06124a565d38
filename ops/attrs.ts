/**
 * Operator attribute schemas. Each attribute parses MXNet's string forms (tuples in `()` or
 * `[]`, bools as True/False/1/0/true/false, `None`) and prints Python's `str()` form, which is
 * what MXNet 1.x writes into symbol JSON.
 *
 * @module
 */
import { type DType, isDType } from "../runtime/dtype.ts";

/** One attribute: how to parse, print and validate it, and its default. */
export interface AttrSpec<T, R extends boolean = boolean> {
  /** A short type description for messages and docs. */
  readonly type: string;
  /** Whether the attribute must be given. */
  readonly required: R;
  /** The value used when the attribute is absent (ignored when required). */
  readonly default: T;
  /** Parses MXNet's string form; throws an Error with a short reason when it does not parse. */
  parse(text: string): T;
  /** Prints Python's `str()` form, as MXNet 1.x writes it. */
  print(value: T): string;
  /** Validates a JavaScript value given to an op call; throws with a short reason. */
  fromJS(value: unknown): T;
}

/** An attribute schema: attribute name to spec. */
// deno-lint-ignore no-explicit-any
export type AttrSchema = Readonly<Record<string, AttrSpec<any>>>;

/** The parsed attributes of a schema. */
export type Attrs<S extends AttrSchema> = { readonly [K in keyof S]: S[K]["default"] };

/** The keys of a schema whose attributes are required. */
export type RequiredKeys<S extends AttrSchema> = {
  [K in keyof S]: S[K] extends { readonly inputCount: true } ? never
    : S[K] extends AttrSpec<unknown, true> ? K
    : never;
}[keyof S];

/** A required count of inputs that op calls fill from the number of inputs given. */
export type InputCountSpec = AttrSpec<number, true> & { readonly inputCount: true };

/** What a caller passes for a schema's attributes: required ones must be present. */
export type AttrsInput<S extends AttrSchema> =
  & { [K in RequiredKeys<S>]: S[K]["default"] | string }
  & { [K in Exclude<keyof S, RequiredKeys<S>>]?: S[K]["default"] | string };

/** Formats a number as Python's `repr(float)` does (`1e-05`, `0.9`, `1.0`, `inf`). */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mant, expText] = x.toExponential().split("e");
  const exp = Number(expText);
  const neg = mant.startsWith("-");
  const digits = mant.replace("-", "").replace(".", "");
  const sign = neg ? "-" : "";
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp) < 10 ? `0${Math.abs(exp)}` : `${Math.abs(exp)}`;
    return `${sign}${m}e${exp < 0 ? "-" : "+"}${e}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, "0");
  const frac = digits.slice(exp + 1);
  return `${sign}${intPart}.${frac || "0"}`;
}

/**
 * The most inputs or outputs one node may declare (`num_args`, `num_outputs`). Each output
 * gets a name and a slot in every inference pass, so a 200-byte file claiming 10^8 outputs
 * would otherwise exhaust memory; 65,536 is far above any real model (a split into more parts
 * than that, or a concat of more inputs, has never been seen in MXNet exports) and keeps one
 * node's names to a few megabytes.
 */
export const MAX_ARITY = 65536;

/**
 * The longest attribute value accepted, in UTF-16 code units (1 MiB of text). The longest real
 * values are fused expressions and long tuples, a few kilobytes; parsers are linear, so this
 * only bounds what one value can cost, not how fast it parses.
 */
export const MAX_ATTR_LENGTH = 1 << 20;

const INT_RE = /^\s*[+-]?\d+[lL]?\s*$/;

function parseInt_(text: string): number {
  if (!INT_RE.test(text)) throw new Error(`'${clip(text)}' is not an integer`);
  const v = Number(text.trim().replace(/[lL]$/, ""));
  if (!Number.isSafeInteger(v)) throw new Error(`'${clip(text)}' is out of range`);
  return v;
}

function parseFloat_(text: string): number {
  const t = text.trim().toLowerCase();
  if (t === "inf" || t === "+inf" || t === "infinity") return Infinity;
  if (t === "-inf" || t === "-infinity") return -Infinity;
  if (t === "nan") return NaN;
  // No two quantifiers can match the same characters, so a failed match is linear.
  if (!/^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?f?$/.test(t)) {
    throw new Error(`'${clip(text)}' is not a number`);
  }
  return Number(t.replace(/f$/, ""));
}

function parseBool(text: string): boolean {
  const t = text.trim().toLowerCase();
  if (t === "true" || t === "1") return true;
  if (t === "false" || t === "0") return false;
  throw new Error(`'${text}' is not a boolean (True/False/1/0)`);
}

/**
 * The items of a bracketed list (`(1, 2)`, `[3]`, `(4,)`, `()`), untrimmed; `undefined` when
 * `text` is not one. A single scan (no backtracking regex), so hostile text costs linear time.
 *
 * @example Splitting a tuple
 * ```ts
 * import assert from "node:assert";
 * import { tupleItems } from "./attrs.ts";
 * assert.deepStrictEqual(tupleItems(" (1, 2,) "), ["1", " 2"]);
 * assert(tupleItems("(1, 2]") === undefined);
 * ```
 */
export function tupleItems(text: string): string[] | undefined {
  const t = text.trim();
  const open = t[0];
  const close = t[t.length - 1];
  if (t.length < 2 || !((open === "(" && close === ")") || (open === "[" && close === "]"))) {
    return undefined;
  }
  let body = t.slice(1, -1).trimEnd();
  if (body.endsWith(",")) body = body.slice(0, -1);
  if (body.trim() === "") return [];
  return body.split(",");
}

function parseTuple(text: string): number[] {
  const t = text.trim();
  if (INT_RE.test(t)) return [parseInt_(t)];
  const items = tupleItems(t);
  if (items === undefined) throw new Error(`'${clip(text)}' is not a tuple of integers`);
  return items.map((part) => {
    if (part.trim() === "None") return -1;
    return parseInt_(part);
  });
}

/** Shortens long text quoted in messages. */
function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function printTuple(v: readonly number[]): string {
  if (v.length === 1) return `(${v[0]},)`;
  return `(${v.join(", ")})`;
}

function jsInt(value: unknown): number {
  if (typeof value === "number" && Number.isSafeInteger(value)) return value;
  if (typeof value === "string") return parseInt_(value);
  throw new Error(`${String(value)} is not an integer`);
}

function make<T, R extends boolean>(
  spec: Omit<AttrSpec<T, R>, "fromJS"> & { fromJS?: (v: unknown) => T },
): AttrSpec<T, R> {
  const fromJS = spec.fromJS ??
    ((v: unknown) => (typeof v === "string" ? spec.parse(v) : v as T));
  return Object.freeze({ ...spec, fromJS });
}

/** Options common to attribute constructors. */
interface IntOpts {
  min?: number;
  max?: number;
}

function checkRange(v: number, o: IntOpts): number {
  if (o.min !== undefined && v < o.min) throw new Error(`${v} is below the minimum ${o.min}`);
  if (o.max !== undefined && v > o.max) throw new Error(`${v} is above the maximum ${o.max}`);
  return v;
}

/** Attribute constructors. */
export const attr = {
  /** A required integer. */
  intRequired(opts: IntOpts = {}): AttrSpec<number, true> {
    return make<number, true>({
      type: "int",
      required: true,
      default: 0,
      parse: (t) => checkRange(parseInt_(t), opts),
      print: String,
      fromJS: (v) => checkRange(jsInt(v), opts),
    });
  },
  /**
   * The number of inputs of a variadic op (`num_args`): required in files, filled by calls
   * from the inputs given (the op names it in `variadic`).
   */
  inputCount(): InputCountSpec {
    return Object.freeze({
      ...attr.intRequired({ min: 1, max: MAX_ARITY }),
      inputCount: true as const,
    });
  },
  /** An integer with a default. */
  int(def: number, opts: IntOpts = {}): AttrSpec<number, false> {
    return make<number, false>({
      type: "int",
      required: false,
      default: def,
      parse: (t) => checkRange(parseInt_(t), opts),
      print: String,
      fromJS: (v) => checkRange(jsInt(v), opts),
    });
  },
  /** An optional integer (`None` when absent). */
  intOrNone(): AttrSpec<number | null, false> {
    return make<number | null, false>({
      type: "int or None",
      required: false,
      default: null,
      parse: (t) => (t.trim() === "None" ? null : parseInt_(t)),
      print: (v) => (v === null ? "None" : String(v)),
      fromJS: (v) => (v === null || v === undefined || v === "None" ? null : jsInt(v)),
    });
  },
  /** A float with a default. */
  float(def: number): AttrSpec<number, false> {
    return make<number, false>({
      type: "float",
      required: false,
      default: def,
      parse: parseFloat_,
      print: pyFloat,
      fromJS: (v) => {
        if (typeof v === "number") return v;
        if (typeof v === "string") return parseFloat_(v);
        throw new Error(`${String(v)} is not a number`);
      },
    });
  },
  /** A required float. */
  floatRequired(): AttrSpec<number, true> {
    const base = attr.float(0);
    return Object.freeze({ ...base, required: true as const });
  },
  /** An optional float (`None` when absent). */
  floatOrNone(): AttrSpec<number | null, false> {
    return make<number | null, false>({
      type: "float or None",
      required: false,
      default: null,
      parse: (t) => (t.trim() === "None" ? null : parseFloat_(t)),
      print: (v) => (v === null ? "None" : pyFloat(v)),
      fromJS: (v) => {
        if (v === null || v === undefined || v === "None") return null;
        if (typeof v === "number") return v;
        if (typeof v === "string") return parseFloat_(v);
        throw new Error(`${String(v)} is not a number`);
      },
    });
  },
  /** A boolean with a default. */
  bool(def: boolean): AttrSpec<boolean, false> {
    return make<boolean, false>({
      type: "bool",
      required: false,
      default: def,
      parse: parseBool,
      print: (v) => (v ? "True" : "False"),
      fromJS: (v) => {
        if (typeof v === "boolean") return v;
        if (v === 0 || v === 1) return v === 1;
        if (typeof v === "string") return parseBool(v);
        throw new Error(`${String(v)} is not a boolean`);
      },
    });
  },
  /** A tuple of integers with a default (`()` unless given). */
  tuple(def: readonly number[] = [], opts: IntOpts = {}): AttrSpec<readonly number[], false> {
    return make<readonly number[], false>({
      type: "tuple of int",
      required: false,
      default: def,
      parse: (t) => parseTuple(t).map((x) => checkRange(x, opts)),
      print: printTuple,
      fromJS: (v) => tupleFromJS(v).map((x) => checkRange(x, opts)),
    });
  },
  /** A required tuple of integers. */
  tupleRequired(opts: IntOpts = {}): AttrSpec<readonly number[], true> {
    return Object.freeze({ ...attr.tuple([], opts), required: true as const });
  },
  /** An optional tuple of integers (`None` when absent). */
  tupleOrNone(): AttrSpec<readonly number[] | null, false> {
    return make<readonly number[] | null, false>({
      type: "tuple of int or None",
      required: false,
      default: null,
      parse: (t) => (t.trim() === "None" ? null : parseTuple(t)),
      print: (v) => (v === null ? "None" : printTuple(v)),
      fromJS: (v) => (v === null || v === undefined || v === "None" ? null : tupleFromJS(v)),
    });
  },
  /** One of a fixed set of names. */
  enumOf<const E extends string>(values: readonly E[], def: E): AttrSpec<E, false> {
    return make<E, false>({
      type: values.join("|"),
      required: false,
      default: def,
      parse: (t) => enumParse(values, t),
      print: String,
      fromJS: (v) => enumParse(values, v),
    });
  },
  /** One of a fixed set of names, required. */
  enumRequired<const E extends string>(values: readonly E[]): AttrSpec<E, true> {
    return Object.freeze({ ...attr.enumOf(values, values[0]), required: true as const });
  },
  /** One of a fixed set of names, or `None`. */
  enumOrNone<const E extends string>(values: readonly E[]): AttrSpec<E | null, false> {
    return make<E | null, false>({
      type: `${values.join("|")}|None`,
      required: false,
      default: null,
      parse: (t) => (t.trim() === "None" ? null : enumParse(values, t)),
      print: (v) => (v === null ? "None" : v),
      fromJS: (v) => (v === null || v === undefined || v === "None" ? null : enumParse(values, v)),
    });
  },
  /** A dtype name (required). */
  dtypeRequired(): AttrSpec<DType, true> {
    return make<DType, true>({
      type: "dtype",
      required: true,
      default: "float32",
      parse: dtypeParse,
      print: String,
      fromJS: dtypeParse,
    });
  },
  /** A dtype name or `None`. */
  dtypeOrNone(): AttrSpec<DType | null, false> {
    return make<DType | null, false>({
      type: "dtype or None",
      required: false,
      default: null,
      parse: (t) => (t.trim() === "None" ? null : dtypeParse(t)),
      print: (v) => (v === null ? "None" : v),
      fromJS: (v) => (v === null || v === undefined || v === "None" ? null : dtypeParse(v)),
    });
  },
  /** Free text (an attribute sigil accepts but does not interpret). */
  string(def = ""): AttrSpec<string, false> {
    return make<string, false>({
      type: "string",
      required: false,
      default: def,
      parse: (t) => t,
      print: (v) => v,
      fromJS: (v) => String(v),
    });
  },
} as const;

function tupleFromJS(v: unknown): number[] {
  if (typeof v === "number") return [jsInt(v)];
  if (typeof v === "string") return parseTuple(v);
  if (Array.isArray(v)) return v.map(jsInt);
  throw new Error(`${String(v)} is not a tuple of integers`);
}

function enumParse<E extends string>(values: readonly E[], v: unknown): E {
  const t = typeof v === "string" ? v.trim() : v;
  if (typeof t === "string" && (values as readonly string[]).includes(t)) return t as E;
  throw new Error(`'${clip(String(v))}' is not one of ${values.join(", ")}`);
}

function dtypeParse(v: unknown): DType {
  const t = typeof v === "string" ? v.trim() : v;
  if (isDType(t)) return t;
  throw new Error(`'${clip(String(v))}' is not a dtype`);
}

/** Whether an attribute key is a hidden key (`__shape__`, `__lr_mult__`, ...). */
export function isHiddenKey(key: string): boolean {
  return key.length > 4 && key.startsWith("__") && key.endsWith("__");
}
