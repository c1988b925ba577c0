// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Configuration input as wireguard-tools `config.c` reads it, with its exact
 * messages: config files for `setconf`/`addconf`/`syncconf`
 * ({@link ConfigReader}) and the arguments of `wg set` ({@link readCommand}).
 *
 * Config files: `#` starts a comment; all whitespace is removed, even inside
 * values (`Private Key = …` works); section names and keys are
 * case-insensitive; a key needs a non-empty value; lines outside a section or
 * with unknown keys fail with "Line unrecognized: `…'" (showing the cleaned
 * line; `wg` prints no line numbers). Values:
 * - ListenPort: a port number or a UDP service name (getaddrinfo; numbers
 *   wrap like glibc's: 70000 is port 4464).
 * - FwMark: `off`, decimal, or `0x` hex, up to 0xffffffff.
 * - Keys: canonical base64 (44 characters ending in `=`).
 * - AllowedIPs: comma-separated `ip[/cidr]`; a `+` or `-` prefix makes the
 *   change incremental (no `replace_allowed_ips`), `-` removes; a host part
 *   below the prefix only warns.
 * - Endpoint: `host:port` or `[v6]:port`, resolved by getaddrinfo, retried on
 *   temporary failures `WG_ENDPOINT_RESOLUTION_RETRIES` times (15 by default,
 *   `infinity` for ever) with delays growing from 1 s by 6/5 up to 20 s.
 * - PersistentKeepalive: `off` or 0–65535.
 *
 * `setconf`/`syncconf` always send the private key (zero when absent), the
 * listen port and fwmark (0 when absent) and `replace_peers`; `addconf`
 * sends only what the file has. Every `[Peer]` starts with
 * `replace_allowed_ips` set.
 */
import {
  newDevice,
  newPeer,
  type WgAllowedIp,
  type WgDevice,
  WGDEVICE_HAS_FWMARK,
  WGDEVICE_HAS_LISTEN_PORT,
  WGDEVICE_HAS_PRIVATE_KEY,
  WGDEVICE_REPLACE_PEERS,
  type WgPeer,
  WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL,
  WGPEER_HAS_PRESHARED_KEY,
  WGPEER_HAS_PUBLIC_KEY,
  WGPEER_REMOVE_ME,
  WGPEER_REPLACE_ALLOWEDIPS,
} from "./containers.ts";
import {
  bstrText,
  bytesToBstr,
  cFixed,
  charIsDigit,
  charIsSpace,
  cstring,
  errnoOf,
  strcaseEqual,
  strerror,
  strncaseEqual,
  strtoul,
} from "./cstr.ts";
import { keyFromBase64 } from "./encoding.ts";
import { inetPton4, inetPton6 } from "./inet.ts";
import {
  EAI_FAIL,
  EAI_NODATA,
  EAI_NONAME,
  EAI_SYSTEM,
  type GaiResult,
  gaiStrerror,
  resolveHost,
  type Resolver,
  type SockAddr,
} from "./resolve.ts";
import { type Stdio, WgExit } from "./stdio.ts";

/** What config parsing needs from its invocation. */
export interface ConfigContext {
  stdio: Stdio;
  env: Record<string, string | undefined>;
  resolver: Resolver;
  /** usleep() for endpoint resolution retries. */
  sleep(ms: number): Promise<void>;
}

function gaiMessage(r: GaiResult & { ok: false }): string {
  return r.code === EAI_SYSTEM ? strerror(r.errno) : gaiStrerror(r.code);
}

/** parse_port(): a port number or service name, or null after printing why. */
export function parsePort(ctx: ConfigContext, value: string): number | null {
  if (value.length === 0) {
    ctx.stdio.err("Unable to parse empty port\n");
    return null;
  }
  const r = ctx.resolver.getaddrinfo(null, value);
  if (!r.ok) {
    ctx.stdio.err(`${gaiMessage(r)}: \`${value}'\n`);
    return null;
  }
  if (!r.addr) {
    ctx.stdio.err(`Neither IPv4 nor IPv6 address found: \`${value}'\n`);
    return null;
  }
  return r.addr.port;
}

/** parse_fwmark(): `off`, decimal or 0x-hex up to 0xffffffff, or null after printing why. */
export function parseFwmark(ctx: ConfigContext, value: string): number | null {
  if (strcaseEqual(value, "off")) return 0;
  if (charIsDigit(value.charCodeAt(0))) {
    const base = value.length > 2 && value[0] === "0" && value[1] === "x" ? 16 : 10;
    const r = strtoul(value, base);
    if (r.end === value.length && r.value <= 0xffffffffn) return Number(r.value);
  }
  ctx.stdio.err(`Fwmark is neither 0/off nor 0-0xffffffff: \`${value}'\n`);
  return null;
}

/** parse_key(): a base64 key, or null after printing why. */
export function parseKey(ctx: ConfigContext, value: string): Uint8Array | null {
  const key = keyFromBase64(value);
  if (!key) ctx.stdio.err(`Key is not the correct length or format: \`${cstring(value)}'\n`);
  return key;
}

/** Reads up to `n` bytes (fewer only at end of file); sets `error` on a read error. */
async function readUpTo(
  file: Deno.FsFile,
  n: number,
): Promise<{ bytes: Uint8Array; error: number }> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    let r: number | null;
    try {
      r = await file.read(out.subarray(got));
    } catch (e) {
      return { bytes: out.subarray(0, got), error: errnoOf(e) };
    }
    if (r === null || r === 0) break;
    got += r;
  }
  return { bytes: out.subarray(0, got), error: 0 };
}

/**
 * parse_keyfile(): a key from a file (private-key, preshared-key): 44
 * base64 characters and then only whitespace; an empty file (or /dev/null)
 * is the zero key, which clears it. Null after printing why.
 */
export async function parseKeyfile(ctx: ConfigContext, path: string): Promise<Uint8Array | null> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(bstrText(path), { read: true });
  } catch (e) {
    ctx.stdio.perror("fopen", errnoOf(e));
    return null;
  }
  try {
    const head = await readUpTo(file, 44);
    if (head.bytes.length !== 44) {
      if (head.error === 0 && head.bytes.length === 0) {
        // ftell() must say 0: true for files and /dev/null, not for pipes.
        let pos = -1;
        try {
          pos = await file.seek(0, Deno.SeekMode.Current);
        } catch {
          pos = -1;
        }
        if (pos === 0) return new Uint8Array(32);
      }
      ctx.stdio.err("Invalid length key in key file\n");
      return null;
    }
    const chunk = new Uint8Array(4096);
    for (;;) {
      let n: number | null;
      try {
        n = await file.read(chunk);
      } catch (e) {
        ctx.stdio.perror("getc", errnoOf(e));
        return null;
      }
      if (n === null || n === 0) break;
      for (let i = 0; i < n; i++) {
        if (!charIsSpace(chunk[i])) {
          ctx.stdio.err(
            `Found trailing character in key file: \`${String.fromCharCode(chunk[i])}'\n`,
          );
          return null;
        }
      }
    }
    return parseKey(ctx, bytesToBstr(head.bytes));
  } finally {
    file.close();
  }
}

/** parse_ip(): IPv6 if it has a colon, else dotted-quad IPv4; null after printing why. */
function parseIp(ctx: ConfigContext, value: string): Uint8Array | null {
  const ip = value.includes(":") ? inetPton6(value) : inetPton4(value);
  if (!ip) ctx.stdio.err(`Unable to parse IP address: \`${value}'\n`);
  return ip;
}

/** parse_dns_retries(): 15 by default, -1 for `infinity`; a bad value exits 1. */
function parseDnsRetries(ctx: ConfigContext): number {
  const v = ctx.env.WG_ENDPOINT_RESOLUTION_RETRIES;
  if (v === undefined) return 15;
  if (v === "infinity") return -1;
  // When strtoul converts nothing, *end is the first character: NUL only for "".
  const r = strtoul(v, 10);
  if (r.end !== v.length || r.value > 0x7fffffffn) {
    ctx.stdio.err(`Unable to parse WG_ENDPOINT_RESOLUTION_RETRIES: \`${v}'\n`);
    throw new WgExit(1);
  }
  return Number(r.value);
}

/**
 * parse_endpoint(): `host:port` or `[host]:port` through getaddrinfo, retrying
 * temporary failures; null after printing why.
 */
export async function parseEndpoint(ctx: ConfigContext, value: string): Promise<SockAddr | null> {
  let retries = parseDnsRetries(ctx);
  if (value.length === 0) {
    ctx.stdio.err("Unable to parse empty endpoint\n");
    return null;
  }
  let host: string;
  let port: string;
  if (value[0] === "[") {
    const close = value.indexOf("]");
    if (close < 0) {
      ctx.stdio.err(`Unable to find matching brace of endpoint: \`${value}'\n`);
      return null;
    }
    if (value[close + 1] !== ":" || close + 2 >= value.length) {
      ctx.stdio.err(`Unable to find port of endpoint: \`${value}'\n`);
      return null;
    }
    host = value.slice(1, close);
    port = value.slice(close + 2);
  } else {
    const colon = value.lastIndexOf(":");
    if (colon < 0 || colon + 1 >= value.length) {
      ctx.stdio.err(`Unable to find port of endpoint: \`${value}'\n`);
      return null;
    }
    host = value.slice(0, colon);
    port = value.slice(colon + 1);
  }
  for (let timeout = 1_000_000;; timeout = Math.min(20_000_000, Math.floor((timeout * 6) / 5))) {
    const r = await resolveHost(ctx.resolver, host, port);
    if (r.ok) {
      if (!r.addr) {
        ctx.stdio.err(`Neither IPv4 nor IPv6 address found: \`${value}'\n`);
        return null;
      }
      return r.addr;
    }
    // EAI_NONAME, EAI_FAIL and EAI_NODATA are permanent; the rest may pass.
    if (
      r.code === EAI_NONAME || r.code === EAI_FAIL || r.code === EAI_NODATA ||
      (retries >= 0 && retries-- === 0)
    ) {
      ctx.stdio.err(`${gaiMessage(r)}: \`${value}'\n`);
      return null;
    }
    ctx.stdio.err(
      `${gaiMessage(r)}: \`${value}'. Trying again in ${cFixed(timeout / 1e6, 2)} seconds...\n`,
    );
    await ctx.sleep(timeout / 1000);
  }
}

/** parse_persistent_keepalive(): `off` or 0–65535; null after printing why. */
export function parsePersistentKeepalive(ctx: ConfigContext, value: string): number | null {
  if (strcaseEqual(value, "off")) return 0;
  if (charIsDigit(value.charCodeAt(0))) {
    const r = strtoul(value, 10);
    if (r.end === value.length && r.value <= 65535n) return Number(r.value);
  }
  ctx.stdio.err(`Persistent keepalive interval is neither 0/off nor 1-65535: \`${value}'\n`);
  return null;
}

/** validate_netmask(): no address bits set below the prefix length. */
export function validateNetmask(ip: WgAllowedIp): boolean {
  const total = ip.addr.length * 8;
  for (let bit = ip.cidr; bit < total; bit++) {
    if (ip.addr[bit >> 3] & (0x80 >> (bit & 7))) return false;
  }
  return true;
}

/**
 * parse_allowedips(): appends a comma-separated list to `peer`, setting
 * WGPEER_REPLACE_ALLOWEDIPS unless an entry has a `+`/`-` prefix. An empty
 * value only sets the flag (replace with nothing). False after printing why.
 */
export function parseAllowedIps(ctx: ConfigContext, peer: WgPeer, value: string): boolean {
  peer.flags |= WGPEER_REPLACE_ALLOWEDIPS;
  if (value.length === 0) return true;
  for (let entry of value.split(",")) {
    let remove = false;
    if (entry[0] === "-" || entry[0] === "+") {
      remove = entry[0] === "-";
      peer.flags &= ~WGPEER_REPLACE_ALLOWEDIPS;
      entry = entry.slice(1);
    }
    const slash = entry.indexOf("/");
    const ipText = slash < 0 ? entry : entry.slice(0, slash);
    const mask = slash < 0 ? null : entry.slice(slash + 1);
    const addr = parseIp(ctx, ipText);
    if (!addr) return false;
    const family = addr.length === 4 ? 4 : 6;
    let cidr: number;
    if (mask !== null) {
      const r = charIsDigit(mask.charCodeAt(0)) ? strtoul(mask, 10) : null;
      if (!r || r.end !== mask.length || r.value > (family === 4 ? 32n : 128n)) {
        ctx.stdio.err(`AllowedIP is not in the correct format: \`${entry}'\n`);
        return false;
      }
      cidr = Number(r.value);
    } else {
      cidr = family === 4 ? 32 : 128;
    }
    const ip: WgAllowedIp = { family, addr, cidr, remove };
    if (!validateNetmask(ip)) {
      ctx.stdio.err(`Warning: AllowedIP has nonzero host part: ${ipText}/${mask}\n`);
    }
    peer.allowedIps.push(ip);
  }
  return true;
}

/** get_value(): the value after a case-insensitive `key=` prefix, or null (also for an empty value). */
function getValue(line: string, key: string): string | null {
  if (key.length >= line.length) return null;
  if (!strncaseEqual(line, key, key.length)) return null;
  return line.slice(key.length);
}

/** Config file reading, line by line (config_read_init/line/finish). */
export class ConfigReader {
  readonly device: WgDevice = newDevice();
  readonly #ctx: ConfigContext;
  #lastPeer: WgPeer | null = null;
  #inPeer = false;
  #inDevice = false;

  /** `append` is addconf: only the fields the file has are sent, and peers are not replaced. */
  constructor(ctx: ConfigContext, append: boolean) {
    this.#ctx = ctx;
    if (!append) {
      this.device.flags |= WGDEVICE_REPLACE_PEERS | WGDEVICE_HAS_PRIVATE_KEY |
        WGDEVICE_HAS_FWMARK | WGDEVICE_HAS_LISTEN_PORT;
    }
  }

  /** config_read_line(): one line as getline() returns it; false after printing why. */
  async line(input: string): Promise<boolean> {
    let text = cstring(input);
    const hash = text.indexOf("#");
    if (hash >= 0) text = text.slice(0, hash);
    let clean = "";
    for (let i = 0; i < text.length; i++) {
      if (!charIsSpace(text.charCodeAt(i))) clean += text[i];
    }
    if (clean.length === 0) return true;
    return await this.#processLine(clean);
  }

  async #processLine(line: string): Promise<boolean> {
    const ctx = this.#ctx;
    const dev = this.device;
    if (strcaseEqual(line, "[Interface]")) {
      this.#inPeer = false;
      this.#inDevice = true;
      return true;
    }
    if (strcaseEqual(line, "[Peer]")) {
      const peer = newPeer();
      dev.peers.push(peer);
      this.#lastPeer = peer;
      this.#inPeer = true;
      this.#inDevice = false;
      peer.flags |= WGPEER_REPLACE_ALLOWEDIPS;
      return true;
    }
    let value: string | null;
    if (this.#inDevice) {
      if ((value = getValue(line, "ListenPort=")) !== null) {
        const port = parsePort(ctx, value);
        if (port === null) return false;
        dev.listenPort = port;
        dev.flags |= WGDEVICE_HAS_LISTEN_PORT;
        return true;
      }
      if ((value = getValue(line, "FwMark=")) !== null) {
        const mark = parseFwmark(ctx, value);
        if (mark === null) return false;
        dev.fwmark = mark;
        dev.flags |= WGDEVICE_HAS_FWMARK;
        return true;
      }
      if ((value = getValue(line, "PrivateKey=")) !== null) {
        const key = parseKey(ctx, value);
        if (!key) return false;
        dev.privateKey = key;
        dev.flags |= WGDEVICE_HAS_PRIVATE_KEY;
        return true;
      }
    } else if (this.#inPeer && this.#lastPeer) {
      const peer = this.#lastPeer;
      if ((value = getValue(line, "Endpoint=")) !== null) {
        const ep = await parseEndpoint(ctx, value);
        if (!ep) return false;
        peer.endpoint = ep;
        return true;
      }
      if ((value = getValue(line, "PublicKey=")) !== null) {
        const key = parseKey(ctx, value);
        if (!key) return false;
        peer.publicKey = key;
        peer.flags |= WGPEER_HAS_PUBLIC_KEY;
        return true;
      }
      if ((value = getValue(line, "AllowedIPs=")) !== null) {
        return parseAllowedIps(ctx, peer, value);
      }
      if ((value = getValue(line, "PersistentKeepalive=")) !== null) {
        const ka = parsePersistentKeepalive(ctx, value);
        if (ka === null) return false;
        peer.persistentKeepalive = ka;
        peer.flags |= WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL;
        return true;
      }
      if ((value = getValue(line, "PresharedKey=")) !== null) {
        const key = parseKey(ctx, value);
        if (!key) return false;
        peer.presharedKey = key;
        peer.flags |= WGPEER_HAS_PRESHARED_KEY;
        return true;
      }
    }
    ctx.stdio.err(`Line unrecognized: \`${line}'\n`);
    return false;
  }

  /** config_read_finish(): the device, or null (after printing) when a peer has no public key. */
  finish(): WgDevice | null {
    for (const peer of this.device.peers) {
      if (!(peer.flags & WGPEER_HAS_PUBLIC_KEY)) {
        this.#ctx.stdio.err("A peer is missing a public key\n");
        return null;
      }
    }
    return this.device;
  }
}

/** getline() split: each line keeps its "\n"; a last line without one is kept too. */
export function splitLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf("\n", start);
    if (nl < 0) break;
    lines.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
  if (start < text.length) lines.push(text.slice(start));
  return lines;
}

/**
 * config_read_cmd(): the arguments after `wg set <interface>`; null after
 * printing why. Device options must come before the first `peer`.
 */
export async function readCommand(
  ctx: ConfigContext,
  args: readonly string[],
): Promise<WgDevice | null> {
  const dev = newDevice();
  let peer: WgPeer | null = null;
  let i = 0;
  while (i < args.length) {
    const left = args.length - i;
    const opt = args[i];
    const arg = args[i + 1];
    if (opt === "listen-port" && left >= 2 && !peer) {
      const port = parsePort(ctx, arg);
      if (port === null) return null;
      dev.listenPort = port;
      dev.flags |= WGDEVICE_HAS_LISTEN_PORT;
      i += 2;
    } else if (opt === "fwmark" && left >= 2 && !peer) {
      const mark = parseFwmark(ctx, arg);
      if (mark === null) return null;
      dev.fwmark = mark;
      dev.flags |= WGDEVICE_HAS_FWMARK;
      i += 2;
    } else if (opt === "private-key" && left >= 2 && !peer) {
      const key = await parseKeyfile(ctx, arg);
      if (!key) return null;
      dev.privateKey = key;
      dev.flags |= WGDEVICE_HAS_PRIVATE_KEY;
      i += 2;
    } else if (opt === "peer" && left >= 2) {
      peer = newPeer();
      dev.peers.push(peer);
      const key = parseKey(ctx, arg);
      if (!key) return null;
      peer.publicKey = key;
      peer.flags |= WGPEER_HAS_PUBLIC_KEY;
      i += 2;
    } else if (opt === "remove" && left >= 1 && peer) {
      peer.flags |= WGPEER_REMOVE_ME;
      i += 1;
    } else if (opt === "endpoint" && left >= 2 && peer) {
      const ep = await parseEndpoint(ctx, arg);
      if (!ep) return null;
      peer.endpoint = ep;
      i += 2;
    } else if (opt === "allowed-ips" && left >= 2 && peer) {
      let stripped = "";
      for (let k = 0; k < arg.length; k++) {
        if (!charIsSpace(arg.charCodeAt(k))) stripped += arg[k];
      }
      if (!parseAllowedIps(ctx, peer, stripped)) return null;
      i += 2;
    } else if (opt === "persistent-keepalive" && left >= 2 && peer) {
      const ka = parsePersistentKeepalive(ctx, arg);
      if (ka === null) return null;
      peer.persistentKeepalive = ka;
      peer.flags |= WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL;
      i += 2;
    } else if (opt === "preshared-key" && left >= 2 && peer) {
      const key = await parseKeyfile(ctx, arg);
      if (!key) return null;
      peer.presharedKey = key;
      peer.flags |= WGPEER_HAS_PRESHARED_KEY;
      i += 2;
    } else {
      ctx.stdio.err(`Invalid argument: ${opt}\n`);
      return null;
    }
  }
  return dev;
}
