/** The training examples run and reach what they state. */
import { finetune } from "../../examples/finetune.ts";
import { pureSgd } from "../../examples/pure_sgd.ts";
import { trainLenet } from "../../examples/train_lenet.ts";
import { trainMlp } from "../../examples/train_mlp.ts";
import { assert } from "../util.ts";

Deno.test("examples/train_mlp.ts reaches 90% training accuracy on the spirals", () => {
  assert.ok(trainMlp() >= 0.9);
});

Deno.test("examples/finetune.ts: the head learns on a frozen imported backbone", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { before, after } = await finetune(dir);
    assert.ok(after < 0.85 * before, `${before} -> ${after}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("examples/train_lenet.ts reaches 95% test accuracy on the generated digits", () => {
  const { test } = trainLenet();
  assert.ok(test >= 0.95, `test accuracy ${test}`);
});

Deno.test("examples/pure_sgd.ts: the error falls below a twentieth in 300 steps", async () => {
  const { before, after } = await pureSgd();
  assert.ok(after < before / 20, `${before} -> ${after}`);
});
