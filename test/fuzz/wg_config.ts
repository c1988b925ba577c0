// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Fuzz target "wg-config": `wg setconf`/`addconf` configuration files and
 * `wg set` arguments as cli/wg reads them (ConfigReader, readCommand), then
 * through the daemon side. Inputs are INI files built from wg(8)'s keys with
 * valid and hostile values (keys in and out of canonical base64, ports that
 * wrap, hex fwmarks, incremental allowed IPs, bracketed and scoped
 * endpoints, whitespace inside values, comments, NUL bytes, byte mutations)
 * and `wg set` argument lists. Names are never looked up: a fake resolver
 * answers numeric hosts and scopes and fails names permanently.
 *
 * Checked for every input: nothing throws; a configuration `wg` accepts, sent
 * as `formatSet` writes it, is accepted by the daemon (ipcSet) without an
 * error; and `wg showconf | wg setconf` round-trips: the daemon's `get`,
 * parsed by `wg`'s GetParser and printed by formatConfig, reads back through
 * ConfigReader into a set that reproduces the same daemon state.
 */
import type { Rng } from "../../src/clock.ts";
import { Device } from "../../src/device.ts";
import { MemoryNetwork } from "../../src/conn/memory.ts";
import { MemoryTun } from "../../src/tun/memory.ts";
import { ipcGet, ipcSet } from "../../uapi/apply.ts";
import { type ConfigContext, ConfigReader, readCommand, splitLines } from "../../cli/wg/config.ts";
import type { WgDevice } from "../../cli/wg/containers.ts";
import { bytesToBstr } from "../../cli/wg/cstr.ts";
import { keyToBase64 } from "../../cli/wg/encoding.ts";
import { inetPton6 } from "../../cli/wg/inet.ts";
import { formatSet, GetParser } from "../../cli/wg/ipc.ts";
import {
  EAI_NONAME,
  EAI_SERVICE,
  type GaiResult,
  numericEndpoint,
  type Resolver,
} from "../../cli/wg/resolve.ts";
import { formatConfig } from "../../cli/wg/showconf.ts";
import { Stdio } from "../../cli/wg/stdio.ts";
import { FakeClock, seededRng } from "../_util/fake_clock.ts";
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
import { settableLines } from "./invariants.ts";

/**
 * A resolver that never touches the network: numeric hosts (with a numeric
 * scope for IPv6) and decimal services, as glibc answers them; everything
 * else fails permanently (EAI_NONAME / EAI_SERVICE), so nothing is retried.
 */
const fakeResolver: Resolver = {
  getaddrinfo(host: string | null, service: string): GaiResult {
    if (!/^[0-9]{1,9}$/.test(service)) return { ok: false, code: EAI_SERVICE, errno: 0 };
    const port = Number(service) & 0xffff;
    if (host === null) {
      return { ok: true, addr: { family: 6, addr: new Uint8Array(16), port, scopeId: 0 } };
    }
    const pct = host.indexOf("%");
    if (pct >= 0) {
      const addr = inetPton6(host.slice(0, pct));
      const scope = host.slice(pct + 1);
      if (!addr || !/^[0-9]{1,9}$/.test(scope)) return { ok: false, code: EAI_NONAME, errno: 0 };
      return { ok: true, addr: { family: 6, addr, port, scopeId: Number(scope) } };
    }
    return numericEndpoint(host, service) ?? { ok: false, code: EAI_NONAME, errno: 0 };
  },
  ifIndexToName: () => null,
};

/** Collects what `wg` prints. */
class Sink {
  text = "";
  write(p: Uint8Array): Promise<number> {
    this.text += new TextDecoder().decode(p);
    return Promise.resolve(p.length);
  }
}

function context(): { ctx: ConfigContext; err: Sink } {
  const err = new Sink();
  const ctx: ConfigContext = {
    stdio: new Stdio(new Sink(), err),
    env: { WG_ENDPOINT_RESOLUTION_RETRIES: "0" },
    resolver: fakeResolver,
    sleep: () => Promise.resolve(),
  };
  return { ctx, err };
}

function freshDevice(): Device {
  const clock = new FakeClock();
  return new Device({
    tun: new MemoryTun(),
    bind: new MemoryNetwork(clock).createBind({ v4: "192.0.2.1", v6: "2001:db8::1" }),
    clock,
    rng: seededRng(1),
    name: "wgfuzz",
  });
}

/** Parses a config file as `wg setconf` (or `addconf`); the device, or null when `wg` refuses it. */
async function readConfig(text: string, append: boolean): Promise<WgDevice | null> {
  const { ctx } = context();
  const reader = new ConfigReader(ctx, append);
  for (const line of splitLines(text)) if (!(await reader.line(line))) return null;
  return reader.finish();
}

/** The `set` body (without `set=1`) of what `wg` would send for `dev`. */
function setBody(dev: WgDevice): string {
  return formatSet(dev, fakeResolver).slice("set=1\n".length);
}

/** Fuzzes cli/wg configuration input against the daemon; see the module doc. */
export async function fuzzWgConfig(
  rng: Rng,
  iterations: number,
  options: FuzzOptions = {},
): Promise<FuzzStats> {
  const started = performance.now();
  const stats = newStats("wg-config");
  const m = new Mutator(rng);
  const keyRng = seededRng(m.u32());
  const pool = Array.from({ length: 5 }, () => {
    const k = new Uint8Array(32);
    keyRng(k);
    return k;
  });
  let iteration = 0;

  function blank(): string {
    return m.pick(["", "", " ", "\t", "  ", "\v", "\f", "\r", " \t "]);
  }

  /** Spaces inside a word: `wg` removes all whitespace from a line. */
  function spaced(word: string): string {
    if (!m.chance(0.1)) return word;
    const at = m.int(word.length + 1);
    return word.slice(0, at) + m.pick([" ", "\t", "  "]) + word.slice(at);
  }

  function junk(): string {
    const chars = "0123456789abcdefxABCDEF:./[]%-+=,# \t\0\x7f\u00e9";
    let s = "";
    const n = m.int(m.chance(0.95) ? 12 : 200);
    for (let i = 0; i < n; i++) s += chars[m.int(chars.length)];
    return s;
  }

  function key(valid = false): string {
    const r = valid ? m.int(80) : m.int(100);
    if (r < 60) return keyToBase64(m.pick(pool));
    if (r < 75) return keyToBase64(m.bytes(32));
    if (r < 80) return keyToBase64(new Uint8Array(32));
    const k = keyToBase64(m.bytes(32));
    if (r < 85) return k.slice(0, 42) + m.pick(["B=", "//", "A", "=="]); // non-canonical
    if (r < 90) return k.slice(0, m.int(44));
    return junk();
  }

  function v6(): string {
    return m.pick(["fd00::1", "2001:db8::", "::", "::ffff:10.0.0.1", "fe80::1", "1:2:3:4:5:6:7:8"]);
  }

  /** A value for `k`; with `valid`, one that wg accepts. */
  function value(k: string, valid = false): string {
    if (!valid && m.chance(0.1)) return junk();
    const pick = (good: string[], bad: string[]) =>
      valid || m.chance(0.7) ? m.pick(good) : m.pick(bad);
    switch (k) {
      case "PrivateKey":
      case "PublicKey":
      case "PresharedKey":
        return key(valid);
      case "ListenPort":
        return pick(["0", "51820", "65535", "65536", "70000", String(m.int(65536))], [
          "http",
          "",
          "-1",
          "x",
        ]);
      case "FwMark":
        return pick(
          ["off", "0", "1", "0x1f", "0xffffffff", "4294967295", String(m.u32())],
          ["0x100000000", "4294967296", "-1", "0X1", ""],
        );
      case "AllowedIPs": {
        const n = valid ? m.range(1, 4) : m.int(5);
        const items: string[] = [];
        for (let i = 0; i < n; i++) {
          const sign = m.chance(0.15) ? m.pick(["+", "-"]) : "";
          const ip = m.chance(0.6) ? `10.${m.int(4)}.${m.int(4)}.${m.int(256)}` : v6();
          const max = ip.includes(":") ? 128 : 32;
          const cidr = m.chance(0.2)
            ? ""
            : `/${pick([String(m.int(max + 1))], [String(max + 1), "", "x", "08"])}`;
          items.push(sign + ip + cidr);
        }
        return items.join(m.pick([",", ", ", " ,"]));
      }
      case "Endpoint":
        return pick(
          [
            `192.0.2.${m.int(256)}:${m.int(65536)}`,
            `[2001:db8::${m.int(100)}]:${m.int(65536)}`,
            `[fe80::1%${m.int(5)}]:51820`,
            "1.2.3.4:70000",
          ],
          [
            "[fe80::1%eth0]:1",
            "example.com:51820",
            "1.2.3.4",
            "1.2.3.4:",
            "[::1]",
            "[::1]:",
            "[::1:51820",
            "::1:51820",
            "1.2.3.4:http",
          ],
        );
      case "PersistentKeepalive":
        return pick(["off", "0", "25", "65535", String(m.int(65536))], ["65536", "-1", "0x19", ""]);
      default:
        return junk();
    }
  }

  function file(): string {
    const valid = m.chance(0.5);
    const lines: string[] = [];
    const sections = [
      "[Interface]",
      "[Peer]",
      "[peer]",
      "[ Peer ]",
      "[INTERFACE]",
      "[Peer",
      "[Other]",
    ];
    const n = m.int(m.chance(0.95) ? 25 : 200);
    let inPeer = false;
    let hasKey = false;
    for (let i = 0; i < n; i++) {
      const r = m.int(100);
      if (i === 0 || r < 12) {
        const s = i === 0 ? "[Interface]" : valid || m.chance(0.8) ? "[Peer]" : m.pick(sections);
        if (valid && inPeer && !hasKey) lines.push(`PublicKey = ${key(true)}`);
        inPeer = /peer/i.test(s);
        hasKey = false;
        lines.push(blank() + spaced(s) + blank());
        continue;
      }
      if (r < 18) {
        lines.push(blank() + "# " + junk());
        continue;
      }
      if (r < 21) {
        lines.push(blank());
        continue;
      }
      const keys = inPeer
        ? [
          "PublicKey",
          "PublicKey",
          "AllowedIPs",
          "AllowedIPs",
          "Endpoint",
          "PersistentKeepalive",
          "PresharedKey",
        ]
        : ["PrivateKey", "ListenPort", "FwMark"];
      const k = valid || m.chance(0.97)
        ? m.pick(keys)
        : m.pick(["Address", "DNS", "PublicKey", "Foo"]);
      if (k === "PublicKey") hasKey = true;
      const v = value(k, valid);
      // Keys are case-insensitive.
      const shown = m.chance(0.1) ? (m.chance(0.5) ? k.toLowerCase() : k.toUpperCase()) : k;
      const comment = m.chance(0.1) ? ` # ${junk()}` : "";
      const eq = m.pick([" = ", "=", " =", "= "]);
      lines.push(`${blank()}${spaced(shown)}${eq}${spaced(v)}${comment}${blank()}`);
    }
    if (valid && inPeer && !hasKey) lines.push(`PublicKey = ${key(true)}`);
    const eol = m.chance(0.1) ? "\r\n" : "\n";
    return lines.join(eol) + (m.chance(0.9) ? eol : "");
  }

  function args(): string[] {
    const out: string[] = [];
    const n = m.int(10);
    for (let i = 0; i < n; i++) {
      const opt = m.pick([
        "listen-port",
        "fwmark",
        "private-key",
        "peer",
        "peer",
        "remove",
        "endpoint",
        "allowed-ips",
        "allowed-ips",
        "persistent-keepalive",
        "preshared-key",
        "bogus",
      ]);
      out.push(opt);
      switch (opt) {
        case "listen-port":
          out.push(value("ListenPort"));
          break;
        case "fwmark":
          out.push(value("FwMark"));
          break;
        case "private-key":
        case "preshared-key":
          out.push("/dev/null"); // the zero key; no other file is ever read
          break;
        case "peer":
          out.push(key());
          break;
        case "endpoint":
          out.push(value("Endpoint"));
          break;
        case "allowed-ips":
          out.push(value("AllowedIPs"));
          break;
        case "persistent-keepalive":
          out.push(value("PersistentKeepalive"));
          break;
      }
    }
    return out;
  }

  /** A device wg accepted: the daemon must accept it too, and showconf must round-trip. */
  async function throughDaemon(dev: WgDevice, input: string): Promise<void> {
    const a = freshDevice(), b = freshDevice();
    try {
      const body = setBody(dev);
      const err = ipcSet(a, body);
      if (err) {
        recordFailure(stats, iteration, `daemon refused what wg sent: ${err}\n${body}`, input);
        return;
      }
      bump(stats, "accepted");
      const get = ipcGet(a);
      const parser = new GetParser("wg0", fakeResolver);
      let ret: number | null = null;
      for (const line of splitLines(get + "errno=0\n\n")) {
        ret = await parser.line(line);
        if (ret !== null) break;
      }
      if (ret !== 0) {
        recordFailure(
          stats,
          iteration,
          `wg could not parse the daemon's get (ret ${ret}):\n${get}`,
          input,
        );
        return;
      }
      const conf = formatConfig(parser.device, fakeResolver);
      const again = await readConfig(conf, false);
      if (!again) {
        recordFailure(stats, iteration, `wg setconf refused wg showconf output:\n${conf}`, input);
        return;
      }
      const err2 = ipcSet(b, setBody(again));
      const want = settableLines(get).join("\n");
      const got = settableLines(ipcGet(b)).join("\n");
      if (err2 || got !== want) {
        recordFailure(
          stats,
          iteration,
          `showconf | setconf does not round-trip (${err2 ?? "no error"}):\n--- before\n${want}\n` +
            `--- after\n${got}\n--- showconf\n${conf}`,
          input,
        );
      }
    } finally {
      a.close();
      b.close();
    }
  }

  for (iteration = 0; iteration < iterations; iteration++) {
    if ((iteration & 15) === 0 && pastDeadline(options)) break;
    stats.inputs++;
    let input = "";
    try {
      if (m.chance(0.8)) {
        let bytes: Uint8Array = new TextEncoder().encode(file());
        if (m.chance(0.15)) {
          bytes = m.mutate(bytes, 6);
          bump(stats, "byteMutated");
        }
        input = bytesToBstr(bytes);
        const dev = await readConfig(input, m.chance(0.3));
        if (!dev) {
          bump(stats, "refusedByWg");
          continue;
        }
        await throughDaemon(dev, input);
      } else {
        const argv = args();
        input = JSON.stringify(argv);
        const { ctx } = context();
        const dev = await readCommand(ctx, argv);
        if (!dev) {
          bump(stats, "refusedByWg");
          continue;
        }
        const d = freshDevice();
        try {
          const err = ipcSet(d, setBody(dev));
          if (err) recordFailure(stats, iteration, `daemon refused wg set: ${err}`, input);
          else bump(stats, "acceptedSet");
        } finally {
          d.close();
        }
      }
    } catch (err) {
      recordException(stats, iteration, err, input);
    }
  }
  stats.iterations = iteration;
  stats.ms = performance.now() - started;
  return stats;
}
