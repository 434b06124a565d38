/**
 * `ROIPooling` (Fast R-CNN): max pooling of NCHW feature maps over regions of interest given
 * as rows `[batch_index, x1, y1, x2, y2]` in image coordinates, each scaled by
 * `spatial_scale`, rounded and split into `pooled_size` bins, as MXNet's CPU kernel computes
 * it. The second output (`maxidx`, hidden) holds each maximum's flat index in its channel's
 * map, or -1 for an empty bin. The bins depend on the ROI values, so there is no copy plan: on
 * the WASM backend the reference runs as a listed fallback step. It has no sampler: whether a
 * call is valid depends on the ROI values (batch indices), which samplers do not draw.
 *
 * @module
 */
import { formatShape } from "../runtime/shape.ts";
import { tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import { attr, type AttrSpec } from "./attrs.ts";
import { defineOp, type OpDef, shapeFail, type TypeResult } from "./op.ts";

/** C's `round` on a float32 product: halves away from zero. */
function roundHalfAway(v: number): number {
  return Math.sign(v) * Math.round(Math.abs(v));
}

/** `ROIPooling`: max pooling over scaled regions of interest into fixed-size bins. */
export const ROIPooling: OpDef<
  {
    pooled_size: AttrSpec<readonly number[], true>;
    spatial_scale: AttrSpec<number, true>;
  },
  readonly [],
  "one"
> = defineOp({
  name: "ROIPooling",
  doc: "Max-pools NCHW maps over regions of interest [batch, x1, y1, x2, y2] into fixed bins.",
  attrs: {
    /** Output bins (height, width). */
    pooled_size: attr.tupleRequired({ min: 1 }),
    /** Scale from ROI coordinates to feature-map coordinates, in [0, 1]. */
    spatial_scale: attr.floatRequired(),
  },
  inputNames: () => ["data", "rois"],
  outputNames: () => ["output", "maxidx"],
  numVisibleOutputs: () => 1,
  inferShape: (inputs, a) => {
    if (a.pooled_size.length !== 2) {
      shapeFail(`ROIPooling: pooled_size ${formatShape(a.pooled_size)} must have 2 values`);
    }
    if (!(a.spatial_scale >= 0 && a.spatial_scale <= 1)) {
      shapeFail(`ROIPooling: spatial_scale ${a.spatial_scale} is not in [0, 1]`);
    }
    const [x, rois] = inputs;
    if (x !== undefined && x.length !== 4) {
      shapeFail(`ROIPooling: data ${formatShape(x)} must be 4-d (batch, channel, y, x)`);
    }
    if (rois !== undefined && (rois.length !== 2 || (rois[1] >= 0 && rois[1] !== 5))) {
      shapeFail(`ROIPooling: rois ${formatShape(rois)} must be (num_rois, 5)`);
    }
    const out = [rois?.[0] ?? -1, x?.[1] ?? -1, a.pooled_size[0], a.pooled_size[1]];
    return { inputs: [x, rois === undefined ? undefined : [rois[0], 5]], outputs: [out, out] };
  },
  inferType: (inputs, _a, outputs): TypeResult => {
    const t = inputs[0] ?? inputs[1] ?? outputs[0];
    return { inputs: [t, t], outputs: [t, t] };
  },
  reference: (inputs, a, ctx) => {
    const [x, r] = inputs;
    const [batch, channels, height, width] = x.shape;
    const [ph, pw] = a.pooled_size;
    const xv = tensorValues(x), rv = tensorValues(r);
    const numRois = r.shape[0];
    const out = new Float64Array(numRois * channels * ph * pw);
    const idx = new Float64Array(out.length);
    const f = Math.fround;
    const scale = f(a.spatial_scale);
    for (let n = 0; n < numRois; n++) {
      const roi = rv.subarray(n * 5, n * 5 + 5);
      const b = Math.trunc(roi[0]);
      if (!(b >= 0 && b < batch)) {
        shapeFail(`ROIPooling: roi ${n} has batch index ${roi[0]} outside [0, ${batch})`);
      }
      const startW = roundHalfAway(f(f(roi[1]) * scale));
      const startH = roundHalfAway(f(f(roi[2]) * scale));
      const endW = roundHalfAway(f(f(roi[3]) * scale));
      const endH = roundHalfAway(f(f(roi[4]) * scale));
      // malformed regions become 1×1
      const roiH = Math.max(endH - startH + 1, 1), roiW = Math.max(endW - startW + 1, 1);
      const binH = f(roiH / ph), binW = f(roiW / pw);
      for (let c = 0; c < channels; c++) {
        const base = (b * channels + c) * height * width;
        for (let i = 0; i < ph; i++) {
          const h0 = Math.min(Math.max(Math.floor(f(i * binH)) + startH, 0), height);
          const h1 = Math.min(Math.max(Math.ceil(f((i + 1) * binH)) + startH, 0), height);
          for (let j = 0; j < pw; j++) {
            const w0 = Math.min(Math.max(Math.floor(f(j * binW)) + startW, 0), width);
            const w1 = Math.min(Math.max(Math.ceil(f((j + 1) * binW)) + startW, 0), width);
            const o = ((n * channels + c) * ph + i) * pw + j;
            if (h1 <= h0 || w1 <= w0) {
              out[o] = 0;
              idx[o] = -1;
              continue;
            }
            // MXNet starts from -FLT_MAX and keeps the first of equal maxima
            let best = -3.4028234663852886e38, at = -1;
            for (let h = h0; h < h1; h++) {
              for (let w = w0; w < w1; w++) {
                const v = xv[base + h * width + w];
                if (v > best) {
                  best = v;
                  at = h * width + w;
                }
              }
            }
            out[o] = best;
            idx[o] = at;
          }
        }
      }
    }
    return [
      tensorFromValues(out, ctx.outShapes[0], ctx.outTypes[0]),
      tensorFromValues(idx, ctx.outShapes[1], ctx.outTypes[1]),
    ];
  },
});
