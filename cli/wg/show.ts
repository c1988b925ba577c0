// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `wg show` (wireguard-tools `show.c`): the pretty, coloured view of one or
 * all interfaces, `dump` (tab-separated, machine-readable) and the single
 * fields (`public-key`, `endpoints`, `transfer`, …), plus `wg show
 * interfaces`.
 *
 * Only the pretty view sorts peers: most recent handshake first, peers that
 * never completed one last, ties kept in the daemon's order (glibc's qsort is
 * a stable merge sort for arrays this size, and so is Array.prototype.sort).
 * `dump` and the fields keep the daemon's order. Private and preshared keys
 * print as `(hidden)` unless `WG_HIDE_KEYS=never`; `dump` and the fields
 * always print them.
 */
import type { WgDevice, WgPeer } from "./containers.ts";
import {
  WGDEVICE_HAS_PRIVATE_KEY,
  WGDEVICE_HAS_PUBLIC_KEY,
  WGPEER_HAS_PRESHARED_KEY,
} from "./containers.ts";
import { cFixed } from "./cstr.ts";
import { keyToBase64 } from "./encoding.ts";
import { inetNtop } from "./inet.ts";
import { formatSockAddr, type Resolver } from "./resolve.ts";
import {
  Terminal,
  TERMINAL_BOLD,
  TERMINAL_FG_CYAN,
  TERMINAL_FG_GREEN,
  TERMINAL_FG_RED,
  TERMINAL_FG_YELLOW,
  TERMINAL_RESET,
} from "./terminal.ts";
import type { Stdio } from "./stdio.ts";
import { getDevice, type IpcContext, listDevices } from "./ipc.ts";

/** What the show formatters need besides the device. */
export interface ShowContext {
  env: Record<string, string | undefined>;
  resolver: Resolver;
  /** `time(NULL)`: Unix seconds now. */
  now(): bigint;
}

/** The field names `wg show <iface> <field>` accepts, in usage order. */
export const SHOW_FIELDS = [
  "public-key",
  "private-key",
  "listen-port",
  "fwmark",
  "peers",
  "preshared-keys",
  "endpoints",
  "allowed-ips",
  "latest-handshakes",
  "transfer",
  "persistent-keepalive",
  "dump",
] as const;

function maybeKey(key: Uint8Array, have: boolean): string {
  return have ? keyToBase64(key) : "(none)";
}

function maskedKey(key: Uint8Array, env: Record<string, string | undefined>): string {
  return env.WG_HIDE_KEYS === "never" ? keyToBase64(key) : "(hidden)";
}

/** The comparison of show.c `peer_cmp`: latest handshake first, never last. */
function peerCmp(a: WgPeer, b: WgPeer): number {
  const aNever = a.lastHandshakeSec === 0n && a.lastHandshakeNsec === 0n;
  const bNever = b.lastHandshakeSec === 0n && b.lastHandshakeNsec === 0n;
  if (aNever && !bNever) return 1;
  if (bNever && !aNever) return -1;
  let diff = a.lastHandshakeSec - b.lastHandshakeSec;
  if (diff === 0n) diff = a.lastHandshakeNsec - b.lastHandshakeNsec;
  return diff < 0n ? 1 : diff > 0n ? -1 : 0;
}

/** sortPeers() orders peers for the pretty view (stable). */
export function sortPeers(peers: readonly WgPeer[]): WgPeer[] {
  return [...peers].sort(peerCmp);
}

const YEAR = 365n * 24n * 60n * 60n;
const DAY = 24n * 60n * 60n;

/** pretty_time(): "1 year, 2 days, 3 minutes" with the unit words in cyan. */
export function prettyTime(left: bigint): string {
  const parts: [bigint, string][] = [
    [left / YEAR, "year"],
    [(left % YEAR) / DAY, "day"],
    [(left % DAY) / 3600n, "hour"],
    [(left % 3600n) / 60n, "minute"],
    [left % 60n, "second"],
  ];
  let out = "";
  for (const [n, unit] of parts) {
    if (n === 0n) continue;
    out += `${out ? ", " : ""}${n} ${TERMINAL_FG_CYAN}${unit}${
      n === 1n ? "" : "s"
    }${TERMINAL_RESET}`;
  }
  return out;
}

/** ago(): "Now", "… ago", or the clock warning when the handshake is in the future. */
export function ago(sec: bigint, now: bigint): string {
  if (now === sec) return "Now";
  if (now < sec) {
    return `(${TERMINAL_FG_RED}System clock wound backward; connection problems may ensue.${TERMINAL_RESET})`;
  }
  return `${prettyTime(now - sec)} ago`;
}

/** bytes(): "123 B", "1.50 KiB", … "2.00 TiB", glibc-rounded. */
export function formatBytes(b: bigint): string {
  const KIB = 1024n;
  if (b < KIB) return `${b} ${TERMINAL_FG_CYAN}B${TERMINAL_RESET}`;
  // (double)b first, as the C does, then exact divisions by powers of two.
  const d = Number(b);
  if (b < KIB ** 2n) return `${cFixed(d / 1024, 2)} ${TERMINAL_FG_CYAN}KiB${TERMINAL_RESET}`;
  if (b < KIB ** 3n) {
    return `${cFixed(d / (1024 * 1024), 2)} ${TERMINAL_FG_CYAN}MiB${TERMINAL_RESET}`;
  }
  if (b < KIB ** 4n) {
    return `${cFixed(d / (1024 * 1024 * 1024), 2)} ${TERMINAL_FG_CYAN}GiB${TERMINAL_RESET}`;
  }
  return `${cFixed(d / (1024 * 1024 * 1024) / 1024, 2)} ${TERMINAL_FG_CYAN}TiB${TERMINAL_RESET}`;
}

/** pretty_print(): the coloured view of one interface. */
export function prettyPrint(dev: WgDevice, term: Terminal, ctx: ShowContext): void {
  const R = TERMINAL_RESET;
  const B = TERMINAL_BOLD;
  term.printf(R);
  term.printf(`${TERMINAL_FG_GREEN}${B}interface${R}: ${TERMINAL_FG_GREEN}${dev.name}${R}\n`);
  if (dev.flags & WGDEVICE_HAS_PUBLIC_KEY) {
    term.printf(`  ${B}public key${R}: ${keyToBase64(dev.publicKey)}\n`);
  }
  if (dev.flags & WGDEVICE_HAS_PRIVATE_KEY) {
    term.printf(`  ${B}private key${R}: ${maskedKey(dev.privateKey, ctx.env)}\n`);
  }
  if (dev.listenPort) term.printf(`  ${B}listening port${R}: ${dev.listenPort}\n`);
  if (dev.fwmark) term.printf(`  ${B}fwmark${R}: 0x${(dev.fwmark >>> 0).toString(16)}\n`);
  const peers = sortPeers(dev.peers);
  if (peers.length > 0) term.printf("\n");
  peers.forEach((peer, index) => {
    term.printf(
      `${TERMINAL_FG_YELLOW}${B}peer${R}: ${TERMINAL_FG_YELLOW}${
        keyToBase64(peer.publicKey)
      }${R}\n`,
    );
    if (peer.flags & WGPEER_HAS_PRESHARED_KEY) {
      term.printf(`  ${B}preshared key${R}: ${maskedKey(peer.presharedKey, ctx.env)}\n`);
    }
    if (peer.endpoint) {
      term.printf(`  ${B}endpoint${R}: ${formatSockAddr(peer.endpoint, ctx.resolver)}\n`);
    }
    term.printf(`  ${B}allowed ips${R}: `);
    if (peer.allowedIps.length > 0) {
      peer.allowedIps.forEach((ip, i) => {
        const sep = i + 1 < peer.allowedIps.length ? ", " : "\n";
        term.printf(`${inetNtop(ip.addr)}${TERMINAL_FG_CYAN}/${R}${ip.cidr}${sep}`);
      });
    } else {
      term.printf("(none)\n");
    }
    if (peer.lastHandshakeSec !== 0n) {
      term.printf(`  ${B}latest handshake${R}: ${ago(peer.lastHandshakeSec, ctx.now())}\n`);
    }
    if (peer.rxBytes || peer.txBytes) {
      term.printf(`  ${B}transfer${R}: `);
      term.printf(`${formatBytes(peer.rxBytes)} received, `);
      term.printf(`${formatBytes(peer.txBytes)} sent\n`);
    }
    if (peer.persistentKeepalive) {
      term.printf(
        `  ${B}persistent keepalive${R}: every ${prettyTime(BigInt(peer.persistentKeepalive))}\n`,
      );
    }
    if (index + 1 < peers.length) term.printf("\n");
  });
}

function endpointText(peer: WgPeer, resolver: Resolver): string {
  return peer.endpoint ? formatSockAddr(peer.endpoint, resolver) : "(none)";
}

function fwmarkText(dev: WgDevice): string {
  return dev.fwmark ? `0x${(dev.fwmark >>> 0).toString(16)}` : "off";
}

/** dump_print(): one tab-separated line for the interface, then one per peer. */
export function dumpPrint(dev: WgDevice, withInterface: boolean, ctx: ShowContext): string {
  const pre = withInterface ? `${dev.name}\t` : "";
  let out = pre +
    `${maybeKey(dev.privateKey, (dev.flags & WGDEVICE_HAS_PRIVATE_KEY) !== 0)}\t` +
    `${maybeKey(dev.publicKey, (dev.flags & WGDEVICE_HAS_PUBLIC_KEY) !== 0)}\t` +
    `${dev.listenPort}\t${fwmarkText(dev)}\n`;
  for (const peer of dev.peers) {
    const ips = peer.allowedIps.length > 0
      ? peer.allowedIps.map((ip) => `${inetNtop(ip.addr)}/${ip.cidr}`).join(",")
      : "(none)";
    out += pre + `${keyToBase64(peer.publicKey)}\t` +
      `${maybeKey(peer.presharedKey, (peer.flags & WGPEER_HAS_PRESHARED_KEY) !== 0)}\t` +
      `${endpointText(peer, ctx.resolver)}\t${ips}\t` +
      `${peer.lastHandshakeSec}\t${peer.rxBytes}\t${peer.txBytes}\t` +
      `${peer.persistentKeepalive ? peer.persistentKeepalive : "off"}\n`;
  }
  return out;
}

/** ugly_print(): one field; null for an unknown field name. */
export function uglyPrint(
  dev: WgDevice,
  field: string,
  withInterface: boolean,
  ctx: ShowContext,
): string | null {
  const pre = withInterface ? `${dev.name}\t` : "";
  const perPeer = (f: (p: WgPeer) => string) =>
    dev.peers.map((p) => `${pre}${keyToBase64(p.publicKey)}\t${f(p)}\n`).join("");
  switch (field) {
    case "public-key":
      return `${pre}${maybeKey(dev.publicKey, (dev.flags & WGDEVICE_HAS_PUBLIC_KEY) !== 0)}\n`;
    case "private-key":
      return `${pre}${maybeKey(dev.privateKey, (dev.flags & WGDEVICE_HAS_PRIVATE_KEY) !== 0)}\n`;
    case "listen-port":
      return `${pre}${dev.listenPort}\n`;
    case "fwmark":
      return `${pre}${fwmarkText(dev)}\n`;
    case "endpoints":
      return perPeer((p) => endpointText(p, ctx.resolver));
    case "allowed-ips":
      return perPeer((p) =>
        p.allowedIps.length > 0
          ? p.allowedIps.map((ip) => `${inetNtop(ip.addr)}/${ip.cidr}`).join(" ")
          : "(none)"
      );
    case "latest-handshakes":
      return perPeer((p) => `${p.lastHandshakeSec}`);
    case "transfer":
      return perPeer((p) => `${p.rxBytes}\t${p.txBytes}`);
    case "persistent-keepalive":
      return perPeer((p) => (p.persistentKeepalive ? `${p.persistentKeepalive}` : "off"));
    case "preshared-keys":
      return perPeer((p) => maybeKey(p.presharedKey, (p.flags & WGPEER_HAS_PRESHARED_KEY) !== 0));
    case "peers":
      return dev.peers.map((p) => `${pre}${keyToBase64(p.publicKey)}\n`).join("");
    case "dump":
      return dumpPrint(dev, withInterface, ctx);
    default:
      return null;
  }
}

/** The pieces of an invocation that show_main needs. */
export interface MainContext extends ShowContext {
  stdio: Stdio;
  ipc: IpcContext;
  progName: string;
}

function showUsage(m: MainContext, command: string): void {
  m.stdio.err(
    `Usage: ${m.progName} ${command} { <interface> | all | interfaces } [${
      SHOW_FIELDS.slice(0, -1).join(" | ")
    } | dump]\n`,
  );
}

/**
 * A daemon reported an endpoint that does not resolve: `wg show` then
 * dereferences a NULL device and dies of SIGSEGV, losing buffered stdout.
 */
function crash(m: MainContext): number {
  m.stdio.discardStdout();
  return 128 + 11;
}

/** show_main(): `argv[0]` is the subcommand name ("show"). */
export async function showMain(argv: readonly string[], m: MainContext): Promise<number> {
  const command = argv[0];
  const argc = argv.length;
  if (argc > 3) {
    showUsage(m, command);
    return 1;
  }
  if (argc === 1 || argv[1] === "all") {
    const list = await listDevices(m.ipc);
    if (typeof list === "number") {
      m.stdio.perror("Unable to list interfaces", list);
      return 1;
    }
    let ret = list.length > 0 ? 1 : 0;
    const term = new Terminal(m.stdio, m.env);
    for (let i = 0; i < list.length; i++) {
      const iface = list[i];
      const { ret: r, device } = await getDevice(m.ipc, iface);
      if (r < 0) {
        m.stdio.perror(`Unable to access interface ${iface}`, -r);
        continue;
      }
      if (!device) return crash(m);
      if (argc === 3) {
        const text = uglyPrint(device, argv[2], true, m);
        if (text === null) {
          m.stdio.err(`Invalid parameter: \`${argv[2]}'\n`);
          showUsage(m, command);
          ret = 1;
          break;
        }
        m.stdio.out(text);
      } else {
        prettyPrint(device, term, m);
        if (i + 1 < list.length) m.stdio.out("\n");
      }
      ret = 0;
    }
    return ret;
  }
  if (argv[1] === "interfaces") {
    if (argc > 2) {
      showUsage(m, command);
      return 1;
    }
    const list = await listDevices(m.ipc);
    if (typeof list === "number") {
      m.stdio.perror("Unable to list interfaces", list);
      return 1;
    }
    if (list.length > 0) m.stdio.out(`${list.join(" ")}\n`);
    return 0;
  }
  if (argc === 2 && (argv[1] === "-h" || argv[1] === "--help" || argv[1] === "help")) {
    showUsage(m, command);
    return 0;
  }
  const { ret: r, device } = await getDevice(m.ipc, argv[1]);
  if (r < 0) {
    m.stdio.perror("Unable to access interface", -r);
    return 1;
  }
  if (!device) return crash(m);
  if (argc === 3) {
    const text = uglyPrint(device, argv[2], false, m);
    if (text === null) {
      m.stdio.err(`Invalid parameter: \`${argv[2]}'\n`);
      showUsage(m, command);
      return 1;
    }
    m.stdio.out(text);
    return 0;
  }
  prettyPrint(device, new Terminal(m.stdio, m.env), m);
  return 0;
}
