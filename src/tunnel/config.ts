// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * A wg-quick style configuration for a {@link Tunnel}: `[Interface]`
 * (PrivateKey, Address, DNS, MTU, ListenPort, FwMark) and `[Peer]`
 * (PublicKey, PresharedKey, AllowedIPs, Endpoint, PersistentKeepalive).
 * Lines are read as wg-quick reads them: a comment starts at `#`, keys and
 * section names are case-insensitive, lists split at commas and blanks.
 * `Table`, `SaveConfig` and the `PreUp`/`PostUp`/`PreDown`/`PostDown` hooks
 * belong to wg-quick's handling of a kernel interface: they are accepted and
 * ignored (a tunnel has no interface, routes or hooks). Anything else is an
 * error naming its line.
 * Pure: no `Deno.*`; {@link Tunnel.fromConfig} applies the result to a
 * Device.
 */
import { parseIPv4, parseIPv6, parsePrefix } from "../ip.ts";

/** One `[Peer]`. */
export interface TunnelPeerConfig {
  publicKey: Uint8Array;
  presharedKey: Uint8Array | null;
  allowedIps: string[];
  /** `host:port` as written (a name or an address), or null. */
  endpoint: string | null;
  /** Seconds, 0 when off. */
  persistentKeepalive: number;
}

/** What {@link parseTunnelConfig} reads. */
export interface TunnelConfig {
  privateKey: Uint8Array;
  /** `Address` entries without their prefix length. */
  addresses: string[];
  /** `DNS` entries that are IP addresses: the servers, in order. */
  dns: string[];
  /** `DNS` entries that are not IP addresses: search domains (as wg-quick's resolvconf). */
  dnsSearch: string[];
  /** `MTU`, or null (1420). */
  mtu: number | null;
  /** `ListenPort`, or null (any free port). */
  listenPort: number | null;
  fwmark: number;
  peers: TunnelPeerConfig[];
}

/** A configuration error; the message names the line. */
export class TunnelConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TunnelConfigError";
  }
}

const IGNORED = new Set(["table", "saveconfig", "preup", "postup", "predown", "postdown"]);

/** Decodes a base64 WireGuard key (32 bytes); null when it is not one. */
export function keyFromBase64(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(text)) return null;
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function splitList(v: string): string[] {
  return v.split(/[\s,]+/).filter((x) => x !== "");
}

function integer(v: string, max: number, what: string, line: number): number {
  const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!(n <= max)) throw new TunnelConfigError(`line ${line}: ${what} "${v}" is not 0..${max}`);
  return n;
}

/** Parses the text of a configuration file; throws {@link TunnelConfigError}. */
export function parseTunnelConfig(text: string): TunnelConfig {
  const cfg: TunnelConfig = {
    privateKey: new Uint8Array(0),
    addresses: [],
    dns: [],
    dnsSearch: [],
    mtu: null,
    listenPort: null,
    fwmark: 0,
    peers: [],
  };
  let section = "";
  let peer: TunnelPeerConfig | null = null;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const hash = lines[i].indexOf("#");
    const line = (hash >= 0 ? lines[i].slice(0, hash) : lines[i]).trim();
    if (line === "") continue;
    if (line.startsWith("[")) {
      section = line.toLowerCase();
      if (section === "[peer]") {
        peer = {
          publicKey: new Uint8Array(0),
          presharedKey: null,
          allowedIps: [],
          endpoint: null,
          persistentKeepalive: 0,
        };
        cfg.peers.push(peer);
      } else if (section !== "[interface]") {
        throw new TunnelConfigError(`line ${n}: unknown section ${line}`);
      }
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0) throw new TunnelConfigError(`line ${n}: expected Key = Value`);
    const key = line.slice(0, eq).trim().toLowerCase();
    const value = line.slice(eq + 1).trim();
    const bad = (what: string) => new TunnelConfigError(`line ${n}: invalid ${what}`);
    if (section === "[interface]") {
      switch (key) {
        case "privatekey":
          cfg.privateKey = keyFromBase64(value) ?? (() => {
            throw bad("PrivateKey");
          })();
          break;
        case "address":
          for (const a of splitList(value)) {
            const p = parsePrefix(a.includes("/") ? a : `${a}/${a.includes(":") ? 128 : 32}`);
            if (!p) throw bad(`Address "${a}"`);
            cfg.addresses.push(a.split("/")[0]);
          }
          break;
        case "dns":
          for (const d of splitList(value)) {
            if (parseIPv4(d) || parseIPv6(d)) cfg.dns.push(d);
            else if (/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/.test(d) && d.length <= 253) {
              cfg.dnsSearch.push(d.replace(/\.$/, ""));
            } else throw bad(`DNS "${d}"`);
          }
          break;
        case "mtu":
          cfg.mtu = integer(value, 65535, "MTU", n);
          break;
        case "listenport":
          cfg.listenPort = integer(value, 65535, "ListenPort", n);
          break;
        case "fwmark":
          cfg.fwmark = value === "off" ? 0 : integer(value, 0xffffffff, "FwMark", n);
          break;
        default:
          if (!IGNORED.has(key)) throw new TunnelConfigError(`line ${n}: unknown key ${key}`);
      }
    } else if (peer) {
      switch (key) {
        case "publickey":
          peer.publicKey = keyFromBase64(value) ?? (() => {
            throw bad("PublicKey");
          })();
          break;
        case "presharedkey":
          peer.presharedKey = keyFromBase64(value) ?? (() => {
            throw bad("PresharedKey");
          })();
          break;
        case "allowedips":
          for (const a of splitList(value)) {
            if (!parsePrefix(a)) throw bad(`AllowedIPs "${a}"`);
            peer.allowedIps.push(a);
          }
          break;
        case "endpoint":
          if (
            !/^(\[[^\]]+\]|[^:\s]+):[0-9]{1,5}$/.test(value) ||
            Number(value.slice(value.lastIndexOf(":") + 1)) > 65535
          ) throw bad("Endpoint");
          peer.endpoint = value;
          break;
        case "persistentkeepalive":
          peer.persistentKeepalive = value === "off" ? 0 : integer(value, 65535, "keepalive", n);
          break;
        default:
          throw new TunnelConfigError(`line ${n}: unknown key ${key}`);
      }
    } else {
      throw new TunnelConfigError(`line ${n}: ${key} outside a section`);
    }
  }
  if (cfg.privateKey.length === 0) throw new TunnelConfigError("[Interface] has no PrivateKey");
  if (cfg.addresses.length === 0) throw new TunnelConfigError("[Interface] has no Address");
  for (const [i, p] of cfg.peers.entries()) {
    if (p.publicKey.length === 0) throw new TunnelConfigError(`[Peer] ${i + 1} has no PublicKey`);
  }
  return cfg;
}
