// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Faults the tunnel survives with no operator action (issue "hardening",
 * item 3). Root part: two gotatun daemons (foreground, so we hold their PIDs)
 * in namespaces `gthard-<hex>` joined by a veth pair,
 *
 * ```
 *   A  gth<id>a 10.96.0.1 ─ veth fa 10.95.0.1 / fd95::1 ══ fb 10.95.0.2 / fd95::2 ─ gth<id>b 10.96.0.2  B
 * ```
 *
 * both with the other's endpoint configured, and one fault after another;
 * after each, traffic must flow again both ways, and the time it took is
 * logged:
 *
 * - B is killed (SIGKILL) and restarted with the same configuration: A still
 *   holds the old session, B knows nothing of it and drops A's packets; A's
 *   "new handshake" timer (data sent, nothing authenticated back for
 *   KEEPALIVE_TIMEOUT + REKEY_TIMEOUT = 15 s) starts a handshake that the new
 *   B accepts. Then A is restarted (SIGTERM): it initiates at once.
 * - A's outer address is deleted (sendmsg: ENETUNREACH), then an unreachable
 *   route covers B (EHOSTUNREACH), then every address of A's veth is flushed
 *   (IPv4 and IPv6), each for 2 s with pings failing, then restored.
 * - A's TUN goes down and up (`ip link set`): the device closes its sockets
 *   and wipes its sessions, then binds again and re-handshakes on traffic.
 * - A is stopped (SIGSTOP) for 2 s under a 300 Mbit/s UDP stream from B, which
 *   fills its socket's receive buffer (the namespace's UDP RcvbufErrors grow),
 *   then continued: it resumes.
 * - A is stopped for 17 s while B pings: B's new-handshake timer fires and
 *   its initiations wait in A's socket; continued, A answers and the tunnel
 *   works at once.
 *
 * Without root: wall-clock jumps with a FakeClock. Timers run on the monotonic
 * clock, so a jump changes none of them; the TAI64N timestamp of initiations
 * is wall time, so after the initiator's wall clock goes back (or comes back
 * from a jump into the future), the responder rejects its initiations as
 * replays until the wall clock passes the last timestamp it accepted. The
 * kernel (`wg_noise_handshake_consume_initiation`: `memcmp(t, handshake->
 * latest_timestamp) <= 0` is a replay) and wireguard-go (`ConsumeMessage
 * Initiation`: `!timestamp.After(handshake.lastTimestamp)`) behave the same.
 * The tunnel recovers when the *other* side initiates (its own clock is fine),
 * or when the responder restarts (the last timestamp is kept in memory only).
 */
import assert from "node:assert/strict";
import { devicePair } from "../_util/device_pair.ts";
import { ipv4Packet, payload } from "../_util/packets.ts";
import type { FakeClock } from "../_util/fake_clock.ts";
import {
  type NamespaceContext,
  type Netns,
  ping,
  pingUntil,
  vethPair,
  withNamespaces,
} from "../_util/netns.ts";
import { REKEY_AFTER_TIME, REKEY_TIMEOUT } from "../../src/constants.ts";
import { log, procStats, skipReason, sleep, udpCounters, waitFor } from "./_net.ts";
import { type Daemon, digits, genKeyPair, type KeyPair, startDaemon, wg } from "../_util/wg.ts";

// ---- without root: wall-clock jumps ----

function settle(clock: FakeClock): void {
  for (let i = 0; i < 50; i++) clock.advance(0);
}

/** Advances `ms` in 100 ms steps, settling after each. */
function advance(clock: FakeClock, ms: number): void {
  for (let t = 0; t < ms; t += 100) {
    clock.advance(Math.min(100, ms - t));
    settle(clock);
  }
}

/** Sends one packet A → B and reports whether B's TUN got it. */
function delivered(p: ReturnType<typeof devicePair>, n: number): boolean {
  p.b.tun.take();
  p.a.device.handleTunPacket(ipv4Packet("10.0.0.1", "10.0.0.2", payload(40, n)));
  p.a.device.flush();
  settle(p.clock);
  return p.b.tun.take().length === 1;
}

/** Makes A start a new handshake now (as a rekey would). */
function newHandshakeFromA(p: ReturnType<typeof devicePair>): void {
  p.a.peer.expireCurrentKeypairs();
  p.a.peer.sendHandshakeInitiation(false);
  p.a.device.flush();
  settle(p.clock);
}

Deno.test("wall-clock jumps: timers ignore them; a forward jump then a correction blocks initiations", () => {
  const p = devicePair();
  assert.ok(delivered(p, 1), "first handshake");
  const kp = p.a.peer.keypairs.current;
  const wall0 = p.clock.wall();

  // A jump of a day forward changes no timer: the session stays, no rekey starts.
  p.clock.setWall(wall0 + 86_400_000);
  advance(p.clock, 10_000);
  assert.ok(delivered(p, 2));
  assert.equal(p.a.peer.keypairs.current, kp, "no rekey from a wall jump");
  // UAPI's last handshake time is wall time, so it shows the jump (cosmetic).
  assert.ok(p.a.peer.lastHandshakeTime().sec < p.clock.wall() / 1000 - 80_000);

  // A handshake in the "future" is accepted (its timestamp is newer)…
  newHandshakeFromA(p);
  assert.ok(delivered(p, 3), "handshake during the forward jump");
  const rejected = p.b.device.stats.handshakeRejected;
  // …then the clock is corrected: B now holds a timestamp a day ahead of A's.
  p.clock.setWall(wall0 + 20_000);
  newHandshakeFromA(p);
  assert.ok(!delivered(p, 4), "an initiation older than the last accepted is a replay");
  advance(p.clock, 3 * (REKEY_TIMEOUT + 400));
  assert.ok(p.b.device.stats.handshakeRejected - rejected >= 3, "every retry was rejected");
  assert.ok(!delivered(p, 5));

  // B initiates instead (its clock is fine, and A has no newer timestamp from B): recovered.
  p.b.peer.expireCurrentKeypairs();
  p.b.peer.sendHandshakeInitiation(false);
  p.b.device.flush();
  settle(p.clock);
  advance(p.clock, 1000);
  assert.ok(p.b.peer.keypairs.current, "B's handshake completed");
  p.b.device.handleTunPacket(ipv4Packet("10.0.0.2", "10.0.0.1", payload(40, 6)));
  p.b.device.flush();
  settle(p.clock);
  assert.equal(p.a.tun.take().length, 1);
  assert.ok(delivered(p, 7), "A → B works again over B's session");
});

Deno.test("wall-clock jumps: a backward jump blocks the initiator until wall time catches up", () => {
  const p = devicePair();
  assert.ok(delivered(p, 1));
  const wall0 = p.clock.wall();
  p.clock.setWall(wall0 - 60_000);
  newHandshakeFromA(p);
  assert.ok(!delivered(p, 2), "replay: older than the last accepted initiation");
  // Sixty seconds of monotonic time later, wall time is past the old timestamp again.
  advance(p.clock, 61_000);
  newHandshakeFromA(p);
  assert.ok(delivered(p, 3), "accepted once wall time passed the last timestamp");
  // And nothing time-based misfired: the session is fresh, far from REKEY_AFTER_TIME.
  assert.ok(p.clock.now() - p.a.peer.keypairs.current!.created < REKEY_AFTER_TIME);
});

// ---- root: the daemons ----

const SKIP = skipReason("faults_test.ts", ["ip", "wg", "ping", "iperf3", "ss", "cat"]);

/** One side of the pair and how to configure it "as before". */
interface Side {
  ns: Netns;
  ifname: string;
  keys: KeyPair;
  port: number;
  tunnel: string;
  outer: string;
  daemon: Daemon;
}

async function configure(self: Side, other: Side): Promise<void> {
  // deno-fmt-ignore
  await wg(["set", self.ifname, "private-key", self.keys.privateFile, "listen-port", String(self.port),
    "peer", other.keys.publicKey, "allowed-ips", `${other.tunnel}/32`,
    "endpoint", `${other.outer}:${other.port}`]);
  await self.ns.ip("addr", "replace", `${self.tunnel}/24`, "dev", self.ifname);
  await self.ns.ip("link", "set", self.ifname, "up");
}

/** Starts (or restarts) a side's daemon and configures it as before. */
async function start(ctx: NamespaceContext, self: Side, other: Side): Promise<void> {
  self.daemon = await startDaemon(ctx, self.ns, self.ifname);
  await configure(self, other);
}

function alive(d: Daemon): boolean {
  return procStats(d.pid) !== null;
}

/** Both directions work within `ms`; returns the time A → B took. */
async function assertTunnel(a: Side, b: Side, ms: number, what: string): Promise<number> {
  const t = await pingUntil(a.ns, b.tunnel, { timeoutMs: ms });
  assert.notEqual(
    t,
    null,
    `${what}: A → B did not recover in ${ms} ms\n${a.daemon.output().slice(-3000)}`,
  );
  const back = await pingUntil(b.ns, a.tunnel, { timeoutMs: 5000 });
  assert.notEqual(back, null, `${what}: B → A did not recover`);
  log(`${what}: recovered in ${((t ?? 0) / 1000).toFixed(1)} s`);
  return t!;
}

async function sigstop(d: Daemon, ms: number): Promise<void> {
  Deno.kill(d.pid, "SIGSTOP");
  try {
    await sleep(ms);
  } finally {
    Deno.kill(d.pid, "SIGCONT");
  }
}

Deno.test({
  name:
    "faults: restarts, vanishing routes and addresses, TUN down/up, SIGSTOP; no operator action",
  ignore: SKIP !== "",
  async fn(t) {
    await withNamespaces("gthard", 2, async (ctx) => {
      const [na, nb] = ctx.namespaces;
      const dir = await Deno.makeTempDir({ prefix: "gthard-" });
      ctx.defer(() => Deno.remove(dir, { recursive: true }));
      await vethPair(na, nb, {
        nameA: "fa",
        nameB: "fb",
        addrA: ["10.95.0.1/24", "fd95::1/64"],
        addrB: ["10.95.0.2/24", "fd95::2/64"],
      });
      const id = digits();
      const a = {
        ns: na,
        ifname: `gth${id}a`,
        keys: await genKeyPair(dir),
        port: 52001,
        tunnel: "10.96.0.1",
        outer: "10.95.0.1",
      } as Side;
      const b = {
        ns: nb,
        ifname: `gth${id}b`,
        keys: await genKeyPair(dir),
        port: 52002,
        tunnel: "10.96.0.2",
        outer: "10.95.0.2",
      } as Side;
      await start(ctx, a, b);
      await start(ctx, b, a);
      await assertTunnel(a, b, 10_000, "first handshake");

      await t.step(
        "B killed and restarted with the same config: A re-handshakes by itself",
        async () => {
          await b.daemon.proc.kill("SIGKILL", 1000);
          await waitFor(async () => !(await nb.hasLink(b.ifname)), 5000);
          await start(ctx, b, a);
          // Only A sends: B, new, cannot decrypt A's packets and stays silent.
          const took = await assertTunnel(a, b, 35_000, "responder restart");
          assert.ok(took >= 5000, "A's old session cannot have worked with the new B");
        },
      );

      await t.step("A restarted (SIGTERM) with the same config: it initiates at once", async () => {
        await a.daemon.proc.kill("SIGTERM", 3000);
        await waitFor(async () => !(await na.hasLink(a.ifname)), 5000);
        await start(ctx, a, b);
        await assertTunnel(a, b, 10_000, "initiator restart");
      });

      await t.step("endpoint unreachable (ENETUNREACH, then EHOSTUNREACH) and back", async () => {
        // No address: no route to B (ENETUNREACH). The bind also forgets its
        // sticky source, which it can no longer use.
        await na.ip("addr", "del", "10.95.0.1/24", "dev", "fa");
        let r = await ping(na, b.tunnel, 5, { intervalS: 0.4, waitS: 1 });
        assert.equal(r.received, 0, "no route, yet a reply");
        assert.ok(alive(a.daemon), "A died on ENETUNREACH");
        // The address comes back, but an unreachable route now covers B
        // (EHOSTUNREACH). While A has a sticky source with its interface
        // index (learnt from B's packets), the kernel ignores such a route:
        // a FIB lookup that fails with an output interface given "assumes
        // the destination is on link" (ip_route_output_key_hash_rcu), for
        // wireguard-go as for us. So only A's own sends are checked here.
        await na.ip("route", "add", "unreachable", "10.95.0.2/32");
        try {
          await na.ip("addr", "add", "10.95.0.1/24", "dev", "fa");
          r = await ping(na, b.tunnel, 5, { intervalS: 0.4, waitS: 1 });
          log(`EHOSTUNREACH window: ${r.received}/${r.sent} pings answered`);
          assert.ok(alive(a.daemon), "A died on EHOSTUNREACH");
        } finally {
          await na.ip("route", "del", "unreachable", "10.95.0.2/32");
        }
        await assertTunnel(a, b, 10_000, "route back (EHOSTUNREACH)");
        // The link itself goes down (ENETDOWN / ENETUNREACH) and comes back.
        await na.ip("link", "set", "fa", "down");
        try {
          r = await ping(na, b.tunnel, 3, { intervalS: 0.4, waitS: 1 });
          assert.equal(r.received, 0, "link down, yet a reply");
          assert.ok(alive(a.daemon), "A died with its outer link down");
        } finally {
          await na.ip("link", "set", "fa", "up");
        }
        await assertTunnel(a, b, 10_000, "outer link back up");
      });

      await t.step("A's namespace loses every address, then regains them", async () => {
        await na.ip("addr", "flush", "dev", "fa");
        const r = await ping(na, b.tunnel, 5, { intervalS: 0.4, waitS: 1 });
        assert.equal(r.received, 0);
        await ping(nb, a.tunnel, 3, { intervalS: 0.4, waitS: 1 });
        assert.ok(alive(a.daemon) && alive(b.daemon));
        await na.ip("addr", "add", "10.95.0.1/24", "dev", "fa");
        await na.ip("addr", "add", "fd95::1/64", "dev", "fa", "nodad");
        await assertTunnel(a, b, 10_000, "addresses back");
      });

      await t.step("A's TUN down and up", async () => {
        await na.ip("link", "set", a.ifname, "down");
        assert.ok(
          await waitFor(async () => {
            const r = await na.exec("ss", "-Hunl", `sport = :${a.port}`);
            return r.stdout.trim() === "";
          }, 5000),
          "A did not close its sockets when its link went down",
        );
        await na.ip("link", "set", a.ifname, "up");
        // The kernel dropped the address's routes with the link; `up` brings them back.
        await assertTunnel(a, b, 10_000, "TUN down/up");
        await assertTunnel(b, a, 10_000, "TUN down/up, other way");
      });

      await t.step(
        "A stopped 2 s under a UDP stream (socket buffer full), then continued",
        async () => {
          const before = udpCounters(a.daemon.pid);
          const server = ctx.spawn(na, "iperf3", ["-s", "-1", "-B", a.tunnel, "-p", "5301"]);
          await waitFor(
            async () => (await na.exec("ss", "-Htnl", "sport = :5301")).stdout !== "",
            5000,
          );
          const client = ctx.spawn(nb, "iperf3", [
            "-c",
            a.tunnel,
            "-p",
            "5301",
            "-u",
            "-b",
            "300M",
            "-t",
            "5",
            "-l",
            "1300",
          ]);
          try {
            await sleep(1000);
            await sigstop(a.daemon, 2000);
            const after = udpCounters(a.daemon.pid);
            log(
              `A's sockets dropped ${
                after.rcvbufErrors - before.rcvbufErrors
              } datagrams while stopped`,
            );
            assert.ok(after.rcvbufErrors > before.rcvbufErrors, "the receive buffer never filled");
            assert.ok(alive(a.daemon));
          } finally {
            await client.kill("SIGTERM", 3000);
            await server.kill("SIGTERM", 3000);
          }
          await assertTunnel(a, b, 10_000, "after SIGSTOP 2 s under load");
        },
      );

      await t.step(
        "A stopped 17 s while B pings (B re-handshakes meanwhile), then continued",
        async () => {
          const pinging = ping(nb, a.tunnel, 40, { intervalS: 0.5, waitS: 1 });
          await sleep(500);
          await sigstop(a.daemon, 17_000);
          await pinging;
          assert.ok(alive(a.daemon));
          // B's initiations waited in A's socket; B must have sent some (its timers fired).
          assert.match(b.daemon.output(), /Sending handshake initiation/);
          await assertTunnel(b, a, 10_000, "after SIGSTOP 17 s");
          await assertTunnel(a, b, 10_000, "after SIGSTOP 17 s, other way");
        },
      );
    });
  },
});
