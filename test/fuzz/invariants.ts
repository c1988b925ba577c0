// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Invariants of a Device that must hold whatever it was fed, shared by the
 * fuzz targets and the soak:
 *
 * - structure sizes stay bounded: the receiver index table holds at most one
 *   handshake and three keypairs per peer (kernel `peerlookup.c` entries:
 *   handshake + previous/current/next), the handshake queue at most
 *   QUEUE_HANDSHAKE_SIZE, each peer at most QUEUE_STAGED_SIZE staged packets;
 * - the allowed-IPs trie agrees with the per-peer lists UAPI prints;
 * - the UAPI `get` output parses, in wireguard-go's key order, and setting it
 *   on a fresh device reproduces it (minus the counters only `get` has).
 */
import { Device } from "../../src/device.ts";
import { MemoryNetwork } from "../../src/conn/memory.ts";
import { MemoryTun } from "../../src/tun/memory.ts";
import { FakeClock, seededRng } from "../_util/fake_clock.ts";
import { QUEUE_HANDSHAKE_SIZE, QUEUE_STAGED_SIZE } from "../../src/constants.ts";
import { ipcGet, ipcSet } from "../../uapi/apply.ts";
import { parseLines } from "../../uapi/protocol.ts";

/** Most receiver indices one peer can own: its handshake and three keypairs. */
export const INDICES_PER_PEER = 4;

/** Sizes of a device's bounded structures, for reports. */
export interface DeviceSizes {
  peers: number;
  indexTable: number;
  handshakeQueue: number;
  staged: number;
  ratelimiter: number;
  allowedIps: number;
}

/** Current sizes of `device`'s structures. */
export function deviceSizes(device: Device): DeviceSizes {
  let staged = 0;
  let allowed = 0;
  for (const peer of device.peers()) {
    staged += peer.stagedCount;
    allowed += device.allowedIps.entriesFor(peer).length;
  }
  return {
    peers: device.peerCount,
    indexTable: device.indexTable.size,
    handshakeQueue: device.handshakeQueueLength,
    staged,
    ratelimiter: device.ratelimiter.size,
    allowedIps: allowed,
  };
}

/** Violations of the structure bounds of `device` (empty when fine). */
export function checkBounds(device: Device): string[] {
  const out: string[] = [];
  const name = device.name;
  if (device.indexTable.size > INDICES_PER_PEER * device.peerCount) {
    out.push(
      `${name}: index table holds ${device.indexTable.size} entries for ${device.peerCount} peers`,
    );
  }
  if (device.handshakeQueueLength > QUEUE_HANDSHAKE_SIZE) {
    out.push(`${name}: handshake queue ${device.handshakeQueueLength} > ${QUEUE_HANDSHAKE_SIZE}`);
  }
  for (const peer of device.peers()) {
    if (peer.stagedCount > QUEUE_STAGED_SIZE) {
      out.push(`${name}: ${peer} has ${peer.stagedCount} staged packets`);
    }
    const kps = peer.keypairs;
    for (const kp of [kps.previous, kps.current, kps.next]) {
      if (kp && device.indexTable.lookup(kp.localIndex)?.keypair !== kp) {
        out.push(`${name}: ${peer} keypair ${kp.localIndex} is not in the index table`);
      }
    }
  }
  for (const [k, v] of Object.entries(device.stats)) {
    if (!Number.isSafeInteger(v) || v < 0) out.push(`${name}: stats.${k} = ${v}`);
  }
  return out;
}

/**
 * Checks that every prefix a peer lists routes to that peer (or to an owner
 * of a more specific prefix) and that no prefix is listed twice.
 */
export function checkAllowedIps(device: Device): string[] {
  const out: string[] = [];
  const seen = new Map<string, string>();
  const owners = new Map<unknown, { family: 4 | 6; ip: Uint8Array; cidr: number }[]>();
  for (const peer of device.peers()) owners.set(peer, device.allowedIps.entriesFor(peer));
  for (const [peer, entries] of owners) {
    for (const e of entries) {
      const key = `${e.family}/${e.ip.join(".")}/${e.cidr}`;
      const prev = seen.get(key);
      if (prev !== undefined) {
        out.push(`${device.name}: prefix ${key} listed by ${prev} and ${peer}`);
      }
      seen.set(key, String(peer));
      const got = device.allowedIps.lookup(e.family, e.ip);
      if (got === peer) continue;
      // Another peer may own a longer prefix covering this address.
      const theirs = got ? owners.get(got) ?? [] : [];
      if (!theirs.some((t) => t.family === e.family && t.cidr > e.cidr && covers(t, e.ip))) {
        out.push(`${device.name}: ${key} of ${peer} routes to ${got ?? "nobody"}`);
      }
    }
  }
  return out;
}

function covers(p: { ip: Uint8Array; cidr: number }, ip: Uint8Array): boolean {
  for (let bit = 0; bit < p.cidr; bit++) {
    const i = bit >> 3, m = 0x80 >> (bit & 7);
    if ((p.ip[i] & m) !== (ip[i] & m)) return false;
  }
  return true;
}

/** Keys `get` prints, in order within their section; `set` takes all but the counters. */
const DEVICE_KEYS = ["private_key", "listen_port", "fwmark"];
const PEER_KEYS = [
  "public_key",
  "preshared_key",
  "protocol_version",
  "endpoint",
  "last_handshake_time_sec",
  "last_handshake_time_nsec",
  "tx_bytes",
  "rx_bytes",
  "persistent_keepalive_interval",
  "allowed_ip",
];
const GET_ONLY = new Set([
  "last_handshake_time_sec",
  "last_handshake_time_nsec",
  "tx_bytes",
  "rx_bytes",
]);

/**
 * Checks the grammar of a `get` body: `key=value` lines, device keys first,
 * then per peer its keys in wireguard-go's order (allowed_ip repeatable),
 * decimal numbers where numbers belong. Returns the problems found.
 */
export function checkGetGrammar(body: string): string[] {
  const out: string[] = [];
  if (body !== "" && !body.endsWith("\n")) out.push("get body does not end with a newline");
  if (body.includes("\n\n")) out.push("get body contains a blank line");
  let section = "device";
  let last = -1;
  for (const [k, v] of parseLines(body)) {
    if (v === null) {
      out.push(`get line without '=': ${JSON.stringify(k)}`);
      continue;
    }
    if (k === "public_key") {
      section = "peer";
      last = 0;
      continue;
    }
    const order = section === "device" ? DEVICE_KEYS : PEER_KEYS;
    const at = order.indexOf(k);
    if (at < 0) {
      out.push(`unexpected ${section} key in get: ${k}`);
      continue;
    }
    if (at < last || (at === last && k !== "allowed_ip")) out.push(`get key out of order: ${k}`);
    last = at;
    if (/^(listen_port|fwmark|last_|tx_|rx_|persistent_)/.test(k) && !/^[0-9]+$/.test(v)) {
      out.push(`non-decimal ${k}=${v}`);
    }
    if (/(_key)$/.test(k) && !/^[0-9a-f]{64}$/.test(v)) out.push(`bad key text ${k}=${v}`);
  }
  return out;
}

/** A `get` body without the counters and handshake times that only `get` reports. */
export function settableLines(body: string): string[] {
  return parseLines(body).filter(([k]) => !GET_ONLY.has(k)).map(([k, v]) => `${k}=${v}`);
}

/**
 * Sets `device`'s `get` output on a fresh, down device and compares the two
 * `get` outputs (counters excluded). Returns the problems found.
 *
 * One wireguard-go quirk is tolerated and counted in `quirks`: a peer whose
 * public key is all zeros, kept after the private key was removed, cannot be
 * set again (with no private key, an all-zero public key opens a dummy
 * section, as wireguard-go's zero-valued identity does).
 */
export function checkRoundTrip(device: Device, quirks?: { zeroKeyPeer: number }): string[] {
  const body = ipcGet(device);
  const out = checkGetGrammar(body);
  if (out.length > 0) return out;
  const clock = new FakeClock();
  const net = new MemoryNetwork(clock);
  const fresh = new Device({
    tun: new MemoryTun(),
    bind: net.createBind({ v4: "192.0.2.200", v6: "2001:db8::200" }),
    clock,
    rng: seededRng(1),
    name: "roundtrip",
  });
  try {
    let lines = settableLines(body);
    const noKey = device.privateKey === null;
    const zeroPeer = `public_key=${"0".repeat(64)}`;
    if (noKey && lines.includes(zeroPeer)) {
      if (quirks) quirks.zeroKeyPeer++;
      lines = dropPeerSection(lines, zeroPeer);
    }
    const text = lines.join("\n") + "\n\n";
    const err = ipcSet(fresh, text);
    if (err) return [`set of get output failed: ${err} on ${JSON.stringify(text.slice(0, 400))}`];
    const want = lines.join("\n");
    const got = settableLines(ipcGet(fresh)).join("\n");
    if (got !== want) {
      return [`get → set → get differs:\n--- device\n${want}\n--- fresh\n${got}`];
    }
    return [];
  } finally {
    fresh.close();
  }
}

function dropPeerSection(lines: string[], header: string): string[] {
  const out: string[] = [];
  let skipping = false;
  for (const l of lines) {
    if (l.startsWith("public_key=")) skipping = l === header;
    if (!skipping) out.push(l);
  }
  return out;
}
