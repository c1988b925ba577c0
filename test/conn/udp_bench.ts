// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * LinuxBind over loopback: one iteration queues 64 datagrams (one sendmmsg
 * batch), flushes, and drains them on the other bind with recvmmsg. Only
 * ephemeral UDP ports on 127.0.0.1 are used; no interface is touched.
 * Run with `deno bench -A test/conn/udp_bench.ts`.
 */
import { BATCH_SIZE, LinuxBind } from "../../src/conn/udp.ts";
import { Endpoint } from "../../src/conn/endpoint.ts";

let received = 0;
const tx = new LinuxBind(), rx = new LinuxBind();
tx.open(0, () => {});
const port = rx.open(0, () => received++);
const to = Endpoint.parse(`127.0.0.1:${port}`);

for (const size of [128, 1420]) {
  const payload = new Uint8Array(size).fill(0xaa);
  Deno.bench({
    name: `LinuxBind ${BATCH_SIZE} × ${size} B: send, flush, drain (loopback)`,
    group: "udp",
    baseline: size === 128,
    fn() {
      for (let i = 0; i < BATCH_SIZE; i++) tx.send(payload, to);
      tx.flush();
      const want = received + BATCH_SIZE;
      // Loopback delivery happens inside sendmmsg; a few extra drains cover softirq lag.
      for (let spins = 0; received < want && spins < 1000; spins++) rx.drain();
    },
  });
}

globalThis.addEventListener("unload", () => {
  tx.close();
  rx.close();
});
