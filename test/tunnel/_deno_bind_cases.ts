// SPDX-License-Identifier: Apache-2.0
// Run by deno_bind_test.ts in a child `deno test --unstable-net --deny-ffi`:
// a Tunnel without FFI, as on macOS, Windows or under --deny-ffi, runs on
// Deno's own UDP sockets (DenoUdpBind) and the noble crypto. Two such
// Tunnels on loopback move data byte-exact over TCP both ways and exchange
// datagrams.
import assert from "node:assert/strict";
import { DenoUdpBind } from "../../src/conn/deno_udp.ts";
import { cryptoBackend } from "../../src/crypto.ts";
import { bytes, loopbackTunnels, readAll, writeAll } from "./_pair.ts";

Deno.test("without FFI a Tunnel runs on DenoUdpBind: 300 kB each way over TCP, byte-exact", async () => {
  assert.equal(Deno.permissions.querySync({ name: "ffi" }).state, "denied");
  const { a, b } = await loopbackTunnels("10.79.0");
  try {
    assert.ok(a.device.bind instanceof DenoUdpBind, "the portable bind");
    assert.equal(cryptoBackend().name, "noble");
    const l = b.listen({ port: 7000 });
    const up = bytes(300_000, 5), down = bytes(300_000, 6);
    const [ca, cb] = await Promise.all([
      a.connect({ hostname: "10.79.0.2", port: 7000, timeoutMs: 10_000 }),
      l.accept(),
    ]);
    const [gotB, gotA] = await Promise.all([
      readAll(cb.readable),
      readAll(ca.readable),
      writeAll(ca.writable, up),
      writeAll(cb.writable, down),
    ]);
    assert.ok(gotB.length === up.length && gotB.every((v, i) => v === up[i]), "A to B");
    assert.ok(gotA.length === down.length && gotA.every((v, i) => v === down[i]), "B to A");
    l.close();
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("without FFI a Tunnel's datagrams go both ways", async () => {
  const { a, b } = await loopbackTunnels("10.79.0");
  try {
    const da = a.datagram({ port: 5000 }), db = b.datagram({ port: 5001 });
    const msg = new TextEncoder().encode("ping through DenoUdpBind");
    // The first datagram starts the handshake; resend until one arrives.
    let got: Uint8Array | null = null;
    for (let i = 0; i < 50 && got === null; i++) {
      await da.send(msg, { hostname: "10.79.0.2", port: 5001 });
      const r = await db.receive({ timeoutMs: 100 }).catch(() => null);
      if (r) got = r[0];
    }
    assert.deepEqual(got, msg);
    await db.send(new TextEncoder().encode("pong"), { hostname: "10.79.0.1", port: 5000 });
    const [back] = await da.receive({ timeoutMs: 5000 });
    assert.equal(new TextDecoder().decode(back), "pong");
    da.close();
    db.close();
  } finally {
    a.close();
    b.close();
  }
});
