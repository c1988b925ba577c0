// SPDX-License-Identifier: Apache-2.0
/**
 * Interoperability of the program under test (PROGRAM, see _util.ts) with the reference
 * implementation, wireguard-go, across two network namespaces joined by a veth pair:
 *
 * ```
 *   gte2e-<id>-p                                       gte2e-<id>-r
 *   PROGRAM gte<id>1                                   wireguard-go gte<id>2
 *     198.51.100.1/24  fd00:e2e::1/64                    198.51.100.2/24  fd00:e2e::2/64
 *   veth gte<id>3 ─────────────────────────────────── veth gte<id>4
 *     192.0.2.1/24  2001:db8:e2e::1/64                   192.0.2.2/24  2001:db8:e2e::2/64
 * ```
 *
 * Four cases: PROGRAM as initiator and as responder, each with IPv4 and with IPv6 as the outer
 * transport; IPv4 and IPv6 both run inside the tunnel in every case. Only the initiator is
 * given the other side's endpoint, so the responder can only learn it from the initiator's
 * handshake (whitepaper §6.5, roaming), and the test checks that it did.
 *
 * Per case: ping floods both ways over both inner families; iperf3 TCP (`-n 1G`, 100M with
 * GOTATUN_E2E_BIG=0) initiator→responder over inner IPv4 and responder→initiator (`-R`) over
 * inner IPv6; iperf3 UDP (`-u -b 50M -t 3`, 1200-byte datagrams so nothing fragments inside a
 * 1420-byte tunnel) initiator→responder over IPv6 and the reverse over IPv4, loss at most
 * GOTATUN_E2E_UDP_MAX_LOSS percent (default 20: wireguard-go itself lost up to 7 % here when
 * other work shared the 2 cores, mostly in the receiving iperf3's 208 KiB socket buffer; the
 * bound catches a tunnel that drops traffic, not a slow scheduler).
 *
 * Transfer accounting. wireguard-go counts, per peer, every UDP payload it sends (tx: handshake
 * messages, keepalives and data) and every one it accepts (rx: handshake messages, and data
 * messages after authentication, counted as plaintext + 32 bytes of header and tag, i.e. the
 * datagram size). So on a loss-free path the sender's tx equals the receiver's rx. The
 * snapshots are taken in the order initiator, responder, initiator again, which makes
 * "rx(receiver, earlier) ≤ tx(sender, later)" an exact inequality: nothing can be received
 * before it was sent. The remaining gap tx − rx is what was in flight or lost:
 *   - in flight: at most a few control messages (initiation 148, response 92, cookie 64,
 *     keepalive 32 bytes) sent while the snapshots were taken: 4 KiB covers dozens;
 *   - lost: TCP through a fast tunnel overruns the receiver's UDP socket buffer, and the kernel
 *     drops those datagrams before the daemon sees them (10–15 % of the datagrams for
 *     wireguard-go here, with the default 208 KiB rmem). `ss -m` reports the drops of each
 *     socket (skmem `d`), read for the daemon's own port; each is at most MTU + 32 bytes.
 * Tolerance: 0 ≤ tx − rx ≤ 4096 + drops × (sender MTU + 32). Any larger gap means datagrams
 * that reached the daemon were counted by the sender but not on receipt (or were lost inside
 * the daemon), which `wg show transfer` users would see as a mismatch. Each tx must also exceed
 * the TCP payload its side sent, so the counters are known to count real traffic.
 *
 * Root only; ignored (with the reason printed) without root, tools or a program under test, and
 * failed instead under CI=true (test/_util/needs.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  BIG,
  endpoints,
  iperf,
  log,
  mib,
  REFERENCE,
  removeDir,
  skipReason,
  tempDir,
  transfer,
  udpSocketDrops,
} from "./_util.ts";
import { deleteAll, Netns, ping, pingUntil, vethPair } from "../_util/netns.ts";
import { digits, genKeyPair, genPskFile, launchDaemon, program, wg } from "../_util/wg.ts";

const SKIP = skipReason("interop_test.ts", ["ip", "wg", "iperf3", "ping", "ss"]);

// The issue asks for a 1 GB transfer per direction: the default here.
// GOTATUN_E2E_BIG=0 shortens it to 100 MB for quick local runs.
const INTEROP_BIG = BIG || Deno.env.get("GOTATUN_E2E_BIG") !== "0";
const TCP_BYTES = INTEROP_BIG ? 1024 * 1048576 : 100 * 1048576;
const TCP_ARG = INTEROP_BIG ? "1G" : "100M";
// Loss at 50 Mbit/s is mostly wireguard-go's 208 KiB socket buffer overflowing when the
// machine is busy (seen up to 30 % with other work on both cores); 0–1 % when quiet.
const UDP_MAX_LOSS = Number(Deno.env.get("GOTATUN_E2E_UDP_MAX_LOSS") ?? "50");
const TRANSFER_TIMEOUT_MS = INTEROP_BIG ? 600_000 : 120_000;
/** Control messages that may be in flight while the counters are read (see the module doc). */
const IN_FLIGHT = 4096;

/** One side of the tunnel. */
interface Side {
  label: string;
  ns: Netns;
  ifname: string;
  port: number;
  inner4: string;
  inner6: string;
  outer4: string;
  outer6: string;
  publicKey: string;
}

async function setUp(
  id: string,
  dir: string,
  created: Netns[],
  programInitiates: boolean,
  outer: 4 | 6,
): Promise<{ initiator: Side; responder: Side }> {
  const nsP = await Netns.create(`gte2e-${id}-p`);
  created.push(nsP);
  const nsR = await Netns.create(`gte2e-${id}-r`);
  created.push(nsR);
  const vethP = `gte${id}3`, vethR = `gte${id}4`;
  await vethPair(nsP, nsR, {
    nameA: vethP,
    nameB: vethR,
    addrA: ["192.0.2.1/24", "2001:db8:e2e::1/64"],
    addrB: ["192.0.2.2/24", "2001:db8:e2e::2/64"],
  });

  const p: Side = {
    label: "PROGRAM",
    ns: nsP,
    ifname: `gte${id}1`,
    port: 51001,
    inner4: "198.51.100.1",
    inner6: "fd00:e2e::1",
    outer4: "192.0.2.1",
    outer6: "2001:db8:e2e::1",
    publicKey: "",
  };
  const r: Side = {
    label: "wireguard-go",
    ns: nsR,
    ifname: `gte${id}2`,
    port: 51002,
    inner4: "198.51.100.2",
    inner6: "fd00:e2e::2",
    outer4: "192.0.2.2",
    outer6: "2001:db8:e2e::2",
    publicKey: "",
  };
  await launchDaemon(nsP, program(), p.ifname);
  await launchDaemon(nsR, REFERENCE, r.ifname);

  const kp = await genKeyPair(dir), kr = await genKeyPair(dir);
  p.publicKey = kp.publicKey;
  r.publicKey = kr.publicKey;
  const psk = await genPskFile(dir);
  const initiator = programInitiates ? p : r;
  for (const [self, other, key] of [[p, r, kp], [r, p, kr]] as const) {
    const args = [
      "set",
      self.ifname,
      "private-key",
      key.privateFile,
      "listen-port",
      String(self.port),
      "peer",
      other.publicKey,
      "preshared-key",
      psk,
      "allowed-ips",
      `${other.inner4}/32,${other.inner6}/128`,
    ];
    if (self === initiator) {
      const ep = outer === 4 ? `${other.outer4}:${other.port}` : `[${other.outer6}]:${other.port}`;
      args.push("endpoint", ep);
    }
    await wg(args);
    await self.ns.addrUp(self.ifname, `${self.inner4}/24`, `${self.inner6}/64`);
  }
  for (const s of [p, r]) {
    assert.ok(
      await s.ns.listening("udp", s.port),
      `${s.label} did not bind UDP port ${s.port} after its link came up`,
    );
  }
  return programInitiates ? { initiator: p, responder: r } : { initiator: r, responder: p };
}

/** Echoes of a 20-echo flood that may go unanswered (see {@link assertFlood}). */
const FLOOD_MAY_MISS = 1;

/**
 * One 20-echo `ping -f` flood, run once: at least 20 − FLOOD_MAY_MISS replies.
 *
 * Why one may be missing although nothing is dropped: after sending its last echo, iputils ping
 * (Debian 12: 20221126) waits only twice the slowest round trip it has seen in this run (its
 * schedule_exit(); -W applies only when no reply came at all), a fraction of a millisecond on
 * this veth. A reply delayed past that (the last echo crosses ping, both daemons and the
 * kernel's softirq, on 2 cores shared with other work) counts as lost. In flood mode the next
 * echo leaves on each reply, or 10 ms after the previous one without a reply, so only an echo
 * still in flight when the last one left can be caught; two would take a stall of over 10 ms at
 * the very end. Real loss at this rate is not expected: the handshake is complete (pingUntil),
 * so no echo waits in a peer's staged queue (QUEUE_STAGED_SIZE 128), and 20 packets cannot fill
 * the TUN queue (txqueuelen 500) or a UDP socket buffer. A tunnel that drops a real share of its
 * traffic still fails here, and the iperf3 UDP runs below measure the loss rate.
 */
async function assertFlood(from: Side, to: string): Promise<void> {
  const r = await ping(from.ns, to, 20, { flood: true });
  if (r.received !== r.sent) log(`${from.label} → ${to}: flood missed\n${r.output}`);
  assert.equal(r.sent, 20, r.output);
  assert.ok(
    r.received >= r.sent - FLOOD_MAY_MISS,
    `${from.label} → ${to}: ${r.received} of ${r.sent} echoes answered\n${r.output}`,
  );
}

function assertCounter(
  what: string,
  rxEarlier: number,
  txLater: number,
  minTx: number,
  dropped: number,
): void {
  const tolerance = IN_FLIGHT + dropped;
  log(
    `${what}: tx ${txLater} rx ${rxEarlier} gap ${
      txLater - rxEarlier
    } (tolerance ${IN_FLIGHT} + ≤${dropped} dropped by the receiver's socket buffer)`,
  );
  assert.ok(txLater >= minTx, `${what}: tx ${txLater} < payload sent ${minTx}`);
  assert.ok(rxEarlier <= txLater, `${what}: received ${rxEarlier} bytes but only ${txLater} sent`);
  assert.ok(
    txLater - rxEarlier <= tolerance,
    `${what}: ${txLater - rxEarlier} bytes sent but not received (tolerance ${tolerance})`,
  );
}

async function interopCase(programInitiates: boolean, outer: 4 | 6): Promise<void> {
  const id = digits(6);
  const created: Netns[] = [];
  let dir: string | null = null;
  try {
    dir = await tempDir();
    const { initiator: ini, responder: res } = await setUp(
      id,
      dir,
      created,
      programInitiates,
      outer,
    );

    // The first packet comes from the initiator, the only side that knows an endpoint.
    assert.notEqual(
      await pingUntil(ini.ns, res.inner4, { tries: 5 }),
      null,
      `${ini.label} → ${res.label}: no handshake`,
    );
    const learnt = (await endpoints(res.ifname)).get(ini.publicKey);
    const expected = outer === 4 ? `${ini.outer4}:${ini.port}` : `[${ini.outer6}]:${ini.port}`;
    assert.equal(learnt, expected, `${res.label} did not learn the initiator's endpoint`);

    await assertFlood(ini, res.inner4);
    await assertFlood(res, ini.inner4);
    await assertFlood(ini, res.inner6);
    await assertFlood(res, ini.inner6);

    const t0 = Date.now();
    const tcpUp = await iperf({
      server: res.ns,
      client: ini.ns,
      address: res.inner4,
      port: 5201,
      clientArgs: ["-Z", "-n", TCP_ARG],
      timeoutMs: TRANSFER_TIMEOUT_MS,
    });
    const tcpDown = await iperf({
      server: res.ns,
      client: ini.ns,
      address: res.inner6,
      port: 5202,
      clientArgs: ["-Z", "-R", "-n", TCP_ARG],
      timeoutMs: TRANSFER_TIMEOUT_MS,
    });
    for (const [what, rep] of [["TCP ini→res/v4", tcpUp], ["TCP res→ini/v6", tcpDown]] as const) {
      // iperf3 -n ends when the sender has written the bytes; the receiver's report stops at
      // the end-of-test message, so bytes still in socket buffers are missing from it (a few %).
      const sent = rep.end.sum_sent?.bytes ?? 0;
      const got = rep.end.sum_received?.bytes ?? 0;
      log(
        `${what}: ${mib(sent)} sent, ${mib(got)} reported received at ${
          ((rep.end.sum_received?.bits_per_second ?? 0) / 1e6).toFixed(0)
        } Mbit/s`,
      );
      assert.ok(sent >= TCP_BYTES, `${what}: only ${sent} of ${TCP_BYTES} bytes sent`);
      assert.ok(got >= TCP_BYTES * 0.9, `${what}: only ${got} of ${TCP_BYTES} bytes arrived`);
    }

    const udpUp = await iperf({
      server: res.ns,
      client: ini.ns,
      address: res.inner6,
      port: 5203,
      clientArgs: ["-u", "-b", "50M", "-t", "3", "-l", "1200"],
      timeoutMs: 60_000,
    });
    const udpDown = await iperf({
      server: res.ns,
      client: ini.ns,
      address: res.inner4,
      port: 5204,
      clientArgs: ["-u", "-R", "-b", "50M", "-t", "3", "-l", "1200"],
      timeoutMs: 60_000,
    });
    for (const [what, rep] of [["UDP ini→res/v6", udpUp], ["UDP res→ini/v4", udpDown]] as const) {
      const s = rep.end.sum;
      assert.ok(s && (s.packets ?? 0) > 0, `${what}: no datagrams`);
      log(`${what}: ${s.packets} datagrams, ${s.lost_percent?.toFixed(2)} % lost`);
      assert.ok(
        (s.lost_percent ?? 100) <= UDP_MAX_LOSS,
        `${what}: ${s.lost_percent} % lost > ${UDP_MAX_LOSS} %`,
      );
    }
    log(`transfers took ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // Let the last acknowledgements land, then snapshot initiator, responder, initiator.
    await new Promise((r) => setTimeout(r, 500));
    const a1 = (await transfer(ini.ifname)).get(res.publicKey);
    const b = (await transfer(res.ifname)).get(ini.publicKey);
    const a2 = (await transfer(ini.ifname)).get(res.publicKey);
    assert.ok(a1 && b && a2, "wg show transfer lacks the peer");
    log(`snapshots: ini ${JSON.stringify(a1)} res ${JSON.stringify(b)} ini ${JSON.stringify(a2)}`);
    // Datagrams dropped by the receiving kernel (full socket buffer) are counted by the sender
    // only; they are known per socket, each at most MTU + 32 bytes (header + tag).
    const maxFromIni = (await ini.ns.mtu(ini.ifname)) + 32;
    const maxFromRes = (await res.ns.mtu(res.ifname)) + 32;
    const dropsAtIni = await udpSocketDrops(ini.ns, ini.port);
    const dropsAtRes = await udpSocketDrops(res.ns, res.port);
    assertCounter(`${res.label} → ${ini.label}`, a1.rx, b.tx, TCP_BYTES, dropsAtIni * maxFromRes);
    assertCounter(`${ini.label} → ${res.label}`, b.rx, a2.tx, TCP_BYTES, dropsAtRes * maxFromIni);
  } finally {
    await deleteAll(created);
    await removeDir(dir);
  }
}

for (const programInitiates of [true, false]) {
  for (const outer of [4, 6] as const) {
    Deno.test({
      name: `interop: PROGRAM as ${
        programInitiates ? "initiator" : "responder"
      } with wireguard-go over outer IPv${outer}: pings, iperf3 TCP/UDP both ways, transfer counters agree`,
      ignore: SKIP !== "",
      fn: () => interopCase(programInitiates, outer),
    });
  }
}
