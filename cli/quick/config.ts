// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * wg-quick's configuration format, read exactly as wg-quick(8)'s Linux
 * script reads it (wireguard-tools `src/wg-quick/linux.bash`,
 * `parse_options`), so that a file behaves the same under `gotatun up` as
 * under `wg-quick up`:
 *
 * - The argument is an interface name (`[a-zA-Z0-9_=+.-]{1,15}`, which
 *   becomes `/etc/wireguard/NAME.conf`) or a path whose basename is the
 *   interface name followed by `.conf`. Note that `wg0.conf` alone is a valid
 *   *name*, so it means `/etc/wireguard/wg0.conf.conf`, as in wg-quick.
 * - Lines are read as bash `read -r` reads them: split at `\n`, leading and
 *   trailing blanks removed, a last line without `\n` kept only when it has
 *   something in it.
 * - A comment starts at the first `#`; the key is what comes before the
 *   first `=`, the value what follows, both trimmed. Keys and section
 *   headers are matched case-insensitively (bash `nocasematch`).
 * - Inside `[Interface]`, `Address`, `DNS`, `MTU`, `Table`, `PreUp`,
 *   `PostUp`, `PreDown`, `PostDown` and `SaveConfig` belong to wg-quick;
 *   every other line (comments, blank lines and `[Peer]` sections included)
 *   is passed to `wg` verbatim: that is the `strip` output.
 * - `Address` and `DNS` values are split at commas and blanks; a DNS entry
 *   that is all digits and dots, or contains a `:`, is a server, anything
 *   else a search domain.
 * - Hooks keep the raw text after the first `=`, `#` included (current
 *   wireguard-tools; releases before 2021-11 cut hooks at `#` too).
 *
 * Pure: no `Deno.*`, unit-tested without permissions.
 */

/** What wg-quick takes out of a configuration file. */
export interface QuickConfig {
  /** Interface name, from the file name. */
  readonly iface: string;
  /** `Address =` entries in order, as written (`10.0.0.1/24`, `fd00::1`). */
  readonly addresses: readonly string[];
  /** `DNS =` entries that are addresses. */
  readonly dns: readonly string[];
  /** `DNS =` entries that are search domains. */
  readonly dnsSearch: readonly string[];
  /** `MTU =` (last one wins), "" when unset (automatic). */
  readonly mtu: string;
  /** `Table =` (last one wins), "" when unset; `auto`, `off` or a table. */
  readonly table: string;
  readonly preUp: readonly string[];
  readonly postUp: readonly string[];
  readonly preDown: readonly string[];
  readonly postDown: readonly string[];
  /** `SaveConfig = true`. */
  readonly saveConfig: boolean;
  /** Everything else, one line each with `\n`: what `wg addconf` gets. */
  readonly wgConfig: string;
  /** The lines of {@link wgConfig} with their line numbers in the file (from 1). */
  readonly wgLines: readonly SourceLine[];
  /** The wg-quick keys in file order, with their line numbers (for validation messages). */
  readonly entries: readonly QuickEntry[];
}

/** A line of the file and its number (from 1). */
export interface SourceLine {
  readonly line: number;
  readonly text: string;
}

/** One wg-quick key of `[Interface]`, as found on line `line`. */
export interface QuickEntry {
  readonly line: number;
  /** The key in lower case: `address`, `dns`, `mtu`, `table`, `preup`, … */
  readonly key: string;
  /** The value cut at `#` (hooks: the raw value, `#` included). */
  readonly value: string;
}

/** A configuration problem, reported as wg-quick's `die` would. */
export class QuickConfigError extends Error {
  /** The line of the file it is about (from 1), 0 when none. */
  readonly line: number;
  constructor(message: string, line = 0) {
    super(message);
    this.name = "QuickConfigError";
    this.line = line;
  }
}

/** An interface name as wg-quick accepts it (IFNAMSIZ - 1 = 15 bytes at most). */
const NAME_RE = /^[a-zA-Z0-9_=+.-]{1,15}$/;
/** A configuration path whose basename is a valid interface name plus `.conf`. */
const PATH_RE = /(?:^|\/)([a-zA-Z0-9_=+.-]{1,15})\.conf$/;

/** Where the configuration files of bare interface names live. */
export const CONFIG_DIR = "/etc/wireguard";

/**
 * configPathFor() turns the command-line argument into a file path: a bare
 * interface name becomes `/etc/wireguard/NAME.conf`, anything else is
 * taken as a path.
 */
export function configPathFor(arg: string): string {
  return NAME_RE.test(arg) ? `${CONFIG_DIR}/${arg}.conf` : arg;
}

/**
 * interfaceFromPath() is the interface a configuration path names (its
 * basename without `.conf`), or null when the basename is not a valid
 * interface name followed by `.conf` (wg-quick dies then).
 */
export function interfaceFromPath(path: string): string | null {
  const m = PATH_RE.exec(path);
  return m === null ? null : m[1];
}

/** The characters bash's `[[:space:]]` matches in the C locale. */
const SPACE = " \t\n\v\f\r";
/** The characters `read` strips from both ends of a line (default IFS whitespace). */
const IFS_BLANK = " \t\n";

function trimChars(s: string, chars: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && chars.includes(s[a])) a++;
  while (b > a && chars.includes(s[b - 1])) b--;
  return s.slice(a, b);
}

/** ASCII-only lowercase: bash's nocasematch in the C locale folds nothing else. */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/** Word splitting of `${value//,/ }` (commas and default IFS blanks separate). */
export function splitList(value: string): string[] {
  return value.split(/[, \t\n]+/).filter((w) => w !== "");
}

/**
 * readLines() splits text as `while read -r line || [[ -n $line ]]` does:
 * each line trimmed of blanks, NUL bytes dropped, an unterminated last line
 * kept only when it is not empty after trimming. With `keepTail` false it is
 * a plain `while read -r line`, which drops an unterminated last line.
 */
export function readLines(text: string, keepTail = true): string[] {
  const parts = text.replaceAll("\0", "").split("\n");
  const last = parts.pop() ?? "";
  const lines = parts.map((l) => trimChars(l, IFS_BLANK));
  const tail = trimChars(last, IFS_BLANK);
  if (keepTail && tail !== "") lines.push(tail);
  return lines;
}

/**
 * readBool() is wg-quick's `read_bool`: `true` or `false` (any case, since
 * it runs under nocasematch), anything else is an error.
 */
function readBool(value: string): boolean {
  const v = asciiLower(value);
  if (v === "true") return true;
  if (v === "false") return false;
  throw new QuickConfigError(`\`${value}' is neither true nor false`);
}

/** The hook keys, whose values keep their `#`. */
export const HOOK_KEYS: ReadonlySet<string> = new Set(["preup", "postup", "predown", "postdown"]);

/** A DNS entry that is a server address rather than a search domain. */
export function isDnsServer(v: string): boolean {
  return /^[0-9.]+$/.test(v) || v.includes(":");
}

/**
 * parseQuickConfig() reads a configuration file's text for interface
 * `iface`. Throws {@link QuickConfigError} for a bad `SaveConfig` value.
 */
export function parseQuickConfig(iface: string, text: string): QuickConfig {
  const addresses: string[] = [];
  const dns: string[] = [];
  const dnsSearch: string[] = [];
  const preUp: string[] = [];
  const postUp: string[] = [];
  const preDown: string[] = [];
  const postDown: string[] = [];
  let mtu = "";
  let table = "";
  let saveConfig = false;
  let wgConfig = "";
  const wgLines: SourceLine[] = [];
  const entries: QuickEntry[] = [];
  let inInterface = false;
  let number = 0;

  for (const line of readLines(text)) {
    number++;
    const hash = line.indexOf("#");
    const stripped = hash < 0 ? line : line.slice(0, hash);
    const eq = stripped.indexOf("=");
    const key = trimChars(eq < 0 ? stripped : stripped.slice(0, eq), SPACE);
    const value = trimChars(eq < 0 ? stripped : stripped.slice(eq + 1), SPACE);
    const rawEq = line.indexOf("=");
    const rawValue = trimChars(rawEq < 0 ? line : line.slice(rawEq + 1), SPACE);
    const lkey = asciiLower(key);
    if (lkey.startsWith("[")) inInterface = false;
    if (lkey === "[interface]") inInterface = true;
    if (inInterface) {
      let handled = true;
      switch (lkey) {
        case "address":
          addresses.push(...splitList(value));
          break;
        case "mtu":
          mtu = value;
          break;
        case "dns":
          for (const v of splitList(value)) (isDnsServer(v) ? dns : dnsSearch).push(v);
          break;
        case "table":
          table = value;
          break;
        case "preup":
          preUp.push(rawValue);
          break;
        case "predown":
          preDown.push(rawValue);
          break;
        case "postup":
          postUp.push(rawValue);
          break;
        case "postdown":
          postDown.push(rawValue);
          break;
        case "saveconfig":
          try {
            saveConfig = readBool(value);
          } catch (err) {
            throw new QuickConfigError((err as Error).message, number);
          }
          break;
        default:
          handled = false;
      }
      if (handled) {
        entries.push({ line: number, key: lkey, value: HOOK_KEYS.has(lkey) ? rawValue : value });
        continue;
      }
    }
    wgConfig += line + "\n";
    wgLines.push({ line: number, text: line });
  }
  return {
    iface,
    addresses,
    dns,
    dnsSearch,
    mtu,
    table,
    preUp,
    postUp,
    preDown,
    postDown,
    saveConfig,
    wgConfig,
    wgLines,
    entries,
  };
}

/**
 * stripText() is what `wg-quick strip` prints: the `wg` part of the file
 * plus the newline `echo` adds.
 */
export function stripText(cfg: QuickConfig): string {
  return cfg.wgConfig + "\n";
}

/** Whether `Table` asks for routes in the main table with the /0 special case. */
export function tableIsAuto(table: string): boolean {
  return table === "" || table === "auto";
}

/**
 * Inputs of {@link savedConfig}: the live state wg-quick's `save_config`
 * reads besides the configuration itself.
 */
export interface SaveState {
  /** `wg showconf IFACE` output (trailing newlines are ignored, as `$(…)` drops them). */
  readonly showconf: string;
  /** The addresses in `ip -brief address show dev IFACE` order. */
  readonly addresses: readonly string[];
  /** `nameserver` entries found through resolvconf. */
  readonly dns: readonly string[];
  /** The link's current MTU (saved only when the file had `MTU =`). */
  readonly linkMtu: number | null;
}

/**
 * savedConfig() is the file `save_config` writes: `wg showconf` with its
 * `[Interface]` line replaced by the wg-quick keys (Address, DNS, MTU,
 * Table, SaveConfig, then the hooks unexpanded), plus a final newline.
 */
export function savedConfig(cfg: QuickConfig, state: SaveState): string {
  let head = "[Interface]\n";
  for (const a of state.addresses) head += `Address = ${a}\n`;
  for (const d of state.dns) head += `DNS = ${d}\n`;
  if (cfg.mtu !== "" && state.linkMtu !== null) head += `MTU = ${state.linkMtu}\n`;
  if (cfg.table !== "") head += `Table = ${cfg.table}\n`;
  if (cfg.saveConfig) head += "SaveConfig = true\n";
  for (const c of cfg.preUp) head += `PreUp = ${c}\n`;
  for (const c of cfg.postUp) head += `PostUp = ${c}\n`;
  for (const c of cfg.preDown) head += `PreDown = ${c}\n`;
  for (const c of cfg.postDown) head += `PostDown = ${c}\n`;
  const current = state.showconf.replace(/\n+$/, "");
  // Only the first "[Interface]\n" is replaced, as bash's ${var/pattern/string}.
  const at = current.indexOf("[Interface]\n");
  const out = at < 0 ? current : current.slice(0, at) + head + current.slice(at + 12);
  return out + "\n";
}

/**
 * briefAddresses() extracts the addresses from `ip -brief address show dev
 * IFACE`: the words after the name and the state, as save_config's regex
 * `^IFACE +\ [A-Z]+ +(.+)$` does. Empty when the line does not match.
 */
export function briefAddresses(iface: string, output: string): string[] {
  const line = output.split("\n")[0] ?? "";
  if (!line.startsWith(iface)) return [];
  const m = /^ + [A-Z]+ +(.+)$/.exec(line.slice(iface.length));
  return m === null ? [] : m[1].split(/[ \t]+/).filter((w) => w !== "");
}

/** `nameserver X` lines of a resolvconf record, as save_config reads them. */
export function nameserversOf(text: string): string[] {
  const out: string[] = [];
  for (const line of readLines(text, false)) {
    const m = /^nameserver ([a-zA-Z0-9_=+:%.-]+)$/.exec(line);
    if (m !== null) out.push(m[1]);
  }
  return out;
}

/** The text piped into `resolvconf -a`: nameserver lines, then one search line. */
export function resolvconfInput(cfg: QuickConfig): string {
  let s = "";
  for (const d of cfg.dns) s += `nameserver ${d}\n`;
  if (cfg.dnsSearch.length > 0) s += `search ${cfg.dnsSearch.join(" ")}\n`;
  return s;
}

/**
 * resolvconfPrefix() is `resolvconf_iface_prefix`: Debian's resolvconf
 * orders records by name (`/etc/resolvconf/interface-order`), so the record
 * is named after the first `NAME*` pattern there (`tun*` gives `tun.`).
 * Empty when the file is absent (`null`) or when resolvconf is a symlink
 * (openresolv or systemd's resolvectl, which need no prefix).
 */
export function resolvconfPrefix(interfaceOrder: string | null, resolvconfIsLink: boolean): string {
  if (interfaceOrder === null || resolvconfIsLink) return "";
  for (const line of readLines(interfaceOrder, false)) {
    const m = /^([A-Za-z0-9-]+)\*$/.exec(line);
    if (m !== null) return `${m[1]}.`;
  }
  return "";
}
