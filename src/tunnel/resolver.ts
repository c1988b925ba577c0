// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link DnsResolver}: a stub resolver that asks the `[Interface] DNS`
 * servers over UDP through the tunnel (messages from ./dns.ts).
 *
 * - IP literals resolve to themselves, without a query.
 * - Special-use names are refused without a query: `localhost` and
 *   `*.localhost` (RFC 6761 §6.3 says they are loopback, and the tunnel has
 *   no loopback: connecting to 127.0.0.1 "through the tunnel" would send the
 *   packet to the peer; an application that wants the local host must not
 *   use the proxy for it), `invalid`/`*.invalid` (RFC 6761 §6.4) and
 *   `*.onion` (RFC 7686 §2: must not reach DNS). They fail with DnsError
 *   "name".
 * - Search domains as in resolv.conf with `ndots:1`: a name without a dot
 *   is tried with each search domain first, then alone; a name with a dot
 *   alone first, then with each search domain; a name ending in a dot only
 *   as given.
 * - Each query has a fresh random ID and a fresh random source port
 *   (RFC 5452 §9); only a response from the server's address and port 53
 *   that matches ID and question is taken, anything else is ignored.
 * - Timeout and retry: each server is asked in turn, waiting `timeoutMs`
 *   for each; a timeout, SERVFAIL, REFUSED, truncated or malformed answer
 *   moves on to the next server (retrying the same question elsewhere), and
 *   the whole list is walked `attempts` times. NXDOMAIN is final.
 * - A and AAAA are asked in parallel, only for the families the tunnel has
 *   an address of, and the addresses come back in the tunnel's family order.
 * - A cache of at most `cacheSize` names keeps answers for their TTL
 *   (capped at `maxTtlSeconds`); the oldest entry goes when it is full.
 *   Negative answers are not cached.
 * - At most `maxLookups` names are resolved at once; more fail with
 *   DnsError "busy" rather than queueing without bound. Concurrent lookups
 *   of the same name share one set of queries.
 */
import type { Clock, Rng } from "../clock.ts";
import { parseIPv4, parseIPv6 } from "../ip.ts";
import { formatAddress } from "./conn.ts";
import type { TunnelDatagramConn } from "./datagram.ts";
import {
  buildQuery,
  canonicalName,
  DnsError,
  encodeName,
  parseResponse,
  TYPE_A,
  TYPE_AAAA,
} from "./dns.ts";

/** Tuning of a {@link DnsResolver}. */
export interface DnsResolverConfig {
  /** Wait for each server's answer, ms (default 2000). */
  timeoutMs?: number;
  /** Walks over the server list (default 2). */
  attempts?: number;
  /** Names cached at most (default 256). */
  cacheSize?: number;
  /** Longest time an answer is cached, seconds (default 3600). */
  maxTtlSeconds?: number;
  /** Names resolved at once at most (default 64). */
  maxLookups?: number;
}

/** What a {@link DnsResolver} works with. */
export interface DnsResolverOptions extends DnsResolverConfig {
  /** Server IP addresses, in order. */
  servers: string[];
  /** Search domains. */
  search?: string[];
  /** Address families to ask for, in order of preference. */
  families: (4 | 6)[];
  clock: Clock;
  rng: Rng;
  /** Opens a UDP socket on a random port of the tunnel. */
  open: () => TunnelDatagramConn;
}

const DNS_PORT = 53;

/** The IP address in `text` (brackets allowed), canonical; null for a name. */
export function ipLiteral(text: string): string | null {
  const host = text.replace(/^\[(.*)\]$/, "$1");
  const a = parseIPv4(host) ?? parseIPv6(host);
  return a ? formatAddress(a) : null;
}

/** `name` is one the resolver refuses to send to DNS (see the module doc). */
export function isSpecialUseName(name: string): boolean {
  const n = canonicalName(name);
  return n === "localhost" || n.endsWith(".localhost") || n === "invalid" ||
    n.endsWith(".invalid") || n === "onion" || n.endsWith(".onion");
}

interface CacheEntry {
  addresses: string[];
  expires: number;
}

/** A stub resolver through the tunnel; see the module doc. */
export class DnsResolver {
  readonly #servers: string[];
  readonly #search: string[];
  readonly #families: (4 | 6)[];
  readonly #clock: Clock;
  readonly #rng: Rng;
  readonly #open: () => TunnelDatagramConn;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #cacheSize: number;
  readonly #maxTtl: number;
  readonly #maxLookups: number;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<string[]>>();
  /** Queries sent. */
  queries = 0;
  /** Answers served from the cache. */
  cacheHits = 0;

  constructor(opts: DnsResolverOptions) {
    this.#servers = opts.servers.map((s) => ipLiteral(s) ?? s);
    this.#search = (opts.search ?? []).map(canonicalName).filter((s) => s !== "");
    this.#families = opts.families;
    this.#clock = opts.clock;
    this.#rng = opts.rng;
    this.#open = opts.open;
    this.#timeoutMs = opts.timeoutMs ?? 2000;
    this.#attempts = Math.max(1, opts.attempts ?? 2);
    this.#cacheSize = opts.cacheSize ?? 256;
    this.#maxTtl = opts.maxTtlSeconds ?? 3600;
    this.#maxLookups = opts.maxLookups ?? 64;
  }

  /** Names in the cache now. */
  get cached(): number {
    return this.#cache.size;
  }

  /**
   * The addresses of `name` (at least one), or a {@link DnsError}: "name"
   * for an invalid or special-use name, "nxdomain", "timeout", ...
   */
  async resolve(name: string): Promise<string[]> {
    const literal = ipLiteral(name);
    if (literal) return [literal];
    if (isSpecialUseName(name)) {
      throw new DnsError(
        "name",
        `${name} is a special-use name (RFC 6761, RFC 7686), not resolved through the tunnel`,
      );
    }
    encodeName(name); // throws for an invalid name
    if (this.#servers.length === 0) {
      throw new DnsError("no-server", `Cannot resolve ${name}: no DNS server in [Interface] DNS`);
    }
    let candidates: string[];
    const base = canonicalName(name);
    if (name.endsWith(".")) candidates = [base];
    else {
      const searched = this.#search.map((d) => `${base}.${d}`);
      candidates = base.includes(".") ? [base, ...searched] : [...searched, base];
    }
    let firstError: unknown = null;
    for (const fqdn of candidates) {
      try {
        encodeName(fqdn);
      } catch {
        continue; // too long with this search domain
      }
      try {
        const found = await this.#lookup(fqdn);
        if (found.length > 0) return found;
      } catch (err) {
        // A transport failure is kept over a later NXDOMAIN: it says more.
        if (firstError === null || (firstError as DnsError).code === "nxdomain") firstError = err;
      }
    }
    throw firstError ?? new DnsError("nxdomain", `${name}: no address`);
  }

  #lookup(fqdn: string): Promise<string[]> {
    const hit = this.#cache.get(fqdn);
    if (hit) {
      if (hit.expires > this.#clock.now()) {
        this.cacheHits++;
        return Promise.resolve(hit.addresses.slice());
      }
      this.#cache.delete(fqdn);
    }
    const pending = this.#inflight.get(fqdn);
    if (pending) return pending.then((a) => a.slice());
    if (this.#inflight.size >= this.#maxLookups) {
      return Promise.reject(new DnsError("busy", `Too many DNS lookups at once (${fqdn})`));
    }
    const p = this.#lookupFamilies(fqdn).finally(() => this.#inflight.delete(fqdn));
    this.#inflight.set(fqdn, p);
    return p.then((a) => a.slice());
  }

  async #lookupFamilies(fqdn: string): Promise<string[]> {
    const results = await Promise.allSettled(
      this.#families.map((f) => this.#query(fqdn, f === 4 ? TYPE_A : TYPE_AAAA)),
    );
    const addresses: string[] = [];
    let ttl = Infinity;
    let error: DnsError | null = null;
    for (const r of results) {
      if (r.status === "fulfilled") {
        addresses.push(...r.value.addresses);
        if (r.value.addresses.length > 0) ttl = Math.min(ttl, r.value.ttl);
      } else if (error === null || (r.reason as DnsError).code === "nxdomain") {
        error = r.reason instanceof DnsError
          ? r.reason
          : new DnsError("servfail", `${fqdn}: ${(r.reason as Error).message}`);
      }
    }
    if (addresses.length === 0 && error) throw error;
    if (addresses.length > 0 && ttl > 0 && this.#cacheSize > 0) {
      if (this.#cache.size >= this.#cacheSize) {
        this.#cache.delete(this.#cache.keys().next().value!);
      }
      this.#cache.set(fqdn, {
        addresses: addresses.slice(),
        expires: this.#clock.now() + Math.min(ttl, this.#maxTtl) * 1000,
      });
    }
    return addresses;
  }

  /** Asks the servers in turn (see the module doc) for `qtype` records of `fqdn`. */
  async #query(fqdn: string, qtype: number): Promise<{ addresses: string[]; ttl: number }> {
    let last: DnsError = new DnsError("timeout", `${fqdn}: no answer`);
    for (let round = 0; round < this.#attempts; round++) {
      for (const server of this.#servers) {
        try {
          return await this.#ask(server, fqdn, qtype);
        } catch (err) {
          if (err instanceof DnsError && err.code === "nxdomain") throw err;
          last = err instanceof DnsError
            ? err
            : new DnsError("servfail", `${fqdn} via ${server}: ${(err as Error).message}`);
        }
      }
    }
    throw last;
  }

  /** One question to one server: the answer, or the error that sends us to the next server. */
  async #ask(server: string, fqdn: string, qtype: number): Promise<
    { addresses: string[]; ttl: number }
  > {
    const idBytes = new Uint8Array(2);
    this.#rng(idBytes);
    const id = (idBytes[0] << 8) | idBytes[1];
    const sock = this.#open();
    try {
      sock.sendSync(buildQuery(id, fqdn, qtype), { hostname: server, port: DNS_PORT });
      this.queries++;
      const deadline = this.#clock.now() + this.#timeoutMs;
      for (;;) {
        const left = deadline - this.#clock.now();
        if (left <= 0) break;
        let data: Uint8Array, from: Deno.NetAddr;
        try {
          [data, from] = await sock.receive({ timeoutMs: left });
        } catch {
          break;
        }
        if (from.hostname !== server || from.port !== DNS_PORT) continue;
        try {
          return parseResponse(data, { id, name: fqdn, qtype });
        } catch (err) {
          if (err instanceof DnsError && err.code === "mismatch") continue;
          throw err;
        }
      }
      throw new DnsError("timeout", `${fqdn}: no answer from ${server} in ${this.#timeoutMs} ms`);
    } finally {
      sock.close();
    }
  }
}
