// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `wg setconf`, `wg addconf` and `wg syncconf` (wireguard-tools
 * `setconf.c`), and `wg set` (`set.c`).
 *
 * `syncconf` makes the interface match the file without disturbing what is
 * already right: when the file has peers and the interface too, it reads the
 * running configuration first, drops `replace_peers`, removes (first in the
 * request) every running peer the file lacks, and clears the preshared key or
 * persistent keepalive of a kept peer when the file no longer sets them
 * (wireguard-tools ≥ 1.0.20250521). Kept peers are updated in place, so their
 * sessions survive (wg-quick's `systemctl reload` path).
 */
import { type ConfigContext, ConfigReader, readCommand, splitLines } from "./config.ts";
import {
  ifname,
  newPeer,
  type WgDevice,
  WGDEVICE_REPLACE_PEERS,
  type WgPeer,
  WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL,
  WGPEER_HAS_PRESHARED_KEY,
  WGPEER_REMOVE_ME,
} from "./containers.ts";
import { bstrText, bytesToBstr, errnoOf } from "./cstr.ts";
import { getDevice, setDevice } from "./ipc.ts";
import type { MainContext } from "./show.ts";

/** What setconf/set need: show's context plus config parsing's. */
export type SetContext = MainContext & ConfigContext;

function compareKeys(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/**
 * syncDevice() rewrites `file` (a parsed config) into the request that makes
 * the interface match it, given the running configuration `runtime`.
 */
export function syncDevice(file: WgDevice, runtime: WgDevice): void {
  if (file.peers.length === 0 || runtime.peers.length === 0) return;
  file.flags &= ~WGDEVICE_REPLACE_PEERS;
  const all: { peer: WgPeer; fromFile: boolean }[] = [
    ...file.peers.map((peer) => ({ peer, fromFile: true })),
    ...runtime.peers.map((peer) => ({ peer, fromFile: false })),
  ];
  // By key, the running peer right before the file's peer with that key.
  all.sort((a, b) =>
    compareKeys(a.peer.publicKey, b.peer.publicKey) || Number(a.fromFile) - Number(b.fromFile)
  );
  for (let i = 0; i < all.length; i++) {
    if (all[i].fromFile) continue;
    const running = all[i].peer;
    const next = i + 1 < all.length ? all[i + 1] : null;
    if (!next || !next.fromFile || compareKeys(running.publicKey, next.peer.publicKey) !== 0) {
      const removal = newPeer();
      removal.flags = WGPEER_REMOVE_ME;
      removal.publicKey = running.publicKey.slice();
      file.peers.unshift(removal);
      continue;
    }
    const wanted = next.peer;
    if ((running.flags & WGPEER_HAS_PRESHARED_KEY) && !(wanted.flags & WGPEER_HAS_PRESHARED_KEY)) {
      wanted.presharedKey = new Uint8Array(32);
      wanted.flags |= WGPEER_HAS_PRESHARED_KEY;
    }
    if (
      running.persistentKeepalive &&
      !(wanted.flags & WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL)
    ) {
      wanted.persistentKeepalive = 0;
      wanted.flags |= WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL;
    }
  }
}

/** Reads a whole file as getline() would see it: a read error ends it like end of file. */
async function readConfigFile(m: SetContext, path: string): Promise<string | null> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(bstrText(path), { read: true });
  } catch (e) {
    m.stdio.perror("fopen", errnoOf(e));
    return null;
  }
  const chunks: string[] = [];
  const buf = new Uint8Array(65536);
  try {
    for (;;) {
      const n = await file.read(buf);
      if (n === null || n === 0) break;
      chunks.push(bytesToBstr(buf.subarray(0, n)));
    }
  } catch {
    // EISDIR and friends: getline() fails, and what was read so far counts.
  } finally {
    file.close();
  }
  return chunks.join("");
}

/** setconf_main(): `argv[0]` is "setconf", "addconf" or "syncconf". */
export async function setconfMain(argv: readonly string[], m: SetContext): Promise<number> {
  if (argv.length !== 3) {
    m.stdio.err(`Usage: ${m.progName} ${argv[0]} <interface> <configuration filename>\n`);
    return 1;
  }
  const text = await readConfigFile(m, argv[2]);
  if (text === null) return 1;
  const reader = new ConfigReader(m, argv[0] === "addconf");
  for (const line of splitLines(text)) {
    if (!(await reader.line(line))) {
      m.stdio.err("Configuration parsing error\n");
      return 1;
    }
  }
  const device = reader.finish();
  if (!device) {
    m.stdio.err("Invalid configuration\n");
    return 1;
  }
  device.name = ifname(argv[1]);
  if (argv[0] === "syncconf" && device.peers.length > 0) {
    const { ret, device: runtime } = await getDevice(m.ipc, device.name);
    if (ret !== 0 || !runtime) {
      m.stdio.perror("Unable to retrieve current interface configuration", -ret);
      return 1;
    }
    syncDevice(device, runtime);
  }
  const ret = await setDevice(m.ipc, device);
  if (ret !== 0) {
    m.stdio.perror("Unable to modify interface", -ret);
    return 1;
  }
  return 0;
}

/** The usage line of `wg set`. */
export function setUsage(progName: string, command: string): string {
  return `Usage: ${progName} ${command} <interface> [listen-port <port>] [fwmark <mark>] ` +
    `[private-key <file path>] [peer <base64 public key> [remove] [preshared-key <file path>] ` +
    `[endpoint <ip>:<port>] [persistent-keepalive <interval seconds>] ` +
    `[allowed-ips [+|-]<ip1>/<cidr1>[,[+|-]<ip2>/<cidr2>]...] ]...\n`;
}

/** set_main(): `argv[0]` is "set". */
export async function setMain(argv: readonly string[], m: SetContext): Promise<number> {
  if (argv.length < 3) {
    m.stdio.err(setUsage(m.progName, argv[0]));
    return 1;
  }
  const device = await readCommand(m, argv.slice(2));
  if (!device) return 1;
  device.name = ifname(argv[1]);
  const ret = await setDevice(m.ipc, device);
  if (ret !== 0) {
    m.stdio.perror("Unable to modify interface", -ret);
    return 1;
  }
  return 0;
}
