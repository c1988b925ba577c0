// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The `proxy` group of the network benchmark (net.ts): `gotatun proxy` (a
 * SOCKS5 server in front of an in-process Tunnel: userspace TCP/IP on Deno
 * UDP sockets, no TUN) next to kernel TCP through the tunnel's TUN daemons,
 * in the same bed and the same run:
 *
 * ```
 *  ns A                                                  ns B
 *  daemon <if>a 10.241.0.1 (TUN) ─┐                 ┌─ daemon <if>b 10.241.0.2 (TUN), UDP 51820
 *  gotatun proxy 10.241.0.3 ──────┴─ veth 192.168 ──┴─   (a second peer: 10.241.0.3/32)
 *    SOCKS5 127.0.0.1:1080, UDP 51850                    _proxy_tool.ts serve 0.0.0.0:8080
 *  _proxy_tool.ts clients: --socks 127.0.0.1:1080 (proxy) or none (kernel TCP via <if>a)
 * ```
 *
 * The proxy is always gotatun's (the `gotatun` implementation's program);
 * the column is the implementation of the daemons, so in the gotatun column
 * both paths are gotatun's (proxy vs TUN mode) and in the wireguard-go column
 * the proxy talks to a wireguard-go peer. Measured by _proxy_tool.ts, for
 * both paths: download and upload with 1 and 8 connections (Mbit/s, over
 * iperf3's TCP duration after a 1 s warm-up), connections per second (8
 * workers: connect, one small request, close), the latency of a small
 * request on a kept-alive connection (p50/p99 over the ping count), and for
 * the proxy the resident memory each idle connection costs (1000 connections
 * open, each having answered one request: VmRSS delta / 1000, 2 s after the
 * last opened). Then 2 % random loss each way (nftables `numgen random mod
 * 100 < 2 drop` on B's WireGuard port, in B) and the downloads again.
 */
import { nsRun } from "./_metrics.ts";
import { memory, newKeyPair, PORT_MAIN, TUN_B, type Tunnel, VETH_B, wg } from "./_env.ts";
import type { Background } from "../_util/proc.ts";
import { sleep, waitFor } from "../_util/proc.ts";

/** The proxy's tunnel address (a second peer of B's daemon) and its UDP port in A. */
export const PROXY_TUN = "10.241.0.3";
export const PROXY_UDP_PORT = 51850;
const SOCKS = "127.0.0.1:1080";
const HTTP_PORT = 8080;
const TOOL = new URL("./_proxy_tool.ts", import.meta.url).pathname;
export const IDLE_CONNECTIONS = 1000;
export const LOSS_PERCENT = 2;

/** The proxy and the server of one tunnel. */
export interface ProxyBed {
  proxy: Background;
  server: Background;
  /** The proxy's PID (the process listening on the SOCKS port). */
  proxyPid: number;
}

/** What {@link proxyRun} measured; NaN where a measurement failed (noted). */
export interface ProxyFigures {
  [metric: string]: number;
}

/** startProxy() adds the proxy's peer to B's daemon and starts the server in B and the proxy in A. */
export async function startProxy(t: Tunnel, program: string, dir: string): Promise<ProxyBed> {
  const k = newKeyPair();
  const conf = `${dir}/${t.stem}-proxy.conf`;
  await Deno.writeTextFile(
    conf,
    [
      "[Interface]",
      `PrivateKey = ${k.privateB64}`,
      `Address = ${PROXY_TUN}/32`,
      `ListenPort = ${PROXY_UDP_PORT}`,
      "MTU = 1420",
      "[Peer]",
      `PublicKey = ${t.pubB}`,
      `AllowedIPs = ${TUN_B}/32`,
      `Endpoint = ${VETH_B}:${PORT_MAIN}`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  await wg(["set", t.db.ifname, "peer", k.publicB64, "allowed-ips", `${PROXY_TUN}/32`]);
  // Both are reaped when their namespace goes (Netns.delete kills what lives in it).
  const server = t.b.spawn(
    { output: "piped" },
    Deno.execPath(),
    "run",
    "-A",
    TOOL,
    "serve",
    "--port",
    String(HTTP_PORT),
  );
  if (!(await t.b.listening("tcp", HTTP_PORT, 30_000))) {
    const o = server.output();
    throw new Error(`the benchmark's HTTP server did not start: ${o.stderr}`);
  }
  const proxy = t.a.spawn(
    { output: "piped", env: { LOG_LEVEL: "error" } },
    program,
    "proxy",
    "--socks",
    SOCKS,
    conf,
  );
  let exited = false;
  proxy.status.then(() => (exited = true));
  const up = await waitFor(
    () => exited || proxy.output().stdout.includes("SOCKS5 proxy on"),
    30_000,
    100,
  );
  if (!up || exited) {
    const o = proxy.output();
    throw new Error(`${program} proxy did not start: ${o.stdout}${o.stderr}`);
  }
  const ss = await nsRun(t.a, ["ss", "-Htlnp", "sport = :1080"], 10_000);
  const proxyPid = Number(/pid=(\d+)/.exec(ss.stdout)?.[1]);
  if (!(proxyPid > 0)) throw new Error(`no process listens on ${SOCKS}: ${ss.stdout}`);
  return { proxy, server, proxyPid };
}

/** Runs a _proxy_tool.ts client in A; its JSON answer. */
async function client(
  t: Tunnel,
  viaProxy: boolean,
  args: readonly string[],
  timeoutMs: number,
): Promise<Record<string, number>> {
  const argv = [Deno.execPath(), "run", "-A", TOOL, ...args, "--target", `${TUN_B}:${HTTP_PORT}`];
  if (viaProxy) argv.push("--socks", SOCKS);
  const r = await nsRun(t.a, argv, timeoutMs);
  const last = r.stdout.trim().split("\n").pop() ?? "";
  if (r.code !== 0 || r.timedOut || !last.startsWith("{")) {
    throw new Error(
      `${args[0]} ${viaProxy ? "via proxy" : "via TUN"}: exit ${r.code}${
        r.timedOut ? " (timed out)" : ""
      }: ${r.stderr.trim().slice(-300)}`,
    );
  }
  return JSON.parse(last);
}

/** The idle-connection memory: VmRSS delta of the proxy per idle connection, bytes. */
async function idleBytes(t: Tunnel, bed: ProxyBed): Promise<number> {
  const before = memory(bed.proxyPid).rss;
  const holder = t.a.spawn(
    { output: "piped" },
    Deno.execPath(),
    "run",
    "-A",
    TOOL,
    "idle",
    "--count",
    String(IDLE_CONNECTIONS),
    "--hold",
    "120",
    "--target",
    `${TUN_B}:${HTTP_PORT}`,
    "--socks",
    SOCKS,
  );
  try {
    let exited = false;
    holder.status.then(() => (exited = true));
    const ready = await waitFor(
      () => exited || holder.output().stdout.includes('"ready"'),
      90_000,
      100,
    );
    if (!ready || exited) {
      throw new Error(`idle connections did not open: ${holder.output().stderr.slice(-300)}`);
    }
    await sleep(2000);
    const after = memory(bed.proxyPid).rss;
    return (after - before) * 1024 / IDLE_CONNECTIONS;
  } finally {
    await holder.kill();
  }
}

async function setLoss(t: Tunnel, on: boolean): Promise<void> {
  const rule = `numgen random mod 100 < ${LOSS_PERCENT} drop`;
  const script = on
    ? [
      "add table inet gtbench_loss",
      "add chain inet gtbench_loss in { type filter hook input priority 0; }",
      "add chain inet gtbench_loss out { type filter hook output priority 0; }",
      `add rule inet gtbench_loss in udp dport ${PORT_MAIN} ${rule}`,
      `add rule inet gtbench_loss out udp sport ${PORT_MAIN} ${rule}`,
    ].join("\n") + "\n"
    : "delete table inet gtbench_loss\n";
  const r = await t.b.execWith({ stdin: script, timeoutMs: 10_000 }, "nft", "-f", "-");
  if (r.code !== 0) throw new Error(`nft: ${r.stderr.trim()}`);
}

/**
 * proxyRun() measures both paths on tunnel `t` with its proxy `bed`;
 * `seconds` per throughput and rate test, `pings` requests for the latency.
 * A failed measurement is NaN and its error goes to `note`.
 */
export async function proxyRun(
  t: Tunnel,
  bed: ProxyBed,
  seconds: number,
  pings: number,
  note: (line: string) => void,
): Promise<ProxyFigures> {
  const out: ProxyFigures = {};
  const timeout = (seconds + 30) * 1000;
  const attempt = async (id: string, fn: () => Promise<number>) => {
    try {
      out[id] = await fn();
    } catch (e) {
      out[id] = NaN;
      note(`${id}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const paths: [string, boolean][] = [["proxy", true], ["tun", false]];
  for (const [p, via] of paths) {
    for (const conns of [1, 8]) {
      await attempt(
        `${p}_dl${conns}`,
        async () =>
          (await client(t, via, [
            "download",
            "--conns",
            String(conns),
            "--seconds",
            String(seconds),
          ], timeout)).mbps,
      );
      await attempt(
        `${p}_ul${conns}`,
        async () =>
          (await client(
            t,
            via,
            ["upload", "--conns", String(conns), "--seconds", String(seconds)],
            timeout,
          )).mbps,
      );
    }
    await attempt(
      `${p}_cps`,
      async () =>
        (await client(t, via, ["rate", "--conns", "8", "--seconds", String(seconds)], timeout))
          .perSecond,
    );
    await attempt(`${p}_lat_p50`, async () => {
      const r = await client(t, via, ["latency", "--count", String(pings)], timeout + pings * 50);
      out[`${p}_lat_p99`] = r.p99;
      return r.p50;
    });
  }
  await attempt("proxy_idle_bytes", () => idleBytes(t, bed));
  await setLoss(t, true);
  try {
    for (const [p, via] of paths) {
      for (const conns of [1, 8]) {
        await attempt(
          `${p}_dl${conns}_loss`,
          async () =>
            (await client(t, via, [
              "download",
              "--conns",
              String(conns),
              "--seconds",
              String(seconds),
            ], timeout)).mbps,
        );
      }
    }
  } finally {
    await setLoss(t, false);
  }
  return out;
}
