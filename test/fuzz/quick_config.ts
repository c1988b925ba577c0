// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Fuzz target "quick-config": wg-quick configuration files as
 * cli/quick/config.ts reads them (parseQuickConfig, savedConfig, the path
 * helpers). Inputs are INI-like files built from wg-quick's and wg's keys
 * with valid and hostile values, odd blanks (`\v`, `\f`, `\r`, tabs), NUL
 * bytes, comments, case changes, CRLF, huge lines and byte-level mutations.
 *
 * (A wg(8) configuration parser, cli/wg/config.ts, did not exist when this
 * was written; this target covers the wg-quick layer.)
 *
 * Checked for every file: only QuickConfigError is thrown; the `wg` part is
 * made of trimmed lines of the input, in order, without NULs; parsing the
 * `wg` part again changes nothing and finds no wg-quick keys; a file written
 * by savedConfig reads back with the same Address, DNS, MTU, Table,
 * SaveConfig and hooks; parsing time stays linear in the size.
 */
import type { Rng } from "../../src/clock.ts";
import {
  configPathFor,
  interfaceFromPath,
  parseQuickConfig,
  type QuickConfig,
  QuickConfigError,
  readLines,
  savedConfig,
} from "../../cli/quick/config.ts";
import {
  bump,
  type FuzzOptions,
  type FuzzStats,
  Mutator,
  newStats,
  pastDeadline,
  recordException,
  recordFailure,
} from "./harness.ts";

const QUICK_KEYS = [
  "Address",
  "DNS",
  "MTU",
  "Table",
  "PreUp",
  "PostUp",
  "PreDown",
  "PostDown",
  "SaveConfig",
];
const WG_KEYS = [
  "PrivateKey",
  "ListenPort",
  "FwMark",
  "PublicKey",
  "PresharedKey",
  "AllowedIPs",
  "Endpoint",
  "PersistentKeepalive",
];
const BLANKS = [" ", " ", " ", "\t", "", "", "\v", "\f", "\r", "  "];
const ODD = [
  "#",
  "=",
  "[",
  "]",
  ",",
  "\0",
  "\r",
  "\u00a0",
  "é",
  "\u{1f600}",
  "\\",
  "$",
  "'",
  '"',
  ";",
];

/** Fuzzes cli/quick/config.ts; see the module doc. */
export function fuzzQuickConfig(
  rng: Rng,
  iterations: number,
  options: FuzzOptions = {},
): FuzzStats {
  const started = performance.now();
  const stats = newStats("quick-config");
  const m = new Mutator(rng);
  let iteration = 0;

  function word(): string {
    let s = "";
    const n = m.int(m.chance(0.95) ? 12 : 400);
    for (let i = 0; i < n; i++) {
      s += m.chance(0.8)
        ? String.fromCharCode(m.chance(0.5) ? 0x61 + m.int(26) : 0x30 + m.int(10))
        : m.pick([...ODD, ...BLANKS, ".", ":", "/", "-"]);
    }
    return s;
  }

  function value(key: string): string {
    if (m.chance(0.3)) return word();
    switch (key) {
      case "Address":
      case "AllowedIPs":
        return Array.from(
          { length: m.range(1, 4) },
          () => m.pick(["10.0.0.1/24", "fd00::1/64", "192.168.4.2", "::/0", "0.0.0.0/0"]),
        ).join(m.pick([",", ", ", " ", " ,\t"]));
      case "DNS":
        return Array.from(
          { length: m.range(1, 4) },
          () => m.pick(["1.1.1.1", "2606:4700::1111", "example.com", "lan", "10.0.0.53"]),
        ).join(m.pick([",", ", ", " "]));
      case "MTU":
        return m.pick(["1420", "1280", "0", "-1", "", "auto"]);
      case "Table":
        return m.pick(["auto", "off", "1234", "main", ""]);
      case "SaveConfig":
        return m.pick(["true", "false", "TRUE", "False", "yes", "1", ""]);
      case "PreUp":
      case "PostUp":
      case "PreDown":
      case "PostDown":
        return m.pick([
          "iptables -A FORWARD -i %i -j ACCEPT",
          "echo a=b # not a comment",
          "true",
          "",
        ]);
      default:
        return m.bytes(32).toBase64();
    }
  }

  function line(inInterface: boolean): string {
    const r = m.int(100);
    const pre = m.pick(BLANKS), post = m.pick(BLANKS);
    if (r < 8) {
      return pre +
        m.pick([
          "[Interface]",
          "[interface]",
          "[INTERFACE]",
          "[Peer]",
          "[peer]",
          "[Other]",
          "[Interface] # x",
        ]) + post;
    }
    if (r < 14) return pre + "# " + word();
    if (r < 18) return pre;
    if (r < 22) return word();
    let key = inInterface && m.chance(0.6)
      ? m.pick(QUICK_KEYS)
      : m.pick([...WG_KEYS, ...QUICK_KEYS]);
    if (m.chance(0.2)) key = m.chance(0.5) ? key.toLowerCase() : key.toUpperCase();
    const eq = m.pick([" = ", "=", " =", "= ", "\t=\t", " == "]);
    const comment = m.chance(0.1) ? ` # ${word()}` : "";
    return `${pre}${key}${eq}${value(key)}${comment}${post}`;
  }

  function file(): string {
    const lines: string[] = [];
    let inInterface = false;
    const n = m.int(m.chance(0.95) ? 30 : 300);
    for (let i = 0; i < n; i++) {
      const l = line(inInterface);
      if (/^\s*\[/.test(l)) inInterface = /interface/i.test(l);
      lines.push(m.chance(0.01) ? l + "x".repeat(m.range(1000, 100_000)) : l);
    }
    const eol = m.chance(0.1) ? "\r\n" : "\n";
    return lines.join(eol) + (m.chance(0.8) ? eol : "");
  }

  function check(text: string, cfg: QuickConfig): void {
    const problems: string[] = [];
    const input = readLines(text);
    const wgLines = cfg.wgConfig === "" ? [] : cfg.wgConfig.slice(0, -1).split("\n");
    if (cfg.wgConfig !== "" && !cfg.wgConfig.endsWith("\n")) {
      problems.push("wg part lacks a final newline");
    }
    // The wg part is a subsequence of the input lines.
    let j = 0;
    for (const l of wgLines) {
      if (l.includes("\0")) problems.push("NUL in the wg part");
      if (/^[ \t\n]|[ \t\n]$/.test(l)) problems.push(`untrimmed wg line ${JSON.stringify(l)}`);
      while (j < input.length && input[j] !== l) j++;
      if (j === input.length) {
        problems.push(`wg line not from the input: ${JSON.stringify(l.slice(0, 80))}`);
        break;
      }
      j++;
    }
    for (const list of [cfg.addresses, cfg.dns, cfg.dnsSearch]) {
      for (const e of list) {
        if (e === "" || /[, \t\n]/.test(e)) problems.push(`bad list entry ${JSON.stringify(e)}`);
      }
    }
    // Parsing the wg part again: the same text, nothing for wg-quick.
    const again = parseQuickConfig(cfg.iface, cfg.wgConfig);
    if (again.wgConfig !== cfg.wgConfig) problems.push("the wg part changes when parsed again");
    const quick = [
      again.addresses,
      again.dns,
      again.dnsSearch,
      again.preUp,
      again.postUp,
      again.preDown,
      again.postDown,
    ];
    if (
      quick.some((l) => l.length > 0) || again.mtu !== "" || again.table !== "" || again.saveConfig
    ) {
      problems.push("the wg part still holds wg-quick keys");
    }
    // save_config output reads back the same.
    const linkMtu = cfg.mtu !== "" ? 1420 : null;
    const saved = savedConfig(cfg, {
      showconf:
        "[Interface]\nListenPort = 51820\n\n[Peer]\nPublicKey = x\nAllowedIPs = 10.0.0.2/32\n\n",
      addresses: cfg.addresses,
      dns: cfg.dns,
      linkMtu,
    });
    const back = parseQuickConfig(cfg.iface, saved);
    // Entries may keep \v, \f or \r (bash splits at blanks only) and then do not
    // survive the trim of a re-read; `ip` never reports such addresses anyway.
    const odd = [...cfg.addresses, ...cfg.dns].some((e) => /[\v\f\r]/.test(e));
    const same = (a: readonly string[], b: readonly string[]) =>
      a.length === b.length && a.every((x, i) => x === b[i]);
    const fields: [string, boolean][] = [
      ["addresses", odd || same(back.addresses, cfg.addresses)],
      ["dns", odd || same(back.dns, cfg.dns)],
      ["mtu", back.mtu === (linkMtu === null ? "" : "1420")],
      ["table", back.table === cfg.table],
      ["saveConfig", back.saveConfig === cfg.saveConfig],
      ["preUp", same(back.preUp, cfg.preUp)],
      ["postUp", same(back.postUp, cfg.postUp)],
      ["preDown", same(back.preDown, cfg.preDown)],
      ["postDown", same(back.postDown, cfg.postDown)],
    ];
    for (const [name, ok] of fields) {
      if (!ok) problems.push(`savedConfig does not read back: ${name}`);
    }
    for (const p of problems) recordFailure(stats, iteration, p, text);
  }

  for (iteration = 0; iteration < iterations; iteration++) {
    if ((iteration & 31) === 0 && pastDeadline(options)) break;
    let text = file();
    if (m.chance(0.25)) {
      const bytes = m.mutate(new TextEncoder().encode(text), 8);
      text = new TextDecoder().decode(bytes);
      bump(stats, "byteMutated");
    }
    stats.inputs++;
    let cfg: QuickConfig | null = null;
    try {
      cfg = parseQuickConfig("wg0", text);
    } catch (err) {
      if (err instanceof QuickConfigError) bump(stats, "configErrors");
      else recordException(stats, iteration, err, text);
    }
    if (cfg) {
      try {
        check(text, cfg);
      } catch (err) {
        if (err instanceof QuickConfigError) {
          recordFailure(stats, iteration, `re-parse threw: ${err.message}`, text);
        } else recordException(stats, iteration, err, text);
      }
    }
    // The path helpers: a name maps to a path that maps back to the name.
    try {
      const name = word().slice(0, 16);
      const path = configPathFor(name);
      const iface = interfaceFromPath(path);
      if (/^[a-zA-Z0-9_=+.-]{1,15}$/.test(name) && iface !== name) {
        recordFailure(
          stats,
          iteration,
          `interfaceFromPath(configPathFor(${JSON.stringify(name)})) = ${iface}`,
        );
      }
      if (iface !== null && !/^[a-zA-Z0-9_=+.-]{1,15}$/.test(iface)) {
        recordFailure(
          stats,
          iteration,
          `interfaceFromPath gave an invalid name ${JSON.stringify(iface)}`,
        );
      }
    } catch (err) {
      recordException(stats, iteration, err, "path helpers");
    }
  }
  stats.iterations = iteration;
  checkScaling(stats);
  stats.ms = performance.now() - started;
  return stats;
}

/**
 * Parsing time must not blow up: 64 times the input may take at most 4096
 * times as long (quadratic). Linear code measures well above 64 here
 * (garbage collection of the larger input, a busy machine), so this only
 * catches worse-than-quadratic behaviour such as regex backtracking; the
 * measured ratio (best of five runs each) is reported as `peakScalingRatio`.
 */
function checkScaling(stats: FuzzStats): void {
  const unit = "[Interface]\nAddress = 10.0.0.1/24, fd00::1/64 # c\nDNS = 1.1.1.1 lan\n" +
    "PostUp = echo a=b\n\v[Peer]\nPublicKey = abc\nAllowedIPs = 0.0.0.0/0\n";
  const time = (text: string) => {
    let best = Infinity;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      parseQuickConfig("wg0", text);
      best = Math.min(best, performance.now() - t0);
    }
    return best;
  };
  const small = unit.repeat(50), large = unit.repeat(3200);
  time(small); // warm up the JIT
  const ratio = time(large) / Math.max(time(small), 0.05);
  stats.counters.peakScalingRatio = Math.round(ratio);
  if (ratio > 4096) recordFailure(stats, -1, `64× the input took ${ratio.toFixed(0)}× as long`);
}
