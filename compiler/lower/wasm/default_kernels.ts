/**
 * The kernel table the WASM engine ships: a plain value that `wasmEngine` and `compileWasm` are
 * built from (importing this module changes nothing). Ops without a generator run their
 * reference implementation on the host, listed as fallbacks.
 *
 * @module
 */
import { convolutionKernel } from "./conv.ts";
import { copyKernel } from "./copy.ts";
import { deconvolutionKernel } from "./deconv.ts";
import { elementwiseKernel } from "./elementwise.ts";
import { batchDotKernel, dotKernel, fullyConnectedKernel } from "./gemm_ops.ts";
import type { KernelTable } from "./kernel.ts";
import { poolingKernel } from "./pool.ts";
import { oneHotKernel, pickKernel } from "./index_ops.ts";
import { reductionKernel, softmaxKernel } from "./reduce.ts";
import { batchNormKernel, embeddingKernel, transposeKernel } from "./layout_ops.ts";
import { bilinearResizeKernel, upsamplingKernel } from "./resize.ts";

/** Every kernel generator of the WASM backend, by op name. */
export const WASM_KERNELS: KernelTable = Object.freeze({
  elementwise: elementwiseKernel,
  copy: copyKernel,
  ops: Object.freeze({
    FullyConnected: fullyConnectedKernel,
    dot: dotKernel,
    batch_dot: batchDotKernel,
    Convolution: convolutionKernel,
    _sigil_fused_conv: convolutionKernel,
    Deconvolution: deconvolutionKernel,
    Pooling: poolingKernel,
    pick: pickKernel,
    one_hot: oneHotKernel,
    sum: reductionKernel,
    mean: reductionKernel,
    max: reductionKernel,
    min: reductionKernel,
    transpose: transposeKernel,
    BatchNorm: batchNormKernel,
    Embedding: embeddingKernel,
    softmax: softmaxKernel,
    log_softmax: softmaxKernel,
    SoftmaxActivation: softmaxKernel,
    SoftmaxOutput: softmaxKernel,
    UpSampling: upsamplingKernel,
    _contrib_BilinearResize2D: bilinearResizeKernel,
  }),
});
