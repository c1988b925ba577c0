// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Replays the raw UAPI exchanges recorded from wireguard-go v0.0.20220316
 * (testdata/uapi/wireguard_go_raw.json, written by wireguard_go_test.ts with
 * GTU_UPDATE_GOLDEN=1) against our UapiServer + in-memory Device, in a
 * temporary socket directory: no root, no wireguard-go needed.
 */
import assert from "node:assert/strict";
import { GOLDEN_URL, OurSide, type RecordedCase, runRaw } from "./_compare.ts";

Deno.test("UapiServer + ipcSet/ipcGet replay wireguard-go's recorded replies", async () => {
  const cases = JSON.parse(await Deno.readTextFile(GOLDEN_URL)) as RecordedCase[];
  assert.ok(cases.length > 50);
  const dir = await Deno.makeTempDir({ prefix: "gtu-uapi-golden-" });
  const side = new OurSide();
  const mismatches: string[] = [];
  try {
    const server = await side.add("gtugolden0", dir);
    for (const c of cases) {
      const got = await runRaw(server.path, c);
      if (c.differs) continue;
      try {
        assert.deepEqual(got, { response: c.response, state: c.state });
      } catch {
        mismatches.push(
          `${c.name}: ${JSON.stringify(c.send.slice(0, 200))}\n` +
            `--- wireguard-go:\n${c.response}${c.state}\n--- ours:\n${got.response}${got.state}`,
        );
      }
    }
  } finally {
    side.close();
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(mismatches.length, 0, mismatches.join("\n\n"));
});
