// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * IP address text: parsing and formatting exactly as Go's `net/netip`
 * (RFC 5952 output, IPv4-mapped IPv6 as `::ffff:a.b.c.d`), which is what
 * wireguard-go prints over UAPI.
 */

/** Parses dotted-quad IPv4 (no leading zeros, as Go); null when invalid. */
export function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^[0-9]{1,3}$/.test(p) || (p.length > 1 && p[0] === "0")) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

/** Parses IPv6 text (with `::` and an optional embedded IPv4 tail); null when invalid. */
export function parseIPv6(text: string): Uint8Array | null {
  if (text.length === 0 || text.length > 45) return null;
  const out = new Uint8Array(16);
  let head: string[];
  let tail: string[];
  const dbl = text.indexOf("::");
  if (dbl >= 0) {
    if (text.indexOf("::", dbl + 1) >= 0) return null;
    head = text.slice(0, dbl) === "" ? [] : text.slice(0, dbl).split(":");
    tail = text.slice(dbl + 2) === "" ? [] : text.slice(dbl + 2).split(":");
  } else {
    head = text.split(":");
    tail = [];
  }
  const groups: number[][] = [[], []];
  const sides = [head, tail];
  let count = 0;
  for (let s = 0; s < 2; s++) {
    const side = sides[s];
    for (let i = 0; i < side.length; i++) {
      const g = side[i];
      const last = (dbl < 0 ? s === 0 : s === 1) && i === side.length - 1;
      if (g.includes(".")) {
        if (!last) return null;
        const v4 = parseIPv4(g);
        if (!v4) return null;
        groups[s].push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
        count += 2;
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      groups[s].push(parseInt(g, 16));
      count++;
    }
  }
  if (dbl >= 0 ? count > 7 : count !== 8) return null;
  let o = 0;
  for (const g of groups[0]) {
    out[o++] = g >> 8;
    out[o++] = g & 0xff;
  }
  o = 16 - groups[1].length * 2;
  for (const g of groups[1]) {
    out[o++] = g >> 8;
    out[o++] = g & 0xff;
  }
  return out;
}

/** Formats 4 bytes as dotted quad. */
export function formatIPv4(a: Uint8Array): string {
  return `${a[0]}.${a[1]}.${a[2]}.${a[3]}`;
}

/** Formats 16 bytes as RFC 5952 text, IPv4-mapped as `::ffff:a.b.c.d` (as Go). */
export function formatIPv6(a: Uint8Array): string {
  let mapped = a[10] === 0xff && a[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) if (a[i] !== 0) mapped = false;
  if (mapped) return `::ffff:${formatIPv4(a.subarray(12))}`;
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((a[i] << 8) | a[i + 1]);
  // Longest run of zero groups, length ≥ 2, leftmost wins.
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return g.map((x) => x.toString(16)).join(":");
  const left = g.slice(0, bestStart).map((x) => x.toString(16)).join(":");
  const right = g.slice(bestStart + bestLen).map((x) => x.toString(16)).join(":");
  return `${left}::${right}`;
}

/**
 * Parses `ip/bits` as Go's `netip.ParsePrefix` (what wireguard-go uses for
 * `allowed_ip`): the address as {@link parseIPv4}/{@link parseIPv6} (an
 * IPv4-mapped IPv6 address stays family 6), no IPv6 zone, and the bits in
 * decimal without sign or leading zeros (`/0` is fine, `/08` is not), at most
 * 32 or 128. Host bits are kept as written. Returns null when invalid.
 */
export function parsePrefix(text: string): { family: 4 | 6; ip: Uint8Array; cidr: number } | null {
  const slash = text.lastIndexOf("/");
  if (slash < 0) return null;
  const addr = text.slice(0, slash);
  const bits = text.slice(slash + 1);
  // Go picks the family by the first '.' or ':'; a '%' zone is never allowed here.
  if (addr.includes("%")) return null;
  const family = addr.includes(":") ? 6 : 4;
  const ip = family === 4 ? parseIPv4(addr) : parseIPv6(addr);
  if (ip === null) return null;
  if (!/^(?:0|[1-9][0-9]{0,2})$/.test(bits)) return null;
  const cidr = Number(bits);
  if (cidr > (family === 4 ? 32 : 128)) return null;
  return { family, ip, cidr };
}

/** Formats a prefix as Go's `netip.Prefix.String()`; `ip` is printed as given, not masked. */
export function formatPrefix(family: 4 | 6, ip: Uint8Array, cidr: number): string {
  return `${family === 4 ? formatIPv4(ip) : formatIPv6(ip)}/${cidr}`;
}
