/**
 * Names and values in error messages: lists that stay short however large the graph (a
 * ResNet-50 has hundreds of arguments), the close matches of a misspelled name, and what kind of
 * value an argument got.
 *
 * @module
 */

/** How many names a message lists before it counts the rest. */
export const LISTED_NAMES = 6;

/**
 * Quotes (unless `quote` is false) the first `max` names and counts the rest:
 * `'a', 'b', 'c' and 120 more`, or `none`.
 *
 * @example A long list
 * ```ts
 * import assert from "node:assert";
 * import { listNames } from "./names.ts";
 * assert.strictEqual(listNames(["a", "b", "c"], 2), "'a', 'b' and 1 more");
 * assert.strictEqual(listNames([]), "none");
 * ```
 */
export function listNames(
  names: Iterable<string>,
  max: number = LISTED_NAMES,
  quote = true,
): string {
  const all = [...names];
  if (all.length === 0) return "none";
  const shown = all.slice(0, max).map((n) => (quote ? `'${n}'` : n)).join(", ");
  return all.length > max ? `${shown} and ${all.length - max} more` : shown;
}

/**
 * Levenshtein distance between two strings, or `cap + 1` once it exceeds `cap` (so comparing a
 * name with a long list stays cheap).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { editDistance } from "./names.ts";
 * assert.strictEqual(editDistance("kitten", "sitting"), 3);
 * ```
 */
export function editDistance(a: string, b: string, cap = Infinity): number {
  if (Math.abs(a.length - b.length) > cap) return cap + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(
        prev[j] + 1,
        row[j - 1] + 1,
        prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      row.push(v);
      best = Math.min(best, v);
    }
    if (best > cap) return cap + 1;
    prev = row;
  }
  return prev[b.length];
}

/**
 * The candidates closest to `name` (case-insensitive edit distance at most a third of its
 * length, at least 2; or starting with `name`, when it has 3 characters or more), nearest
 * first, at most `max`.
 *
 * @example A typo
 * ```ts
 * import assert from "node:assert";
 * import { closeMatches } from "./names.ts";
 * assert.deepStrictEqual(closeMatches("dta", ["data", "conv0_weight", "label"]), ["data"]);
 * ```
 */
export function closeMatches(name: string, candidates: Iterable<string>, max = 3): string[] {
  const key = name.toLowerCase();
  const cap = Math.max(2, Math.floor(key.length / 3));
  const scored: [number, string][] = [];
  for (const c of candidates) {
    const lower = c.toLowerCase();
    const d = editDistance(key, lower, cap);
    if (d <= cap) scored.push([d, c]);
    // A name cut short ("resnet50" for "resnet50_v1") is close however much is missing.
    else if (key.length >= 3 && lower.startsWith(key)) scored.push([cap + 1, c]);
  }
  scored.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return scored.slice(0, max).map(([, c]) => c);
}

/** `'a'`, `'a' or 'b'`, `'a', 'b' or 'c'`. */
export function orList(names: readonly string[]): string {
  const quoted = names.map((n) => `'${n}'`);
  const last = quoted.pop() ?? "";
  return quoted.length ? `${quoted.join(", ")} or ${last}` : last;
}

/**
 * `; did you mean 'x' or 'y'?` (the {@link closeMatches} of `name`), or an empty string when
 * nothing is close.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { didYouMean } from "./names.ts";
 * assert.strictEqual(didYouMean("dat", ["data", "date", "label"]), "; did you mean 'data' or 'date'?");
 * ```
 */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const near = closeMatches(name, candidates);
  return near.length ? `; did you mean ${orList(near)}?` : "";
}

/**
 * What a value is, for messages: `null`, `an array`, `a Float32Array`, `a Tensor`, `the bigint
 * 3n`, `a string`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { describeValue } from "./names.ts";
 * assert.strictEqual(describeValue(new Float32Array(2)), "a Float32Array");
 * assert.strictEqual(describeValue(null), "null");
 * ```
 */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "bigint") return `the bigint ${v}n`;
  if (typeof v === "object" || typeof v === "function") {
    const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
    if (typeof v === "function") return "a function";
    return typeof name === "string" && name !== "" && name !== "Object"
      ? `${/^(?:[AEIO]|Un)/.test(name) ? "an" : "a"} ${name}`
      : "an object";
  }
  return `a ${typeof v}`;
}

/**
 * A value as a message shows it: JSON where it has a JSON form (bigints written `2n`), clipped
 * to `max` characters; never throws (cycles, bigints, symbols).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { showValue } from "./names.ts";
 * assert.strictEqual(showValue([3n, 3]), "[3n,3]");
 * assert.strictEqual(showValue("x"), '"x"');
 * ```
 */
export function showValue(v: unknown, max = 80): string {
  let text: string;
  try {
    text = JSON.stringify(
      v,
      (_k, x) => (typeof x === "bigint" ? `\u0000${x}n\u0000` : x),
    )?.replace(/"\\u0000(-?\d+n)\\u0000"/g, "$1") ?? String(v);
  } catch {
    text = describeValue(v);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
