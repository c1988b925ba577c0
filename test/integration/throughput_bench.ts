// SPDX-License-Identifier: Apache-2.0
/**
 * In-memory throughput of the whole device (encrypt, route, decrypt) for
 * 64-byte and 1420-byte packets, as GotaTun's throughput benches: the cost of
 * the protocol core per packet, without syscalls.
 */
import { devicePair } from "../_util/device_pair.ts";
import { ipv4Packet, payload } from "../_util/packets.ts";
import { useBestCryptoBackend } from "../../src/crypto/select.ts";

// GOTATUN_CRYPTO=native|noble|auto picks the backend, as in the daemon.
const selection = useBestCryptoBackend(Deno.env.get("GOTATUN_CRYPTO"));

function setup(size: number) {
  const p = devicePair();
  const pkt = ipv4Packet("10.0.0.1", "10.0.0.2", payload(size - 28));
  p.a.device.handleTunPacket(pkt);
  for (let i = 0; i < 20; i++) p.clock.advance(0);
  p.b.tun.onPacket = null;
  return { p, pkt };
}

for (const size of [64, 1420]) {
  const { p, pkt } = setup(size);
  Deno.bench(`device (${selection.backend.name}): A → B ${size}-byte packets, 100 per iteration`, {
    group: `throughput ${size}`,
  }, () => {
    for (let i = 0; i < 100; i++) p.a.device.handleTunPacket(pkt);
    p.clock.advance(0);
    p.b.tun.received.length = 0;
  });
}
