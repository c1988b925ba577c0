// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Throughput of two {@link Tunnel}s on loopback UDP (Deno's sockets, the
 * default DenoUdpBind), each in its own process, as `gotatun proxy` runs:
 *
 * ```
 * deno run -A --unstable-net test/tunnel/throughput.ts [--seconds 5] [--conns 1]
 *                                                      [--dir up|down] [--stats] [--bind deno]
 * ```
 *
 * The measuring process is tunnel A (10.77.0.1, the one whose stack sends
 * with `--dir up`); it starts tunnel B (10.77.0.2, a sink or a source on TCP
 * port 5001) as a child process. `--conns` connections move data for
 * `--seconds` after a 1 s warm-up; A prints Mbit/s and its user+sys CPU
 * time per MB; `--stats` adds the stack's and device's counters; `--bind
 * deno` uses DenoUdpBind on both ends. Profile with `deno run --cpu-prof`.
 * No root, loopback only.
 */
import process from "node:process";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { systemRng } from "../../src/clock.ts";
import { keyToBase64 } from "../../src/keys.ts";
import { Tunnel } from "../../src/tunnel/tunnel.ts";
import { DenoUdpBind } from "../../src/conn/deno_udp.ts";
import { useBestCryptoBackend } from "../../src/crypto/select.ts";
import type { TunnelConn } from "../../src/tunnel/conn.ts";

const PORT = 5001;

function say(line: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
}

function conf(own: Uint8Array, peer: Uint8Array, addr: string, listen: number, to: number) {
  return `[Interface]
PrivateKey = ${keyToBase64(own)}
Address = ${addr}/32
ListenPort = ${listen}
[Peer]
PublicKey = ${keyToBase64(publicKey(peer))}
AllowedIPs = 10.77.0.0/24
Endpoint = 127.0.0.1:${to}
`;
}

function flag(name: string, def: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : def;
}

/** `--bind deno` (either process): Deno's sockets instead of the default (FFI when allowed). */
function bindOpt() {
  return Deno.args.includes("deno") ? { bind: new DenoUdpBind() } : {};
}

const block = new Uint8Array(64 * 1024);
crypto.getRandomValues(block);

async function sink(c: TunnelConn, count: (n: number) => void): Promise<void> {
  try {
    for await (const chunk of c.readable) count(chunk.length);
  } catch {
    // ended
  }
}

async function source(c: TunnelConn, stop: () => boolean): Promise<void> {
  const w = c.writable.getWriter();
  try {
    while (!stop()) await w.write(block);
  } catch {
    // ended
  }
  c.close();
}

/** Tunnel B: serves connections as a sink (up) or a source (down) until stdin closes. */
async function peer(dir: string, keyA: string, keyB: string, portA: number, portB: number) {
  const ka = Uint8Array.from(atob(keyA), (c) => c.charCodeAt(0));
  const kb = Uint8Array.from(atob(keyB), (c) => c.charCodeAt(0));
  const t = await Tunnel.fromConfig(conf(kb, ka, "10.77.0.2", portB, portA), bindOpt());
  const l = t.listen({ port: PORT });
  let stop = false;
  (async () => {
    for await (const _ of Deno.stdin.readable) { /* until closed */ }
    stop = true;
    l.close();
    t.close();
    Deno.exit(0);
  })();
  say("ready");
  for await (const c of l) {
    if (dir === "up") sink(c, () => {});
    else source(c, () => stop);
  }
}

async function main(): Promise<void> {
  // As gotatun proxy does (cli/tunnel_cli.ts): libcrypto when it loads.
  useBestCryptoBackend(Deno.env.get("GOTATUN_CRYPTO"));
  if (Deno.args[0] === "peer") {
    const [, dir, ka, kb, pa, pb] = Deno.args;
    return await peer(dir, ka, kb, Number(pa), Number(pb));
  }
  const seconds = Number(flag("seconds", "5"));
  const conns = Number(flag("conns", "1"));
  const dir = flag("dir", "up");
  const ka = generatePrivateKey(systemRng), kb = generatePrivateKey(systemRng);
  const portA = 40000 + Math.floor(Math.random() * 10000), portB = portA + 1;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-net",
      new URL(import.meta.url).pathname,
      "peer",
      dir,
      keyToBase64(ka),
      keyToBase64(kb),
      String(portA),
      String(portB),
      ...(flag("bind", "") === "deno" ? ["deno"] : []),
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const out = child.stdout.getReader();
  const first = await out.read();
  if (!new TextDecoder().decode(first.value).includes("ready")) throw new Error("peer failed");
  const t = await Tunnel.fromConfig(conf(ka, kb, "10.77.0.1", portA, portB), bindOpt());
  let bytes = 0, stop = false;
  const cs = await Promise.all(
    Array.from({ length: conns }, () => t.connect({ hostname: "10.77.0.2", port: PORT })),
  );
  // Upload is counted as what the peer acknowledged: sndUna moves are not visible here,
  // so count written bytes; the sink's buffers (~1 MiB per connection) are small against D s.
  const runs = cs.map((c) =>
    dir === "up"
      ? (async () => {
        const w = c.writable.getWriter();
        try {
          while (!stop) {
            await w.write(block);
            bytes += block.length;
          }
        } catch {
          // ended
        }
      })()
      : sink(c, (n) => bytes += n)
  );
  await new Promise((r) => setTimeout(r, 1000));
  const b0 = bytes, t0 = performance.now(), u0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const b1 = bytes, t1 = performance.now(), u1 = process.cpuUsage();
  stop = true;
  const mbps = (b1 - b0) * 8 / ((t1 - t0) / 1000) / 1e6;
  const cpu = (u1.user - u0.user + u1.system - u0.system) / 1000;
  say(JSON.stringify({
    dir,
    conns,
    mbps: Math.round(mbps),
    cpuMsPerMB: +(cpu / ((b1 - b0) / 1e6)).toFixed(2),
    cpuPercent: Math.round(cpu / (t1 - t0) * 100),
  }));
  if (Deno.args.includes("--stats")) {
    const st = t.stack.stats;
    say(JSON.stringify({
      ipIn: st.ipIn,
      ipOut: st.ipOut,
      retransmits: st.tcpRetransmits,
      fast: st.tcpFastRetransmits,
      rto: st.tcpRtoExpired,
      sackRecoveries: st.tcpSackRecoveries,
      ooo: st.tcpOutOfOrderDropped,
      device: t.device.stats,
    }));
  }
  for (const c of cs) c.close();
  await Promise.allSettled(runs);
  t.close();
  await child.stdin.close();
  await child.status;
}

if (import.meta.main) await main();
