/**
 * Registers the kernel generators the WASM backend ships. Importing this module (lower.ts
 * does) is what makes compiled graphs use them; ops without a generator run their reference
 * implementation on the host.
 *
 * @module
 */
import { convolutionKernel } from "./conv.ts";
import { elementwiseKernel } from "./elementwise.ts";
import { batchDotKernel, dotKernel, fullyConnectedKernel } from "./gemm_ops.ts";
import { registerElementwiseKernel, registerKernel } from "./kernel.ts";
import { poolingKernel } from "./pool.ts";

registerElementwiseKernel(elementwiseKernel);
registerKernel("FullyConnected", fullyConnectedKernel);
registerKernel("dot", dotKernel);
registerKernel("batch_dot", batchDotKernel);
registerKernel("Convolution", convolutionKernel);
registerKernel("Pooling", poolingKernel);
