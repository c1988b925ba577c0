// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `gotatun top`: the pure parts with fixed inputs (sparklines, rates, ages
 * and their colours, the UAPI reply parser, rate bookkeeping, frames that
 * fit any width), then, as root, `top --once` and `top --watch` against a
 * gotatun daemon and a wireguard-go daemon in their own namespaces
 * (`gttop-<random>`, interfaces `gttop<digits>`), and the full-screen mode
 * driven through tmux (its own server socket): it draws on the alternate
 * screen with the cursor hidden, and `q` or Ctrl-C give the terminal back as
 * it was.
 */
import assert from "node:assert/strict";
import {
  abbreviateKey,
  cutEndpoint,
  fit,
  formatAge,
  formatRate,
  handshakeColour,
  HISTORY_LENGTH,
  type InterfaceSnapshot,
  type InterfaceView,
  parseTopArgs,
  type PeerSnapshot,
  renderFrame,
  snapshotOf,
  sparkline,
  sparkScale,
  TopHistory,
  windowMax,
} from "../../cli/top.ts";
import { DENO_RUN_FLAGS } from "../../cli/version.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { isZeroKey, keyToBase64, keyToHex } from "../../src/keys.ts";
import { GetParser } from "../../cli/wg/ipc.ts";
import { newDevice } from "../../cli/wg/containers.ts";
import { fallbackResolver } from "../../cli/wg/resolve.ts";
import { seededRng } from "../_util/fake_clock.ts";
import { type Netns, withNamespaces } from "../_util/netns.ts";
import { pidAlive, randomSuffix, run, sleep, waitFor } from "../_util/proc.ts";
import { ignoreUnless, type Needs } from "../_util/needs.ts";

// ---------------------------------------------------------------------------
// Pure rendering.

const ESCAPE = new RegExp("\x1b\\[[0-9;?]*[A-Za-z]", "g");

function strip(s: string): string {
  return s.replace(ESCAPE, "");
}

Deno.test("sparkline() scales to the window's maximum, newest on the right", () => {
  assert.equal(sparkline([0, 1, 2, 3, 4, 5, 6, 7], 8), "▁▂▃▄▅▆▇█");
  assert.equal(sparkline([7, 0], 2), "█▁");
  // Fewer samples than cells: blanks on the left.
  assert.equal(sparkline([5], 4), "   █");
  assert.equal(sparkline([], 3), "   ");
  // Nothing moved: the floor, not blanks.
  assert.equal(sparkline([0, 0, 0], 3), "▁▁▁");
  // A tiny rate next to a big one still shows above the floor.
  assert.equal(sparkline([1, 1_000_000], 2), "▂█");
  // Negative or NaN (never produced, but never drawn as traffic).
  assert.equal(sparkline([-5, NaN, 10], 3), "▁▁█");
  // Only the last `width` values count, and the default width is 20.
  const many = Array.from({ length: 30 }, (_, i) => i);
  assert.equal(sparkline(many, 5), sparkline([25, 26, 27, 28, 29], 5));
  assert.equal([...sparkline(many)].length, HISTORY_LENGTH);
  assert.equal([...sparkline([1])].length, 20);
});

Deno.test("formatRate() is at most 10 characters, binary units", () => {
  const table: [number | null, string][] = [
    [null, "-"],
    [0, "0 B/s"],
    [-3, "0 B/s"],
    [1, "1 B/s"],
    [1023, "1023 B/s"],
    [1023.6, "1023 B/s"],
    [1024, "1.0 KiB/s"],
    [1536, "1.5 KiB/s"],
    [99.94 * 1024, "99.9 KiB/s"],
    [99.96 * 1024, "100 KiB/s"],
    [1023.4 * 1024, "1023 KiB/s"],
    [1024 * 1024, "1.0 MiB/s"],
    [125_000_000, "119 MiB/s"],
    [5 * 1024 ** 3, "5.0 GiB/s"],
    [3 * 1024 ** 5, "3072 TiB/s"],
    [Infinity, "-"],
  ];
  for (const [n, want] of table) {
    assert.equal(formatRate(n), want, String(n));
    assert.ok(formatRate(n).length <= 10, `${n}: ${formatRate(n)}`);
  }
});

Deno.test("formatAge() and handshakeColour(): short ages, green < 2 min, yellow < 3 min, red", () => {
  const table: [number | null, string, string][] = [
    [null, "never", "red"],
    [-4, "0s", "green"],
    [0, "0s", "green"],
    [59.9, "59s", "green"],
    [60, "1m00s", "green"],
    [119, "1m59s", "green"],
    [120, "2m00s", "yellow"],
    [179, "2m59s", "yellow"],
    [180, "3m00s", "red"],
    [3599, "59m59s", "red"],
    [3600, "1h00m", "red"],
    [86399, "23h59m", "red"],
    [86400 * 3 + 3600 * 5, "3d05h", "red"],
  ];
  for (const [s, age, colour] of table) {
    assert.equal(formatAge(s), age, String(s));
    assert.equal(handshakeColour(s), colour, String(s));
    assert.ok(formatAge(s).length <= 9);
  }
});

Deno.test("abbreviateKey() and fit() match wireguard-go's peer names and cut with …", () => {
  const key = keyToBase64(new Uint8Array(32).map((_, i) => i * 7));
  assert.equal(abbreviateKey(key), `${key.slice(0, 4)}…${key.slice(39, 43)}`);
  assert.equal(abbreviateKey("short"), "short");
  assert.equal(fit("abc", 5), "abc  ");
  assert.equal(fit("abc", 5, true), "  abc");
  assert.equal(fit("abcdef", 4), "abc…");
  assert.equal(fit("abcdef", 0), "");
  assert.equal(fit("abc", Infinity), "abc");
});

Deno.test("parseTopArgs() takes --once, --watch, -h and one interface", () => {
  assert.deepEqual(parseTopArgs([]), { iface: null, once: false, watch: false, help: false });
  assert.deepEqual(parseTopArgs(["--once", "wg0"]), {
    iface: "wg0",
    once: true,
    watch: false,
    help: false,
  });
  assert.equal((parseTopArgs(["--watch"]) as { watch: boolean }).watch, true);
  assert.equal((parseTopArgs(["-h"]) as { help: boolean }).help, true);
  assert.equal(typeof parseTopArgs(["wg0", "wg1"]), "string");
  assert.equal(typeof parseTopArgs(["--bogus"]), "string");
  assert.equal(typeof parseTopArgs(["--once", "--watch"]), "string");
});

function keys(seed: number) {
  const priv = generatePrivateKey(seededRng(seed));
  return { priv, pub: publicKey(priv) };
}

Deno.test("snapshotOf() shows a get=1 reply: identity, peers, counters; ignores the rest", async () => {
  const me = keys(1), a = keys(2), b = keys(3);
  const kv: [string, string][] = [
    ["private_key", keyToHex(me.priv)],
    ["listen_port", "51820"],
    ["fwmark", "51820"],
    ["public_key", keyToHex(a.pub)],
    ["preshared_key", "00".repeat(32)],
    ["protocol_version", "1"],
    ["endpoint", "[2001:db8::1]:51821"],
    ["last_handshake_time_sec", "1700000000"],
    ["last_handshake_time_nsec", "5"],
    ["tx_bytes", "1234"],
    ["rx_bytes", "5678"],
    ["persistent_keepalive_interval", "25"],
    ["allowed_ip", "10.0.0.2/32"],
    ["allowed_ip", "fd00::2/128"],
    ["some_future_key", "x"],
    ["public_key", keyToHex(b.pub)],
  ];
  const parser = new GetParser("wg0", fallbackResolver());
  for (const [k, v] of [...kv, ["errno", "0"]]) {
    assert.equal(await parser.line(`${k}=${v}\n`), null);
  }
  assert.equal(await parser.line("\n"), 0);
  const s = snapshotOf("wg0", parser.device, fallbackResolver());
  assert.ok(isZeroKey(parser.device.privateKey), "the private key is wiped");
  assert.equal(s.name, "wg0");
  assert.equal(s.publicKey, keyToBase64(me.pub));
  assert.equal(s.listenPort, 51820);
  assert.equal(s.fwmark, 51820);
  assert.equal(s.error, undefined);
  assert.deepEqual(s.peers, [
    {
      publicKey: keyToBase64(a.pub),
      endpoint: "[2001:db8::1]:51821",
      lastHandshake: 1700000000,
      rxBytes: 5678,
      txBytes: 1234,
      keepalive: 25,
      allowedIps: ["10.0.0.2/32", "fd00::2/128"],
    },
    {
      publicKey: keyToBase64(b.pub),
      endpoint: null,
      lastHandshake: 0,
      rxBytes: 0,
      txBytes: 0,
      keepalive: 0,
      allowedIps: [],
    },
  ]);
  // No private key (a fresh wireguard-go): no public key.
  const bare = snapshotOf("wg1", newDevice(), fallbackResolver());
  assert.equal(bare.publicKey, null);
  assert.deepEqual(bare.peers, []);
});

function peer(n: number, fields: Partial<PeerSnapshot> = {}): PeerSnapshot {
  return {
    publicKey: keyToBase64(new Uint8Array(32).fill(n)),
    endpoint: `192.0.2.${n}:51820`,
    lastHandshake: 0,
    rxBytes: 0,
    txBytes: 0,
    keepalive: 0,
    allowedIps: [],
    ...fields,
  };
}

function iface(name: string, peers: PeerSnapshot[]): InterfaceSnapshot {
  return {
    name,
    publicKey: keyToBase64(new Uint8Array(32).fill(99)),
    listenPort: 51820,
    fwmark: 0,
    peers,
  };
}

Deno.test("TopHistory.update() turns counter deltas into bytes/s and keeps 20 samples", () => {
  const h = new TopHistory();
  const first = h.update(iface("wg0", [peer(1, { rxBytes: 1000, txBytes: 50 })]), 0);
  assert.equal(first.peers[0].rxRate, null, "no rate from one sample");
  assert.deepEqual(first.peers[0].rxHistory, []);
  const second = h.update(iface("wg0", [peer(1, { rxBytes: 3000, txBytes: 50 })]), 2000);
  assert.equal(second.peers[0].rxRate, 1000);
  assert.equal(second.peers[0].txRate, 0);
  for (let t = 3; t <= 40; t++) {
    h.update(iface("wg0", [peer(1, { rxBytes: 3000 + (t - 2) * t, txBytes: 50 })]), t * 1000);
  }
  const v = h.update(iface("wg0", [peer(1, { rxBytes: 5000, txBytes: 60 })]), 41_000);
  assert.equal(v.peers[0].rxHistory.length, HISTORY_LENGTH);
  assert.equal(v.peers[0].txHistory.at(-1), 10);
  // The same instant twice (no time passed): the previous rate stays.
  const same = h.update(iface("wg0", [peer(1, { rxBytes: 9000, txBytes: 60 })]), 41_000);
  assert.equal(same.peers[0].txRate, 10);
});

Deno.test("TopHistory.update() restarts a peer whose counters went down; forgets the gone", () => {
  const h = new TopHistory();
  h.update(iface("wg0", [peer(1, { rxBytes: 5000 }), peer(2, { rxBytes: 10 })]), 0);
  h.update(iface("wg0", [peer(1, { rxBytes: 6000 }), peer(2, { rxBytes: 20 })]), 1000);
  const v = h.update(iface("wg0", [peer(1, { rxBytes: 100 }), peer(2, { rxBytes: 30 })]), 2000);
  assert.equal(v.peers[0].rxRate, null, "re-added peer starts over");
  assert.deepEqual(v.peers[0].rxHistory, []);
  assert.deepEqual(v.peers[1].rxHistory, [10, 10]);
  // Peer 2 leaves and comes back: no stale history.
  h.update(iface("wg0", [peer(1, { rxBytes: 200 })]), 3000);
  const back = h.update(iface("wg0", [peer(1), peer(2, { rxBytes: 40 })]), 4000);
  assert.equal(back.peers[1].rxRate, null);
  // Interfaces are separate, and forgetOthers() drops the missing ones.
  const other = h.update(iface("wg1", [peer(1, { rxBytes: 7 })]), 4000);
  assert.equal(other.peers[0].rxRate, null);
  h.forgetOthers(["wg1"]);
  const again = h.update(iface("wg0", [peer(1, { rxBytes: 300 })]), 5000);
  assert.equal(again.peers[0].rxRate, null);
});

/** A view after 25 samples: one busy peer, one idle IPv6 peer, one never seen. */
function busyView(nowSec: number): InterfaceView {
  const h = new TopHistory();
  let v!: InterfaceView;
  for (let t = 0; t < 25; t++) {
    v = h.update(
      iface("wg0", [
        peer(1, {
          rxBytes: t * t * 1000,
          txBytes: t * 5000,
          lastHandshake: nowSec - 30,
          keepalive: 25,
        }),
        peer(2, {
          endpoint: "[2001:db8:1234:5678:9abc:def0:1234:5678]:51821",
          lastHandshake: nowSec - 150,
          txBytes: t * 100,
        }),
        peer(3, { endpoint: null }),
      ]),
      t * 1000,
    );
  }
  return v;
}

Deno.test("renderFrame() fits every width, never drops the peer column", () => {
  const now = 1_700_000_000;
  const views = [busyView(now), { ...iface("wg9", []), peers: [] }];
  for (let width = 20; width <= 220; width++) {
    for (const colour of [false, true]) {
      const lines = renderFrame(views, { width, colour, nowSec: now, title: "gotatun top" });
      for (const line of lines) {
        assert.ok([...strip(line)].length <= width, `width ${width}: "${strip(line)}"`);
      }
      const rows = lines.map(strip).filter((l) => /^ {2}\S{4}…\S{4}/.test(l));
      assert.equal(rows.length, 3, `width ${width}: three peer rows`);
    }
  }
});

Deno.test("renderFrame() wide: every column; narrow: the most useful ones", () => {
  const now = 1_700_000_000;
  const wide = renderFrame([busyView(now)], { width: Infinity, colour: false, nowSec: now });
  assert.equal(
    wide[0],
    `interface: wg0  public key: ${abbreviateKey(iface("wg0", []).publicKey!)}  ` +
      "listening port: 51820  peers: 3",
  );
  for (
    const h of [
      "PEER",
      "ENDPOINT",
      "HANDSHAKE",
      "RX/s",
      "TX/s",
      "RX TOTAL",
      "TX TOTAL",
      "KEEPALIVE",
    ]
  ) {
    assert.ok(wide[1].includes(h), h);
  }
  const busy = wide[2];
  assert.ok(busy.startsWith(`  ${abbreviateKey(peer(1).publicKey)}  192.0.2.1:51820`));
  assert.match(busy, / 30s /);
  assert.match(busy, / 45\.9 KiB\/s {2}▃▃▃▄▄▄▅▅▅▆▆▆▆▇▇▇████ /, "rx: rate (2t−1) kB/s and its rise");
  assert.match(busy, / 4\.9 KiB\/s {2}█{20} /, "tx: steady");
  assert.match(busy, / 562\.50 KiB +117\.19 KiB +25s$/);
  assert.match(wide[3], /\[2001:db8:1234:5678:9abc:def0:1234:5678\]:51821 +2m30s /);
  assert.match(wide[3], / off$/);
  assert.match(wide[4], /\(none\) +never /);
  // 80 columns: handshake and rates stay, the sparklines go.
  const narrow = renderFrame([busyView(now)], { width: 80, colour: false, nowSec: now });
  assert.match(narrow[1], /PEER +ENDPOINT +HANDSHAKE +RX\/s +TX\/s/);
  assert.ok(!narrow.join("\n").includes("▁"));
  // Plain frames carry no escape codes; coloured ones colour the ages.
  assert.ok(!wide.join("\n").includes("\x1b"));
  const coloured = renderFrame([busyView(now)], { width: 200, colour: true, nowSec: now });
  assert.ok(coloured[2].includes("\x1b[32m      30s\x1b[0m"), "green");
  assert.ok(coloured[3].includes("\x1b[33m    2m30s\x1b[0m"), "yellow");
  assert.ok(coloured[4].includes("\x1b[31m    never\x1b[0m"), "red");
});

Deno.test("renderFrame() a first sample shows '-' rates and blank sparklines", () => {
  const h = new TopHistory();
  const v = h.update(iface("wg0", [peer(1, { rxBytes: 100, txBytes: 200 })]), 0);
  const lines = renderFrame([v], { width: Infinity, colour: false, nowSec: 0 });
  assert.match(lines[2], / never +- +- +100 B +200 B +off$/);
});

Deno.test("renderFrame() never writes more lines than the terminal has rows", () => {
  const now = 1_700_000_000;
  const views = [busyView(now), busyView(now), busyView(now)];
  const full = renderFrame(views, { width: 200, colour: false, nowSec: now, title: "t" });
  assert.equal(full.length, 1 + 3 * 6);
  for (let height = 1; height <= 25; height++) {
    const lines = renderFrame(views, {
      width: 200,
      height,
      colour: false,
      nowSec: now,
      title: "t",
    });
    assert.equal(lines.length, Math.min(height, full.length), `height ${height}`);
    if (height < full.length) {
      assert.deepEqual(lines.slice(0, -1), full.slice(0, height - 1));
      assert.equal(
        lines.at(-1),
        `… ${full.length - height + 1} more lines: name an interface, or enlarge the window`,
      );
    } else assert.deepEqual(lines, full);
  }
});

Deno.test("renderFrame() empty and error cases", () => {
  assert.deepEqual(
    renderFrame([], { width: 100, colour: false, nowSec: 0, socketDir: "/x" }),
    ["no WireGuard interfaces (no sockets in /x)"],
  );
  const err: InterfaceView = { ...iface("wg0", []), peers: [], error: "daemon not running" };
  const noKey: InterfaceView = { ...iface("wg1", []), publicKey: null, fwmark: 0xca6c, peers: [] };
  assert.deepEqual(renderFrame([err, noKey], { width: 200, colour: false, nowSec: 0 }), [
    "interface: wg0  (daemon not running)",
    "",
    "interface: wg1  public key: (none)  listening port: 51820  fwmark: 0xca6c  peers: 0",
  ]);
});

// ---------------------------------------------------------------------------
// End to end, as root.

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);
const SOURCE_CMD = [
  Deno.execPath(),
  "run",
  ...DENO_RUN_FLAGS,
  "--config",
  `${ROOT}deno.json`,
  `${ROOT}cli/main.ts`,
];
const WIREGUARD_GO = "/usr/bin/wireguard-go";
const LABEL = "test/cli/top_test.ts";
/** What the root tests below need (test/_util/needs.ts). */
const ROOT_NEEDS: Needs = { root: true, tools: ["ip", "wg"] };

function digits(n: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(n)), (x) => String(x % 10)).join("");
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Starts `daemon` (argv) for a new interface in `ns` and configures one peer; returns names. */
async function daemonWithPeer(
  ns: Netns,
  daemon: string[],
  defer: (f: () => void) => void,
  port = 51820,
) {
  const name = `gttop${digits(6)}`;
  defer(() => {
    try {
      Deno.removeSync(`/var/run/wireguard/${name}.sock`);
    } catch {
      // removed by the daemon
    }
  });
  // (No WG_PROCESS_FOREGROUND here, not even empty: wireguard-go appends
  // WG_PROCESS_FOREGROUND=1 for its child, and Go takes the first of duplicates.)
  const r = await ns.execWith({ timeoutMs: 60_000 }, daemon[0], ...daemon.slice(1), name);
  assert.equal(r.code, 0, `start ${daemon[0]}: ${r.stdout}${r.stderr}`);
  assert.ok(await waitFor(() => exists(`/var/run/wireguard/${name}.sock`), 10_000), "socket");
  const priv = (await run("wg", ["genkey"])).stdout.trim();
  const peerPub = (await run("wg", ["pubkey"], {
    stdin: (await run("wg", ["genkey"])).stdout,
  })).stdout.trim();
  const keyFile = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(keyFile, priv + "\n");
    const set = await ns.exec(
      "wg",
      "set",
      name,
      "private-key",
      keyFile,
      "listen-port",
      String(port),
      "peer",
      peerPub,
      "endpoint",
      "192.0.2.200:51821",
      "allowed-ips",
      "10.77.0.2/32",
      "persistent-keepalive",
      "25",
    );
    assert.equal(set.code, 0, set.stderr);
  } finally {
    await Deno.remove(keyFile);
  }
  const pub = (await run("wg", ["pubkey"], { stdin: priv + "\n" })).stdout.trim();
  return { name, pub, peerPub, port };
}

/** Checks a plain `top --once` frame for the interface configured by {@link daemonWithPeer}. */
function checkFrame(
  out: string,
  d: { name: string; pub: string; peerPub: string; port: number },
): void {
  assert.ok(!out.includes("\x1b"), "plain output has no escape codes");
  const lines = out.split("\n");
  const at = lines.findIndex((l) => l.startsWith(`interface: ${d.name}  `));
  assert.ok(at >= 0, out);
  assert.equal(
    lines[at],
    `interface: ${d.name}  public key: ${
      abbreviateKey(d.pub)
    }  listening port: ${d.port}  peers: 1`,
  );
  assert.match(lines[at + 1], /^ {2}PEER +ENDPOINT +HANDSHAKE +RX\/s/);
  const row = lines[at + 2];
  assert.ok(row.startsWith(`  ${abbreviateKey(d.peerPub)}  192.0.2.200:51821`), row);
  assert.match(row, / never +- +- /);
  assert.match(row, / 25s$/);
}

Deno.test({
  name: "gotatun top --once reads a gotatun daemon and a wireguard-go daemon",
  ignore: ignoreUnless(LABEL, ROOT_NEEDS),
  async fn() {
    await withNamespaces("gttop", 1, async ({ namespaces: [ns], defer }) => {
      const ours = await daemonWithPeer(ns, SOURCE_CMD, defer);
      const once = await run(SOURCE_CMD[0], [...SOURCE_CMD.slice(1), "top", "--once", ours.name], {
        timeoutMs: 60_000,
      });
      assert.equal(once.code, 0, once.stderr);
      checkFrame(once.stdout, ours);

      if (exists(WIREGUARD_GO)) {
        const theirs = await daemonWithPeer(ns, [WIREGUARD_GO], defer, 51830);
        // Without an interface: every socket, ours and wireguard-go's among them.
        const all = await run(SOURCE_CMD[0], [...SOURCE_CMD.slice(1), "top"], {
          timeoutMs: 60_000,
        });
        assert.equal(all.code, 0, all.stderr);
        checkFrame(all.stdout, ours);
        checkFrame(all.stdout, theirs);
      }

      // A missing interface: said in the frame, exit 1.
      const missing = await run(
        SOURCE_CMD[0],
        [...SOURCE_CMD.slice(1), "top", "--once", `gttop${digits(6)}`],
        { timeoutMs: 60_000 },
      );
      assert.equal(missing.code, 1);
      assert.match(missing.stdout, /\(no such interface: no UAPI socket\)/);
    });
  },
});

Deno.test({
  name: "gotatun top --watch to a pipe prints a plain frame a second and stops on SIGINT",
  ignore: ignoreUnless(LABEL, ROOT_NEEDS),
  async fn() {
    await withNamespaces("gttop", 1, async ({ namespaces: [ns], defer, spawnHere }) => {
      const d = await daemonWithPeer(ns, SOURCE_CMD, defer);
      const top = spawnHere(SOURCE_CMD[0], [...SOURCE_CMD.slice(1), "top", "--watch", d.name], {
        output: "piped",
      });
      const frames = () => top.output().stdout.split(`interface: ${d.name}  `).length - 1;
      assert.ok(await waitFor(() => frames() >= 3, 20_000), top.output().stdout);
      const status = await top.kill("SIGINT");
      assert.equal(status.code, 0, "SIGINT is a normal way out");
      const out = top.output().stdout;
      assert.ok(!out.includes("\x1b"), "plain frames");
      // From the second frame on the rates are real numbers.
      assert.match(out, new RegExp(`${escapeRe(abbreviateKey(d.peerPub))}.* B/s +.* B/s `));
    });
  },
});

// ---------------------------------------------------------------------------
// Full screen, through tmux.

/** A tmux server of our own (its own socket name), killed by PID at the end. */
class Tmux {
  readonly socket = `gttop-${randomSuffix(6)}`;
  pid = 0;

  async cmd(...args: string[]): Promise<string> {
    const r = await run("tmux", ["-L", this.socket, ...args], { timeoutMs: 10_000 });
    assert.equal(r.code, 0, `tmux ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  }

  async start(): Promise<void> {
    await this.cmd(
      "-f",
      "/dev/null",
      "new-session",
      "-d",
      "-s",
      "t",
      "-x",
      "200",
      "-y",
      "40",
      "bash --norc --noprofile",
    );
    this.pid = Number((await this.cmd("display-message", "-p", "-t", "t", "#{pid}")).trim());
  }

  screen(): Promise<string> {
    return this.cmd("capture-pane", "-p", "-t", "t");
  }

  async flags(): Promise<{ alternate: boolean; cursor: boolean }> {
    const [a, c] =
      (await this.cmd("display-message", "-p", "-t", "t", "#{alternate_on} #{cursor_flag}"))
        .trim().split(" ");
    return { alternate: a === "1", cursor: c === "1" };
  }

  async waitScreen(re: RegExp, ms = 30_000): Promise<string> {
    let last = "";
    const ok = await waitFor(async () => re.test(last = await this.screen()), ms, 200);
    assert.ok(ok, `screen never matched ${re}:\n${last}`);
    return last;
  }

  async stop(): Promise<void> {
    await run("tmux", ["-L", this.socket, "kill-server"], { timeoutMs: 10_000 }).catch(() => {});
    if (this.pid > 0 && pidAlive(this.pid)) {
      try {
        Deno.kill(this.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  }
}

function shellQuote(a: string): string {
  return `'${a.replaceAll("'", `'\\''`)}'`;
}

Deno.test({
  name: "gotatun top on a terminal: alternate screen, q and Ctrl-C restore the terminal",
  ignore: ignoreUnless(LABEL, { root: true, tools: ["ip", "wg", "tmux"] }),
  async fn() {
    await withNamespaces("gttop", 1, async ({ namespaces: [ns], defer }) => {
      const d = await daemonWithPeer(ns, SOURCE_CMD, defer);
      const tmp = await Deno.makeTempDir({ prefix: "gttop" });
      defer(() => Deno.remove(tmp, { recursive: true }));
      const tmux = new Tmux();
      defer(() => tmux.stop());
      await tmux.start();
      const cmd = [...SOURCE_CMD, "top", d.name].map(shellQuote).join(" ");
      for (const [round, key] of [[1, "q"], [2, "C-c"]] as const) {
        await tmux.cmd(
          "send-keys",
          "-t",
          "t",
          `clear; stty -g > ${tmp}/before${round}; echo MARKER-${round}; ${cmd}; ` +
            `echo EXIT-${round}=$?; stty -g > ${tmp}/after${round}`,
          "Enter",
        );
        const screen = await tmux.waitScreen(new RegExp(`interface: ${d.name} `));
        assert.match(screen, /gotatun top .*\(q quits\)/);
        assert.match(screen, /PEER +ENDPOINT +HANDSHAKE +RX\/s +RX 20s █=\S+ \S*B\/s +TX\/s/);
        assert.deepEqual(await tmux.flags(), { alternate: true, cursor: false });
        // After the second sample the rates are numbers.
        await tmux.waitScreen(new RegExp(`${escapeRe(abbreviateKey(d.peerPub))}.* B/s `), 10_000);
        await tmux.cmd("send-keys", "-t", "t", key);
        const after = await tmux.waitScreen(new RegExp(`EXIT-${round}=0`), 10_000);
        assert.match(after, new RegExp(`MARKER-${round}`));
        assert.ok(!after.includes("HANDSHAKE"), `the dashboard is gone:\n${after}`);
        assert.deepEqual(await tmux.flags(), { alternate: false, cursor: true });
        assert.ok(await waitFor(() => exists(`${tmp}/after${round}`), 5000));
        await sleep(100);
        assert.equal(
          await Deno.readTextFile(`${tmp}/after${round}`),
          await Deno.readTextFile(`${tmp}/before${round}`),
          "terminal modes restored (stty -g)",
        );
      }
    });
  },
});

Deno.test("sparkline() on a shared scale: a trickle stays low beside a flow", () => {
  assert.equal(sparkline([100, 100], 2, 7000), "▂▂");
  assert.equal(sparkline([7000, 3500, 0], 3, 7000), "█▅▁");
  // Above the scale is a full cell; a scale of 0 draws the floor.
  assert.equal(sparkline([9000], 1, 7000), "█");
  assert.equal(sparkline([0, 0], 2, 0), "▁▁");
  assert.equal(windowMax([9, 1, 2, 3], 3), 3);
  assert.equal(windowMax([]), 0);
});

Deno.test("renderFrame() sparklines share one scale per direction, shown in the header", () => {
  const now = 1_700_000_000;
  const view = busyView(now);
  const lines = renderFrame([view], { width: Infinity, colour: false, nowSec: now });
  const rxScale = sparkScale(view.peers, "rx");
  const txScale = sparkScale(view.peers, "tx");
  assert.ok(rxScale > 0 && txScale > 0);
  assert.ok(lines[1].includes(`RX 20s █=${formatRate(rxScale)}`), lines[1]);
  assert.ok(lines[1].includes(`TX 20s █=${formatRate(txScale)}`), lines[1]);
  // Peer 2 sends 100 B/s beside peer 1's 5000 B/s: its bar stays at the floor
  // instead of filling up (as it did when each sparkline scaled itself).
  assert.ok(lines[2].includes("█".repeat(HISTORY_LENGTH)), lines[2]);
  assert.ok(lines[3].includes("▂".repeat(HISTORY_LENGTH)), lines[3]);
  assert.ok(!lines[3].includes("█"), lines[3]);
});

Deno.test("cutEndpoint() cuts the address in the middle and keeps the port", () => {
  const v6 = "[2001:db8:1234:5678:9abc:def0:1234:5678]:51821";
  assert.equal(cutEndpoint(v6, 100), v6);
  assert.equal(cutEndpoint(v6, 20), "[2001:db8:12…]:51821");
  assert.equal(cutEndpoint(v6, 20).length, 20);
  assert.equal(cutEndpoint("203.0.113.254:51820", 15), "203.0.11…:51820");
  // Too narrow for the port and a bit of address: an ordinary cut.
  assert.equal(cutEndpoint("203.0.113.254:51820", 7), "203.0.…");
  assert.equal(cutEndpoint("(none)", 4), "(no…");
});

Deno.test("renderFrame() never cuts an endpoint's port for a column of lower priority", () => {
  const now = 1_700_000_000;
  const view = busyView(now);
  for (let width = 20; width <= 220; width++) {
    const lines = renderFrame([view], { width, colour: false, nowSec: now });
    if (!lines[1].includes("ENDPOINT")) continue;
    for (const [row, p] of lines.slice(2).map((l, i) => [l, view.peers[i]] as const)) {
      const port = p.endpoint?.match(/:[0-9]+$/)?.[0];
      if (port !== undefined) assert.ok(row.includes(`${port} `), `width ${width}: ${row}`);
    }
    // Whole endpoints whenever the columns before the sparklines fit with them.
    const whole = 2 + 9 + 2 + 47 + 2 + 9 + 2 + 10 + 2 + 10;
    if (width >= whole) {
      assert.ok(lines[3].includes(view.peers[1].endpoint!), `width ${width}: ${lines[3]}`);
    }
  }
  // 100 columns, as in the report: the IPv6 endpoint whole, its port included.
  const at100 = renderFrame([view], { width: 100, colour: false, nowSec: now });
  assert.match(at100[3], /\[2001:db8:1234:5678:9abc:def0:1234:5678\]:51821 /);
});

Deno.test("gotatun top --watch | head -1 ends quietly when head exits", async () => {
  // The second frame, a second later, is written to a pipe nobody reads any more.
  const cmd = [...SOURCE_CMD, "top", "--watch"].map(shellQuote).join(" ");
  const r = await run("bash", ["-c", `set -o pipefail; ${cmd} | head -1`], {
    env: { NO_COLOR: "1" },
    timeoutMs: 60_000,
  });
  assert.equal(r.timedOut, false);
  assert.equal(r.stderr, "", "no BrokenPipe stack trace");
  assert.equal(r.code, 0, "top exits 0 (pipefail reports its status)");
  assert.match(r.stdout, /^gotatun top {2}\d/);
  assert.equal(r.stdout.split("\n").length, 2, "one line");
});
