// SPDX-License-Identifier: Apache-2.0
// UDP forwarding (-L …/udp, -R …/udp) end to end: the cases in
// _forward_udp_cases.ts need Deno.listenDatagram, so they run in a child
// `deno test --unstable-net`; this test passes only if every case there does.
import assert from "node:assert/strict";
import { denoTestChild } from "../_util/proc.ts";

Deno.test("forward udp: the cases of _forward_udp_cases.ts pass under --unstable-net", async () => {
  const cases = new URL("./_forward_udp_cases.ts", import.meta.url).pathname;
  const r = await denoTestChild(["-A", "--unstable-net", "--no-prompt", cases]);
  assert.equal(r.code, 0, r.text);
  assert.ok(r.passed >= 7, r.text);
});
