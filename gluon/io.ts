/**
 * Loading parameter values into blocks (MXNet's `load_dict` rules: missing and extra names,
 * shape completion, dtype casting) and choosing what to save.
 *
 * @module
 */
import { didYouMean, listNames } from "../runtime/names.ts";
import type { DType } from "../runtime/dtype.ts";
import type { Device } from "../runtime/device.ts";
import { DTypeError, ShapeError, SigilError } from "../runtime/errors.ts";
import { formatShape } from "../runtime/shape.ts";
import { Tensor } from "../runtime/tensor.ts";
import { castTensor, type Parameter } from "./parameter.ts";

/** Options of `loadParameters` / `loadDict`. */
export interface LoadOptions {
  /** Device for the loaded data. */
  device?: Device;
  /** Allow parameters absent from the file (they keep their values). */
  allowMissing?: boolean;
  /** Allow names in the file that the block does not have. */
  ignoreExtra?: boolean;
  /** Convert dtypes that differ instead of failing. */
  castDtype?: boolean;
  /** With castDtype: keep the parameter's dtype (`current`) or take the file's (`saved`). */
  dtypeSource?: "current" | "saved";
}

/** Strips MXNet's `arg:` / `aux:` key prefixes. */
export function stripPrefix(name: string): string {
  return name.startsWith("arg:") || name.startsWith("aux:") ? name.slice(4) : name;
}

/**
 * Loads named tensors into parameters with MXNet's rules. `where` names the source in
 * messages (a file name).
 */
export function loadInto(
  params: Readonly<Record<string, Parameter>>,
  record: Readonly<Record<string, Tensor>>,
  options: LoadOptions,
  where: string,
): void {
  const values = new Map<string, Tensor>();
  for (const [key, t] of Object.entries(record)) {
    if (!(t instanceof Tensor)) throw new SigilError(`${where}: '${key}' is not a Tensor`);
    const name = stripPrefix(key);
    if (values.has(name)) throw new SigilError(`${where}: parameter '${name}' appears twice`);
    values.set(name, t);
  }
  const names = Object.keys(params);
  if (!options.allowMissing) {
    const found = new Set<Parameter>();
    for (const n of names) if (values.has(n)) found.add(params[n]);
    for (const n of names) {
      if (!found.has(params[n])) {
        throw new SigilError(
          `Parameter '${n}' is missing in '${where}'${
            didYouMean(n, values.keys())
          }, which contains parameters: ${
            listNames(values.keys())
          }. Set allowMissing: true to ignore missing parameters.`,
        );
      }
    }
  }
  if (!options.ignoreExtra) {
    for (const n of values.keys()) {
      if (!Object.hasOwn(params, n)) {
        throw new SigilError(
          `Parameter '${n}' loaded from '${where}' is not present in the block${
            didYouMean(n, names)
          }, which contains parameters: ${listNames(names)}. Set ignoreExtra: true to ignore.`,
        );
      }
    }
  }
  for (const n of names) {
    const t = values.get(n);
    if (!t) continue;
    loadParam(params[n], n, t, options, where);
  }
}

function loadParam(
  p: Parameter,
  name: string,
  t: Tensor,
  options: LoadOptions,
  where: string,
): void {
  const shape = p.shape;
  if (shape && (shape.length !== t.ndim || shape.some((d, i) => d >= 0 && d !== t.shape[i]))) {
    throw new ShapeError(
      `Failed loading Parameter '${name}' from '${where}': shape incompatible, expected ${
        formatShape(shape)
      } vs saved ${formatShape(t.shape)}`,
    );
  }
  let data = t;
  if (t.dtype !== p.dtype) {
    if (!options.castDtype) {
      throw new DTypeError(
        `Failed loading Parameter '${name}' from '${where}': dtype incompatible, expected ${p.dtype} vs saved ${t.dtype}. Set castDtype: true to cast it.`,
      );
    }
    if (options.dtypeSource === "saved") p.cast(t.dtype as DType);
    else data = castTensor(t, p.dtype);
  }
  if (options.device) p.resetDevice(options.device);
  p.setData(data);
}

/**
 * The `[name, tensor]` pairs to save: every structural name, or with `deduplicate` one name
 * per shared Parameter (the last one, as MXNet keeps).
 */
export function entriesToSave(
  params: Readonly<Record<string, Parameter>>,
  deduplicate: boolean,
): [string, Tensor][] {
  let names = Object.keys(params);
  if (deduplicate) {
    const last = new Map<Parameter, string>();
    for (const n of names) last.set(params[n], n);
    names = names.filter((n) => last.get(params[n]) === n);
  }
  // Loading strips one `arg:`/`aux:` prefix (as MXNet does), so a name that begins with one
  // is saved with another in front: it loads back as it was, in sigil and in MXNet.
  return names.map((n) => [hasPrefix(n) ? `arg:${n}` : n, params[n].data()]);
}

function hasPrefix(name: string): boolean {
  return name.startsWith("arg:") || name.startsWith("aux:");
}
