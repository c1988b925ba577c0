// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests for Keypair's exact 64-bit send counter (kept as two u32 halves):
 * the carry at 2^32, REKEY_AFTER_MESSAGES (2^60, rekey once the next counter
 * is above it, wireguard-go `keepKeyFreshSending`) and REJECT_AFTER_MESSAGES
 * (2^64 − 2^13 − 1, no message may use a counter at or above it, wireguard-go
 * `RoutineEncryption`), plus expiry and wiping.
 */
import assert from "node:assert/strict";
import {
  REJECT_AFTER_MESSAGES_HI,
  REJECT_AFTER_MESSAGES_LO,
  REKEY_AFTER_MESSAGES,
} from "../../src/constants.ts";
import { Keypair, Keypairs } from "../../src/noise/keypair.ts";

/** The next send counter as a BigInt. */
function counter(kp: Keypair): bigint {
  return (BigInt(kp.sendHi) << 32n) | BigInt(kp.sendLo);
}

/** Sets the next send counter from a BigInt. */
function setCounter(kp: Keypair, value: bigint): void {
  kp.sendHi = Number(value >> 32n);
  kp.sendLo = Number(value & 0xffffffffn);
}

const REJECT = 2n ** 64n - 2n ** 13n - 1n;
const REKEY = 2n ** 60n;

Deno.test("REJECT_AFTER_MESSAGES and REKEY_AFTER_MESSAGES are the whitepaper's values", () => {
  assert.equal(
    (BigInt(REJECT_AFTER_MESSAGES_HI) << 32n) | BigInt(REJECT_AFTER_MESSAGES_LO),
    REJECT,
  );
  assert.equal(BigInt(REKEY_AFTER_MESSAGES), REKEY);
});

Deno.test("Keypair constructor stores role, time and indices; counter starts at 0", () => {
  const kp = new Keypair(true, 1234.5, 0x11223344, 0xaabbccdd);
  assert.equal(kp.isInitiator, true);
  assert.equal(kp.created, 1234.5);
  assert.equal(kp.localIndex, 0x11223344);
  assert.equal(kp.remoteIndex, 0xaabbccdd);
  assert.equal(counter(kp), 0n);
  assert.equal(kp.sendExhausted, false);
  assert.equal(kp.sendNeedsRekey, false);
  assert.equal(kp.sendKey.length, 32);
  assert.equal(kp.receiveKey.length, 32);
  assert.notEqual(kp.sendKey, kp.receiveKey);
  assert.equal(new Keypair(false, 0, 1, 2).isInitiator, false);
});

Deno.test("Keypair.nextSend() counts up by exactly one", () => {
  const kp = new Keypair(true, 0, 1, 2);
  for (let i = 1n; i <= 1000n; i++) {
    kp.nextSend();
    assert.equal(counter(kp), i);
  }
});

Deno.test("Keypair.nextSend() carries exactly across 2^32", async (t) => {
  const cases: bigint[] = [
    2n ** 32n - 1n,
    2n ** 33n - 1n,
    2n ** 60n - 1n,
    0xfffffffe_ffffffffn,
    0x12345678_ffffffffn,
  ];
  for (const start of cases) {
    await t.step(`from 0x${start.toString(16)}`, () => {
      const kp = new Keypair(true, 0, 1, 2);
      setCounter(kp, start);
      assert.equal(kp.sendLo, 0xffffffff);
      const hi = kp.sendHi;
      kp.nextSend();
      assert.equal(kp.sendLo, 0);
      assert.equal(kp.sendHi, hi + 1);
      assert.equal(counter(kp), start + 1n);
      kp.nextSend();
      assert.equal(kp.sendLo, 1);
      assert.equal(counter(kp), start + 2n);
    });
  }
});

Deno.test("Keypair.nextSend() keeps both halves unsigned u32", () => {
  const kp = new Keypair(true, 0, 1, 2);
  setCounter(kp, 0x7fffffff_7fffffffn);
  kp.nextSend();
  assert.equal(kp.sendLo, 0x80000000);
  assert.equal(kp.sendHi, 0x7fffffff);
  setCounter(kp, 0x7fffffff_ffffffffn);
  kp.nextSend();
  assert.equal(kp.sendHi, 0x80000000);
  assert.equal(kp.sendLo, 0);
  assert.ok(kp.sendHi > 0 && kp.sendLo >= 0);
});

Deno.test("Keypair.sendExhausted is true exactly from 2^64 − 2^13 − 1", async (t) => {
  const cases: [bigint, boolean][] = [
    [0n, false],
    [2n ** 63n, false],
    [0xfffffffe_ffffffffn, false],
    [0xffffffff_00000000n, false],
    [REJECT - 2n, false],
    [REJECT - 1n, false],
    [REJECT, true],
    [REJECT + 1n, true],
    [2n ** 64n - 1n, true],
  ];
  for (const [value, want] of cases) {
    await t.step(`0x${value.toString(16)} → ${want}`, () => {
      const kp = new Keypair(true, 0, 1, 2);
      setCounter(kp, value);
      assert.equal(kp.sendExhausted, want);
    });
  }
  await t.step("nextSend() from REJECT − 1 reaches it", () => {
    const kp = new Keypair(true, 0, 1, 2);
    setCounter(kp, REJECT - 1n);
    assert.equal(kp.sendExhausted, false);
    kp.nextSend();
    assert.equal(counter(kp), REJECT);
    assert.equal(kp.sendExhausted, true);
  });
});

Deno.test("Keypair.sendNeedsRekey is true exactly above 2^60", async (t) => {
  const cases: [bigint, boolean][] = [
    [0n, false],
    [1n, false],
    [2n ** 32n, false],
    [REKEY - 2n ** 32n, false],
    [REKEY - 1n, false],
    [REKEY, false],
    [REKEY + 1n, true],
    [REKEY + 2n ** 32n, true],
    [REKEY + 2n ** 32n - 1n, true],
    [2n ** 61n, true],
    [REJECT, true],
  ];
  for (const [value, want] of cases) {
    await t.step(`0x${value.toString(16)} → ${want}`, () => {
      const kp = new Keypair(true, 0, 1, 2);
      setCounter(kp, value);
      assert.equal(kp.sendNeedsRekey, want);
    });
  }
  await t.step("nextSend() from 2^60 crosses it", () => {
    const kp = new Keypair(true, 0, 1, 2);
    setCounter(kp, REKEY);
    assert.equal(kp.sendNeedsRekey, false);
    kp.nextSend();
    assert.equal(kp.sendNeedsRekey, true);
  });
});

Deno.test("Keypair.expireSending() makes the keypair unusable for sending only", () => {
  const kp = new Keypair(false, 0, 1, 2);
  kp.sendKey.fill(1);
  kp.receiveKey.fill(2);
  kp.expireSending();
  assert.equal(kp.sendExhausted, true);
  assert.equal(counter(kp), REJECT);
  // Keys stay: the keypair may still receive.
  assert.ok(kp.sendKey.every((b) => b === 1));
  assert.ok(kp.receiveKey.every((b) => b === 2));
});

Deno.test("Keypair.wipe() zeroes both keys and expires sending", () => {
  const kp = new Keypair(true, 0, 1, 2);
  kp.sendKey.fill(0xaa);
  kp.receiveKey.fill(0x55);
  const send = kp.sendKey;
  const receive = kp.receiveKey;
  kp.wipe();
  assert.equal(kp.sendKey, send, "wiped in place");
  assert.equal(kp.receiveKey, receive, "wiped in place");
  assert.ok(kp.sendKey.every((b) => b === 0));
  assert.ok(kp.receiveKey.every((b) => b === 0));
  assert.equal(kp.sendExhausted, true);
});

Deno.test("Keypair.replay is a fresh filter per keypair", () => {
  const a = new Keypair(true, 0, 1, 2);
  const b = new Keypair(true, 0, 1, 2);
  assert.notEqual(a.replay, b.replay);
});

Deno.test("Keypairs starts empty", () => {
  const kps = new Keypairs();
  assert.equal(kps.previous, null);
  assert.equal(kps.current, null);
  assert.equal(kps.next, null);
});
