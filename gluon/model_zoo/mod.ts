/**
 * Gluon's model zoo: pre-defined models by family (`vision`).
 *
 * @example A model by MXNet's name
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../mod.ts";
 * const net = modelZoo.vision.getModel("squeezenet1.1");
 * assert(net.constructor.name === "SqueezeNet");
 * ```
 *
 * @module
 */
export * as vision from "./vision/mod.ts";
