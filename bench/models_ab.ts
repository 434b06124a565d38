/**
 * Whole models, this build against another in one process: model zoo ResNet-18 v1 and MobileNet
 * v2 1.0 (the same random weights, batch 1, 224×224) compiled by each build's `compileWasm`,
 * then timed in alternating calls, so that both see the same machine load. Prints the median
 * call of each build and their ratio. Without `SIGIL_BEFORE` it times this build alone.
 *
 *   git worktree add --detach /tmp/before <commit>
 *   SIGIL_BEFORE=/tmp/before/mod.ts deno run -A bench/models_ab.ts [--calls 80] [--threads 1]
 *
 * Use one thread: two builds each start their own worker pool, and on a machine with few cores
 * their workers would compete.
 *
 * @module
 */
import * as current from "../mod.ts";
import { type Api, buildsToCompare } from "./before.ts";
import { arg, median, tracedZooModel, ZOO_SHAPE, zooInput } from "./zoo.ts";

const calls = Number(arg("calls", "80"));
const threads = Number(arg("threads", "1"));
const models = arg("models", "resnet18_v1,mobilenetv2_1.0").split(",");

const x = zooInput();
const builds = await buildsToCompare(current);

function compile(api: Api, name: string) {
  const { symbol, params } = tracedZooModel(name, api);
  return api.compileWasm(symbol as never, params as never, { data: ZOO_SHAPE }, { threads });
}

for (const name of models) {
  const programs = builds.map(([label, api]) => ({ label, program: compile(api, name) }));
  for (const { program } of programs) await program.ready();
  const out = [new Float32Array(1000)];
  for (let i = 0; i < 5; i++) for (const { program } of programs) program.runRaw({ data: x }, out);
  const times = programs.map((): number[] => []);
  for (let i = 0; i < calls; i++) {
    const order = programs.map((_, k) => (i % 2 ? k : programs.length - 1 - k));
    for (const k of order) {
      const t0 = performance.now();
      programs[k].program.runRaw({ data: x }, out);
      times[k].push(performance.now() - t0);
    }
  }
  const medians = times.map(median);
  console.log(
    `${name} t${threads}: ${
      programs.map((p, k) => `${p.label} ${medians[k].toFixed(2)} ms`).join(", ")
    }${medians.length > 1 ? `, before/current ${(medians[1] / medians[0]).toFixed(3)}` : ""}`,
  );
  for (const { program } of programs) program.dispose();
}
Deno.exit(0);
