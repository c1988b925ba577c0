// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * A UAPI client: what `wg` does over `/var/run/wireguard/<iface>.sock`, for
 * the demo and the toolkit commands. It speaks to any UAPI daemon (ours or
 * wireguard-go), reads up to the blank line that ends a reply (never to EOF),
 * and has a timeout on every request.
 */
import { DEFAULT_SOCKET_DIR } from "./server.ts";

/** A failed UAPI set: the daemon's (negative) errno. */
export class UapiClientError extends Error {
  readonly errno: number;
  constructor(errno: number, message: string) {
    super(message);
    this.name = "UapiClientError";
    this.errno = errno;
  }
}

/** Options of the client calls. */
export interface UapiClientOptions {
  /** Socket directory (default /var/run/wireguard). */
  dir?: string;
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
}

async function request(iface: string, text: string, opts: UapiClientOptions): Promise<string> {
  const path = `${opts.dir ?? DEFAULT_SOCKET_DIR}/${iface}.sock`;
  const conn = await Deno.connect({ transport: "unix", path });
  const timer = setTimeout(() => conn.close(), opts.timeoutMs ?? 10_000);
  try {
    await conn.write(new TextEncoder().encode(text));
    const decoder = new TextDecoder();
    const buf = new Uint8Array(65536);
    let reply = "";
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) throw new Error(`UAPI connection to ${path} closed before the reply ended`);
      reply += decoder.decode(buf.subarray(0, n), { stream: true });
      if (reply === "\n" || reply.endsWith("\n\n")) return reply;
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // already closed by the timeout
    }
  }
}

function errnoOf(reply: string): number {
  const m = reply.match(/(?:^|\n)errno=(-?[0-9]+)\n/);
  if (!m) throw new Error("UAPI reply has no errno line");
  return Number(m[1]);
}

/** `get=1`: the key=value lines of the reply (without errno), in order. */
export async function uapiGet(
  iface: string,
  opts: UapiClientOptions = {},
): Promise<[string, string][]> {
  const reply = await request(iface, "get=1\n\n", opts);
  const errno = errnoOf(reply);
  if (errno !== 0) throw new UapiClientError(errno, `UAPI get failed: errno=${errno}`);
  const out: [string, string][] = [];
  for (const line of reply.split("\n")) {
    if (line === "" || line.startsWith("errno=")) continue;
    const i = line.indexOf("=");
    if (i > 0) out.push([line.slice(0, i), line.slice(i + 1)]);
  }
  return out;
}

/** `set=1` with `lines` (key=value, no trailing blank line). Throws UapiClientError on errno ≠ 0. */
export async function uapiSet(
  iface: string,
  lines: string[],
  opts: UapiClientOptions = {},
): Promise<void> {
  const body = lines.length ? lines.join("\n") + "\n" : "";
  const reply = await request(iface, `set=1\n${body}\n`, opts);
  const errno = errnoOf(reply);
  if (errno !== 0) throw new UapiClientError(errno, `UAPI set failed: errno=${errno}`);
}
