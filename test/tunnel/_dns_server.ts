// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * DNS answers for tests, written out field by field (RFC 1035 §4.1), and a
 * tiny authoritative server on a tunnel's UDP port 53.
 */
import { parseIPv4, parseIPv6 } from "../../src/ip.ts";
import { encodeName, readName } from "../../src/tunnel/dns.ts";
import type { Tunnel } from "../../src/tunnel/tunnel.ts";

/** One resource record; `data` is the raw RDATA, or an address/name to encode. */
export interface TestRecord {
  name: string | Uint8Array;
  type: number;
  ttl?: number;
  data: Uint8Array | string;
}

function u16(n: number): number[] {
  return [(n >> 8) & 255, n & 255];
}

/** RDATA for `type` from text: an address for A/AAAA, a name for CNAME. */
function rdata(type: number, data: Uint8Array | string): Uint8Array {
  if (typeof data !== "string") return data;
  if (type === 1) return parseIPv4(data)!;
  if (type === 28) return parseIPv6(data)!;
  return encodeName(data);
}

/** A response to `query` (its question copied) with `flags` low bits and these answers. */
export function answer(
  query: Uint8Array,
  records: TestRecord[],
  opts: { rcode?: number; tc?: boolean; id?: number } = {},
): Uint8Array {
  const q = readName(query, 12);
  const question = query.subarray(12, q.next + 4);
  const id = opts.id ?? ((query[0] << 8) | query[1]);
  const out: number[] = [
    ...u16(id),
    0x81 | (opts.tc ? 0x02 : 0),
    0x80 | (opts.rcode ?? 0),
    ...u16(1),
    ...u16(records.length),
    0,
    0,
    0,
    0,
    ...question,
  ];
  for (const r of records) {
    const owner = typeof r.name === "string" ? encodeName(r.name) : r.name;
    const d = rdata(r.type, r.data);
    out.push(...owner, ...u16(r.type), ...u16(1));
    const ttl = r.ttl ?? 300;
    out.push((ttl >>> 24) & 255, (ttl >>> 16) & 255, (ttl >>> 8) & 255, ttl & 255);
    out.push(...u16(d.length), ...d);
  }
  return new Uint8Array(out);
}

/** A pointer to the question name (offset 12). */
export const PTR_QNAME = new Uint8Array([0xc0, 12]);

/**
 * Serves DNS on `tunnel`'s UDP port 53: `zone(name, qtype, query)` returns
 * the response to send (or null for silence). Resolves `stop()` when closed.
 */
export function serveDns(
  tunnel: Tunnel,
  zone: (name: string, qtype: number, query: Uint8Array) => Uint8Array | null,
): { queries: string[]; stop(): Promise<void> } {
  const sock = tunnel.datagram({ port: 53 });
  const queries: string[] = [];
  const done = (async () => {
    for await (const [q, from] of sock) {
      const { name, next } = readName(q, 12);
      const qtype = (q[next] << 8) | q[next + 1];
      queries.push(`${name}/${qtype}`);
      const r = zone(name, qtype, q);
      if (r) await sock.send(r, from);
    }
  })();
  return {
    queries,
    async stop() {
      sock.close();
      await done;
    },
  };
}
