// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `wg showconf <interface>` (wireguard-tools `showconf.c`): the running
 * configuration as a config file that `wg setconf` accepts, peers in the
 * daemon's order, the private key in the clear.
 */
import { type WgDevice, WGDEVICE_HAS_PRIVATE_KEY, WGPEER_HAS_PRESHARED_KEY } from "./containers.ts";
import { keyToBase64 } from "./encoding.ts";
import { inetNtop } from "./inet.ts";
import { getDevice } from "./ipc.ts";
import { formatSockAddr, type Resolver } from "./resolve.ts";
import type { MainContext } from "./show.ts";

/** formatConfig() is the text `wg showconf` prints for a device. */
export function formatConfig(dev: WgDevice, resolver: Resolver): string {
  let out = "[Interface]\n";
  if (dev.listenPort) out += `ListenPort = ${dev.listenPort}\n`;
  if (dev.fwmark) out += `FwMark = 0x${(dev.fwmark >>> 0).toString(16)}\n`;
  if (dev.flags & WGDEVICE_HAS_PRIVATE_KEY) out += `PrivateKey = ${keyToBase64(dev.privateKey)}\n`;
  out += "\n";
  dev.peers.forEach((peer, index) => {
    out += `[Peer]\nPublicKey = ${keyToBase64(peer.publicKey)}\n`;
    if (peer.flags & WGPEER_HAS_PRESHARED_KEY) {
      out += `PresharedKey = ${keyToBase64(peer.presharedKey)}\n`;
    }
    if (peer.allowedIps.length > 0) {
      out += `AllowedIPs = ${
        peer.allowedIps.map((ip) => `${inetNtop(ip.addr)}/${ip.cidr}`).join(", ")
      }\n`;
    }
    if (peer.endpoint) out += `Endpoint = ${formatSockAddr(peer.endpoint, resolver)}\n`;
    if (peer.persistentKeepalive) out += `PersistentKeepalive = ${peer.persistentKeepalive}\n`;
    if (index + 1 < dev.peers.length) out += "\n";
  });
  return out;
}

/** showconf_main(): `argv[0]` is "showconf". */
export async function showconfMain(argv: readonly string[], m: MainContext): Promise<number> {
  if (argv.length !== 2) {
    m.stdio.err(`Usage: ${m.progName} ${argv[0]} <interface>\n`);
    return 1;
  }
  const { ret, device } = await getDevice(m.ipc, argv[1]);
  if (ret !== 0 || !device) {
    m.stdio.perror("Unable to access interface", -ret);
    return 1;
  }
  m.stdio.out(formatConfig(device, m.resolver));
  return 0;
}
