// SPDX-License-Identifier: Apache-2.0
/** Tests for the start-up warm-up (src/warmup.ts). */
import assert from "node:assert/strict";
import { warmUp, warmUpHandshakes } from "../src/warmup.ts";
import { seededRng } from "./_util/fake_clock.ts";

Deno.test("warmUp() carries every packet both ways, IPv4 and IPv6, through a real handshake", () => {
  // rounds × 2 families × 2 directions, each delivered to the other side's TUN.
  assert.equal(warmUp(seededRng(1)), 16);
  assert.equal(warmUp(seededRng(2), 1), 4);
});

Deno.test("warmUp() leaves nothing scheduled on the real clock (the test would leak timers)", () => {
  // Deno's sanitizers fail this test if a timer or an op is left behind.
  warmUp(seededRng(3), 2);
});

Deno.test("warmUpHandshakes() completes every handshake, inline and by the split path", () => {
  assert.equal(warmUpHandshakes(seededRng(4), 10), 10);
});
