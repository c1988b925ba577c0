// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The device, peer and allowed-IP records `wg` builds from a config file or
 * the command line and reads back from a daemon (wireguard-tools
 * `containers.h`), with the same flag bits deciding which fields are sent in
 * a UAPI set and which are printed. Lists are arrays instead of C's linked
 * lists; order is significant everywhere (it is the order on the wire).
 */
import type { SockAddr } from "./resolve.ts";

/** `replace_peers=true` is sent. */
export const WGDEVICE_REPLACE_PEERS = 1 << 0;
export const WGDEVICE_HAS_PRIVATE_KEY = 1 << 1;
export const WGDEVICE_HAS_PUBLIC_KEY = 1 << 2;
export const WGDEVICE_HAS_LISTEN_PORT = 1 << 3;
export const WGDEVICE_HAS_FWMARK = 1 << 4;

/** `remove=true` is sent (and nothing else for the peer). */
export const WGPEER_REMOVE_ME = 1 << 0;
/** `replace_allowed_ips=true` is sent. */
export const WGPEER_REPLACE_ALLOWEDIPS = 1 << 1;
export const WGPEER_HAS_PUBLIC_KEY = 1 << 2;
export const WGPEER_HAS_PRESHARED_KEY = 1 << 3;
export const WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL = 1 << 4;

/** One allowed IP prefix. */
export interface WgAllowedIp {
  family: 4 | 6;
  /** 4 or 16 bytes. */
  addr: Uint8Array;
  cidr: number;
  /** Sent as `allowed_ip=-…` (incremental removal, wireguard-tools ≥ 1.0.20250521). */
  remove: boolean;
}

/** One peer. */
export interface WgPeer {
  flags: number;
  publicKey: Uint8Array;
  presharedKey: Uint8Array;
  endpoint: SockAddr | null;
  /** Unix epoch of the latest handshake (int64 seconds and nanoseconds); 0 = never. */
  lastHandshakeSec: bigint;
  lastHandshakeNsec: bigint;
  rxBytes: bigint;
  txBytes: bigint;
  /** Seconds, 0 = off. */
  persistentKeepalive: number;
  allowedIps: WgAllowedIp[];
}

/** One interface. */
export interface WgDevice {
  /** At most 15 bytes, as `wg` copies it into `char name[IFNAMSIZ]`. */
  name: string;
  flags: number;
  publicKey: Uint8Array;
  privateKey: Uint8Array;
  fwmark: number;
  listenPort: number;
  peers: WgPeer[];
}

/** newDevice() is an empty device (all zero, like `calloc`). */
export function newDevice(): WgDevice {
  return {
    name: "",
    flags: 0,
    publicKey: new Uint8Array(32),
    privateKey: new Uint8Array(32),
    fwmark: 0,
    listenPort: 0,
    peers: [],
  };
}

/** newPeer() is an empty peer (all zero, like `calloc`). */
export function newPeer(): WgPeer {
  return {
    flags: 0,
    publicKey: new Uint8Array(32),
    presharedKey: new Uint8Array(32),
    endpoint: null,
    lastHandshakeSec: 0n,
    lastHandshakeNsec: 0n,
    rxBytes: 0n,
    txBytes: 0n,
    persistentKeepalive: 0,
    allowedIps: [],
  };
}

/** ifname() copies a name the way `strncpy(dev->name, name, IFNAMSIZ - 1)` does: 15 bytes at most. */
export function ifname(name: string): string {
  const nul = name.indexOf("\0");
  return (nul < 0 ? name : name.slice(0, nul)).slice(0, 15);
}
