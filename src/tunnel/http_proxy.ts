// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * An HTTP/1.1 forward proxy whose connections go through a tunnel (any
 * {@link Dialer}, in practice a `Tunnel`). One request per client
 * connection:
 *
 * - `CONNECT host:port` opens a TCP connection through the tunnel, answers
 *   `200 Connection established` and then copies bytes both ways (HTTPS,
 *   or anything else).
 * - An absolute-form request (`GET http://10.0.0.2:8000/path HTTP/1.1`) is
 *   sent to the origin in origin-form with `Host` from the URI, without the
 *   hop-by-hop fields (`Proxy-Authorization` among them), with
 *   `Via: 1.x gotatun` and `Connection: close`. The request body (by
 *   Content-Length, or chunked up to its last chunk) is forwarded as it
 *   came; the response head is rewritten the same way and its body copied
 *   as it comes until the origin closes, then the client connection is
 *   closed. Bytes a client sends after its request body are ignored.
 *
 * Refusals: 400 for a malformed head, body framing (both Content-Length and
 * Transfer-Encoding, say) or target (origin-form, `https://` without
 * CONNECT, a bad port); 431 for a head over {@link MAX_HEAD_BYTES} or with
 * too many fields; 505 for a version other than HTTP/1.x; 407 with
 * `Proxy-Authenticate: Basic` when {@link HttpProxyOptions.auth} is set and
 * the request has no matching `Proxy-Authorization: Basic`; 502 when the
 * tunnel connection fails, a name does not resolve (through the tunnel's
 * DNS, as `Tunnel.connect` does) or the origin's response is malformed; 504
 * when connecting, resolving or the response head takes too long; 503 beyond
 * {@link HttpProxyOptions.maxClients}. Parsing is in `http_message.ts`.
 */
import { type TunnelConn, TunnelError } from "./conn.ts";
import { DnsError } from "./dns.ts";
import {
  type BodyFraming,
  ChunkedScanner,
  clientResponseHead,
  fieldValues,
  latin1Bytes,
  MAX_HEAD_BYTES,
  originRequestHead,
  proxyResponse,
  type ProxyTarget,
  proxyTarget,
  readRequestHead,
  readResponseHead,
  requestBodyFraming,
  type RequestHead,
} from "./http_message.ts";
import { parseBasicCredentials, type ProxyCredentials } from "./proxy_auth.ts";
import { acceptClients, closeQuietly, relayTcp, writeFull } from "./relay.ts";

/** What the proxy connects through: `Tunnel.connect`. */
export interface Dialer {
  connect(opts: { hostname: string; port: number; timeoutMs?: number }): Promise<TunnelConn>;
}

/** Options for {@link serveHttpProxy}. */
export interface HttpProxyOptions {
  /** When given, requests need `Proxy-Authorization: Basic` for one of these users. */
  auth?: ProxyCredentials;
  /** Time for the client to send its request head, ms (default 30 000). */
  headTimeoutMs?: number;
  /** Connect timeout through the tunnel, ms (default 30 000). */
  connectTimeoutMs?: number;
  /** Time for the origin to send its response head, ms (default 60 000). */
  responseTimeoutMs?: number;
  /** Clients served at once; more are answered 503 (default 256). */
  maxClients?: number;
  /** Called with each failure to report (bad client, connect error). */
  onError?: (message: string) => void;
}

/** The realm in `Proxy-Authenticate`. */
const REALM = "gotatun";
/** Largest response head taken from an origin. */
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;

/** The status for a failed connect or name lookup: 504 for a timeout, else 502. */
export function statusForError(err: unknown): 502 | 504 {
  const timeout = (err instanceof TunnelError || err instanceof DnsError) && err.code === "timeout";
  return timeout ? 504 : 502;
}

/** Reads the request head, at most {@link MAX_HEAD_BYTES}; null when the client left or stalled. */
async function readHead(
  conn: Deno.Conn,
  timeoutMs: number,
): Promise<{ head: ReturnType<typeof readRequestHead>; rest: Uint8Array } | null> {
  const buf = new Uint8Array(MAX_HEAD_BYTES);
  let len = 0;
  // A client that stalls is closed: its pending read fails.
  const stall = setTimeout(() => closeQuietly(conn), timeoutMs);
  try {
    for (;;) {
      const parsed = readRequestHead(buf.subarray(0, len));
      if (parsed !== null) {
        const rest = "head" in parsed ? buf.slice(parsed.length, len) : new Uint8Array(0);
        return { head: parsed, rest };
      }
      const n = await conn.read(buf.subarray(len));
      if (n === null) return null;
      len += n;
    }
  } finally {
    clearTimeout(stall);
  }
}

/** True when the request carries credentials `auth` accepts. */
function authorized(head: RequestHead, auth: ProxyCredentials): boolean {
  const values = fieldValues(head.fields, "proxy-authorization");
  if (values.length !== 1) return false;
  const creds = parseBasicCredentials(values[0]);
  return creds !== null && auth.check(creds.user, creds.password);
}

/** Serves one client connection; resolves when it is closed. */
export async function handleHttpClient(
  conn: Deno.Conn,
  dialer: Dialer,
  opts: HttpProxyOptions = {},
): Promise<void> {
  const report = (m: string) => opts.onError?.(`HTTP client: ${m}`);
  let tconn: TunnelConn | null = null;
  try {
    const got = await readHead(conn, opts.headTimeoutMs ?? 30_000);
    if (got === null || got.head === null) return;
    if ("error" in got.head) {
      report(got.head.error.message);
      await writeFull(conn, proxyResponse(got.head.error.status, got.head.error.message));
      return;
    }
    const head = got.head.head;
    if (opts.auth && !authorized(head, opts.auth)) {
      report(`${head.method}: proxy authentication failed`);
      await writeFull(
        conn,
        proxyResponse(407, "proxy authentication required", [
          ["Proxy-Authenticate", `Basic realm="${REALM}", charset="UTF-8"`],
        ]),
      );
      return;
    }
    const target = proxyTarget(head);
    const framing = typeof target === "string" || target.kind === "connect"
      ? null
      : requestBodyFraming(head);
    if (typeof target === "string" || typeof framing === "string") {
      const refusal = typeof target === "string" ? target : framing as string;
      report(refusal);
      await writeFull(conn, proxyResponse(400, refusal));
      return;
    }
    try {
      tconn = await dialer.connect({
        hostname: target.host,
        port: target.port,
        timeoutMs: opts.connectTimeoutMs ?? 30_000,
      });
    } catch (err) {
      const message = (err as Error).message;
      report(`${head.method} ${target.authority}: ${message}`);
      await writeFull(conn, proxyResponse(statusForError(err), message));
      return;
    }
    if (target.kind === "connect") {
      await writeFull(conn, proxyResponse(200, ""));
      await relayTcp(conn, tconn, got.rest);
    } else {
      await forward(conn, tconn, { head, target, framing: framing! }, {
        early: got.rest,
        responseTimeoutMs: opts.responseTimeoutMs ?? 60_000,
      });
    }
  } catch (err) {
    report((err as Error).message);
  } finally {
    (tconn as TunnelConn | null)?.close();
    closeQuietly(conn);
  }
}

/** Sends the request body from `early` and then `conn` to `w`, as framed. */
async function sendBody(
  conn: Deno.Conn,
  w: WritableStreamDefaultWriter<Uint8Array>,
  framing: BodyFraming,
  early: Uint8Array,
): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  let data = early;
  if (framing.kind === "length") {
    let remaining = framing.length;
    for (;;) {
      const n = Math.min(remaining, data.length);
      if (n > 0) await w.write(data.slice(0, n));
      remaining -= n;
      if (remaining === 0) return;
      const k = await conn.read(buf);
      if (k === null) throw new Error(`client closed with ${remaining} body bytes missing`);
      data = buf.subarray(0, k);
    }
  }
  const scanner = new ChunkedScanner();
  for (;;) {
    const n = scanner.feed(data);
    if (scanner.error !== null) throw new BodyError(scanner.error);
    if (n > 0) await w.write(data.slice(0, n));
    if (scanner.done) return;
    const k = await conn.read(buf);
    if (k === null) throw new Error("client closed before the last chunk");
    data = buf.subarray(0, k);
  }
}

/** A request body that is malformed (answered 400 if no response was sent yet). */
class BodyError extends Error {}

/**
 * Sends the request to the origin on `t` and its response back: see the
 * module doc. Throws when it fails; answers 400, 502 or 504 itself if the
 * client has not had a byte of the response yet.
 */
async function forward(
  conn: Deno.Conn,
  t: TunnelConn,
  req: { head: RequestHead; target: ProxyTarget; framing: BodyFraming },
  opts: { early: Uint8Array; responseTimeoutMs: number },
): Promise<void> {
  const w = t.writable.getWriter();
  await w.write(originRequestHead(req.head, req.target));
  const reader = t.readable.getReader();
  // Ends a pending read at once (a closed TunnelConn's read would wait for TCP to finish).
  const stopReading = () => {
    reader.cancel().catch(() => {});
  };
  let bodyError: string | null = null;
  const upload = sendBody(conn, w, req.framing, opts.early).catch((err) => {
    if (err instanceof BodyError) {
      bodyError = err.message;
      stopReading();
    }
  });
  let started = false;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stopReading();
  }, opts.responseTimeoutMs);
  try {
    let acc = new Uint8Array(0);
    for (;;) {
      const parsed = readResponseHead(acc, MAX_RESPONSE_HEAD_BYTES);
      if (parsed !== null) {
        if ("error" in parsed) throw new Error(`origin: ${parsed.error.message}`);
        const { status, reason } = parsed.head;
        acc = acc.subarray(parsed.length);
        if (status >= 100 && status < 200 && status !== 101) {
          // Interim (100 Continue, 103 Early Hints): passed on without its fields.
          await writeFull(conn, latin1Bytes(`HTTP/1.1 ${status} ${reason}\r\n\r\n`));
          continue;
        }
        clearTimeout(timer);
        started = true;
        await writeFull(conn, clientResponseHead(parsed.head));
        if (acc.length > 0) await writeFull(conn, acc);
        break;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error(timedOut ? "origin: no response in time" : "origin: closed");
      const next = new Uint8Array(acc.length + value.length);
      next.set(acc);
      next.set(value, acc.length);
      acc = next;
    }
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      await writeFull(conn, value);
    }
  } catch (err) {
    const message = bodyError ?? (err as Error).message;
    if (!started) {
      const status = bodyError !== null ? 400 : timedOut ? 504 : 502;
      await writeFull(conn, proxyResponse(status, message)).catch(() => {});
    }
    throw new Error(`${req.head.method} ${req.target.authority}: ${message}`);
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
    t.close();
    closeQuietly(conn);
    // The upload ends now that both are closed (its promise never rejects);
    // it is not awaited: a write the origin never acknowledges waits for TCP to give up.
    void upload;
  }
}

/**
 * Accepts clients on `listener` until it is closed; each is served by
 * {@link handleHttpClient}. Resolves once every client is done.
 */
export async function serveHttpProxy(
  listener: Deno.Listener,
  dialer: Dialer,
  opts: HttpProxyOptions = {},
): Promise<void> {
  const max = opts.maxClients ?? 256;
  await acceptClients(listener, (conn) => handleHttpClient(conn, dialer, opts), {
    max,
    refuse(conn) {
      opts.onError?.(`HTTP client: more than ${max} clients, answered 503`);
      writeFull(conn, proxyResponse(503, "too many clients"))
        .catch(() => {})
        .finally(() => closeQuietly(conn));
    },
  });
}
