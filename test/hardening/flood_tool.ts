// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Flood generator of the hardening suite (issue "hardening"), usable from the
 * command line and from the tests:
 *
 * ```sh
 * # one flood, from the namespace you run it in (prints one JSON line with --json):
 * deno run -A test/hardening/flood_tool.ts flood --target 10.0.2.1:51820 \
 *     --victim <public key, base64 or hex> [--kind init|garbage] [--cookies] \
 *     [--src 10.77.0.1 --sources 64] [--rate 0] [--seconds 5] [--json]
 * # the bigger measurement (root): namespaces, daemons, every flood, one table:
 * deno run -A test/hardening/flood_tool.ts --measure [--seconds 5] [--pin]
 * ```
 *
 * `--measure` (root; `_measure.ts`) builds the namespaces of `_net.ts`, runs
 * every scenario of `_measure.ts` `SCENARIOS` against a gotatun victim while a
 * legit peer pings and runs iperf3, and prints a Markdown table; `--pin` runs
 * the victim on CPU 0 and the flooder on CPU 1.
 *
 * **Initiation floods** (`--kind init`). The messages are real handshake
 * initiations built with the project's core (`createInitiation`, then
 * `CookieGenerator.addMacs`), each from a fresh random static key that the
 * victim does not know. mac1 is valid for the victim's public key, so every
 * message passes the cheap check and costs the victim one X25519 (the `es`
 * step of `consumeInitiation`) before it finds that the static key belongs to
 * no peer, unless it is under load (whitepaper §5.3: handshake queue ≥ 128
 * deep) and answers with a cookie reply instead. mac2 is zero: the flooder
 * never proves a round trip, unless `--cookies` is given, in which case it
 * decrypts each cookie reply (XChaCha20-Poly1305 under HASH("cookie--" ‖
 * Spub_victim), with the message's mac1 as associated data, as an initiator's
 * `CookieGenerator.consumeReply`) and from then on sends that source's
 * messages with a valid mac2, so they reach the per-source rate limiter
 * (20/s, burst 5, IPv4 /32, IPv6 /64) and, within it, the DH.
 *
 * **Garbage floods** (`--kind garbage`): random bytes of random sizes, and
 * messages of each type with the right size but random content: initiations
 * and responses with a wrong mac1 (one keyed BLAKE2s each), cookie replies
 * for unknown indices (queued as handshake messages by every implementation,
 * then dropped at the index lookup) and transport messages for unknown
 * receiver indices.
 *
 * **Sources.** One socket (the project's {@link LinuxBind}, sendmmsg in
 * batches of 64) sends every message; `--sources N` spreads them over N source
 * addresses starting at `--src`, put on each datagram as IP_PKTINFO /
 * IPV6_PKTINFO. IPv4 sources count up from `--src` and must be local: give the
 * namespace an AnyIP route (`ip route add local 10.77.0.0/16 dev lo`). IPv6
 * sources are random interface identifiers in the /64 of `--src`; the socket
 * gets IPV6_FREEBIND (and IP_FREEBIND), and replies come back through an AnyIP
 * route on the /64. The source port is the socket's (fixed) port; the rate
 * limiter and the cookie ignore ports for the bucket and bind them for the
 * cookie, respectively, so more ports would change nothing measured here.
 * GSO is off unless `--gso`: with it, a single-source flood leaves as 64-datagram
 * super-packets that the victim's UDP GRO receives as one message each, which
 * is far cheaper for the victim than what an attacker's datagrams cost.
 *
 * Pacing: `--rate` datagrams per second (0: as fast as the socket takes them),
 * sent in bursts of up to 256 with the replies drained after each burst, the
 * event loop being yielded every 10 ms so that SIGTERM/SIGINT end the flood
 * early with the counts printed.
 */
import { parseArgs } from "node:util";
import { LinuxBind } from "../../src/conn/udp.ts";
import { Endpoint } from "../../src/conn/endpoint.ts";
import { CookieGenerator } from "../../src/noise/cookie.ts";
import { createInitiation, Handshake, StaticIdentity } from "../../src/noise/handshake.ts";
import { generatePrivateKey, hash, mac, xaeadOpen } from "../../src/crypto.ts";
import { realClock, systemRng } from "../../src/clock.ts";
import { useBestCryptoBackend } from "../../src/crypto/select.ts";
import { IPPROTO_IP, IPPROTO_IPV6, libc } from "../../src/sys/libc.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../../src/ip.ts";

/** IP_FREEBIND (linux/in.h) and IPV6_FREEBIND (linux/in6.h). */
const IP_FREEBIND = 15;
const IPV6_FREEBIND = 78;

const INIT_SIZE = 148;
const MAC1_OFFSET = 116;
const MAC2_OFFSET = 132;
const COOKIE_REPLY = 3;
const COOKIE_REPLY_SIZE = 64;
const RESPONSE = 2;
const RESPONSE_SIZE = 92;

/** What to send. */
export type FloodKind = "init" | "garbage";

/** Options of {@link runFlood}. */
export interface FloodOptions {
  /** The victim's UDP endpoint, e.g. "10.0.2.1:51820" or "[fd00::1]:51820". */
  target: string;
  /** The victim's public key (needed for initiations). */
  victimPublicKey?: Uint8Array;
  kind: FloodKind;
  /** Decrypt cookie replies and send mac2 from then on (initiations only). */
  cookies?: boolean;
  /** First source address (default: let the kernel choose one). */
  src?: string;
  /** Number of source addresses (default 1). */
  sources?: number;
  /** Datagrams per second; 0 = as fast as possible (default). */
  rate?: number;
  /** How long to flood. */
  durationMs: number;
  /** Distinct messages cycled through (default 64). */
  poolSize?: number;
  /** Local UDP port (default 0: any). */
  port?: number;
  /**
   * Let the kernel merge equal datagrams to one destination into one GSO
   * packet (default false: every datagram is its own packet, as an attacker's
   * would be; with GSO and the victim's UDP GRO, 64 datagrams cost the
   * victim's kernel one packet).
   */
  gso?: boolean;
  /** Resolves to stop early (e.g. on a signal). */
  stop?: Promise<unknown>;
}

/** What a flood did, from the flooder's side. */
export interface FloodResult {
  kind: FloodKind;
  cookies: boolean;
  sources: number;
  /** Wall time of the sending phase. */
  ms: number;
  /** Datagrams handed to the kernel. */
  sent: number;
  /** Datagrams the socket refused (the bind's send errors). */
  sendErrors: number;
  /** Offered rate, datagrams per second. */
  pps: number;
  /** Cookie replies received (the victim's under-load path). */
  cookieReplies: number;
  /** Cookie replies that decrypted (with `cookies`). */
  cookiesSolved: number;
  /** Initiations sent with a valid-looking mac2 (with `cookies`). */
  sentWithMac2: number;
  /** Handshake responses received (never expected: the keys are unknown). */
  responses: number;
  /** Anything else received. */
  other: number;
}

/** The victim's cookie encryption key, HASH("cookie--" ‖ Spub) (whitepaper §5.4.7). */
function cookieKey(victimPublicKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  hash(out, new TextEncoder().encode("cookie--"), victimPublicKey);
  return out;
}

/**
 * buildInitiations() makes `count` handshake initiations to `victimPublicKey`,
 * each from a fresh random static key (unknown to the victim), with a valid
 * mac1, a zero mac2, and sender index `i + 1`. The static-static DH of such
 * a key is never checked by the victim (its lookup fails first), so random
 * bytes stand in for it.
 */
export function buildInitiations(victimPublicKey: Uint8Array, count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const macs = new CookieGenerator(realClock, victimPublicKey);
  for (let i = 0; i < count; i++) {
    const identity = new StaticIdentity();
    identity.set(generatePrivateKey(systemRng));
    const hs = new Handshake(victimPublicKey);
    systemRng(hs.precomputedStaticStatic);
    const msg = new Uint8Array(INIT_SIZE);
    const ok = createInitiation(msg, hs, identity, i + 1, {
      rng: systemRng,
      now: realClock.now(),
      wall: realClock.wall(),
    });
    if (!ok) throw new Error("Cannot build an initiation (low-order victim key?)");
    macs.addMacs(msg);
    hs.clear();
    identity.clear();
    out.push(msg);
  }
  return out;
}

/**
 * buildGarbage() makes `count` hostile datagrams in four equal shares:
 * random bytes of 1–1400 bytes; type 1 (148 B) and type 2 (92 B) with a wrong
 * mac1; type 3 (64 B) for random receiver indices; type 4 (32–1400 B) for
 * random receiver indices.
 */
export function buildGarbage(count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const r = new Uint32Array(1);
  function rand(n: number): number {
    crypto.getRandomValues(r);
    return r[0] % n;
  }
  for (let i = 0; i < count; i++) {
    let msg: Uint8Array;
    switch (i % 4) {
      case 0:
        msg = new Uint8Array(1 + rand(1400));
        systemRng(msg);
        break;
      case 1:
        msg = new Uint8Array(i % 8 === 1 ? INIT_SIZE : RESPONSE_SIZE);
        systemRng(msg);
        msg.set([i % 8 === 1 ? 1 : 2, 0, 0, 0]);
        break;
      case 2:
        msg = new Uint8Array(COOKIE_REPLY_SIZE);
        systemRng(msg);
        msg.set([3, 0, 0, 0]);
        break;
      default:
        msg = new Uint8Array(32 + rand(1369));
        systemRng(msg);
        msg.set([4, 0, 0, 0]);
        break;
    }
    out.push(msg);
  }
  return out;
}

/** The source addresses of a flood (see the module doc). */
export function sourceAddresses(src: string, count: number): Uint8Array[] {
  const v4 = parseIPv4(src);
  const out: Uint8Array[] = [];
  if (v4) {
    const base = ((v4[0] << 24) | (v4[1] << 16) | (v4[2] << 8) | v4[3]) >>> 0;
    for (let i = 0; i < count; i++) {
      const a = (base + i) >>> 0;
      out.push(new Uint8Array([a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255]));
    }
    return out;
  }
  const v6 = parseIPv6(src);
  if (!v6) throw new TypeError(`Invalid source address "${src}"`);
  out.push(v6);
  const seen = new Set<string>([formatIPv6(v6)]);
  while (out.length < count) {
    const a = v6.slice();
    systemRng(a.subarray(8));
    const key = formatIPv6(a);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(a);
  }
  return out;
}

/** Text of an address (for logs and the reply map). */
function addressText(a: Uint8Array): string {
  return a.length === 4 ? formatIPv4(a) : formatIPv6(a);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function setFreebind(fds: number[]): void {
  const one = new Int32Array([1]);
  const c = libc();
  for (const fd of fds) {
    c.setsockopt(fd, IPPROTO_IP, IP_FREEBIND, one, 4);
    c.setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, one, 4);
  }
}

/** runFlood() sends one flood from the current network namespace and returns the counts. */
export async function runFlood(opts: FloodOptions): Promise<FloodResult> {
  const dst = Endpoint.parse(opts.target);
  const nSources = Math.max(1, opts.sources ?? 1);
  const poolSize = Math.max(1, opts.poolSize ?? 64);
  const rate = opts.rate ?? 0;
  const solve = opts.kind === "init" && opts.cookies === true;
  let pool: Uint8Array[];
  if (opts.kind === "init") {
    if (!opts.victimPublicKey) throw new TypeError("An initiation flood needs the victim's key");
    pool = buildInitiations(opts.victimPublicKey, poolSize);
  } else {
    pool = buildGarbage(poolSize);
  }
  const key = opts.victimPublicKey ? cookieKey(opts.victimPublicKey) : null;

  // One destination endpoint per source: the bind puts srcAddress on the wire as pktinfo.
  const eps: Endpoint[] = [];
  const bySource = new Map<string, number>();
  if (opts.src) {
    for (const a of sourceAddresses(opts.src, nSources)) {
      const ep = dst.clone();
      ep.srcAddress = a;
      ep.srcIfindex = 0;
      bySource.set(addressText(a), eps.length);
      eps.push(ep);
    }
  } else {
    eps.push(dst.clone());
  }
  const cookies: (Uint8Array | null)[] = eps.map(() => null);

  const result: FloodResult = {
    kind: opts.kind,
    cookies: solve,
    sources: eps.length,
    ms: 0,
    sent: 0,
    sendErrors: 0,
    pps: 0,
    cookieReplies: 0,
    cookiesSolved: 0,
    sentWithMac2: 0,
    responses: 0,
    other: 0,
  };

  const plain = new Uint8Array(16);
  function onReply(data: Uint8Array, from: Endpoint): void {
    if (data.length === COOKIE_REPLY_SIZE && data[0] === COOKIE_REPLY) {
      result.cookieReplies++;
      if (!solve || key === null) return;
      const index = (data[4] | (data[5] << 8) | (data[6] << 16) | (data[7] << 24)) >>> 0;
      const msg = pool[index - 1];
      if (!msg) return;
      const s = from.srcAddress ? bySource.get(addressText(from.srcAddress)) ?? 0 : 0;
      const ok = xaeadOpen(
        plain,
        key,
        data.subarray(8, 32),
        data.subarray(32, 64),
        msg.subarray(MAC1_OFFSET, MAC1_OFFSET + 16),
      );
      if (!ok) return;
      result.cookiesSolved++;
      (cookies[s] ??= new Uint8Array(16)).set(plain);
    } else if (data.length === RESPONSE_SIZE && data[0] === RESPONSE) {
      result.responses++;
    } else {
      result.other++;
    }
  }

  const bind = new LinuxBind({ gso: opts.gso === true });
  bind.open(opts.port ?? 0, onReply);
  setFreebind(bind.fds());
  let stopped = false;
  opts.stop?.then(() => (stopped = true), () => (stopped = true));
  const scratch = new Uint8Array(INIT_SIZE);
  const t0 = performance.now();
  let yieldAt = t0 + 10;
  try {
    for (;;) {
      const now = performance.now();
      const elapsed = now - t0;
      if (elapsed >= opts.durationMs || stopped) break;
      const due = rate > 0 ? Math.floor((elapsed / 1000) * rate) : result.sent + 256;
      const burst = Math.min(256, due - result.sent);
      for (let i = 0; i < burst; i++) {
        const n = result.sent++;
        const s = n % eps.length;
        let msg = pool[n % pool.length];
        const cookie = cookies[s];
        if (cookie !== null) {
          scratch.set(msg);
          mac(
            scratch.subarray(MAC2_OFFSET, MAC2_OFFSET + 16),
            cookie,
            msg.subarray(0, MAC2_OFFSET),
          );
          msg = scratch;
          result.sentWithMac2++;
        }
        bind.send(msg, eps[s]);
      }
      bind.flush();
      bind.drain(4096);
      if (burst <= 0) {
        await sleep(1);
        yieldAt = performance.now() + 10;
      } else if (now >= yieldAt) {
        await sleep(0);
        yieldAt = performance.now() + 10;
      }
    }
    result.ms = performance.now() - t0;
    // Replies to the last messages still count.
    const end = performance.now() + 300;
    while (performance.now() < end) {
      bind.drain(4096);
      await sleep(10);
    }
  } finally {
    result.sendErrors = bind.sendErrors;
    bind.close();
  }
  result.pps = result.ms > 0 ? Math.round(result.sent / (result.ms / 1000)) : 0;
  return result;
}

/** Parses a public key given as base64 (as `wg` prints it) or 64 hex digits. */
export function parseKey(text: string): Uint8Array {
  if (/^[0-9a-fA-F]{64}$/.test(text)) {
    return Uint8Array.fromHex(text);
  }
  const key = Uint8Array.fromBase64(text);
  if (key.length !== 32) throw new TypeError("A key is 32 bytes");
  return key;
}

const USAGE = `Usage:
  flood_tool.ts flood --target ADDR:PORT [--victim KEY] [--kind init|garbage] [--cookies]
                      [--src ADDR] [--sources N] [--rate PPS] [--seconds S] [--pool N]
                      [--port P] [--gso] [--json]
  flood_tool.ts --measure [--seconds S] [--pin]
`;

/** The command line (see the module doc). Returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      target: { type: "string" },
      victim: { type: "string" },
      kind: { type: "string", default: "init" },
      cookies: { type: "boolean", default: false },
      src: { type: "string" },
      sources: { type: "string", default: "1" },
      rate: { type: "string", default: "0" },
      seconds: { type: "string" },
      pool: { type: "string", default: "64" },
      port: { type: "string", default: "0" },
      gso: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      measure: { type: "boolean", default: false },
      pin: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  const write = (s: string) => Deno.stdout.writeSync(new TextEncoder().encode(s));
  if (values.help) {
    write(USAGE);
    return 0;
  }
  useBestCryptoBackend("auto");
  if (values.measure) {
    const { measure } = await import("./_measure.ts");
    return await measure({
      seconds: values.seconds ? Number(values.seconds) : undefined,
      pin: values.pin,
    });
  }
  if (positionals[0] !== "flood" || !values.target) {
    Deno.stderr.writeSync(new TextEncoder().encode(USAGE));
    return 2;
  }
  if (values.kind !== "init" && values.kind !== "garbage") {
    Deno.stderr.writeSync(new TextEncoder().encode(`Unknown --kind ${values.kind}\n`));
    return 2;
  }
  let fire!: () => void;
  const stop = new Promise<void>((r) => (fire = r));
  const onSignal = () => fire();
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    const result = await runFlood({
      target: values.target,
      victimPublicKey: values.victim ? parseKey(values.victim) : undefined,
      kind: values.kind,
      cookies: values.cookies,
      src: values.src,
      sources: Number(values.sources),
      rate: Number(values.rate),
      durationMs: Number(values.seconds ?? "5") * 1000,
      poolSize: Number(values.pool),
      port: Number(values.port),
      gso: values.gso,
      stop,
    });
    if (values.json) write(JSON.stringify(result) + "\n");
    else {
      write(
        `${result.kind}${result.cookies ? " (cookies solved)" : ""} from ${result.sources} ` +
          `source(s): ${result.sent} sent in ${(result.ms / 1000).toFixed(1)} s ` +
          `(${result.pps} pps), ${result.cookieReplies} cookie replies, ` +
          `${result.sentWithMac2} with mac2, ${result.responses} responses\n`,
      );
    }
    return 0;
  } finally {
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGINT", onSignal);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
