// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Short CI versions of the fake-clock soak (soak.ts): two hours of protocol
 * time on a clean network and one on a lossy one, each in seconds of wall
 * time, plus a check that the hourly census catches a leak. The full run:
 * `deno run -A --v8-flags=--expose-gc test/soak/main.ts --hours 24`.
 */
import assert from "node:assert/strict";
import { cryptoBackend, setCryptoBackend } from "../../src/crypto.ts";
import { selectCryptoBackend } from "../../src/crypto/select.ts";
import { IndexTable } from "../../src/index_table.ts";
import { REKEY_AFTER_TIME } from "../../src/constants.ts";
import { runSoak, type SoakReport } from "./soak.ts";

/** Runs `fn` with the fastest crypto backend available (libcrypto when it loads). */
async function withFastCrypto<T>(fn: () => Promise<T>): Promise<T> {
  const previous = cryptoBackend();
  try {
    setCryptoBackend(selectCryptoBackend().backend);
  } catch {
    // noble stays.
  }
  try {
    return await fn();
  } finally {
    setCryptoBackend(previous);
  }
}

function deadline(seconds: number): number {
  return performance.now() + seconds * 1000;
}

function assertNoProblems(r: SoakReport): void {
  assert.deepEqual(r.problems, [], r.problems.join("\n"));
  assert.equal(r.truncated, false, "the run was cut short by its deadline");
}

Deno.test("runSoak() 2 h on a clean network: rekeys, roams, churn, nothing lost or leaked", async () => {
  const r = await withFastCrypto(() => runSoak({ hours: 2, seed: 11, deadline: deadline(60) }));
  assertNoProblems(r);
  assert.equal(r.hours.length, 2);
  const perHour = 3_600_000 / REKEY_AFTER_TIME;
  for (const h of r.hours) {
    const ab = h.pairs["A-B"];
    assert.ok(
      ab.handshakes >= perHour * 0.8 && ab.handshakes <= perHour * 1.5,
      `hour ${h.hour}: ${ab.handshakes} A-B handshakes`,
    );
    for (const [name, p] of Object.entries(h.pairs)) {
      assert.equal(p.lost, 0, `hour ${h.hour} ${name}`);
      assert.ok(p.sent > 0 && p.delivered > 0, `hour ${h.hour} ${name} carried traffic`);
    }
    assert.ok(h.keepalivesCtoA >= 40, `hour ${h.hour}: ${h.keepalivesCtoA} persistent keepalives`);
    assert.ok(
      h.roams >= 2 && h.churns >= 1,
      `hour ${h.hour}: ${h.roams} roams, ${h.churns} churns`,
    );
    assert.equal(h.counters.decryptFailed, 0);
    assert.equal(h.counters.replayed, 0);
    for (const s of Object.values(h.sizes)) {
      assert.equal(s.peers, 2);
      assert.ok(s.indexTable <= 8);
      assert.equal(s.handshakeQueue, 0);
    }
    if (h.liveKeypairs !== null) assert.ok(h.liveKeypairs <= 24, `${h.liveKeypairs} keypairs live`);
  }
  // Structures do not grow from one hour to the next.
  assert.deepEqual(r.hours[1].sizes, r.hours[0].sizes);
});

Deno.test("runSoak() 1 h on a lossy, duplicating, reordering network: no decryption failures", async () => {
  const r = await withFastCrypto(() =>
    runSoak({
      hours: 1,
      seed: 12,
      loss: 0.03,
      duplicate: 0.03,
      latency: 10,
      jitter: 30,
      deadline: deadline(60),
    })
  );
  assertNoProblems(r);
  const h = r.hours[0];
  assert.equal(h.counters.decryptFailed, 0);
  assert.ok(h.counters.replayed > 0, "duplicates reached the replay window");
  const sent = Object.values(h.pairs).reduce((a, p) => a + p.sent, 0);
  const lost = Object.values(h.pairs).reduce((a, p) => a + p.lost, 0);
  assert.ok(lost > 0 && lost < sent * 0.15, `${lost} of ${sent} lost`);
});

Deno.test("runSoak() reports an index table that leaks", async () => {
  const original = IndexTable.prototype.delete;
  IndexTable.prototype.delete = function () {};
  try {
    const r = await withFastCrypto(() =>
      runSoak({ hours: 0.25, roamMinutes: 0, churnMinutes: 0, deadline: deadline(30) })
    );
    assert.ok(
      r.problems.some((p) => /index table holds/.test(p)),
      `no leak reported: ${r.problems.join("; ")}`,
    );
  } finally {
    IndexTable.prototype.delete = original;
  }
});

Deno.test("test/soak/main.ts prints an hourly table and exits 0", async () => {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./main.ts", import.meta.url).pathname, "--hours", "0.2"],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  });
  const out = await cmd.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /^ {3}1 .* ok$/m);
  assert.match(text, /^OK$/m);
});
