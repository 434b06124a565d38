/**
 * What a shared `WebAssembly.Memory` costs a one-thread program: model zoo ResNet-18 v1 and
 * MobileNet v2 1.0 (random weights, batch 1, 224×224) compiled for one thread twice, over an
 * unshared memory (`compileHelper: false`) and over a shared one (`compileHelper: true`, which
 * shares the memory with the compile helper; the kernels are the same code but for the memory
 * they import), then timed in alternating calls. The same cost is in every part a worker runs
 * (threads need shared memory), so it bounds what two threads can gain.
 *
 * Run: `deno run -A bench/shared_memory.ts [--calls 60] [--models resnet18_v1,mobilenetv2_1.0]`
 *
 * @module
 */
import { compileWasm } from "../compiler/lower/wasm/lower.ts";
import { terminateThreads } from "../runtime/backends/wasm/threads.ts";
import { arg, median, tracedZooModel, ZOO_SHAPE, zooInput } from "./zoo.ts";

const calls = Number(arg("calls", "60"));
const models = arg("models", "resnet18_v1,mobilenetv2_1.0").split(",");

const x = zooInput();
for (const name of models) {
  const { symbol, params } = tracedZooModel(name);
  const compile = (compileHelper: boolean) =>
    compileWasm(symbol, params, { data: ZOO_SHAPE }, { threads: 1, compileHelper });
  const unshared = compile(false);
  const shared = compile(true);
  const out = [new Float32Array(1000)];
  for (let i = 0; i < 5; i++) {
    unshared.runRaw({ data: x }, out);
    shared.runRaw({ data: x }, out);
  }
  const tu: number[] = [], ts: number[] = [];
  for (let i = 0; i < calls; i++) {
    const order = i % 2 ? [unshared, shared] : [shared, unshared];
    for (const p of order) {
      const t0 = performance.now();
      p.runRaw({ data: x }, out);
      (p === shared ? ts : tu).push(performance.now() - t0);
    }
  }
  console.log(
    `${name}: unshared ${median(tu).toFixed(2)} ms, shared ${median(ts).toFixed(2)} ms, ` +
      `shared/unshared ${(median(ts) / median(tu)).toFixed(3)}`,
  );
  unshared.dispose();
  shared.dispose();
}
await terminateThreads();
