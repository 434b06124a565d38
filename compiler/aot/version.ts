/**
 * The library version artifacts record (kept equal to deno.json's `version` by a test).
 *
 * @module
 */

/** The sigil version. */
export const SIGIL_VERSION = "0.1.0";
