// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests for the re-armable Timer and the five per-peer timers (kernel
 * `timers.c`, wireguard-go `timers.go`) on a fake clock. A recording
 * TimerHost plays the peer: like wireguard-go's SendHandshakeInitiation and
 * SendKeepalive it calls back into the event API when it "sends", so the
 * schedules below are the ones a real peer produces.
 */
import assert from "node:assert/strict";
import type { Rng } from "../src/clock.ts";
import {
  KEEPALIVE_TIMEOUT,
  MAX_TIMER_HANDSHAKES,
  REJECT_AFTER_TIME,
  REKEY_TIMEOUT,
  ZERO_KEY_MATERIAL_AFTER,
} from "../src/constants.ts";
import { PeerTimers, Timer, type TimerHost } from "../src/timers.ts";
import { FakeClock, seededRng } from "./_util/fake_clock.ts";

Deno.test("timer constants are the whitepaper's", () => {
  assert.equal(REKEY_TIMEOUT, 5_000);
  assert.equal(KEEPALIVE_TIMEOUT, 10_000);
  assert.equal(MAX_TIMER_HANDSHAKES, 18);
  assert.equal(ZERO_KEY_MATERIAL_AFTER, 3 * REJECT_AFTER_TIME);
  assert.equal(ZERO_KEY_MATERIAL_AFTER, 540_000);
});

// ---------------------------------------------------------------------------
// Timer

function counting(clock: FakeClock): { timer: Timer; fired: number[] } {
  const fired: number[] = [];
  const timer = new Timer(clock, () => fired.push(clock.now()));
  return { timer, fired };
}

Deno.test("Timer.mod() fires once, at the exact deadline", () => {
  const clock = new FakeClock({ now: 1000 });
  const { timer, fired } = counting(clock);
  assert.equal(timer.isPending, false);
  timer.mod(100);
  assert.equal(timer.isPending, true);
  clock.advance(99.999);
  assert.deepEqual(fired, []);
  assert.equal(timer.isPending, true);
  clock.advance(0.001);
  assert.deepEqual(fired, [1100]);
  assert.equal(timer.isPending, false);
  clock.advance(10_000);
  assert.deepEqual(fired, [1100], "fires only once");
});

Deno.test("Timer.mod() to a later deadline pushes it back", () => {
  const clock = new FakeClock();
  const { timer, fired } = counting(clock);
  timer.mod(100);
  clock.advance(50);
  timer.mod(100); // now due at 150
  clock.advance(50);
  assert.deepEqual(fired, [], "not at the old deadline");
  assert.equal(timer.isPending, true);
  clock.advance(49);
  assert.deepEqual(fired, []);
  clock.advance(1);
  assert.deepEqual(fired, [150]);
});

Deno.test("Timer.mod() pushed back many times keeps one scheduled callback", () => {
  const clock = new FakeClock();
  const { timer, fired } = counting(clock);
  for (let i = 0; i < 1000; i++) {
    timer.mod(100);
    clock.advance(1);
    assert.ok(clock.pending <= 1, `${clock.pending} callbacks scheduled`);
  }
  assert.deepEqual(fired, []);
  clock.advance(98);
  assert.deepEqual(fired, []);
  clock.advance(1);
  assert.deepEqual(fired, [1099]);
  assert.equal(clock.pending, 0);
});

Deno.test("Timer.mod() to an earlier deadline pulls it forward", () => {
  const clock = new FakeClock();
  const { timer, fired } = counting(clock);
  timer.mod(1000);
  clock.advance(10);
  timer.mod(20); // due at 30
  clock.advance(19);
  assert.deepEqual(fired, []);
  clock.advance(1);
  assert.deepEqual(fired, [30]);
  assert.equal(clock.pending, 0, "the callback for the old deadline was cancelled");
  clock.advance(2000);
  assert.deepEqual(fired, [30], "the old deadline does not fire too");
  assert.equal(clock.pending, 0);
});

Deno.test("Timer.mod(0) fires on the next advance", () => {
  const clock = new FakeClock();
  const { timer, fired } = counting(clock);
  timer.mod(0);
  assert.deepEqual(fired, [], "never synchronously");
  clock.advance(0);
  assert.deepEqual(fired, [0]);
});

Deno.test("Timer.del() prevents firing", () => {
  const clock = new FakeClock();
  const { timer, fired } = counting(clock);
  timer.mod(100);
  clock.advance(50);
  timer.del();
  assert.equal(timer.isPending, false);
  clock.advance(1000);
  assert.deepEqual(fired, []);
  // Also after being pushed back (callback scheduled earlier than the deadline).
  timer.mod(100);
  clock.advance(50);
  timer.mod(100);
  timer.del();
  clock.advance(1000);
  assert.deepEqual(fired, []);
  assert.equal(clock.pending, 0);
  // del() on an idle timer is harmless; the timer re-arms afterwards.
  timer.del();
  timer.mod(5);
  clock.advance(5);
  assert.equal(fired.length, 1);
});

Deno.test("Timer can re-arm itself from its callback", () => {
  const clock = new FakeClock();
  const fired: number[] = [];
  const timer: Timer = new Timer(clock, () => {
    fired.push(clock.now());
    if (fired.length < 3) timer.mod(10);
  });
  timer.mod(10);
  clock.advance(100);
  assert.deepEqual(fired, [10, 20, 30]);
  assert.equal(timer.isPending, false);
});

// ---------------------------------------------------------------------------
// PeerTimers

/** An Rng whose every 2-byte draw is `value` (big-endian), so jitter() = value % 334. */
function fixedJitter(value: number): Rng {
  return (out) => {
    for (let i = 0; i < out.length; i += 2) {
      out[i] = value >>> 8;
      if (i + 1 < out.length) out[i + 1] = value & 0xff;
    }
  };
}

interface Call {
  at: number;
  what: string;
}

/** A peer stand-in that records what the timers ask for. */
class FakeHost implements TimerHost {
  active = true;
  persistentKeepaliveInterval = 0;
  calls: Call[] = [];
  timers!: PeerTimers;
  readonly clock: FakeClock;

  constructor(clock: FakeClock) {
    this.clock = clock;
  }

  timersActive(): boolean {
    return this.active;
  }
  #record(what: string): void {
    this.calls.push({ at: this.clock.now(), what });
  }
  /** wireguard-go SendKeepalive → SendStagedPackets → a sent authenticated packet. */
  sendKeepalive(): void {
    this.#record("keepalive");
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketSent();
  }
  /** wireguard-go SendHandshakeInitiation (without its REKEY_TIMEOUT rate limit). */
  sendHandshakeInitiation(isRetry: boolean): void {
    if (!isRetry) this.timers.handshakeAttempts = 0;
    this.#record(isRetry ? "initiation(retry)" : "initiation");
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketSent();
    this.timers.handshakeInitiated();
  }
  dropStagedPackets(): void {
    this.#record("dropStaged");
  }
  zeroAndDropAll(): void {
    this.#record("zeroAndDropAll");
  }
  clearEndpointSrc(): void {
    this.#record("clearSrc");
  }
  flushOutput(): void {
    this.#record("flushOutput");
  }
  verbose(_message: string): void {}

  /** Recorded calls other than flushOutput/clearSrc. */
  actions(): Call[] {
    return this.calls.filter((c) => c.what !== "flushOutput" && c.what !== "clearSrc");
  }
  count(what: string): number {
    return this.calls.filter((c) => c.what === what).length;
  }
}

function setup(rng: Rng = fixedJitter(100), now = 0): {
  clock: FakeClock;
  host: FakeHost;
  timers: PeerTimers;
} {
  const clock = new FakeClock({ now });
  const host = new FakeHost(clock);
  const timers = new PeerTimers(host, clock, rng);
  host.timers = timers;
  timers.start();
  return { clock, host, timers };
}

Deno.test("PeerTimers.jitter() is uniform-ish in [0, 333] ms", () => {
  // Enumerate every 16-bit draw: the result covers exactly 0..333.
  let v = 0;
  const counter: Rng = (out) => {
    out[0] = v >>> 8;
    out[1] = v & 0xff;
    v++;
  };
  const { timers } = setup(counter);
  const seen = new Set<number>();
  for (let i = 0; i < 65536; i++) {
    const j = timers.jitter();
    assert.ok(Number.isInteger(j) && j >= 0 && j <= 333, `jitter ${j}`);
    seen.add(j);
  }
  assert.equal(seen.size, 334);
  // And with a seeded generator.
  const seeded = setup(seededRng(7)).timers;
  for (let i = 0; i < 10_000; i++) {
    const j = seeded.jitter();
    assert.ok(j >= 0 && j <= 333);
  }
  assert.equal(setup(fixedJitter(333)).timers.jitter(), 333);
  assert.equal(setup(fixedJitter(334)).timers.jitter(), 0);
});

Deno.test("PeerTimers retransmits an unanswered initiation every REKEY_TIMEOUT + jitter", async (t) => {
  for (const jitter of [0, 100, 333]) {
    await t.step(`jitter ${jitter} ms`, () => {
      const { clock, host, timers } = setup(fixedJitter(jitter), 500);
      host.sendHandshakeInitiation(false);
      assert.equal(timers.retransmitHandshake.isPending, true);
      const period = REKEY_TIMEOUT + jitter;
      clock.advance(period - 1);
      assert.equal(host.count("initiation(retry)"), 0);
      clock.advance(1);
      assert.equal(host.count("initiation(retry)"), 1);
      assert.equal(host.calls.at(-1)!.what, "flushOutput", "output flushed after the timer");
      assert.equal(host.count("clearSrc"), 1, "source cleared before retrying");
      assert.equal(timers.handshakeAttempts, 1);
      clock.advance(period);
      assert.equal(host.count("initiation(retry)"), 2);
      const times = host.calls.filter((c) => c.what.startsWith("initiation")).map((c) => c.at);
      assert.deepEqual(times, [500, 500 + period, 500 + 2 * period]);
    });
  }
});

Deno.test("PeerTimers retransmit intervals stay within REKEY_TIMEOUT + [0, 333] ms", () => {
  const { clock, host } = setup(seededRng(42));
  host.sendHandshakeInitiation(false);
  clock.advance(200_000);
  const times = host.calls.filter((c) => c.what.startsWith("initiation")).map((c) => c.at);
  assert.equal(times.length, 20);
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  for (const gap of gaps) assert.ok(gap >= 5_000 && gap <= 5_333, `gap ${gap}`);
  assert.ok(new Set(gaps).size > 1, "jitter varies between retries");
});

Deno.test("PeerTimers gives up after MAX_TIMER_HANDSHAKES + 2 initiations and arms zeroKeyMaterial", () => {
  const jitter = 100;
  const period = REKEY_TIMEOUT + jitter;
  const { clock, host, timers } = setup(fixedJitter(jitter));
  host.sendHandshakeInitiation(false);
  clock.advance(period * (MAX_TIMER_HANDSHAKES + 1));
  const initiations = host.calls.filter((c) => c.what.startsWith("initiation"));
  assert.equal(initiations.length, MAX_TIMER_HANDSHAKES + 2);
  assert.equal(initiations.length, 20);
  assert.deepEqual(
    initiations.map((c) => c.at),
    Array.from({ length: 20 }, (_, i) => i * period),
  );
  assert.equal(host.count("initiation"), 1);
  assert.equal(host.count("initiation(retry)"), 19);
  assert.equal(timers.handshakeAttempts, MAX_TIMER_HANDSHAKES + 1);
  assert.equal(host.count("dropStaged"), 0);
  assert.equal(timers.zeroKeyMaterial.isPending, false);
  // A keepalive armed now must be cancelled when we give up.
  timers.dataReceived();
  assert.equal(timers.sendKeepalive.isPending, true);
  clock.advance(period); // the 20th retransmit timeout: give up
  assert.equal(host.count("initiation(retry)"), 19, "no 21st initiation");
  assert.equal(host.count("dropStaged"), 1);
  assert.equal(timers.retransmitHandshake.isPending, false);
  assert.equal(timers.sendKeepalive.isPending, false);
  assert.equal(timers.zeroKeyMaterial.isPending, true);
  const gaveUp = clock.now();
  clock.advance(ZERO_KEY_MATERIAL_AFTER - 1);
  assert.equal(host.count("zeroAndDropAll"), 0);
  clock.advance(1);
  assert.deepEqual(host.calls.filter((c) => c.what === "zeroAndDropAll").map((c) => c.at), [
    gaveUp + ZERO_KEY_MATERIAL_AFTER,
  ]);
  assert.equal(host.count("keepalive"), 0);
  clock.advance(10 * ZERO_KEY_MATERIAL_AFTER);
  assert.equal(host.count("initiation(retry)"), 19);
  assert.equal(host.count("zeroAndDropAll"), 1);
});

Deno.test("PeerTimers giving up keeps an already pending zeroKeyMaterial deadline", () => {
  const period = REKEY_TIMEOUT;
  const { clock, host, timers } = setup(fixedJitter(0));
  timers.sessionDerived(); // due at 540 s
  host.sendHandshakeInitiation(false);
  clock.advance(period * (MAX_TIMER_HANDSHAKES + 2)); // gave up at 100 s
  assert.equal(host.count("dropStaged"), 1);
  clock.advance(ZERO_KEY_MATERIAL_AFTER - clock.now() - 1);
  assert.equal(host.count("zeroAndDropAll"), 0);
  clock.advance(1);
  assert.equal(host.count("zeroAndDropAll"), 1, "fires at 540 s, not 100 s + 540 s");
});

Deno.test("PeerTimers.handshakeComplete() stops retransmission and resets attempts", () => {
  const { clock, host, timers } = setup(fixedJitter(0));
  host.sendHandshakeInitiation(false);
  clock.advance(3 * REKEY_TIMEOUT);
  assert.equal(timers.handshakeAttempts, 3);
  timers.sentLastMinuteHandshake = true;
  timers.handshakeComplete();
  assert.equal(timers.handshakeAttempts, 0);
  assert.equal(timers.sentLastMinuteHandshake, false);
  assert.equal(timers.retransmitHandshake.isPending, false);
  clock.advance(100 * REKEY_TIMEOUT);
  assert.equal(host.count("initiation(retry)"), 3);
});

Deno.test("PeerTimers: a new (non-retry) initiation restarts the attempt count", () => {
  const { clock, host, timers } = setup(fixedJitter(0));
  host.sendHandshakeInitiation(false);
  clock.advance(10 * REKEY_TIMEOUT);
  assert.equal(timers.handshakeAttempts, 10);
  host.sendHandshakeInitiation(false);
  assert.equal(timers.handshakeAttempts, 0);
  clock.advance(19 * REKEY_TIMEOUT);
  assert.equal(host.count("initiation(retry)"), 10 + 19);
  assert.equal(host.count("dropStaged"), 0);
  clock.advance(REKEY_TIMEOUT);
  assert.equal(host.count("dropStaged"), 1);
});

Deno.test("PeerTimers.dataReceived() sends a keepalive after KEEPALIVE_TIMEOUT", () => {
  const { clock, host, timers } = setup();
  timers.dataReceived();
  assert.equal(timers.sendKeepalive.isPending, true);
  clock.advance(KEEPALIVE_TIMEOUT - 1);
  assert.equal(host.count("keepalive"), 0);
  clock.advance(1);
  assert.deepEqual(host.actions(), [{ at: KEEPALIVE_TIMEOUT, what: "keepalive" }]);
  assert.equal(timers.sendKeepalive.isPending, false);
  clock.advance(10 * KEEPALIVE_TIMEOUT);
  assert.equal(host.count("keepalive"), 1);
});

Deno.test("PeerTimers.dataReceived() while pending asks for another keepalive", () => {
  const { clock, host, timers } = setup();
  timers.dataReceived();
  clock.advance(3_000);
  timers.dataReceived(); // does not push the first one back
  assert.equal(timers.needAnotherKeepalive, true);
  clock.advance(KEEPALIVE_TIMEOUT - 3_000);
  assert.deepEqual(host.actions().map((c) => c.at), [KEEPALIVE_TIMEOUT]);
  assert.equal(timers.needAnotherKeepalive, false);
  assert.equal(timers.sendKeepalive.isPending, true, "re-armed for another one");
  clock.advance(KEEPALIVE_TIMEOUT);
  assert.deepEqual(host.actions().map((c) => c.at), [KEEPALIVE_TIMEOUT, 2 * KEEPALIVE_TIMEOUT]);
  clock.advance(10 * KEEPALIVE_TIMEOUT);
  assert.equal(host.count("keepalive"), 2);
});

Deno.test("PeerTimers.anyAuthenticatedPacketSent() cancels the pending keepalive", () => {
  const { clock, host, timers } = setup();
  timers.dataReceived();
  clock.advance(5_000);
  timers.anyAuthenticatedPacketSent();
  assert.equal(timers.sendKeepalive.isPending, false);
  clock.advance(100_000);
  assert.equal(host.count("keepalive"), 0);
});

Deno.test("PeerTimers.dataSent() starts a handshake after KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter", async (t) => {
  for (const jitter of [0, 250, 333]) {
    await t.step(`jitter ${jitter}`, () => {
      const { clock, host, timers } = setup(fixedJitter(jitter));
      timers.dataSent();
      assert.equal(timers.newHandshake.isPending, true);
      clock.advance(5_000);
      timers.dataSent(); // does not push it back
      const due = KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter;
      clock.advance(due - 5_000 - 1);
      assert.equal(host.count("initiation"), 0);
      clock.advance(1);
      assert.deepEqual(host.actions()[0], { at: due, what: "initiation" });
      assert.equal(host.count("clearSrc"), 1);
      assert.equal(timers.newHandshake.isPending, false);
    });
  }
});

Deno.test("PeerTimers.anyAuthenticatedPacketReceived() cancels the new-handshake timer", () => {
  const { clock, host, timers } = setup();
  timers.dataSent();
  clock.advance(14_000);
  timers.anyAuthenticatedPacketReceived();
  assert.equal(timers.newHandshake.isPending, false);
  clock.advance(100_000);
  assert.equal(host.count("initiation"), 0);
  // It is armed again by the next data sent.
  timers.dataSent();
  assert.equal(timers.newHandshake.isPending, true);
});

Deno.test("PeerTimers.sessionDerived() wipes keys after 3 × REJECT_AFTER_TIME, re-armed each time", () => {
  const { clock, host, timers } = setup();
  timers.sessionDerived();
  clock.advance(100_000);
  timers.sessionDerived(); // due at 640 s
  clock.advance(ZERO_KEY_MATERIAL_AFTER - 1);
  assert.equal(host.count("zeroAndDropAll"), 0);
  clock.advance(1);
  assert.deepEqual(host.actions(), [{ at: 640_000, what: "zeroAndDropAll" }]);
});

Deno.test("PeerTimers persistent keepalive is re-armed by every traversal", () => {
  const { clock, host, timers } = setup();
  host.persistentKeepaliveInterval = 25;
  timers.anyAuthenticatedPacketTraversal();
  assert.equal(timers.persistentKeepalive.isPending, true);
  clock.advance(10_000);
  timers.anyAuthenticatedPacketTraversal(); // due at 35 s
  clock.advance(24_999);
  assert.equal(host.count("keepalive"), 0);
  clock.advance(1);
  assert.equal(host.count("keepalive"), 1);
  // Each keepalive is itself a traversal, so they continue every 25 s.
  clock.advance(50_000);
  assert.deepEqual(host.actions().map((c) => c.at), [35_000, 60_000, 85_000]);
  // Other traffic pushes the next one back.
  clock.advance(20_000);
  timers.anyAuthenticatedPacketTraversal(); // at 105 s → due 130 s
  clock.advance(24_999);
  assert.equal(host.count("keepalive"), 3);
  clock.advance(1);
  assert.equal(host.count("keepalive"), 4);
});

Deno.test("PeerTimers persistent keepalive: interval 0 arms nothing and disables a pending one", () => {
  const { clock, host, timers } = setup();
  timers.anyAuthenticatedPacketTraversal();
  assert.equal(timers.persistentKeepalive.isPending, false);
  host.persistentKeepaliveInterval = 1;
  timers.anyAuthenticatedPacketTraversal();
  host.persistentKeepaliveInterval = 0;
  clock.advance(10_000);
  assert.equal(host.count("keepalive"), 0);
});

Deno.test("PeerTimers: nothing is armed or fires while timersActive() is false", () => {
  const { clock, host, timers } = setup();
  host.active = false;
  host.persistentKeepaliveInterval = 1;
  timers.dataSent();
  timers.dataReceived();
  timers.dataReceived();
  timers.anyAuthenticatedPacketSent();
  timers.anyAuthenticatedPacketReceived();
  timers.handshakeInitiated();
  timers.sessionDerived();
  timers.anyAuthenticatedPacketTraversal();
  for (
    const timer of [
      timers.retransmitHandshake,
      timers.sendKeepalive,
      timers.newHandshake,
      timers.zeroKeyMaterial,
      timers.persistentKeepalive,
    ]
  ) {
    assert.equal(timer.isPending, false);
  }
  assert.equal(timers.needAnotherKeepalive, false);
  assert.equal(clock.pending, 0);
  clock.advance(10 * ZERO_KEY_MATERIAL_AFTER);
  assert.deepEqual(host.calls, []);
});

Deno.test("PeerTimers: events while inactive leave armed timers alone", () => {
  const { clock, host, timers } = setup();
  timers.dataReceived();
  timers.dataSent();
  host.active = false;
  timers.anyAuthenticatedPacketSent();
  timers.anyAuthenticatedPacketReceived();
  assert.equal(timers.sendKeepalive.isPending, true);
  assert.equal(timers.newHandshake.isPending, true);
  // handshakeComplete resets the counters even when inactive (wireguard-go).
  timers.handshakeAttempts = 5;
  timers.handshakeComplete();
  assert.equal(timers.handshakeAttempts, 0);
  clock.advance(1);
});

Deno.test("PeerTimers.stop() disarms every timer; start() resets the counters", () => {
  const { clock, host, timers } = setup();
  host.persistentKeepaliveInterval = 25;
  host.sendHandshakeInitiation(false);
  timers.dataSent();
  timers.dataReceived();
  timers.dataReceived();
  timers.sessionDerived();
  clock.advance(REKEY_TIMEOUT * 3);
  host.calls = [];
  timers.stop();
  for (
    const timer of [
      timers.retransmitHandshake,
      timers.sendKeepalive,
      timers.newHandshake,
      timers.zeroKeyMaterial,
      timers.persistentKeepalive,
    ]
  ) {
    assert.equal(timer.isPending, false);
  }
  clock.advance(10 * ZERO_KEY_MATERIAL_AFTER);
  assert.deepEqual(host.calls, []);
  timers.handshakeAttempts = 7;
  timers.needAnotherKeepalive = true;
  timers.sentLastMinuteHandshake = true;
  timers.start();
  assert.equal(timers.handshakeAttempts, 0);
  assert.equal(timers.needAnotherKeepalive, false);
  assert.equal(timers.sentLastMinuteHandshake, false);
});
