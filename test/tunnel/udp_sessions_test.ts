// SPDX-License-Identifier: Apache-2.0
// UdpSessions on a FakeClock: idle expiry from the last activity, least
// recently active evicted when full, close ends everything.
import assert from "node:assert/strict";
import { FakeClock } from "../_util/fake_clock.ts";
import { type SessionEnd, UdpSessions } from "../../src/tunnel/udp_sessions.ts";

function table(max: number, idleMs = 1000) {
  const clock = new FakeClock();
  const ended: string[] = [];
  const t = new UdpSessions<string>({
    clock,
    idleMs,
    max,
    onEnd: (key, s, why: SessionEnd) => ended.push(`${key}=${s}:${why}`),
  });
  return { clock, ended, t };
}

Deno.test("UdpSessions: a session ends idleMs after its last datagram, not its first", () => {
  const { clock, ended, t } = table(10);
  t.add("a", "A");
  clock.advance(600);
  assert.equal(t.touch("a"), "A"); // a active at 600
  clock.advance(300);
  t.add("b", "B"); // b from 900
  clock.advance(600); // 1500: a idle 900 ms, b 600 ms
  assert.deepEqual(ended, []);
  clock.advance(100); // 1600: a idle 1000 ms
  assert.deepEqual(ended, ["a=A:idle"]);
  assert.equal(t.touch("a"), undefined);
  assert.equal(t.size, 1);
  clock.advance(299);
  assert.deepEqual(ended, ["a=A:idle"]);
  clock.advance(1); // 1900: b idle 1000 ms
  assert.deepEqual(ended, ["a=A:idle", "b=B:idle"]);
  assert.equal(t.size, 0);
  assert.equal(t.expired, 2);
  assert.equal(clock.pending, 0, "no timer left once the table is empty");
});

Deno.test("UdpSessions: when full, the least recently active gives way", () => {
  const { clock, ended, t } = table(3);
  t.add("a", "A");
  t.add("b", "B");
  t.add("c", "C");
  clock.advance(10);
  t.touch("a"); // b is now the least recently active
  t.add("d", "D");
  assert.deepEqual(ended, ["b=B:evicted"]);
  t.add("e", "E");
  assert.deepEqual(ended, ["b=B:evicted", "c=C:evicted"]);
  assert.equal(t.size, 3);
  assert.equal(t.evicted, 2);
  // A flood of new keys never holds more than max.
  for (let i = 0; i < 1000; i++) t.add(`k${i}`, "x");
  assert.equal(t.size, 3);
});

Deno.test("UdpSessions: close() ends every session; later adds end at once", () => {
  const { clock, ended, t } = table(5);
  t.add("a", "A");
  t.add("b", "B");
  t.delete("a");
  assert.deepEqual(ended, ["a=A:closed"]);
  t.close();
  assert.deepEqual(ended, ["a=A:closed", "b=B:closed"]);
  assert.equal(clock.pending, 0);
  t.add("c", "C");
  assert.deepEqual(ended, ["a=A:closed", "b=B:closed", "c=C:closed"]);
  assert.equal(t.size, 0);
  assert.throws(() => new UdpSessions({ clock, idleMs: 0, max: 1, onEnd() {} }), RangeError);
  assert.throws(() => new UdpSessions({ clock, idleMs: 1, max: 0, onEnd() {} }), RangeError);
});
