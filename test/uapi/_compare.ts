// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Shared by the wireguard-go comparison test (root, live) and the golden
 * replay test (no root): raw UAPI exchanges with fixed keys, how to send them
 * to a socket, how to normalise replies, and our side (an in-memory Device
 * behind a real UapiServer).
 */
import { Device } from "../../src/device.ts";
import type { Bind, ReceiveFn } from "../../src/conn/bind.ts";
import type { Endpoint } from "../../src/conn/endpoint.ts";
import { MemoryNetwork } from "../../src/conn/memory.ts";
import { MemoryTun } from "../../src/tun/memory.ts";
import { realClock } from "../../src/clock.ts";
import { deviceHandler } from "../../uapi/apply.ts";
import { UapiServer } from "../../uapi/server.ts";

/** Test keys (hex), from testdata/uapi/keys.json. */
export const KEYS = JSON.parse(
  Deno.readTextFileSync(new URL("../../testdata/uapi/keys.json", import.meta.url)),
) as Record<"self" | "a" | "b" | "c", { private: string; public: string }> & { psk: string };

/** Where recorded wireguard-go replies live. */
export const GOLDEN_URL = new URL("../../testdata/uapi/wireguard_go_raw.json", import.meta.url);

/** One raw exchange: bytes sent on a fresh connection, and how to read the answer. */
export interface RawCase {
  name: string;
  send: string;
  /** Shut down our sending side after writing (EOF for the daemon). */
  closeWrite?: boolean;
  /** Replies to wait for (default 1); 0 = read until the daemon closes. */
  replies?: number;
  /**
   * Set when our behaviour deliberately differs from wireguard-go
   * v0.0.20220316; the reason is reported and the case is not compared.
   */
  differs?: string;
}

/** A recorded case: what wireguard-go answered and its state afterwards. */
export interface RecordedCase extends RawCase {
  response: string;
  state: string;
}

const S = KEYS.self, A = KEYS.a, B = KEYS.b, C = KEYS.c;
const Z = "0".repeat(64);

function set(...lines: string[]): string {
  return `set=1\n${lines.map((l) => l + "\n").join("")}\n`;
}

function onA(...lines: string[]): string {
  return set(`public_key=${A.public}`, ...lines);
}

/** The exchanges, run in order against one interface (state carries over). */
export const RAW_CASES: RawCase[] = [
  { name: "listen_port fixed", send: set("listen_port=51820") },
  { name: "get fresh", send: "get=1\n\n" },
  { name: "private_key upper case", send: set(`private_key=${S.private.toUpperCase()}`) },
  { name: "private_key is clamped", send: set(`private_key=${"f".repeat(64)}`) },
  { name: "private_key and fwmark", send: set(`private_key=${S.private}`, "fwmark=4660") },
  { name: "private_key short", send: set(`private_key=${S.private.slice(2)}`) },
  { name: "private_key non-hex", send: set(`private_key=${"g" + S.private.slice(1)}`) },
  {
    name: "private_key base64",
    send: set("private_key=oPXaOGwUnUs+SOT+vfQ7ChaNvPRjE8/83Cc/zQ+Y4HI="),
  },
  { name: "fwmark hex", send: set("fwmark=0x10") },
  { name: "fwmark negative", send: set("fwmark=-1") },
  { name: "fwmark plus", send: set("fwmark=+5") },
  { name: "fwmark empty", send: set("fwmark=") },
  { name: "fwmark max", send: set("fwmark=4294967295") },
  { name: "fwmark overflow", send: set("fwmark=4294967296") },
  { name: "fwmark off", send: set("fwmark=0") },
  { name: "listen_port overflow", send: set("listen_port=65536") },
  { name: "listen_port leading zero", send: set("listen_port=051820") },
  { name: "listen_port space", send: set("listen_port= 51820") },
  { name: "replace_peers false", send: set("replace_peers=false") },
  { name: "replace_peers TRUE", send: set("replace_peers=TRUE") },
  { name: "unknown device key", send: set("bogus=1") },
  { name: "device key upper case", send: set("LISTEN_PORT=1") },
  { name: "device key leading space", send: set(" listen_port=1") },
  { name: "device key trailing space", send: set("listen_port =1") },
  { name: "protocol_version in device section", send: set("protocol_version=1") },
  { name: "line without =", send: set("listen_port=51820", "noequals", "fwmark=1") },
  { name: "empty key", send: set("=") },
  { name: "errno is not a key", send: set("errno=0") },
  {
    name: "peer a full",
    send: onA(
      "protocol_version=1",
      `preshared_key=${KEYS.psk}`,
      "endpoint=192.0.2.1:51820",
      "replace_allowed_ips=true",
      "allowed_ip=10.0.0.1/24",
      "allowed_ip=fd00::1/64",
    ),
  },
  { name: "protocol_version 2", send: onA("protocol_version=2") },
  { name: "protocol_version 01", send: onA("protocol_version=01") },
  { name: "device key in peer section", send: set(`public_key=${B.public}`, "listen_port=1") },
  {
    name: "remove then bad line",
    send: set(`public_key=${B.public}`, "remove=true", "allowed_ip=x"),
  },
  { name: "remove false", send: set(`public_key=${B.public}`, "remove=false") },
  { name: "remove b", send: set(`public_key=${B.public}`, "remove=true") },
  {
    name: "update_only new peer",
    send: set(`public_key=${C.public}`, "update_only=true", "allowed_ip=10.3.0.0/16"),
  },
  { name: "update_only existing peer", send: onA("update_only=true", "allowed_ip=10.4.0.0/16") },
  { name: "update_only bad", send: onA("update_only=1") },
  {
    name: "own public key is ignored",
    send: set(`public_key=${S.public}`, "allowed_ip=10.5.0.0/16"),
  },
  { name: "own public key still validated", send: set(`public_key=${S.public}`, "endpoint=nope") },
  { name: "public_key short", send: set(`public_key=${A.public.slice(1)}`) },
  {
    name: "public_key upper case",
    send: set(`public_key=${A.public.toUpperCase()}`, "allowed_ip=10.8.0.0/16"),
  },
  { name: "unknown peer key", send: onA("bogus=1") },
  { name: "preshared_key zero", send: onA(`preshared_key=${Z}`) },
  { name: "preshared_key short", send: onA("preshared_key=00") },
  { name: "keepalive max", send: onA("persistent_keepalive_interval=65535") },
  { name: "keepalive overflow", send: onA("persistent_keepalive_interval=65536") },
  { name: "keepalive negative", send: onA("persistent_keepalive_interval=-1") },
  { name: "keepalive off", send: onA("persistent_keepalive_interval=0") },
  { name: "endpoint port 0", send: onA("endpoint=192.0.2.1:0") },
  { name: "endpoint v4-mapped", send: onA("endpoint=[::ffff:192.0.2.1]:1") },
  { name: "endpoint v6", send: onA("endpoint=[2001:DB8:0:0::1]:65535") },
  { name: "endpoint leading zero port", send: onA("endpoint=192.0.2.2:00080") },
  { name: "endpoint no port", send: onA("endpoint=192.0.2.1") },
  { name: "endpoint empty port", send: onA("endpoint=192.0.2.1:") },
  { name: "endpoint port overflow", send: onA("endpoint=192.0.2.1:65536") },
  { name: "endpoint bracketed v4", send: onA("endpoint=[192.0.2.1]:1") },
  { name: "endpoint v6 unbracketed", send: onA("endpoint=2001:db8::1:1") },
  { name: "endpoint leading zero octet", send: onA("endpoint=192.0.2.01:1") },
  { name: "endpoint hostname", send: onA("endpoint=localhost:1") },
  { name: "endpoint trailing space", send: onA("endpoint=192.0.2.1:1 ") },
  {
    name: "endpoint numeric zone",
    send: onA("endpoint=[fe80::1%1]:1"),
    differs: "wireguard-go 0.0.20220316 drops the zone on output; newer versions (and we) keep it",
  },
  { name: "endpoint port six digits", send: onA("endpoint=192.0.2.3:000080") },
  { name: "endpoint embedded v4", send: onA("endpoint=[::192.0.2.4]:1") },
  { name: "endpoint unspecified v6", send: onA("endpoint=[::]:1") },
  {
    name: "endpoint zone name",
    send: onA("endpoint=[fe80::1%lo]:1"),
    differs: "wireguard-go 0.0.20220316 resolves the zone and drops it on output; newer " +
      "versions (and we) print it as written",
  },
  { name: "endpoint back", send: onA("endpoint=192.0.2.1:51820") },
  { name: "allowed_ip host bits", send: onA("allowed_ip=10.9.9.9/8") },
  { name: "allowed_ip v4-mapped", send: onA("allowed_ip=::ffff:10.0.0.1/128") },
  { name: "allowed_ip v6 host bits", send: onA("allowed_ip=fd00:1:2:3:4:5:6:7/48") },
  { name: "allowed_ip default routes", send: onA("allowed_ip=0.0.0.0/0", "allowed_ip=::/0") },
  { name: "allowed_ip embedded v4", send: onA("allowed_ip=::192.0.2.1/128") },
  { name: "allowed_ip upper case v6", send: onA("allowed_ip=FD0A::/16") },
  { name: "allowed_ip /0 with host bits", send: onA("allowed_ip=1.2.3.4/0") },
  { name: "allowed_ip no slash", send: onA("allowed_ip=10.0.0.0") },
  { name: "allowed_ip /33", send: onA("allowed_ip=10.0.0.0/33") },
  { name: "allowed_ip /129", send: onA("allowed_ip=::/129") },
  { name: "allowed_ip octet leading zero", send: onA("allowed_ip=010.0.0.0/8") },
  { name: "allowed_ip zone", send: onA("allowed_ip=fe80::1%1/64") },
  { name: "allowed_ip trailing space", send: onA("allowed_ip=10.12.0.0/16 ") },
  { name: "allowed_ip empty", send: onA("allowed_ip=") },
  {
    name: "second peer takes a prefix",
    send: set(`public_key=${B.public}`, "allowed_ip=10.0.0.0/8", "allowed_ip=10.13.0.0/16"),
  },
  {
    name: "allowed_ip re-insert order",
    send: onA("allowed_ip=10.6.0.0/16", "allowed_ip=10.7.0.0/16", "allowed_ip=10.6.0.0/16"),
  },
  {
    name: "allowed_ip bits leading zero",
    send: onA("allowed_ip=10.10.0.0/016"),
    differs:
      "Go 1.19's netip.ParsePrefix (this wireguard-go build) accepts /016; Go ≥ 1.22 and we reject it",
  },
  {
    name: "allowed_ip bits plus",
    send: onA("allowed_ip=10.11.0.0/+16"),
    differs:
      "Go 1.19's netip.ParsePrefix (this wireguard-go build) accepts /+16; Go ≥ 1.22 and we reject it",
  },
  {
    name: "allowed_ip removal",
    send: onA("allowed_ip=-10.6.0.0/16"),
    differs: "'-' removal is wireguard-go ≥ 0.0.20250515; 0.0.20220316 rejects it (EINVAL)",
  },
  { name: "replace_allowed_ips", send: onA("replace_allowed_ips=true", "allowed_ip=10.0.0.0/24") },
  { name: "replace_allowed_ips bad", send: onA("replace_allowed_ips=yes") },
  { name: "private_key of a peer removes it", send: set(`private_key=${B.private}`) },
  { name: "private_key back", send: set(`private_key=${S.private}`) },
  { name: "zero public_key with a key set", send: set(`public_key=${Z}`, "update_only=true") },
  {
    name: "replace_peers",
    send: set("replace_peers=true", `public_key=${C.public}`, "allowed_ip=10.14.0.0/16"),
  },
  { name: "private_key none", send: set(`private_key=${Z}`) },
  {
    name: "zero public_key without a key",
    send: set(`public_key=${Z}`, "allowed_ip=10.15.0.0/16"),
    differs: "after its key is cleared, wireguard-go's own public key is X25519(clamp(0)), so an " +
      "all-zero public_key creates a peer; we ignore it whenever there is no private key " +
      "(as wireguard-go does before any key was set)",
  },
  {
    name: "private_key again and no zero peer",
    send: set(`private_key=${S.private}`, `public_key=${Z}`, "remove=true"),
  },
  { name: "CRLF lines", send: "set=1\r\nlisten_port=51820\r\n\r\n", replies: 0 },
  { name: "CR dropped in set", send: "set=1\nfwmark=7\r\n\r\n" },
  { name: "get twice", send: "get=1\n\nget=1\n\n", replies: 2 },
  { name: "get trailing character", send: "get=1\nx" },
  { name: "get with CR", send: "get=1\r\n\r\n", replies: 0 },
  { name: "unknown operation", send: "get=2\n\n", replies: 0 },
  { name: "empty operation", send: "\n", replies: 0 },
  { name: "set then EOF", send: "set=1\nfwmark=8", closeWrite: true, replies: 0 },
  { name: "get then EOF", send: "get=1\n", closeWrite: true, replies: 0 },
  { name: "empty set", send: "set=1\n\n" },
  { name: "set line too long", send: set("fwmark=9", "x=" + "y".repeat(70000)) },
  {
    name: "get pipelined after set",
    send: "set=1\nfwmark=10\n\nget=1\n\n",
    replies: 2,
    differs: "wireguard-go's line scanner swallows an operation pipelined after a set",
  },
  { name: "final state", send: "get=1\n\n" },
];

/**
 * Sends `c.send` on a new connection to `path` and returns what came back:
 * `replies` blank-line-terminated replies, or everything up to EOF, within
 * `timeoutMs`.
 */
export async function exchangeRaw(path: string, c: RawCase, timeoutMs = 2000): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  const replies = c.replies ?? 1;
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await conn.write(new TextEncoder().encode(c.send));
    if (c.closeWrite) await conn.closeWrite();
    const dec = new TextDecoder();
    const buf = new Uint8Array(65536);
    const timeout = new Promise<null>((r) => (timer = setTimeout(() => r(null), timeoutMs)));
    while (replies === 0 || (text.match(/\n\n/g) ?? []).length < replies) {
      const n = await Promise.race([conn.read(buf).catch(() => null), timeout]);
      if (n === null) break;
      text += dec.decode(buf.subarray(0, n));
    }
  } finally {
    clearTimeout(timer);
    conn.close();
  }
  return text;
}

/** Runs one case, then a `get` for the state it left (both normalised). */
export async function runRaw(
  path: string,
  c: RawCase,
): Promise<{ response: string; state: string }> {
  const response = await exchangeRaw(path, c);
  const state = normalizeGet(await exchangeRaw(path, { name: "state", send: "get=1\n\n" }));
  return { response: c.send.startsWith("get=1\n\n") ? normalizeGet(response) : response, state };
}

/** Sorts the peer sections of a get reply (wireguard-go lists peers in Go map order). */
export function normalizeGet(text: string): string {
  const replies = text.split(/(?<=\nerrno=-?[0-9]+\n\n)/);
  return replies.length > 1 ? replies.map(normalizeGet).join("") : normalizeOne(text);
}

function normalizeOne(text: string): string {
  const [head, ...peers] = text.split(/(?=^public_key=)/m);
  if (peers.length === 0) return text;
  const last = peers[peers.length - 1];
  const tail = last.indexOf("errno=");
  let trailer = "";
  if (tail >= 0) {
    trailer = last.slice(tail);
    peers[peers.length - 1] = last.slice(0, tail);
  }
  return head + peers.sort().join("") + trailer;
}

/** A Bind whose sends all fail, like wireguard-go in a namespace with no routes. */
export class UnreachableBind implements Bind {
  #inner: Bind;
  constructor(inner: Bind) {
    this.#inner = inner;
  }
  open(port: number, receive: ReceiveFn): number {
    return this.#inner.open(port, receive);
  }
  close(): void {
    this.#inner.close();
  }
  setMark(mark: number): void {
    this.#inner.setMark(mark);
  }
  send(_data: Uint8Array, _endpoint: Endpoint): boolean {
    return false;
  }
}

/** Our side of a comparison: in-memory devices, each behind a UapiServer. */
export class OurSide {
  readonly network = new MemoryNetwork(realClock);
  readonly devices: Device[] = [];
  readonly servers: UapiServer[] = [];

  /**
   * Adds a device that is up at once, as wireguard-go's TUN reports "up" at
   * creation, on a shared address so that ports can collide.
   */
  async add(iface: string, dir?: string): Promise<UapiServer> {
    const bind = new UnreachableBind(this.network.createBind({ v4: "198.18.0.1", v6: "fd18::1" }));
    const device = new Device({ tun: new MemoryTun(), bind, name: iface });
    device.up();
    this.devices.push(device);
    const server = await UapiServer.listen({ iface, handle: deviceHandler(device), dir });
    this.servers.push(server);
    return server;
  }

  close(): void {
    for (const s of this.servers) s.close();
    for (const d of this.devices) d.close();
  }
}
