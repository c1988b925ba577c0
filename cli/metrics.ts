// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Prometheus metrics for the daemon: `GOTATUN_METRICS=ADDR:PORT` makes it
 * serve the text exposition format (version 0.0.4) at `http://ADDR:PORT/metrics`.
 * The wireguard-go command line is left exactly as it is, so the switch is an
 * environment variable, like `LOG_LEVEL` (wg-quick passes the environment on).
 *
 * It is off by default and, when on, binds loopback only (`127.0.0.1:9586`,
 * `[::1]:9586`, or `:9586` for 127.0.0.1): the counters tell who talks to whom
 * and how much, which is nobody else's business. Any other address is refused
 * (logged; the daemon carries on without metrics) unless
 * `GOTATUN_METRICS_ALLOW_REMOTE=1`.
 *
 * {@link formatMetrics} is pure (a Device and a few process numbers in, text
 * out) so it is tested against an in-memory device pair; {@link startMetrics}
 * is the thin `Deno.serve` around it. Names follow Prometheus's conventions:
 * counters end in `_total`, Unix times in `_timestamp_seconds`, and the
 * process's own numbers are the standard `process_*` families. Every sample
 * of the interface's families carries the `interface` label (one daemon per
 * interface, several daemons per host); the process families and
 * `gotatun_build_info` describe the process and carry none. Peers are
 * labelled by their base64 `public_key`, as `wg` prints them.
 */
import type { Device, DeviceStats } from "../src/device.ts";
import { keyToBase64 } from "../src/keys.ts";
import { cryptoBackend } from "../src/crypto.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../src/ip.ts";
import type { Logger } from "../src/log.ts";
import { VERSION } from "./version.ts";

/** The environment variable that turns metrics on: `ADDR:PORT`. */
export const METRICS_ENV = "GOTATUN_METRICS";
/** `1` allows a non-loopback metrics address. */
export const METRICS_ALLOW_REMOTE_ENV = "GOTATUN_METRICS_ALLOW_REMOTE";
/** The Content-Type of the text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Numbers about this process, sampled at scrape time by {@link processStats}. */
export interface ProcessStats {
  /** Resident set size in bytes. */
  residentMemoryBytes: number;
  /** User + system CPU time in seconds (all threads). */
  cpuSeconds: number;
  /** When the process started, Unix seconds. */
  startTimeSeconds: number;
}

/** What {@link formatMetrics} needs besides the device. */
export interface MetricsExtra {
  /** gotatun version (build_info). */
  version: string;
  /** Crypto backend name, e.g. "libcrypto" or "noble" (build_info). */
  cryptoBackend: string;
  /** Deno version (build_info); omitted from the labels when undefined. */
  deno?: string;
  /** Process numbers. */
  process: ProcessStats;
}

/** How long {@link MetricsServer.close} waits for open requests. */
const CLOSE_TIMEOUT_MS = 1000;

/** One labelled sample of a family. */
type Sample = [labels: string, value: number];

/** Escapes a label value (exposition format: backslash, double quote, newline). */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
}

/** Formats a sample value: integers as is, floats in JS's shortest form, ±Inf and NaN by name. */
export function formatValue(n: number): string {
  if (Number.isFinite(n)) return String(n);
  if (Number.isNaN(n)) return "NaN";
  return n > 0 ? "+Inf" : "-Inf";
}

/** `reason` label of a DeviceStats field: camelCase to snake_case. */
export function reasonLabel(field: string): string {
  return field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * DeviceStats fields that count something other than a dropped packet, each
 * with a counter of its own instead of a `reason` of `gotatun_dropped_packets_total`.
 */
export const NOT_DROPS: Readonly<Partial<Record<keyof DeviceStats, string>>> = {
  cookieRepliesSent: "cookie_replies_sent_total",
  sendErrors: "send_errors_total",
};

/**
 * formatMetrics() renders the device's counters in the Prometheus text
 * format 0.0.4: each family once, `# HELP` and `# TYPE` first, then its
 * samples; families with no samples (no peers) keep their HELP/TYPE lines.
 * It only reads counters (never secret keys) and touches nothing on the data path.
 */
export function formatMetrics(device: Device, extra: MetricsExtra): string {
  const out: string[] = [];
  const iface = `interface="${escapeLabelValue(device.name)}"`;
  /** A family named `full`; its samples get the interface label unless `ofProcess`. */
  function familyNamed(
    full: string,
    type: "counter" | "gauge",
    help: string,
    samples: readonly Sample[],
    ofProcess: boolean,
  ): void {
    out.push(`# HELP ${full} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
    out.push(`# TYPE ${full} ${type}`);
    for (const [labels, value] of samples) {
      const all = ofProcess ? labels : labels === "" ? iface : `${iface},${labels}`;
      out.push(`${full}${all === "" ? "" : `{${all}}`} ${formatValue(value)}`);
    }
  }
  /** A family of the interface: `gotatun_NAME`, samples labelled with the interface. */
  function family(
    name: string,
    type: "counter" | "gauge",
    help: string,
    samples: readonly Sample[],
  ): void {
    familyNamed(`gotatun_${name}`, type, help, samples, false);
  }

  // ---- per peer
  const peers = [...device.peers()];
  const peerLabels = peers.map((p) => `public_key="${escapeLabelValue(keyToBase64(p.publicKey))}"`);
  function perPeer(value: (i: number) => number): Sample[] {
    return peers.map((_, i) => [peerLabels[i], value(i)]);
  }
  family(
    "peer_receive_bytes_total",
    "counter",
    "Bytes of authenticated WireGuard messages received from the peer (rx_bytes).",
    perPeer((i) => peers[i].rxBytes),
  );
  family(
    "peer_transmit_bytes_total",
    "counter",
    "Bytes of UDP payload sent to the peer (tx_bytes).",
    perPeer((i) => peers[i].txBytes),
  );
  family(
    "peer_last_handshake_timestamp_seconds",
    "gauge",
    "Unix time of the last completed handshake with the peer, 0 if never.",
    perPeer((i) => {
      const t = peers[i].lastHandshakeTime();
      return t.sec + t.nsec / 1e9;
    }),
  );
  family(
    "peer_handshake_initiations_total",
    "counter",
    "Handshake initiations sent to the peer, retries included.",
    perPeer((i) => peers[i].counters.initiationsSent),
  );
  family(
    "peer_handshake_responses_total",
    "counter",
    "Handshake responses sent to the peer.",
    perPeer((i) => peers[i].counters.responsesSent),
  );
  family(
    "peer_handshakes_total",
    "counter",
    "Handshakes completed with the peer.",
    perPeer((i) => peers[i].counters.handshakesCompleted),
  );
  family(
    "peer_sessions_derived_total",
    "counter",
    "Sessions (keypairs) derived with the peer; each one is a key rotation.",
    perPeer((i) => peers[i].counters.sessionsDerived),
  );
  family(
    "peer_handshake_give_ups_total",
    "counter",
    "Times the handshake with the peer was given up after too many unanswered initiations.",
    perPeer((i) => peers[i].counters.handshakeGiveUps),
  );

  // ---- device
  const stats = device.stats;
  family(
    "dropped_packets_total",
    "counter",
    "Packets dropped or refused by the device, by reason.",
    (Object.keys(stats) as (keyof DeviceStats)[]).filter((k) => !(k in NOT_DROPS)).map((k) => [
      `reason="${escapeLabelValue(reasonLabel(k))}"`,
      stats[k],
    ]),
  );
  family(
    NOT_DROPS.cookieRepliesSent!,
    "counter",
    "Cookie replies sent instead of answering handshake initiations, under load.",
    [["", stats.cookieRepliesSent]],
  );
  family(
    NOT_DROPS.sendErrors!,
    "counter",
    "Datagrams the UDP socket refused to send (e.g. no route to the endpoint).",
    [["", stats.sendErrors]],
  );
  family("peers", "gauge", "Number of configured peers.", [["", device.peerCount]]);
  family("up", "gauge", "1 when the interface is up, 0 otherwise.", [["", device.isUp ? 1 : 0]]);
  family("listen_port", "gauge", "UDP port the device listens on (0 when none).", [[
    "",
    device.listenPort,
  ]]);

  // ---- process (the standard process_* families), not per interface
  const p = extra.process;
  familyNamed("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [[
    "",
    p.residentMemoryBytes,
  ]], true);
  familyNamed(
    "process_cpu_seconds_total",
    "counter",
    "Total user and system CPU time spent in seconds.",
    [["", p.cpuSeconds]],
    true,
  );
  familyNamed(
    "process_start_time_seconds",
    "gauge",
    "Start time of the process since unix epoch in seconds.",
    [["", p.startTimeSeconds]],
    true,
  );
  const build = [
    `version="${escapeLabelValue(extra.version)}"`,
    `crypto_backend="${escapeLabelValue(extra.cryptoBackend)}"`,
  ];
  if (extra.deno !== undefined) build.push(`deno="${escapeLabelValue(extra.deno)}"`);
  familyNamed("gotatun_build_info", "gauge", "Always 1; the labels tell the build.", [[
    build.join(","),
    1,
  ]], true);
  return out.join("\n") + "\n";
}

/**
 * processStats() samples this process: RSS from `Deno.memoryUsage()`, CPU
 * time from `process.cpuUsage()` (getrusage(RUSAGE_SELF), every thread,
 * crypto Workers included; reading /proc/self/stat would need --allow-all),
 * and the start time from `performance.timeOrigin`. `process` is Deno's
 * global, loaded on first use: a static import of `node:process` would load
 * Deno's Node compatibility layer at start-up in both of the daemon's
 * isolates (about 5 MiB each), metrics on or off.
 */
export function processStats(): ProcessStats {
  const cpu = process.cpuUsage();
  return {
    residentMemoryBytes: Deno.memoryUsage().rss,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    startTimeSeconds: Math.floor(performance.timeOrigin) / 1000,
  };
}

/** A parsed `GOTATUN_METRICS` value. */
export interface MetricsAddress {
  /** IP literal to bind, without brackets. */
  hostname: string;
  port: number;
  /** True for 127.0.0.0/8 and ::1. */
  loopback: boolean;
}

/**
 * parseMetricsAddress() reads `IPv4:PORT`, `[IPv6]:PORT`, `:PORT` (127.0.0.1)
 * or `localhost:PORT` (127.0.0.1). Only IP literals: a name would be resolved
 * at start-up to who knows what. Returns null when malformed or the port is
 * not 1–65535.
 */
export function parseMetricsAddress(text: string): MetricsAddress | null {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(text.trim());
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  if (m[1] !== undefined) {
    const v6 = parseIPv6(m[1]);
    if (!v6) return null;
    const mapped = v6.subarray(0, 12).every((b, i) => b === (i < 10 ? 0 : 0xff));
    const loopback = (v6.subarray(0, 15).every((b) => b === 0) && v6[15] === 1) ||
      (mapped && v6[12] === 127);
    return { hostname: formatIPv6(v6), port, loopback };
  }
  const host = m[2];
  if (host === "" || host.toLowerCase() === "localhost") {
    return { hostname: "127.0.0.1", port, loopback: true };
  }
  const v4 = parseIPv4(host);
  if (!v4) return null;
  return { hostname: formatIPv4(v4), port, loopback: v4[0] === 127 };
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** Where it listens. */
  readonly hostname: string;
  readonly port: number;
  /** Stops listening (idempotent). */
  close(): Promise<void>;
}

/** Options of {@link startMetrics}. */
export interface StartMetricsOptions {
  /** The `GOTATUN_METRICS` value. */
  address: string;
  /** `GOTATUN_METRICS_ALLOW_REMOTE=1`. */
  allowRemote?: boolean;
  /** Where refusals and bind errors go. */
  logger: Logger;
  /** Process numbers at scrape time (default {@link processStats}); for tests. */
  processStats?: () => ProcessStats;
}

/** Renders the metrics text for the process numbers given (the daemon asks its data-plane thread). */
export type MetricsRender = (extra: MetricsExtra) => string;

/**
 * startMetrics() serves {@link formatMetrics} of `device` at `/metrics` (or
 * what `device`, a {@link MetricsRender}, returns).
 * Returns null, after logging an error, when the address is malformed,
 * not loopback (without allowRemote), or cannot be bound: metrics are never
 * a reason for the tunnel not to come up.
 */
export function startMetrics(
  device: Device | MetricsRender,
  opts: StartMetricsOptions,
): MetricsServer | null {
  const log = opts.logger;
  const addr = parseMetricsAddress(opts.address);
  if (addr === null) {
    log.error(
      `Metrics disabled: ${METRICS_ENV} must be IP:PORT, [IPv6]:PORT or :PORT, got "${opts.address}"`,
    );
    return null;
  }
  if (!addr.loopback && !opts.allowRemote) {
    log.error(
      `Metrics disabled: ${opts.address} is not a loopback address ` +
        `(set ${METRICS_ALLOW_REMOTE_ENV}=1 to serve metrics beyond this host)`,
    );
    return null;
  }
  const sample = opts.processStats ?? processStats;
  function handle(req: Request): Response {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    const path = new URL(req.url).pathname;
    if (path === "/metrics") {
      const extra = {
        version: VERSION,
        cryptoBackend: cryptoBackend().name,
        deno: Deno.version.deno,
        process: sample(),
      };
      const body = typeof device === "function" ? device(extra) : formatMetrics(device, extra);
      return new Response(body, { headers: { "content-type": METRICS_CONTENT_TYPE } });
    }
    if (path === "/") {
      return new Response("gotatun metrics: /metrics\n", {
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    }
    return new Response("not found\n", { status: 404 });
  }
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: addr.hostname,
      port: addr.port,
      // Deno prints "Listening on …" by default; our stdout is the log.
      onListen() {},
      onError(err) {
        log.error(`Metrics: ${err instanceof Error ? err.message : String(err)}`);
        return new Response("internal error\n", { status: 500 });
      },
    }, handle);
  } catch (err) {
    log.error(`Metrics disabled: cannot listen on ${opts.address}: ${(err as Error).message}`);
    return null;
  }
  const shown = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  log.verbose(`Metrics served at http://${shown}:${addr.port}/metrics`);
  let closing: Promise<void> | null = null;
  return {
    hostname: server.addr.hostname,
    port: server.addr.port,
    close() {
      // A graceful shutdown waits for open requests; never let a stuck
      // scraper hold up the daemon's exit.
      closing ??= (async () => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          server.shutdown().catch(() => {}),
          new Promise<void>((r) => (timer = setTimeout(r, CLOSE_TIMEOUT_MS))),
        ]);
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
