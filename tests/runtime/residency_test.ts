/**
 * Tensors whose values a device holds (DeviceStorage): reading them is asynchronous; every
 * synchronous read is a ResidencyError saying to await data(); moving to cpu() reads back.
 * Uses a stand-in storage, so it runs with no GPU.
 */
import { cpu, gpu, nd, ResidencyError, Tensor } from "../../mod.ts";
import { encode, type StorageArray } from "../../runtime/dtype.ts";
import { inspectTensor, tensorStorage, tensorValues } from "../../runtime/tensor.ts";
import { assert } from "../util.ts";

function held(values: StorageArray) {
  const state = { reads: 0, disposed: 0 };
  return {
    state,
    storage: {
      owner: state,
      read() {
        state.reads++;
        return Promise.resolve(values.slice() as StorageArray);
      },
      dispose() {
        state.disposed++;
      },
    },
  };
}

Deno.test("a device-held tensor reads asynchronously and refuses every synchronous read", async () => {
  const { state, storage } = held(encode("float16", [1, -2.5, 3]));
  const t = new Tensor(storage, [3], "float16", gpu());
  assert.ok(t.isResident);
  assert.equal(t.device, gpu());
  for (
    const read of [
      () => t.dataSync(),
      () => t.toArray(),
      () => tensorStorage(t),
      () => tensorValues(t),
    ]
  ) {
    assert.throws(
      read,
      (e: unknown) => e instanceof ResidencyError && /await t\.data\(\)/.test(String(e)),
    );
  }
  // Eager ops read their inputs on the host: the same typed error.
  assert.throws(() => nd.relu(t), ResidencyError);
  assert.deepEqual(await t.data(), new Float32Array([1, -2.5, 3]));
  assert.match(inspectTensor(t), /float16 \(3,\) webgpu\(0\)/);
  const host = await t.toDevice(cpu());
  assert.ok(!host.isResident && host.device === cpu());
  assert.deepEqual(host.dataSync(), new Float32Array([1, -2.5, 3]));
  assert.equal(state.reads, 2);
  assert.equal(await t.toDevice(gpu()), t);
  t.dispose();
  t.dispose();
  assert.equal(state.disposed, 1);
});

Deno.test("a host tensor moves between devices by relabelling, and to a mover by its upload", async () => {
  const x = nd.array([1, 2]);
  const onGpu = await x.toDevice(gpu());
  assert.ok(!onGpu.isResident && onGpu.device === gpu());
  assert.deepEqual(onGpu.dataSync(), x.dataSync());
  const moved: Tensor[] = [];
  const mover = {
    device: gpu(),
    upload(t: Tensor) {
      moved.push(t);
      const { storage } = held(tensorStorage(t));
      return Promise.resolve(new Tensor(storage, t.shape, t.dtype, gpu()));
    },
  };
  const up = await x.toDevice(mover);
  assert.ok(up.isResident && moved[0] === x);
  assert.throws(
    () => new Tensor(held(new Float32Array(1)).storage, [1], "float32"),
    /needs its \(non-CPU\) device/,
  );
});
