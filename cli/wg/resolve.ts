// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Name and address resolution the way `wg` gets it from glibc:
 * `getaddrinfo(host, port, {AF_UNSPEC, SOCK_DGRAM, IPPROTO_UDP})` for
 * endpoints (config, `wg set`, and the daemon's own `endpoint=` replies),
 * `getaddrinfo(NULL, port, AI_PASSIVE)` for listen ports, and
 * `getnameinfo(NI_NUMERICHOST | NI_NUMERICSERV)` for printing endpoints.
 *
 * Two resolvers implement {@link Resolver}:
 * - {@link libcResolver} calls glibc's own `getaddrinfo` through FFI when
 *   `--allow-ffi` is granted, so hostnames, `/etc/gai.conf` ordering, NSS,
 *   service names and every numeric quirk (`127.1`, port `70000` wrapping to
 *   4464) are exactly what stock `wg` sees. The call is synchronous and blocks
 *   the event loop for the lookup, as it blocks `wg`.
 * - {@link fallbackResolver} is pure TypeScript: glibc's numeric rules
 *   (`inet_aton` forms, IPv6 scopes, `strtoul` ports), `/etc/services`,
 *   `/etc/hosts`, then `Deno.resolveDns`. Hostnames can resolve to a
 *   different first address than glibc (no RFC 6724 sorting, no nsswitch).
 *
 * Printing ({@link formatSockAddr}) is always TypeScript: glibc's inet_ntop
 * plus `%<ifname>` for link-local scopes and `%<n>` otherwise.
 */
import { bstrText, cstring, strtoul } from "./cstr.ts";
import { inetAtonExact, inetNtop4, inetNtop6, inetPton6 } from "./inet.ts";

/** A resolved UDP address (`struct sockaddr_in` / `sockaddr_in6`). */
export interface SockAddr {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  addr: Uint8Array;
  port: number;
  /** IPv6 scope (interface index); 0 for none and for IPv4. */
  scopeId: number;
}

/** getaddrinfo's answer: an address, or an EAI_* code (negative, as in glibc). */
export type GaiResult =
  /** `addr` is null when the first result is neither IPv4 nor IPv6. */
  | { ok: true; addr: SockAddr | null }
  | { ok: false; code: number; errno: number };

/** glibc's EAI_* values. */
export const EAI_NONAME = -2;
export const EAI_AGAIN = -3;
export const EAI_FAIL = -4;
export const EAI_NODATA = -5;
export const EAI_SERVICE = -8;
export const EAI_SYSTEM = -11;

const GAI_TEXT: Record<number, string> = {
  [-1]: "Bad value for ai_flags",
  [-2]: "Name or service not known",
  [-3]: "Temporary failure in name resolution",
  [-4]: "Non-recoverable failure in name resolution",
  [-5]: "No address associated with hostname",
  [-6]: "ai_family not supported",
  [-7]: "ai_socktype not supported",
  [-8]: "Servname not supported for ai_socktype",
  [-9]: "Address family for hostname not supported",
  [-10]: "Memory allocation failure",
  [-11]: "System error",
};

/** glibc `gai_strerror`. */
export function gaiStrerror(code: number): string {
  return GAI_TEXT[code] ?? "Unknown error";
}

/** What the `wg` commands need from name resolution. */
export interface Resolver {
  /**
   * getaddrinfo() with `wg`'s hints: AF_UNSPEC, SOCK_DGRAM, IPPROTO_UDP, and
   * AI_PASSIVE when `host` is null. Returns the first result.
   */
  getaddrinfo(host: string | null, service: string): GaiResult;
  /** if_indextoname(): the interface name of an index, or null. */
  ifIndexToName(index: number): string | null;
}

const FFI_SYMBOLS = {
  getaddrinfo: { parameters: ["buffer", "buffer", "buffer", "buffer"], result: "i32" },
  freeaddrinfo: { parameters: ["pointer"], result: "void" },
  if_indextoname: { parameters: ["u32", "buffer"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

let ffiLib: Deno.DynamicLibrary<typeof FFI_SYMBOLS> | null | undefined;

function openLibc(): Deno.DynamicLibrary<typeof FFI_SYMBOLS> | null {
  if (ffiLib !== undefined) return ffiLib;
  ffiLib = null;
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
    if (Deno.build.os !== "linux") return null;
    ffiLib = Deno.dlopen("libc.so.6", FFI_SYMBOLS);
  } catch {
    ffiLib = null;
  }
  return ffiLib;
}

function cbuf(s: string): Uint8Array<ArrayBuffer> {
  const t = cstring(s);
  const out = new Uint8Array(t.length + 1);
  for (let i = 0; i < t.length; i++) out[i] = t.charCodeAt(i) & 0xff;
  return out;
}

/** parseSockAddr() reads a `struct sockaddr_in`/`sockaddr_in6` (Linux layout). */
export function parseSockAddr(b: Uint8Array): SockAddr | null {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const family = dv.getUint16(0, true);
  if (family === 2 && b.length === 16) {
    return { family: 4, addr: b.slice(4, 8), port: dv.getUint16(2), scopeId: 0 };
  }
  if (family === 10 && b.length === 28) {
    return {
      family: 6,
      addr: b.slice(8, 24),
      port: dv.getUint16(2),
      scopeId: dv.getUint32(24, true),
    };
  }
  return null;
}

/**
 * libcResolver() is glibc itself through FFI, or null when FFI is not
 * permitted or libc.so.6 cannot be opened.
 */
export function libcResolver(): Resolver | null {
  const lib = openLibc();
  if (!lib) return null;
  const sym = lib.symbols;
  return {
    getaddrinfo(host, service) {
      // struct addrinfo hints: ai_flags, ai_family, ai_socktype, ai_protocol, …
      const hints = new Uint8Array(48);
      const hv = new DataView(hints.buffer);
      hv.setInt32(0, host === null ? 1 : 0, true); // AI_PASSIVE
      hv.setInt32(4, 0, true); // AF_UNSPEC
      hv.setInt32(8, 2, true); // SOCK_DGRAM
      hv.setInt32(12, 17, true); // IPPROTO_UDP
      const res = new BigUint64Array(1);
      const rc = sym.getaddrinfo(host === null ? null : cbuf(host), cbuf(service), hints, res);
      if (rc !== 0) {
        let errno = 0;
        if (rc === EAI_SYSTEM) {
          const p = sym.__errno_location();
          if (p) errno = new Deno.UnsafePointerView(p).getInt32(0);
        }
        return { ok: false, code: rc, errno };
      }
      const head = Deno.UnsafePointer.create(res[0]);
      if (!head) return { ok: false, code: EAI_FAIL, errno: 0 };
      try {
        const ai = new Deno.UnsafePointerView(head);
        const addrlen = ai.getUint32(16);
        const addrPtr = ai.getPointer(24);
        if (!addrPtr || addrlen === 0 || addrlen > 128) return { ok: true, addr: null };
        const bytes = new Uint8Array(addrlen);
        new Deno.UnsafePointerView(addrPtr).copyInto(bytes);
        return { ok: true, addr: parseSockAddr(bytes) };
      } finally {
        sym.freeaddrinfo(head);
      }
    },
    ifIndexToName(index) {
      const buf = new Uint8Array(16);
      const p = sym.if_indextoname(index, buf);
      if (!p) return null;
      const n = buf.indexOf(0);
      return String.fromCharCode(...buf.subarray(0, n < 0 ? 16 : n));
    },
  };
}

/** Interface index of `name` in this network namespace (sysfs), or 0. */
function sysfsNameToIndex(name: string): number {
  if (name === "" || name.length >= 16 || name.includes("/") || name === "." || name === "..") {
    return 0;
  }
  try {
    const text = Deno.readTextFileSync(`/sys/class/net/${bstrText(name)}/ifindex`);
    const n = Number(text.trim());
    return Number.isInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}

/** Interface name of `index` in this network namespace (sysfs), or null. */
function sysfsIndexToName(index: number): string | null {
  try {
    for (const e of Deno.readDirSync("/sys/class/net")) {
      try {
        const n = Number(Deno.readTextFileSync(`/sys/class/net/${e.name}/ifindex`).trim());
        if (n === index) return e.name;
      } catch {
        // raced with removal
      }
    }
  } catch {
    // no sysfs
  }
  return null;
}

/** Link-local unicast (fe80::/10) or link-local multicast (ff02::/16 style). */
function isLinkLocalScope(a: Uint8Array): boolean {
  return (a[0] === 0xfe && (a[1] & 0xc0) === 0x80) || (a[0] === 0xff && (a[1] & 0x0f) === 0x02);
}

/**
 * glibc `__inet6_scopeid_pton`: an interface name for link-local and
 * node/link-local multicast addresses, else (or when no such interface) a
 * decimal number up to 2^32−1.
 */
function scopeIdPton(a: Uint8Array, scope: string): number | null {
  const named = (a[0] === 0xfe && (a[1] & 0xc0) === 0x80) ||
    (a[0] === 0xff && ((a[1] & 0x0f) === 0x01 || (a[1] & 0x0f) === 0x02));
  if (named) {
    const n = sysfsNameToIndex(scope);
    if (n !== 0) return n;
  }
  const c = scope.charCodeAt(0);
  if (c >= 48 && c <= 57) {
    const r = strtoul(scope, 10);
    if (r.end === scope.length && r.value <= 0xffffffffn) return Number(r.value);
  }
  return null;
}

/** Cached `/etc/services` lines (name, aliases, port) for UDP. */
let udpServices: { names: string[]; port: number }[] | null = null;

function lookupUdpService(name: string): number | null {
  if (udpServices === null) {
    udpServices = [];
    try {
      for (const raw of Deno.readTextFileSync("/etc/services").split("\n")) {
        const line = raw.replace(/#.*/, "").trim();
        if (line === "") continue;
        const fields = line.split(/[ \t]+/);
        const m = fields[1]?.match(/^(\d+)\/(\w+)$/);
        if (!m || m[2] !== "udp") continue;
        udpServices.push({ names: [fields[0], ...fields.slice(2)], port: Number(m[1]) & 0xffff });
      }
    } catch {
      // no services database: only numeric ports resolve
    }
  }
  for (const s of udpServices) if (s.names.includes(name)) return s.port;
  return null;
}

/** glibc's service step: numeric (wrapping through `int` and `htons`) or a UDP service name. */
function resolveService(service: string): number | null {
  if (service === "") return 0;
  const r = strtoul(service, 10);
  if (r.end === service.length) {
    // gaih_service.num is an int: the low 32 bits, signed; negative means "look it up by name".
    const asInt = Number(BigInt.asIntN(32, r.value));
    if (asInt >= 0) return asInt & 0xffff;
  }
  return lookupUdpService(service);
}

/** A host name glibc's DNS backend would even try (res_hnok-like: letters, digits, -, _, .). */
function plausibleHostname(name: string): boolean {
  return /^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/
    .test(name);
}

function hostsFileLookup(name: string): SockAddr[] {
  const out: SockAddr[] = [];
  let text = "";
  try {
    text = Deno.readTextFileSync("/etc/hosts");
  } catch {
    return out;
  }
  const lower = name.toLowerCase();
  for (const raw of text.split("\n")) {
    const fields = raw.replace(/#.*/, "").trim().split(/[ \t]+/);
    if (fields.length < 2) continue;
    if (!fields.slice(1).some((n) => n.toLowerCase() === lower)) continue;
    const v4 = inetAtonExact(fields[0]);
    if (v4) {
      out.push({ family: 4, addr: v4, port: 0, scopeId: 0 });
      continue;
    }
    const v6 = inetPton6(fields[0]);
    if (v6) out.push({ family: 6, addr: v6, port: 0, scopeId: 0 });
  }
  return out;
}

/** Looks a name up in DNS (A, then AAAA); an EAI code when nothing came back. */
async function dnsLookup(name: string): Promise<SockAddr[] | number> {
  const out: SockAddr[] = [];
  let notFound = 0;
  let failed = 0;
  for (const type of ["A", "AAAA"] as const) {
    try {
      const answers = await Deno.resolveDns(name, type);
      for (const a of answers) {
        const bytes = type === "A" ? inetAtonExact(a) : inetPton6(a);
        if (bytes) out.push({ family: type === "A" ? 4 : 6, addr: bytes, port: 0, scopeId: 0 });
      }
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) notFound++;
      else failed++;
    }
  }
  if (out.length > 0) return out;
  return failed > 0 ? EAI_AGAIN : notFound > 0 ? EAI_NONAME : EAI_NODATA;
}

/**
 * The numeric part of glibc's getaddrinfo: returns an address, an EAI code,
 * or "name" when the host must be looked up.
 */
function numericHost(host: string): SockAddr | number | "name" {
  const v4 = inetAtonExact(host);
  if (v4) return { family: 4, addr: v4, port: 0, scopeId: 0 };
  const pct = host.indexOf("%");
  const v6 = inetPton6(pct < 0 ? host : host.slice(0, pct));
  if (v6) {
    let scopeId = 0;
    if (pct >= 0) {
      const s = scopeIdPton(v6, host.slice(pct + 1));
      if (s === null) return EAI_NONAME;
      scopeId = s;
    }
    return { family: 6, addr: v6, port: 0, scopeId };
  }
  return "name";
}

/**
 * fallbackResolver() is glibc's getaddrinfo rebuilt in TypeScript, for when
 * FFI is not allowed. Name lookups are asynchronous, so its getaddrinfo
 * cannot resolve names itself: it answers EAI_AGAIN for them unless its
 * `prefetch` looked them up first ({@link resolveHost} does that).
 */
export function fallbackResolver(): Resolver & {
  /** Looks names up ahead of {@link Resolver.getaddrinfo} (DNS is async in Deno). */
  prefetch(host: string): Promise<void>;
} {
  const cache = new Map<string, SockAddr | number>();
  return {
    async prefetch(host) {
      if (cache.has(host) || typeof numericHost(host) !== "string") return;
      if (!plausibleHostname(host)) {
        cache.set(host, EAI_NONAME);
        return;
      }
      const fromFile = hostsFileLookup(host);
      if (fromFile.length > 0) {
        cache.set(host, fromFile[0]);
        return;
      }
      const dns = await dnsLookup(host);
      cache.set(host, typeof dns === "number" ? dns : dns[0]);
    },
    getaddrinfo(host, service) {
      const port = resolveService(service);
      if (port === null) return { ok: false, code: EAI_SERVICE, errno: 0 };
      if (host === null) {
        return { ok: true, addr: { family: 6, addr: new Uint8Array(16), port, scopeId: 0 } };
      }
      let found = numericHost(host);
      if (found === "name") found = cache.get(host) ?? EAI_AGAIN;
      if (typeof found === "number") return { ok: false, code: found, errno: 0 };
      return { ok: true, addr: { ...found, addr: found.addr.slice(), port } };
    },
    ifIndexToName: sysfsIndexToName,
  };
}

/** The resolver `wg` commands use: glibc through FFI when allowed, else the TypeScript one. */
export function defaultResolver(): Resolver {
  return libcResolver() ?? fallbackResolver();
}

/**
 * numericEndpoint() answers getaddrinfo without a resolver for the common
 * case, a numeric host without scope and a decimal port, exactly as glibc
 * would (the rules are the ones the fallback resolver implements, which the
 * tests check against glibc); null for anything else.
 */
export function numericEndpoint(host: string, service: string): GaiResult | null {
  if (host.includes("%") || !/^[0-9]{1,9}$/.test(service)) return null;
  const found = numericHost(host);
  if (typeof found !== "object") return null;
  return { ok: true, addr: { ...found, port: Number(service) & 0xffff } };
}

/**
 * resolveHost() runs getaddrinfo for an endpoint host, first letting a
 * fallback resolver look the name up asynchronously.
 */
export async function resolveHost(
  resolver: Resolver,
  host: string,
  service: string,
): Promise<GaiResult> {
  const fast = numericEndpoint(host, service);
  if (fast) return fast;
  const r = resolver as Partial<ReturnType<typeof fallbackResolver>>;
  if (typeof r.prefetch === "function") await r.prefetch(host);
  return resolver.getaddrinfo(host, service);
}

/**
 * formatSockAddr() is what `wg` prints for an endpoint: getnameinfo with
 * NI_NUMERICHOST|NI_NUMERICSERV, then `[host]:port` for IPv6 or `host:port`.
 * A link-local scope prints as `%<ifname>` when the interface exists here.
 */
export function formatSockAddr(sa: SockAddr, resolver: Resolver): string {
  if (sa.family === 4) return `${inetNtop4(sa.addr)}:${sa.port}`;
  let host = inetNtop6(sa.addr);
  if (sa.scopeId !== 0) {
    let scope: string | null = null;
    if (isLinkLocalScope(sa.addr)) scope = resolver.ifIndexToName(sa.scopeId);
    host += `%${scope ?? String(sa.scopeId >>> 0)}`;
  }
  return `[${host}]:${sa.port}`;
}
