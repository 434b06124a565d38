/**
 * The vision model zoo: MXNet Gluon's image classification models with MXNet's structure and
 * parameter names, so MXNet-trained `.params` files load. Factories (`resnet18_v1()`, ...) and
 * {@link getModel} build synchronously; {@link loadModel} and {@link loadPretrained} load
 * weights asynchronously from a file or URL.
 *
 * @example Build and count parameters
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo, nd } from "../../../mod.ts";
 * const net = modelZoo.vision.resnet18_v1();
 * net.inferShape(nd.zeros([1, 3, 224, 224])); // fills the shapes inferred from the input
 * let n = 0;
 * for (const p of Object.values(net.collectParams())) n += p.shape!.reduce((a, d) => a * d, 1);
 * assert(n === 11699112);
 * ```
 *
 * @module
 */
export * from "./alexnet.ts";
export * from "./densenet.ts";
export * from "./get_model.ts";
export * from "./inception.ts";
export * from "./mobilenet.ts";
export {
  fetchPretrained,
  loadPretrained,
  type ModelOptions,
  type PretrainedOptions,
  type PretrainedSource,
} from "./model_store.ts";
export * from "./resnet.ts";
export * from "./squeezenet.ts";
export * from "./vgg.ts";
