/**
 * Applying an op: attribute parsing and normalization, running shape and dtype rules for one
 * node with errors that name it, and eager (tensor) calls.
 *
 * @module
 */
import type { DType } from "../runtime/dtype.ts";
import { AttributeError, DTypeError, ShapeError, SigilError } from "../runtime/errors.ts";
import { checkTensorBudget } from "../runtime/limits.ts";
import { checkShape, formatShape, isKnownShape } from "../runtime/shape.ts";
import { Tensor } from "../runtime/tensor.ts";
import { type Attrs, type AttrSchema, isHiddenKey } from "./attrs.ts";
import { type AnyOpDef, mergeShapes, type PartialShape } from "./op.ts";
import type { Engine } from "../compiler/engine.ts";

/** Parsed attributes of some op. */
// deno-lint-ignore no-explicit-any
export type AnyAttrs = Attrs<any>;

/**
 * Parses MXNet string attributes (hidden `__x__` keys are skipped). Unknown keys, missing
 * required keys and values that do not parse raise {@link AttributeError} naming `where`.
 */
export function parseAttrs(
  op: AnyOpDef,
  raw: Readonly<Record<string, string>>,
  where: string,
): AnyAttrs {
  const out: Record<string, unknown> = {};
  for (const [key, text] of Object.entries(raw)) {
    if (isHiddenKey(key)) continue;
    const spec = Object.hasOwn(op.attrs, key) ? op.attrs[key] : undefined;
    if (!spec) {
      throw new AttributeError(
        `${where}: unknown attribute '${key}' for op ${op.name}; known: ${
          Object.keys(op.attrs).join(", ") || "none"
        }`,
      );
    }
    if (typeof text !== "string") {
      throw new AttributeError(`${where}: attribute '${key}' must be a string, got ${typeof text}`);
    }
    try {
      out[key] = spec.parse(text);
    } catch (e) {
      throw new AttributeError(
        `${where}: attribute '${key}' of ${op.name} (${spec.type}): ${(e as Error).message}`,
      );
    }
  }
  return complete(op, out, where);
}

function complete(op: AnyOpDef, given: Record<string, unknown>, where: string): AnyAttrs {
  for (const [key, spec] of Object.entries(op.attrs as AttrSchema)) {
    if (Object.hasOwn(given, key)) continue;
    if (spec.required) {
      throw new AttributeError(`${where}: op ${op.name} needs attribute '${key}' (${spec.type})`);
    }
    given[key] = spec.default;
  }
  return Object.freeze(given);
}

/**
 * Validates JavaScript attribute values given to an op call and returns both the parsed
 * attributes and their MXNet string forms (only the keys given, as MXNet 1.x records them).
 */
export function normalizeAttrs(
  op: AnyOpDef,
  given: Readonly<Record<string, unknown>>,
  where: string,
): { attrs: AnyAttrs; raw: Record<string, string> } {
  const parsed: Record<string, unknown> = {};
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(given)) {
    if (value === undefined) continue;
    const spec = Object.hasOwn(op.attrs, key) ? op.attrs[key] : undefined;
    if (!spec) {
      throw new AttributeError(
        `${where}: unknown attribute '${key}' for op ${op.name}; known: ${
          Object.keys(op.attrs).join(", ") || "none"
        }`,
      );
    }
    try {
      parsed[key] = spec.fromJS(value);
    } catch (e) {
      throw new AttributeError(
        `${where}: attribute '${key}' of ${op.name} (${spec.type}): ${(e as Error).message}`,
      );
    }
    raw[key] = typeof value === "string" ? value : spec.print(parsed[key]);
  }
  return { attrs: complete(op, parsed, where), raw };
}

function rethrow(e: unknown, where: string): never {
  if (e instanceof SigilError) {
    const Ctor = e.constructor as new (m: string) => SigilError;
    throw new Ctor(`${where}: ${e.message}`);
  }
  throw new ShapeError(`${where}: ${(e as Error)?.message ?? String(e)}`);
}

/**
 * Runs an op's shape rule for one node and merges its answer with what is known. Returns
 * refined input and output shapes; a conflict raises {@link ShapeError} naming the node and
 * the input.
 */
export function applyShapeRule(
  op: AnyOpDef,
  attrs: AnyAttrs,
  inputs: readonly PartialShape[],
  outputs: readonly PartialShape[],
  where: string,
): { inputs: PartialShape[]; outputs: PartialShape[] } {
  let res;
  try {
    res = op.inferShape(inputs, attrs, outputs);
  } catch (e) {
    rethrow(e, where);
  }
  const names = op.inputNames(attrs);
  const ins = inputs.map((s, i) => {
    try {
      return mergeShapes(s, res.inputs?.[i], "given and expected shapes");
    } catch {
      const others = inputs.flatMap((o, k) =>
        k !== i && o ? [`'${names[k] ?? k}' ${formatShape(o)}`] : []
      );
      throw new ShapeError(
        `${where}: input '${names[i] ?? i}' has shape ${formatShape(s)} but ${op.name} expects ${
          formatShape(res.inputs?.[i])
        }${others.length ? ` with ${others.join(", ")}` : ""}`,
      );
    }
  });
  const outs = outputs.map((s, i) => {
    try {
      return mergeShapes(s, res.outputs[i], "output shapes");
    } catch {
      throw new ShapeError(
        `${where}: output ${i} has shape ${formatShape(s)} but ${op.name} gives ${
          formatShape(res.outputs[i])
        }`,
      );
    }
  });
  // Shapes from attributes can be far larger than the file that asks for them: refused here,
  // before any engine allocates.
  ins.forEach((s, i) => checkTensorBudget(s, `${where}: input '${names[i] ?? i}'`));
  outs.forEach((s, i) => checkTensorBudget(s, `${where}: output ${i}`));
  return { inputs: ins, outputs: outs };
}

/** Runs an op's dtype rule for one node; a conflict raises {@link DTypeError} naming it. */
export function applyTypeRule(
  op: AnyOpDef,
  attrs: AnyAttrs,
  inputs: readonly (DType | undefined)[],
  outputs: readonly (DType | undefined)[],
  where: string,
): { inputs: (DType | undefined)[]; outputs: (DType | undefined)[] } {
  let res;
  try {
    res = op.inferType(inputs, attrs, outputs);
  } catch (e) {
    rethrow(e, where);
  }
  const names = op.inputNames(attrs);
  const merge = (a: DType | undefined, b: DType | undefined, what: string) => {
    if (a !== undefined && b !== undefined && a !== b) {
      throw new DTypeError(`${where}: ${what} has dtype ${a} but ${op.name} expects ${b}`);
    }
    return a ?? b;
  };
  return {
    inputs: inputs.map((t, i) => merge(t, res.inputs?.[i], `input '${names[i] ?? i}'`)),
    outputs: outputs.map((t, i) => merge(t, res.outputs[i], `output ${i}`)),
  };
}

/** Number of outputs (hidden ones included) of an op with given attributes. */
export function numOutputs(op: AnyOpDef, attrs: AnyAttrs): number {
  return op.outputNames(attrs).length;
}

/**
 * Runs an op eagerly on tensors: validates attributes, shapes and dtypes with the op's own
 * rules, then hands the call to `engine` (ops/nd.ts resolves it: the call's `engine` option,
 * else the scope's or the device's default). Returns all outputs (hidden ones included) and
 * the parsed attributes.
 */
export function callEager(
  op: AnyOpDef,
  inputs: readonly Tensor[],
  given: Readonly<Record<string, unknown>>,
  engine: Engine,
): { outputs: Tensor[]; attrs: AnyAttrs } {
  const where = `nd.${op.name}`;
  if (op.variadic && given[op.variadic] === undefined) {
    given = { ...given, [op.variadic]: inputs.length };
  }
  const { attrs } = normalizeAttrs(op, given, where);
  const names = op.inputNames(attrs);
  if (inputs.length !== names.length) {
    throw new SigilError(
      `${where}: expected ${names.length} inputs (${names.join(", ")}), got ${inputs.length}`,
    );
  }
  inputs.forEach((t, i) => {
    if (!(t instanceof Tensor)) {
      throw new SigilError(`${where}: input '${names[i]}' is not a Tensor`);
    }
  });
  const n = numOutputs(op, attrs);
  const shapes = applyShapeRule(
    op,
    attrs,
    inputs.map((t) => t.shape),
    new Array(n).fill(undefined),
    where,
  );
  const types = applyTypeRule(
    op,
    attrs,
    inputs.map((t) => t.dtype),
    new Array(n).fill(undefined),
    where,
  );
  const outShapes = shapes.outputs.map((s, i) => {
    if (!isKnownShape(s)) {
      throw new ShapeError(`${where}: could not infer the shape of output ${i}`);
    }
    return checkShape(s, `${where}: output ${i}`);
  });
  const outTypes = types.outputs.map((t, i) => {
    if (t === undefined) throw new DTypeError(`${where}: could not infer the dtype of output ${i}`);
    return t;
  });
  return { outputs: engine.callOp({ op, inputs, given, attrs, outShapes, outTypes }), attrs };
}

/** Splits `(t1, t2, ..., attrs?)` call arguments (the last plain object is the attributes). */
export function splitArgs<T>(
  args: readonly unknown[],
  isValue: (x: unknown) => x is T,
): { values: T[]; attrs: Record<string, unknown> } {
  let attrs: Record<string, unknown> = {};
  let values = args;
  const last = args[args.length - 1];
  if (
    args.length && !isValue(last) && typeof last === "object" && last !== null &&
    !Array.isArray(last)
  ) {
    attrs = last as Record<string, unknown>;
    values = args.slice(0, -1);
  }
  return { values: values as T[], attrs };
}
