// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `wg show`-style text from a UAPI get reply (wireguard-tools `show.c`
 * pretty output, without colours): the interface, then each peer with its
 * endpoint, allowed IPs, latest handshake, transfer and keepalive.
 */
import { publicKey } from "../src/crypto.ts";
import { keyToBase64 } from "../src/peer.ts";

function fromHex(h: string): Uint8Array {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Human bytes as wg prints them: "1.23 KiB". */
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

/** "1 minute, 5 seconds ago", as wg's ago(). */
export function formatAgo(seconds: number): string {
  if (seconds <= 0) return "Now";
  const parts: string[] = [];
  const units: [number, string][] = [[365 * 86400, "year"], [86400, "day"], [3600, "hour"], [
    60,
    "minute",
  ], [1, "second"]];
  let left = seconds;
  for (const [size, name] of units) {
    const n = Math.floor(left / size);
    left -= n * size;
    if (n > 0) parts.push(`${n} ${name}${n === 1 ? "" : "s"}`);
  }
  return `${parts.join(", ")} ago`;
}

/** Formats the UAPI get lines of `iface` like `wg show <iface>`. */
export function formatShow(iface: string, kv: [string, string][], nowSec: number): string {
  const out: string[] = [`interface: ${iface}`];
  let i = 0;
  for (; i < kv.length && kv[i][0] !== "public_key"; i++) {
    const [k, v] = kv[i];
    if (k === "private_key") {
      out.push(`  public key: ${keyToBase64(publicKey(fromHex(v)))}`, "  private key: (hidden)");
    } else if (k === "listen_port") out.push(`  listening port: ${v}`);
    else if (k === "fwmark") out.push(`  fwmark: 0x${Number(v).toString(16)}`);
  }
  let peer: Record<string, string> = {};
  let allowed: string[] = [];
  const flush = () => {
    if (!peer.public_key) return;
    out.push("", `peer: ${keyToBase64(fromHex(peer.public_key))}`);
    if (peer.preshared_key && !/^0+$/.test(peer.preshared_key)) {
      out.push("  preshared key: (hidden)");
    }
    if (peer.endpoint) out.push(`  endpoint: ${peer.endpoint}`);
    out.push(`  allowed ips: ${allowed.length ? allowed.join(", ") : "(none)"}`);
    const hs = Number(peer.last_handshake_time_sec ?? 0);
    if (hs > 0) out.push(`  latest handshake: ${formatAgo(nowSec - hs)}`);
    const rx = Number(peer.rx_bytes ?? 0), tx = Number(peer.tx_bytes ?? 0);
    if (rx > 0 || tx > 0) {
      out.push(`  transfer: ${formatBytes(rx)} received, ${formatBytes(tx)} sent`);
    }
    const ka = Number(peer.persistent_keepalive_interval ?? 0);
    if (ka > 0) out.push(`  persistent keepalive: every ${formatAgo(ka).replace(" ago", "")}`);
  };
  for (; i < kv.length; i++) {
    const [k, v] = kv[i];
    if (k === "public_key") {
      flush();
      peer = { public_key: v };
      allowed = [];
    } else if (k === "allowed_ip") allowed.push(v);
    else peer[k] = v;
  }
  flush();
  return out.join("\n") + "\n";
}
