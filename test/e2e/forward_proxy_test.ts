// SPDX-License-Identifier: Apache-2.0
/**
 * `gotatun forward` and the rest of `gotatun proxy` end to end (proxy_test.ts has SOCKS5
 * CONNECT's transfers, concurrency and loss): both run as the unprivileged user `nobody` in
 * namespace A, each a tunnel client of its own, against a peer with a TUN device in B (PEER:
 * wireguard-go as in proxy_test.ts, and in a second test gotatun's own TUN daemon), one
 * namespace set-up for every step of a test (_tunnel_bed.ts):
 *
 * ```
 *   gte2e-<id>-a                                         gte2e-<id>-b
 *   nobody: PROGRAM proxy  (10.77.0.1, fd77::1)          PEER gte<id>1 (TUN)
 *     --socks 127.0.0.1:1080 --http 127.0.0.1:8080         10.77.0.2/24  fd77::2/64
 *     --auth users (alice), DNS = 10.77.0.2                python3 HTTP server [::]:8000
 *   nobody: PROGRAM forward (10.77.0.3, fd77::3)           python3 UDP echo [::]:7000
 *     -L 18000:10.77.0.2:8000  -L 18001:web.gte2e.test:8000 python3 DNS 10.77.0.2:53
 *     -L 17000:10.77.0.2:7000/udp  -L 17006:[fd77::2]:7000/udp   (web.gte2e.test: A and AAAA;
 *     -R 9000:127.0.0.1:9001  -R 9002:localhost:9003/udp          other names: NXDOMAIN)
 *     DNS = 10.77.0.2                                      curl → 10.77.0.3:9000, [fd77::3]:9000
 *   nobody: python3 HTTP server 127.0.0.1:9001             python3 UDP client → 10.77.0.3:9002,
 *   nobody: python3 UDP echo 127.0.0.1:9003                  [fd77::3]:9002
 *   veth 192.0.2.1/24 ─────────────────────────────────── veth 192.0.2.2/24 (UDP 51820)
 * ```
 *
 * Checked, every transfer by its SHA-256 and every datagram byte for byte:
 * - forward -L TCP to an address (download and upload) and to a name (resolved by the forward's
 *   DNS through the tunnel: the DNS server logs the query from the forward's tunnel address);
 * - forward -R TCP: curl in B reaches, over both inner families, the server on A's loopback
 *   (download and upload);
 * - forward UDP (datagrams of 1 to 1200 bytes): -L to the echo in B over inner IPv4 and IPv6, and
 *   -R from a client in B, over both inner families, to an echo on A's loopback (nobody's);
 * - SOCKS5 UDP ASSOCIATE (with username/password) to the echo by IPv4, IPv6 and by name, the
 *   replies' headers naming the echo's address and port;
 * - DNS through the tunnel: `curl -x socks5h://` to the test name downloads from B; an unknown
 *   name is SOCKS reply 0x04 (raw probe; curl fails with exit 97), after the server saw the query;
 *   SOCKS without credentials gets method 0xFF;
 * - the HTTP proxy with `--auth`: a forwarded GET (to an address and to the name) and CONNECT,
 *   both byte-exact; 407 without credentials and with a wrong password; 502 for an unknown name.
 * Every listener of the commands under test is checked to be nobody's.
 *
 * Root only (namespaces); ignored with the reason printed without root, tools or a program under
 * test, and failed instead under CI=true (test/_util/needs.ts).
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
  type PeerBed,
  randomBytes,
  SERVER_PY,
  setUpPeer,
  sha256File,
  sha256Hex,
  startAsNobody,
  wireguardGo,
  writeNobodyFile,
} from "./_tunnel_bed.ts";
import { type Netns, withNamespaces } from "../_util/netns.ts";
import type { Background } from "../_util/proc.ts";
import { digits, program } from "../_util/wg.ts";

const TOOLS = ["ip", "wg", "curl", "python3", "runuser", "ss"];
const SKIP = skipReason("forward_proxy_test.ts", TOOLS);

const PROXY = CLIENTS[0], FORWARD = CLIENTS[1];
const SOCKS_PORT = 1080, HTTP_PROXY_PORT = 8080;
const ECHO_PORT = 7000;
const NAME = "web.gte2e.test", UNKNOWN = "nothere.gte2e.test";
const USER = "alice", PASSWORD = "s3cret-pass";
const L_TCP = 18000, L_TCP_NAME = 18001, L_UDP4 = 17000, L_UDP6 = 17006;
const R_TCP = 9000, A_SERVER_PORT = 9001, R_UDP = 9002, A_ECHO_PORT = 9003;
const BIG_BYTES = 4 * 1048576;
const SMALL_BYTES = 64 * 1024;
const DATAGRAMS = 40;

/**
 * UDP echo: every datagram goes back to its sender. `echo.py PORT [HOST]`, HOST "::" (dual-stack,
 * the default) or an IPv4 address.
 */
const ECHO_PY = String.raw`
import socket, sys
host = sys.argv[2] if len(sys.argv) > 2 else "::"
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
if ":" in host:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind((host, int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(data, peer)
`;

/**
 * A DNS server on UDP ADDR:53 for one name: A and AAAA records (TTL 60), NOERROR without answers
 * for other types of it, NXDOMAIN for every other name. Prints "SOURCE NAME QTYPE" per query.
 * `dns.py ADDR NAME IPV4 IPV6`.
 */
const DNS_PY = String.raw`
import socket, struct, sys
addr, name = sys.argv[1], sys.argv[2].lower().rstrip(".")
rdata = {1: socket.inet_pton(socket.AF_INET, sys.argv[3]),
         28: socket.inet_pton(socket.AF_INET6, sys.argv[4])}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, 53))
while True:
    q, peer = s.recvfrom(4096)
    try:
        qid, flags, qd = struct.unpack("!3H", q[:6])
        i, labels = 12, []
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode("ascii"))
            i += 1 + q[i]
        qtype, qclass = struct.unpack("!2H", q[i + 1:i + 5])
        question = q[12:i + 5]
    except Exception:
        continue
    if flags & 0x8000 or qd != 1:
        continue
    qname = ".".join(labels).lower()
    print(peer[0], qname, qtype, flush=True)
    answers, rcode = [], 0
    if qname != name:
        rcode = 3
    elif qtype in rdata:
        d = rdata[qtype]
        answers.append(b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 60, len(d)) + d)
    head = struct.pack("!6H", qid, 0x8400 | (flags & 0x0100) | rcode, 1, len(answers), 0, 0)
    s.sendto(head + question + b"".join(answers), peer)
`;

/**
 * COUNT datagrams to HOST:PORT, one at a time, each echoed byte for byte within 5 s.
 * `udp.py HOST PORT COUNT`.
 */
const UDP_CLIENT_PY = String.raw`
import os, socket, sys
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.connect((host, port))
sizes = [1, 64, 512, 1200]
for i in range(count):
    p = os.urandom(sizes[i % len(sizes)])
    s.send(p)
    got = s.recv(65535)
    assert got == p, "datagram %d: %d bytes back for %d sent, or different" % (i, len(got), len(p))
print("echoed", count)
`;

/**
 * A SOCKS5 client of 127.0.0.1:1080. USER "-" offers no authentication, else username/password.
 * - `socks.py connect USER PASS HOST PORT`: prints "method HEX" or "auth HEX" when refused
 *   there, else "reply HEX" (the CONNECT reply);
 * - `socks.py udp USER PASS COUNT HOST:PORT…` (IPv6 in brackets, HOST may be a name): UDP
 *   ASSOCIATE, then COUNT datagrams to each target, one at a time, each echoed byte for byte
 *   from the target's port; prints "HOST:PORT from SOURCE-ADDRESSES" per target.
 */
const SOCKS_PY = String.raw`
import ipaddress, os, socket, sys

def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            break
        b += c
    return b

def addr_field(host):
    try:
        ip = ipaddress.ip_address(host)
        return (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
    except ValueError:
        return b"\x03" + bytes([len(host)]) + host.encode()

def read_reply(c):
    head = recvn(c, 4)
    if len(head) < 4:
        return head, b""
    rest = recvn(c, {1: 4, 4: 16}.get(head[3], 0) + 2)
    return head + rest, rest

mode, user, pw = sys.argv[1:4]
c = socket.create_connection(("127.0.0.1", 1080), timeout=20)
c.sendall(b"\x05\x01\x00" if user == "-" else b"\x05\x01\x02")
m = recvn(c, 2)
if m not in (b"\x05\x00", b"\x05\x02"):
    print("method", m.hex())
    sys.exit(0)
if m == b"\x05\x02":
    c.sendall(b"\x01" + bytes([len(user)]) + user.encode() + bytes([len(pw)]) + pw.encode())
    a = recvn(c, 2)
    if a != b"\x01\x00":
        print("auth", a.hex())
        sys.exit(0)
if mode == "connect":
    c.sendall(b"\x05\x01\x00" + addr_field(sys.argv[4]) + int(sys.argv[5]).to_bytes(2, "big"))
    print("reply", read_reply(c)[0].hex())
    sys.exit(0)

count = int(sys.argv[4])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 0))
u.settimeout(5)
c.sendall(b"\x05\x03\x00\x01" + socket.inet_aton("127.0.0.1") + u.getsockname()[1].to_bytes(2, "big"))
reply, rest = read_reply(c)
assert reply[:2] == b"\x05\x00", "UDP ASSOCIATE reply " + reply.hex()
relay_ip = ipaddress.ip_address(rest[:-2])
relay = ("127.0.0.1" if relay_ip.is_unspecified else str(relay_ip), int.from_bytes(rest[-2:], "big"))
sizes = [1, 64, 512, 1200]
for target in sys.argv[5:]:
    host, port = target.rsplit(":", 1)
    host, port = host.strip("[]"), int(port)
    head = b"\x00\x00\x00" + addr_field(host) + port.to_bytes(2, "big")
    seen = set()
    for i in range(count):
        p = os.urandom(sizes[i % len(sizes)])
        u.sendto(head + p, relay)
        d, src = u.recvfrom(65535)
        assert src == relay, "a datagram from %s, not from the relay %s" % (src, relay)
        assert d[:3] == b"\x00\x00\x00", "%s: reply header %s" % (target, d[:4].hex())
        n = {1: 4, 4: 16}.get(d[3])
        assert n, "%s: reply ATYP %d" % (target, d[3])
        sport = int.from_bytes(d[4 + n:6 + n], "big")
        assert sport == port, "%s: reply from port %d" % (target, sport)
        assert d[6 + n:] == p, "%s: datagram %d (%d bytes) came back different" % (target, i, len(p))
        seen.add(str(ipaddress.ip_address(d[4:4 + n])))
    print(target, "from", ",".join(sorted(seen)), flush=True)
c.close()
`;

/** Runs `cmd args…` in `ns`; throws with its words unless it exited 0 in time. */
async function ok(ns: Netns, timeoutMs: number, cmd: string, ...args: string[]): Promise<string> {
  const r = await ns.execWith({ timeoutMs }, cmd, ...args);
  assert.ok(
    r.code === 0 && !r.timedOut,
    `${cmd} ${args.join(" ")}: exit ${r.code}${r.timedOut ? " (timed out)" : ""}: ${r.stderr}`,
  );
  return r.stdout;
}

/** `curl ARGS… -o FILE URL` in `ns`; asserts FILE's SHA-256 is `want`'s, logs the rate. */
async function fetchExact(
  ns: Netns,
  work: string,
  want: string,
  url: string,
  ...args: string[]
): Promise<void> {
  const out = `${work}/dl.${digits(6)}`;
  const t0 = performance.now();
  await ok(ns, 60_000, "curl", "-sS", "--fail", "-g", "--max-time", "50", ...args, "-o", out, url);
  const s = (performance.now() - t0) / 1000;
  const size = (await Deno.stat(out)).size;
  log(`${[...args, url].join(" ")}: ${mib(size)} in ${s.toFixed(2)} s`);
  assert.equal(await sha256File(out), await sha256File(want), `${url}: differs from ${want}`);
  await Deno.remove(out);
}

/** `curl -T` of BIG_BYTES random bytes to `url` in `ns`: the server's SHA-256 must match. */
async function putExact(ns: Netns, work: string, url: string): Promise<void> {
  const src = `${work}/up.${digits(6)}`;
  const data = randomBytes(BIG_BYTES);
  await Deno.writeFile(src, data);
  const t0 = performance.now();
  const answer = await ok(
    ns,
    60_000,
    "curl",
    "-sS",
    "--fail",
    "-g",
    "--max-time",
    "50",
    "-T",
    src,
    url,
  );
  log(`PUT ${url}: ${mib(data.length)} in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  assert.equal(answer.trim(), `${await sha256Hex(data)} ${data.length}`, `PUT ${url}`);
  await Deno.remove(src);
}

/** The HTTP status curl in `ns` gets for `url` through the HTTP proxy `proxy`. */
async function httpStatus(ns: Netns, proxy: string, url: string): Promise<string> {
  const args = ["-sS", "--max-time", "25", "-o", "/dev/null", "-w", "%{http_code}", "-x", proxy];
  return (await ok(ns, 30_000, "curl", ...args, url)).trim();
}

/** Lines the DNS server printed for queries of `name` from `source`. */
function queries(dns: Background, source: string, name: string): string[] {
  return dns.output().stdout.split("\n").filter((l) => l.startsWith(`${source} ${name} `));
}

async function forwardProxyCase(
  peer: "wireguard-go" | "gotatun",
  t: Deno.TestContext,
): Promise<void> {
  const dir = await tempDir();
  try {
    await withNamespaces(`gte2e-${digits(6)}`, 2, async (ctx) => {
      const bed: PeerBed = await setUpPeer(ctx, dir, {
        peer: peer === "gotatun" ? "gotatun" : await wireguardGo(),
        clients: [PROXY, FORWARD],
        files: { "big.bin": BIG_BYTES, "small.bin": SMALL_BYTES },
        parties: 1,
      });
      const { a, b, www, work } = bed;

      // B: the UDP echo and the DNS server (on the tunnel address only).
      await Deno.writeTextFile(`${dir}/echo.py`, ECHO_PY);
      await Deno.writeTextFile(`${dir}/dns.py`, DNS_PY);
      const echo = ctx.spawn(b, "python3", [`${dir}/echo.py`, String(ECHO_PORT)], {
        output: "piped",
      });
      const dns = ctx.spawn(b, "python3", [`${dir}/dns.py`, B_INNER4, NAME, B_INNER4, B_INNER6], {
        output: "piped",
      });
      for (const [what, port, proc] of [["echo", ECHO_PORT, echo], ["DNS", 53, dns]] as const) {
        if (!(await b.listening("udp", port))) {
          const o = proc.output();
          throw new Error(`the ${what} server did not listen: ${o.stdout}${o.stderr}`);
        }
      }

      // A, all as nobody: a server on loopback (the -R target), the forward, the proxy.
      const h = await nobodyHome(ctx);
      const serverPy = await writeNobodyFile(h, "server.py", SERVER_PY);
      await Deno.mkdir(`${h.home}/www`, { mode: 0o700 });
      await Deno.chown(`${h.home}/www`, h.uid, null);
      const served = await writeNobodyFile(h, "www/served.bin", randomBytes(BIG_BYTES));
      const aServer = await startAsNobody(ctx, a, h, [
        "python3",
        serverPy,
        `${h.home}/www`,
        String(A_SERVER_PORT),
        "1",
        "127.0.0.1",
      ], null);
      assert.ok(await a.listening("tcp", A_SERVER_PORT), `A's server: ${aServer.said()}`);
      const echoPy = await writeNobodyFile(h, "echo.py", ECHO_PY);
      const aEcho = await startAsNobody(ctx, a, h, [
        "python3",
        echoPy,
        String(A_ECHO_PORT),
        "127.0.0.1",
      ], null);
      assert.ok(await a.listening("udp", A_ECHO_PORT), `A's echo: ${aEcho.said()}`);

      const dnsLine = [`DNS = ${B_INNER4}`];
      const fwdConf = await writeNobodyFile(h, "fwd.conf", clientConfig(bed, FORWARD, 1, dnsLine));
      await startAsNobody(ctx, a, h, [
        program(),
        "forward",
        "-L",
        `127.0.0.1:${L_TCP}:${B_INNER4}:${HTTP_PORT}`,
        "-L",
        `127.0.0.1:${L_TCP_NAME}:${NAME}:${HTTP_PORT}`,
        "-L",
        `127.0.0.1:${L_UDP4}:${B_INNER4}:${ECHO_PORT}/udp`,
        "-L",
        `127.0.0.1:${L_UDP6}:[${B_INNER6}]:${ECHO_PORT}/udp`,
        "-R",
        `${R_TCP}:127.0.0.1:${A_SERVER_PORT}`,
        "-R",
        `${R_UDP}:localhost:${A_ECHO_PORT}/udp`,
        fwdConf,
      ], `forwarding tunnel port ${R_UDP}/udp`);

      const users = await writeNobodyFile(h, "users", `${USER}:${PASSWORD}\n`);
      const proxyConf = await writeNobodyFile(
        h,
        "proxy.conf",
        clientConfig(bed, PROXY, 0, dnsLine),
      );
      await startAsNobody(ctx, a, h, [
        program(),
        "proxy",
        "--socks",
        `127.0.0.1:${SOCKS_PORT}`,
        "--http",
        `127.0.0.1:${HTTP_PROXY_PORT}`,
        "--auth",
        users,
        proxyConf,
      ], "HTTP proxy on");

      for (
        const [proto, port] of [
          ["tcp", A_SERVER_PORT],
          ["udp", A_ECHO_PORT],
          ["tcp", L_TCP],
          ["tcp", L_TCP_NAME],
          ["udp", L_UDP4],
          ["udp", L_UDP6],
          ["tcp", SOCKS_PORT],
          ["tcp", HTTP_PROXY_PORT],
        ] as const
      ) {
        await assertListenerUid(a, proto, port, h.uid);
      }
      for (const [name, script] of [["udp.py", UDP_CLIENT_PY], ["socks.py", SOCKS_PY]]) {
        await Deno.writeTextFile(`${dir}/${name}`, script);
      }
      const socks = (...args: string[]) =>
        ok(a, 60_000, "python3", `${dir}/socks.py`, ...args).then((s) => s.trim());
      const big = `${www}/big.bin`, small = `${www}/small.bin`;
      const viaSocks = `socks5h://${USER}:${PASSWORD}@127.0.0.1:${SOCKS_PORT}`;
      const viaHttp = `http://${USER}:${PASSWORD}@127.0.0.1:${HTTP_PROXY_PORT}`;

      await t.step("forward -L TCP to an address and to a name, byte-exact", async () => {
        await fetchExact(a, work, big, `http://127.0.0.1:${L_TCP}/big.bin`);
        await putExact(a, work, `http://127.0.0.1:${L_TCP}/upload`);
        await fetchExact(a, work, small, `http://127.0.0.1:${L_TCP_NAME}/small.bin`);
        assert.ok(
          queries(dns, FORWARD.inner4, NAME).length > 0,
          `the DNS server saw no query for ${NAME} from ${FORWARD.inner4}:\n${dns.output().stdout}`,
        );
      });

      await t.step(
        "forward -R TCP: B reaches A's loopback server, inner IPv4 and IPv6",
        async () => {
          await fetchExact(b, work, served, `http://${FORWARD.inner4}:${R_TCP}/served.bin`);
          await fetchExact(b, work, served, `http://[${FORWARD.inner6}]:${R_TCP}/served.bin`);
          await putExact(b, work, `http://${FORWARD.inner4}:${R_TCP}/upload`);
        },
      );

      await t.step("forward UDP: -L to B's echo, -R to A's, over inner IPv4 and IPv6", async () => {
        const udp = [
          [a, "127.0.0.1", L_UDP4],
          [a, "127.0.0.1", L_UDP6],
          [b, FORWARD.inner4, R_UDP],
          [b, FORWARD.inner6, R_UDP],
        ] as const;
        for (const [ns, host, port] of udp) {
          const out = await ok(
            ns,
            60_000,
            "python3",
            `${dir}/udp.py`,
            host,
            `${port}`,
            `${DATAGRAMS}`,
          );
          assert.equal(out.trim(), `echoed ${DATAGRAMS}`, `${host}:${port}`);
        }
      });

      await t.step("SOCKS5 UDP ASSOCIATE to the echo by IPv4, IPv6 and name", async () => {
        const targets = [
          `${B_INNER4}:${ECHO_PORT}`,
          `[${B_INNER6}]:${ECHO_PORT}`,
          `${NAME}:${ECHO_PORT}`,
        ];
        const out = await socks("udp", USER, PASSWORD, String(DATAGRAMS), ...targets);
        log(out.replaceAll("\n", "; "));
        const lines = out.split("\n");
        assert.deepEqual(lines.slice(0, 2), [
          `${targets[0]} from ${B_INNER4}`,
          `${targets[1]} from ${B_INNER6}`,
        ]);
        assert.match(
          lines[2] ?? "",
          new RegExp(`^${NAME}:${ECHO_PORT} from (${B_INNER4}|${B_INNER6})$`),
        );
        assert.equal(lines.length, 3, out);
      });

      await t.step(
        "DNS through the tunnel: socks5h to the name; an unknown name is 0x04",
        async () => {
          await fetchExact(a, work, big, `http://${NAME}:${HTTP_PORT}/big.bin`, "-x", viaSocks);
          assert.ok(
            queries(dns, PROXY.inner4, NAME).length > 0,
            `the DNS server saw no query for ${NAME} from ${PROXY.inner4}`,
          );
          const reply = await socks("connect", USER, PASSWORD, UNKNOWN, String(HTTP_PORT));
          assert.match(
            reply,
            /^reply 0504/,
            `CONNECT ${UNKNOWN}: ${reply}, not 05 04 (host unreachable)`,
          );
          assert.ok(
            queries(dns, PROXY.inner4, UNKNOWN).length > 0,
            `the proxy answered 0x04 for ${UNKNOWN} without asking the DNS server`,
          );
          const r = await a.execWith(
            { timeoutMs: 30_000 },
            "curl",
            "-sS",
            "--max-time",
            "25",
            "-o",
            "/dev/null",
            "-x",
            viaSocks,
            `http://${UNKNOWN}:${HTTP_PORT}/small.bin`,
          );
          assert.equal(
            r.code,
            97,
            `curl to ${UNKNOWN}: exit ${r.code}, not 97 (proxy): ${r.stderr}`,
          );
          assert.equal(await socks("connect", "-", "", B_INNER4, String(HTTP_PORT)), "method 05ff");
          assert.equal(
            await socks("connect", USER, "wrong", B_INNER4, String(HTTP_PORT)),
            "auth 0101",
          );
        },
      );

      await t.step(
        "HTTP proxy --auth: GET and CONNECT byte-exact, 407 without credentials, 502 unknown name",
        async () => {
          await fetchExact(a, work, big, `http://${B_INNER4}:${HTTP_PORT}/big.bin`, "-x", viaHttp);
          await fetchExact(a, work, small, `http://${NAME}:${HTTP_PORT}/small.bin`, "-x", viaHttp);
          await fetchExact(
            a,
            work,
            big,
            `http://[${B_INNER6}]:${HTTP_PORT}/big.bin`,
            "-p",
            "-x",
            viaHttp,
          );
          const url = `http://${B_INNER4}:${HTTP_PORT}/small.bin`;
          const noAuth = `http://127.0.0.1:${HTTP_PROXY_PORT}`;
          const wrong = `http://${USER}:wrong@127.0.0.1:${HTTP_PROXY_PORT}`;
          assert.equal(await httpStatus(a, noAuth, url), "407", "without credentials");
          assert.equal(await httpStatus(a, wrong, url), "407", "with a wrong password");
          const unknown = `http://${UNKNOWN}:${HTTP_PORT}/small.bin`;
          assert.equal(await httpStatus(a, viaHttp, unknown), "502", `GET ${unknown}`);
        },
      );
    });
  } finally {
    await removeDir(dir);
  }
}

for (const peer of ["wireguard-go", "gotatun"] as const) {
  Deno.test({
    name: "forward/proxy: gotatun forward -L/-R TCP and UDP, SOCKS5 UDP ASSOCIATE, DNS " +
      `through the tunnel, HTTP proxy with auth, all as nobody ↔ ${peer} (TUN)`,
    ignore: SKIP !== "",
    fn: (t) => forwardProxyCase(peer, t),
  });
}
