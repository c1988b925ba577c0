// SPDX-License-Identifier: Apache-2.0
// PolledLinuxBind: the FFI UDP edge driven from Deno's event loop, on loopback.
// Two Tunnels (one process) move 2 MB each way byte-exact through it, and
// close() ends the pool thread's wait (the op sanitizer would see it left over).
import assert from "node:assert/strict";
import { PolledLinuxBind, preferredBind } from "../../src/conn/polled_bind.ts";
import { Endpoint } from "../../src/conn/endpoint.ts";
import { assertTcpBothWays, loopbackTunnels } from "../tunnel/_pair.ts";

Deno.test("PolledLinuxBind: datagrams in both directions, a drain per wake-up, close ends the wait", async () => {
  const a = new PolledLinuxBind(), b = new PolledLinuxBind();
  const gotA: string[] = [], gotB: string[] = [];
  let flushes = 0;
  const pa = a.open(0, (d) => gotA.push(new TextDecoder().decode(d)));
  const pb = b.open(0, (d) => gotB.push(new TextDecoder().decode(d)));
  a.afterDrain = () => flushes++;
  try {
    const toB = new Endpoint(4, new Uint8Array([127, 0, 0, 1]), pb);
    const toA = new Endpoint(4, new Uint8Array([127, 0, 0, 1]), pa);
    for (let i = 0; i < 100; i++) assert.ok(b.send(new TextEncoder().encode(`b${i}`), toA));
    b.flush();
    assert.ok(a.send(new TextEncoder().encode("a0"), toB));
    a.flush();
    for (let i = 0; i < 200 && (gotA.length < 100 || gotB.length < 1); i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.deepEqual(gotA, Array.from({ length: 100 }, (_, i) => `b${i}`));
    assert.deepEqual(gotB, ["a0"]);
    assert.ok(a.wakeups >= 1 && a.wakeups <= 100, `wakeups ${a.wakeups}`);
    assert.equal(a.drained, 100);
    assert.equal(flushes, a.wakeups);
  } finally {
    a.close();
    b.close();
  }
  await Promise.all([a.stopped(), b.stopped()]);
  assert.equal(a.port, 0);
  // Reopening works after a close.
  a.open(0, () => {});
  assert.ok(a.port > 0);
  a.close();
  await a.stopped();
});

Deno.test("preferredBind: the FFI bind when FFI is granted (this test runs with -A)", () => {
  assert.ok(preferredBind() instanceof PolledLinuxBind);
});

Deno.test("Tunnel on PolledLinuxBind over loopback: 2 MB each way byte-exact", async () => {
  const { a, b } = await loopbackTunnels("10.78.0");
  try {
    assert.ok(a.device.bind instanceof PolledLinuxBind);
    await assertTcpBothWays(a, b, "10.78.0", 2_000_000, [3, 4]);
  } finally {
    a.close();
    b.close();
  }
  await Promise.all([
    (a.device.bind as PolledLinuxBind).stopped(),
    (b.device.bind as PolledLinuxBind).stopped(),
  ]);
});
