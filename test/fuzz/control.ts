// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Fuzz target "control": random configuration changes on a live pair while
 * traffic flows and time passes, through ipcSet and the Device API: private
 * key rotation, listen port and fwmark changes, peer removal and re-adding,
 * replace_peers, allowed-IP replacement, endpoint changes, preshared keys on
 * one side only, persistent keepalives, MTU changes, down/up.
 *
 * Checked after every step: nothing throws, structure sizes stay bounded,
 * the allowed-IPs trie agrees with the per-peer lists, and no transport
 * message ever fails to decrypt (nothing tampers with the network, so a
 * failure would mean keys or indices got mixed up). At the end both sides get
 * their original configuration back through ipcSet, and the tunnel must carry
 * a packet each way again.
 */
import type { Rng } from "../../src/clock.ts";
import { BindError } from "../../src/conn/bind.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { ipcGet, ipcSet } from "../../uapi/apply.ts";
import { formatKeyHex } from "../../uapi/protocol.ts";
import { devicePair, type Side } from "../_util/device_pair.ts";
import { seededRng } from "../_util/fake_clock.ts";
import {
  bump,
  type FuzzOptions,
  type FuzzStats,
  Mutator,
  newStats,
  pastDeadline,
  recordException,
  recordFailure,
} from "./harness.ts";
import { checkAllowedIps, checkBounds, checkRoundTrip, settableLines } from "./invariants.ts";
import { numberedPacket, probe, sendFrom, settle, type TunnelEnd } from "./traffic.ts";

/** Fuzzes configuration changes on a live pair; see the module doc. */
export function fuzzControl(rng: Rng, iterations: number, options: FuzzOptions = {}): FuzzStats {
  const started = performance.now();
  const stats = newStats("control");
  const m = new Mutator(rng);
  const p = devicePair({ seed: m.u32(), psk: m.chance(0.5) });
  const sides: Side[] = [p.a, p.b];
  const ends: TunnelEnd[] = [
    { device: p.a.device, tun: p.a.tun, v4: "10.0.0.1", v6: "fd00::1" },
    { device: p.b.device, tun: p.b.tun, v4: "10.0.0.2", v6: "fd00::2" },
  ];
  // The original configuration of each side, to restore at the end.
  const original = sides.map((s) =>
    "replace_peers=true\n" + settableLines(ipcGet(s.device)).join("\n") + "\n\n"
  );
  const keyRng = seededRng(m.u32());
  const strangers = Array.from({ length: 3 }, () => generatePrivateKey(keyRng));
  let nextId = 1;
  let iteration = 0;

  function set(s: Side, text: string): void {
    const err = ipcSet(s.device, text + "\n");
    // Only a busy port may fail; everything generated here is valid.
    if (err && err.errno !== -98) recordFailure(stats, iteration, `ipcSet failed: ${err}`, text);
    if (err) bump(stats, "portInUse");
  }

  function peerKey(s: Side): string {
    return formatKeyHex(sides[1 - sides.indexOf(s)].publicKey);
  }

  function control(): void {
    const x = m.int(2);
    const s = sides[x], other = sides[1 - x];
    const op = m.int(16);
    bump(stats, `op${op}`);
    switch (op) {
      case 0: // a new private key, or back to the original
        set(s, `private_key=${formatKeyHex(m.chance(0.5) ? m.pick(strangers) : s.privateKey)}`);
        break;
      case 1: // the same private key again (must change nothing)
        set(s, `private_key=${formatKeyHex(s.privateKey)}`);
        break;
      case 2: // another listen port (the other side's endpoint goes stale until we send)
        set(s, `listen_port=${m.pick([0, 51820, 51821, 51822, 40000 + m.int(100)])}`);
        break;
      case 3:
        set(s, `fwmark=${m.pick([0, 1, 0xffffffff])}`);
        break;
      case 4: // remove the peer
        set(s, `public_key=${peerKey(s)}\nremove=true`);
        break;
      case 5: // (re-)add the peer with its allowed IPs and endpoint
        set(
          s,
          `public_key=${peerKey(s)}\nendpoint=${
            other.bind.port ? other.bind.endpoint(4) : "192.0.2.9:1"
          }\n` +
            `allowed_ip=${
              x === 0
                ? "10.0.0.2/32\nallowed_ip=fd00::2/128"
                : "10.0.0.1/32\nallowed_ip=fd00::1/128"
            }`,
        );
        break;
      case 6: // replace_peers, then maybe a stranger peer taking a prefix
        set(s, "replace_peers=true");
        if (m.chance(0.5)) {
          const k = formatKeyHex(publicKey(m.pick(strangers)));
          set(s, `public_key=${k}\nallowed_ip=10.0.0.0/24`);
        }
        break;
      case 7: // allowed IPs replaced by something narrower or wider
        set(
          s,
          `public_key=${peerKey(s)}\nupdate_only=true\nreplace_allowed_ips=true\n` +
            `allowed_ip=${
              m.pick(["10.0.0.0/24", "0.0.0.0/0", "::/0", "10.0.0.2/32", "10.0.0.1/32"])
            }`,
        );
        break;
      case 8: // an endpoint nobody listens on, or the right one
        set(
          s,
          `public_key=${peerKey(s)}\nupdate_only=true\nendpoint=${
            m.chance(0.5) || !other.bind.port
              ? "198.51.100.1:9"
              : other.bind.endpoint(m.chance(0.5) ? 4 : 6)
          }`,
        );
        break;
      case 9: // a preshared key on one side only (handshakes fail until both agree)
        set(
          s,
          `public_key=${peerKey(s)}\nupdate_only=true\npreshared_key=${formatKeyHex(m.bytes(32))}`,
        );
        break;
      case 10:
        set(
          s,
          `public_key=${peerKey(s)}\nupdate_only=true\npersistent_keepalive_interval=${
            m.pick([0, 1, 25])
          }`,
        );
        break;
      case 11:
        s.tun.mtu = m.pick([0, 1280, 1420, 1500, 9000]);
        s.device.onMtuChange();
        break;
      case 12:
        if (s.device.isUp) s.device.down();
        else {
          try {
            s.device.up();
          } catch (err) {
            if (!(err instanceof BindError)) throw err;
            bump(stats, "upRefused");
          }
        }
        break;
      case 13: // roam (each side in its own range: two binds cannot share an address and port)
        s.bind.setAddress(4, `198.51.${100 + x}.${10 + m.int(200)}`);
        break;
      default: // just traffic
        break;
    }
  }

  for (iteration = 0; iteration < iterations; iteration++) {
    if ((iteration & 7) === 0 && pastDeadline(options)) break;
    try {
      control();
      stats.inputs++;
      for (const [a, b] of [[0, 1], [1, 0]] as const) {
        if (m.chance(0.7)) sendFrom(ends[a], numberedPacket(ends[a], ends[b], nextId++));
      }
      p.clock.advance(m.chance(0.8) ? m.int(3000) : m.range(10_000, 200_000));
      settle(p.clock);
    } catch (err) {
      recordException(stats, iteration, err, "control step");
    }
    for (const s of sides) {
      s.tun.take();
      for (const v of checkBounds(s.device)) recordFailure(stats, iteration, v);
      for (const v of checkAllowedIps(s.device)) recordFailure(stats, iteration, v);
      if (s.device.stats.decryptFailed > 0) {
        recordFailure(stats, iteration, `${s.device.name}: a transport message failed to decrypt`);
        s.device.stats.decryptFailed = 0;
      }
    }
  }
  stats.iterations = iteration;
  // Back to the original configuration; the tunnel must work again.
  try {
    for (let i = 0; i < 2; i++) {
      sides[i].bind.setAddress(4, `192.0.2.${i + 1}`);
      sides[i].tun.mtu = 1420;
    }
    // Twice: a side may hold the other's original port until its own restore.
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < 2; i++) {
        const s = sides[i];
        const err = ipcSet(s.device, original[i]);
        if (err && (pass === 1 || err.errno !== -98)) {
          recordFailure(stats, -1, `restoring ${s.device.name} failed: ${err}`);
        }
      }
    }
    for (const s of sides) if (!s.device.isUp) s.device.up();
    for (const s of sides) for (const v of checkRoundTrip(s.device)) recordFailure(stats, -1, v);
    for (const [a, b] of [[0, 1], [1, 0]] as const) {
      // The peer may have roamed, so give the endpoints a chance to be learned.
      const ms = probe(p.clock, ends[a], ends[b], 0xffffff00 + a, 60_000);
      if (ms < 0) {
        recordFailure(
          stats,
          -1,
          `after restoring the configuration, ${ends[a].device.name} → ${ends[b].device.name} ` +
            `carries no traffic: ${JSON.stringify(ends[a].device.stats)}`,
        );
      }
    }
  } catch (err) {
    recordException(stats, -1, err, "restore");
  }
  for (const s of sides) s.device.close();
  stats.ms = performance.now() - started;
  return stats;
}
