// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * What the commands that run a {@link Tunnel} in this process share
 * (`gotatun proxy`, `gotatun forward`): the listen-address syntax, starting
 * the tunnel from a wg-quick config file with a logger from `LOG_LEVEL`
 * (on stderr, wireguard-go's line shape), and stopping on SIGINT/SIGTERM.
 */
import { Tunnel } from "../src/tunnel/tunnel.ts";
import { useBestCryptoBackend } from "../src/crypto/select.ts";
import { createLogger, type Logger, parseLogLevel } from "../src/log.ts";
import { writeStderr } from "./output.ts";

/** `PORT` (loopback), `HOST:PORT` or `[V6]:PORT`; null when malformed. */
export function parseListenAddress(text: string): { hostname: string; port: number } | null {
  const m = /^(?:(?:\[([^\]]+)\]|([^:\[\]]+)):)?([0-9]{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { hostname: m[1] ?? m[2] ?? "127.0.0.1", port };
}

/** `host:port`, with an IPv6 host in brackets. */
export function formatHostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/** A started tunnel and the command's logger. */
export interface StartedTunnel {
  tunnel: Tunnel;
  log: Logger;
}

/**
 * Reads `configPath` and starts a {@link Tunnel} (FFI UDP sockets and
 * libcrypto when permitted, see `preferredBind` and `useBestCryptoBackend`), logging
 * as `command` at `env.LOG_LEVEL` (default error). On failure prints
 * "gotatun COMMAND: PATH: why" to stderr and returns null.
 */
export async function startTunnel(
  command: string,
  configPath: string,
  env: Record<string, string>,
): Promise<StartedTunnel | null> {
  const log = createLogger(parseLogLevel(env.LOG_LEVEL ?? "error"), command, writeStderr);
  try {
    // libcrypto through FFI when it loads (GOTATUN_CRYPTO as for the daemon); noble is an order
    // of magnitude slower per packet.
    log.verbose(useBestCryptoBackend(env.GOTATUN_CRYPTO).reason);
    const tunnel = await Tunnel.fromConfig(await Deno.readTextFile(configPath), { logger: log });
    return { tunnel, log };
  } catch (err) {
    writeStderr(`gotatun ${command}: ${configPath}: ${(err as Error).message}\n`);
    return null;
  }
}

/** Calls `stop` on SIGINT or SIGTERM until the returned function removes the handlers. */
export function onStopSignal(stop: () => void): () => void {
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  return () => {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
  };
}
