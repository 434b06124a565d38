/**
 * Names in error messages: lists that stay short however large the graph (a ResNet-50 has
 * hundreds of arguments), and the close matches of a misspelled name.
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
