// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * What `gotatun top` reads: the interfaces with a socket in the socket
 * directory, and each one's device as a `get` returns it (through the UAPI
 * client, cli/wg/ipc.ts), reduced to what the dashboard shows, or the reason
 * it could not be read.
 */
import { isZeroKey, keyToBase64 } from "../src/keys.ts";
import { socketNames } from "../uapi/socket_dir.ts";
import { type WgDevice, WGDEVICE_HAS_PUBLIC_KEY } from "./wg/containers.ts";
import { bstr, EACCES, ECONNREFUSED, ENOENT, EPERM, ETIMEDOUT, strerror } from "./wg/cstr.ts";
import { inetNtop } from "./wg/inet.ts";
import { type IpcContext, userspaceGetDevice } from "./wg/ipc.ts";
import { formatSockAddr, type Resolver } from "./wg/resolve.ts";

/** One peer as UAPI reports it. */
export interface PeerSnapshot {
  /** Base64, as wg prints it. */
  publicKey: string;
  endpoint: string | null;
  /** Unix seconds of the last handshake; 0 = never. */
  lastHandshake: number;
  rxBytes: number;
  txBytes: number;
  /** Seconds; 0 = off. */
  keepalive: number;
  allowedIps: string[];
}

/** One interface as UAPI reports it. */
export interface InterfaceSnapshot {
  name: string;
  /** Base64 public key, or null when no private key is set. */
  publicKey: string | null;
  listenPort: number;
  fwmark: number;
  peers: PeerSnapshot[];
  /** Set when the interface could not be read; the rest is empty. */
  error?: string;
}

/**
 * snapshotOf() is what top shows of a device read over UAPI (cli/wg/ipc.ts):
 * keys in base64, endpoints and prefixes as `wg show` prints them. A device
 * without a private key has no public key. The private key is wiped.
 */
export function snapshotOf(name: string, dev: WgDevice, resolver: Resolver): InterfaceSnapshot {
  const hasKey = (dev.flags & WGDEVICE_HAS_PUBLIC_KEY) !== 0 && !isZeroKey(dev.privateKey);
  dev.privateKey.fill(0);
  return {
    name,
    publicKey: hasKey ? keyToBase64(dev.publicKey) : null,
    listenPort: dev.listenPort,
    fwmark: dev.fwmark,
    peers: dev.peers.map((p) => ({
      publicKey: keyToBase64(p.publicKey),
      endpoint: p.endpoint ? formatSockAddr(p.endpoint, resolver) : null,
      lastHandshake: Number(p.lastHandshakeSec),
      rxBytes: Number(p.rxBytes),
      txBytes: Number(p.txBytes),
      keepalive: p.persistentKeepalive,
      allowedIps: p.allowedIps.map((ip) => `${inetNtop(ip.addr)}/${ip.cidr}`),
    })),
  };
}

/** listInterfaces() is the interface names with a socket in `dir`, sorted. */
export async function listInterfaces(dir: string): Promise<string[]> {
  try {
    return (await socketNames(dir)).sort();
  } catch {
    return []; // no directory: no interfaces
  }
}

/** Why an interface could not be read, from the errno of the request. */
function readError(errno: number, timeoutMs: number): string {
  if (errno === ENOENT) return "no such interface: no UAPI socket";
  if (errno === ECONNREFUSED) return "daemon not running";
  if (errno === EACCES || errno === EPERM) return "permission denied (root?)";
  if (errno === ETIMEDOUT) return `no answer within ${timeoutMs} ms`;
  return strerror(errno);
}

/** snapshot() reads `name` over UAPI; a failure is said in {@link InterfaceSnapshot.error}. */
export async function snapshot(name: string, ctx: IpcContext): Promise<InterfaceSnapshot> {
  const { ret, device } = await userspaceGetDevice(ctx, bstr(name));
  if (device !== null) return snapshotOf(name, device, ctx.resolver);
  const error = readError(Math.abs(ret), ctx.timeoutMs ?? 0);
  return { name, publicKey: null, listenPort: 0, fwmark: 0, peers: [], error };
}
