/**
 * Registers the kernel generators the WASM backend ships. Importing this module (lower.ts
 * does) is what makes compiled graphs use them; ops without a generator run their reference
 * implementation on the host.
 *
 * @module
 */
import { convolutionKernel } from "./conv.ts";
import { deconvolutionKernel } from "./deconv.ts";
import { elementwiseKernel } from "./elementwise.ts";
import { batchDotKernel, dotKernel, fullyConnectedKernel } from "./gemm_ops.ts";
import { registerElementwiseKernel, registerKernel } from "./kernel.ts";
import { poolingKernel } from "./pool.ts";
import { reductionKernel, softmaxKernel } from "./reduce.ts";
import { batchNormKernel, embeddingKernel, transposeKernel } from "./layout_ops.ts";

registerElementwiseKernel(elementwiseKernel);
registerKernel("FullyConnected", fullyConnectedKernel);
registerKernel("dot", dotKernel);
registerKernel("batch_dot", batchDotKernel);
registerKernel("Convolution", convolutionKernel);
registerKernel("Deconvolution", deconvolutionKernel);
registerKernel("Pooling", poolingKernel);
for (const op of ["sum", "mean", "max", "min"]) registerKernel(op, reductionKernel);
registerKernel("transpose", transposeKernel);
registerKernel("BatchNorm", batchNormKernel);
registerKernel("Embedding", embeddingKernel);
for (const op of ["softmax", "log_softmax", "SoftmaxActivation", "SoftmaxOutput"]) {
  registerKernel(op, softmaxKernel);
}
