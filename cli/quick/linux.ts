// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `up`, `down` and `save` on Linux, step for step as wg-quick(8) does them
 * (wireguard-tools `src/wg-quick/linux.bash`, current version), with the
 * same `[#] …` lines on stderr:
 *
 * **up** — refuse if the link exists; create it (`ip link add … type
 * wireguard`, and when that fails and no kernel module is loaded, run the
 * userspace implementation, gotatun itself by default, which returns once the
 * TUN and the UAPI socket exist); PreUp; `wg addconf`; `ip address add` per
 * Address; MTU (explicit, or the smallest route MTU towards the endpoints,
 * else the default route's, minus 80; 1420 when nothing is known) and link
 * up; DNS through resolvconf; one route per allowed IP, longest prefix
 * first, honouring `Table`; PostUp. A `/0` with automatic table gets the
 * full-tunnel setup: a fwmark (the first table from 51820 without routes,
 * unless one is configured), `not fwmark T table T` and `table main
 * suppress_prefixlength 0` rules, the default route in table T, the
 * firewall rules (nft table `wg-quick-IFACE`, or iptables-restore) that drop
 * packets for the tunnel's addresses arriving elsewhere and carry the mark
 * on UDP connections, and `src_valid_mark=1`. Any failure, or SIGINT/SIGTERM,
 * undoes what was done (wg-quick's `trap 'del_if; exit'`).
 *
 * **down** — must be a WireGuard interface; PreDown; save if SaveConfig;
 * delete the full-tunnel rules; `ip link delete` (the daemon exits when its
 * TUN goes away); DNS and firewall cleanup; PostDown.
 *
 * **save** — rewrite the configuration from `wg showconf` plus the live
 * addresses, DNS, MTU, Table, SaveConfig and hooks.
 *
 * Where this differs from the script: resolvconf's absence with `DNS =` set
 * is reported before anything is created; cleanup after a failed `up` keeps
 * going past a failing step instead of stopping; every tool has a deadline.
 */
import {
  briefAddresses,
  nameserversOf,
  type QuickConfig,
  resolvconfInput,
  resolvconfPrefix,
  savedConfig,
  tableIsAuto,
} from "./config.ts";
import type { Runner, ToolOptions, ToolResult } from "./runner.ts";
import type { WgDevice } from "../wg/containers.ts";
import type { WgOps } from "./wg.ts";

/**
 * A failed step. `code` is the exit status; the message is printed as
 * `PROGRAM: message` (empty when the failing tool already said why).
 */
export class QuickFailure extends Error {
  readonly code: number;
  constructor(message: string, code = 1) {
    super(message);
    this.name = "QuickFailure";
    this.code = code;
  }
}

/** What `up`/`down`/`save` work with. */
export interface QuickSetup {
  readonly cfg: QuickConfig;
  /** The configuration file, symlinks resolved (what `save` rewrites). */
  readonly configFile: string;
  readonly runner: Runner;
  readonly wg: WgOps;
  /** The userspace implementation to run as `[...implementation, IFACE]`. */
  readonly implementation: readonly string[];
  /** How the implementation is shown in its `[#]` line (default: the command itself). */
  readonly implementationName?: string;
  /**
   * The `addconf` request built from the file (see validate.ts), needed by
   * `up`; called at set_config time (after PreUp, which may be what makes
   * endpoint names resolvable). Throws {@link QuickFailure}.
   */
  readonly wgDevice?: () => Promise<WgDevice>;
  /** `down` of a live interface without its configuration file (see {@link QuickLinux.down}). */
  readonly liveOnly?: boolean;
}

/** The first table wg-quick tries for the full tunnel (and its fwmark): 0xca6c. */
export const FIRST_TABLE = 51820;
/** How long the userspace implementation may take to create the interface. */
const IMPLEMENTATION_TIMEOUT_MS = 60_000;
/** The rule add_default adds beside `not fwmark T table T`, as `ip rule show` prints it. */
const SUPPRESS_RULE = "from all lookup main suppress_prefixlength 0";
/** wg-quick's marker comment on its iptables rules. */
function iptablesMarker(iface: string): string {
  return `-m comment --comment "wg-quick(8) rule for ${iface}"`;
}

/**
 * sortRoutes() orders the allowed IPs as `sort -nr -k 2 -t /` does in
 * `cmd_up`: longest prefix first, ties in reverse byte order of the whole
 * text (sort's last-resort comparison, reversed too). Entries that do not
 * look like `addr/len` are dropped, as wg-quick's filter does.
 */
export function sortRoutes(prefixes: readonly string[]): string[] {
  const ok = prefixes.filter((p) => /^[0-9a-z:.]+\/[0-9]+$/.test(p));
  const len = (p: string) => Number(p.slice(p.indexOf("/") + 1));
  return ok.sort((a, b) => len(b) - len(a) || (a < b ? 1 : a > b ? -1 : 0));
}

/** The address part of an endpoint as wg-quick's set_mtu_up accepts it, or null. */
export function endpointHost(endpoint: string): string | null {
  const m = /^\[?([a-z0-9:.]+)\]?:[0-9]+$/.exec(endpoint);
  return m === null ? null : m[1];
}

/** `mtu N` in `ip route` output, else the `dev X` it names (null, null when neither). */
export function routeMtuOrDev(output: string): { mtu: number | null; dev: string | null } {
  const m = /mtu ([0-9]+)/.exec(output);
  if (m !== null) return { mtu: Number(m[1]), dev: null };
  const d = /dev ([^ ]+)/.exec(output);
  return { mtu: null, dev: d === null ? null : d[1] };
}

/** Addresses in `ip -o addr show` output, as add_default's regex picks them. */
export function firewallAddresses(output: string): string[] {
  const out: string[] = [];
  for (const line of output.split("\n")) {
    const m = /.*inet6? ([0-9a-f:.]+)\/[0-9]+/.exec(line);
    if (m !== null) out.push(m[1]);
  }
  return out;
}

/** The nft script add_default feeds to `nft -f`. */
export function nftAddScript(
  iface: string,
  family: 4 | 6,
  table: number,
  addresses: readonly string[],
): string {
  const pf = family === 4 ? "ip" : "ip6";
  const t = `wg-quick-${iface}`;
  let s = `add table ${pf} ${t}\n`;
  s += `add chain ${pf} ${t} preraw { type filter hook prerouting priority -300; }\n`;
  s += `add chain ${pf} ${t} premangle { type filter hook prerouting priority -150; }\n`;
  s += `add chain ${pf} ${t} postmangle { type filter hook postrouting priority -150; }\n`;
  for (const a of addresses) {
    s += `add rule ${pf} ${t} preraw iifname != "${iface}" ${pf} daddr ${a} ` +
      `fib saddr type != local drop\n`;
  }
  s += `add rule ${pf} ${t} postmangle meta l4proto udp mark ${table} ct mark set mark \n`;
  s += `add rule ${pf} ${t} premangle meta l4proto udp meta mark set ct mark \n`;
  return s;
}

/** The iptables-restore input add_default uses when nft is not installed. */
export function iptablesAddScript(
  iface: string,
  table: number,
  addresses: readonly string[],
): string {
  const marker = iptablesMarker(iface);
  let s = "*raw\n";
  for (const a of addresses) {
    s += `-I PREROUTING ! -i ${iface} -d ${a} -m addrtype ! --src-type LOCAL -j DROP ${marker}\n`;
  }
  s += "COMMIT\n*mangle\n";
  s += `-I POSTROUTING -m mark --mark ${table} -p udp -j CONNMARK --save-mark ${marker}\n`;
  s += `-I PREROUTING -p udp -j CONNMARK --restore-mark ${marker}\nCOMMIT\n`;
  return s;
}

/** The `nft -f` script that deletes this interface's tables, from `nft list tables` ("" if none). */
export function nftRemoveScript(iface: string, listTables: string): string {
  let s = "";
  for (const raw of listTables.split("\n")) {
    const line = raw.trim();
    if (line.endsWith(` wg-quick-${iface}`)) s += `delete ${line}\n`;
  }
  return s;
}

/**
 * The iptables-restore input that deletes this interface's rules, from
 * `iptables-save` output: table headers, COMMITs and its `-A` rules turned
 * into `-D`. Null when it has no rules.
 */
export function iptablesRemoveScript(iface: string, save: string): string | null {
  const marker = iptablesMarker(iface);
  let s = "";
  let found = false;
  const lines = save.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  for (const raw of lines) {
    const line = raw.replace(/^[ \t]+|[ \t]+$/g, "");
    const rule = line.startsWith("-A ") && line.includes(marker);
    if (!(line.startsWith("*") || line === "COMMIT" || rule)) continue;
    if (rule) found = true;
    s += (line.startsWith("-A") ? "-D" + line.slice(2) : line) + "\n";
  }
  return found ? s : null;
}

/** Whether a path exists (wg-quick's `[[ -e … ]]`). */
function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** One wg-quick invocation's state (HAVE_SET_DNS, HAVE_SET_FIREWALL). */
export class QuickLinux {
  readonly #s: QuickSetup;
  readonly #iface: string;
  #haveSetDns = false;
  #haveSetFirewall = false;
  /** The interface's fwmark as `up` read (or set) it; undefined until read. */
  #fwmark: number | null | undefined = undefined;

  constructor(setup: QuickSetup) {
    this.#s = setup;
    this.#iface = setup.cfg.iface;
  }

  // ---- helpers -----------------------------------------------------------

  /** Stops `up` when a signal arrived (the trap's INT/TERM). */
  #checkInterrupted(): void {
    if (this.#s.runner.interrupted) throw new QuickFailure("interrupted", 1);
  }

  /** wg-quick's `cmd`: echo, run, and under `set -e` fail the whole command on error. */
  async #cmd(argv: readonly string[], opts: ToolOptions = {}): Promise<void> {
    this.#checkInterrupted();
    const r = await this.#s.runner.run(argv, { echo: true, stdout: "forward", ...opts });
    if (r.code !== 0) throw new QuickFailure("", r.code > 0 ? r.code : 1);
  }

  /** `cmd` that may fail (wg-quick ignores it or is in a `||` context). */
  #try(argv: readonly string[], opts: ToolOptions = {}): Promise<ToolResult> {
    return this.#s.runner.run(argv, { echo: true, stdout: "forward", ...opts });
  }

  /** `$(…)`: captured stdout, nothing echoed. */
  async #capture(argv: readonly string[], quiet = false): Promise<string> {
    const r = await this.#s.runner.run(argv, { stderr: quiet ? "discard" : "forward" });
    return r.stdout;
  }

  #proto(prefix: string): "-4" | "-6" {
    return prefix.includes(":") ? "-6" : "-4";
  }

  async #linkExists(): Promise<boolean> {
    return (await this.#capture(["ip", "link", "show", "dev", this.#iface], true)) !== "";
  }

  async #resolvconfName(): Promise<string> {
    let order: string | null = null;
    try {
      order = await Deno.readTextFile("/etc/resolvconf/interface-order");
    } catch {
      // absent: no prefix
    }
    let isLink = false;
    const rc = this.#s.runner.which("resolvconf");
    if (rc !== null) {
      try {
        isLink = Deno.lstatSync(rc).isSymlink;
      } catch {
        // vanished: treat as a plain file
      }
    }
    return resolvconfPrefix(order, isLink) + this.#iface;
  }

  /** execute_hooks: `%i` expanded, echoed, run by bash as wg-quick's `(eval "$hook")`. */
  async #hooks(hooks: readonly string[]): Promise<void> {
    for (const raw of hooks) {
      this.#checkInterrupted();
      const hook = raw.replaceAll("%i", this.#iface);
      this.#s.runner.echo(hook);
      // The subshell of wg-quick runs with `set -e -o pipefail` and extglob,
      // and sees the script's INTERFACE and CONFIG_FILE variables.
      const code = await this.#s.runner.runInherited([
        "bash",
        "-e",
        "-o",
        "pipefail",
        "-O",
        "extglob",
        "-c",
        'INTERFACE=$1 CONFIG_FILE=$2 WG_QUICK_HOOK=$3; set --; eval "$WG_QUICK_HOOK"',
        "bash",
        this.#iface,
        this.#s.configFile,
        hook,
      ], null);
      if (code !== 0) throw new QuickFailure("", code > 0 ? code : 1);
    }
  }

  // ---- up ----------------------------------------------------------------

  /** add_if: the kernel's WireGuard link, else the userspace implementation. */
  async #addIf(): Promise<void> {
    const r = await this.#try(["ip", "link", "add", "dev", this.#iface, "type", "wireguard"]);
    if (r.code === 0) return;
    const impl = this.#s.implementation;
    const name = this.#s.implementationName ?? impl.join(" ");
    if (exists("/sys/module/wireguard") || this.#s.runner.which(impl[0]) === null) {
      throw new QuickFailure(
        this.#s.runner.which(impl[0]) === null ? `\`${name}' not found` : "",
        r.code > 0 ? r.code : 1,
      );
    }
    this.#s.runner.output.err(
      "[!] Missing WireGuard kernel module. Falling back to slow userspace implementation.\n",
    );
    const argv = [...impl, this.#iface];
    // wg-quick shows `wireguard-go IFACE`; ours is `gotatun IFACE`, not the `deno run …` line.
    this.#s.runner.echo(`${name} ${this.#iface}`);
    this.#checkInterrupted();
    const code = await this.#s.runner.runInherited(argv, IMPLEMENTATION_TIMEOUT_MS);
    if (code !== 0) throw new QuickFailure("", code > 0 ? code : 1);
  }

  /** set_config: `wg addconf` with the stripped configuration. */
  async #setConfig(): Promise<void> {
    this.#checkInterrupted();
    if (this.#s.wgDevice === undefined) {
      throw new QuickFailure("internal error: no configuration to apply");
    }
    const device = await this.#s.wgDevice();
    this.#checkInterrupted();
    // wg-quick's line (`<(echo "$WG_CONFIG")` is /dev/fd/63 in bash); the request is sent
    // over UAPI from this process.
    this.#s.runner.echo(`wg addconf ${this.#iface} /dev/fd/63`);
    try {
      await this.#s.wg.addconf(this.#iface, { text: this.#s.cfg.wgConfig + "\n", device });
    } catch (err) {
      throw new QuickFailure(err instanceof Error ? err.message : String(err));
    }
  }

  /** The MTU a route output implies (the route's own, else its device's). */
  async #mtuOf(routeOutput: string): Promise<number | null> {
    const { mtu, dev } = routeMtuOrDev(routeOutput);
    if (mtu !== null) return mtu;
    if (dev === null) return null;
    const link = await this.#capture(["ip", "link", "show", "dev", dev]);
    const m = /mtu ([0-9]+)/.exec(link);
    return m === null ? null : Number(m[1]);
  }

  /** set_mtu_up: the explicit MTU, or the smallest path MTU minus 80; then link up. */
  async #setMtuUp(endpoints: readonly string[]): Promise<void> {
    const iface = this.#iface;
    if (this.#s.cfg.mtu !== "") {
      await this.#cmd(["ip", "link", "set", "mtu", this.#s.cfg.mtu, "up", "dev", iface]);
      return;
    }
    const NONE = 2147483647;
    let mtu = NONE;
    for (const endpoint of endpoints) {
      const host = endpointHost(endpoint);
      if (host === null) continue;
      const v = await this.#mtuOf(await this.#capture(["ip", "route", "get", host]));
      if (v !== null && v < mtu) mtu = v;
    }
    if (mtu === NONE) {
      const first = (await this.#capture(["ip", "route", "show", "default"])).split("\n")[0];
      const v = await this.#mtuOf(first);
      if (v !== null && v < mtu) mtu = v;
    }
    if (!(mtu > 0 && mtu < NONE)) mtu = 1500;
    await this.#cmd(["ip", "link", "set", "mtu", String(mtu - 80), "up", "dev", iface]);
  }

  /** set_dns: resolvconf gets the nameservers (and search domains) of this interface. */
  async #setDns(): Promise<void> {
    const cfg = this.#s.cfg;
    if (cfg.dns.length === 0) return;
    const name = await this.#resolvconfName();
    await this.#cmd(["resolvconf", "-a", name, "-m", "0", "-x"], { stdin: resolvconfInput(cfg) });
    this.#haveSetDns = true;
  }

  /** unset_dns (never fatal). */
  async #unsetDns(): Promise<void> {
    if (this.#s.cfg.dns.length === 0) return;
    await this.#try(["resolvconf", "-d", await this.#resolvconfName(), "-f"]);
  }

  /** add_route for one allowed IP. */
  async #addRoute(prefix: string): Promise<void> {
    const proto = this.#proto(prefix);
    const table = this.#s.cfg.table;
    if (table === "off") return;
    if (!tableIsAuto(table)) {
      await this.#cmd(["ip", proto, "route", "add", prefix, "dev", this.#iface, "table", table]);
    } else if (prefix.endsWith("/0")) {
      await this.#addDefault(prefix);
    } else {
      const have = await this.#capture(
        ["ip", proto, "route", "show", "dev", this.#iface, "match", prefix],
        true,
      );
      if (have.trim() === "") {
        await this.#cmd(["ip", proto, "route", "add", prefix, "dev", this.#iface]);
      }
    }
  }

  /** get_fwmark: the interface's fwmark, null when off or unreadable. */
  async #getFwmark(): Promise<number | null> {
    const mark = this.#fwmark !== undefined ? this.#fwmark : await this.#s.wg.fwmark(this.#iface);
    return mark === null || mark === 0 ? null : mark;
  }

  /** add_default: the full-tunnel setup for `0.0.0.0/0` or `::/0`. */
  async #addDefault(prefix: string): Promise<void> {
    const iface = this.#iface;
    let table = await this.#getFwmark();
    if (table === null) {
      table = FIRST_TABLE;
      while (
        (await this.#capture(["ip", "-4", "route", "show", "table", String(table)], true)) !== "" ||
        (await this.#capture(["ip", "-6", "route", "show", "table", String(table)], true)) !== ""
      ) {
        table++;
      }
      this.#checkInterrupted();
      this.#s.runner.echo(`wg set ${iface} fwmark ${table}`);
      try {
        await this.#s.wg.setFwmark(iface, table);
        this.#fwmark = table;
      } catch (err) {
        throw new QuickFailure(err instanceof Error ? err.message : String(err));
      }
    }
    const family = prefix.includes(":") ? 6 : 4;
    const proto = family === 6 ? "-6" : "-4";
    const t = String(table);
    await this.#cmd(["ip", proto, "rule", "add", "not", "fwmark", t, "table", t]);
    await this.#cmd(["ip", proto, "rule", "add", "table", "main", "suppress_prefixlength", "0"]);
    await this.#cmd(["ip", proto, "route", "add", prefix, "dev", iface, "table", t]);

    const addrs = firewallAddresses(
      await this.#capture(["ip", "-o", proto, "addr", "show", "dev", iface], true),
    );
    if (family === 4) {
      const cur = await this.#capture(["sysctl", "-n", "net.ipv4.conf.all.src_valid_mark"]);
      if (cur.trim() !== "1") {
        await this.#cmd(["sysctl", "-q", "net.ipv4.conf.all.src_valid_mark=1"]);
      }
    }
    if (this.#s.runner.which("nft") !== null) {
      await this.#cmd(["nft", "-f", "/dev/stdin"], {
        stdin: nftAddScript(iface, family, table, addrs),
      });
    } else {
      const restore = family === 4 ? "iptables-restore" : "ip6tables-restore";
      await this.#cmd([restore, "-n"], { stdin: iptablesAddScript(iface, table, addrs) });
    }
    this.#haveSetFirewall = true;
  }

  /** remove_firewall: this interface's nft tables and iptables rules (never fatal). */
  async #removeFirewall(): Promise<void> {
    const runner = this.#s.runner;
    const nft = runner.which("nft") !== null;
    const ipt = runner.which("iptables") !== null;
    // The three listings only read, so they run side by side.
    const [tables, save4, save6] = await Promise.all([
      nft ? this.#capture(["nft", "list", "tables"], true) : "",
      ipt ? this.#capture(["iptables-save"], true) : "",
      ipt ? this.#capture(["ip6tables-save"], true) : "",
    ]);
    const script = nftRemoveScript(this.#iface, tables);
    if (script !== "") await this.#try(["nft", "-f", "/dev/stdin"], { stdin: script });
    for (const [restore, save] of [["iptables-restore", save4], ["ip6tables-restore", save6]]) {
      const s = ipt ? iptablesRemoveScript(this.#iface, save) : null;
      if (s !== null) await this.#try([restore, "-n"], { stdin: s });
    }
  }

  /**
   * del_if: DNS and firewall if this run set them, the full-tunnel rules,
   * then the link. `strict` (down) stops at the first failing command as
   * wg-quick's `set -e` does; otherwise (cleanup after a failed up) every
   * step is tried.
   */
  async #delIf(strict: boolean): Promise<void> {
    const iface = this.#iface;
    const run = strict
      ? (argv: readonly string[]) => this.#cmd(argv)
      : async (argv: readonly string[]) => void (await this.#try(argv));
    if (this.#haveSetDns) await this.#unsetDns();
    if (this.#haveSetFirewall) await this.#removeFirewall();
    if (tableIsAuto(this.#s.cfg.table)) {
      const table = await this.#getFwmark();
      if (table !== null && (await this.#s.wg.allowedIps(iface)).some((p) => p.endsWith("/0"))) {
        for (const proto of ["-4", "-6"]) {
          const rules = () => this.#capture(["ip", proto, "rule", "show"], true);
          // Bounded: a rule that will not go away must not loop forever.
          for (let i = 0; i < 1000 && (await rules()).includes(`lookup ${table}`); i++) {
            await run(["ip", proto, "rule", "delete", "table", String(table)]);
          }
          for (let i = 0; i < 1000 && (await rules()).includes(SUPPRESS_RULE); i++) {
            await run([
              "ip",
              proto,
              "rule",
              "delete",
              "table",
              "main",
              "suppress_prefixlength",
              "0",
            ]);
          }
        }
      }
    }
    await run(["ip", "link", "delete", "dev", iface]);
  }

  /** cmd_up. */
  async up(): Promise<void> {
    const cfg = this.#s.cfg;
    const runner = this.#s.runner;
    if (await this.#linkExists()) throw new QuickFailure(`\`${this.#iface}' already exists`);
    if (cfg.dns.length > 0 && runner.which("resolvconf") === null) {
      throw new QuickFailure(
        "`DNS =' is set but resolvconf(8) is not installed; install openresolv or " +
          "resolvconf (or systemd-resolved's resolvconf), or remove DNS from the configuration",
      );
    }
    const onSignal = () => runner.interrupt();
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    for (const sig of signals) Deno.addSignalListener(sig, onSignal);
    try {
      await this.#addIf();
      await this.#hooks(cfg.preUp);
      await this.#setConfig();
      // Read now, before the link is up: nothing below changes them, and a daemon
      // answers fastest before traffic starts.
      const wg = this.#s.wg;
      const [endpoints, allowedIps, fwmark] = await Promise.all([
        wg.endpoints(this.#iface),
        wg.allowedIps(this.#iface),
        wg.fwmark(this.#iface),
      ]);
      this.#fwmark = fwmark;
      for (const addr of cfg.addresses) {
        await this.#cmd(["ip", this.#proto(addr), "address", "add", addr, "dev", this.#iface]);
      }
      await this.#setMtuUp(endpoints);
      await this.#setDns();
      for (const prefix of sortRoutes(allowedIps)) {
        await this.#addRoute(prefix);
      }
      await this.#hooks(cfg.postUp);
      this.#checkInterrupted();
    } catch (err) {
      await this.#delIf(false);
      throw err;
    } finally {
      for (const sig of signals) Deno.removeSignalListener(sig, onSignal);
    }
  }

  /** Fails unless `wg show interfaces` would list the interface. */
  async #requireWireGuard(): Promise<void> {
    if (!(await this.#s.wg.isInterface(this.#iface))) {
      throw new QuickFailure(`\`${this.#iface}' is not a WireGuard interface`);
    }
  }

  /**
   * cmd_down. With {@link QuickSetup.liveOnly} (no configuration file), what
   * the file would have told is inferred: the full-tunnel rules from the
   * interface's fwmark and a /0 allowed IP (as always), the firewall rules by
   * the interface's name (as always), and a DNS record under the interface's
   * name is removed whenever resolvconf is installed; there are no hooks and
   * nothing is saved.
   *
   * Unlike wg-quick, the daemon is asked for the fwmark, and the firewall
   * searched for this interface's rules, only when this namespace has rules
   * of a full tunnel (or, for the firewall, without a file): see below.
   */
  async down(): Promise<void> {
    const cfg = this.#s.cfg;
    await this.#requireWireGuard();
    await this.#hooks(cfg.preDown);
    if (cfg.saveConfig) await this.#saveConfig();
    // del_if needs the fwmark only to find this interface's full-tunnel rules, and the
    // firewall step only to know whether there was a full tunnel. When no rule in this
    // namespace looks up a numbered table (or suppresses main's default), there is none and
    // the daemon is not asked: it may be slow to answer while it carries traffic.
    const rules = await Promise.all(
      ["-4", "-6"].map((proto) => this.#capture(["ip", proto, "rule", "show"], true)),
    );
    const tunnelRules = rules.some((r) => r.includes(SUPPRESS_RULE) || /lookup [0-9]/.test(r));
    this.#fwmark = tunnelRules ? await this.#s.wg.fwmark(this.#iface) : 0;
    await this.#delIf(true);
    if (this.#s.liveOnly && this.#s.runner.which("resolvconf") !== null) {
      await this.#try(["resolvconf", "-d", await this.#resolvconfName(), "-f"]);
    } else {
      await this.#unsetDns();
    }
    // The firewall rules come with the full tunnel, which always leaves a fwmark on the
    // interface (add_default sets one when the file has none) and its rules: without them
    // there is nothing of ours to find, and the nft/iptables listings are skipped.
    if (this.#s.liveOnly || this.#fwmark !== 0) await this.#removeFirewall();
    await this.#hooks(cfg.postDown);
  }

  /** cmd_save. */
  async save(): Promise<void> {
    await this.#requireWireGuard();
    await this.#saveConfig();
  }

  /** save_config: the configuration file rewritten from the live interface. */
  async #saveConfig(): Promise<void> {
    const iface = this.#iface;
    const cfg = this.#s.cfg;
    const addresses = briefAddresses(
      iface,
      await this.#capture(["ip", "-all", "-brief", "address", "show", "dev", iface]),
    );
    const name = await this.#resolvconfName();
    let record = "";
    const listed = await this.#s.runner.run(["resolvconf", "-l", name], { stderr: "discard" });
    if (listed.code === 0) {
      record = listed.stdout;
    } else {
      try {
        record = await Deno.readTextFile(`/etc/resolvconf/run/interface/${name}`);
      } catch {
        // no record
      }
    }
    let linkMtu: number | null = null;
    if (cfg.mtu !== "") {
      const m = /mtu ([0-9]+)/.exec(await this.#capture(["ip", "link", "show", "dev", iface]));
      if (m !== null) linkMtu = Number(m[1]);
    }
    this.#s.runner.echo(`wg showconf ${iface}`);
    let showconf: string;
    try {
      showconf = await this.#s.wg.showconf(iface);
    } catch (err) {
      throw new QuickFailure(err instanceof Error ? err.message : String(err));
    }
    const text = savedConfig(cfg, {
      showconf,
      addresses,
      dns: nameserversOf(record),
      linkMtu,
    });
    // umask 077, write a temporary file, sync it, rename it over the original.
    const tmp = `${this.#s.configFile}.tmp`;
    try {
      const f = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
      try {
        const data = new TextEncoder().encode(text);
        for (let off = 0; off < data.length;) off += await f.write(data.subarray(off));
        await f.syncData();
      } finally {
        f.close();
      }
      await Deno.chmod(tmp, 0o600);
    } catch {
      await Deno.remove(tmp).catch(() => {});
      throw new QuickFailure("Could not write configuration file");
    }
    try {
      await Deno.rename(tmp, this.#s.configFile);
    } catch {
      await Deno.remove(tmp).catch(() => {});
      throw new QuickFailure("Could not move configuration file");
    }
  }
}
