/**
 * Ahead-of-time compilation (`@sigil/sigil/aot`): a model compiled for fixed input shapes
 * into one self-contained ES module (plus its `.d.ts` and weight files) that imports nothing
 * and runs in Deno, Node and browsers. Kept apart from the main entry point because it brings
 * esbuild-wasm (`npm:esbuild-wasm`) to minify the module.
 *
 * @example Compile, write, load and run
 * ```ts
 * import assert from "node:assert";
 * import { nd, sym } from "../../mod.ts";
 * import { compile } from "./mod.ts";
 * const y = sym.Activation(sym.var("data"), { act_type: "relu" });
 * const artifact = await compile({ symbol: y }, { inputs: { data: [1, 4] }, minify: false });
 * const dir = await Deno.makeTempDir();
 * await artifact.write(dir);
 * const { load, metadata } = await import(`file://${dir}/model.js`);
 * assert.deepStrictEqual(metadata.inputs[0].shape, [1, 4]);
 * const model = await load();
 * const out = model.run({ data: new Float32Array([-1, 2, -3, 4]) });
 * assert.deepStrictEqual(Object.values(out)[0], new Float32Array([0, 2, 0, 4]));
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export {
  type AotInput,
  type AotModel,
  type AotOptions,
  type Artifact,
  type ArtifactFile,
  compile,
} from "./compile.ts";
export { AotUnsupportedError, type UnsupportedNode } from "./wasm_target.ts";
export type {
  AotProgress,
  AotTarget,
  BuiltVariant,
  TargetBuild,
  TargetRequest,
  WeightPool,
} from "./target.ts";
export { DEFAULT_GPU_LIMITS } from "./webgpu_target.ts";
export type {
  CopyStepSpec,
  DerivedSpec,
  GpuProgramSpec,
  GpuSpec,
  GpuStepSpec,
  KernelStepSpec,
  Manifest,
  ProgramSpec,
  SplitStepSpec,
  StepSpec,
  TensorSpec,
  VariantSpec,
} from "./manifest.ts";
export type {
  ArtifactExports,
  ArtifactLoadOptions,
  ArtifactModel,
  ArtifactModelInfo,
  WeightSource,
} from "./runtime.ts";
export { SIGIL_VERSION } from "./version.ts";
