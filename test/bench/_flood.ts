// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Handshake load generator of the network benchmark, run as its own process
 * inside the initiator's namespace (`deno run --unstable-net _flood.ts`,
 * configuration as JSON in the `GTB_FLOOD` environment variable; prints one
 * JSON line with the counts on stdout). It sends handshake initiations that
 * were built beforehand by _pool.ts with the project's protocol core
 * (createInitiation + CookieGenerator.addMacs), so this process spends no
 * CPU on crypto while it measures: the responder does all the work.
 *
 * Each message is used once. Every initiation is valid for a *fresh*
 * responder configured with the pool's keys: the pool cycles through K
 * initiator keys, and each key's timestamps increase along the pool, as the
 * responder's replay check (whitepaper §5.1, newer TAI64N than the last
 * accepted) requires; consecutive messages of one key are K apart in the
 * pool, which keeps them further apart in time than the responder's per-peer
 * limit of one initiation per 20 ms (HANDSHAKE_INITATION_RATE) at the rates
 * used here.
 *
 * Two phases, one after the other, against the same responder:
 * 1. **capacity**: closed loop with `window` initiations in flight (32, below
 *    the 128-deep handshake queue that puts wireguard-go and gotatun "under
 *    load"), a new one sent for every response, cookie reply, or timeout.
 *    Responses per second is the responder's handshake throughput.
 * 2. **flood**: open loop at `floodRate` initiations per second, far beyond
 *    that throughput, with no cookie (mac2 zero), as an attacker without a
 *    routable source would send. The responder is expected to go "under
 *    load" and answer with cookie replies (whitepaper §5.3); the responses
 *    it still completes, the cookie replies and its CPU time are counted.
 */

/** What net.ts passes in `GTB_FLOOD`. */
export interface FloodConfig {
  /** File of 148-byte initiations (see _pool.ts). */
  pool: string;
  /** Index of the first message to use. */
  start: number;
  host: string;
  port: number;
  window: number;
  capacityMs: number;
  floodMs: number;
  floodRate: number;
  /** Give up on an initiation after this long in the capacity phase. */
  replyTimeoutMs: number;
  /** The responder daemon (for its CPU time during the flood). */
  responderPid: number;
}

/** What it prints. */
export interface FloodResult {
  capacity: {
    sent: number;
    responses: number;
    cookies: number;
    timeouts: number;
    ms: number;
    cpuTicks: number;
  };
  flood: { sent: number; responses: number; cookies: number; ms: number; cpuTicks: number };
  /** Index of the first unused message. */
  next: number;
}

const MSG = 148;
const RESPONSE = 2, RESPONSE_SIZE = 92;
const COOKIE_REPLY = 3, COOKIE_REPLY_SIZE = 64;

function u32(b: Uint8Array, off: number): number {
  return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
}

function cpuTicks(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  } catch {
    return NaN;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs both phases and returns the counts. */
export async function flood(cfg: FloodConfig): Promise<FloodResult> {
  const pool = await Deno.readFile(cfg.pool);
  const end = Math.floor(pool.length / MSG);
  let next = cfg.start;
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 });
  const addr: Deno.NetAddr = { transport: "udp", hostname: cfg.host, port: cfg.port };

  let phase: "capacity" | "flood" | "done" = "capacity";
  const inflight = new Map<number, number>();
  const cap = { sent: 0, responses: 0, cookies: 0, timeouts: 0, ms: 0, cpuTicks: NaN };
  const fl = { sent: 0, responses: 0, cookies: 0, ms: 0, cpuTicks: NaN };
  let floodFirstIndex = Infinity;

  function sendNext(): void {
    if (phase !== "capacity" || next >= end) return;
    const msg = pool.subarray(next * MSG, (next + 1) * MSG);
    next++;
    inflight.set(u32(msg, 4), performance.now());
    cap.sent++;
    conn.send(msg, addr).catch(() => {});
  }

  function onMessage(data: Uint8Array): void {
    let receiver: number;
    let isResponse: boolean;
    if (data[0] === RESPONSE && data.length === RESPONSE_SIZE) {
      receiver = u32(data, 8);
      isResponse = true;
    } else if (data[0] === COOKIE_REPLY && data.length === COOKIE_REPLY_SIZE) {
      receiver = u32(data, 4);
      isResponse = false;
    } else {
      return;
    }
    if (phase === "capacity") {
      if (!inflight.delete(receiver)) return;
      if (isResponse) cap.responses++;
      else cap.cookies++;
      sendNext();
    } else if (receiver >= floodFirstIndex) {
      if (isResponse) fl.responses++;
      else fl.cookies++;
    }
  }

  const receiving = (async () => {
    try {
      for await (const [data] of conn) onMessage(data);
    } catch {
      // closed
    }
  })();

  try {
    // Phase 1: capacity, closed loop.
    const ticksCap = cpuTicks(cfg.responderPid);
    const t0 = performance.now();
    for (let i = 0; i < cfg.window; i++) sendNext();
    while (performance.now() - t0 < cfg.capacityMs && (next < end || inflight.size > 0)) {
      await sleep(10);
      const now = performance.now();
      for (const [index, sentAt] of inflight) {
        if (now - sentAt > cfg.replyTimeoutMs) {
          inflight.delete(index);
          cap.timeouts++;
          sendNext();
        }
      }
    }
    cap.ms = performance.now() - t0;
    cap.cpuTicks = cpuTicks(cfg.responderPid) - ticksCap;
    phase = "flood";
    inflight.clear();
    await sleep(300);

    // Phase 2: flood, open loop at floodRate.
    if (next < end) floodFirstIndex = u32(pool, next * MSG + 4);
    const ticks0 = cpuTicks(cfg.responderPid);
    const t1 = performance.now();
    while (next < end) {
      const elapsed = performance.now() - t1;
      if (elapsed >= cfg.floodMs) break;
      const due = Math.floor((elapsed / 1000) * cfg.floodRate);
      while (fl.sent < due && next < end) {
        await conn.send(pool.subarray(next * MSG, (next + 1) * MSG), addr).catch(() => 0);
        next++;
        fl.sent++;
      }
      await sleep(1);
    }
    fl.ms = performance.now() - t1;
    fl.cpuTicks = cpuTicks(cfg.responderPid) - ticks0;
    // Replies to the last initiations still count.
    await sleep(500);
    phase = "done";
  } finally {
    conn.close();
    await receiving;
  }
  return { capacity: cap, flood: fl, next };
}

if (import.meta.main) {
  const cfg = JSON.parse(Deno.env.get("GTB_FLOOD") ?? "null") as FloodConfig | null;
  if (!cfg) {
    Deno.stderr.writeSync(new TextEncoder().encode("GTB_FLOOD is not set\n"));
    Deno.exit(2);
  }
  const result = await flood(cfg);
  Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(result) + "\n"));
}
