/**
 * Typed errors. Every error sigil raises on bad input is a {@link SigilError}; the subclass says
 * what kind of input was wrong, and the message names the node, file or byte offset.
 *
 * @module
 */

/**
 * Base class of every error sigil raises for bad input or unsupported requests.
 *
 * @example Catching any sigil error
 * ```ts
 * import assert from "node:assert";
 * import { nd, SigilError } from "../mod.ts";
 * try {
 *   nd.array([1, 2, 3], { shape: [2, 2] });
 * } catch (e) {
 *   assert(e instanceof SigilError);
 * }
 * ```
 */
export class SigilError extends Error {
  /** Creates an error with the given message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A file or JSON document does not follow the expected format. */
export class FormatError extends SigilError {
  /** Byte or character offset where the problem was found, when known. */
  readonly offset: number | undefined;
  /** Creates a format error, optionally at a byte or character offset. */
  constructor(message: string, offset?: number, options?: ErrorOptions) {
    super(offset === undefined ? message : `${message} (at offset ${offset})`, options);
    this.offset = offset;
  }
}

/** Shapes do not agree with an operator's rule, or a shape is malformed. */
export class ShapeError extends SigilError {}

/**
 * A tensor would exceed the memory budget (`setMaxTensorBytes`): a shape computed from
 * attributes (padding, repeats, a one-hot depth, a weight's `input_dim`) or declared by a file
 * is larger than any engine is allowed to allocate. Raised by shape inference, before anything
 * is allocated.
 */
export class TensorSizeError extends ShapeError {}

/** A data type is unknown or does not agree with an operator's rule. */
export class DTypeError extends SigilError {}

/** An operator name is not in the registry. */
export class UnknownOpError extends SigilError {}

/** An operator attribute is missing, unknown, or does not parse. */
export class AttributeError extends SigilError {}

/** A graph is malformed: a dangling or forward input reference, a cycle, a bad output index. */
export class GraphError extends SigilError {}

/** A backend cannot run a request (unsupported device, op or dtype). */
export class BackendError extends SigilError {}

/**
 * A file or URL cannot be read or written: it does not exist, is a directory, the path is
 * malformed, access is denied or the server refused. The message and {@link IOError.path} name
 * the path or URL.
 *
 * @example A missing file
 * ```ts
 * import assert from "node:assert";
 * import { IOError, loadParams } from "../mod.ts";
 * await assert.rejects(loadParams("missing.params"), (e) =>
 *   e instanceof IOError && e.path === "missing.params");
 * ```
 */
export class IOError extends SigilError {
  /** The path or URL that failed. */
  readonly path: string;
  /** Creates an error about `path`. */
  constructor(message: string, path: string, options?: ErrorOptions) {
    super(message, options);
    this.path = path;
  }
}

/**
 * A function was called with a bad argument: the wrong kind of value, a name that is not an
 * input, a size out of range. The message and {@link ArgumentError.argument} name the argument.
 *
 * @example A name that is not an input
 * ```ts
 * import assert from "node:assert";
 * import { ArgumentError, sym } from "../mod.ts";
 * const y = sym.exp(sym.var("data"));
 * assert.throws(() => y.inferShape({ dta: [2] }), (e) =>
 *   e instanceof ArgumentError && e.argument === "dta" && /did you mean 'data'/.test(e.message));
 * ```
 */
export class ArgumentError extends SigilError {
  /** The argument (or the name in a record of arguments) that is wrong. */
  readonly argument: string;
  /** Creates an error about `argument`. */
  constructor(message: string, argument: string, options?: ErrorOptions) {
    super(message, options);
    this.argument = argument;
  }
}

/**
 * An engine has no kernel for an op with these attributes, shapes or dtypes. The only error
 * that may send work to another engine (the reference interpreter), and only visibly: the
 * program lists the node in its `fallbacks` and a warning names it once.
 */
export class UnsupportedError extends BackendError {}

/**
 * A GPU device failed a request: it was lost (destroyed, driver reset), ran out of memory, or
 * refused a command. {@link GpuDeviceError.node} and {@link GpuDeviceError.op} name the graph
 * node whose buffer or dispatch it was, where one is known.
 */
export class GpuDeviceError extends BackendError {
  /** What failed: the device was lost, memory ran out, or a command was invalid. */
  readonly kind: "lost" | "out-of-memory" | "validation";
  /** The node whose work failed ("" when none is known). */
  readonly node: string;
  /** Its op ("" when none is known). */
  readonly op: string;
  /** Creates an error of `kind` about `node` (an `op` node). */
  constructor(
    message: string,
    kind: GpuDeviceError["kind"],
    node = "",
    op = "",
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.kind = kind;
    this.node = node;
    this.op = op;
  }
}

/**
 * A synchronous read of a tensor whose values live on a device (a GPU buffer): read them with
 * `await t.data()`, or move the tensor with `await t.toDevice(cpu())`.
 *
 * @example Reading a GPU tensor
 * ```ts
 * import assert from "node:assert";
 * import { gpu, ResidencyError, Tensor } from "../mod.ts";
 * const held = { owner: {}, read: () => Promise.resolve(new Float32Array([1, 2])), dispose() {} };
 * const t = new Tensor(held, [2], "float32", gpu());
 * assert.throws(() => t.dataSync(), ResidencyError);
 * assert.deepStrictEqual(await t.data(), new Float32Array([1, 2]));
 * ```
 */
export class ResidencyError extends SigilError {}
