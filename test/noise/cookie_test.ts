// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests for mac1/mac2 and cookie replies (whitepaper §5.4.4, §5.4.7; kernel
 * `cookie.c`; wireguard-go `cookie_test.go` TestCookieMAC1 is the model):
 * MAC round trips, the cookie exchange, source binding, the 120 s lifetime
 * of secrets and cookies on a fake clock, and rejection of replies that are
 * tampered with, unsolicited, or answer an older message.
 */
import assert from "node:assert/strict";
import { COOKIE_REFRESH_TIME, MESSAGE_COOKIE_REPLY } from "../../src/constants.ts";
import { generatePrivateKey, hash, mac, publicKey, xaeadOpen } from "../../src/crypto.ts";
import { CookieReply, Initiation, messageType, readU32, Response } from "../../src/messages.ts";
import { CookieChecker, CookieGenerator, MacState } from "../../src/noise/cookie.ts";
import { FakeClock, seededRng } from "../_util/fake_clock.ts";

const SOURCE = new Uint8Array([192, 168, 13, 37, 0xca, 0x6c]); // 192.168.13.37:51820
const OTHER_PORT = new Uint8Array([192, 168, 13, 37, 0xca, 0x6d]); // :51821
const OTHER_IP = new Uint8Array([192, 168, 13, 38, 0xca, 0x6c]);
const SOURCE6 = new Uint8Array([0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1, 0xca, 0x6c]);

interface Setup {
  clock: FakeClock;
  checker: CookieChecker;
  generator: CookieGenerator;
  publicKey: Uint8Array;
}

/** A responder's checker and an initiator's generator for the responder's public key. */
function setup(seed = 1): Setup {
  const rng = seededRng(seed);
  const clock = new FakeClock({ now: 1_000_000 });
  const pub = publicKey(generatePrivateKey(rng));
  const checker = new CookieChecker(clock, seededRng(seed + 1000));
  checker.init(pub);
  const generator = new CookieGenerator(clock, pub);
  return { clock, checker, generator, publicKey: pub };
}

/** A random handshake-sized message (the MACs only cover bytes, not semantics). */
function randomMessage(size: number, seed: number): Uint8Array {
  const msg = new Uint8Array(size);
  seededRng(seed)(msg);
  return msg;
}

function isZeroBytes(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

function mac2Of(msg: Uint8Array): Uint8Array {
  return msg.subarray(msg.length - 16);
}

/** Runs the cookie exchange for `msg` from `source`: reply, consume, returns the reply. */
function exchange(s: Setup, msg: Uint8Array, source: Uint8Array, sender = 1377): Uint8Array {
  s.generator.addMacs(msg);
  const reply = new Uint8Array(64);
  s.checker.createReply(reply, msg, sender, source);
  assert.equal(s.generator.consumeReply(reply), true, "consumeReply");
  return reply;
}

Deno.test("CookieGenerator.addMacs() + CookieChecker.checkMac1() round trip", () => {
  const s = setup();
  for (const [size, seed] of [[148, 1], [92, 2], [148, 3], [92, 4]]) {
    const msg = randomMessage(size, seed);
    s.generator.addMacs(msg);
    assert.equal(s.checker.checkMac1(msg), true, `size ${size}`);
    assert.equal(s.checker.validate(msg, SOURCE, false), MacState.ValidNoCookie);
  }
});

Deno.test('CookieGenerator.addMacs() mac1 is MAC(HASH("mac1----" ‖ Spub), msg before mac1)', () => {
  const s = setup();
  const msg = randomMessage(148, 9);
  s.generator.addMacs(msg);
  const key = new Uint8Array(32);
  hash(key, new TextEncoder().encode("mac1----"), s.publicKey);
  const want = new Uint8Array(16);
  mac(want, key, msg.subarray(0, Initiation.mac1));
  assert.deepEqual(msg.subarray(Initiation.mac1, Initiation.mac2), want);
  // Only the MAC fields were written.
  const untouched = randomMessage(148, 9);
  assert.deepEqual(msg.subarray(0, Initiation.mac1), untouched.subarray(0, Initiation.mac1));
});

Deno.test("CookieChecker.checkMac1() rejects a different public key", () => {
  const s = setup(1);
  const other = setup(2);
  const msg = randomMessage(148, 5);
  other.generator.addMacs(msg);
  assert.equal(s.checker.checkMac1(msg), false);
  assert.equal(s.checker.validate(msg, SOURCE, true), MacState.Invalid);
  assert.equal(other.checker.checkMac1(msg), true);
});

Deno.test("CookieChecker.checkMac1() rejects any flipped byte before mac2", () => {
  const s = setup();
  const msg = randomMessage(148, 6);
  s.generator.addMacs(msg);
  for (let i = 0; i < Initiation.mac2; i++) {
    msg[i] ^= 0x20;
    assert.equal(s.checker.checkMac1(msg), false, `byte ${i}`);
    msg[i] ^= 0x20;
  }
  // mac1 does not cover mac2.
  msg[Initiation.mac2] ^= 1;
  assert.equal(s.checker.checkMac1(msg), true);
});

Deno.test("CookieChecker without a key rejects every mac1", () => {
  const s = setup();
  const msg = randomMessage(148, 7);
  s.generator.addMacs(msg);
  const empty = new CookieChecker(s.clock, seededRng(1));
  assert.equal(empty.checkMac1(msg), false);
  s.checker.init(null);
  assert.equal(s.checker.checkMac1(msg), false);
  s.checker.init(s.publicKey);
  assert.equal(s.checker.checkMac1(msg), true);
  s.checker.wipe();
  assert.equal(s.checker.checkMac1(msg), false);
});

Deno.test("CookieGenerator.addMacs() leaves mac2 zero without a cookie", () => {
  const s = setup();
  const msg = randomMessage(148, 8);
  assert.ok(!isZeroBytes(mac2Of(msg)));
  s.generator.addMacs(msg);
  assert.ok(isZeroBytes(mac2Of(msg)));
  assert.equal(s.checker.checkMac2(msg, SOURCE), false);
  assert.equal(s.checker.validate(msg, SOURCE, true), MacState.ValidNoCookie);
});

Deno.test("CookieChecker.createReply() writes a 64-byte cookie reply addressed to the sender", () => {
  const s = setup();
  const msg = randomMessage(148, 10);
  s.generator.addMacs(msg);
  const reply = new Uint8Array(64).fill(0xee);
  s.checker.createReply(reply, msg, 0xaabbccdd, SOURCE);
  assert.equal(messageType(reply), MESSAGE_COOKIE_REPLY);
  assert.equal(readU32(reply, CookieReply.receiver), 0xaabbccdd);
  // The cookie is XAEAD(HASH("cookie--" ‖ Spub), nonce, MAC(secret, source), mac1).
  const key = new Uint8Array(32);
  hash(key, new TextEncoder().encode("cookie--"), s.publicKey);
  const cookie = new Uint8Array(16);
  assert.equal(
    xaeadOpen(
      cookie,
      key,
      reply.subarray(CookieReply.nonce, CookieReply.cookie),
      reply.subarray(CookieReply.cookie, 64),
      msg.subarray(Initiation.mac1, Initiation.mac2),
    ),
    true,
  );
  assert.ok(!isZeroBytes(cookie));
  assert.throws(() => s.checker.createReply(new Uint8Array(63), msg, 1, SOURCE), RangeError);
});

Deno.test("cookie exchange: mac2 is accepted for the same source only", async (t) => {
  for (
    const [name, source, others] of [
      ["IPv4", SOURCE, [OTHER_PORT, OTHER_IP, SOURCE6]],
      ["IPv6", SOURCE6, [SOURCE, OTHER_IP]],
    ] as const
  ) {
    await t.step(name, () => {
      const s = setup();
      exchange(s, randomMessage(148, 11), source);
      for (const [size, seed] of [[148, 12], [92, 13]]) {
        const msg = randomMessage(size, seed);
        s.generator.addMacs(msg);
        assert.ok(!isZeroBytes(mac2Of(msg)), "mac2 set once a cookie is held");
        assert.equal(s.checker.checkMac1(msg), true);
        assert.equal(s.checker.checkMac2(msg, source), true);
        assert.equal(s.checker.validate(msg, source, true), MacState.ValidCookie);
        assert.equal(s.checker.validate(msg, source, false), MacState.ValidNoCookie);
        for (const other of others) {
          assert.equal(s.checker.checkMac2(msg, other), false, `source ${other}`);
          assert.equal(s.checker.validate(msg, other, true), MacState.ValidNoCookie);
        }
        // A flipped byte breaks both MACs (wireguard-go TestCookieMAC1 flips msg[5]).
        msg[5] ^= 0x20;
        assert.equal(s.checker.checkMac1(msg), false);
        assert.equal(s.checker.checkMac2(msg, source), false);
        msg[5] ^= 0x20;
        // mac2 covers mac1.
        msg[size - 32] ^= 1;
        assert.equal(s.checker.checkMac2(msg, source), false);
        msg[size - 32] ^= 1;
        msg[size - 1] ^= 1;
        assert.equal(s.checker.checkMac2(msg, source), false);
        msg[size - 1] ^= 1;
        assert.equal(s.checker.checkMac2(msg, source), true);
      }
    });
  }
});

Deno.test("cookie expires after COOKIE_REFRESH_TIME on the generator side", () => {
  assert.equal(COOKIE_REFRESH_TIME, 120_000);
  const s = setup();
  exchange(s, randomMessage(148, 20), SOURCE);
  // Keep the checker's secret fresh, so only the generator's cookie ages.
  s.clock.advance(COOKIE_REFRESH_TIME - 1);
  const fresh = randomMessage(148, 21);
  s.generator.addMacs(fresh);
  assert.ok(!isZeroBytes(mac2Of(fresh)));
  s.clock.advance(1); // exactly 120 s: still valid (wireguard-go: expired when age > 120 s)
  const edge = randomMessage(148, 22);
  s.generator.addMacs(edge);
  assert.ok(!isZeroBytes(mac2Of(edge)));
  s.clock.advance(0.001);
  const stale = randomMessage(148, 23);
  s.generator.addMacs(stale);
  assert.ok(isZeroBytes(mac2Of(stale)), "stale cookie gives a zero mac2");
  // mac1 is still written.
  assert.equal(s.checker.checkMac1(stale), true);
});

Deno.test("cookie expires after COOKIE_REFRESH_TIME on the checker side", () => {
  const s = setup();
  exchange(s, randomMessage(148, 30), SOURCE);
  // The generator consumes a fresh reply later, so its cookie is young while the secret ages.
  s.clock.advance(60_000);
  exchange(s, randomMessage(148, 31), SOURCE);
  s.clock.advance(60_000); // secret exactly 120 s old
  const edge = randomMessage(148, 32);
  s.generator.addMacs(edge);
  assert.equal(s.checker.checkMac2(edge, SOURCE), true);
  s.clock.advance(0.001);
  const late = randomMessage(148, 33);
  s.generator.addMacs(late);
  assert.ok(!isZeroBytes(mac2Of(late)), "generator still holds a 60 s old cookie");
  assert.equal(s.checker.checkMac2(late, SOURCE), false, "secret older than 120 s");
  assert.equal(s.checker.checkMac2(edge, SOURCE), false);
});

Deno.test("CookieChecker secret rotation after 120 s invalidates old cookies", () => {
  const s = setup();
  // Reply made at t0 with secret S1; consumed 119 s later, so the cookie itself is fresh.
  const first = randomMessage(148, 40);
  s.generator.addMacs(first);
  const reply1 = new Uint8Array(64);
  s.checker.createReply(reply1, first, 1, SOURCE);
  s.clock.advance(119_000);
  assert.equal(s.generator.consumeReply(reply1), true);
  const withOld = randomMessage(148, 41);
  s.generator.addMacs(withOld);
  assert.equal(s.checker.checkMac2(withOld, SOURCE), true);
  s.clock.advance(2_000); // S1 is 121 s old
  // A reply to someone else rotates the secret.
  const other = randomMessage(148, 42);
  const otherReply = new Uint8Array(64);
  s.checker.createReply(otherReply, other, 2, OTHER_IP);
  const again = randomMessage(148, 43);
  s.generator.addMacs(again);
  assert.ok(!isZeroBytes(mac2Of(again)), "the generator's cookie is only 2 s old");
  assert.equal(s.checker.checkMac2(again, SOURCE), false, "cookie from the old secret");
  // A new exchange gives a cookie for the new secret.
  exchange(s, again, SOURCE);
  const renewed = randomMessage(148, 44);
  s.generator.addMacs(renewed);
  assert.equal(s.checker.checkMac2(renewed, SOURCE), true);
  // The new secret does not rotate again before 120 s.
  s.clock.advance(100_000);
  s.checker.createReply(new Uint8Array(64), other, 2, OTHER_IP);
  assert.equal(s.checker.checkMac2(renewed, SOURCE), true);
});

Deno.test("CookieChecker.createReply() keeps one secret within 120 s", () => {
  const s = setup();
  const msg = randomMessage(148, 50);
  s.generator.addMacs(msg);
  const key = new Uint8Array(32);
  hash(key, new TextEncoder().encode("cookie--"), s.publicKey);
  const open = (reply: Uint8Array): Uint8Array => {
    const cookie = new Uint8Array(16);
    assert.ok(xaeadOpen(
      cookie,
      key,
      reply.subarray(CookieReply.nonce, CookieReply.cookie),
      reply.subarray(CookieReply.cookie, 64),
      msg.subarray(Initiation.mac1, Initiation.mac2),
    ));
    return cookie;
  };
  const r1 = new Uint8Array(64);
  const r2 = new Uint8Array(64);
  const r3 = new Uint8Array(64);
  s.checker.createReply(r1, msg, 1, SOURCE);
  s.clock.advance(COOKIE_REFRESH_TIME);
  s.checker.createReply(r2, msg, 1, SOURCE);
  assert.notDeepEqual(r1.subarray(8, 32), r2.subarray(8, 32), "fresh nonce per reply");
  assert.deepEqual(open(r1), open(r2), "same secret and source → same cookie");
  s.clock.advance(1);
  s.checker.createReply(r3, msg, 1, SOURCE);
  assert.notDeepEqual(open(r3), open(r1), "rotated secret → new cookie");
});

Deno.test("CookieGenerator.consumeReply() without a prior addMacs() is rejected", () => {
  const s = setup();
  const msg = randomMessage(148, 60);
  // The checker may answer anything; the generator never sent a handshake.
  const reply = new Uint8Array(64);
  s.checker.createReply(reply, msg, 1, SOURCE);
  const fresh = new CookieGenerator(s.clock, s.publicKey);
  assert.equal(fresh.consumeReply(reply), false);
  const next = randomMessage(148, 61);
  fresh.addMacs(next);
  assert.ok(isZeroBytes(mac2Of(next)));
});

Deno.test("CookieGenerator.consumeReply() rejects a tampered reply", () => {
  const s = setup();
  const msg = randomMessage(148, 70);
  s.generator.addMacs(msg);
  const reply = new Uint8Array(64);
  s.checker.createReply(reply, msg, 1, SOURCE);
  // Every byte of the nonce and the encrypted cookie is authenticated.
  for (let i = CookieReply.nonce; i < CookieReply.size; i++) {
    for (const bit of [0x01, 0x80]) {
      reply[i] ^= bit;
      assert.equal(s.generator.consumeReply(reply), false, `byte ${i} ^ ${bit}`);
      reply[i] ^= bit;
    }
  }
  const next = randomMessage(148, 71);
  s.generator.addMacs(next);
  assert.ok(isZeroBytes(mac2Of(next)), "no cookie was stored");
});

Deno.test("CookieGenerator.consumeReply() rejects a reply for another public key", () => {
  const a = setup(1);
  const b = setup(2);
  const msg = randomMessage(148, 75);
  a.generator.addMacs(msg);
  const reply = new Uint8Array(64);
  b.checker.createReply(reply, msg, 1, SOURCE);
  assert.equal(a.generator.consumeReply(reply), false);
});

Deno.test("CookieGenerator.consumeReply() rejects a reply to an older mac1", () => {
  const s = setup();
  const older = randomMessage(148, 80);
  s.generator.addMacs(older);
  const reply = new Uint8Array(64);
  s.checker.createReply(reply, older, 1, SOURCE);
  const newer = randomMessage(148, 81);
  s.generator.addMacs(newer);
  assert.equal(s.generator.consumeReply(reply), false);
  const next = randomMessage(148, 82);
  s.generator.addMacs(next);
  assert.ok(isZeroBytes(mac2Of(next)));
  // A reply to the latest message works.
  const reply2 = new Uint8Array(64);
  s.checker.createReply(reply2, next, 1, SOURCE);
  assert.equal(s.generator.consumeReply(reply2), true);
});

Deno.test("CookieGenerator.consumeReply() accepts one reply per sent message", () => {
  const s = setup();
  const msg = randomMessage(148, 90);
  const reply = exchange(s, msg, SOURCE);
  assert.equal(s.generator.consumeReply(reply), false, "same reply twice");
});

Deno.test("CookieGenerator.wipe() forgets the cookie and the last mac1", () => {
  const s = setup();
  const msg = randomMessage(148, 95);
  s.generator.addMacs(msg);
  const reply = new Uint8Array(64);
  s.checker.createReply(reply, msg, 1, SOURCE);
  s.generator.wipe();
  assert.equal(s.generator.consumeReply(reply), false);
});

Deno.test("CookieChecker.wipe() drops the secret", () => {
  const s = setup();
  exchange(s, randomMessage(148, 96), SOURCE);
  const msg = randomMessage(148, 97);
  s.generator.addMacs(msg);
  s.checker.init(s.publicKey);
  assert.equal(s.checker.checkMac2(msg, SOURCE), true);
  s.checker.wipe();
  assert.equal(s.checker.checkMac2(msg, SOURCE), false);
});

Deno.test("response-sized messages use the response mac offsets", () => {
  const s = setup();
  const msg = randomMessage(92, 98);
  s.generator.addMacs(msg);
  const key = new Uint8Array(32);
  hash(key, new TextEncoder().encode("mac1----"), s.publicKey);
  const want = new Uint8Array(16);
  mac(want, key, msg.subarray(0, Response.mac1));
  assert.deepEqual(msg.subarray(Response.mac1, Response.mac2), want);
});
