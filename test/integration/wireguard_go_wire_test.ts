// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The wire format proven against the real wireguard-go, before any TUN of
 * ours exists: wireguard-go runs in a network namespace of this test; our
 * protocol core (Device + MemoryTun + a plain UDP socket, see _wire_peer.ts)
 * runs in the same namespace and pings through it (we initiate), or answers
 * the kernel's pings that wireguard-go encrypts (it initiates), over IPv4 and
 * IPv6 inside and outside the tunnel, with and without a preshared key.
 */
import assert, { equal as assertEquals } from "node:assert/strict";
import { Netns, run, waitFor } from "../_util/netns.ts";
import { ignoreUnless } from "../_util/needs.ts";
import type { Background } from "../_util/proc.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { systemRng } from "../../src/clock.ts";
import { keyToHex } from "../../src/keys.ts";
import { keyToBase64 } from "../../src/keys.ts";

const ignore = ignoreUnless("test/integration/wireguard_go_wire_test.ts", {
  root: true,
  tools: ["wireguard-go", "wg", "ping", "ip"],
});

interface Case {
  mode: "initiator" | "responder";
  inner: 4 | 6;
  outer: 4 | 6;
  psk: boolean;
}

const cases: Case[] = [
  { mode: "initiator", inner: 4, outer: 4, psk: false },
  { mode: "responder", inner: 4, outer: 4, psk: false },
  { mode: "initiator", inner: 6, outer: 6, psk: true },
  { mode: "responder", inner: 6, outer: 6, psk: true },
  { mode: "initiator", inner: 4, outer: 6, psk: true },
  { mode: "responder", inner: 6, outer: 4, psk: false },
];

async function writeKey(dir: string, name: string, key: Uint8Array): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, keyToBase64(key) + "\n", { mode: 0o600 });
  return path;
}

for (const c of cases) {
  Deno.test({
    name: `wire format vs wireguard-go: we are ${c.mode}, inner IPv${c.inner}, outer IPv${c.outer}${
      c.psk ? ", psk" : ""
    }`,
    ignore,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const ns = await Netns.create("gtwire");
      const ifname = `gtw${Math.floor(Math.random() * 1e6)}`;
      const dir = await Deno.makeTempDir({ prefix: "gtwire" });
      let wg: Background | null = null;
      try {
        const ours = generatePrivateKey(systemRng);
        const theirs = generatePrivateKey(systemRng);
        const psk = generatePrivateKey(systemRng);
        const theirsFile = await writeKey(dir, "theirs", theirs);
        const pskFile = await writeKey(dir, "psk", psk);
        wg = ns.spawn(
          { env: { LOG_LEVEL: "silent" } },
          "wireguard-go",
          "-f",
          ifname,
        );
        const sock = `/var/run/wireguard/${ifname}.sock`;
        assert(
          await waitFor(async () => (await Deno.lstat(sock).catch(() => null)) !== null, 10_000),
          "wireguard-go did not create its socket",
        );
        const ourTun = c.inner === 4 ? "10.9.0.2" : "fd09::2";
        const theirTun = c.inner === 4 ? "10.9.0.1" : "fd09::1";
        const loop = c.outer === 4 ? "127.0.0.1" : "::1";
        const setArgs = [
          "set",
          ifname,
          "private-key",
          theirsFile,
          "listen-port",
          "51820",
          "peer",
          keyToBase64(publicKey(ours)),
          "allowed-ips",
          c.inner === 4 ? `${ourTun}/32` : `${ourTun}/128`,
        ];
        if (c.psk) setArgs.push("preshared-key", pskFile);
        if (c.mode === "responder") {
          setArgs.push("endpoint", c.outer === 4 ? `${loop}:51821` : `[${loop}]:51821`);
        }
        const set = await ns.exec("wg", ...setArgs);
        assertEquals(set.code, 0, set.stderr);
        await ns.execOk(
          "ip",
          "addr",
          "add",
          c.inner === 4 ? `${theirTun}/24` : `${theirTun}/64`,
          "dev",
          ifname,
        );
        await ns.execOk("ip", "link", "set", ifname, "up");
        const config = {
          privateKey: keyToHex(ours),
          peerPublicKey: keyToHex(publicKey(theirs)),
          presharedKey: c.psk ? keyToHex(psk) : undefined,
          listenPort: 51821,
          peerEndpoint: c.mode === "initiator"
            ? (c.outer === 4 ? `${loop}:51820` : `[${loop}]:51820`)
            : undefined,
          ours: ourTun,
          theirs: theirTun,
          mode: c.mode,
          count: 3,
          timeoutMs: 15_000,
        };
        const script = new URL("./_wire_peer.ts", import.meta.url).pathname;
        const peerRun = ns.execWith(
          { env: { GOTATUN_WIRE_CONFIG: JSON.stringify(config) }, timeoutMs: 30_000 },
          Deno.execPath(),
          "run",
          "-A",
          "--no-prompt",
          "--unstable-net",
          script,
        );
        let pinger: Promise<unknown> = Promise.resolve();
        if (c.mode === "responder") {
          // Give our side a moment to bind, then let the kernel ping through wireguard-go.
          await new Promise((r) => setTimeout(r, 1500));
          pinger = ns.execWith(
            { timeoutMs: 20_000 },
            "ping",
            "-c",
            "3",
            "-i",
            "0.5",
            "-W",
            "2",
            ourTun,
          );
        }
        const [result] = await Promise.all([peerRun, pinger]);
        assertEquals(result.code, 0, result.stderr);
        const summary = JSON.parse(result.stdout.trim().split("\n").pop()!);
        assert(summary.handshake, `no handshake: ${result.stdout}`);
        if (c.mode === "initiator") assert(summary.replies >= 3, `replies: ${result.stdout}`);
        else assert(summary.requestsAnswered >= 3, `answered: ${result.stdout}`);
        // wireguard-go's counters agree with ours (it has seen every byte we sent and vice versa,
        // up to a keepalive in flight).
        const dump = await ns.exec("wg", "show", ifname, "transfer");
        const [, rx, tx] = dump.stdout.trim().split("\t");
        assert(Number(rx) > 0 && Number(tx) > 0, dump.stdout);
        assert(
          Math.abs(Number(rx) - summary.txBytes) <= 64,
          `their rx ${rx} vs our tx ${summary.txBytes}`,
        );
        assert(
          Math.abs(Number(tx) - summary.rxBytes) <= 64,
          `their tx ${tx} vs our rx ${summary.rxBytes}`,
        );
        assertEquals(summary.stats.decryptFailed, 0);
        assertEquals(summary.stats.handshakeRejected, 0);
      } finally {
        await wg?.kill();
        await ns.delete();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
        await run("rm", ["-f", `/var/run/wireguard/${ifname}.sock`]);
      }
    },
  });
}
