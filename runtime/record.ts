/**
 * Records keyed by names that come from files. A name may be any string, `__proto__`,
 * `constructor` and `toString` included: in Node and browsers, `obj[name] = v` on an ordinary
 * object runs the `__proto__` setter instead of storing a key, and reading an absent
 * `constructor` finds `Object.prototype`'s. Records built here store every name as an own key.
 *
 * @module
 */

/**
 * An empty record with no prototype: every string is an ordinary key, and absent keys read
 * `undefined`.
 *
 * @example A name that is a key of Object.prototype
 * ```ts
 * import assert from "node:assert";
 * import { emptyRecord } from "./record.ts";
 * const r = emptyRecord<number>();
 * r["__proto__"] = 1;
 * assert(Object.keys(r).join() === "__proto__" && r["constructor"] === undefined);
 * ```
 */
export function emptyRecord<T>(): Record<string, T> {
  return Object.create(null);
}

/**
 * Stores `value` under `key` as an own enumerable property, never through an inherited
 * setter, in a record that keeps its ordinary prototype (for records users receive).
 *
 * @example Defining `__proto__` as a key
 * ```ts
 * import assert from "node:assert";
 * import { setOwn } from "./record.ts";
 * const r: Record<string, number> = {};
 * setOwn(r, "__proto__", 1);
 * assert(Object.hasOwn(r, "__proto__") && Object.getPrototypeOf(r) === Object.prototype);
 * ```
 */
export function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, {
    value,
    writable: true,
    enumerable: true,
    configurable: true,
  });
}

/**
 * The value under `key` when it is an own key of `record`, else `undefined`.
 *
 * @example An inherited key is absent
 * ```ts
 * import assert from "node:assert";
 * import { getOwn } from "./record.ts";
 * assert(getOwn({ a: 1 }, "a") === 1 && getOwn({ a: 1 }, "constructor") === undefined);
 * ```
 */
export function getOwn<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
