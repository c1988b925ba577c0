// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The pure text pieces of `gotatun top` (cli/top.ts): byte counts, rates,
 * handshake ages and their colours, sparklines, abbreviated keys and cut
 * endpoints. No I/O; tested with fixed inputs.
 */

/** Samples kept per peer and direction: 20 s at one sample a second. */
export const HISTORY_LENGTH = 20;

/** Handshake age under which the peer is green (REKEY_AFTER_TIME). */
export const FRESH_HANDSHAKE_S = 120;
/** Handshake age under which the peer is yellow (REJECT_AFTER_TIME); red after. */
export const STALE_HANDSHAKE_S = 180;

const SPARK = "▁▂▃▄▅▆▇█";

/** Human bytes as wg prints them, without colour: "1.23 KiB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(2)} ${units[i]}`;
}

/**
 * sparkline() draws the last `width` values, newest on the right, scaled to
 * `scale` (default: their own maximum): zero is ▁, `scale` and above █,
 * anything above zero at least ▂. Missing cells (fewer values than `width`)
 * are blanks on the left.
 */
export function sparkline(
  values: readonly number[],
  width = HISTORY_LENGTH,
  scale = windowMax(values, width),
): string {
  const last = values.slice(Math.max(0, values.length - width));
  const max = scale > 0 ? scale : 0;
  let s = " ".repeat(width - last.length);
  for (const v of last) {
    if (!(v > 0) || max === 0) {
      s += SPARK[0];
      continue;
    }
    // 1..7: the top cell only for the maximum itself, the lowest non-zero at ▂.
    const level = Math.max(1, Math.min(7, Math.ceil((v / max) * 7)));
    s += SPARK[level];
  }
  return s;
}

/** windowMax() is the largest of the last `width` values (0 when none is above 0). */
export function windowMax(values: readonly number[], width = HISTORY_LENGTH): number {
  let max = 0;
  for (let i = Math.max(0, values.length - width); i < values.length; i++) {
    if (values[i] > max) max = values[i];
  }
  return max;
}

/**
 * sparkScale() is the scale the sparklines of one direction share: the
 * largest rate any of `peers` had in the window.
 */
export function sparkScale(
  peers: readonly { rxHistory: readonly number[]; txHistory: readonly number[] }[],
  direction: "rx" | "tx",
): number {
  let max = 0;
  for (const p of peers) {
    max = Math.max(max, windowMax(direction === "rx" ? p.rxHistory : p.txHistory));
  }
  return max;
}

/** formatRate() is bytes/s in at most 10 characters: "0 B/s", "999 B/s", "12.3 KiB/s", "1023 MiB/s". */
export function formatRate(bytesPerSecond: number | null): string {
  if (bytesPerSecond === null || !Number.isFinite(bytesPerSecond)) return "-";
  const n = Math.max(0, bytesPerSecond);
  if (n < 1024) return `${Math.round(n) === 1024 ? 1023 : Math.round(n)} B/s`;
  const units = ["KiB/s", "MiB/s", "GiB/s", "TiB/s"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const one = v.toFixed(1);
  return `${one.length <= 4 ? one : Math.min(Math.round(v), 9999)} ${units[i]}`;
}

/**
 * formatAge() is a short handshake age: "never" for no handshake, then
 * "45s", "2m05s", "3h07m", "4d02h". A handshake in the future (clock skew)
 * reads as "0s".
 */
export function formatAge(seconds: number | null): string {
  if (seconds === null) return "never";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad2(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad2(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${pad2(Math.floor(s / 3600) % 24)}h`;
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/** handshakeColour() is the colour of a handshake age (null: never). */
export function handshakeColour(seconds: number | null): "green" | "yellow" | "red" {
  if (seconds === null) return "red";
  if (seconds < FRESH_HANDSHAKE_S) return "green";
  if (seconds < STALE_HANDSHAKE_S) return "yellow";
  return "red";
}

/** abbreviateKey() is "AbCd…WxYz", as wireguard-go names peers in its logs. */
export function abbreviateKey(base64: string): string {
  if (base64.length < 12) return base64;
  return `${base64.slice(0, 4)}…${base64.slice(39, 43) || base64.slice(-4)}`;
}

/**
 * cutEndpoint() fits an endpoint in `width` by cutting its address in the
 * middle and keeping the port: "[2001:db8:1…]:51820". Only when even that
 * cannot be done is it cut at the end like any text.
 */
export function cutEndpoint(text: string, width: number): string {
  if (text.length <= width) return text;
  const port = /\]?:[0-9]+$/.exec(text)?.[0] ?? "";
  if (port === "" || width < port.length + 3) return fit(text, width);
  return text.slice(0, width - port.length - 1) + "…" + port;
}

/** fit() pads `text` to `width` (left-aligned, or right when `right`), cutting with "…". */
export function fit(text: string, width: number, right = false): string {
  if (text.length > width) return width <= 0 ? "" : text.slice(0, width - 1) + "…";
  if (!Number.isFinite(width)) return text;
  return right ? text.padStart(width) : text.padEnd(width);
}
