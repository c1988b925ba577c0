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
 * Root only (namespaces); ignored with the reason printed without root, tools or a program under
 * test, and failed instead under CI=true (test/_util/needs.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { log, mib, REFERENCE, removeDir, skipReason, tempDir } from "./_util.ts";
import {
  type NamespaceContext,
  type Netns,
  run,
  vethPair,
  waitFor,
  withNamespaces,
} from "../_util/netns.ts";
import { digits, genKeyPair, launchDaemon, program, wg } from "../_util/wg.ts";
import { findWireguardGo } from "../bench/_impls.ts";

const TOOLS = ["ip", "wg", "curl", "python3", "nft", "runuser", "ss"];
const SKIP = skipReason("proxy_test.ts", TOOLS);

/** The peer: an explicit GOTATUN_E2E_REFERENCE, else the newest wireguard-go found. */
const WIREGUARD_GO: string = Deno.env.get("GOTATUN_E2E_REFERENCE") ??
  (SKIP === "" ? (await findWireguardGo())[0]?.path : undefined) ?? REFERENCE;

const A_INNER4 = "10.77.0.1", B_INNER4 = "10.77.0.2";
const A_INNER6 = "fd77::1", B_INNER6 = "fd77::2";
const A_OUTER = "192.0.2.1", B_OUTER = "192.0.2.2";
const WG_PORT = 51820;
const HTTP_PORT = 8000;
const CLOSED_PORT = 8001;
const SOCKS = "127.0.0.1:1080";
const BIG_BYTES = 16 * 1048576;
const SMALL_BYTES = 256 * 1024;
const CONCURRENT = 100;
const LOSS_PERCENT = 2;

/**
 * The HTTP server in B (kernel TCP, dual-stack): GET /NAME serves a file of its directory,
 * GET /hold/NAME first waits at a CONCURRENT-party barrier, PUT answers "SHA256HEX LENGTH".
 * Its listen backlog holds all CONCURRENT connections (socketserver's default is 5); the server
 * name is set without a DNS lookup (the namespace has no resolver).
 */
const SERVER_PY = String.raw`
import hashlib, http.server, os, socket, socketserver, sys, threading
root, port, parties = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
barrier = threading.Barrier(parties, timeout=30)

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        name = self.path.split("?")[0].lstrip("/")
        if name.startswith("hold/"):
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                return self.reply(503, b"barrier broken: not all requests came at once\n")
            name = name[len("hold/"):]
        try:
            with open(os.path.join(root, os.path.basename(name)), "rb") as f:
                data = f.read()
        except OSError:
            return self.reply(404, b"no such file\n")
        self.reply(200, data)
    def do_PUT(self):
        left = int(self.headers.get("Content-Length", "0"))
        h, got = hashlib.sha256(), 0
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                break
            h.update(chunk)
            got += len(chunk)
            left -= len(chunk)
        self.reply(200, ("%s %d\n" % (h.hexdigest(), got)).encode())

class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    request_queue_size = 512
    daemon_threads = True
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "peer", port

Server(("::", port), Handler).serve_forever()
`;

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

async function sha256Hex(data: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256File(path: string): Promise<string> {
  return await sha256Hex(await Deno.readFile(path));
}

/** Random bytes of any length (getRandomValues gives at most 64 KiB a call). */
function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/** The numeric uid of a user, from `id -u`. */
async function uidOf(user: string): Promise<number> {
  const r = await run("id", ["-u", user], { timeoutMs: 5000 });
  assert.equal(r.code, 0, `id -u ${user}: ${r.stderr}`);
  return Number(r.stdout.trim());
}

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
  const [a, b] = ctx.namespaces;
  const id = digits(6);
  await vethPair(a, b, {
    nameA: `gte${id}3`,
    nameB: `gte${id}4`,
    addrA: `${A_OUTER}/24`,
    addrB: `${B_OUTER}/24`,
  });

  // B: the peer with a TUN device; it learns the proxy's endpoint from its handshake.
  const ifname = `gte${id}1`;
  ctx.defer(() => Deno.remove(`/var/run/wireguard/${ifname}.sock`).catch(() => {}));
  await launchDaemon(b, peer === "gotatun" ? program() : WIREGUARD_GO, ifname);
  const kb = await genKeyPair(dir), ka = await genKeyPair(dir);
  await wg([
    "set",
    ifname,
    "private-key",
    kb.privateFile,
    "listen-port",
    String(WG_PORT),
    "peer",
    ka.publicKey,
    "allowed-ips",
    `${A_INNER4}/32,${A_INNER6}/128`,
  ]);
  await b.addrUp(ifname, `${B_INNER4}/24`, `${B_INNER6}/64`);
  assert.ok(await b.listening("udp", WG_PORT), `${peer} did not bind UDP ${WG_PORT}`);

  // B: the HTTP server over a random file.
  const www = `${dir}/www`, work = `${dir}/work`;
  await Deno.mkdir(www);
  await Deno.mkdir(work);
  await Deno.writeFile(`${www}/big.bin`, randomBytes(BIG_BYTES));
  await Deno.writeFile(`${www}/small.bin`, randomBytes(SMALL_BYTES));
  await Deno.writeTextFile(`${dir}/server.py`, SERVER_PY);
  await Deno.writeTextFile(`${dir}/probe.py`, PROBE_PY);
  const server = ctx.spawn(
    b,
    "python3",
    [`${dir}/server.py`, www, String(HTTP_PORT), String(CONCURRENT)],
    { output: "piped" },
  );
  if (!(await b.listening("tcp", HTTP_PORT))) {
    const o = server.output();
    throw new Error(`the HTTP server did not listen: ${o.stdout}${o.stderr}`);
  }

  // A: the proxy as nobody, its config and DENO_DIR in a directory only nobody can read.
  const nobodyUid = await uidOf("nobody");
  const home = await Deno.makeTempDir({ prefix: "gte2e-nobody-" });
  ctx.defer(() => removeDir(home));
  const conf = `${home}/wg0.conf`;
  await Deno.writeTextFile(
    conf,
    [
      "[Interface]",
      `PrivateKey = ${ka.privateKey}`,
      `Address = ${A_INNER4}/32, ${A_INNER6}/128`,
      "[Peer]",
      `PublicKey = ${kb.publicKey}`,
      `AllowedIPs = ${B_INNER4}/32, ${B_INNER6}/128`,
      `Endpoint = ${B_OUTER}:${WG_PORT}`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  await Deno.mkdir(`${home}/deno`, { mode: 0o700 });
  for (const p of [home, conf, `${home}/deno`]) await Deno.chown(p, nobodyUid, null);
  const prog = program();
  const proxy = ctx.spawn(a, "runuser", [
    "-u",
    "nobody",
    "--",
    "env",
    `HOME=${home}`,
    `DENO_DIR=${home}/deno`,
    prog,
    "proxy",
    "--socks",
    SOCKS,
    conf,
  ], { output: "piped" });
  let exited = false;
  proxy.status.then(() => (exited = true));
  const up = await waitFor(
    () => exited || proxy.output().stdout.includes("SOCKS5 proxy on"),
    30_000,
    100,
  );
  const said = () => `${proxy.output().stdout}${proxy.output().stderr}`;
  assert.ok(up && !exited, `${prog} proxy did not start as nobody:\n${said()}`);
  log(said().trim());

  // The process serving 127.0.0.1:1080 is nobody's.
  const ss = await a.execOk("ss", "-Htlnp", "sport = :1080");
  const pid = Number(/pid=(\d+)/.exec(ss.stdout)?.[1]);
  assert.ok(pid > 0, `no process listens on 1080: ${ss.stdout}`);
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
  assert.equal(uid, nobodyUid, `the proxy (pid ${pid}) runs as uid ${uid}, not nobody`);
  return { a, b, www, work } satisfies Bed;
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
