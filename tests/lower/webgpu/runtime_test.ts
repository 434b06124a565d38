/**
 * The WebGPU program runtime: outputs held in GPU buffers (residency), autotuning, profiles,
 * and device failures (a lost device, memory that runs out) as typed errors naming the node.
 * Tolerance against the reference: rtol 1e-4, atol 1e-5 (float32 sums in another order).
 */
import {
  cpu,
  gpu,
  GpuDeviceError,
  nd,
  referenceEngine,
  ResidencyError,
  sym,
  type Tensor,
  webgpuEngine,
} from "../../../mod.ts";
import { graphOf } from "../../../compiler/passes/pass.ts";
import type { WebGPUCompiled } from "../../../compiler/lower/webgpu/lower.ts";
import { type GpuHeld, heldOn } from "../../../compiler/lower/webgpu/resident.ts";
import { tuningCandidates } from "../../../compiler/lower/webgpu/tuning.ts";
import { Tensor as TensorClass, tensorValues } from "../../../runtime/tensor.ts";
import { assert, assertClose } from "../../util.ts";
import { engine, GPU_TEST } from "./gpu_harness.ts";

const TOL = { rtol: 1e-4, atol: 1e-5 };

/** A dense layer and a relu: a GEMM kernel and an elementwise one. */
function mlp(hidden: number) {
  return sym.relu(sym.FullyConnected(sym.var("x"), { num_hidden: hidden, name: "fc" }), {
    name: "act",
  });
}

function bind(y: ReturnType<typeof mlp>, x: number[]) {
  const shapes = y.inferShape({ x });
  const values: Record<string, Tensor> = {};
  y.listArguments().forEach((n, i) => {
    values[n] = nd.random.uniform(-1, 1, shapes.argShapes[i], { seed: 40 + i });
  });
  return values;
}

Deno.test({
  name:
    "resident outputs stay on the GPU, read back with data(), and feed the next program on the device",
  ...GPU_TEST,
  fn: async () => {
    const e = engine();
    const y = mlp(24);
    const values = bind(y, [3, 20]);
    const { x, ...params } = values;
    const program = e.compile(graphOf(y, params), {
      inputs: { x: { shape: [3, 20], dtype: "float32" } },
    }) as WebGPUCompiled;
    const [host] = await program.runAsync({ x });
    const [onGpu] = await program.runAsync({ x }, { resident: true });
    assert.ok(onGpu.isResident && onGpu.device === gpu() && !host.isResident);
    assert.throws(() => onGpu.dataSync(), ResidencyError);
    assert.deepEqual(await onGpu.data(), host.dataSync());
    const back = await onGpu.toDevice(cpu());
    assert.deepEqual(back.dataSync(), host.dataSync());

    // A second program reads the held output with a copy on the device, never reading it back.
    const z = sym.exp(sym.var("h"), { name: "e" });
    const next = e.compile(graphOf(z), {
      inputs: { h: { shape: [3, 24], dtype: "float32" } },
    }) as WebGPUCompiled;
    const inner = heldOn(onGpu, e.gpu!.device)!;
    let reads = 0;
    const watched: GpuHeld = {
      owner: inner.owner,
      buffer: inner.buffer,
      bytes: inner.bytes,
      dtype: inner.dtype,
      disposed: false,
      read() {
        reads++;
        return inner.read();
      },
      dispose() {},
    };
    const h = new TensorClass(watched, [3, 24], "float32", gpu());
    const [viaDevice] = await next.runAsync({ h });
    const [viaHost] = await next.runAsync({ h: host });
    assert.equal(reads, 0);
    assert.deepEqual(viaDevice.dataSync(), viaHost.dataSync());
    onGpu.dispose();
    await assertRejects(() => onGpu.data(), ResidencyError);
    program.dispose();
    next.dispose();
  },
});

Deno.test({
  name:
    "toDevice(engine) uploads float32, float16 and int32 tensors; an engine with resident: true hands out GPU tensors",
  ...GPU_TEST,
  fn: async () => {
    const e = engine();
    for (const dtype of ["float32", "float16", "int32"] as const) {
      const x = nd.array([1, -2, 3, 4, -5], { dtype });
      const up = await x.toDevice(e);
      assert.ok(up.isResident, dtype);
      assert.equal(await up.toDevice(e), up);
      assert.deepEqual(await up.data(), x.dataSync(), dtype);
      up.dispose();
    }
    const resident = webgpuEngine({ resident: true });
    const y = sym.abs(sym.var("x"));
    const x = nd.array([-1, 2, -3]);
    const [out] = await y.eval({ x }, { engine: resident });
    assert.ok(out.isResident);
    assert.deepEqual(await out.data(), new Float32Array([1, 2, 3]));
    // Fed back in (the engine moves it at the graph boundary), still on the device.
    const [twice] = await y.eval({ x: out }, { engine: resident });
    assert.deepEqual(await twice.data(), new Float32Array([1, 2, 3]));
  },
});

Deno.test({
  name:
    "autotuning: every candidate gives the reference's values, and a second program hits the cache",
  ...GPU_TEST,
  fn: async () => {
    const y = mlp(37);
    const values = bind(y, [29, 33]);
    const [want] = await y.eval(values, { engine: referenceEngine });
    const { x, ...params } = values;
    const signature = { inputs: { x: { shape: [29, 33], dtype: "float32" as const } } };
    const count = tuningCandidates("FullyConnected", [[29, 37]]).length;
    assert.ok(count >= 4);
    for (let candidate = 0; candidate < count; candidate++) {
      const e = webgpuEngine({ tune: { candidate } });
      await e.ready();
      const program = e.compile(graphOf(y, params), signature) as WebGPUCompiled;
      const [got] = await program.runAsync({ x });
      assertClose(got, tensorValues(want), { ...TOL, what: `candidate ${candidate}` });
      const fc = program.tuning.find((t) => t.node === "fc")!;
      assert.equal(fc.chosen, Math.min(candidate, fc.candidates.length - 1));
      program.dispose();
    }
    const tuned = webgpuEngine({ tune: true });
    await tuned.ready();
    const first = tuned.compile(graphOf(y, params), signature) as WebGPUCompiled;
    await first.ready();
    const fc1 = first.tuning.find((t) => t.node === "fc")!;
    assert.ok(fc1.candidates.length >= 4 && !fc1.cached);
    const [got] = await first.runAsync({ x });
    assertClose(got, tensorValues(want), TOL);
    const second = tuned.compile(graphOf(y, params), signature) as WebGPUCompiled;
    const [again] = await second.runAsync({ x });
    const fc2 = second.tuning.find((t) => t.node === "fc")!;
    assert.ok(fc2.cached);
    assert.equal(fc2.chosen, fc1.chosen);
    assert.deepEqual(again.dataSync(), got.dataSync());
    first.dispose();
    second.dispose();
  },
});

Deno.test({
  name:
    "profileAsync times every node: on the GPU with timestamp queries, else per dispatch on the CPU",
  ...GPU_TEST,
  fn: async () => {
    const e = engine();
    const y = sym.Reshape(mlp(16), { shape: [-1], name: "flat" });
    const values = bind(y as ReturnType<typeof mlp>, [4, 8]);
    const { x, ...params } = values;
    const signature = { inputs: { x: { shape: [4, 8], dtype: "float32" as const } } };
    const program = e.compile(graphOf(y, params), signature) as WebGPUCompiled;
    const profile = await program.profileAsync({ x });
    assert.equal(profile.method, e.gpu!.timestamps ? profile.method : "cpu");
    assert.deepEqual(profile.nodes.map((n) => n.node), program.placement.map((p) => p.node));
    assert.ok(profile.nodes.every((n) => n.ms >= 0 && Number.isFinite(n.ms)));
    assert.ok(profile.note.length > 0);
    assert.throws(() => program.profile({}), /profileAsync/);
    // The same values as a run after profiling.
    const [got] = await program.runAsync({ x });
    const [want] = await y.eval(values, { engine: referenceEngine });
    assertClose(got, tensorValues(want), TOL);
    program.dispose();

    // A device without timestamp-query: CPU timing, and the note says so.
    const adapter = e.gpu!.adapter;
    const device = await adapter.requestDevice();
    const plain = webgpuEngine({ adapter, device });
    await plain.ready();
    assert.equal(plain.gpu!.timestamps, false);
    const p2 = plain.compile(graphOf(y, params), signature) as WebGPUCompiled;
    const cpuProfile = await p2.profileAsync({ x });
    assert.equal(cpuProfile.method, "cpu");
    assert.match(cpuProfile.note, /CPU time/);
    assert.equal(cpuProfile.nodes.length, program.placement.length);
    p2.dispose();
    device.destroy();
  },
});

Deno.test({
  name: "a lost device is a GpuDeviceError (kind lost) from the next run",
  ...GPU_TEST,
  fn: async () => {
    const adapter = engine().gpu!.adapter;
    const device = await adapter.requestDevice();
    const e = webgpuEngine({ adapter, device });
    await e.ready();
    const program = e.compile(graphOf(sym.exp(sym.var("x"), { name: "ex" })), {
      inputs: { x: { shape: [8], dtype: "float32" } },
    }) as WebGPUCompiled;
    const [ok] = await program.runAsync({ x: nd.ones([8]) });
    assert.equal(ok.size, 8);
    device.destroy();
    const info = await device.lost;
    assert.equal(info.reason, "destroyed");
    await assertRejects(
      () => program.runAsync({ x: nd.ones([8]) }),
      GpuDeviceError,
      (err) => err.kind === "lost" && /device lost \(destroyed/.test(err.message),
    );
  },
});

Deno.test({
  name: "memory that runs out is a GpuDeviceError naming the node whose buffer it was",
  ...GPU_TEST,
  fn: async () => {
    const real = engine().gpu!.device;
    // A device whose allocations past 1 MiB fail as out-of-memory (as a full GPU's would).
    const device = oomDevice(real, 1 << 20);
    const e = webgpuEngine({ device });
    await e.ready();
    const wide = sym.broadcast_add(sym.var("a"), sym.var("b"), { name: "wide" });
    const program = e.compile(graphOf(wide), {
      inputs: {
        a: { shape: [1000, 1], dtype: "float32" },
        b: { shape: [1, 400], dtype: "float32" },
      },
    }) as WebGPUCompiled;
    await assertRejects(
      () => program.ready(),
      GpuDeviceError,
      (err) => err.kind === "out-of-memory" && err.node === "wide" && err.op === "broadcast_add",
    );
    await assertRejects(
      () => program.runAsync({ a: nd.ones([1000, 1]), b: nd.ones([1, 400]) }),
      GpuDeviceError,
    );
  },
});

/** `real`, except that buffers over `limit` bytes fail as out-of-memory in their error scope. */
function oomDevice(real: GPUDevice, limit: number): GPUDevice {
  const scopes: { filter: GPUErrorFilter; error?: GPUError }[] = [];
  return new Proxy(real, {
    get(target, prop) {
      if (prop === "pushErrorScope") {
        return (filter: GPUErrorFilter) => {
          scopes.push({ filter });
          target.pushErrorScope(filter);
        };
      }
      if (prop === "popErrorScope") {
        return async () => {
          const scope = scopes.pop();
          const error = await target.popErrorScope();
          return scope?.error ?? error;
        };
      }
      if (prop === "createBuffer") {
        return (desc: GPUBufferDescriptor) => {
          if (desc.size <= limit) return target.createBuffer(desc);
          const scope = scopes.findLast((s) => s.filter === "out-of-memory");
          if (scope) scope.error ??= { message: `no memory for ${desc.size} bytes` } as GPUError;
          return target.createBuffer({ ...desc, size: 16 });
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

async function assertRejects<E extends Error>(
  f: () => Promise<unknown>,
  type: new (...args: never[]) => E,
  check?: (e: E) => boolean,
): Promise<void> {
  try {
    await f();
  } catch (e) {
    assert.ok(e instanceof type, `${e}`);
    if (check) assert.ok(check(e as E), `${e}`);
    return;
  }
  assert.fail("did not reject");
}
