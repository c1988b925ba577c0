// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `gotatun proxy [--socks ADDR] [--http ADDR] [--auth FILE] CONFIG`: a
 * WireGuard tunnel in this process (a {@link Tunnel}: userspace TCP/IP
 * stack, Deno UDP sockets) behind a SOCKS5 server and, with `--http`, an
 * HTTP proxy. No root, no TUN device. The SOCKS server listens on
 * 127.0.0.1:1080 unless `--socks` names another address; the HTTP proxy
 * only when `--http` gives one. Addresses are `PORT` (on 127.0.0.1),
 * `HOST:PORT` or `[V6]:PORT`. Both connect to IP addresses and to names,
 * which are resolved through the tunnel with the `[Interface] DNS` servers
 * (`socks5h`); the SOCKS server also takes UDP ASSOCIATE, whose relay needs
 * `--unstable-net` (in DENO_RUN_FLAGS, cli/version.ts). `--auth FILE`
 * (`user:password` lines) makes both ask for a user: SOCKS5
 * username/password, HTTP `Proxy-Authorization: Basic`. Passwords are never
 * taken on the command line, where `ps` shows them. See src/tunnel/socks5.ts
 * and src/tunnel/http_proxy.ts for what each accepts. `--uapi DIR` serves
 * the tunnel's UAPI socket at `DIR/NAME.sock` (cli/tunnel_cli.ts) for `wg`,
 * `gotatun show` and `gotatun top`. SIGINT/SIGTERM stop it.
 */
import { serveSocks5 } from "../src/tunnel/socks5.ts";
import { serveHttpProxy } from "../src/tunnel/http_proxy.ts";
import { parseAuthFile, type ProxyCredentials } from "../src/tunnel/proxy_auth.ts";
import { writeStderr, writeStdout } from "./output.ts";
import {
  formatHostPort,
  onStopSignal,
  parseListenAddress,
  parseUapiOption,
  startTunnel,
  UAPI_OPTIONS_HELP,
  uapiLine,
  type UapiOption,
} from "./tunnel_cli.ts";

export { parseListenAddress };

type ListenAddress = { hostname: string; port: number };

/** What `proxy` was asked to do. */
export interface ProxyOptions {
  config: string;
  socks: ListenAddress;
  /** The HTTP proxy's address, or null for none. */
  http: ListenAddress | null;
  /** The `--auth` file, or null for no authentication. */
  auth: string | null;
  /** Where `--uapi` serves the UAPI socket, or null for none. */
  uapi: UapiOption | null;
}

export const PROXY_USAGE =
  "Usage: gotatun proxy [--socks [HOST:]PORT] [--http [HOST:]PORT] [--auth FILE]\n" +
  "                     [--uapi DIR [--uapi-name NAME]] CONFIG-FILE\n";

/** `gotatun proxy --help`. */
export const PROXY_HELP = `${PROXY_USAGE}
Runs the WireGuard tunnel of CONFIG-FILE (wg-quick format: [Interface] Address
gives the tunnel's addresses, DNS its name servers) inside this process, as any
user (no root, no TUN device), behind a SOCKS5 server and optionally an HTTP
proxy.

Options:
  --socks [HOST:]PORT
        where the SOCKS5 server listens (default 127.0.0.1:1080; PORT alone:
        127.0.0.1): CONNECT to addresses and names (socks5h, resolved through
        the tunnel) and UDP ASSOCIATE
  --http [HOST:]PORT
        also an HTTP proxy there (off unless given): CONNECT, and http:// URIs
        forwarded one request per connection
  --auth FILE
        both proxies require a user from FILE, one user:password per line
        (SOCKS5 username/password, HTTP Proxy-Authorization: Basic); keep it
        chmod 600
${UAPI_OPTIONS_HELP}  -h, --help
        print this help

LOG_LEVEL=verbose logs on stderr (default: error). SIGINT or SIGTERM stops it.

Examples:
  gotatun proxy wg0.conf &
  curl --socks5-hostname 127.0.0.1:1080 http://10.0.0.2/
  gotatun proxy --http 8080 --auth ~/.gotatun-users wg0.conf
  gotatun proxy --uapi ~/.gotatun wg0.conf &
  GOTATUN_SOCKET_DIR=~/.gotatun gotatun show wg0
`;

/** Every option of `proxy` that takes a value. */
export const PROXY_OPTIONS = ["--socks", "--http", "--auth", "--uapi", "--uapi-name"] as const;

/**
 * Parses `proxy` arguments (`--socks ADDR`, `--http ADDR`, `--auth FILE`,
 * `--uapi DIR`, `--uapi-name NAME`, each also as `--opt=VALUE`, `--` and one config file); a string is the
 * error to print. Hand-written rather than node:util's parseArgs: any
 * `node:` import in the bundle loads Deno's Node compatibility layer at
 * start-up in every gotatun process, daemon included (about 5 MiB per
 * isolate).
 */
export function parseProxyArgs(args: readonly string[]): ProxyOptions | "help" | string {
  const values: Partial<Record<(typeof PROXY_OPTIONS)[number], string>> = {};
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-h" || a === "--help") return "help";
    if (a === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    const opt = PROXY_OPTIONS.find((o) => a === o || a.startsWith(`${o}=`));
    if (opt) {
      const v = a === opt ? args[++i] : a.slice(opt.length + 1);
      if (v === undefined) return `Option '${opt} <value>' argument missing\n${PROXY_USAGE}`;
      values[opt] = v;
    } else if (a.startsWith("-") && a !== "-") {
      return `Unknown option '${a}'\n${PROXY_USAGE}`;
    } else {
      positionals.push(a);
    }
  }
  if (positionals.length !== 1) return PROXY_USAGE;
  const socks = parseListenAddress(values["--socks"] ?? "127.0.0.1:1080");
  if (!socks) return `Invalid --socks address "${values["--socks"]}"\n${PROXY_USAGE}`;
  let http: ListenAddress | null = null;
  if (values["--http"] !== undefined) {
    http = parseListenAddress(values["--http"]);
    if (!http) return `Invalid --http address "${values["--http"]}"\n${PROXY_USAGE}`;
  }
  if (values["--auth"] === "") return `Option '--auth' needs a file name\n${PROXY_USAGE}`;
  const uapi = parseUapiOption(values["--uapi"], values["--uapi-name"], positionals[0]);
  if (typeof uapi === "string") return `${uapi}\n${PROXY_USAGE}`;
  return { config: positionals[0], socks, http, auth: values["--auth"] ?? null, uapi };
}

/**
 * Reads the `--auth` file: the credentials and warnings to print, or the
 * error (naming the file and line).
 */
export async function loadAuthFile(
  path: string,
): Promise<{ auth: ProxyCredentials; warnings: string[] } | string> {
  let text: string;
  let mode: number | null;
  try {
    const file = await Deno.open(path);
    try {
      const st = await file.stat();
      if (!st.isFile) return `${path}: not a regular file`;
      if (st.size > 1 << 20) return `${path}: larger than 1 MiB`;
      mode = st.mode;
      text = new TextDecoder().decode(await new Response(file.readable).arrayBuffer());
    } finally {
      try {
        file.close();
      } catch {
        // closed by the stream
      }
    }
  } catch (err) {
    return `${path}: ${(err as Error).message}`;
  }
  const warnings: string[] = [];
  if (mode !== null && (mode & 0o077) !== 0) {
    warnings.push(`${path} is readable by other users; chmod 600 ${path}`);
  }
  try {
    return { auth: parseAuthFile(text, path), warnings };
  } catch (err) {
    return (err as Error).message;
  }
}

/** Runs the proxy until a signal; returns the exit code. */
export async function proxyMain(
  args: readonly string[],
  env: Record<string, string>,
): Promise<number> {
  const opts = parseProxyArgs(args);
  if (opts === "help") {
    writeStdout(PROXY_HELP);
    return 0;
  }
  if (typeof opts === "string") {
    writeStderr(opts);
    return 1;
  }
  let auth: ProxyCredentials | undefined;
  if (opts.auth !== null) {
    const loaded = await loadAuthFile(opts.auth);
    if (typeof loaded === "string") {
      writeStderr(`gotatun proxy: --auth ${loaded}\n`);
      return 1;
    }
    for (const w of loaded.warnings) writeStderr(`gotatun proxy: warning: ${w}\n`);
    auth = loaded.auth;
  }
  const started = await startTunnel("proxy", opts.config, env, opts.uapi);
  if (!started) return 1;
  const { tunnel, log } = started;
  const listeners: Deno.Listener[] = [];
  for (const [what, where] of [["--socks", opts.socks], ["--http", opts.http]] as const) {
    if (where === null) continue;
    try {
      listeners.push(Deno.listen({ ...where, transport: "tcp" }));
    } catch (err) {
      for (const l of listeners) l.close();
      started.close();
      const text = formatHostPort(where.hostname, where.port);
      writeStderr(`gotatun proxy: ${what}: cannot listen on ${text}: ${(err as Error).message}\n`);
      return 1;
    }
  }
  const [socksListener, httpListener] = listeners;
  const through = `through ${tunnel.config.addresses.join(", ")}`;
  const withAuth = auth ? `, ${auth.size} user${auth.size === 1 ? "" : "s"} from ${opts.auth}` : "";
  const at = (l: Deno.Listener) => {
    const addr = l.addr as Deno.NetAddr;
    return formatHostPort(addr.hostname, addr.port);
  };
  writeStdout(`SOCKS5 proxy on ${at(socksListener)} ${through}${withAuth}\n`);
  if (httpListener) writeStdout(`HTTP proxy on ${at(httpListener)} ${through}${withAuth}\n`);
  writeStdout(uapiLine(started));
  const removeSignals = onStopSignal(() => {
    for (const l of listeners) l.close();
  });
  const onError = (m: string) => log.verbose(m);
  await Promise.all([
    serveSocks5(socksListener, tunnel, { onError, auth }),
    httpListener ? serveHttpProxy(httpListener, tunnel, { onError, auth }) : null,
  ]);
  removeSignals();
  started.close();
  return 0;
}
