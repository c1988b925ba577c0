// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `gotatun proxy [--socks ADDR] CONFIG`: a WireGuard tunnel in this process
 * (a {@link Tunnel}: userspace TCP/IP stack, Deno UDP sockets) behind a
 * SOCKS5 server. No root, no TUN device. The SOCKS server listens on
 * 127.0.0.1:1080 unless `--socks` names another address (`PORT`,
 * `HOST:PORT` or `[V6]:PORT`); it takes CONNECT to IP addresses and to
 * names, which it resolves through the tunnel with the `[Interface] DNS`
 * servers (`socks5h`), and UDP ASSOCIATE, whose relay needs
 * `--unstable-net` (in DENO_RUN_FLAGS, cli/version.ts). See
 * src/tunnel/socks5.ts for what it refuses. SIGINT/SIGTERM stop it.
 */
import { serveSocks5 } from "../src/tunnel/socks5.ts";
import { writeStderr, writeStdout } from "./output.ts";
import { formatHostPort, onStopSignal, parseListenAddress, startTunnel } from "./tunnel_cli.ts";

export { parseListenAddress };

/** What `proxy` was asked to do. */
export interface ProxyOptions {
  config: string;
  socks: { hostname: string; port: number };
}

export const PROXY_USAGE = "Usage: gotatun proxy [--socks [HOST:]PORT] CONFIG-FILE\n";

/**
 * Parses `proxy` arguments (`--socks ADDR`, `--socks=ADDR`, `--` and one
 * config file); a string is the error to print. Hand-written rather than
 * node:util's parseArgs: any `node:` import in the bundle loads Deno's Node
 * compatibility layer at start-up in every gotatun process, daemon included
 * (about 5 MiB per isolate).
 */
export function parseProxyArgs(args: readonly string[]): ProxyOptions | string {
  let socksText: string | undefined;
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (a === "--socks" || a.startsWith("--socks=")) {
      const v = a === "--socks" ? args[++i] : a.slice("--socks=".length);
      if (v === undefined) return `Option '--socks <value>' argument missing\n${PROXY_USAGE}`;
      socksText = v;
    } else if (a.startsWith("-") && a !== "-") {
      return `Unknown option '${a}'\n${PROXY_USAGE}`;
    } else {
      positionals.push(a);
    }
  }
  if (positionals.length !== 1) return PROXY_USAGE;
  const socks = parseListenAddress(socksText ?? "127.0.0.1:1080");
  if (!socks) return `Invalid --socks address "${socksText}"\n${PROXY_USAGE}`;
  return { config: positionals[0], socks };
}

/** Runs the proxy until a signal; returns the exit code. */
export async function proxyMain(
  args: readonly string[],
  env: Record<string, string>,
): Promise<number> {
  const opts = parseProxyArgs(args);
  if (typeof opts === "string") {
    writeStderr(opts);
    return 1;
  }
  const started = await startTunnel("proxy", opts.config, env);
  if (!started) return 1;
  const { tunnel, log } = started;
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ ...opts.socks, transport: "tcp" });
  } catch (err) {
    tunnel.close();
    const where = `${opts.socks.hostname}:${opts.socks.port}`;
    writeStderr(`gotatun proxy: cannot listen on ${where}: ${(err as Error).message}\n`);
    return 1;
  }
  const addr = listener.addr as Deno.NetAddr;
  writeStdout(
    `SOCKS5 proxy on ${formatHostPort(addr.hostname, addr.port)} through ${
      tunnel.config.addresses.join(", ")
    }\n`,
  );
  const removeSignals = onStopSignal(() => listener.close());
  await serveSocks5(listener, tunnel, { onError: (m) => log.verbose(m) });
  removeSignals();
  tunnel.close();
  return 0;
}
