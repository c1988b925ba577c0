// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Differential tests of {@link wgMain} against stock `/usr/bin/wg` (root
 * only): the same command lines, run by both inside one sandbox (see
 * _sandbox.ts), must give the same stdout, stderr and exit status byte for
 * byte, and the same UAPI requests (recorded by a scripted daemon) or the same
 * resulting configuration on wireguard-go.
 *
 * The installed wg is wireguard-tools v1.0.20210914; ours follows
 * v1.0.20260223. Where those releases differ (version string, `wg set`
 * usage, `+`/`-` allowed IPs, `show all endpoints`, syncconf clearing removed
 * preshared keys and keepalives, ENAMETOOLONG for long names) the tests check
 * ours against the newer release's behaviour explicitly.
 */
import assert from "node:assert/strict";
import { Netns, vethPair } from "../../_util/netns.ts";
import { ignoreUnless, type Needs } from "../../_util/needs.ts";
import { run, sleep, waitFor } from "../../_util/proc.ts";
import { type WgRun, type WgRunOptions, WgSandbox } from "./_sandbox.ts";
import { FakeDaemon, staticDaemon } from "./_fake_daemon.ts";
import { keyToBase64, keyToHex } from "../../../cli/wg/encoding.ts";
import { publicKey } from "../../../src/crypto.ts";

const LABEL = "test/cli/wg/main_test.ts";
/** What the root tests below need (test/_util/needs.ts). */
const ROOT_NEEDS: Needs = { root: true, tools: ["wg", "wireguard-go", "unshare", "nsenter", "ip"] };
const ignore = ignoreUnless(LABEL, ROOT_NEEDS);

/** Fixed keys (private keys are clamped, as wg genkey makes them). */
function fixedKey(seed: number, clamp = true): Uint8Array {
  const k = new Uint8Array(32);
  for (let i = 0; i < 32; i++) k[i] = (seed * 37 + i * 11 + 5) & 0xff;
  if (clamp) {
    k[0] &= 248;
    k[31] = (k[31] & 127) | 64;
  }
  return k;
}
const PRIV = fixedKey(1);
const PEER_KEYS = [2, 3, 4, 5, 6].map((s) => publicKey(fixedKey(s)));
const PSK = fixedKey(9, false);
const b64 = keyToBase64;

async function same(sb: WgSandbox, args: string[], opts: WgRunOptions = {}): Promise<WgRun> {
  const want = await sb.stock(args, opts);
  const got = await sb.ours(args, opts);
  assert.deepEqual(got, want, `wg ${args.join(" ")} ${JSON.stringify(opts.env ?? {})}`);
  return want;
}

/**
 * sameStable() is {@link same} for output that depends on the clock
 * ("… seconds ago"): stock runs before and after ours, and only a pair of
 * identical stock runs (same second) is compared.
 */
async function sameStable(sb: WgSandbox, args: string[], opts: WgRunOptions = {}): Promise<void> {
  for (let attempt = 0; attempt < 8; attempt++) {
    const before = await sb.stock(args, opts);
    const got = await sb.ours(args, opts);
    const after = await sb.stock(args, opts);
    if (JSON.stringify(before) !== JSON.stringify(after)) continue;
    assert.deepEqual(got, before, `wg ${args.join(" ")} ${JSON.stringify(opts.env ?? {})}`);
    return;
  }
  assert.fail(`stock wg ${args.join(" ")} never gave the same output twice`);
}

async function withSandbox(fn: (sb: WgSandbox) => Promise<void>): Promise<void> {
  const sb = await WgSandbox.create();
  try {
    await fn(sb);
  } finally {
    await sb.close();
  }
}

const SHOW_FIELDS = [
  "public-key",
  "private-key",
  "listen-port",
  "fwmark",
  "peers",
  "preshared-keys",
  "endpoints",
  "allowed-ips",
  "latest-handshakes",
  "transfer",
  "persistent-keepalive",
  "dump",
];

Deno.test({
  name: "wgMain() genkey, genpsk and pubkey behave like wg",
  ignore,
  async fn() {
    await withSandbox(async (sb) => {
      for (let s = 0; s < 6; s++) {
        const key = b64(fixedKey(s, s % 2 === 0));
        await same(sb, ["pubkey"], { stdin: key });
        await same(sb, ["pubkey"], { stdin: `${key}\n` });
        await same(sb, ["pubkey"], { stdin: `${key} \t\r\n\0\n` });
      }
      const key = b64(PRIV);
      for (
        const stdin of [
          "",
          key.slice(0, 43),
          `${key}x`,
          `${key}\n\nx`,
          `${key.slice(0, 43)}\n`,
          `${key.slice(0, 42)}B=`,
          `*${key.slice(1)}`,
          ` ${key}`,
        ]
      ) {
        await same(sb, ["pubkey"], { stdin });
      }
      for (const args of [["genkey", "x"], ["genpsk", "x"], ["pubkey", "x"]]) await same(sb, args);
      for (const cmd of ["genkey", "genpsk"]) {
        const r = await sb.ours([cmd]);
        assert.equal(r.code, 0);
        assert.equal(r.stderr, "");
        assert.match(r.stdout, /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\n$/);
        const bytes = Uint8Array.fromBase64(r.stdout.trim());
        if (cmd === "genkey") {
          assert.equal(bytes[0] & 7, 0);
          assert.equal(bytes[31] & 0xc0, 0x40);
        }
        // Stock wg accepts what we generate.
        const pub = await sb.stock(["pubkey"], { stdin: r.stdout });
        assert.equal(pub.code, 0);
        assert.deepEqual(await sb.ours(["pubkey"], { stdin: r.stdout }), pub);
      }
      // The warning about world-readable output files (real stdout, so as a process).
      const dir = await Deno.makeTempDir({ prefix: "gtwg-" });
      try {
        for (const [umask, cmd] of [["022", "genkey"], ["077", "genkey"], ["002", "genpsk"]]) {
          const script = (wg: string) => `umask ${umask}; ${wg} ${cmd} > ${dir}/${wg.length}.key`;
          const want = await run("sh", ["-c", script("wg")], { timeoutMs: 10_000 });
          const ourCmd = `${Deno.execPath()} run -A --no-check ${
            new URL("../../../cli/wg/main.ts", import.meta.url).pathname
          }`;
          const got = await run("sh", ["-c", script(ourCmd)], { timeoutMs: 30_000 });
          assert.equal(got.stderr, want.stderr, `umask ${umask}`);
          assert.equal(got.code, want.code);
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
});

Deno.test({
  name: "wgMain() usage, help, version and unknown subcommands behave like wg",
  ignore,
  async fn() {
    await withSandbox(async (sb) => {
      for (
        const args of [
          ["--help"],
          ["-h"],
          ["help"],
          ["--help", "x"],
          ["bogus"],
          ["version", "x"],
          ["show", "-h"],
          ["show", "--help"],
          ["show", "a", "b", "c"],
          ["show", "interfaces", "x"],
          ["showconf"],
          ["showconf", "a", "b"],
          ["setconf", "x"],
          ["addconf"],
          ["syncconf", "a", "b", "c"],
          [],
          ["show"],
          ["show", "interfaces"],
          ["show", "all"],
          ["show", "all", "dump"],
          ["show", "all", "bogus"],
        ]
      ) {
        await same(sb, args);
      }
      const version = await sb.ours(["--version"]);
      assert.deepEqual(version, {
        code: 0,
        stdout: "wireguard-tools v1.0.20260223 - https://git.zx2c4.com/wireguard-tools/\n",
        stderr: "",
      });
      assert.deepEqual(await sb.ours(["-v"]), version);
      const stockUsage = (await sb.stock(["set", "x"])).stderr;
      const ourUsage = (await sb.ours(["set", "x"])).stderr;
      assert.equal(
        ourUsage,
        stockUsage.replace(
          "[allowed-ips <ip1>/<cidr1>[,<ip2>/<cidr2>]...]",
          "[allowed-ips [+|-]<ip1>/<cidr1>[,[+|-]<ip2>/<cidr2>]...]",
        ),
      );
    });
  },
});

/** A get reply with everything `wg show` can print. */
function richBody(now: number): string {
  const h = keyToHex;
  return [
    `private_key=${h(PRIV)}`,
    "listen_port=51820",
    "fwmark=4660",
    `public_key=${h(PEER_KEYS[0])}`,
    `preshared_key=${h(PSK)}`,
    "protocol_version=1",
    "endpoint=10.0.0.1:51820",
    `last_handshake_time_sec=${now - 3725}`,
    "last_handshake_time_nsec=5",
    "tx_bytes=1152",
    "rx_bytes=1073741823",
    "persistent_keepalive_interval=25",
    "allowed_ip=10.1.0.0/16",
    "allowed_ip=fd00::/64",
    "allowed_ip=::ffff:1.2.3.4/128",
    "allowed_ip=::1.2.3.4/128",
    "allowed_ip=1.2.3.4/256",
    `public_key=${h(PEER_KEYS[1])}`,
    `preshared_key=${"0".repeat(64)}`,
    "endpoint=[fe80::1%1]:7",
    "last_handshake_time_sec=0",
    "last_handshake_time_nsec=0",
    "tx_bytes=0",
    "rx_bytes=0",
    "persistent_keepalive_interval=0",
    `public_key=${h(PEER_KEYS[2])}`,
    "endpoint=[2001:db8::1]:65535",
    `last_handshake_time_sec=${now - 40_000_000}`,
    "rx_bytes=1099511627776",
    "tx_bytes=18446744073709551615",
    "persistent_keepalive_interval=65535",
    "allowed_ip=0.0.0.0/0",
    "allowed_ip=::/0",
    `public_key=${h(PEER_KEYS[3])}`,
    `last_handshake_time_sec=${now + 1000}`,
    "rx_bytes=1023",
    "tx_bytes=1024",
    "unknown_key=ignored",
    `public_key=${h(PEER_KEYS[4])}`,
    `last_handshake_time_sec=${now - 3725}`,
    "last_handshake_time_nsec=6",
    "",
  ].join("\n");
}

Deno.test({
  name: "wgMain() show, showconf, dump and every field print what wg prints",
  ignore,
  async fn() {
    await withSandbox(async (sb) => {
      const now = Math.floor(Date.now() / 1000);
      const a = new FakeDaemon(sb.socketDir, "gtwg0", staticDaemon(richBody(now)));
      const b = new FakeDaemon(sb.socketDir, "gtwg1", staticDaemon("listen_port=1\n"));
      const c = new FakeDaemon(
        sb.socketDir,
        "gtwg2",
        staticDaemon(`public_key=${keyToHex(PEER_KEYS[0])}\nallowed_ip=10.9.0.0/24\n`),
      );
      try {
        for (const iface of ["gtwg0", "gtwg1", "gtwg2", "all"]) {
          await sameStable(sb, ["show", iface]);
          for (const field of SHOW_FIELDS) {
            // "all endpoints" changed after the installed release (b4f6b4f).
            if (iface === "all" && field === "endpoints") continue;
            await same(sb, ["show", iface, field]);
          }
          if (iface !== "all") await same(sb, ["showconf", iface]);
        }
        await sameStable(sb, []);
        await sameStable(sb, ["show"]);
        await same(sb, ["show", "interfaces"]);
        for (const env of [{ WG_HIDE_KEYS: "never" }, { WG_HIDE_KEYS: "always" }]) {
          await sameStable(sb, ["show", "gtwg0"], { env });
        }
        for (
          const env of [
            { WG_COLOR_MODE: "always" } as Record<string, string>,
            { WG_COLOR_MODE: "never" },
            { WG_COLOR_MODE: "auto" },
            { WG_COLOR_MODE: "always", WG_HIDE_KEYS: "never" },
          ]
        ) {
          await sameStable(sb, ["show"], { env });
          await same(sb, ["show", "all", "dump"], { env });
        }
        // `show all endpoints` as wireguard-tools ≥ 1.0.20250521 prints it.
        const endpoints = await sb.ours(["show", "all", "endpoints"]);
        const perIface = await Promise.all(
          ["gtwg0", "gtwg1", "gtwg2"].map((i) => sb.stock(["show", i, "endpoints"])),
        );
        const order = (await sb.stock(["show", "interfaces"])).stdout.trim().split(" ");
        const expected = order.map((iface) => {
          const text = perIface[["gtwg0", "gtwg1", "gtwg2"].indexOf(iface)].stdout;
          return text.split("\n").filter((l) => l !== "").map((l) => `${iface}\t${l}\n`).join("");
        }).join("");
        assert.deepEqual(endpoints, { code: 0, stdout: expected, stderr: "" });
      } finally {
        await Promise.all([a.close(), b.close(), c.close()]);
      }
    });
  },
});

Deno.test({
  name: "wgMain() handles odd and failing daemon replies like wg",
  ignore,
  async fn() {
    await withSandbox(async (sb) => {
      const h = keyToHex(PEER_KEYS[0]);
      const replies: [string, string | null][] = [
        ["errno=5\n\n", null],
        ["listen_port=1\n\n", null],
        ["listen_port=1\nerrno=0\n", null],
        ["listen_port=1\nerrno=-1\n\n", null],
        ["listen_port=65536\nerrno=0\n\n", null],
        ["listen_port= 1\nerrno=0\n\n", null],
        ["fwmark=4294967295\nerrno=0\n\n", null],
        ["fwmark=4294967296\nerrno=0\n\n", null],
        ["garbage\nerrno=0\n\n", null],
        [`public_key=${h}\nlisten_port=5\nprivate_key=zz\nerrno=0\n\n`, null],
        [`public_key=${h.slice(1)}\nerrno=0\n\n`, null],
        [`public_key=${h}\nendpoint=1.2.3.4\nerrno=0\n\n`, null],
        [`public_key=${h}\nendpoint=[::1%lo]:1\nerrno=0\n\n`, null],
        [`public_key=${h}\nallowed_ip=1.2.3.4\nerrno=0\n\n`, null],
        [`public_key=${h}\nallowed_ip=1.2.3.4/33\nerrno=0\n\n`, null],
        [`public_key=${h}\nallowed_ip=::/129\nerrno=0\n\n`, null],
        [`public_key=${h}\nallowed_ip=::/384\nerrno=0\n\n`, null],
        [`public_key=${h}\nrx_bytes=99999999999999999999999\nerrno=0\n\n`, null],
        [`public_key=${h}\nlast_handshake_time_sec=9223372036854775808\nerrno=0\n\n`, null],
        [`errno=0\npublic_key=${h}\nerrno=0\n\n`, null],
        [`${"x".repeat(70000)}=1\nerrno=0\n\n`, null],
        ["", null],
        ["\n", null],
        ["errno=0\n\n", "errno=-22\n\n"],
        ["errno=0\n\n", "errno=22\n\n"],
        ["errno=0\n\n", "errno=-98\n\n"],
        ["errno=0\n\n", "errno=0\n"],
        ["errno=0\n\n", "\n"],
        ["errno=0\n\n", "errno=x\n\n"],
        ["errno=0\n\n", "errno=99999999999\n\n"],
        ["errno=0\n\n", "other=1\nerrno=-71\n\n"],
        ["errno=0\n\n", ""],
      ];
      for (const [get, set] of replies) {
        const daemon = new FakeDaemon(sb.socketDir, "gtwg0", (req) => {
          if (req.startsWith("get=1")) return get === "" ? null : get;
          return set === "" ? null : set;
        });
        try {
          const label = JSON.stringify([get.slice(0, 80), set]);
          for (
            const args of [["show", "gtwg0"], ["showconf", "gtwg0"], ["show", "gtwg0", "dump"]]
          ) {
            await same(sb, args).catch((e) => {
              throw new Error(`${label}: ${e.message}`);
            });
          }
          await same(sb, ["show"]);
          if (set !== null) await same(sb, ["set", "gtwg0", "listen-port", "1"]);
        } finally {
          await daemon.close();
        }
      }
    });
  },
});

Deno.test({
  name: "wgMain() lists interfaces like wg: sockets only, stale ones unlinked",
  ignore,
  async fn() {
    await withSandbox(async (sb) => {
      const daemons = ["gtwg0", "gtwg1"].map((i) =>
        new FakeDaemon(sb.socketDir, i, staticDaemon("listen_port=7\n"))
      );
      try {
        await Deno.writeTextFile(`${sb.socketDir}/gtwg7.sock`, "");
        await Deno.writeTextFile(`${sb.socketDir}/.sock`, "");
        await Deno.writeTextFile(`${sb.socketDir}/gtwg6`, "");
        const stale = async () => {
          // A socket nobody listens on any more: connect() is refused.
          const l = Deno.listen({ transport: "unix", path: `${sb.socketDir}/gtwg5.sock` });
          const fd = `${sb.socketDir}/gtwg5.sock`;
          const copy = `${fd}.keep`;
          await Deno.link(fd, copy);
          l.close();
          await Deno.rename(copy, fd);
        };
        for (const who of ["stock", "ours"] as const) {
          await stale();
          const r = who === "stock"
            ? await sb.stock(["show", "interfaces"])
            : await sb.ours(["show", "interfaces"]);
          assert.equal(r.code, 0);
          assert.deepEqual(r.stdout.trim().split(" ").sort(), ["gtwg0", "gtwg1"], who);
          await assert.rejects(Deno.stat(`${sb.socketDir}/gtwg5.sock`), Deno.errors.NotFound);
        }
        await same(sb, ["show", "interfaces"]);
        await same(sb, ["show", "gtwg7"]);
        await same(sb, ["show", "gtwg0/x"]);
        await same(sb, ["show", "nonexistent"]);
        await same(sb, ["showconf", "nonexistent"]);
        await same(sb, ["set", "nonexistent", "listen-port", "1"]);
        await same(sb, ["show", "x".repeat(15)]);
        // Names of 16+ bytes: "File name too long" since wireguard-tools 13f4ac4.
        assert.deepEqual(await sb.ours(["show", "x".repeat(16)]), {
          code: 1,
          stdout: "",
          stderr: "Unable to access interface: File name too long\n",
        });
        // Interleaving of stdout and stderr in one pipe, as a process.
        await Deno.writeTextFile(`${sb.socketDir}/gtwg4.sock`, "");
        const broken = new FakeDaemon(sb.socketDir, "gtwg2", () => "errno=5\n\n");
        try {
          const script = (wg: string) => `${wg} show all 2>&1; ${wg} show all dump 2>&1`;
          const want = await sb.stock(["--version"]).then(() =>
            run("nsenter", [
              "-t",
              String(sb.holderPid),
              "-m",
              "--",
              "sh",
              "-c",
              script("wg"),
            ], { timeoutMs: 20_000 })
          );
          const ourCmd = `${Deno.execPath()} run -A --no-check ${
            new URL("../../../cli/wg/main.ts", import.meta.url).pathname
          }`;
          const got = await run("nsenter", [
            "-t",
            String(sb.holderPid),
            "-m",
            "--",
            "sh",
            "-c",
            script(ourCmd),
          ], { timeoutMs: 30_000 });
          assert.equal(got.stdout, want.stdout);
          assert.equal(got.code, want.code);
        } finally {
          await broken.close();
        }
      } finally {
        await Promise.all(daemons.map((d) => d.close()));
      }
    });
  },
});

/** Runs `args` with stock wg and ours against one recording daemon; requests and output must match. */
async function sameRequests(
  sb: WgSandbox,
  daemon: FakeDaemon,
  args: string[],
  opts: WgRunOptions = {},
): Promise<string[]> {
  daemon.take();
  const want = await sb.stock(args, opts);
  const wantReq = daemon.take();
  const got = await sb.ours(args, opts);
  const gotReq = daemon.take();
  const label = `wg ${args.join(" ")}`;
  assert.deepEqual(got, want, label);
  assert.deepEqual(gotReq, wantReq, label);
  return wantReq;
}

Deno.test({
  name: "wgMain() set sends the bytes wg sends and fails the way wg fails",
  ignore,
  async fn() {
    await withSandbox(async (sb) => {
      const daemon = new FakeDaemon(sb.socketDir, "gtwg0", staticDaemon("listen_port=9\n"));
      const dir = await Deno.makeTempDir({ prefix: "gtwg-" });
      try {
        const file = async (name: string, text: string) => {
          await Deno.writeTextFile(`${dir}/${name}`, text);
          return `${dir}/${name}`;
        };
        const priv = await file("priv", `${b64(PRIV)}\n`);
        const psk = await file("psk", b64(PSK));
        const empty = await file("empty", "");
        const shortKey = await file("short", "abc");
        const trailing = await file("trailing", `${b64(PRIV)}\n x`);
        const nul = await file("nul", `${b64(PRIV)}\0`);
        const badKey = await file("badkey", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=");
        const nulInside = await file(
          "nulinside",
          `${b64(PRIV).slice(0, 20)}\0${b64(PRIV).slice(21)}`,
        );
        const k = PEER_KEYS.map(b64);
        const S = "gtwg0";
        const cases: string[][] = [
          ["set", S, "listen-port", "51820"],
          ["set", S, "listen-port", "0"],
          ["set", S, "listen-port", "70000"],
          ["set", S, "listen-port", "domain"],
          ["set", S, "listen-port", " 80"],
          ["set", S, "listen-port", "+81"],
          ["set", S, "listen-port", "-0"],
          ["set", S, "listen-port", "-1"],
          ["set", S, "listen-port", "abc"],
          ["set", S, "listen-port", ""],
          ["set", S, "listen-port", "0x10"],
          ["set", S, "listen-port"],
          ["set", S, "fwmark", "0x1234"],
          ["set", S, "fwmark", "4660"],
          ["set", S, "fwmark", "off"],
          ["set", S, "fwmark", "OFF"],
          ["set", S, "fwmark", "0"],
          ["set", S, "fwmark", "0xffffffff"],
          ["set", S, "fwmark", "0x100000000"],
          ["set", S, "fwmark", "4294967296"],
          ["set", S, "fwmark", "0X10"],
          ["set", S, "fwmark", "0x"],
          ["set", S, "fwmark", "-1"],
          ["set", S, "fwmark", " 1"],
          ["set", S, "private-key", priv],
          ["set", S, "private-key", "/dev/null"],
          ["set", S, "private-key", empty],
          ["set", S, "private-key", shortKey],
          ["set", S, "private-key", trailing],
          ["set", S, "private-key", nul],
          ["set", S, "private-key", badKey],
          ["set", S, "private-key", nulInside],
          ["set", S, "private-key", dir],
          ["set", S, "private-key", `${dir}/missing`],
          ["set", S, "listen-port", "1", "fwmark", "2", "private-key", priv, "peer", k[0]],
          ["set", S, "peer", k[0]],
          ["set", S, "peer", k[0], "remove"],
          ["set", S, "peer", k[0], "remove", "endpoint", "1.2.3.4:5"],
          ["set", S, "remove"],
          ["set", S, "peer", "abc"],
          ["set", S, "peer", k[0], "listen-port", "1"],
          ["set", S, "peer", k[0], "bogus"],
          ["set", S, "peer", k[0], "preshared-key", psk],
          ["set", S, "peer", k[0], "preshared-key", "/dev/null"],
          [
            "set",
            S,
            "peer",
            k[0],
            "preshared-key",
            psk,
            "endpoint",
            "[2001:db8::1]:51820",
            "persistent-keepalive",
            "25",
            "allowed-ips",
            "10.0.0.0/8, fd00::/64 ,1.2.3.4",
          ],
          ["set", S, "peer", k[0], "endpoint", "127.1:5"],
          ["set", S, "peer", k[0], "endpoint", "0x7f.1:6"],
          ["set", S, "peer", k[0], "endpoint", "010.0.0.1:7"],
          ["set", S, "peer", k[0], "endpoint", "1.2.3.4:domain"],
          ["set", S, "peer", k[0], "endpoint", "::1:14"],
          ["set", S, "peer", k[0], "endpoint", "[fe80::1%lo]:9"],
          ["set", S, "peer", k[0], "endpoint", "[fe80::1%1]:10"],
          ["set", S, "peer", k[0], "endpoint", "[fe80::1%99]:11"],
          ["set", S, "peer", k[0], "endpoint", "[::1%lo]:18"],
          ["set", S, "peer", k[0], "endpoint", "[::1%3]:18"],
          ["set", S, "peer", k[0], "endpoint", "1.2.3.4:4294967296"],
          ["set", S, "peer", k[0], "endpoint", "1.2.3.4:99999999999999999999"],
          ["set", S, "peer", k[0], "endpoint", "1.2.3.4"],
          ["set", S, "peer", k[0], "endpoint", "1.2.3.4:"],
          ["set", S, "peer", k[0], "endpoint", "[::1]"],
          ["set", S, "peer", k[0], "endpoint", "[::1]:"],
          ["set", S, "peer", k[0], "endpoint", "[::1"],
          ["set", S, "peer", k[0], "endpoint", "[::1]x1"],
          ["set", S, "peer", k[0], "endpoint", ""],
          ["set", S, "peer", k[0], "endpoint", " 1.2.3.4:2"],
          ["set", S, "peer", k[0], "endpoint", "[1.2.3.4]:3"],
          ["set", S, "peer", k[0], "persistent-keepalive", "off"],
          ["set", S, "peer", k[0], "persistent-keepalive", "Off"],
          ["set", S, "peer", k[0], "persistent-keepalive", "0"],
          ["set", S, "peer", k[0], "persistent-keepalive", "65535"],
          ["set", S, "peer", k[0], "persistent-keepalive", "65536"],
          ["set", S, "peer", k[0], "persistent-keepalive", "-1"],
          ["set", S, "peer", k[0], "persistent-keepalive", "1x"],
          ["set", S, "peer", k[0], "allowed-ips", ""],
          ["set", S, "peer", k[0], "allowed-ips", " "],
          ["set", S, "peer", k[0], "allowed-ips", "1.2.3.4/24"],
          ["set", S, "peer", k[0], "allowed-ips", "1.2.3.4/0"],
          ["set", S, "peer", k[0], "allowed-ips", "fd00::1/64,::/0,::ffff:1.2.3.4/96"],
          ["set", S, "peer", k[0], "allowed-ips", "1.2.3.4/33"],
          ["set", S, "peer", k[0], "allowed-ips", "::/129"],
          ["set", S, "peer", k[0], "allowed-ips", "1.2.3.4/24,"],
          ["set", S, "peer", k[0], "allowed-ips", ",1.2.3.4"],
          ["set", S, "peer", k[0], "allowed-ips", "1.2.3.256"],
          ["set", S, "peer", k[0], "allowed-ips", "01.2.3.4"],
          ["set", S, "peer", k[0], "allowed-ips", "1.2.3.4/0x1"],
          ["set", S, "peer", k[0], "allowed-ips", "1.2.3.4/"],
          ["set", S, "peer", k[0], "allowed-ips", "1.2.3.4/ 8"],
          ["set", S, "peer", k[0], "allowed-ips", "1.2.3.4/8/8"],
          ["set", S, "peer", k[0], "allowed-ips", "10.0.0.0/8", "allowed-ips", "10.1.0.0/16"],
          ["set", S, "peer", k[0], "peer", k[1], "remove", "peer", k[2], "allowed-ips", "::1"],
          ["set", "x".repeat(20), "listen-port", "1"],
        ];
        // No retries: a bad service name (EAI_SERVICE) counts as temporary.
        const noRetry = { env: { WG_ENDPOINT_RESOLUTION_RETRIES: "0" } };
        for (const args of cases) await sameRequests(sb, daemon, args, noRetry);
        await sameRequests(sb, daemon, ["set", S, "peer", k[0], "endpoint", "1.2.3.4:nope"], {
          env: { WG_ENDPOINT_RESOLUTION_RETRIES: "1" },
        });
        // Incremental allowed IPs (wireguard-tools ≥ 1.0.20250521): ours sends them, as the newer wg does.
        daemon.take();
        const inc = await sb.ours([
          "set",
          S,
          "peer",
          k[0],
          "allowed-ips",
          "+10.0.0.0/8,-fd00::/64,10.2.0.0/16",
        ]);
        assert.deepEqual(inc, { code: 0, stdout: "", stderr: "" });
        assert.deepEqual(daemon.take(), [
          `set=1\npublic_key=${keyToHex(PEER_KEYS[0])}\nallowed_ip=10.0.0.0/8\n` +
          "allowed_ip=-fd00::/64\nallowed_ip=10.2.0.0/16\n\n",
        ]);
        // The daemon's errno comes back as wg prints it.
        daemon.script = staticDaemon("", -22);
        await sameRequests(sb, daemon, ["set", S, "listen-port", "1"]);
        daemon.script = staticDaemon("", 98);
        await sameRequests(sb, daemon, ["set", S, "listen-port", "1"]);
        // Endpoint resolution retries.
        for (const v of ["x", "-1", "2147483648", " 5", ""]) {
          await sameRequests(sb, daemon, ["set", S, "peer", k[0], "endpoint", "1.2.3.4:1"], {
            env: { WG_ENDPOINT_RESOLUTION_RETRIES: v },
          });
        }
      } finally {
        await daemon.close();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
});

Deno.test({
  name: "wgMain() retries temporary resolution failures like wg (as a process in the netns)",
  ignore,
  async fn() {
    await withSandbox(async (sb) => {
      const daemon = new FakeDaemon(sb.socketDir, "gtwg0", staticDaemon(""));
      try {
        // No network in the namespace: DNS fails temporarily (EAI_AGAIN).
        const args = ["set", "gtwg0", "peer", b64(PEER_KEYS[0]), "endpoint", "gtwg.invalid:1"];
        for (const retries of ["0", "1"]) {
          const opts = { env: { WG_ENDPOINT_RESOLUTION_RETRIES: retries } };
          const want = await sb.stock(args, opts);
          const got = await sb.oursProcess(args, opts);
          assert.deepEqual(got, want);
        }
        // A permanent failure is not retried.
        const perm = ["set", "gtwg0", "peer", b64(PEER_KEYS[0]), "endpoint", "[::1%lo]:1"];
        assert.deepEqual(await sb.oursProcess(perm), await sb.stock(perm));
      } finally {
        await daemon.close();
      }
    });
  },
});

const CONFIGS: Record<string, string> = {
  full: `[Interface]
# a comment
PrivateKey = ${b64(PRIV)}
ListenPort = 51820
FwMark = 0x1234

[Peer]
PublicKey = ${b64(PEER_KEYS[0])}
PresharedKey = ${b64(PSK)}
AllowedIPs = 10.0.0.0/8, fd00::/64   # trailing comment
AllowedIPs = 1.2.3.4
Endpoint = [2001:db8::1]:51820
PersistentKeepalive = 25

[Peer]
PublicKey = ${b64(PEER_KEYS[1])}
Endpoint = 127.1:1
`,
  spacing: `  [interface]\r
  private key=${b64(PRIV)}\r
\tLISTENPORT\t=\t51820
[PEER]
public KEY = ${b64(PEER_KEYS[2])}
allowedips=0.0.0.0/0,::/0
persistentkeepalive = off`,
  minimal: "[Interface]\n",
  empty: "",
  peersOnly: `[Peer]\nPublicKey = ${b64(PEER_KEYS[0])}\n[Peer]\nPublicKey = ${b64(PEER_KEYS[3])}\n`,
  noSection: "PrivateKey = abc\n",
  unknownKey: "[Interface]\nAddress = 10.0.0.1/24\n",
  emptyValue: "[Interface]\nListenPort =\n",
  badPort: "[Interface]\nListenPort = nope\n",
  badMark: "[Interface]\nFwMark = 0X1\n",
  badKey: "[Interface]\nPrivateKey = abc\n",
  peerKeyInInterface: `[Interface]\nPublicKey = ${b64(PEER_KEYS[0])}\n`,
  missingPublicKey: "[Peer]\nAllowedIPs = 10.0.0.0/8\n",
  badAllowed: `[Peer]\nPublicKey = ${b64(PEER_KEYS[0])}\nAllowedIPs = 10.0.0.0/33\n`,
  hostBits: `[Peer]\nPublicKey = ${b64(PEER_KEYS[0])}\nAllowedIPs = 10.0.0.1/8\n`,
  badEndpoint: `[Peer]\nPublicKey = ${b64(PEER_KEYS[0])}\nEndpoint = 1.2.3.4\n`,
  badKeepalive: `[Peer]\nPublicKey = ${b64(PEER_KEYS[0])}\nPersistentKeepalive = 70000\n`,
  nul: `[Interface]\nListenPort = 5\0garbage\n`,
  utf8: "[Interface]\nListenPört = 5\n",
  dupPeers: `[Peer]\nPublicKey = ${b64(PEER_KEYS[0])}\n[Peer]\nPublicKey = ${b64(PEER_KEYS[0])}\n` +
    "AllowedIPs = 10.0.0.0/8\n",
  keepaliveOnly: `[Peer]\nPublicKey = ${b64(PEER_KEYS[0])}\nPersistentKeepalive = 5\n`,
};

Deno.test({
  name: "wgMain() setconf, addconf and syncconf send the bytes wg sends",
  ignore,
  async fn() {
    await withSandbox(async (sb) => {
      const runtimeGet = [
        `private_key=${keyToHex(PRIV)}`,
        "listen_port=51820",
        `public_key=${keyToHex(PEER_KEYS[4])}`,
        `preshared_key=${keyToHex(PSK)}`,
        "persistent_keepalive_interval=0",
        `public_key=${keyToHex(PEER_KEYS[0])}`,
        `preshared_key=${"0".repeat(64)}`,
        "persistent_keepalive_interval=0",
        `public_key=${keyToHex(PEER_KEYS[3])}`,
        "",
      ].join("\n");
      const daemon = new FakeDaemon(sb.socketDir, "gtwg0", staticDaemon(runtimeGet));
      const empty = new FakeDaemon(sb.socketDir, "gtwg1", staticDaemon(""));
      const dir = await Deno.makeTempDir({ prefix: "gtwg-" });
      try {
        for (const [name, text] of Object.entries(CONFIGS)) {
          const path = `${dir}/${name}.conf`;
          await Deno.writeTextFile(path, text);
          for (const cmd of ["setconf", "addconf", "syncconf"]) {
            await sameRequests(sb, daemon, [cmd, "gtwg0", path]);
            await sameRequests(sb, empty, [cmd, "gtwg1", path]);
          }
        }
        for (const cmd of ["setconf", "addconf", "syncconf"]) {
          await sameRequests(sb, daemon, [cmd, "gtwg0", `${dir}/missing.conf`]);
          await sameRequests(sb, daemon, [cmd, "gtwg0", dir]);
          await sameRequests(sb, daemon, [cmd, "gtwg0", "/dev/null"]);
          await sameRequests(sb, daemon, [cmd, "nonexistent", `${dir}/full.conf`]);
        }
        // syncconf when the running config cannot be read.
        daemon.script = (req) => req.startsWith("get") ? "errno=5\n\n" : "errno=0\n\n";
        await sameRequests(sb, daemon, ["syncconf", "gtwg0", `${dir}/full.conf`]);
        // A running peer with a PSK / keepalive the file drops: the newer wg clears them.
        daemon.script = staticDaemon(
          `public_key=${keyToHex(PEER_KEYS[0])}\npreshared_key=${keyToHex(PSK)}\n` +
            "persistent_keepalive_interval=25\n",
        );
        daemon.take();
        const r = await sb.ours(["syncconf", "gtwg0", `${dir}/peersOnly.conf`]);
        assert.deepEqual(r, { code: 0, stdout: "", stderr: "" });
        assert.deepEqual(daemon.take(), [
          "get=1\n\n",
          `set=1\nprivate_key=${"0".repeat(64)}\nlisten_port=0\nfwmark=0\n` +
          `public_key=${keyToHex(PEER_KEYS[0])}\npreshared_key=${"0".repeat(64)}\n` +
          `persistent_keepalive_interval=0\nreplace_allowed_ips=true\n` +
          `public_key=${keyToHex(PEER_KEYS[3])}\nreplace_allowed_ips=true\n\n`,
        ]);
      } finally {
        await Promise.all([daemon.close(), empty.close()]);
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
});

/** showconf with the peer sections sorted (wireguard-go answers in random map order). */
function normalizedConf(text: string): string {
  const [iface, ...peers] = text.split("\n[Peer]\n");
  return [iface, ...peers.map((p) => p.replace(/\n+$/, "")).sort()].join("\n[Peer]\n");
}

Deno.test({
  name: "wgMain() changes wireguard-go exactly as wg does",
  ignore,
  async fn() {
    await withSandbox(async (sb) => {
      const other = await Netns.create("gtwg");
      const dir = await Deno.makeTempDir({ prefix: "gtwg-" });
      try {
        await sb.wireguardGo("gtwg1");
        await sb.wireguardGo("gtwg2", other);
        for (const [name, text] of Object.entries(CONFIGS)) {
          await Deno.writeTextFile(`${dir}/${name}.conf`, text);
        }
        const priv = `${dir}/priv`;
        await Deno.writeTextFile(priv, b64(fixedKey(20)));
        const k = PEER_KEYS.map(b64);
        const steps: ((iface: string) => string[])[] = [
          (i) => ["setconf", i, `${dir}/full.conf`],
          (
            i,
          ) => ["set", i, "peer", k[2], "allowed-ips", "10.9.0.0/16", "persistent-keepalive", "7"],
          (i) => ["addconf", i, `${dir}/peersOnly.conf`],
          (i) => ["set", i, "peer", k[0], "remove", "listen-port", "1"],
          (i) => ["set", i, "listen-port", "51821", "fwmark", "off", "private-key", priv],
          (i) => ["syncconf", i, `${dir}/spacing.conf`],
          (i) => ["addconf", i, `${dir}/keepaliveOnly.conf`],
          (i) => ["syncconf", i, `${dir}/full.conf`],
          (i) => ["set", i, "peer", k[1], "endpoint", "[fe80::1%lo]:9", "allowed-ips", ""],
          (i) => ["set", i, "private-key", "/dev/null"],
          (i) => ["setconf", i, `${dir}/minimal.conf`],
        ];
        for (const step of steps) {
          const want = await sb.stock(step("gtwg1"));
          const got = await sb.ours(step("gtwg2"));
          assert.deepEqual(got, {
            ...want,
            stderr: want.stderr.replaceAll("gtwg1", "gtwg2"),
          }, step("gtwgN").join(" "));
          const a = await sb.stock(["showconf", "gtwg1"]);
          const b = await sb.stock(["showconf", "gtwg2"]);
          assert.equal(
            normalizedConf(b.stdout).replace(/ListenPort = \d+\n/, ""),
            normalizedConf(a.stdout).replace(/ListenPort = \d+\n/, ""),
            step("gtwgN").join(" "),
          );
          // Ours reads the live daemon the same way stock wg does (one peer at most, so the
          // random peer order cannot differ between the two reads).
          const peers = (await sb.stock(["show", "gtwg1", "peers"])).stdout.split("\n").length - 1;
          if (peers <= 1) {
            await same(sb, ["showconf", "gtwg1"]);
            await same(sb, ["show", "gtwg1", "dump"]);
          }
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
        await other.delete();
      }
    });
  },
});

Deno.test({
  name: "wgMain() shows a real handshake and transfer like wg",
  ignore,
  async fn() {
    await withSandbox(async (sb) => {
      const nsB = await Netns.create("gtwg");
      try {
        await vethPair(sb.netns, nsB, {
          nameA: "gtwg8",
          nameB: "gtwg9",
          addrA: "192.0.2.1/24",
          addrB: "192.0.2.2/24",
        });
        await sb.wireguardGo("gtwg1");
        await sb.wireguardGo("gtwg2", nsB);
        const dir = await Deno.makeTempDir({ prefix: "gtwg-" });
        try {
          const [pa, pb] = [fixedKey(30), fixedKey(31)];
          await Deno.writeTextFile(
            `${dir}/a.conf`,
            `[Interface]\nPrivateKey = ${b64(pa)}\nListenPort = 51820\n[Peer]\nPublicKey = ${
              b64(publicKey(pb))
            }\nAllowedIPs = 10.77.0.2/32\nEndpoint = 192.0.2.2:51820\n`,
          );
          await Deno.writeTextFile(
            `${dir}/b.conf`,
            `[Interface]\nPrivateKey = ${b64(pb)}\nListenPort = 51820\n[Peer]\nPublicKey = ${
              b64(publicKey(pa))
            }\nAllowedIPs = 10.77.0.1/32\n`,
          );
          assert.equal((await sb.ours(["setconf", "gtwg1", `${dir}/a.conf`])).code, 0);
          assert.equal((await sb.ours(["setconf", "gtwg2", `${dir}/b.conf`])).code, 0);
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
        await sb.netns.execOk("ip", "addr", "add", "10.77.0.1/24", "dev", "gtwg1");
        await sb.netns.execOk("ip", "link", "set", "gtwg1", "up");
        await nsB.execOk("ip", "addr", "add", "10.77.0.2/24", "dev", "gtwg2");
        await nsB.execOk("ip", "link", "set", "gtwg2", "up");
        const pinged = await waitFor(
          async () => {
            const r = await sb.netns.exec("ping", "-c", "1", "-W", "1", "10.77.0.2");
            return r.code === 0;
          },
          15_000,
          200,
        );
        assert.ok(pinged, "no handshake over the tunnel");
        await sleep(1100);
        for (const iface of ["gtwg1", "gtwg2"]) {
          await sameStable(sb, ["show", iface]);
          await sameStable(sb, ["show", iface], { env: { WG_COLOR_MODE: "always" } });
          await same(sb, ["show", iface, "dump"]);
          await same(sb, ["show", iface, "latest-handshakes"]);
          await same(sb, ["show", iface, "transfer"]);
          await same(sb, ["show", iface, "endpoints"]);
          await same(sb, ["showconf", iface]);
        }
        await sameStable(sb, ["show"]);
        assert.match(
          (await sb.ours(["show", "gtwg1"])).stdout,
          /latest handshake: \d+ seconds? ago/,
        );
        assert.match(
          (await sb.ours(["show", "gtwg1"])).stdout,
          /transfer: \d+ B received, \d+ B sent/,
        );
      } finally {
        await nsB.delete();
      }
    });
  },
});

Deno.test({
  name: "wgMain() as `deno run cli/wg/main.ts` matches wg",
  ignore,
  async fn() {
    await withSandbox(async (sb) => {
      const d = new FakeDaemon(
        sb.socketDir,
        "gtwg0",
        staticDaemon(richBody(Math.floor(Date.now() / 1000))),
      );
      try {
        for (
          const args of [["show", "gtwg0", "dump"], ["showconf", "gtwg0"], ["bogus"], [
            "show",
            "interfaces",
          ]]
        ) {
          assert.deepEqual(await sb.oursProcess(args), await sb.stock(args));
        }
        const key = b64(PRIV);
        assert.deepEqual(
          await sb.oursProcess(["pubkey"], { stdin: key }),
          await sb.stock(["pubkey"], { stdin: key }),
        );
      } finally {
        await d.close();
      }
    });
  },
});

Deno.test({
  name: "wgMain() colours and line-buffers on a terminal like wg (script(1) pty)",
  ignore: ignoreUnless(LABEL, { ...ROOT_NEEDS, tools: [...ROOT_NEEDS.tools!, "script"] }),
  async fn() {
    await withSandbox(async (sb) => {
      const now = Math.floor(Date.now() / 1000);
      const d = new FakeDaemon(sb.socketDir, "gtwg0", staticDaemon(richBody(now)));
      const ourCmd = `${Deno.execPath()} run -A --no-check ${
        new URL("../../../cli/wg/main.ts", import.meta.url).pathname
      }`;
      const inPty = (cmd: string) =>
        run("nsenter", [
          "-t",
          String(sb.holderPid),
          "-m",
          "--",
          "script",
          "-qec",
          cmd,
          "/dev/null",
        ], { timeoutMs: 30_000 });
      try {
        for (const args of ["show gtwg0 dump", "show all", "show gtwg0 bogus", "showconf gtwg0"]) {
          for (let attempt = 0; attempt < 5; attempt++) {
            const before = await inPty(`wg ${args}`);
            const got = await inPty(`${ourCmd} ${args}`);
            const after = await inPty(`wg ${args}`);
            if (before.stdout !== after.stdout) continue;
            assert.equal(got.stdout, before.stdout, args);
            assert.equal(got.code, before.code, args);
            break;
          }
        }
      } finally {
        await d.close();
      }
    });
  },
});

Deno.test({
  name: "wgMain() reads key and config files from pipes like wg (bash process substitution)",
  ignore: ignoreUnless(LABEL, { ...ROOT_NEEDS, tools: [...ROOT_NEEDS.tools!, "bash"] }),
  async fn() {
    await withSandbox(async (sb) => {
      const d = new FakeDaemon(sb.socketDir, "gtwg0", staticDaemon(""));
      const ourCmd = `${Deno.execPath()} run -A --no-check ${
        new URL("../../../cli/wg/main.ts", import.meta.url).pathname
      }`;
      const script = (wg: string) =>
        [
          `${wg} set gtwg0 private-key <(printf '')`,
          `${wg} set gtwg0 private-key <(printf '${b64(PRIV)}\\n')`,
          `${wg} set gtwg0 private-key <(printf 'short')`,
          `${wg} setconf gtwg0 <(printf '[Interface]\\nListenPort = 5\\n')`,
          `${wg} addconf gtwg0 <(printf '[Peer]\\nPublicKey = x\\n')`,
          `printf '${b64(PRIV)}' | ${wg} set gtwg0 private-key /dev/stdin`,
        ].map((c) => `${c}; echo "rc=$?"`).join("; ");
      const inNs = (cmd: string) =>
        run("nsenter", ["-t", String(sb.holderPid), "-m", "--", "bash", "-c", cmd], {
          timeoutMs: 60_000,
        });
      try {
        d.take();
        const want = await inNs(script("wg"));
        const wantReq = d.take();
        const got = await inNs(script(ourCmd));
        const gotReq = d.take();
        assert.equal(got.stdout, want.stdout);
        assert.equal(got.stderr, want.stderr);
        assert.deepEqual(gotReq, wantReq);
      } finally {
        await d.close();
      }
    });
  },
});
