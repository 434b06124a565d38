/**
 * The kernel table the WebGPU engine ships: a plain value that `webgpuEngine` is built from
 * (importing this module changes nothing). Ops without a generator run their reference
 * implementation on the host, listed as fallbacks.
 *
 * @module
 */
import type { GpuLimits } from "./gpu.ts";
import type { GpuKernelTable } from "./kernel.ts";
import { convolutionGpuKernel } from "./conv.ts";
import { elementwiseGpuKernel } from "./elementwise.ts";
import {
  batchNormGpuKernel,
  concatGpuKernel,
  copyGpuKernel,
  sliceChannelGpuKernel,
  transposeGpuKernel,
} from "./layout.ts";
import { batchDotGpuKernel, dotGpuKernel, fullyConnectedGpuKernel } from "./matmul.ts";
import { poolingGpuKernel } from "./pool.ts";
import { reductionGpuKernel, softmaxGpuKernel } from "./reduce.ts";
import {
  argGpuKernel,
  embeddingGpuKernel,
  oneHotGpuKernel,
  pickGpuKernel,
  takeGpuKernel,
  topkGpuKernel,
} from "./index_ops.ts";
import { l2NormalizationGpuKernel, layerNormGpuKernel, normGpuKernel } from "./norm_ops.ts";
import { deconvolutionGpuKernel } from "./deconv.ts";
import {
  bilinearResizeGpuKernel,
  bilinearResizeGradGpuKernel,
  upsamplingGpuKernel,
} from "./resize.ts";
import { ampMulticastGpuKernel, dropoutGpuKernel, leakyReluGpuKernel } from "./misc_ops.ts";
import { channelLast } from "./layout_wrap.ts";

/** Every kernel generator of the WebGPU backend, by op name. */
export const WEBGPU_KERNELS: GpuKernelTable = Object.freeze({
  elementwise: elementwiseGpuKernel,
  copy: copyGpuKernel,
  ops: Object.freeze({
    FullyConnected: fullyConnectedGpuKernel,
    dot: dotGpuKernel,
    batch_dot: batchDotGpuKernel,
    Convolution: channelLast(convolutionGpuKernel, true),
    _sigil_fused_conv: channelLast(convolutionGpuKernel, true),
    Deconvolution: deconvolutionGpuKernel,
    Pooling: channelLast(poolingGpuKernel, false),
    sum: reductionGpuKernel,
    mean: reductionGpuKernel,
    max: reductionGpuKernel,
    min: reductionGpuKernel,
    softmax: softmaxGpuKernel,
    log_softmax: softmaxGpuKernel,
    SoftmaxActivation: softmaxGpuKernel,
    SoftmaxOutput: softmaxGpuKernel,
    transpose: transposeGpuKernel,
    Concat: concatGpuKernel,
    SliceChannel: sliceChannelGpuKernel,
    BatchNorm: batchNormGpuKernel,
    Embedding: embeddingGpuKernel,
    take: takeGpuKernel,
    pick: pickGpuKernel,
    one_hot: oneHotGpuKernel,
    argmax: argGpuKernel,
    argmin: argGpuKernel,
    topk: topkGpuKernel,
    LayerNorm: layerNormGpuKernel,
    InstanceNorm: layerNormGpuKernel,
    GroupNorm: layerNormGpuKernel,
    L2Normalization: l2NormalizationGpuKernel,
    norm: normGpuKernel,
    UpSampling: upsamplingGpuKernel,
    _contrib_BilinearResize2D: bilinearResizeGpuKernel,
    _sigil_bilinear_resize_grad: bilinearResizeGradGpuKernel,
    LeakyReLU: leakyReluGpuKernel,
    Dropout: dropoutGpuKernel,
    amp_multicast: ampMulticastGpuKernel,
  }),
});

/**
 * The limits every WebGPU device has at least (the spec's defaults): what generators may be
 * given where no device is at hand (examples, tests of the generated code).
 */
export const DEFAULT_LIMITS: GpuLimits = Object.freeze({
  maxStorageBufferBindingSize: 134217728,
  maxBufferSize: 268435456,
  maxStorageBuffersPerShaderStage: 8,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxComputeWorkgroupsPerDimension: 65535,
  maxComputeWorkgroupStorageSize: 16384,
  minStorageBufferOffsetAlignment: 256,
});
