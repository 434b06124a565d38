/**
 * Models by MXNet's names: `getModel("resnet18_v1")` builds, `loadModel(name, { pretrained })`
 * builds and loads weights.
 *
 * Why two functions: MXNet's `get_model(name, pretrained=True)` blocks on a download. Building
 * a model is synchronous here, while reading a file or URL is asynchronous (as all IO in
 * sigil), so the synchronous `getModel` and every factory only build, and the asynchronous
 * `loadModel` builds and then awaits the weights.
 *
 * @module
 */
import { SigilError } from "../../../runtime/errors.ts";
import { closeMatches, orList } from "../../../runtime/names.ts";
import type { HybridBlock } from "../../block.ts";
import type { Value } from "../../context.ts";
import { alexnet } from "./alexnet.ts";
import { densenet121, densenet161, densenet169, densenet201 } from "./densenet.ts";
import { inception_v3 } from "./inception.ts";
import {
  mobilenet0_25,
  mobilenet0_5,
  mobilenet0_75,
  mobilenet1_0,
  mobilenet_v2_0_25,
  mobilenet_v2_0_5,
  mobilenet_v2_0_75,
  mobilenet_v2_1_0,
} from "./mobilenet.ts";
import {
  checkNoPretrained,
  loadPretrained,
  type ModelOptions,
  type PretrainedOptions,
  type PretrainedSource,
} from "./model_store.ts";
import {
  resnet101_v1,
  resnet101_v2,
  resnet152_v1,
  resnet152_v2,
  resnet18_v1,
  resnet18_v2,
  resnet34_v1,
  resnet34_v2,
  resnet50_v1,
  resnet50_v2,
} from "./resnet.ts";
import { squeezenet1_0, squeezenet1_1 } from "./squeezenet.ts";
import { vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn } from "./vgg.ts";

/** A zoo model: a hybrid block with one input and one output (so `call` gives a Tensor). */
export type VisionModel = HybridBlock & { forward(x: Value): Value };

/** A model factory: builds a model (random weights once initialized). */
export type ModelFactory = (options?: ModelOptions) => VisionModel;

const MODELS: Readonly<Record<string, ModelFactory>> = Object.freeze({
  "resnet18_v1": resnet18_v1,
  "resnet34_v1": resnet34_v1,
  "resnet50_v1": resnet50_v1,
  "resnet101_v1": resnet101_v1,
  "resnet152_v1": resnet152_v1,
  "resnet18_v2": resnet18_v2,
  "resnet34_v2": resnet34_v2,
  "resnet50_v2": resnet50_v2,
  "resnet101_v2": resnet101_v2,
  "resnet152_v2": resnet152_v2,
  "vgg11": vgg11,
  "vgg13": vgg13,
  "vgg16": vgg16,
  "vgg19": vgg19,
  "vgg11_bn": vgg11_bn,
  "vgg13_bn": vgg13_bn,
  "vgg16_bn": vgg16_bn,
  "vgg19_bn": vgg19_bn,
  "alexnet": alexnet,
  "densenet121": densenet121,
  "densenet161": densenet161,
  "densenet169": densenet169,
  "densenet201": densenet201,
  "inceptionv3": inception_v3,
  "squeezenet1.0": squeezenet1_0,
  "squeezenet1.1": squeezenet1_1,
  "mobilenet1.0": mobilenet1_0,
  "mobilenet0.75": mobilenet0_75,
  "mobilenet0.5": mobilenet0_5,
  "mobilenet0.25": mobilenet0_25,
  "mobilenetv2_1.0": mobilenet_v2_1_0,
  "mobilenetv2_0.75": mobilenet_v2_0_75,
  "mobilenetv2_0.5": mobilenet_v2_0_5,
  "mobilenetv2_0.25": mobilenet_v2_0_25,
});

/** The factory identifiers (`mobilenet_v2_1_0`) accepted besides MXNet's names. */
const ALIASES: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(
    Object.entries(MODELS).map(([name, f]) => [f.name, name]).filter(([a, n]) => a !== n),
  ),
);

/**
 * The names {@link getModel} accepts, as MXNet's `get_model` spells them, sorted.
 *
 * @example Listing the models
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.modelNames().includes("mobilenetv2_0.25"));
 * ```
 */
export function modelNames(): string[] {
  return Object.keys(MODELS).sort();
}

/**
 * A model name that is not in the zoo. `validNames` lists the names that are.
 *
 * @example Catching an unknown name
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * try {
 *   modelZoo.vision.getModel("resnet19_v1");
 * } catch (e) {
 *   assert(e instanceof modelZoo.vision.UnknownModelError);
 * }
 * ```
 */
export class UnknownModelError extends SigilError {
  /** The name asked for. */
  readonly model: string;
  /** The names the zoo has. */
  readonly validNames: readonly string[];
  /** Creates the error. */
  constructor(model: string, validNames: readonly string[]) {
    const near = closeMatches(model, validNames);
    super(
      `Model ${model} is not supported${
        near.length ? ` (did you mean ${orList(near)}?)` : ""
      }. Available options are\n\t${validNames.join("\n\t")}`,
    );
    this.model = model;
    this.validNames = validNames;
  }
}

function factoryFor(name: string): ModelFactory {
  if (typeof name !== "string") throw new UnknownModelError(String(name), modelNames());
  const key = name.toLowerCase();
  const found = Object.hasOwn(MODELS, key)
    ? MODELS[key]
    : Object.hasOwn(ALIASES, key)
    ? MODELS[ALIASES[key]]
    : undefined;
  if (!found) throw new UnknownModelError(name, modelNames());
  return found;
}

/**
 * Builds a model by MXNet's name (`resnet18_v1`, `vgg16_bn`, `mobilenet1.0`,
 * `mobilenetv2_0.25`, `squeezenet1.1`, `densenet121`, `alexnet`, ...; case-insensitive; the
 * factory identifiers such as `mobilenet_v2_1_0` work too). Weights are not loaded: call
 * `initialize()` for random ones or use {@link loadModel} for pretrained ones.
 *
 * @example Building by name
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const net = modelZoo.vision.getModel("resnet18_v1", { classes: 10 });
 * assert(net.collectParams()["output.weight"].shape!.join() === "10,512");
 * ```
 */
export function getModel(name: string, options: ModelOptions = {}): VisionModel {
  const factory = factoryFor(name);
  checkNoPretrained(name, options);
  return factory(options);
}

/** Options of {@link loadModel}. */
export interface LoadModelOptions extends PretrainedOptions {
  /** Number of output classes (1000); must match the weights. */
  classes?: number;
  /**
   * A `.params` file (path or `file:` URL) or an `http(s):` URL (downloaded once and cached);
   * `false` or absent builds without weights.
   */
  pretrained?: PretrainedSource | false;
}

/**
 * Builds a model by MXNet's name and loads its weights (MXNet's `get_model(name,
 * pretrained=...)`): `pretrained` is a local `.params` file or a URL, cached on disk under
 * `$SIGIL_HOME/models` (or `~/.sigil/models`, or `cacheDir`). Every parameter must be in the
 * file unless `allowMissing`, and the file may hold nothing else unless `ignoreExtra`.
 *
 * @example Saving and loading weights
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo, nd } from "../../../mod.ts";
 * const net = modelZoo.vision.getModel("mobilenetv2_0.25", { classes: 4 });
 * net.initialize();
 * net.inferShape(nd.zeros([1, 3, 32, 32]));
 * const file = await Deno.makeTempFile({ suffix: ".params" });
 * await net.saveParameters(file);
 * const copy = await modelZoo.vision.loadModel("mobilenetv2_0.25", { classes: 4, pretrained: file });
 * assert(copy.collectParams()["output.0.weight"].shape!.join() === "4,1280,1,1");
 * await Deno.remove(file);
 * ```
 */
export async function loadModel(
  name: string,
  options: LoadModelOptions = {},
): Promise<VisionModel> {
  const net = factoryFor(name)({ classes: options.classes });
  if (options.pretrained === undefined || options.pretrained === false) return net;
  return await loadPretrained(net, options.pretrained, options);
}
