// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * LinuxBind over loopback. Only ephemeral UDP ports on 127.0.0.1 are used; no
 * interface is touched. Run with `deno bench -A test/conn/udp_bench.ts`.
 * Every iteration moves one batch of 64 datagrams (one sendmmsg batch);
 * divide the time per iteration by 64 for the time per datagram.
 *
 * - group "udp": send, flush and drain with the defaults (GSO and GRO on).
 * - group "gso send": 64 × 1452 B (a full-MTU WireGuard datagram) with and
 *   without GSO; only `send` + `flush` are timed, the receiver (GRO off) is
 *   drained outside the timed part. On loopback the kernel delivers inside
 *   sendmmsg, so the time includes the receive side's softirq work; GSO skips
 *   most of it by carrying the batch as one skb as far as the socket.
 * - group "gso round trip": the same plus the receiver's drain, for the
 *   combinations GSO/GRO off/on.
 */
import { BATCH_SIZE, LinuxBind } from "../../src/conn/udp.ts";
import { Endpoint } from "../../src/conn/endpoint.ts";

let received = 0;
const binds: LinuxBind[] = [];

function pair(gso: boolean, gro: boolean): { tx: LinuxBind; rx: LinuxBind; to: Endpoint } {
  const tx = new LinuxBind({ gso }), rx = new LinuxBind({ gro });
  tx.open(0, () => {});
  const port = rx.open(0, () => received++);
  binds.push(tx, rx);
  return { tx, rx, to: Endpoint.parse(`127.0.0.1:${port}`) };
}

/** Drains `rx` until `want` datagrams have arrived (loopback softirq may lag a little). */
function drainUntil(rx: LinuxBind, want: number): void {
  for (let spins = 0; received < want && spins < 1000; spins++) rx.drain();
}

const defaults = pair(true, true);
for (const size of [128, 1420]) {
  const payload = new Uint8Array(size).fill(0xaa);
  const { tx, rx, to } = defaults;
  Deno.bench({
    name: `LinuxBind ${BATCH_SIZE} × ${size} B: send, flush, drain (loopback)`,
    group: "udp",
    baseline: size === 128,
    fn() {
      for (let i = 0; i < BATCH_SIZE; i++) tx.send(payload, to);
      tx.flush();
      drainUntil(rx, received + BATCH_SIZE);
    },
  });
}

const mtuPayload = new Uint8Array(1452).fill(0x55);
for (const gso of [false, true]) {
  const { tx, rx, to } = pair(gso, false);
  Deno.bench({
    name: `${BATCH_SIZE} × 1452 B send + flush, GSO ${gso ? "on" : "off"}`,
    group: "gso send",
    baseline: !gso,
    fn(b) {
      const want = received + BATCH_SIZE;
      b.start();
      for (let i = 0; i < BATCH_SIZE; i++) tx.send(mtuPayload, to);
      tx.flush();
      b.end();
      drainUntil(rx, want);
    },
  });
}

for (const [gso, gro] of [[false, false], [true, false], [true, true]]) {
  const { tx, rx, to } = pair(gso, gro);
  Deno.bench({
    name: `${BATCH_SIZE} × 1452 B send, flush, drain: GSO ${gso ? "on" : "off"}, GRO ${
      gro ? "on" : "off"
    }`,
    group: "gso round trip",
    baseline: !gso && !gro,
    fn() {
      for (let i = 0; i < BATCH_SIZE; i++) tx.send(mtuPayload, to);
      tx.flush();
      drainUntil(rx, received + BATCH_SIZE);
    },
  });
}

globalThis.addEventListener("unload", () => {
  for (const b of binds) b.close();
});
