// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Applies UAPI to a {@link Device}, with wireguard-go's semantics
 * (`device/uapi.go` `IpcGetOperation`, `IpcSetOperation`):
 *
 * - a `set` is applied line by line and is **not atomic**: at the first error
 *   the operation stops, and earlier lines stay applied;
 * - device keys are only valid before the first `public_key`; afterwards they
 *   are "invalid UAPI peer key";
 * - a `public_key` equal to our own public key opens a *dummy* section whose
 *   lines are validated but ignored, as are the lines after `remove=true` and
 *   after `update_only=true` on a peer that did not exist;
 * - at the end of each peer section (next `public_key`, blank line, end of
 *   input), if the device is up, the peer is started, sent a keepalive when
 *   its persistent keepalive was just turned on, and its staged packets are
 *   sent (`handlePostConfig`).
 *
 * One deliberate difference: wireguard-go keeps its "keepalive was turned on"
 * flag across peer sections, so every later peer of the same request gets a
 * spurious keepalive (and thus a handshake). We reset it per peer, as the
 * kernel's netlink path effectively does.
 */
import type { Device, Peer } from "../src/device.ts";
import { parsePrefixInto, PREFIX_IPV4 } from "../src/ip.ts";
import { verboseEnabled } from "../src/log.ts";
import { ERRNO, toUapiError, UapiError } from "./errors.ts";
import {
  cutLine,
  formatGet,
  isTrue,
  isZeroKey,
  MAX_LINE_BYTES,
  parseEndpoint,
  parseFwmark,
  parseKeepalive,
  parseKeyHex,
  parsePort,
  type PeerState,
  type UapiHandler,
  type UapiSetSession,
} from "./protocol.ts";

/**
 * Scratch addresses for `allowed_ip` lines: parsed in place, then copied by
 * {@link AllowedIps.insert} (a set may carry hundreds of thousands of them).
 */
const SCRATCH_V4 = new Uint8Array(4);
const SCRATCH_V6 = new Uint8Array(16);

/** The body of a `get` reply for `device` (everything before `errno=0`), peers in insertion order. */
export function ipcGet(device: Device): string {
  return formatGet({
    privateKey: device.privateKey,
    listenPort: device.listenPort,
    fwmark: device.fwmark,
    peers: peerStates(device),
  });
}

function* peerStates(device: Device): Generator<PeerState> {
  for (const peer of device.peers()) {
    const hs = peer.lastHandshakeTime();
    yield {
      publicKey: peer.publicKey,
      presharedKey: peer.presharedKey,
      endpoint: peer.endpoint ? peer.endpoint.toString() : null,
      lastHandshakeSec: hs.sec,
      lastHandshakeNsec: hs.nsec,
      txBytes: peer.txBytes,
      rxBytes: peer.rxBytes,
      persistentKeepaliveInterval: peer.persistentKeepaliveInterval,
      allowedIps: device.allowedIps.entriesFor(peer),
    };
  }
}

/**
 * One `set` operation on a device, fed line by line (wireguard-go
 * `IpcSetOperation` without the reading). {@link line} throws a
 * {@link UapiError} at the first bad line; the caller then stops (what was
 * applied stays applied). Call {@link end} at the blank line.
 */
export class IpcSetSession implements UapiSetSession {
  #device: Device;
  /** Still in the device section (no `public_key` line yet). */
  #deviceSection = true;
  /** The peer being configured; null before the first public_key or in a dummy section. */
  #peer: Peer | null = null;
  /** In a peer section whose lines are validated but ignored. */
  #dummy = false;
  /** The section's public_key line created the peer. */
  #created = false;
  /** persistent_keepalive_interval went from 0 to non-zero in this section. */
  #keepaliveOn = false;
  #failed = false;
  /** Whether verbose messages are printed (checked once: they are built per line). */
  #verbose: boolean;

  constructor(device: Device) {
    this.#device = device;
    this.#verbose = verboseEnabled(device.log);
  }

  /** Applies one line. Throws UapiError (negative errno) when it is invalid or fails. */
  line(key: string, value: string): void {
    if (this.#failed) throw new UapiError(ERRNO.EINVAL, "set operation already failed");
    try {
      if (key === "public_key") {
        this.#finishPeer();
        this.#deviceSection = false;
        this.#publicKey(value);
      } else if (this.#deviceSection) {
        this.#deviceLine(key, value);
      } else {
        this.#peerLine(key, value);
      }
    } catch (err) {
      this.#failed = true;
      const e = toUapiError(err);
      // IpcSetOperation logs every failure through the device logger.
      this.#device.log.error(e.toString());
      throw e;
    }
  }

  /** The operation ended (blank line or end of input): finish the last peer section. */
  end(): void {
    if (this.#failed) return;
    this.#finishPeer();
  }

  #deviceLine(key: string, value: string): void {
    const device = this.#device;
    switch (key) {
      case "private_key": {
        const sk = parseKeyHex(value);
        if (!sk) throw invalid(`failed to set private_key: ${hexError(value)}`);
        device.log.verbose("UAPI: Updating private key");
        // All zeros means "no private key" (FromMaybeZeroHex); Device clamps.
        device.setPrivateKey(isZeroKey(sk) ? null : sk);
        sk.fill(0);
        break;
      }
      case "listen_port": {
        const port = parsePort(value);
        if (port === null) throw invalid(`failed to parse listen_port: ${uintError(value)}`);
        device.log.verbose("UAPI: Updating listen port");
        try {
          device.setListenPort(port);
        } catch (err) {
          throw new UapiError(
            ERRNO.EADDRINUSE,
            `failed to set listen_port: ${(err as Error).message}`,
            { cause: err },
          );
        }
        break;
      }
      case "fwmark": {
        const mark = parseFwmark(value);
        if (mark === null) throw invalid(`invalid fwmark: ${uintError(value)}`);
        device.log.verbose("UAPI: Updating fwmark");
        try {
          device.setFwmark(mark);
        } catch (err) {
          throw new UapiError(
            ERRNO.EADDRINUSE,
            `failed to update fwmark: ${(err as Error).message}`,
            { cause: err },
          );
        }
        break;
      }
      case "replace_peers":
        if (!isTrue(value)) throw invalid(`failed to set replace_peers, invalid value: ${value}`);
        device.log.verbose("UAPI: Removing all peers");
        device.removeAllPeers();
        break;
      default:
        throw invalid(`invalid UAPI device key: ${key}`);
    }
  }

  #publicKey(value: string): void {
    const device = this.#device;
    const pk = parseKeyHex(value);
    if (!pk) throw invalid(`failed to get peer by public key: ${hexError(value)}`);
    this.#peer = null;
    this.#created = false;
    this.#keepaliveOn = false;
    // A peer with our own public key is ignored. With no private key at all,
    // wireguard-go's public key is all zeros, so a zero key is ignored too.
    const own = device.publicKey;
    this.#dummy = own ? equalBytes(own, pk) : isZeroKey(pk);
    if (this.#dummy) return;
    let peer = device.lookupPeer(pk);
    if (!peer) {
      try {
        peer = device.newPeer(pk);
      } catch (err) {
        throw invalid(`failed to create new peer: ${(err as Error).message}`, err);
      }
      this.#created = true;
    }
    this.#peer = peer;
  }

  #peerLine(key: string, value: string): void {
    const device = this.#device;
    const peer = this.#dummy ? null : this.#peer;
    switch (key) {
      case "update_only":
        if (!isTrue(value)) throw invalid(`failed to set update only, invalid value: ${value}`);
        // Only update an existing peer: undo the creation.
        if (peer && this.#created) {
          device.removePeer(peer);
          this.#toDummy();
        }
        break;
      case "remove":
        if (!isTrue(value)) throw invalid(`failed to set remove, invalid value: ${value}`);
        if (peer) device.removePeer(peer);
        this.#toDummy();
        break;
      case "preshared_key": {
        this.#logPeer(peer, "Updating preshared key");
        const psk = parseKeyHex(value);
        if (!psk) throw invalid(`failed to set preshared key: ${hexError(value)}`);
        peer?.setPresharedKey(psk);
        psk.fill(0);
        break;
      }
      case "endpoint": {
        this.#logPeer(peer, "Updating endpoint");
        const ep = parseEndpoint(value);
        if (!ep) throw invalid(`failed to set endpoint ${value}: invalid endpoint`);
        peer?.setEndpoint(ep);
        break;
      }
      case "persistent_keepalive_interval": {
        this.#logPeer(peer, "Updating persistent keepalive interval");
        const secs = parseKeepalive(value);
        if (secs === null) {
          throw invalid(`failed to set persistent keepalive interval: ${uintError(value)}`);
        }
        if (peer) {
          const old = peer.persistentKeepaliveInterval;
          peer.setPersistentKeepaliveInterval(secs);
          // Send an immediate keepalive when it is being turned on.
          this.#keepaliveOn = old === 0 && secs !== 0;
        }
        break;
      }
      case "replace_allowed_ips":
        this.#logPeer(peer, "Removing all allowedips");
        if (!isTrue(value)) throw invalid(`failed to replace allowedips, invalid value: ${value}`);
        if (peer) device.allowedIps.removeByValue(peer);
        break;
      case "allowed_ip": {
        // `-ip/cidr` removes (wireguard-go ≥ 0.0.20250515). Parsed into the
        // scratch buffers: this line may come 100 000 times in one set.
        const remove = value.charCodeAt(0) === 0x2d;
        if (this.#verbose) this.#logPeer(peer, remove ? "Removing allowedip" : "Adding allowedip");
        const r = parsePrefixInto(value, SCRATCH_V4, SCRATCH_V6, remove ? 1 : 0);
        if (r < 0) {
          throw invalid(`failed to set allowed ip: invalid prefix ${JSON.stringify(value)}`);
        }
        if (!peer) break;
        const family = r >> 8 === PREFIX_IPV4 ? 4 : 6;
        const ip = family === 4 ? SCRATCH_V4 : SCRATCH_V6;
        if (remove) device.allowedIps.remove(family, ip, r & 0xff, peer);
        else device.allowedIps.insert(family, ip, r & 0xff, peer);
        break;
      }
      case "protocol_version":
        if (value !== "1") throw invalid(`invalid protocol version: ${value}`);
        break;
      default:
        throw invalid(`invalid UAPI peer key: ${key}`);
    }
  }

  /** `peer(AbCd…WxYz) - UAPI: <what>` at verbose level, built only when it is printed. */
  #logPeer(peer: Peer | null, what: string): void {
    if (this.#verbose) this.#device.log.verbose(`${peer ? peer : "peer(dummy)"} - UAPI: ${what}`);
  }

  #toDummy(): void {
    this.#peer = null;
    this.#dummy = true;
  }

  /** wireguard-go `ipcSetPeer.handlePostConfig`. */
  #finishPeer(): void {
    const peer = this.#dummy ? null : this.#peer;
    const keepaliveOn = this.#keepaliveOn;
    this.#peer = null;
    this.#keepaliveOn = false;
    if (!peer || !this.#device.isUp) return;
    peer.start();
    if (keepaliveOn) peer.sendKeepalive();
    peer.sendStagedPackets();
  }
}

/**
 * Applies UAPI set text (the lines after `set=1`, up to a blank line or the
 * end) to `device`, as wireguard-go's `Device.IpcSet`. Returns null on
 * success, or the error of the first failing line (earlier lines stay
 * applied).
 */
export function ipcSet(device: Device, text: string): UapiError | null {
  const session = new IpcSetSession(device);
  let start = 0;
  while (start < text.length) {
    let nl = text.indexOf("\n", start);
    if (nl < 0) nl = text.length;
    let line = text.slice(start, nl);
    start = nl + 1;
    // bufio.Scanner: a line (newline included) longer than 64 KiB is an
    // input error, answered after finishing the last peer.
    if (line.length * 3 >= MAX_LINE_BYTES && utf8Length(line) >= MAX_LINE_BYTES) {
      session.end();
      return logged(device, new UapiError(ERRNO.EIO, "failed to read input: token too long"));
    }
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line === "") break;
    const kv = cutLine(line);
    if (!kv) {
      return logged(
        device,
        new UapiError(ERRNO.EPROTO, `failed to parse line ${JSON.stringify(line)}`),
      );
    }
    try {
      session.line(kv[0], kv[1]);
    } catch (err) {
      return toUapiError(err);
    }
  }
  try {
    session.end();
  } catch (err) {
    return toUapiError(err);
  }
  return null;
}

/** A {@link UapiHandler} serving `device` (for `UapiServer`). */
export function deviceHandler(device: Device): UapiHandler {
  return {
    get() {
      return ipcGet(device);
    },
    set() {
      return new IpcSetSession(device);
    },
  };
}

function logged(device: Device, err: UapiError): UapiError {
  device.log.error(err.toString());
  return err;
}

function invalid(message: string, cause?: unknown): UapiError {
  return new UapiError(ERRNO.EINVAL, message, cause === undefined ? undefined : { cause });
}

/** Go's hex.DecodeString / loadExactHex error text, for the log. */
function hexError(value: string): string {
  if (!/^[0-9a-fA-F]*$/.test(value)) {
    const bad = value.match(/[^0-9a-fA-F]/)![0];
    return `encoding/hex: invalid byte: U+${
      bad.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")
    } ${JSON.stringify(bad).replaceAll('"', "'")}`;
  }
  if (value.length % 2 === 1) return "encoding/hex: odd length hex string";
  return "hex string does not fit the slice";
}

/** Go's strconv.ParseUint error text, for the log. */
function uintError(value: string): string {
  const reason = /^[0-9]+$/.test(value) ? "value out of range" : "invalid syntax";
  return `strconv.ParseUint: parsing ${JSON.stringify(value)}: ${reason}`;
}

function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i] ^ b[i];
  return acc === 0;
}
