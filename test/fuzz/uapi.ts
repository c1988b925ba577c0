// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Fuzz target "uapi": the UAPI framing (UapiConnection) and applier
 * (IpcSetSession behind deviceHandler) on an in-memory Device that is
 * sometimes up, with another socket squatting a port so that `listen_port`
 * can fail with EADDRINUSE.
 *
 * Each iteration is one connection fed in random chunks (honouring the
 * consumed count `feed` returns), then sometimes EOF. Two modes:
 *
 * - chaos: generated requests with random keys and values (valid, near
 *   valid, NUL bytes, CR, non-ASCII, 64 KiB lines), wireguard-go's recorded
 *   requests from testdata/uapi, pipelining, junk operations, and byte-level
 *   mutations of the whole stream. Checked: nothing escapes, every reply is a
 *   `get` body or `errno=N` with N one of wireguard-go's errnos (never the
 *   "other error" -55 that marks an unexpected exception), the device state
 *   stays valid (bounds, allowed-IPs consistency, `get` grammar and
 *   round trip) and bounded.
 * - differential: well-formed requests, chunked at random, with a random
 *   `maxRequestBytes` so that long requests are applied in pieces; a twin
 *   device, made from the device's own `get` output, gets the same requests
 *   through `ipcSet`/`ipcGet`. Replies and resulting states must agree.
 */
import lowOrder from "../../testdata/crypto/low_order_points.json" with { type: "json" };
import type { Rng } from "../../src/clock.ts";
import { BindError } from "../../src/conn/bind.ts";
import { type MemoryBind, MemoryNetwork } from "../../src/conn/memory.ts";
import { Device } from "../../src/device.ts";
import { MemoryTun } from "../../src/tun/memory.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { formatIPv4, formatIPv6 } from "../../src/ip.ts";
import { deviceHandler, ipcGet, ipcSet } from "../../uapi/apply.ts";
import { formatKeyHex, MAX_LINE_BYTES, UapiConnection } from "../../uapi/protocol.ts";
import { FakeClock, seededRng } from "../_util/fake_clock.ts";
import {
  bump,
  type FuzzOptions,
  type FuzzStats,
  Mutator,
  newStats,
  pastDeadline,
  peak,
  recordException,
  recordFailure,
} from "./harness.ts";
import { checkAllowedIps, checkBounds, checkRoundTrip, settableLines } from "./invariants.ts";

/** The errnos wireguard-go answers with (ENOANO, -55, means an unexpected exception). */
const ALLOWED_ERRNOS = new Set([0, -5, -22, -71, -98]);
/** A port another socket holds, so binding it fails. */
const SQUATTED_PORT = 51999;

interface Golden {
  send: string;
}

let goldenCache: string[] | null = null;

/** wireguard-go's recorded request streams (testdata/uapi/wireguard_go_raw.json). */
function golden(): string[] {
  if (goldenCache) return goldenCache;
  try {
    const url = new URL("../../testdata/uapi/wireguard_go_raw.json", import.meta.url);
    goldenCache = (JSON.parse(Deno.readTextFileSync(url)) as Golden[]).map((c) => c.send);
  } catch {
    goldenCache = [];
  }
  return goldenCache;
}

/** Public keys whose X25519 result is all zeros (kernel netns.sh). */
const LOW_ORDER = (lowOrder.points as string[]).map((b) => Uint8Array.fromBase64(b));

const JUNK_CHARS = [
  ..."0123456789abcdefABCDEF:./[]%-=+ \t",
  "\0",
  "\r",
  "\x7f",
  "é",
  "\u2028",
  "\u{1f600}",
  "\ufffd",
];

/**
 * `get` lines for comparison: a listen port in MemoryNetwork's ephemeral
 * range (what `listen_port=0` binds) depends on the network's history, so
 * it is masked.
 */
function normalize(lines: string[]): string {
  return lines.map((l) => {
    const port = l.startsWith("listen_port=") ? Number(l.slice(12)) : 0;
    return port >= 40000 && port <= 60000 ? "listen_port=<ephemeral>" : l;
  }).join("\n");
}

/** A device under test, its twin's network, and the keys requests draw from. */
interface World {
  clock: FakeClock;
  net: MemoryNetwork;
  bind: MemoryBind;
  device: Device;
  squatter: MemoryBind;
}

function newWorld(seed: number): World {
  const clock = new FakeClock();
  const net = new MemoryNetwork(clock);
  const squatter = net.createBind({ v4: "192.0.2.1", v6: "2001:db8::1" });
  squatter.open(SQUATTED_PORT, () => {});
  const bind = net.createBind({ v4: "192.0.2.1", v6: "2001:db8::1" });
  const device = new Device({
    tun: new MemoryTun(),
    bind,
    clock,
    rng: seededRng(seed),
    name: "fuzz",
  });
  return { clock, net, bind, device, squatter };
}

/** Fuzzes the UAPI connection and applier; see the module doc. */
export function fuzzUapi(rng: Rng, iterations: number, options: FuzzOptions = {}): FuzzStats {
  const started = performance.now();
  const stats = newStats("uapi");
  const m = new Mutator(rng);
  const keyRng = seededRng(m.u32());
  const privateKeys = Array.from({ length: 3 }, () => generatePrivateKey(keyRng));
  const peerKeys = Array.from({ length: 6 }, () => publicKey(generatePrivateKey(keyRng)));
  let world = newWorld(m.u32());
  let iteration = 0;
  const quirks = { zeroKeyPeer: 0 };

  // ---- values ----

  function hexKey(valid: boolean): string {
    if (valid) {
      const r = m.int(100);
      let k: string;
      if (r < 60) k = formatKeyHex(m.pick(peerKeys));
      else if (r < 70) k = formatKeyHex(publicKey(m.pick(privateKeys)));
      else if (r < 80) k = formatKeyHex(m.pick(privateKeys));
      else if (r < 85) k = "0".repeat(64);
      else if (r < 88) k = "f".repeat(64);
      else if (r < 90) k = formatKeyHex(m.pick(LOW_ORDER)); // DH with it always fails
      else k = formatKeyHex(m.bytes(32));
      return m.chance(0.1) ? k.toUpperCase() : k;
    }
    const k = formatKeyHex(m.bytes(32));
    switch (m.int(6)) {
      case 0:
        return k.slice(0, m.int(64));
      case 1:
        return k + "0".repeat(m.range(1, 4));
      case 2:
        return m.bytes(32).toBase64();
      case 3:
        return ` ${k}`;
      case 4: {
        const i = m.int(64);
        return k.slice(0, i) + m.pick(JUNK_CHARS) + k.slice(i + 1);
      }
      default:
        return junk();
    }
  }

  function decimal(max: number, valid: boolean): string {
    if (valid) {
      const v = m.chance(0.3) ? m.pick([0, 1, max, 25, 51820]) : m.int(max + 1);
      return String(Math.min(v, max));
    }
    return m.pick([
      String(max + 1),
      "-1",
      "+1",
      "0x10",
      "",
      " 1",
      "1 ",
      "1_000",
      "99999999999999999999999",
      "00000000000000000000001",
      "1e3",
      junk(),
    ]);
  }

  function v4(): string {
    return formatIPv4(
      m.chance(0.5) ? new Uint8Array([10, m.int(4), m.int(4), m.int(256)]) : m.bytes(4),
    );
  }

  function v6(): string {
    const b = m.bytes(16);
    if (m.chance(0.5)) b.fill(0, 2, 14);
    if (m.chance(0.1)) b.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], 0);
    return formatIPv6(b);
  }

  function endpoint(valid: boolean): string {
    if (valid) {
      const port = m.chance(0.2) ? SQUATTED_PORT : m.int(65536);
      const r = m.int(10);
      if (r < 6) return `${v4()}:${port}`;
      if (r < 9) return `[${v6()}]:${port}`;
      const zone = m.chance(0.8)
        ? m.pick(["eth0", "2", "wg0", "4294967296", "99999999999999999999"])
        : junk().replaceAll("]", "") || "z";
      return `[fe80::${m.int(0xffff).toString(16)}%${zone}]:${port}`;
    }
    return m.pick([
      "localhost:51820",
      "1.2.3.4",
      "1.2.3.4:",
      "[::1]",
      "::1:51820",
      "1.2.3.4:65536",
      "[1.2.3.4]:1",
      "01.2.3.4:1",
      "[fe80::1%]:1",
      "1.2.3.4:-1",
      `${v4()}:${junk()}`,
      junk(),
    ]);
  }

  function prefix(valid: boolean): string {
    if (valid) {
      const family = m.chance(0.6) ? 4 : 6;
      const cidr = m.chance(0.3) ? (family === 4 ? 32 : 128) : m.int(family === 4 ? 33 : 129);
      const text = `${family === 4 ? v4() : v6()}/${cidr}`;
      return m.chance(0.15) ? `-${text}` : text;
    }
    return m.pick([
      "10.0.0.1",
      "10.0.0.1/33",
      "::/129",
      "10.0.0.1/08",
      "10.0.0.1/+8",
      "fe80::1%eth0/64",
      "10.0.0.1/ 8",
      "--10.0.0.0/8",
      "",
      "/",
      `${v4()}/${junk()}`,
      junk(),
    ]);
  }

  function junk(): string {
    let s = "";
    const n = m.chance(0.9) ? m.int(12) : m.int(300);
    for (let i = 0; i < n; i++) s += m.pick(JUNK_CHARS);
    return s;
  }

  function bool(valid: boolean): string {
    return valid ? "true" : m.pick(["false", "TRUE", "True", "1", "", " true", junk()]);
  }

  // ---- requests ----

  function deviceLine(valid: () => boolean): string {
    switch (m.int(valid() ? 8 : 10)) {
      case 0:
      case 1:
        return `private_key=${hexKey(valid())}`;
      case 2:
      case 3:
        return `listen_port=${m.chance(0.2) ? String(SQUATTED_PORT) : decimal(65535, valid())}`;
      case 4:
      case 5:
        return `fwmark=${decimal(0xffffffff, valid())}`;
      case 6:
        return `replace_peers=${bool(valid())}`;
      case 7:
        return `listen_port=${m.pick(["0", "51820", "51821"])}`;
      case 8:
        return `${m.pick(["Private_Key", " private_key", "errno", "get", "set", ""])}=${junk()}`;
      default:
        return m.chance(0.5) ? junk() : `${junk()}=${junk()}`;
    }
  }

  function peerLines(valid: () => boolean): string[] {
    const out = [`public_key=${hexKey(valid())}`];
    const n = m.int(8);
    for (let i = 0; i < n; i++) {
      switch (m.int(valid() ? 12 : 14)) {
        case 0:
          out.push(`preshared_key=${hexKey(valid())}`);
          break;
        case 1:
        case 2:
          out.push(`endpoint=${endpoint(valid())}`);
          break;
        case 3:
          out.push(`persistent_keepalive_interval=${decimal(65535, valid())}`);
          break;
        case 4:
          out.push(`replace_allowed_ips=${bool(valid())}`);
          break;
        case 5:
        case 6:
        case 7: {
          const k = m.chance(0.1) ? m.range(2, 20) : 1;
          for (let j = 0; j < k; j++) out.push(`allowed_ip=${prefix(valid())}`);
          break;
        }
        case 8:
          out.push(`protocol_version=${valid() ? "1" : m.pick(["2", "01", "", junk()])}`);
          break;
        case 9:
          out.push(`update_only=${bool(valid())}`);
          break;
        case 10:
          out.push(`remove=${bool(valid())}`);
          break;
        case 11:
          out.push(`public_key=${hexKey(valid())}`);
          break;
        case 12:
          out.push(
            `${m.pick(["last_handshake_time_sec", "tx_bytes", "listen_port", "Endpoint"])}=1`,
          );
          break;
        default:
          out.push(m.chance(0.5) ? junk() : `${junk()}=${junk()}`);
      }
    }
    return out;
  }

  /** The lines of one set request body (without `set=1` and the blank line). */
  function setBody(pValid: number): string[] {
    const valid = () => m.chance(pValid);
    const lines: string[] = [];
    const dn = m.int(4);
    for (let i = 0; i < dn; i++) lines.push(deviceLine(valid));
    const pn = m.int(4);
    for (let i = 0; i < pn; i++) lines.push(...peerLines(valid));
    return lines;
  }

  function hugeLine(): string {
    const n = m.pick([MAX_LINE_BYTES - 2, MAX_LINE_BYTES - 1, MAX_LINE_BYTES, MAX_LINE_BYTES + 1]);
    const key = m.pick(["allowed_ip=", "public_key=", "", "x="]);
    return key + "a".repeat(Math.max(0, n - key.length));
  }

  function chaosStream(): string {
    if (m.chance(0.25) && golden().length > 0) {
      const parts: string[] = [];
      const n = m.range(1, 4);
      for (let i = 0; i < n; i++) parts.push(m.pick(golden()));
      return parts.join("");
    }
    const parts: string[] = [];
    const n = m.range(1, 4);
    for (let i = 0; i < n; i++) {
      const r = m.int(100);
      const eol = m.chance(0.1) ? "\r\n" : "\n";
      if (r < 20) {
        parts.push(m.pick(["get=1\n\n", "get=1\n\n", "get=1\nX", "get=1\r\n\n", "get=1"]));
      } else if (r < 90) {
        const body = setBody(m.pick([0.6, 0.9, 0.98]));
        if (m.chance(0.02)) body.splice(m.int(body.length + 1), 0, hugeLine());
        parts.push(`set=1\n${body.map((l) => l + eol).join("")}${m.chance(0.9) ? eol : ""}`);
      } else {
        parts.push(m.pick(["", "\n", "set=2\n", "GET=1\n", "get=1 \n", junk() + "\n"]));
      }
    }
    return parts.join("");
  }

  // ---- feeding ----

  function feedConnection(bytes: Uint8Array, maxRequestBytes: number, eof: boolean): string {
    let out = "";
    const conn = new UapiConnection(deviceHandler(world.device), (t) => {
      out += t;
    }, { maxRequestBytes });
    let i = 0;
    while (i < bytes.length && !conn.closed) {
      const end = Math.min(bytes.length, i + (m.chance(0.3) ? m.range(1, 8) : m.range(1, 4096)));
      let chunk = bytes.subarray(i, end);
      i = end;
      let guard = 0;
      while (chunk.length > 0 && !conn.closed) {
        const used = conn.feed(chunk);
        if (used < 0 || used > chunk.length || (used === 0 && ++guard > 2)) {
          recordFailure(stats, iteration, `feed consumed ${used} of ${chunk.length} bytes`, bytes);
          return out;
        }
        chunk = chunk.subarray(used);
      }
    }
    if (eof && !conn.closed) conn.end();
    return out;
  }

  /** Splits replies; records unexpected errnos. Returns the replies in order. */
  function checkReplies(out: string, input: Uint8Array): string[] {
    const replies: string[] = [];
    const re = /errno=(-?[0-9]+)\n\n/g;
    let last = 0;
    for (let match = re.exec(out); match; match = re.exec(out)) {
      replies.push(out.slice(last, re.lastIndex));
      last = re.lastIndex;
      const errno = Number(match[1]);
      bump(stats, `errno${errno}`);
      if (!ALLOWED_ERRNOS.has(errno)) {
        recordFailure(
          stats,
          iteration,
          `reply errno=${errno} (unexpected exception in the applier)`,
          input,
        );
      }
    }
    if (last !== out.length) {
      recordFailure(
        stats,
        iteration,
        `reply text not framed: ${JSON.stringify(out.slice(last, last + 200))}`,
        input,
      );
    }
    return replies;
  }

  function chaos(): void {
    bump(stats, "chaos");
    let bytes: Uint8Array = new TextEncoder().encode(chaosStream());
    if (m.chance(0.2)) {
      bytes = m.mutate(bytes, 6);
      bump(stats, "byteMutated");
    }
    const maxRequestBytes = m.chance(0.3) ? m.range(1, 512) : 1 << 20;
    stats.inputs++;
    let out: string;
    try {
      out = feedConnection(bytes, maxRequestBytes, m.chance(0.7));
    } catch (err) {
      recordException(stats, iteration, err, bytes);
      return;
    }
    checkReplies(out, bytes);
  }

  function differential(): void {
    bump(stats, "differential");
    const dev = world.device;
    if (dev.isUp && world.bind.port === 0) {
      // A failed listen_port left the device up without a socket (as wireguard-go's
      // BindUpdate does); a twin brought up would bind, so the states cannot agree.
      bump(stats, "skipUnbound");
      return;
    }
    // The twin: a fresh device on its own network, configured from the device's get output.
    const twinWorld = newWorld(1);
    const twin = twinWorld.device;
    try {
      const cfg = settableLines(ipcGet(dev));
      if (dev.privateKey === null && cfg.includes(`public_key=${"0".repeat(64)}`)) return;
      const err = ipcSet(twin, cfg.join("\n") + "\n\n");
      if (err) {
        recordFailure(stats, iteration, `twin set failed: ${err}`);
        return;
      }
      if (dev.isUp) twin.up();
      const requests: string[] = [];
      const n = m.range(1, 3);
      for (let i = 0; i < n; i++) {
        if (m.chance(0.2)) requests.push("get=1\n\n");
        else {
          // No line may end the request early (empty once one CR is dropped) or split in two.
          const body = setBody(m.pick([0.8, 0.95, 1]))
            .filter((l) => l.replace(/\r$/, "") !== "" && !l.includes("\n"));
          if (i === n - 1 && m.chance(0.02)) body.push(hugeLine());
          const eol = m.chance(0.1) ? "\r\n" : "\n";
          requests.push(`set=1\n${body.map((l) => l + eol).join("")}${eol}`);
        }
      }
      const text = requests.join("");
      const bytes = new TextEncoder().encode(text);
      stats.inputs++;
      const out = feedConnection(bytes, m.chance(0.5) ? m.range(1, 256) : 1 << 20, m.chance(0.5));
      const replies = checkReplies(out, bytes);
      // The same requests through ipcSet / ipcGet on the twin.
      const want: string[] = [];
      for (const req of requests) {
        if (req.startsWith("get=1")) {
          want.push(ipcGet(twin) + "errno=0\n\n");
          continue;
        }
        const e = ipcSet(twin, req.slice("set=1\n".length));
        want.push(`errno=${e ? e.errno : 0}\n\n`);
        if (e && e.errno === -5) break; // line too long: the connection closes
      }
      const norm = (r: string) =>
        normalize(settableLines(r.replace(/errno=-?[0-9]+\n\n$/, ""))) +
        r.slice(r.lastIndexOf("errno="));
      const a = replies.map(norm), b = want.map(norm);
      if (a.length !== b.length || a.some((r, i) => r !== b[i])) {
        recordFailure(
          stats,
          iteration,
          `UapiConnection and ipcSet disagree:\n--- connection\n${a.join("")}\n--- ipcSet\n${
            b.join("")
          }`,
          text,
        );
        return;
      }
      const got = normalize(settableLines(ipcGet(dev)));
      const exp = normalize(settableLines(ipcGet(twin)));
      if (got !== exp) {
        recordFailure(
          stats,
          iteration,
          `states differ after the same requests:\n--- device\n${got}\n--- twin\n${exp}`,
          text,
        );
      }
    } catch (err) {
      recordException(stats, iteration, err, "differential");
    } finally {
      twin.close();
    }
  }

  for (iteration = 0; iteration < iterations; iteration++) {
    if ((iteration & 7) === 0 && pastDeadline(options)) break;
    if (iteration > 0 && iteration % 250 === 0) {
      world.device.close();
      world = newWorld(m.u32());
    }
    try {
      // Up and down now and then (up fails when the squatter holds our port).
      if (m.chance(0.05)) {
        if (world.device.isUp) world.device.down();
        else {
          try {
            world.device.up();
          } catch (err) {
            if (!(err instanceof BindError)) throw err;
            bump(stats, "upRefused");
          }
        }
      }
    } catch (err) {
      recordException(stats, iteration, err, "up/down");
    }
    if (m.chance(0.6)) chaos();
    else differential();
    try {
      world.clock.advance(m.chance(0.9) ? m.int(2000) : m.range(5000, 200_000));
    } catch (err) {
      recordException(stats, iteration, err, "clock advance");
    }
    const dev = world.device;
    for (const v of checkBounds(dev)) recordFailure(stats, iteration, v);
    peak(stats, "peakPeers", dev.peerCount);
    if (iteration % 5 === 0) {
      for (const v of checkAllowedIps(dev)) recordFailure(stats, iteration, v);
    }
    if (iteration % 10 === 0) {
      try {
        for (const v of checkRoundTrip(dev, quirks)) recordFailure(stats, iteration, v);
      } catch (err) {
        recordException(stats, iteration, err, "round trip");
      }
    }
    let allowed = 0;
    for (const peer of dev.peers()) allowed += dev.allowedIps.entriesFor(peer).length;
    peak(stats, "peakAllowedIps", allowed);
  }
  stats.iterations = iteration;
  stats.counters.zeroKeyPeerQuirk = quirks.zeroKeyPeer;
  world.device.close();
  stats.ms = performance.now() - started;
  return stats;
}
