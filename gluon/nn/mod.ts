/**
 * Gluon layers (`nn`).
 *
 * @module
 */
export * from "./basic_layers.ts";
export * from "./activations.ts";
export * from "./conv_layers.ts";
