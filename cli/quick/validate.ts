// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Checking a whole configuration before `up` creates anything, so that a
 * mistake is reported with its line instead of being found half-way through
 * (wg-quick runs `ip` and `wg` on the values as they come and then rolls
 * back). Every problem is a {@link ConfigProblem}: a line number and a
 * message naming the key, e.g. `Address: "10.0.0.300/24" is not an IP
 * prefix`.
 *
 * - The wg-quick keys ({@link checkQuickKeys}, pure): each `Address` must be
 *   an IPv4 or IPv6 address with an optional prefix length in range; each
 *   `DNS` entry that is a server (all digits and dots, or with a `:`) must be
 *   an address, the others must look like domain names (a leading `~` is
 *   allowed, for systemd-resolved routing domains); `MTU` a number from 68
 *   to 65535 (1280 at least when an Address is IPv6); `Table` `auto`, `off`,
 *   a number or a table name iproute2 knows.
 * - Hooks ({@link checkHooks}): `bash -n` with the options they run with,
 *   after `%i` is replaced.
 * - The wg(8) part ({@link checkWgLines}): read by wg's own parser
 *   (cli/wg/config.ts, `addconf` rules) with endpoint names not resolved,
 *   so it accepts exactly what `wg addconf` accepts. Keys are never shown:
 *   a bad key is described by its field and what is wrong with it, and a line
 *   wg does not recognise is described by its key and section only.
 *
 * {@link buildWgDevice} then reads the wg part again, resolving endpoint
 * names (with wg's retries), into the request that `wg addconf` would send.
 */
import { type ConfigContext, ConfigReader } from "../wg/config.ts";
import type { WgDevice } from "../wg/containers.ts";
import { WGPEER_HAS_PUBLIC_KEY } from "../wg/containers.ts";
import { bstr, charIsSpace, strcaseEqual } from "../wg/cstr.ts";
import { WG_KEY_LEN_BASE64 } from "../wg/encoding.ts";
import { inetPton4, inetPton6 } from "../wg/inet.ts";
import type { GaiResult, Resolver } from "../wg/resolve.ts";
import { Stdio, WgExit, type WgWriter } from "../wg/stdio.ts";
import { isDnsServer, type QuickConfig, type SourceLine, splitList } from "./config.ts";

/** One mistake in the file. */
export interface ConfigProblem {
  /** Line number, from 1. */
  readonly line: number;
  readonly message: string;
}

/** Routing table names iproute2 always knows, besides those in rt_tables. */
export const BUILTIN_TABLES: readonly string[] = ["default", "main", "local"];

/** Why `text` is not an `ip[/len]` prefix, or null when it is one. */
function prefixProblem(text: string): string | null {
  const slash = text.indexOf("/");
  const ip = slash < 0 ? text : text.slice(0, slash);
  const v6 = ip.includes(":");
  if ((v6 ? inetPton6(ip) : inetPton4(ip)) === null) return "is not an IP prefix";
  if (slash < 0) return null;
  const len = text.slice(slash + 1);
  const max = v6 ? 128 : 32;
  if (!/^[0-9]{1,3}$/.test(len) || Number(len) > max) {
    return `is not an IP prefix (the length after / must be 0 to ${max})`;
  }
  return null;
}

/** Whether a DNS server entry is an address (IPv6 may carry a `%scope`). */
function isAddress(text: string): boolean {
  if (!text.includes(":")) return inetPton4(text) !== null;
  const pct = text.indexOf("%");
  return inetPton6(pct < 0 ? text : text.slice(0, pct)) !== null &&
    (pct < 0 || /^%[A-Za-z0-9_.-]+$/.test(text.slice(pct)));
}

/**
 * checkQuickKeys() checks Address, DNS, MTU and Table (see the module doc).
 * `tableNames` are the names in iproute2's rt_tables files; it is consulted
 * only for a Table that is neither a keyword nor a number.
 */
export function checkQuickKeys(
  cfg: QuickConfig,
  tableNames: ReadonlySet<string> = new Set(),
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (line: number, message: string) => problems.push({ line, message });
  const hasV6 = cfg.addresses.some((a) => a.includes(":"));
  for (const { line, key, value } of cfg.entries) {
    switch (key) {
      case "address":
        for (const a of splitList(value)) {
          const why = prefixProblem(a);
          if (why !== null) add(line, `Address: "${a}" ${why}`);
        }
        break;
      case "dns":
        for (const d of splitList(value)) {
          if (isDnsServer(d) ? !isAddress(d) : !/^~?[A-Za-z0-9_.-]+$/.test(d)) {
            add(
              line,
              isDnsServer(d)
                ? `DNS: "${d}" is not an IP address`
                : `DNS: "${d}" is neither an IP address nor a search domain`,
            );
          }
        }
        break;
      case "mtu": {
        const n = /^[0-9]{1,6}$/.test(value) ? Number(value) : NaN;
        if (!(n >= 68 && n <= 65535)) {
          add(line, `MTU: "${value}" is not a number from 68 to 65535`);
        } else if (hasV6 && n < 1280) {
          add(line, `MTU: ${n} is below 1280, the smallest MTU IPv6 works with (Address has IPv6)`);
        }
        break;
      }
      case "table":
        if (
          value !== "auto" && value !== "off" &&
          !(/^[0-9]{1,10}$/.test(value) && Number(value) <= 0xffffffff) &&
          !BUILTIN_TABLES.includes(value) && !tableNames.has(value)
        ) {
          add(
            line,
            `Table: "${value}" is not auto, off, a table number or a name from ` +
              "/etc/iproute2/rt_tables",
          );
        }
        break;
    }
  }
  return problems;
}

/** rtTableNames() reads the names of an rt_tables file (`NUMBER NAME` lines). */
export function rtTableNames(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split("\n")) {
    const m = /^\s*(?:0x[0-9a-fA-F]+|[0-9]+)\s+([^\s#]+)/.exec(raw);
    if (m !== null) out.push(m[1]);
  }
  return out;
}

/** Runs `bash -n` on a script; resolves to bash's complaint, or null when it parses. */
export type SyntaxChecker = (script: string) => Promise<string | null>;

/** How many `bash -n` run at once. */
const HOOK_CHECKS_AT_ONCE = 4;

/** checkHooks() runs `check` on every hook (with `%i` replaced), a few at a time. */
export async function checkHooks(cfg: QuickConfig, check: SyntaxChecker): Promise<ConfigProblem[]> {
  const names: Record<string, string> = {
    preup: "PreUp",
    postup: "PostUp",
    predown: "PreDown",
    postdown: "PostDown",
  };
  const hooks = cfg.entries.filter((e) => e.key in names);
  const results: (string | null)[] = new Array(hooks.length).fill(null);
  // A few at a time: a file may hold any number of hooks.
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < hooks.length; i = next++) {
      results[i] = await check(hooks[i].value.replaceAll("%i", cfg.iface));
    }
  };
  await Promise.all(Array.from({ length: Math.min(HOOK_CHECKS_AT_ONCE, hooks.length) }, worker));
  const problems: ConfigProblem[] = [];
  hooks.forEach((h, i) => {
    const why = results[i];
    if (why !== null) problems.push({ line: h.line, message: `${names[h.key]}: ${why}` });
  });
  return problems;
}

/** The fields whose values are keys, and are never shown. */
const KEY_FIELDS = new Map([
  ["privatekey", "PrivateKey"],
  ["publickey", "PublicKey"],
  ["presharedkey", "PresharedKey"],
]);

/** A line as wg's config reader cleans it: comment cut, every blank removed. */
function cleanLine(text: string): string {
  const hash = text.indexOf("#");
  const s = hash < 0 ? text : text.slice(0, hash);
  let out = "";
  for (let i = 0; i < s.length; i++) if (!charIsSpace(s.charCodeAt(i))) out += s[i];
  return out;
}

/** What is wrong with a key's value, in words that do not reveal it. */
function keyProblem(field: string, value: string): string {
  const what = "a key is 44 characters of base64 ending in `=', as `wg genkey' prints";
  if (value.length === 0) return `${field} is empty (${what})`;
  if (value.length !== WG_KEY_LEN_BASE64) {
    return `${field} is not a valid key: it has ${value.length} characters (${what})`;
  }
  return `${field} is not a valid key: not canonical base64 of 32 bytes (${what})`;
}

/**
 * The message for a line wg refused, with nothing of a key in it: wg's own
 * message for other values (ports, fwmarks, allowed IPs, endpoints), ours
 * for keys and for lines it does not recognise.
 */
function wgLineProblem(clean: string, section: string, wgMessage: string): string {
  const eq = clean.indexOf("=");
  const key = eq < 0 ? "" : clean.slice(0, eq);
  // Key names are short words (the longest is PersistentKeepalive); anything else may be a
  // pasted key (43 characters before its `='), so it is not shown.
  if (!/^[A-Za-z][A-Za-z0-9_-]{0,23}$/.test(key)) {
    return clean.startsWith("[") && clean.endsWith("]") && clean.length <= 24
      ? `unknown section ${clean}`
      : "not a section header nor a `Key = value' line (the line is not shown: it may hold a key)";
  }
  const unrecognized = /^Line unrecognized/.test(wgMessage);
  const field = KEY_FIELDS.get(key.toLowerCase());
  if (field !== undefined && !unrecognized) return keyProblem(field, clean.slice(eq + 1));
  if (unrecognized) {
    if (eq + 1 === clean.length) return `${key} has no value`;
    return section === ""
      ? `${key} is outside any [Interface] or [Peer] section`
      : `${key} is not a key of ${section}`;
  }
  return wgMessage.replace(/\n$/, "").replaceAll("\n", "; ");
}

/** A writer that keeps what is written, for wg's messages. */
function collector(onText: (text: string) => void): WgWriter {
  const dec = new TextDecoder();
  return {
    write(p: Uint8Array): Promise<number> {
      onText(dec.decode(p));
      return Promise.resolve(p.length);
    },
  };
}

/** A resolver that answers every host with a dummy address, only checking the service. */
function syntaxOnly(real: Resolver): Resolver {
  return {
    getaddrinfo(host: string | null, service: string): GaiResult {
      const port = real.getaddrinfo(null, service);
      if (host === null || !port.ok) return port;
      return { ok: true, addr: { family: 4, addr: new Uint8Array(4), port: 0, scopeId: 0 } };
    },
    ifIndexToName: (index) => real.ifIndexToName(index),
  };
}

/** What {@link checkWgLines} and {@link buildWgDevice} need. */
export interface WgParseOptions {
  resolver: Resolver;
  /** The environment (WG_ENDPOINT_RESOLUTION_RETRIES). */
  env: Record<string, string | undefined>;
  sleep?: (ms: number) => Promise<void>;
  /** Called with wg's messages that are not errors (retries, warnings) and their line. */
  notice?: (line: number, text: string) => void;
}

/** Reads the wg lines; problems by line, and the device when there were none. */
async function readWgLines(
  lines: readonly SourceLine[],
  opts: WgParseOptions,
  resolver: Resolver,
): Promise<{ problems: ConfigProblem[]; device: WgDevice | null }> {
  let pending = "";
  const sink = collector((t) => (pending += t));
  const stdio = new Stdio(sink, sink);
  const ctx: ConfigContext = {
    stdio,
    env: opts.env,
    resolver,
    sleep: opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
  };
  const reader = new ConfigReader(ctx, true);
  const problems: ConfigProblem[] = [];
  const peerLines: number[] = [];
  let section = "";
  for (const { line, text } of lines) {
    const clean = cleanLine(text);
    if (strcaseEqual(clean, "[Interface]")) section = "[Interface]";
    if (strcaseEqual(clean, "[Peer]")) {
      section = "[Peer]";
      peerLines.push(line);
    }
    let ok: boolean;
    try {
      ok = await reader.line(bstr(text) + "\n");
    } catch (err) {
      // WG_ENDPOINT_RESOLUTION_RETRIES that wg cannot read: it exits.
      if (!(err instanceof WgExit)) throw err;
      ok = false;
    }
    await stdio.flush();
    if (!ok) {
      problems.push({ line, message: wgLineProblem(clean, section, pending) });
    } else if (pending !== "") {
      opts.notice?.(line, pending);
    }
    pending = "";
  }
  reader.device.peers.forEach((peer, i) => {
    if (!(peer.flags & WGPEER_HAS_PUBLIC_KEY)) {
      problems.push({ line: peerLines[i] ?? 0, message: "[Peer] has no PublicKey" });
    }
  });
  problems.sort((a, b) => a.line - b.line);
  return { problems, device: problems.length === 0 ? reader.device : null };
}

/**
 * checkWgLines() checks the wg(8) part as `wg addconf` would read it,
 * without resolving endpoint names. Warnings (an allowed IP with host bits)
 * go to `opts.notice`.
 */
export async function checkWgLines(
  lines: readonly SourceLine[],
  opts: WgParseOptions,
): Promise<ConfigProblem[]> {
  return (await readWgLines(lines, opts, syntaxOnly(opts.resolver))).problems;
}

/**
 * buildWgDevice() reads the wg(8) part into the `addconf` request, endpoint
 * names resolved (with wg's retries, reported to `opts.notice`). Problems
 * here are endpoints that do not resolve.
 */
export async function buildWgDevice(
  lines: readonly SourceLine[],
  opts: WgParseOptions,
): Promise<{ problems: ConfigProblem[]; device: WgDevice | null }> {
  return await readWgLines(lines, opts, opts.resolver);
}
