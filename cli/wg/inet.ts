// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * IP address text as glibc reads and writes it, because `wg` uses glibc for
 * both: `inet_pton` (strict: four decimal octets without leading zeros, or
 * RFC 4291 IPv6 with an optional trailing dotted quad), `inet_aton` as
 * getaddrinfo applies it to numeric hosts (1 to 4 parts, each decimal, octal
 * or hex: `127.1`, `0x7f.1`), and `inet_ntop` (IPv6 compressed at the first
 * longest run of two or more zero groups, `::ffff:a.b.c.d` and `::a.b.c.d`
 * for mapped and compatible addresses). Go's `netip` formats IPv6 differently
 * (no `::a.b.c.d`), so src/ip.ts is not used here.
 */
import { strtoul } from "./cstr.ts";

/** glibc `inet_pton(AF_INET, …)`: exactly four decimal octets, no leading zeros. */
export function inetPton4(s: string): Uint8Array | null {
  const out = new Uint8Array(4);
  let octets = 0;
  let sawDigit = false;
  let cur = 0;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch === 0) break;
    if (ch >= 48 && ch <= 57) {
      const next = cur * 10 + (ch - 48);
      if (sawDigit && cur === 0) return null;
      if (next > 255) return null;
      cur = next;
      if (!sawDigit) {
        if (++octets > 4) return null;
        sawDigit = true;
      }
      out[octets - 1] = cur;
    } else if (ch === 46 && sawDigit) {
      if (octets === 4) return null;
      cur = 0;
      sawDigit = false;
    } else {
      return null;
    }
  }
  return octets < 4 ? null : out;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 32;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

/** glibc `inet_pton(AF_INET6, …)` (glibc ≥ 2.26 parser). */
export function inetPton6(s: string): Uint8Array | null {
  const nul = s.indexOf("\0");
  if (nul >= 0) s = s.slice(0, nul);
  const out = new Uint8Array(16);
  let src = 0;
  const end = s.length;
  if (src === end) return null;
  if (s[src] === ":") {
    src++;
    if (src === end || s[src] !== ":") return null;
  }
  let tp = 0;
  let colonp = -1;
  let curtok = src;
  let digits = 0;
  let val = 0;
  while (src < end) {
    const ch = s.charCodeAt(src++);
    const d = hexDigit(ch);
    if (d >= 0) {
      if (digits === 4) return null;
      val = (val << 4) | d;
      if (val > 0xffff) return null;
      digits++;
      continue;
    }
    if (ch === 58) {
      curtok = src;
      if (digits === 0) {
        if (colonp >= 0) return null;
        colonp = tp;
        continue;
      } else if (src === end) {
        return null;
      }
      if (tp + 2 > 16) return null;
      out[tp++] = (val >> 8) & 0xff;
      out[tp++] = val & 0xff;
      digits = 0;
      val = 0;
      continue;
    }
    if (ch === 46 && tp + 4 <= 16) {
      const v4 = inetPton4(s.slice(curtok, end));
      if (v4) {
        out.set(v4, tp);
        tp += 4;
        digits = 0;
        break;
      }
    }
    return null;
  }
  if (digits > 0) {
    if (tp + 2 > 16) return null;
    out[tp++] = (val >> 8) & 0xff;
    out[tp++] = val & 0xff;
  }
  if (colonp >= 0) {
    // "::" must stand for at least one zero group.
    if (tp === 16) return null;
    const n = tp - colonp;
    out.copyWithin(16 - n, colonp, tp);
    out.fill(0, colonp, 16 - n);
    tp = 16;
  }
  return tp === 16 ? out : null;
}

/**
 * glibc `__inet_aton_exact`, which getaddrinfo tries first on a host: parts
 * in C notation (0x hex, 0 octal, decimal) split by dots, the last part
 * filling the remaining bytes (`a.b` puts b in the low 24 bits), and nothing
 * after it.
 */
export function inetAtonExact(s: string): Uint8Array | null {
  const max = [0xffffffff, 0xffffff, 0xffff, 0xff];
  const parts: number[] = [];
  let i = 0;
  let val = 0;
  for (;;) {
    const c = s.charCodeAt(i);
    if (!(c >= 48 && c <= 57)) return null;
    const r = strtoul(s.slice(i), 0);
    if (r.value > 0xffffffffn) return null;
    val = Number(r.value);
    i += r.end;
    if (s[i] === ".") {
      if (parts.length > 2 || val > 0xff) return null;
      parts.push(val);
      i++;
    } else {
      break;
    }
  }
  // inet_aton would stop at whitespace; the "exact" variant insists on the end.
  if (i < s.length && s.charCodeAt(i) !== 0) return null;
  if (val > max[parts.length]) return null;
  const out = new Uint8Array(4);
  out.set(parts);
  const word = new DataView(out.buffer);
  word.setUint32(0, (word.getUint32(0) | val) >>> 0);
  return out;
}

/** glibc `inet_ntop(AF_INET, …)`. */
export function inetNtop4(a: Uint8Array, offset = 0): string {
  return `${a[offset]}.${a[offset + 1]}.${a[offset + 2]}.${a[offset + 3]}`;
}

/** glibc `inet_ntop(AF_INET6, …)`. */
export function inetNtop6(a: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((a[2 * i] << 8) | a[2 * i + 1]);
  let bestBase = -1;
  let bestLen = 0;
  let curBase = -1;
  let curLen = 0;
  for (let i = 0; i < 8; i++) {
    if (words[i] === 0) {
      if (curBase === -1) {
        curBase = i;
        curLen = 1;
      } else {
        curLen++;
      }
    } else if (curBase !== -1) {
      if (bestBase === -1 || curLen > bestLen) {
        bestBase = curBase;
        bestLen = curLen;
      }
      curBase = -1;
    }
  }
  if (curBase !== -1 && (bestBase === -1 || curLen > bestLen)) {
    bestBase = curBase;
    bestLen = curLen;
  }
  if (bestBase !== -1 && bestLen < 2) bestBase = -1;
  let out = "";
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ":";
      continue;
    }
    if (i !== 0) out += ":";
    if (
      i === 6 && bestBase === 0 &&
      (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))
    ) {
      out += inetNtop4(a, 12);
      break;
    }
    out += words[i].toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out += ":";
  return out;
}

/** inetNtop() formats 4 or 16 address bytes. */
export function inetNtop(a: Uint8Array): string {
  return a.length === 4 ? inetNtop4(a) : inetNtop6(a);
}
