// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * DNS messages for a stub resolver (RFC 1035 §4): {@link buildQuery} writes
 * a recursive query for one A or AAAA question, {@link parseResponse} reads
 * the addresses of the answer, following CNAME chains and compression
 * pointers. Pure, no I/O.
 *
 * Answers are hostile input. Every read is bounds-checked; a compression
 * pointer must point strictly before the previous jump target (so a chain
 * of pointers always ends) and a name may not exceed 255 octets; label
 * types other than plain and pointer are rejected; a truncated answer (TC)
 * is an error, as this resolver does not fall back to TCP. Each failure is
 * a {@link DnsError} whose `code` says what to do next: `mismatch` (not the
 * answer to our query: keep waiting), `servfail`/`refused`/`malformed`/
 * `truncated` (ask another server), `nxdomain` (the name does not exist).
 */
import { formatIPv4, formatIPv6 } from "../ip.ts";

export const TYPE_A = 1;
export const TYPE_CNAME = 5;
export const TYPE_AAAA = 28;
export const CLASS_IN = 1;

export const RCODE_NOERROR = 0;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_REFUSED = 5;

/** Longest name on the wire, octets (RFC 1035 §2.3.4). */
export const MAX_NAME = 255;
/** Longest label, octets. */
export const MAX_LABEL = 63;
/** CNAMEs followed from the question name at most. */
export const MAX_CNAME_CHAIN = 8;
/** Addresses kept from one answer at most. */
export const MAX_ADDRESSES = 32;

const HEADER = 12;

/** Why a name could not be resolved; see the module doc for the codes. */
export type DnsErrorCode =
  | "name"
  | "mismatch"
  | "malformed"
  | "truncated"
  | "servfail"
  | "refused"
  | "nxdomain"
  | "timeout"
  | "no-server"
  | "busy";

/** A resolution failure; `code` classifies it. */
export class DnsError extends Error {
  readonly code: DnsErrorCode;
  constructor(code: DnsErrorCode, message: string) {
    super(message);
    this.name = "DnsError";
    this.code = code;
  }
}

/**
 * The wire form of `name` (a trailing dot is allowed): labels of 1–63
 * printable ASCII octets other than a backslash, 255 octets in all. Non-ASCII names must be
 * given in their A-label (punycode) form. Throws DnsError "name".
 */
export function encodeName(name: string): Uint8Array {
  const text = name.endsWith(".") ? name.slice(0, -1) : name;
  if (text === "") throw new DnsError("name", "Empty DNS name");
  const labels = text.split(".");
  const out = new Uint8Array(text.length + 2);
  let at = 0;
  for (const l of labels) {
    if (l.length === 0 || l.length > MAX_LABEL) {
      throw new DnsError("name", `Invalid DNS name "${name}": labels are 1-63 characters`);
    }
    out[at++] = l.length;
    for (let i = 0; i < l.length; i++) {
      const c = l.charCodeAt(i);
      if (c <= 0x20 || c >= 0x7f || c === 0x5c) {
        throw new DnsError("name", `Invalid DNS name "${name}": only printable ASCII, no \\`);
      }
      out[at++] = c;
    }
  }
  out[at++] = 0;
  if (at > MAX_NAME) throw new DnsError("name", `DNS name too long: ${name}`);
  return out;
}

/** A recursive (RD) query with ID `id` for `qtype` records of `name`. */
export function buildQuery(id: number, name: string, qtype: number): Uint8Array {
  const qname = encodeName(name);
  const out = new Uint8Array(HEADER + qname.length + 4);
  out[0] = (id >> 8) & 0xff;
  out[1] = id & 0xff;
  out[2] = 0x01; // RD
  out[5] = 1; // QDCOUNT
  out.set(qname, HEADER);
  const q = HEADER + qname.length;
  out[q] = qtype >> 8;
  out[q + 1] = qtype & 0xff;
  out[q + 3] = CLASS_IN;
  return out;
}

function malformed(what: string): DnsError {
  return new DnsError("malformed", `Malformed DNS answer: ${what}`);
}

/**
 * Reads the (possibly compressed) name at `off`: its text, lower-cased,
 * with `.` and octets outside printable ASCII inside a label written as
 * `\DDD` so that they cannot pass for label boundaries, and the offset
 * after it in the message. Throws DnsError "malformed".
 */
export function readName(msg: Uint8Array, off: number): { name: string; next: number } {
  let at = off;
  let next = -1;
  let limit = off; // every jump must go strictly before the previous one
  let octets = 0;
  const parts: string[] = [];
  for (;;) {
    if (at >= msg.length) throw malformed("name runs past the end");
    const len = msg[at];
    if ((len & 0xc0) === 0xc0) {
      if (at + 1 >= msg.length) throw malformed("name runs past the end");
      const target = ((len & 0x3f) << 8) | msg[at + 1];
      if (next < 0) next = at + 2;
      if (target >= limit) throw malformed("compression pointer does not point backwards");
      limit = target;
      at = target;
      continue;
    }
    if ((len & 0xc0) !== 0) throw malformed(`label type 0x${(len & 0xc0).toString(16)}`);
    octets += len + 1;
    if (octets > MAX_NAME) throw malformed("name longer than 255 octets");
    if (len === 0) {
      if (next < 0) next = at + 1;
      return { name: parts.join("."), next };
    }
    if (at + 1 + len > msg.length) throw malformed("label runs past the end");
    let label = "";
    for (let i = at + 1; i <= at + len; i++) {
      let c = msg[i];
      if (c >= 0x41 && c <= 0x5a) c += 0x20; // case-insensitive (RFC 4343)
      label += c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c
        ? String.fromCharCode(c)
        : `\\${c.toString().padStart(3, "0")}`;
    }
    parts.push(label);
    at += 1 + len;
  }
}

/** `name` as {@link readName} spells it: lower case, no trailing dot. */
export function canonicalName(name: string): string {
  return (name.endsWith(".") ? name.slice(0, -1) : name).toLowerCase();
}

/** What {@link parseResponse} found. */
export interface DnsAnswer {
  /** Addresses of the asked type, in answer order (at most {@link MAX_ADDRESSES}). */
  addresses: string[];
  /** Smallest TTL of the records used, seconds (0 when there are none). */
  ttl: number;
}

/**
 * Reads the response `msg` to the query `id`/`name`/`qtype`. A response
 * with another ID, no QR bit, or another question is a "mismatch". An
 * empty `addresses` means the name exists without records of that type.
 */
export function parseResponse(
  msg: Uint8Array,
  query: { id: number; name: string; qtype: number },
): DnsAnswer {
  if (msg.length < HEADER) throw new DnsError("mismatch", "DNS message shorter than a header");
  const id = (msg[0] << 8) | msg[1];
  const flags = (msg[2] << 8) | msg[3];
  const qd = (msg[4] << 8) | msg[5];
  const an = (msg[6] << 8) | msg[7];
  if (id !== query.id || (flags & 0x8000) === 0 || qd !== 1) {
    throw new DnsError("mismatch", "Not an answer to this query");
  }
  const q = readName(msg, HEADER);
  if (q.next + 4 > msg.length) throw malformed("question runs past the end");
  const qtype = (msg[q.next] << 8) | msg[q.next + 1];
  const qclass = (msg[q.next + 2] << 8) | msg[q.next + 3];
  const want = canonicalName(query.name);
  if (q.name !== want || qtype !== query.qtype || qclass !== CLASS_IN) {
    throw new DnsError("mismatch", "Answer is for another question");
  }
  if ((flags & 0x7800) !== 0) throw malformed("opcode is not QUERY");
  if (flags & 0x0200) {
    throw new DnsError("truncated", `DNS answer for ${query.name} truncated (TC); TCP is not used`);
  }
  const rcode = flags & 0xf;
  if (rcode === RCODE_NXDOMAIN) throw new DnsError("nxdomain", `${query.name}: no such name`);
  if (rcode === RCODE_REFUSED) throw new DnsError("refused", `${query.name}: query refused`);
  if (rcode !== RCODE_NOERROR) {
    throw new DnsError("servfail", `${query.name}: server failure (rcode ${rcode})`);
  }

  // The answer section: read every record, bounds-checked.
  interface Rr {
    owner: string;
    type: number;
    ttl: number;
    rdata: number;
    rdlen: number;
  }
  const records: Rr[] = [];
  let at = q.next + 4;
  for (let i = 0; i < an; i++) {
    const owner = readName(msg, at);
    at = owner.next;
    if (at + 10 > msg.length) throw malformed("record runs past the end");
    const type = (msg[at] << 8) | msg[at + 1];
    const cls = (msg[at + 2] << 8) | msg[at + 3];
    const rawTtl = (msg[at + 4] << 24) | (msg[at + 5] << 16) | (msg[at + 6] << 8) | msg[at + 7];
    // A TTL with the top bit set counts as 0 (RFC 2181 §8).
    const ttl = rawTtl < 0 ? 0 : rawTtl;
    const rdlen = (msg[at + 8] << 8) | msg[at + 9];
    at += 10;
    if (at + rdlen > msg.length) throw malformed("record data runs past the end");
    if (cls === CLASS_IN) records.push({ owner: owner.name, type, ttl, rdata: at, rdlen });
    at += rdlen;
  }

  // Follow CNAMEs from the question name (RFC 1034 §3.6.2), a bounded chain.
  let name = want;
  let ttl = Infinity;
  for (let hops = 0;; hops++) {
    const alias = records.find((r) => r.type === TYPE_CNAME && r.owner === name);
    if (!alias) break;
    if (hops >= MAX_CNAME_CHAIN) throw malformed(`CNAME chain longer than ${MAX_CNAME_CHAIN}`);
    const target = readName(msg, alias.rdata);
    if (target.next > alias.rdata + alias.rdlen) throw malformed("CNAME runs past its record");
    name = target.name;
    ttl = Math.min(ttl, alias.ttl);
  }
  const size = query.qtype === TYPE_A ? 4 : 16;
  const addresses: string[] = [];
  for (const r of records) {
    if (r.type !== query.qtype || r.owner !== name) continue;
    if (r.rdlen !== size) {
      throw malformed(`${query.qtype === TYPE_A ? "A" : "AAAA"} of ${r.rdlen} bytes`);
    }
    const a = msg.subarray(r.rdata, r.rdata + size);
    const text = size === 4 ? formatIPv4(a) : formatIPv6(a);
    ttl = Math.min(ttl, r.ttl);
    if (!addresses.includes(text) && addresses.length < MAX_ADDRESSES) addresses.push(text);
  }
  return { addresses, ttl: addresses.length > 0 ? ttl : 0 };
}
