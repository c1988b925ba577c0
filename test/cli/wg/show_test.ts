// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Unit tests of `wg show` formatting (no root): time and byte units, peer
 * sorting, colours, hidden keys, and whole outputs from a scripted daemon in
 * a temporary socket directory with a fixed clock.
 */
import assert from "node:assert/strict";
import { ago, formatBytes, prettyTime, sortPeers } from "../../../cli/wg/show.ts";
import { newPeer } from "../../../cli/wg/containers.ts";
import { filterAnsi } from "../../../cli/wg/terminal.ts";
import { keyToBase64, keyToHex } from "../../../cli/wg/encoding.ts";
import { wgMain } from "../../../cli/wg/main.ts";
import { publicKey } from "../../../src/crypto.ts";
import { FakeDaemon, staticDaemon } from "./_fake_daemon.ts";
import { MemoryWriter } from "./_io.ts";

const plain = (s: string) => filterAnsi(s);

Deno.test("prettyTime() and ago() spell durations like wg", () => {
  assert.equal(plain(prettyTime(1n)), "1 second");
  assert.equal(plain(prettyTime(61n)), "1 minute, 1 second");
  assert.equal(plain(prettyTime(3725n)), "1 hour, 2 minutes, 5 seconds");
  assert.equal(plain(prettyTime(365n * 86400n + 2n * 86400n)), "1 year, 2 days");
  assert.equal(prettyTime(2n), "2 \x1b[36mseconds\x1b[0m");
  assert.equal(ago(100n, 100n), "Now");
  assert.equal(plain(ago(90n, 100n)), "10 seconds ago");
  assert.equal(
    ago(101n, 100n),
    "(\x1b[31mSystem clock wound backward; connection problems may ensue.\x1b[0m)",
  );
});

Deno.test("formatBytes() uses binary units and glibc rounding", () => {
  assert.equal(plain(formatBytes(0n)), "0 B");
  assert.equal(plain(formatBytes(1023n)), "1023 B");
  assert.equal(plain(formatBytes(1024n)), "1.00 KiB");
  assert.equal(plain(formatBytes(1152n)), "1.12 KiB");
  assert.equal(plain(formatBytes(1073741823n)), "1024.00 MiB");
  assert.equal(plain(formatBytes(1099511627776n)), "1.00 TiB");
  assert.equal(plain(formatBytes(18446744073709551615n)), "16777216.00 TiB");
  assert.equal(formatBytes(5n), "5 \x1b[36mB\x1b[0m");
});

Deno.test("sortPeers() puts the latest handshake first, never-handshaked last, ties stable", () => {
  const mk = (id: number, sec: bigint, nsec = 0n) => {
    const p = newPeer();
    p.publicKey[0] = id;
    p.lastHandshakeSec = sec;
    p.lastHandshakeNsec = nsec;
    return p;
  };
  const peers = [mk(1, 0n), mk(2, 10n), mk(3, 0n, 1n), mk(4, 0n), mk(5, 10n, 5n), mk(6, 10n)];
  assert.deepEqual(sortPeers(peers).map((p) => p.publicKey[0]), [5, 2, 6, 3, 1, 4]);
});

function key(seed: number): Uint8Array {
  const k = new Uint8Array(32);
  for (let i = 0; i < 32; i++) k[i] = (seed * 29 + i * 7) & 0xff;
  k[0] &= 248;
  k[31] = (k[31] & 127) | 64;
  return k;
}

const NOW = 1_700_000_000;
const PRIV = key(1);
const P1 = publicKey(key(2));
const P2 = publicKey(key(3));
const PSK = key(4);

const BODY = [
  `private_key=${keyToHex(PRIV)}`,
  "listen_port=51820",
  "fwmark=51820",
  `public_key=${keyToHex(P1)}`,
  `preshared_key=${"0".repeat(64)}`,
  "last_handshake_time_sec=0",
  "rx_bytes=0",
  "tx_bytes=0",
  "persistent_keepalive_interval=0",
  `public_key=${keyToHex(P2)}`,
  `preshared_key=${keyToHex(PSK)}`,
  "endpoint=[2001:db8::1]:51820",
  `last_handshake_time_sec=${NOW - 65}`,
  "rx_bytes=2048",
  "tx_bytes=100",
  "persistent_keepalive_interval=25",
  "allowed_ip=10.0.0.0/8",
  "allowed_ip=fd00::/64",
  "",
].join("\n");

async function show(args: string[], env: Record<string, string> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "gtwg-" });
  const daemon = new FakeDaemon(dir, "gtwg0", staticDaemon(BODY));
  try {
    const out = new MemoryWriter();
    const err = new MemoryWriter();
    const code = await wgMain(args, env, {
      stdout: out,
      stderr: err,
      socketDir: dir,
      now: () => NOW,
    });
    return { code, stdout: out.text(), stderr: err.text() };
  } finally {
    await daemon.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("wgMain() show prints the sorted pretty view", async () => {
  const r = await show(["show", "gtwg0"]);
  assert.deepEqual(r, {
    code: 0,
    stderr: "",
    stdout: `interface: gtwg0
  public key: ${keyToBase64(publicKey(PRIV))}
  private key: (hidden)
  listening port: 51820
  fwmark: 0xca6c

peer: ${keyToBase64(P2)}
  preshared key: (hidden)
  endpoint: [2001:db8::1]:51820
  allowed ips: 10.0.0.0/8, fd00::/64
  latest handshake: 1 minute, 5 seconds ago
  transfer: 2.00 KiB received, 100 B sent
  persistent keepalive: every 25 seconds

peer: ${keyToBase64(P1)}
  allowed ips: (none)
`,
  });
  const shown = await show(["show", "gtwg0"], { WG_HIDE_KEYS: "never" });
  assert.match(shown.stdout, new RegExp(`private key: ${keyToBase64(PRIV).replace(/[+/]/g, ".")}`));
  assert.match(
    shown.stdout,
    new RegExp(`preshared key: ${keyToBase64(PSK).replace(/[+/]/g, ".")}`),
  );
});

Deno.test("wgMain() show colours only when asked or on a terminal", async () => {
  const colored = await show(["show", "gtwg0"], { WG_COLOR_MODE: "always" });
  assert.ok(
    colored.stdout.startsWith("\x1b[0m\x1b[32m\x1b[1minterface\x1b[0m: \x1b[32mgtwg0\x1b[0m\n"),
  );
  assert.ok(
    colored.stdout.includes("\x1b[1mallowed ips\x1b[0m: 10.0.0.0\x1b[36m/\x1b[0m8, "),
  );
  assert.equal(filterAnsi(colored.stdout), (await show(["show", "gtwg0"])).stdout);
  const never = await show(["show", "gtwg0"], { WG_COLOR_MODE: "never" });
  assert.ok(!never.stdout.includes("\x1b"));
});

Deno.test("wgMain() show fields keep the daemon's order", async () => {
  assert.equal(
    (await show(["show", "gtwg0", "latest-handshakes"])).stdout,
    `${keyToBase64(P1)}\t0\n${keyToBase64(P2)}\t${NOW - 65}\n`,
  );
  assert.equal(
    (await show(["show", "gtwg0", "dump"])).stdout,
    `${keyToBase64(PRIV)}\t${keyToBase64(publicKey(PRIV))}\t51820\t0xca6c\n` +
      `${keyToBase64(P1)}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n` +
      `${keyToBase64(P2)}\t${keyToBase64(PSK)}\t[2001:db8::1]:51820\t10.0.0.0/8,fd00::/64\t${
        NOW - 65
      }\t2048\t100\t25\n`,
  );
  assert.equal(
    (await show(["show", "all", "allowed-ips"])).stdout,
    `gtwg0\t${keyToBase64(P1)}\t(none)\ngtwg0\t${keyToBase64(P2)}\t10.0.0.0/8 fd00::/64\n`,
  );
  assert.deepEqual(await show(["show", "gtwg0", "nope"]), {
    code: 1,
    stdout: "",
    stderr: "Invalid parameter: `nope'\nUsage: wg show { <interface> | all | interfaces } " +
      "[public-key | private-key | listen-port | fwmark | peers | preshared-keys | endpoints | " +
      "allowed-ips | latest-handshakes | transfer | persistent-keepalive | dump]\n",
  });
});

Deno.test("wgMain() showconf prints a config setconf accepts", async () => {
  assert.equal(
    (await show(["showconf", "gtwg0"])).stdout,
    `[Interface]
ListenPort = 51820
FwMark = 0xca6c
PrivateKey = ${keyToBase64(PRIV)}

[Peer]
PublicKey = ${keyToBase64(P1)}

[Peer]
PublicKey = ${keyToBase64(P2)}
PresharedKey = ${keyToBase64(PSK)}
AllowedIPs = 10.0.0.0/8, fd00::/64
Endpoint = [2001:db8::1]:51820
PersistentKeepalive = 25
`,
  );
});
