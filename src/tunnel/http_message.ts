// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * HTTP/1.x messages as a forward proxy sees them (RFC 9112), all pure:
 * {@link readRequestHead} and {@link readResponseHead} parse a head at the
 * start of a buffer, bounded in bytes and fields; {@link proxyTarget} takes
 * the target of a CONNECT (authority-form) or of an absolute-form
 * `http://` request; {@link requestBodyFraming} decides how long a request
 * body is (Content-Length or chunked, §6), and {@link ChunkedScanner} finds
 * the end of a chunked body without decoding it; {@link originRequestHead}
 * and {@link clientResponseHead} rewrite heads for the next hop, without the
 * hop-by-hop fields (RFC 9110 §7.6.1) and with `Connection: close`.
 *
 * Heads are read as Latin-1 (one character per byte), so field values pass
 * through byte for byte.
 */

/** The most bytes a head may take, request line and fields included. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** The most header fields a head may have. */
export const MAX_HEADER_FIELDS = 100;
/** The most bytes of a chunk-size line or trailer line. */
export const MAX_CHUNK_LINE_BYTES = 4096;

/** A header field: the name as received, and the value without surrounding blanks. */
export type HeaderField = [name: string, value: string];

/** A request line and its fields. */
export interface RequestHead {
  method: string;
  target: string;
  /** The minor version: HTTP/1.0 or HTTP/1.1. */
  minor: 0 | 1;
  fields: HeaderField[];
}

/** A status line and its fields. */
export interface ResponseHead {
  status: number;
  reason: string;
  fields: HeaderField[];
}

/** A head that cannot be served: the status to answer and why. */
export interface HeadError {
  status: 400 | 431 | 505;
  message: string;
}

/** A parsed head and the bytes it took, or why it is refused. */
export type HeadResult<H> = { head: H; length: number } | { error: HeadError };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "upgrade",
];
/** Fields that frame the body or name the target: never dropped because `Connection` lists them. */
const KEPT = ["content-length", "transfer-encoding", "host"];

/** True when `s` has a control character other than HTAB (field values, RFC 9110 §5.5). */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/** True when `s` has a byte a request target may not: controls, space, non-ASCII. */
function hasNonVisible(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return true;
  }
  return false;
}

/** The text of `b` as Latin-1: one character per byte. */
export function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 4096) {
    s += String.fromCharCode(...b.subarray(i, i + 4096));
  }
  return s;
}

/** The bytes of Latin-1 text (characters above U+00FF are not expected and become "?"). */
export function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out[i] = c > 0xff ? 0x3f : c;
  }
  return out;
}

/**
 * The length of the head at the start of `b` (through the empty line), or
 * -1 when it is not complete. Lines may end in CRLF or a bare LF (§2.2).
 */
function headEnd(b: Uint8Array): number {
  for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) {
    if (b[i + 1] === 10) return i + 2;
    if (b[i + 1] === 13 && b[i + 2] === 10) return i + 3;
  }
  return -1;
}

/** The head's lines (without line ends), or an error text. */
function headLines(
  b: Uint8Array,
  max: number,
): { lines: string[]; length: number } | null | string {
  const end = headEnd(b.subarray(0, max));
  if (end < 0) return b.length >= max ? "too large" : null;
  const lines = latin1(b.subarray(0, end)).split("\n").map((l) => l.replace(/\r$/, ""));
  lines.length -= 2; // the empty line and what follows its LF
  return { lines, length: end };
}

/** Fields from header lines; an error text for a malformed one. */
function parseFields(lines: string[]): HeaderField[] | string {
  if (lines.length > MAX_HEADER_FIELDS) return "too many header fields";
  const fields: HeaderField[] = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line)) return "obsolete line folding";
    const colon = line.indexOf(":");
    if (colon <= 0) return "malformed header field";
    const name = line.slice(0, colon);
    // §5.1: no whitespace between the name and the colon.
    if (!TOKEN.test(name)) return `malformed header field name "${name.slice(0, 40)}"`;
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (hasControl(value)) return `control character in ${name}`;
    fields.push([name, value]);
  }
  return fields;
}

/**
 * Parses the request head at the start of `b`: null while more bytes are
 * needed, else the head or the status to refuse it with (431 past `max`
 * bytes or {@link MAX_HEADER_FIELDS} fields, 505 for a version other than
 * 1.x, 400 for anything malformed). Empty lines before the request line are
 * skipped (§2.2).
 */
export function readRequestHead(
  b: Uint8Array,
  max = MAX_HEAD_BYTES,
): HeadResult<RequestHead> | null {
  let skip = 0;
  while (b[skip] === 10 || (b[skip] === 13 && b[skip + 1] === 10)) skip += b[skip] === 10 ? 1 : 2;
  if (skip >= max) {
    return { error: { status: 431, message: `request head larger than ${max} bytes` } };
  }
  const got = headLines(b.subarray(skip), max - skip);
  if (got === null) return null;
  if (typeof got === "string") {
    return { error: { status: 431, message: `request head larger than ${max} bytes` } };
  }
  const m = /^([^ ]+) ([^ ]+) HTTP\/(\d)\.(\d)$/.exec(got.lines[0]);
  if (!m || !TOKEN.test(m[1]) || hasNonVisible(m[2])) {
    return { error: { status: 400, message: "malformed request line" } };
  }
  if (m[3] !== "1" || (m[4] !== "0" && m[4] !== "1")) {
    return { error: { status: 505, message: `HTTP/${m[3]}.${m[4]} is not supported` } };
  }
  const fields = parseFields(got.lines.slice(1));
  if (typeof fields === "string") {
    const status = fields === "too many header fields" ? 431 : 400;
    return { error: { status, message: fields } };
  }
  return {
    head: { method: m[1], target: m[2], minor: m[4] === "0" ? 0 : 1, fields },
    length: skip + got.length,
  };
}

/**
 * Parses the response head at the start of `b`: null while more bytes are
 * needed, else the head, or an error (its status is meaningless: the proxy
 * answers 502 for an origin's malformed response).
 */
export function readResponseHead(
  b: Uint8Array,
  max = MAX_HEAD_BYTES,
): HeadResult<ResponseHead> | null {
  const got = headLines(b, max);
  if (got === null) return null;
  if (typeof got === "string") {
    return { error: { status: 400, message: `response head larger than ${max} bytes` } };
  }
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(got.lines[0]);
  if (!m || hasControl(got.lines[0])) {
    return { error: { status: 400, message: "malformed status line" } };
  }
  const fields = parseFields(got.lines.slice(1));
  if (typeof fields === "string") return { error: { status: 400, message: fields } };
  return { head: { status: Number(m[1]), reason: m[2] ?? "", fields }, length: got.length };
}

/** The values of every field named `name` (case-insensitive). */
export function fieldValues(fields: readonly HeaderField[], name: string): string[] {
  const lower = name.toLowerCase();
  return fields.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

/** Where a request goes: `host` without brackets, `authority` as for a Host field. */
export interface ProxyTarget {
  kind: "connect" | "forward";
  host: string;
  port: number;
  authority: string;
  /** The origin-form target (path and query) of a forwarded request; "" for CONNECT. */
  path: string;
}

/** `host[:port]` with the host a name, IPv4 or `[IPv6]`; null when malformed. */
function parseAuthority(
  text: string,
  defaultPort: number | null,
): { host: string; port: number } | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+))(?::(\d{1,5}))?$/.exec(text);
  if (!m) return null;
  const port = m[3] === undefined ? defaultPort : Number(m[3]);
  if (port === null || port < 1 || port > 65535) return null;
  return { host: (m[1] ?? m[2]).toLowerCase(), port };
}

/**
 * The target of a proxy request: CONNECT takes `host:port` (§3.2.3), any
 * other method an absolute `http://` URI (§3.2.2; the port defaults to 80,
 * no user info, no fragment). A string says why it is refused (400).
 */
export function proxyTarget(head: RequestHead): ProxyTarget | string {
  if (head.method === "CONNECT") {
    const a = parseAuthority(head.target, null);
    if (!a) return `CONNECT needs host:port, not "${head.target.slice(0, 100)}"`;
    return { kind: "connect", ...a, authority: head.target, path: "" };
  }
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^#]*)$/.exec(head.target);
  if (!m) {
    return head.target.startsWith("/")
      ? "this is a proxy: send an absolute URI (http://host/path) or CONNECT"
      : `malformed request target "${head.target.slice(0, 100)}"`;
  }
  const scheme = m[1].toLowerCase();
  if (scheme !== "http") {
    return `cannot forward ${scheme}: URIs (use CONNECT for https)`;
  }
  const a = parseAuthority(m[2], 80);
  if (!a) return `malformed host in "${head.target.slice(0, 100)}"`;
  const path = m[3] === "" ? "/" : m[3].startsWith("?") ? `/${m[3]}` : m[3];
  return { kind: "forward", ...a, authority: m[2], path };
}

/** How the body of a request ends (RFC 9112 §6.3). */
export type BodyFraming =
  | { kind: "length"; length: number }
  | { kind: "chunked" };

/**
 * The body framing of a request, or a string saying why it is refused
 * (400): Transfer-Encoding together with Content-Length (a smuggling
 * vector, §6.1), Transfer-Encoding in HTTP/1.0 or not ending in `chunked`,
 * or Content-Length values that differ or are not digits. No framing field
 * means no body.
 */
export function requestBodyFraming(head: RequestHead): BodyFraming | string {
  const te = fieldValues(head.fields, "transfer-encoding");
  const cl = fieldValues(head.fields, "content-length");
  if (te.length > 0) {
    if (cl.length > 0) return "both Transfer-Encoding and Content-Length";
    if (head.minor === 0) return "Transfer-Encoding in an HTTP/1.0 request";
    const codings = te.join(",").split(",").map((c) => c.trim().toLowerCase()).filter((c) => c);
    const chunked = codings.filter((c) => c === "chunked").length;
    if (codings.at(-1) !== "chunked" || chunked !== 1) {
      return `Transfer-Encoding must end in one "chunked"`;
    }
    return { kind: "chunked" };
  }
  if (cl.length === 0) return { kind: "length", length: 0 };
  const values = new Set(cl.join(",").split(",").map((v) => v.trim()));
  const [only] = values;
  if (values.size !== 1 || !/^[0-9]{1,15}$/.test(only)) return "invalid Content-Length";
  return { kind: "length", length: Number(only) };
}

const enum ChunkState {
  Size,
  Data,
  DataEnd,
  Trailer,
  Done,
}

/**
 * Finds where a chunked body ends (RFC 9112 §7.1) without decoding it, so
 * the body can be forwarded as it came. {@link feed} returns how many of the
 * given bytes belong to the body; {@link done} is true once the last chunk
 * and the trailer section are through; {@link error} is set (and nothing
 * more is consumed) on a malformed body. Lines must end in CRLF and may not
 * exceed {@link MAX_CHUNK_LINE_BYTES}; a chunk size has at most 12 hex digits.
 */
export class ChunkedScanner {
  error: string | null = null;
  #state = ChunkState.Size;
  #line = "";
  #remaining = 0;

  get done(): boolean {
    return this.#state === ChunkState.Done;
  }

  feed(b: Uint8Array): number {
    let i = 0;
    while (i < b.length && this.error === null && this.#state !== ChunkState.Done) {
      if (this.#state === ChunkState.Data) {
        const n = Math.min(this.#remaining, b.length - i);
        i += n;
        this.#remaining -= n;
        if (this.#remaining === 0) this.#state = ChunkState.DataEnd;
        continue;
      }
      // Size, DataEnd and Trailer read one line.
      const lf = b.indexOf(10, i);
      const end = lf < 0 ? b.length : lf + 1;
      this.#line += latin1(b.subarray(i, end));
      i = end;
      if (this.#line.length > MAX_CHUNK_LINE_BYTES) {
        this.error = "chunk line too long";
        break;
      }
      if (lf < 0) break;
      if (!this.#line.endsWith("\r\n")) {
        this.error = "chunk line not ended by CRLF";
        break;
      }
      const line = this.#line.slice(0, -2);
      this.#line = "";
      this.#onLine(line);
    }
    return this.error === null ? i : 0;
  }

  #onLine(line: string): void {
    if (this.#state === ChunkState.DataEnd) {
      if (line !== "") this.error = "chunk data longer than its size";
      else this.#state = ChunkState.Size;
    } else if (this.#state === ChunkState.Size) {
      // chunk-size [ chunk-ext ]
      const m = /^([0-9A-Fa-f]{1,12})[ \t]*(?:;.*)?$/.exec(line);
      if (!m || hasControl(line)) {
        this.error = "malformed chunk size";
        return;
      }
      this.#remaining = parseInt(m[1], 16);
      this.#state = this.#remaining === 0 ? ChunkState.Trailer : ChunkState.Data;
    } else if (line === "") {
      this.#state = ChunkState.Done;
    } else if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:/.test(line)) {
      this.error = "malformed trailer field";
    }
  }
}

/** Lower-cased names this hop consumes: the standard hop-by-hop fields and those `Connection` lists. */
function hopByHop(fields: readonly HeaderField[]): Set<string> {
  const names = new Set(HOP_BY_HOP);
  for (const v of fieldValues(fields, "connection")) {
    for (const t of v.split(",")) {
      const name = t.trim().toLowerCase();
      if (name && !KEPT.includes(name)) names.add(name);
    }
  }
  return names;
}

function formatFields(fields: readonly HeaderField[]): string {
  return fields.map(([n, v]) => `${n}: ${v}\r\n`).join("");
}

/**
 * The head to send to the origin: origin-form request line in the client's
 * version, `Host` from the target (§3.2.2: a proxy replaces the client's),
 * the client's end-to-end fields (framing included: the body is forwarded
 * as it came), `Via` and `Connection: close`. `Proxy-Authorization` is
 * hop-by-hop and never forwarded.
 */
export function originRequestHead(head: RequestHead, target: ProxyTarget): Uint8Array {
  const drop = hopByHop(head.fields);
  drop.add("host");
  const kept = head.fields.filter(([n]) => !drop.has(n.toLowerCase()));
  return latin1Bytes(
    `${head.method} ${target.path} HTTP/1.${head.minor}\r\nHost: ${target.authority}\r\n` +
      formatFields(kept) + `Via: 1.${head.minor} gotatun\r\nConnection: close\r\n\r\n`,
  );
}

/**
 * The head to send to the client for the origin's response: the status,
 * the end-to-end fields (framing included: the body is forwarded as it
 * came until the origin closes), `Via` and `Connection: close`.
 */
export function clientResponseHead(head: ResponseHead): Uint8Array {
  const drop = hopByHop(head.fields);
  const kept = head.fields.filter(([n]) => !drop.has(n.toLowerCase()));
  const reason = head.reason === "" ? "" : ` ${head.reason}`;
  return latin1Bytes(
    `HTTP/1.1 ${head.status}${reason}\r\n` + formatFields(kept) +
      "Via: 1.1 gotatun\r\nConnection: close\r\n\r\n",
  );
}

const REASONS: Record<number, string> = {
  200: "Connection established",
  400: "Bad Request",
  403: "Forbidden",
  407: "Proxy Authentication Required",
  431: "Request Header Fields Too Large",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/**
 * A complete response of the proxy itself: `status` with a one-line
 * text/plain body `message` (none for 200), `extra` fields, and
 * `Connection: close` except for a CONNECT's 200.
 */
export function proxyResponse(
  status: number,
  message: string,
  extra: readonly HeaderField[] = [],
): Uint8Array {
  const line = `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\n`;
  if (status === 200) return latin1Bytes(line + formatFields(extra) + "\r\n");
  const body = new TextEncoder().encode(`${message}\n`);
  const head = latin1Bytes(
    line + formatFields(extra) +
      `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n` +
      "Connection: close\r\n\r\n",
  );
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}
