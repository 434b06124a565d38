/**
 * Registers the kernel generators the WASM backend ships. Importing this module (lower.ts
 * does) is what makes compiled graphs use them; ops without a generator run their reference
 * implementation on the host.
 *
 * @module
 */
import { elementwiseKernel } from "./elementwise.ts";
import { registerElementwiseKernel } from "./kernel.ts";

registerElementwiseKernel(elementwiseKernel);
