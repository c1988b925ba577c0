// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * IP address text: parsing and formatting exactly as Go's `net/netip`
 * (RFC 5952 output, IPv4-mapped IPv6 as `::ffff:a.b.c.d`), which is what
 * wireguard-go prints over UAPI.
 */

/** Parses dotted-quad IPv4 (no leading zeros, as Go); null when invalid. */
export function parseIPv4(text: string): Uint8Array | null {
  const out = new Uint8Array(4);
  return parseIPv4At(text, 0, text.length, out, 0) ? out : null;
}

/** Parses IPv6 text (with `::` and an optional embedded IPv4 tail); null when invalid. */
export function parseIPv6(text: string): Uint8Array | null {
  const out = new Uint8Array(16);
  return parseIPv6At(text, 0, text.length, out) ? out : null;
}

/*
 * The parsers below read `text[start..end)` by char code and write into a
 * caller's buffer: a UAPI `set` may carry hundreds of thousands of
 * `allowed_ip` lines, and split()/regex/a new Uint8Array per line made
 * parsing cost more than the trie insertion itself.
 */

/**
 * Dotted quad in `text[start..end)` into `out[off..off + 4)`: exactly four
 * parts of 1–3 ASCII digits, no leading zero, each ≤ 255 (Go `parseIPv4`).
 * `out` may be partly written when this returns false.
 */
function parseIPv4At(
  text: string,
  start: number,
  end: number,
  out: Uint8Array,
  off: number,
): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      // A second digit after a leading 0 ("01") is refused, as Go.
      if (digits === 1 && value === 0) return false;
      value = value * 10 + (c - 0x30);
      if (value > 255) return false;
      digits++;
    } else if (c === 0x2e && digits > 0 && part < 3) {
      out[off + part++] = value;
      value = 0;
      digits = 0;
    } else {
      return false;
    }
  }
  if (part !== 3 || digits === 0) return false;
  out[off + 3] = value;
  return true;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
}

/**
 * IPv6 text in `text[start..end)` into `out[0..16)`: colon-separated groups
 * of 1–4 hex digits, at most one `::` standing for one or more zero groups,
 * and optionally a dotted quad as the last 32 bits. `out` may be partly
 * written when this returns false.
 */
function parseIPv6At(text: string, start: number, end: number, out: Uint8Array): boolean {
  // 45 = six 4-digit groups and a 15-character dotted quad: nothing longer is valid.
  if (end === start || end - start > 45) return false;
  let i = start;
  /** Bytes written so far. */
  let k = 0;
  /** Byte position of the `::`, or -1. */
  let ellipsis = -1;
  if (end - i >= 2 && text.charCodeAt(i) === 0x3a && text.charCodeAt(i + 1) === 0x3a) {
    ellipsis = 0;
    i += 2;
  }
  while (i < end) {
    const groupStart = i;
    let value = 0;
    let digits = 0;
    for (; i < end; i++) {
      const h = hexDigit(text.charCodeAt(i));
      if (h < 0) break;
      if (++digits > 4) return false;
      value = (value << 4) | h;
    }
    if (i < end && text.charCodeAt(i) === 0x2e) {
      // An embedded IPv4 address is only allowed as the last 32 bits (and
      // it is last: the parse runs to the end).
      if (k > 12) return false;
      if (!parseIPv4At(text, groupStart, end, out, k)) return false;
      k += 4;
      break;
    }
    if (digits === 0 || k === 16) return false;
    out[k++] = value >> 8;
    out[k++] = value & 0xff;
    if (i === end) break;
    if (text.charCodeAt(i) !== 0x3a) return false;
    i++;
    if (i < end && text.charCodeAt(i) === 0x3a) {
      if (ellipsis >= 0) return false;
      ellipsis = k;
      i++;
    } else if (i === end) {
      return false; // a trailing single ':'
    }
  }
  if (ellipsis < 0) return k === 16;
  // `::` stands for at least one zero group.
  if (k === 16) return false;
  const gap = 16 - k;
  for (let j = k - 1; j >= ellipsis; j--) out[j + gap] = out[j];
  out.fill(0, ellipsis, ellipsis + gap);
  return true;
}

/** Formats 4 bytes as dotted quad. */
export function formatIPv4(a: Uint8Array): string {
  return a[0] + "." + a[1] + "." + a[2] + "." + a[3];
}

/** Formats 16 bytes as RFC 5952 text, IPv4-mapped as `::ffff:a.b.c.d` (as Go). */
export function formatIPv6(a: Uint8Array): string {
  let mapped = a[10] === 0xff && a[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) if (a[i] !== 0) mapped = false;
  if (mapped) return "::ffff:" + a[12] + "." + a[13] + "." + a[14] + "." + a[15];
  // Longest run of zero groups, length ≥ 2, leftmost wins (RFC 5952 §4.2.3).
  let bestStart = -1;
  let bestEnd = -1;
  for (let i = 0; i < 8;) {
    if (a[2 * i] !== 0 || a[2 * i + 1] !== 0) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < 8 && a[2 * j] === 0 && a[2 * j + 1] === 0) j++;
    if (j - i >= 2 && j - i > bestEnd - bestStart) {
      bestStart = i;
      bestEnd = j;
    }
    i = j;
  }
  // One concatenation pass, no arrays: UAPI `get` prints every allowed IP.
  let s = "";
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      s += "::";
      i = bestEnd - 1;
      continue;
    }
    if (i > 0 && i !== bestEnd) s += ":";
    s += ((a[2 * i] << 8) | a[2 * i + 1]).toString(16);
  }
  return s;
}

/** `parsePrefixInto()` family for IPv4 (the result's bits 8 and up). */
export const PREFIX_IPV4 = 4;
/** `parsePrefixInto()` family for IPv6. */
export const PREFIX_IPV6 = 6;

/**
 * Parses `ip/bits` as Go's `netip.ParsePrefix` (what wireguard-go uses for
 * `allowed_ip`): the address as {@link parseIPv4}/{@link parseIPv6} (an
 * IPv4-mapped IPv6 address stays family 6), no IPv6 zone, and the bits in
 * decimal without sign or leading zeros (`/0` is fine, `/08` is not), at most
 * 32 or 128. Host bits are kept as written. Returns null when invalid.
 */
export function parsePrefix(text: string): { family: 4 | 6; ip: Uint8Array; cidr: number } | null {
  const v4 = new Uint8Array(4);
  const v6 = new Uint8Array(16);
  const r = parsePrefixInto(text, v4, v6);
  if (r < 0) return null;
  const family = r >> 8 === PREFIX_IPV4 ? 4 : 6;
  return { family, ip: family === 4 ? v4 : v6, cidr: r & 0xff };
}

/**
 * {@link parsePrefix} without allocating: parses `text[start..]` and writes
 * the address into `v4` (4 bytes) or `v6` (16 bytes). Returns
 * `family << 8 | bits` (family 4 or 6), or -1 when invalid; then the buffers
 * may be partly overwritten. Accepts exactly what {@link parsePrefix} accepts.
 */
export function parsePrefixInto(
  text: string,
  v4: Uint8Array,
  v6: Uint8Array,
  start = 0,
): number {
  const end = text.length;
  const slash = text.lastIndexOf("/");
  if (slash < start) return -1;
  // Bits: "0" or 1–3 digits without a leading zero.
  const bitsLen = end - slash - 1;
  if (bitsLen < 1 || bitsLen > 3) return -1;
  let bits = 0;
  for (let i = slash + 1; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    bits = bits * 10 + (c - 0x30);
  }
  if (bitsLen > 1 && text.charCodeAt(slash + 1) === 0x30) return -1;
  // Any ':' makes it IPv6; a '%' zone is never allowed in a prefix.
  let v6text = false;
  for (let i = start; i < slash; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25) return -1;
    if (c === 0x3a) v6text = true;
  }
  if (v6text) {
    return bits <= 128 && parseIPv6At(text, start, slash, v6) ? (PREFIX_IPV6 << 8) | bits : -1;
  }
  return bits <= 32 && parseIPv4At(text, start, slash, v4, 0) ? (PREFIX_IPV4 << 8) | bits : -1;
}

/** Formats a prefix as Go's `netip.Prefix.String()`; `ip` is printed as given, not masked. */
export function formatPrefix(family: 4 | 6, ip: Uint8Array, cidr: number): string {
  return (family === 4 ? formatIPv4(ip) : formatIPv6(ip)) + "/" + cidr;
}
