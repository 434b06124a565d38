/**
 * Warnings about likely mistakes in block code, printed with `console.warn` once per owner and
 * message (as Python's default warning filter prints one warning once per place it is raised).
 *
 * @module
 */

const seen = new WeakMap<object, Set<string>>();

/** Prints `message` with `console.warn` unless it was already printed for `owner`. */
export function warnOnce(owner: object, message: string): void {
  let messages = seen.get(owner);
  if (!messages) seen.set(owner, messages = new Set());
  if (messages.has(message)) return;
  messages.add(message);
  console.warn(message);
}
