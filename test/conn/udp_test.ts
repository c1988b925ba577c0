// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * LinuxBind against the real kernel, root only. Each test makes its own
 * network namespaces (`gtio-<random>`) and runs `_udp_helper.ts` (and, for
 * the two-namespace tests, the `_udp_server.ts` echo server) inside them with
 * `ip netns exec`, then asserts on the JSON the helper prints.
 *
 * ```
 *   ns A                          ns B
 *   gtioa… 10.77.0.3/24  <veth>  gtiob… 10.77.0.1/24, 10.77.0.2/24
 *          fd77::3/64                   fd77::1/64, fd77::2/64
 *   _udp_helper.ts client               _udp_server.ts
 * ```
 */
import assert from "node:assert/strict";
import {
  addNetns,
  Background,
  delNetns,
  denoInNetns,
  must,
  NETNS_NEEDS,
  runHelper,
  SETPRIV_NEEDS,
  sh,
  uniqueName,
} from "./_netns.ts";
import { ignoreUnless } from "../_util/needs.ts";

const ignore = ignoreUnless("test/conn/udp_test.ts", NETNS_NEEDS);
const helper = new URL("./_udp_helper.ts", import.meta.url);
const server = new URL("./_udp_server.ts", import.meta.url);

Deno.test({
  name: "LinuxBind.open() binds IPv4 and IPv6 (V6ONLY) on one port; EADDRINUSE is BindError(-98)",
  ignore,
  async fn() {
    const ns = await addNetns();
    try {
      const r = await runHelper(ns, helper, ["ports", "51820"]);
      const port = Number(r.port);
      assert.ok(port > 0 && port < 65536);
      assert.equal(r.fds, 2);
      assert.equal(r.v6only, 1);
      assert.ok(Number(r.rcvbuf) >= 7 << 20, `rcvbuf ${r.rcvbuf}`);
      assert.ok(Number(r.sndbuf) >= 7 << 20, `sndbuf ${r.sndbuf}`);
      assert.match(String(r.ss), new RegExp(`0\\.0\\.0\\.0:${port} `));
      assert.match(String(r.ss), new RegExp(`\\[::\\]:${port} `));
      assert.deepEqual(r.inUse, {
        errno: -98,
        message: `listen udp4 :${port}: bind: address already in use`,
      });
      assert.equal(r.fixed, 51820);
      assert.equal(r.fixedFds, 2);
      assert.match(String(r.ssAfterReopen), /0\.0\.0\.0:51820 /);
      assert.match(String(r.ssAfterReopen), /\[::\]:51820 /);
      assert.doesNotMatch(String(r.ssAfterReopen), new RegExp(`:${port} `), "reopen closed old");
      assert.equal(r.portZeroAgain, true);
      assert.equal(r.fdsAfterClose, 0);
      assert.equal(r.portAfterClose, 0);
      assert.equal(r.sendAfterClose, false);
      assert.equal(r.ssAfterClose, "");
    } finally {
      await delNetns(ns);
    }
  },
});

Deno.test({
  name: "LinuxBind.setMark() applies SO_MARK now and on later opens",
  ignore,
  async fn() {
    const ns = await addNetns();
    try {
      const r = await runHelper(ns, helper, ["mark"]);
      assert.deepEqual(r.marks, [0x1234, 0x1234]);
      assert.equal(String(r.ss).match(/fwmark:0x1234/g)?.length, 2, String(r.ss));
      assert.deepEqual(r.marksChanged, [0xca6c, 0xca6c]);
      assert.deepEqual(r.marksReopened, [0xca6c, 0xca6c]);
      assert.deepEqual(r.marksCleared, [0, 0]);
    } finally {
      await delNetns(ns);
    }
  },
});

Deno.test({
  name: "LinuxBind.setMark() without CAP_NET_ADMIN throws BindError(-98)",
  ignore: ignoreUnless("test/conn/udp_test.ts", SETPRIV_NEEDS),
  async fn() {
    const ns = await addNetns();
    try {
      const cmd = denoInNetns(ns, helper, ["markperm"]);
      // SO_MARK needs CAP_NET_ADMIN or CAP_NET_RAW: drop both for the helper only.
      const caps = "-net_admin,-net_raw";
      cmd.splice(4, 0, "setpriv", "--bounding-set", caps, "--inh-caps", caps);
      const out = await sh(cmd, 30_000);
      assert.equal(out.code, 0, out.stderr);
      const r = JSON.parse(out.stdout.trim().split("\n").pop()!);
      const refused = {
        errno: -98,
        message: "failed to update fwmark 0x7: operation not permitted",
      };
      assert.equal(r.openOk, 2);
      assert.deepEqual(r.setMark, refused);
      assert.equal(r.markRemembered, 7);
      assert.deepEqual(r.reopen, refused);
      assert.equal(r.fdsAfterFailedOpen, 0);
    } finally {
      await delNetns(ns);
    }
  },
});

Deno.test({
  name:
    "LinuxBind batches 100 datagrams per family over loopback, in order; drain(max, fd) reads one socket",
  ignore,
  async fn() {
    const ns = await addNetns();
    try {
      const r = await runHelper(ns, helper, ["loopback"]);
      for (const host of ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]"]) {
        assert.equal(r[`count ${host}`], 100, host);
        assert.equal(r[`inorder ${host}`], true, host);
      }
      assert.match(String(r["from [::1]"]), /^\[::1\]:\d+$/);
      // drain(max, fd): the ready socket alone (the daemon's loop knows which fd woke it).
      assert.equal(r.onlyV6, 2);
      assert.deepEqual(r.onlyV6Got, ["v6:0", "v6:1"]);
      assert.equal(r.onlyV4, 3);
      assert.deepEqual(r.onlyV4Got, ["v4:0", "v4:1", "v4:2"]);
      // An IPv4-mapped destination leaves through the IPv4 socket.
      assert.match(String(r["from [::ffff:127.0.0.1]"]), /^127\.0\.0\.1:\d+$/);
      assert.equal(r.sendErrors, 0);
      assert.equal(r.recvErrors, 0);
      assert.equal(r.bigLen, 60000);
    } finally {
      await delNetns(ns);
    }
  },
});

Deno.test({
  name: "LinuxBind round trip across a veth pair: sticky sources, batching, vanished source",
  ignore,
  async fn() {
    const a = await addNetns();
    const b = await addNetns();
    const va = uniqueName("gtioa"), vb = uniqueName("gtiob");
    let srv: Background | null = null;
    try {
      await must(["ip", "link", "add", va, "netns", a, "type", "veth", "peer", vb, "netns", b]);
      await must(["ip", "-n", a, "addr", "add", "10.77.0.3/24", "dev", va]);
      await must(["ip", "-n", a, "addr", "add", "fd77::3/64", "dev", va, "nodad"]);
      await must(["ip", "-n", a, "link", "set", va, "up"]);
      for (const addr of ["10.77.0.1/24", "10.77.0.2/24"]) {
        await must(["ip", "-n", b, "addr", "add", addr, "dev", vb]);
      }
      for (const addr of ["fd77::1/64", "fd77::2/64"]) {
        await must(["ip", "-n", b, "addr", "add", addr, "dev", vb, "nodad"]);
      }
      await must(["ip", "-n", a, "addr", "add", "fe80::a/64", "dev", va, "nodad"]);
      await must(["ip", "-n", b, "addr", "add", "fe80::b/64", "dev", vb, "nodad"]);
      await must(["ip", "-n", b, "link", "set", vb, "up"]);
      const ifindexA = JSON.parse(await must(["ip", "-n", a, "-j", "link", "show", va]))[0].ifindex;

      srv = new Background(denoInNetns(b, server, ["0"]));
      const ready = await srv.nextLine();
      const m = /^READY (\d+)$/.exec(ready);
      assert.ok(m, ready);
      const port = m[1];
      const r = await runHelper(a, helper, [
        "client",
        "10.77.0.1",
        "10.77.0.2",
        "fd77::1",
        "fd77::2",
        port,
        b,
        vb,
        `fe80::b%${va}`,
      ]);
      const from = (k: string) => (r[k] as { from: string } | null)?.from;
      // Sticky: each reply leaves from the address the request was sent to.
      assert.equal(from("echo4a"), `10.77.0.1:${port}`);
      assert.equal(from("echo4b"), `10.77.0.2:${port}`);
      assert.equal(from("echo6a"), `[fd77::1]:${port}`);
      assert.equal(from("echo6b"), `[fd77::2]:${port}`);
      // Link-local: the zone name is resolved for sending; replies carry the scope id.
      assert.equal(from("echoLinkLocal"), `[fe80::b%${ifindexA}]:${port}`);
      // Control: without the source, routing picks one address for both, so the test
      // above can tell sticky replies apart.
      assert.equal(from("plain4a"), from("plain4b"));
      assert.equal(from("plain6a"), from("plain6b"));
      // Batching both ways across the veth.
      assert.equal((r.count as { text: string }).text, "count=100 inorder=true");
      assert.equal(r.burstCount, 100);
      assert.equal(r.burstInOrder, true);
      // A sticky source that vanished is cleared and the datagram retried without it.
      assert.equal((r.held as { text: string }).text, "held:10.77.0.2");
      const texts = (r.replyHeld as { from: string; text: string }[]).map((x) => x.text);
      assert.equal(texts[0], "fromheld");
      assert.match(texts[1], /^heldsrc=null /);
      assert.equal(r.sendErrors, 0);
    } finally {
      await srv?.stop();
      await delNetns(a, b);
    }
  },
});

// ---- UDP GSO/GRO (_gso_helper.ts), namespaces `gtgso-<random>` ----
//
//   ns A (sender)                                   ns B (receiver)
//   10.79.0.1, 10.79.0.4 /24   <veth gtgsoa…/gtgsob…>  10.79.0.2, 10.79.0.3 /24
//   fd79::1, fd79::4 /64                               fd79::2, fd79::3 /64
//   A routes 10.79.0.3 and fd79::3 with mtu 1280 (a route that refuses GSO of
//   1300-byte segments, where plain datagrams are fragmented).

const gsoHelper = new URL("./_gso_helper.ts", import.meta.url);

/** One planned datagram, as _gso_helper.ts takes it (`PORT` is replaced). */
interface Planned {
  to: string;
  src?: string;
  stream: number;
  seq: number;
  len: number;
}

interface StreamLog {
  seqs: number[];
  lens: number[];
  from: string[];
}

interface Received {
  got: number;
  bad: number;
  streams: Record<string, StreamLog>;
  groMessages: number;
  groSegments: number;
  recvErrors: number;
}

interface Sent {
  refused: number;
  gsoBefore: { v4: boolean; v6: boolean };
  gsoAfter: { v4: boolean; v6: boolean };
  gsoMessages: number;
  gsoSegments: number;
  gsoFallbacks: number;
  sendErrors: number;
  lastSendErrno: number;
}

/** Builds a plan: runs of sizes to one destination, numbering each stream from 0. */
class Plan {
  readonly items: Planned[] = [];
  #next = new Map<number, number>();

  add(to: string, stream: number, sizes: number[], src?: string): this {
    for (const len of sizes) {
      const seq = this.#next.get(stream) ?? 0;
      this.#next.set(stream, seq + 1);
      this.items.push(src === undefined ? { to, stream, seq, len } : { to, src, stream, seq, len });
    }
    return this;
  }

  /** Sizes planned for `stream`, in order. */
  lens(stream: number): number[] {
    return this.items.filter((d) => d.stream === stream).map((d) => d.len);
  }
}

function repeat(n: number, len: number): number[] {
  return new Array(n).fill(len);
}

/** Namespaces A and B joined by a veth pair, as drawn above. */
async function gsoPair(): Promise<{ a: string; b: string; va: string; vb: string }> {
  const a = await addNetns("gtgso-"), b = await addNetns("gtgso-");
  const va = uniqueName("gtgsoa"), vb = uniqueName("gtgsob");
  try {
    await must(["ip", "link", "add", va, "netns", a, "type", "veth", "peer", vb, "netns", b]);
    for (const addr of ["10.79.0.1/24", "10.79.0.4/24"]) {
      await must(["ip", "-n", a, "addr", "add", addr, "dev", va]);
    }
    for (const addr of ["fd79::1/64", "fd79::4/64"]) {
      await must(["ip", "-n", a, "addr", "add", addr, "dev", va, "nodad"]);
    }
    for (const addr of ["10.79.0.2/24", "10.79.0.3/24"]) {
      await must(["ip", "-n", b, "addr", "add", addr, "dev", vb]);
    }
    for (const addr of ["fd79::2/64", "fd79::3/64"]) {
      await must(["ip", "-n", b, "addr", "add", addr, "dev", vb, "nodad"]);
    }
    await must(["ip", "-n", a, "link", "set", va, "up"]);
    await must(["ip", "-n", b, "link", "set", vb, "up"]);
    await must(["ip", "-n", a, "route", "add", "10.79.0.3/32", "dev", va, "mtu", "1280"]);
    await must(["ip", "-n", a, "route", "add", "fd79::3/128", "dev", va, "mtu", "1280"]);
  } catch (err) {
    await delNetns(a, b);
    throw err;
  }
  return { a, b, va, vb };
}

/**
 * Starts a receiver in `b` (GRO on or off) expecting `expect` datagrams, runs
 * the sender in `a`, and returns both reports.
 */
async function exchange(
  ns: { a: string; b: string },
  opts: { gro: boolean; gso: boolean; plan: Plan; expect?: number; send?: object },
): Promise<{ recv: Received; sent: Sent; groOn: boolean[] }> {
  const expect = opts.expect ?? opts.plan.items.length;
  const rx = new Background(
    denoInNetns(ns.b, gsoHelper, ["recv", opts.gro ? "on" : "off", String(expect), "5000"]),
  );
  try {
    const ready = await rx.nextLine();
    const m = /^READY (\d+) (true|false) (true|false)$/.exec(ready);
    assert.ok(m, ready);
    const plan = JSON.stringify(opts.plan.items).replaceAll("PORT", m[1]);
    const sent = await runHelper(ns.a, gsoHelper, [
      "send",
      opts.gso ? "on" : "off",
      plan,
      JSON.stringify(opts.send ?? {}),
    ]) as unknown as Sent;
    const recv = JSON.parse(await rx.nextLine(15_000)) as Received;
    return { recv, sent, groOn: [m[2] === "true", m[3] === "true"] };
  } finally {
    await rx.stop();
  }
}

/** Asserts that `stream` arrived complete, in order, intact, with the planned sizes. */
function assertStream(recv: Received, plan: Plan, stream: number): void {
  const log = recv.streams[String(stream)];
  assert.ok(log, `stream ${stream} missing`);
  const lens = plan.lens(stream);
  assert.deepEqual(log.seqs, lens.map((_, i) => i), `stream ${stream} order`);
  assert.deepEqual(log.lens, lens, `stream ${stream} sizes`);
}

Deno.test({
  name: "LinuxBind.flush() sends 60 equal datagrams and a shorter last one as one GSO message",
  ignore,
  async fn() {
    const ns = await gsoPair();
    try {
      const to = "10.79.0.2:PORT";
      const plan = new Plan().add(to, 1, [...repeat(60, 1000), 500]);
      const { recv, sent, groOn } = await exchange(ns, { gro: false, gso: true, plan });
      assert.deepEqual(groOn, [false, false]);
      assert.deepEqual(sent.gsoBefore, { v4: true, v6: true }, "kernel supports UDP_SEGMENT");
      assert.equal(sent.gsoMessages, 1);
      assert.equal(sent.gsoSegments, 61);
      assert.equal(sent.gsoFallbacks, 0);
      assert.equal(sent.sendErrors, 0);
      // A receiver without GRO gets them back as 61 datagrams (segmented on the way).
      assert.equal(recv.got, 61);
      assert.equal(recv.bad, 0);
      assertStream(recv, plan, 1);
      assert.equal(recv.groMessages, 0);
    } finally {
      await delNetns(ns.a, ns.b);
    }
  },
});

Deno.test({
  name: "LinuxBind.flush() GSO-merges only same-destination runs of one size, by family",
  ignore,
  async fn() {
    const ns = await gsoPair();
    try {
      const e1 = "10.79.0.2:PORT", e2 = "10.79.0.3:PORT", e6 = "[fd79::2]:PORT";
      const plan = new Plan()
        .add(e1, 1, repeat(5, 1000)) //       v4 [5] GSO
        .add(e2, 2, repeat(3, 1000)) //          [3] GSO (other address)
        .add(e1, 1, [800, 800]) //               [2] GSO (800 > next 1200: ends)
        .add(e1, 1, [1200]) //                   [1200, 1000] GSO: a shorter last one joins
        .add(e6, 3, repeat(4, 1000)) //       v6 [4 + 1] GSO (the first 100 of stream 5 joins)
        .add(e1, 1, [1000, 500, 1000]) //        …, [500] alone (1000 > 500), [1000] alone
        .add(e2, 2, [500, 1000]) //              [500] alone, [1000] alone
        .add(e1, 4, repeat(48, 1400)) //         [46] GSO (47 × 1400 > 65507), [2] GSO
        .add(e6, 5, repeat(64, 100)); //      v6 batch full at 64: [59] GSO, then [4] GSO
      const { recv, sent } = await exchange(ns, { gro: false, gso: true, plan });
      assert.equal(sent.sendErrors, 0);
      assert.equal(sent.gsoFallbacks, 0);
      // v4: 5 + 3 + 2 + 2 + 46 + 2 in 6 messages; v6: 5 + 59 + 4 in 3.
      assert.equal(sent.gsoMessages, 9);
      assert.equal(sent.gsoSegments, 128);
      assert.equal(recv.got, plan.items.length);
      assert.equal(recv.bad, 0);
      for (const stream of [1, 2, 3, 4, 5]) assertStream(recv, plan, stream);
    } finally {
      await delNetns(ns.a, ns.b);
    }
  },
});

Deno.test({
  name: "LinuxBind.drain() splits UDP GRO messages into the original datagrams",
  ignore,
  async fn() {
    const ns = await gsoPair();
    try {
      // A GSO sender: the super-packet crosses the veth whole and reaches a GRO socket whole.
      const plan = new Plan()
        .add("10.79.0.2:PORT", 1, [...repeat(40, 1200), 200])
        .add("[fd79::2]:PORT", 2, repeat(50, 1000))
        .add("10.79.0.2:PORT", 3, repeat(20, 700));
      const { recv, sent, groOn } = await exchange(ns, { gro: true, gso: true, plan });
      assert.deepEqual(groOn, [true, true], "kernel accepts UDP_GRO");
      assert.equal(sent.gsoMessages, 3);
      assert.equal(recv.got, 111);
      assert.equal(recv.bad, 0);
      for (const stream of [1, 2, 3]) assertStream(recv, plan, stream);
      assert.ok(recv.groMessages >= 1, `GRO messages ${recv.groMessages}`);
      assert.ok(recv.groSegments <= 111 && recv.groSegments >= 2 * recv.groMessages);
      // deno-lint-ignore no-console
      console.log(
        `  GSO sender → GRO receiver: ${recv.groMessages} GRO messages, ` +
          `${recv.groSegments} datagrams split out of them`,
      );

      // A plain sender: coalescing then needs NAPI GRO on the receiving veth (on, TSO
      // off on the sending side so veth hands UDP to GRO, threaded NAPI so packets
      // can queue up). Whether the kernel coalesces is reported, not required.
      const tuned = await runHelper(ns.b, gsoHelper, ["ethtool", ns.vb, "gro", "on"]);
      await runHelper(ns.a, gsoHelper, ["ethtool", ns.va, "tso", "off"]);
      await sh([
        "ip",
        "netns",
        "exec",
        ns.b,
        "sh",
        "-c",
        `echo 1 > /sys/class/net/${ns.vb}/threaded`,
      ]);
      const plain = new Plan().add("10.79.0.2:PORT", 1, repeat(640, 1000));
      const r = await exchange(ns, {
        gro: true,
        gso: false,
        plan: plain,
        send: { flushEvery: 64, pauseMs: 5 },
      });
      assert.equal(r.sent.gsoMessages, 0);
      assert.equal(r.recv.bad, 0);
      // The veth ring (256) may overflow; what arrives is in order and intact.
      const seqs = r.recv.streams["1"]?.seqs ?? [];
      assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), "in order");
      assert.ok(r.recv.got >= 320, `received ${r.recv.got} of 640`);
      const lens = r.recv.streams["1"]?.lens ?? [];
      assert.ok(lens.every((n) => n === 1000));
      // deno-lint-ignore no-console
      console.log(
        `  plain sender → GRO receiver (veth GRO ${JSON.stringify(tuned)}): ` +
          `${r.recv.got}/640 received, ${r.recv.groMessages} GRO messages, ` +
          `${r.recv.groSegments} datagrams split out of them`,
      );
    } finally {
      await delNetns(ns.a, ns.b);
    }
  },
});

Deno.test({
  name: "LinuxBind falls back to plain sends when GSO is off or the kernel refuses it",
  ignore,
  async fn() {
    const ns = await gsoPair();
    try {
      // Disabled by option.
      const plan = new Plan().add("10.79.0.2:PORT", 1, [...repeat(60, 1000), 500])
        .add("[fd79::2]:PORT", 2, repeat(30, 1000));
      const off = await exchange(ns, { gro: false, gso: false, plan });
      assert.deepEqual(off.sent.gsoBefore, { v4: false, v6: false });
      assert.equal(off.sent.gsoMessages, 0);
      assert.equal(off.recv.got, 91);
      assertStream(off.recv, plan, 1);
      assertStream(off.recv, plan, 2);

      // Refused by the route: 1300-byte segments over an mtu-1280 route (EMSGSIZE on
      // this kernel, EINVAL on older ones). Plain datagrams get fragmented and arrive.
      const big = new Plan().add("10.79.0.3:PORT", 1, repeat(40, 1300))
        .add("[fd79::3]:PORT", 2, repeat(40, 1300))
        .add("10.79.0.3:PORT", 1, repeat(10, 1300));
      const mtu = await exchange(ns, { gro: false, gso: true, plan: big });
      assert.deepEqual(mtu.sent.gsoBefore, { v4: true, v6: true });
      assert.deepEqual(mtu.sent.gsoAfter, { v4: false, v6: false });
      assert.equal(mtu.sent.gsoFallbacks, 2);
      assert.equal(mtu.sent.gsoMessages, 0);
      assert.equal(mtu.sent.sendErrors, 0);
      assert.equal(mtu.recv.got, 90);
      assertStream(mtu.recv, big, 1);
      assertStream(mtu.recv, big, 2);

      // Refused by the socket: SO_NO_CHECK makes udp_send_skb answer EINVAL. With a
      // sticky source first, EINVAL is ambiguous (a vanished IPv6 source says it too):
      // the run is resent datagram by datagram, which proves GSO was the problem, and
      // the source is kept.
      const runs: [number, string | undefined][][] = [
        [[1, undefined], [2, undefined]],
        [[1, "10.79.0.4"], [2, "10.79.0.1"]],
      ];
      for (const [[s1, src1], [s2, src2]] of runs) {
        const p = new Plan().add("10.79.0.2:PORT", s1, repeat(20, 1000), src1)
          .add("10.79.0.2:PORT", s2, repeat(20, 1000), src2);
        const r = await exchange(ns, { gro: false, gso: true, plan: p, send: { noCheck: true } });
        const what = `sources ${src1}, ${src2}`;
        assert.deepEqual(r.sent.gsoAfter, { v4: false, v6: true }, what);
        assert.equal(r.sent.gsoFallbacks, 1, what);
        assert.equal(r.sent.gsoMessages, 0, what);
        assert.equal(r.sent.sendErrors, 0, what);
        assert.equal(r.recv.got, 40, what);
        assertStream(r.recv, p, s1);
        assertStream(r.recv, p, s2);
        if (src1 !== undefined) {
          assert.deepEqual(r.recv.streams[String(s1)].from, [src1]);
          assert.deepEqual(r.recv.streams[String(s2)].from, [src2]);
        }
      }
    } finally {
      await delNetns(ns.a, ns.b);
    }
  },
});

Deno.test({
  name: "LinuxBind sends GSO messages with sticky sources; a vanished source keeps GSO on",
  ignore,
  async fn() {
    const ns = await gsoPair();
    try {
      const v4 = "10.79.0.2:PORT", v6 = "[fd79::2]:PORT";
      const plan = new Plan()
        .add(v4, 1, repeat(10, 1000), "10.79.0.4")
        .add(v4, 2, repeat(10, 1000), "10.79.0.1")
        .add(v4, 3, repeat(10, 1000))
        .add(v4, 4, repeat(10, 1000), "10.79.0.9") // not ours: ENETUNREACH, cleared
        .add(v6, 5, repeat(10, 1000), "fd79::4")
        .add(v6, 6, repeat(10, 1000), "fd79::1")
        .add(v6, 7, repeat(10, 1000), "fd79::9") // not ours: EINVAL, cleared
        .add(v6, 8, repeat(10, 1000), "fd79::4");
      const { recv, sent } = await exchange(ns, { gro: false, gso: true, plan });
      assert.equal(sent.sendErrors, 0);
      assert.equal(sent.gsoFallbacks, 0);
      assert.deepEqual(sent.gsoAfter, { v4: true, v6: true });
      assert.equal(sent.gsoMessages, 8);
      assert.equal(sent.gsoSegments, 80);
      assert.equal(recv.got, 80);
      for (let s = 1; s <= 8; s++) assertStream(recv, plan, s);
      const from = (s: number) => recv.streams[String(s)].from;
      assert.deepEqual(from(1), ["10.79.0.4"]);
      assert.deepEqual(from(2), ["10.79.0.1"]);
      assert.deepEqual(from(5), ["[fd79::4]"]);
      assert.deepEqual(from(6), ["[fd79::1]"]);
      assert.deepEqual(from(8), ["[fd79::4]"]);
      // Routing picked the source for the ones whose source vanished.
      assert.equal(from(4).length, 1);
      assert.equal(from(7).length, 1);
      assert.notDeepEqual(from(7), ["[fd79::9]"]);
    } finally {
      await delNetns(ns.a, ns.b);
    }
  },
});
