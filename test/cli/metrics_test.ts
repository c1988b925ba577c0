// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The Prometheus endpoint: {@link formatMetrics} against an in-memory device
 * pair, read back by a small, strict parser of the text exposition format
 * 0.0.4 (every family once, HELP and TYPE before its samples, well-formed
 * names, labels and values, no duplicate series); the address rules of
 * `GOTATUN_METRICS`; the HTTP server on loopback; and, as root, the daemon
 * with `GOTATUN_METRICS` in its own network namespaces (`gtmet-<random>`,
 * interfaces `gtmet<digits>`), scraped from inside them.
 */
import assert from "node:assert/strict";
import {
  escapeLabelValue,
  formatMetrics,
  formatValue,
  METRICS_CONTENT_TYPE,
  type MetricsExtra,
  NOT_DROPS,
  parseMetricsAddress,
  processStats,
  reasonLabel,
  startMetrics,
} from "../../cli/metrics.ts";
import { DENO_RUN_FLAGS, VERSION } from "../../cli/version.ts";
import { keyToBase64 } from "../../src/keys.ts";
import { Endpoint } from "../../src/conn/endpoint.ts";
import type { Logger } from "../../src/log.ts";
import { type DevicePair, devicePair } from "../_util/device_pair.ts";
import { FAKE_WALL_START } from "../_util/fake_clock.ts";
import { ipv4Packet, payload } from "../_util/packets.ts";
import { type Netns, vethPair, withNamespaces } from "../_util/netns.ts";
import { run, sleep, waitFor } from "../_util/proc.ts";
import { ignoreUnless, type Needs } from "../_util/needs.ts";

// ---------------------------------------------------------------------------
// A strict reader of the text format (what Prometheus's parser insists on).

interface ParsedSample {
  labels: Record<string, string>;
  value: number;
}

interface Family {
  help: string;
  type: string;
  samples: ParsedSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseValue(text: string, where: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  assert.match(text, /^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/, where);
  return Number(text);
}

/** Parses `{a="x",b="y"}` starting at `s[0] === "{"`; returns labels and the rest. */
function parseLabels(s: string, where: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    if (s[i] === "}") return { labels, rest: s.slice(i + 1) };
    const eq = s.indexOf("=", i);
    assert.ok(eq > i, `${where}: label without "="`);
    const name = s.slice(i, eq);
    assert.match(name, LABEL_NAME, `${where}: label name`);
    assert.ok(!(name in labels), `${where}: duplicate label ${name}`);
    assert.equal(s[eq + 1], '"', `${where}: label value must be quoted`);
    let j = eq + 2;
    let value = "";
    for (;;) {
      assert.ok(j < s.length, `${where}: unterminated label value`);
      const c = s[j];
      if (c === '"') break;
      if (c === "\\") {
        const n = s[j + 1];
        assert.ok(n === "\\" || n === '"' || n === "n", `${where}: bad escape \\${n}`);
        value += n === "n" ? "\n" : n;
        j += 2;
        continue;
      }
      assert.notEqual(c, "\n", `${where}: raw newline in label value`);
      value += c;
      j++;
    }
    labels[name] = value;
    i = j + 1;
    if (s[i] === ",") i++;
    else assert.equal(s[i], "}", `${where}: expected "," or "}"`);
  }
}

/** Parses a whole exposition, line by line, asserting the format's rules. */
function parseExposition(text: string): Map<string, Family> {
  assert.ok(text.endsWith("\n"), "exposition ends with a newline");
  const families = new Map<string, Family>();
  let current: string | null = null;
  const lines = text.slice(0, -1).split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n];
    const where = `line ${n + 1} "${line}"`;
    assert.notEqual(line, "", `${where}: empty line`);
    if (line.startsWith("# HELP ")) {
      const rest = line.slice(7);
      const sp = rest.indexOf(" ");
      const name = rest.slice(0, sp);
      assert.match(name, NAME, where);
      assert.ok(!families.has(name), `${where}: family ${name} appears twice`);
      families.set(name, { help: rest.slice(sp + 1), type: "", samples: [] });
      current = name;
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const [name, type, ...extra] = line.slice(7).split(" ");
      assert.equal(extra.length, 0, where);
      assert.equal(name, current, `${where}: TYPE right after its HELP`);
      const fam = families.get(name)!;
      assert.equal(fam.type, "", `${where}: second TYPE`);
      assert.ok(["counter", "gauge"].includes(type), `${where}: type ${type}`);
      fam.type = type;
      continue;
    }
    assert.ok(!line.startsWith("#"), `${where}: unknown comment`);
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(.*)$/.exec(line);
    assert.ok(m, `${where}: sample name`);
    const name = m[1];
    assert.equal(name, current, `${where}: sample outside its family`);
    const fam = families.get(name)!;
    assert.notEqual(fam.type, "", `${where}: sample before TYPE`);
    let rest = m[2];
    let labels: Record<string, string> = {};
    if (rest.startsWith("{")) ({ labels, rest } = parseLabels(rest, where));
    assert.ok(rest.startsWith(" "), `${where}: space before the value`);
    const fields = rest.slice(1).split(" ");
    assert.equal(fields.length, 1, `${where}: no timestamps expected`);
    const key = JSON.stringify(Object.entries(labels).sort());
    assert.ok(
      !fam.samples.some((s) => JSON.stringify(Object.entries(s.labels).sort()) === key),
      `${where}: duplicate series`,
    );
    fam.samples.push({ labels, value: parseValue(fields[0], where) });
  }
  for (const [name, fam] of families) {
    assert.notEqual(fam.type, "", `${name} has no TYPE`);
    if (fam.type === "counter") assert.ok(name.endsWith("_total"), `${name}: counter name`);
    for (const s of fam.samples) {
      if (fam.type === "counter") assert.ok(s.value >= 0, `${name}: negative counter`);
    }
  }
  return families;
}

/** The one sample of `name` whose labels include `match`. */
function value(fams: Map<string, Family>, name: string, match: Record<string, string> = {}) {
  const fam = fams.get(name);
  assert.ok(fam, `family ${name} missing`);
  const hits = fam.samples.filter((s) =>
    Object.entries(match).every(([k, v]) => s.labels[k] === v)
  );
  assert.equal(hits.length, 1, `${name} ${JSON.stringify(match)}: ${hits.length} samples`);
  return hits[0].value;
}

// ---------------------------------------------------------------------------
// formatMetrics() against a device pair.

const EXTRA: MetricsExtra = {
  version: "9.8.7",
  cryptoBackend: "noble",
  deno: "2.9.6",
  process: { residentMemoryBytes: 123456789, cpuSeconds: 1.25, startTimeSeconds: 1700000000.5 },
};

const PEER_FAMILIES = [
  "gotatun_peer_receive_bytes_total",
  "gotatun_peer_transmit_bytes_total",
  "gotatun_peer_last_handshake_timestamp_seconds",
  "gotatun_peer_handshake_initiations_total",
  "gotatun_peer_handshake_responses_total",
  "gotatun_peer_handshakes_total",
  "gotatun_peer_sessions_derived_total",
  "gotatun_peer_handshake_give_ups_total",
];
const DEVICE_FAMILIES = [
  "gotatun_dropped_packets_total",
  "gotatun_cookie_replies_sent_total",
  "gotatun_send_errors_total",
  "gotatun_peers",
  "gotatun_up",
  "gotatun_listen_port",
];
const PROCESS_FAMILIES = [
  "process_resident_memory_bytes",
  "process_cpu_seconds_total",
  "process_start_time_seconds",
  "gotatun_build_info",
];

function settle(p: DevicePair): void {
  for (let i = 0; i < 50; i++) p.clock.advance(0);
}

function advance(p: DevicePair, ms: number, step = 1000): void {
  const end = p.clock.now() + ms;
  while (p.clock.now() < end) {
    p.clock.advance(Math.min(step, end - p.clock.now()));
    settle(p);
  }
}

/** A sends one packet to B, which answers: a handshake, then data both ways. */
function ping(p: DevicePair): void {
  p.a.device.handleTunPacket(ipv4Packet("10.0.0.1", "10.0.0.2", payload(100, 1)));
  p.a.device.flush();
  settle(p);
  p.b.device.handleTunPacket(ipv4Packet("10.0.0.2", "10.0.0.1", payload(60, 2)));
  p.b.device.flush();
  settle(p);
}

Deno.test("formatMetrics() lists every family once, HELP and TYPE first, in order", () => {
  const p = devicePair();
  const fams = parseExposition(formatMetrics(p.a.device, EXTRA));
  assert.deepEqual([...fams.keys()], [...PEER_FAMILIES, ...DEVICE_FAMILIES, ...PROCESS_FAMILIES]);
  for (const fam of fams.values()) assert.notEqual(fam.help, "");
  assert.equal(fams.get("gotatun_peers")!.type, "gauge");
  assert.equal(fams.get("gotatun_peer_last_handshake_timestamp_seconds")!.type, "gauge");
  assert.equal(fams.get("gotatun_peer_receive_bytes_total")!.type, "counter");
  // Every sample of the interface's families carries the interface label; the
  // process's families carry none (several daemons in one process table are
  // told apart by the scrape target, not by a label that is not theirs).
  for (const name of [...PEER_FAMILIES, ...DEVICE_FAMILIES]) {
    for (const s of fams.get(name)!.samples) assert.equal(s.labels.interface, "wgA", name);
  }
  for (const name of PROCESS_FAMILIES) {
    for (const s of fams.get(name)!.samples) assert.equal("interface" in s.labels, false, name);
  }
});

Deno.test("formatMetrics() before any traffic: zeros, never handshaked, up, listening", () => {
  const p = devicePair();
  const fams = parseExposition(formatMetrics(p.a.device, EXTRA));
  const key = keyToBase64(p.b.publicKey);
  for (const name of PEER_FAMILIES) {
    assert.equal(fams.get(name)!.samples.length, 1, name);
    assert.equal(value(fams, name, { public_key: key }), 0, name);
  }
  assert.equal(value(fams, "gotatun_peers"), 1);
  assert.equal(value(fams, "gotatun_up"), 1);
  assert.equal(value(fams, "gotatun_listen_port"), 51820);
  p.a.device.down();
  const down = parseExposition(formatMetrics(p.a.device, EXTRA));
  assert.equal(value(down, "gotatun_up"), 0);
});

Deno.test("formatMetrics() per-peer counters follow a handshake and data both ways", () => {
  const p = devicePair();
  ping(p);
  assert.equal(p.b.tun.received.length, 1, "ping delivered");
  assert.equal(p.a.tun.received.length, 1, "reply delivered");
  const a = parseExposition(formatMetrics(p.a.device, EXTRA));
  const b = parseExposition(formatMetrics(p.b.device, EXTRA));
  const onA = { public_key: keyToBase64(p.b.publicKey) };
  const onB = { public_key: keyToBase64(p.a.publicKey) };
  assert.equal(value(a, "gotatun_peer_receive_bytes_total", onA), p.a.peer.rxBytes);
  assert.equal(value(a, "gotatun_peer_transmit_bytes_total", onA), p.a.peer.txBytes);
  assert.ok(p.a.peer.rxBytes > 0 && p.a.peer.txBytes > 0);
  // A's transmit is B's receive: same whole messages counted on both sides.
  assert.equal(
    value(a, "gotatun_peer_transmit_bytes_total", onA),
    value(b, "gotatun_peer_receive_bytes_total", onB),
  );
  assert.equal(value(a, "gotatun_peer_handshake_initiations_total", onA), 1);
  assert.equal(value(a, "gotatun_peer_handshake_responses_total", onA), 0);
  assert.equal(value(b, "gotatun_peer_handshake_initiations_total", onB), 0);
  assert.equal(value(b, "gotatun_peer_handshake_responses_total", onB), 1);
  assert.equal(value(a, "gotatun_peer_handshakes_total", onA), 1);
  assert.equal(value(b, "gotatun_peer_handshakes_total", onB), 1);
  assert.equal(value(a, "gotatun_peer_sessions_derived_total", onA), 1);
  assert.equal(value(b, "gotatun_peer_sessions_derived_total", onB), 1);
  const t = p.a.peer.lastHandshakeTime();
  assert.equal(
    value(a, "gotatun_peer_last_handshake_timestamp_seconds", onA),
    t.sec + t.nsec / 1e9,
  );
  assert.ok(Math.abs(t.sec - FAKE_WALL_START / 1000) < 5, "fake wall time");
});

Deno.test("formatMetrics() counts key rotations and handshake give-ups", () => {
  const p = devicePair();
  ping(p);
  // Past REKEY_AFTER_TIME the initiator rekeys on the next packet it sends.
  advance(p, 125_000);
  ping(p);
  const onA = { public_key: keyToBase64(p.b.publicKey) };
  let a = parseExposition(formatMetrics(p.a.device, EXTRA));
  assert.ok(value(a, "gotatun_peer_sessions_derived_total", onA) >= 2, "rotated");
  assert.equal(
    value(a, "gotatun_peer_sessions_derived_total", onA),
    p.a.peer.counters.sessionsDerived,
  );
  // Cut the network: A's retries run out (REKEY_ATTEMPT_TIME, 90 s) and it gives up.
  p.net.tap = () => false;
  p.a.device.handleTunPacket(ipv4Packet("10.0.0.1", "10.0.0.2", payload(10, 3)));
  p.a.device.flush();
  advance(p, 200_000);
  // A new packet after giving up is a new attempt; the counter stays.
  a = parseExposition(formatMetrics(p.a.device, EXTRA));
  assert.ok(value(a, "gotatun_peer_handshake_give_ups_total", onA) >= 1, "gave up");
  assert.equal(
    value(a, "gotatun_peer_handshake_give_ups_total", onA),
    p.a.peer.counters.handshakeGiveUps,
  );
  assert.ok(value(a, "gotatun_peer_handshake_initiations_total", onA) > 2, "retries counted");
});

Deno.test("formatMetrics() has a dropped_packets_total series for every DeviceStats field", () => {
  const p = devicePair();
  ping(p);
  // Junk from the network and a packet with no route.
  const from = new Endpoint(4, new Uint8Array([192, 0, 2, 9]), 1234);
  p.a.device.handleDatagram(new Uint8Array([9, 9, 9]), from);
  p.a.device.handleTunPacket(ipv4Packet("10.0.0.1", "10.9.9.9", payload(10, 1)));
  const fams = parseExposition(formatMetrics(p.a.device, EXTRA));
  const dropped = fams.get("gotatun_dropped_packets_total")!;
  // Cookie replies sent and send errors are not drops: they have counters of their own.
  const fields = Object.keys(p.a.device.stats).filter((f) => !(f in NOT_DROPS));
  assert.deepEqual(Object.keys(NOT_DROPS).sort(), ["cookieRepliesSent", "sendErrors"]);
  assert.deepEqual(dropped.samples.map((s) => s.labels.reason), fields.map(reasonLabel));
  for (const f of fields) {
    assert.equal(
      value(fams, "gotatun_dropped_packets_total", { reason: reasonLabel(f) }),
      p.a.device.stats[f as keyof typeof p.a.device.stats],
      f,
    );
  }
  assert.equal(value(fams, "gotatun_dropped_packets_total", { reason: "invalid_messages" }), 1);
  assert.equal(value(fams, "gotatun_dropped_packets_total", { reason: "no_route" }), 1);
});

Deno.test("formatMetrics() counts cookie replies and send errors apart from drops", () => {
  const p = devicePair();
  ping(p);
  const stats = p.a.device.stats as { cookieRepliesSent: number; sendErrors: number };
  stats.cookieRepliesSent = 7;
  stats.sendErrors = 3;
  const fams = parseExposition(formatMetrics(p.a.device, EXTRA));
  assert.equal(value(fams, "gotatun_cookie_replies_sent_total"), 7);
  assert.equal(value(fams, "gotatun_send_errors_total"), 3);
  const reasons = fams.get("gotatun_dropped_packets_total")!.samples.map((s) => s.labels.reason);
  assert.equal(reasons.includes("cookie_replies_sent"), false);
  assert.equal(reasons.includes("send_errors"), false);
});

Deno.test("formatMetrics() process and build_info come from the extra numbers", () => {
  const p = devicePair();
  const fams = parseExposition(formatMetrics(p.a.device, EXTRA));
  assert.equal(value(fams, "process_resident_memory_bytes"), 123456789);
  assert.equal(value(fams, "process_cpu_seconds_total"), 1.25);
  assert.equal(value(fams, "process_start_time_seconds"), 1700000000.5);
  assert.equal(
    value(fams, "gotatun_build_info", { version: "9.8.7", crypto_backend: "noble", deno: "2.9.6" }),
    1,
  );
  const noDeno = parseExposition(formatMetrics(p.a.device, { ...EXTRA, deno: undefined }));
  assert.equal("deno" in noDeno.get("gotatun_build_info")!.samples[0].labels, false);
});

Deno.test("formatMetrics() with no peers keeps HELP/TYPE of the peer families, no samples", () => {
  const p = devicePair();
  p.a.device.removeAllPeers();
  const fams = parseExposition(formatMetrics(p.a.device, EXTRA));
  for (const name of PEER_FAMILIES) assert.equal(fams.get(name)!.samples.length, 0, name);
  assert.equal(value(fams, "gotatun_peers"), 0);
});

Deno.test("formatMetrics() escapes label values (interface name with quote, backslash, newline)", () => {
  const p = devicePair();
  Object.defineProperty(p.a.device, "name", { value: 'we"ird\\na\nme' });
  const text = formatMetrics(p.a.device, { ...EXTRA, version: 'v"1' });
  assert.ok(text.includes('interface="we\\"ird\\\\na\\nme"'));
  const fams = parseExposition(text);
  assert.equal(fams.get("gotatun_up")!.samples[0].labels.interface, 'we"ird\\na\nme');
  assert.equal(fams.get("gotatun_build_info")!.samples[0].labels.version, 'v"1');
});

Deno.test("formatMetrics() many peers: one series each, labelled by base64 public key", () => {
  const p = devicePair();
  const keys: string[] = [keyToBase64(p.b.publicKey)];
  for (let i = 1; i <= 20; i++) {
    const k = new Uint8Array(32).fill(i);
    p.a.device.newPeer(k);
    keys.push(keyToBase64(k));
  }
  const fams = parseExposition(formatMetrics(p.a.device, EXTRA));
  for (const name of PEER_FAMILIES) {
    assert.deepEqual(fams.get(name)!.samples.map((s) => s.labels.public_key), keys, name);
  }
  assert.equal(value(fams, "gotatun_peers"), 21);
});

Deno.test("escapeLabelValue() and formatValue() follow the exposition format", () => {
  assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  assert.equal(escapeLabelValue("AbC+/=="), "AbC+/==");
  assert.equal(formatValue(0), "0");
  assert.equal(formatValue(42), "42");
  assert.equal(formatValue(1.5), "1.5");
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(reasonLabel("handshakeQueueFull"), "handshake_queue_full");
});

Deno.test("processStats() reports plausible numbers for this process", () => {
  const s = processStats();
  assert.ok(s.residentMemoryBytes > 1 << 20, "rss > 1 MiB");
  assert.ok(s.cpuSeconds > 0 && s.cpuSeconds < 1e6, `cpu ${s.cpuSeconds}`);
  const now = Date.now() / 1000;
  assert.ok(s.startTimeSeconds <= now && s.startTimeSeconds > now - 86400, "started recently");
});

// ---------------------------------------------------------------------------
// The address rules.

Deno.test("parseMetricsAddress() accepts IP:PORT, [IPv6]:PORT, :PORT; flags loopback", () => {
  const table: [string, ReturnType<typeof parseMetricsAddress>][] = [
    ["127.0.0.1:9586", { hostname: "127.0.0.1", port: 9586, loopback: true }],
    ["127.1.2.3:1", { hostname: "127.1.2.3", port: 1, loopback: true }],
    [":9586", { hostname: "127.0.0.1", port: 9586, loopback: true }],
    ["localhost:9586", { hostname: "127.0.0.1", port: 9586, loopback: true }],
    ["[::1]:9586", { hostname: "::1", port: 9586, loopback: true }],
    ["[0:0:0:0:0:0:0:1]:65535", { hostname: "::1", port: 65535, loopback: true }],
    ["[::ffff:127.0.0.1]:9586", { hostname: "::ffff:127.0.0.1", port: 9586, loopback: true }],
    ["0.0.0.0:9586", { hostname: "0.0.0.0", port: 9586, loopback: false }],
    ["192.0.2.1:9586", { hostname: "192.0.2.1", port: 9586, loopback: false }],
    ["[::]:9586", { hostname: "::", port: 9586, loopback: false }],
    ["[2001:db8::1]:80", { hostname: "2001:db8::1", port: 80, loopback: false }],
    ["127.0.0.1", null],
    ["127.0.0.1:0", null],
    ["127.0.0.1:65536", null],
    ["127.0.0.1:95860", null],
    ["::1:9586", null],
    ["[::1]", null],
    ["[127.0.0.1]:9586", null],
    ["example.com:9586", null],
    ["256.0.0.1:9586", null],
    ["", null],
  ];
  for (const [text, want] of table) assert.deepEqual(parseMetricsAddress(text), want, text);
});

function recordingLogger(): Logger & { errors: string[]; verboses: string[] } {
  const errors: string[] = [];
  const verboses: string[] = [];
  return {
    errors,
    verboses,
    error: (m: string) => void errors.push(m),
    verbose: (m: string) => void verboses.push(m),
  };
}

Deno.test("startMetrics() refuses a non-loopback address unless allowed, and bad syntax", () => {
  const p = devicePair();
  for (const address of ["0.0.0.0:9586", "[::]:9586", "192.0.2.1:9586"]) {
    const log = recordingLogger();
    assert.equal(startMetrics(p.a.device, { address, logger: log }), null, address);
    assert.equal(log.errors.length, 1);
    assert.match(log.errors[0], /not a loopback address.*GOTATUN_METRICS_ALLOW_REMOTE=1/);
  }
  const log = recordingLogger();
  assert.equal(startMetrics(p.a.device, { address: "nonsense", logger: log }), null);
  assert.match(log.errors[0], /GOTATUN_METRICS must be/);
  // Allowed, it tries to bind (192.0.2.1 is not ours, so the bind fails and is logged).
  const allowed = recordingLogger();
  const s = startMetrics(p.a.device, {
    address: "192.0.2.1:9586",
    allowRemote: true,
    logger: allowed,
  });
  assert.equal(s, null);
  assert.match(allowed.errors[0], /cannot listen on 192\.0\.2\.1:9586/);
});

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("startMetrics() serves /metrics on loopback and closes", async () => {
  const p = devicePair();
  ping(p);
  const log = recordingLogger();
  const port = freePort();
  const server = startMetrics(p.a.device, {
    address: `127.0.0.1:${port}`,
    logger: log,
    processStats: () => EXTRA.process,
  });
  assert.ok(server, log.errors.join("\n"));
  try {
    assert.equal(server.port, port);
    assert.match(log.verboses.join("\n"), new RegExp(`http://127\\.0\\.0\\.1:${port}/metrics`));
    const r = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-type"), METRICS_CONTENT_TYPE);
    const fams = parseExposition(await r.text());
    assert.equal(
      value(fams, "gotatun_peer_handshakes_total", { public_key: keyToBase64(p.b.publicKey) }),
      1,
    );
    assert.equal(value(fams, "gotatun_build_info", { version: VERSION }), 1);
    const missing = await fetch(`http://127.0.0.1:${port}/nope`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const post = await fetch(`http://127.0.0.1:${port}/metrics`, { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
    const root = await fetch(`http://127.0.0.1:${port}/`);
    assert.match(await root.text(), /\/metrics/);
    // A second server on the same port fails to bind, is logged, and returns null.
    const again = recordingLogger();
    assert.equal(startMetrics(p.a.device, { address: `:${port}`, logger: again }), null);
    assert.match(again.errors[0], /cannot listen/);
  } finally {
    await server.close();
    await server.close();
  }
  await assert.rejects(() => fetch(`http://127.0.0.1:${port}/metrics`));
});

Deno.test("startMetrics() serves on [::1]", async () => {
  const p = devicePair();
  let port: number;
  try {
    const l = Deno.listen({ hostname: "::1", port: 0 });
    port = (l.addr as Deno.NetAddr).port;
    l.close();
  } catch {
    return; // no IPv6 loopback on this machine
  }
  const server = startMetrics(p.a.device, { address: `[::1]:${port}`, logger: recordingLogger() });
  assert.ok(server);
  try {
    const r = await fetch(`http://[::1]:${port}/metrics`);
    assert.equal(value(parseExposition(await r.text()), "gotatun_peers"), 1);
  } finally {
    await server.close();
  }
});

// ---------------------------------------------------------------------------
// End to end, as root: the daemon with GOTATUN_METRICS in namespaces.

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);
const DIST = `${ROOT}dist/gotatun`;
const SOURCE_CMD = [
  Deno.execPath(),
  "run",
  ...DENO_RUN_FLAGS,
  "--config",
  `${ROOT}deno.json`,
  `${ROOT}cli/main.ts`,
];
/** dist/gotatun when it was built with metrics support (it mentions the variable). */
const distHasMetrics = (() => {
  try {
    return Deno.readTextFileSync(DIST).includes("GOTATUN_METRICS");
  } catch {
    return false;
  }
})();
const LABEL = "test/cli/metrics_test.ts";
/** What the root tests below need (test/_util/needs.ts). */
const ROOT_NEEDS: Needs = { root: true, tools: ["ip", "wg"] };

function digits(n: number): string {
  const b = crypto.getRandomValues(new Uint8Array(n));
  return Array.from(b, (x) => String(x % 10)).join("");
}

/** Fetches `url` from inside `ns` with a throw-away Deno script; returns status, type, body. */
async function fetchIn(ns: Netns, url: string) {
  const code = `const c = new AbortController(); setTimeout(() => c.abort(), 5000);
try { const r = await fetch(${JSON.stringify(url)}, { signal: c.signal });
console.log(JSON.stringify({ status: r.status, type: r.headers.get("content-type"), body: await r.text() }));
} catch (e) { console.log(JSON.stringify({ status: 0, type: null, body: String(e) })); }
Deno.exit(0);`;
  const r = await ns.execWith({ timeoutMs: 30_000 }, Deno.execPath(), "eval", code);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { status: number; type: string | null; body: string };
}

async function genKey(): Promise<{ priv: string; pub: string }> {
  const priv = (await run("wg", ["genkey"])).stdout.trim();
  const pub = (await run("wg", ["pubkey"], { stdin: priv + "\n" })).stdout.trim();
  return { priv, pub };
}

async function wgSet(ns: Netns, args: string[], priv?: string): Promise<void> {
  let file: string | null = null;
  try {
    if (priv !== undefined) {
      file = await Deno.makeTempFile();
      await Deno.writeTextFile(file, priv + "\n");
      args = args.map((a) => a === "@KEY" ? file! : a);
    }
    const r = await ns.exec("wg", "set", ...args);
    assert.equal(r.code, 0, `wg set ${args.join(" ")}: ${r.stderr}`);
  } finally {
    if (file) await Deno.remove(file).catch(() => {});
  }
}

for (
  const [label, cmd, ignore] of [
    ["sources", SOURCE_CMD, ignoreUnless(LABEL, ROOT_NEEDS)],
    [
      "dist/gotatun",
      [DIST],
      ignoreUnless(LABEL, {
        ...ROOT_NEEDS,
        other: { [`${DIST} built with GOTATUN_METRICS support`]: distHasMetrics },
      }),
    ],
  ] as const
) {
  Deno.test({
    name: `daemon (${label}) with GOTATUN_METRICS serves metrics inside its namespace`,
    ignore,
    async fn() {
      await withNamespaces("gtmet", 2, async ({ namespaces: [n1, n2], defer }) => {
        const i1 = `gtmet${digits(6)}`, i2 = `gtmet${digits(6)}`;
        defer(async () => {
          for (const n of [i1, i2]) {
            await Deno.remove(`/var/run/wireguard/${n}.sock`).catch(() => {});
          }
        });
        await vethPair(n1, n2, { addrA: "192.0.2.1/24", addrB: "192.0.2.2/24" });
        const k1 = await genKey(), k2 = await genKey();
        for (const [ns, name, metrics] of [[n1, i1, "127.0.0.1:9586"], [n2, i2, "[::1]:9586"]]) {
          const r = await (ns as Netns).execWith(
            { env: { GOTATUN_METRICS: metrics as string }, timeoutMs: 60_000 },
            cmd[0],
            ...cmd.slice(1),
            name as string,
          );
          assert.equal(r.code, 0, `start ${name}: ${r.stdout}${r.stderr}`);
        }
        await wgSet(n1, [i1, "private-key", "@KEY", "listen-port", "51820"], k1.priv);
        await wgSet(n1, [
          i1,
          "peer",
          k2.pub,
          "endpoint",
          "192.0.2.2:51821",
          "allowed-ips",
          "10.9.0.2/32",
        ]);
        await wgSet(n2, [i2, "private-key", "@KEY", "listen-port", "51821"], k2.priv);
        await wgSet(n2, [
          i2,
          "peer",
          k1.pub,
          "endpoint",
          "192.0.2.1:51820",
          "allowed-ips",
          "10.9.0.1/32",
        ]);
        await n1.execOk("ip", "address", "add", "10.9.0.1/24", "dev", i1);
        await n2.execOk("ip", "address", "add", "10.9.0.2/24", "dev", i2);
        await n1.execOk("ip", "link", "set", i1, "up");
        await n2.execOk("ip", "link", "set", i2, "up");
        const pinged = await n1.exec("ping", "-c", "3", "-i", "0.2", "-W", "5", "10.9.0.2");
        assert.equal(pinged.code, 0, `ping: ${pinged.stdout}${pinged.stderr}`);

        const before = Date.now() / 1000;
        const r1 = await fetchIn(n1, "http://127.0.0.1:9586/metrics");
        assert.equal(r1.status, 200, r1.body);
        assert.equal(r1.type, METRICS_CONTENT_TYPE);
        const f1 = parseExposition(r1.body);
        const peer2 = { interface: i1, public_key: k2.pub };
        assert.equal(value(f1, "gotatun_peers", { interface: i1 }), 1);
        assert.equal(value(f1, "gotatun_up", { interface: i1 }), 1);
        assert.equal(value(f1, "gotatun_listen_port", { interface: i1 }), 51820);
        assert.ok(value(f1, "gotatun_peer_receive_bytes_total", peer2) > 0);
        assert.ok(value(f1, "gotatun_peer_transmit_bytes_total", peer2) > 0);
        assert.ok(value(f1, "gotatun_peer_handshakes_total", peer2) >= 1);
        assert.ok(value(f1, "gotatun_peer_handshake_initiations_total", peer2) >= 1);
        assert.ok(value(f1, "gotatun_peer_sessions_derived_total", peer2) >= 1);
        const hs = value(f1, "gotatun_peer_last_handshake_timestamp_seconds", peer2);
        assert.ok(hs > before - 60 && hs <= before + 5, `last handshake ${hs}`);
        assert.ok(value(f1, "process_resident_memory_bytes") > 1 << 20);
        assert.ok(value(f1, "process_cpu_seconds_total") > 0);
        assert.equal(value(f1, "gotatun_build_info", { version: VERSION }), 1);

        // The responder, served on [::1].
        const r2 = await fetchIn(n2, "http://[::1]:9586/metrics");
        assert.equal(r2.status, 200, r2.body);
        const f2 = parseExposition(r2.body);
        assert.ok(
          value(f2, "gotatun_peer_handshake_responses_total", { public_key: k1.pub }) >= 1,
        );
        // Loopback only: from the other namespace it is not reachable.
        const far = await fetchIn(n2, "http://192.0.2.1:9586/metrics");
        assert.equal(far.status, 0, "metrics must not be reachable over the veth");

        // Shutting down closes the metrics server too (nothing holds the exit up).
        await n1.execOk("ip", "link", "del", i1);
        const exited = await waitFor(async () => {
          try {
            await Deno.lstat(`/var/run/wireguard/${i1}.sock`);
            return false;
          } catch {
            return (await n1.pids()).length === 0;
          }
        }, 10_000);
        assert.ok(exited, "daemon exited after ip link del");
      });
    },
  });
}

Deno.test({
  name: "daemon refuses a non-loopback GOTATUN_METRICS, says why, and runs without it",
  ignore: ignoreUnless(LABEL, ROOT_NEEDS),
  async fn() {
    await withNamespaces("gtmet", 1, async ({ namespaces: [ns], defer }) => {
      const name = `gtmet${digits(6)}`;
      defer(() => Deno.remove(`/var/run/wireguard/${name}.sock`).catch(() => {}));
      await ns.execOk("ip", "address", "add", "192.0.2.7/24", "dev", "lo");
      const r = await ns.execWith(
        { env: { GOTATUN_METRICS: "192.0.2.7:9586" }, timeoutMs: 60_000 },
        SOURCE_CMD[0],
        ...SOURCE_CMD.slice(1),
        name,
      );
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /Metrics disabled: 192\.0\.2\.7:9586 is not a loopback address/);
      assert.ok(await waitFor(() => ns.hasLink(name), 5000));
      const got = await fetchIn(ns, "http://192.0.2.7:9586/metrics");
      assert.equal(got.status, 0, "nothing listens");
      await ns.execOk("ip", "link", "del", name);
      await sleep(200);
    });
  },
});
