// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * What the commands that run a {@link Tunnel} in this process share
 * (`gotatun proxy`, `gotatun forward`): the listen-address syntax, starting
 * the tunnel from a wg-quick config file with a logger from `LOG_LEVEL`
 * (on stderr, wireguard-go's line shape), the optional UAPI socket
 * (`--uapi DIR`: `DIR/NAME.sock`, served on this thread straight from the
 * tunnel's Device, for `wg`, `gotatun show` and `gotatun top`), and stopping
 * on SIGINT/SIGTERM.
 */
import { Tunnel } from "../src/tunnel/tunnel.ts";
import { useBestCryptoBackend } from "../src/crypto/select.ts";
import { createLogger, type Logger, parseLogLevel, silentLogger } from "../src/log.ts";
import { deviceHandler } from "../uapi/apply.ts";
import { UapiServer } from "../uapi/server.ts";
import { prepareSocketDir, SOCKET_DIR_ENV } from "../uapi/socket_dir.ts";
import { interfaceFromPath } from "./quick/config.ts";
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

/** Where `--uapi DIR` serves the tunnel's UAPI socket: `DIR/NAME.sock`. */
export interface UapiOption {
  dir: string;
  /** The interface name: `--uapi-name`, or the config file's (wg-quick's rule). */
  name: string;
}

/** The `--uapi` options in the `--help` of `proxy` and `forward`. */
export const UAPI_OPTIONS_HELP = `  --uapi DIR
        serve the tunnel's UAPI socket at DIR/NAME.sock, so that
        GOTATUN_SOCKET_DIR=DIR gotatun show (and wg set, top) reach it; DIR is
        created 0700 when missing and must not be writable by group or others
  --uapi-name NAME
        the interface name of that socket (default: the config file's name
        without .conf, as wg-quick names it: wg0.conf is wg0)
`;

/** `sizeof(sun_path)`: a unix socket path has at most this many bytes minus one. */
const SUN_PATH = 108;

/**
 * The `--uapi DIR` / `--uapi-name NAME` pair as given (either may be
 * undefined) for `config`: null when there is no `--uapi`, else the socket's
 * place, or the error to print. The name follows wg-quick: 1 to 15 of
 * `a-z A-Z 0-9 _ = + . -`; without `--uapi-name` it is the config file's
 * basename before `.conf`.
 */
export function parseUapiOption(
  dir: string | undefined,
  name: string | undefined,
  config: string,
): UapiOption | null | string {
  if (dir === undefined) {
    return name === undefined ? null : "--uapi-name NAME needs --uapi DIR as well";
  }
  if (dir === "") return "--uapi needs a directory";
  let iface: string | null;
  if (name !== undefined) {
    // A valid name is exactly what wg-quick's path rule takes from NAME.conf.
    iface = interfaceFromPath(`${name}.conf`) === name ? name : null;
    if (iface === null) {
      return `--uapi-name "${name}": an interface name is 1 to 15 of a-z A-Z 0-9 _ = + . -`;
    }
  } else {
    iface = interfaceFromPath(config);
    if (iface === null) {
      return `--uapi: cannot take an interface name from "${config}" (wg-quick's rule: NAME.conf, ` +
        "NAME 1 to 15 of a-z A-Z 0-9 _ = + . -); give one with --uapi-name NAME";
    }
  }
  const path = `${dir.replace(/\/+$/, "")}/${iface}.sock`;
  if (new TextEncoder().encode(path).length >= SUN_PATH) {
    return `--uapi: the socket path ${path} is longer than ${SUN_PATH - 1} bytes; ` +
      "use a shorter directory";
  }
  return { dir, name: iface };
}

/** A started tunnel, its UAPI socket if asked for, and the command's logger. */
export interface StartedTunnel {
  tunnel: Tunnel;
  log: Logger;
  /** The `--uapi` socket, or null. */
  uapi: UapiServer | null;
  /** Removes the UAPI socket, then closes the tunnel. Idempotent. */
  close(): void;
}

/**
 * The line a command prints about its UAPI socket: where it is and how to
 * look at it; "" without one.
 */
export function uapiLine(started: StartedTunnel): string {
  const u = started.uapi;
  if (u === null) return "";
  const slash = u.path.lastIndexOf("/");
  const dir = u.path.slice(0, slash), name = u.path.slice(slash + 1, -".sock".length);
  return `UAPI socket ${u.path} (${SOCKET_DIR_ENV}=${dir} gotatun show ${name})\n`;
}

/**
 * Serves the UAPI socket of `tunnel` at `opt.dir/opt.name.sock`: the
 * directory is created 0700 if missing and refused when group or others can
 * write to it; a socket another process answers on is refused ("unix socket
 * in use"), a stale one replaced. `get` and `set` run on this thread,
 * between the tunnel's packets, against its Device. Throws with the reason.
 */
export async function serveUapi(
  tunnel: Tunnel,
  opt: UapiOption,
  log: Logger = silentLogger,
): Promise<UapiServer> {
  prepareSocketDir(opt.dir);
  // Absolute, so the printed path and GOTATUN_SOCKET_DIR work from any directory.
  const dir = Deno.realPathSync(opt.dir);
  const path = `${dir}/${opt.name}.sock`;
  if (new TextEncoder().encode(path).length >= SUN_PATH) {
    throw new Error(`the socket path ${path} is longer than ${SUN_PATH - 1} bytes`);
  }
  return await UapiServer.listen({
    iface: opt.name,
    dir,
    handle: deviceHandler(tunnel.device),
    logger: log,
  });
}

/**
 * Reads `configPath` and starts a {@link Tunnel} (FFI UDP sockets and
 * libcrypto when permitted, see `preferredBind` and `useBestCryptoBackend`), logging
 * as `command` at `env.LOG_LEVEL` (default error), and with `uapi` serves
 * its UAPI socket. On failure prints "gotatun COMMAND: PATH: why" (or
 * "gotatun COMMAND: --uapi: why") to stderr and returns null.
 */
export async function startTunnel(
  command: string,
  configPath: string,
  env: Record<string, string>,
  uapi: UapiOption | null = null,
): Promise<StartedTunnel | null> {
  const log = createLogger(parseLogLevel(env.LOG_LEVEL ?? "error"), command, writeStderr);
  let tunnel: Tunnel;
  try {
    // libcrypto through FFI when it loads (GOTATUN_CRYPTO as for the daemon); noble is an order
    // of magnitude slower per packet.
    log.verbose(useBestCryptoBackend(env.GOTATUN_CRYPTO).reason);
    tunnel = await Tunnel.fromConfig(await Deno.readTextFile(configPath), { logger: log });
  } catch (err) {
    writeStderr(`gotatun ${command}: ${configPath}: ${(err as Error).message}\n`);
    return null;
  }
  let server: UapiServer | null = null;
  if (uapi !== null) {
    try {
      server = await serveUapi(tunnel, uapi, log);
    } catch (err) {
      tunnel.close();
      writeStderr(`gotatun ${command}: --uapi: ${(err as Error).message}\n`);
      return null;
    }
  }
  let closing = false;
  server?.closed.then(() => {
    // The tunnel goes on without its socket (wireguard-go's daemon would exit).
    if (!closing) {
      writeStderr(
        `gotatun ${command}: UAPI socket ${server.path} was removed; ` +
          "wg and gotatun show no longer reach this tunnel\n",
      );
    }
  });
  return {
    tunnel,
    log,
    uapi: server,
    close() {
      closing = true;
      server?.close();
      tunnel.close();
    },
  };
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
