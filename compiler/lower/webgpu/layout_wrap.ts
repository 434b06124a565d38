/**
 * Channel-last layouts (NWC, NHWC, NDHWC) of `Convolution` and `Pooling` in WGSL, as the
 * reference computes them: the data `(N, *spatial, C)` (and a convolution's weight
 * `(F, *kernel, C/groups)`) are transposed into channel-first scratch buffers, the
 * channel-first kernel runs on those, and its output is transposed back. The transposes are
 * copy passes; the inner kernel is the same node with its layout channel-first.
 *
 * @module
 */
import { makeNode } from "../../symbol.ts";
import { type Shape, shapeSize } from "../../../runtime/shape.ts";
import type { CopyPlan } from "../../../ops/views.ts";
import type { GpuKernel, GpuKernelGenerator, GpuKernelRequest, GpuPass } from "./kernel.ts";
import { copyPlanPasses } from "./layout.ts";

const FIRST: Readonly<Record<string, string>> = { NWC: "NCW", NHWC: "NCHW", NDHWC: "NCDHW" };

function stridesOf(shape: Shape): number[] {
  const s = shape.map(() => 1);
  for (let d = shape.length - 2; d >= 0; d--) s[d] = s[d + 1] * shape[d + 1];
  return s;
}

/** `(A, *S, B)` as `(A, B, *S)`. */
const toFirst = (s: Shape): Shape => [s[0], s[s.length - 1], ...s.slice(1, -1)];

/** The copy plan moving a channel-last `(A, *S, B)` value into channel-first order (or back). */
function movePlan(input: number, last: Shape, toChannelFirst: boolean): CopyPlan {
  const first = toFirst(last);
  const ls = stridesOf(last), fs = stridesOf(first);
  const r = last.length;
  // Axis d of the channel-first shape is axis perm[d] of the channel-last one.
  const perm = [0, r - 1, ...Array.from({ length: r - 2 }, (_, i) => i + 1)];
  return [{
    input,
    src: 0,
    dst: 0,
    dims: toChannelFirst
      ? first.map((size, d) => ({ size, src: ls[perm[d]], dst: fs[d] }))
      : first.map((size, d) => ({ size, src: fs[d], dst: ls[perm[d]] })),
  }];
}

/**
 * Wraps a channel-first generator so channel-last nodes run through it (see the module doc);
 * `weighted`: the second input is a convolution weight in the channel-last layout too.
 */
export function channelLast(inner: GpuKernelGenerator, weighted: boolean): GpuKernelGenerator {
  return (req: GpuKernelRequest): GpuKernel | undefined => {
    const layout = (req.node.parsed as { layout?: string | null }).layout;
    const first = layout ? FIRST[layout] : undefined;
    if (first === undefined) return inner(req);
    const x = req.inputs[0], y = req.outputs[0];
    if (x === undefined || y === undefined || x.length < 3 || req.outputs.length !== 1) {
      return undefined;
    }
    const node = makeNode({
      op: req.node.op,
      name: req.node.name,
      attrs: { ...req.node.attrs, layout: first },
      inputs: req.node.inputs,
    });
    const moved = weighted ? [0, 1] : [0];
    const inputs = req.inputs.map((s, i) => (moved.includes(i) ? toFirst(s) : s));
    const k = inner({
      ...req,
      node,
      inputs,
      outputs: [toFirst(y)],
      // Constants are read in the channel-first order now: none is handed over as is.
      constants: req.inputs.map(() => undefined),
    });
    if (!k) return undefined;
    const n = req.inputs.length;
    // Slots of the wrapped kernel: inputs, output, its scratch; here: inputs, output, then the
    // moved inputs, the channel-first output, then its scratch.
    const movedSlot = (i: number) => n + 1 + moved.indexOf(i);
    const yFirst = n + 1 + moved.length;
    const scratchBase = yFirst + 1;
    const remap = (slot: number) =>
      slot < n
        ? (moved.includes(slot) ? movedSlot(slot) : slot)
        : slot === n
        ? yFirst
        : scratchBase + (slot - n - 1);
    const fake = (input: number, out: number, shape: Shape, toChannelFirst: boolean) =>
      copyPlanPasses(
        { ...req, inputs: req.inputs },
        movePlan(input, shape, toChannelFirst),
        out,
      );
    const passes: GpuPass[] = [];
    for (const i of moved) {
      // Copy passes bind [input, n + out]: rebind the output to the scratch slot.
      for (const p of fake(i, 0, req.inputs[i], true)) {
        passes.push({ ...p, bindings: [i, movedSlot(i)] });
      }
    }
    for (const p of k.passes) passes.push({ ...p, bindings: p.bindings.map(remap) });
    for (const p of fake(0, 0, y, false)) passes.push({ ...p, bindings: [yFirst, n] });
    return {
      label: `${k.label} (${layout} through ${first})`,
      passes,
      scratch: [
        ...moved.map((i) => shapeSize(req.inputs[i]) * 4),
        shapeSize(y) * 4,
        ...(k.scratch ?? []),
      ],
    };
  };
}
