// SPDX-License-Identifier: Apache-2.0
/**
 * The test bed of the end-to-end tests of gotatun's in-process Tunnel commands (`gotatun proxy`,
 * `gotatun forward`; proxy_test.ts, forward_proxy_test.ts): two namespaces joined by a veth, a
 * real WireGuard peer with a TUN device in B and a kernel HTTP server behind it, and in A the
 * commands under test run as the unprivileged user `nobody`, each a tunnel client of its own:
 *
 * ```
 *   gte2e-<id>-a                                         gte2e-<id>-b
 *   runuser -u nobody -- PROGRAM proxy|forward …         PEER gte<id>1 (TUN)
 *     client i: tunnel Address CLIENTS[i]                  10.77.0.2/24  fd77::2/64
 *                                                          python3 HTTP server [::]:8000
 *   veth gte<id>3 192.0.2.1/24 ──────────────────────── veth gte<id>4 192.0.2.2/24 (UDP 51820)
 * ```
 *
 * Each client's config and DENO_DIR live in a directory only nobody can read (its private key is
 * there); the program is the built bundle (test/_util/wg.ts `program()`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { log, REFERENCE, removeDir } from "./_util.ts";
import { type NamespaceContext, type Netns, run, vethPair, waitFor } from "../_util/netns.ts";
import type { Background } from "../_util/proc.ts";
import { digits, genKeyPair, type KeyPair, launchDaemon, program, wg } from "../_util/wg.ts";
import { findWireguardGo } from "../bench/_impls.ts";

export const B_INNER4 = "10.77.0.2", B_INNER6 = "fd77::2";
export const A_OUTER = "192.0.2.1", B_OUTER = "192.0.2.2";
export const WG_PORT = 51820;
export const HTTP_PORT = 8000;

/** A tunnel client in A: its tunnel addresses (B routes them to it). */
export interface ClientAddresses {
  inner4: string;
  inner6: string;
}

/** The tunnel addresses of the clients, in order: the first is the one proxy_test.ts uses. */
export const CLIENTS: readonly ClientAddresses[] = [
  { inner4: "10.77.0.1", inner6: "fd77::1" },
  { inner4: "10.77.0.3", inner6: "fd77::3" },
];

/**
 * The peer in B: an explicit GOTATUN_E2E_REFERENCE, else the newest wireguard-go found (see
 * test/bench/_impls.ts), else _util.ts's REFERENCE. Only call it from a test that runs.
 */
export async function wireguardGo(): Promise<string> {
  return Deno.env.get("GOTATUN_E2E_REFERENCE") ?? (await findWireguardGo())[0]?.path ?? REFERENCE;
}

/**
 * The HTTP server (kernel TCP): `server.py ROOT PORT PARTIES [HOST]`, HOST "::" (dual-stack, the
 * default) or an IPv4 address. GET /NAME serves a file of ROOT, GET /hold/NAME first waits at a
 * PARTIES-party barrier (30 s timeout), PUT answers "SHA256HEX LENGTH". Its listen backlog holds
 * 512 connections (socketserver's default is 5); the server name is set without a DNS lookup
 * (the namespaces have no resolver).
 */
export const SERVER_PY = String.raw`
import hashlib, http.server, os, socket, socketserver, sys, threading
root, port, parties = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
host = sys.argv[4] if len(sys.argv) > 4 else "::"
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
    address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
    request_queue_size = 512
    daemon_threads = True
    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "peer", port

Server((host, port), Handler).serve_forever()
`;

export async function sha256Hex(data: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function sha256File(path: string): Promise<string> {
  return await sha256Hex(await Deno.readFile(path));
}

/** Random bytes of any length (getRandomValues gives at most 64 KiB a call). */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/** The numeric uid of a user, from `id -u`. */
export async function uidOf(user: string): Promise<number> {
  const r = await run("id", ["-u", user], { timeoutMs: 5000 });
  assert.equal(r.code, 0, `id -u ${user}: ${r.stderr}`);
  return Number(r.stdout.trim());
}

/** What {@link setUpPeer} built. */
export interface PeerBed {
  a: Netns;
  b: Netns;
  /** Files the HTTP server in B serves (root-only directory). */
  www: string;
  /** Scratch (root-only directory). */
  work: string;
  /** The peer's public key. */
  peerPublicKey: string;
  /** One key pair per client of `clients`, in order. */
  clientKeys: KeyPair[];
}

/** What {@link setUpPeer} builds. */
export interface PeerOptions {
  /** The peer's daemon: wireguard-go's path, or "gotatun" for the program under test. */
  peer: string;
  /** Tunnel clients B accepts (each gets a key pair). */
  clients: readonly ClientAddresses[];
  /** Files of random bytes the HTTP server serves: name → size. */
  files: Readonly<Record<string, number>>;
  /** The HTTP server's barrier size (see {@link SERVER_PY}). */
  parties: number;
}

/**
 * Builds the veth between the two namespaces of `ctx`, the peer in B (it learns each client's
 * endpoint from its handshake) and the HTTP server on port {@link HTTP_PORT} of B.
 */
export async function setUpPeer(
  ctx: NamespaceContext,
  dir: string,
  opts: PeerOptions,
): Promise<PeerBed> {
  const [a, b] = ctx.namespaces;
  const id = digits(6);
  await vethPair(a, b, {
    nameA: `gte${id}3`,
    nameB: `gte${id}4`,
    addrA: `${A_OUTER}/24`,
    addrB: `${B_OUTER}/24`,
  });

  const ifname = `gte${id}1`;
  ctx.defer(() => Deno.remove(`/var/run/wireguard/${ifname}.sock`).catch(() => {}));
  await launchDaemon(b, opts.peer === "gotatun" ? program() : opts.peer, ifname);
  const kb = await genKeyPair(dir);
  const clientKeys: KeyPair[] = [];
  const peers: string[] = [];
  for (const c of opts.clients) {
    const k = await genKeyPair(dir);
    clientKeys.push(k);
    peers.push("peer", k.publicKey, "allowed-ips", `${c.inner4}/32,${c.inner6}/128`);
  }
  await wg([
    "set",
    ifname,
    "private-key",
    kb.privateFile,
    "listen-port",
    String(WG_PORT),
    ...peers,
  ]);
  await b.addrUp(ifname, `${B_INNER4}/24`, `${B_INNER6}/64`);
  assert.ok(await b.listening("udp", WG_PORT), `${opts.peer} did not bind UDP ${WG_PORT}`);

  const www = `${dir}/www`, work = `${dir}/work`;
  await Deno.mkdir(www);
  await Deno.mkdir(work);
  for (const [name, size] of Object.entries(opts.files)) {
    await Deno.writeFile(`${www}/${name}`, randomBytes(size));
  }
  await Deno.writeTextFile(`${dir}/server.py`, SERVER_PY);
  const server = ctx.spawn(
    b,
    "python3",
    [`${dir}/server.py`, www, String(HTTP_PORT), String(opts.parties)],
    { output: "piped" },
  );
  if (!(await b.listening("tcp", HTTP_PORT))) {
    const o = server.output();
    throw new Error(`the HTTP server did not listen: ${o.stdout}${o.stderr}`);
  }
  return { a, b, www, work, peerPublicKey: kb.publicKey, clientKeys };
}

/** A directory only nobody can read, with a DENO_DIR inside; removed at cleanup. */
export interface NobodyHome {
  home: string;
  uid: number;
}

/** Makes a {@link NobodyHome} (removed when `ctx` cleans up). */
export async function nobodyHome(ctx: NamespaceContext): Promise<NobodyHome> {
  const uid = await uidOf("nobody");
  const home = await Deno.makeTempDir({ prefix: "gte2e-nobody-" });
  ctx.defer(() => removeDir(home));
  await Deno.mkdir(`${home}/deno`, { mode: 0o700 });
  for (const p of [home, `${home}/deno`]) await Deno.chown(p, uid, null);
  return { home, uid };
}

/** Writes `name` in the home, owned by nobody, mode 0600; its path. */
export async function writeNobodyFile(
  h: NobodyHome,
  name: string,
  data: string | Uint8Array,
): Promise<string> {
  const path = `${h.home}/${name}`;
  if (typeof data === "string") await Deno.writeTextFile(path, data, { mode: 0o600 });
  else await Deno.writeFile(path, data, { mode: 0o600 });
  await Deno.chown(path, h.uid, null);
  return path;
}

/** A wg-quick config for client `i` of `bed`, with more `[Interface]` lines (e.g. `DNS = …`). */
export function clientConfig(
  bed: PeerBed,
  client: ClientAddresses,
  i: number,
  interfaceLines: readonly string[] = [],
): string {
  return [
    "[Interface]",
    `PrivateKey = ${bed.clientKeys[i].privateKey}`,
    `Address = ${client.inner4}/32, ${client.inner6}/128`,
    ...interfaceLines,
    "[Peer]",
    `PublicKey = ${bed.peerPublicKey}`,
    `AllowedIPs = ${B_INNER4}/32, ${B_INNER6}/128`,
    `Endpoint = ${B_OUTER}:${WG_PORT}`,
    "",
  ].join("\n");
}

/** A process started by {@link startAsNobody}. */
export interface NobodyProcess {
  proc: Background;
  /** Everything it wrote so far (stdout + stderr). */
  said(): string;
}

/**
 * Starts `argv` in `ns` as nobody (HOME and DENO_DIR in `h`; killed at cleanup) and waits until
 * its stdout contains `ready` (null: does not wait); throws with what it said when it exits or
 * is not ready in time.
 */
export async function startAsNobody(
  ctx: NamespaceContext,
  ns: Netns,
  h: NobodyHome,
  argv: readonly string[],
  ready: string | null,
  timeoutMs = 30_000,
): Promise<NobodyProcess> {
  const proc = ctx.spawn(ns, "runuser", [
    "-u",
    "nobody",
    "--",
    "env",
    `HOME=${h.home}`,
    `DENO_DIR=${h.home}/deno`,
    ...argv,
  ], { output: "piped" });
  const said = () => `${proc.output().stdout}${proc.output().stderr}`;
  if (ready === null) return { proc, said };
  let exited = false;
  proc.status.then(() => (exited = true));
  const up = await waitFor(() => exited || proc.output().stdout.includes(ready), timeoutMs, 100);
  assert.ok(up && !exited, `${argv.join(" ")} did not start as nobody:\n${said()}`);
  log(said().trim());
  return { proc, said };
}

/** Asserts that the process listening on `proto` `port` in `ns` runs as `uid`. */
export async function assertListenerUid(
  ns: Netns,
  proto: "tcp" | "udp",
  port: number,
  uid: number,
): Promise<void> {
  const r = await ns.execOk("ss", proto === "tcp" ? "-Htlnp" : "-Hulnp", `sport = :${port}`);
  const pid = Number(/pid=(\d+)/.exec(r.stdout)?.[1]);
  assert.ok(pid > 0, `no process listens on ${proto} ${port}: ${r.stdout}`);
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const got = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
  assert.equal(got, uid, `the process on ${proto} ${port} (pid ${pid}) runs as uid ${got}`);
}
