// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `gotatun forward [-L SPEC]… [-R SPEC]… CONFIG`: a WireGuard tunnel in this
 * process (a {@link Tunnel}: userspace TCP/IP stack, Deno UDP sockets; no
 * root, no TUN device) with ports forwarded across it as `ssh -L`/`-R` do.
 * `-L [BIND:]PORT:HOST:HOSTPORT` listens here and connects through the
 * tunnel; `-R PORT:HOST:HOSTPORT` listens on the tunnel's addresses and
 * connects here; a `/udp` suffix forwards datagrams (src/tunnel/forward.ts,
 * src/tunnel/forward_udp.ts). `--uapi DIR` serves the tunnel's UAPI socket
 * at `DIR/NAME.sock` (cli/tunnel_cli.ts). SIGINT/SIGTERM stop it.
 */
import { parseIPv4, parseIPv6 } from "../src/ip.ts";
import { type Forwarder, forwardLocalTcp, forwardRemoteTcp } from "../src/tunnel/forward.ts";
import { forwardLocalUdp, forwardRemoteUdp } from "../src/tunnel/forward_udp.ts";
import type { Tunnel } from "../src/tunnel/tunnel.ts";
import type { Logger } from "../src/log.ts";
import { writeStderr, writeStdout } from "./output.ts";
import {
  formatHostPort,
  onStopSignal,
  parseUapiOption,
  startTunnel,
  UAPI_OPTIONS_HELP,
  uapiLine,
  type UapiOption,
} from "./tunnel_cli.ts";

/** One `-L` or `-R`. */
export interface ForwardSpec {
  /** `local` for -L (listen here), `remote` for -R (listen on the tunnel). */
  direction: "local" | "remote";
  proto: "tcp" | "udp";
  /** Where to listen; for -R the hostname is "" (every tunnel address). */
  listen: { hostname: string; port: number };
  /** Where each client is connected to. */
  target: { hostname: string; port: number };
  /** The option as written (`-L 8080:10.0.0.2:80`), for messages. */
  text: string;
}

/** What `forward` was asked to do. */
export interface ForwardCommand {
  config: string;
  forwards: ForwardSpec[];
  /** Idle time after which a UDP session ends, ms. */
  udpTimeoutMs: number;
  /** Connections (TCP) or sessions (UDP) per forward. */
  maxConnections: number;
  /** Where `--uapi` serves the UAPI socket, or null for none. */
  uapi: UapiOption | null;
}

export const FORWARD_USAGE = `Usage: gotatun forward [-L SPEC]... [-R SPEC]... [options] CONFIG-FILE

Runs the WireGuard tunnel of CONFIG-FILE (wg-quick format) inside this process,
as any user (no root, no TUN device), and forwards ports across it as ssh -L
and -R do. Give -L and -R as often as needed, at least one of them.

Options:
  -L, --local [BIND:]PORT:HOST:HOSTPORT[/udp]
        listen on BIND:PORT here (BIND: 127.0.0.1 unless given; [::1] or
        0.0.0.0 also work) and connect each client through the tunnel to
        HOST:HOSTPORT on the tunnel side: an IP address (IPv6 in brackets)
        or, for TCP, a name resolved by the config's DNS through the tunnel
  -R, --remote PORT:HOST:HOSTPORT[/udp]
        listen on PORT of the tunnel's own addresses and connect each client
        to HOST:HOSTPORT here (TCP: an address or a name; UDP: an address or
        localhost)
  --udp-timeout SECONDS
        a UDP session (one per client address) ends after this long without
        a datagram either way (default 60)
  --max-conns N
        TCP connections or UDP sessions per forward at once (default 256)
${UAPI_OPTIONS_HELP}  -h, --help
        print this help

/tcp is the default; /udp forwards datagrams. LOG_LEVEL=verbose logs each
connection and session on stderr (default: error).

Examples:
  gotatun forward -L 8080:10.0.0.2:80 wg0.conf
  gotatun forward -L [::1]:5353:10.0.0.2:53/udp -R 2222:127.0.0.1:22 wg0.conf
  gotatun forward --uapi ~/.gotatun -L 8080:10.0.0.2:80 wg0.conf &
  GOTATUN_SOCKET_DIR=~/.gotatun gotatun show wg0
`;

const EXAMPLE = {
  local: "e.g. -L 8080:10.0.0.2:80, -L [::1]:8080:[fd00::2]:80 or -L 5353:10.0.0.2:53/udp",
  remote: "e.g. -R 2222:127.0.0.1:22 or -R 5353:127.0.0.1:53/udp",
};

/** Splits at colons outside brackets; brackets are kept. Null on an unclosed bracket. */
function splitSpec(text: string): string[] | null {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "[") {
      const end = text.indexOf("]", i);
      if (end < 0) return null;
      cur += text.slice(i, end + 1);
      i = end;
    } else if (ch === ":") {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

function parsePort(text: string, min: number): number | null {
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const p = Number(text);
  return p >= min && p <= 65535 ? p : null;
}

/** An address (`[v6]` or IPv4), or a name when `names`; null otherwise. */
function parseHost(text: string, names: boolean): string | null {
  if (text.startsWith("[")) {
    const inner = text.slice(1, -1);
    return text.endsWith("]") && parseIPv6(inner) ? inner : null;
  }
  if (parseIPv4(text)) return text;
  if (names && /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(text) && !/^[0-9.]+$/.test(text)) {
    return text;
  }
  return null;
}

/**
 * Parses one `-L` (`local`) or `-R` (`remote`) value; a string is the
 * error, naming the option and the fix.
 */
export function parseForwardSpec(
  value: string,
  direction: "local" | "remote",
): ForwardSpec | string {
  const flag = direction === "local" ? "-L" : "-R";
  const text = `${flag} ${value}`;
  const bad = (why: string) => `${text}: ${why}; ${EXAMPLE[direction]}`;
  let body = value;
  let proto: "tcp" | "udp" = "tcp";
  const slash = value.lastIndexOf("/");
  if (slash >= 0) {
    const suffix = value.slice(slash + 1).toLowerCase();
    if (suffix !== "tcp" && suffix !== "udp") {
      return bad(`unknown protocol "/${value.slice(slash + 1)}" (use /tcp or /udp)`);
    }
    proto = suffix;
    body = value.slice(0, slash);
  }
  const parts = splitSpec(body);
  if (!parts) return bad("unclosed [");
  if (parts.length > 4) return bad("too many colons (write IPv6 addresses in brackets: [::1])");
  const shape = direction === "local" ? "[BIND:]PORT:HOST:HOSTPORT" : "PORT:HOST:HOSTPORT";
  if (parts.length < 3) return bad(`expected ${shape}`);
  if (direction === "remote" && parts.length === 4) {
    return bad("no BIND for -R: the tunnel listens on all its Address= addresses");
  }
  const [bindText, portText, hostText, hostPortText] = parts.length === 4 ? parts : ["", ...parts];
  let bind = "";
  if (direction === "local") {
    if (bindText === "") bind = "127.0.0.1";
    else {
      const b = parseHost(bindText, true);
      if (b === null) return bad(`bad BIND address "${bindText}"`);
      bind = b;
    }
  }
  const port = parsePort(portText, direction === "local" ? 0 : 1);
  if (port === null) {
    return bad(`bad PORT "${portText}" (${direction === "local" ? 0 : 1} to 65535)`);
  }
  const hostPort = parsePort(hostPortText, 1);
  if (hostPort === null) return bad(`bad HOSTPORT "${hostPortText}" (1 to 65535)`);
  let host: string | null;
  if (direction === "local") {
    // TCP targets may be names: Tunnel.connect resolves them with the
    // config's DNS servers, through the tunnel.
    host = parseHost(hostText, proto === "tcp");
    if (host === null) {
      return bad(
        proto === "tcp"
          ? `bad HOST "${hostText}" (an address on the tunnel side, IPv6 in brackets, or a name)`
          : `HOST "${hostText}" must be an IP address on the tunnel side for /udp (IPv6 in brackets)`,
      );
    }
  } else if (proto === "udp") {
    host = hostText === "localhost" ? "127.0.0.1" : parseHost(hostText, false);
    if (host === null) return bad(`HOST "${hostText}" must be an IP address or localhost for /udp`);
  } else {
    host = parseHost(hostText, true);
    if (host === null) return bad(`bad HOST "${hostText}"`);
  }
  return {
    direction,
    proto,
    listen: { hostname: bind, port },
    target: { hostname: host, port: hostPort },
    text,
  };
}

/** The value of an option that takes one (`--opt V`, `--opt=V`, `-LV`); undefined when missing. */
function optionValue(
  args: readonly string[],
  i: number,
  names: readonly string[],
): { value: string | undefined; next: number } | null {
  const a = args[i];
  for (const n of names) {
    if (a === n) return { value: args[i + 1], next: i + 1 };
    if (n.startsWith("--") && a.startsWith(`${n}=`)) {
      return { value: a.slice(n.length + 1), next: i };
    }
    if (!n.startsWith("--") && a.startsWith(n) && a.length > n.length) {
      return { value: a.slice(n.length), next: i };
    }
  }
  return null;
}

/** Every option {@link parseForwardArgs} takes (the usage text lists each). */
export const FORWARD_OPTIONS: readonly string[] = [
  "-L",
  "--local",
  "-R",
  "--remote",
  "--udp-timeout",
  "--max-conns",
  "--uapi",
  "--uapi-name",
  "-h",
  "--help",
];

/**
 * Parses `forward` arguments; "help" for -h/--help, a string for an error
 * to print (with the usage line).
 */
export function parseForwardArgs(args: readonly string[]): ForwardCommand | "help" | string {
  const err = (m: string) => `gotatun forward: ${m}\n${FORWARD_USAGE.split("\n")[0]}\n`;
  const forwards: ForwardSpec[] = [];
  const positionals: string[] = [];
  let udpTimeoutMs = 60_000;
  let maxConnections = 256;
  let uapiDir: string | undefined, uapiName: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (a === "-h" || a === "--help") return "help";
    const local = optionValue(args, i, ["-L", "--local"]);
    const remote = local ? null : optionValue(args, i, ["-R", "--remote"]);
    const spec = local ?? remote;
    if (spec) {
      const flag = local ? "-L" : "-R";
      if (spec.value === undefined) {
        return err(`${flag} needs a value; ${EXAMPLE[local ? "local" : "remote"]}`);
      }
      const f = parseForwardSpec(spec.value, local ? "local" : "remote");
      if (typeof f === "string") return err(f);
      forwards.push(f);
      i = spec.next;
      continue;
    }
    const timeout = optionValue(args, i, ["--udp-timeout"]);
    if (timeout) {
      const s = Number(timeout.value);
      if (
        timeout.value === undefined || !/^[0-9.]+$/.test(timeout.value) || !(s > 0 && s <= 86400)
      ) {
        return err(
          `--udp-timeout "${timeout.value ?? ""}": give seconds, more than 0 and at most 86400`,
        );
      }
      udpTimeoutMs = s * 1000;
      i = timeout.next;
      continue;
    }
    const max = optionValue(args, i, ["--max-conns"]);
    if (max) {
      const n = Number(max.value);
      if (max.value === undefined || !/^[0-9]+$/.test(max.value) || !(n >= 1 && n <= 65535)) {
        return err(`--max-conns "${max.value ?? ""}": give a whole number from 1 to 65535`);
      }
      maxConnections = n;
      i = max.next;
      continue;
    }
    const uapi = optionValue(args, i, ["--uapi"]) ?? optionValue(args, i, ["--uapi-name"]);
    if (uapi) {
      const opt = a.startsWith("--uapi-name") ? "--uapi-name" : "--uapi";
      if (uapi.value === undefined) return err(`${opt} needs a value (see gotatun forward --help)`);
      if (opt === "--uapi") uapiDir = uapi.value;
      else uapiName = uapi.value;
      i = uapi.next;
      continue;
    }
    if (a.startsWith("-") && a !== "-") {
      return err(`unknown option "${a}" (see gotatun forward --help)`);
    }
    positionals.push(a);
  }
  if (positionals.length === 0) return err("missing CONFIG-FILE");
  if (positionals.length > 1) {
    return err(`one CONFIG-FILE expected, got ${positionals.map((p) => `"${p}"`).join(", ")}`);
  }
  if (forwards.length === 0) {
    return err(`nothing to forward: give at least one -L or -R; ${EXAMPLE.local}`);
  }
  const seen = new Map<string, string>();
  for (const f of forwards) {
    if (f.listen.port === 0) continue;
    const key = `${f.direction} ${f.proto} ${f.listen.hostname} ${f.listen.port}`;
    const earlier = seen.get(key);
    if (earlier) return err(`${f.text} listens where ${earlier} already does`);
    seen.set(key, f.text);
  }
  const uapi = parseUapiOption(uapiDir, uapiName, positionals[0]);
  if (typeof uapi === "string") return err(uapi);
  return { config: positionals[0], forwards, udpTimeoutMs, maxConnections, uapi };
}

/** Starts one forward; prints where it listens. Throws when it cannot listen. */
function startForward(
  tunnel: Tunnel,
  f: ForwardSpec,
  cmd: ForwardCommand,
  log: Logger,
): Forwarder {
  const tcp = { logger: log, maxConnections: cmd.maxConnections };
  const udp = { logger: log, maxSessions: cmd.maxConnections, idleTimeoutMs: cmd.udpTimeoutMs };
  const target = formatHostPort(f.target.hostname, f.target.port);
  if (f.direction === "local") {
    let fwd: Forwarder, addr: Deno.NetAddr;
    if (f.proto === "tcp") {
      const l = Deno.listen({ ...f.listen, transport: "tcp" });
      addr = l.addr;
      fwd = forwardLocalTcp(tunnel, l, f.target, tcp);
    } else {
      const s = Deno.listenDatagram({ ...f.listen, transport: "udp" });
      addr = s.addr as Deno.NetAddr;
      fwd = forwardLocalUdp(tunnel, s, f.target, udp);
    }
    writeStdout(
      `forwarding ${
        formatHostPort(addr.hostname, addr.port)
      }/${f.proto} -> ${target} through the tunnel\n`,
    );
    return fwd;
  }
  const fwd = f.proto === "tcp"
    ? forwardRemoteTcp(tunnel.listen({ port: f.listen.port }), f.target, tcp)
    : forwardRemoteUdp(tunnel, f.listen.port, f.target, udp);
  writeStdout(
    `forwarding tunnel port ${f.listen.port}/${f.proto} (${
      tunnel.config.addresses.join(", ")
    }) -> ${target}\n`,
  );
  return fwd;
}

/** Runs the forwards until a signal; returns the exit code. */
export async function forwardMain(
  args: readonly string[],
  env: Record<string, string>,
): Promise<number> {
  const cmd = parseForwardArgs(args);
  if (cmd === "help") {
    writeStdout(FORWARD_USAGE);
    return 0;
  }
  if (typeof cmd === "string") {
    writeStderr(cmd);
    return 1;
  }
  const started = await startTunnel("forward", cmd.config, env, cmd.uapi);
  if (!started) return 1;
  const { tunnel, log } = started;
  const forwarders: Forwarder[] = [];
  for (const f of cmd.forwards) {
    try {
      forwarders.push(startForward(tunnel, f, cmd, log));
    } catch (err) {
      for (const fwd of forwarders) fwd.close();
      started.close();
      const where = f.direction === "local"
        ? formatHostPort(f.listen.hostname, f.listen.port)
        : `tunnel port ${f.listen.port}`;
      writeStderr(
        `gotatun forward: ${f.text}: cannot listen on ${where}/${f.proto}: ${
          (err as Error).message
        }\n`,
      );
      return 1;
    }
  }
  writeStdout(uapiLine(started));
  let removeSignals = () => {};
  const signalled = new Promise<void>((resolve) => removeSignals = onStopSignal(resolve));
  // Ends on a signal, or when every forward has stopped by itself.
  await Promise.race([signalled, Promise.all(forwarders.map((f) => f.done))]);
  removeSignals();
  for (const f of forwarders) f.close();
  await Promise.all(forwarders.map((f) => f.done));
  started.close();
  return 0;
}
