// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link NetStack}: a userspace IPv4 + IPv6 host. It is a {@link Tun}: the
 * device writes decrypted packets into it as it would to a TUN interface,
 * and the stack sends its own packets through `output` (normally
 * `Device.handleTunPacket`, see {@link NetStack.attach}), so the device does
 * not know it is there. Everything runs on the injected clock and RNG.
 *
 * It answers ICMP/ICMPv6 echo, sends port unreachable for closed UDP ports
 * and protocol unreachable for unknown IPv4 protocols (rate-limited,
 * RFC 4443 §2.4(f)), resets segments for closed TCP ports (RFC 9293
 * §3.10.7.1), passes ICMP errors on to the socket they quote, and runs UDP
 * sockets ({@link UdpSocket}) and TCP ({@link TcpListener}, {@link TcpConn}).
 * Every packet it drops is counted in {@link NetStack.stats}; none throws.
 */
import type { Clock, Rng } from "../clock.ts";
import type { Tun } from "../tun/tun.ts";
import { parseIPv4, parseIPv6 } from "../ip.ts";
import {
  equalBytes,
  IpError,
  IpPacket,
  isGroupDestination,
  isUnanswerableSource,
  parseIp,
  PROTO_ICMP,
  PROTO_ICMPV6,
  PROTO_TCP,
  PROTO_UDP,
  writeIPv4,
  writeIPv6,
} from "./ip_packet.ts";
import {
  DEFAULT_TTL,
  ICMP_ECHO,
  ICMP_UNREACH_PORT,
  ICMP_UNREACH_PROTOCOL,
  icmpChecksumOk,
  IcmpErrorInfo,
  ICMPV6_ECHO,
  ICMPV6_UNREACH_PORT,
  isIcmpError,
  readIcmpError,
  writeEchoReply,
  writeUnreachable,
} from "./icmp.ts";
import { parseUdp, UdpDatagram, UdpError, writeUdpHeader } from "./udp_header.ts";
import {
  ACK,
  FIN,
  parseTcp,
  RST,
  SYN,
  TcpError as TcpParseError,
  TcpSegment,
} from "./tcp_header.ts";
import { type NetStackStats, newNetStackStats } from "./stats.ts";
import { DEFAULT_TCP_CONFIG, type TcpConfig } from "./tcp_config.ts";
import { TokenBucket } from "./token_bucket.ts";
import { BufferPool } from "./buffer_pool.ts";
import { IsnGenerator } from "./isn.ts";
import { TcpConn, type TcpHost } from "./tcp_conn.ts";
import { TcpState } from "./tcp_state.ts";
import { TcpListener } from "./tcp_listener.ts";
import { type UdpHost, UdpSocket } from "./udp.ts";
import { acceptSynOptions, tcpInput } from "./tcp_input.ts";
import { sendSyn, writeSegment } from "./tcp_output.ts";
import { seqAdd, seqGe, seqLt } from "./seq.ts";
import { tupleHash } from "./tuple_hash.ts";

/** Options for {@link NetStack}. */
export interface NetStackOptions {
  clock: Clock;
  rng: Rng;
  /** The stack's own addresses (the wg-quick `Address` list), IPv4 and/or IPv6, without prefix. */
  addresses: string[];
  /** Tunnel MTU (default 1420); the TCP MSS follows from it. */
  mtu?: number;
  /** TCP settings; missing fields take {@link DEFAULT_TCP_CONFIG}. */
  tcp?: Partial<TcpConfig>;
  /** Receive queue of each UDP socket, bytes (default 256 KiB). */
  udpQueueBytes?: number;
  /** Emptied TCP buffer storage kept for reuse, bytes (default 1 MiB); see {@link BufferPool}. */
  bufferPoolBytes?: number;
  /** ICMP errors per second (default 1000, burst 50). */
  icmpErrorsPerSecond?: number;
  /** Where the stack's packets go; see {@link NetStack.attach}. */
  output?: (packet: Uint8Array) => void;
}

/** Ephemeral ports (RFC 6335 §6). */
const EPHEMERAL_LOW = 49152;
const EPHEMERAL_COUNT = 65536 - EPHEMERAL_LOW;

/** The userspace network stack; see the module doc. */
export class NetStack implements Tun, TcpHost, UdpHost {
  readonly clock: Clock;
  readonly mtu: number;
  readonly tcpConfig: TcpConfig;
  readonly stats: NetStackStats = newNetStackStats();
  readonly tx: Uint8Array;
  /** Storage of the TCP send and receive buffers: `inUse` and `pooled` bytes. */
  readonly buffers: BufferPool;
  /** Where packets go; null drops them (counted in ipNoOutput). */
  output: ((packet: Uint8Array) => void) | null;
  readonly #rng: Rng;
  readonly #v4: Uint8Array[] = [];
  readonly #v6: Uint8Array[] = [];
  readonly #ip = new IpPacket();
  readonly #seg = new TcpSegment();
  readonly #udp = new UdpDatagram();
  readonly #icmpErr = new IcmpErrorInfo();
  readonly #views: (Uint8Array | undefined)[] = [];
  readonly #icmpLimit: TokenBucket;
  readonly #challengeLimit: TokenBucket;
  readonly #isn: IsnGenerator;
  readonly #udpQueueBytes: number;
  readonly #hashSeed: number;
  #ipId = 0;
  readonly #conns = new Map<number, TcpConn>();
  #connCount = 0;
  readonly #listeners = new Map<number, TcpListener>();
  readonly #udpSockets = new Map<number, UdpSocket>();
  readonly #rand = new Uint8Array(4);

  constructor(opts: NetStackOptions) {
    this.clock = opts.clock;
    this.#rng = opts.rng;
    this.mtu = opts.mtu ?? 1420;
    if (!(this.mtu >= 1280 && this.mtu <= 65535)) {
      throw new RangeError(`MTU ${this.mtu} out of range`);
    }
    this.tcpConfig = { ...DEFAULT_TCP_CONFIG, ...opts.tcp };
    this.tx = new Uint8Array(this.mtu);
    this.buffers = new BufferPool(opts.bufferPoolBytes ?? 1024 * 1024);
    this.output = opts.output ?? null;
    for (const a of opts.addresses) {
      const v4 = parseIPv4(a);
      const v6 = v4 ? null : parseIPv6(a);
      if (v4) this.#v4.push(v4);
      else if (v6) this.#v6.push(v6);
      else throw new TypeError(`Invalid address: ${a}`);
    }
    const rate = opts.icmpErrorsPerSecond ?? 1000;
    this.#icmpLimit = new TokenBucket(this.clock, rate, Math.min(50, rate));
    const ca = this.tcpConfig.challengeAcksPerSecond;
    this.#challengeLimit = new TokenBucket(this.clock, ca, ca);
    this.#isn = new IsnGenerator(this.clock, this.#rng);
    this.#udpQueueBytes = opts.udpQueueBytes ?? 256 * 1024;
    this.#hashSeed = this.#random32();
  }

  /**
   * Sends the stack's packets into `device` (its `handleTunPacket`), and
   * has the device flush once per clock turn after the stack sent anything:
   * a bind that batches sends (LinuxBind) pushes out handshake initiations
   * and data at that flush, together with everything else of the turn.
   */
  attach(device: { handleTunPacket(packet: Uint8Array): void; flush(): void }): void {
    let scheduled = false;
    const flush = () => {
      scheduled = false;
      device.flush();
    };
    this.output = (p) => {
      device.handleTunPacket(p);
      if (!scheduled) {
        scheduled = true;
        this.clock.after(0, flush);
      }
    };
  }

  /** Connections in any state. */
  get connectionCount(): number {
    return this.#connCount;
  }

  // ---- Tun: packets from the device ----

  /** Tun: one IP packet for the stack. Never throws; drops are counted. */
  write(packet: Uint8Array): void {
    const st = this.stats;
    st.ipIn++;
    const ip = this.#ip;
    const err = parseIp(packet, ip);
    if (err !== IpError.None) {
      if (err === IpError.Fragment) st.ipFragments++;
      else if (err === IpError.Unsupported) st.ipUnsupported++;
      else st.ipMalformed++;
      return;
    }
    if (!this.#isLocal(ip) || isUnanswerableSource(ip.buf, ip.srcOff, ip.alen)) {
      st.ipNotForUs++;
      return;
    }
    switch (ip.proto) {
      case PROTO_TCP:
        this.#tcpReceive(ip);
        return;
      case PROTO_UDP:
        this.#udpReceive(ip);
        return;
      case PROTO_ICMP:
        if (ip.version === 4) this.#icmpReceive(ip);
        else st.ipUnknownProtocol++;
        return;
      case PROTO_ICMPV6:
        if (ip.version === 6) this.#icmpReceive(ip);
        else st.ipUnknownProtocol++;
        return;
      default:
        st.ipUnknownProtocol++;
        if (ip.version === 4) this.#sendUnreachable(ip, ICMP_UNREACH_PROTOCOL);
    }
  }

  #isLocal(ip: IpPacket): boolean {
    const list = ip.version === 4 ? this.#v4 : this.#v6;
    for (const a of list) if (equalBytes(a, 0, ip.buf, ip.dstOff, ip.alen)) return true;
    return false;
  }

  // ---- output ----

  /** TcpHost: sends `tx[0..len)`. */
  transmit(len: number): void {
    const out = this.output;
    if (!out) {
      this.stats.ipNoOutput++;
      return;
    }
    this.stats.ipOut++;
    // One view per length, made once: sending allocates nothing.
    const view = this.#views[len] ??= this.tx.subarray(0, len);
    out(view);
  }

  nextIpId(): number {
    return (this.#ipId = (this.#ipId + 1) & 0xffff);
  }

  challengeAckAllowed(): boolean {
    return this.#challengeLimit.take();
  }

  #sendUnreachable(ip: IpPacket, code: number): void {
    if (isGroupDestination(ip.buf, ip.dstOff, ip.alen)) return;
    if (!this.#icmpLimit.take()) {
      this.stats.icmpRateLimited++;
      return;
    }
    const n = writeUnreachable(ip, this.tx, code, this.mtu);
    if (n === 0) return;
    this.stats.icmpErrorsOut++;
    this.transmit(n);
  }

  // ---- ICMP ----

  #icmpReceive(ip: IpPacket): void {
    const st = this.stats;
    st.icmpIn++;
    if (ip.l4Len < 8 || !icmpChecksumOk(ip)) {
      st.icmpMalformed++;
      return;
    }
    const type = ip.buf[ip.l4Off];
    if (type === (ip.version === 4 ? ICMP_ECHO : ICMPV6_ECHO)) {
      const n = writeEchoReply(ip, this.tx);
      if (n === 0) {
        st.icmpMalformed++;
        return;
      }
      st.icmpEchoReplies++;
      this.transmit(n);
      return;
    }
    if (!isIcmpError(ip)) return;
    const info = this.#icmpErr;
    if (!readIcmpError(ip, info)) {
      st.icmpErrorsIgnored++;
      return;
    }
    if (info.proto === PROTO_UDP) {
      const sock = this.#udpSockets.get(info.localPort);
      if (!sock) {
        st.icmpErrorsIgnored++;
        return;
      }
      st.icmpErrorsIn++;
      sock.onError?.(info.hard, info.remotePort);
      return;
    }
    const c = this.#lookup(
      ip.version,
      ip.buf,
      info.remoteOff,
      ip.buf,
      info.localOff,
      info.remotePort,
      info.localPort,
    );
    // Only for a sequence number in flight (RFC 5927 §4.1): blind errors are ignored.
    if (!c || !seqGe(info.seq, c.sndUna) || !seqLt(info.seq, c.sndMax)) {
      st.icmpErrorsIgnored++;
      return;
    }
    st.icmpErrorsIn++;
    if (info.hard && c.state === TcpState.SynSent) {
      c.fail("unreachable");
      c.flushEvents();
    } else if (info.mtu === 0) c.softError = "unreachable";
  }

  // ---- UDP ----

  #udpReceive(ip: IpPacket): void {
    const st = this.stats;
    st.udpIn++;
    const d = this.#udp;
    const err = parseUdp(ip, d);
    if (err !== UdpError.None) {
      if (err === UdpError.Checksum) st.udpChecksumErrors++;
      else st.udpMalformed++;
      return;
    }
    const sock = this.#udpSockets.get(d.dstPort);
    if (!sock) {
      st.udpNoPort++;
      this.#sendUnreachable(ip, ip.version === 4 ? ICMP_UNREACH_PORT : ICMPV6_UNREACH_PORT);
      return;
    }
    const family = ip.version === 4 ? 4 : 6;
    if (!sock.deliver(family, ip.buf, ip.srcOff, d.srcPort, ip.buf, d.dataOff, d.dataLen)) {
      st.udpQueueFull++;
      return;
    }
    sock.onReadable?.();
  }

  /** Opens a UDP socket on `port` (0: an ephemeral port). Throws if the port is taken. */
  udp(port = 0): UdpSocket {
    if (port === 0) port = this.#freePort((p) => !this.#udpSockets.has(p));
    if (!(port > 0 && port < 65536) || this.#udpSockets.has(port)) {
      throw new Error(`UDP port ${port} unavailable`);
    }
    const s = new UdpSocket(this, port, this.#udpQueueBytes, this.buffers);
    this.#udpSockets.set(port, s);
    return s;
  }

  /** UdpHost. */
  sendUdp(
    family: 4 | 6,
    remote: Uint8Array,
    remotePort: number,
    localPort: number,
    data: Uint8Array,
    off: number,
    len: number,
  ): boolean {
    const local = (family === 4 ? this.#v4 : this.#v6)[0];
    const hl = family === 4 ? 20 : 40;
    if (!local || hl + 8 + len > this.mtu) return false;
    const buf = this.tx;
    buf.set(data.subarray(off, off + len), hl + 8);
    if (family === 4) {
      writeIPv4(buf, local, 0, remote, 0, PROTO_UDP, 8 + len, this.nextIpId(), DEFAULT_TTL);
      writeUdpHeader(buf, 20, localPort, remotePort, len, 12, 16, 4);
    } else {
      writeIPv6(buf, local, 0, remote, 0, PROTO_UDP, 8 + len, DEFAULT_TTL);
      writeUdpHeader(buf, 40, localPort, remotePort, len, 8, 24, 16);
    }
    this.transmit(hl + 8 + len);
    return true;
  }

  /** UdpHost. */
  releaseUdp(socket: UdpSocket): void {
    if (this.#udpSockets.get(socket.port) === socket) this.#udpSockets.delete(socket.port);
  }

  // ---- TCP ----

  #tcpReceive(ip: IpPacket): void {
    const st = this.stats;
    st.tcpIn++;
    const s = this.#seg;
    const err = parseTcp(ip, s);
    if (err !== TcpParseError.None) {
      if (err === TcpParseError.Checksum) st.tcpChecksumErrors++;
      else st.tcpMalformed++;
      return;
    }
    if (isGroupDestination(ip.buf, ip.dstOff, ip.alen) || s.srcPort === 0 || s.dstPort === 0) {
      st.tcpMalformed++;
      return;
    }
    const c = this.#lookup(ip.version, ip.buf, ip.srcOff, ip.buf, ip.dstOff, s.srcPort, s.dstPort);
    if (c) {
      tcpInput(c, s);
      return;
    }
    const l = this.#listeners.get(s.dstPort);
    if (l && !l.closed) {
      this.#listenInput(l, ip, s);
      return;
    }
    st.tcpNoSocket++;
    this.#resetFor(ip, s);
  }

  /** RFC 9293 §3.10.7.2: a segment for a LISTEN port. */
  #listenInput(l: TcpListener, ip: IpPacket, s: TcpSegment): void {
    const st = this.stats;
    const f = s.flags;
    if (f & RST) return;
    if (f & ACK) {
      this.#resetFor(ip, s);
      return;
    }
    if ((f & SYN) === 0) {
      st.tcpDropped++;
      return;
    }
    if (!l.hasRoom || this.#connCount >= this.tcpConfig.maxConnections) {
      st.tcpSynDropped++;
      return;
    }
    const family = ip.version === 4 ? 4 : 6;
    const local = ip.buf.slice(ip.dstOff, ip.dstOff + ip.alen);
    const remote = ip.buf.slice(ip.srcOff, ip.srcOff + ip.alen);
    const c = this.#newConn(family, local, s.dstPort, remote, s.srcPort, true);
    acceptSynOptions(c, s, c.rcvMss);
    c.sndWnd = s.window;
    c.state = TcpState.SynReceived;
    c.listenerPort = l.port;
    l.halfOpen++;
    st.tcpPassiveOpens++;
    sendSyn(c);
    c.arm();
  }

  #newConn(
    family: 4 | 6,
    local: Uint8Array,
    lport: number,
    remote: Uint8Array,
    rport: number,
    passive: boolean,
  ): TcpConn {
    const cfg = this.tcpConfig;
    const c = new TcpConn(this, family, local, lport, remote, rport, passive);
    const iss = this.#isn.next(local, lport, remote, rport, local.length);
    c.iss =
      c.sndUna =
      c.sndNxt =
      c.sndMax =
      c.recover =
        iss;
    c.rcvMss = this.mtu - (family === 4 ? 40 : 60);
    let shift = 0;
    while (shift < 14 && cfg.receiveBuffer >>> shift > 0xffff) shift++;
    c.rcvWscale = cfg.windowScaling ? shift : 0;
    c.hash = tupleHash(this.#hashSeed, remote, 0, local.length, rport, lport);
    c.nextInBucket = this.#conns.get(c.hash) ?? null;
    this.#conns.set(c.hash, c);
    this.#connCount++;
    return c;
  }

  /** The connection for the 4-tuple, addresses at `rbuf[remoteOff]` and `lbuf[localOff]`. */
  #lookup(
    version: number,
    rbuf: Uint8Array,
    remoteOff: number,
    lbuf: Uint8Array,
    localOff: number,
    rport: number,
    lport: number,
  ): TcpConn | null {
    const alen = version === 4 ? 4 : 16;
    let c = this.#conns.get(tupleHash(this.#hashSeed, rbuf, remoteOff, alen, rport, lport)) ?? null;
    for (; c !== null; c = c.nextInBucket) {
      if (
        c.remotePort === rport && c.localPort === lport && c.family === version &&
        equalBytes(c.remote, 0, rbuf, remoteOff, alen) &&
        equalBytes(c.local, 0, lbuf, localOff, alen)
      ) return c;
    }
    return null;
  }

  /** RFC 9293 §3.10.7.1: the reset for a segment no connection wants. */
  #resetFor(ip: IpPacket, s: TcpSegment): void {
    const f = s.flags;
    if (f & RST) return;
    const len = s.dataLen + (f & SYN ? 1 : 0) + (f & FIN ? 1 : 0);
    const seq = f & ACK ? s.ack : 0;
    const ack = f & ACK ? 0 : seqAdd(s.seq, len);
    const flags = f & ACK ? RST : RST | ACK;
    this.stats.tcpResetsOut++;
    const family = ip.version === 4 ? 4 : 6;
    const b = ip.buf;
    writeSegment(
      this,
      family,
      b,
      ip.dstOff,
      b,
      ip.srcOff,
      s.dstPort,
      s.srcPort,
      seq,
      ack,
      flags,
      0,
      null,
      null,
      0,
      0,
    );
  }

  /** TcpHost: forgets a finished connection. */
  release(c: TcpConn): void {
    let p = this.#conns.get(c.hash) ?? null;
    let prev: TcpConn | null = null;
    for (; p !== null && p !== c; p = p.nextInBucket) prev = p;
    if (p === null) return;
    if (prev) prev.nextInBucket = c.nextInBucket;
    else if (c.nextInBucket) this.#conns.set(c.hash, c.nextInBucket);
    else this.#conns.delete(c.hash);
    c.nextInBucket = null;
    this.#connCount--;
    if (!c.passive) return;
    const l = this.#listeners.get(c.localPort);
    if (!l) return;
    if (c.listenerPort !== 0) {
      c.listenerPort = 0;
      l.halfOpen--;
    }
    const i = l.queue.indexOf(c);
    if (i >= 0) l.queue.splice(i, 1);
  }

  /** TcpHost: a passive connection completed its handshake. */
  established(c: TcpConn): void {
    const l = this.#listeners.get(c.localPort);
    if (c.listenerPort !== 0 && l) l.halfOpen--;
    c.listenerPort = 0;
    if (!l || l.closed) {
      c.abort();
      return;
    }
    l.queue.push(c);
    l.onAcceptable?.();
  }

  /** Listens on TCP `port`; `backlog` bounds half-open plus unaccepted connections. */
  listen(port: number, backlog = this.tcpConfig.backlog): TcpListener {
    if (!(port > 0 && port < 65536) || this.#listeners.has(port)) {
      throw new Error(`TCP port ${port} unavailable`);
    }
    const l = new TcpListener(port, backlog, (x) => {
      if (this.#listeners.get(x.port) === x) this.#listeners.delete(x.port);
    });
    this.#listeners.set(port, l);
    return l;
  }

  /**
   * Opens a connection to `address` (text or 4/16 bytes) and `port`, from
   * `localPort` or else an ephemeral port. Throws on a bad address, a port
   * in use, or the connection limit.
   */
  connect(address: string | Uint8Array, port: number, localPort = 0): TcpConn {
    const remote = typeof address === "string"
      ? parseIPv4(address) ?? parseIPv6(address)
      : address.slice();
    if (!remote || (remote.length !== 4 && remote.length !== 16)) {
      throw new TypeError(`Invalid address: ${address}`);
    }
    if (!(port > 0 && port < 65536)) throw new RangeError(`Invalid port ${port}`);
    const family = remote.length === 4 ? 4 : 6;
    const local = (family === 4 ? this.#v4 : this.#v6)[0];
    if (!local) throw new Error(`No IPv${family} address to connect from`);
    if (this.#connCount >= this.tcpConfig.maxConnections) throw new Error("Too many connections");
    const free = (p: number) =>
      !this.#listeners.has(p) && !this.#lookup(family, remote, 0, local, 0, port, p);
    if (localPort !== 0 && !(localPort > 0 && localPort < 65536 && free(localPort))) {
      throw new Error(`TCP port ${localPort} unavailable`);
    }
    const lport = localPort || this.#freePort(free);
    const c = this.#newConn(family, local.slice(), lport, remote, port, false);
    c.allocateBuffers();
    c.state = TcpState.SynSent;
    this.stats.tcpActiveOpens++;
    sendSyn(c);
    c.arm();
    return c;
  }

  /**
   * Resets every connection, closes every listener and UDP socket, and
   * detaches the output: nothing is left on the clock.
   */
  close(): void {
    for (const head of [...this.#conns.values()]) {
      for (let c: TcpConn | null = head; c !== null;) {
        const next: TcpConn | null = c.nextInBucket;
        c.abort();
        c.flushEvents();
        c = next;
      }
    }
    for (const l of [...this.#listeners.values()]) l.close();
    for (const u of [...this.#udpSockets.values()]) u.close();
    this.output = null;
  }

  #random32(): number {
    this.#rng(this.#rand);
    return ((this.#rand[0] << 24) | (this.#rand[1] << 16) | (this.#rand[2] << 8) |
      this.#rand[3]) >>> 0;
  }

  /** A random free ephemeral port (RFC 6056 §3.3.1); throws when none is free. */
  #freePort(free: (port: number) => boolean): number {
    const start = this.#random32() % EPHEMERAL_COUNT;
    for (let i = 0; i < EPHEMERAL_COUNT; i++) {
      const p = EPHEMERAL_LOW + (start + i) % EPHEMERAL_COUNT;
      if (free(p)) return p;
    }
    throw new Error("No free port");
  }
}
