/**
 * Sums a V8 CPU profile's self time into the cold-start categories of bench/README.md.
 *
 * `deno run -A --cpu-prof --cpu-prof-dir=prof bench/coldstart.ts --child phases resnet18_v1 1`
 * writes the profile of one cold compile, first run and 20 steady runs; then
 * `deno run -A bench/cpuprofile_summary.ts prof/<file>.cpuprofile` prints milliseconds per
 * category (self time, so nothing is counted twice). Steady runs are in "kernels running";
 * subtract 20 steady calls to get the first run's share. With more than one thread each worker
 * writes its own `*.worker-N.cpuprofile`: pass the calling thread's (the other one).
 *
 * @module
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The category of a frame, from its function name and the file it is in. */
function category(fn: string, url: string): string {
  const file = url.split("/").pop() ?? "";
  if (fn.startsWith("wasm-function") || fn === "js-to-wasm") return "kernels running";
  if (/^(winograd(Packed)?Weights|winogradFill|g[24]|tileF[24]|rowF[24])$/.test(fn)) {
    return "Winograd weight transform";
  }
  if (fn.startsWith("packSgemm")) return "weight packing";
  if (file === "fold_batchnorm.ts" || fn === "scaleInto") return "BatchNorm folding";
  if (file === "executor.ts") return "instantiate + constant upload";
  if (fn === "op_create_worker" || file === "threads.ts" || file === "worker_threads.ts") {
    return "worker start";
  }
  if (
    /^(encoder|emit|conv|winograd|sgemm|gemm_ops|pool|elementwise|vmath|reduce)\.ts$/.test(file)
  ) {
    return "kernel code generation";
  }
  if (file === "module_cache.ts") return "module cache (hash, compile)";
  if (file === "random.ts" || file === "initializer.ts" || file === "parameter.ts") {
    return "model init (not timed as cold)";
  }
  if (file === "dtype.ts" || file === "tensor.ts") return "tensor encode/decode";
  if (fn === "(garbage collector)") return "garbage collection";
  if (fn === "(idle)" || fn === "(program)" || fn === "(root)") return "idle/other";
  if (/passes|pass\.ts|rewrite|symbol|infer|memory_plan|fuse/.test(url)) {
    return "passes, shapes, plan, trace";
  }
  return "other JS";
}

/** Milliseconds of self time per category, largest first. */
export function summarize(profile: Profile): [string, number][] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const n = byId.get(id)!;
    const c = category(n.callFrame.functionName, n.callFrame.url);
    totals.set(c, (totals.get(c) ?? 0) + profile.timeDeltas[i] / 1000);
  });
  return [...totals].sort((a, b) => b[1] - a[1]);
}

if (import.meta.main) {
  const profile = JSON.parse(await Deno.readTextFile(Deno.args[0])) as Profile;
  console.log("| category | self ms |\n| --- | ---: |");
  for (const [c, ms] of summarize(profile)) console.log(`| ${c} | ${ms.toFixed(0)} |`);
}
