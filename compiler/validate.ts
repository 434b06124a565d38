/**
 * Checks of what users hand a graph before it runs, in one place: the bindings record of
 * `Symbol.eval` and hybridized calls (every key an input, every input bound, every value a
 * tensor), the input shapes given to a compiler, and the tensors given to a compiled program's
 * `run`. Messages name the wrong argument and its close matches, and list at most a handful of
 * a large graph's inputs.
 *
 * @module
 */
import { ArgumentError, ShapeError } from "../runtime/errors.ts";
import { describeValue, didYouMean, listNames } from "../runtime/names.ts";
import { formatShape, shapeProblem } from "../runtime/shape.ts";
import { Tensor } from "../runtime/tensor.ts";
import type { Symbol } from "./symbol.ts";

/**
 * Checks the bindings `Symbol.eval` (or another entry point, named by `where`) was given:
 * a plain record whose keys are all inputs of `symbol`, binding every input to a
 * {@link Tensor}. Throws an {@link ArgumentError} naming the first wrong name or value.
 *
 * @example A misspelled input
 * ```ts
 * import assert from "node:assert";
 * import { nd, sym } from "../mod.ts";
 * import { checkBindings } from "./validate.ts";
 * const y = sym.exp(sym.var("data"));
 * assert.throws(() => checkBindings(y, { dta: nd.zeros([1]) }), /'dta' is not an input .* did you mean 'data'/);
 * checkBindings(y, { data: nd.zeros([1]) });
 * ```
 */
export function checkBindings(symbol: Symbol, bindings: unknown, where = "eval"): void {
  const inputs = symbol.listInputs();
  if (
    bindings === null || typeof bindings !== "object" || Array.isArray(bindings) ||
    bindings instanceof Tensor || ArrayBuffer.isView(bindings) || bindings instanceof Map
  ) {
    throw new ArgumentError(
      `${where}: bindings must be a record of tensors by input name (inputs: ${
        listNames(inputs)
      }), got ${describeValue(bindings)}`,
      "bindings",
    );
  }
  const record = bindings as Readonly<Record<string, unknown>>;
  const known = new Set(inputs);
  const given = Object.keys(record);
  for (const k of given) {
    if (!known.has(k)) {
      throw new ArgumentError(
        `${where}: '${k}' is not an input of the graph${
          // Unbound inputs first: the name meant is usually one of them.
          didYouMean(k, inputs.filter((n) => !Object.hasOwn(record, n))) ||
          didYouMean(k, inputs)} (inputs: ${listNames(inputs)})`,
        k,
      );
    }
  }
  for (const name of inputs) {
    if (!Object.hasOwn(record, name)) {
      const unbound = inputs.filter((n) => !Object.hasOwn(record, n));
      throw new ArgumentError(
        `${where}: no tensor bound to input '${name}'${
          unbound.length > 1 ? ` (${unbound.length} inputs unbound: ${listNames(unbound)})` : ""
        }`,
        name,
      );
    }
    if (!(record[name] instanceof Tensor)) {
      throw new ArgumentError(
        `${where}: input '${name}' must be a Tensor, got ${describeValue(record[name])}`,
        name,
      );
    }
  }
}

/** A shape given by a user for a compile: known dimensions only. */
function checkGivenShape(shape: unknown, what: string): void {
  const problem = shapeProblem(shape);
  if (problem !== undefined) throw new ShapeError(`${what} ${problem}`);
}

/**
 * Checks what a compiler (`compileWasm`) is handed: a symbol, a record of parameter tensors and
 * a record of input shapes, both keyed by inputs of the graph, each shape an array of
 * non-negative integer dimensions.
 *
 * @example A shape for a name that is not an input
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../mod.ts";
 * import { checkCompileArgs } from "./validate.ts";
 * const y = sym.exp(sym.var("data"));
 * assert.throws(() => checkCompileArgs(y, {}, { dta: [1, 3] }, "compileWasm"), /did you mean 'data'/);
 * ```
 */
export function checkCompileArgs(
  symbol: Symbol,
  params: unknown,
  shapes: unknown,
  where: string,
): void {
  if (typeof (symbol as { listInputs?: unknown } | null)?.listInputs !== "function") {
    throw new ArgumentError(`${where}: expected a Symbol, got ${describeValue(symbol)}`, "symbol");
  }
  const inputs = symbol.listInputs();
  const record = (value: unknown, argument: string, what: string) => {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new ArgumentError(
        `${where}: ${what} must be a record by input name, got ${describeValue(value)}`,
        argument,
      );
    }
    for (const name of Object.keys(value)) {
      if (!inputs.includes(name)) {
        throw new ArgumentError(
          `${where}: ${what} name '${name}', which is not an input of the graph${
            didYouMean(name, inputs)
          } (inputs: ${listNames(inputs)})`,
          name,
        );
      }
    }
    return value as Readonly<Record<string, unknown>>;
  };
  for (const [name, t] of Object.entries(record(params, "params", "the parameters"))) {
    if (!(t instanceof Tensor)) {
      throw new ArgumentError(
        `${where}: parameter '${name}' must be a Tensor, got ${describeValue(t)}`,
        name,
      );
    }
  }
  for (const [name, shape] of Object.entries(record(shapes, "inputShapes", "the input shapes"))) {
    checkGivenShape(shape, `${where}: the shape of '${name}'`);
  }
}

/**
 * Checks the tensors handed to a compiled program's `run`: a record holding, for every input
 * the program reads, a {@link Tensor} of exactly the compiled shape (a tensor of the same size
 * but another shape is refused, not reinterpreted); other keys must be inputs of the source
 * graph (`graphInputs`: ones the compiler folded away may still be passed).
 */
export function checkRunInputs(
  given: unknown,
  expected: Readonly<Record<string, { readonly shape: readonly number[] }>>,
  graphInputs: readonly string[],
  where: string,
): void {
  const needed = Object.keys(expected);
  if (
    given === null || typeof given !== "object" || Array.isArray(given) ||
    given instanceof Tensor || ArrayBuffer.isView(given) || given instanceof Map
  ) {
    throw new ArgumentError(
      `${where}: inputs must be a record of tensors by input name (${listNames(needed)}), got ${
        describeValue(given)
      }${ArrayBuffer.isView(given) ? "; runRaw takes float32 arrays by name" : ""}`,
      "inputs",
    );
  }
  const record = given as Readonly<Record<string, unknown>>;
  for (const k of Object.keys(record)) {
    if (!Object.hasOwn(expected, k) && !graphInputs.includes(k)) {
      throw new ArgumentError(
        `${where}: '${k}' is not an input of the graph${didYouMean(k, needed)} (inputs: ${
          listNames(needed)
        })`,
        k,
      );
    }
  }
  for (const [name, { shape }] of Object.entries(expected)) {
    const t = record[name];
    if (!Object.hasOwn(record, name)) {
      throw new ArgumentError(`${where}: no tensor for input '${name}'`, name);
    }
    if (!(t instanceof Tensor)) {
      throw new ArgumentError(
        `${where}: input '${name}' must be a Tensor, got ${describeValue(t)}${
          ArrayBuffer.isView(t) ? " (runRaw takes float32 arrays)" : ""
        }`,
        name,
      );
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ShapeError(
        `${where}: input '${name}' has shape ${
          formatShape(t.shape)
        }, but the program was compiled for ${formatShape(shape)}`,
      );
    }
  }
}
