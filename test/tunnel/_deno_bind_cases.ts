// SPDX-License-Identifier: Apache-2.0
// Run by deno_bind_test.ts in a child `deno test --unstable-net --deny-ffi`:
// a Tunnel without FFI, as on macOS, Windows or under --deny-ffi, runs on
// Deno's own UDP sockets (DenoUdpBind) and the noble crypto. Two such
// Tunnels on loopback move data byte-exact over TCP both ways and exchange
// datagrams.
import assert from "node:assert/strict";
import { DenoUdpBind } from "../../src/conn/deno_udp.ts";
import { cryptoBackend } from "../../src/crypto.ts";
import { assertTcpBothWays, loopbackTunnels } from "./_pair.ts";

Deno.test("without FFI a Tunnel runs on DenoUdpBind: 300 kB each way over TCP, byte-exact", async () => {
  assert.equal(Deno.permissions.querySync({ name: "ffi" }).state, "denied");
  const { a, b } = await loopbackTunnels("10.79.0");
  try {
    assert.ok(a.device.bind instanceof DenoUdpBind, "the portable bind");
    assert.equal(cryptoBackend().name, "noble");
    await assertTcpBothWays(a, b, "10.79.0", 300_000, [5, 6]);
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
