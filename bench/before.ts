/**
 * The builds a bench compares: this checkout's API as "current", and, where `SIGIL_BEFORE`
 * names another checkout's mod.ts (a path or URL), that one as "before", so that both run in
 * the same process:
 *
 *   git worktree add --detach /tmp/before <commit>
 *   SIGIL_BEFORE=/tmp/before/mod.ts deno bench -A bench/<file>.ts
 *
 * @module
 */
import type * as Sigil from "../mod.ts";

/** The API of a sigil checkout. */
export type Api = typeof Sigil;

/** `[["current", current]]`, plus `["before", ...]` when `SIGIL_BEFORE` is set. */
export async function buildsToCompare(current: Api): Promise<[string, Api][]> {
  const apis: [string, Api][] = [["current", current]];
  const before = Deno.env.get("SIGIL_BEFORE");
  if (before) {
    const url = before.includes("://") ? before : new URL(`file://${before}`).href;
    apis.push(["before", await import(url) as Api]);
  }
  return apis;
}
