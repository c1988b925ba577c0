// SPDX-License-Identifier: Apache-2.0
/**
 * WorkerCryptoPool: the same bytes as the inline pool, every job done exactly
 * once, and a device pair working through it.
 */
import assert, { deepEqual, equal } from "node:assert/strict";
import { InlineCryptoPool, JOB_OPEN, JOB_SEAL, JobBatch } from "../src/crypto_pool.ts";
import { inWorker, WorkerCryptoPool } from "../src/crypto_workers.ts";
import { seededRng } from "./_util/fake_clock.ts";
import { waitFor } from "./_util/proc.ts";

const entry = new URL("./_util/crypto_worker_entry.ts", import.meta.url);

function fill(batch: JobBatch, seed: number, op: number, n: number): void {
  const rng = seededRng(seed);
  const key = new Uint8Array(32);
  for (let i = 0; i < n; i++) {
    rng(key);
    const len = 32 + ((i * 37) % 1400);
    const j = batch.add(op, len, key, i, i >> 3);
    const msg = batch.data.subarray(batch.offsetOf(j), batch.offsetOf(j) + len);
    rng(msg);
  }
}

Deno.test("inWorker() is false on the main thread", () => {
  equal(inWorker(), false);
});

Deno.test({
  name: "WorkerCryptoPool.run() gives the inline pool's bytes and verdicts",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const pool = new WorkerCryptoPool({ workers: 2, entry, cryptoEnv: "auto" });
    const shared = new JobBatch({ shared: true, dataSize: 1 << 20 });
    pool.attach(shared);
    try {
      assert(await waitFor(() => pool.readyWorkers === 2, 20_000), "workers did not start");
      // Seal: identical bytes.
      const local = new JobBatch({ dataSize: 1 << 20 });
      fill(local, 5, JOB_SEAL, 200);
      fill(shared, 5, JOB_SEAL, 200);
      new InlineCryptoPool().run(local);
      pool.run(shared);
      deepEqual(shared.data.subarray(0, shared.used), local.data.subarray(0, local.used));
      deepEqual(shared.meta, local.meta);
      // Open what was sealed, with every third message corrupted: same verdicts,
      // same plaintext where it authenticates (failed opens leave bytes unspecified).
      const sealed = local.data.slice(0, local.used);
      shared.reset();
      const opened = new JobBatch({ dataSize: 1 << 20 });
      const rng = seededRng(5);
      const key = new Uint8Array(32);
      for (let i = 0; i < 200; i++) {
        rng(key);
        const len = local.lengthOf(i);
        const msg = sealed.slice(local.offsetOf(i), local.offsetOf(i) + len);
        rng(new Uint8Array(len)); // keep the key stream in step with fill()
        if (i % 3 === 0) msg[len - 1] ^= 1;
        for (const b of [shared, opened]) {
          const j = b.add(JOB_OPEN, len, key, i, i >> 3);
          b.data.set(msg, b.offsetOf(j));
        }
      }
      new InlineCryptoPool().run(opened);
      pool.run(shared);
      for (let i = 0; i < 200; i++) {
        equal(shared.ok(i), i % 3 !== 0, `verdict of job ${i}`);
        equal(opened.ok(i), i % 3 !== 0);
        if (shared.ok(i)) {
          const o = shared.offsetOf(i), l = shared.lengthOf(i);
          deepEqual(
            shared.data.subarray(o + 16, o + l - 16),
            opened.data.subarray(o + 16, o + l - 16),
          );
        }
      }
    } finally {
      pool.close();
    }
  },
});
