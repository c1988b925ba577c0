// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Results of the network benchmark (test/bench/net.ts): the metric
 * catalogue, a recorder of per-round samples, medians and ratios, the final
 * Markdown table, the JSON document and a dependency-free SVG bar chart.
 *
 * Every metric is reported as the median over rounds per implementation
 * (with the range), and as the ratio of the two medians, candidate over
 * reference (gotatun / wireguard-go). Differences under ~15 % are noise on
 * this 2-core machine, so the table marks a ratio as better or worse only
 * beyond that.
 */

/** Which direction of a metric is good. */
export type Better = "higher" | "lower" | "info";

/** One row of the table. */
export interface MetricDef {
  /** Stable key (JSON, `--only` groups are separate). */
  id: string;
  /** Group this metric belongs to (the `--only` names). */
  group: string;
  label: string;
  unit: string;
  better: Better;
  /** Decimal places in the table. */
  digits: number;
}

/** The catalogue, in table order. */
export const METRICS: readonly MetricDef[] = [
  { id: "tcp1", group: "tcp", label: "TCP 1 stream", unit: "Mbit/s", better: "higher", digits: 0 },
  {
    id: "tcp1r",
    group: "tcp",
    label: "TCP 1 stream, reverse (-R)",
    unit: "Mbit/s",
    better: "higher",
    digits: 0,
  },
  { id: "tcp4", group: "tcp", label: "TCP 4 streams", unit: "Mbit/s", better: "higher", digits: 0 },
  {
    id: "tcp4r",
    group: "tcp",
    label: "TCP 4 streams, reverse (-R)",
    unit: "Mbit/s",
    better: "higher",
    digits: 0,
  },
  {
    id: "tcp1_cpu_tx",
    group: "tcp",
    label: "daemon CPU during TCP 1 stream, sending side",
    unit: "% of a core",
    better: "lower",
    digits: 0,
  },
  {
    id: "tcp1_cpu_rx",
    group: "tcp",
    label: "daemon CPU during TCP 1 stream, receiving side",
    unit: "% of a core",
    better: "lower",
    digits: 0,
  },
  {
    id: "gc_young_tcp1",
    group: "tcp",
    label: "GC young-generation collections during TCP 1 stream, both daemons (V8 scavenges)",
    unit: "count",
    better: "lower",
    digits: 0,
  },
  {
    id: "gc_full_tcp1",
    group: "tcp",
    label: "GC full collections during TCP 1 stream, both daemons (V8 mark-compacts; Go cycles)",
    unit: "count",
    better: "lower",
    digits: 0,
  },
  {
    id: "udp_pps",
    group: "udp",
    label: "UDP 1392 B at overload (-b 0): received",
    unit: "kpps",
    better: "higher",
    digits: 1,
  },
  {
    id: "udp_offered",
    group: "udp",
    label: "UDP 1392 B at overload: offered by iperf3",
    unit: "kpps",
    better: "info",
    digits: 1,
  },
  {
    id: "udp200_loss",
    group: "udp",
    label: "UDP 1392 B paced 200 Mbit/s: loss",
    unit: "%",
    better: "lower",
    digits: 2,
  },
  {
    id: "cpu_tx",
    group: "udp",
    label: "daemon CPU per packet, sending side (200 Mbit/s)",
    unit: "µs/pkt",
    better: "lower",
    digits: 1,
  },
  {
    id: "cpu_rx",
    group: "udp",
    label: "daemon CPU per packet, receiving side (200 Mbit/s)",
    unit: "µs/pkt",
    better: "lower",
    digits: 1,
  },
  { id: "ping_p50", group: "ping", label: "ping RTT p50", unit: "ms", better: "lower", digits: 3 },
  { id: "ping_p99", group: "ping", label: "ping RTT p99", unit: "ms", better: "lower", digits: 3 },
  {
    id: "ping_p999",
    group: "ping",
    label: "ping RTT p999",
    unit: "ms",
    better: "lower",
    digits: 3,
  },
  {
    id: "sparse_p50",
    group: "sparse",
    label: "sparse ping RTT p50 (1.5 s apart: idle wake-up)",
    unit: "ms",
    better: "lower",
    digits: 3,
  },
  {
    id: "sparse_p99",
    group: "sparse",
    label: "sparse ping RTT p99 (1.5 s apart)",
    unit: "ms",
    better: "lower",
    digits: 3,
  },
  {
    id: "load_p50",
    group: "loaded",
    label: "ping RTT p50 under load (1 TCP stream)",
    unit: "ms",
    better: "lower",
    digits: 3,
  },
  {
    id: "load_p99",
    group: "loaded",
    label: "ping RTT p99 under load (1 TCP stream)",
    unit: "ms",
    better: "lower",
    digits: 3,
  },
  {
    id: "load_p999",
    group: "loaded",
    label: "ping RTT p999 under load (1 TCP stream)",
    unit: "ms",
    better: "lower",
    digits: 3,
  },
  {
    id: "load_mbps",
    group: "loaded",
    label: "TCP stream beside those pings",
    unit: "Mbit/s",
    better: "info",
    digits: 0,
  },
  {
    id: "first_ping",
    group: "setup",
    label: "first ping after config, handshake included (1 peer)",
    unit: "ms",
    better: "lower",
    digits: 2,
  },
  {
    id: "rss_idle",
    group: "setup",
    label: "daemon RSS idle (after config, mean of both)",
    unit: "MiB",
    better: "lower",
    digits: 1,
  },
  {
    id: "rss_peak_tcp",
    group: "tcp",
    label: "daemon peak RSS through the TCP tests (VmHWM, max of both)",
    unit: "MiB",
    better: "lower",
    digits: 1,
  },
  {
    id: "idle_cpu",
    group: "idle",
    label: "idle tunnel, 10 s keepalive: daemon CPU (mean of both)",
    unit: "ms/min",
    better: "lower",
    digits: 1,
  },
  {
    id: "idle_ctx",
    group: "idle",
    label: "idle tunnel, 10 s keepalive: context switches (mean of both)",
    unit: "1/min",
    better: "lower",
    digits: 0,
  },
  {
    id: "hs_capacity",
    group: "handshake",
    label: "handshakes completed as responder (32 in flight)",
    unit: "1/s",
    better: "higher",
    digits: 0,
  },
  {
    id: "hs_cpu",
    group: "handshake",
    label: "responder CPU per handshake (32 in flight)",
    unit: "µs",
    better: "lower",
    digits: 0,
  },
  {
    id: "hs_flood",
    group: "handshake",
    label: "handshakes completed under an initiation flood",
    unit: "1/s",
    better: "higher",
    digits: 0,
  },
  {
    id: "hs_flood_cookies",
    group: "handshake",
    label: "cookie replies sent under the flood",
    unit: "1/s",
    better: "info",
    digits: 0,
  },
  {
    id: "hs_flood_cpu",
    group: "handshake",
    label: "responder CPU during the flood",
    unit: "% of a core",
    better: "lower",
    digits: 0,
  },
  {
    id: "setconf_aips",
    group: "config",
    label: "wg setconf, 1 peer with 130 560 allowed IPs",
    unit: "s",
    better: "lower",
    digits: 2,
  },
  {
    id: "rss_aips",
    group: "config",
    label: "RSS after the 130 560 allowed IPs",
    unit: "MiB",
    better: "lower",
    digits: 1,
  },
  {
    id: "setconf_peers",
    group: "config",
    label: "wg setconf, 10 000 peers × 1 allowed IP",
    unit: "s",
    better: "lower",
    digits: 2,
  },
  {
    id: "rss_per_peer",
    group: "config",
    label: "RSS per peer (10 000 peers)",
    unit: "KiB",
    better: "lower",
    digits: 2,
  },
  {
    id: "first_ping_peer1",
    group: "config",
    label: "first ping incl. handshake, as peer #1 of 10 000",
    unit: "ms",
    better: "lower",
    digits: 2,
  },
  {
    id: "first_ping_peer10000",
    group: "config",
    label: "first ping incl. handshake, as peer #10 000",
    unit: "ms",
    better: "lower",
    digits: 2,
  },
  ...proxyMetrics(),
];

/**
 * The `proxy` group (see _proxy.ts): `gotatun proxy` (SOCKS5 in front of an
 * in-process Tunnel) and kernel TCP through the TUN daemons, side by side.
 */
function proxyMetrics(): MetricDef[] {
  const out: MetricDef[] = [];
  const paths = [
    ["proxy", "SOCKS5 via gotatun proxy"],
    ["tun", "kernel TCP via TUN"],
  ] as const;
  const each = [
    ["dl1", "download, 1 connection", "Mbit/s", "higher", 0],
    ["dl8", "download, 8 connections", "Mbit/s", "higher", 0],
    ["ul1", "upload, 1 connection", "Mbit/s", "higher", 0],
    ["ul8", "upload, 8 connections", "Mbit/s", "higher", 0],
    ["cps", "connections (1 small request each), 8 at a time", "conn/s", "higher", 0],
    ["lat_p50", "small request on a kept-alive connection, p50", "ms", "lower", 3],
    ["lat_p99", "small request on a kept-alive connection, p99", "ms", "lower", 3],
    ["dl1_loss", "download, 1 connection, 2 % loss each way", "Mbit/s", "higher", 0],
    ["dl8_loss", "download, 8 connections, 2 % loss each way", "Mbit/s", "higher", 0],
  ] as const;
  for (const [path, pathLabel] of paths) {
    for (const [id, label, unit, better, digits] of each) {
      out.push({
        id: `${path}_${id}`,
        group: "proxy",
        label: `${pathLabel}: ${label}`,
        unit,
        better,
        digits,
      });
    }
  }
  out.push({
    id: "proxy_idle_bytes",
    group: "proxy",
    label: "SOCKS5 via gotatun proxy: proxy RSS per idle connection (1000 open)",
    unit: "bytes",
    better: "lower",
    digits: 0,
  });
  return out;
}

/** Groups accepted by `--only`. */
export const GROUPS: readonly string[] = [
  "ping",
  "sparse",
  "loaded",
  "idle",
  "tcp",
  "udp",
  "handshake",
  "config",
  "proxy",
];

/** median() of a non-empty list (mean of the middle two for even lengths); NaN when empty. */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/**
 * quantile() by linear interpolation between closest ranks (R type 7, as
 * numpy's default). NaN when empty.
 */
export function quantile(values: readonly number[], q: number): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const pos = (v.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

/** Summary of one metric for one implementation. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  samples: number[];
}

/** Collects samples per metric and implementation, plus notes on what failed. */
export class Recorder {
  readonly impls: readonly string[];
  /** Column headings, one per implementation (name and version). */
  readonly labels: readonly string[];
  #samples = new Map<string, Map<string, number[]>>();
  #notes: string[] = [];

  /**
   * `impls[0]` is the candidate and `impls[1]` the reference of the ratios;
   * more are extra columns. `labels` head the columns (default: the names).
   */
  constructor(impls: readonly string[], labels: readonly string[] = impls) {
    this.impls = impls;
    this.labels = labels;
  }

  /** add() records one sample; non-finite values are kept out of the statistics. */
  add(metric: string, impl: string, value: number): void {
    if (!METRICS.some((m) => m.id === metric)) throw new Error(`unknown metric ${metric}`);
    let byImpl = this.#samples.get(metric);
    if (!byImpl) this.#samples.set(metric, byImpl = new Map());
    let list = byImpl.get(impl);
    if (!list) byImpl.set(impl, list = []);
    if (Number.isFinite(value)) list.push(value);
  }

  /** note() keeps a line for the report (a failed step, a metric not measured). */
  note(line: string): void {
    if (!this.#notes.includes(line)) this.#notes.push(line);
  }

  get notes(): readonly string[] {
    return this.#notes;
  }

  /** summary() of one metric and implementation, or null without samples. */
  summary(metric: string, impl: string): Summary | null {
    const list = this.#samples.get(metric)?.get(impl) ?? [];
    if (list.length === 0) return null;
    return {
      median: median(list),
      min: Math.min(...list),
      max: Math.max(...list),
      samples: [...list],
    };
  }

  /** ratio() of the medians, candidate / reference; NaN when either is missing or zero. */
  ratio(metric: string): number {
    const a = this.summary(metric, this.impls[0]);
    const b = this.summary(metric, this.impls[1]);
    if (!a || !b || b.median === 0) return NaN;
    return a.median / b.median;
  }

  /** Metrics that have at least one sample, in catalogue order. */
  measured(): MetricDef[] {
    return METRICS.filter((m) => this.impls.some((i) => this.summary(m.id, i) !== null));
  }
}

function fmt(x: number, digits: number): string {
  if (!Number.isFinite(x)) return "—";
  return x.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).replaceAll(",", " ");
}

function cell(s: Summary | null, digits: number): string {
  if (!s) return "—";
  if (s.samples.length === 1) return `**${fmt(s.median, digits)}**`;
  return `**${fmt(s.median, digits)}** [${fmt(s.min, digits)}–${fmt(s.max, digits)}]`;
}

/** Verdict of a ratio: beyond the ±15 % noise band in the good or bad direction. */
export function verdict(ratio: number, better: Better): string {
  if (!Number.isFinite(ratio) || better === "info") return "";
  const good = better === "higher" ? ratio : 1 / ratio;
  if (good >= 1.15) return "better";
  if (good <= 1 / 1.15) return "worse";
  return "≈ (noise)";
}

/**
 * markdownTable() renders the summary table: one column per implementation
 * (medians [min–max]), then the ratio of the first two and its verdict.
 */
export function markdownTable(rec: Recorder): string {
  const [a, b] = rec.impls;
  const lines = [
    `| metric | unit | ${rec.labels.join(" | ")} | ratio ${a}/${b} | better is | verdict |`,
    `| --- | --- | ${rec.impls.map(() => "---:").join(" | ")} | ---: | --- | --- |`,
  ];
  for (const m of rec.measured()) {
    const r = rec.ratio(m.id);
    const cells = rec.impls.map((i) => cell(rec.summary(m.id, i), m.digits)).join(" | ");
    lines.push(
      `| ${m.label} | ${m.unit} | ${cells} | ${
        Number.isFinite(r) ? r.toFixed(2) : "—"
      } | ${m.better} | ${verdict(r, m.better)} |`,
    );
  }
  return lines.join("\n");
}

/** The JSON document written by `--json`. */
export function jsonReport(rec: Recorder, meta: Record<string, unknown>): unknown {
  const metrics: Record<string, unknown> = {};
  for (const m of rec.measured()) {
    const per: Record<string, unknown> = {};
    for (const impl of rec.impls) per[impl] = rec.summary(m.id, impl);
    const r = rec.ratio(m.id);
    metrics[m.id] = {
      label: m.label,
      unit: m.unit,
      better: m.better,
      ...per,
      ratio: Number.isFinite(r) ? r : null,
    };
  }
  return { meta, metrics, notes: rec.notes };
}

function xmlEscape(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

/**
 * svgChart() draws one horizontal bar per metric: the ratio candidate /
 * reference normalised so that a longer bar is always better (the inverse
 * ratio for lower-is-better metrics), on a log scale from 1/8 to 8 around a
 * line at 1 (= the reference), with the two medians written beside it.
 */
export function svgChart(rec: Recorder, title: string): string {
  const [a, b] = rec.impls;
  const rows = rec.measured().filter((m) =>
    m.better !== "info" && Number.isFinite(rec.ratio(m.id))
  );
  const labelW = 430, plotW = 420, valueW = 300, rowH = 24, top = 56;
  const width = labelW + plotW + valueW + 20;
  const height = top + rows.length * rowH + 40;
  const span = Math.log(8);
  const x0 = labelW + plotW / 2;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">${xmlEscape(title)}</text>`,
    `<text x="10" y="40" fill="#444">${
      xmlEscape(
        `${a} relative to ${b} (medians); bar to the right = ${a} better, log scale ×1/8…×8`,
      )
    }</text>`,
  ];
  for (const tick of [1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8]) {
    const x = x0 + (Math.log(tick) / span) * (plotW / 2);
    out.push(
      `<line x1="${x.toFixed(1)}" y1="${top - 6}" x2="${x.toFixed(1)}" y2="${
        top + rows.length * rowH
      }" stroke="${tick === 1 ? "#000" : "#ddd"}"/>`,
      `<text x="${x.toFixed(1)}" y="${top + rows.length * rowH + 16}" text-anchor="middle" ` +
        `fill="#444">${tick >= 1 ? `×${tick}` : `×1/${1 / tick}`}</text>`,
    );
  }
  rows.forEach((m, i) => {
    const r = rec.ratio(m.id);
    const good = m.better === "higher" ? r : 1 / r;
    const g = Math.max(-span, Math.min(span, Math.log(good)));
    const w = (g / span) * (plotW / 2);
    const y = top + i * rowH;
    const color = good >= 1.15 ? "#2a9d4b" : good <= 1 / 1.15 ? "#c8423b" : "#8a8a8a";
    const sa = rec.summary(m.id, a), sb = rec.summary(m.id, b);
    out.push(
      `<text x="${labelW - 8}" y="${y + 16}" text-anchor="end">${
        xmlEscape(`${m.label} (${m.unit})`)
      }</text>`,
      `<rect x="${(w >= 0 ? x0 : x0 + w).toFixed(1)}" y="${y + 5}" width="${
        Math.max(1, Math.abs(w)).toFixed(1)
      }" height="${rowH - 10}" fill="${color}"/>`,
      `<text x="${labelW + plotW + 8}" y="${y + 16}" fill="#222">${
        xmlEscape(
          `${fmt(sa?.median ?? NaN, m.digits)} vs ${fmt(sb?.median ?? NaN, m.digits)} ` +
            `(×${r.toFixed(2)})`,
        )
      }</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
