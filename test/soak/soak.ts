// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * A long run of three devices under a FakeClock: hours of protocol time in
 * seconds of wall time. A, B and C form a full mesh over a MemoryNetwork,
 * configured through UAPI (ipcSet), and live through what a real tunnel does:
 *
 * - traffic: A↔B busy (packets every second both ways, so the initiator
 *   rekeys every REKEY_AFTER_TIME), A↔C in bursts with long silences (key
 *   material is zeroed after 540 s and C's persistent keepalive of 25 s keeps
 *   the path open), B↔C sparse (a packet every ~30 s);
 * - roaming: every 20 min B or C moves to a new address (MemoryBind.setAddress);
 * - peer churn: every 30 min A removes C with `remove=true` and adds it back
 *   a few seconds later, all through ipcSet;
 * - optionally a lossy network (loss, duplication, latency, jitter).
 *
 * Every simulated hour it checks and records: memory (RSS, V8 heap; after a
 * full GC when run with `--v8-flags=--expose-gc`, which also enables the
 * WeakRef census of keypairs and removed peers), structure sizes (index
 * table, peers, staged, handshake queue, rate limiter, allowed IPs, pending
 * timers), counters (decrypt failures must stay 0 on any network that does
 * not tamper), handshakes per pair (~30 an hour on the busy pair), delivery
 * of the numbered packets, and a probe per direction that must arrive within
 * 30 s.
 */
import { Device } from "../../src/device.ts";
import type { Peer } from "../../src/peer.ts";
import type { Keypair } from "../../src/noise/keypair.ts";
import { type MemoryBind, type MemoryDatagram, MemoryNetwork } from "../../src/conn/memory.ts";
import { MemoryTun } from "../../src/tun/memory.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import {
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
  QUEUE_STAGED_SIZE,
  REKEY_AFTER_TIME,
} from "../../src/constants.ts";
import { ipcSet } from "../../uapi/apply.ts";
import { formatKeyHex } from "../../uapi/protocol.ts";
import { FakeClock, RandomSource, seededRng } from "../_util/fake_clock.ts";
import {
  checkAllowedIps,
  checkBounds,
  checkRoundTrip,
  type DeviceSizes,
  deviceSizes,
} from "../fuzz/invariants.ts";
import { numberedPacket, packetId, type TunnelEnd } from "../fuzz/traffic.ts";

/** What to simulate. */
export interface SoakOptions {
  /** Protocol time to simulate, in hours (fractions allowed; default 24). */
  hours?: number;
  /** Seed of keys, jitter, traffic and impairments (default 1). */
  seed?: number;
  /** Probability that a datagram is lost (default 0). */
  loss?: number;
  /** Probability that a datagram is delivered twice (default 0). */
  duplicate?: number;
  /** Delivery delay in ms (default 0). */
  latency?: number;
  /** Extra random delay 0..jitter ms, which reorders (default 0). */
  jitter?: number;
  /** Minutes between roams (default 20; 0 = never). */
  roamMinutes?: number;
  /** Minutes between peer churns (default 30; 0 = never). */
  churnMinutes?: number;
  /** Called with each hour's record as soon as it is complete. */
  onHour?: (hour: HourRecord) => void;
  /** performance.now() after which the run stops early (`truncated` is set). */
  deadline?: number;
  /** Receives every device log line, prefixed with the simulated time (debugging). */
  trace?: (line: string) => void;
}

/** Per-pair numbers of one hour. */
export interface PairRecord {
  /** Handshake responses sent between the two (one per completed handshake). */
  handshakes: number;
  /** Numbered packets sent both ways. */
  sent: number;
  /** … of which arrived. */
  delivered: number;
  /** … of which did not arrive within 60 s. */
  lost: number;
  /**
   * Lost packets between A and C sent while C was removed from A, or within
   * 20 s after it came back (C keeps sending on a session A forgot until its
   * new-handshake timer fires): expected, and not counted in `lost`.
   */
  excused: number;
  /** Slowest delivery in ms. */
  maxLatencyMs: number;
}

/** What one simulated hour looked like. */
export interface HourRecord {
  /** 1-based. */
  hour: number;
  /** Wall time the hour took to simulate, ms. */
  wallMs: number;
  rssMiB: number;
  heapMiB: number;
  /** Whether the memory figures follow a full GC. */
  gc: boolean;
  /** Keypair objects still reachable (null without gc). */
  liveKeypairs: number | null;
  /** Removed Peer objects still reachable (null without gc). */
  liveRemovedPeers: number | null;
  sizes: Record<string, DeviceSizes>;
  clockPending: number;
  pairs: Record<string, PairRecord>;
  /** Keepalives (empty transport messages) sent in the hour. */
  keepalives: number;
  /** … of which C sent to A (C has a persistent keepalive of 25 s towards A). */
  keepalivesCtoA: number;
  /** Initiations sent in the hour. */
  initiations: number;
  roams: number;
  churns: number;
  /** Probes that did not arrive within 30 s (only allowed on a lossy network). */
  lateProbes: number;
  /** Cumulative drop counters over all devices. */
  counters: Record<string, number>;
  /** Broken expectations (empty when all is well). */
  problems: string[];
}

/** The whole run. */
export interface SoakReport {
  hours: HourRecord[];
  /** Every problem, prefixed with its hour. */
  problems: string[];
  /** True when the deadline stopped the run early. */
  truncated: boolean;
  wallMs: number;
}

const NAMES = ["A", "B", "C"] as const;
const PAIRS = ["A-B", "A-C", "B-C"] as const;
const LISTEN_BASE = 51820;

interface Node {
  name: string;
  device: Device;
  tun: MemoryTun;
  bind: MemoryBind;
  end: TunnelEnd;
  privateKey: Uint8Array;
  publicKey: Uint8Array;
  index: number;
}

interface InFlight {
  pair: string;
  /** The record of the hour it was sent in. */
  rec: PairRecord;
  sentAt: number;
  probe: boolean;
  excused: boolean;
  /** "A→C". */
  dir: string;
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Runs the soak; see the module doc. */
export async function runSoak(options: SoakOptions = {}): Promise<SoakReport> {
  const started = performance.now();
  const hours = options.hours ?? 24;
  const lossy = (options.loss ?? 0) > 0 || (options.duplicate ?? 0) > 0;
  const clock = new FakeClock();
  const rng = seededRng(options.seed ?? 1);
  const r = new RandomSource(rng);
  const chance = (p: number) => r.u32() < p * 4294967296;
  const net = new MemoryNetwork(clock, {
    rng,
    loss: options.loss,
    duplicate: options.duplicate,
    latency: options.latency,
    jitter: options.jitter,
  });
  const gc = (globalThis as { gc?: () => void }).gc;

  // ---- the mesh, configured through UAPI ----
  const nodes: Node[] = NAMES.map((name, i) => {
    const tun = new MemoryTun();
    const bind = net.createBind({ v4: `192.0.2.${i + 1}`, v6: `2001:db8::${i + 1}` });
    const trace = options.trace;
    const logger = trace
      ? {
        verbose: (msg: string) => trace(`${fmt(clock.now())} wg${name}: ${msg}`),
        error: (msg: string) => trace(`${fmt(clock.now())} wg${name}: ERROR ${msg}`),
      }
      : undefined;
    const device = new Device({ tun, bind, clock, rng, name: `wg${name}`, logger });
    const privateKey = generatePrivateKey(rng);
    return {
      name,
      device,
      tun,
      bind,
      end: { device, tun, v4: `10.0.0.${i + 1}`, v6: `fd00::${i + 1}` },
      privateKey,
      publicKey: publicKey(privateKey),
      index: i,
    };
  });
  const psk = new Uint8Array(32);
  rng(psk);
  /** The UAPI lines that configure `peer` on `self`. */
  function peerConfig(self: Node, peer: Node): string {
    const lines = [
      `public_key=${formatKeyHex(peer.publicKey)}`,
      `endpoint=${peer.bind.endpoint(4)}`,
      `allowed_ip=${peer.end.v4}/32`,
      `allowed_ip=${peer.end.v6}/128`,
    ];
    const pair = [self.name, peer.name].sort().join("-");
    if (pair === "A-B") lines.push(`preshared_key=${formatKeyHex(psk)}`);
    if (self.name === "C" && peer.name === "A") lines.push("persistent_keepalive_interval=25");
    return lines.join("\n") + "\n";
  }
  const problems: string[] = [];
  for (const n of nodes) {
    n.device.up();
    let text = `private_key=${formatKeyHex(n.privateKey)}\nlisten_port=${LISTEN_BASE + n.index}\n`;
    for (const p of nodes) if (p !== n) text += peerConfig(n, p);
    const err = ipcSet(n.device, text + "\n");
    if (err) throw new Error(`configuring ${n.name} failed: ${err}`);
  }

  // ---- observation ----
  const byPort = (port: number) => port - LISTEN_BASE;
  const pairName = (a: number, b: number) => [NAMES[a], NAMES[b]].sort().join("-");
  let hour = newHourCounters();
  function newHourCounters() {
    const pairs: Record<string, PairRecord> = {};
    for (const p of PAIRS) {
      pairs[p] = { handshakes: 0, sent: 0, delivered: 0, lost: 0, excused: 0, maxLatencyMs: 0 };
    }
    return {
      pairs,
      keepalives: 0,
      keepalivesCtoA: 0,
      initiations: 0,
      roams: 0,
      churns: 0,
      lateProbes: 0,
      problems: [] as string[],
    };
  }
  net.tap = (d: MemoryDatagram) => {
    const from = byPort(d.from.port), to = byPort(d.to.port);
    if (from < 0 || from > 2) return true;
    const type = d.data[0];
    if (type === MESSAGE_INITIATION) hour.initiations++;
    if (type === MESSAGE_RESPONSE && to >= 0 && to <= 2) {
      hour.pairs[pairName(from, to)].handshakes++;
    }
    if (type === MESSAGE_TRANSPORT && d.data.length === 32) {
      hour.keepalives++;
      if (from === 2 && to === 0) hour.keepalivesCtoA++;
    }
    return true;
  };
  const inFlight = new Map<number, InFlight>();
  let nextId = 1;
  for (const n of nodes) {
    n.tun.onPacket = (pkt) => {
      const id = packetId(pkt);
      const f = inFlight.get(id);
      options.trace?.(`${fmt(clock.now())} soak: ${n.name} received ${id}`);
      if (!f) return; // a duplicate, already counted
      inFlight.delete(id);
      const rec = f.rec;
      rec.delivered++;
      rec.maxLatencyMs = Math.max(rec.maxLatencyMs, clock.now() - f.sentAt);
    };
  }
  function send(from: Node, to: Node, probe = false): void {
    const id = nextId++;
    const pair = pairName(from.index, to.index);
    const rec = hour.pairs[pair];
    const excused = pair === "A-C" && (churnReAddAt >= 0 || clock.now() < churnSettledAt);
    const dir = `${from.name}→${to.name}`;
    options.trace?.(`${fmt(clock.now())} soak: send ${id} ${dir}${probe ? " (probe)" : ""}`);
    inFlight.set(id, { pair, rec, sentAt: clock.now(), probe, excused, dir });
    rec.sent++;
    from.device.handleTunPacket(
      numberedPacket(from.end, to.end, id, chance(0.3) ? 6 : 4, 40 + r.int(1200)),
    );
    from.device.flush();
  }
  /** Packets older than 60 s are lost; a probe older than 30 s is a problem. */
  function expire(): void {
    const now = clock.now();
    for (const [id, f] of inFlight) {
      if (f.probe && now - f.sentAt > 30_000) {
        // On a lossy network a probe may simply be lost.
        if (lossy) hour.lateProbes++;
        else {hour.problems.push(
            `probe ${f.dir} sent at ${fmt(f.sentAt)} did not arrive within 30 s`,
          );}
        f.probe = false;
      }
      if (now - f.sentAt > 60_000) {
        inFlight.delete(id);
        if (f.excused) f.rec.excused++;
        else {
          f.rec.lost++;
          if (!lossy && f.rec.lost <= 3) {
            hour.problems.push(`packet ${id} ${f.dir} sent at ${fmt(f.sentAt)} was lost`);
          }
        }
      }
    }
  }
  const keypairRefs: WeakRef<Keypair>[] = [];
  const seenKeypairs = new WeakSet<Keypair>();
  const removedPeers: { ref: WeakRef<Peer>; at: number }[] = [];
  function sampleKeypairs(): void {
    for (const n of nodes) {
      for (const peer of n.device.peers()) {
        const k = peer.keypairs;
        for (const kp of [k.previous, k.current, k.next]) {
          if (kp && !seenKeypairs.has(kp)) {
            seenKeypairs.add(kp);
            keypairRefs.push(new WeakRef(kp));
          }
        }
      }
    }
  }

  // ---- events ----
  const [A, B, C] = nodes;
  const roamEvery = (options.roamMinutes ?? 20) * 60_000;
  const churnEvery = (options.churnMinutes ?? 30) * 60_000;
  let churnReAddAt = -1;
  let churnSettledAt = -1;
  let roamCount = 0;
  function roam(): void {
    const n = roamCount++ % 2 === 0 ? B : C;
    const addr = `198.51.${100 + (roamCount >> 8)}.${roamCount & 255}`;
    n.bind.setAddress(4, addr);
    hour.roams++;
    // A roaming client has traffic of its own; its peers learn the new address from it.
    for (const p of nodes) if (p !== n) send(n, p);
  }
  function churnRemove(): void {
    const peer = A.device.lookupPeer(C.publicKey);
    const err = ipcSet(A.device, `public_key=${formatKeyHex(C.publicKey)}\nremove=true\n\n`);
    if (err) hour.problems.push(`churn: remove failed: ${err}`);
    if (peer) removedPeers.push({ ref: new WeakRef(peer), at: clock.now() });
    // What is in flight between A and C now may find C gone.
    for (const f of inFlight.values()) if (f.pair === "A-C") f.excused = true;
    hour.churns++;
    churnReAddAt = clock.now() + 2000 + r.int(15_000);
  }
  function churnAdd(): void {
    const err = ipcSet(A.device, peerConfig(A, C) + "\n");
    if (err) hour.problems.push(`churn: re-add failed: ${err}`);
    churnReAddAt = -1;
    churnSettledAt = clock.now() + 20_000;
  }

  // ---- the run ----
  const report: SoakReport = { hours: [], problems, truncated: false, wallMs: 0 };
  const total = Math.round(hours * 3_600_000);
  let hourStart = performance.now();
  let sinceCheck = 0;
  let lastHourMark = 0;
  for (let t = 0; t < total; t += 1000) {
    if (options.deadline !== undefined && performance.now() > options.deadline) {
      report.truncated = true;
      break;
    }
    const now = clock.now();
    // Traffic (at random offsets inside the second, so that sides rarely send at once).
    const half = r.int(1000);
    if (chance(0.9)) send(A, B);
    if (now % 3_600_000 === 0) {
      // The hourly probes, one per direction.
      for (const [x, y] of [[A, B], [B, A], [A, C], [C, A], [B, C], [C, B]] as const) {
        send(x, y, true);
      }
    }
    const acActive = now % 3_600_000 < 40 * 60_000 && (now / 60_000) % 10 < 6;
    if (acActive && chance(0.5)) {
      if (chance(0.5)) send(A, C);
      else send(C, A);
    }
    if (chance(1 / 30)) {
      if (chance(0.5)) send(B, C);
      else send(C, B);
    }
    clock.advance(half);
    if (chance(0.9)) send(B, A);
    if (roamEvery > 0 && now > 0 && now % roamEvery === 0) roam();
    if (churnEvery > 0 && now > 0 && now % churnEvery === 0) churnRemove();
    if (churnReAddAt >= 0 && clock.now() >= churnReAddAt) churnAdd();
    clock.advance(1000 - half);
    expire();
    sampleKeypairs();
    for (const n of nodes) n.tun.take();
    sinceCheck += 1000;
    if (sinceCheck >= 3_600_000 || t + 1000 >= total) {
      sinceCheck = 0;
      const rec = await hourly(lastHourMark + 1);
      lastHourMark++;
      report.hours.push(rec);
      for (const p of rec.problems) problems.push(`hour ${rec.hour}: ${p}`);
      options.onHour?.(rec);
      hour = newHourCounters();
      hourStart = performance.now();
    }
  }
  for (const n of nodes) n.device.close();
  report.wallMs = performance.now() - started;
  return report;

  async function hourly(h: number): Promise<HourRecord> {
    const wallMs = performance.now() - hourStart;
    const list = hour.problems;
    // Structure sizes and consistency.
    const sizes: Record<string, DeviceSizes> = {};
    for (const n of nodes) {
      sizes[n.name] = deviceSizes(n.device);
      list.push(
        ...checkBounds(n.device),
        ...checkAllowedIps(n.device),
        ...checkRoundTrip(n.device),
      );
      const s = sizes[n.name];
      const wantPeers = n === A && churnReAddAt >= 0 ? 1 : 2;
      if (s.peers !== wantPeers) list.push(`${n.name} has ${s.peers} peers, expected ${wantPeers}`);
      if (s.allowedIps !== 2 * s.peers) list.push(`${n.name} has ${s.allowedIps} allowed IPs`);
      if (s.handshakeQueue > 0) list.push(`${n.name} handshake queue holds ${s.handshakeQueue}`);
      if (s.staged > QUEUE_STAGED_SIZE) list.push(`${n.name} stages ${s.staged} packets`);
    }
    // 5 timers per peer, a handshake and a flush job per device, datagrams in flight.
    const inFlightBound = (options.latency ?? 0) + (options.jitter ?? 0) > 0 ? 200 : 0;
    if (clock.pending > 6 * 5 + 3 * 2 + inFlightBound) {
      list.push(`${clock.pending} callbacks pending on the clock`);
    }
    // Counters: nothing tampers with datagrams, so nothing fails to decrypt.
    const counters: Record<string, number> = {};
    for (const n of nodes) {
      for (const [k, v] of Object.entries(n.device.stats)) counters[k] = (counters[k] ?? 0) + v;
    }
    if (counters.decryptFailed > 0) list.push(`${counters.decryptFailed} decryption failures`);
    if (counters.invalidMac > 0) list.push(`${counters.invalidMac} handshakes with a bad mac1`);
    // Handshakes: the busy pair rekeys every REKEY_AFTER_TIME (plus the first send after it).
    const full = wallMs > 0 && sinceHourIsFull(h);
    const perHour = 3_600_000 / REKEY_AFTER_TIME;
    const ab = hour.pairs["A-B"].handshakes;
    if (full && (ab < perHour * 0.8 || ab > perHour * 1.5)) {
      list.push(`A-B completed ${ab} handshakes, expected about ${perHour}`);
    }
    // A and C are silent for the last 20 min of every hour: C's persistent
    // keepalive (25 s) must fill it, ~48 keepalives.
    if (full && hour.keepalivesCtoA < 40) {
      list.push(`C sent A only ${hour.keepalivesCtoA} keepalives; persistent keepalive is 25 s`);
    }
    // Delivery: on a clean network nothing is lost but what a churn excuses.
    for (const [name, p] of Object.entries(hour.pairs)) {
      if (!lossy && p.lost > 0) list.push(`${name}: ${p.lost} packets lost`);
      const ratio = p.sent === 0 ? 1 : (p.delivered + inFlightCount(p) + p.excused) / p.sent;
      if (lossy && ratio < 0.5) list.push(`${name} delivered only ${(ratio * 100).toFixed(1)}%`);
    }
    // Memory, after a full collection when available.
    let liveKeypairs: number | null = null;
    let liveRemovedPeers: number | null = null;
    await yieldToEventLoop();
    if (gc) {
      gc();
      await yieldToEventLoop();
      gc();
      liveKeypairs = keypairRefs.filter((w) => w.deref() !== undefined).length;
      for (let i = keypairRefs.length - 1; i >= 0; i--) {
        if (keypairRefs[i].deref() === undefined) keypairRefs.splice(i, 1);
      }
      liveRemovedPeers = removedPeers.filter((p) => p.ref.deref() !== undefined).length;
      const stale = removedPeers.filter((p) =>
        p.ref.deref() !== undefined && clock.now() - p.at > 15 * 60_000
      );
      if (stale.length > 0) {
        list.push(`${stale.length} removed peers still reachable 15 min after removal`);
      }
      for (let i = removedPeers.length - 1; i >= 0; i--) {
        if (removedPeers[i].ref.deref() === undefined) removedPeers.splice(i, 1);
      }
      // Three keypairs per peer at most, and a few rotated ones not yet collected.
      if (liveKeypairs > 6 * 3 + 6) list.push(`${liveKeypairs} keypairs reachable`);
    }
    const mem = Deno.memoryUsage();
    return {
      hour: h,
      wallMs,
      rssMiB: mem.rss / 1048576,
      heapMiB: mem.heapUsed / 1048576,
      gc: gc !== undefined,
      liveKeypairs,
      liveRemovedPeers,
      sizes,
      clockPending: clock.pending,
      pairs: hour.pairs,
      keepalives: hour.keepalives,
      keepalivesCtoA: hour.keepalivesCtoA,
      initiations: hour.initiations,
      roams: hour.roams,
      churns: hour.churns,
      lateProbes: hour.lateProbes,
      counters,
      problems: list,
    };
  }

  function inFlightCount(rec: PairRecord): number {
    let n = 0;
    for (const f of inFlight.values()) if (f.rec === rec) n++;
    return n;
  }

  function sinceHourIsFull(h: number): boolean {
    return clock.now() >= h * 3_600_000;
  }
}

function fmt(ms: number): string {
  const s = Math.floor(ms / 1000);
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  return `${hh}:${String(mm).padStart(2, "0")}:${String(ss).padStart(2, "0")}`;
}
