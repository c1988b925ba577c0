// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Endpoint: a peer's UDP address (IPv4 or IPv6, port, IPv6 zone) plus the
 * sticky source address we last received from it on, as wireguard-go's
 * `conn.Endpoint`. Pure: parsing and formatting only, no sockets.
 */
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../ip.ts";

/** A UDP endpoint. Values are owned by whoever created them; clone to keep one. */
export class Endpoint {
  /** 4 or 6. */
  family: 4 | 6;
  /** 4 bytes for IPv4, 16 for IPv6. */
  address: Uint8Array;
  /** UDP port, 0–65535. */
  port: number;
  /** IPv6 scope (interface index) for link-local addresses, 0 otherwise. */
  scopeId: number;
  /** IPv6 zone as written in text (`%eth0` or `%2`), "" when none. */
  zone: string;
  /** Sticky source: the local address the last packet from this endpoint arrived on. */
  srcAddress: Uint8Array | null = null;
  /** Sticky source: the interface index the last packet arrived on (IPv6 pktinfo). */
  srcIfindex = 0;

  constructor(family: 4 | 6, address: Uint8Array, port: number, zone = "", scopeId = 0) {
    if (address.length !== (family === 4 ? 4 : 16)) {
      throw new RangeError(`Cannot make an IPv${family} endpoint from ${address.length} bytes`);
    }
    this.family = family;
    this.address = address;
    this.port = port;
    this.zone = zone;
    this.scopeId = scopeId;
  }

  /**
   * Parses `a.b.c.d:port` or `[v6(%zone)]:port`, numeric only, as Go's
   * `netip.ParseAddrPort`. Throws a TypeError on anything else.
   */
  static parse(text: string): Endpoint {
    let host: string;
    let portText: string;
    if (text.startsWith("[")) {
      const close = text.indexOf("]");
      if (close < 0 || text[close + 1] !== ":") throw new TypeError(`Invalid endpoint "${text}"`);
      host = text.slice(1, close);
      portText = text.slice(close + 2);
    } else {
      const colon = text.lastIndexOf(":");
      if (colon < 0) throw new TypeError(`Invalid endpoint "${text}": missing port`);
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
      if (host.includes(":")) {
        throw new TypeError(`Invalid endpoint "${text}": IPv6 needs brackets`);
      }
    }
    if (!/^[0-9]+$/.test(portText) || Number(portText) > 65535) {
      throw new TypeError(`Invalid endpoint "${text}": bad port`);
    }
    const port = Number(portText);
    if (!text.startsWith("[")) {
      const v4 = parseIPv4(host);
      if (!v4) throw new TypeError(`Invalid endpoint "${text}": bad IPv4 address`);
      return new Endpoint(4, v4, port);
    }
    let zone = "";
    const pct = host.indexOf("%");
    if (pct >= 0) {
      zone = host.slice(pct + 1);
      host = host.slice(0, pct);
      if (zone === "") throw new TypeError(`Invalid endpoint "${text}": empty zone`);
    }
    const v6 = parseIPv6(host);
    if (!v6) throw new TypeError(`Invalid endpoint "${text}": bad IPv6 address`);
    // A numeric zone is the scope (interface index) when it fits in a u32.
    const scopeId = /^[0-9]{1,10}$/.test(zone) && Number(zone) <= 0xffffffff ? Number(zone) : 0;
    return new Endpoint(6, v6, port, zone, scopeId);
  }

  /** Formats as Go's `netip.AddrPort.String()`: `1.2.3.4:5`, `[::1]:5`, `[fe80::1%eth0]:5`. */
  toString(): string {
    if (this.family === 4) return `${formatIPv4(this.address)}:${this.port}`;
    return `[${formatIPv6(this.address)}${this.zone ? "%" + this.zone : ""}]:${this.port}`;
  }

  /** Same address, port and zone (the sticky source is not compared). */
  equals(other: Endpoint | null | undefined): boolean {
    if (!other || other.family !== this.family || other.port !== this.port) return false;
    if (other.scopeId !== this.scopeId || other.zone !== this.zone) return false;
    const a = this.address, b = other.address;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  /** A deep copy, including the sticky source. */
  clone(): Endpoint {
    const e = new Endpoint(this.family, this.address.slice(), this.port, this.zone, this.scopeId);
    e.srcAddress = this.srcAddress ? this.srcAddress.slice() : null;
    e.srcIfindex = this.srcIfindex;
    return e;
  }

  /**
   * Makes this endpoint a copy of `other`, reusing its buffers when the
   * sizes match (no allocation in the steady state).
   */
  copyFrom(other: Endpoint): void {
    this.family = other.family;
    if (this.address.length === other.address.length) this.address.set(other.address);
    else this.address = other.address.slice();
    this.port = other.port;
    this.zone = other.zone;
    this.scopeId = other.scopeId;
    const src = other.srcAddress;
    if (!src) this.srcAddress = null;
    else if (this.srcAddress && this.srcAddress.length === src.length) this.srcAddress.set(src);
    else this.srcAddress = src.slice();
    this.srcIfindex = other.srcIfindex;
  }

  /** Forgets the sticky source address (wireguard-go `ClearSrc`). */
  clearSrc(): void {
    this.srcAddress = null;
    this.srcIfindex = 0;
  }

  /** The destination as bytes: address then big-endian port (used for cookie mac2). */
  dstToBytes(): Uint8Array {
    const out = new Uint8Array(this.address.length + 2);
    out.set(this.address);
    out[this.address.length] = this.port >> 8;
    out[this.address.length + 1] = this.port & 0xff;
    return out;
  }
}
