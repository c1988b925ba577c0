// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Short CI runs of the fuzz targets with fixed seeds (each a few seconds),
 * plus checks that the harness really catches what it claims to: an
 * exception escaping the receive path, a forged packet reaching the TUN, a
 * packet the model says must arrive going missing, an unexpected exception
 * in the UAPI applier, and a leaking index table. Long runs:
 * `deno run -A test/fuzz/main.ts --minutes 10`.
 */
import assert from "node:assert/strict";
import { cryptoBackend, setCryptoBackend } from "../../src/crypto.ts";
import { selectCryptoBackend } from "../../src/crypto/select.ts";
import { Device } from "../../src/device.ts";
import { IpcSetSession } from "../../uapi/apply.ts";
import { devicePair } from "../_util/device_pair.ts";
import { seededRng } from "../_util/fake_clock.ts";
import type { FuzzStats } from "./harness.ts";
import { checkBounds, checkGetGrammar, checkRoundTrip } from "./invariants.ts";
import { fuzzControl } from "./control.ts";
import { fuzzQuickConfig } from "./quick_config.ts";
import { fuzzReceive } from "./receive.ts";
import { fuzzTun } from "./tun.ts";
import { fuzzUapi } from "./uapi.ts";
import { fuzzWgConfig } from "./wg_config.ts";

/** Runs `fn` with the fastest crypto backend available (libcrypto when it loads). */
function withFastCrypto<T>(fn: () => T): T {
  const previous = cryptoBackend();
  try {
    setCryptoBackend(selectCryptoBackend().backend);
  } catch {
    // noble stays.
  }
  try {
    return fn();
  } finally {
    setCryptoBackend(previous);
  }
}

/** A deadline `seconds` from now, so that a slow machine shortens a run rather than hangs. */
function budget(seconds: number): { deadline: number } {
  return { deadline: performance.now() + seconds * 1000 };
}

function assertClean(s: FuzzStats, minIterations: number): void {
  const detail = s.findings.map((f) =>
    `${f.kind} at iteration ${f.iteration}: ${f.message}\n${f.stack ?? ""}\ninput: ${f.input ?? ""}`
  ).join("\n\n");
  assert.equal(s.exceptions, 0, `exceptions escaped:\n${detail}`);
  assert.equal(s.failures, 0, `invariants broken:\n${detail}`);
  assert.ok(s.iterations >= minIterations, `only ${s.iterations} iterations ran`);
  assert.ok(s.inputs > 0);
}

Deno.test("fuzzReceive() seed 1: hostile datagrams leave the pair working", () => {
  const s = withFastCrypto(() => fuzzReceive(seededRng(1), 8_000, budget(6)));
  assertClean(s, 2_000);
  // The inputs reached the deep paths, not just the type check.
  for (const k of ["decryptFailed", "handshakeRejected", "cookieRepliesSent", "replayed"]) {
    assert.ok(s.counters[`a.${k}`] + s.counters[`b.${k}`] > 0, `no input reached ${k}`);
  }
  assert.ok(s.counters.attackerCookies > 0, "the attacker never obtained a cookie");
});

Deno.test("fuzzTun() seed 1: every packet behaves as the model says", () => {
  const s = withFastCrypto(() => fuzzTun(seededRng(1), 1_000, budget(4)));
  assertClean(s, 200);
  for (const k of ["delivered", "senderInvalid", "noRoute", "receiverInvalid", "badSource"]) {
    assert.ok(s.counters[k] > 0, `no packet ended as ${k}`);
  }
});

Deno.test("fuzzUapi() seed 1: only wireguard-go errnos, state stays valid", () => {
  const s = withFastCrypto(() => fuzzUapi(seededRng(1), 300, budget(5)));
  assertClean(s, 50);
  for (const k of ["errno0", "errno-22", "errno-71", "differential"]) {
    assert.ok(s.counters[k] > 0, `never saw ${k}`);
  }
});

Deno.test("fuzzControl() seed 1: configuration churn under traffic, then the tunnel recovers", () => {
  const s = withFastCrypto(() => fuzzControl(seededRng(1), 400, budget(5)));
  assertClean(s, 100);
});

Deno.test("fuzzQuickConfig() seed 1: wg-quick files parse without surprises", () => {
  const s = fuzzQuickConfig(seededRng(1), 2_500, budget(3));
  assertClean(s, 500);
  assert.ok(s.counters.configErrors > 0, "no bad SaveConfig was ever seen");
});

Deno.test("fuzzWgConfig() seed 1: wg accepts only what the daemon accepts; showconf round-trips", async () => {
  const s = await fuzzWgConfig(seededRng(1), 600, budget(5));
  assertClean(s, 100);
  assert.ok(s.counters.accepted > 0 && s.counters.refusedByWg > 0);
});

Deno.test("fuzzReceive() reports an exception escaping handleDatagram", () => {
  const original = Device.prototype.handleDatagram;
  Device.prototype.handleDatagram = function (data, from) {
    if (data.length === 33) throw new TypeError("planted bug");
    original.call(this, data, from);
  };
  try {
    const s = withFastCrypto(() => fuzzReceive(seededRng(2), 1_500, budget(5)));
    assert.ok(s.exceptions > 0);
    assert.match(s.findings[0].message, /planted bug/);
    assert.ok(s.findings[0].input && s.findings[0].input.length === 66, "the input is reported");
  } finally {
    Device.prototype.handleDatagram = original;
  }
});

Deno.test("fuzzReceive() reports a forged datagram that reaches the TUN", () => {
  const original = Device.prototype.handleDatagram;
  Device.prototype.handleDatagram = function (data, from) {
    original.call(this, data, from);
    if (data.length === 148 && data[0] === 1) this.tun.write(new Uint8Array(20));
  };
  try {
    const s = withFastCrypto(() => fuzzReceive(seededRng(3), 1_500, budget(5)));
    assert.ok(s.failures > 0);
    assert.ok(s.findings.some((f) => /reached the TUN/.test(f.message)));
  } finally {
    Device.prototype.handleDatagram = original;
  }
});

Deno.test("fuzzTun() reports a packet that should have arrived", () => {
  const original = Device.prototype.handleTunPacket;
  Device.prototype.handleTunPacket = function (packet) {
    if (packet.length % 97 !== 13) original.call(this, packet);
  };
  try {
    const s = withFastCrypto(() => fuzzTun(seededRng(4), 300, budget(5)));
    assert.ok(s.failures > 0);
    assert.ok(s.findings.some((f) => /model/.test(f.message)));
  } finally {
    Device.prototype.handleTunPacket = original;
  }
});

Deno.test("fuzzUapi() reports errno=-55 from an exception in the applier", () => {
  const original = IpcSetSession.prototype.line;
  IpcSetSession.prototype.line = function (key, value) {
    if (key === "fwmark" && value === "1") throw new TypeError("planted bug");
    original.call(this, key, value);
  };
  try {
    const s = withFastCrypto(() => fuzzUapi(seededRng(5), 150, budget(6)));
    assert.ok(s.failures > 0);
    assert.ok(s.findings.some((f) => /errno=-55/.test(f.message)));
  } finally {
    IpcSetSession.prototype.line = original;
  }
});

Deno.test("checkBounds() reports an index table holding more than four entries per peer", () => {
  const p = devicePair();
  assert.deepEqual(checkBounds(p.a.device), []);
  for (let i = 0; i < 5; i++) p.a.device.indexTable.insert({ peer: p.a.peer, keypair: null });
  assert.match(checkBounds(p.a.device).join(), /index table holds 5 entries for 1 peers/);
  p.a.device.close();
  p.b.device.close();
});

Deno.test("checkRoundTrip() accepts a configured pair; checkGetGrammar() rejects bad output", () => {
  const p = devicePair({ psk: true });
  p.a.peer.setPersistentKeepaliveInterval(25);
  assert.deepEqual(checkRoundTrip(p.a.device), []);
  assert.deepEqual(checkRoundTrip(p.b.device), []);
  p.a.device.close();
  p.b.device.close();
  const key = "ab".repeat(32);
  assert.deepEqual(checkGetGrammar(`private_key=${key}\nlisten_port=1\n`), []);
  assert.match(checkGetGrammar(`listen_port=1\nprivate_key=${key}\n`).join(), /out of order/);
  assert.match(checkGetGrammar(`listen_port=0x1\n`).join(), /non-decimal/);
  assert.match(
    checkGetGrammar(`public_key=${key}\nendpoint=1.2.3.4:5\nendpoint=1.2.3.4:6\n`).join(),
    /out of order/,
  );
  assert.match(checkGetGrammar(`public_key=${key}\nfwmark=1\n`).join(), /unexpected peer key/);
  assert.match(checkGetGrammar(`junk\n`).join(), /without '='/);
});

Deno.test("test/fuzz/main.ts runs every target and exits 0", async () => {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./main.ts", import.meta.url).pathname,
      "--seed",
      "9",
      "--iterations",
      "40",
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  });
  const out = await cmd.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  for (const t of ["receive", "tun", "uapi", "control", "quick-config", "wg-config"]) {
    assert.match(text, new RegExp(`^${t} `, "m"));
  }
  assert.match(text, /OK: no exceptions, no failures/);
});
