// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Inputs of the benchmark that are built once per run and reused by every
 * round and both implementations (each round starts fresh daemons, so the
 * same keys and messages are valid again):
 *
 * - the handshake pool: K initiator key pairs, one responder key pair, and N
 *   handshake initiations to that responder built with the project's
 *   protocol core (createInitiation, then CookieGenerator.addMacs for mac1;
 *   mac2 stays zero), written to a file for _flood.ts. Message j belongs to
 *   key j mod K, carries sender index j + 1 and a timestamp 20 ms (more than
 *   one 2^24 ns TAI64N step) later than the previous message of that key, so
 *   each key's timestamps strictly increase along the pool;
 * - the `wg setconf` files of the big-configuration tests: one peer with the
 *   130 560 allowed IPs of wireguard-go's tests/netns.sh
 *   (`a.b.0.0/16, a::b/128` for a in 1…255, b in 0…255), and 10 000 peers
 *   with one /32 each, whose first and last private keys are kept for the
 *   time-to-first-ping measurements.
 */
import { createInitiation, Handshake, StaticIdentity } from "../../src/noise/handshake.ts";
import { CookieGenerator } from "../../src/noise/cookie.ts";
import { realClock, systemRng } from "../../src/clock.ts";
import { cryptoBackend } from "../../src/crypto.ts";
import { type KeyPair, newKeyPair, PORT_CONFIG, PORT_FLOOD } from "./_env.ts";

/** Bytes of one initiation. */
export const INITIATION_SIZE = 148;

/** The handshake pool (see the module doc). */
export interface HandshakePool {
  path: string;
  count: number;
  /** `wg setconf` text for the responder: its key, PORT_FLOOD, the K peers. */
  responderConf: string;
  /** Which crypto built it (noble is ~12× slower, so the pool is then smaller). */
  backend: string;
}

/**
 * buildPool() writes `count` initiations from `peers` keys to `dir`. Calls
 * `progress` every few thousand messages.
 */
export async function buildPool(
  dir: string,
  peers: number,
  count: number,
  progress: (done: number) => void = () => {},
): Promise<HandshakePool> {
  const responder = newKeyPair();
  const ids: StaticIdentity[] = [];
  const hss: Handshake[] = [];
  const lines = [
    "[Interface]",
    `PrivateKey = ${responder.privateB64}`,
    `ListenPort = ${PORT_FLOOD}`,
  ];
  for (let p = 0; p < peers; p++) {
    const kp = newKeyPair();
    const id = new StaticIdentity();
    id.set(kp.privateKey);
    const hs = new Handshake(responder.publicKey);
    hs.precompute(id);
    ids.push(id);
    hss.push(hs);
    lines.push("[Peer]", `PublicKey = ${kp.publicB64}`);
  }
  const macs = new CookieGenerator(realClock, responder.publicKey);
  const out = new Uint8Array(count * INITIATION_SIZE);
  const base = Date.now();
  for (let j = 0; j < count; j++) {
    const p = j % peers;
    const msg = out.subarray(j * INITIATION_SIZE, (j + 1) * INITIATION_SIZE);
    const ok = createInitiation(msg, hss[p], ids[p], j + 1, {
      rng: systemRng,
      now: performance.now(),
      wall: base + Math.floor(j / peers) * 20,
    });
    if (!ok) throw new Error("createInitiation failed");
    macs.addMacs(msg);
    if ((j + 1) % 4096 === 0) {
      progress(j + 1);
      // Let signal handlers run during a long build.
      await new Promise((r) => setTimeout(r, 0));
    }
  }
  for (const id of ids) id.clear();
  for (const hs of hss) hs.wipe();
  const path = `${dir}/handshake-pool.bin`;
  await Deno.writeFile(path, out, { mode: 0o600 });
  return {
    path,
    count,
    responderConf: lines.join("\n") + "\n",
    backend: cryptoBackend().name,
  };
}

/** The big-configuration inputs (see the module doc). */
export interface ConfigInputs {
  /** `wg setconf` file: one peer, 130 560 allowed IPs. */
  aipsPath: string;
  aipsCount: number;
  /** `wg setconf` file: 10 000 peers, each one /32 in 10.78.0.0/16, PORT_CONFIG. */
  peersPath: string;
  peerCount: number;
  /** Public key of the 10 000-peer responder. */
  responderPublic: string;
  /** Peer #1 and peer #N: their keys and tunnel addresses. */
  first: { key: KeyPair; address: string };
  last: { key: KeyPair; address: string };
}

/** peerAddress() is the /32 of peer `i` (1-based) of the 10 000-peer config. */
export function peerAddress(i: number): string {
  return `10.78.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}

/** buildConfigs() writes the two big configuration files to `dir`. */
export async function buildConfigs(dir: string, peerCount = 10_000): Promise<ConfigInputs> {
  const host = newKeyPair(), peer = newKeyPair();
  const a = [
    "[Interface]",
    `PrivateKey = ${host.privateB64}`,
    "[Peer]",
    `PublicKey = ${peer.publicB64}`,
  ];
  let aipsCount = 0;
  for (let x = 1; x <= 255; x++) {
    for (let y = 0; y <= 255; y++) {
      a.push(`AllowedIPs = ${x}.${y}.0.0/16,${x}::${y}/128`);
      aipsCount += 2;
    }
  }
  const aipsPath = `${dir}/aips.conf`;
  await Deno.writeTextFile(aipsPath, a.join("\n") + "\n", { mode: 0o600 });

  const responder = newKeyPair();
  const p = ["[Interface]", `PrivateKey = ${responder.privateB64}`, `ListenPort = ${PORT_CONFIG}`];
  let first: KeyPair | null = null, last: KeyPair | null = null;
  for (let i = 1; i <= peerCount; i++) {
    const kp = newKeyPair();
    if (i === 1) first = kp;
    if (i === peerCount) last = kp;
    p.push("[Peer]", `PublicKey = ${kp.publicB64}`, `AllowedIPs = ${peerAddress(i)}/32`);
  }
  const peersPath = `${dir}/peers.conf`;
  await Deno.writeTextFile(peersPath, p.join("\n") + "\n", { mode: 0o600 });
  return {
    aipsPath,
    aipsCount,
    peersPath,
    peerCount,
    responderPublic: responder.publicB64,
    first: { key: first!, address: peerAddress(1) },
    last: { key: last!, address: peerAddress(peerCount) },
  };
}
