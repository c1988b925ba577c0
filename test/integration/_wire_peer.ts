// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Test helper run inside a network namespace by wireguard_go_wire_test.ts: the
 * protocol core (Device) with a MemoryTun and a small UDP bind over
 * Deno.listenDatagram, talking to a real wireguard-go. It either pings the
 * wireguard-go side (initiator) or answers its pings (responder), then prints
 * a JSON summary on stdout. Config comes in GOTATUN_WIRE_CONFIG (JSON).
 */
import { Device } from "../../src/device.ts";
import { MemoryTun } from "../../src/tun/memory.ts";
import { Endpoint } from "../../src/conn/endpoint.ts";
import type { Bind, ReceiveFn } from "../../src/conn/bind.ts";
import { parseIPv4, parseIPv6 } from "../../src/ip.ts";
import { echoReply, echoRequest, isEchoReply } from "../_util/packets.ts";

interface Config {
  privateKey: string; // hex
  peerPublicKey: string; // hex
  presharedKey?: string;
  listenPort: number;
  peerEndpoint?: string;
  ours: string; // tunnel address of ours
  theirs: string; // tunnel address of wireguard-go
  mode: "initiator" | "responder";
  count: number;
  timeoutMs: number;
}

const fromHex = (h: string): Uint8Array => Uint8Array.fromHex(h);

/** A minimal Bind over Deno's UDP API, for this test only. */
class DenoUdpBind implements Bind {
  #conn: Deno.DatagramConn | null = null;
  open(port: number, receive: ReceiveFn): number {
    this.#conn = Deno.listenDatagram({ transport: "udp", hostname: "::", port });
    const conn = this.#conn;
    (async () => {
      try {
        for await (const [data, addr] of conn) {
          const a = addr as Deno.NetAddr;
          let host = a.hostname;
          if (host.startsWith("::ffff:")) host = host.slice(7);
          const v4 = parseIPv4(host);
          const ep = v4 ? new Endpoint(4, v4, a.port) : new Endpoint(6, parseIPv6(host)!, a.port);
          receive(data, ep);
        }
      } catch { /* closed */ }
    })();
    return (conn.addr as Deno.NetAddr).port;
  }
  close(): void {
    this.#conn?.close();
    this.#conn = null;
  }
  setMark(): void {}
  send(data: Uint8Array, ep: Endpoint): boolean {
    if (!this.#conn) return false;
    const host = ep.family === 4
      ? `::ffff:${ep.toString().split(":")[0]}`
      : ep.toString().slice(1).split("]")[0];
    this.#conn.send(data.slice(), { transport: "udp", hostname: host, port: ep.port }).catch(
      () => {},
    );
    return true;
  }
}

const cfg: Config = JSON.parse(Deno.env.get("GOTATUN_WIRE_CONFIG")!);
const tun = new MemoryTun();
const device = new Device({ tun, bind: new DenoUdpBind(), name: "wire" });
device.setPrivateKey(fromHex(cfg.privateKey));
device.setListenPort(cfg.listenPort);
const peer = device.newPeer(fromHex(cfg.peerPublicKey));
if (cfg.presharedKey) peer.setPresharedKey(fromHex(cfg.presharedKey));
if (cfg.peerEndpoint) peer.setEndpoint(Endpoint.parse(cfg.peerEndpoint));
const theirs = cfg.theirs.includes(":")
  ? { f: 6 as const, ip: parseIPv6(cfg.theirs)! }
  : { f: 4 as const, ip: parseIPv4(cfg.theirs)! };
device.allowedIps.insert(theirs.f, theirs.ip, theirs.f === 4 ? 32 : 128, peer);
device.up();

let replies = 0;
let requestsAnswered = 0;
tun.onPacket = (p) => {
  if (isEchoReply(p)) {
    replies++;
    return;
  }
  const r = echoReply(p);
  if (r) {
    requestsAnswered++;
    device.handleTunPacket(r);
    device.flush();
  }
};
const deadline = Date.now() + cfg.timeoutMs;
let seq = 0;
while (Date.now() < deadline) {
  if (cfg.mode === "initiator") {
    if (replies >= cfg.count) break;
    device.handleTunPacket(echoRequest(cfg.ours, cfg.theirs, 0x4242, ++seq));
    device.flush();
  } else if (requestsAnswered >= cfg.count) break;
  await new Promise((r) => setTimeout(r, 200));
}
// Let the last reply and anything in flight settle before counting.
await new Promise((r) => setTimeout(r, 500));
const hs = peer.lastHandshakeTime();
const out = {
  replies,
  requestsAnswered,
  handshake: hs.sec > 0,
  rxBytes: peer.rxBytes,
  txBytes: peer.txBytes,
  stats: device.stats,
};
device.close();
Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(out) + "\n"));
Deno.exit(0);
