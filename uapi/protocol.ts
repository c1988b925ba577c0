// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The UAPI text protocol (https://www.wireguard.com/xplatform/), pure text ⇄
 * values: hex keys, `key=value` lines, value parsers, the `get` reply in
 * wireguard-go's exact key order (`device/uapi.go` `IpcGetOperation`), and
 * {@link UapiConnection}, the framing of one connection as a state machine fed
 * with bytes (`IpcHandle`). No I/O and no Device here (gotatun keeps the same
 * split in `uapi/command.rs`); `uapi/server.ts` does the sockets.
 *
 * Every parser mirrors the Go function wireguard-go calls, so that the same
 * bytes are accepted and rejected: `hex.DecodeString` for keys,
 * `strconv.ParseUint(v, 10, n)` for numbers, `netip.ParseAddrPort` for
 * endpoints and `netip.ParsePrefix` for allowed IPs.
 */
import { Endpoint } from "../src/conn/endpoint.ts";
import { formatPrefix, parsePrefix } from "../src/ip.ts";
import { type Logger, silentLogger } from "../src/log.ts";
import { ERRNO, redactKeys, toUapiError, UapiError } from "./errors.ts";

/** The longest line wireguard-go reads: `bufio.Scanner`'s MaxScanTokenSize (64 KiB, newline included). */
export const MAX_LINE_BYTES = 64 * 1024;

// Key text forms live in src/keys.ts; these are the names the UAPI code uses.
import { isZeroKey, keyFromHex as parseKeyHex, keyToHex as formatKeyHex } from "../src/keys.ts";
export { formatKeyHex, isZeroKey, parseKeyHex };

/**
 * Splits a line at its first `=`, as Go's `strings.Cut(line, "=")`: nothing is
 * trimmed and keys are case-sensitive. Null when there is no `=` (wireguard-go
 * then answers EPROTO).
 */
export function cutLine(line: string): [key: string, value: string] | null {
  const eq = line.indexOf("=");
  if (eq < 0) return null;
  return [line.slice(0, eq), line.slice(eq + 1)];
}

/**
 * Parses a decimal unsigned integer no larger than `max`, as Go's
 * `strconv.ParseUint(text, 10, bits)`: ASCII digits only (leading zeros are
 * fine; no sign, no spaces, no `0x`, no underscores). Null otherwise.
 */
export function parseUint(text: string, max: number): number | null {
  if (text.length === 0) return null;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return null;
  }
  // Leading zeros cannot push a short number past 2^53, and a long string of
  // significant digits is far above `max` either way.
  const n = Number(text);
  return n <= max ? n : null;
}

/** `listen_port`: decimal 0–65535 (`ParseUint(v, 10, 16)`). */
export function parsePort(text: string): number | null {
  return parseUint(text, 0xffff);
}

/** `fwmark`: decimal uint32 (`ParseUint(v, 10, 32)`; `0x…` is rejected, wg sends decimal). */
export function parseFwmark(text: string): number | null {
  return parseUint(text, 0xffffffff);
}

/** `persistent_keepalive_interval`: seconds, 0–65535 (`ParseUint(v, 10, 16)`). */
export function parseKeepalive(text: string): number | null {
  return parseUint(text, 0xffff);
}

/** The boolean keys (`replace_peers`, `remove`, `update_only`, `replace_allowed_ips`) accept only `true`. */
export function isTrue(text: string): boolean {
  return text === "true";
}

/** `endpoint`: numeric `a.b.c.d:port` or `[v6(%zone)]:port`; null when invalid. */
export function parseEndpoint(text: string): Endpoint | null {
  try {
    return Endpoint.parse(text);
  } catch {
    return null;
  }
}

/** One `allowed_ip` line: a prefix to add, or to remove when written with a leading `-`. */
export interface AllowedIpLine {
  /** True for `allowed_ip=-ip/cidr` (wireguard-go ≥ 0.0.20250515). */
  remove: boolean;
  family: 4 | 6;
  /** The address as written (host bits are masked when inserted in the trie). */
  ip: Uint8Array;
  cidr: number;
}

/** `allowed_ip`: `[-]ip/cidr` (`netip.ParsePrefix`); null when invalid. */
export function parseAllowedIp(text: string): AllowedIpLine | null {
  const remove = text.startsWith("-");
  const prefix = parsePrefix(remove ? text.slice(1) : text);
  if (!prefix) return null;
  return { remove, family: prefix.family, ip: prefix.ip, cidr: prefix.cidr };
}

/** A peer as the `get` reply shows it. */
export interface PeerState {
  publicKey: Uint8Array;
  /** 32 zero bytes when there is none; always printed. */
  presharedKey: Uint8Array;
  /** Endpoint text (`netip.AddrPort` form), or null when unknown (then omitted). */
  endpoint: string | null;
  /** Unix time of the last handshake; 0/0 = never. */
  lastHandshakeSec: number;
  lastHandshakeNsec: number;
  txBytes: number | bigint;
  rxBytes: number | bigint;
  persistentKeepaliveInterval: number;
  /** Prefixes in the order wireguard-go's `EntriesForPeer` lists them. */
  allowedIps: Iterable<{ family: 4 | 6; ip: Uint8Array; cidr: number }>;
}

/** A device as the `get` reply shows it. */
export interface DeviceState {
  /** null (or all zero) when none; then omitted. */
  privateKey: Uint8Array | null;
  /** Omitted when 0. */
  listenPort: number;
  /** Omitted when 0. */
  fwmark: number;
  peers: Iterable<PeerState>;
}

/**
 * Formats the body of a `get` reply (everything before `errno=0`), in
 * wireguard-go's order: `private_key`, `listen_port`, `fwmark` (each only when
 * non-zero), then per peer `public_key`, `preshared_key`,
 * `protocol_version=1`, `endpoint` (when known), `last_handshake_time_sec`,
 * `last_handshake_time_nsec`, `tx_bytes`, `rx_bytes`,
 * `persistent_keepalive_interval` and one `allowed_ip` per prefix.
 */
export function formatGet(state: DeviceState): string {
  // One concatenation pass (V8 builds a rope and flattens it once): an array
  // of 130 000 line strings joined at the end cost several times the reply's
  // size in garbage.
  let out = "";
  if (state.privateKey && !isZeroKey(state.privateKey)) {
    out += "private_key=" + formatKeyHex(state.privateKey) + "\n";
  }
  if (state.listenPort !== 0) out += "listen_port=" + state.listenPort + "\n";
  if (state.fwmark !== 0) out += "fwmark=" + state.fwmark + "\n";
  for (const peer of state.peers) {
    out += "public_key=" + formatKeyHex(peer.publicKey) + "\npreshared_key=" +
      formatKeyHex(peer.presharedKey) + "\nprotocol_version=1\n";
    if (peer.endpoint !== null) out += "endpoint=" + peer.endpoint + "\n";
    out += "last_handshake_time_sec=" + peer.lastHandshakeSec +
      "\nlast_handshake_time_nsec=" + peer.lastHandshakeNsec +
      "\ntx_bytes=" + formatCounter(peer.txBytes) +
      "\nrx_bytes=" + formatCounter(peer.rxBytes) +
      "\npersistent_keepalive_interval=" + peer.persistentKeepaliveInterval + "\n";
    for (const p of peer.allowedIps) {
      out += "allowed_ip=" + formatPrefix(p.family, p.ip, p.cidr) + "\n";
    }
  }
  return out;
}

/** Counters print as plain decimal (never exponent notation, whatever their size). */
function formatCounter(n: number | bigint): string {
  return typeof n === "bigint" ? n.toString() : BigInt(Math.trunc(n)).toString();
}

/** The line that ends every reply: `errno=N` and a blank line (N is 0 or negative). */
export function formatErrno(errno: number): string {
  return `errno=${errno}\n\n`;
}

/**
 * Splits UAPI text into `[key, value]` pairs up to the first blank line (or
 * the end), dropping one `\r` before each `\n` as Go's `bufio.ScanLines`.
 * Lines without `=` are returned with value null. A convenience for clients
 * and tests reading a `get` reply.
 */
export function parseLines(text: string): [key: string, value: string | null][] {
  const out: [string, string | null][] = [];
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") break;
    const kv = cutLine(line);
    out.push(kv ?? [line, null]);
  }
  return out;
}

// ---- framing (wireguard-go device/uapi.go IpcHandle + IpcSetOperation) ----

/** One `set` operation in progress: lines in order, then {@link UapiSetSession.end}. */
export interface UapiSetSession {
  /** Applies one `key=value` line; throws {@link UapiError} to stop the operation. */
  line(key: string, value: string): void;
  /** The blank line (or end of input) arrived: finish the last peer section. */
  end(): void;
}

/** What the server drives: a device (see `uapi/apply.ts` `deviceHandler`) or a fake in tests. */
export interface UapiHandler {
  /** The body of a `get` reply (lines before `errno=0`); may throw {@link UapiError}. */
  get(): string;
  /** Starts a `set` operation. */
  set(): UapiSetSession;
}

/** Default for {@link UapiConnection}'s `maxRequestBytes`. */
export const DEFAULT_MAX_REQUEST_BYTES = 1 << 20;
const NL = 0x0a;
const CR = 0x0d;
/** Bytes of complete lines {@link UapiConnection.feed} decodes at once. */
const DECODE_WINDOW = 16 * 1024;

/** Framing states of one connection. */
const State = {
  /** Reading an operation line (`get=1` / `set=1`). */
  Op: 0,
  /** After `get=1\n`: exactly one more byte, which must be `\n`. */
  GetNewline: 1,
  /** Reading `key=value` lines of a set until a blank line. */
  Set: 2,
  /** A set line failed and was answered: skip lines up to the blank line. */
  Discard: 3,
  /** Nothing more is read; the connection closes after pending writes. */
  Closed: 4,
} as const;
type State = typeof State[keyof typeof State];

/**
 * The UAPI framing of one connection, without I/O: feed it received bytes,
 * it calls `write` with reply text and sets {@link closed} when the
 * connection should be closed (after flushing what was written). Operations
 * run synchronously inside {@link feed}, so each one is atomic with respect
 * to other connections.
 */
export class UapiConnection {
  #handler: UapiHandler;
  #out: (text: string) => void;
  /** A reply was written during the current {@link feed}. */
  #replied = false;
  #log: Logger;
  #maxRequestBytes: number;
  #state: State = State.Op;
  /** The current unterminated line: received chunks (copied). */
  #parts: Uint8Array[] = [];
  #partBytes = 0;
  #session: UapiSetSession | null = null;
  /** Complete set lines not yet applied, and their size. */
  #pending: string[] = [];
  #pendingBytes = 0;
  /**
   * UTF-8 as Go strings see bytes: a BOM is an ordinary character (the
   * default decoder would drop one at the start of every decode call).
   */
  #decoder = new TextDecoder("utf-8", { ignoreBOM: true });

  constructor(
    handler: UapiHandler,
    write: (text: string) => void,
    options: { logger?: Logger; maxRequestBytes?: number } = {},
  ) {
    this.#handler = handler;
    this.#out = write;
    this.#log = options.logger ?? silentLogger;
    this.#maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  }

  /** True once the connection should be closed (after writing what was written). */
  get closed(): boolean {
    return this.#state === State.Closed;
  }

  /**
   * Handles received bytes and returns how many were consumed: processing
   * stops after each reply, so the caller can write it before feeding the
   * rest (a client pipelining many `get`s cannot make replies pile up).
   * Everything is consumed unless a reply was written or the connection
   * closed. `chunk` is not retained.
   */
  feed(chunk: Uint8Array): number {
    let i = 0;
    this.#replied = false;
    // Complete lines are decoded a window at a time, not one by one (a set
    // may have 100 000 lines): `text` holds chunk[decodedFrom..decodedTo]
    // (which ends with a newline) and `pos` is where line `i` starts in it.
    // Each 0x0a byte decodes to exactly one "\n", so lines correspond.
    let text = "";
    let pos = 0;
    let decodedTo = -1;
    while (i < chunk.length && this.#state !== State.Closed && !this.#replied) {
      if (this.#state === State.GetNewline) {
        // wireguard-go reads exactly one byte here (bufio.Reader.ReadByte).
        this.#getByte(chunk[i++]);
        decodedTo = -1;
        continue;
      }
      const nl = chunk.indexOf(NL, i);
      const end = nl < 0 ? chunk.length : nl;
      if (this.#partBytes + (end - i) >= MAX_LINE_BYTES) {
        this.#lineTooLong();
        return chunk.length;
      }
      if (nl < 0) {
        this.#parts.push(chunk.slice(i));
        this.#partBytes += chunk.length - i;
        return chunk.length;
      }
      let line: string;
      if (this.#parts.length > 0) {
        line = this.#takeLine(chunk.subarray(i, nl));
      } else {
        if (nl > decodedTo) {
          // Up to the last newline of the next window: bounded, so that
          // stopping after a reply re-decodes little when feed is called
          // again with the rest.
          decodedTo = chunk.lastIndexOf(NL, Math.max(nl, i + DECODE_WINDOW));
          text = this.#decoder.decode(chunk.subarray(i, decodedTo + 1));
          pos = 0;
        }
        const eol = text.indexOf("\n", pos);
        line = text.slice(pos, eol);
        pos = eol + 1;
      }
      i = nl + 1;
      this.#onLine(line);
    }
    return this.#state === State.Closed ? chunk.length : i;
  }

  /** The peer closed its sending side (EOF). */
  end(): void {
    switch (this.#state) {
      case State.Set: {
        // bufio.Scanner yields a final unterminated line at EOF, then
        // IpcSetOperation finishes the operation and replies as usual.
        if (this.#partBytes > 0) {
          const line = dropCR(this.#takeLine(new Uint8Array(0)));
          if (line !== "") this.#queueSetLine(line);
        }
        this.#finishSet(null);
        break;
      }
      default:
        // An unterminated op line, or EOF right after `get=1\n`: wireguard-go
        // returns from IpcHandle without replying.
        break;
    }
    this.#state = State.Closed;
    this.#reset();
  }

  #takeLine(tail: Uint8Array): string {
    let line: string;
    if (this.#parts.length === 0) {
      line = this.#decoder.decode(tail);
    } else {
      const all = new Uint8Array(this.#partBytes + tail.length);
      let o = 0;
      for (const p of this.#parts) {
        all.set(p, o);
        o += p.length;
      }
      all.set(tail, o);
      line = this.#decoder.decode(all);
      this.#parts = [];
      this.#partBytes = 0;
    }
    return line;
  }

  #onLine(line: string): void {
    switch (this.#state) {
      case State.Op:
        // Compared with the newline, as wireguard-go's ReadString('\n'):
        // "get=1\r\n" is not an operation.
        if (line === "get=1") {
          this.#state = State.GetNewline;
        } else if (line === "set=1") {
          this.#state = State.Set;
          this.#pending = [];
          this.#pendingBytes = 0;
        } else {
          this.#log.error(`invalid UAPI operation: ${redactKeys(line)}`);
          this.#state = State.Closed;
        }
        break;
      case State.Set: {
        // bufio.ScanLines drops one trailing \r.
        const text = dropCR(line);
        if (text === "") {
          this.#finishSet(null);
          this.#state = State.Op;
          break;
        }
        this.#queueSetLine(text);
        if (this.#pendingBytes > this.#maxRequestBytes) this.#applyPending();
        break;
      }
      case State.Discard:
        if (dropCR(line) === "") this.#state = State.Op;
        break;
    }
  }

  #getByte(byte: number): void {
    if (byte !== NL) {
      // The byte is consumed; the next operation line starts after it.
      this.#reply(
        new UapiError(
          ERRNO.EINVAL,
          `trailing character in UAPI get: ${JSON.stringify(String.fromCharCode(byte))}`,
        ),
      );
      this.#state = State.Op;
      return;
    }
    let body: string;
    try {
      body = this.#handler.get();
    } catch (err) {
      this.#reply(toUapiError(err));
      this.#state = State.Op;
      return;
    }
    this.#write(body + formatErrno(0));
    this.#state = State.Op;
  }

  #queueSetLine(text: string): void {
    this.#pending.push(text);
    this.#pendingBytes += text.length + 1;
  }

  /**
   * Applies the queued lines. On the first failure the error is answered at
   * once and the rest of the request is discarded. Returns false on failure.
   */
  #applyPending(): boolean {
    const lines = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    try {
      this.#session ??= this.#handler.set();
      for (const text of lines) {
        // cutLine() without its array: this runs once per line of a set.
        const eq = text.indexOf("=");
        if (eq < 0) {
          throw new UapiError(ERRNO.EPROTO, `failed to parse line ${JSON.stringify(text)}`);
        }
        this.#session.line(text.slice(0, eq), text.slice(eq + 1));
      }
      return true;
    } catch (err) {
      // wireguard-go returns at the failing line without finishing the peer.
      this.#session = null;
      this.#reply(toUapiError(err));
      this.#state = State.Discard;
      return false;
    }
  }

  /** Applies what is queued, finishes the operation and replies (`extra` replaces errno=0). */
  #finishSet(extra: UapiError | null): void {
    if (!this.#applyPending()) return;
    try {
      this.#session?.end();
      this.#session = null;
    } catch (err) {
      this.#session = null;
      this.#reply(toUapiError(err));
      return;
    }
    if (extra) this.#reply(extra);
    else this.#write(formatErrno(0));
  }

  #lineTooLong(): void {
    this.#parts = [];
    this.#partBytes = 0;
    if (this.#state === State.Set) {
      // bufio.Scanner fails with ErrTooLong: IpcSetOperation finishes the
      // last peer, then answers EIO.
      this.#finishSet(new UapiError(ERRNO.EIO, "failed to read input: token too long"));
    } else if (this.#state === State.Discard) {
      // Already answered.
    } else {
      this.#log.error("invalid UAPI operation: line too long");
    }
    this.#state = State.Closed;
  }

  #reply(err: UapiError): void {
    this.#log.error(err.toString());
    this.#write(formatErrno(err.errno));
  }

  #write(text: string): void {
    this.#replied = true;
    this.#out(text);
  }

  #reset(): void {
    this.#parts = [];
    this.#partBytes = 0;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#session = null;
  }
}

function dropCR(line: string): string {
  return line.length > 0 && line.charCodeAt(line.length - 1) === CR ? line.slice(0, -1) : line;
}
