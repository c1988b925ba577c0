// SPDX-License-Identifier: Apache-2.0
/**
 * `gotatun proxy` end to end: the SOCKS5 proxy (an in-process Tunnel on Deno UDP sockets, no TUN)
 * run as the unprivileged user `nobody` in one namespace, against a real WireGuard peer with a
 * TUN device in another, and kernel TCP servers behind that peer:
 *
 * ```
 *   gte2e-<id>-a                                         gte2e-<id>-b
 *   runuser -u nobody -- PROGRAM proxy                   PEER gte<id>1 (TUN)
 *     SOCKS5 127.0.0.1:1080                                10.77.0.2/24  fd77::2/64
 *     tunnel Address 10.77.0.1, fd77::1                    python3 HTTP server [::]:8000
 *     curl --socks5, python3 SOCKS probe                   (GET files, PUT → sha256)
 *   veth gte<id>3 192.0.2.1/24 ──────────────────────── veth gte<id>4 192.0.2.2/24 (UDP 51820)
 * ```
 *
 * PEER is wireguard-go (the newest found, see test/bench/_impls.ts; `GOTATUN_E2E_REFERENCE`
 * overrides it) and, in a second test, gotatun's own TUN daemon (PROGRAM, see _util.ts). Checked
 * through the proxy, every transfer by its SHA-256:
 * - download of a random file over inner IPv4 and over inner IPv6;
 * - upload (HTTP PUT; the server answers the SHA-256 of what it received);
 * - 100 connections at once: the server holds every request at a 100-party barrier (30 s
 *   timeout) before answering, so the test passes only if all 100 were open together;
 * - CONNECT to a closed port answers SOCKS reply 0x05 (connection refused);
 * - 2 % random loss each way (nftables `numgen random mod 100 < 2 drop` on the peer's WireGuard
 *   port, inside its namespace): the download is still byte-exact, and the rules' counters show
 *   that packets were dropped.
 * The proxy process is checked to run as nobody's uid. It runs from the built program
 * (`dist/gotatun`, a bundle with no npm dependencies left to resolve) with a DENO_DIR of its
 * own, in a directory only nobody can read (its private key is there).
 *
 * The namespaces, the peer, the server and starting a command as nobody are _tunnel_bed.ts's
 * (shared with forward_proxy_test.ts). Root only (namespaces); ignored with the reason printed
 * without root, tools or a program under test, and failed instead under CI=true
 * (test/_util/needs.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { log, mib, removeDir, skipReason, tempDir } from "./_util.ts";
import {
  assertListenerUid,
  B_INNER4,
  B_INNER6,
  clientConfig,
  CLIENTS,
  HTTP_PORT,
  nobodyHome,
  randomBytes,
  setUpPeer,
  sha256File,
  sha256Hex,
  startAsNobody,
  WG_PORT,
  wireguardGo,
  writeNobodyFile,
} from "./_tunnel_bed.ts";
import { type NamespaceContext, type Netns, withNamespaces } from "../_util/netns.ts";
import { digits, program } from "../_util/wg.ts";

const TOOLS = ["ip", "wg", "curl", "python3", "nft", "runuser", "ss"];
const SKIP = skipReason("proxy_test.ts", TOOLS);

const CLOSED_PORT = 8001;
const SOCKS = "127.0.0.1:1080";
const BIG_BYTES = 16 * 1048576;
const SMALL_BYTES = 256 * 1024;
const CONCURRENT = 100;
const LOSS_PERCENT = 2;

/** SOCKS5 CONNECT to (IPv4 address, port) from inside A; prints the reply bytes in hex. */
const PROBE_PY = String.raw`
import socket, sys
s = socket.create_connection(("127.0.0.1", 1080), timeout=40)
s.sendall(b"\x05\x01\x00")
assert s.recv(2) == b"\x05\x00", "no method accepted"
s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(sys.argv[1]) + int(sys.argv[2]).to_bytes(2, "big"))
reply = b""
while len(reply) < 10:
    chunk = s.recv(10 - len(reply))
    if not chunk:
        break
    reply += chunk
print(reply.hex())
`;

/** `curl --socks5 SOCKS ARGS…` inside `ns`; throws with curl's words unless it exited 0. */
async function curl(ns: Netns, timeoutMs: number, ...args: string[]): Promise<string> {
  const r = await ns.execWith(
    { timeoutMs },
    "curl",
    "-sS",
    "--fail",
    "--max-time",
    String(Math.floor(timeoutMs / 1000) - 5),
    "--socks5",
    SOCKS,
    ...args,
  );
  assert.ok(
    r.code === 0 && !r.timedOut,
    `curl ${args.join(" ")}: exit ${r.code}${r.timedOut ? " (timed out)" : ""}: ${r.stderr}`,
  );
  return r.stdout;
}

/** Total packets counted by the `counter` statements in ns's ruleset. */
async function nftDropped(ns: Netns): Promise<number> {
  const r = await ns.execOk("nft", "list", "ruleset");
  let n = 0;
  for (const m of r.stdout.matchAll(/counter packets (\d+)/g)) n += Number(m[1]);
  return n;
}

interface Bed {
  a: Netns;
  b: Netns;
  /** Files the server serves (root-only directory). */
  www: string;
  /** Scratch for curl's output (root-only directory). */
  work: string;
}

/** Builds both namespaces, the peer, the server and the proxy (as nobody). */
async function setUp(ctx: NamespaceContext, dir: string, peer: "wireguard-go" | "gotatun") {
  const base = await setUpPeer(ctx, dir, {
    peer: peer === "gotatun" ? "gotatun" : await wireguardGo(),
    clients: [CLIENTS[0]],
    files: { "big.bin": BIG_BYTES, "small.bin": SMALL_BYTES },
    parties: CONCURRENT,
  });
  await Deno.writeTextFile(`${dir}/probe.py`, PROBE_PY);

  // A: the proxy as nobody, its config and DENO_DIR in a directory only nobody can read.
  const h = await nobodyHome(ctx);
  const conf = await writeNobodyFile(h, "wg0.conf", clientConfig(base, CLIENTS[0], 0));
  await startAsNobody(
    ctx,
    base.a,
    h,
    [program(), "proxy", "--socks", SOCKS, conf],
    "SOCKS5 proxy on",
  );
  // The process serving 127.0.0.1:1080 is nobody's.
  await assertListenerUid(base.a, "tcp", 1080, h.uid);
  return { a: base.a, b: base.b, www: base.www, work: base.work } satisfies Bed;
}

async function downloadExact(bed: Bed, url: string, file: string, timeoutMs: number) {
  const out = `${bed.work}/${file}.${digits(4)}`;
  const t0 = performance.now();
  await curl(bed.a, timeoutMs, "-g", "-o", out, url);
  const s = (performance.now() - t0) / 1000;
  const size = (await Deno.stat(out)).size;
  log(`GET ${url}: ${mib(size)} in ${s.toFixed(2)} s (${(size * 8 / s / 1e6).toFixed(0)} Mbit/s)`);
  assert.equal(await sha256File(out), await sha256File(`${bed.www}/${file}`), `${url}: differs`);
  await Deno.remove(out);
}

async function proxyCase(peer: "wireguard-go" | "gotatun", t: Deno.TestContext): Promise<void> {
  const dir = await tempDir();
  try {
    await withNamespaces(`gte2e-${digits(6)}`, 2, async (ctx) => {
      const bed = await setUp(ctx, dir, peer);
      const base4 = `http://${B_INNER4}:${HTTP_PORT}`;
      const base6 = `http://[${B_INNER6}]:${HTTP_PORT}`;

      await t.step(
        "download over inner IPv4, byte-exact",
        () => downloadExact(bed, `${base4}/big.bin`, "big.bin", 120_000),
      );

      await t.step(
        "download over inner IPv6, byte-exact",
        () => downloadExact(bed, `${base6}/big.bin`, "big.bin", 120_000),
      );

      await t.step("upload (PUT): the server's SHA-256 matches", async () => {
        const src = `${bed.work}/up.bin`;
        const data = randomBytes(BIG_BYTES);
        await Deno.writeFile(src, data);
        const t0 = performance.now();
        const answer = (await curl(bed.a, 120_000, "-T", src, `${base4}/upload`)).trim();
        const s = (performance.now() - t0) / 1000;
        log(
          `PUT ${mib(data.length)} in ${s.toFixed(2)} s (${
            (data.length * 8 / s / 1e6).toFixed(0)
          } Mbit/s)`,
        );
        assert.equal(answer, `${await sha256Hex(data)} ${data.length}`);
        await Deno.remove(src);
      });

      await t.step(
        `${CONCURRENT} connections at once (server barrier), each byte-exact`,
        async () => {
          const want = await sha256File(`${bed.www}/small.bin`);
          const out = `${bed.work}/par`;
          await Deno.mkdir(out);
          const args = ["--parallel", "--parallel-immediate", "--parallel-max", String(CONCURRENT)];
          for (let i = 0; i < CONCURRENT; i++) {
            args.push("-o", `${out}/${i}`, `${base4}/hold/small.bin?i=${i}`);
          }
          await curl(bed.a, 90_000, ...args);
          for (let i = 0; i < CONCURRENT; i++) {
            assert.equal(await sha256File(`${out}/${i}`), want, `connection ${i}: differs`);
          }
          await removeDir(out);
        },
      );

      await t.step("CONNECT to a closed port: SOCKS reply 0x05", async () => {
        const r = await bed.a.execOk("python3", `${dir}/probe.py`, B_INNER4, String(CLOSED_PORT));
        const reply = r.stdout.trim();
        assert.equal(reply.slice(0, 4), "0505", `reply ${reply}: not 05 05 (connection refused)`);
        // The proxy still serves after the refusal.
        await curl(bed.a, 30_000, "-o", "/dev/null", `${base4}/small.bin`);
      });

      await t.step(`${LOSS_PERCENT} % loss each way: download still byte-exact`, async () => {
        const rule = `numgen random mod 100 < ${LOSS_PERCENT} counter drop`;
        const nft = [
          `add table inet gte2e`,
          `add chain inet gte2e in { type filter hook input priority 0; }`,
          `add chain inet gte2e out { type filter hook output priority 0; }`,
          `add rule inet gte2e in udp dport ${WG_PORT} ${rule}`,
          `add rule inet gte2e out udp sport ${WG_PORT} ${rule}`,
        ].join("\n") + "\n";
        const r = await bed.b.execWith({ stdin: nft, timeoutMs: 10_000 }, "nft", "-f", "-");
        assert.equal(r.code, 0, `nft: ${r.stderr}`);
        await downloadExact(bed, `${base4}/big.bin`, "big.bin", 300_000);
        const dropped = await nftDropped(bed.b);
        log(`nftables dropped ${dropped} WireGuard packets`);
        assert.ok(dropped > 0, "the loss rules dropped nothing: the loss was not applied");
      });
    });
  } finally {
    await removeDir(dir);
  }
}

Deno.test({
  name: "proxy: gotatun proxy as nobody ↔ wireguard-go (TUN): SOCKS5 download/upload, IPv6, " +
    `${CONCURRENT} connections, refused port, ${LOSS_PERCENT} % loss`,
  ignore: SKIP !== "",
  fn: (t) => proxyCase("wireguard-go", t),
});

Deno.test({
  name: "proxy: gotatun proxy as nobody ↔ gotatun TUN daemon: SOCKS5 download/upload, IPv6, " +
    `${CONCURRENT} connections, refused port, ${LOSS_PERCENT} % loss`,
  ignore: SKIP !== "",
  fn: (t) => proxyCase("gotatun", t),
});
